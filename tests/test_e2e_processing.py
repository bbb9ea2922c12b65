"""The processing demo end to end, as a user runs it: here, ``local`` and ``yes`` (moto)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict

import boto3
import pytest
from cas_view import code_tree, files_of, input_tree

from aws_sagemaker_remote import __version__
from aws_sagemaker_remote.backends.local import LocalBackend
from aws_sagemaker_remote.store import S3Store

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/python:3.11"


def _counts(folder: Path) -> Dict[str, Any]:
    return json.loads((folder / "counts.json").read_text())


def test_demo_here_and_as_a_local_job_agree(run_script: Any, demo_dir: Path, tmp_path: Path) -> None:
    here = run_script(demo_dir / "wordcount.py", "--output", tmp_path / "here", "--min-count", "2")
    assert here.returncode == 0, here.stderr
    local = run_script(demo_dir / "wordcount.py", "--sagemaker-run=local", "--output", tmp_path / "job",
                       "--min-count", "2", "--sagemaker-download-outputs")
    assert local.returncode == 0, local.stderr
    assert "Completed" in local.stderr
    assert "[algo-1]" in local.stdout and "wordcount:" in local.stdout
    assert _counts(tmp_path / "job") == _counts(tmp_path / "here")
    assert _counts(tmp_path / "here")  # not empty


def test_local_mode_over_moto_writes_outputs_to_s3(aws: Any, run_script: Any, demo_dir: Path, tmp_path: Path) -> None:
    here = run_script(demo_dir / "wordcount.py", "--output", tmp_path / "here")
    assert here.returncode == 0, here.stderr
    result_file = tmp_path / "result.json"
    run = run_script(demo_dir / "wordcount.py", "--sagemaker-run=local", "--sagemaker-store=s3",
                     "--sagemaker-output-json", result_file)
    assert run.returncode == 0, run.stderr
    result = json.loads(result_file.read_text())
    uri = result["output_artifacts"]["output"]
    assert uri.startswith("s3://sagemaker-us-east-1-123456789012/aws-sagemaker-remote/jobs/wordcount-")
    bucket, key = uri[5:].split("/", 1)
    body = boto3.client("s3").get_object(Bucket=bucket, Key=key + "/counts.json")["Body"].read()
    assert json.loads(body) == _counts(tmp_path / "here")


def test_yes_against_moto_sends_a_request_that_reproduces_the_local_output(aws: Any, run_script: Any, demo_dir: Path,
                                                     tmp_path: Path) -> None:
    result_file = tmp_path / "result.json"
    run = run_script(demo_dir / "wordcount.py", "--sagemaker-run=yes", "--sagemaker-role", ROLE,
                     "--sagemaker-image", IMAGE, "--sagemaker-env", "MODE=demo", "--sagemaker-tags", "team=ml",
                     "--min-count", "2", "--lowercase", "--sagemaker-output-json", result_file)
    assert run.returncode == 0, run.stderr
    result = json.loads(result_file.read_text())
    name = result["job_name"]
    assert name.startswith("wordcount-")
    sent = aws.json_bodies("CreateProcessingJob")
    assert len(sent) == 1
    request = sent[0]
    assert request["ProcessingJobName"] == name
    assert request["AppSpecification"]["ImageUri"] == IMAGE
    assert request["AppSpecification"]["ContainerEntrypoint"][:2] == ["python3", "-c"]
    args = request["AppSpecification"]["ContainerArguments"]
    assert args[2:] == ["--sagemaker-run=job", "--input=/opt/ml/processing/input/input",
                        "--output=/opt/ml/processing/output/output", "--output-s3=default",
                        "--min-count", "2", "--lowercase"]
    assert request["Environment"] == {"MODE": "demo"}
    # the user's tags, the one that lets "aws-sagemaker-remote list" find the job, then the launch
    # token that recognises a create whose answer was lost
    assert request["Tags"][:-1] == [{"Key": "team", "Value": "ml"},
                                    {"Key": "aws-sagemaker-remote:launcher", "Value": __version__}]
    assert request["Tags"][-1]["Key"] == "aws-sagemaker-remote:launch-token"
    assert request["RoleArn"] == ROLE
    inputs = {i["InputName"]: i["S3Input"] for i in request["ProcessingInputs"]}
    assert set(inputs) == {"code", "input"}
    outputs = {o["OutputName"]: o["S3Output"]["S3Uri"] for o in request["ProcessingOutputConfig"]["Outputs"]}
    assert outputs == {"output": f"s3://sagemaker-us-east-1-123456789012/aws-sagemaker-remote/jobs/{name}/output/output"}
    assert result["output_artifacts"] == outputs
    # the job exists in SageMaker (moto) with that request
    described = boto3.client("sagemaker").describe_processing_job(ProcessingJobName=name)
    assert described["AppSpecification"]["ImageUri"] == IMAGE

    # the bundle in S3 unpacks to the script, the runtime and a manifest
    store = S3Store(boto3.client("s3"))
    entry = request["AppSpecification"]["ContainerArguments"][0].rsplit("/", 1)[1]
    code = code_tree(store, inputs["code"]["S3Uri"], entry, tmp_path / "job")
    names = set(files_of(code))
    assert {"manifest.json", "script/wordcount.py", "runtime/aws_sagemaker_remote/bootstrap.py"} <= names
    assert not any(n.startswith(("script/data/", "script/output/")) for n in names)
    assert inputs["input"]["S3DataType"] == "ManifestFile"
    staged = input_tree(store, code, inputs["input"]["S3Uri"], inputs["input"]["LocalPath"], tmp_path / "input")
    assert set(files_of(staged)) == set(os.listdir(demo_dir / "data" / "text"))

    # the very request SageMaker got, executed here, gives the local run's output
    backend = LocalBackend(store)
    backend.create("processing", request)
    deadline = time.monotonic() + 60
    while backend.describe("processing", name)["ProcessingJobStatus"] == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert backend.describe("processing", name)["ProcessingJobStatus"] == "Completed"
    here = run_script(demo_dir / "wordcount.py", "--output", tmp_path / "here", "--min-count", "2", "--lowercase")
    assert here.returncode == 0
    out_bucket, out_key = outputs["output"][5:].split("/", 1)
    body = boto3.client("s3").get_object(Bucket=out_bucket, Key=out_key + "/counts.json")["Body"].read()
    assert json.loads(body) == _counts(tmp_path / "here")


def test_second_launch_uploads_nothing(aws: Any, run_script: Any, demo_dir: Path) -> None:
    common = ["--sagemaker-run=yes", "--sagemaker-role", ROLE, "--sagemaker-image", IMAGE]
    first = run_script(demo_dir / "wordcount.py", *common)
    assert first.returncode == 0, first.stderr
    assert aws.s3_uploads()
    aws.clear_log()
    second = run_script(demo_dir / "wordcount.py", *common)
    assert second.returncode == 0, second.stderr
    # nothing staged again; the only object written is the new job's launch record
    uploads = aws.s3_uploads()
    assert [u.key for u in uploads if not (u.key or "").endswith("/launch.json")] == []
    assert len(uploads) == 1
    assert "0 B uploaded" in second.stderr
    assert aws.operations("sagemaker").count("CreateProcessingJob") == 1


@pytest.mark.parametrize("flag,value", [
    ("--sagemaker-max-run", "0"),
    ("--sagemaker-volume-size", "99999"),
    ("--sagemaker-env", "BAD-KEY=1"),
    ("--sagemaker-instance-count", "0"),
    ("--sagemaker-job-name", "no_underscores"),
])
def test_bad_input_exits_2_and_touches_nothing(aws: Any, run_script: Any, demo_dir: Path, one_error_line: Any,
                                               flag: str, value: str) -> None:
    run = run_script(demo_dir / "wordcount.py", "--sagemaker-run=yes", "--sagemaker-role", ROLE,
                     "--sagemaker-image", IMAGE, flag, value)
    assert run.returncode == 2
    one_error_line(run.stderr, flag)
    assert aws.requests == []  # not one request: nothing uploaded, nothing created


def test_missing_role_is_a_usage_error(aws: Any, run_script: Any, demo_dir: Path, one_error_line: Any) -> None:
    run = run_script(demo_dir / "wordcount.py", "--sagemaker-run=yes", "--sagemaker-image", IMAGE)
    assert run.returncode == 2
    one_error_line(run.stderr, "--sagemaker-role")
    assert aws.requests == []


def test_dry_run_prints_request_and_plan_and_changes_nothing(aws: Any, run_script: Any, demo_dir: Path) -> None:
    run = run_script(demo_dir / "wordcount.py", "--sagemaker-run=yes", "--sagemaker-role", ROLE,
                     "--sagemaker-image", IMAGE, "--sagemaker-dry-run")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["request"]["AppSpecification"]["ImageUri"] == IMAGE
    assert {u["staged"] for u in report["uploads"]} == {False}
    assert report["upload_bytes"] > 0
    changing = [r.operation for r in aws.requests if r.method in ("PUT", "POST", "DELETE")
                and r.operation not in ("GetCallerIdentity",)]
    assert changing == []


FAILING = """
from aws_sagemaker_remote import sagemaker_processing_main

def main(args):
    print("about to fail")
    raise ValueError("the data is bad: 42")

if __name__ == "__main__":
    sagemaker_processing_main(main=main, base_job_name="failing")
"""


def test_failing_job_exits_1_with_the_reason(run_script: Any, tmp_path: Path) -> None:
    script = tmp_path / "failing.py"
    script.write_text(FAILING)
    run = run_script(script, "--sagemaker-run=local")
    assert run.returncode == 1
    assert "about to fail" in run.stdout
    assert "Failed" in run.stderr
    assert "ValueError: the data is bad: 42" in run.stderr


SLEEPER = """
import time
from aws_sagemaker_remote import sagemaker_processing_main

def main(args):
    print("started", flush=True)
    time.sleep(60)

if __name__ == "__main__":
    sagemaker_processing_main(main=main, base_job_name="sleeper")
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_stops_the_job_and_exits_130(tmp_path: Path, signum: int) -> None:
    from conftest import python_environment

    script = tmp_path / "sleeper.py"
    script.write_text(SLEEPER)
    proc = subprocess.Popen([sys.executable, str(script), "--sagemaker-run=local"], cwd=tmp_path,
                            env=python_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        for line in proc.stdout:
            if "started" in line:
                break
            assert time.monotonic() < deadline
        proc.send_signal(signum)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    created = re.search(r"^created processing job (\S+) \(local\)$", err, re.MULTILINE)
    assert created, err
    job = created.group(1)
    # the stop is confirmed by the job's final status, then the one error line says how it ended
    assert err.splitlines()[-2:] == [
        f"[{job}] Stopped",
        f"sleeper.py: error: interrupted; processing job {job} ended Stopped",
    ], err


ECHO = """
import json, os
from aws_sagemaker_remote import sagemaker_processing_main

def callback(parser):
    parser.add_argument("--from-callback", nargs="*", default=[])

def main(args):
    seen = {k: v for k, v in vars(args).items() if not k.startswith("sagemaker_") and k not in ("output", "output_s3")}
    with open(os.path.join(args.output, "args.json"), "w", encoding="utf-8") as fh:
        json.dump(seen, fh, ensure_ascii=False, sort_keys=True)

if __name__ == "__main__":
    sagemaker_processing_main(
        main=main,
        outputs={"output": "out"},
        additional_arguments=[
            {"dest": "--flag", "action": "store_true"},
            {"dest": "--items", "nargs": "+", "default": []},
            {"dest": "--text", "default": "unset"},
            {"dest": "--count", "type": int, "default": 0},
        ],
        argparse_callback=callback,
    )
"""

TRICKY_ARGS = ["--flag", "--items", "a,b", "c d", "it's", '"quoted"', "ünïcødé ✓", "$HOME", "--text=",
               "--count", "-3", "--from-callback", "x=1,y=2", "tab\there"]


def test_the_job_gets_exactly_the_arguments_typed(run_script: Any, tmp_path: Path) -> None:
    script = tmp_path / "echo.py"
    script.write_text(ECHO)
    here = run_script(script, "--output", tmp_path / "here", *TRICKY_ARGS)
    assert here.returncode == 0, here.stderr
    job = run_script(script, "--sagemaker-run=local", "--output", tmp_path / "job", "--sagemaker-download-outputs",
                     *TRICKY_ARGS)
    assert job.returncode == 0, job.stderr
    local_args = json.loads((tmp_path / "here" / "args.json").read_text(encoding="utf-8"))
    job_args = json.loads((tmp_path / "job" / "args.json").read_text(encoding="utf-8"))
    assert job_args == local_args
    assert local_args["items"] == ["a,b", "c d", "it's", '"quoted"', "ünïcødé ✓", "$HOME"]
    assert local_args["text"] == "" and local_args["count"] == -3 and local_args["flag"] is True


def test_arguments_beyond_the_api_limits_arrive_whole(aws: Any, run_script: Any, tmp_path: Path) -> None:
    """ContainerArguments takes 100 entries of 256 characters; longer lists travel in a staged file."""
    script = tmp_path / "echo.py"
    script.write_text(ECHO)
    long_text = "€" * 300 + " and more"
    many = [f"item-{i}" for i in range(120)]
    args = ["--text", long_text, "--items", *many]
    here = run_script(script, "--output", tmp_path / "here", *args)
    assert here.returncode == 0, here.stderr
    job = run_script(script, "--sagemaker-run=local", "--output", tmp_path / "job", "--sagemaker-download-outputs",
                     *args)
    assert job.returncode == 0, job.stderr
    job_args = json.loads((tmp_path / "job" / "args.json").read_text(encoding="utf-8"))
    assert job_args == json.loads((tmp_path / "here" / "args.json").read_text(encoding="utf-8"))
    assert job_args["text"] == long_text and job_args["items"] == many
    # and what SageMaker would get stays within its limits
    dry = run_script(script, "--sagemaker-run=yes", "--sagemaker-role", ROLE, "--sagemaker-image", IMAGE,
                     "--sagemaker-dry-run", *args)
    assert dry.returncode == 0, dry.stderr
    request = json.loads(dry.stdout)["request"]
    container_args = request["AppSpecification"]["ContainerArguments"]
    assert len(container_args) == 3 and container_args[2].startswith("--aws-sagemaker-remote-arguments-file=/opt/ml/")
    assert all(len(a) <= 256 for a in container_args)
    uploads = json.loads(dry.stdout)["uploads"]
    entry = container_args[0].rsplit("/", 1)[1]
    assert entry in {u["uri"].rsplit("/", 1)[1] for u in uploads}  # the code manifest
    assert any(u["path"].endswith("/" + entry) for u in uploads)


def test_without_aws_the_summary_says_where_outputs_are(run_script: Any, demo_dir: Path, clean_environment: Path) -> None:
    run = run_script(demo_dir / "wordcount.py", "--sagemaker-run=local")
    assert run.returncode == 0, run.stderr
    root = clean_environment / "s3"
    assert f"folders under {root}" in run.stderr
    outputs = list(root.glob("sagemaker-local/aws-sagemaker-remote/jobs/wordcount-*/output/output/counts.json"))
    assert len(outputs) == 1


def test_unreachable_endpoint_is_one_clear_line(run_script: Any, demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on any more
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    run = run_script(demo_dir / "wordcount.py", "--sagemaker-run=yes", "--sagemaker-role", ROLE,
                     "--sagemaker-image", IMAGE, timeout=120)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and f"127.0.0.1:{port}" in errors[0], run.stderr


def test_explicit_bucket_and_role_arn_need_no_account_lookup(aws: Any, run_script: Any, demo_dir: Path) -> None:
    boto3.client("s3").create_bucket(Bucket="my-bucket")
    aws.clear_log()
    run = run_script(demo_dir / "wordcount.py", "--sagemaker-run=yes", "--sagemaker-role", ROLE,
                     "--sagemaker-image", IMAGE, "--sagemaker-bucket", "my-bucket", "--sagemaker-wait=no")
    assert run.returncode == 0, run.stderr
    assert "GetCallerIdentity" not in aws.operations()
    assert aws.operations("sagemaker") == ["CreateProcessingJob"]  # created, and not followed (wait=no)
    assert "s3://my-bucket/aws-sagemaker-remote/jobs/wordcount-" in run.stderr


OWN_BUCKET = """
import os
import re
from aws_sagemaker_remote import sagemaker_processing_main

def main(args):
    print("writing to", args.report)
    with open(os.path.join(args.report, "r.txt"), "w") as fh:
        fh.write("report")

if __name__ == "__main__":
    sagemaker_processing_main(main=main, outputs={"report": ("report", "s3://reports-bucket/latest")})
"""


def test_an_output_with_its_own_s3_location_is_uploaded_by_the_job_not_the_script(
        aws: Any, run_script: Any, tmp_path: Path) -> None:
    boto3.client("s3").create_bucket(Bucket="reports-bucket")
    script = tmp_path / "own_bucket.py"
    script.write_text(OWN_BUCKET)
    run = run_script(script, "--sagemaker-run=local")
    assert run.returncode == 0, run.stderr
    assert "[algo-1] writing to " in run.stdout and "/opt/ml/processing/output/report" in run.stdout
    assert "uploaded" not in run.stdout  # the script inside the job did not upload anything itself
    body = boto3.client("s3").get_object(Bucket="reports-bucket", Key="latest/r.txt")["Body"].read()
    assert body == b"report"


def test_main_imported_from_another_module_still_runs_the_started_script(run_script: Any, tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "__init__.py").write_text("")
    (tmp_path / "work" / "steps.py").write_text(
        "import os\n\ndef main(args):\n"
        "    with open(os.path.join(args.output, 'x.txt'), 'w') as fh:\n        fh.write('done')\n")
    (tmp_path / "launcher.py").write_text(
        "from aws_sagemaker_remote import sagemaker_processing_main\nfrom work.steps import main\n\n"
        "if __name__ == '__main__':\n    sagemaker_processing_main(main=main, outputs={'output': 'out'})\n")
    run = run_script(tmp_path / "launcher.py", "--sagemaker-run=local", "--sagemaker-download-outputs",
                     cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "processing job launcher-" in run.stderr
    assert (tmp_path / "out" / "x.txt").read_text() == "done"
