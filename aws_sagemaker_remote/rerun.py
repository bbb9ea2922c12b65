"""``aws-sagemaker-remote rerun``: a recorded job, created again under a new name.

The job's launch record (see :mod:`aws_sagemaker_remote.jobs`) holds the rendered
request: the staged code bundle, the inputs and the script's arguments are reused as
they are, nothing is uploaded. Options override parts of the request; they are the
runtime arguments of the Kubeflow Pipelines component
(:mod:`aws_sagemaker_remote.export.kfp`), and the same code applies them
(:func:`~aws_sagemaker_remote.export.kfp.request_for_run`), so a rerun from a
terminal and a pipeline step mean the same thing.

``rerun JOB --from-kfp RECORD ...`` is the component's command line: its contract is
in the docstring of :mod:`aws_sagemaker_remote.export.kfp`.

A local job is run again on this machine, a SageMaker job on SageMaker; either is
followed until it ends unless ``--no-wait`` (a local job then runs in a runner
process of its own, like one launched with ``--sagemaker-wait=no``).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import secrets
import signal
import sys
from typing import TYPE_CHECKING, Any, Dict, List, Optional, TextIO

from .errors import UsageError
from .kinds import job_kind

if TYPE_CHECKING:  # pragma: no cover
    from .jobs import Finder, FoundJob
    from .spec import JobResult

#: rerun options: (dest, flag, metavar, type, help); each dest is the Kubeflow runtime argument it
#: sets (``new_job_name``: ``job_name``, which the positional JOB already names)
_SIMPLE = (
    ("instance_type", "--instance-type", "TYPE", str, "instance type, like ml.m5.xlarge"),
    ("instance_count", "--instance-count", "N", int, "number of instances"),
    ("volume_size", "--volume-size", "GB", int, "storage volume of each instance, in GB"),
    ("max_run_time", "--max-run", "SECONDS", int, "maximum run time in seconds"),
    ("image", "--image", "URI", str, "image URI"),
    ("role", "--role", "ARN", str, "execution role ARN"),
    ("new_job_name", "--job-name", "NAME", str, "the new job's name (default: BASE-YYYYmmdd-HHMMSS-xxxx)"),
)


def add_override_flags(parser: argparse.ArgumentParser) -> None:
    """The overrides ``rerun`` accepts (each optional: the recorded value stays otherwise)."""
    group = parser.add_argument_group("overrides (default: as recorded)")
    for dest, flag, metavar, kind, text in _SIMPLE:
        group.add_argument(flag, dest=dest, metavar=metavar, type=kind, help=text)
    group.add_argument("--env", metavar="KEY=VALUE", action="append", default=[],
                       help="set an environment variable of the job (repeatable)")
    group.add_argument("--tag", metavar="KEY=VALUE", action="append", default=[],
                       help="add or change a tag of the job (repeatable)")
    group.add_argument("--input", nargs=2, metavar=("NAME", "URI"), action="append", default=[],
                       help="read the declared input NAME from this s3:// URI")
    group.add_argument("--output", nargs=2, metavar=("NAME", "URI"), action="append", default=[],
                       help="write the declared (processing) output NAME to this s3:// URI")
    parser.add_argument("--no-wait", action="store_true",
                        help="return once the job is created (a local job keeps running in the background; "
                             "follow it with `logs --follow`, end it with `stop`)")
    parser.add_argument("--from-kfp", metavar="RECORD",
                        help="run as a Kubeflow Pipelines step (the component's own command line; see the "
                             "pipelines page)")


def kfp_arguments(argv: List[str]) -> Optional[List[str]]:
    """The arguments after ``rerun`` when ``argv`` is a component's command line, else None."""
    if "rerun" not in argv or "--from-kfp" not in argv:
        return None
    at = argv.index("rerun")
    if any(not a.startswith("-") for a in argv[:at]) or argv.index("--from-kfp") < at:
        return None
    return argv[at + 1:]


def _pairs(values: List[str], flag: str) -> Dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise UsageError(f"{value!r} is not KEY=VALUE", flag=flag)
        pairs[key] = text
    return pairs


def launch_record_of(found: "FoundJob", finder: "Finder") -> Dict[str, Any]:
    """The job's launch record: this machine's, else the one beside its staged code.

    :raises UsageError: the job has none (it was not launched by this tool).
    """
    from .jobs import parse_launch, record_uri

    if found.launch is not None:
        return found.launch
    description = found.backend.describe(found.kind, found.name)
    uri = record_uri(found.kind, description)
    if uri:
        from .jobs import store_of

        try:
            return parse_launch(store_of(finder, found).get_bytes(uri), uri)
        except UsageError:
            raise
        except Exception:  # noqa: BLE001,S110 - missing object, no access: said below
            pass
    raise UsageError(f"{found.kind} job {found.name} has no launch record on this machine"
                     + (f" nor at {uri}" if uri else "") + " (it was not launched by this version of the tool)",
                     flag="JOB")


def check_overrides(args: argparse.Namespace) -> None:
    """Refuse a bad override with one line naming it, before anything is asked or created."""
    from .plan import INSTANCE_RE, check_job_name

    for dest, flag, _, kind, _ in _SIMPLE:
        value = getattr(args, dest)
        if kind is int and value is not None and value < 1:
            raise UsageError(f"{value} is not a positive number", flag=flag)
    if args.instance_type and not INSTANCE_RE.match(args.instance_type):
        raise UsageError(f"{args.instance_type!r} is not an instance type like ml.m5.large", flag="--instance-type")
    if args.new_job_name:
        check_job_name(args.new_job_name, flag="--job-name")
    _pairs(args.env, "--env")
    _pairs(args.tag, "--tag")
    for flag, pairs in (("--input", args.input), ("--output", args.output)):
        for name, uri in pairs:
            if not uri.startswith("s3://"):
                raise UsageError(f"{name}: {uri!r} is not an s3:// URI", flag=flag)


def _values(args: argparse.Namespace, request: Dict[str, Any]) -> Dict[str, Any]:
    """The overrides as Kubeflow runtime argument values (``--env`` and ``--tag`` merged into the recorded)."""
    values: Dict[str, Any] = {}
    for dest, _, _, _, _ in _SIMPLE:
        value = getattr(args, dest)
        if value is not None:
            values["job_name" if dest == "new_job_name" else dest] = value
    if args.env:
        values["environment"] = {**request.get("Environment", {}), **_pairs(args.env, "--env")}
    if args.tag:
        tags = {t["Key"]: t["Value"] for t in request.get("Tags", [])}
        values["tags"] = {**tags, **_pairs(args.tag, "--tag")}
    return values


def run_rerun(args: argparse.Namespace, finder: "Finder", found: "FoundJob", out: TextIO, err: TextIO) -> int:
    """``rerun JOB [overrides]``; returns the exit code."""
    from .export.kfp import RECORD_FORMAT, Invocation, request_for_run
    from .jobs import follow_command, record_launch, with_launcher_tag
    from .watch import summary_lines, wait

    record = launch_record_of(found, finder)
    kind = record["kind"]
    invocation = Invocation(job_name=found.name, record={"format": RECORD_FORMAT, "kind": kind,
                                                         "base_job_name": record.get("base_job_name"),
                                                         "request": record["request"]},
                            values=_values(args, record["request"]), inputs=dict(args.input),
                            outputs=dict(args.output), writes={})
    request = with_launcher_tag(request_for_run(invocation, now=_dt.datetime.now(_dt.timezone.utc),
                                                token=secrets.token_hex(2)))
    name = request[job_kind(kind).name_key]
    local = found.where == "local" or record.get("backend") == "local"
    store, backend = _target(finder, found, record, local, detached=args.no_wait)
    from .aws import translate_errors

    with translate_errors(f"creating {kind} job {name}"):
        backend.create(kind, request)
    record_launch(kind, request, str(record.get("base_job_name") or name), backend=backend.name,
                  region=str(record.get("region") or ""), store=store)
    print(f"created {kind} job {name} ({backend.name}), a rerun of {found.name}", file=err)
    if args.no_wait:
        follow = follow_command(name) if local else follow_command(name, region=args.region, profile=args.profile)
        print(f"follow it with: {follow}", file=err)
        if args.json:
            _json_out({"job_name": name, "kind": kind, "rerun_of": found.name, "status": "InProgress"}, out)
        return 0
    _terminate_like_ctrl_c()
    result: "JobResult" = wait(backend, kind, name, out=err if args.json else out, err=err)
    for line in summary_lines(result):
        print(line, file=err)
    if args.json:
        _json_out(dict(result.to_json(), rerun_of=found.name), out)
    return result.exit_code


def _json_out(data: Any, out: TextIO) -> None:
    import json

    out.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _target(finder: "Finder", found: "FoundJob", record: Dict[str, Any], local: bool, *,
            detached: bool = False) -> Any:
    """The store and backend a rerun goes to: this machine for a local job (in a runner process
    that outlives this command when ``detached``), SageMaker otherwise."""
    from .store import LocalStore, S3Store

    if not local:
        return S3Store(finder.clients.s3), finder.sagemaker
    from .backends.local import LocalBackend

    stored = (found.local or {}).get("store") or {}
    region = str(record.get("region") or "us-east-1")
    if record.get("store") == "local" or stored.get("name") == "local":
        store: Any = LocalStore(stored.get("root"))
        described: Dict[str, Any] = {"name": "local", "root": store.root}
    else:
        store = S3Store(finder.clients.s3)
        described = {"name": "s3", "profile": finder.aws.profile, "region": finder.aws.region or region,
                     "assume_role": None, "endpoint_url": finder.aws.endpoint_url}
    if detached:
        from .backends.local.runner import DetachedLocalBackend

        return store, DetachedLocalBackend(described, region, registry=finder.registry)
    return store, LocalBackend(store, region=region, registry=finder.registry)


def _terminate_like_ctrl_c() -> None:
    """SIGTERM (a pipeline pod being terminated, ``kill``) stops the job as Ctrl-C does."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, interrupt)
    except ValueError:
        pass  # not the main thread


def run_from_kfp(argv: List[str], *, out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> int:
    """``rerun JOB --from-kfp RECORD ...`` (``argv``: what follows ``rerun``); returns the exit code.

    Creates the job with the session of the ``region`` / ``endpoint_url`` / ``assume_role``
    arguments, follows it to the end (SIGTERM or Ctrl-C stops it), writes the ``--write``
    outputs from its final description, and returns 0 when it completed, 1 otherwise.
    """
    from .aws import make_clients, make_session, translate_errors
    from .backends.sagemaker import SageMakerBackend
    from .export.kfp import parse_invocation, request_for_run, write_outputs
    from .jobs import record_launch, with_launcher_tag
    from .store import S3Store
    from .watch import summary_lines, wait

    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    invocation = parse_invocation(argv)
    values = invocation.values
    request = with_launcher_tag(request_for_run(invocation, now=_dt.datetime.now(_dt.timezone.utc),
                                                token=secrets.token_hex(2)))
    kind = invocation.kind
    name = request[job_kind(kind).name_key]
    session = make_session(None, values.get("region") or None, values.get("assume_role") or None)
    clients = make_clients(session, values.get("endpoint_url") or None)
    backend = SageMakerBackend.from_clients(clients)
    _terminate_like_ctrl_c()
    with translate_errors(f"creating {kind} job {name}"):
        backend.create(kind, request)
    record_launch(kind, request, str(invocation.record.get("base_job_name") or name), backend=backend.name,
                  region=clients.region, store=S3Store(clients.s3))
    print(f"created {kind} job {name} ({backend.name}), from the pipeline step of {invocation.job_name}",
          file=err)
    result = wait(backend, kind, name, out=out, err=err)
    for line in summary_lines(result):
        print(line, file=err)
    write_outputs(invocation, backend.describe(kind, name))
    return result.exit_code
