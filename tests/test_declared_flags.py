"""Scripts written for SageMaker declare ``--model-dir``, ``--output-data-dir``, ``--train`` ... themselves.

The framework adopts such a declaration instead of refusing it as a collision:
locally the flag holds what was typed (else the script's default, else the
declared one), and in the job it holds the container path.
"""
from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path
from typing import Any, Dict, List

import pytest

from aws_sagemaker_remote import sagemaker_processing_main, sagemaker_training_main
from aws_sagemaker_remote.training.args import sagemaker_training_args


def echo(args: argparse.Namespace) -> argparse.Namespace:
    return args


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rows.csv").write_text("a\n1\n")
    return tmp_path


def sm_arguments() -> List[Dict[str, Any]]:
    """The standard script-mode lines, read when the declaration is made (as a script does)."""
    import os

    return [
        {"dest": "--model-dir", "default": os.environ.get("SM_MODEL_DIR")},
        {"dest": "--train", "default": os.environ.get("SM_CHANNEL_TRAIN")},
        {"dest": "--epochs", "type": int, "default": 1},
    ]


def test_declared_model_dir_takes_the_local_default_outside_a_job(tmp_path: Path) -> None:
    ns = sagemaker_training_main(main=echo, argv=[], inputs={"train": "data"}, additional_arguments=sm_arguments())
    # SM_MODEL_DIR is not set here: the script's default is None, so the declared local default stands
    assert ns.model_dir == "output/model" and (tmp_path / "output" / "model").is_dir()
    assert ns.train == "data"


def test_declared_model_dir_keeps_the_value_typed_and_the_scripts_default(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path) -> None:
    ns = sagemaker_training_main(main=echo, argv=["--model-dir", "m", "--train", "data"],
                                 inputs={"train": "data"}, additional_arguments=sm_arguments())
    assert (ns.model_dir, ns.train) == ("m", "data") and (tmp_path / "m").is_dir()
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "from-env"))
    ns = sagemaker_training_main(main=echo, argv=[], inputs={"train": "data"}, additional_arguments=sm_arguments())
    assert ns.model_dir == str(tmp_path / "from-env") and (tmp_path / "from-env").is_dir()


def test_output_data_dir_from_a_callback_is_the_output_folder(tmp_path: Path) -> None:
    def callback(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--output-data-dir", default=None)
        parser.add_argument("--output-dir", default="/opt/ml/output")  # SM_OUTPUT_DIR: the script's own flag

    ns = sagemaker_training_main(main=echo, argv=[], argparse_callback=callback)
    assert ns.output_data_dir == "output/data" and (tmp_path / "output" / "data").is_dir()
    assert ns.output_dir == "/opt/ml/output"


def test_a_users_own_parser_keeps_its_model_dir() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", default="mine")
    ns = sagemaker_training_args(parser).parse_args([])
    assert ns.model_dir == "mine"


def test_a_declared_path_flag_must_take_one_value(capsys: pytest.CaptureFixture[str], one_error_line: Any) -> None:
    with pytest.raises(SystemExit) as exc:
        sagemaker_training_main(main=echo, argv=[], inputs={"train": "data"},
                                additional_arguments=[{"dest": "--train", "nargs": "+"}])
    assert exc.value.code == 2
    one_error_line(capsys.readouterr().err, "--train", "one value")


def test_a_processing_input_flag_declared_by_the_script(tmp_path: Path) -> None:
    # the script's own attribute name is kept: args.input_path, not args.input
    extra = [{"name_or_flags": ["--input"], "dest": "input_path", "default": None}]
    ns = sagemaker_processing_main(main=echo, argv=[], inputs={"input": "data"}, additional_arguments=extra)
    assert ns.input_path == "data" and not hasattr(ns, "input")
    ns = sagemaker_processing_main(main=echo, argv=["--input", "data/rows.csv"], inputs={"input": "data"},
                                   additional_arguments=extra)
    assert ns.input_path == "data/rows.csv"


SCRIPT = textwrap.dedent("""
    import json, os
    from aws_sagemaker_remote import sagemaker_training_main

    def callback(parser):
        parser.add_argument("--output-data-dir", default=os.environ.get("SM_OUTPUT_DATA_DIR"))

    def main(args):
        seen = {"model_dir": args.model_dir, "output_data_dir": args.output_data_dir, "train": args.train,
                "files": sorted(os.listdir(args.train)), "epochs": args.epochs}
        print("SEEN=" + json.dumps(seen))
        with open(os.path.join(args.model_dir, "model.json"), "w") as fh:
            json.dump(seen, fh)

    if __name__ == "__main__":
        sagemaker_training_main(
            main=main, inputs={"train": "data"},
            additional_arguments=[{"dest": "--model-dir", "default": os.environ.get("SM_MODEL_DIR")},
                                  {"dest": "--train", "default": os.environ.get("SM_CHANNEL_TRAIN")},
                                  {"dest": "--epochs", "type": int, "default": 1}],
            argparse_callback=callback)
""")


def seen(stdout: str) -> Dict[str, Any]:
    lines = [line.split("SEEN=", 1)[1] for line in stdout.splitlines() if "SEEN=" in line]
    assert len(lines) == 1, stdout
    return dict(json.loads(lines[0]))


def test_script_mode_declarations_plain_run_and_local_job(run_script: Any, tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    here = run_script(script, "--epochs", "2", "--model-dir", "here-model", cwd=tmp_path)
    assert here.returncode == 0, here.stderr
    assert seen(here.stdout) == {"model_dir": "here-model", "output_data_dir": "output/data", "train": "data",
                                 "files": ["rows.csv"], "epochs": 2}

    job = run_script(script, "--sagemaker-run=local", "--epochs", "3", "--model-dir", "ignored-in-job",
                     "--sagemaker-download-model", tmp_path / "model", cwd=tmp_path)
    assert job.returncode == 0, job.stderr
    inside = seen(job.stdout)
    # namespace mode shows /opt/ml itself; the fallback shows the instance's folder in its place
    assert inside["model_dir"].endswith("/opt/ml/model")
    assert inside["output_data_dir"].endswith("/opt/ml/output/data")
    assert inside["train"].endswith("/opt/ml/input/data/train")
    assert (inside["files"], inside["epochs"]) == (["rows.csv"], 3)
    assert json.loads((tmp_path / "model" / "model.json").read_text())["epochs"] == 3
    assert not (tmp_path / "ignored-in-job").exists()


def test_script_mode_declarations_in_the_dry_run(run_script: Any, tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    run = run_script(script, "--sagemaker-run=local", "--sagemaker-dry-run", "--model-dir", "mine",
                     "--output-data-dir=od", "--epochs", "4", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    request = json.loads(run.stdout)["request"]
    argv = request["AlgorithmSpecification"]["ContainerArguments"][2:]
    assert argv == ["--sagemaker-run=job", "--train=/opt/ml/input/data/train", "--model-dir=/opt/ml/model",
                    "--output-data-dir=/opt/ml/output/data", "--checkpoint-dir=/opt/ml/checkpoints",
                    "--epochs", "4"]
    assert request["HyperParameters"]["model_dir"] == "/opt/ml/model"
    assert [c["ChannelName"] for c in request["InputDataConfig"]] == ["code", "train"]
