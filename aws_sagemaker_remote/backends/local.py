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
   instance, concurrently, with ``/opt/ml`` paths in the arguments moved into
   the instance's folder, and record their output as log events;
4. upload what SageMaker uploads (processing outputs, ``model.tar.gz``,
   ``output.tar.gz``, checkpoints) and report statuses in ``Describe*Job`` form.

Every difference from SageMaker is listed in ``docs/local-backend.rst``.
POSIX only: stopping relies on process groups.
"""
from __future__ import annotations

import atexit
import copy
import datetime as _dt
import gzip
import json
import os
import posixpath
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import traceback
import weakref
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .. import bootstrap
from ..container import OPT_ML, ROOT_ENV, ContainerPaths
from ..errors import AwsError, UsageError
from ..store import Store, iter_files, manifest_objects, prefix_objects, split_uri, upload_folder
from ..watch import MetricTracker
from .base import NAME_KEY, PROCESSING, STATUS_KEY, TERMINAL_STATUSES, TRAINING, LogCursor, LogEvent

#: Seconds between status polls of the watch code.
DEFAULT_POLL_INTERVAL = 0.1
#: Seconds between log reads of the watch code (reading the local logs costs nothing).
DEFAULT_LOG_POLL_INTERVAL = 0.1
#: Seconds a stopped job gets between SIGTERM and SIGKILL (SageMaker gives 120).
DEFAULT_STOP_GRACE = 20.0
#: Set to 1 to keep each job's temporary container folders for inspection.
KEEP_ENV = "AWS_SAGEMAKER_REMOTE_KEEP"
#: Account and region of local runs with no AWS configured, and of the ARNs the
#: local backend makes up; a real region name, so that those ARNs are well-formed.
LOCAL_ACCOUNT = "000000000000"
LOCAL_REGION = "us-east-1"
#: SageMaker truncates ``FailureReason`` and ``ExitMessage`` to 1 KiB.
REASON_LIMIT = 1024
#: ``SecondaryStatus`` / reason used when ``MaxRuntimeInSeconds`` is exceeded.
MAX_RUNTIME_EXCEEDED = "MaxRuntimeExceeded"

# Interpreter names in ContainerEntrypoint that mean "the image's Python".
_PYTHON_NAMES = re.compile(r"^(?:.*/)?python(?:3(?:\.\d+)?)?$")


class JobNotFound(AwsError, KeyError):
    """``describe``/``stop``/``logs`` of a job this backend never created (SageMaker: ValidationException)."""

    def __init__(self, kind: str, job_name: str) -> None:
        super().__init__(f"Could not find {kind} job '{job_name}'", code="ValidationException")
        self.kind = kind
        self.job_name = job_name


class JobExists(AwsError):
    """``create`` with a name already used (SageMaker: ResourceInUse)."""

    def __init__(self, kind: str, job_name: str) -> None:
        super().__init__(f"A {kind} job named '{job_name}' already exists", code="ResourceInUse")


class _JobError(Exception):
    """Ends the job ``Failed`` with ``reason`` before any instance ran (bad input, unsupported feature)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _truncate(text: str) -> str:
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 3] + "..."


class _Instance:
    """One emulated instance: its container filesystem and its process."""

    def __init__(self, index: int, job_dir: str) -> None:
        self.host = f"algo-{index + 1}"
        self.index = index
        #: plays the container's "/"
        self.fs_root = os.path.join(job_dir, self.host)
        #: plays "/opt/ml"
        self.paths = ContainerPaths(self.fs_root + OPT_ML)
        self.process: Optional[subprocess.Popen] = None
        self.reader: Optional[threading.Thread] = None
        self.exit_code: Optional[int] = None

    def local(self, container_path: str) -> str:
        """Where an absolute container path lives on this machine."""
        return self.fs_root + posixpath.normpath("/" + container_path.lstrip("/"))


class _Job:
    """Everything the backend knows about one job; fields change under ``lock``."""

    def __init__(self, kind: str, name: str, request: Dict[str, Any], region: str,
                 metrics: MetricTracker) -> None:
        self.kind = kind
        self.name = name
        self.request = request
        self.region = region
        self.lock = threading.Lock()
        self.created = _now()
        self.modified = self.created
        self.started: Optional[_dt.datetime] = None
        self.ended: Optional[_dt.datetime] = None
        self.status = "InProgress"
        self.secondary = "Starting"
        self.transitions: List[Dict[str, Any]] = [
            {"Status": "Starting", "StartTime": self.created, "StatusMessage": "Preparing the instances"}]
        self.failure_reason: Optional[str] = None
        self.exit_message: Optional[str] = None
        self.model_artifacts: Optional[str] = None
        self.events: List[LogEvent] = []
        self.last_timestamp = 0
        #: metric name → (last value, time of the line it came from), for FinalMetricDataList
        self.metrics: Dict[str, Tuple[float, _dt.datetime]] = {}
        self.metric_tracker = metrics
        self.stop_event = threading.Event()
        #: the final (status, reason, exit message), published once the job's folders are gone
        self.outcome: Optional[Tuple[str, Optional[str], Optional[str]]] = None
        self.stop_reason: Optional[str] = None
        self.instances: List[_Instance] = []
        self.job_dir: Optional[str] = None
        self.thread: Optional[threading.Thread] = None

    @property
    def arn(self) -> str:
        kind = "processing-job" if self.kind == PROCESSING else "training-job"
        return f"arn:aws:sagemaker:{self.region}:{LOCAL_ACCOUNT}:{kind}/{self.name.lower()}"

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def set_secondary(self, status: str, message: str) -> None:
        with self.lock:
            now = _now()
            if self.transitions and "EndTime" not in self.transitions[-1]:
                self.transitions[-1]["EndTime"] = now
            self.secondary = status
            self.transitions.append({"Status": status, "StartTime": now, "StatusMessage": message})
            self.modified = now

    def add_line(self, host: str, message: str) -> None:
        with self.lock:
            # never go back in time, so events stay sorted across hosts
            stamp = max(int(time.time() * 1000), self.last_timestamp)
            self.last_timestamp = stamp
            self.events.append(LogEvent(timestamp=stamp, host=host, message=message))
            found = self.metric_tracker.match(message)
            if found:
                when = _dt.datetime.fromtimestamp(stamp / 1000, _dt.timezone.utc)
                for metric, value in found.items():
                    self.metrics[metric] = (value, when)


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
    and the logs.
    """

    name = "local"

    def __init__(self, store: Store, workdir: Optional[str] = None, python: str = sys.executable,
                 stop_grace: float = DEFAULT_STOP_GRACE, poll_interval: float = DEFAULT_POLL_INTERVAL,
                 log_poll_interval: float = DEFAULT_LOG_POLL_INTERVAL, region: str = LOCAL_REGION) -> None:
        self.store = store
        self.workdir = workdir
        self.python = python
        self.stop_grace = stop_grace
        self.poll_interval = poll_interval
        self.log_poll_interval = log_poll_interval
        self.region = region
        self._jobs: Dict[Tuple[str, str], _Job] = {}
        self._lock = threading.Lock()
        _LIVE_BACKENDS.add(self)

    # --- the Backend protocol --------------------------------------------------------------

    def create(self, kind: str, request: Dict[str, Any]) -> None:
        """Start the job in a background thread and return at once (status ``InProgress``).

        :raises AwsError: (``ValidationException``) the request has no job name, or
            a ``MetricDefinitions`` regex does not compile.
        :raises JobExists: a job of this kind with this name was already created.
        """
        if kind not in (PROCESSING, TRAINING):
            raise ValueError(f"kind must be {PROCESSING!r} or {TRAINING!r}, not {kind!r}")
        name = request.get(NAME_KEY[kind])
        if not name:
            raise AwsError(f"the request has no {NAME_KEY[kind]}", code="ValidationException")
        job = _Job(kind, str(name), copy.deepcopy(request), self.region, _metric_tracker(request))
        with self._lock:
            if (kind, job.name) in self._jobs:
                raise JobExists(kind, job.name)
            self._jobs[(kind, job.name)] = job
        job.thread = threading.Thread(target=self._run, args=(job,), name=f"local-{kind}-{job.name}", daemon=True)
        job.thread.start()

    def describe(self, kind: str, job_name: str) -> Dict[str, Any]:
        """The ``DescribeProcessingJob`` / ``DescribeTrainingJob`` response for the job."""
        job = self._job(kind, job_name)
        with job.lock:
            response = copy.deepcopy(job.request)
            response.pop("Tags", None)  # Describe*Job does not return tags
            response[STATUS_KEY[kind]] = job.status
            response["CreationTime"] = job.created
            response["LastModifiedTime"] = job.modified
            if job.failure_reason:
                response["FailureReason"] = job.failure_reason
            if kind == PROCESSING:
                response["ProcessingJobArn"] = job.arn
                if job.started:
                    response["ProcessingStartTime"] = job.started
                if job.ended:
                    response["ProcessingEndTime"] = job.ended
                if job.exit_message:
                    response["ExitMessage"] = job.exit_message
            else:
                response["TrainingJobArn"] = job.arn
                response["SecondaryStatus"] = job.secondary
                response["SecondaryStatusTransitions"] = copy.deepcopy(job.transitions)
                if job.started:
                    response["TrainingStartTime"] = job.started
                if job.ended:
                    response["TrainingEndTime"] = job.ended
                    if job.started:
                        response["TrainingTimeInSeconds"] = int((job.ended - job.started).total_seconds())
                if job.model_artifacts:
                    response["ModelArtifacts"] = {"S3ModelArtifacts": job.model_artifacts}
                if job.metrics:
                    response["FinalMetricDataList"] = [
                        {"MetricName": metric, "Value": value, "Timestamp": stamp}
                        for metric, (value, stamp) in sorted(job.metrics.items())
                    ]
        return response

    def stop(self, kind: str, job_name: str) -> None:
        """Ask the job to stop: SIGTERM now, SIGKILL after the grace period; ends ``Stopped``.

        Stopping a job that already ended does nothing.
        """
        job = self._job(kind, job_name)
        with job.lock:
            if job.done or job.stop_event.is_set():
                return
            job.stop_reason = job.stop_reason or "Stopped"
            job.status = "Stopping"
            job.modified = _now()
        if kind == TRAINING:
            job.set_secondary("Stopping", "Stopping the training job")
        job.stop_event.set()

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

    # --- extras -----------------------------------------------------------------------------

    def wait(self, kind: str, job_name: str, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Block until the job ends (or ``timeout`` seconds pass); returns its description."""
        job = self._job(kind, job_name)
        if job.thread is not None:
            job.thread.join(timeout)
        return self.describe(kind, job_name)

    def job_dir(self, kind: str, job_name: str) -> Optional[str]:
        """The folder holding the job's instances (``algo-1/opt/ml`` ...), while it exists."""
        return self._job(kind, job_name).job_dir

    def kill_all(self) -> None:
        """SIGKILL every process of every running job (used when the interpreter exits)."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.stop_event.set()
            for instance in job.instances:
                _kill_group(instance, signal.SIGKILL)

    def _job(self, kind: str, job_name: str) -> _Job:
        with self._lock:
            job = self._jobs.get((kind, job_name))
        if job is None:
            raise JobNotFound(kind, job_name)
        return job

    # --- running a job ------------------------------------------------------------------------

    def _run(self, job: _Job) -> None:
        try:
            if self.workdir:
                os.makedirs(self.workdir, exist_ok=True)
            job.job_dir = tempfile.mkdtemp(prefix=f"{job.name}-", dir=self.workdir)
            count = int(self._resources(job).get("InstanceCount", 1) or 1)
            job.instances = [_Instance(i, job.job_dir) for i in range(count)]
            if job.kind == TRAINING:
                self._run_training(job)
            else:
                self._run_processing(job)
        except _JobError as exc:
            self._finish(job, "Failed", exc.reason)
        except Exception as exc:  # noqa: BLE001 - a job ends Failed, it never kills the caller
            job.add_line("algo-1", "local backend error: " + "".join(
                traceback.format_exception_only(type(exc), exc)).strip())
            self._finish(job, "Failed", f"InternalServerError: the local backend failed: {exc}")
        finally:
            for instance in job.instances:
                _kill_group(instance, signal.SIGKILL)
            if job.job_dir and os.environ.get(KEEP_ENV) != "1":
                shutil.rmtree(job.job_dir, ignore_errors=True)
                job.job_dir = None
            # only now does the job look finished: a launcher that exits when it sees the final
            # status must not cut the clean-up short (this thread is a daemon)
            self._publish(job, *(job.outcome or ("Failed", "InternalServerError: the job ended without a status",
                                                 None)))

    @staticmethod
    def _resources(job: _Job) -> Mapping[str, Any]:
        if job.kind == PROCESSING:
            return job.request.get("ProcessingResources", {}).get("ClusterConfig", {})
        return job.request.get("ResourceConfig", {})

    def _finish(self, job: _Job, status: str, reason: Optional[str] = None,
                exit_message: Optional[str] = None) -> None:
        """Record the job's outcome; :meth:`_run` publishes it after cleaning up."""
        job.outcome = (status, reason, exit_message)

    def _publish(self, job: _Job, status: str, reason: Optional[str] = None,
                 exit_message: Optional[str] = None) -> None:
        if job.kind == TRAINING:
            secondary = MAX_RUNTIME_EXCEEDED if job.stop_reason == MAX_RUNTIME_EXCEEDED else status
            job.set_secondary(secondary, reason or f"Training job {status.lower()}")
        with job.lock:
            if job.transitions and "EndTime" not in job.transitions[-1]:
                job.transitions[-1]["EndTime"] = _now()
            job.status = status
            job.failure_reason = _truncate(reason) if reason else None
            if exit_message:
                job.exit_message = _truncate(exit_message)
            job.ended = job.modified = _now()

    def _stopped_early(self, job: _Job) -> bool:
        """True (and the job is finished Stopped) when a stop arrived before the processes started."""
        if not job.stop_event.is_set():
            return False
        self._finish(job, "Stopped", self._stop_reason_text(job))
        return True

    def _stop_reason_text(self, job: _Job) -> Optional[str]:
        if job.stop_reason == MAX_RUNTIME_EXCEEDED:
            limit = job.request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
            return f"{MAX_RUNTIME_EXCEEDED}: the job ran longer than MaxRuntimeInSeconds={limit}"
        return None

    # --- inputs ------------------------------------------------------------------------------

    def _objects(self, uri: str, data_type: str) -> List[Tuple[str, str, int]]:
        try:
            if data_type == "S3Prefix":
                return prefix_objects(self.store, uri)
            if data_type == "ManifestFile":
                return manifest_objects(self.store, uri)
        except Exception as exc:  # noqa: BLE001 - missing objects, bad manifests and botocore errors alike
            raise _JobError(f"ClientError: cannot read input {uri}: {exc}") from exc
        raise _JobError(f"ClientError: S3DataType {data_type} is not supported by the local backend")

    def _fetch(self, job: _Job, instance: _Instance, uri: str, data_type: str, distribution: str,
               gzipped: bool, dest: str, required: bool = True) -> None:
        """Download the objects an input names into ``dest``, as SageMaker does for ``instance``.

        An input (``required``) that names no object fails the job before anything
        runs, as on SageMaker; a checkpoint prefix may be empty (a first run).
        """
        objects = sorted(self._objects(uri, data_type))
        if not objects and required:
            raise _JobError(self._no_objects_reason(job, uri, data_type))
        if distribution == "ShardedByS3Key":
            objects = objects[instance.index::len(job.instances)]
        os.makedirs(dest, exist_ok=True)
        from ..safepath import UnsafePath, local_path

        try:  # every key is checked before the first download, so a refused input writes nothing
            targets = [(obj_uri, local_path(dest, rel)) for obj_uri, rel, _size in objects]
        except UnsafePath as exc:
            raise _JobError(f"ClientError: refusing to download {uri}: {exc}") from None
        for obj_uri, target in targets:
            try:
                self.store.download_file(obj_uri, target)
            except Exception as exc:  # noqa: BLE001 - as above
                raise _JobError(f"ClientError: cannot download {obj_uri}: {exc}") from exc
            if gzipped:
                _gunzip_in_place(target)

    def _no_objects_reason(self, job: _Job, uri: str, data_type: str) -> str:
        """SageMaker's FailureReason for an input with no objects (its wording, cut to the essentials)."""
        bucket = split_uri(uri)[0]
        where = "in the manifest file" if data_type == "ManifestFile" else "under S3 URL"
        return (f'ClientError: No S3 objects found {where} "{uri}" given in input data source. Please ensure '
                f"that the bucket exists in the selected region ({self.region}), that objects exist under that "
                f'S3 prefix, and that the role "{job.request.get("RoleArn", "")}" has "s3:ListBucket" '
                f'permissions on bucket "{bucket}".')

    # --- processing ------------------------------------------------------------------------------

    def _run_processing(self, job: _Job) -> None:
        request = job.request
        hosts = [i.host for i in job.instances]
        for instance in job.instances:
            for item in request.get("ProcessingInputs", []) or []:
                source = item.get("S3Input")
                if not source:
                    raise _JobError(f"ClientError: input {item.get('InputName')}: only S3Input is supported "
                                    "by the local backend")
                self._fetch(job, instance, source["S3Uri"], source.get("S3DataType", "S3Prefix"),
                            source.get("S3DataDistributionType", "FullyReplicated"),
                            source.get("S3CompressionType", "None") == "Gzip",
                            instance.local(source["LocalPath"]))
            for output in _processing_outputs(request):
                os.makedirs(instance.local(output["S3Output"]["LocalPath"]), exist_ok=True)
            config = {k: v for k, v in copy.deepcopy(request).items() if k != "Tags"}
            config["ProcessingJobArn"] = job.arn
            _write_json(instance.paths.processing_job_config, config)
            _write_json(instance.paths.processing_resource_config, {"current_host": instance.host, "hosts": hosts})
        if self._stopped_early(job):
            return
        app = request.get("AppSpecification", {})
        self._execute(job, app.get("ContainerEntrypoint"), app.get("ContainerArguments"), {})
        failed = [i for i in job.instances if i.exit_code != 0]
        first = (failed or job.instances)[0]
        message = _read_text(first.paths.processing_failure)
        if job.stop_event.is_set():
            self._finish(job, "Stopped", self._stop_reason_text(job), message)
        elif failed:
            self._finish(job, "Failed", "AlgorithmError: " + (message or f"Exit code {first.exit_code}"), message)
        else:
            # SageMaker uploads each output once the job succeeded; every instance
            # uploads under the same prefix, so equal file names overwrite (algo-N last)
            for instance in job.instances:
                for output in _processing_outputs(request):
                    self._upload(f"output {output.get('OutputName')}", upload_folder, self.store,
                                 instance.local(output["S3Output"]["LocalPath"]), output["S3Output"]["S3Uri"])
            self._finish(job, "Completed", None, message)

    # --- training --------------------------------------------------------------------------------

    def _run_training(self, job: _Job) -> None:
        request = job.request
        algorithm = request.get("AlgorithmSpecification", {})
        default_mode = algorithm.get("TrainingInputMode", "File")
        channels = request.get("InputDataConfig", []) or []
        hosts = [i.host for i in job.instances]
        checkpoint = request.get("CheckpointConfig")
        job.set_secondary("Downloading", "Downloading input data")
        for instance in job.instances:
            paths = instance.paths
            data_config: Dict[str, Dict[str, str]] = {}
            for channel in channels:
                name = channel["ChannelName"]
                source = channel.get("DataSource", {}).get("S3DataSource")
                if not source:
                    raise _JobError(f"ClientError: channel {name}: only S3DataSource is supported by the "
                                    "local backend")
                distribution = source.get("S3DataDistributionType", "FullyReplicated")
                self._fetch(job, instance, source["S3Uri"], source.get("S3DataType", "S3Prefix"), distribution,
                            channel.get("CompressionType", "None") == "Gzip", paths.training_channel(name))
                entry = {
                    "TrainingInputMode": channel.get("InputMode") or default_mode,
                    "S3DistributionType": distribution,
                    "RecordWrapperType": channel.get("RecordWrapperType", "None"),
                }
                if channel.get("ContentType"):
                    entry["ContentType"] = channel["ContentType"]
                data_config[name] = entry
            _write_json(paths.hyperparameters, request.get("HyperParameters") or {})
            _write_json(paths.input_data_config, data_config)
            _write_json(paths.training_resource_config, {
                "current_host": instance.host,
                "current_instance_type": request.get("ResourceConfig", {}).get("InstanceType", ""),
                "current_group_name": "homogeneousCluster",
                "hosts": hosts,
                "instance_groups": [{
                    "instance_group_name": "homogeneousCluster",
                    "instance_type": request.get("ResourceConfig", {}).get("InstanceType", ""),
                    "hosts": hosts,
                }],
                "network_interface_name": "eth0",
            })
            for folder in (paths.model_dir, paths.output_data_dir):
                os.makedirs(folder, exist_ok=True)
            if checkpoint:
                # every instance starts from what the last run left in S3
                local = instance.local(checkpoint.get("LocalPath") or ContainerPaths().checkpoints)
                self._fetch(job, instance, checkpoint["S3Uri"].rstrip("/") + "/", "S3Prefix", "FullyReplicated",
                            False, local, required=False)
        if self._stopped_early(job):
            return
        job.set_secondary("Training", "Training image download completed. Training in progress.")
        environment = {"TRAINING_JOB_NAME": job.name, "TRAINING_JOB_ARN": job.arn}
        self._execute(job, algorithm.get("ContainerEntrypoint"), algorithm.get("ContainerArguments"), environment)
        failed = [i for i in job.instances if i.exit_code != 0]
        first = (failed or job.instances)[0]
        stopped = job.stop_event.is_set()
        job.set_secondary("Uploading", "Uploading generated training model")
        leader = job.instances[0]
        if checkpoint:
            # also after a failure or a stop: a restarted job resumes from here
            local = leader.local(checkpoint.get("LocalPath") or ContainerPaths().checkpoints)
            self._upload("checkpoints", upload_folder, self.store, local, checkpoint["S3Uri"])
        if not failed or stopped:
            # SageMaker keeps what the script saved in the SIGTERM grace period of a stop
            base = request["OutputDataConfig"]["S3OutputPath"].rstrip("/") + f"/{job.name}/output"
            scratch = job.job_dir or ""
            self._upload("model.tar.gz", self._upload_tarball, leader.paths.model_dir, base + "/model.tar.gz",
                         scratch)
            self._upload("output.tar.gz", self._upload_tarball, leader.paths.output_data_dir,
                         base + "/output.tar.gz", scratch)
            with job.lock:
                job.model_artifacts = base + "/model.tar.gz"
        if stopped:
            self._finish(job, "Stopped", self._stop_reason_text(job))
        elif failed:
            message = _read_text(first.paths.training_failure)
            self._finish(job, "Failed", "AlgorithmError: " + (message or f"Exit code {first.exit_code}"))
        else:
            self._finish(job, "Completed")

    @staticmethod
    def _upload(what: str, step: Callable[..., Any], *args: Any) -> None:
        """Run an upload step; a store error fails the job as SageMaker reports it (a client error)."""
        try:
            step(*args)
        except Exception as exc:  # noqa: BLE001 - botocore and OS errors alike end the job Failed
            raise _JobError(f"ClientError: cannot upload {what}: {exc}") from exc

    def _upload_tarball(self, folder: str, uri: str, scratch: str) -> None:
        fd, path = tempfile.mkstemp(suffix=".tar.gz", dir=scratch or None)
        os.close(fd)
        try:
            with tarfile.open(path, "w:gz") as tar:
                for full, rel in iter_files(folder):
                    tar.add(full, arcname=rel, recursive=False)
            self.store.upload_file(path, uri)
        finally:
            os.unlink(path)

    # --- processes ----------------------------------------------------------------------------

    def _command(self, instance: _Instance, entrypoint: Optional[Sequence[str]],
                 arguments: Optional[Sequence[str]]) -> List[str]:
        if not entrypoint:
            raise _JobError("ClientError: the local backend runs ContainerEntrypoint + ContainerArguments; this "
                            "request has no ContainerEntrypoint (running the image's own entrypoint needs Docker)")
        default = ContainerPaths()
        command = [default.relocate(arg, instance.paths.root) for arg in list(entrypoint) + list(arguments or [])]
        if _PYTHON_NAMES.match(command[0]):
            command[0] = self.python
        return command

    def _environment(self, job: _Job, instance: _Instance, extra: Mapping[str, str]) -> Dict[str, str]:
        # The job runs as the current user: AWS credentials and AWS_ENDPOINT_URL stay,
        # so a script reaches the same endpoint (moto, LocalStack, your account) as the launcher.
        env = dict(os.environ)
        default = ContainerPaths()
        # container paths in the request's variables move with the instance, like the arguments
        env.update({str(k): default.relocate(str(v), instance.paths.root)
                    for k, v in (job.request.get("Environment") or {}).items()})
        env.update(extra)
        if job.kind == TRAINING:
            env.update(bootstrap.training_environment(instance.paths))
            env["SM_NUM_GPUS"] = "0"
        env[ROOT_ENV] = instance.paths.root
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def _execute(self, job: _Job, entrypoint: Optional[Sequence[str]], arguments: Optional[Sequence[str]],
                 extra: Mapping[str, str]) -> None:
        """Run every instance's process concurrently until all end, honouring stop and MaxRuntime."""
        commands = [(i, self._command(i, entrypoint, arguments)) for i in job.instances]
        with job.lock:
            job.started = job.modified = _now()
        for instance, command in commands:
            if job.stop_event.is_set():
                break
            try:
                instance.process = subprocess.Popen(
                    command, cwd=instance.fs_root, env=self._environment(job, instance, extra),
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    start_new_session=True)  # its own process group: stop reaches every child
            except OSError as exc:
                raise _JobError(f"ClientError: cannot start {command[0]}: {exc}") from exc
            instance.reader = threading.Thread(target=_read_lines, args=(job, instance),
                                               name=f"local-log-{job.name}-{instance.host}", daemon=True)
            instance.reader.start()
        max_runtime = job.request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
        deadline = time.monotonic() + float(max_runtime) if max_runtime else None
        term_sent: Optional[float] = None
        running = [i for i in job.instances if i.process is not None]
        while running:
            for instance in list(running):
                if _reap(instance):
                    running.remove(instance)
            if not running:
                break
            now = time.monotonic()
            if deadline is not None and now > deadline and not job.stop_event.is_set():
                with job.lock:
                    job.stop_reason = MAX_RUNTIME_EXCEEDED
                    job.status = "Stopping"
                job.stop_event.set()
            if job.stop_event.is_set():
                if term_sent is None:
                    term_sent = now
                    for instance in running:
                        # like SageMaker, SIGTERM goes to the container's first process
                        _signal(instance, signal.SIGTERM)
                elif now - term_sent > self.stop_grace:
                    for instance in running:
                        _kill_group(instance, signal.SIGKILL)
            if job.stop_event.is_set():
                time.sleep(0.02)
            else:
                job.stop_event.wait(0.05)
        for instance in job.instances:
            if instance.reader is not None:
                instance.reader.join(5)
        for instance in job.instances:
            if instance.process is None and instance.exit_code is None:
                instance.exit_code = 128 + signal.SIGTERM  # never started: the job was stopped first


def _metric_tracker(request: Mapping[str, Any]) -> MetricTracker:
    """The tracker of a training request's ``MetricDefinitions`` (an empty one for processing).

    :raises AwsError: a definition's regex does not compile (SageMaker refuses it
        with ValidationException when the job is created).
    """
    definitions = (request.get("AlgorithmSpecification") or {}).get("MetricDefinitions") or []
    try:
        return MetricTracker([(str(d.get("Name", "")), str(d.get("Regex", ""))) for d in definitions])
    except UsageError as exc:
        # The message starts with the launcher's flag, which means nothing in a request.
        reason = exc.message[len(exc.flag) + 2:] if exc.flag and exc.message.startswith(exc.flag) else exc.message
        raise AwsError(f"MetricDefinitions: {reason}", code="ValidationException") from None


def _processing_outputs(request: Mapping[str, Any]) -> List[Dict[str, Any]]:
    config = request.get("ProcessingOutputConfig") or {}
    return [o for o in config.get("Outputs", []) or [] if o.get("S3Output")]


def _read_lines(job: _Job, instance: _Instance) -> None:
    """Turn an instance's output into log events, one per line."""
    process = instance.process
    assert process is not None and process.stdout is not None
    for raw in iter(process.stdout.readline, b""):
        job.add_line(instance.host, raw.decode("utf-8", "replace").rstrip("\r\n"))
    process.stdout.close()


def _reap(instance: _Instance) -> bool:
    """True once the instance's first process has ended; then whatever it left running is killed.

    When a container's first process exits, the container and everything in it
    ends; here, the process group is killed before the first process is reaped,
    so its id cannot have been reused by an unrelated process.
    """
    process = instance.process
    if process is None or instance.exit_code is not None:
        return True
    waitid = getattr(os, "waitid", None)
    if waitid is not None:
        try:
            finished = waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            finished = True
        if not finished:
            return False
        _kill_group(instance, signal.SIGKILL)
        code = process.wait()
    else:
        polled = process.poll()
        if polled is None:
            return False
        code = polled
        _kill_group(instance, signal.SIGKILL)
    instance.exit_code = 128 - code if code < 0 else code
    return True


def _signal(instance: _Instance, signum: int) -> None:
    process = instance.process
    if process is not None and process.returncode is None:
        try:
            process.send_signal(signum)
        except OSError:
            pass


def _kill_group(instance: _Instance, signum: int) -> None:
    """Signal the instance's whole process group, unless it was already reaped and cleaned up.

    After :func:`_reap` the group is gone and its id may belong to someone else.
    """
    process = instance.process
    if process is None or instance.exit_code is not None:
        return
    try:
        os.killpg(process.pid, signum)
    except OSError:
        pass


def _gunzip_in_place(path: str) -> None:
    """``Gzip`` inputs arrive decompressed; a trailing ``.gz`` is dropped from the name."""
    target = path[:-3] if path.endswith(".gz") else path
    tmp = target + ".gunzip"
    try:
        with gzip.open(path, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except (OSError, EOFError) as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise _JobError(f"ClientError: {os.path.basename(path)} is not gzip data: {exc}") from exc
    os.replace(tmp, target)
    if target != path:
        os.unlink(path)


def _write_json(path: str, data: Any) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, default=str)


def _read_text(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read().strip()
    except OSError:
        return None
    return text or None
