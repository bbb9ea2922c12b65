"""Follow a running job: status transitions and log lines until it ends, then a JobResult.

Backend-agnostic: works the same on :class:`~aws_sagemaker_remote.backends.sagemaker.SageMakerBackend`
and the local backend, through the four calls of the
:class:`~aws_sagemaker_remote.backends.base.Backend` seam.

The pieces:

* :func:`follow` — a generator of :class:`StatusChange` and
  :class:`~aws_sagemaker_remote.backends.base.LogEvent` items, ending with the
  terminal status (after a last read of the logs);
* :class:`MetricTracker` — the latest value of each ``(name, regex)`` metric seen in the logs;
* :func:`wait` — prints what :func:`follow` yields, handles Ctrl-C, and returns
  the :class:`~aws_sagemaker_remote.spec.JobResult`;
* :func:`result_from_description` and :func:`summary_lines` — pure helpers
  that turn the final describe response into a result, and a result into the
  final summary.

``sleep`` and ``clock`` are parameters so a test can run :func:`wait` on a
fake clock.
"""
from __future__ import annotations

import re
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, Iterator, List, Mapping, NoReturn, Optional, Sequence, TextIO, Tuple, Union

from .backends.base import STATUS_KEY, TERMINAL_STATUSES, TRAINING, Backend, LogCursor, LogEvent
from .errors import Interrupted, RemoteError, UsageError
from .spec import JobResult

#: Log lines kept for the failure summary.
DEFAULT_TAIL = 20
#: Seconds to wait, after Ctrl-C, for the stopped job to reach a final status.
DEFAULT_STOP_TIMEOUT = 60.0

Sleep = Callable[[float], None]
Clock = Callable[[], float]


@dataclass(frozen=True)
class StatusChange:
    """The job's status (and, for training, secondary status) changed."""

    status: str
    secondary_status: Optional[str] = None
    #: the secondary status transition's message ("Launching requested ML instances")
    status_message: Optional[str] = None
    description: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def terminal(self) -> bool:
        """True when the job has ended (Completed, Failed or Stopped)."""
        return self.status in TERMINAL_STATUSES


def status_change(kind: str, description: Mapping[str, Any]) -> StatusChange:
    """The :class:`StatusChange` a describe response reports."""
    status = str(description.get(STATUS_KEY[kind], "Unknown"))
    secondary: Optional[str] = None
    message: Optional[str] = None
    if kind == TRAINING:
        secondary = description.get("SecondaryStatus")
        transitions = description.get("SecondaryStatusTransitions") or []
        if transitions and transitions[-1].get("Status") == secondary:
            message = transitions[-1].get("StatusMessage")
    return StatusChange(status=status, secondary_status=secondary, status_message=message, description=description)


def follow(
    backend: Backend,
    kind: str,
    job_name: str,
    *,
    cursor: Optional[LogCursor] = None,
    sleep: Sleep = time.sleep,
    clock: Clock = time.monotonic,
) -> Iterator[Union[StatusChange, LogEvent]]:
    """Yield the job's status changes and log events until it ends.

    The status is polled every ``backend.poll_interval`` seconds and the logs
    every ``backend.log_poll_interval`` seconds (the status interval when the
    backend has none), so log lines stream promptly while status calls stay
    rare; the end of a job is seen within one status interval. When the job
    has ended, the logs are read once more and the terminal
    :class:`StatusChange` is the last item.
    """
    cursor = cursor if cursor is not None else LogCursor.start()
    status_every = max(float(backend.poll_interval), 0.0)
    log_every = min(float(getattr(backend, "log_poll_interval", status_every)), status_every)
    last: Optional[StatusChange] = None
    next_status = clock()
    while True:
        now = clock()
        if now >= next_status:
            # Scheduled from the time before the call, so a slow describe does
            # not stretch the interval.
            next_status = now + status_every
            change = status_change(kind, backend.describe(kind, job_name))
            if change.terminal:
                # Lines written just before the end arrive after the last read.
                yield from backend.logs(kind, job_name, cursor)
                yield change
                return
            if last is None or (change.status, change.secondary_status) != (last.status, last.secondary_status):
                last = change
                yield change
        yield from backend.logs(kind, job_name, cursor)
        sleep(max(0.0, min(log_every, next_status - clock())))


class MetricTracker:
    """The latest value of each metric found in log lines.

    :param metrics: ``(name, regex)`` pairs; the regex's first group is the value
        (the whole match when it has no group), as in SageMaker's MetricDefinitions.
    :raises UsageError: a regex does not compile.
    """

    def __init__(self, metrics: Sequence[Tuple[str, str]] = ()) -> None:
        self._patterns: List[Tuple[str, "re.Pattern[str]"]] = []
        for name, regex in metrics:
            try:
                self._patterns.append((name, re.compile(regex)))
            except re.error as exc:
                raise UsageError(f"metric {name!r}: invalid regex {regex!r}: {exc}",
                                 flag="--sagemaker-metric") from None
        self.values: Dict[str, float] = {}

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def feed(self, line: str) -> bool:
        """Match one log line; True when a metric's value changed."""
        changed = False
        for name, pattern in self._patterns:
            match = pattern.search(line)
            if not match:
                continue
            text = match.group(1) if pattern.groups else match.group(0)
            try:
                value = float(text)
            except (TypeError, ValueError):
                continue
            if self.values.get(name) != value:
                self.values[name] = value
                changed = True
        return changed

    def line(self) -> str:
        """``[metrics] loss=0.25 accuracy=0.9`` (in declaration order, metrics seen so far)."""
        shown = [f"{name}={self.values[name]:g}" for name, _ in self._patterns if name in self.values]
        return "[metrics] " + " ".join(shown)


class _Printer:
    """Writes what :func:`follow` yields and remembers the last log lines."""

    def __init__(self, job_name: str, out: TextIO, err: TextIO, tail: int, metrics: MetricTracker) -> None:
        self.job_name = job_name
        self.out = out
        self.err = err
        self.lines: Deque[str] = deque(maxlen=max(tail, 0))
        self.metrics = metrics

    def status(self, change: StatusChange) -> None:
        text = f"[{self.job_name}] {change.status}"
        if change.secondary_status and change.secondary_status != change.status:
            text += f" ({change.secondary_status}"
            text += f": {change.status_message})" if change.status_message else ")"
        self.note(text)

    def note(self, text: str) -> None:
        print(text, file=self.err, flush=True)

    def log(self, event: LogEvent) -> None:
        # An event may hold several lines (a traceback written at once); each
        # gets the host prefix so multi-instance output stays readable.
        for line in event.message.rstrip("\r\n").splitlines() or [""]:
            text = f"[{event.host}] {line}"
            print(text, file=self.out)
            self.lines.append(text)
            if self.metrics and self.metrics.feed(line):
                self.out.flush()
                self.note(self.metrics.line())

    def flush(self) -> None:
        self.out.flush()


def wait(
    backend: Backend,
    kind: str,
    job_name: str,
    *,
    out: Optional[TextIO] = None,
    err: Optional[TextIO] = None,
    detach: bool = False,
    metrics: Sequence[Tuple[str, str]] = (),
    sleep: Sleep = time.sleep,
    clock: Clock = time.monotonic,
    tail: int = DEFAULT_TAIL,
    stop_timeout: float = DEFAULT_STOP_TIMEOUT,
) -> JobResult:
    """Follow a job until it ends and return its :class:`~aws_sagemaker_remote.spec.JobResult`.

    Status transitions go to ``err`` (``[job] InProgress``), log lines to ``out``
    (``[algo-1] message``), metric values to ``err`` when they change
    (``[metrics] loss=0.25``). ``out`` and ``err`` default to ``sys.stdout`` and
    ``sys.stderr`` at call time.

    Ctrl-C stops the job (unless ``detach``), waits up to ``stop_timeout``
    seconds of ``clock`` for it to end, and raises
    :class:`~aws_sagemaker_remote.errors.Interrupted` (exit code 130); with
    ``detach`` the job keeps running and ``Interrupted`` is raised at once.

    :param metrics: ``(name, regex)`` pairs matched against every log line.
    :param tail: how many log lines the result keeps for the failure summary.
    """
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    tracker = MetricTracker(metrics)
    printer = _Printer(job_name, out, err, tail, tracker)
    cursor = LogCursor.start()
    final: Optional[StatusChange] = None
    try:
        for item in follow(backend, kind, job_name, cursor=cursor, sleep=sleep, clock=clock):
            if isinstance(item, LogEvent):
                printer.log(item)
                continue
            printer.flush()
            printer.status(item)
            if item.terminal:
                final = item
    except KeyboardInterrupt:
        printer.flush()
        _interrupted(backend, kind, job_name, printer, cursor, detach=detach, sleep=sleep, clock=clock,
                     stop_timeout=stop_timeout)
    printer.flush()
    assert final is not None  # follow() always ends with the terminal status
    return result_from_description(kind, final.description, backend, tuple(printer.lines), tracker.values)


def _interrupted(
    backend: Backend,
    kind: str,
    job_name: str,
    printer: _Printer,
    cursor: LogCursor,
    *,
    detach: bool,
    sleep: Sleep,
    clock: Clock,
    stop_timeout: float,
) -> NoReturn:
    """Handle Ctrl-C: stop the job (or leave it running) and raise Interrupted."""
    url = backend.console_url(kind, job_name)
    where = f" ({url})" if url else ""
    if detach:
        printer.note(f"[{job_name}] detached: the {kind} job keeps running on {backend.name}{where}")
        raise Interrupted(f"detached from {kind} job {job_name}; it keeps running{where}")
    printer.note(f"[{job_name}] Ctrl-C: stopping the {kind} job (press Ctrl-C again to stop waiting)")
    try:
        backend.stop(kind, job_name)
    except RemoteError as exc:
        printer.note(f"[{job_name}] could not stop the job: {exc}")
        raise Interrupted(f"interrupted; could not stop {kind} job {job_name}, it may still be running{where}: "
                          f"{exc}") from exc
    status: Optional[str] = None
    deadline = clock() + stop_timeout
    try:
        while True:
            change = status_change(kind, backend.describe(kind, job_name))
            for event in backend.logs(kind, job_name, cursor):
                printer.log(event)
            printer.flush()
            if change.status != status:
                status = change.status
                printer.status(change)
            remaining = deadline - clock()
            if change.terminal or remaining <= 0:
                break
            sleep(min(backend.poll_interval, remaining))
    except KeyboardInterrupt:
        pass  # a second Ctrl-C: stop waiting; the stop request has been sent
    except RemoteError as exc:
        printer.note(f"[{job_name}] could not follow the stopping job: {exc}")
    if status in TERMINAL_STATUSES:
        raise Interrupted(f"interrupted; {kind} job {job_name} ended {status}")
    raise Interrupted(f"interrupted; asked {kind} job {job_name} to stop, it is still {status or 'running'}{where}")


def result_from_description(
    kind: str,
    description: Mapping[str, Any],
    backend: Optional[Backend],
    last_lines: Sequence[str] = (),
    metrics_seen: Optional[Mapping[str, float]] = None,
) -> JobResult:
    """The :class:`~aws_sagemaker_remote.spec.JobResult` of a job's final describe response.

    Pure: ``backend`` is only asked for the console URL.

    :param last_lines: the last log lines printed, for the failure summary.
    :param metrics_seen: training metrics parsed from the logs, used when the job
        reports no ``FinalMetricDataList``.
    """
    name_key = "TrainingJobName" if kind == TRAINING else "ProcessingJobName"
    job_name = str(description.get(name_key, ""))
    status = str(description.get(STATUS_KEY[kind], "Unknown"))
    failure: Optional[str] = None
    if status != "Completed":
        failure = description.get("FailureReason") or description.get("ExitMessage") or None
    common: Dict[str, Any] = dict(
        kind=kind,
        job_name=job_name,
        status=status,
        failure_reason=failure,
        console_url=backend.console_url(kind, job_name) if backend is not None else None,
        last_log_lines=tuple(last_lines),
    )
    if kind != TRAINING:
        outputs = (description.get("ProcessingOutputConfig") or {}).get("Outputs") or []
        artifacts = {
            o["OutputName"]: o["S3Output"]["S3Uri"]
            for o in outputs
            if o.get("OutputName") and (o.get("S3Output") or {}).get("S3Uri")
        }
        return JobResult(output_artifacts=artifacts, **common)
    output_path = ((description.get("OutputDataConfig") or {}).get("S3OutputPath") or "").rstrip("/")
    job_output = f"{output_path}/{job_name}/output" if output_path else None
    model = (description.get("ModelArtifacts") or {}).get("S3ModelArtifacts") or (
        f"{job_output}/model.tar.gz" if job_output else None)
    final_metrics = {
        m["MetricName"]: float(m["Value"])
        for m in description.get("FinalMetricDataList") or []
        if "MetricName" in m and "Value" in m
    }
    return JobResult(
        model_artifact_url=model,
        output_data_url=f"{job_output}/output.tar.gz" if job_output else None,
        training_image=(description.get("AlgorithmSpecification") or {}).get("TrainingImage"),
        final_metrics=final_metrics or dict(metrics_seen or {}),
        **common,
    )


def summary_lines(result: JobResult) -> List[str]:
    """The final summary of a job, one line each.

    Always the job and its status; when it completed, where its outputs are;
    otherwise the failure reason, the last log lines and the console URL.
    """
    lines = [f"{result.kind} job {result.job_name}: {result.status}"]
    if result.status == "Completed":
        for name, uri in result.output_artifacts.items():
            lines.append(f"  output {name}: {uri}")
        if result.model_artifact_url:
            lines.append(f"  model: {result.model_artifact_url}")
        if result.output_data_url:
            lines.append(f"  output data: {result.output_data_url}")
        if result.final_metrics:
            shown = " ".join(f"{k}={v:g}" for k, v in result.final_metrics.items())
            lines.append(f"  metrics: {shown}")
        return lines
    if result.failure_reason:
        lines.append(f"  reason: {result.failure_reason}")
    if result.status != "InProgress" and result.last_log_lines:
        lines.append(f"  last {len(result.last_log_lines)} log lines:")
        lines.extend(f"    {line}" for line in result.last_log_lines)
    if result.console_url:
        lines.append(f"  console: {result.console_url}")
    return lines
