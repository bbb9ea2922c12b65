"""The fault proxy itself: each fault happens on the wire, and everything else passes untouched."""
from __future__ import annotations

import threading
import time

import pytest


def _client(service: str):
    import boto3
    from botocore.config import Config

    return boto3.client(service, config=Config(retries={"mode": "standard", "max_attempts": 3}))


def test_requests_pass_through_unchanged(fault_proxy, aws) -> None:
    s3 = _client("s3")
    s3.create_bucket(Bucket="pxy-bucket")
    s3.put_object(Bucket="pxy-bucket", Key="a/b.txt", Body=b"hello")
    assert s3.head_object(Bucket="pxy-bucket", Key="a/b.txt")["ContentLength"] == 5
    assert s3.get_object(Bucket="pxy-bucket", Key="a/b.txt")["Body"].read() == b"hello"
    assert [e.operation for e in fault_proxy.events] == ["CreateBucket", "PutObject", "HeadObject", "GetObject"]
    assert aws.operations("s3") == ["CreateBucket", "PutObject", "HeadObject", "GetObject"]


def test_a_lost_response_makes_botocore_send_the_request_again(fault_proxy, aws) -> None:
    s3 = _client("s3")
    s3.create_bucket(Bucket="pxy-bucket")
    fault_proxy.lose_response("PutObject")
    s3.put_object(Bucket="pxy-bucket", Key="k", Body=b"x")
    # the first request reached moto; its answer was lost; botocore sent it again
    assert aws.operations("s3").count("PutObject") == 2
    assert [e.fault for e in fault_proxy.events if e.operation == "PutObject"] == ["lose", "forwarded"]


def test_throttling_one_service_leaves_the_others_alone(fault_proxy, aws) -> None:
    from botocore.exceptions import ClientError

    fault_proxy.throttle("logs", seconds=30)
    with pytest.raises(ClientError) as caught:
        _client("logs").describe_log_groups()
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    _client("s3").list_buckets()
    assert "DescribeLogGroups" not in aws.operations()
    assert aws.operations() == ["ListBuckets"]


def test_a_stalled_put_answers_nothing_until_released(fault_proxy, aws) -> None:
    s3 = _client("s3")
    s3.create_bucket(Bucket="pxy-bucket")
    fault_proxy.stall("PutObject")
    done = threading.Event()

    def put() -> None:
        try:
            s3.put_object(Bucket="pxy-bucket", Key="k", Body=b"x")
        finally:
            done.set()

    threading.Thread(target=put, daemon=True).start()
    assert fault_proxy.stalling.wait(10)
    assert not done.wait(1.0)
    fault_proxy.release()
    assert done.wait(20)  # botocore sent it again after the dropped connection


def test_rate_limit_slows_uploads_only(fault_proxy, aws) -> None:
    s3 = _client("s3")
    s3.create_bucket(Bucket="pxy-bucket")
    fault_proxy.rate_limit(400_000)
    started = time.monotonic()
    s3.put_object(Bucket="pxy-bucket", Key="k", Body=b"x" * 400_000)
    assert time.monotonic() - started >= 0.9
    s3.get_object(Bucket="pxy-bucket", Key="k")["Body"].read()
    # the upload was slowed by the proxy, the download was not (what the proxy did, not a clock bound)
    assert [e.operation for e in fault_proxy.faults("rate")] == ["PutObject"]
