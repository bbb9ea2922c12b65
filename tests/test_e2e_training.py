"""The training demo end to end: here, ``local`` with 1 and 3 instances, and ``yes`` against moto."""
from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path
from typing import Any, Dict, List

import boto3
import pytest

from aws_sagemaker_remote import __version__

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/python:3.11"


def _dirs(tmp_path: Path, name: str) -> List[str]:
    base = tmp_path / name
    return ["--model-dir", str(base / "model"), "--output-dir", str(base / "data"),
            "--checkpoint-dir", str(base / "checkpoints")]


def _s3_json_from_tar(uri: str, member: str) -> Dict[str, Any]:
    bucket, key = uri[5:].split("/", 1)
    body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return json.loads(tar.extractfile(member).read())  # type: ignore[union-attr]


def test_demo_here_and_as_a_local_job_agree(run_script: Any, demo_dir: Path, tmp_path: Path) -> None:
    here = run_script(demo_dir / "train_linear.py", "--epochs", "5", *_dirs(tmp_path, "here"))
    assert here.returncode == 0, here.stderr
    result_file = tmp_path / "result.json"
    job = run_script(demo_dir / "train_linear.py", "--sagemaker-run=local", "--epochs", "5",
                     "--sagemaker-checkpoint-s3", "s3://sagemaker-local/ckpt/agree",
                     "--sagemaker-download-model", tmp_path / "downloaded", "--sagemaker-output-json", result_file,
                     *_dirs(tmp_path, "job"))
    assert job.returncode == 0, job.stderr
    here_model = json.loads((tmp_path / "here" / "model" / "model.json").read_text())
    job_model = json.loads((tmp_path / "downloaded" / "model.json").read_text())
    assert job_model == here_model
    result = json.loads(result_file.read_text())
    assert result["status"] == "Completed"
    assert result["model_artifact_url"].endswith(f"/{result['job_name']}/output/model.tar.gz")
    assert result["output_data_url"].endswith(f"/{result['job_name']}/output/output.tar.gz")
    assert result["final_metrics"]["loss"] == pytest.approx(float(re.findall(r"loss: ([0-9.]+)", here.stdout)[-1]))
    # the metric is shown while watching
    assert "[metrics] loss=" in job.stderr
    assert "[algo-1] epoch 5 loss:" in job.stdout


def test_three_instances_get_distinct_hosts_and_shards(aws: Any, run_script: Any, demo_dir: Path,
                                                       tmp_path: Path) -> None:
    result_file = tmp_path / "result.json"
    job = run_script(demo_dir / "train_linear.py", "--sagemaker-run=local", "--sagemaker-instance-count", "3",
                     "--epochs", "2", "--sagemaker-output-json", result_file,
                     "--sagemaker-checkpoint-s3", "s3://sagemaker-us-east-1-123456789012/ckpt/three",
                     *_dirs(tmp_path, "job"))
    assert job.returncode == 0, job.stderr
    result = json.loads(result_file.read_text())
    hosts = {}
    for line in job.stdout.splitlines():
        match = re.match(r"\[(algo-\d)\] host (algo-\d) of 3: 1 file\(s\), \d+ rows: (part-\d\.csv)", line)
        if match:
            assert match.group(1) == match.group(2)  # the log prefix names the host that printed it
            hosts[match.group(2)] = match.group(3)
    assert sorted(hosts) == ["algo-1", "algo-2", "algo-3"]
    assert sorted(hosts.values()) == ["part-0.csv", "part-1.csv", "part-2.csv"]  # a distinct shard each
    report = _s3_json_from_tar(result["output_data_url"], "report-algo-1.json")
    assert report["hosts"] == ["algo-1", "algo-2", "algo-3"]


def test_interrupted_run_resumes_from_its_checkpoint(run_script: Any, demo_dir: Path, tmp_path: Path) -> None:
    common = ["--sagemaker-run=local", "--epochs", "4", "--sagemaker-base-job-name", "resume-test",
              *_dirs(tmp_path, "job")]
    first = run_script(demo_dir / "train_linear.py", *common, "--stop-after", "2")
    assert first.returncode == 1
    assert "[algo-1] epoch 2 loss:" in first.stdout and "epoch 3" not in first.stdout
    second = run_script(demo_dir / "train_linear.py", *common)
    assert second.returncode == 0, second.stderr
    assert "resuming from epoch 3" in second.stdout
    epochs = [int(e) for e in re.findall(r"\] epoch (\d+) loss", second.stdout)]
    assert epochs == [3, 4]


FAILING = """
import os
from aws_sagemaker_remote import sagemaker_training_main

def main(args):
    # /opt/ml/output/failure in a job; derived from --model-dir so the local backend's root is honoured
    with open(os.path.join(os.path.dirname(args.model_dir), "output", "failure"), "w") as fh:
        fh.write("custom failure: the labels are missing")
    raise SystemExit(4)

if __name__ == "__main__":
    sagemaker_training_main(main=main, base_job_name="failing-training")
"""


def test_failure_file_becomes_the_failure_reason(run_script: Any, tmp_path: Path) -> None:
    script = tmp_path / "failing_training.py"
    script.write_text(FAILING)
    result_file = tmp_path / "result.json"
    run = run_script(script, "--sagemaker-run=local", "--sagemaker-output-json", result_file,
                     *_dirs(tmp_path, "job"))
    assert run.returncode == 1
    result = json.loads(result_file.read_text())
    assert result["status"] == "Failed"
    assert "custom failure: the labels are missing" in result["failure_reason"]
    assert "custom failure: the labels are missing" in run.stderr


def test_yes_against_moto_sends_the_expected_request(aws: Any, run_script: Any, demo_dir: Path,
                                                     tmp_path: Path) -> None:
    run = run_script(demo_dir / "train_linear.py", "--sagemaker-run=yes", "--sagemaker-role", ROLE,
                     "--sagemaker-image", IMAGE, "--sagemaker-instance", "ml.c5.xlarge",
                     "--sagemaker-instance-count", "2", "--sagemaker-volume-size", "20",
                     "--sagemaker-max-run", "3600", "--sagemaker-spot", "--sagemaker-max-wait", "7200",
                     "--sagemaker-env", "MODE=demo", "--sagemaker-tags", "team=ml", "--epochs", "7",
                     "--sagemaker-input-mode", "FastFile", *_dirs(tmp_path, "job"))
    assert run.returncode == 0, run.stderr
    sent = aws.json_bodies("CreateTrainingJob")
    assert len(sent) == 1
    request = sent[0]
    name = request["TrainingJobName"]
    assert name.startswith("train-linear-")
    algo = request["AlgorithmSpecification"]
    assert algo["TrainingImage"] == IMAGE
    assert algo["TrainingInputMode"] == "FastFile"
    assert algo["MetricDefinitions"] == [{"Name": "loss", "Regex": "loss: ([0-9.]+)"}]
    assert algo["ContainerEntrypoint"][:2] == ["python3", "-c"]
    args = algo["ContainerArguments"]
    assert args[0].startswith("/opt/ml/input/data/code/") and args[1] == "/opt/ml/code"
    assert "--train=/opt/ml/input/data/train" in args
    assert "--model-dir=/opt/ml/model" in args and "--checkpoint-dir=/opt/ml/checkpoints" in args
    assert args[-2:] == ["--epochs", "7"]
    channels = {c["ChannelName"]: c for c in request["InputDataConfig"]}
    assert set(channels) == {"code", "train"}
    assert channels["train"]["DataSource"]["S3DataSource"]["S3DataDistributionType"] == "ShardedByS3Key"
    assert channels["train"]["InputMode"] == "FastFile"
    bucket_uri = "s3://sagemaker-us-east-1-123456789012/aws-sagemaker-remote"
    assert request["OutputDataConfig"] == {"S3OutputPath": f"{bucket_uri}/jobs"}
    assert request["ResourceConfig"] == {"InstanceType": "ml.c5.xlarge", "InstanceCount": 2, "VolumeSizeInGB": 20}
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert request["EnableManagedSpotTraining"] is True
    checkpoint = request["CheckpointConfig"]
    assert checkpoint["LocalPath"] == "/opt/ml/checkpoints"
    # per script: the base job name and a digest of the script's path
    assert re.fullmatch(re.escape(f"{bucket_uri}/checkpoints/train-linear-") + "[0-9a-f]{8}", checkpoint["S3Uri"])
    assert request["Environment"] == {"MODE": "demo"}
    # the user's tags, the one that lets "aws-sagemaker-remote list" find the job, then the launch
    # token that recognises a create whose answer was lost
    assert request["Tags"][:-1] == [{"Key": "team", "Value": "ml"},
                                    {"Key": "aws-sagemaker-remote:launcher", "Value": __version__}]
    assert request["Tags"][-1]["Key"] == "aws-sagemaker-remote:launch-token"
    assert request["HyperParameters"]["epochs"] == "7"
    assert request["RoleArn"] == ROLE
    described = boto3.client("sagemaker").describe_training_job(TrainingJobName=name)
    assert described["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert f"image: {IMAGE}" in run.stderr


OUTPUTS = """
import os
from aws_sagemaker_remote import sagemaker_training_main

def main(args):
    with open(os.path.join(args.report, "summary.txt"), "w") as fh:
        fh.write("trained")
    with open(os.path.join(args.model_dir, "weights.bin"), "w") as fh:
        fh.write("w")

if __name__ == "__main__":
    sagemaker_training_main(main=main, outputs={"report": "report"}, base_job_name="with-outputs")
"""


def test_training_outputs_come_back_from_output_tar_gz(run_script: Any, tmp_path: Path) -> None:
    script = tmp_path / "outputs.py"
    script.write_text(OUTPUTS)
    run = run_script(script, "--sagemaker-run=local", "--sagemaker-download-outputs", "--report",
                     tmp_path / "report-here", *_dirs(tmp_path, "job"))
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "report-here" / "summary.txt").read_text() == "trained"
    assert "--report-s3" not in run_script(script, "--help").stdout


def test_a_detached_local_training_job_is_followed_to_its_model(run_script: Any, run_python: Any,
                                                                 tmp_path: Path) -> None:
    # the launcher returns once the job is created; the job runs on in a runner (tests/test_detach.py)
    script = tmp_path / "outputs.py"
    script.write_text(OUTPUTS)
    run = run_script(script, "--sagemaker-run=local", "--sagemaker-detach", *_dirs(tmp_path, "job"))
    assert run.returncode == 0, run.stderr
    name = re.search(r"created training job (\S+) \(local\)", run.stderr).group(1)  # type: ignore[union-attr]
    assert f"follow it with: aws-sagemaker-remote logs --follow {name}" in run.stderr.splitlines()

    followed = run_python("-m", "aws_sagemaker_remote", "logs", "--follow", name, "--json")

    assert followed.returncode == 0, followed.stderr
    result = json.loads(followed.stdout)
    assert result["status"] == "Completed" and result["model_artifact_url"].endswith("/output/model.tar.gz")
