"""Faults caused for real through the fault proxy (``tests/faultproxy.py``) and the OS.

Each test runs a launcher as a user would (a subprocess), between it and the
moto server a proxy that loses answers, throttles one API, stalls or slows
uploads; or kills the launcher outright. What is asserted is what the user
sees: exit codes, the lines printed, what the server holds, which processes
and files are left.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3

from conftest import python_environment

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/python:3.11"
YES = ("--sagemaker-run=yes", "--sagemaker-role", ROLE, "--sagemaker-image", IMAGE)
IN_USE = "Job name must be unique within an AWS account and region, and a job with this name already exists"


# --- what is reported is what happened ------------------------------------------------------------

def test_lost_create_processing_response_is_recognised(fault_proxy: Any, aws: Any, run_script: Any,
                                                       demo_dir: Path, tmp_path: Path) -> None:
    # SageMaker creates the job, the answer never arrives, botocore asks again and is told the name is taken
    fault_proxy.lose_response("CreateProcessingJob")
    fault_proxy.fail("ResourceInUse", operation="CreateProcessingJob", times=1, message=IN_USE)
    result_file = tmp_path / "result.json"
    run = run_script(demo_dir / "wordcount.py", *YES, "--sagemaker-output-json", result_file)
    assert run.returncode == 0, run.stderr
    assert "error" not in run.stderr.lower()
    name = json.loads(result_file.read_text())["job_name"]
    assert f"created processing job {name}" in run.stderr
    assert "Completed" in run.stderr
    assert [e.fault for e in fault_proxy.events if e.operation == "CreateProcessingJob"] == ["lose", "fail"]
    created = aws.json_bodies("CreateProcessingJob")
    assert len(created) == 1  # one job, the one whose answer was lost
    assert boto3.client("sagemaker").describe_processing_job(ProcessingJobName=name)["ProcessingJobName"] == name


def test_lost_create_training_response_is_recognised(fault_proxy: Any, aws: Any, run_script: Any,
                                                     demo_dir: Path, tmp_path: Path) -> None:
    fault_proxy.lose_response("CreateTrainingJob")
    fault_proxy.fail("ResourceInUse", operation="CreateTrainingJob", times=1, message=IN_USE)
    result_file = tmp_path / "result.json"
    run = run_script(demo_dir / "train_linear.py", *YES, "--epochs", "2", "--sagemaker-output-json", result_file)
    assert run.returncode == 0, run.stderr
    name = json.loads(result_file.read_text())["job_name"]
    assert "Completed" in run.stderr
    assert len(aws.json_bodies("CreateTrainingJob")) == 1
    assert boto3.client("sagemaker").describe_training_job(TrainingJobName=name)["TrainingJobName"] == name


def test_a_name_taken_by_another_launch_is_still_an_error(fault_proxy: Any, aws: Any, run_script: Any,
                                                          demo_dir: Path, one_error_line: Any) -> None:
    # a job of that name exists and was not created by this launch: no token of ours on it
    sm = boto3.client("sagemaker")
    sm.create_processing_job(
        ProcessingJobName="taken-name", RoleArn=ROLE,
        AppSpecification={"ImageUri": IMAGE},
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                               "VolumeSizeInGB": 30}})
    fault_proxy.fail("ResourceInUse", operation="CreateProcessingJob", times=1, message=IN_USE)
    run = run_script(demo_dir / "wordcount.py", *YES, "--sagemaker-job-name", "taken-name")
    assert run.returncode == 1, run.stderr
    one_error_line(run.stderr, "taken-name", "ResourceInUse")
    assert "Completed" not in run.stderr


def test_throttled_logs_do_not_fail_a_completed_job(fault_proxy: Any, aws: Any, run_script: Any,
                                                    demo_dir: Path, tmp_path: Path) -> None:
    # CloudWatch Logs answers ThrottlingException for longer than the whole launch; SageMaker is fine
    fault_proxy.throttle("logs", seconds=120)
    result_file = tmp_path / "result.json"
    started = time.monotonic()
    run = run_script(demo_dir / "wordcount.py", *YES, "--sagemaker-output-json", result_file)
    took = time.monotonic() - started
    assert run.returncode == 0, run.stderr
    assert json.loads(result_file.read_text())["status"] == "Completed"
    assert "Completed" in run.stderr
    assert "logs are incomplete" in run.stderr
    assert "may still be running" not in run.stderr
    assert fault_proxy.faults("fail")  # the logs API really was throttled
    assert not [e for e in fault_proxy.faults("fail") if e.service != "logs"]
    assert took < 45, run.stderr


def test_throttled_logs_do_not_fail_a_completed_training_job(fault_proxy: Any, aws: Any, run_script: Any,
                                                             demo_dir: Path) -> None:
    fault_proxy.throttle("logs", seconds=120)
    run = run_script(demo_dir / "train_linear.py", *YES, "--epochs", "2")
    assert run.returncode == 0, run.stderr
    assert "Completed" in run.stderr
    assert "logs are incomplete" in run.stderr
