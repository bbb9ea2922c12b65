"""``--sagemaker-dry-run`` with no credentials and no network: the full request and upload plan.

``clean_environment`` (conftest) has removed every AWS variable, credentials
file and endpoint, and in this process every connection off loopback fails.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import os
from pathlib import Path
from typing import Any, Dict, List

from aws_sagemaker_remote.api import prepare
from aws_sagemaker_remote.launch import MASK, launch
from aws_sagemaker_remote.plan import plan_control, plan_job
from aws_sagemaker_remote.reinvoke import user_arguments
from aws_sagemaker_remote.targets import UNKNOWN_ACCOUNT, choose_target

ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/python:3.11"


def _dry_run(tmp_path: Path, argv: List[str], kind: str = "processing") -> Dict[str, Any]:
    """Plan, choose the target and launch as the entry point does, in this process."""
    script = tmp_path / "job.py"
    script.write_text("print('job')\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rows.csv").write_text("a,b\n1,2\n")
    decl, opts, parser = prepare(kind, None, {"data": str(tmp_path / "data")}, None, None, None, None, None,
                                 str(script), {}, {})
    argv = ["--sagemaker-run=yes", "--sagemaker-dry-run", *argv]
    namespace = parser.parse_args(argv)
    opts = type(opts).from_namespace(namespace)
    spec = plan_job(decl, namespace, opts, user_arguments(argv, decl, opts),
                    now=dt.datetime(2026, 12, 2, tzinfo=dt.timezone.utc), token="dry1")
    control = plan_control(opts)
    out = io.StringIO()
    result = launch(spec, control, choose_target(spec, control), out=out, err=io.StringIO())
    assert result.status == "DryRun"
    report: Dict[str, Any] = json.loads(out.getvalue())
    return report


def test_offline_dry_run_with_a_role_name_marks_the_account_unknown(tmp_path: Path) -> None:
    report = _dry_run(tmp_path, ["--sagemaker-role", "SageMakerRole", "--sagemaker-image", IMAGE,
                                 "--sagemaker-region", "eu-west-1", "--sagemaker-env", "TOKEN=hunter2",
                                 "--sagemaker-env", "MODE=fast"])
    request = report["request"]
    assert request["RoleArn"] == f"arn:aws:iam::{UNKNOWN_ACCOUNT}:role/SageMakerRole"
    assert request["AppSpecification"]["ImageUri"] == IMAGE
    # the whole request is there, with the default bucket named after the unknown account
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in request["ProcessingInputs"]}
    assert set(inputs) == {"code", "data"}
    assert inputs["data"].startswith(f"s3://sagemaker-eu-west-1-{UNKNOWN_ACCOUNT}/aws-sagemaker-remote/cas/")
    # environment values are masked, names kept
    assert request["Environment"] == {"TOKEN": MASK, "MODE": MASK}
    assert "hunter2" not in json.dumps(report)
    assert report["unknown"] == ["account", "role", "existing objects"]
    # the upload plan: every file with its size; whether it is already staged is unknown
    sizes = {u["path"].replace(os.sep, "/").rsplit("/", 1)[1]: u["size"] for u in report["uploads"]}
    assert sizes["rows.csv"] == len("a,b\n1,2\n")
    assert inputs["code"] in {u["uri"] for u in report["uploads"]}  # the code's manifest, among its blobs
    assert {u["staged"] for u in report["uploads"]} == {"unknown"}
    assert report["upload_bytes"] == sum(u["size"] for u in report["uploads"])
    assert "at most" in report["upload_bytes_note"]


def test_offline_dry_run_with_a_role_arn_knows_the_account(tmp_path: Path) -> None:
    report = _dry_run(tmp_path, ["--sagemaker-role", ROLE_ARN, "--sagemaker-image", IMAGE,
                                 "--sagemaker-region", "us-east-1"], kind="training")
    request = report["request"]
    assert request["RoleArn"] == ROLE_ARN
    assert request["OutputDataConfig"]["S3OutputPath"] == "s3://sagemaker-us-east-1-123456789012/aws-sagemaker-remote/jobs"
    assert report["unknown"] == ["existing objects"]


def test_offline_dry_run_without_a_region_says_so(tmp_path: Path) -> None:
    report = _dry_run(tmp_path, ["--sagemaker-role", ROLE_ARN, "--sagemaker-image", IMAGE,
                                 "--sagemaker-bucket", "my-bucket"])
    assert report["unknown"] == ["region", "existing objects"]
    assert report["request"]["ProcessingInputs"][0]["S3Input"]["S3Uri"].startswith("s3://my-bucket/")


def test_dry_run_without_a_role_is_one_line_and_exit_2(run_script: Any, demo_dir: Path,
                                                       one_error_line: Any) -> None:
    run = run_script(demo_dir / "wordcount.py", "--sagemaker-run=yes", "--sagemaker-dry-run",
                     "--sagemaker-image", IMAGE, "--sagemaker-region", "us-east-1")
    assert run.returncode == 2
    one_error_line(run.stderr, "--sagemaker-role")
    assert run.stdout == ""


def test_offline_dry_run_of_the_demo(run_script: Any, demo_dir: Path) -> None:
    """As a user runs it: a fresh process, no credentials, no endpoint."""
    run = run_script(demo_dir / "wordcount.py", "--sagemaker-run=yes", "--sagemaker-dry-run",
                     "--sagemaker-role", ROLE_ARN, "--sagemaker-image", IMAGE, "--sagemaker-region", "us-east-1",
                     "--sagemaker-env", "SECRET=s3cr3t")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["request"]["Environment"] == {"SECRET": MASK}
    assert "s3cr3t" not in run.stdout
    assert report["unknown"] == ["existing objects"]
