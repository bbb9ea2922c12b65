"""aws.py: sessions, clients, role names, and every botocore error mapped into our tree."""
from __future__ import annotations

import inspect
import socket
import string
from typing import Any, Dict, List, Type

import boto3
import botocore.exceptions as bx
import pytest
from botocore.config import Config

from aws_sagemaker_remote import __version__, aws as awsmod
from aws_sagemaker_remote.errors import (
    AwsError,
    CredentialsError,
    EndpointError,
    RemoteError,
    ThrottledError,
    UsageError,
)

ACTION = "creating processing job demo-1"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"


def _client_error(code: str, message: str = "something went wrong") -> bx.ClientError:
    return bx.ClientError({"Error": {"Code": code, "Message": message}}, "CreateProcessingJob")


def _mapped(exc: BaseException) -> RemoteError:
    with pytest.raises(RemoteError) as info, awsmod.translate_errors(ACTION):
        raise exc
    assert info.value.__cause__ is exc, "the original error must stay in the chain"
    return info.value


def _one_line(error: RemoteError) -> str:
    text = str(error)
    assert "\n" not in text and text == text.strip() and text
    return text


# --- the listed foreign errors ---------------------------------------------------------------

@pytest.mark.parametrize(
    "exc, expected",
    [
        (bx.NoCredentialsError(), CredentialsError),
        (bx.PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"), CredentialsError),
        (bx.NoRegionError(), CredentialsError),
        (bx.CredentialRetrievalError(provider="sso", error_msg="token expired"), CredentialsError),
        (bx.EndpointConnectionError(endpoint_url="https://api.sagemaker.us-east-1.amazonaws.com"), EndpointError),
        (bx.ConnectTimeoutError(endpoint_url="https://api.sagemaker.us-east-1.amazonaws.com"), EndpointError),
        (bx.ReadTimeoutError(endpoint_url="https://api.sagemaker.us-east-1.amazonaws.com"), EndpointError),
        (bx.ConnectionClosedError(endpoint_url="https://api.sagemaker.us-east-1.amazonaws.com"), EndpointError),
        (bx.HTTPClientError(error="connection reset by peer"), EndpointError),
        (bx.SSLError(endpoint_url="https://s3.amazonaws.com", error="certificate verify failed"), EndpointError),
        (bx.ProxyConnectionError(proxy_url="http://proxy:3128", error="refused"), EndpointError),
        (_client_error("Throttling"), ThrottledError),
        (_client_error("ThrottlingException"), ThrottledError),
        (_client_error("RequestLimitExceeded"), ThrottledError),
        (_client_error("TooManyRequestsException"), ThrottledError),
        (_client_error("SlowDown"), ThrottledError),
        (_client_error("ExpiredTokenException"), CredentialsError),
        (_client_error("ValidationException"), AwsError),
        (_client_error("ResourceLimitExceeded"), AwsError),
        (bx.ParamValidationError(report="Missing required parameter in input: \"RoleArn\""), AwsError),
        (bx.WaiterError(name="JobDone", reason="max attempts", last_response={}), AwsError),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else value.__name__,
)
def test_each_foreign_error_is_mapped(exc: BaseException, expected: Type[RemoteError]) -> None:
    error = _mapped(exc)
    assert type(error) is expected
    assert error.exit_code == 1
    _one_line(error)


def test_endpoint_error_names_the_endpoint_and_the_action() -> None:
    error = _mapped(bx.EndpointConnectionError(endpoint_url="https://api.sagemaker.us-east-1.amazonaws.com"))
    assert str(error).startswith(f"cannot reach https://api.sagemaker.us-east-1.amazonaws.com while {ACTION}")


def test_client_error_message_has_action_code_and_message() -> None:
    error = _mapped(_client_error("ResourceLimitExceeded", "The account-level service limit\nwas exceeded."))
    assert isinstance(error, AwsError)
    assert error.code == "ResourceLimitExceeded"
    assert str(error) == f"{ACTION}: ResourceLimitExceeded: The account-level service limit was exceeded."


def test_throttling_keeps_the_code() -> None:
    error = _mapped(_client_error("ThrottlingException", "Rate exceeded"))
    assert isinstance(error, ThrottledError) and error.code == "ThrottlingException"
    assert "Rate exceeded" in str(error)


def test_no_region_tells_how_to_set_one() -> None:
    text = str(_mapped(bx.NoRegionError()))
    assert "--sagemaker-region" in text and "AWS_DEFAULT_REGION" in text


def test_profile_not_found_names_the_flag() -> None:
    error = _mapped(bx.ProfileNotFound(profile="nope"))
    assert isinstance(error, UsageError) and error.flag == "--sagemaker-profile"
    assert error.exit_code == 2


def test_messages_never_carry_credentials() -> None:
    leaky = [
        _client_error("SignatureDoesNotMatch", f"The request signature for {ACCESS_KEY} does not match"),
        bx.ProxyConnectionError(proxy_url=f"http://alice:{SECRET}@proxy:3128", error="refused"),
        bx.EndpointConnectionError(endpoint_url=f"https://bob:{SECRET}@example.com"),
    ]
    for exc in leaky:
        text = _one_line(_mapped(exc))
        assert SECRET not in text and ACCESS_KEY not in text, text


def _dummy_kwargs(cls: Type[bx.BotoCoreError]) -> Dict[str, Any]:
    fields = [name for _, name, _, _ in string.Formatter().parse(cls.fmt) if name]
    return {name: "x" for name in fields}


def _all_botocore_errors() -> List[Type[bx.BotoCoreError]]:
    return [
        obj for _, obj in inspect.getmembers(bx, inspect.isclass)
        if issubclass(obj, bx.BotoCoreError) and obj.__module__ == bx.__name__
    ]


def test_every_botocore_error_class_is_mapped() -> None:
    """Whatever botocore raises, the user sees one of ours, never a foreign traceback."""
    classes = _all_botocore_errors()
    assert len(classes) > 50
    for cls in classes:
        try:
            exc = cls(**_dummy_kwargs(cls))
        except TypeError:  # a few take positional arguments of their own; skip those
            continue
        error = _mapped(exc)
        assert isinstance(error, (AwsError, UsageError)), cls
        _one_line(error)


def test_other_exceptions_pass_through() -> None:
    with pytest.raises(KeyError), awsmod.translate_errors(ACTION):
        raise KeyError("ours, not botocore's")


# --- a real connection failure -------------------------------------------------------------

def _closed_port() -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_closed_loopback_port_gives_endpoint_error() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    client = boto3.client(
        "sagemaker",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        # one attempt: the point is the mapping, not botocore's back-off
        config=Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=2),
    )
    with pytest.raises(EndpointError) as info, awsmod.translate_errors("describing processing job demo-1"):
        client.describe_processing_job(ProcessingJobName="demo-1")
    assert str(info.value).startswith(f"cannot reach {url}/ while describing processing job demo-1")
    assert isinstance(info.value.__cause__, bx.EndpointConnectionError)


# --- sessions and clients ------------------------------------------------------------------

def test_missing_profile_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as info:
        awsmod.make_session("no-such-profile", "us-east-1", None)
    assert str(info.value).startswith("--sagemaker-profile: ")
    assert "no-such-profile" in str(info.value)


def test_no_region_anywhere_is_a_credentials_error() -> None:
    with pytest.raises(CredentialsError) as info:
        awsmod.make_session(None, None, None)
    assert "--sagemaker-region" in str(info.value) and "AWS_DEFAULT_REGION" in str(info.value)


def test_region_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert awsmod.make_session(None, None, None).region_name == "eu-west-1"
    assert awsmod.make_session(None, "us-west-2", None).region_name == "us-west-2"


def test_clients_share_one_config(aws_env: None) -> None:
    session = awsmod.make_session(None, "us-east-1", None)
    clients = awsmod.make_clients(session, sagemaker_endpoint_url="https://vpce-1.sagemaker.example.com")
    for client in (clients.s3, clients.sagemaker, clients.logs, clients.sts):
        config = client.meta.config
        # botocore stores max_attempts=5 (retries) as total_max_attempts=6 (requests); log reads,
        # best effort and repeated by the watch code anyway, retry once
        attempts = 2 if client is clients.logs else 6
        assert config.retries == {"mode": "standard", "total_max_attempts": attempts}
        assert (config.connect_timeout, config.read_timeout) == (10, 60)
        assert f"aws-sagemaker-remote/{__version__}" in config.user_agent_extra
    assert clients.sagemaker.meta.endpoint_url == "https://vpce-1.sagemaker.example.com"
    assert clients.region == "us-east-1"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def test_account_id_and_assume_role_against_moto(aws: Any) -> None:
    aws_module = awsmod
    clients = aws_module.make_clients(aws_module.make_session(None, None, None))
    assert aws_module.account_id(clients) == "123456789012"

    role = "arn:aws:iam::123456789012:role/launcher"
    assumed = aws_module.make_session(None, "us-east-1", role)
    credentials = assumed.get_credentials()
    assert credentials.access_key != "testing" and credentials.token
    assert assumed.region_name == "us-east-1"
    assert "AssumeRole" in aws.operations("sts")


def test_resolve_role() -> None:
    assert awsmod.resolve_role("SageMakerRole", "123456789012") == "arn:aws:iam::123456789012:role/SageMakerRole"
    assert awsmod.resolve_role("service-role/X", "1") == "arn:aws:iam::1:role/service-role/X"
    arn = "arn:aws:iam::999999999999:role/Other"
    assert awsmod.resolve_role(arn, "123456789012") == arn
    assert awsmod.resolve_role("R", "1", region="cn-north-1") == "arn:aws-cn:iam::1:role/R"
    assert awsmod.resolve_role("R", "1", region="us-gov-west-1") == "arn:aws-us-gov:iam::1:role/R"


def test_importing_the_package_does_not_import_boto3(run_python: Any) -> None:
    done = run_python("-c", "import sys, aws_sagemaker_remote; print('boto3' in sys.modules, "
                            "'aws_sagemaker_remote.aws' in sys.modules)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
