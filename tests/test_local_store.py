"""Local means local: ``--sagemaker-run=local`` keeps its files in the stand-in folder unless S3 is asked for.

Credentials on the machine no longer send a local job to AWS; ``--sagemaker-store=s3``
(or, with ``auto``, an ``s3://`` location the job names) does.
"""
from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/python:3.11"


@pytest.fixture
def credentials_but_no_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Fake credentials in a credentials file and an endpoint nobody listens on; returns the endpoint."""
    credentials = tmp_path / "credentials"
    credentials.write_text("[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
                           "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with socket.socket() as sock:  # a port nobody listens on any more
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    return endpoint


def test_local_run_with_credentials_and_no_network_succeeds(credentials_but_no_network: str, run_script: Any,
                                                            demo_dir: Path, tmp_path: Path,
                                                            clean_environment: Path) -> None:
    run = run_script(demo_dir / "wordcount.py", "--sagemaker-run=local", "--output", tmp_path / "out",
                     "--sagemaker-download-outputs", timeout=120)
    assert run.returncode == 0, run.stderr
    assert "Completed" in run.stderr
    assert (tmp_path / "out" / "counts.json").is_file()
    # the files went to the stand-in folder, not to the (unreachable) endpoint
    staged = list((clean_environment / "s3").glob("sagemaker-local/aws-sagemaker-remote/jobs/wordcount-*/output/"
                                                 "output/counts.json"))
    assert len(staged) == 1
    assert "127.0.0.1" not in run.stderr


def test_store_s3_sends_a_local_job_to_s3(credentials_but_no_network: str, run_script: Any, demo_dir: Path,
                                          one_error_line: Any) -> None:
    run = run_script(demo_dir / "wordcount.py", "--sagemaker-run=local", "--sagemaker-store=s3", timeout=120)
    assert run.returncode == 1
    one_error_line(run.stderr, credentials_but_no_network)  # it tried the configured S3


@pytest.mark.parametrize("argv,needle", [
    (["--sagemaker-run=yes", "--sagemaker-store=local", "--sagemaker-role", ROLE, "--sagemaker-image", IMAGE],
     "--sagemaker-run=local"),
    (["--sagemaker-run=local", "--sagemaker-store=nearby"], "auto, local, s3"),
])
def test_store_choice_is_checked(run_script: Any, demo_dir: Path, one_error_line: Any, argv: Any,
                                 needle: str) -> None:
    run = run_script(demo_dir / "wordcount.py", *argv)
    assert run.returncode == 2
    one_error_line(run.stderr, "--sagemaker-store", needle)
