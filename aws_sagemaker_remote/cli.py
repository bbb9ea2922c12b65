"""The ``aws-sagemaker-remote`` command.

Scripts get their flags from :func:`~aws_sagemaker_remote.sagemaker_processing_main`;
this command works on jobs that already exist: ``describe``, ``logs`` (follow a
job's status and logs until it ends; Ctrl-C stops following, never the job)
and ``stop``.

Exit codes: 0 done (``logs``: the job completed), 1 the job failed or an AWS
call failed, 2 bad usage, 130 Ctrl-C.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Callable, Optional, Sequence, TextIO

from ._version import __version__
from .errors import CredentialsError, Interrupted, RemoteError, UsageError
from .flags import Parser
from .kinds import NAMES

if TYPE_CHECKING:  # pragma: no cover
    from .backends.base import Backend

PROG = "aws-sagemaker-remote"


def build_parser() -> argparse.ArgumentParser:
    """The command's parser: global AWS options, then ``COMMAND KIND JOB_NAME``."""
    parser = Parser(prog=PROG, description="Work with SageMaker jobs launched by aws_sagemaker_remote scripts.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--profile", metavar="NAME", help="AWS profile")
    parser.add_argument("--region", metavar="REGION", help="AWS region")
    parser.add_argument("--endpoint-url", metavar="URL", help="SageMaker endpoint URL")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, text in (("describe", "print a job's description as JSON"),
                       ("logs", "follow a job's status and logs until it ends (Ctrl-C leaves the job running)"),
                       ("stop", "stop a running job")):
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument("kind", choices=NAMES, help="job kind")
        cmd.add_argument("job_name", help="job name")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the console script; returns (and exits with) the process exit code."""
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if not args.command:
        parser.print_help()
        return 0
    try:
        code = run_command(args, sagemaker_backend(args))
    except Interrupted as exc:
        # Ctrl-C on "logs" is how one stops following a job: not an error.
        print(f"{PROG}: {exc}", file=sys.stderr)
        code = exc.exit_code
    except RemoteError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        code = Interrupted.exit_code
    if argv is None:
        sys.exit(code)
    return code


def sagemaker_backend(args: argparse.Namespace) -> "Backend":
    """The SageMaker backend for the command's ``--profile``, ``--region`` and ``--endpoint-url``.

    :raises UsageError: the profile does not exist.
    :raises CredentialsError: no region is configured.
    """
    from .aws import make_clients, make_session
    from .backends.sagemaker import SageMakerBackend

    # make_session's messages name the scripts' --sagemaker-* flags; this command's are shorter.
    try:
        session = make_session(args.profile, args.region, None)
    except UsageError as exc:
        if exc.flag != "--sagemaker-profile":
            raise  # the profile came from AWS_PROFILE, and the message says so
        raise UsageError(f"no AWS profile named {args.profile!r} in the AWS config files", flag="--profile") from exc
    except CredentialsError as exc:
        # With no role to assume, a missing region is the only CredentialsError make_session raises.
        raise CredentialsError("no AWS region configured: pass --region REGION or set AWS_REGION "
                               "or AWS_DEFAULT_REGION") from exc
    return SageMakerBackend.from_clients(make_clients(session, args.endpoint_url))


def run_command(
    args: argparse.Namespace,
    backend: "Backend",
    *,
    out: Optional[TextIO] = None,
    err: Optional[TextIO] = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Run the parsed command on ``backend``; returns the exit code.

    ``logs`` only watches: Ctrl-C raises :class:`~aws_sagemaker_remote.errors.Interrupted`
    and leaves the job running. ``sleep`` and ``clock`` pace ``logs``.
    """
    from .watch import summary_lines, wait

    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    if args.command == "describe":
        description = backend.describe(args.kind, args.job_name)
        print(json.dumps(description, indent=2, sort_keys=True, default=str), file=out)
        return 0
    if args.command == "stop":
        backend.stop(args.kind, args.job_name)
        print(f"stopping {args.kind} job {args.job_name}", file=err)
        return 0
    result = wait(backend, args.kind, args.job_name, out=out, err=err, detach=True, sleep=sleep, clock=clock)
    for line in summary_lines(result):
        print(line, file=err)
    return result.exit_code


if __name__ == "__main__":
    main()
