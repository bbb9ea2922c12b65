"""watch.wait() on SageMakerBackend with botocore's Stubber: status sequences, logs, Ctrl-C, metrics.

moto finishes every job the moment it is created, so the sequences SageMaker
goes through are scripted with ``Stubber`` on real boto3 clients. Time is a
fake clock that only moves when ``wait`` sleeps.
"""
from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import boto3
import pytest
from botocore.stub import Stubber

from aws_sagemaker_remote.backends.local import LocalBackend
from aws_sagemaker_remote.backends.sagemaker import SageMakerBackend
from aws_sagemaker_remote.errors import AwsError, Interrupted, ThrottledError
from aws_sagemaker_remote.spec import JobResult
from aws_sagemaker_remote.store import LocalStore
from aws_sagemaker_remote.watch import result_from_description, summary_lines, wait

JOB = "clean-data-1"
TRAIN = "train-1"
REGION = "us-east-1"
PROCESSING_GROUP = "/aws/sagemaker/ProcessingJobs"
TRAINING_GROUP = "/aws/sagemaker/TrainingJobs"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/sklearn:1.2-1"


class FakeTime:
    """``clock``/``sleep`` pair: time moves only when slept; optionally Ctrl-C on the Nth sleep."""

    def __init__(self, interrupt_on: Optional[int] = None) -> None:
        self.now = 0.0
        self.sleeps: List[float] = []
        self.interrupt_on = interrupt_on

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.interrupt_on is not None and len(self.sleeps) == self.interrupt_on:
            raise KeyboardInterrupt
        self.now += seconds


class Script:
    """Queues the SageMaker and CloudWatch Logs answers a job gives, in the order they are asked."""

    def __init__(self, sm: Any, logs: Any, kind: str, job: str) -> None:
        self.sm = Stubber(sm)
        self.logs = Stubber(logs)
        self.kind = kind
        self.job = job
        self.group = PROCESSING_GROUP if kind == "processing" else TRAINING_GROUP
        self.name_key = "ProcessingJobName" if kind == "processing" else "TrainingJobName"

    def describe(self, status: str, **extra: Any) -> None:
        if self.kind == "processing":
            response: Dict[str, Any] = {
                "ProcessingJobName": self.job,
                "ProcessingJobArn": f"arn:aws:sagemaker:{REGION}:123456789012:processing-job/{self.job}",
                "ProcessingJobStatus": status,
                "ProcessingResources": {"ClusterConfig": {
                    "InstanceCount": 2, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}},
                "AppSpecification": {"ImageUri": IMAGE},
                "CreationTime": 0,
            }
        else:
            response = {
                "TrainingJobName": self.job,
                "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:123456789012:training-job/{self.job}",
                "TrainingJobStatus": status,
                "SecondaryStatus": status,
                "ModelArtifacts": {"S3ModelArtifacts": f"s3://bucket/jobs/{self.job}/output/model.tar.gz"},
                "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
                "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
                "OutputDataConfig": {"S3OutputPath": "s3://bucket/jobs/"},
                "CreationTime": 0,
            }
        response.update(extra)
        self.sm.add_response(f"describe_{self.kind}_job", response, {self.name_key: self.job})

    def stop(self) -> None:
        self.sm.add_response(f"stop_{self.kind}_job", {}, {self.name_key: self.job})

    def describe_error(self, code: str, message: str = "Rate exceeded") -> None:
        self.sm.add_client_error(f"describe_{self.kind}_job", service_error_code=code, service_message=message,
                                 http_status_code=400, expected_params={self.name_key: self.job})

    def streams_error(self, code: str, message: str = "Rate exceeded") -> None:
        self.logs.add_client_error("describe_log_streams", service_error_code=code, service_message=message,
                                   http_status_code=400, expected_params=self._streams_params())

    def no_log_group(self) -> None:
        self.logs.add_client_error("describe_log_streams", "ResourceNotFoundException",
                                   "The specified log group does not exist.",
                                   expected_params=self._streams_params())

    def streams(self, *suffixes: str) -> None:
        self.logs.add_response(
            "describe_log_streams",
            {"logStreams": [{"logStreamName": f"{self.job}/{s}"} for s in suffixes]},
            self._streams_params(),
        )

    def events(self, suffix: str, token: Optional[str], events: List[Tuple[int, str]], next_token: str) -> None:
        """One GetLogEvents page; ``token`` is the nextToken the backend must send (None: from the head)."""
        expected: Dict[str, Any] = {
            "logGroupName": self.group,
            "logStreamName": f"{self.job}/{suffix}",
            "startFromHead": True,
        }
        if token is not None:
            expected["nextToken"] = token
        self.logs.add_response(
            "get_log_events",
            {"events": [{"timestamp": ts, "message": m, "ingestionTime": ts} for ts, m in events],
             "nextForwardToken": next_token, "nextBackwardToken": "b/0"},
            expected,
        )

    def read(self, suffix: str, token: Optional[str], events: List[Tuple[int, str]], next_token: str) -> None:
        """A whole read of one stream: the page with the events, then the page that repeats the token."""
        self.events(suffix, token, events, next_token)
        self.events(suffix, next_token, [], next_token)

    def _streams_params(self) -> Dict[str, Any]:
        return {"logGroupName": self.group, "logStreamNamePrefix": self.job + "/"}

    def __enter__(self) -> "Script":  # noqa: PYI034 - typing.Self needs Python 3.11
        self.sm.activate()
        self.logs.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sm.deactivate()
        self.logs.deactivate()

    def assert_done(self) -> None:
        self.sm.assert_no_pending_responses()
        self.logs.assert_no_pending_responses()


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> Tuple[Any, Any]:
    # Stubber answers before anything is signed or sent, but botocore still
    # wants credentials to exist.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return boto3.client("sagemaker", region_name=REGION), boto3.client("logs", region_name=REGION)


def _backend(clients: Tuple[Any, Any], **intervals: float) -> SageMakerBackend:
    sm, logs = clients
    return SageMakerBackend(sm, logs, REGION, **intervals)


@pytest.fixture
def processing(clients: Tuple[Any, Any]) -> Iterator[Tuple[SageMakerBackend, Script]]:
    backend = _backend(clients, poll_interval=5.0, log_poll_interval=5.0)
    with Script(*clients, "processing", JOB) as script:
        yield backend, script


def test_status_sequence_ending_failed(processing: Tuple[SageMakerBackend, Script]) -> None:
    backend, script = processing
    script.describe("InProgress")
    script.no_log_group()
    script.describe("InProgress")
    script.streams("algo-1-1700000000")
    script.read("algo-1-1700000000", None, [(1000, "loading data\n")], "f/1")
    script.describe("Failed", FailureReason="AlgorithmError: ValueError: bad row 7",
                    ExitMessage="Traceback (most recent call last) ...")
    script.streams("algo-1-1700000000")
    script.read("algo-1-1700000000", "f/1", [(2000, "ValueError: bad row 7")], "f/2")
    out, err = io.StringIO(), io.StringIO()
    fake = FakeTime()

    result = wait(backend, "processing", JOB, out=out, err=err, sleep=fake.sleep, clock=fake.clock)

    script.assert_done()
    assert result.status == "Failed" and result.exit_code == 1
    assert result.failure_reason == "AlgorithmError: ValueError: bad row 7"
    assert err.getvalue().splitlines() == [f"[{JOB}] InProgress", f"[{JOB}] Failed"]
    assert out.getvalue().splitlines() == ["[algo-1] loading data", "[algo-1] ValueError: bad row 7"]
    assert result.last_log_lines == ("[algo-1] loading data", "[algo-1] ValueError: bad row 7")
    assert fake.sleeps == [5.0, 5.0]

    summary = summary_lines(result)
    assert summary[0] == f"processing job {JOB}: Failed"
    assert summary[1:] == [
        "  last 1 log lines (paths are inside the job's container):",
        "    [algo-1] loading data",
        # the log's last line is in the reason: shown once
        "  reason: AlgorithmError: ValueError: bad row 7",
        f"  full log: aws-sagemaker-remote logs {JOB}",
        ("  full log: https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
         f"#logStream:group=/aws/sagemaker/ProcessingJobs;prefix={JOB}/;streamFilter=typeLogStreamPrefix"),
        ("  console: https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1"
         f"#/processing-jobs/{JOB}"),
    ]


def test_two_streams_interleaved_in_time_without_repeats(processing: Tuple[SageMakerBackend, Script]) -> None:
    backend, script = processing
    a, b = "algo-1-1700000000", "algo-2-1700000000"
    script.describe("InProgress")
    script.streams(a, b)
    script.read(a, None, [(1, "a1"), (3, "a3")], "fa1")
    script.read(b, None, [(2, "b2"), (4, "b4")], "fb1")
    script.describe("Completed", ProcessingOutputConfig={"Outputs": [{
        "OutputName": "output",
        "S3Output": {"S3Uri": "s3://bucket/jobs/out", "LocalPath": "/opt/ml/processing/output/output",
                     "S3UploadMode": "EndOfJob"}}]})
    script.streams(a, b)
    # the second read must resume from each stream's own token
    script.read(a, "fa1", [(5, "a5")], "fa2")
    script.events(b, "fb1", [], "fb1")
    out, err = io.StringIO(), io.StringIO()
    fake = FakeTime()

    result = wait(backend, "processing", JOB, out=out, err=err, sleep=fake.sleep, clock=fake.clock)

    script.assert_done()
    assert out.getvalue().splitlines() == [
        "[algo-1] a1", "[algo-2] b2", "[algo-1] a3", "[algo-2] b4", "[algo-1] a5",
    ]
    assert result.status == "Completed" and result.failure_reason is None
    assert result.output_artifacts == {"output": "s3://bucket/jobs/out"}
    assert summary_lines(result) == [f"processing job {JOB}: Completed", "  output output: s3://bucket/jobs/out"]


def test_ctrl_c_stops_the_job(processing: Tuple[SageMakerBackend, Script]) -> None:
    backend, script = processing
    script.describe("InProgress")
    script.no_log_group()
    script.describe("InProgress")
    script.no_log_group()
    # Ctrl-C during the second sleep
    script.stop()
    script.describe("Stopping")
    script.no_log_group()
    script.describe("Stopped")
    script.no_log_group()
    err = io.StringIO()
    fake = FakeTime(interrupt_on=2)

    with pytest.raises(Interrupted) as info:
        wait(backend, "processing", JOB, out=io.StringIO(), err=err, sleep=fake.sleep, clock=fake.clock)

    script.assert_done()
    assert info.value.exit_code == 130
    assert JOB in str(info.value) and "Stopped" in str(info.value)
    lines = err.getvalue().splitlines()
    assert lines[0] == f"[{JOB}] InProgress"
    assert "stopping" in lines[1] and JOB in lines[1]
    assert lines[2:] == [f"[{JOB}] Stopping", f"[{JOB}] Stopped"]


def test_ctrl_c_gives_up_waiting_for_the_stop_after_the_timeout(
        processing: Tuple[SageMakerBackend, Script]) -> None:
    backend, script = processing
    script.describe("InProgress")
    script.no_log_group()
    script.stop()
    for _ in range(3):  # t = 0, 5, 10: still stopping when the 10 s allowance is used up
        script.describe("Stopping")
        script.no_log_group()
    fake = FakeTime(interrupt_on=1)

    with pytest.raises(Interrupted) as info:
        wait(backend, "processing", JOB, out=io.StringIO(), err=io.StringIO(), sleep=fake.sleep,
             clock=fake.clock, stop_timeout=10.0)

    script.assert_done()
    assert "still Stopping" in str(info.value) and JOB in str(info.value)


def test_detach_leaves_the_job_running(processing: Tuple[SageMakerBackend, Script]) -> None:
    backend, script = processing
    script.describe("InProgress")
    script.no_log_group()
    err = io.StringIO()
    fake = FakeTime(interrupt_on=1)

    with pytest.raises(Interrupted) as info:
        wait(backend, "processing", JOB, out=io.StringIO(), err=err, detach=True, sleep=fake.sleep,
             clock=fake.clock)

    # No stop response was queued: a stop call would have failed and been reported.
    script.assert_done()
    assert info.value.exit_code == 130
    assert info.value.__cause__ is None
    assert "keeps running" in str(info.value) and JOB in str(info.value)
    assert "keeps running" in err.getvalue().splitlines()[-1]
    assert "stop" not in err.getvalue()


def test_training_metrics_and_secondary_status(clients: Tuple[Any, Any]) -> None:
    backend = _backend(clients, poll_interval=5.0, log_poll_interval=5.0)
    stream = "algo-1-1700000000"
    with Script(*clients, "training", TRAIN) as script:
        script.describe("InProgress", SecondaryStatus="Starting")
        script.no_log_group()
        script.describe("InProgress", SecondaryStatus="Training", SecondaryStatusTransitions=[
            {"Status": "Starting", "StartTime": 0, "StatusMessage": "Preparing the instances for training"},
            {"Status": "Training", "StartTime": 1, "StatusMessage": "Training in progress."},
        ])
        script.streams(stream)
        script.read(stream, None, [
            (10, "epoch 1 loss=0.5 accuracy=0.8"),
            (11, "epoch 1 done"),
            (12, "epoch 2 loss=0.25 accuracy=0.9"),
            (13, "epoch 3 loss=0.25 accuracy=0.9"),
        ], "f/1")
        script.describe("Completed", SecondaryStatus="Completed")
        script.streams(stream)
        script.events(stream, "f/1", [], "f/1")
        out, err = io.StringIO(), io.StringIO()
        fake = FakeTime()

        result = wait(backend, "training", TRAIN, out=out, err=err, sleep=fake.sleep, clock=fake.clock,
                      metrics=[("loss", r"loss=([0-9.]+)"), ("accuracy", r"accuracy=([0-9.]+)")])
        script.assert_done()

    assert err.getvalue().splitlines() == [
        f"[{TRAIN}] InProgress (Starting)",
        f"[{TRAIN}] InProgress (Training: Training in progress.)",
        "[metrics] loss=0.5 accuracy=0.8",
        "[metrics] loss=0.25 accuracy=0.9",
        f"[{TRAIN}] Completed",
    ]
    assert out.getvalue().splitlines()[0] == "[algo-1] epoch 1 loss=0.5 accuracy=0.8"
    assert result.final_metrics == {"loss": 0.25, "accuracy": 0.9}
    assert result.training_image == IMAGE
    assert result.model_artifact_url == f"s3://bucket/jobs/{TRAIN}/output/model.tar.gz"
    assert result.output_data_url == f"s3://bucket/jobs/{TRAIN}/output/output.tar.gz"
    assert result.console_url and result.console_url.endswith(f"#/jobs/{TRAIN}")
    assert "  metrics: loss=0.25 accuracy=0.9" in summary_lines(result)


def test_default_intervals_read_logs_often_and_see_the_end_within_one_status_interval(
        clients: Tuple[Any, Any]) -> None:
    backend = _backend(clients)  # SageMaker defaults: status every 5 s, logs every 2 s
    with Script(*clients, "processing", JOB) as script:
        script.describe("InProgress")  # t = 0
        for _ in range(3):  # t = 0, 2, 4
            script.no_log_group()
        script.describe("InProgress")  # t = 5
        for _ in range(3):  # t = 5, 7, 9
            script.no_log_group()
        script.describe("Completed")  # t = 10
        script.no_log_group()  # the last read after the end
        fake = FakeTime()
        result = wait(backend, "processing", JOB, out=io.StringIO(), err=io.StringIO(), sleep=fake.sleep,
                      clock=fake.clock)
        script.assert_done()
    assert result.status == "Completed"
    assert fake.sleeps == [2.0, 2.0, 1.0, 2.0, 2.0, 1.0]
    assert fake.now == 10.0


# --- pure helpers ----------------------------------------------------------------------------

def test_final_metrics_from_the_job_win_over_the_logs() -> None:
    description = {
        "TrainingJobName": TRAIN,
        "TrainingJobStatus": "Completed",
        "ModelArtifacts": {},
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/jobs"},
        "FinalMetricDataList": [{"MetricName": "loss", "Value": 0.125, "Timestamp": 0}],
    }
    result = result_from_description("training", description, None, (), {"loss": 0.3})
    assert result.final_metrics == {"loss": 0.125}
    assert result.model_artifact_url == f"s3://bucket/jobs/{TRAIN}/output/model.tar.gz"
    assert result.console_url is None


def test_exit_message_is_the_reason_when_there_is_no_failure_reason() -> None:
    description = {"ProcessingJobName": JOB, "ProcessingJobStatus": "Failed", "ExitMessage": "exit code 3"}
    result = result_from_description("processing", description, None, ("[algo-1] boom",))
    assert result.failure_reason == "exit code 3"
    assert summary_lines(result) == [
        f"processing job {JOB}: Failed", "  last 1 log lines (paths are inside the job's container):",
        "    [algo-1] boom", "  reason: exit code 3", f"  full log: aws-sagemaker-remote logs {JOB}",
    ]


def test_summary_shows_a_few_lines_and_not_the_ones_the_reason_holds() -> None:
    lines = tuple(f"[algo-1] line {i}" for i in range(20)) + (
        "[algo-1] Traceback (most recent call last):",
        '[algo-1]   File "/opt/ml/code/script/job.py", line 5, in main',
        "[algo-1]     fail(n)",
        "[algo-1] ValueError: bad count 3",
        "[algo-1] aws_sagemaker_remote: script job.py exited with code 1",
    )
    description = {"ProcessingJobName": JOB, "ProcessingJobStatus": "Failed",
                   "ExitMessage": "script job.py exited with code 1: ValueError: bad count 3"}
    summary = summary_lines(result_from_description("processing", description, None, lines))
    assert summary == [
        f"processing job {JOB}: Failed",
        "  last 8 log lines (paths are inside the job's container):",
        *(f"    [algo-1] line {i}" for i in (15, 16, 17, 18, 19)),
        "    [algo-1] Traceback (most recent call last):",
        '    [algo-1]   File "/opt/ml/code/script/job.py", line 5, in main',
        "    [algo-1]     fail(n)",
        "  reason: script job.py exited with code 1: ValueError: bad count 3",
        f"  full log: aws-sagemaker-remote logs {JOB}",
    ]


def test_detached_summary_points_to_the_console() -> None:
    result = JobResult(kind="processing", job_name=JOB, status="InProgress", console_url="https://console/x")
    assert summary_lines(result) == [f"processing job {JOB}: InProgress", "  console: https://console/x"]


# --- AWS errors while following a job -----------------------------------------------------------

def test_throttling_while_following_is_retried_and_loses_no_line(
        processing: Tuple[SageMakerBackend, Script]) -> None:
    backend, script = processing
    a = "algo-1-1700000000"
    script.describe_error("ThrottlingException")  # t = 0
    script.describe("InProgress")  # t = 1
    script.streams_error("ThrottlingException")  # this read returns nothing ...
    script.describe("Completed")  # t = 5
    script.streams(a)
    script.read(a, None, [(1000, "loading data"), (2000, "done")], "f/2")  # ... and the next catches up
    out, err = io.StringIO(), io.StringIO()
    fake = FakeTime()

    result = wait(backend, "processing", JOB, out=out, err=err, sleep=fake.sleep, clock=fake.clock)

    script.assert_done()
    assert result.status == "Completed"
    assert out.getvalue().splitlines() == ["[algo-1] loading data", "[algo-1] done"]
    notes = err.getvalue().splitlines()
    # the status is retried; a failed log read returns nothing and the next read catches up
    assert [line for line in notes if "retrying" in line] == [
        (f"[{JOB}] describing processing job {JOB}: ThrottlingException: Rate exceeded "
         "(still throttled after 5 retries); retrying for up to 60 s"),
    ]
    assert f"[{JOB}] cannot read the logs now (reading the logs of processing job {JOB}: ThrottlingException: " \
           "Rate exceeded (still throttled after 5 retries)); still following the job's status" in notes
    assert "logs are incomplete" not in err.getvalue()  # the last read caught up
    assert notes[-1] == f"[{JOB}] Completed"


def test_logs_that_cannot_be_read_never_fail_a_completed_job(processing: Tuple[SageMakerBackend, Script]) -> None:
    backend, script = processing
    script.describe("Completed")
    script.streams_error("AccessDeniedException", "not authorized to perform: logs:DescribeLogStreams")
    out, err = io.StringIO(), io.StringIO()
    fake = FakeTime()

    result = wait(backend, "processing", JOB, out=out, err=err, sleep=fake.sleep, clock=fake.clock)

    script.assert_done()
    assert result.status == "Completed"
    notes = err.getvalue().splitlines()
    assert notes[-1] == (f"[{JOB}] logs are incomplete (reading the logs of processing job {JOB}: "
                         "AccessDeniedException: not authorized to perform: logs:DescribeLogStreams); "
                         f"read them later with `aws-sagemaker-remote logs processing {JOB}`")
    assert f"[{JOB}] Completed" in notes


def test_errors_that_outlast_the_retries_say_the_job_may_still_be_running(
        processing: Tuple[SageMakerBackend, Script]) -> None:
    backend, script = processing
    script.describe("InProgress")
    script.no_log_group()
    for _ in range(8):  # t = 5, 6, 8, 12, 20, 36, 52, 65: the minute is up
        script.describe_error("ThrottlingException")
    fake = FakeTime()

    with pytest.raises(ThrottledError) as info:
        wait(backend, "processing", JOB, out=io.StringIO(), err=io.StringIO(), sleep=fake.sleep, clock=fake.clock)

    script.assert_done()
    message = str(info.value)
    assert f"processing job {JOB}" in message and "may still be running" in message
    assert f"aws-sagemaker-remote logs --follow {JOB}" in message
    assert info.value.exit_code == 1 and info.value.code == "ThrottlingException"
    assert fake.sleeps == [5.0, 1.0, 2.0, 4.0, 8.0, 16.0, 16.0, 13.0]


def test_an_error_that_retrying_cannot_fix_is_raised_at_once(processing: Tuple[SageMakerBackend, Script]) -> None:
    backend, script = processing
    script.describe_error("ValidationException", f"Could not find requested job with name {JOB}")
    fake = FakeTime()

    with pytest.raises(AwsError) as info:
        wait(backend, "processing", JOB, out=io.StringIO(), err=io.StringIO(), sleep=fake.sleep, clock=fake.clock)

    script.assert_done()
    assert info.value.code == "ValidationException"
    assert "Could not find requested job" in str(info.value)
    assert fake.sleeps == []


# --- the local backend --------------------------------------------------------------------------

def test_detaching_from_a_local_job_stops_it_instead_of_claiming_it_keeps_running(tmp_path: Path) -> None:
    backend = LocalBackend(LocalStore(str(tmp_path / "s3")), workdir=str(tmp_path / "jobs"), stop_grace=5.0)
    name = "local-sleeper"
    backend.create("processing", {
        "ProcessingJobName": name,
        "ProcessingResources": {"ClusterConfig": {
            "InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}},
        "AppSpecification": {
            "ImageUri": IMAGE,
            "ContainerEntrypoint": ["python3", "-c", "import time; print('sleeping', flush=True); time.sleep(60)"],
        },
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
    })
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    pressed: List[bool] = []

    def sleep(seconds: float) -> None:
        # Ctrl-C, once, when the user has seen the job run
        if "sleeping" in out.getvalue() and not pressed:
            pressed.append(True)
            raise KeyboardInterrupt
        if time.monotonic() - started > 30:
            raise AssertionError("the job never printed 'sleeping'")
        time.sleep(seconds)

    with pytest.raises(Interrupted) as info:
        wait(backend, "processing", name, out=out, err=err, detach=True, sleep=sleep)

    assert info.value.exit_code == 130
    assert str(info.value) == f"interrupted; processing job {name} ended Stopped"
    assert "keeps running" not in err.getvalue()
    assert "stopping the processing job" in err.getvalue()
    assert backend.describe("processing", name)["ProcessingJobStatus"] == "Stopped"
