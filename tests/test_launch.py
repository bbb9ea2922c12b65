"""``launch()`` in this process with an injected target: the whole remote path, no subprocess launcher.

Two targets: the local stand-in store with the local backend (the job really
runs, from here), and the moto server's S3 and SageMaker (the request really
goes over HTTP). The entry point builds its target the same way
(:mod:`aws_sagemaker_remote.targets`); here the test chooses it.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import io
import json
import textwrap
from pathlib import Path
from typing import Any, Dict, Tuple

import boto3
import pytest

from aws_sagemaker_remote import __version__
from aws_sagemaker_remote.api import prepare
from aws_sagemaker_remote.backends.local import LocalBackend
from aws_sagemaker_remote.backends.sagemaker import SageMakerBackend
from aws_sagemaker_remote.launch import launch
from aws_sagemaker_remote.plan import plan_control, plan_job
from aws_sagemaker_remote.reinvoke import user_arguments
from aws_sagemaker_remote.spec import JobSpec, Placement, RunControl
from aws_sagemaker_remote.store import LocalStore, S3Store, manifest_objects
from aws_sagemaker_remote.targets import Target

NOW = dt.datetime(2026, 12, 2, 7, 0, 0, tzinfo=dt.timezone.utc)
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/python:3.11"

PROCESSING_SCRIPT = """
import os
from aws_sagemaker_remote import sagemaker_processing_main

def main(args):
    if os.environ.get("FAIL"):
        raise SystemExit("asked to fail")
    words = open(os.path.join(args.input, "words.txt")).read().split()
    with open(os.path.join(args.output, "count.txt"), "w") as fh:
        fh.write(str(len(words)))
    print("counted", len(words), "MODE=" + os.environ.get("MODE", "<unset>"))

if __name__ == "__main__":
    sagemaker_processing_main(main, inputs={"input": "data"}, outputs={"output": "out"})
"""

TRAINING_SCRIPT = """
import json, os
from aws_sagemaker_remote import sagemaker_training_main

def main(args):
    if os.environ.get("FAIL"):
        raise SystemExit("asked to fail")
    rows = open(os.path.join(args.train, "rows.csv")).read().splitlines()
    with open(os.path.join(args.model_dir, "model.json"), "w") as fh:
        json.dump({"rows": len(rows)}, fh)
    os.makedirs(args.report, exist_ok=True)
    with open(os.path.join(args.report, "summary.txt"), "w") as fh:
        fh.write("done")
    print("loss: 0.25")

if __name__ == "__main__":
    sagemaker_training_main(main, inputs={"train": "data"}, outputs={"report": "report"},
                            metrics={"loss": r"loss: ([0-9.]+)"})
"""


def _plan(tmp_path: Path, kind: str, argv: Tuple[str, ...] = ()) -> Tuple[JobSpec, RunControl]:
    """Plan the project's script as the entry point would, from ``argv``."""
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    if kind == "processing":
        script, inputs, outputs = PROCESSING_SCRIPT, {"input": "data"}, {"output": str(tmp_path / "out")}
        (project / "data" / "words.txt").write_text("one two three")
        options: Dict[str, Any] = {}
    else:
        script, inputs, outputs = TRAINING_SCRIPT, {"train": "data"}, {"report": str(tmp_path / "report")}
        (project / "data" / "rows.csv").write_text("1\n2\n3\n4\n")
        options = {"metric": ["loss=loss: ([0-9.]+)"]}
    (project / "job.py").write_text(textwrap.dedent(script))
    inputs = {name: str(project / path) for name, path in inputs.items()}
    decl, opts, parser = prepare(kind, None, inputs, outputs, None, None, None, None, str(project / "job.py"),
                                 {}, options)
    namespace = parser.parse_args(list(argv))
    opts = type(opts).from_namespace(namespace)
    spec = plan_job(decl, namespace, opts, user_arguments(argv, decl, opts), now=NOW, token="t0k3")
    return spec, plan_control(opts)


def _local_target(tmp_path: Path) -> Target:
    store = LocalStore(str(tmp_path / "s3"))
    store.ensure_bucket("local-bucket", None)
    return Target(store, functools.partial(LocalBackend, store, poll_interval=0.05, log_poll_interval=0.05),
                  Placement(role_arn=ROLE, image_uri=IMAGE, bucket="local-bucket", prefix="pre"))


def _moto_target() -> Target:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="moto-bucket")
    backend = functools.partial(SageMakerBackend, boto3.client("sagemaker"), boto3.client("logs"), "us-east-1",
                                poll_interval=0.01, log_poll_interval=0.01)
    return Target(S3Store(s3), backend, Placement(role_arn=ROLE, image_uri=IMAGE, bucket="moto-bucket", prefix="pre"))


def test_processing_runs_in_process_on_the_local_backend(tmp_path: Path) -> None:
    spec, control = _plan(tmp_path, "processing", ("--sagemaker-run=local", "--sagemaker-env", "MODE=cli",
                                                   "--sagemaker-download-outputs"))
    target = _local_target(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    result = launch(spec, control, target, out=out, err=err)
    assert result.status == "Completed", err.getvalue()
    uri = "s3://local-bucket/pre/jobs/job-20261202-070000-t0k3/output/output"
    assert result.output_artifacts == {"output": uri}
    assert target.store.get_bytes(uri + "/count.txt") == b"3"
    # --sagemaker-download-outputs brought it back to the output's local folder
    assert (tmp_path / "out" / "count.txt").read_text() == "3"
    assert "[algo-1] counted 3 MODE=cli" in out.getvalue()
    assert "processing job job-20261202-070000-t0k3: Completed" in err.getvalue()


def test_training_runs_in_process_on_the_local_backend(tmp_path: Path) -> None:
    spec, control = _plan(tmp_path, "training", ("--sagemaker-run=local", "--sagemaker-download-outputs",
                                                 "--sagemaker-download-model", str(tmp_path / "model"),
                                                 "--sagemaker-output-json", str(tmp_path / "result.json")))
    out, err = io.StringIO(), io.StringIO()
    result = launch(spec, control, _local_target(tmp_path), out=out, err=err)
    assert result.status == "Completed", err.getvalue()
    assert json.loads((tmp_path / "model" / "model.json").read_text()) == {"rows": 4}
    assert (tmp_path / "report" / "summary.txt").read_text() == "done"
    assert result.final_metrics == {"loss": 0.25}
    written = json.loads((tmp_path / "result.json").read_text())
    assert written["model_artifact_url"] == ("s3://local-bucket/pre/jobs/job-20261202-070000-t0k3/output/"
                                             "model.tar.gz")


def _sha(spec: Any, name: str) -> str:
    """The blob name of the one file of local input ``name``."""
    source = Path(next(ch.source for ch in spec.inputs if ch.name == name))
    path = source if source.is_file() else next(p for p in source.rglob("*") if p.is_file())
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_processing_request_reaches_sagemaker_over_http(aws: Any, tmp_path: Path) -> None:
    spec, control = _plan(tmp_path, "processing", ("--sagemaker-run=yes", "--sagemaker-env", "MODE=cli",
                                                   "--sagemaker-tags", "team=ml"))
    target = _moto_target()
    err = io.StringIO()
    result = launch(spec, control, target, out=io.StringIO(), err=err)
    assert result.status == "Completed", err.getvalue()
    sent = aws.json_bodies("CreateProcessingJob")
    assert len(sent) == 1
    request = sent[0]
    assert request["ProcessingJobName"] == "job-20261202-070000-t0k3"
    assert request["RoleArn"] == ROLE and request["AppSpecification"]["ImageUri"] == IMAGE
    assert request["Environment"] == {"MODE": "cli"}
    # the user's tags, the one that lets "aws-sagemaker-remote list" find the job, then the launch
    # token that recognises a create whose answer was lost
    assert request["Tags"][:-1] == [{"Key": "team", "Value": "ml"},
                                    {"Key": "aws-sagemaker-remote:launcher", "Value": __version__}]
    assert request["Tags"][-1]["Key"] == "aws-sagemaker-remote:launch-token"
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in request["ProcessingInputs"]}
    # what the request names was uploaded before the job was created
    code = manifest_objects(target.store, inputs["code"])
    assert code and all(target.store.head(uri) is not None for uri, _, _ in code)  # every blob it names is there
    assert [rel for _, rel, _ in manifest_objects(target.store, inputs["input"])] == [_sha(spec, "input")]
    outputs = {o["OutputName"]: o["S3Output"]["S3Uri"] for o in request["ProcessingOutputConfig"]["Outputs"]}
    assert outputs == {"output": "s3://moto-bucket/pre/jobs/job-20261202-070000-t0k3/output/output"}
    assert result.output_artifacts == outputs


def test_training_request_reaches_sagemaker_over_http(aws: Any, tmp_path: Path) -> None:
    spec, control = _plan(tmp_path, "training", ("--sagemaker-run=yes", "--sagemaker-spot",
                                                 "--sagemaker-checkpoint-s3", "s3://moto-bucket/ckpt"))
    target = _moto_target()
    err = io.StringIO()
    result = launch(spec, control, target, out=io.StringIO(), err=err)
    assert result.status == "Completed", err.getvalue()
    (request,) = aws.json_bodies("CreateTrainingJob")
    assert request["TrainingJobName"] == "job-20261202-070000-t0k3"
    assert request["AlgorithmSpecification"]["MetricDefinitions"] == [{"Name": "loss", "Regex": "loss: ([0-9.]+)"}]
    assert request["OutputDataConfig"] == {"S3OutputPath": "s3://moto-bucket/pre/jobs"}
    # the spot default decided in plan: wait as long as the job may run
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400, "MaxWaitTimeInSeconds": 86400}
    assert request["CheckpointConfig"]["S3Uri"] == "s3://moto-bucket/ckpt"
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]}
    assert [rel for _, rel, _ in manifest_objects(target.store, channels["train"])] == [_sha(spec, "train")]
    assert result.model_artifact_url == "s3://moto-bucket/pre/jobs/job-20261202-070000-t0k3/output/model.tar.gz"


def test_dry_run_in_process_creates_and_uploads_nothing(aws: Any, tmp_path: Path) -> None:
    spec, control = _plan(tmp_path, "processing", ("--sagemaker-run=yes", "--sagemaker-dry-run"))
    target = _moto_target()
    aws.clear_log()
    out = io.StringIO()
    result = launch(spec, control, target, out=out, err=io.StringIO())
    assert result.status == "DryRun"
    report = json.loads(out.getvalue())
    assert report["request"]["ProcessingJobName"] == "job-20261202-070000-t0k3"
    assert report["upload_bytes"] > 0
    assert not aws.json_bodies("CreateProcessingJob")
    assert aws.s3_uploads() == []
    assert "sagemaker" not in {r.service for r in aws.requests}
    assert not boto3.client("s3").list_objects_v2(Bucket="moto-bucket").get("Contents")


@pytest.mark.parametrize("kind", ["processing", "training"])
def test_a_failed_job_raises_with_its_result(tmp_path: Path, kind: str) -> None:
    from aws_sagemaker_remote.errors import JobFailed

    spec, control = _plan(tmp_path, kind, ("--sagemaker-run=local", "--sagemaker-env", "FAIL=1"))
    err = io.StringIO()
    with pytest.raises(JobFailed) as info:
        launch(spec, control, _local_target(tmp_path), out=io.StringIO(), err=err)
    assert info.value.result.status == "Failed"
    assert "exited with code 1" in (info.value.result.failure_reason or ""), err.getvalue()
    assert "[algo-1] asked to fail" in info.value.result.last_log_lines
    assert f"{kind} job job-20261202-070000-t0k3: Failed" in err.getvalue()
