"""Where a job's time went: the status line on terminals and the final breakdown.

The SageMaker sequences are scripted with botocore's ``Stubber`` on real boto3
clients under :class:`SageMakerBackend` (moto finishes every job at once); the
terminal is a stream that says it is one. Time is a fake clock that moves only
when the watch sleeps.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Tuple

import boto3
import pytest
from test_local_backend import put_code  # noqa: F401 - a fixture
from test_watch import REGION, FakeTime, Script

from aws_sagemaker_remote.backends.sagemaker import SageMakerBackend
from aws_sagemaker_remote.phases import current_phase, timing
from aws_sagemaker_remote.spec import JobResult, Timing
from aws_sagemaker_remote.watch import summary_lines, wait

TRAIN = "train-1"
JOB = "clean-data-1"
STREAM = "algo-1-1700000000"
T0 = dt.datetime(2026, 12, 1, 12, 0, 0, tzinfo=dt.timezone.utc)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as a user's console does."""

    def isatty(self) -> bool:
        return True


def status_lines(text: str) -> List[str]:
    """The texts the status line showed, in order (each drawn with a carriage return, erased with ESC [K)."""
    shown = []
    for piece in text.split("\r"):
        piece = piece.replace("\x1b[K", "")
        if piece.startswith("[") and " (total " in piece:
            shown.append(piece.rstrip("\n"))
    return shown


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> Tuple[Any, Any]:
    # Stubber answers before anything is signed or sent, but botocore still wants credentials to exist.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return boto3.client("sagemaker", region_name=REGION), boto3.client("logs", region_name=REGION)


TRANSITIONS = [
    {"Status": "Starting", "StartTime": at(0), "EndTime": at(62), "StatusMessage": "Launching requested ML instances"},
    {"Status": "Downloading", "StartTime": at(62), "EndTime": at(70), "StatusMessage": "Downloading input data"},
    {"Status": "Training", "StartTime": at(70), "EndTime": at(130),
     "StatusMessage": "Training image download completed. Training in progress."},
    {"Status": "Uploading", "StartTime": at(130), "EndTime": at(134),
     "StatusMessage": "Uploading generated training model"},
    {"Status": "Completed", "StartTime": at(134), "StatusMessage": "Training job completed"},
]


def _so_far(count: int, current_end: bool = False) -> List[Dict[str, Any]]:
    """The first ``count`` transitions as a running job shows them: the last one has no end yet."""
    shown = [dict(t) for t in TRANSITIONS[:count]]
    if not current_end:
        shown[-1].pop("EndTime", None)
    return shown


def _training_sequence(script: Script) -> None:
    """Starting → Downloading (seen twice) → Training (with the job's phase lines) → Uploading → Completed."""
    for status, count in (("Starting", 1), ("Downloading", 2), ("Downloading", 2)):
        script.describe("InProgress", SecondaryStatus=status, CreationTime=T0,
                        SecondaryStatusTransitions=_so_far(count))
        script.no_log_group()
    script.describe("InProgress", SecondaryStatus="Training", CreationTime=T0, TrainingStartTime=at(62),
                    SecondaryStatusTransitions=_so_far(3))
    script.streams(STREAM)
    script.read(STREAM, None, [
        (1000, "aws_sagemaker_remote: installing requirements/requirements.txt"),
        (1001, "aws_sagemaker_remote: phase install took 20.31s"),
        (1002, "epoch 1"),
        (1003, "aws_sagemaker_remote: phase script took 35.50s"),
    ], "f/1")
    script.describe("InProgress", SecondaryStatus="Uploading", CreationTime=T0, TrainingStartTime=at(62),
                    SecondaryStatusTransitions=_so_far(4))
    script.streams(STREAM)
    script.events(STREAM, "f/1", [], "f/1")
    script.describe("Completed", SecondaryStatus="Completed", CreationTime=T0, TrainingStartTime=at(62),
                    TrainingEndTime=at(134), TrainingTimeInSeconds=72, BillableTimeInSeconds=72,
                    SecondaryStatusTransitions=_so_far(5))
    script.streams(STREAM)
    script.events(STREAM, "f/1", [], "f/1")


def test_breakdown_and_status_line_from_a_stubbed_training_sequence(clients: Tuple[Any, Any]) -> None:
    backend = SageMakerBackend(*clients, REGION, poll_interval=5.0, log_poll_interval=5.0)
    with Script(*clients, "training", TRAIN) as script:
        _training_sequence(script)
        out, err = io.StringIO(), Terminal()
        fake = FakeTime()
        result = wait(backend, "training", TRAIN, out=out, err=err, sleep=fake.sleep, clock=fake.clock)
        script.assert_done()

    assert result.timing == Timing(provisioning=62.0, download=8.0, install=20.31, script=35.5, upload=4.0,
                                   total=134.0, billable=72.0)
    assert result.to_json()["timing"] == {"provisioning": 62.0, "download": 8.0, "install": 20.31,
                                          "script": 35.5, "upload": 4.0, "total": 134.0, "billable": 72.0}
    # one line per poll, the phase's time counted from when the watch saw it begin
    assert status_lines(err.getvalue()) == [
        f"[{TRAIN}] Starting 0:00 (total 0:00)",
        f"[{TRAIN}] Downloading 0:00 (total 0:05)",
        f"[{TRAIN}] Downloading 0:05 (total 0:10)",
        f"[{TRAIN}] Training 0:00 (total 0:15)",
        f"[{TRAIN}] Uploading 0:00 (total 0:20)",
    ]
    # erased before anything else is printed: each permanent line starts clean
    permanent = [line.split("\r")[-1] for line in err.getvalue().replace("\x1b[K", "").split("\n")]
    assert [line for line in permanent if line] == [
        f"[{TRAIN}] InProgress (Starting: Launching requested ML instances)",
        f"[{TRAIN}] InProgress (Downloading: Downloading input data)",
        f"[{TRAIN}] InProgress (Training: Training image download completed. Training in progress.)",
        f"[{TRAIN}] InProgress (Uploading: Uploading generated training model)",
        f"[{TRAIN}] Completed",
    ]
    # the phase lines are in the log as the job wrote them, and not in the failure summary's tail
    assert "[algo-1] aws_sagemaker_remote: phase script took 35.50s" in out.getvalue().splitlines()
    assert all(" phase " not in line for line in result.last_log_lines)
    assert summary_lines(result)[-1] == ("  time: provisioning 1m02s, download 8.0s, install 20s, script 36s, "
                                         "upload 4.0s, total 2m14s (billable 1m12s)")


def test_no_status_line_when_the_output_is_not_a_terminal(clients: Tuple[Any, Any]) -> None:
    backend = SageMakerBackend(*clients, REGION, poll_interval=5.0, log_poll_interval=5.0)
    with Script(*clients, "training", TRAIN) as script:
        _training_sequence(script)
        out, err = io.StringIO(), io.StringIO()
        fake = FakeTime()
        result = wait(backend, "training", TRAIN, out=out, err=err, sleep=fake.sleep, clock=fake.clock)
        script.assert_done()

    assert "\r" not in err.getvalue() and "\x1b" not in err.getvalue()
    assert err.getvalue().splitlines() == [
        f"[{TRAIN}] InProgress (Starting: Launching requested ML instances)",
        f"[{TRAIN}] InProgress (Downloading: Downloading input data)",
        f"[{TRAIN}] InProgress (Training: Training image download completed. Training in progress.)",
        f"[{TRAIN}] InProgress (Uploading: Uploading generated training model)",
        f"[{TRAIN}] Completed",
    ]
    assert result.timing is not None and result.timing.total == 134.0


def test_processing_phases_from_its_times_and_the_jobs_phase_lines(clients: Tuple[Any, Any]) -> None:
    backend = SageMakerBackend(*clients, REGION, poll_interval=5.0, log_poll_interval=5.0)
    with Script(*clients, "processing", JOB) as script:
        script.describe("InProgress", CreationTime=T0)
        script.no_log_group()
        script.describe("InProgress", CreationTime=T0, ProcessingStartTime=at(95))
        script.streams(STREAM)
        script.read(STREAM, None, [(1000, "cleaning")], "f/1")
        script.describe("InProgress", CreationTime=T0, ProcessingStartTime=at(95))
        script.streams(STREAM)
        script.read(STREAM, "f/1", [(1001, "aws_sagemaker_remote: phase script took 12.25s")], "f/2")
        script.describe("Completed", CreationTime=T0, ProcessingStartTime=at(95), ProcessingEndTime=at(115))
        script.streams(STREAM)
        script.events(STREAM, "f/2", [], "f/2")
        out, err = io.StringIO(), Terminal()
        fake = FakeTime()
        result = wait(backend, "processing", JOB, out=out, err=err, sleep=fake.sleep, clock=fake.clock)
        script.assert_done()

    # no secondary statuses: the container's start, the script's own line, then the outputs' upload
    assert status_lines(err.getvalue()) == [
        f"[{JOB}] Starting 0:00 (total 0:00)",
        f"[{JOB}] Processing 0:00 (total 0:05)",
        f"[{JOB}] Uploading 0:00 (total 0:10)",
    ]
    # SageMaker does not time a processing job's download and upload apart: they stay unknown
    assert result.timing == Timing(provisioning=95.0, script=12.25, total=115.0)
    assert summary_lines(result)[-1] == "  time: provisioning 1m35s, script 12s, total 1m55s"


# --- pure helpers ----------------------------------------------------------------------------------

def test_a_running_job_has_no_breakdown_and_a_sparse_one_only_what_it_says() -> None:
    assert timing("training", {"TrainingJobStatus": "InProgress", "CreationTime": T0}) is None
    assert timing("processing", {"ProcessingJobStatus": "Completed"}) is None
    sparse = timing("training", {"CreationTime": T0, "TrainingEndTime": at(30)}, {"script": 3.0})
    assert sparse == Timing(script=3.0, total=30.0)
    result = JobResult(kind="training", job_name=TRAIN, status="Completed", timing=sparse)
    assert summary_lines(result)[-1] == "  time: script 3.0s, total 30s"
    # existing constructions need no timing, and their JSON has none
    assert "timing" not in JobResult(kind="training", job_name=TRAIN, status="Completed").to_json()


def test_the_processing_phase_follows_the_container_and_the_script() -> None:
    from aws_sagemaker_remote.phases import PhaseMarks

    marks = PhaseMarks()
    running = {"ProcessingJobStatus": "InProgress", "CreationTime": T0}
    assert current_phase("processing", running, marks) == "Starting"
    started = dict(running, ProcessingStartTime=at(1))
    assert current_phase("processing", started, marks) == "Processing"
    assert marks.feed("aws_sagemaker_remote: phase script took 1.00s")
    assert not marks.feed("aws_sagemaker_remote: phase script took a while")
    assert current_phase("processing", started, marks) == "Uploading"
    assert current_phase("processing", dict(started, ProcessingJobStatus="Stopping"), marks) == "Stopping"
    assert current_phase("training", {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Downloading"}) \
        == "Downloading"


def test_phase_lines_of_several_instances_count_the_slowest() -> None:
    from aws_sagemaker_remote.bootstrap import phase_line
    from aws_sagemaker_remote.phases import PhaseMarks

    marks = PhaseMarks()
    for seconds in (3.0, 7.456, 5.0):
        assert marks.feed(phase_line("script", seconds))
    assert marks.seconds == {"script": 7.46}
    assert re.fullmatch(r"aws_sagemaker_remote: phase install took 0\.00s", phase_line("install", -1))


def test_output_json_key_round_trips(tmp_path: Path) -> None:
    result = JobResult(kind="processing", job_name=JOB, status="Completed",
                       timing=Timing(provisioning=1.5, total=4.0))
    path = tmp_path / "out.json"
    path.write_text(json.dumps(result.to_json()))
    assert json.loads(path.read_text())["timing"] == {"provisioning": 1.5, "total": 4.0}


# --- the local backend: the same phases, from its own clock and the job's lines --------------------

class TickingClock:
    """A monotonic clock that moves one second each time it is read: a phase the backend times with two
    reads lasts exactly one second."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_local_processing_reports_its_download_and_upload_on_its_clock(
        put_code: Any, store: Any, workdir: Path) -> None:  # noqa: F811 - the imported fixture
    from test_local_backend import BUCKET, processing_input, processing_request

    from aws_sagemaker_remote.backends.local import LocalBackend

    store.put_bytes(b"alpha", f"s3://{BUCKET}/data/a.txt")
    code = put_code("processing", "import time; time.sleep(0.2); print('cleaned')\n")
    request = processing_request("phases-local", code, instance_count=2, max_run=86400,
                                 inputs=[processing_input("input", f"s3://{BUCKET}/data/")],
                                 outputs={"out": f"s3://{BUCKET}/out"})
    backend = LocalBackend(store, workdir=str(workdir), stop_grace=5.0, clock=TickingClock())
    backend.create("processing", request)
    out, err = io.StringIO(), Terminal()

    result = wait(backend, "processing", "phases-local", out=out, err=err)

    assert result.status == "Completed", result.failure_reason
    timed = result.timing
    assert timed is not None and timed.total is not None and timed.provisioning is not None
    # two reads of the backend's clock around each instance's download and upload
    assert (timed.download, timed.upload) == (1.0, 1.0)
    assert timed.script is not None and 0.2 <= timed.script < timed.total
    assert timed.install is None  # no requirements: nothing was installed
    for host in ("algo-1", "algo-2"):
        assert f"[{host}] aws_sagemaker_remote: phase download took 1.00s" in out.getvalue().splitlines()
    shown = {line.split("] ", 1)[1].split(" ")[0] for line in status_lines(err.getvalue())}
    # which phases a poll catches depends on the machine's speed; no other name may appear
    assert shown and shown <= {"Starting", "Processing", "Uploading"}
    assert summary_lines(result)[-1].startswith("  time: provisioning ")


LOCAL_JOB = """
import os, time
from aws_sagemaker_remote import sagemaker_processing_main

def main(args):
    import tinypkg  # installed from the requirements
    time.sleep(0.3)
    with open(os.path.join(args.output, "done.txt"), "w") as fh:
        fh.write(tinypkg.VALUE)

if __name__ == "__main__":
    sagemaker_processing_main(main=main, base_job_name="phases", requirements={requirements!r},
                              inputs={{"input": {data!r}}}, outputs={{"output": "out"}})
"""


def test_breakdown_of_a_local_run_end_to_end(tmp_path: Path, run_script: Any) -> None:
    from test_bootstrap import make_wheel

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "tinypkg", "0.1", {"tinypkg/__init__.py": "VALUE = 'installed'\n"})
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"--no-index\n--find-links {wheels}\ntinypkg==0.1\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "rows.csv").write_text("a,b\n1,2\n")
    script = tmp_path / "job.py"
    script.write_text(LOCAL_JOB.format(requirements=str(requirements), data=str(data)))
    result_file = tmp_path / "result.json"

    run = run_script(script, "--sagemaker-run=local", "--sagemaker-output-json", result_file, timeout=180)

    assert run.returncode == 0, run.stdout + run.stderr
    timed = json.loads(result_file.read_text())["timing"]
    assert set(timed) == {"provisioning", "download", "install", "script", "upload", "total"}
    assert all(isinstance(v, (int, float)) and v >= 0 for v in timed.values())
    assert timed["script"] >= 0.3
    assert timed["install"] + timed["script"] <= timed["total"]
    # printed once, at the end, on one line; no status line in output that is not a terminal
    [line] = [line for line in run.stderr.splitlines() if line.startswith("  time: ")]
    assert re.fullmatch(r"  time: provisioning \S+, download \S+, install \S+, script \S+, upload \S+, "
                        r"total \S+", line)
    assert "\r" not in run.stderr and "\x1b" not in run.stderr
    assert "phase install took" in run.stdout and "phase script took" in run.stdout


TRAINING_JOB = """
import os, time
from aws_sagemaker_remote import sagemaker_training_main

def main(args):
    time.sleep(0.2)
    with open(os.path.join(args.model_dir, "model.txt"), "w") as fh:
        fh.write("trained")

if __name__ == "__main__":
    sagemaker_training_main(main=main, base_job_name="phases-train")
"""


def test_breakdown_of_a_local_training_run_end_to_end(tmp_path: Path, run_script: Any) -> None:
    script = tmp_path / "train.py"
    script.write_text(TRAINING_JOB)
    result_file = tmp_path / "result.json"

    run = run_script(script, "--sagemaker-run=local", "--sagemaker-output-json", result_file)

    assert run.returncode == 0, run.stdout + run.stderr
    timed = json.loads(result_file.read_text())["timing"]
    # no requirements: no install; the local backend bills nothing
    assert set(timed) == {"provisioning", "download", "script", "upload", "total"}
    assert timed["script"] >= 0.2 and timed["script"] <= timed["total"]
    [line] = [line for line in run.stderr.splitlines() if line.startswith("  time: ")]
    assert re.fullmatch(r"  time: provisioning \S+, download \S+, script \S+, upload \S+, total \S+", line)
    assert run.stderr.splitlines()[-1] == line


def test_the_secondary_statuses_named_here_are_botocores() -> None:
    """Every secondary status the breakdown, the attempt count and the cold-start note look for is one
    that ``DescribeTrainingJob`` can return (botocore's SageMaker model): a misspelt one would never match."""
    import botocore.session

    from aws_sagemaker_remote.kinds import training
    from aws_sagemaker_remote.phases import DOWNLOAD_STATUSES, PROVISIONING_STATUSES, UPLOAD_STATUSES

    model = botocore.session.get_session().get_service_model("sagemaker")
    described = model.shape_for("DescribeTrainingJobResponse")
    allowed = set(described.members["SecondaryStatus"].enum)
    # the transitions carry the same statuses
    transition = described.members["SecondaryStatusTransitions"].member
    assert set(transition.members["Status"].enum) == allowed
    for name, statuses in (("PROVISIONING_STATUSES", PROVISIONING_STATUSES), ("DOWNLOAD_STATUSES", DOWNLOAD_STATUSES),
                           ("UPLOAD_STATUSES", UPLOAD_STATUSES), ("_ATTEMPT_STARTS", training._ATTEMPT_STARTS),
                           ("STARTED_STATUSES", training.STARTED_STATUSES)):
        assert statuses and set(statuses) <= allowed, (name, sorted(set(statuses) - allowed))
    # and no status counts in two phases
    assert not (PROVISIONING_STATUSES & DOWNLOAD_STATUSES) and not (DOWNLOAD_STATUSES & UPLOAD_STATUSES)


def test_an_error_while_following_erases_the_status_line(clients: Tuple[Any, Any]) -> None:
    from aws_sagemaker_remote.errors import AwsError

    backend = SageMakerBackend(*clients, REGION, poll_interval=5.0, log_poll_interval=5.0)
    with Script(*clients, "training", TRAIN) as script:
        script.describe("InProgress", SecondaryStatus="Starting", CreationTime=T0)
        script.no_log_group()
        script.describe_error("ValidationException", f"Could not find requested job with name {TRAIN}")
        out, err = io.StringIO(), Terminal()
        fake = FakeTime()
        with pytest.raises(AwsError):
            wait(backend, "training", TRAIN, out=out, err=err, sleep=fake.sleep, clock=fake.clock)
        script.assert_done()

    text = err.getvalue()
    assert status_lines(text) == [f"[{TRAIN}] Starting 0:00 (total 0:00)"]
    # the error line the caller prints next starts on a clean line
    assert text.endswith("\r\x1b[K")
