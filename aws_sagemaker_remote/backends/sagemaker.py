"""The SageMaker backend: the seam calls as boto3 calls, logs from CloudWatch Logs.

The backend is handed its clients (from :func:`aws_sagemaker_remote.aws.make_clients`)
and never builds one, so tests can give it a client pointed at a moto server
or wrapped in botocore's ``Stubber``. Every call goes through
:func:`~aws_sagemaker_remote.aws.translate_errors`.
"""
from __future__ import annotations

import heapq
import re
import secrets
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from botocore.exceptions import ClientError

from ..aws import error_code, translate_errors
from ..errors import AwsError
from ..kinds import job_kind
from .base import LOGS_INCOMPLETE, TERMINAL_STATUSES, LogCursor, LogEvent

if TYPE_CHECKING:  # pragma: no cover
    from ..aws import Clients

#: Seconds between DescribeProcessingJob / DescribeTrainingJob calls.
DEFAULT_POLL_INTERVAL = 5.0
#: Seconds between log reads. Shorter than the status interval so log lines
#: appear promptly; each read costs one DescribeLogStreams call plus one
#: GetLogEvents call per instance, well inside CloudWatch Logs' quotas.
DEFAULT_LOG_POLL_INTERVAL = 2.0
#: GetLogEvents pages followed per stream and read, so one very chatty stream
#: cannot keep a read going forever; the rest is picked up by the next read.
MAX_PAGES_PER_STREAM = 50

# "<job>/algo-1-1700000000": the instance name ("algo-N"), then the container's
# start time. A trailing number is only cut when what is left still ends in a
# number (or the number is long enough to be a time), so "algo-1" stays whole.
_HOST_WITH_SUFFIX_RE = re.compile(r"^(?P<host>.+-\d+)-\d+$")
_HOST_WITH_TIME_RE = re.compile(r"^(?P<host>.+)-\d{9,}$")
_NOT_FOUND = "ResourceNotFoundException"

#: The tag that carries a launch's own random token on the job it creates. When the
#: answer to a create is lost, botocore sends the request again and SageMaker answers
#: ResourceInUse; the job of that name is ours exactly when it carries our token.
LAUNCH_TOKEN_TAG = "aws-sagemaker-remote:launch-token"
#: SageMaker accepts at most this many tags on a job.
MAX_TAGS = 50


def with_launch_token(request: Dict[str, Any], token: str) -> Dict[str, Any]:
    """A copy of ``request`` whose ``Tags`` carry ``token`` (unchanged when the tags are already full)."""
    tags = [t for t in request.get("Tags") or [] if t.get("Key") != LAUNCH_TOKEN_TAG]
    if len(tags) >= MAX_TAGS:
        return dict(request)
    return {**request, "Tags": tags + [{"Key": LAUNCH_TOKEN_TAG, "Value": token}]}


def host_of(job_name: str, stream_name: str) -> str:
    """The instance name in a job's log stream name (``<job>/algo-1-1700000000`` → ``algo-1``)."""
    rest = stream_name[len(job_name) + 1:] if stream_name.startswith(job_name + "/") else stream_name
    first = rest.split("/", 1)[0] or rest
    match = _HOST_WITH_SUFFIX_RE.match(first) or _HOST_WITH_TIME_RE.match(first)
    return match.group("host") if match else first


def console_url(region: str, kind: str, job_name: str) -> str:
    """The SageMaker console page of a job."""
    page = job_kind(kind).console_page
    return f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}#/{page}/{job_name}"


class _Lazy:
    """A client built on its first use."""

    def __init__(self, make: Any) -> None:
        self._make = make

    def __getattr__(self, name: str) -> Any:
        return getattr(self._make(), name)


class SageMakerBackend:
    """Runs jobs on Amazon SageMaker through injected boto3 clients.

    :param sagemaker_client: a boto3 ``sagemaker`` client.
    :param logs_client: a boto3 ``logs`` (CloudWatch Logs) client.
    :param region: the clients' region, for console URLs.
    :param poll_interval: seconds between status polls.
    :param log_poll_interval: seconds between log reads (the watch code reads logs
        this often and the status every ``poll_interval``).
    """

    name = "SageMaker"
    #: A SageMaker job runs on its own instances, whatever happens to this process.
    outlives_caller = True

    def __init__(
        self,
        sagemaker_client: Any,
        logs_client: Any,
        region: str,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        log_poll_interval: float = DEFAULT_LOG_POLL_INTERVAL,
    ) -> None:
        self._sagemaker = sagemaker_client
        self._logs = logs_client
        self.region = region
        self.poll_interval = poll_interval
        self.log_poll_interval = log_poll_interval

    @classmethod
    def from_clients(cls, clients: "Clients", **kwargs: Any) -> "SageMakerBackend":
        """A backend on the SageMaker and CloudWatch Logs clients of ``clients``."""
        # the CloudWatch Logs client is built only when logs are read (never with --sagemaker-wait=no)
        return cls(clients.sagemaker, _Lazy(lambda: clients.logs), clients.region, **kwargs)

    # --- jobs ------------------------------------------------------------
    def _call(self, verb: str, kind: str) -> Any:
        return getattr(self._sagemaker, job_kind(kind).api(verb))  # ValueError for an unknown kind

    def create(self, kind: str, request: Dict[str, Any]) -> None:
        """CreateProcessingJob / CreateTrainingJob with ``request`` as the keyword arguments.

        The request is sent with one more tag, :data:`LAUNCH_TOKEN_TAG`, holding a
        random token of this call. If the answer is lost on the way back, botocore
        sends the request again and SageMaker answers ``ResourceInUse``; the job
        that holds the name is then looked up, and when it carries this call's
        token it is the job this call created: ``create`` returns as if the first
        answer had arrived. A name taken by any other job is still an error.
        """
        create = self._call("create", kind)
        name = str(request.get(job_kind(kind).name_key, ""))
        token = secrets.token_hex(16)
        sent = with_launch_token(request, token)
        with translate_errors(f"creating {kind} job {name}".rstrip()):
            try:
                create(**sent)
            except ClientError as exc:
                if error_code(exc) != "ResourceInUse" or sent.get("Tags") == request.get("Tags"):
                    raise
                if not self._created_with(kind, name, token):
                    raise

    def _created_with(self, kind: str, job_name: str, token: str) -> bool:
        """True when the job named ``job_name`` exists and carries ``token`` in its tags."""
        try:
            arn = self.describe(kind, job_name).get(f"{kind.capitalize()}JobArn")
            if not arn:
                return False
            tags: List[Dict[str, str]] = []
            for page in self._sagemaker.get_paginator("list_tags").paginate(ResourceArn=arn):
                tags.extend(page.get("Tags", []))
        except (AwsError, ClientError):
            return False  # cannot tell: report the ResourceInUse as it came
        return any(t.get("Key") == LAUNCH_TOKEN_TAG and t.get("Value") == token for t in tags)

    def describe(self, kind: str, job_name: str) -> Dict[str, Any]:
        """The DescribeProcessingJob / DescribeTrainingJob response (without ResponseMetadata)."""
        describe = self._call("describe", kind)
        with translate_errors(f"describing {kind} job {job_name}"):
            response = dict(describe(**{job_kind(kind).name_key: job_name}))
        response.pop("ResponseMetadata", None)
        return response

    def stop(self, kind: str, job_name: str) -> None:
        """StopProcessingJob / StopTrainingJob. A job that has already ended is left as it is."""
        stop = self._call("stop", kind)
        with translate_errors(f"stopping {kind} job {job_name}"):
            try:
                stop(**{job_kind(kind).name_key: job_name})
            except ClientError as exc:
                # SageMaker answers ValidationException when the job is no longer
                # running; that is the outcome the caller wanted. Any other
                # ValidationException (a bad name) is still an error.
                if error_code(exc) != "ValidationException":
                    raise
                status = self.describe(kind, job_name).get(job_kind(kind).status_key)
                if status not in TERMINAL_STATUSES and status != "Stopping":
                    raise

    def end_warm_pool(self, job_name: str) -> None:
        """UpdateTrainingJob with ``ResourceConfig.KeepAlivePeriodInSeconds`` 0: the training job's warm pool
        ends now (a job still running keeps none after it)."""
        with translate_errors(f"ending the warm pool of training job {job_name}"):
            self._sagemaker.update_training_job(TrainingJobName=job_name,
                                                ResourceConfig={"KeepAlivePeriodInSeconds": 0})

    def console_url(self, kind: str, job_name: str) -> Optional[str]:
        """The job's page in the SageMaker console."""
        return console_url(self.region, kind, job_name)

    def log_locations(self, kind: str, job_name: str) -> List[str]:
        """The job's log streams in the CloudWatch console (streams are named ``JOB/algo-N-...``)."""
        group = job_kind(kind).log_group
        url = (f"https://{self.region}.console.aws.amazon.com/cloudwatch/home?region={self.region}"
               f"#logStream:group={group};prefix={job_name}/;streamFilter=typeLogStreamPrefix")
        return [url]

    # --- logs --------------------------------------------------------------
    def logs(self, kind: str, job_name: str, cursor: LogCursor) -> List[LogEvent]:
        """New events of every log stream of the job since ``cursor``, merged in time order.

        Each stream is read from its head, then from the ``nextForwardToken`` saved
        in ``cursor`` by the previous call, until the token repeats (the end of
        the stream so far): no event is returned twice and none is skipped. The
        cursor only advances when the whole read succeeds, so an error in the
        middle loses nothing. A log group or stream that does not exist yet
        means no events yet. An AWS error (throttling, no permission) returns no
        events and records the reason under :data:`~.base.LOGS_INCOMPLETE` in
        ``cursor.state``; the next successful read clears it.
        """
        group = job_kind(kind).log_group
        tokens: Dict[str, str] = dict(cursor.state.get("tokens", {}))
        per_stream: List[List[LogEvent]] = []
        try:
            with translate_errors(f"reading the logs of {kind} job {job_name}"):
                for stream in self._streams(group, job_name):
                    host = host_of(job_name, stream)
                    events = [
                        LogEvent(timestamp=int(e.get("timestamp", 0)), host=host,
                                 message=str(e.get("message", "")))
                        for e in self._read_stream(group, stream, tokens)
                    ]
                    if events:
                        per_stream.append(events)
        except AwsError as exc:
            # Logs are best effort: the job's status comes from describe, so a throttled
            # or forbidden CloudWatch Logs never ends the watch. The cursor stays where
            # it was, and the next read that succeeds catches up on what was missed.
            cursor.state[LOGS_INCOMPLETE] = str(exc)
            return []
        cursor.state.pop(LOGS_INCOMPLETE, None)
        cursor.state["tokens"] = tokens
        # Each stream is already in time order; merge keeps streams' own order on ties.
        return list(heapq.merge(*per_stream, key=lambda e: e.timestamp))

    def _streams(self, group: str, job_name: str) -> List[str]:
        names: List[str] = []
        try:
            paginator = self._logs.get_paginator("describe_log_streams")
            for page in paginator.paginate(logGroupName=group, logStreamNamePrefix=job_name + "/"):
                names.extend(s["logStreamName"] for s in page.get("logStreams", []))
        except ClientError as exc:
            if error_code(exc) != _NOT_FOUND:
                raise
            return []
        return sorted(set(names))

    def _read_stream(self, group: str, stream: str, tokens: Dict[str, str]) -> List[Dict[str, Any]]:
        """Events of one stream after its saved token; updates ``tokens[stream]``."""
        token = tokens.get(stream)
        events: List[Dict[str, Any]] = []
        for _ in range(MAX_PAGES_PER_STREAM):
            kwargs: Dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
            if token:
                kwargs["nextToken"] = token
            try:
                response = self._logs.get_log_events(**kwargs)
            except ClientError as exc:
                if error_code(exc) != _NOT_FOUND:
                    raise
                break
            events.extend(response.get("events", []))
            new_token = response.get("nextForwardToken")
            if not new_token or new_token == token:
                break
            token = new_token
        if token:
            tokens[stream] = token
        return events
