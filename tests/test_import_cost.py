"""A local run pays almost nothing: the AWS libraries load only on the remote path.

Each check runs in a fresh interpreter, because this test process has long
since imported boto3 (the moto server fixture needs it).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

#: Top-level packages that only the remote path (``--sagemaker-run=yes``) may import.
HEAVY = ("boto3", "botocore", "s3transfer", "sagemaker")

REPORT = (
    "import json, sys; "
    f"print('LOADED=' + json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"
)


def loaded_heavy_modules(stdout: str) -> list:
    lines = [line for line in stdout.splitlines() if line.startswith("LOADED=")]
    assert len(lines) == 1, stdout
    return json.loads(lines[0][len("LOADED="):])


@pytest.mark.parametrize("module", [
    "aws_sagemaker_remote",
    "aws_sagemaker_remote.processing",
    "aws_sagemaker_remote.training",
    "aws_sagemaker_remote.args",
    "aws_sagemaker_remote.processing.args",
    "aws_sagemaker_remote.training.args",
])
def test_import_loads_no_aws_library(module: str, run_python) -> None:
    done = run_python("-c", f"import {module}; {REPORT}")
    assert done.returncode == 0, done.stderr
    assert loaded_heavy_modules(done.stdout) == []


def test_local_run_of_the_demo_loads_no_aws_library(tmp_path: Path, demo_dir: Path, run_python) -> None:
    out = tmp_path / "out"
    code = (
        "import runpy, sys; "
        f"sys.argv = [{str(demo_dir / 'wordcount.py')!r}, '--output', {str(out)!r}]; "
        f"runpy.run_path(sys.argv[0], run_name='__main__'); {REPORT}"
    )
    done = run_python("-c", code)
    assert done.returncode == 0, done.stderr
    assert (out / "counts.json").is_file()
    assert loaded_heavy_modules(done.stdout) == []


def test_help_loads_no_aws_library(tmp_path: Path, demo_dir: Path, run_python) -> None:
    code = (
        "import atexit, runpy, sys; "
        f"atexit.register(lambda: __import__('builtins').exec({REPORT!r})); "
        f"sys.argv = [{str(demo_dir / 'wordcount.py')!r}, '--help']; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    done = run_python("-c", code)
    assert done.returncode == 0, done.stderr
    assert "--sagemaker-run" in done.stdout
    assert loaded_heavy_modules(done.stdout) == []


def test_the_check_detects_an_aws_import(run_python) -> None:
    """The report above really sees boto3 when it is imported (so the tests above can fail)."""
    done = run_python("-c", f"import boto3; {REPORT}")
    assert done.returncode == 0, done.stderr
    assert {"boto3", "botocore"} <= set(loaded_heavy_modules(done.stdout))
