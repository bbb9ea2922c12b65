"""What the local backend knows about a job: its instances, statuses, log events and outcome.

A :class:`Job` changes under its ``lock``, from the job's own thread (the
run), the reader threads (log lines) and the caller's (``stop``). Its
status moves ``InProgress`` → (``Stopping``) → ``Completed`` / ``Failed`` /
``Stopped``; the final status is *published* only after the job's folders
are removed (see :meth:`Job.publish`). :meth:`Job.describe` builds the part
of the ``Describe*Job`` response both job kinds share.

:class:`Registry` keeps a record of every local job under the tool's home
(``$AWS_SAGEMAKER_REMOTE_HOME/local-jobs/<kind>/<name>/``): its description,
rewritten when the job is created and when it ends, and its log events, one
JSON line each as they come. The process that runs the job is its *owner*
(today the launcher; a detached runner records itself the same way);
:class:`RecordedJobs` answers ``describe``, ``logs`` and ``stop`` for another
process (the ``aws-sagemaker-remote`` command) from that record.
"""
from __future__ import annotations

import copy
import datetime as _dt
import json
import os
import posixpath
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, TextIO, Tuple

from ...container import OPT_ML, ContainerPaths
from ...errors import JobNotFound
from ...leftovers import process_alive
from ...metrics import MetricTracker
from ...store import Store, home_dir
from ..base import NAME_KEY, STATUS_KEY, TERMINAL_STATUSES, LogCursor, LogEvent

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
        #: called with each new log event, under ``lock`` (the registry's journal)
        self.on_event: Optional[Callable[[LogEvent], None]] = None
        #: called once the final status is set, under ``lock``, before anyone can see it
        self.on_final: Optional[Callable[["Job"], None]] = None

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
            event = LogEvent(timestamp=stamp, host=host, message=message)
            self.events.append(event)
            if self.on_event is not None:
                self.on_event(event)
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
            if self.on_final is not None:
                # under the lock: a caller that sees the final status finds it recorded too
                self.on_final(self)

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


# --- the record of local jobs under the tool's home -------------------------------------------------

#: Folder of the local jobs' records, under the tool's home.
REGISTRY_DIR = "local-jobs"
RECORD_FILE = "job.json"
EVENTS_FILE = "events.jsonl"
RECORD_FORMAT = "aws_sagemaker_remote.local-job/1"


def json_default(value: Any) -> Any:
    """JSON for what describe responses hold besides JSON types: times as ISO 8601 text."""
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    return str(value)


def process_start(pid: int) -> Optional[str]:
    """When process ``pid`` started (Linux: clock ticks since boot), to tell it from a later process
    that reuses its id; None where that cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: count fields after its end
    fields = text[text.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def owner_alive(owner: Dict[str, Any]) -> bool:
    """True while the process recorded as a job's owner runs (the same process, not a reused id)."""
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    started = owner.get("started")
    if started is not None and process_start(pid) not in (None, started):
        return False
    # a killed owner nobody has reaped yet (its parent is gone, and not every init reaps) has ended
    return process_alive(pid)


def _write_json(path: str, data: Dict[str, Any]) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, default=json_default, sort_keys=True)
    os.replace(tmp, path)  # a reader never sees half a record


class Journal:
    """Writes one job's record as it runs; a failed write never affects the job."""

    def __init__(self, folder: str, record: Dict[str, Any]) -> None:
        self.folder = folder
        self.record = record
        self._events: Optional[TextIO] = None
        try:
            os.makedirs(folder, exist_ok=True)
            self._events = open(os.path.join(folder, EVENTS_FILE), "w", encoding="utf-8")  # noqa: SIM115
            _write_json(os.path.join(folder, RECORD_FILE), record)
        except OSError:
            pass

    def event(self, event: LogEvent) -> None:
        if self._events is None:
            return
        try:
            self._events.write(json.dumps({"timestamp": event.timestamp, "host": event.host,
                                           "message": event.message}) + "\n")
            self._events.flush()
        except (OSError, ValueError):
            self._events = None

    def final(self, description: Dict[str, Any]) -> None:
        self.record = dict(self.record, description=description)
        try:
            _write_json(os.path.join(self.folder, RECORD_FILE), self.record)
        except OSError:
            pass
        if self._events is not None:
            try:
                self._events.close()
            except OSError:
                pass
            self._events = None


class Registry:
    """The records of local jobs, one folder each: ``ROOT/<kind>/<name>/{job.json,events.jsonl}``.

    ``job.json`` holds ``format``, ``kind``, ``name``, ``owner`` (``pid`` and ``started`` of the
    process running the job), ``store`` (``name`` and, for the local stand-in, ``root``),
    ``region``, ``created`` and ``description`` (the ``Describe*Job`` response, times as ISO text).
    """

    def __init__(self, root: Optional[str] = None) -> None:
        self.root = os.path.abspath(root or os.path.join(home_dir(), REGISTRY_DIR))

    def folder(self, kind: str, name: str) -> str:
        return os.path.join(self.root, kind, name)

    def attach(self, job: Job, describe: Callable[[Job], Dict[str, Any]], store: Store) -> Journal:
        """Record ``job`` (just created) and keep its record up to date as it runs."""
        owner_pid = os.getpid()
        with job.lock:
            description = describe(job)
        record = {
            "format": RECORD_FORMAT, "kind": job.kind, "name": job.name,
            "owner": {"pid": owner_pid, "started": process_start(owner_pid)},
            "store": {"name": store.name, "root": getattr(store, "root", None)},
            "region": job.region, "created": job.created, "description": description,
        }
        journal = Journal(self.folder(job.kind, job.name), json.loads(json.dumps(record, default=json_default)))
        job.on_event = journal.event
        job.on_final = lambda finished: journal.final(json.loads(json.dumps(describe(finished),
                                                                            default=json_default)))
        return journal

    def read(self, kind: str, name: str) -> Optional[Dict[str, Any]]:
        """The record of a job, or None."""
        try:
            with open(os.path.join(self.folder(kind, name), RECORD_FILE), encoding="utf-8") as fh:
                record: Dict[str, Any] = json.load(fh)
        except (OSError, ValueError):
            return None
        return record if record.get("format") == RECORD_FORMAT else None

    def records(self) -> Iterator[Dict[str, Any]]:
        """Every readable record, in no particular order."""
        for kind in (k for k in sorted(STATUS_KEY) if os.path.isdir(os.path.join(self.root, k))):
            for name in sorted(os.listdir(os.path.join(self.root, kind))):
                record = self.read(kind, name)
                if record is not None:
                    yield record

    def kinds_of(self, name: str) -> List[str]:
        """The kinds of the recorded jobs called ``name``."""
        return [kind for kind in sorted(STATUS_KEY) if self.read(kind, name) is not None]

    def remove(self, kind: str, name: str) -> None:
        shutil.rmtree(self.folder(kind, name), ignore_errors=True)


def recorded_status(record: Dict[str, Any]) -> Tuple[str, Optional[str]]:
    """The status of a recorded job and its failure reason. A job whose owner is gone without
    recording an end is ``Failed``: nothing runs it any more."""
    description = record.get("description") or {}
    status = str(description.get(STATUS_KEY.get(record.get("kind", ""), ""), "Unknown"))
    if status in TERMINAL_STATUSES or owner_alive(record.get("owner") or {}):
        return status, description.get("FailureReason")
    pid = (record.get("owner") or {}).get("pid")
    return "Failed", f"the process that ran the job (pid {pid}) ended before the job did"


class RecordedJobs:
    """The :class:`~aws_sagemaker_remote.backends.base.Backend` calls on jobs another process runs
    locally, answered from their :class:`Registry` records; ``stop`` signals the owner (SIGTERM),
    which stops the job as Ctrl-C does."""

    name = "this machine"
    #: the job runs in its owner's process, not in this one
    outlives_caller = True
    poll_interval = 0.25
    log_poll_interval = 0.25

    def __init__(self, registry: Optional[Registry] = None) -> None:
        self.registry = registry or Registry()

    def record(self, kind: str, job_name: str) -> Dict[str, Any]:
        record = self.registry.read(kind, job_name)
        if record is None:
            raise JobNotFound(kind, job_name)
        return record

    def create(self, kind: str, request: Dict[str, Any]) -> None:
        """Recorded jobs are created by the local backend of the process that runs them."""
        raise NotImplementedError("a recorded job is created by the process that runs it")

    def describe(self, kind: str, job_name: str) -> Dict[str, Any]:
        """The recorded ``Describe*Job`` response (``Failed`` when its owner is gone mid-run)."""
        record = self.record(kind, job_name)
        description: Dict[str, Any] = dict(record.get("description") or {})
        status, reason = recorded_status(record)
        description[STATUS_KEY[kind]] = status
        description.setdefault(NAME_KEY[kind], job_name)
        if reason:
            description["FailureReason"] = reason
        return description

    def stop(self, kind: str, job_name: str) -> None:
        """SIGTERM to the job's owner, unless the job has ended."""
        record = self.record(kind, job_name)
        status, _ = recorded_status(record)
        if status in TERMINAL_STATUSES:
            return
        try:
            os.kill(int(record["owner"]["pid"]), signal.SIGTERM)
        except ProcessLookupError:
            pass  # ended meanwhile

    def logs(self, kind: str, job_name: str, cursor: LogCursor) -> List[LogEvent]:
        """Complete lines of the job's events file after ``cursor``."""
        self.record(kind, job_name)
        key = f"recorded:{kind}/{job_name}"
        offset = int(cursor.state.get(key, 0))
        try:
            with open(os.path.join(self.registry.folder(kind, job_name), EVENTS_FILE), "rb") as fh:
                fh.seek(offset)
                data = fh.read()
        except OSError:
            return []
        end = data.rfind(b"\n") + 1  # a line being written is read next time
        cursor.state[key] = offset + end
        events = []
        for line in data[:end].splitlines():
            try:
                item = json.loads(line)
                events.append(LogEvent(int(item["timestamp"]), str(item["host"]), str(item["message"])))
            except (ValueError, KeyError, TypeError):
                continue
        return events

    def console_url(self, kind: str, job_name: str) -> Optional[str]:
        return None

    def log_locations(self, kind: str, job_name: str) -> List[str]:
        """The job's events file, where its whole log is kept."""
        return [os.path.join(self.registry.folder(kind, job_name), EVENTS_FILE)]
