"""The levers for iterating quickly: warm pools, retries, health checks, session chaining, remote debugging.

Each option's request field is checked against botocore's SageMaker model (the limits too), a bad
value is refused before any request reaches the moto server, and a processing script refuses the
training-only flags, because ``CreateProcessingJob`` has none of these fields.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Callable, List

import botocore.session
import pytest
from test_render import PLACEMENT, _staged, _validate

from aws_sagemaker_remote.options import KEEP_ALIVE_MAX, RETRIES_MAX, TrainingOptions, flag_name
from aws_sagemaker_remote.render import render

RunPython = Callable[..., "subprocess.CompletedProcess[str]"]
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/python:3.11"
YES = ["--sagemaker-run=yes", "--sagemaker-role", ROLE, "--sagemaker-image", IMAGE]
MODEL = botocore.session.get_session().get_service_model("sagemaker")

#: option flag → the CreateTrainingJob member it sets
FIELDS = {
    "--sagemaker-keep-alive": "ResourceConfig",
    "--sagemaker-retries": "RetryStrategy",
    "--sagemaker-infra-check": "InfraCheckConfig",
    "--sagemaker-session-chaining": "SessionChainingConfig",
    "--sagemaker-remote-debug": "RemoteDebugConfig",
}
EVERY = ["--sagemaker-keep-alive", "1800", "--sagemaker-retries", "3", "--sagemaker-infra-check",
         "--sagemaker-session-chaining", "--sagemaker-remote-debug"]


def test_the_limits_are_botocores() -> None:
    keep_alive = MODEL.shape_for("ResourceConfig").members["KeepAlivePeriodInSeconds"]
    assert (keep_alive.metadata["min"], keep_alive.metadata["max"]) == (0, KEEP_ALIVE_MAX)
    # the same limit where a pool's keep-alive is changed afterwards (stop-pool sends 0)
    update = MODEL.shape_for("ResourceConfigForUpdate").members["KeepAlivePeriodInSeconds"]
    assert (update.metadata["min"], update.metadata["max"]) == (0, KEEP_ALIVE_MAX)
    retries = MODEL.shape_for("RetryStrategy").members["MaximumRetryAttempts"]
    # the API's least is 1: our 0 means "no RetryStrategy at all"
    assert (retries.metadata["min"], retries.metadata["max"]) == (1, RETRIES_MAX)


def test_only_training_requests_have_these_fields() -> None:
    training = MODEL.operation_model("CreateTrainingJob").input_shape.members
    processing = MODEL.operation_model("CreateProcessingJob").input_shape.members
    for member in FIELDS.values():
        assert member in training
        assert member == "ResourceConfig" or member not in processing
    assert "KeepAlivePeriodInSeconds" not in MODEL.shape_for("ProcessingClusterConfig").members
    flags = {flag_name(f) for f in TrainingOptions.option_fields()}
    assert set(FIELDS) <= flags


def test_every_option_renders_a_request_botocore_accepts(tmp_path: Path) -> None:
    request = render(_staged(tmp_path, "training", EVERY), PLACEMENT)
    _validate("CreateTrainingJob", request)
    assert request["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 1800
    assert request["RetryStrategy"] == {"MaximumRetryAttempts": 3}
    assert request["InfraCheckConfig"] == {"EnableInfraCheck": True}
    assert request["SessionChainingConfig"] == {"EnableSessionTagChaining": True}
    assert request["RemoteDebugConfig"] == {"EnableRemoteDebug": True}


def test_by_default_the_request_has_none_of_them(tmp_path: Path) -> None:
    request = render(_staged(tmp_path, "training", []), PLACEMENT)
    _validate("CreateTrainingJob", request)
    assert "KeepAlivePeriodInSeconds" not in request["ResourceConfig"]
    assert not {"RetryStrategy", "InfraCheckConfig", "SessionChainingConfig", "RemoteDebugConfig"} & set(request)


@pytest.mark.parametrize("args,flag,shown", [
    (["--sagemaker-keep-alive", str(KEEP_ALIVE_MAX + 1)], "--sagemaker-keep-alive", f"0..{KEEP_ALIVE_MAX}"),
    (["--sagemaker-keep-alive=-1"], "--sagemaker-keep-alive", f"0..{KEEP_ALIVE_MAX}"),
    (["--sagemaker-retries", str(RETRIES_MAX + 1)], "--sagemaker-retries", f"0..{RETRIES_MAX}"),
    (["--sagemaker-keep-alive", "600", "--sagemaker-spot"], "--sagemaker-keep-alive", "spot"),
    (["--sagemaker-remote-debug", "--sagemaker-network-isolation"], "--sagemaker-remote-debug", "isolation"),
    (["--sagemaker-retries", "two"], "--sagemaker-retries", "'two'"),
])
def test_a_bad_value_sends_nothing(aws: Any, run_script: RunPython, demo_dir: Path, one_error_line: Any,
                                   args: List[str], flag: str, shown: str) -> None:
    result = run_script(demo_dir / "train_linear.py", *YES, *args)
    assert result.returncode == 2, result.stderr
    one_error_line(result.stderr, flag, shown)
    assert aws.requests == []


@pytest.mark.parametrize("flag", sorted(FIELDS))
def test_a_processing_script_refuses_the_training_only_flags(aws: Any, run_script: RunPython, demo_dir: Path,
                                                              one_error_line: Any, flag: str) -> None:
    value = ["1"] if flag in ("--sagemaker-keep-alive", "--sagemaker-retries") else []
    result = run_script(demo_dir / "wordcount.py", *YES, flag, *value)
    assert result.returncode == 2, result.stderr
    one_error_line(result.stderr, flag, "training jobs only")
    assert aws.requests == []


def test_pyproject_makes_the_keep_alive_a_one_time_setting(aws: Any, run_script: RunPython, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.aws-sagemaker-remote.training]\nkeep_alive = 900\nretries = 2\n")
    script = tmp_path / "train.py"
    script.write_text("from aws_sagemaker_remote import sagemaker_training_main\n\n"
                      "def main(args):\n    pass\n\n"
                      "if __name__ == '__main__':\n    sagemaker_training_main(main)\n")
    result = run_script(script, *YES, "--sagemaker-bucket", "my-bucket", "--sagemaker-dry-run")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["request"]["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 900
    assert report["request"]["RetryStrategy"] == {"MaximumRetryAttempts": 2}
    assert report["sources"]["--sagemaker-keep-alive"].endswith("pyproject.toml [tool.aws-sagemaker-remote.training]")
    # the command line wins: 0 turns the pool off for one run
    result = run_script(script, *YES, "--sagemaker-bucket", "my-bucket", "--sagemaker-dry-run",
                        "--sagemaker-keep-alive", "0")
    assert result.returncode == 0, result.stderr
    assert "KeepAlivePeriodInSeconds" not in json.loads(result.stdout)["request"]["ResourceConfig"]
