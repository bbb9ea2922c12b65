"""SageMakerBackend over real HTTP against the moto server (and a Stubber where moto cannot say it)."""
from __future__ import annotations

import time
from typing import Any, Dict, List, Tuple

import boto3
import pytest
from botocore.stub import Stubber

from aws_sagemaker_remote.backends.base import LogCursor, LogEvent
from aws_sagemaker_remote.backends.sagemaker import SageMakerBackend, host_of
from aws_sagemaker_remote.errors import AwsError
from aws_sagemaker_remote.watch import result_from_description, wait

GROUP = "/aws/sagemaker/ProcessingJobs"
JOB = "clean-data-2026-11-21-12-00-00-abcd"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/sklearn:1.2-1"


@pytest.fixture
def backend(aws: Any) -> SageMakerBackend:
    return SageMakerBackend(boto3.client("sagemaker"), boto3.client("logs"), "us-east-1")


def _put(logs: Any, stream: str, events: List[Tuple[int, str]]) -> None:
    logs.put_log_events(
        logGroupName=GROUP,
        logStreamName=f"{JOB}/{stream}",
        logEvents=[{"timestamp": ts, "message": msg} for ts, msg in events],
    )


def _seen(events: List[LogEvent]) -> List[Tuple[str, str]]:
    return [(e.host, e.message) for e in events]


def test_logs_from_two_streams_every_event_once_in_time_order(backend: SageMakerBackend, aws: Any) -> None:
    logs = boto3.client("logs")
    cursor = LogCursor.start()
    # Before SageMaker creates the log group there is simply nothing to show.
    assert backend.logs("processing", JOB, cursor) == []

    logs.create_log_group(logGroupName=GROUP)
    for stream in ("algo-1-123", "algo-2-123"):
        logs.create_log_stream(logGroupName=GROUP, logStreamName=f"{JOB}/{stream}")
    # another job's stream in the same group must not show up
    logs.create_log_stream(logGroupName=GROUP, logStreamName=f"{JOB}-other/algo-1-123")
    now = int(time.time() * 1000)  # moto drops events that are not recent
    _put(logs, "algo-1-123", [(now, "a1"), (now + 20, "a3"), (now + 40, "a5")])
    _put(logs, "algo-2-123", [(now + 10, "b2"), (now + 30, "b4")])
    logs.put_log_events(logGroupName=GROUP, logStreamName=f"{JOB}-other/algo-1-123",
                        logEvents=[{"timestamp": now, "message": "not ours"}])

    first = backend.logs("processing", JOB, cursor)
    assert _seen(first) == [("algo-1", "a1"), ("algo-2", "b2"), ("algo-1", "a3"), ("algo-2", "b4"),
                            ("algo-1", "a5")]
    assert [e.timestamp for e in first] == sorted(e.timestamp for e in first)

    assert backend.logs("processing", JOB, cursor) == []  # nothing new, nothing repeated

    _put(logs, "algo-2-123", [(now + 50, "b6"), (now + 70, "b8")])
    _put(logs, "algo-1-123", [(now + 60, "a7")])
    second = backend.logs("processing", JOB, cursor)
    assert _seen(second) == [("algo-2", "b6"), ("algo-1", "a7"), ("algo-2", "b8")]

    everything = _seen(first) + _seen(second)
    assert len(everything) == len(set(everything)) == 8


def test_a_stream_that_appears_later_is_read_from_its_start(backend: SageMakerBackend, aws: Any) -> None:
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName=f"{JOB}/algo-1-123")
    now = int(time.time() * 1000)
    _put(logs, "algo-1-123", [(now, "one")])
    cursor = LogCursor.start()
    assert _seen(backend.logs("processing", JOB, cursor)) == [("algo-1", "one")]

    logs.create_log_stream(logGroupName=GROUP, logStreamName=f"{JOB}/algo-2-123")
    _put(logs, "algo-2-123", [(now + 1, "two"), (now + 2, "three")])
    assert _seen(backend.logs("processing", JOB, cursor)) == [("algo-2", "two"), ("algo-2", "three")]


def _processing_request(name: str = JOB) -> Dict[str, Any]:
    return {
        "ProcessingJobName": name,
        "ProcessingInputs": [{
            "InputName": "code",
            "S3Input": {
                "S3Uri": "s3://bucket/prefix/cas/sha256/abc",
                "LocalPath": "/opt/ml/processing/input/code",
                "S3DataType": "S3Prefix",
                "S3InputMode": "File",
            },
        }],
        "ProcessingOutputConfig": {"Outputs": [{
            "OutputName": "output",
            "S3Output": {
                "S3Uri": "s3://bucket/prefix/jobs/out",
                "LocalPath": "/opt/ml/processing/output/output",
                "S3UploadMode": "EndOfJob",
            },
        }]},
        "ProcessingResources": {"ClusterConfig": {
            "InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "AppSpecification": {"ImageUri": IMAGE, "ContainerEntrypoint": ["python3", "-c", "print(1)"]},
        "RoleArn": ROLE,
    }


def test_create_and_describe_a_processing_job(backend: SageMakerBackend, aws: Any) -> None:
    backend.create("processing", _processing_request())
    description = backend.describe("processing", JOB)
    assert description["ProcessingJobName"] == JOB
    assert description["ProcessingJobStatus"] == "Completed"  # moto finishes jobs at once
    assert "ResponseMetadata" not in description
    assert aws.operations("sagemaker") == ["CreateProcessingJob", "DescribeProcessingJob"]

    result = result_from_description("processing", description, backend, (), {})
    assert result.status == "Completed" and result.exit_code == 0
    assert result.output_artifacts == {"output": "s3://bucket/prefix/jobs/out"}
    assert result.console_url == ("https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1"
                                  "#/processing-jobs/" + JOB)


def test_wait_on_a_job_that_is_already_done(backend: SageMakerBackend, aws: Any, capsys: Any) -> None:
    backend.create("processing", _processing_request())
    result = wait(backend, "processing", JOB, sleep=lambda s: None)
    assert result.status == "Completed"
    assert capsys.readouterr().err.splitlines() == [f"[{JOB}] Completed"]


def test_create_and_describe_a_training_job(backend: SageMakerBackend, aws: Any) -> None:
    backend.create("training", {
        "TrainingJobName": "train-1",
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/prefix/jobs/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    })
    description = backend.describe("training", "train-1")
    assert description["TrainingJobStatus"] == "Completed"
    result = result_from_description("training", description, backend)
    assert result.training_image == IMAGE
    assert result.output_data_url == "s3://bucket/prefix/jobs/train-1/output/output.tar.gz"
    assert result.model_artifact_url and result.model_artifact_url.startswith("s3://bucket/prefix/jobs")
    assert result.console_url and result.console_url.endswith("#/jobs/train-1")


def test_describe_of_an_unknown_job_is_an_aws_error(backend: SageMakerBackend) -> None:
    with pytest.raises(AwsError) as info:
        backend.describe("processing", "no-such-job")
    assert str(info.value).startswith("describing processing job no-such-job: ")
    assert info.value.code


def test_stop_processing_job_in_moto(backend: SageMakerBackend) -> None:
    backend.create("processing", _processing_request())
    backend.stop("processing", JOB)
    assert backend.describe("processing", JOB)["ProcessingJobStatus"] == "Stopped"


# --- stop: where moto cannot produce SageMaker's answers ---------------------------------------

@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def _describe_training(status: str) -> Dict[str, Any]:
    return {
        "TrainingJobName": "train-1",
        "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/train-1",
        "ModelArtifacts": {"S3ModelArtifacts": "s3://b/p/train-1/output/model.tar.gz"},
        "TrainingJobStatus": status,
        "SecondaryStatus": status,
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
        "CreationTime": 0,
    }


def test_stopping_a_job_that_already_ended_is_not_an_error(offline: None) -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    backend = SageMakerBackend(sm, boto3.client("logs", region_name="us-east-1"), "us-east-1")
    with Stubber(sm) as stub:
        stub.add_client_error("stop_training_job", "ValidationException",
                              "The job status is Completed; it cannot be stopped.")
        stub.add_response("describe_training_job", _describe_training("Completed"), {"TrainingJobName": "train-1"})
        backend.stop("training", "train-1")
        stub.assert_no_pending_responses()


def test_other_validation_errors_of_stop_are_reported(offline: None) -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    backend = SageMakerBackend(sm, boto3.client("logs", region_name="us-east-1"), "us-east-1")
    with Stubber(sm) as stub:
        stub.add_client_error("stop_training_job", "ValidationException", "Something else is wrong.")
        stub.add_response("describe_training_job", _describe_training("InProgress"), {"TrainingJobName": "train-1"})
        with pytest.raises(AwsError) as info:
            backend.stop("training", "train-1")
    assert info.value.code == "ValidationException"
    assert str(info.value) == "stopping training job train-1: ValidationException: Something else is wrong."


@pytest.mark.parametrize("stream, host", [
    (f"{JOB}/algo-1-1700000000", "algo-1"),
    (f"{JOB}/algo-12-123", "algo-12"),
    (f"{JOB}/algo-2", "algo-2"),
])
def test_host_of(stream: str, host: str) -> None:
    assert host_of(JOB, stream) == host
