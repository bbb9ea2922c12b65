"""The instances' processes: command line, environment, start, log lines, stop, reaping.

Each instance runs ``ContainerEntrypoint + ContainerArguments`` as one process
in its own process group, so that a stop reaches everything it started, and
everything left in the group is killed when the first process exits, as a
container's end would. Each group is also announced to :mod:`.guard`, which
kills it if the launcher dies without cleaning up (``kill -9``). POSIX only.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from typing import Callable, Dict, List, Mapping, Optional, Sequence

from ...container import WARM_POOL_CACHE_ENV, ContainerPaths
from ...errors import exit_status
from . import guard
from .isolation import relocated_variables, wrap
from .state import Instance, Job, JobError, Settings

#: Seconds between two looks at the running processes (exit, stop, time limit).
POLL_SECONDS = 0.02
#: Seconds to wait for the rest of an instance's output once its process exited.
READER_JOIN_SECONDS = 5.0

# Interpreter names in ContainerEntrypoint that mean "the image's Python".
_PYTHON_NAMES = re.compile(r"^(?:.*/)?python(?:3(?:\.\d+)?)?$")

#: The variables one instance adds to its process's environment.
ExtraEnvironment = Callable[[Instance], Mapping[str, str]]


def command(instance: Instance, entrypoint: Optional[Sequence[str]], arguments: Optional[Sequence[str]],
            python: str, relocate: bool = True) -> List[str]:
    """The instance's command line: ``python3`` → ``python``, ``/opt/ml`` paths moved into its folder
    when ``relocate`` (without a mount namespace).

    :raises JobError: the request has no ``ContainerEntrypoint``.
    """
    if not entrypoint:
        raise JobError("ClientError: the local backend runs ContainerEntrypoint + ContainerArguments; this "
                       "request has no ContainerEntrypoint (running the image's own entrypoint needs Docker)")
    default = ContainerPaths()
    root = instance.paths.root if relocate else None
    line = [default.relocate(arg, root) for arg in list(entrypoint) + list(arguments or [])]
    if _PYTHON_NAMES.match(line[0]):
        line[0] = python
    return line


def environment(job: Job, instance: Instance, extra: Mapping[str, str], relocate: bool = True) -> Dict[str, str]:
    """This process's environment, then the request's ``Environment``, then ``extra``, then, when
    ``/opt/ml`` is relocated, the variables that name the instance's folder."""
    # The job runs as the current user: AWS credentials and AWS_ENDPOINT_URL stay,
    # so a script reaches the same endpoint (moto, LocalStack, your account) as the launcher.
    env = dict(os.environ)
    default = ContainerPaths()
    # container paths in the request's variables move with the instance, like the arguments
    root = instance.paths.root if relocate else None
    env.update({str(k): default.relocate(str(v), root)
                for k, v in (job.request.get("Environment") or {}).items()})
    env.update(extra)
    if root:
        env.update(relocated_variables(root))
    # every local job is on a "warm instance": its requirements and configuration go into an
    # environment kept there (never into this interpreter), reused by the next job
    env[WARM_POOL_CACHE_ENV] = default.relocate(default.warm_pool_cache, root)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def warm_pool_folder() -> str:
    """The folder that stands in for the warm-pool cache of every local job: kept across jobs,
    under the tool's home (``~/.cache/aws-sagemaker-remote/warmpoolcache``)."""
    from ...store import home_dir

    return os.path.join(home_dir(), "warmpoolcache")


def emulate_warm_pool_cache(instance: Instance) -> None:
    """Make the instance's ``/opt/ml/sagemaker/warmpoolcache`` a link to :func:`warm_pool_folder`.

    A link, not a copy or a mount: it reads the same in both ways of finding ``/opt/ml``
    (the bootstrap resolves it, so environments built there have one path whatever the job).
    """
    shared = warm_pool_folder()
    os.makedirs(shared, exist_ok=True)
    link = instance.paths.warm_pool_cache
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if not os.path.lexists(link):
        os.symlink(shared, link)


def execute(settings: Settings, job: Job, entrypoint: Optional[Sequence[str]],
            arguments: Optional[Sequence[str]], extra: ExtraEnvironment) -> None:
    """Run every instance's process concurrently until all end, honouring stop and MaxRuntime.

    ``MaxRuntimeInSeconds`` and the stop grace period are measured on
    ``settings.clock``; a stop sends SIGTERM to each first process at once and
    SIGKILL to every process group once ``settings.stop_grace`` has passed.
    Afterwards every instance has an ``exit_code`` (128+N for death by signal N).
    """
    relocate = not settings.namespaces
    for instance in job.instances:
        emulate_warm_pool_cache(instance)
    lines = [(i, command(i, entrypoint, arguments, settings.python, relocate)) for i in job.instances]
    if settings.namespaces:
        # each process sees its own folder at /opt/ml and none of the job folder
        lines = [(i, wrap(settings.python, i.paths.root, job.job_dir or "", line)) for i, line in lines]
    job.mark_started()
    for instance, line in lines:
        if job.stop_event.is_set():
            break
        try:
            instance.process = subprocess.Popen(
                line, cwd=instance.fs_root, env=environment(job, instance, extra(instance), relocate),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True)  # its own process group: stop reaches every child
        except OSError as exc:
            raise JobError(f"ClientError: cannot start {line[0]}: {exc}") from exc
        guard.watch(instance.process.pid)  # killed by the guard if this process dies first
        instance.reader = threading.Thread(target=read_lines, args=(job, instance),
                                           name=f"local-log-{job.name}-{instance.host}", daemon=True)
        instance.reader.start()
    _supervise(settings, job)
    for instance in job.instances:
        if instance.reader is not None:
            instance.reader.join(READER_JOIN_SECONDS)
    for instance in job.instances:
        if instance.process is None and instance.exit_code is None:
            # never started: the job was stopped first
            instance.exit_code = exit_status(-signal.SIGTERM)


def _supervise(settings: Settings, job: Job) -> None:
    """Wait for the started processes to end; apply the time limit and a stop."""
    max_runtime = job.request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
    deadline = settings.clock() + float(max_runtime) if max_runtime else None
    term_sent: Optional[float] = None
    running = [i for i in job.instances if i.process is not None]
    while running:
        running = [i for i in running if not reap(i)]
        if not running:
            break
        now = settings.clock()
        if deadline is not None and now > deadline and not job.stop_event.is_set():
            job.exceed_max_runtime()
        if job.stop_event.is_set():
            if term_sent is None:
                term_sent = now
                for instance in running:
                    # like SageMaker, SIGTERM goes to the container's first process
                    send_signal(instance, signal.SIGTERM)
            elif now - term_sent > settings.stop_grace:
                for instance in running:
                    kill_group(instance, signal.SIGKILL)
        settings.sleep(POLL_SECONDS)


def read_lines(job: Job, instance: Instance) -> None:
    """Turn an instance's output into log events, one per line."""
    process = instance.process
    assert process is not None and process.stdout is not None
    for raw in iter(process.stdout.readline, b""):
        job.add_line(instance.host, raw.decode("utf-8", "replace").rstrip("\r\n"))
    process.stdout.close()


def reap(instance: Instance) -> bool:
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
        kill_group(instance, signal.SIGKILL)
        guard.forget(process.pid)
        code = process.wait()
    else:
        polled = process.poll()
        if polled is None:
            return False
        code = polled
        kill_group(instance, signal.SIGKILL)
        guard.forget(process.pid)
    instance.exit_code = exit_status(code)
    return True


def send_signal(instance: Instance, signum: int) -> None:
    """Signal the instance's first process, if it still runs."""
    process = instance.process
    if process is not None and process.returncode is None:
        try:
            process.send_signal(signum)
        except OSError:
            pass


def kill_group(instance: Instance, signum: int) -> None:
    """Signal the instance's whole process group, unless it was already reaped and cleaned up.

    After :func:`reap` the group is gone and its id may belong to someone else.
    """
    process = instance.process
    if process is None or instance.exit_code is not None:
        return
    try:
        os.killpg(process.pid, signum)
    except OSError:
        pass
