"""The moto harness itself: boto3 calls travel over HTTP to the loopback server and are recorded."""
from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

import pytest


def _s3():
    import boto3

    return boto3.client("s3")


def test_server_is_bound_to_loopback_only(moto_server) -> None:
    parsed = urllib.parse.urlparse(moto_server.url)
    assert parsed.scheme == "http"
    assert parsed.hostname == "127.0.0.1"
    assert parsed.port and parsed.port > 0


def test_aws_fixture_sets_endpoint_and_dummy_credentials(aws) -> None:
    assert os.environ["AWS_ENDPOINT_URL"] == aws.url
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == "testing"
    assert os.environ["AWS_DEFAULT_REGION"] == "us-east-1"


def test_s3_calls_reach_the_server_and_are_logged(aws) -> None:
    s3 = _s3()
    s3.create_bucket(Bucket="harness-bucket")
    s3.put_object(Bucket="harness-bucket", Key="dir/hello.txt", Body=b"hello")
    body = s3.get_object(Bucket="harness-bucket", Key="dir/hello.txt")["Body"].read()
    assert body == b"hello"

    ops = aws.operations("s3")
    assert ops == ["CreateBucket", "PutObject", "GetObject"]
    put = next(r for r in aws.requests if r.operation == "PutObject")
    assert (put.method, put.bucket, put.key, put.status) == ("PUT", "harness-bucket", "dir/hello.txt", 200)
    assert put.content_length == len(b"hello")
    assert aws.s3_uploads() == [put]


def test_multipart_upload_parts_are_recorded_as_uploads(aws) -> None:
    s3 = _s3()
    s3.create_bucket(Bucket="mp-bucket")
    upload = s3.create_multipart_upload(Bucket="mp-bucket", Key="big.bin")
    part = s3.upload_part(Bucket="mp-bucket", Key="big.bin", UploadId=upload["UploadId"], PartNumber=1,
                          Body=b"x" * 1024)
    s3.complete_multipart_upload(Bucket="mp-bucket", Key="big.bin", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]})
    assert [r.operation for r in aws.s3_uploads()] == ["CreateMultipartUpload", "UploadPart"]
    assert aws.operations("s3")[-1] == "CompleteMultipartUpload"


def test_json_and_query_services_are_named(aws) -> None:
    import boto3

    identity = boto3.client("sts").get_caller_identity()
    assert identity["Account"] == "123456789012"
    boto3.client("sagemaker").list_processing_jobs()
    assert ("sts", "GetCallerIdentity") in [(r.service, r.operation) for r in aws.requests]
    assert ("sagemaker", "ListProcessingJobs") in [(r.service, r.operation) for r in aws.requests]


def test_json_request_bodies_are_recorded(aws) -> None:
    import boto3

    boto3.client("sagemaker").list_processing_jobs(MaxResults=5, NameContains="wordcount")
    assert aws.json_bodies("ListProcessingJobs") == [{"MaxResults": 5, "NameContains": "wordcount"}]
    assert aws.json_bodies("CreateProcessingJob") == []


def test_s3_object_bytes_are_not_kept_in_the_log(aws) -> None:
    s3 = _s3()
    s3.create_bucket(Bucket="quiet")
    s3.put_object(Bucket="quiet", Key="k", Body=b"payload")
    assert [r.body for r in aws.s3_uploads()] == [None]


def test_reset_forgets_state_and_clears_the_log(aws) -> None:
    s3 = _s3()
    s3.create_bucket(Bucket="to-forget")
    assert aws.requests
    aws.reset()
    assert aws.requests == []
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == []


def test_clear_log_keeps_state(aws) -> None:
    s3 = _s3()
    s3.create_bucket(Bucket="kept")
    aws.clear_log()
    assert aws.requests == []
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["kept"]
    assert aws.operations() == ["ListBuckets"]


LEAK_CHECK = """
import boto3


def test_one_creates_a_bucket(aws):
    boto3.client("s3").create_bucket(Bucket="leak-check")
    assert [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]] == ["leak-check"]


def test_two_runs_next_and_sees_no_bucket(aws):
    assert boto3.client("s3").list_buckets()["Buckets"] == []
"""


def test_state_does_not_leak_from_one_test_to_the_next(tmp_path) -> None:
    """Two tests in one session, in a fixed order: the second must not see the first one's bucket."""
    from conftest import python_environment, run_python_process

    (tmp_path / "conftest.py").write_text(Path(__file__).with_name("conftest.py").read_text())
    (tmp_path / "test_leak.py").write_text(LEAK_CHECK)
    run = run_python_process(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                              "--rootdir", str(tmp_path), str(tmp_path / "test_leak.py")],
                             cwd=tmp_path, env=python_environment())
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout


def test_environment_is_scrubbed_without_the_aws_fixture(tmp_path) -> None:
    assert "AWS_ENDPOINT_URL" not in os.environ
    assert "AWS_ACCESS_KEY_ID" not in os.environ
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"
    assert not os.path.exists(os.environ["AWS_CONFIG_FILE"])
    assert not os.path.exists(os.environ["AWS_SHARED_CREDENTIALS_FILE"])
    assert os.path.isdir(os.environ["AWS_SAGEMAKER_REMOTE_HOME"])


def test_boto3_without_the_aws_fixture_finds_no_credentials() -> None:
    """A test that forgets ``aws`` fails locally instead of reaching AWS."""
    import botocore.exceptions

    with pytest.raises((botocore.exceptions.NoCredentialsError, botocore.exceptions.NoRegionError)):
        import boto3

        boto3.client("s3", region_name="us-east-1").list_buckets()


def test_subprocesses_inherit_the_server_settings(aws, run_python) -> None:
    code = (
        "import boto3; s3 = boto3.client('s3'); s3.create_bucket(Bucket='from-child'); "
        "print(sorted(b['Name'] for b in s3.list_buckets()['Buckets']))"
    )
    done = run_python("-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['from-child']"
    assert aws.operations("s3") == ["CreateBucket", "ListBuckets"]


def test_connections_outside_loopback_are_refused() -> None:
    import socket

    with pytest.raises(OSError, match="loopback"):
        socket.create_connection(("192.0.2.1", 443), timeout=1)
    with pytest.raises(socket.gaierror, match="loopback"):
        socket.getaddrinfo("s3.amazonaws.com", 443)


def test_boto3_with_credentials_but_no_endpoint_cannot_reach_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    import botocore.config
    import botocore.exceptions

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("s3", region_name="us-east-1",
                          config=botocore.config.Config(retries={"max_attempts": 1}))
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        client.list_buckets()


def test_keys_with_special_characters_are_logged_as_sent(aws) -> None:
    s3 = _s3()
    s3.create_bucket(Bucket="odd-keys")
    s3.put_object(Bucket="odd-keys", Key="dir/na me+ä%20.txt", Body=b"1")
    assert [r.key for r in aws.s3_uploads()] == ["dir/na me+ä%20.txt"]


GUARD_CHECK = """
import os
import sys

import pytest
from conftest import ProcessStateLeaked, process_state_kept


def test_a_leaks():
    os.environ["LEAKED_VAR"] = "1"
    sys.path.insert(0, "/leaked-entry")


def test_b_starts_from_the_state_before_the_leak():
    assert "LEAKED_VAR" not in os.environ and "/leaked-entry" not in sys.path


def test_c_monkeypatch_changes_do_not_count(monkeypatch):
    monkeypatch.setenv("PATCHED_VAR", "1")
    monkeypatch.syspath_prepend("/patched-entry")


@pytest.mark.xfail(strict=True, raises=ProcessStateLeaked, reason="leaks on purpose")
def test_d_a_known_leak_fails_during_the_test():
    with process_state_kept():
        os.environ["KNOWN_LEAK"] = "1"


def test_e_other_failures_in_the_block_stay_themselves():
    with pytest.raises(ZeroDivisionError), process_state_kept():
        os.environ["RESTORED_VAR"] = "1"
        1 / 0
    assert "RESTORED_VAR" not in os.environ
"""


def test_a_test_that_leaves_environment_or_sys_path_behind_fails(tmp_path) -> None:
    from conftest import python_environment, run_python_process

    (tmp_path / "conftest.py").write_text(Path(__file__).with_name("conftest.py").read_text())
    (tmp_path / "test_guard.py").write_text(GUARD_CHECK)
    run = run_python_process(["-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "-p", "no:randomly",
                              "--rootdir", str(tmp_path), str(tmp_path / "test_guard.py")],
                             cwd=tmp_path, env=python_environment())
    assert run.returncode == 1, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert "ERROR at teardown of test_a_leaks" in "\n".join(lines), run.stdout
    assert ("the test left process state behind (use monkeypatch): "
            "os.environ gained LEAKED_VAR; sys.path added /leaked-entry") in lines, run.stdout
    assert "ERROR test_guard.py::test_a_leaks" in run.stdout
    assert "4 passed, 1 xfailed, 1 error" in run.stdout, run.stdout
