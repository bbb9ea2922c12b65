"""The one place that builds boto3 sessions and clients, and translates botocore errors.

Only the remote path imports this module (``import aws_sagemaker_remote`` does
not), so boto3's import cost is paid only when a job is launched.

Everything else receives clients from :func:`make_clients` and wraps its AWS
calls in :func:`translate_errors`, which turns botocore's exceptions into the
framework's tree (:mod:`aws_sagemaker_remote.errors`) with ``raise ... from exc``
so the original stays in the traceback chain::

    NoCredentialsError, PartialCredentialsError,
    NoRegionError, credential-provider errors       → CredentialsError
    EndpointConnectionError, ConnectTimeoutError,
    ReadTimeoutError, ConnectionClosedError,
    other HTTPClientError / ConnectionError         → EndpointError
    ClientError (throttling codes)                  → ThrottledError
    ClientError (expired / invalid credentials)     → CredentialsError
    ClientError (any other code)                    → AwsError(code=...)
    ParamValidationError, other BotoCoreError       → AwsError
    ProfileNotFound                                 → UsageError (--sagemaker-profile)
"""
from __future__ import annotations

import contextlib
import functools
import os
import re
from typing import Any, Iterator, Optional, Union

import boto3
import botocore.session
from boto3.exceptions import Boto3Error
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError as BotoConnectionError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
)

from ._version import __version__
from .errors import AwsError, CredentialsError, EndpointError, ThrottledError, UsageError

#: Session name of the temporary credentials from ``--sagemaker-assume-role``
#: (shows up in CloudTrail, so a job launch can be traced back to this tool).
ROLE_SESSION_NAME = "aws-sagemaker-remote"
#: botocore's ``retries.max_attempts``: retries after the first attempt (so six requests in all).
DEFAULT_MAX_ATTEMPTS = 5
#: The same for CloudWatch Logs reads (see :attr:`Clients.logs`).
LOGS_MAX_ATTEMPTS = 1
DEFAULT_CONNECT_TIMEOUT = 10
DEFAULT_READ_TIMEOUT = 60
USER_AGENT_EXTRA = f"aws-sagemaker-remote/{__version__}"

#: AWS error codes that mean "slow down"; botocore has retried them already
#: by the time they reach us.
THROTTLING_CODES = frozenset({
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "SlowDown",
})
#: AWS error codes that mean the credentials themselves are bad or expired.
CREDENTIAL_CODES = frozenset({
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
})
# Botocore error families that are about finding or refreshing credentials.
_CREDENTIAL_ERRORS = (NoCredentialsError, PartialCredentialsError, NoRegionError, CredentialRetrievalError)
_CREDENTIAL_ERROR_NAMES = (
    "NoAuthTokenError", "TokenRetrievalError", "SSOError", "LoginError", "RefreshWithMFAUnsupportedError",
)

# Messages must never carry secrets: access key ids and URL user-info (proxy
# URLs may hold a password) are masked before anything is shown.
_ACCESS_KEY_RE = re.compile(r"\b(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{12,}\b")
_USERINFO_RE = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^@\s\"']+@")
_MAX_MESSAGE = 500
_HTML_RE = re.compile(r"<(?:!doctype\s+html|html)\b", re.IGNORECASE)
_HTML_TITLE_RE = re.compile(r"<title>([^<]*)</title>", re.IGNORECASE)


class Clients:
    """The boto3 clients a launch needs, made by :func:`make_clients` and passed in.

    Each client is built on first use (building one costs tens of milliseconds):
    a dry run never builds the SageMaker or CloudWatch Logs client, and a launch
    with an explicit bucket and role ARN never builds the STS client.
    """

    def __init__(self, session: "boto3.Session", config: Config, sagemaker_endpoint_url: Optional[str] = None) -> None:
        self._session = session
        self._config = config
        self._sagemaker_endpoint_url = sagemaker_endpoint_url

    def _client(self, service: str, config: Optional[Config] = None, **kwargs: Any) -> Any:
        with translate_errors(f"creating the {service} client"):
            session: Any = self._session  # boto3's stubs type client() per service name
            return session.client(service, config=config or self._config, **kwargs)

    @functools.cached_property
    def s3(self) -> Any:
        client = self._client("s3")
        for operation in ("PutObject", "UploadPart"):
            client.meta.events.register(f"before-sign.s3.{operation}", _leave_checked_body_unsigned)
        return client

    @functools.cached_property
    def sagemaker(self) -> Any:
        return self._client("sagemaker", endpoint_url=self._sagemaker_endpoint_url)

    @functools.cached_property
    def logs(self) -> Any:
        # Log reads are best effort and repeated every few seconds by the watch code:
        # one retry is enough, so a throttled CloudWatch Logs never holds up the
        # status polls for the half minute botocore's full backoff takes.
        return self._client("logs", config=self._config.merge(Config(retries={"mode": "standard",
                                                                                "max_attempts": LOGS_MAX_ATTEMPTS})))

    @functools.cached_property
    def sts(self) -> Any:
        return self._client("sts")

    @functools.cached_property
    def iam(self) -> Any:
        return self._client("iam")

    @property
    def region(self) -> str:
        """The region the clients talk to."""
        return str(self._session.region_name)


def known_regions(loader: Any = None) -> "tuple[set[str], list[re.Pattern[str]]]":
    """The regions botocore's own endpoint data lists, and each partition's region pattern (offline).

    ``loader``: a botocore session's data loader. Its cache is the one the session's clients
    read the same (1.2 MB) file through, so checking a region costs no second parse.
    """
    import re

    if loader is None:
        from botocore.loaders import create_loader

        loader = create_loader()
    data = loader.load_data("endpoints")
    names: "set[str]" = set()
    patterns = []
    for partition in data.get("partitions", []):
        names.update(partition.get("regions", {}))
        if partition.get("regionRegex"):
            patterns.append(re.compile(partition["regionRegex"]))
    return names, patterns


def check_region(region: str, flag: str, loader: Any = None) -> None:
    """Refuse a region that no AWS partition knows, before anything is created in it.

    A region listed by botocore is accepted; so is one matching a partition's
    region pattern (a region newer than the installed botocore). ``loader``: see
    :func:`known_regions`.
    """
    names, patterns = known_regions(loader)
    if region in names or any(p.match(region) for p in patterns):
        return
    examples = ", ".join(r for r in ("us-east-1", "eu-west-1", "ap-southeast-2") if r in names)
    raise UsageError(f"{region!r} is not an AWS region (known regions are like {examples})", flag=flag)


def make_session(profile: Optional[str], region: Optional[str], assume_role: Optional[str]) -> "boto3.Session":
    """A boto3 session for ``profile`` and ``region``, optionally on an assumed role's credentials.

    :param profile: named profile (``--sagemaker-profile``); None uses the default chain
        (``AWS_PROFILE``, then the default profile).
    :param region: explicit region (``--sagemaker-region``); None uses ``AWS_REGION``, then
        ``AWS_DEFAULT_REGION``, then the profile's region. boto3 itself reads only the last two;
        ``AWS_REGION`` comes first as in the AWS CLI v2 and the other AWS SDKs.
    :param assume_role: role ARN to assume with STS before any other call (session
        name ``aws-sagemaker-remote``).
    :raises UsageError: the profile does not exist.
    :raises CredentialsError: no region is configured anywhere, or assuming the role
        failed for lack of credentials.
    """
    region = region or os.environ.get("AWS_REGION") or None
    with translate_errors("reading the AWS configuration"):
        try:
            core = botocore.session.Session()
            session = boto3.Session(profile_name=profile, region_name=region, botocore_session=core)
        except ProfileNotFound as exc:
            raise missing_profile(profile) from exc
    if not session.region_name:
        raise CredentialsError(NO_REGION)
    check_region(session.region_name, "--sagemaker-region" if region else "AWS_REGION / AWS_DEFAULT_REGION (or the profile's region)",
                 core.get_component("data_loader"))
    if not assume_role:
        return session
    with translate_errors(f"assuming role {assume_role}"):
        sts = session.client("sts", config=_client_config())
        creds = sts.assume_role(RoleArn=assume_role, RoleSessionName=ROLE_SESSION_NAME)["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=session.region_name,
    )


#: What to do when no region is configured anywhere.
NO_REGION = "no AWS region configured: pass --sagemaker-region REGION or set AWS_REGION or AWS_DEFAULT_REGION"


def missing_profile(profile: Optional[str]) -> UsageError:
    """The error for a profile that is not in the AWS config files, naming where its name came from."""
    if profile:
        return UsageError(f"no AWS profile named {profile!r} in the AWS config files", flag="--sagemaker-profile")
    for variable in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):  # boto3 reads these when no profile is given
        name = os.environ.get(variable)
        if name:
            return UsageError(f"no AWS profile named {name!r} in the AWS config files", flag=variable)
    return UsageError("the AWS profile is not in the AWS config files", flag="--sagemaker-profile")


def _leave_checked_body_unsigned(request: Any, **_: Any) -> None:
    """Sign a body sent with its SHA-256 as ``UNSIGNED-PAYLOAD``: its checksum header is signed.

    botocore hashes a body for the signature, reading it once more, unless the request goes
    over HTTPS with a checksum botocore computed itself: a blob, or a part of one, carries a
    ``x-amz-checksum-sha256`` of ours (computed when the file was named), so botocore would
    hash it over HTTP and HTTPS alike. S3 checks the bytes it receives against that header,
    which the signature covers, so the second hash buys nothing. This is botocore's
    documented ``s3.payload_signing_enabled``, changed for this one request only (other
    bodies stay signed), and left alone when the AWS config sets it.
    """
    if "x-amz-checksum-sha256" not in request.headers:
        return
    config = request.context.get("client_config") or Config()
    s3 = dict(config.s3 or {})
    if s3.get("payload_signing_enabled") is not None:
        return  # the user's own choice
    s3["payload_signing_enabled"] = False
    request.context["client_config"] = config.merge(Config(s3=s3))


def _client_config() -> Config:
    # "standard" retries back off on throttling and transient errors and also
    # retry connection errors, which "legacy" treats inconsistently.
    return Config(
        retries={"mode": "standard", "max_attempts": DEFAULT_MAX_ATTEMPTS},
        connect_timeout=DEFAULT_CONNECT_TIMEOUT,
        read_timeout=DEFAULT_READ_TIMEOUT,
        user_agent_extra=USER_AGENT_EXTRA,
    )


def make_clients(session: "boto3.Session", sagemaker_endpoint_url: Optional[str] = None) -> Clients:
    """The S3, SageMaker, CloudWatch Logs and STS clients of ``session``, each built on first use.

    :param sagemaker_endpoint_url: SageMaker endpoint (``--sagemaker-endpoint-url``,
        for example a VPC endpoint). Other endpoints come from boto3's own
        configuration (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_S3``, the config file).
    """
    return Clients(session, _client_config(), sagemaker_endpoint_url)


def account_id(clients: Clients) -> str:
    """The AWS account id of the caller (STS GetCallerIdentity)."""
    with translate_errors("getting the AWS account id"):
        return str(clients.sts.get_caller_identity()["Account"])


def partition(region: Optional[str]) -> str:
    """The ARN partition of a region (``aws``, ``aws-cn``, ``aws-us-gov``, ...)."""
    region = region or ""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("us-iso-"):
        return "aws-iso"
    if region.startswith("us-isob-"):
        return "aws-iso-b"
    return "aws"


def resolve_role(role: str, account: str, region: Optional[str] = None) -> str:
    """The ARN of an IAM role given by ARN or by name.

    ``"MyRole"`` → ``arn:aws:iam::<account>:role/MyRole``; a name with a path
    (``"service-role/MyRole"``) keeps it; an ARN is returned unchanged. The
    partition follows ``region`` (China and GovCloud regions have their own).
    """
    role = role.strip()
    if role.startswith("arn:"):
        return role
    name = role[len("role/"):] if role.startswith("role/") else role
    return f"arn:{partition(region)}:iam::{account}:role/{name.lstrip('/')}"


def resolve_role_arn(clients: Clients, role: str) -> str:
    """The ARN of an IAM role given by ARN (returned unchanged) or by name, looked up with IAM ``GetRole``.

    A name may carry the role's path (``service-role/MyRole``); ``GetRole`` takes the bare
    name, and the path it reports must then match. The ARN that IAM returns carries the
    role's real path and partition.

    :raises UsageError: no such role (or one with another path), naming ``--sagemaker-role``.
    """
    role = role.strip()
    if role.startswith("arn:"):
        return role
    path, _, name = role[len("role/"):].rpartition("/") if role.startswith("role/") else role.rpartition("/")
    try:
        with translate_errors(f"looking up IAM role {name}"):
            found = clients.iam.get_role(RoleName=name)["Role"]
    except AwsError as exc:
        if exc.code != "NoSuchEntity":
            raise
        raise UsageError(f"no IAM role named {name!r} in this account: pass the role's name or ARN",
                         flag="--sagemaker-role") from exc
    if path and found.get("Path", "/").strip("/") != path.strip("/"):
        raise UsageError(f"IAM role {name!r} has the path {found.get('Path')!r}, not '/{path.strip('/')}/'",
                         flag="--sagemaker-role")
    return str(found["Arn"])


def _clean(text: Any) -> str:
    """One line, secrets masked, bounded length; an HTML error page is cut to its title."""
    line = " ".join(str(text).split())
    title = _HTML_TITLE_RE.search(line) if _HTML_RE.search(line) else None
    if title:
        # a proxy or a faulty endpoint answered with a web page, not an AWS error: its title says enough
        line = f"the endpoint answered with an HTML page: {title.group(1).strip()}"
    line = _ACCESS_KEY_RE.sub("<access-key-id>", line)
    line = _USERINFO_RE.sub(r"\g<scheme>***@", line)
    if len(line) > _MAX_MESSAGE:
        line = line[: _MAX_MESSAGE - 3] + "..."
    return line


def _endpoint_of(exc: BotoCoreError) -> str:
    kwargs = getattr(exc, "kwargs", {}) or {}
    url = kwargs.get("endpoint_url") or kwargs.get("proxy_url")
    return _clean(url) if url else "the AWS endpoint"


def _is_credential_error(exc: BotoCoreError) -> bool:
    if isinstance(exc, _CREDENTIAL_ERRORS):
        return True
    return any(cls.__name__ in _CREDENTIAL_ERROR_NAMES for cls in type(exc).__mro__)


def translate(exc: BaseException, action: str) -> Optional[Union[AwsError, UsageError]]:
    """The framework error for a foreign exception raised while doing ``action``, or None.

    :param action: what was being done, in words (``"creating processing job x"``);
        it starts every message so the user knows which step failed.
    """
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {}) or {}
        code = str(error.get("Code") or "Unknown")
        message = _clean(error.get("Message") or exc)
        text = f"{action}: {code}: {message}"
        if code in THROTTLING_CODES:
            return ThrottledError(f"{text} (still throttled after {DEFAULT_MAX_ATTEMPTS} retries)", code=code)
        if code in CREDENTIAL_CODES:
            return CredentialsError(f"{text} (check the AWS credentials or --sagemaker-profile)", code=code)
        return AwsError(text, code=code)
    if not isinstance(exc, BotoCoreError):
        return None
    if isinstance(exc, ProfileNotFound):
        return UsageError(f"{action}: {_clean(exc)}", flag="--sagemaker-profile")
    if isinstance(exc, NoRegionError):
        return CredentialsError(f"{action}: {NO_REGION}")
    if _is_credential_error(exc):
        return CredentialsError(
            f"{action}: {_clean(exc)} (configure AWS credentials, or pass --sagemaker-profile)"
        )
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        return EndpointError(f"cannot reach {_endpoint_of(exc)} while {action}: {_clean(exc)}")
    if isinstance(exc, ParamValidationError):
        return AwsError(f"{action}: invalid request: {_clean(exc)}", code="ParamValidationError")
    return AwsError(f"{action}: {_clean(exc)}")


@contextlib.contextmanager
def translate_errors(action: str) -> Iterator[None]:
    """Translate botocore exceptions raised inside the block (see the module docstring).

    ::

        with translate_errors(f"creating processing job {name}"):
            client.create_processing_job(**request)
    """
    try:
        yield
    except Boto3Error as exc:
        # boto3's own transfer errors (S3UploadFailedError, RetriesExceededError) wrap the
        # botocore error that caused them; their text already names the object and the cause
        raise AwsError(f"{action}: {_clean(exc)}") from exc
    except (ClientError, BotoCoreError) as exc:
        ours = translate(exc, action)
        if ours is None:  # pragma: no cover - both families are always mapped
            raise
        raise ours from exc


def error_code(exc: BaseException) -> Optional[str]:
    """The AWS error code of a botocore ``ClientError`` (None for anything else)."""
    if isinstance(exc, ClientError):
        return (exc.response.get("Error", {}) or {}).get("Code")
    return None


def aws_available() -> bool:
    """True when boto3 would find an endpoint or credentials (a local look-up: no request)."""
    if os.environ.get("AWS_ENDPOINT_URL"):
        return True
    return boto3.Session().get_credentials() is not None
