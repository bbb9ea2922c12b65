"""The ``aws-sagemaker-remote`` command (also ``python -m aws_sagemaker_remote``).

Scripts get their flags from :func:`~aws_sagemaker_remote.sagemaker_processing_main`;
this command works on the jobs they launched, on SageMaker and on this machine
(``--sagemaker-run=local``): ``list``, ``describe``, ``logs``, ``stop``,
``download``, ``rerun`` and ``clean``; for training jobs also ``stop-pool`` (end a
warm pool) and ``shell`` (a shell in the running job). A job is named by its name alone: local
jobs are looked up in the local registry first, then SageMaker is asked for a
processing job and a training job of that name.

Output is a human table or summary by default and JSON with ``--json``.

Exit codes: 0 done (``logs --follow``, ``rerun``: the job completed), 1 the job
failed or an AWS call failed, 2 bad usage, 130 Ctrl-C, 141 the reader of the
output went away (``describe ... | head``).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, List, Mapping, Optional, Sequence, TextIO

from ._version import __version__
from .errors import EXIT_FAILED, EXIT_USAGE, Interrupted, RemoteError, UsageError
from .flags import Parser

if TYPE_CHECKING:  # pragma: no cover
    from .jobs import Finder, FoundJob

KINDS = ("processing", "training")
PROG = "aws-sagemaker-remote"
#: exit status of a command whose output pipe was closed (128 + SIGPIPE), as shells report it
EXIT_BROKEN_PIPE = 141
DEFAULT_LIST_LIMIT = 20
DEFAULT_CLEAN_DAYS = 7.0


def _aws_options(parser: argparse.ArgumentParser, default: Any) -> None:
    group = parser.add_argument_group("AWS")
    group.add_argument("--profile", metavar="NAME", default=default, help="AWS profile (default: AWS_PROFILE)")
    group.add_argument("--region", metavar="REGION", default=default,
                       help="AWS region (default: the profile's, or AWS_DEFAULT_REGION)")
    group.add_argument("--endpoint-url", metavar="URL", default=default,
                       help="SageMaker endpoint URL (other services: AWS_ENDPOINT_URL)")


def build_parser() -> argparse.ArgumentParser:
    """The command's parser. ``--profile``, ``--region`` and ``--endpoint-url`` go before or after the
    subcommand; ``--json`` after it."""
    parser = Parser(prog=PROG, description="Work with the jobs launched by aws_sagemaker_remote scripts, on "
                                           "SageMaker and on this machine.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _aws_options(parser, None)
    # on a subcommand the AWS flags default to "not given", so they never undo the ones before it
    common = Parser(add_help=False)
    _aws_options(common, argparse.SUPPRESS)
    common.add_argument("--json", action="store_true", help="print JSON for scripts instead of text")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, parents=[common])

    def job(cmd: argparse.ArgumentParser) -> None:
        cmd.add_argument("job_name", metavar="JOB", help="job name")
        cmd.add_argument("--kind", choices=KINDS, help="look only for a job of this kind (default: both)")

    cmd = command("list", "list recent jobs launched by this tool, on SageMaker and on this machine")
    cmd.add_argument("--prefix", metavar="TEXT", help="only jobs whose name starts with TEXT")
    cmd.add_argument("--status", metavar="STATUS",
                     help="only jobs with this status: InProgress, Completed, Failed, Stopping or Stopped")
    cmd.add_argument("--limit", metavar="N", type=int, default=DEFAULT_LIST_LIMIT,
                     help=f"at most N jobs, newest first (default: {DEFAULT_LIST_LIMIT})")
    cmd.add_argument("--local", action="store_true", help="only jobs of this machine (do not ask SageMaker)")
    cmd.add_argument("--all", action="store_true", dest="everyone",
                     help="also SageMaker jobs not launched by this tool")

    cmd = command("describe", "show a job: status, times, resources, inputs and outputs")
    job(cmd)

    cmd = command("logs", "print a job's log lines (with --follow: until it ends; Ctrl-C leaves it running)")
    job(cmd)
    cmd.add_argument("--follow", "-f", action="store_true", help="follow the status and logs until the job ends")

    cmd = command("stop", "stop a running job")
    job(cmd)
    cmd.add_argument("--pool", action="store_true",
                     help="training: also keep no warm pool after it (see stop-pool), so nothing stays billed")

    cmd = command("download", "download a job's outputs (training: model and output archives, unpacked)")
    job(cmd)
    cmd.add_argument("output", metavar="OUTPUT", nargs="?",
                     help="one output (training: model, output, or a folder of the output archive); default: all")
    cmd.add_argument("--to", metavar="DIR", help="folder to download into, one subfolder per output "
                                                 "(default: ./JOB)")
    cmd.add_argument("--overwrite", action="store_true", help="write into folders that are not empty")

    cmd = command("rerun", "run a job again: the same staged code, inputs and arguments, under a new name")
    job(cmd)
    from .rerun import add_override_flags

    add_override_flags(cmd)

    from .iterating import add_commands

    add_commands(command)

    cmd = command("clean", "delete staged files and local records that no recent job uses (a dry listing "
                           "unless --yes)")
    cmd.add_argument("--older-than", metavar="DAYS", type=float, default=DEFAULT_CLEAN_DAYS,
                     help=f"jobs and files newer than this are kept (default: {DEFAULT_CLEAN_DAYS:g})")
    cmd.add_argument("--yes", action="store_true", help="delete (without it, only list what would go)")
    cmd.add_argument("--bucket", metavar="NAME", help="S3 bucket (default: sagemaker-REGION-ACCOUNT)")
    cmd.add_argument("--prefix", metavar="PREFIX", help="staging prefix in the bucket (default: the scripts')")
    cmd.add_argument("--local", action="store_true", help="only this machine's store and records (not S3)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the console script; returns (and, when run as a program, exits with) the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        code = _main(args_list)
        sys.stdout.flush()
    except BrokenPipeError:
        code = _broken_pipe()
    if argv is None:
        sys.exit(code)
    return code


def _broken_pipe() -> int:
    """The reader went away (``| head``): stop quietly, as other commands do."""
    try:
        # Python flushes stdout again at exit; point it at /dev/null so that flush cannot fail
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_BROKEN_PIPE


def _main(argv: List[str]) -> int:
    from .rerun import kfp_arguments

    kfp = kfp_arguments(argv)
    if kfp is not None:
        return _guarded(lambda: _run_kfp(kfp))
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_usage(sys.stderr)
        print(f"{PROG}: error: a command is needed: list, describe, logs, stop, download, rerun, clean, "
              "stop-pool or shell (see --help)", file=sys.stderr)
        return EXIT_USAGE
    return _guarded(lambda: run_command(args))


def _run_kfp(argv: List[str]) -> int:
    from .rerun import run_from_kfp

    return run_from_kfp(argv)


def _guarded(run: Callable[[], int]) -> int:
    from .jobs import own_flags

    try:
        return run()
    except BrokenPipeError:
        raise
    except Interrupted as exc:
        # Ctrl-C on "logs" is how one stops following a job: not an error.
        print(f"{PROG}: {exc}", file=sys.stderr)
        return exc.exit_code
    except RemoteError as exc:
        print(f"{PROG}: error: {own_flags(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return Interrupted.exit_code


def finder_for(args: argparse.Namespace) -> "Finder":
    """The job finder for the command's AWS options."""
    from .jobs import AwsOptions, Finder

    return Finder(AwsOptions(args.profile, args.region, args.endpoint_url))


def run_command(
    args: argparse.Namespace,
    finder: Optional["Finder"] = None,
    *,
    out: Optional[TextIO] = None,
    err: Optional[TextIO] = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Run the parsed command; returns the exit code.

    ``logs --follow`` only watches: Ctrl-C raises :class:`~aws_sagemaker_remote.errors.Interrupted`
    and leaves the job running. ``sleep`` and ``clock`` pace it.
    """
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    finder = finder or finder_for(args)
    if args.command == "list":
        return _list(args, finder, out, err)
    if args.command == "clean":
        from .clean import run_clean

        return run_clean(args, finder, out, err)
    from .plan import check_job_name

    # a job name is also a file name under the tool's home: only SageMaker's job names are looked up
    check_job_name(args.job_name, flag="JOB")
    if args.command in ("stop-pool", "shell"):
        from .iterating import run_shell, run_stop_pool

        return (run_stop_pool if args.command == "stop-pool" else run_shell)(args, finder, out, err)
    if args.command == "rerun" and args.from_kfp is not None:
        # the component's command line is read by parse_invocation, and only in its own form
        raise UsageError("a pipeline step's command is `rerun JOB --from-kfp RECORD ...`, with no options "
                         "before `rerun`", flag="--from-kfp")
    if args.command == "rerun":
        from .rerun import check_overrides

        check_overrides(args)
    found = finder.find(args.job_name, args.kind)
    if args.command == "describe":
        return _describe(args, found, out)
    if args.command == "stop":
        return _stop(args, found, out, err, sleep, clock)
    if args.command == "logs":
        return _logs(args, found, out, err, sleep, clock)
    if args.command == "download":
        return _download(args, finder, found, out, err)
    from .rerun import run_rerun

    return run_rerun(args, finder, found, out, err)


def _stop(args: argparse.Namespace, found: "FoundJob", out: TextIO, err: TextIO,
          sleep: Callable[[float], None], clock: Callable[[], float]) -> int:
    """``stop JOB [--pool]``. The stop is always sent; with ``--pool`` the warm pool is ended first
    (a stopped job keeps its instances warm like a completed one), and when SageMaker refuses that
    while the job runs, once more after the job reads Stopped."""
    refused: Optional[RemoteError] = None
    if args.pool:
        from .iterating import end_pool

        if found.kind != "training":
            raise UsageError(f"{found.name} is a {found.kind} job; only training jobs keep warm pools",
                             flag="--pool")
        try:
            print(end_pool(found)[1], file=err)
        except UsageError:
            raise
        except RemoteError as exc:
            refused = exc
    try:
        found.backend.stop(found.kind, found.name)
    except RemoteError as exc:
        if refused is not None:
            from .iterating import stop_pool_hint

            # one error line still: the stop's, then the pool's
            exc.message = f"{exc.message}; the warm pool was not ended either ({refused}); " \
                          f"{stop_pool_hint(found.name)}"
        raise
    if not args.json:
        print(f"stopping {found.kind} job {found.name}", file=err)
    problem = None
    if refused is not None:
        from .iterating import end_pool_once_stopped

        problem = end_pool_once_stopped(found, refused, note=lambda text: print(text, file=err),
                                        sleep=sleep, clock=clock)
    if args.json:
        data = {"job_name": found.name, "kind": found.kind, "where": found.where, "stopping": True}
        if args.pool:
            data["warm_pool_error"] = problem  # None: ended, or there was none to end
        _json(data, out)
    if problem is not None:
        print(f"{PROG}: error: {problem}", file=err)
        return EXIT_FAILED
    return 0


# --- output -----------------------------------------------------------------------------------------

def _json(data: Any, out: TextIO) -> None:
    out.write(json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    return str(value)


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> List[str]:
    """Left-aligned columns two spaces apart."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]]


def _when(value: Any) -> str:
    from .jobs import parse_time

    stamp = parse_time(value)
    return stamp.astimezone(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if stamp else "-"


def _duration(start: Any, end: Any) -> str:
    from .jobs import parse_time

    begun, ended = parse_time(start), parse_time(end)
    if not begun:
        return "-"
    seconds = int(((ended or _dt.datetime.now(_dt.timezone.utc)) - begun).total_seconds())
    text = f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s"
    return text if ended else text + "+"


def _list(args: argparse.Namespace, finder: "Finder", out: TextIO, err: TextIO) -> int:
    from .jobs import check_status, list_jobs

    if args.limit < 1:
        raise UsageError(f"{args.limit} is not a positive number", flag="--limit")
    rows = list_jobs(finder, prefix=args.prefix, status=check_status(args.status), limit=args.limit,
                     local_only=args.local, everyone=args.everyone, note=lambda text: print(text, file=err))
    if args.json:
        _json([r.to_json() for r in rows], out)
        return 0
    if not rows:
        print("no jobs", file=err)
        return 0
    for line in table([(r.name, r.kind, r.where, r.status, _when(r.created), _duration(r.created, r.ended))
                       for r in rows], ("NAME", "KIND", "WHERE", "STATUS", "CREATED (UTC)", "TOOK")):
        print(line, file=out)
    return 0


def describe_lines(found: "FoundJob", description: Mapping[str, Any]) -> List[str]:
    """The human summary of a describe response."""
    from .backends.base import STATUS_KEY
    from .kinds import job_kind

    kind = found.kind
    job = job_kind(kind)
    resources = job.at(description, job.resources_path) or {}
    start = description.get(job.response_key("StartTime"))
    end = description.get(job.response_key("EndTime"))
    image = job.at(description, job.image_path)
    where = "this machine (local backend)" if found.where == "local" else "SageMaker"
    fields = [
        ("job", found.name), ("kind", kind), ("where", where),
        ("status", str(description.get(STATUS_KEY[kind], "Unknown"))
         + (f" ({description['SecondaryStatus']})" if description.get("SecondaryStatus") not in
            (None, description.get(STATUS_KEY[kind])) else "")),
        ("created", _when(description.get("CreationTime"))),
        ("started", _when(start)), ("ended", _when(end)),
    ]
    if start:
        fields.append(("took", _duration(start, end)))
    if resources:
        count, itype = resources.get("InstanceCount", "?"), resources.get("InstanceType", "?")
        fields.append(("instances", f"{count} x {itype}, {resources.get('VolumeSizeInGB', '?')} GB"))
    if image:
        fields.append(("image", str(image)))
    facts = job.iteration_facts(description, reused_pool=False)
    pool = facts.get("warm_pool")
    if pool is not None:
        billed = f", {pool.billable_seconds} s billed" if pool.billable_seconds is not None else ""
        fields.append(("warm pool", f"{pool.status}, keep-alive {pool.keep_alive} s{billed}"
                       + (f", taken over by {pool.reused_by}" if pool.reused_by else "")))
    if facts.get("attempts_allowed"):
        fields.append(("attempt", f"{facts['attempt']} of {facts['attempts_allowed']}"))
    if job.at(description, ("RemoteDebugConfig", "EnableRemoteDebug")):
        fields.append(("remote debug", f"on ({PROG} shell {found.name})"))
    if description.get("RoleArn"):
        fields.append(("role", str(description["RoleArn"])))
    fields += [(f"input {name}", str(source.get("S3Uri", "")))
               for name, source in job.request_inputs(description).items()]
    fields += [(f"output {name}", str(output.get("S3Uri", "")))
               for name, output in job.request_outputs(description).items()]
    model = job.at(description, ("ModelArtifacts", "S3ModelArtifacts"))
    if model:
        fields.append(("model", str(model)))
    elif job.at(description, ("OutputDataConfig", "S3OutputPath")):
        fields.append(("output path", str(description["OutputDataConfig"]["S3OutputPath"])))
    fields += [(f"metric {m['MetricName']}", f"{m['Value']:g}")
               for m in description.get("FinalMetricDataList") or [] if "MetricName" in m]
    for key, label in (("FailureReason", "reason"), ("ExitMessage", "exit message")):
        if description.get(key):
            fields.append((label, " ".join(str(description[key]).split())))
    url = found.backend.console_url(kind, found.name)
    if url:
        fields.append(("console", url))
    width = max(len(label) for label, _ in fields)
    return [f"{label + ':':<{width + 1}} {value}" for label, value in fields]


def _describe(args: argparse.Namespace, found: "FoundJob", out: TextIO) -> int:
    description = found.backend.describe(found.kind, found.name)
    if args.json:
        _json(description, out)
        return 0
    for line in describe_lines(found, description):
        print(line, file=out)
    return 0


def _logs(args: argparse.Namespace, found: "FoundJob", out: TextIO, err: TextIO,
          sleep: Callable[[float], None], clock: Callable[[], float]) -> int:
    from .backends.base import LogCursor
    from .watch import summary_lines, wait

    if args.follow:
        # with --json, stdout holds only the final result; the log lines go to stderr
        result = wait(found.backend, found.kind, found.name, out=err if args.json else out, err=err, detach=True,
                      sleep=sleep, clock=clock)
        if args.json:
            _json(result.to_json(), out)
        else:
            for line in summary_lines(result):
                print(line, file=err)
        return result.exit_code
    events = found.backend.logs(found.kind, found.name, LogCursor.start())
    for event in events:
        if args.json:
            out.write(json.dumps({"timestamp": event.timestamp, "host": event.host, "message": event.message})
                      + "\n")
        else:
            out.write(f"[{event.host}] {event.message}\n")
    return 0


def _download(args: argparse.Namespace, finder: "Finder", found: "FoundJob", out: TextIO, err: TextIO) -> int:
    from .backends.base import STATUS_KEY
    from .download import artifacts, choose, download
    from .jobs import store_of

    description = found.backend.describe(found.kind, found.name)
    status = description.get(STATUS_KEY[found.kind])
    if status != "Completed":
        print(f"note: {found.kind} job {found.name} is {status}: its outputs may be missing or incomplete",
              file=err)
    request = (found.launch or {}).get("request")
    chosen = choose(artifacts(found.kind, found.name, description, request), args.output, found.kind)
    to = os.path.abspath(args.to or found.name)
    done = download(store_of(finder, found), chosen, to, overwrite=args.overwrite, progress_stream=err)
    if args.json:
        _json([{"name": d.name, "uri": d.uri, "path": d.path, "files": d.files, "bytes": d.size} for d in done], out)
    else:
        for d in done:
            print(f"downloaded {d.files} file(s) of {d.name} from {d.uri} to {d.path}"
                  + ("" if d.files else " (nothing is there)"), file=err)
    return 0


if __name__ == "__main__":
    main()
