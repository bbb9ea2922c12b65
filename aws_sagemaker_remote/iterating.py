"""The commands that help iterate on a training job: ``stop-pool`` and ``shell``.

``stop-pool JOB`` ends a job's managed warm pool now instead of when its keep-alive
runs out: ``UpdateTrainingJob`` with ``ResourceConfig.KeepAlivePeriodInSeconds`` 0
(the API's way; the pool is billed while it waits).

``shell JOB [--host algo-N]`` opens a shell in a running training job launched with
``--sagemaker-remote-debug``, through an AWS Systems Manager session. The target is
the form SageMaker's remote debugging guide gives ("Access a training container
through AWS Systems Manager (SSM) for remote debugging"):
``sagemaker-training-job:<training-job-name>_algo-<n>``. The session is started by
the AWS CLI with the Session Manager plugin (``aws ssm start-session``); when
either is missing, the exact command is printed with what to install.
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import subprocess
from typing import TYPE_CHECKING, Any, Callable, List, Mapping, Optional, Sequence, TextIO, Tuple

from .backends.base import TRAINING
from .errors import RemoteError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from .jobs import Finder, FoundJob

PROG = "aws-sagemaker-remote"
#: The SSM target of one host of a training job (SageMaker's remote debugging guide).
SSM_TARGET = "sagemaker-training-job:{job}_{host}"
HOST_RE = re.compile(r"^algo-([1-9][0-9]*)$")
#: ``stop --pool``: how long to wait for a stopped job to read Stopped before its pool is ended again
#: (SageMaker gives the script 120 s after SIGTERM, then uploads what it saved)
STOPPED_WAIT_SECONDS = 300.0
STOPPED_POLL_SECONDS = 10.0
#: What the session needs on this machine, and where each is installed from.
NEEDED = (
    ("aws", "the AWS CLI: https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html"),
    ("session-manager-plugin", ("the Session Manager plugin for the AWS CLI: https://docs.aws.amazon.com/"
                                "systems-manager/latest/userguide/session-manager-working-with-install-plugin.html")),
)


class SessionUnavailable(RemoteError):
    """The job cannot take an SSM session now (not running, or launched without remote debugging)."""


def ssm_target(job_name: str, host: str) -> str:
    """``sagemaker-training-job:JOB_algo-N``."""
    return SSM_TARGET.format(job=job_name, host=host)


def ssm_command(job_name: str, host: str = "algo-1", *, region: Optional[str] = None,
                profile: Optional[str] = None) -> List[str]:
    """The ``aws ssm start-session`` command that opens a shell on ``host`` of training job ``job_name``."""
    command = ["aws", "ssm", "start-session", "--target", ssm_target(job_name, host)]
    if region:
        command += ["--region", region]
    if profile:
        command += ["--profile", profile]
    return command


def hosts_of(description: Mapping[str, Any]) -> List[str]:
    """``algo-1`` ... ``algo-N``: one host per instance of the job."""
    count = int((description.get("ResourceConfig") or {}).get("InstanceCount") or 1)
    return [f"algo-{i}" for i in range(1, max(count, 1) + 1)]


def check_host(host: str, hosts: Sequence[str], job_name: str) -> str:
    """``host`` when it is one of ``hosts``; :class:`UsageError` (exit 2) naming ``--host`` otherwise."""
    if HOST_RE.match(host) and host in hosts:
        return host
    allowed = hosts[0] if len(hosts) == 1 else f"{hosts[0]}..{hosts[-1]}"
    raise UsageError(f"{host!r} is not a host of training job {job_name}; allowed: {allowed}", flag="--host")


def _training_on_sagemaker(found: "FoundJob", command: str) -> None:
    if found.where == "local":
        raise UsageError(f"{found.name} is a local job: it runs on this machine and has no SageMaker "
                         f"instances ({command} works on SageMaker training jobs)", flag="JOB")


def _json(data: Any, out: TextIO) -> None:
    out.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


# --- stop-pool ------------------------------------------------------------------------------------

def end_pool(found: "FoundJob") -> Tuple[bool, str]:
    """End the warm pool of SageMaker training job ``found`` when it has one, or will keep one after it
    runs: (whether ``UpdateTrainingJob`` was sent, what happened, one line)."""
    _training_on_sagemaker(found, "stop-pool")
    description = found.backend.describe(TRAINING, found.name)
    pool = description.get("WarmPoolStatus") or {}
    status = pool.get("Status")
    if status in ("Terminated", "Reused"):
        moved = f" (taken over by job {pool['ReusedByJob']})" if pool.get("ReusedByJob") else ""
        return False, f"the warm pool of training job {found.name} is already {status}{moved}: nothing to end"
    if status is None and not (description.get("ResourceConfig") or {}).get("KeepAlivePeriodInSeconds"):
        return False, f"training job {found.name} asked for no warm pool (no keep-alive): nothing to end"
    found.backend.end_warm_pool(found.name)  # type: ignore[attr-defined]  # SageMakerBackend's own call
    if status == "Available":
        return True, f"ending the warm pool of training job {found.name}: its instances are released"
    return True, f"training job {found.name} keeps no warm pool after it ends (keep-alive set to 0)"


def stop_pool_hint(job_name: str) -> str:
    """What to run by hand when the pool could not be ended."""
    return f"run `{PROG} stop-pool {job_name}` once it is Stopped"


def end_pool_once_stopped(found: "FoundJob", refused: RemoteError, *, note: Callable[[str], None],
                          sleep: Callable[[float], None], clock: Callable[[], float]) -> Optional[str]:
    """``stop --pool`` after the stop, when ending the pool before it failed (``refused``): wait for the
    job to read Stopped (at most :data:`STOPPED_WAIT_SECONDS`), then end the pool once more.

    Returns None when the pool is ended (or there is none left to end), else the one line saying what
    failed and what to run by hand.
    """
    from .backends.base import TERMINAL_STATUSES

    note(f"the warm pool of training job {found.name} was not ended before the stop ({refused}); trying again "
         f"once the job is Stopped (waiting at most {STOPPED_WAIT_SECONDS:.0f} s)")
    deadline = clock() + STOPPED_WAIT_SECONDS
    status = None
    try:
        while True:
            status = found.backend.describe(TRAINING, found.name).get("TrainingJobStatus")
            if status in TERMINAL_STATUSES or clock() >= deadline:
                break
            sleep(STOPPED_POLL_SECONDS)
        if status not in TERMINAL_STATUSES:
            return (f"training job {found.name} is still {status} after {STOPPED_WAIT_SECONDS:.0f} s, so its warm "
                    f"pool was not ended; {stop_pool_hint(found.name)}")
        note(end_pool(found)[1])
        return None
    except UsageError:
        raise
    except RemoteError as exc:
        # the job has ended: a later stop-pool may still get through (a refusal names its reason)
        return f"{exc}; run `{PROG} stop-pool {found.name}` to try again"


def run_stop_pool(args: argparse.Namespace, finder: "Finder", out: TextIO, err: TextIO) -> int:
    """``stop-pool JOB``: set the job's keep-alive to 0, which ends its warm pool now (or, for a job
    still running, keeps none after it)."""
    found = finder.find(args.job_name, TRAINING)
    ended, note = end_pool(found)
    if args.json:
        _json({"job_name": found.name, "ended": ended, "note": note}, out)
    else:
        print(note, file=err)
    return 0


# --- shell --------------------------------------------------------------------------------------------

def run_shell(args: argparse.Namespace, finder: "Finder", out: TextIO, err: TextIO) -> int:
    """``shell JOB [--host algo-N] [--print]``: an SSM session on one host of a running training job."""
    found = finder.find(args.job_name, TRAINING)
    _training_on_sagemaker(found, "shell")
    description = found.backend.describe(TRAINING, found.name)
    hosts = hosts_of(description)
    host = check_host(args.host or hosts[0], hosts, found.name)
    status = description.get("TrainingJobStatus")
    if status != "InProgress":
        raise SessionUnavailable(f"training job {found.name} is {status}: a shell reaches running jobs only")
    if not (description.get("RemoteDebugConfig") or {}).get("EnableRemoteDebug"):
        raise SessionUnavailable(f"training job {found.name} was launched without remote debugging: launch it with "
                                 f"--sagemaker-remote-debug (its role needs the ssmmessages permissions)")
    region = getattr(found.backend, "region", None) or None
    command = ssm_command(found.name, host, region=region, profile=args.profile)
    if args.json:
        _json({"job_name": found.name, "host": host, "hosts": hosts, "target": ssm_target(found.name, host),
               "command": command}, out)
        return 0
    if description.get("SecondaryStatus") not in (None, "Training"):
        # the remote debugging guide: the container is reachable once the job is Training
        print(f"training job {found.name} is {description['SecondaryStatus']}: the session may fail until it "
              f"is Training", file=err)
    if len(hosts) > 1 and not args.host:
        print(f"training job {found.name} has hosts {', '.join(hosts)}; opening {host} (choose with --host)",
              file=err)
    if args.print:
        print(shlex.join(command), file=out)
        return 0
    missing = [(tool, what) for tool, what in NEEDED if shutil.which(tool) is None]
    if missing:
        # the command for another machine, or for after the install; no shell was opened here
        print(shlex.join(command), file=out)
        for tool, what in missing:
            print(f"{tool} is not on PATH; install {what}", file=err)
        return 1
    return _session(command)


def _session(command: Sequence[str]) -> int:
    """Run the session in the foreground; Ctrl-C belongs to it (the remote shell), not to this process."""
    proc = subprocess.Popen(list(command))
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:
            continue


def add_commands(command: Any) -> None:
    """Add ``stop-pool`` and ``shell`` to the command's parser (``command(name, help)`` makes a subparser)."""
    cmd = command("stop-pool", "end a training job's warm pool now (its keep-alive set to 0); the pool is "
                               "billed while it waits")
    cmd.add_argument("job_name", metavar="JOB", help="training job name")
    cmd = command("shell", "open a shell in a running training job launched with --sagemaker-remote-debug "
                           "(aws ssm start-session; needs the AWS CLI and its Session Manager plugin)")
    cmd.add_argument("job_name", metavar="JOB", help="training job name")
    cmd.add_argument("--host", metavar="algo-N", help="the instance to open the shell on (default: algo-1)")
    cmd.add_argument("--print", action="store_true",
                     help="print the aws ssm start-session command instead of running it")
