"""Staged jobs with every option set, built through the real plan step, for the export tests."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Dict, List, Optional

from aws_sagemaker_remote.api import fold_training_keywords, prepare
from aws_sagemaker_remote.args import PathArgument
from aws_sagemaker_remote.plan import plan_job
from aws_sagemaker_remote.reinvoke import user_arguments
from aws_sagemaker_remote.render import render
from aws_sagemaker_remote.spec import Placement, StagedJob

NOW = dt.datetime(2026, 11, 21, 0, 0, 0, tzinfo=dt.timezone.utc)
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/img:1"
#: the code channel: a ManifestFile blob (in script mode, the code archive blob)
CODE_URI = "s3://b/p/cas/sha256/" + "c0de" * 16
REGION = "us-east-1"
PLACEMENT = Placement(role_arn=ROLE, image_uri=IMAGE, bucket="b", prefix="p")

FULL = [
    "--sagemaker-instance", "ml.c5.xlarge", "--sagemaker-instance-count", "2", "--sagemaker-volume-size", "50",
    "--sagemaker-max-run", "3600", "--sagemaker-env", "MODE=fast", "--sagemaker-env", "yes=on",
    "--sagemaker-tags", "team=ml", "--sagemaker-tags", "area=data",
    "--sagemaker-volume-kms-key", "arn:aws:kms:us-east-1:123456789012:key/abc",
    "--sagemaker-output-kms-key", "alias/out", "--sagemaker-subnets", "subnet-1,subnet-2",
    "--sagemaker-security-groups", "sg-1", "--sagemaker-network-isolation", "--sagemaker-traffic-encryption",
]
TRAINING_FULL = FULL + ["--sagemaker-spot", "--sagemaker-max-wait", "7200", "--sagemaker-input-mode", "FastFile",
                        "--sagemaker-metric", "acc=acc=([0-9.]+)", "--sagemaker-hyperparameter", "lr=0.1"]


def staged_job(tmp_path: Path, kind: str, argv: Optional[List[str]] = None,
               outputs: Optional[Dict[str, Any]] = None) -> StagedJob:
    """A processing or training job with a local input ``train``, an S3 input ``shards`` and
    outputs ``report`` and ``stream`` (processing), planned from ``argv`` and staged on paper."""
    argv = list(FULL if argv is None and kind == "processing" else
                TRAINING_FULL if argv is None else argv)
    script = tmp_path / "job.py"
    script.write_text("")
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "rows.csv").write_text("1\n")
    inputs = {
        "train": str(tmp_path / "data"),
        "shards": PathArgument("s3://bucket/shards/", distribution="ShardedByS3Key", compression="Gzip",
                               mode="Pipe", content_type="text/csv"),
    }
    if outputs is None:
        outputs = {"report": (str(tmp_path / "out"), "s3://bucket/reports/" if kind == "processing" else "default"),
                   "stream": PathArgument(str(tmp_path / "stream"), upload_mode="Continuous")}
    options: Dict[str, Any] = {}
    decl, opts, parser = prepare(kind, None, inputs, outputs, None, None, None, None, str(script), {},
                                 fold_training_keywords(options, {"loss": r"loss: ([0-9.]+)"}, None)
                                 if kind == "training" else options)
    ns = parser.parse_args(argv)
    opts = type(opts).from_namespace(ns)
    spec = plan_job(decl, ns, opts, user_arguments(argv, decl, opts), now=NOW, token="ab12")
    return StagedJob(
        spec=spec, code_uri=CODE_URI,
        input_uris={"train": "s3://b/p/cas/sha256/def/", "shards": "s3://bucket/shards/"},
    )


def rendered(staged: StagedJob) -> Dict[str, Any]:
    """The request a launch would send for ``staged``, placed in bucket ``b`` under prefix ``p``."""
    return render(staged, PLACEMENT)
