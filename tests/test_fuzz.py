"""Property-based tests: random argument lists survive the job's re-invocation; random declarations
either build a parser that reads back what it is given, or are refused with a DeclarationError.

The argument lists go through the real functions: the script's parser, :func:`plan_job` (which
builds the job's argument list), the transport the job uses (``ContainerArguments`` as they
are, or the staged argument file read back by the bootstrap), then the same parser again, as
the script parses its arguments inside the job.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import io
import json
import os
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from aws_sagemaker_remote.api import prepare
from aws_sagemaker_remote.args import IN_JOB, PathArgument
from aws_sagemaker_remote.bootstrap import read_arguments
from aws_sagemaker_remote.container import ARGUMENT_FILE_FLAG, DEFAULT as PATHS, needs_argument_file
from aws_sagemaker_remote.errors import DeclarationError, UsageError
from aws_sagemaker_remote.flags import build_parser, declare
from aws_sagemaker_remote.options import OPTIONS_BY_KIND
from aws_sagemaker_remote.plan import plan_job
from aws_sagemaker_remote.reinvoke import user_arguments

NOW = dt.datetime(2026, 12, 2, 6, 0, 0, tzinfo=dt.timezone.utc)
SETTINGS = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.function_scoped_fixture])

#: anything an argv element can hold: unicode, empty, '=', '-', line breaks; not NUL (no OS can pass it)
TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12) | \
    st.sampled_from(["", "=", "-", "--", "-x", "--text", "--sagemaker-run=yes", "a=b", "line\nbreak", "\r\n",
                     " ", "ünïcødé ✓", "s3://bucket/key", "'\"", "$HOME", "-1", "x" * 300])


def _project(root: Path) -> Tuple[Any, Any, Any, Path]:
    script = root / "job.py"
    script.write_text("print('hi')\n")
    data = root / "data"
    data.mkdir(exist_ok=True)
    (data / "a.txt").write_text("a")
    decl, opts, parser = prepare(
        "processing", None, inputs={"data": str(data)}, outputs={"out": str(root / "out")}, dependencies=None,
        additional_arguments=[{"dest": "--text", "default": None}, {"dest": "--n", "type": int, "default": 0},
                              {"dest": "--flag", "action": "store_true"},
                              {"dest": "--many", "nargs": "*", "default": []},
                              {"dest": "rest", "nargs": "*"}],
        argparse_callback=None, description=None, script=str(script), training={}, options={})
    return decl, opts, parser, data


def _quiet_parse(parser: argparse.ArgumentParser, argv: List[str]) -> Optional[argparse.Namespace]:
    """The namespace, or None when argparse refuses the list (as it would on the command line)."""
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            return parser.parse_args(argv)
        except SystemExit:
            return None


@st.composite
def argument_lists(draw: Any) -> List[str]:
    argv: List[str] = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["text", "text=", "n", "flag", "many", "run", "sm", "out"]))
        value = draw(TEXT)
        if kind == "text":
            argv += ["--text", value]
        elif kind == "text=":
            argv.append("--text=" + value)
        elif kind == "n":
            argv += ["--n", str(draw(st.integers(-5, 10 ** 6)))]
        elif kind == "flag":
            argv.append("--flag")
        elif kind == "many":
            argv += ["--many"] + draw(st.lists(TEXT, max_size=3))
        elif kind == "run":
            argv.append("--sagemaker-run=" + draw(st.sampled_from(["yes", "local", "true", "1"])))
        elif kind == "sm":
            argv += draw(st.sampled_from([["--sagemaker-instance-count", "2"], ["--sagemaker-wait=no"],
                                          ["--sagemaker-env", "A=" + value.replace("\n", " ")[:50]],
                                          ["--out-s3", "default"]]))
        else:
            argv += ["--out", "folder-" + str(draw(st.integers(0, 3)))]
    if draw(st.booleans()):
        argv.append("--")
    argv += draw(st.lists(TEXT, max_size=4))
    return argv


def _through_the_container(arguments: Tuple[str, ...], folder: Path) -> List[str]:
    """What the script's ``sys.argv[1:]`` is inside the job."""
    if needs_argument_file(list(arguments)):
        path = folder / "arguments.json"
        path.write_text(json.dumps(list(arguments)), encoding="utf-8")
        return read_arguments([f"{ARGUMENT_FILE_FLAG}={path}"])
    # ContainerArguments: a JSON list of strings in the request, each one valid for the API
    shape = _container_arguments_shape()
    element = re.compile(shape.member.metadata["pattern"])
    assert len(arguments) + 2 <= shape.metadata["max"]  # the bundle path and unpack folder come first
    for argument in arguments:
        assert len(argument) <= shape.member.metadata["max"] and element.fullmatch(argument), argument
    return list(json.loads(json.dumps(list(arguments))))


@functools.lru_cache(maxsize=1)
def _container_arguments_shape() -> Any:
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return model.shape_for("AppSpecification").members["ContainerArguments"]


USER_DESTS = ("text", "n", "flag", "many", "rest")


def test_random_argument_lists_reach_the_script_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    decl, opts, parser, _data = _project(tmp_path)
    seen = {"planned": 0}

    @SETTINGS
    @given(argv=argument_lists())
    def check(argv: List[str]) -> None:
        here = _quiet_parse(parser, argv)
        assume(here is not None)
        assert here is not None
        options = type(opts).from_namespace(here)
        try:
            spec = plan_job(decl, here, options, user_arguments(list(argv), decl, options), now=NOW, token="ab12")
        except UsageError:
            assume(False)
            return
        seen["planned"] += 1
        job_argv = _through_the_container(spec.arguments, tmp_path)
        job_parser = build_parser(decl, OPTIONS_BY_KIND["processing"].from_keywords({}))
        there = _quiet_parse(job_parser, job_argv)
        assert there is not None, (argv, job_argv)
        for dest in USER_DESTS:
            assert getattr(there, dest) == getattr(here, dest), (dest, argv, job_argv)
        assert there.data == PATHS.processing_input("data")
        assert there.out == PATHS.processing_output("out")
        assert type(opts).from_namespace(there).run == IN_JOB  # the job never launches itself

    check()
    assert seen["planned"] >= 30  # the property was tested on real plans, not only filtered away


NAMES = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=0, max_size=8) | \
    st.sampled_from(["input", "train-data", "a=b", "1x", "-x", "données", "code", "out", "sagemaker-run", "model_dir",
                     "data", "x y", "help", "h"])
DECL_VALUES = st.one_of(
    st.sampled_from(["data", "s3://bucket/x", "/abs/path", "", "rel/ünï"]),
    st.none(),
    st.builds(PathArgument, st.sampled_from([None, "data", "s3://bucket/x"]),
              mode=st.sampled_from([None, "File", "Pipe"]),
              distribution=st.sampled_from(["FullyReplicated", "ShardedByS3Key"])),
)


@SETTINGS
@given(kind=st.sampled_from(["processing", "training"]),
       inputs=st.dictionaries(NAMES, DECL_VALUES, max_size=3),
       outputs=st.dictionaries(NAMES, st.sampled_from(["out", "/tmp/o", None]), max_size=2),
       value=TEXT.filter(lambda v: not v.startswith("-")))
def test_random_declarations_build_a_parser_or_are_refused(kind: str, inputs: Dict[str, Any],
                                                           outputs: Dict[str, Any], value: str) -> None:
    try:
        decl = declare(kind, "/tmp/job.py", inputs=inputs, outputs=outputs)
        parser = build_parser(decl, OPTIONS_BY_KIND[kind].from_keywords({}))
    except DeclarationError as exc:
        assert "\n" not in str(exc).strip() or "\n" in repr(inputs) + repr(outputs)
        return
    for d in decl.inputs + decl.outputs:
        for argv in ([d.flag, value], [f"{d.flag}={value}"]):
            namespace = _quiet_parse(parser, argv)
            assert namespace is not None, argv
            assert getattr(namespace, d.dest) == value
    # every accepted name is an identifier, so it travels as --NAME=VALUE and reads back as args.NAME
    for d in decl.inputs + decl.outputs:
        assert d.dest.isidentifier() and "=" not in d.name


def test_a_line_break_in_a_value_travels_in_the_argument_file(tmp_path: Path) -> None:
    # the API's pattern for one ContainerArguments element does not allow line breaks
    assert needs_argument_file(["--text=a\nb"])
    assert _through_the_container(("--text=a\nb",), tmp_path) == ["--text=a\nb"]
    assert os.path.exists(tmp_path / "arguments.json")
