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


#: What ``import aws_sagemaker_remote`` and a plain local run (no ``--sagemaker-*`` flag) leave out as
#: well: the dataclass machinery (``dataclasses`` imports ``inspect``, ``ast``, ``dis``, ...) and our
#: modules built on it; only ``--help``, a ``--sagemaker-*`` flag or an option setting loads them.
MACHINERY = ("inspect", "dataclasses", "aws_sagemaker_remote.options", "aws_sagemaker_remote.flags",
             "aws_sagemaker_remote.args", "aws_sagemaker_remote.sources", "aws_sagemaker_remote.kinds",
             "aws_sagemaker_remote.container", "subprocess", "tempfile")

REPORT_MACHINERY = (
    "import json, sys; "
    f"print('LOADED=' + json.dumps(sorted(set(sys.modules) & set({MACHINERY!r}))))"
)


def test_import_loads_no_dataclass_machinery(run_python) -> None:
    done = run_python("-c", f"import aws_sagemaker_remote; {REPORT_MACHINERY}")
    assert done.returncode == 0, done.stderr
    assert loaded_heavy_modules(done.stdout) == []


def test_local_run_of_the_demo_loads_no_dataclass_machinery(tmp_path: Path, demo_dir: Path, run_python) -> None:
    out = tmp_path / "out"
    code = (
        "import runpy, sys; "
        f"sys.argv = [{str(demo_dir / 'wordcount.py')!r}, '--output', {str(out)!r}, '--min-count', '2']; "
        f"runpy.run_path(sys.argv[0], run_name='__main__'); {REPORT_MACHINERY}"
    )
    done = run_python("-c", code)
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "counts.json").read_text(encoding="utf-8"))
    assert loaded_heavy_modules(done.stdout) == []


def test_the_check_detects_the_machinery(run_python) -> None:
    """The report above sees these modules once the full path loads them (so the tests above can fail)."""
    done = run_python("-c", f"import aws_sagemaker_remote.flags, aws_sagemaker_remote.sources; {REPORT_MACHINERY}")
    assert done.returncode == 0, done.stderr
    assert {"inspect", "dataclasses", "aws_sagemaker_remote.options"} <= set(loaded_heavy_modules(done.stdout))


def test_the_check_detects_an_aws_import(run_python) -> None:
    """The report above really sees boto3 when it is imported (so the tests above can fail)."""
    done = run_python("-c", f"import boto3; {REPORT}")
    assert done.returncode == 0, done.stderr
    assert {"boto3", "botocore"} <= set(loaded_heavy_modules(done.stdout))
