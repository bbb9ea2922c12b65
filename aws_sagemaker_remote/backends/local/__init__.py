"""Run a rendered SageMaker request on this machine: no Docker, no AWS account.

:class:`LocalBackend` takes the exact ``CreateProcessingJob`` /
``CreateTrainingJob`` keyword arguments that :mod:`aws_sagemaker_remote.render`
builds and does what SageMaker would do with them, with a
:class:`~aws_sagemaker_remote.store.Store` standing in for S3:

1. for each instance ``algo-1`` ... ``algo-N``, lay out a private container
   filesystem ``<job folder>/algo-i`` whose ``opt/ml`` plays ``/opt/ml``;
2. download the inputs (channels) the request names into it, with SageMaker's
   ``S3Prefix``/``ManifestFile`` and ``FullyReplicated``/``ShardedByS3Key`` rules,
   and write the config files SageMaker writes;
3. run ``ContainerEntrypoint + ContainerArguments`` as one process per
   instance, concurrently, with the instance's folder mounted at ``/opt/ml``
   in a private mount namespace (or, where that is unavailable, ``/opt/ml``
   paths moved into the folder), bounded by the volume size, and record
   their output as log events;
4. upload what SageMaker uploads (processing outputs, ``model.tar.gz``,
   ``output.tar.gz``, checkpoints) and report statuses in ``Describe*Job`` form.

The package is split by concern: :mod:`.state` (a job's statuses, events and
describe fields), :mod:`.processes` (running, stopping and reaping the
instances' processes), :mod:`.isolation` and :mod:`.namespace` (where a job
finds ``/opt/ml``), :mod:`.disk` (the volume size), :mod:`.transfer`
(downloads, uploads, config files) and :mod:`.kinds` (what differs between
Processing and Training). This module holds
the :class:`~aws_sagemaker_remote.backends.base.Backend` calls.

Every difference from SageMaker is listed in ``docs/local-backend.rst``.
POSIX only: stopping relies on process groups.
"""
from __future__ import annotations

import atexit
import copy
import dataclasses
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import weakref
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from ...errors import AwsError, JobExists, JobNotFound
from ...leftovers import owned_prefix, sweep
from ...metrics import MetricTracker
from ...store import Store
from ..base import NAME_KEY, PROCESSING, TRAINING, LogCursor, LogEvent
from . import isolation
from .kinds import KINDS
from .processes import kill_group
from .state import (
    EVENTS_FILE,
    LOCAL_ACCOUNT,
    LOCAL_REGION,
    MAX_RUNTIME_EXCEEDED,
    REASON_LIMIT,
    Instance,
    Job,
    JobError,
    Registry,
    Settings,
)

__all__ = [
    "DEFAULT_LOG_POLL_INTERVAL",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_STOP_GRACE",
    "KEEP_ENV",
    "LOCAL_ACCOUNT",
    "LOCAL_REGION",
    "MAX_RUNTIME_EXCEEDED",
    "REASON_LIMIT",
    "JobExists",
    "JobNotFound",
    "LocalBackend",
]

#: Seconds between status polls of the watch code.
DEFAULT_POLL_INTERVAL = 0.1
#: Seconds between log reads of the watch code (reading the local logs costs nothing).
DEFAULT_LOG_POLL_INTERVAL = 0.1
#: Seconds a stopped job gets between SIGTERM and SIGKILL (SageMaker gives 120).
DEFAULT_STOP_GRACE = 20.0
#: Set to 1 to keep each job's temporary container folders for inspection.
KEEP_ENV = "AWS_SAGEMAKER_REMOTE_KEEP"


_LIVE_BACKENDS: "weakref.WeakSet[LocalBackend]" = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    """A container dies with its job; so do the local instances when this interpreter exits."""
    for backend in list(_LIVE_BACKENDS):
        backend.kill_all()


class LocalBackend:
    """The :class:`~aws_sagemaker_remote.backends.base.Backend` that runs jobs on this machine.

    ``store`` stands in for S3 (a :class:`~aws_sagemaker_remote.store.LocalStore`
    for runs without AWS, or an :class:`~aws_sagemaker_remote.store.S3Store`).
    ``workdir`` is where each job's temporary folders go (the system temp folder
    by default), ``python`` the interpreter that replaces ``python3``/``python``
    at the start of the entrypoint, ``stop_grace`` the seconds between SIGTERM
    and SIGKILL when a job is stopped. ``region`` goes into the job ARNs and
    messages (the region of ``store`` when it is S3). ``poll_interval`` and
    ``log_poll_interval`` tell the watch code how often to ask for the status
    and the logs. ``clock`` (monotonic seconds) measures ``MaxRuntimeInSeconds``
    and the stop grace period, and ``sleep`` pauses between two looks at the
    running processes; a test can pass its own to drive time limits without
    waiting for them. ``paths`` says where the jobs find ``/opt/ml``:
    ``"namespace"`` (at ``/opt/ml`` itself, in a private mount namespace),
    ``"relocate"`` (a folder named by ``SAGEMAKER_BASE_DIR``) or ``"auto"``
    (the first where it works); by default ``AWS_SAGEMAKER_REMOTE_LOCAL_PATHS``
    or ``"auto"`` (see :mod:`.isolation`). ``registry`` records each job
    (description and log lines) so other processes can describe, follow and stop
    it; by default the :class:`~aws_sagemaker_remote.backends.local.state.Registry`
    under the tool's home.

    :raises ValueError: ``paths`` (or the variable) is none of those.
    """

    name = "local"
    #: The jobs' processes are children of this one and die with it.
    outlives_caller = False

    def __init__(self, store: Store, workdir: Optional[str] = None, python: str = sys.executable,
                 stop_grace: float = DEFAULT_STOP_GRACE, poll_interval: float = DEFAULT_POLL_INTERVAL,
                 log_poll_interval: float = DEFAULT_LOG_POLL_INTERVAL, region: str = LOCAL_REGION,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, paths: Optional[str] = None,
                 registry: Optional[Registry] = None) -> None:
        self.store = store
        self.paths = isolation.requested(paths)
        self.registry = registry
        self.workdir = workdir
        self.python = python
        self.stop_grace = stop_grace
        self.poll_interval = poll_interval
        self.log_poll_interval = log_poll_interval
        self.region = region
        self.clock = clock
        self.sleep = sleep
        self._jobs: Dict[Tuple[str, str], Job] = {}
        self._lock = threading.Lock()
        _LIVE_BACKENDS.add(self)
        if workdir:
            sweep(workdir)  # job folders of launches that were killed (the temp folder is swept at launch)

    # --- the Backend protocol --------------------------------------------------------------

    def create(self, kind: str, request: Dict[str, Any]) -> None:
        """Start the job in a background thread and return at once (status ``InProgress``).

        :raises AwsError: (``ValidationException``) the request has no job name, or
            a ``MetricDefinitions`` regex does not compile.
        :raises JobExists: a job of this kind with this name was already created.
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be {PROCESSING!r} or {TRAINING!r}, not {kind!r}")
        name = request.get(NAME_KEY[kind])
        if not name:
            raise AwsError(f"the request has no {NAME_KEY[kind]}", code="ValidationException")
        job = Job(kind, str(name), copy.deepcopy(request), self.region, _metric_tracker(request))
        with self._lock:
            if (kind, job.name) in self._jobs:
                raise JobExists(kind, job.name)
            self._jobs[(kind, job.name)] = job
        (self.registry or Registry()).attach(job, _full_description, self.store)
        job.thread = threading.Thread(target=self._run, args=(job,), name=f"local-{kind}-{job.name}", daemon=True)
        job.thread.start()

    def describe(self, kind: str, job_name: str) -> Dict[str, Any]:
        """The ``DescribeProcessingJob`` / ``DescribeTrainingJob`` response for the job."""
        job = self._job(kind, job_name)
        with job.lock:
            return _full_description(job)

    def stop(self, kind: str, job_name: str) -> None:
        """Ask the job to stop: SIGTERM now, SIGKILL after the grace period; ends ``Stopped``.

        Stopping a job that already ended does nothing.
        """
        self._job(kind, job_name).request_stop()

    def logs(self, kind: str, job_name: str, cursor: LogCursor) -> List[LogEvent]:
        """Log events of every instance since ``cursor``, oldest first; advances ``cursor``."""
        job = self._job(kind, job_name)
        positions = cursor.state.setdefault("local", {})
        key = f"{kind}/{job_name}"
        with job.lock:
            start = positions.get(key, 0)
            new = job.events[start:]
            positions[key] = len(job.events)
        return new

    def console_url(self, kind: str, job_name: str) -> Optional[str]:
        """Local jobs have no console."""
        return None

    def log_locations(self, kind: str, job_name: str) -> List[str]:
        """Where the job's whole log is kept after it ended: its events file under the tool's home."""
        return [os.path.join((self.registry or Registry()).folder(kind, job_name), EVENTS_FILE)]

    # --- life of the interpreter ----------------------------------------------------------------

    def kill_all(self) -> None:
        """SIGKILL every process of every running job (used when the interpreter exits)."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.stop_event.set()
            for instance in job.instances:
                kill_group(instance, signal.SIGKILL)

    def _job(self, kind: str, job_name: str) -> Job:
        with self._lock:
            job = self._jobs.get((kind, job_name))
        if job is None:
            raise JobNotFound(kind, job_name)
        return job

    # --- running a job ------------------------------------------------------------------------

    def _settings(self) -> Settings:
        return Settings(store=self.store, python=self.python, stop_grace=self.stop_grace, region=self.region,
                        clock=self.clock, sleep=self.sleep)

    def _run(self, job: Job) -> None:
        """The job's thread: folders, the kind's run, clean-up, then the final status."""
        hooks = KINDS[job.kind]
        try:
            if self.workdir:
                os.makedirs(self.workdir, exist_ok=True)
            # named after this process, so the next start removes it if this one is killed
            # (kept folders, for inspection, are never removed)
            keep = os.environ.get(KEEP_ENV) == "1"
            job.job_dir = tempfile.mkdtemp(prefix=f"{job.name}-" if keep else owned_prefix("job", job.name),
                                           dir=self.workdir)
            job.instances = [Instance(i, job.job_dir) for i in range(hooks.instance_count(job.request))]
            try:
                namespaces = isolation.use_namespaces(self.paths, self.python, job.job_dir)
            except isolation.IsolationError as exc:
                raise JobError(f"ClientError: {exc}") from None
            hooks.run(dataclasses.replace(self._settings(), namespaces=namespaces), job)
        except JobError as exc:
            job.finish("Failed", exc.reason)
        except Exception as exc:  # noqa: BLE001 - a job ends Failed, it never kills the caller
            job.add_line("algo-1", "local backend error: " + "".join(
                traceback.format_exception_only(type(exc), exc)).strip())
            job.finish("Failed", f"InternalServerError: the local backend failed: {exc}")
        finally:
            for instance in job.instances:
                kill_group(instance, signal.SIGKILL)
            if job.job_dir and os.environ.get(KEEP_ENV) != "1":
                shutil.rmtree(job.job_dir, ignore_errors=True)
                job.job_dir = None
            # only now does the job look finished: a launcher that exits when it sees the final
            # status must not cut the clean-up short (this thread is a daemon)
            job.publish(*(job.outcome or ("Failed", "InternalServerError: the job ended without a status", None)))


def _full_description(job: Job) -> Dict[str, Any]:
    """The job's whole ``Describe*Job`` response; call with ``job.lock`` held."""
    response = job.describe()
    response.update(KINDS[job.kind].describe_extras(job))
    return response


def _metric_tracker(request: Mapping[str, Any]) -> MetricTracker:
    """The tracker of a training request's ``MetricDefinitions`` (an empty one for processing).

    :raises AwsError: a definition's regex does not compile (SageMaker refuses it
        with ValidationException when the job is created).
    """
    definitions = (request.get("AlgorithmSpecification") or {}).get("MetricDefinitions") or []
    try:
        return MetricTracker([(str(d.get("Name", "")), str(d.get("Regex", ""))) for d in definitions])
    except ValueError as exc:
        raise AwsError(f"MetricDefinitions: {exc}", code="ValidationException") from None
