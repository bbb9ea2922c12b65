"""Jobs launched by this tool: launch records, the launcher tag, finding a job by name, listing.

A *launch record* is written when a job is created (:func:`record_launch`): the
rendered ``CreateProcessingJob`` / ``CreateTrainingJob`` request, the job kind, the
base job name, the backend and the tool's version. It is kept twice: under the
tool's home (``$AWS_SAGEMAKER_REMOTE_HOME/launches/<job>.json``, so this machine
finds its jobs without asking AWS) and as a small object in the bucket beside the
staged code (``s3://BUCKET/PREFIX/jobs/<job>/launch.json``, so another machine can
``rerun`` the job from its name). Every job also carries the tag
:data:`LAUNCHER_TAG` (the tool's version as its value, nothing else), which is how
``list`` tells this tool's SageMaker jobs from others.

Local jobs are found in the local backend's
:class:`~aws_sagemaker_remote.backends.local.state.Registry` first; SageMaker jobs
by asking for a processing job of that name, then a training job.

boto3 loads only when SageMaker is asked.
"""
from __future__ import annotations

import copy
import datetime as _dt
import functools
import json
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Mapping, Optional

from ._version import __version__
from .backends.base import NAME_KEY, PROCESSING, STATUS_KEY, TRAINING
from .errors import AwsError, CredentialsError, UsageError
from .store import home_dir, split_uri

if TYPE_CHECKING:  # pragma: no cover
    from .aws import Clients
    from .backends.base import Backend
    from .backends.local.state import Registry
    from .store import Store

#: The tag every job launched by this tool carries; its value is the tool's version.
LAUNCHER_TAG = "aws-sagemaker-remote:launcher"
LAUNCH_FORMAT = "aws_sagemaker_remote.launch/1"
LAUNCHES_DIR = "launches"
#: Where the launch record goes in the bucket, under the staging prefix.
LAUNCH_OBJECT = "jobs/{job}/launch.json"
KINDS = (PROCESSING, TRAINING)
#: Statuses ``list --status`` accepts (SageMaker's, both kinds).
STATUSES = ("InProgress", "Completed", "Failed", "Stopping", "Stopped")
#: ``list`` stops asking SageMaker after this many candidate jobs per kind.
MAX_SCANNED = 500
PROG = "aws-sagemaker-remote"
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
#: the code channel: a tree's folder, or a blob (a manifest) named as transfers.blob_name names them
_CODE_TREE = re.compile(r"^(?P<prefix>.*?)/?cas/sha256/[0-9a-f]{64}(?:-[1-9][0-9]{0,4})?/?$")


# --- tag and records ------------------------------------------------------------------------------

def with_launcher_tag(request: Mapping[str, Any]) -> Dict[str, Any]:
    """``request`` with the :data:`LAUNCHER_TAG` tag (replacing an older one)."""
    tagged = copy.deepcopy(dict(request))
    tags = [t for t in tagged.get("Tags", []) if t.get("Key") != LAUNCHER_TAG]
    tagged["Tags"] = tags + [{"Key": LAUNCHER_TAG, "Value": __version__}]
    return tagged


def code_uri(kind: str, request: Mapping[str, Any]) -> Optional[str]:
    """The S3 URI of the staged code tree a request names (its ``code`` input or channel)."""
    from .container import CODE_CHANNEL

    if kind == PROCESSING:
        for item in request.get("ProcessingInputs", []):
            if item.get("InputName") == CODE_CHANNEL:
                return str(item["S3Input"]["S3Uri"])
        return None
    for channel in request.get("InputDataConfig", []):
        if channel.get("ChannelName") == CODE_CHANNEL:
            return str(channel["DataSource"]["S3DataSource"]["S3Uri"])
    return None


def record_uri(kind: str, request: Mapping[str, Any]) -> Optional[str]:
    """``s3://BUCKET/PREFIX/jobs/<job>/launch.json`` for a request whose code was staged by this tool."""
    uri = code_uri(kind, request)
    if not uri:
        return None
    bucket, key = split_uri(uri)
    match = _CODE_TREE.match(key)
    if not match:
        return None
    prefix = match.group("prefix").strip("/")
    key = LAUNCH_OBJECT.format(job=request[NAME_KEY[kind]])
    return f"s3://{bucket}/{prefix}/{key}" if prefix else f"s3://{bucket}/{key}"


def launch_record(kind: str, request: Mapping[str, Any], base_job_name: str, *, backend: str, region: str,
                  store: str, now: Optional[_dt.datetime] = None) -> Dict[str, Any]:
    """The launch record of a job (plain JSON data)."""
    record = {
        "format": LAUNCH_FORMAT,
        "kind": kind,
        "job_name": str(request[NAME_KEY[kind]]),
        "base_job_name": base_job_name,
        "backend": "local" if backend == "local" else "sagemaker",
        "region": region,
        "store": store,
        "version": __version__,
        "created": (now or _dt.datetime.now(_dt.timezone.utc)).isoformat(),
        "request": dict(request),
    }
    loaded: Dict[str, Any] = json.loads(json.dumps(record, default=_json_default))
    return loaded


def _json_default(value: Any) -> Any:
    """Times in a request as ISO 8601 text (as the local registry writes them), anything else as text.

    Kept here rather than imported from the local backend: a launch on SageMaker records itself
    without loading that backend."""
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    return str(value)


def launches_dir() -> str:
    return os.path.join(home_dir(), LAUNCHES_DIR)


def record_launch(kind: str, request: Mapping[str, Any], base_job_name: str, *, backend: str, region: str,
                  store: "Store") -> Dict[str, Any]:
    """Record a job just created: under the tool's home and beside its staged code.

    Called right after the job is created; the job runs whatever happens here, so a
    record that cannot be written is skipped (``rerun`` then says it has none).
    """
    record = launch_record(kind, request, base_job_name, backend=backend, region=region, store=store.name)
    data = json.dumps(record, indent=1, sort_keys=True).encode("utf-8")
    try:
        os.makedirs(launches_dir(), exist_ok=True)
        path = os.path.join(launches_dir(), record["job_name"] + ".json")
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError:
        pass
    uri = record_uri(kind, request)
    if uri:
        try:
            store.put_bytes(data, uri)
        except Exception:  # noqa: BLE001,S110 - botocore, OS or store errors alike: the job is already running
            pass
    return record


def read_launch(job_name: str) -> Optional[Dict[str, Any]]:
    """This machine's launch record of ``job_name``, or None."""
    try:
        with open(os.path.join(launches_dir(), job_name + ".json"), encoding="utf-8") as fh:
            record: Dict[str, Any] = json.load(fh)
    except (OSError, ValueError):
        return None
    return record if record.get("format") == LAUNCH_FORMAT else None


def launches() -> Iterator[Dict[str, Any]]:
    """Every launch record under the tool's home."""
    folder = launches_dir()
    if not os.path.isdir(folder):
        return
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            record = read_launch(name[:-len(".json")])
            if record is not None:
                yield record


def parse_launch(data: bytes, where: str) -> Dict[str, Any]:
    """A launch record read from ``where``; :class:`UsageError` when it is not one."""
    try:
        record = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise UsageError(f"{where} is not a launch record: {exc}") from exc
    if not isinstance(record, dict) or record.get("format") != LAUNCH_FORMAT or record.get("kind") not in KINDS:
        raise UsageError(f"{where} is not a {LAUNCH_FORMAT} record")
    return record


def follow_command(job_name: str, *, region: Optional[str] = None, profile: Optional[str] = None) -> str:
    """The command that follows a job's logs from a terminal."""
    parts = [PROG, "logs", "--follow", job_name]
    if region:
        parts += ["--region", region]
    if profile:
        parts += ["--profile", profile]
    return " ".join(parts)


# --- AWS for the command ------------------------------------------------------------------------

@dataclass(frozen=True)
class AwsOptions:
    """The command's ``--profile``, ``--region`` and ``--endpoint-url``."""

    profile: Optional[str] = None
    region: Optional[str] = None
    endpoint_url: Optional[str] = None

    @property
    def given(self) -> bool:
        return bool(self.profile or self.region or self.endpoint_url)


def own_flags(text: str) -> str:
    """A message from the launch code, naming this command's flags instead of the scripts'."""
    for script_flag, flag in (("--sagemaker-profile", "--profile"), ("--sagemaker-region", "--region"),
                              ("--sagemaker-endpoint-url", "--endpoint-url")):
        text = text.replace(script_flag, flag)
    return text


def aws_configured() -> bool:
    """Whether AWS can be asked without flags: an endpoint, credentials or a profile is configured."""
    if os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_PROFILE"):
        return True
    import boto3

    try:
        return boto3.Session().get_credentials() is not None
    except Exception:  # noqa: BLE001 - a broken AWS configuration: asking AWS then says what is wrong
        return True


def make_command_clients(aws: AwsOptions) -> "Clients":
    """boto3 clients for ``aws``; errors name ``--profile`` / ``--region``.

    :raises UsageError: the profile does not exist.
    :raises CredentialsError: no region is configured.
    """
    from .aws import make_clients, make_session

    try:
        session = make_session(aws.profile, aws.region, None)
    except UsageError as exc:
        named = repr(aws.profile) if aws.profile else f"{os.environ.get('AWS_PROFILE')!r} (from AWS_PROFILE)"
        raise UsageError(f"no AWS profile named {named} in the AWS config files", flag="--profile") from exc
    except CredentialsError as exc:
        raise CredentialsError(own_flags(str(exc))) from exc
    return make_clients(session, aws.endpoint_url)


# --- finding a job --------------------------------------------------------------------------------

@dataclass(frozen=True)
class FoundJob:
    """A job found by name: its kind, where it runs, and the backend that answers for it."""

    name: str
    kind: str
    #: "local" (this machine's registry) or "SageMaker"
    where: str
    backend: "Backend"
    #: the launch record, when this machine has one
    launch: Optional[Dict[str, Any]] = None
    #: the local registry's record (local jobs)
    local: Optional[Dict[str, Any]] = None


def _not_found(exc: AwsError) -> bool:
    text = str(exc).lower()
    return exc.code in ("ValidationException", "ResourceNotFound") and (
        "could not find" in text or "not found" in text or "does not exist" in text)


class Finder:
    """Finds jobs by name on this machine and in SageMaker; builds AWS clients only when needed."""

    def __init__(self, aws: AwsOptions, registry: Optional[Registry] = None,
                 make_clients: Callable[[AwsOptions], "Clients"] = make_command_clients) -> None:
        from .backends.local.state import Registry

        self.aws = aws
        self.registry = registry or Registry()
        self._make_clients = make_clients

    @functools.cached_property
    def clients(self) -> "Clients":
        return self._make_clients(self.aws)

    @functools.cached_property
    def sagemaker(self) -> "Backend":
        from .backends.sagemaker import SageMakerBackend

        return SageMakerBackend.from_clients(self.clients)

    def find(self, name: str, kind: Optional[str] = None) -> FoundJob:
        """The job called ``name`` (of ``kind`` when given): local jobs first, then SageMaker.

        :raises AwsError: no such job (exit 1), or AWS could not be asked.
        """
        kinds = [kind] if kind else list(KINDS)
        launch = read_launch(name)
        for k in self.registry.kinds_of(name):
            if k in kinds:
                from .backends.local.state import RecordedJobs

                return FoundJob(name, k, "local", RecordedJobs(self.registry), launch,
                                self.registry.read(k, name))
        if launch and launch.get("backend") == "sagemaker" and launch.get("kind") in kinds:
            kinds = [launch["kind"]] + [k for k in kinds if k != launch["kind"]]
        for k in kinds:
            try:
                self.sagemaker.describe(k, name)
            except AwsError as exc:
                if _not_found(exc):
                    continue
                raise
            return FoundJob(name, k, "SageMaker", self.sagemaker, launch if launch and launch["kind"] == k else None)
        what = " or ".join(f"{k} job" for k in kinds)
        raise AwsError(f"no {what} named {name!r} on this machine or in SageMaker ({self.clients.region})",
                       code="ValidationException")


# --- listing ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class JobRow:
    """One line of ``list``."""

    name: str
    kind: str
    where: str
    status: str
    created: Optional[_dt.datetime]
    ended: Optional[_dt.datetime] = None
    failure_reason: Optional[str] = None

    def to_json(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            "job_name": self.name, "kind": self.kind, "where": self.where, "status": self.status,
            "created": self.created.isoformat() if self.created else None,
            "ended": self.ended.isoformat() if self.ended else None,
        }
        if self.failure_reason:
            out["failure_reason"] = self.failure_reason
        return out


def parse_time(value: Any) -> Optional[_dt.datetime]:
    """A describe response's time (a datetime from boto3, ISO text from a record) as an aware datetime."""
    if isinstance(value, _dt.datetime):
        stamp = value
    elif isinstance(value, str) and value:
        try:
            stamp = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=_dt.timezone.utc)


def end_time(kind: str, description: Mapping[str, Any]) -> Optional[_dt.datetime]:
    return parse_time(description.get("ProcessingEndTime" if kind == PROCESSING else "TrainingEndTime"))


def local_rows(registry: Registry) -> List[JobRow]:
    """Every job in the local registry."""
    from .backends.local.state import recorded_status

    rows = []
    for record in registry.records():
        kind, description = record["kind"], record.get("description") or {}
        status, reason = recorded_status(record)
        rows.append(JobRow(record["name"], kind, "local", status, parse_time(record.get("created")),
                           end_time(kind, description), reason))
    return rows


def sagemaker_rows(clients: "Clients", *, prefix: Optional[str], status: Optional[str], limit: int,
                   everyone: bool = False) -> List[JobRow]:
    """The ``limit`` newest jobs of each kind launched by this tool (any tool with ``everyone``)."""
    from .aws import translate_errors

    ours_here = {r["job_name"] for r in launches() if r.get("backend") == "sagemaker"}
    rows: List[JobRow] = []
    for kind in KINDS:
        label = "Processing" if kind == PROCESSING else "Training"
        found = scanned = 0
        kwargs: Dict[str, Any] = {"SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 100}
        if prefix:
            kwargs["NameContains"] = prefix
        if status:
            kwargs["StatusEquals"] = status
        with translate_errors(f"listing {kind} jobs"):
            for page in clients.sagemaker.get_paginator(f"list_{kind}_jobs").paginate(**kwargs):
                # SageMaker sorts as asked; sorting each page again costs nothing and keeps moto in order
                summaries = sorted(page.get(f"{label}JobSummaries", []), reverse=True,
                                   key=lambda s: parse_time(s.get("CreationTime")) or _EPOCH)
                for summary in summaries:
                    name = str(summary[NAME_KEY[kind]])
                    if prefix and not name.startswith(prefix):
                        continue  # NameContains matches anywhere in the name
                    scanned += 1
                    if not (everyone or name in ours_here or _tagged(clients, summary[f"{label}JobArn"])):
                        continue
                    found += 1
                    rows.append(JobRow(name, kind, "SageMaker", str(summary.get(STATUS_KEY[kind], "")),
                                       parse_time(summary.get("CreationTime")), end_time(kind, summary),
                                       summary.get("FailureReason")))
                    if found >= limit:
                        break
                if found >= limit or scanned >= MAX_SCANNED:
                    break  # pages are fetched one at a time: the rest is never asked for
    return rows


def _tagged(clients: "Clients", arn: str) -> bool:
    from .aws import translate_errors

    with translate_errors(f"listing the tags of {arn}"):
        tags = clients.sagemaker.list_tags(ResourceArn=arn).get("Tags", [])
    return any(t.get("Key") == LAUNCHER_TAG for t in tags)


def list_jobs(finder: Finder, *, prefix: Optional[str] = None, status: Optional[str] = None, limit: int = 20,
              local_only: bool = False, everyone: bool = False,
              note: Callable[[str], None] = lambda _: None) -> List[JobRow]:
    """Local and SageMaker jobs, newest first, at most ``limit``.

    SageMaker is asked when a flag or the environment configures AWS; otherwise
    ``note`` says it was not.
    """
    rows = [r for r in local_rows(finder.registry)
            if (not prefix or r.name.startswith(prefix)) and (not status or r.status == status)]
    if not local_only:
        if finder.aws.given or aws_configured():
            rows += sagemaker_rows(finder.clients, prefix=prefix, status=status, limit=limit, everyone=everyone)
        else:
            note("SageMaker was not asked: no AWS credentials or endpoint configured (pass --profile or --region)")
    rows.sort(key=lambda r: r.created or _EPOCH, reverse=True)
    return rows[:limit]


def check_status(value: Optional[str]) -> Optional[str]:
    """A ``--status`` value in SageMaker's spelling (any case)."""
    if value is None:
        return None
    for status in STATUSES:
        if status.lower() == value.lower():
            return status
    raise UsageError(f"{value!r} is not a job status; allowed: {', '.join(STATUSES)}", flag="--status")


def store_of(finder: Finder, found: FoundJob) -> "Store":
    """Where a job's files are: the local stand-in for a local job run without AWS, S3 otherwise."""
    from .store import LocalStore, S3Store

    store: Dict[str, Any] = (found.local or {}).get("store") or {}
    if found.where == "local" and store.get("name") == "local":
        return LocalStore(store.get("root"))
    return S3Store(finder.clients.s3)

