"""The backend seam: five calls, SageMaker-shaped data in and out.

A backend takes the exact ``CreateProcessingJob`` / ``CreateTrainingJob``
request built by :mod:`aws_sagemaker_remote.render` and answers
``describe`` with the matching ``Describe*Job`` response shape, so the watch
code cannot tell the local backend from SageMaker.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Protocol

from ..kinds import KINDS

#: ``kind`` values: backends take a kind's public name
PROCESSING = "processing"
TRAINING = "training"

#: Final job statuses (both job kinds).
TERMINAL_STATUSES = ("Completed", "Failed", "Stopped")

#: The status and name keys of a describe response, and the log group, by kind name
#: (each kind's own, :mod:`aws_sagemaker_remote.kinds`).
STATUS_KEY = {name: kind.status_key for name, kind in KINDS.items()}
NAME_KEY = {name: kind.name_key for name, kind in KINDS.items()}
LOG_GROUP = {name: kind.log_group for name, kind in KINDS.items()}
#: Key of ``LogCursor.state`` where a backend says why its last log read returned
#: nothing (throttled, forbidden): the logs shown so far are incomplete.
LOGS_INCOMPLETE = "logs_incomplete"


@dataclass(frozen=True)
class LogEvent:
    """One log line of one instance."""

    timestamp: int  # milliseconds since the epoch
    host: str  # "algo-1", "algo-2", ...
    message: str


@dataclass
class LogCursor:
    """Where reading the job's logs left off; backends keep their own state in ``state``."""

    state: Dict[str, Any]

    @classmethod
    def start(cls) -> "LogCursor":
        return cls(state={})


class Backend(Protocol):
    """What the launcher and the watch code need from a place that runs jobs."""

    #: seconds between status polls (SageMaker: a few seconds; local: a fraction)
    poll_interval: float
    #: seconds between log reads, at most ``poll_interval``: logs are cheap to read
    #: and users want to see lines as they come, statuses change rarely
    log_poll_interval: float
    #: human name for messages ("SageMaker", "local")
    name: str
    #: True when a job keeps running after the process that created it exits
    #: (SageMaker), so a caller may detach from it; False when the job's
    #: processes end with the caller's (the local backend)
    outlives_caller: bool

    def create(self, kind: str, request: Dict[str, Any]) -> None:
        """Start the job described by ``request``."""

    def describe(self, kind: str, job_name: str) -> Dict[str, Any]:
        """The job's ``Describe*Job`` response (at least the status, failure reason, end time)."""

    def stop(self, kind: str, job_name: str) -> None:
        """Ask the job to stop."""

    def logs(self, kind: str, job_name: str, cursor: LogCursor) -> List[LogEvent]:
        """New log events since ``cursor`` (which this call advances), oldest first."""

    def console_url(self, kind: str, job_name: str) -> Optional[str]:
        """Where to look at the job in a browser, if anywhere."""
