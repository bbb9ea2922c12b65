"""The command line a script gets from its declaration: generated flags, defaults, overrides, errors.

Most tests call the real entry functions in-process with ``argv=`` and a
``main`` that returns its namespace (the entry function returns what ``main``
returns). Where the remote path would start (``--sagemaker-run=yes``), the
compatibility function ``sagemaker_*_args`` builds the same flags on a plain
parser, so the parsed values can be checked without launching anything.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import textwrap
from pathlib import Path
from typing import Any, List

import pytest
from conftest import process_state_kept

from aws_sagemaker_remote import OPTIONAL, PathArgument, sagemaker_processing_main, sagemaker_training_main
from aws_sagemaker_remote.errors import DeclarationError
from aws_sagemaker_remote.options import ProcessingOptions, TrainingOptions
from aws_sagemaker_remote.processing.args import sagemaker_processing_args
from aws_sagemaker_remote.training.args import sagemaker_training_args


def echo(args: argparse.Namespace) -> argparse.Namespace:
    return args


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Relative output folders of local runs land in the test's own folder."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.txt").write_text("a\n")
    return folder


def processing(argv: List[str], **declaration: Any) -> argparse.Namespace:
    return sagemaker_processing_main(main=echo, argv=argv, **declaration)


def training(argv: List[str], **declaration: Any) -> argparse.Namespace:
    return sagemaker_training_main(main=echo, argv=argv, **declaration)


def processing_flags(argv: List[str], **declaration: Any) -> argparse.Namespace:
    parser = sagemaker_processing_args(argparse.ArgumentParser(prog="script.py"), **declaration)
    return parser.parse_args(argv)


def training_flags(argv: List[str], **declaration: Any) -> argparse.Namespace:
    parser = sagemaker_training_args(argparse.ArgumentParser(prog="script.py"), **declaration)
    return parser.parse_args(argv)


def flat(text: str) -> str:
    """Help text with argparse's line wrapping undone."""
    return " ".join(text.split())


# --- inputs, outputs, dependencies ---------------------------------------------------------

def test_input_flag_defaults_to_the_declared_path_and_can_be_overridden(data: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    assert processing([], inputs={"input": str(data)}).input == str(data)
    assert processing(["--input", str(other)], inputs={"input": str(data)}).input == str(other)
    assert processing([f"--input={other}"], inputs={"input": str(data)}).input == str(other)


def test_input_may_default_to_an_s3_uri() -> None:
    ns = processing_flags([], inputs={"raw": "s3://bucket/raw/"})
    assert ns.raw == "s3://bucket/raw/"


def test_output_makes_a_folder_flag_and_an_s3_flag(tmp_path: Path) -> None:
    ns = processing([], outputs={"output": "out/clean"})
    assert ns.output == "out/clean"
    assert ns.output_s3 == "default"
    ns = processing(["--output", "elsewhere"], outputs={"output": "out/clean"})
    assert ns.output == "elsewhere"
    assert (tmp_path / "elsewhere").is_dir()


def test_output_tuple_sets_the_default_destination() -> None:
    ns = processing_flags([], outputs={"model": ("out/model", "s3://bucket/models/")})
    assert (ns.model, ns.model_s3) == ("out/model", "s3://bucket/models/")
    ns = processing_flags(["--model-s3", "s3://bucket/other/"], outputs={"model": ("out/model", "default")})
    assert ns.model_s3 == "s3://bucket/other/"


def test_dependency_folder_makes_a_flag(tmp_path: Path) -> None:
    lib = tmp_path / "mylib"
    lib.mkdir()
    (lib / "__init__.py").write_text("")
    with process_state_kept():
        assert processing([], dependencies={"mylib": str(lib)}).mylib == str(lib)


def test_modules_is_another_name_for_dependencies(tmp_path: Path) -> None:
    lib = tmp_path / "oldlib"
    lib.mkdir()
    with process_state_kept():
        ns = processing([], modules={"oldlib": str(lib)})
        assert ns.oldlib == str(lib)
        ns = processing([], modules={"oldlib": str(lib)}, dependencies={"newlib": str(lib)})
        assert (ns.oldlib, ns.newlib) == (str(lib), str(lib))


def test_dependency_given_as_an_imported_package_or_single_file_module(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "site" / "demo_pkg_for_flags"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("VALUE = 1\n")
    (tmp_path / "site" / "demo_single_for_flags.py").write_text("VALUE = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    package = importlib.import_module("demo_pkg_for_flags")
    single = importlib.import_module("demo_single_for_flags")
    try:
        ns = processing([], dependencies={"pkg": package, "single": single})
    finally:
        sys.modules.pop("demo_pkg_for_flags", None)
        sys.modules.pop("demo_single_for_flags", None)
    assert Path(ns.pkg) == pkg
    assert Path(ns.single) == tmp_path / "site" / "demo_single_for_flags.py"


def test_dependency_given_as_a_single_py_file(tmp_path: Path) -> None:
    helper = tmp_path / "helper.py"
    helper.write_text("X = 1\n")
    with process_state_kept():
        assert processing([], dependencies={"helper": str(helper)}).helper == str(helper)


def test_optional_input_is_none_when_absent_and_the_path_when_given(data: Path) -> None:
    assert processing([], inputs={"extra": OPTIONAL}).extra is None
    assert processing(["--extra", str(data)], inputs={"extra": OPTIONAL}).extra == str(data)


def test_path_argument_sets_default_and_help(data: Path) -> None:
    inputs = {"train": PathArgument(str(data), help="Training images")}
    assert processing([], inputs=inputs).train == str(data)
    parser = sagemaker_processing_args(argparse.ArgumentParser(prog="script.py"), inputs=inputs)
    assert "Training images" in flat(parser.format_help())


def test_path_argument_without_a_default_is_optional() -> None:
    assert processing([], inputs={"extra": PathArgument()}).extra is None


def test_path_argument_rejects_unknown_settings() -> None:
    with pytest.raises(ValueError, match="distribution"):
        PathArgument("data", distribution="RoundRobin")


# --- additional arguments and argparse_callback --------------------------------------------

SEED_ADDITIONAL_ARGUMENTS = [
    {"dest": "--filter-width", "default": 32, "help": "Filter width"},
    {"dest": "--filter-height", "default": 32, "help": "Filter height"},
]


def test_additional_arguments_in_the_documented_form() -> None:
    ns = processing([], additional_arguments=SEED_ADDITIONAL_ARGUMENTS)
    assert (ns.filter_width, ns.filter_height) == (32, 32)
    # No ``type`` in the declaration: argparse hands over the string, as it always did.
    ns = processing(["--filter-width", "64"], additional_arguments=SEED_ADDITIONAL_ARGUMENTS)
    assert (ns.filter_width, ns.filter_height) == ("64", 32)


def test_additional_arguments_with_type_and_action() -> None:
    extra = [{"dest": "--epochs", "type": int, "default": 3},
             {"dest": "--verbose", "action": "store_true"}]
    ns = processing(["--epochs", "5", "--verbose"], additional_arguments=extra)
    assert (ns.epochs, ns.verbose) == (5, True)


def test_argparse_callback_adds_flags() -> None:
    seen: List[argparse.ArgumentParser] = []

    def callback(parser: argparse.ArgumentParser) -> None:
        seen.append(parser)
        parser.add_argument("--filter-width", default=32, type=int, help="Filter width")

    ns = processing(["--filter-width", "8"], argparse_callback=callback)
    assert ns.filter_width == 8
    assert len(seen) == 1 and isinstance(seen[0], argparse.ArgumentParser)


# --- --sagemaker-* defaults from keywords, overridden on the command line ------------------

def test_keyword_run_is_overridden_by_the_command_line() -> None:
    # run="local" in the script, --sagemaker-run=no on the command line: main runs here.
    ns = processing(["--sagemaker-run=no"], run="local")
    assert ns.sagemaker_run == "no"
    assert processing_flags([], run="yes").sagemaker_run == "yes"
    assert processing_flags(["--sagemaker-run", "local"], run="yes").sagemaker_run == "local"


def test_seed_style_boolean_run_keyword() -> None:
    assert processing_flags([], run=True).sagemaker_run == "yes"
    assert processing_flags([], run=False).sagemaker_run == "no"


def test_wait_keyword_and_flag_spellings() -> None:
    assert processing([]).sagemaker_wait is True
    assert processing([], wait=False).sagemaker_wait is False
    assert processing(["--sagemaker-wait"], wait=False).sagemaker_wait is True
    assert processing(["--sagemaker-wait=no"]).sagemaker_wait is False
    assert processing(["--sagemaker-wait", "false"]).sagemaker_wait is False


def test_instance_and_instance_count() -> None:
    ns = processing([])
    assert (ns.sagemaker_instance, ns.sagemaker_instance_count) == (
        ProcessingOptions().instance, ProcessingOptions().instance_count)
    ns = processing([], instance="ml.c5.xlarge", instance_count=2)
    assert (ns.sagemaker_instance, ns.sagemaker_instance_count) == ("ml.c5.xlarge", 2)
    ns = processing(["--sagemaker-instance", "ml.m5.large", "--sagemaker-instance-count=3"],
                    instance="ml.c5.xlarge", instance_count=2)
    assert (ns.sagemaker_instance, ns.sagemaker_instance_count) == ("ml.m5.large", 3)


def test_instance_count_must_be_an_integer(capsys: pytest.CaptureFixture[str], one_error_line) -> None:
    with pytest.raises(SystemExit) as exc:
        processing(["--sagemaker-instance-count", "many"])
    assert exc.value.code == 2
    one_error_line(capsys.readouterr().err, "--sagemaker-instance-count", "many")


def test_env_flags_merge_with_the_env_keyword() -> None:
    with process_state_kept():
        ns = processing(["--sagemaker-env", "B=3", "--sagemaker-env=C=x=y"], env={"A": "1", "B": "2"})
        assert dict(ns.sagemaker_env) == {"A": "1", "B": "3", "C": "x=y"}
        assert dict(processing([], env={"A": "1"}).sagemaker_env) == {"A": "1"}
        assert processing([]).sagemaker_env == ()


def test_env_flag_needs_key_equals_value(capsys: pytest.CaptureFixture[str], one_error_line) -> None:
    with pytest.raises(SystemExit) as exc:
        processing(["--sagemaker-env", "NOVALUE"])
    assert exc.value.code == 2
    one_error_line(capsys.readouterr().err, "--sagemaker-env", "KEY=VALUE")


def test_tags_keyword_and_flags() -> None:
    ns = processing(["--sagemaker-tags", "team=vision"], tags={"project": "demo", "team": "nlp"})
    assert dict(ns.sagemaker_tags) == {"project": "demo", "team": "vision"}


def test_subnets_and_security_groups_are_comma_separated() -> None:
    ns = processing(["--sagemaker-subnets", "subnet-1, subnet-2", "--sagemaker-security-groups=sg-1"])
    assert ns.sagemaker_subnets == ("subnet-1", "subnet-2")
    assert ns.sagemaker_security_groups == ("sg-1",)
    assert processing([], subnets=["subnet-9"]).sagemaker_subnets == ("subnet-9",)
    assert processing([], subnets="subnet-7,subnet-8").sagemaker_subnets == ("subnet-7", "subnet-8")


def test_spot_is_a_bare_or_valued_flag_for_training() -> None:
    assert training([]).sagemaker_spot is False
    assert training(["--sagemaker-spot"]).sagemaker_spot is True
    assert training(["--sagemaker-spot=no"], spot=True).sagemaker_spot is False
    assert training(["--sagemaker-spot", "yes"]).sagemaker_spot is True
    assert training([], spot=True).sagemaker_spot is True


def test_spot_does_not_exist_for_processing(capsys: pytest.CaptureFixture[str], one_error_line) -> None:
    with pytest.raises(SystemExit) as exc:
        processing(["--sagemaker-spot"])
    assert exc.value.code == 2
    one_error_line(capsys.readouterr().err, "--sagemaker-spot")


def test_volume_size_default_differs_by_job_kind() -> None:
    assert processing([]).sagemaker_volume_size == 30
    assert training([]).sagemaker_volume_size == 1
    assert processing(["--sagemaker-volume-size", "100"]).sagemaker_volume_size == 100


# --- --sagemaker-run spellings -------------------------------------------------------------

@pytest.mark.parametrize("spelling", ["yes", "true", "1", "True", "YES", "y"])
def test_truthy_run_spellings_mean_yes(spelling: str) -> None:
    assert processing_flags([f"--sagemaker-run={spelling}"]).sagemaker_run == "yes"


@pytest.mark.parametrize("spelling", ["no", "false", "0", "False", "NO"])
def test_falsy_run_spellings_run_main_here(spelling: str) -> None:
    ns = processing([f"--sagemaker-run={spelling}"], run="local")
    assert ns.sagemaker_run == "no"


def test_local_run_spelling() -> None:
    assert processing_flags(["--sagemaker-run", "local"]).sagemaker_run == "local"
    assert processing_flags(["--sagemaker-run=LOCAL"]).sagemaker_run == "local"


def test_invalid_run_value_exits_2_with_one_line(tmp_path: Path, run_script, one_error_line) -> None:
    marker = tmp_path / "ran"
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(f"""
        from aws_sagemaker_remote import sagemaker_processing_main

        def main(args):
            open({str(marker)!r}, "w").close()

        if __name__ == "__main__":
            sagemaker_processing_main(main=main)
    """))
    done = run_script(script, "--sagemaker-run=maybe")
    assert done.returncode == 2
    line = one_error_line(done.stderr, "--sagemaker-run", "maybe")
    assert "local" in line
    assert done.stdout == ""
    assert not marker.exists()


# --- --help --------------------------------------------------------------------------------

def test_help_shows_the_sagemaker_options_with_the_script_defaults(tmp_path: Path, run_script) -> None:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent("""
        from aws_sagemaker_remote import sagemaker_processing_main

        def main(args):
            raise SystemExit("main must not run for --help")

        if __name__ == "__main__":
            sagemaker_processing_main(
                main=main,
                inputs={"input": "data/raw"},
                outputs={"output": "output/clean"},
                instance="ml.c5.xlarge",
                additional_arguments=[{"dest": "--filter-width", "default": 32, "help": "Filter width"}],
            )
    """))
    done = run_script(script, "--help", env={"COLUMNS": "100"})
    assert done.returncode == 0, done.stderr
    text = flat(done.stdout)
    assert "SageMaker options:" in done.stdout
    assert "--sagemaker-run [{no,yes,local}]" in text  # the bare flag means yes
    assert "--sagemaker-instance TYPE" in text
    assert "(default: ml.c5.xlarge)" in text
    assert "--input PATH" in text and "(default: data/raw)" in text
    assert "--output-s3 URI" in text
    assert "--filter-width" in text and "Filter width" in text
    assert "main must not run" not in done.stderr


def test_help_defaults_come_from_the_options_classes() -> None:
    proc = flat(sagemaker_processing_args(argparse.ArgumentParser()).format_help())
    train = flat(sagemaker_training_args(argparse.ArgumentParser()).format_help())
    assert f"--sagemaker-volume-size GB Size of each instance's storage volume in GB. " \
           f"(default: {ProcessingOptions().volume_size})" in proc
    assert f"(default: {TrainingOptions().volume_size})" in train
    assert "--sagemaker-spot" in train and "--sagemaker-spot" not in proc
    for flag in ("--model-dir", "--output-dir", "--checkpoint-dir"):
        assert flag in train


# --- declaration errors --------------------------------------------------------------------

def test_additional_argument_colliding_with_a_generated_flag(capsys: pytest.CaptureFixture[str],
                                                             one_error_line) -> None:
    with pytest.raises(SystemExit) as exc:
        processing(["--help"], additional_arguments=[{"dest": "--sagemaker-run", "default": "no"}])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    one_error_line(captured.err, "--sagemaker-run")
    assert "usage:" not in captured.out  # refused at declaration time, before --help is parsed


def test_input_named_like_a_training_folder(capsys: pytest.CaptureFixture[str], one_error_line) -> None:
    with pytest.raises(SystemExit) as exc:
        training([], inputs={"model_dir": "data"})
    assert exc.value.code == 2
    one_error_line(capsys.readouterr().err, "--model-dir")


def test_same_name_as_input_and_output(capsys: pytest.CaptureFixture[str], one_error_line) -> None:
    with pytest.raises(SystemExit) as exc:
        processing([], inputs={"data": "a"}, outputs={"data": "b"})
    assert exc.value.code == 2
    one_error_line(capsys.readouterr().err, "--data")


def test_collisions_raise_declaration_error_when_building_flags() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", nargs="+")  # a path flag the parser has must take one value
    with pytest.raises(DeclarationError, match="--input"):
        sagemaker_processing_args(parser, inputs={"input": "data"})
    with pytest.raises(DeclarationError, match="--model-dir"):
        sagemaker_training_args(argparse.ArgumentParser(), inputs={"model_dir": "data"})


def test_argparse_callback_colliding_with_a_generated_flag(capsys: pytest.CaptureFixture[str],
                                                           one_error_line) -> None:
    with pytest.raises(SystemExit) as exc:
        processing([], argparse_callback=lambda p: p.add_argument("--sagemaker-wait"))
    assert exc.value.code == 2
    one_error_line(capsys.readouterr().err, "--sagemaker-wait")


def test_declaration_error_is_a_usage_error_with_exit_code_2() -> None:
    assert DeclarationError("x").exit_code == 2


# --- bad keywords --------------------------------------------------------------------------

def test_bad_run_keyword_exits_2(tmp_path: Path, run_script, one_error_line) -> None:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent("""
        from aws_sagemaker_remote import sagemaker_processing_main

        if __name__ == "__main__":
            sagemaker_processing_main(main=print, run="maybe")
    """))
    done = run_script(script)
    assert done.returncode == 2
    one_error_line(done.stderr, "run", "maybe")


def test_unknown_keyword_exits_2_naming_it(capsys: pytest.CaptureFixture[str], one_error_line) -> None:
    with pytest.raises(SystemExit) as exc:
        processing([], colour="blue")
    assert exc.value.code == 2
    one_error_line(capsys.readouterr().err, "colour")


def test_training_keyword_is_unknown_to_processing(capsys: pytest.CaptureFixture[str], one_error_line) -> None:
    with pytest.raises(SystemExit) as exc:
        processing([], spot=True)
    assert exc.value.code == 2
    one_error_line(capsys.readouterr().err, "spot")


def test_bad_keyword_value_exits_2(capsys: pytest.CaptureFixture[str], one_error_line) -> None:
    with pytest.raises(SystemExit) as exc:
        processing([], instance_count="several")
    assert exc.value.code == 2
    one_error_line(capsys.readouterr().err, "instance_count", "several")
