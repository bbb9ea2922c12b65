"""The ``aws-sagemaker-remote`` command.

Scripts get their flags from :func:`~aws_sagemaker_remote.sagemaker_processing_main`;
this command works on jobs that already exist: ``describe``, ``logs`` (follow a
job's status and logs until it ends) and ``stop``.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional, Sequence

from ._version import __version__
from .errors import RemoteError
from .flags import Parser

KINDS = ("processing", "training")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="aws-sagemaker-remote",
                    description="Work with SageMaker jobs launched by aws_sagemaker_remote scripts.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--profile", metavar="NAME", help="AWS profile")
    parser.add_argument("--region", metavar="REGION", help="AWS region")
    parser.add_argument("--endpoint-url", metavar="URL", help="SageMaker endpoint URL")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, text in (("describe", "print a job's description as JSON"),
                       ("logs", "follow a job's status and logs until it ends"),
                       ("stop", "stop a running job")):
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument("kind", choices=KINDS, help="job kind")
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
        code = _run(args)
    except RemoteError as exc:
        print(f"aws-sagemaker-remote: error: {exc}", file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        code = 130
    if argv is None:
        sys.exit(code)
    return code


def _run(args: argparse.Namespace) -> int:
    from .aws import make_clients, make_session, translate_errors
    from .backends.sagemaker import SageMakerBackend
    from .watch import summary_lines, wait

    session = make_session(args.profile, args.region, None)
    clients = make_clients(session, args.endpoint_url)
    backend = SageMakerBackend(clients.sagemaker, clients.logs, session.region_name)
    if args.command == "describe":
        with translate_errors(f"describing {args.job_name}"):
            description = backend.describe(args.kind, args.job_name)
        print(json.dumps(description, indent=2, sort_keys=True, default=str))
        return 0
    if args.command == "stop":
        with translate_errors(f"stopping {args.job_name}"):
            backend.stop(args.kind, args.job_name)
        print(f"stopping {args.kind} job {args.job_name}", file=sys.stderr)
        return 0
    result = wait(backend, args.kind, args.job_name)
    lines: List[str] = summary_lines(result)
    for line in lines:
        print(line, file=sys.stderr)
    return result.exit_code


if __name__ == "__main__":
    main()
