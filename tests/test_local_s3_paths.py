"""``s3://`` paths in a plain local run: inputs cached locally, outputs uploaded after ``main``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3

SCRIPT = """
import json, os, sys
from aws_sagemaker_remote import sagemaker_processing_main

def main(args):
    names = sorted(os.listdir(args.input))
    print("input is local:", os.path.isdir(args.input), names)
    with open(os.path.join(args.output, "seen.json"), "w") as fh:
        json.dump(names, fh)
    if os.environ.get("FAIL_AFTER_WRITE"):
        raise SystemExit("failing on purpose")

if __name__ == "__main__":
    sagemaker_processing_main(main=main, inputs={"input": "s3://in-bucket/data/"},
                              outputs={"output": ("out", "s3://out-bucket/results")})
"""


def test_s3_input_and_output_in_a_local_run(aws: Any, run_script: Any, tmp_path: Path) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="in-bucket")
    s3.create_bucket(Bucket="out-bucket")
    s3.put_object(Bucket="in-bucket", Key="data/a.txt", Body=b"a")
    s3.put_object(Bucket="in-bucket", Key="data/sub/b.txt", Body=b"b")
    script = tmp_path / "s3job.py"
    script.write_text(SCRIPT)

    first = run_script(script)
    assert first.returncode == 0, first.stderr
    assert "input is local: True ['a.txt', 'sub']" in first.stdout
    seen = s3.get_object(Bucket="out-bucket", Key="results/seen.json")["Body"].read()
    assert json.loads(seen) == ["a.txt", "sub"]
    assert not (tmp_path / "out").exists()  # main wrote to a temporary folder, uploaded after it returned

    # unchanged objects: the cache is reused, nothing is downloaded again
    aws.clear_log()
    second = run_script(script)
    assert second.returncode == 0, second.stderr
    assert "GetObject" not in aws.operations("s3")

    # a changed object is fetched again
    s3.put_object(Bucket="in-bucket", Key="data/c.txt", Body=b"c")
    third = run_script(script)
    assert "['a.txt', 'c.txt', 'sub']" in third.stdout


def test_outputs_are_not_uploaded_when_main_fails(aws: Any, run_script: Any, tmp_path: Path) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="in-bucket")
    s3.create_bucket(Bucket="out-bucket")
    s3.put_object(Bucket="in-bucket", Key="data/a.txt", Body=b"a")
    script = tmp_path / "s3job.py"
    script.write_text(SCRIPT)
    run = run_script(script, env={"FAIL_AFTER_WRITE": "1"})
    assert run.returncode != 0
    assert s3.list_objects_v2(Bucket="out-bucket").get("KeyCount", 0) == 0


def test_missing_s3_prefix_is_a_clear_error(aws: Any, run_script: Any, tmp_path: Path, one_error_line: Any) -> None:
    boto3.client("s3").create_bucket(Bucket="in-bucket")
    script = tmp_path / "s3job.py"
    script.write_text(SCRIPT)
    run = run_script(script)
    assert run.returncode == 2
    one_error_line(run.stderr, "--input", "s3://in-bucket/data/")
