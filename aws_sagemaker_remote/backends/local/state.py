"""What the local backend knows about a job: its instances, statuses, log events and outcome.

A :class:`Job` changes under its ``lock``, from the job's own thread (the
run), the reader threads (log lines) and the caller's (``stop``). Its
status moves ``InProgress`` → (``Stopping``) → ``Completed`` / ``Failed`` /
``Stopped``; the final status is *published* only after the job's folders
are removed (see :meth:`Job.publish`). :meth:`Job.describe` builds the part
of the ``Describe*Job`` response both job kinds share.
"""
from __future__ import annotations

import copy
import datetime as _dt
import os
import posixpath
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from ...container import OPT_ML, ContainerPaths
from ...metrics import MetricTracker
from ...store import Store
from ..base import STATUS_KEY, TERMINAL_STATUSES, LogEvent

#: Account and region of local runs with no AWS configured, and of the ARNs the
#: local backend makes up; a real region name, so that those ARNs are well-formed.
LOCAL_ACCOUNT = "000000000000"
LOCAL_REGION = "us-east-1"
#: SageMaker truncates ``FailureReason`` and ``ExitMessage`` to 1 KiB.
REASON_LIMIT = 1024
#: ``SecondaryStatus`` / reason used when ``MaxRuntimeInSeconds`` is exceeded.
MAX_RUNTIME_EXCEEDED = "MaxRuntimeExceeded"

#: A final (status, failure reason, exit message).
Outcome = Tuple[str, Optional[str], Optional[str]]


@dataclass(frozen=True)
class Settings:
    """What running a job needs from the backend's configuration.

    ``clock`` (seconds, monotonic) measures ``MaxRuntimeInSeconds`` and the stop
    grace period; ``sleep`` is the pause between two looks at the running
    processes. Both are real time unless a test injects its own. ``namespaces``
    says the instances see their folder at ``/opt/ml`` itself (see
    :mod:`.isolation`); otherwise ``/opt/ml`` is relocated.
    """

    store: Store
    python: str
    stop_grace: float
    region: str
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    namespaces: bool = False


class JobError(Exception):
    """Ends the job ``Failed`` with ``reason`` before any instance ran (bad input, unsupported feature)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def now() -> _dt.datetime:
    """The wall-clock time of a status change, timezone-aware like boto3's."""
    return _dt.datetime.now(_dt.timezone.utc)


def truncate(text: str) -> str:
    """``text`` cut to :data:`REASON_LIMIT` characters, as SageMaker cuts reasons and messages."""
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 3] + "..."


class Instance:
    """One emulated instance: its container filesystem and its process."""

    def __init__(self, index: int, job_dir: str) -> None:
        self.host = f"algo-{index + 1}"
        self.index = index
        #: plays the container's "/"
        self.fs_root = os.path.join(job_dir, self.host)
        #: plays "/opt/ml"
        self.paths = ContainerPaths(self.fs_root + OPT_ML)
        self.process: Optional["subprocess.Popen[bytes]"] = None
        self.reader: Optional[threading.Thread] = None
        self.exit_code: Optional[int] = None

    def local(self, container_path: str) -> str:
        """Where an absolute container path lives on this machine."""
        return self.fs_root + posixpath.normpath("/" + container_path.lstrip("/"))


class Job:
    """Everything the backend knows about one job; fields change under ``lock``."""

    def __init__(self, kind: str, name: str, request: Dict[str, Any], region: str,
                 metrics: MetricTracker) -> None:
        self.kind = kind
        self.name = name
        self.request = request
        self.region = region
        self.lock = threading.Lock()
        self.created = now()
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
        self.outcome: Optional[Outcome] = None
        self.stop_reason: Optional[str] = None
        #: why an instance's files outgrew the job's volume (see :mod:`.disk`), once they did
        self.disk_failure: Optional[str] = None
        self.instances: List[Instance] = []
        self.job_dir: Optional[str] = None
        self.thread: Optional[threading.Thread] = None

    @property
    def arn(self) -> str:
        """``arn:aws:sagemaker:REGION:000000000000:processing-job/name`` (``training-job/`` for training)."""
        return f"arn:aws:sagemaker:{self.region}:{LOCAL_ACCOUNT}:{self.kind}-job/{self.name.lower()}"

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_STATUSES

    # --- changes ---------------------------------------------------------------------------------

    def set_secondary(self, status: str, message: str) -> None:
        """Record a secondary status transition (only training responses show them)."""
        with self.lock:
            stamp = now()
            if self.transitions and "EndTime" not in self.transitions[-1]:
                self.transitions[-1]["EndTime"] = stamp
            self.secondary = status
            self.transitions.append({"Status": status, "StartTime": stamp, "StatusMessage": message})
            self.modified = stamp

    def add_line(self, host: str, message: str) -> None:
        """One log line of ``host``; metric values in it are remembered with the line's time."""
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

    def mark_started(self) -> None:
        """The processes are about to start (``ProcessingStartTime`` / ``TrainingStartTime``)."""
        with self.lock:
            self.started = self.modified = now()

    def request_stop(self) -> None:
        """A stop asked by the caller; does nothing once the job ended or a stop is under way."""
        with self.lock:
            if self.done or self.stop_event.is_set():
                return
            self.stop_reason = self.stop_reason or "Stopped"
            self.status = "Stopping"
            self.modified = now()
        self.set_secondary("Stopping", f"Stopping the {self.kind} job")
        self.stop_event.set()

    def exceed_max_runtime(self) -> None:
        """``MaxRuntimeInSeconds`` has passed: the job stops, for that reason."""
        with self.lock:
            self.stop_reason = MAX_RUNTIME_EXCEEDED
            self.status = "Stopping"
        self.stop_event.set()

    def finish(self, status: str, reason: Optional[str] = None, exit_message: Optional[str] = None) -> None:
        """Record the job's outcome; it is published once the job's folders are removed."""
        self.outcome = (status, reason, exit_message)

    def stopped_early(self) -> bool:
        """True (and the job is finished ``Stopped``) when a stop arrived before the processes started."""
        if not self.stop_event.is_set():
            return False
        self.finish("Stopped", self.stop_reason_text())
        return True

    def stop_reason_text(self) -> Optional[str]:
        """The ``FailureReason`` of a stopped job: only a time limit has one."""
        if self.stop_reason == MAX_RUNTIME_EXCEEDED:
            limit = self.request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
            return f"{MAX_RUNTIME_EXCEEDED}: the job ran longer than MaxRuntimeInSeconds={limit}"
        return None

    def publish(self, status: str, reason: Optional[str] = None, exit_message: Optional[str] = None) -> None:
        """Make the final status visible (the last thing the job's thread does)."""
        secondary = MAX_RUNTIME_EXCEEDED if self.stop_reason == MAX_RUNTIME_EXCEEDED else status
        self.set_secondary(secondary, reason or f"{self.kind.capitalize()} job {status.lower()}")
        with self.lock:
            if self.transitions and "EndTime" not in self.transitions[-1]:
                self.transitions[-1]["EndTime"] = now()
            self.status = status
            self.failure_reason = truncate(reason) if reason else None
            if exit_message:
                self.exit_message = truncate(exit_message)
            self.ended = self.modified = now()

    # --- answers ---------------------------------------------------------------------------------

    def describe(self) -> Dict[str, Any]:
        """The fields of the ``Describe*Job`` response both kinds share; call with ``lock`` held."""
        response = copy.deepcopy(self.request)
        response.pop("Tags", None)  # Describe*Job does not return tags
        response[STATUS_KEY[self.kind]] = self.status
        response["CreationTime"] = self.created
        response["LastModifiedTime"] = self.modified
        if self.failure_reason:
            response["FailureReason"] = self.failure_reason
        return response
