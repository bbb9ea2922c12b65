"""What a user reads when the script fails: its own error once, and where to read the rest.

A failing local job used to print the script's traceback three times (streamed, again in the
summary, once more in the error line), with the frames of the framework's entry code in
between. Inside a job the script's exception is now printed without our frames; the launcher's
summary shows the last few log lines that the failure reason does not already hold, the
reason, and where the whole log is kept.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

#: The script's message is computed, so the ``raise`` line in the traceback does not contain it.
FAILING_SCRIPT = '''\
from aws_sagemaker_remote import sagemaker_processing_main


def check_rows(count):
    raise ValueError("bad row count " + str(count * 7))


def main(args):
    print("counting rows")
    check_rows(6)


if __name__ == "__main__":
    sagemaker_processing_main(main, inputs={}, outputs={})
'''
MESSAGE = "ValueError: bad row count 42"
OWN_FRAME = re.compile(r'File "[^"]*failing\.py", line \d+, in check_rows')


@pytest.fixture
def failing(tmp_path: Path) -> Path:
    script = tmp_path / "failing.py"
    script.write_text(FAILING_SCRIPT, encoding="utf-8")
    return script


def test_local_job_shows_the_scripts_error_once_without_our_frames(run_script: Any, failing: Path) -> None:
    result = run_script(failing, "--sagemaker-run=local")

    assert result.returncode == 1, result.stderr
    err = result.stderr
    assert err.count("bad row count 42") == 1, err
    assert len(OWN_FRAME.findall(err)) == 1, err
    assert "aws_sagemaker_remote" not in "".join(line for line in err.splitlines() if 'File "' in line), err
    assert "(paths are inside the job's container)" in err
    assert '"/opt/ml/' in err  # the path the job saw, not a temporary folder deleted since
    reason = [line for line in err.splitlines() if line.startswith("  reason: ")]
    assert reason == [f"  reason: AlgorithmError: script failing.py exited with code 1: {MESSAGE}"], err
    name = re.search(r"created processing job (\S+) \(local\)", err)
    assert name, err
    assert f"  full log: aws-sagemaker-remote logs {name.group(1)}" in err.splitlines()
    files = [line[len("  full log: "):] for line in err.splitlines()
             if line.startswith("  full log: ") and line.endswith(".jsonl")]
    assert len(files) == 1 and Path(files[0]).is_file(), err
    assert "bad row count 42" in Path(files[0]).read_text(encoding="utf-8")  # the whole log is there
    assert err.splitlines()[-1] == f"failing.py: error: processing job {name.group(1)} failed (reason above)"
    # the streamed log (stdout) has the traceback once too, still without our frames
    assert result.stdout.count("bad row count 42") == 1, result.stdout
    assert len(OWN_FRAME.findall(result.stdout)) == 1
    assert "aws_sagemaker_remote/" not in result.stdout


def test_plain_run_keeps_pythons_own_traceback(run_script: Any, failing: Path) -> None:
    result = run_script(failing, "--sagemaker-run=no")

    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-1] == MESSAGE
    assert len(OWN_FRAME.findall(result.stderr)) == 1
    assert "aws_sagemaker_remote" in result.stderr  # unchanged: Python shows every frame
    assert result.stdout == "counting rows\n"


# --- the demo's "written to" line names something that exists after the run -------------------

def _written_to(stdout: str) -> str:
    found = re.findall(r"written to (\S+)$", stdout, flags=re.MULTILINE)
    assert len(found) == 1, stdout
    return str(found[0])


def test_demo_here_names_its_output_folder(run_script: Any, demo_dir: Path, tmp_path: Path) -> None:
    result = run_script(demo_dir / "wordcount.py", "--output", tmp_path / "here")

    assert result.returncode == 0, result.stderr
    assert Path(_written_to(result.stdout)) == tmp_path / "here"
    assert (tmp_path / "here" / "counts.json").is_file()


def test_demo_as_a_local_job_names_the_uri_its_output_went_to(run_script: Any, demo_dir: Path) -> None:
    result = run_script(demo_dir / "wordcount.py", "--sagemaker-run=local")

    assert result.returncode == 0, result.stderr
    uri = _written_to(result.stdout)
    assert f"  output output: {uri}" in result.stderr.splitlines()  # the job's own output URI
    root = re.search(r"s3:// URIs above are folders under (\S+)\)", result.stderr)
    assert root, result.stderr
    assert (Path(root.group(1)) / uri[len("s3://"):] / "counts.json").is_file()


def test_demo_here_with_an_s3_output_names_the_uri_not_the_temporary_folder(
        aws: Any, run_script: Any, demo_dir: Path) -> None:
    import boto3

    boto3.client("s3").create_bucket(Bucket="results")
    result = run_script(demo_dir / "wordcount.py", "--output-s3", "s3://results/wordcount")

    assert result.returncode == 0, result.stderr
    assert _written_to(result.stdout) == "s3://results/wordcount"
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="results")["Contents"]]
    assert "wordcount/counts.json" in keys
