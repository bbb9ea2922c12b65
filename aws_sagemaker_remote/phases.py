"""Where a job's time went: its current phase while it runs, and a breakdown once it ended.

Two sources, each used for what it knows:

* the describe response: for training, ``SecondaryStatusTransitions`` (Starting,
  Downloading, Training, Uploading, ... each with its start and end time) and
  ``BillableTimeInSeconds``; for processing, which has no secondary statuses, only
  ``CreationTime``, ``ProcessingStartTime`` and ``ProcessingEndTime``;
* the job's own log lines ``aws_sagemaker_remote: phase NAME took 1.23s``
  (:func:`aws_sagemaker_remote.bootstrap.phase_line`), written by the bootstrap after
  the requirements install and the script, and by the local backend after its
  download and upload: measured where the work happens, so they are preferred.

Pure functions of those values (no clock, no AWS): :mod:`aws_sagemaker_remote.watch`
feeds them. Standard library only.
"""
from __future__ import annotations

import datetime as _dt
import re
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Sequence

from .bootstrap import LOG_PREFIX
from .spec import TIMING_PHASES, Timing

#: ``aws_sagemaker_remote: phase script took 12.34s``
MARKER_RE = re.compile(r"^" + re.escape(LOG_PREFIX) + r" phase ([a-z_]+) took (\d+(?:\.\d+)?)s$")

#: Training secondary statuses spent getting an instance ready (SageMaker's ``SecondaryStatus`` values).
PROVISIONING_STATUSES = frozenset({
    "Starting", "Pending", "LaunchingMLInstances", "PreparingTrainingStack", "DownloadingTrainingImage",
})
#: The secondary statuses of the input download and the output upload.
DOWNLOAD_STATUSES = frozenset({"Downloading"})
UPLOAD_STATUSES = frozenset({"Uploading"})


def parse_marker(line: str) -> Optional[Mapping[str, float]]:
    """``{name: seconds}`` of a phase line (without its ``[algo-1]`` host prefix), else None."""
    match = MARKER_RE.match(line.strip())
    if not match:
        return None
    return {match.group(1): float(match.group(2))}


class PhaseMarks:
    """The phase lines seen in a job's log: each phase's longest time over the instances.

    Instances work in parallel, so the slowest one is what the job waited for.
    """

    def __init__(self) -> None:
        self.seconds: Dict[str, float] = {}

    def feed(self, line: str) -> bool:
        """Read one log line; True when it was a phase line."""
        found = parse_marker(line)
        if found is None:
            return False
        for name, seconds in found.items():
            self.seconds[name] = max(seconds, self.seconds.get(name, 0.0))
        return True


def _time(value: Any) -> Optional[float]:
    """Seconds since the epoch of a describe response's timestamp (boto3 gives datetimes)."""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return float(value.timestamp())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _span(start: Any, end: Any) -> Optional[float]:
    first, last = _time(start), _time(end)
    if first is None or last is None:
        return None
    return max(last - first, 0.0)


def _transitions(description: Mapping[str, Any]) -> List[Mapping[str, Any]]:
    found = description.get("SecondaryStatusTransitions") or []
    return [t for t in found if isinstance(t, Mapping)]


def _sum_of(transitions: Sequence[Mapping[str, Any]], statuses: FrozenSet[str]) -> Optional[float]:
    """Seconds spent in ``statuses``, over the transitions that ended; None when none of them happened."""
    spans = [_span(t.get("StartTime"), t.get("EndTime")) for t in transitions if t.get("Status") in statuses]
    known = [s for s in spans if s is not None]
    return sum(known) if known else None


def current_phase(kind: str, description: Mapping[str, Any], marks: Optional[PhaseMarks] = None) -> str:
    """The phase a running job is in, in SageMaker's words where it has them.

    Training: the secondary status. Processing has none: ``Starting`` until the
    container started (``ProcessingStartTime``; the input download is part of it),
    ``Processing`` while it runs, ``Uploading`` once the script's phase line came
    (the outputs go to S3 after the script), and the job's status when it is not
    ``InProgress`` (``Stopping``).
    """
    if kind == "training":
        key = "TrainingJobStatus"
        return str(description.get("SecondaryStatus") or description.get(key) or "Unknown")
    status = str(description.get("ProcessingJobStatus") or "Unknown")
    if status != "InProgress":
        return status
    if not description.get("ProcessingStartTime"):
        return "Starting"
    if marks is not None and "script" in marks.seconds:
        return "Uploading"
    return "Processing"


def timing(kind: str, description: Mapping[str, Any], marks: Optional[Mapping[str, float]] = None) -> Optional[Timing]:
    """The breakdown of a job that ended, from its last describe response and its phase lines.

    None while the job has no end time (it is still running, or the response is too
    sparse to say anything). A phase neither source reports stays None.
    """
    marks = dict(marks or {})
    created = description.get("CreationTime")
    found: Dict[str, Optional[float]] = dict.fromkeys(TIMING_PHASES)
    billable: Optional[float] = None
    if kind == "training":
        transitions = _transitions(description)
        ends = [t.get("EndTime") or t.get("StartTime") for t in transitions]
        ends.append(description.get("TrainingEndTime"))
        times = [t for t in (_time(e) for e in ends) if t is not None]
        total = _span(created, max(times)) if times else None
        found["provisioning"] = _sum_of(transitions, PROVISIONING_STATUSES)
        found["download"] = _sum_of(transitions, DOWNLOAD_STATUSES)
        found["upload"] = _sum_of(transitions, UPLOAD_STATUSES)
        value = description.get("BillableTimeInSeconds")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            billable = float(value)
    else:
        total = _span(created, description.get("ProcessingEndTime"))
        found["provisioning"] = _span(created, description.get("ProcessingStartTime"))
        if found["provisioning"] is not None and "download" in marks:
            # the download happened before the container started; timed apart, it is not provisioning
            found["provisioning"] = max(found["provisioning"] - marks["download"], 0.0)
    if total is None:
        return None
    for name in TIMING_PHASES:
        if name in marks:  # measured in the job itself: more precise than the status times
            found[name] = marks[name]
    return Timing(total=round(total, 2), billable=billable,
                  **{name: None if value is None else round(value, 2) for name, value in found.items()})


def duration(seconds: float) -> str:
    """``0.42s``, ``12.3s``, ``4m05s``, ``1h02m``: short and readable."""
    if seconds < 10:
        return f"{seconds:.2f}s" if seconds < 1 else f"{seconds:.1f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def breakdown_lines(result_timing: Optional[Timing]) -> List[str]:
    """The summary's lines about time: ``  time: provisioning 1m05s, download 3.0s, ..., total 2m10s``
    (and ``billable`` for training); none when nothing is known."""
    if result_timing is None or result_timing.total is None:
        return []
    parts = [f"{name} {duration(getattr(result_timing, name))}" for name in TIMING_PHASES
             if getattr(result_timing, name) is not None]
    parts.append(f"total {duration(result_timing.total)}")
    line = "  time: " + ", ".join(parts)
    if result_timing.billable is not None:
        line += f" (billable {duration(result_timing.billable)})"
    return [line]


def clock_text(seconds: float) -> str:
    """``0:07``, ``12:05``, ``1:02:03``: a running time in whole seconds."""
    minutes, secs = divmod(max(int(seconds), 0), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def status_text(job_name: str, phase: str, phase_seconds: float, total_seconds: float) -> str:
    """The terminal's one-line status: ``[job] Training 0:12 (total 1:05)``."""
    return f"[{job_name}] {phase} {clock_text(phase_seconds)} (total {clock_text(total_seconds)})"
