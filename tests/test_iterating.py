"""The levers for iterating quickly: warm pools, retries, health checks, session chaining, remote debugging.

Each option's request field is checked against botocore's SageMaker model (the limits too), a bad
value is refused before any request reaches the moto server, and a processing script refuses the
training-only flags, because ``CreateProcessingJob`` has none of these fields.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import boto3
import botocore.session
import pytest
from conftest import assert_one_error_line
from test_render import PLACEMENT, _staged, _validate
from test_watch import FakeTime, Script

from aws_sagemaker_remote.backends.sagemaker import SageMakerBackend
from aws_sagemaker_remote.cli import build_parser, run_command
from aws_sagemaker_remote.errors import RemoteError, UsageError
from aws_sagemaker_remote.iterating import ssm_command
from aws_sagemaker_remote.jobs import AwsOptions, Finder, FoundJob
from aws_sagemaker_remote.kinds.training import POOL_MATCH, training_attempts
from aws_sagemaker_remote.options import KEEP_ALIVE_MAX, RETRIES_MAX, TrainingOptions, flag_name
from aws_sagemaker_remote.render import render
from aws_sagemaker_remote.spec import WarmPool
from aws_sagemaker_remote.watch import result_from_description, summary_lines, wait

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


# --- what the watch says: warm pool and attempts, from scripted DescribeTrainingJob answers ------------------

TRAIN = "train-1"
ENDED = dt.datetime(2026, 12, 2, 9, 0, 0, tzinfo=dt.timezone.utc)
RESOURCES = {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30, "KeepAlivePeriodInSeconds": 600}


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> Tuple[Any, Any]:
    # Stubber answers before anything is signed or sent, but botocore still wants credentials.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return boto3.client("sagemaker", region_name="us-east-1"), boto3.client("logs", region_name="us-east-1")


def _transitions(*statuses: str) -> List[Dict[str, Any]]:
    return [{"Status": s, "StartTime": ENDED - dt.timedelta(minutes=10 - i)} for i, s in enumerate(statuses)]


def test_a_job_on_a_warm_pool_says_so_and_how_long_the_pool_stays(clients: Tuple[Any, Any]) -> None:
    backend = SageMakerBackend(*clients, "us-east-1", poll_interval=5.0, log_poll_interval=5.0)
    with Script(*clients, "training", TRAIN) as script:
        script.describe("InProgress", SecondaryStatus="Training", ResourceConfig=RESOURCES,
                        WarmPoolStatus={"Status": "InUse"})
        script.no_log_group()
        script.describe("Completed", SecondaryStatus="Completed", ResourceConfig=RESOURCES, TrainingEndTime=ENDED,
                        WarmPoolStatus={"Status": "Available", "ResourceRetainedBillableTimeInSeconds": 0})
        script.no_log_group()
        err = io.StringIO()
        fake = FakeTime()
        result = wait(backend, "training", TRAIN, out=io.StringIO(), err=err, sleep=fake.sleep, clock=fake.clock)
        script.assert_done()

    assert f"[{TRAIN}] running on instances kept warm by an earlier job (warm pool InUse)" in err.getvalue()
    assert result.warm_pool == WarmPool(status="Available", keep_alive=600, reused=True,
                                        available_until="2026-12-02T09:10:00+00:00", billable_seconds=0)
    lines = summary_lines(result)
    assert "  warm pool: this job ran on instances kept warm by an earlier job" in lines
    assert (f"  warm pool: kept until 2026-12-02 09:10:00 UTC (600 s after the end, billed while it waits; "
            f"0 s billed for kept instances); end it now: aws-sagemaker-remote stop-pool {TRAIN}") in lines
    assert result.to_json()["warm_pool"]["status"] == "Available"


def test_a_cold_start_with_a_keep_alive_is_not_called_a_reuse(clients: Tuple[Any, Any]) -> None:
    backend = SageMakerBackend(*clients, "us-east-1", poll_interval=5.0, log_poll_interval=5.0)
    with Script(*clients, "training", TRAIN) as script:
        # a job that asked for a pool and got new instances: no WarmPoolStatus while it runs
        for secondary in ("Starting", "Downloading", "Training"):
            script.describe("InProgress", SecondaryStatus=secondary, ResourceConfig=RESOURCES)
            script.no_log_group()
        script.describe("Completed", SecondaryStatus="Completed", ResourceConfig=RESOURCES, TrainingEndTime=ENDED,
                        WarmPoolStatus={"Status": "Available", "ResourceRetainedBillableTimeInSeconds": 0})
        script.no_log_group()
        err = io.StringIO()
        fake = FakeTime()
        result = wait(backend, "training", TRAIN, out=io.StringIO(), err=err, sleep=fake.sleep, clock=fake.clock)
        script.assert_done()

    said = err.getvalue().splitlines()
    assert not any("kept warm" in line for line in said)
    cold = [line for line in said if "started on new instances" in line]
    assert cold == [f"[{TRAIN}] started on new instances ({POOL_MATCH})"]
    assert "no warm pool matched" in cold[0] and "instance type and count" in cold[0]
    assert result.warm_pool is not None and not result.warm_pool.reused and result.warm_pool.new_instances
    lines = summary_lines(result)
    assert f"  warm pool: this job started on new instances ({POOL_MATCH})" in lines
    assert not any("ran on instances kept warm" in line for line in lines)
    assert result.to_json()["warm_pool"]["new_instances"] is True


def test_no_cold_start_is_said_of_a_job_without_a_keep_alive(clients: Tuple[Any, Any]) -> None:
    backend = SageMakerBackend(*clients, "us-east-1", poll_interval=5.0, log_poll_interval=5.0)
    plain = {**RESOURCES, "KeepAlivePeriodInSeconds": 0}
    with Script(*clients, "training", TRAIN) as script:
        script.describe("InProgress", SecondaryStatus="Training", ResourceConfig=plain)
        script.no_log_group()
        script.describe("Completed", SecondaryStatus="Completed", ResourceConfig=plain, TrainingEndTime=ENDED)
        script.no_log_group()
        err = io.StringIO()
        fake = FakeTime()
        result = wait(backend, "training", TRAIN, out=io.StringIO(), err=err, sleep=fake.sleep, clock=fake.clock)
        script.assert_done()
    assert "warm pool" not in err.getvalue() and "new instances" not in err.getvalue()
    assert result.warm_pool is None


def test_the_summary_of_a_pool_taken_over_and_of_no_pool() -> None:
    description = {"TrainingJobName": TRAIN, "TrainingJobStatus": "Completed", "ResourceConfig": RESOURCES,
                   "TrainingEndTime": ENDED,
                   "WarmPoolStatus": {"Status": "Reused", "ReusedByJob": "train-2",
                                      "ResourceRetainedBillableTimeInSeconds": 42}}
    result = result_from_description("training", description, None)
    assert "  warm pool: taken over by job train-2; 42 s billed for kept instances" in summary_lines(result)
    # a final response alone says nothing of how the job started
    assert not any("kept warm" in line or "new instances" in line for line in summary_lines(result))
    # no pool asked for and none reported: nothing is said
    plain = result_from_description("training", {"TrainingJobName": TRAIN, "TrainingJobStatus": "Completed"}, None)
    assert plain.warm_pool is None and not any("warm pool" in line for line in summary_lines(plain))


def test_the_failure_says_which_attempt_failed(clients: Tuple[Any, Any]) -> None:
    backend = SageMakerBackend(*clients, "us-east-1", poll_interval=5.0, log_poll_interval=5.0)
    retried = _transitions("Starting", "Downloading", "Training", "Starting", "Downloading", "Training")
    with Script(*clients, "training", TRAIN) as script:
        script.describe("InProgress", SecondaryStatus="Training", RetryStrategy={"MaximumRetryAttempts": 2},
                        SecondaryStatusTransitions=retried[:3])
        script.no_log_group()
        script.describe("InProgress", SecondaryStatus="Starting", RetryStrategy={"MaximumRetryAttempts": 2},
                        SecondaryStatusTransitions=retried[:4])
        script.no_log_group()
        script.describe("Failed", SecondaryStatus="Failed", RetryStrategy={"MaximumRetryAttempts": 2},
                        FailureReason="InternalServerError: We encountered an internal error.",
                        SecondaryStatusTransitions=retried + _transitions("Failed")[:1])
        script.no_log_group()
        err = io.StringIO()
        fake = FakeTime()
        result = wait(backend, "training", TRAIN, out=io.StringIO(), err=err, sleep=fake.sleep, clock=fake.clock)
        script.assert_done()

    assert f"[{TRAIN}] attempt 2 of 3: SageMaker started the job again" in err.getvalue().splitlines()
    assert (result.attempt, result.attempts_allowed) == (2, 3)
    assert ("  attempt: 2 of 3 failed (SageMaker retries only after an internal error; the script's own failure "
            "ends the job)") in summary_lines(result)
    assert result.to_json()["attempt"] == 2 and result.to_json()["attempts_allowed"] == 3


def test_attempts_count_returns_to_starting() -> None:
    assert training_attempts({}) == (1, None)
    assert training_attempts({"SecondaryStatusTransitions": _transitions("Starting", "Downloading", "Training"),
                              "RetryStrategy": {"MaximumRetryAttempts": 1}}) == (1, 2)
    three = _transitions("Starting", "Training", "Restarting", "Starting", "Training", "Starting", "Failed")
    assert training_attempts({"SecondaryStatusTransitions": three}) == (3, None)


# --- stop-pool and shell ---------------------------------------------------------------------------------

CLI = ("-m", "aws_sagemaker_remote")


def test_stop_pool_sends_a_keep_alive_of_zero(aws: Any, run_script: RunPython, run_python: RunPython,
                                              demo_dir: Path, tmp_path: Path, one_error_line: Any) -> None:
    launched = run_script(demo_dir / "train_linear.py", *YES, "--sagemaker-keep-alive", "600",
                          "--sagemaker-output-json", tmp_path / "result.json")
    assert launched.returncode == 0, launched.stderr
    job = json.loads((tmp_path / "result.json").read_text())["job_name"]
    assert aws.json_bodies("CreateTrainingJob")[0]["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 600
    aws.clear_log()

    result = run_python(*CLI, "stop-pool", job)
    bodies = aws.json_bodies("UpdateTrainingJob")
    assert bodies and all(b == {"TrainingJobName": job, "ResourceConfig": {"KeepAlivePeriodInSeconds": 0}}
                          for b in bodies)
    # moto has no UpdateTrainingJob (NotImplementedError, a 500 page): one line, exit 1; the answer of
    # SageMaker itself is scripted below
    assert result.returncode == 1
    one_error_line(result.stderr, f"ending the warm pool of training job {job}", "500")


class OneJob(Finder):
    """Finds one SageMaker training job, answered by ``backend`` (its clients are stubbed)."""

    def __init__(self, backend: SageMakerBackend) -> None:
        super().__init__(AwsOptions())
        self.backend = backend

    def find(self, name: str, kind: Any = None) -> FoundJob:
        return FoundJob(name, "training", "SageMaker", self.backend)


def _command(clients: Tuple[Any, Any], *argv: str) -> Tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_command(build_parser().parse_args(list(argv)), OneJob(SageMakerBackend(*clients, "us-east-1")),
                       out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_stop_pool_ends_an_available_pool(clients: Tuple[Any, Any]) -> None:
    with Script(*clients, "training", TRAIN) as script:
        script.describe("Completed", ResourceConfig=RESOURCES, WarmPoolStatus={"Status": "Available"})
        script.sm.add_response("update_training_job", {"TrainingJobArn": f"arn:aws:sagemaker:us-east-1:1:{TRAIN}"},
                               {"TrainingJobName": TRAIN, "ResourceConfig": {"KeepAlivePeriodInSeconds": 0}})
        code, _, err = _command(clients, "stop-pool", TRAIN)
        script.assert_done()
    assert code == 0
    assert err == f"ending the warm pool of training job {TRAIN}: its instances are released\n"


def test_stop_pool_leaves_a_pool_that_is_gone(clients: Tuple[Any, Any]) -> None:
    with Script(*clients, "training", TRAIN) as script:
        script.describe("Completed", ResourceConfig=RESOURCES,
                        WarmPoolStatus={"Status": "Reused", "ReusedByJob": "train-2"})
        # no UpdateTrainingJob answer is queued: a request would fail the test
        code, out, _ = _command(clients, "stop-pool", TRAIN, "--json")
        script.assert_done()
    assert code == 0 and json.loads(out) == {
        "job_name": TRAIN, "ended": False,
        "note": f"the warm pool of training job {TRAIN} is already Reused (taken over by job train-2): nothing to end"}


def _running(script: Script, count: int, debug: bool = True) -> None:
    script.describe("InProgress", SecondaryStatus="Training", ResourceConfig={**RESOURCES, "InstanceCount": count},
                    RemoteDebugConfig={"EnableRemoteDebug": debug})


def test_the_shell_command_for_one_host(clients: Tuple[Any, Any]) -> None:
    with Script(*clients, "training", TRAIN) as script:
        _running(script, 1)
        code, out, err = _command(clients, "shell", TRAIN, "--print")
        script.assert_done()
    assert code == 0 and err == ""
    assert out == f"aws ssm start-session --target sagemaker-training-job:{TRAIN}_algo-1 --region us-east-1\n"


def test_the_shell_command_for_several_hosts(clients: Tuple[Any, Any]) -> None:
    with Script(*clients, "training", TRAIN) as script:
        for _ in range(3):
            _running(script, 3)
        code, out, err = _command(clients, "shell", TRAIN, "--print")
        assert code == 0
        assert out.split() == ssm_command(TRAIN, "algo-1", region="us-east-1")
        assert "algo-1, algo-2, algo-3" in err and "--host" in err
        code, out, _ = _command(clients, "shell", TRAIN, "--host", "algo-3", "--json", "--profile", "dev")
        assert code == 0
        assert json.loads(out) == {
            "job_name": TRAIN, "host": "algo-3", "hosts": ["algo-1", "algo-2", "algo-3"],
            "target": f"sagemaker-training-job:{TRAIN}_algo-3",
            "command": ["aws", "ssm", "start-session", "--target", f"sagemaker-training-job:{TRAIN}_algo-3",
                        "--region", "us-east-1", "--profile", "dev"]}
        with pytest.raises(UsageError) as info:
            _command(clients, "shell", TRAIN, "--host", "algo-4")
        script.assert_done()
    assert info.value.exit_code == 2
    assert str(info.value) == f"--host: 'algo-4' is not a host of training job {TRAIN}; allowed: algo-1..algo-3"


def _tools(folder: Path, *names: str) -> Path:
    """Executables that record their command line in ``folder/NAME.args`` and succeed."""
    folder.mkdir(exist_ok=True)
    for name in names:
        tool = folder / name
        tool.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{folder}/{name}.args"\n')
        tool.chmod(0o755)
    return folder


def test_the_shell_runs_the_session_when_the_tools_are_there(clients: Tuple[Any, Any], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(_tools(tmp_path / "bin", "aws", "session-manager-plugin")))
    with Script(*clients, "training", TRAIN) as script:
        _running(script, 2)
        code, out, _ = _command(clients, "shell", TRAIN, "--host", "algo-2")
        script.assert_done()
    assert code == 0 and out == ""
    assert (tmp_path / "bin" / "aws.args").read_text().split("\n")[:-1] == [
        "ssm", "start-session", "--target", f"sagemaker-training-job:{TRAIN}_algo-2", "--region", "us-east-1"]


def test_without_the_plugin_the_shell_prints_the_command_and_what_to_install(
        clients: Tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(_tools(tmp_path / "bin", "aws")))
    with Script(*clients, "training", TRAIN) as script:
        _running(script, 1)
        code, out, err = _command(clients, "shell", TRAIN)
        script.assert_done()
    assert code == 1
    assert out == f"aws ssm start-session --target sagemaker-training-job:{TRAIN}_algo-1 --region us-east-1\n"
    assert err.startswith("session-manager-plugin is not on PATH; install the Session Manager plugin")
    assert not (tmp_path / "bin" / "aws.args").exists()


def test_a_job_without_remote_debugging_gets_no_shell(clients: Tuple[Any, Any]) -> None:
    with Script(*clients, "training", TRAIN) as script:
        _running(script, 1, debug=False)
        with pytest.raises(RemoteError, match="--sagemaker-remote-debug") as info:
            _command(clients, "shell", TRAIN, "--print")
        script.assert_done()
    assert info.value.exit_code == 1


def test_describe_shows_the_pool_the_attempt_and_the_shell(clients: Tuple[Any, Any]) -> None:
    with Script(*clients, "training", TRAIN) as script:
        script.describe("InProgress", SecondaryStatus="Training", ResourceConfig=RESOURCES,
                        WarmPoolStatus={"Status": "InUse", "ResourceRetainedBillableTimeInSeconds": 30},
                        RetryStrategy={"MaximumRetryAttempts": 2}, RemoteDebugConfig={"EnableRemoteDebug": True},
                        SecondaryStatusTransitions=_transitions("Starting", "Training", "Starting", "Training"))
        code, out, _ = _command(clients, "describe", TRAIN)
        script.assert_done()
    assert code == 0
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert "warm pool: InUse, keep-alive 600 s, 30 s billed" in lines
    assert "attempt: 2 of 3" in lines
    assert f"remote debug: on (aws-sagemaker-remote shell {TRAIN})" in lines


def test_the_local_backend_says_what_it_does_not_emulate(run_script: RunPython, run_python: RunPython,
                                                         demo_dir: Path, tmp_path: Path,
                                                         one_error_line: Any) -> None:
    result = run_script(demo_dir / "train_linear.py", "--sagemaker-run=local", "--sagemaker-keep-alive", "600",
                        "--sagemaker-retries", "2", "--sagemaker-remote-debug",
                        "--sagemaker-output-json", tmp_path / "result.json")
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: the local backend")]
    assert [n.split()[7] for n in notes] == ["--sagemaker-keep-alive", "--sagemaker-retries",
                                             "--sagemaker-remote-debug"]
    # no instance outlives a local job: the pool it asked for ends with it, unbilled
    written = json.loads((tmp_path / "result.json").read_text())
    assert written["warm_pool"] == {"status": "Terminated", "keep_alive": 600, "reused": False,
                                    "new_instances": False, "billable_seconds": 0}
    assert (written["attempt"], written["attempts_allowed"]) == (1, 3)
    assert "  warm pool: Terminated; 0 s billed for kept instances" in result.stderr.splitlines()
    # a local job has no SageMaker instances: no pool to end, no SSM session
    for command in ("stop-pool", "shell"):
        refused = run_python(*CLI, command, written["job_name"])
        assert refused.returncode == 2, refused.stderr
        one_error_line(refused.stderr, written["job_name"], "is a local job", command)


def test_stop_pool_sends_nothing_for_a_job_that_asked_for_no_pool(clients: Tuple[Any, Any]) -> None:
    with Script(*clients, "training", TRAIN) as script:
        script.describe("Completed", ResourceConfig={**RESOURCES, "KeepAlivePeriodInSeconds": 0})
        code, _, err = _command(clients, "stop-pool", TRAIN)
        script.assert_done()
    assert code == 0 and "asked for no warm pool" in err


def test_stop_with_pool_keeps_nothing_warm_after_the_stop(clients: Tuple[Any, Any]) -> None:
    with Script(*clients, "training", TRAIN) as script:
        script.describe("InProgress", SecondaryStatus="Training", ResourceConfig=RESOURCES)
        # the keep-alive goes to 0 first: a stopped job keeps its instances warm like a completed one
        script.sm.add_response("update_training_job", {"TrainingJobArn": f"arn:aws:sagemaker:us-east-1:1:{TRAIN}"},
                               {"TrainingJobName": TRAIN, "ResourceConfig": {"KeepAlivePeriodInSeconds": 0}})
        script.stop()
        code, _, err = _command(clients, "stop", TRAIN, "--pool")
        script.assert_done()
    assert code == 0
    assert err.splitlines() == [f"training job {TRAIN} keeps no warm pool after it ends (keep-alive set to 0)",
                                f"stopping training job {TRAIN}"]


def _stop_command(clients: Tuple[Any, Any], fake: FakeTime, *argv: str) -> Tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_command(build_parser().parse_args(["stop", TRAIN, "--pool", *argv]),
                       OneJob(SageMakerBackend(*clients, "us-east-1")), out=out, err=err,
                       sleep=fake.sleep, clock=fake.clock)
    return code, out.getvalue(), err.getvalue()


def _refuse_update(script: Script) -> None:
    script.sm.add_client_error("update_training_job", service_error_code="ValidationException",
                               service_message="The warm pool of the job cannot be updated while it is InProgress.",
                               http_status_code=400,
                               expected_params={"TrainingJobName": TRAIN,
                                                "ResourceConfig": {"KeepAlivePeriodInSeconds": 0}})


def test_stop_with_pool_stops_the_job_when_the_pool_update_is_refused(clients: Tuple[Any, Any]) -> None:
    fake = FakeTime()
    with Script(*clients, "training", TRAIN) as script:
        script.describe("InProgress", SecondaryStatus="Training", ResourceConfig=RESOURCES)
        _refuse_update(script)
        script.stop()  # the stop is sent all the same
        script.describe("Stopping", SecondaryStatus="Stopping", ResourceConfig=RESOURCES)
        script.describe("Stopped", SecondaryStatus="Stopped", ResourceConfig=RESOURCES,
                        WarmPoolStatus={"Status": "Available"})
        # ended again once the job reads Stopped
        script.describe("Stopped", SecondaryStatus="Stopped", ResourceConfig=RESOURCES,
                        WarmPoolStatus={"Status": "Available"})
        script.sm.add_response("update_training_job", {"TrainingJobArn": f"arn:aws:sagemaker:us-east-1:1:{TRAIN}"},
                               {"TrainingJobName": TRAIN, "ResourceConfig": {"KeepAlivePeriodInSeconds": 0}})
        code, out, err = _stop_command(clients, fake, "--json")
        script.assert_done()
    assert code == 0, err
    assert json.loads(out) == {"job_name": TRAIN, "kind": "training", "where": "SageMaker", "stopping": True,
                               "warm_pool_error": None}
    lines = err.splitlines()
    assert lines[0].startswith(f"the warm pool of training job {TRAIN} was not ended before the stop (")
    assert "cannot be updated while it is InProgress" in lines[0]
    assert lines[1:] == [f"ending the warm pool of training job {TRAIN}: its instances are released"]
    assert fake.sleeps == [10.0]


def test_stop_with_pool_says_what_failed_when_the_pool_stays(clients: Tuple[Any, Any]) -> None:
    fake = FakeTime()
    with Script(*clients, "training", TRAIN) as script:
        script.describe("InProgress", SecondaryStatus="Training", ResourceConfig=RESOURCES)
        _refuse_update(script)
        script.stop()
        script.describe("Stopped", SecondaryStatus="Stopped", ResourceConfig=RESOURCES,
                        WarmPoolStatus={"Status": "Available"})
        script.describe("Stopped", SecondaryStatus="Stopped", ResourceConfig=RESOURCES,
                        WarmPoolStatus={"Status": "Available"})
        _refuse_update(script)
        code, _, err = _stop_command(clients, fake)
        script.assert_done()
    assert code == 1
    assert f"stopping training job {TRAIN}" in err.splitlines()
    line = assert_one_error_line(err, f"ending the warm pool of training job {TRAIN}", "ValidationException",
                                 f"run `aws-sagemaker-remote stop-pool {TRAIN}` to try again")
    assert line.startswith("aws-sagemaker-remote: error: ")


def test_stop_with_pool_gives_up_waiting_for_the_stop(clients: Tuple[Any, Any]) -> None:
    fake = FakeTime()
    with Script(*clients, "training", TRAIN) as script:
        script.describe("InProgress", SecondaryStatus="Training", ResourceConfig=RESOURCES)
        _refuse_update(script)
        script.stop()
        for _ in range(31):  # every 10 s for 300 s, and once at the end
            script.describe("Stopping", SecondaryStatus="Stopping", ResourceConfig=RESOURCES)
        code, _, err = _stop_command(clients, fake)
        script.assert_done()
    assert code == 1 and fake.now == 300.0
    assert_one_error_line(err, f"training job {TRAIN} is still Stopping after 300 s",
                          f"run `aws-sagemaker-remote stop-pool {TRAIN}` once it is Stopped")


def test_stop_with_pool_sends_the_stop_to_the_server(aws: Any, run_script: RunPython, run_python: RunPython,
                                                     demo_dir: Path, tmp_path: Path, one_error_line: Any) -> None:
    launched = run_script(demo_dir / "train_linear.py", *YES, "--sagemaker-keep-alive", "600",
                          "--sagemaker-output-json", tmp_path / "result.json")
    assert launched.returncode == 0, launched.stderr
    job = json.loads((tmp_path / "result.json").read_text())["job_name"]
    aws.clear_log()

    result = run_python(*CLI, "stop", job, "--pool")
    # moto has neither UpdateTrainingJob nor StopTrainingJob (500 for both): the stop is sent all the same
    assert aws.json_bodies("UpdateTrainingJob")
    stops = aws.json_bodies("StopTrainingJob")
    assert stops and all(b == {"TrainingJobName": job} for b in stops)
    assert result.returncode == 1
    one_error_line(result.stderr, f"stopping training job {job}", "500", "the warm pool was not ended either",
                   f"stop-pool {job}")
