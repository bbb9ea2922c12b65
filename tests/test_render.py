"""Rendered requests: every option has its place, and botocore's own model accepts them."""
from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any, Dict

import boto3
from botocore.validate import validate_parameters

from aws_sagemaker_remote.api import fold_training_keywords, prepare
from aws_sagemaker_remote.args import PathArgument
from aws_sagemaker_remote.container import needs_argument_file
from aws_sagemaker_remote.plan import plan_job
from aws_sagemaker_remote.reinvoke import user_arguments
from aws_sagemaker_remote.render import BOOTSTRAP_STUB, ENTRYPOINT, render
from aws_sagemaker_remote.spec import Placement, StagedJob

NOW = dt.datetime(2026, 11, 21, 0, 0, 0, tzinfo=dt.timezone.utc)
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/img:1"
PLACEMENT = Placement(role_arn=ROLE, image_uri=IMAGE, bucket="b", prefix="p")


def _validate(operation: str, request: Dict[str, Any]) -> None:
    client = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    validate_parameters(request, client.meta.service_model.operation_model(operation).input_shape)


#: the code manifest's name in the code channel (its digest)
ENTRY = "e" * 64


def _staged(tmp_path: Path, kind: str, argv: list, **options: Any) -> StagedJob:
    script = tmp_path / "job.py"
    script.write_text("")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rows.csv").write_text("1\n")
    inputs = {
        "train": str(tmp_path / "data"),
        "shards": PathArgument("s3://bucket/shards/", distribution="ShardedByS3Key", compression="Gzip",
                               mode="Pipe", content_type="text/csv"),
    }
    outputs = {"report": (str(tmp_path / "out"), "s3://bucket/reports/" if kind == "processing" else "default"),
               "stream": PathArgument(str(tmp_path / "stream"), upload_mode="Continuous")}
    decl, opts, parser = prepare(kind, None, inputs, outputs, None, None, None, None, str(script),
                                 {}, fold_training_keywords(options, {"loss": r"loss: ([0-9.]+)"}, None)
                                 if kind == "training" else options)
    ns = parser.parse_args(argv)
    opts = type(opts).from_namespace(ns)
    spec = plan_job(decl, ns, opts, user_arguments(argv, decl, opts), now=NOW, token="ab12")
    return StagedJob(
        spec=spec, code_uri="s3://b/p/cas/sha256/" + "c" * 64, code_entry=ENTRY,
        input_uris={"train": "s3://b/p/cas/sha256/def/", "shards": "s3://bucket/shards/"},
    )


FULL = [
    "--sagemaker-instance", "ml.c5.xlarge", "--sagemaker-instance-count", "2", "--sagemaker-volume-size", "50",
    "--sagemaker-max-run", "3600", "--sagemaker-env", "MODE=fast", "--sagemaker-tags", "team=ml",
    "--sagemaker-volume-kms-key", "arn:aws:kms:us-east-1:123456789012:key/abc",
    "--sagemaker-output-kms-key", "alias/out", "--sagemaker-subnets", "subnet-1,subnet-2",
    "--sagemaker-security-groups", "sg-1", "--sagemaker-network-isolation", "--sagemaker-traffic-encryption",
]


def test_processing_request(tmp_path: Path) -> None:
    request = render(_staged(tmp_path, "processing", FULL), PLACEMENT)
    _validate("CreateProcessingJob", request)
    assert request["ProcessingJobName"] == "job-20261121-000000-ab12"
    assert request["RoleArn"] == ROLE
    app = request["AppSpecification"]
    assert app["ImageUri"] == IMAGE
    assert app["ContainerEntrypoint"] == list(ENTRYPOINT)
    assert len(BOOTSTRAP_STUB) <= 256
    assert app["ContainerArguments"][:2] == ["/opt/ml/processing/input/code/" + ENTRY, "/opt/ml/code"]
    assert "--sagemaker-run=job" in app["ContainerArguments"]
    inputs = {i["InputName"]: i["S3Input"] for i in request["ProcessingInputs"]}
    assert inputs["code"]["S3Uri"] == "s3://b/p/cas/sha256/" + "c" * 64
    assert inputs["train"] == {
        "S3Uri": "s3://b/p/cas/sha256/def/", "LocalPath": "/opt/ml/processing/input/train",
        "S3DataType": "S3Prefix", "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated",
        "S3CompressionType": "None"}
    assert inputs["shards"]["S3DataDistributionType"] == "ShardedByS3Key"
    assert inputs["shards"]["S3CompressionType"] == "Gzip"
    outputs = {o["OutputName"]: o["S3Output"] for o in request["ProcessingOutputConfig"]["Outputs"]}
    assert outputs["report"] == {"S3Uri": "s3://bucket/reports/", "LocalPath": "/opt/ml/processing/output/report",
                                 "S3UploadMode": "EndOfJob"}
    assert outputs["stream"]["S3UploadMode"] == "Continuous"
    # a default location is named in plan and placed under the placement's bucket and prefix
    assert outputs["stream"]["S3Uri"] == "s3://b/p/jobs/job-20261121-000000-ab12/output/stream"
    assert request["ProcessingOutputConfig"]["KmsKeyId"] == "alias/out"
    assert request["ProcessingResources"]["ClusterConfig"] == {
        "InstanceCount": 2, "InstanceType": "ml.c5.xlarge", "VolumeSizeInGB": 50,
        "VolumeKmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/abc"}
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert request["Environment"] == {"MODE": "fast"}
    assert request["NetworkConfig"] == {
        "EnableInterContainerTrafficEncryption": True, "EnableNetworkIsolation": True,
        "VpcConfig": {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1", "subnet-2"]}}
    assert request["Tags"] == [{"Key": "team", "Value": "ml"}]


def test_minimal_processing_request_has_no_empty_sections(tmp_path: Path) -> None:
    request = render(_staged(tmp_path, "processing", []), PLACEMENT)
    _validate("CreateProcessingJob", request)
    assert "NetworkConfig" not in request and "Tags" not in request and "Environment" not in request


def test_training_request(tmp_path: Path) -> None:
    argv = FULL + ["--sagemaker-spot", "--sagemaker-max-wait", "7200", "--sagemaker-input-mode", "FastFile",
                   "--sagemaker-metric", "acc=acc=([0-9.]+)", "--sagemaker-hyperparameter", "lr=0.1"]
    request = render(_staged(tmp_path, "training", argv), PLACEMENT)
    _validate("CreateTrainingJob", request)
    algo = request["AlgorithmSpecification"]
    assert algo["TrainingImage"] == IMAGE
    assert algo["TrainingInputMode"] == "FastFile"
    assert algo["ContainerArguments"][:2] == ["/opt/ml/input/data/code/" + ENTRY, "/opt/ml/code"]
    assert {m["Name"]: m["Regex"] for m in algo["MetricDefinitions"]} == {"loss": r"loss: ([0-9.]+)",
                                                                         "acc": "acc=([0-9.]+)"}
    channels = {c["ChannelName"]: c for c in request["InputDataConfig"]}
    assert channels["code"]["InputMode"] == "File"
    assert channels["train"]["InputMode"] == "FastFile"
    assert channels["shards"]["ContentType"] == "text/csv"
    assert channels["shards"]["DataSource"]["S3DataSource"]["S3DataDistributionType"] == "ShardedByS3Key"
    assert request["OutputDataConfig"] == {"S3OutputPath": "s3://b/p/jobs", "KmsKeyId": "alias/out"}
    assert request["ResourceConfig"]["InstanceCount"] == 2
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert request["EnableManagedSpotTraining"] is True
    # spot implies a checkpoint location: per base job name and script path, under the bucket and prefix
    digest = hashlib.sha256(str(tmp_path / "job.py").encode("utf-8")).hexdigest()[:8]
    assert request["CheckpointConfig"] == {"S3Uri": f"s3://b/p/checkpoints/job-{digest}",
                                           "LocalPath": "/opt/ml/checkpoints"}
    assert request["VpcConfig"] == {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1", "subnet-2"]}
    assert request["EnableNetworkIsolation"] is True
    assert request["EnableInterContainerTrafficEncryption"] is True
    assert request["HyperParameters"]["lr"] == "0.1"


def test_training_hyperparameters_show_the_script_arguments(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text("")
    decl, opts, parser = prepare(
        "training", None, {"train": "s3://bucket/train/"}, None, None,
        [{"dest": "--epochs", "type": int, "default": 3}, {"dest": "--note", "default": "n" * 3000},
         {"dest": "--layers", "nargs": "+", "default": [1, 2]}],
        None, None, str(script), {}, fold_training_keywords({}, None, {"source": "declared"}))
    argv = ["--epochs", "5", "--note", "n" * 3000]
    ns = parser.parse_args(argv)
    opts = type(opts).from_namespace(ns)
    spec = plan_job(decl, ns, opts, user_arguments(argv, decl, opts), now=NOW, token="ab12")
    staged = StagedJob(spec=spec, code_uri="s3://b/p/cas/sha256/abc/", input_uris={"train": "s3://bucket/train/"})
    request = render(staged, PLACEMENT)
    _validate("CreateTrainingJob", request)
    hp = request["HyperParameters"]
    assert hp["epochs"] == "5"
    assert hp["layers"] == "[1, 2]"
    assert hp["train"] == "/opt/ml/input/data/train"
    assert hp["model_dir"] == "/opt/ml/model"
    assert hp["source"] == "declared"
    assert len(hp["note"]) == 2500 and hp["note"].endswith("...")
    # only the displayed copy is shortened: the job's own argument travels whole (in the staged
    # argument file, since it is beyond the API's limits), never as the shortened copy
    assert spec.arguments[spec.arguments.index("--note") + 1] == "n" * 3000
    assert needs_argument_file(spec.arguments)
    assert hp["note"] not in request["AlgorithmSpecification"]["ContainerArguments"]
    assert not any(k.startswith("sagemaker_") for k in hp)
