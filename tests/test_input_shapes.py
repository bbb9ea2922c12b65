"""One input shape: a file input is a file path in every mode, a folder input a folder.

The same script is given a local file, a local folder, one ``s3://`` object and
an ``s3://`` prefix, run here (``--sagemaker-run=no``) and as a local job, for
both job kinds; S3 is the moto server. What the script sees is compared, not
how the framework got it there.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any, Dict, List

import boto3
import pytest

from aws_sagemaker_remote.shape import one_object_name

SCRIPT = textwrap.dedent("""
    import json, os
    from aws_sagemaker_remote import PathArgument, sagemaker_processing_main, sagemaker_training_main

    def describe(path):
        return {"file": os.path.isfile(path), "name": os.path.basename(path),
                "text": open(path).read() if os.path.isfile(path) else None,
                "listing": sorted(os.listdir(path)) if os.path.isdir(path) else None}

    def main(args):
        print("SEEN=" + json.dumps(describe(args.data), sort_keys=True))

    if __name__ == "__main__":
        where = os.environ.get("CONTAINER_PATH") or None
        entry = sagemaker_training_main if os.environ.get("KIND") == "training" else sagemaker_processing_main
        entry(main=main, inputs={"data": PathArgument(None, container_path=where)})
""")

FILE = {"file": True, "name": "rows.csv", "text": "a,b\n1,2\n", "listing": None}
FOLDER = {"file": False, "listing": ["rows.csv", "sub"], "text": None}
SHARED = {"file": False, "listing": ["rows.csv", "rows.csv.bak"], "text": None}


def test_the_rule_for_one_object() -> None:
    assert one_object_name("s3://b/d/x.csv", ["s3://b/d/x.csv"]) == "x.csv"
    assert one_object_name("s3://b/d/x", ["s3://b/d/x"]) == "x"  # no extension needed: the object decides
    assert one_object_name("s3://b/d/x.csv", ["s3://b/d/x.csv", "s3://b/d/x.csv.bak"]) is None
    assert one_object_name("s3://b/d/x.csv", ["s3://b/d/x.csv.bak"]) is None
    assert one_object_name("s3://b/d/", ["s3://b/d/x.csv"]) is None
    assert one_object_name("s3://b", []) is None
    assert one_object_name("s3://b/d", ["s3://b/d", "s3://b/d/"]) == "d"  # a folder marker is no object


def seen(stdout: str) -> Dict[str, Any]:
    lines = [line.split("SEEN=", 1)[1] for line in stdout.splitlines() if "SEEN=" in line]
    assert len(lines) == 1, stdout
    found: Dict[str, Any] = json.loads(lines[0])
    return found


def matches(found: Dict[str, Any], expected: Dict[str, Any]) -> bool:
    return all(found[key] == value for key, value in expected.items())


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "job.py").write_text(SCRIPT)
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "rows.csv").write_text("a,b\n1,2\n")
    (data / "sub" / "more.csv").write_text("c\n")
    return tmp_path


@pytest.fixture
def bucket(aws: Any) -> str:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="in-bucket")
    s3.put_object(Bucket="in-bucket", Key="data/rows.csv", Body=b"a,b\n1,2\n")
    s3.put_object(Bucket="in-bucket", Key="data/sub/more.csv", Body=b"c\n")
    s3.put_object(Bucket="in-bucket", Key="shared/rows.csv", Body=b"a,b\n1,2\n")
    s3.put_object(Bucket="in-bucket", Key="shared/rows.csv.bak", Body=b"old\n")
    return "in-bucket"


IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/python:3.11"

SOURCES = [
    ("data/rows.csv", FILE),
    ("data", FOLDER),
    ("s3://in-bucket/data/rows.csv", FILE),
    ("s3://in-bucket/data/", FOLDER),
    # no trailing slash: a prefix of several objects, each under its key below the prefix's parent (as SageMaker)
    ("s3://in-bucket/data", {"file": False, "listing": ["data"]}),
    ("s3://in-bucket/shared/rows.csv", SHARED),  # SageMaker downloads every object the prefix matches
]


PLAIN_RUNS = [("processing", source, expected) for source, expected in SOURCES] + [
    ("training", source, expected) for source, expected in SOURCES if expected is FILE]


@pytest.mark.parametrize(("kind", "source", "expected"), PLAIN_RUNS)
def test_shape_in_a_plain_run(bucket: str, project: Path, run_script: Any, kind: str, source: str,
                              expected: Dict[str, Any]) -> None:
    run = run_script(project / "job.py", "--data", source, cwd=project, env={"KIND": kind})
    assert run.returncode == 0, run.stderr
    assert matches(seen(run.stdout), expected), (source, run.stdout)


LOCAL_JOBS = [
    ("processing", "data/rows.csv", FILE),
    ("processing", "s3://in-bucket/data/rows.csv", FILE),
    ("processing", "s3://in-bucket/data", {"file": False, "listing": ["data"]}),
    ("processing", "s3://in-bucket/shared/rows.csv", SHARED),
    ("training", "data", FOLDER),
    ("training", "s3://in-bucket/data/rows.csv", FILE),
    ("training", "s3://in-bucket/data/", FOLDER),
]


@pytest.mark.parametrize(("kind", "source", "expected"), LOCAL_JOBS)
def test_shape_in_a_local_job(bucket: str, project: Path, run_script: Any, kind: str, source: str,
                              expected: Dict[str, Any]) -> None:
    run = run_script(project / "job.py", "--sagemaker-run=local", "--data", source, cwd=project,
                     env={"KIND": kind})
    assert run.returncode == 0, run.stderr
    assert matches(seen(run.stdout), expected), (source, run.stdout)


def job_argv(stdout: str) -> List[str]:
    request = json.loads(stdout)["request"]
    spec = request.get("AppSpecification") or request["AlgorithmSpecification"]
    return list(spec["ContainerArguments"][2:])


def test_the_dry_run_shows_the_file_path_of_one_s3_object(bucket: str, project: Path, run_script: Any) -> None:
    run = run_script(project / "job.py", "--sagemaker-run=local", "--sagemaker-dry-run",
                     "--data", "s3://in-bucket/data/rows.csv", cwd=project, env={"KIND": "training"})
    assert run.returncode == 0, run.stderr
    assert "--data=/opt/ml/input/data/data/rows.csv" in job_argv(run.stdout)
    request = json.loads(run.stdout)["request"]
    assert request["HyperParameters"]["data"] == "/opt/ml/input/data/data/rows.csv"
    channel = next(c for c in request["InputDataConfig"] if c["ChannelName"] == "data")
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == "s3://in-bucket/data/rows.csv"

    folder = run_script(project / "job.py", "--sagemaker-run=local", "--sagemaker-dry-run",
                        "--data", "s3://in-bucket/shared/rows.csv", cwd=project, env={"KIND": "processing"})
    assert "--data=/opt/ml/processing/input/data" in job_argv(folder.stdout)


def test_an_offline_dry_run_cannot_look_and_shows_the_folder(project: Path, run_script: Any) -> None:
    role = "arn:aws:iam::123456789012:role/SageMakerRole"
    run = run_script(project / "job.py", "--sagemaker-run=yes", "--sagemaker-dry-run", "--sagemaker-role", role,
                     "--sagemaker-region", "us-east-1", "--sagemaker-image", IMAGE,
                     "--data", "s3://in-bucket/data/rows.csv", cwd=project, env={"KIND": "processing"})
    assert run.returncode == 0, run.stderr
    assert "--data=/opt/ml/processing/input/data" in job_argv(run.stdout)
    assert "input shapes" in json.loads(run.stdout)["unknown"]


@pytest.mark.parametrize(("source", "expected"), [("data/rows.csv", FILE), ("data", FOLDER),
                                                  ("s3://in-bucket/data/rows.csv", FILE)])
def test_aws_example_local_path_opt_ml_processing_input(bucket: str, project: Path, run_script: Any,
                                                        source: str, expected: Dict[str, Any]) -> None:
    """``/opt/ml/processing/input`` itself, the LocalPath of AWS's scikit-learn processing example."""
    env = {"KIND": "processing", "CONTAINER_PATH": "/opt/ml/processing/input"}
    dry = run_script(project / "job.py", "--sagemaker-run=local", "--sagemaker-dry-run", "--data", source,
                     cwd=project, env=env)
    assert dry.returncode == 0, dry.stderr
    inputs = json.loads(dry.stdout)["request"]["ProcessingInputs"]
    assert [i["S3Input"]["LocalPath"] for i in inputs] == ["/opt/ml/processing/input/code", "/opt/ml/processing/input"]
    run = run_script(project / "job.py", "--sagemaker-run=local", "--data", source, cwd=project, env=env)
    assert run.returncode == 0, run.stderr
    found = seen(run.stdout)
    if expected is FOLDER:  # the code bundle's folder is inside it, as with SageMaker's own SDK
        assert found["listing"] == ["code", "rows.csv", "sub"]
    else:
        assert matches(found, expected)


def test_a_folder_with_a_code_entry_cannot_hold_the_bundle(project: Path, run_script: Any,
                                                            one_error_line: Any) -> None:
    (project / "data" / "code").mkdir()
    (project / "data" / "code" / "x.py").write_text("")
    run = run_script(project / "job.py", "--sagemaker-run=local", "--data", "data", cwd=project,
                     env={"KIND": "processing", "CONTAINER_PATH": "/opt/ml/processing/input"})
    assert run.returncode == 2
    one_error_line(run.stderr, "--data", "'code'", "container_path")


def test_training_takes_only_the_documented_channel_path(project: Path, run_script: Any,
                                                          one_error_line: Any) -> None:
    env = {"KIND": "training", "CONTAINER_PATH": "/opt/ml/input/data/data"}
    ok = run_script(project / "job.py", "--sagemaker-run=local", "--sagemaker-dry-run", "--data", "data",
                    cwd=project, env=env)
    assert ok.returncode == 0, ok.stderr
    assert "--data=/opt/ml/input/data/data" in job_argv(ok.stdout)
    # SageMaker decides where a channel goes: another path is refused, not silently ignored
    bad = run_script(project / "job.py", "--sagemaker-run=local", "--sagemaker-dry-run", "--data", "data",
                     cwd=project, env={**env, "CONTAINER_PATH": "/opt/ml/processing/input"})
    assert bad.returncode == 2
    one_error_line(bad.stderr, "--data", "/opt/ml/input/data/data")


@pytest.mark.parametrize(("kind", "operation", "folder"), [
    ("processing", "CreateProcessingJob", "/opt/ml/processing/input/data"),
    ("training", "CreateTrainingJob", "/opt/ml/input/data/data"),
])
def test_a_sagemaker_job_gets_the_file_path_of_one_s3_object(aws: Any, bucket: str, project: Path,
                                                              run_script: Any, kind: str, operation: str,
                                                              folder: str) -> None:
    role = "arn:aws:iam::123456789012:role/SageMakerRole"
    common = ["--sagemaker-run=yes", "--sagemaker-role", role, "--sagemaker-image", IMAGE, "--sagemaker-wait=no"]
    for source, value in (("s3://in-bucket/data/rows.csv", folder + "/rows.csv"),
                          ("s3://in-bucket/shared/rows.csv", folder)):
        aws.clear_log()
        run = run_script(project / "job.py", *common, "--data", source, cwd=project, env={"KIND": kind})
        assert run.returncode == 0, run.stderr
        (sent,) = aws.json_bodies(operation)
        spec = sent.get("AppSpecification") or sent["AlgorithmSpecification"]
        assert f"--data={value}" in spec["ContainerArguments"], spec["ContainerArguments"]
