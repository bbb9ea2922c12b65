"""Planning: exact re-invocation, job names and limits, all before any network call."""
from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any, Dict, List, Sequence

import pytest

from aws_sagemaker_remote.api import prepare
from aws_sagemaker_remote.args import OPTIONAL, PathArgument
from aws_sagemaker_remote.errors import UsageError
from aws_sagemaker_remote.plan import (
    JOB_NAME_RE,
    make_job_name,
    plan_job,
    sanitize_base_name,
)
from aws_sagemaker_remote.reinvoke import Arity, strip_flags, user_arguments
from aws_sagemaker_remote.spec import JobSpec

NOW = dt.datetime(2026, 11, 21, 12, 34, 56, tzinfo=dt.timezone.utc)


def _callback(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from-callback", default="cb")
    parser.add_argument("--verbose", "-v", action="count", default=0)


def _setup(tmp_path: Path, kind: str = "processing", **options: Any):
    script = tmp_path / "job.py"
    script.write_text("print('hi')\n")
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "a.txt").write_text("a")
    single = tmp_path / "one.csv"
    single.write_text("x,y\n")
    training: Dict[str, Any] = {}
    return prepare(
        kind,
        None,
        inputs={"input": str(data), "table": str(single), "extra": OPTIONAL},
        outputs={"output": str(tmp_path / "out")},
        dependencies=None,
        additional_arguments=[
            {"dest": "--flag", "action": "store_true"},
            {"dest": "--items", "nargs": "+", "default": []},
            {"dest": "--text", "default": ""},
            {"dest": "--width", "type": int, "default": 32},
        ],
        argparse_callback=_callback,
        description=None,
        script=str(script),
        training=training,
        options=options,
    )


def _plan(tmp_path: Path, argv: Sequence[str], kind: str = "processing", **options: Any) -> JobSpec:
    decl, opts, parser = _setup(tmp_path, kind, **options)
    ns = parser.parse_args(list(argv))
    opts = type(opts).from_namespace(ns)
    return plan_job(decl, ns, opts, user_arguments(list(argv), decl, opts), now=NOW, token="ab12")


TRICKY = [
    "--flag",
    "--items", "a,b", "c d", "'quoted'", '"dq"', "ünïcødé ✓",
    "--text=",
    "--width", "7",
    "--from-callback", "x=y, z",
    "-vv",
    "--sagemaker-env", "A=1",
    "--sagemaker-wait=no",
    "--sagemaker-dry-run",
    "--input", "IGNORED",  # replaced below by a real path
]


def test_remote_arguments_reparse_to_the_same_namespace(tmp_path: Path) -> None:
    argv = list(TRICKY)
    argv[argv.index("IGNORED")] = str(tmp_path / "data")
    spec = _plan(tmp_path, argv)
    _decl, _opts, parser = _setup(tmp_path)
    local = vars(parser.parse_args(argv))
    remote = vars(parser.parse_args(list(spec.arguments)))
    # the job must not launch itself again
    assert remote["sagemaker_run"] == "job"
    # path flags point into the container
    assert remote["input"] == "/opt/ml/processing/input/input"
    assert remote["table"] == "/opt/ml/processing/input/table/one.csv"
    assert remote["output"] == "/opt/ml/processing/output/output"
    assert remote["extra"] is None
    # every user value arrives exactly as typed
    for key in ("flag", "items", "text", "width", "from_callback", "verbose"):
        assert remote[key] == local[key], key
    assert local["items"] == ["a,b", "c d", "'quoted'", '"dq"', "ünïcødé ✓"]
    assert local["text"] == ""
    # launcher-only flags are not passed on
    assert not any(a.startswith("--sagemaker-") and a != "--sagemaker-run=job" for a in spec.arguments)


def test_user_tokens_keep_their_order_and_spelling(tmp_path: Path) -> None:
    argv = ["--width", "3", "--sagemaker-run", "local", "--items", "x", "--", "--not-a-flag"]
    decl, opts, parser = _setup(tmp_path)
    parser.add_argument("rest", nargs="*")
    spec = plan_job(decl, parser.parse_args(argv), opts, user_arguments(argv, decl, opts), now=NOW, token="ab12")
    user = [a for a in spec.arguments if not a.startswith(("--sagemaker-run=", "--input=", "--table=", "--output=", "--output-s3="))]
    assert user == ["--width", "3", "--items", "x", "--", "--not-a-flag"]


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["--sagemaker-wait", "no", "x"], ["x"]),
        (["--sagemaker-wait", "--other"], ["--other"]),
        (["--sagemaker-image", "img", "--sagemaker-image=img2"], []),
        (["--keep", "--sagemaker-image", "--x"], ["--keep"]),
        (["a", "--", "--sagemaker-image", "v"], ["a", "--", "--sagemaker-image", "v"]),
    ],
)
def test_strip_flags(argv: List[str], expected: List[str]) -> None:
    arity: Dict[str, Arity] = {"--sagemaker-wait": "?", "--sagemaker-image": 1}
    assert strip_flags(argv, arity) == expected


def test_generated_job_name_is_valid_and_sanitized() -> None:
    name = make_job_name("my_script v2.final!!", NOW, "beef")
    assert name == "my-script-v2-final-20261121-123456-beef"
    assert JOB_NAME_RE.match(name)
    long = make_job_name("x" * 200, NOW, "beef")
    assert len(long) <= 63 and JOB_NAME_RE.match(long)
    assert sanitize_base_name("___") == "job"


def test_job_name_from_script_and_base_name(tmp_path: Path) -> None:
    assert _plan(tmp_path, []).job_name == "job-20261121-123456-ab12"
    assert _plan(tmp_path, ["--sagemaker-base-job-name", "clean data"]).job_name.startswith("clean-data-2026")
    assert _plan(tmp_path, ["--sagemaker-job-name", "exact-name-1"]).job_name == "exact-name-1"


def _usage_error(tmp_path: Path, argv: Sequence[str], kind: str = "processing", **options: Any) -> UsageError:
    with pytest.raises(UsageError) as info:
        _plan(tmp_path, argv, kind, **options)
    assert info.value.exit_code == 2
    return info.value


@pytest.mark.parametrize(
    "argv,flag",
    [
        (["--sagemaker-job-name", "bad_name"], "--sagemaker-job-name"),
        (["--sagemaker-job-name=-lead"], "--sagemaker-job-name"),
        (["--sagemaker-max-run", "0"], "--sagemaker-max-run"),
        (["--sagemaker-max-run", "777601"], "--sagemaker-max-run"),
        (["--sagemaker-volume-size", "0"], "--sagemaker-volume-size"),
        (["--sagemaker-volume-size", "16385"], "--sagemaker-volume-size"),
        (["--sagemaker-instance-count", "0"], "--sagemaker-instance-count"),
        (["--sagemaker-instance", "m5.large"], "--sagemaker-instance"),
        (["--sagemaker-env", "1BAD=x"], "--sagemaker-env"),
        (["--sagemaker-env", "K=" + "v" * 257], "--sagemaker-env"),
        (["--sagemaker-tags", "aws:reserved=x"], "--sagemaker-tags"),
        (["--sagemaker-tags", "k=bad#value"], "--sagemaker-tags"),
        (["--sagemaker-subnets", "subnet-1"], "--sagemaker-security-groups"),
        (["--sagemaker-role", "not a role"], "--sagemaker-role"),
        (["--sagemaker-bucket", "Bad_Bucket"], "--sagemaker-bucket"),
        (["--output-s3", "http://x"], "--output-s3"),
        (["--input", "/does/not/exist"], "--input"),
        (["--sagemaker-requirements", "/no/such/requirements.txt"], "--sagemaker-requirements"),
    ],
)
def test_limits_name_the_flag(tmp_path: Path, argv: List[str], flag: str) -> None:
    error = _usage_error(tmp_path, argv)
    assert error.flag == flag
    assert str(error).startswith(flag)


def test_too_many_env_entries_and_tags(tmp_path: Path) -> None:
    env = [f"K{i}=v" for i in range(101)]
    assert _usage_error(tmp_path, [], env=env).flag == "--sagemaker-env"
    tags = {f"k{i}": "v" for i in range(49)}  # 48 of the job's 50 are the user's: two are the launcher's
    assert _usage_error(tmp_path, [], tags=tags).flag == "--sagemaker-tags"


def test_too_many_inputs(tmp_path: Path) -> None:
    script = tmp_path / "s.py"
    script.write_text("")
    inputs = {f"in{i}": "s3://bucket/x" for i in range(10)}
    decl, opts, parser = prepare("processing", None, inputs, None, None, None, None, None, str(script), {}, {})
    with pytest.raises(UsageError) as info:
        plan_job(decl, parser.parse_args([]), opts, (), now=NOW, token="ab12")
    assert "at most 9" in str(info.value)


def test_training_limits(tmp_path: Path) -> None:
    assert _usage_error(tmp_path, ["--sagemaker-spot", "--sagemaker-max-wait", "10", "--sagemaker-max-run", "20"],
                        "training").flag == "--sagemaker-max-wait"
    assert _usage_error(tmp_path, ["--sagemaker-max-wait", "100"], "training").flag == "--sagemaker-max-wait"
    assert _usage_error(tmp_path, ["--sagemaker-metric", "loss=no group"], "training").flag == "--sagemaker-metric"
    assert _usage_error(tmp_path, ["--sagemaker-metric", "loss=([0-9"], "training").flag == "--sagemaker-metric"
    # training allows longer runs than processing: 28 days
    assert _plan(tmp_path, ["--sagemaker-max-run", "2419200"], "training").stopping.max_run == 2419200
    assert _usage_error(tmp_path, ["--sagemaker-max-run", "2419201"], "training").flag == "--sagemaker-max-run"


def test_training_paths_and_channels(tmp_path: Path) -> None:
    spec = _plan(tmp_path, ["--sagemaker-input-mode", "FastFile"], "training")
    by_name = {c.name: c for c in spec.inputs}
    assert by_name["input"].container_path == "/opt/ml/input/data/input"
    assert by_name["input"].mode == "FastFile"
    _decl, _opts, parser = _setup(tmp_path, "training")
    remote = vars(parser.parse_args(list(spec.arguments)))
    assert remote["model_dir"] == "/opt/ml/model"
    assert remote["output_dir"] == "/opt/ml/output/data"
    assert remote["checkpoint_dir"] == "/opt/ml/checkpoints"


def test_inputs_and_outputs_beside_the_script_are_not_bundled(tmp_path: Path) -> None:
    spec = _plan(tmp_path, [])
    assert str(tmp_path / "data") in spec.code.exclude_paths
    assert str(tmp_path / "out") in spec.code.exclude_paths


def test_s3_inputs_pass_through(tmp_path: Path) -> None:
    spec = _plan(tmp_path, ["--input", "s3://bucket/some/prefix/"])
    channel = {c.name: c for c in spec.inputs}["input"]
    assert channel.is_s3 and channel.source == "s3://bucket/some/prefix/"
    assert channel.container_value == "/opt/ml/processing/input/input"


def _prepare(tmp_path: Path, kind: str = "processing", inputs: Any = None, outputs: Any = None, **options: Any):
    script = tmp_path / "s.py"
    script.write_text("")
    return prepare(kind, None, inputs, outputs, None, None, None, None, str(script), {}, options)


def _plan_with(tmp_path: Path, argv: List[str], kind: str = "processing", inputs: Any = None,
               outputs: Any = None, **options: Any) -> JobSpec:
    decl, opts, parser = _prepare(tmp_path, kind, inputs, outputs, **options)
    ns = parser.parse_args(argv)
    opts = type(opts).from_namespace(ns)
    return plan_job(decl, ns, opts, user_arguments(argv, decl, opts), now=NOW, token="ab12")


def test_hyphenated_names_make_underscored_attributes(tmp_path: Path) -> None:
    decl, opts, parser = _prepare(tmp_path, inputs={"train-data": "s3://bkt/x/"}, outputs={"out-dir": "o"})
    ns = parser.parse_args(["--train-data", "s3://bkt/y/", "--out-dir-s3", "s3://bkt/out/"])
    assert ns.train_data == "s3://bkt/y/" and ns.out_dir_s3 == "s3://bkt/out/"
    spec = plan_job(decl, ns, opts, user_arguments([], decl, opts), now=NOW, token="ab12")
    assert {c.name: c.source for c in spec.inputs} == {"train-data": "s3://bkt/y/"}
    assert spec.outputs[0].location.uri == "s3://bkt/out/"


def test_code_is_a_reserved_input_name(tmp_path: Path) -> None:
    from aws_sagemaker_remote.errors import DeclarationError

    with pytest.raises(DeclarationError, match="reserved"):
        _prepare(tmp_path, inputs={"code": "s3://bkt/x/"})


def test_empty_input_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".env").write_text("SECRET=1")  # credentials are never staged, so still empty
    with pytest.raises(UsageError) as info:
        _plan_with(tmp_path, [], inputs={"data": str(tmp_path / "empty")})
    assert info.value.flag == "--data" and "no files" in str(info.value)


def test_gzip_needs_pipe_and_container_paths_are_checked(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="Pipe"):
        _plan_with(tmp_path, [], inputs={"z": PathArgument("s3://bkt/z/", compression="Gzip")})
    assert _plan_with(tmp_path, [], inputs={"z": PathArgument("s3://bkt/z/", compression="Gzip", mode="Pipe")})
    with pytest.raises(UsageError, match="under /opt/ml/processing/"):
        _plan_with(tmp_path, [], inputs={"a": PathArgument("s3://bkt/a/", container_path="/data/a")})
    with pytest.raises(UsageError, match="overlaps"):
        _plan_with(tmp_path, [], inputs={"a": PathArgument("s3://bkt/a/", container_path="/opt/ml/processing/x"),
                                         "b": PathArgument("s3://bkt/b/", container_path="/opt/ml/processing/x/y")})
    with pytest.raises(UsageError, match="overlaps"):
        _plan_with(tmp_path, [], inputs={"a": PathArgument("s3://bkt/a/", container_path="/opt/ml/processing/input/code")})


def test_explicit_file_mode_is_kept_under_a_pipe_default(tmp_path: Path) -> None:
    spec = _plan_with(tmp_path, ["--sagemaker-input-mode", "Pipe"], "training",
                      inputs={"a": PathArgument("s3://bkt/a/", mode="File"), "b": "s3://bkt/b/"})
    assert {c.name: c.mode for c in spec.inputs} == {"a": "File", "b": "Pipe"}


def test_output_json_folder_must_exist(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        _plan_with(tmp_path, ["--sagemaker-output-json", str(tmp_path / "missing" / "r.json")])
    assert info.value.flag == "--sagemaker-output-json"


@pytest.mark.parametrize("flag", ["--sagemaker-detach", "--sagemaker-wait=no"])
def test_a_local_job_may_be_left_running(tmp_path: Path, flag: str) -> None:
    # a local job that is not waited for runs detached (tests/test_detach.py)
    assert _plan_with(tmp_path, ["--sagemaker-run=local", flag]).kind.name == "processing"


def test_manifest_input_points_at_the_folder(tmp_path: Path) -> None:
    manifest = tmp_path / "files.manifest"
    manifest.write_text('[{"prefix": "s3://bkt/data/"}, "a.csv"]')
    spec = _plan_with(tmp_path, [], inputs={"m": PathArgument(str(manifest), s3_data_type="ManifestFile")})
    assert spec.inputs[0].container_value == "/opt/ml/processing/input/m"


def test_line_breaks_never_reach_fields_that_refuse_them(tmp_path: Path) -> None:
    from aws_sagemaker_remote.container import needs_argument_file

    assert needs_argument_file(["--text", "two\nlines"])
    assert not needs_argument_file(["--text", "one line"])
    with pytest.raises(UsageError):
        _plan_with(tmp_path, ["--sagemaker-tags", "k=two\nlines"])
