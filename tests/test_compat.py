"""Names and module paths that scripts written for the first aws_sagemaker_remote import, and the CLI."""
from __future__ import annotations

import argparse
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import aws_sagemaker_remote

#: The public names of the package, exactly.
EXPECTED_ALL = {
    "__version__",
    "sagemaker_processing_main",
    "sagemaker_training_main",
    "PathArgument",
    "OPTIONAL",
    "ProcessingOptions",
    "TrainingOptions",
    "JobResult",
    "RemoteError",
    "UsageError",
    "DeclarationError",
    "AwsError",
    "JobFailed",
    "Interrupted",
    "processing_job",
    "training_job",
    "Job",
    "output_location",
}


def test_top_level_imports() -> None:
    from aws_sagemaker_remote import OPTIONAL, PathArgument, sagemaker_processing_main, sagemaker_training_main

    assert callable(sagemaker_processing_main) and callable(sagemaker_training_main)
    assert PathArgument("x").local == "x"
    assert repr(OPTIONAL) == "OPTIONAL"


def test_dunder_all_is_exact_and_resolves() -> None:
    assert set(aws_sagemaker_remote.__all__) == EXPECTED_ALL
    assert len(aws_sagemaker_remote.__all__) == len(EXPECTED_ALL)
    for name in aws_sagemaker_remote.__all__:
        assert getattr(aws_sagemaker_remote, name) is not None, name


def test_star_import_gives_the_public_names() -> None:
    namespace: dict = {}
    exec("from aws_sagemaker_remote import *", namespace)
    assert EXPECTED_ALL <= set(namespace)


@pytest.mark.parametrize("path, name", [
    ("aws_sagemaker_remote.processing", "sagemaker_processing_main"),
    ("aws_sagemaker_remote.processing.main", "sagemaker_processing_main"),
    ("aws_sagemaker_remote.training", "sagemaker_training_main"),
    ("aws_sagemaker_remote.training.main", "sagemaker_training_main"),
])
def test_main_functions_at_their_documented_paths(path: str, name: str) -> None:
    assert getattr(importlib.import_module(path), name) is getattr(aws_sagemaker_remote, name)


def test_args_module_names() -> None:
    from aws_sagemaker_remote.args import OPTIONAL, PathArgument

    assert PathArgument is aws_sagemaker_remote.PathArgument
    assert OPTIONAL is aws_sagemaker_remote.OPTIONAL


def test_optional_is_a_singleton_that_survives_pickling() -> None:
    import pickle

    from aws_sagemaker_remote.args import OPTIONAL

    assert pickle.loads(pickle.dumps(OPTIONAL)) is OPTIONAL


def test_processing_args_adds_flags_to_a_given_parser() -> None:
    from aws_sagemaker_remote.processing.args import sagemaker_processing_args

    parser = argparse.ArgumentParser()
    parser.add_argument("--mine", default="x")
    returned = sagemaker_processing_args(parser, inputs={"input": "data"}, outputs={"output": "out"},
                                         dependencies={"lib": "src/lib"}, instance="ml.c5.xlarge")
    assert returned is parser
    ns = parser.parse_args(["--input", "other", "--sagemaker-run=yes", "--mine", "y"])
    assert (ns.input, ns.output, ns.output_s3, ns.lib, ns.mine) == ("other", "out", "default", "src/lib", "y")
    assert (ns.sagemaker_run, ns.sagemaker_instance) == ("yes", "ml.c5.xlarge")


def test_processing_args_accepts_modules() -> None:
    from aws_sagemaker_remote.processing.args import sagemaker_processing_args

    ns = sagemaker_processing_args(argparse.ArgumentParser(), modules={"old": "src/old"}).parse_args([])
    assert ns.old == "src/old"


def test_training_args_adds_flags_to_a_given_parser() -> None:
    from aws_sagemaker_remote.training import sagemaker_training_args

    parser = sagemaker_training_args(argparse.ArgumentParser(), inputs={"train": "data"}, spot=True,
                                     model_dir="my/model")
    ns = parser.parse_args(["--sagemaker-spot=no", "--checkpoint-dir", "ck"])
    assert (ns.train, ns.model_dir, ns.output_dir, ns.checkpoint_dir) == ("data", "my/model", "output/data", "ck")
    assert ns.sagemaker_spot is False


def test_docs_parsers_build() -> None:
    from aws_sagemaker_remote.processing.args import sagemaker_processing_parser_for_docs
    from aws_sagemaker_remote.training.args import sagemaker_training_parser_for_docs

    processing = sagemaker_processing_parser_for_docs().format_help()
    training = sagemaker_training_parser_for_docs().format_help()
    for flag in ("--input", "--output", "--my_module", "--sagemaker-run"):
        assert flag in processing and flag in training
    assert "--output-s3" in processing
    # training outputs travel inside output.tar.gz: no S3 location of their own
    assert "--output-s3" not in training
    assert "--sagemaker-spot" in training and "--model-dir" in training


def test_seed_example_script_runs_unchanged(tmp_path: Path, run_script) -> None:
    """The example of the first project's documentation, written against the old module path."""
    script = tmp_path / "processor.py"
    script.write_text(
        "from aws_sagemaker_remote.processing.main import sagemaker_processing_main\n"
        "\n"
        "def main(args):\n"
        "    print('filter', args.filter_width, args.filter_height, args.output)\n"
        "\n"
        "if __name__ == '__main__':\n"
        "    sagemaker_processing_main(\n"
        "        main=main,\n"
        "        outputs={'output': ('output', 'default')},\n"
        "        additional_arguments=[\n"
        "            {'dest': '--filter-width', 'default': 32, 'help': 'Filter width'},\n"
        "            {'dest': '--filter-height', 'default': 32, 'help': 'Filter height'},\n"
        "        ],\n"
        "        run=False,\n"
        "        wait=True,\n"
        "    )\n"
    )
    done = run_script(script, "--filter-height", "16", "--sagemaker-run=False", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "filter 32 16 output"
    assert (tmp_path / "output").is_dir()


# --- the console script ----------------------------------------------------------------------

def test_cli_version(run_python) -> None:
    done = run_python("-m", "aws_sagemaker_remote.cli", "--version")
    assert done.returncode == 0, done.stderr
    assert aws_sagemaker_remote.__version__ in done.stdout


def test_cli_help(run_python) -> None:
    done = run_python("-m", "aws_sagemaker_remote.cli", "--help")
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_console_script_is_installed() -> None:
    """``pip install`` puts ``aws-sagemaker-remote`` next to the interpreter."""
    bindir = os.path.dirname(sys.executable)
    found = shutil.which("aws-sagemaker-remote", path=bindir)
    assert found, f"aws-sagemaker-remote is not installed in {bindir}"
    done = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert aws_sagemaker_remote.__version__ in done.stdout
