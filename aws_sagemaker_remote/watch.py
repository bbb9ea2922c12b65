"""Follow a running job: status transitions and log lines until it ends, then a JobResult.

Backend-agnostic: works the same on :class:`~aws_sagemaker_remote.backends.sagemaker.SageMakerBackend`
and the local backend, through the four calls of the
:class:`~aws_sagemaker_remote.backends.base.Backend` seam.

The pieces:

* :func:`follow` — a generator of :class:`StatusChange` and
  :class:`~aws_sagemaker_remote.backends.base.LogEvent` items, ending with the
  terminal status (after a last read of the logs);
* :func:`wait` — prints what :func:`follow` yields, handles Ctrl-C, and returns
  the :class:`~aws_sagemaker_remote.spec.JobResult`;
* :func:`result_from_description` and :func:`summary_lines` — pure helpers
  that turn the final describe response into a result, and a result into the
  final summary.

``sleep`` and ``clock`` are parameters so a test can run :func:`wait` on a
fake clock.

An AWS error while following a job (throttling, a lost connection, a 5xx
answer that outlived botocore's own retries) does not end the watch: the call
is retried with a growing pause for up to :data:`DEFAULT_RETRY_SECONDS`, and
only then is an error raised that says the job may still be running and how to
follow it again. Errors that retrying cannot fix (a job name that does not
exist, missing permissions, bad credentials) are raised at once.
"""
from __future__ import annotations

import sys
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import (
    Any,
    Callable,
    Deque,
    Dict,
    Iterator,
    List,
    Mapping,
    NoReturn,
    Optional,
    Sequence,
    TextIO,
    Tuple,
    TypeVar,
    Union,
)

from .backends.base import LOGS_INCOMPLETE, TERMINAL_STATUSES, Backend, LogCursor, LogEvent
from .bootstrap import LOG_PREFIX
from .errors import AwsError, CredentialsError, EndpointError, Interrupted, RemoteError, ThrottledError
from .jobs import PROG
from .kinds import job_kind
from .metrics import MetricTracker
from .phases import PhaseMarks, breakdown_lines, current_phase, status_text, timing
from .spec import JobResult

#: Log lines kept for the failure summary.
DEFAULT_TAIL = 20
#: How many of them the failure summary shows (the log was streamed as it came).
SUMMARY_TAIL = 8
#: Seconds to wait, after Ctrl-C, for the stopped job to reach a final status.
DEFAULT_STOP_TIMEOUT = 60.0
#: Seconds of consecutive AWS errors tolerated while following a job before giving up.
DEFAULT_RETRY_SECONDS = 60.0
#: First and longest pause between two attempts after an AWS error (doubling in between).
RETRY_FIRST_DELAY = 1.0
RETRY_MAX_DELAY = 16.0
#: Error codes that say the request itself is wrong: asking again cannot help.
PERMANENT_ERROR_CODES = frozenset({
    "ValidationException",
    "AccessDenied",
    "AccessDeniedException",
    "ResourceNotFound",
    "ParamValidationError",
})

Sleep = Callable[[float], None]
Clock = Callable[[], float]
Notify = Callable[[str], None]
Tick = Callable[[Mapping[str, Any]], None]
T = TypeVar("T")


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
    job = job_kind(kind)
    status = str(description.get(job.status_key, "Unknown"))
    secondary, message = job.status_details(description)
    return StatusChange(status=status, secondary_status=secondary, status_message=message, description=description)


def is_transient(exc: AwsError) -> bool:
    """True when asking again later may succeed (throttling, connection trouble, a server error)."""
    if isinstance(exc, (ThrottledError, EndpointError)):
        return True
    if isinstance(exc, CredentialsError):
        return False
    return exc.code not in PERMANENT_ERROR_CODES


class _Retry:
    """Repeats a backend call after transient AWS errors, for a bounded time of ``clock``.

    The pause starts at :data:`RETRY_FIRST_DELAY` and doubles up to
    :data:`RETRY_MAX_DELAY`; botocore has already retried each request a few
    times, so these pauses are long enough for throttling or a network hiccup
    to pass. The time allowed is counted from the first error of a run of
    errors: a success starts the count afresh.
    """

    def __init__(self, kind: str, job_name: str, *, sleep: Sleep, clock: Clock, allowed: float,
                 notify: Optional[Notify]) -> None:
        self.kind = kind
        self.job_name = job_name
        self.sleep = sleep
        self.clock = clock
        self.allowed = allowed
        self.notify = notify

    def __call__(self, call: Callable[..., T], *args: Any) -> T:
        deadline: Optional[float] = None
        delay = RETRY_FIRST_DELAY
        while True:
            try:
                return call(*args)
            except AwsError as exc:
                if not is_transient(exc):
                    raise
                now = self.clock()
                if deadline is None:
                    deadline = now + self.allowed
                    if self.notify is not None:
                        self.notify(f"[{self.job_name}] {exc}; retrying for up to {self.allowed:g} s")
                if now >= deadline:
                    raise self._gave_up(exc) from exc
                self.sleep(min(delay, deadline - now))
                delay = min(delay * 2, RETRY_MAX_DELAY)

    def _gave_up(self, exc: AwsError) -> AwsError:
        # Keep the error's class (throttled, endpoint, other) so callers can still tell them apart.
        cls = type(exc) if type(exc) in (AwsError, EndpointError, ThrottledError) else AwsError
        return cls(f"lost track of {self.kind} job {self.job_name} after {self.allowed:g} s of errors; "
                   f"the job may still be running (follow it again with "
                   f"`aws-sagemaker-remote logs --follow {self.job_name}`): {exc}", code=exc.code)


def follow(
    backend: Backend,
    kind: str,
    job_name: str,
    *,
    cursor: Optional[LogCursor] = None,
    sleep: Sleep = time.sleep,
    clock: Clock = time.monotonic,
    retry_for: float = DEFAULT_RETRY_SECONDS,
    notify: Optional[Notify] = None,
    tick: Optional[Tick] = None,
) -> Iterator[Union[StatusChange, LogEvent]]:
    """Yield the job's status changes and log events until it ends.

    The status is polled every ``backend.poll_interval`` seconds and the logs
    every ``backend.log_poll_interval`` seconds, so log lines stream promptly
    while status calls stay rare; the end of a job is seen within one status
    interval. When the job has ended, the logs are read once more and the
    terminal :class:`StatusChange` is the last item.

    :param retry_for: seconds of ``clock`` during which transient AWS errors
        are retried (see :func:`is_transient`); after that the last error is
        raised again, saying that the job may still be running.
    :param notify: called with a one-line message when a run of errors starts.
    :param tick: called before each pause with the latest describe response (the
        terminal's status line is redrawn there).
    """
    cursor = cursor if cursor is not None else LogCursor.start()
    call = _Retry(kind, job_name, sleep=sleep, clock=clock, allowed=retry_for, notify=notify)
    status_every = max(float(backend.poll_interval), 0.0)
    log_every = min(float(backend.log_poll_interval), status_every)
    last: Optional[StatusChange] = None
    latest: Mapping[str, Any] = {}
    told = False  # the user knows the logs cannot be read right now
    next_status = clock()
    while True:
        now = clock()
        if now >= next_status:
            # Scheduled from the time before the call, so a slow describe does
            # not stretch the interval.
            next_status = now + status_every
            change = status_change(kind, call(backend.describe, kind, job_name))
            latest = change.description
            if change.terminal:
                # Lines written just before the end arrive after the last read.
                yield from call(backend.logs, kind, job_name, cursor)
                yield change
                return
            if last is None or (change.status, change.secondary_status) != (last.status, last.secondary_status):
                last = change
                yield change
        # Retrying a read loses nothing: a backend advances the cursor only when a read succeeds.
        yield from call(backend.logs, kind, job_name, cursor)
        trouble = cursor.state.get(LOGS_INCOMPLETE)
        if trouble and not told and notify is not None:
            notify(f"[{job_name}] cannot read the logs now ({trouble}); still following the job's status")
        told = bool(trouble)
        if tick is not None:
            tick(latest)
        sleep(max(0.0, min(log_every, next_status - clock())))


class _StatusLine:
    """The job's current phase and how long it has lasted, on one line of a terminal, redrawn in place.

    Silent unless ``stream`` is a terminal: logs and CI output never see it. Times
    count from when this watch saw the phase (and the watch) begin, on ``clock``.
    """

    def __init__(self, kind: str, job_name: str, stream: TextIO, clock: Clock) -> None:
        self.kind = kind
        self.job_name = job_name
        self.stream = stream
        self.clock = clock
        try:
            self.enabled = bool(stream.isatty())
        except (AttributeError, ValueError):  # no such method, or a closed stream
            self.enabled = False
        self.started = clock()
        self.phase: Optional[str] = None
        self.since = self.started
        self.shown = ""

    def update(self, description: Mapping[str, Any], marks: PhaseMarks) -> None:
        if not self.enabled or not description:
            return
        now = self.clock()
        phase = current_phase(self.kind, description, marks)
        if phase != self.phase:
            self.phase, self.since = phase, now
        text = status_text(self.job_name, phase, now - self.since, now - self.started)
        if text != self.shown:
            # "\x1b[K" erases what a longer previous text left on the line
            self.stream.write("\r" + text + "\x1b[K")
            self.stream.flush()
            self.shown = text

    def clear(self) -> None:
        """Erase the line, before anything else is printed; the next update draws it again."""
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = ""


class _Printer:
    """Writes what :func:`follow` yields and remembers the last log lines."""

    def __init__(self, job_name: str, out: TextIO, err: TextIO, tail: int, metrics: MetricTracker,
                 status_line: Optional[_StatusLine] = None) -> None:
        self.job_name = job_name
        self.out = out
        self.err = err
        self.lines: Deque[str] = deque(maxlen=max(tail, 0))
        self.metrics = metrics
        self.marks = PhaseMarks()
        self.status_line = status_line

    def tick(self, description: Mapping[str, Any]) -> None:
        if self.status_line is not None:
            self.out.flush()
            self.status_line.update(description, self.marks)

    def status(self, change: StatusChange) -> None:
        text = f"[{self.job_name}] {change.status}"
        if change.secondary_status and change.secondary_status != change.status:
            text += f" ({change.secondary_status}"
            text += f": {change.status_message})" if change.status_message else ")"
        self.note(text)

    def note(self, text: str) -> None:
        if self.status_line is not None:
            self.status_line.clear()
        print(text, file=self.err, flush=True)

    def log(self, event: LogEvent) -> None:
        # An event may hold several lines (a traceback written at once); each
        # gets the host prefix so multi-instance output stays readable.
        if self.status_line is not None:
            self.status_line.clear()
        for line in event.message.rstrip("\r\n").splitlines() or [""]:
            text = f"[{event.host}] {line}"
            print(text, file=self.out)
            if not self.marks.feed(line):  # a phase line says nothing about a failure
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
    retry_for: float = DEFAULT_RETRY_SECONDS,
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
    A job whose backend does not outlive this process (``outlives_caller`` false: the
    local backend runs it from here) is stopped even with ``detach``.

    :param metrics: ``(name, regex)`` pairs matched against every log line (see
        :class:`~aws_sagemaker_remote.metrics.MetricTracker`; the planner has
        already refused a regex that does not compile).
    :param tail: how many log lines the result keeps for the failure summary.
    :param retry_for: seconds during which transient AWS errors are retried
        (see :func:`follow`).
    :raises AwsError: the job could not be followed: an error that retrying
        cannot fix, as it came, or transient errors for longer than
        ``retry_for``, with a message that says the job may still be running and
        how to follow it again.
    """
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    tracker = MetricTracker(metrics)
    printer = _Printer(job_name, out, err, tail, tracker, _StatusLine(kind, job_name, err, clock))
    cursor = LogCursor.start()
    final: Optional[StatusChange] = None
    job = job_kind(kind)
    noted: List[str] = []  # warm pool and attempt notes, each printed once
    reused_pool = False
    new_instances = False  # asked for a pool, started without one: said once
    try:
        for item in follow(backend, kind, job_name, cursor=cursor, sleep=sleep, clock=clock, retry_for=retry_for,
                           notify=printer.note, tick=printer.tick):
            if isinstance(item, LogEvent):
                printer.log(item)
                continue
            printer.flush()
            printer.status(item)
            reused_pool = reused_pool or job.runs_on_warm_pool(item.description)
            # a local job runs here, not on instances a pool could keep (the launch said so already)
            cold = None if reused_pool or new_instances or not backend.outlives_caller \
                else job.starts_cold(item.description)
            if cold:
                new_instances = True
                printer.note(f"[{job_name}] {cold}")
            for note in job.watch_notes(item.description):
                if note not in noted:
                    noted.append(note)
                    printer.note(f"[{job_name}] {note}")
            if item.terminal:
                final = item
    except KeyboardInterrupt:
        printer.flush()
        _interrupted(backend, kind, job_name, printer, cursor, detach=detach, sleep=sleep, clock=clock,
                     stop_timeout=stop_timeout)
    finally:
        # an error raised out of follow() is printed by the caller: on a clean line
        if printer.status_line is not None:
            printer.status_line.clear()
    printer.flush()
    trouble = cursor.state.get(LOGS_INCOMPLETE)
    if trouble:
        # the status above came from describe; only the log lines are missing
        printer.note(f"[{job_name}] logs are incomplete ({trouble}); read them later with "
                     f"`aws-sagemaker-remote logs {kind} {job_name}`")
    assert final is not None  # follow() always ends with the terminal status
    return result_from_description(kind, final.description, backend, tuple(printer.lines), tracker.values,
                                   printer.marks.seconds, reused_pool=reused_pool, new_instances=new_instances)


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
    if detach and backend.outlives_caller:
        printer.note(f"[{job_name}] detached: the {kind} job keeps running on {backend.name}{where}")
        raise Interrupted(f"detached from {kind} job {job_name}; it keeps running{where}")
    if detach:
        # The local backend runs the job's processes from this one, and they die
        # with it: saying the job keeps running would be false.
        printer.note(f"[{job_name}] Ctrl-C: a local job cannot run without this process; stopping the {kind} job "
                     "(press Ctrl-C again to stop waiting)")
    else:
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
    phase_marks: Optional[Mapping[str, float]] = None,
    *,
    reused_pool: bool = False,
    new_instances: bool = False,
) -> JobResult:
    """The :class:`~aws_sagemaker_remote.spec.JobResult` of a job's final describe response.

    Pure: ``backend`` is only asked for the console URL.

    :param last_lines: the last log lines printed, for the failure summary.
    :param metrics_seen: training metrics parsed from the logs, used when the job
        reports no ``FinalMetricDataList``.
    :param phase_marks: seconds by phase from the job's ``phase NAME took`` log lines
        (see :mod:`aws_sagemaker_remote.phases`), for the result's ``timing``.
    :param reused_pool: the job was seen running on a warm pool an earlier job kept
        (a final response no longer says so).
    :param new_instances: the job asked for a warm pool but was seen starting on new instances.
    """
    job = job_kind(kind)
    job_name = str(description.get(job.name_key, ""))
    status = str(description.get(job.status_key, "Unknown"))
    failure: Optional[str] = None
    if status != "Completed":
        failure = description.get("FailureReason") or description.get("ExitMessage") or None
    common: Dict[str, Any] = {
        "kind": job.name,
        "job_name": job_name,
        "status": status,
        "failure_reason": failure,
        "console_url": backend.console_url(kind, job_name) if backend is not None else None,
        "last_log_lines": tuple(last_lines),
        # optional on a backend: test doubles and older backends have no such method
        "log_locations": tuple(getattr(backend, "log_locations", lambda k, n: ())(kind, job_name)),
        **job.iteration_facts(description, reused_pool, new_instances),
    }
    result = job.result(description, common, dict(metrics_seen or {}))
    return replace(result, timing=timing(kind, description, phase_marks))


def summary_lines(result: JobResult) -> List[str]:
    """The final summary of a job, one line each.

    Always the job and its status; when it completed, where its outputs are;
    otherwise the failure reason, the last log lines and the console URL. Once the
    job ended, where its time went (one ``time:`` line, when its timing is known).
    """
    lines = [f"{result.kind} job {result.job_name}: {result.status}"]
    if result.status == "InProgress":  # left running: say where its outputs will be
        lines.extend(f"  output {name}: {uri}" for name, uri in result.output_artifacts.items())
    if result.status != "Completed":
        lines.extend(iteration_lines(result))
    if result.status == "Completed":
        for name, uri in result.output_artifacts.items():
            lines.append(f"  output {name}: {uri}")
        if result.model_artifact_url:
            lines.append(f"  model: {result.model_artifact_url}")
        if result.output_data_url:
            lines.append(f"  output data: {result.output_data_url}")
        if result.training_image:
            lines.append(f"  image: {result.training_image}")
        if result.final_metrics:
            shown = " ".join(f"{k}={v:g}" for k, v in result.final_metrics.items())
            lines.append(f"  metrics: {shown}")
        lines.extend(breakdown_lines(result.timing))
        return lines + iteration_lines(result)
    if result.status != "InProgress":
        tail = _last_lines_not_in(result.last_log_lines, result.failure_reason or "")[-SUMMARY_TAIL:]
        if tail:
            lines.append(f"  last {len(tail)} log lines (paths are inside the job's container):")
            lines.extend(f"    {line}" for line in tail)
    if result.failure_reason:
        lines.append(f"  reason: {result.failure_reason}")
    lines.extend(breakdown_lines(result.timing))
    if result.status != "InProgress":
        lines.append(f"  full log: {PROG} logs {result.job_name}")
        lines.extend(f"  full log: {where}" for where in result.log_locations)
    if result.console_url:
        lines.append(f"  console: {result.console_url}")
    return lines


def iteration_lines(result: JobResult) -> List[str]:
    """The summary's lines on the job's attempt (with a retry strategy) and its warm pool.

    The attempt is counted from the secondary status transitions (SageMaker reports no attempt
    number); the pool's state is ``WarmPoolStatus`` of the final describe response.
    """
    lines: List[str] = []
    if result.attempt is not None and result.status not in ("InProgress", "Completed"):
        of = f" of {result.attempts_allowed}" if result.attempts_allowed else ""
        lines.append(f"  attempt: {result.attempt}{of} {result.status.lower()} (SageMaker retries only after "
                     f"an internal error; the script's own failure ends the job)")
    elif result.attempt is not None and result.attempt > 1:
        of = f" of {result.attempts_allowed}" if result.attempts_allowed else ""
        lines.append(f"  attempt: {result.attempt}{of} (SageMaker started the job again)")
    pool = result.warm_pool
    if pool is None:
        return lines
    if pool.reused:
        lines.append("  warm pool: this job ran on instances kept warm by an earlier job")
    elif pool.new_instances:
        from .kinds.training import POOL_MATCH

        lines.append(f"  warm pool: this job started on new instances ({POOL_MATCH})")
    billed = f"; {pool.billable_seconds} s billed for kept instances" if pool.billable_seconds is not None else ""
    if pool.status == "Available":
        until = f" until {pool.available_until.replace('T', ' ')[:19]} UTC" if pool.available_until else ""
        lines.append(f"  warm pool: kept{until} ({pool.keep_alive} s after the end, billed while it waits{billed}); "
                     f"end it now: {PROG} stop-pool {result.job_name}")
    elif pool.status == "Reused":
        taken = f" by job {pool.reused_by}" if pool.reused_by else ""
        lines.append(f"  warm pool: taken over{taken}{billed}")
    elif pool.status == "Requested":
        lines.append(f"  warm pool: asked for {pool.keep_alive} s; SageMaker reports no status yet "
                     f"(see `{PROG} describe {result.job_name}`)")
    elif pool.status != "InUse" or result.status != "InProgress":
        lines.append(f"  warm pool: {pool.status}{billed}")
    return lines


def _last_lines_not_in(lines: Sequence[str], reason: str) -> List[str]:
    """``lines`` without the trailing ones that ``reason`` already says.

    After a script's exception the log ends with ``ValueError: why`` and the bootstrap's
    ``script x.py exited with code 1``, and the failure reason holds both: shown once is enough.
    """
    kept = list(lines)
    while kept and reason:
        text = kept[-1].split("] ", 1)[-1].strip()  # without the "[algo-1] " host prefix
        text = text[len(LOG_PREFIX):].strip() if text.startswith(LOG_PREFIX) else text
        if not text or text not in reason:
            break
        kept.pop()
    return kept
