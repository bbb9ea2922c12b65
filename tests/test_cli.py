"""The ``aws-sagemaker-remote`` command, run as a user runs it: ``python -m aws_sagemaker_remote.cli``.

Jobs are created directly in the moto server with boto3 (moto marks them
``Completed`` at once); the command then describes, follows and stops them
over real HTTP. Ctrl-C during ``logs`` needs a job that keeps running, so that
one test scripts SageMaker's answers with botocore's ``Stubber`` instead.
"""
from __future__ import annotations

import io
import json
import subprocess
from typing import Any, Callable, Dict, List

import boto3
import pytest
from botocore.stub import Stubber

from aws_sagemaker_remote.backends.sagemaker import SageMakerBackend
from aws_sagemaker_remote.cli import build_parser, run_command
from aws_sagemaker_remote.errors import Interrupted

#: the ``aws`` fixture's server and the ``run_python`` fixture (see conftest.py)
MotoServer = Any
RunPython = Callable[..., "subprocess.CompletedProcess[str]"]

JOB = "cli-clean-data-1"
REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/sklearn:1.2-1"
CLI = ("-m", "aws_sagemaker_remote.cli")


def create_processing_job(name: str = JOB) -> None:
    """A minimal valid CreateProcessingJob request, sent to the moto server."""
    boto3.client("sagemaker", region_name=REGION).create_processing_job(
        ProcessingJobName=name,
        ProcessingResources={"ClusterConfig": {
            "InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}},
        AppSpecification={"ImageUri": IMAGE},
        RoleArn=ROLE,
    )


def test_describe_prints_the_jobs_description_as_json(aws: MotoServer, run_python: RunPython) -> None:
    create_processing_job()

    result = run_python(*CLI, "describe", "processing", JOB)

    assert result.returncode == 0, result.stderr
    description = json.loads(result.stdout)
    assert description["ProcessingJobName"] == JOB
    assert description["ProcessingJobStatus"] == "Completed"
    assert description["RoleArn"] == ROLE
    assert "ResponseMetadata" not in description


def test_logs_of_a_completed_job_prints_the_summary_and_exits_0(aws: MotoServer, run_python: RunPython) -> None:
    create_processing_job()

    result = run_python(*CLI, "logs", "processing", JOB)

    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert f"[{JOB}] Completed" in lines
    assert f"processing job {JOB}: Completed" in lines


def test_stop_stops_the_job(aws: MotoServer, run_python: RunPython) -> None:
    create_processing_job()

    result = run_python(*CLI, "stop", "processing", JOB)

    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == f"stopping processing job {JOB}"
    described = boto3.client("sagemaker", region_name=REGION).describe_processing_job(ProcessingJobName=JOB)
    assert described["ProcessingJobStatus"] == "Stopped"
    assert aws.operations("sagemaker") == ["CreateProcessingJob", "StopProcessingJob", "DescribeProcessingJob"]


def test_a_job_that_does_not_exist_is_one_error_line(aws: MotoServer, run_python: RunPython,
                                                     one_error_line: Callable[..., str]) -> None:
    result = run_python(*CLI, "describe", "processing", "no-such-job")
    assert result.returncode == 1
    one_error_line(result.stderr, "no-such-job")


def test_a_bad_kind_is_a_usage_error(run_python: RunPython, one_error_line: Callable[..., str]) -> None:
    result = run_python(*CLI, "describe", "transform", JOB)
    assert result.returncode == 2
    assert result.stdout == ""
    one_error_line(result.stderr, "transform", "processing", "training")


def test_a_missing_region_names_this_commands_flag(run_python: RunPython,
                                                   one_error_line: Callable[..., str]) -> None:
    # no aws fixture: no region anywhere, and nothing is sent before the check
    result = run_python(*CLI, "describe", "processing", JOB)
    assert result.returncode == 1
    line = one_error_line(result.stderr, "--region")
    assert "--sagemaker-region" not in line


def test_an_unknown_profile_names_this_commands_flag(run_python: RunPython,
                                                     one_error_line: Callable[..., str]) -> None:
    result = run_python(*CLI, "--profile", "nobody", "--region", REGION, "describe", "processing", JOB)
    assert result.returncode == 2
    line = one_error_line(result.stderr, "--profile", "nobody")
    assert "--sagemaker-profile" not in line


def test_ctrl_c_during_logs_leaves_the_job_running(monkeypatch: pytest.MonkeyPatch) -> None:
    # Stubber answers before anything is signed or sent, but botocore still wants credentials.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    sm, logs = boto3.client("sagemaker", region_name=REGION), boto3.client("logs", region_name=REGION)
    running: Dict[str, Any] = {
        "ProcessingJobName": JOB, "ProcessingJobStatus": "InProgress", "CreationTime": 0,
        "ProcessingJobArn": f"arn:aws:sagemaker:{REGION}:123456789012:processing-job/{JOB}",
        "ProcessingResources": {"ClusterConfig": {
            "InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}},
        "AppSpecification": {"ImageUri": IMAGE},
    }
    sleeps: List[float] = []

    def ctrl_c(seconds: float) -> None:
        sleeps.append(seconds)
        raise KeyboardInterrupt

    args = build_parser().parse_args(["logs", "processing", JOB])
    err = io.StringIO()
    with Stubber(sm) as sm_stub, Stubber(logs) as logs_stub:
        sm_stub.add_response("describe_processing_job", running, {"ProcessingJobName": JOB})
        logs_stub.add_client_error("describe_log_streams", "ResourceNotFoundException", "no log group yet")
        # no StopProcessingJob answer is queued: a stop request would fail the test
        with pytest.raises(Interrupted) as info:
            run_command(args, SageMakerBackend(sm, logs, REGION), out=io.StringIO(), err=err, sleep=ctrl_c,
                        clock=lambda: 0.0)
        sm_stub.assert_no_pending_responses()
        logs_stub.assert_no_pending_responses()

    assert sleeps and info.value.exit_code == 130
    assert "keeps running" in str(info.value) and JOB in str(info.value)
    assert "keeps running" in err.getvalue().splitlines()[-1]
