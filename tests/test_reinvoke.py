"""The job's command line: generated flags are known, with their arity, from the declaration alone."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aws_sagemaker_remote.api import prepare
from aws_sagemaker_remote.reinvoke import generated_arity, job_arguments, user_arguments


@pytest.mark.parametrize("kind", ["processing", "training"])
def test_the_recorded_arity_is_what_the_parser_does(tmp_path: Path, kind: str) -> None:
    """Each generated flag takes an optional value ("?") or exactly one (1), as the parser really parses it."""
    script = tmp_path / "s.py"
    script.write_text("")
    decl, opts, parser = prepare(kind, None, {"data": "s3://b/d/"}, {"out": "out"}, {"dep": str(script)},
                                 None, None, None, str(script), {}, {})
    arity = generated_arity(decl, opts)
    assert {"--data", "--out", "--dep", "--sagemaker-run", "--sagemaker-wait", "--sagemaker-env"} <= set(arity)
    assert ("--out-s3" in arity) == (kind == "processing")
    assert ("--model-dir" in arity) == (kind == "training")
    for flag, takes in arity.items():
        if takes == "?":
            parser.parse_args([flag])  # a bare flag is accepted
        else:
            assert takes == 1
            with pytest.raises(SystemExit):
                parser.parse_args([flag])  # a value is required


def test_user_arguments_keep_only_the_users_tokens(tmp_path: Path, capsys: Any) -> None:
    script = tmp_path / "s.py"
    script.write_text("")
    decl, opts, _ = prepare("processing", None, {"data": "s3://b/d/"}, None, None,
                            [{"dest": "--width", "type": int}], None, None, str(script), {}, {})
    argv = ["--data", "s3://b/other/", "--width", "3", "--sagemaker-wait", "no", "--sagemaker-spot-like",
            "--sagemaker-dry-run", "x", "--", "--data"]
    # a bare yes/no flag takes the next token only when it is not a flag: "x" is its value here
    assert user_arguments(argv, decl, opts) == ("--width", "3", "--sagemaker-spot-like", "--", "--data")
    assert job_arguments("job", ("--width", "3"), [("--data", "/opt/ml/processing/input/data")]) == (
        "--sagemaker-run=job", "--data=/opt/ml/processing/input/data", "--width", "3")


def test_a_removed_flag_still_ends_the_values_of_the_option_before_it(tmp_path: Path) -> None:
    """``--many a --sagemaker-wait=no b``: ``b`` is a positional here, and stays one in the job."""
    script = tmp_path / "s.py"
    script.write_text("")
    decl, opts, parser = prepare("processing", None, None, None, None,
                                 [{"dest": "--many", "nargs": "*"}, {"dest": "rest", "nargs": "*"}],
                                 None, None, str(script), {}, {})
    argv = ["--many", "a", "--sagemaker-wait=no", "b"]
    here = parser.parse_args(argv)
    assert (here.many, here.rest) == (["a"], ["b"])
    user = user_arguments(argv, decl, opts)
    assert user == ("--many", "a", "--sagemaker-run=job", "b")
    there = parser.parse_args(list(job_arguments("job", user, ())))
    assert (there.many, there.rest, there.sagemaker_run) == (["a"], ["b"], "job")
