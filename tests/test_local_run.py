"""``--sagemaker-run=no`` (the default): ``main`` runs here, once, as the script always did.

Scripts are written to the test's folder and run as subprocesses, the way a
user runs them; the same behaviour is checked in-process through ``argv=``.
"""
from __future__ import annotations

import argparse
import csv
import json
import textwrap
from pathlib import Path
from typing import Any, List

import pytest

from aws_sagemaker_remote import OPTIONAL, sagemaker_processing_main, sagemaker_training_main

#: A processing script that records each call of main in a marker file, prints
#: its namespace as JSON and prints what the entry function returned.
PROCESSING_SCRIPT = """
import json, os, sys
from aws_sagemaker_remote import OPTIONAL, sagemaker_processing_main

MARKER = {marker!r}

def main(args):
    with open(MARKER, "a") as f:
        f.write("called\\n")
    print("ARGS=" + json.dumps({{k: v for k, v in vars(args).items() if not k.startswith("sagemaker_")}},
                               sort_keys=True))
    with open(os.path.join(args.output, "result.txt"), "w") as f:
        f.write("done")
    return "returned-by-main"

if __name__ == "__main__":
    result = sagemaker_processing_main(
        main=main,
        inputs={{"input": {input!r}, "extra": OPTIONAL}},
        outputs={{"output": "out/processed"}},
        additional_arguments=[{{"dest": "--threshold", "type": float, "default": 0.5}}],
    )
    print("RESULT=" + repr(result))
"""


def args_of(stdout: str) -> Any:
    lines = [line for line in stdout.splitlines() if line.startswith("ARGS=")]
    assert len(lines) == 1, stdout
    return json.loads(lines[0][len("ARGS="):])


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "rows.csv").write_text("a,b\n1,2\n")
    return folder


@pytest.fixture
def script(tmp_path: Path, data: Path) -> Path:
    path = tmp_path / "process.py"
    path.write_text(PROCESSING_SCRIPT.format(marker=str(tmp_path / "calls.txt"), input=str(data)))
    return path


# --- as a subprocess -----------------------------------------------------------------------

def test_main_runs_once_with_the_parsed_namespace(tmp_path: Path, script: Path, data: Path, run_script) -> None:
    done = run_script(script, "--threshold", "0.75", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "calls.txt").read_text() == "called\n"
    assert args_of(done.stdout) == {
        "input": str(data),
        "extra": None,
        "output": "out/processed",
        "output_s3": "default",
        "threshold": 0.75,
    }
    assert (tmp_path / "out" / "processed" / "result.txt").read_text() == "done"
    assert "RESULT='returned-by-main'" in done.stdout


def test_output_folder_is_created_relative_to_the_working_directory(tmp_path: Path, script: Path,
                                                                     run_script) -> None:
    work = tmp_path / "elsewhere"
    work.mkdir()
    done = run_script(script, "--output", "nested/deeper/out", cwd=work)
    assert done.returncode == 0, done.stderr
    assert (work / "nested" / "deeper" / "out" / "result.txt").is_file()


def test_optional_input_given_on_the_command_line(tmp_path: Path, script: Path, data: Path, run_script) -> None:
    done = run_script(script, "--extra", str(data / "rows.csv"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert args_of(done.stdout)["extra"] == str(data / "rows.csv")


def test_missing_input_exits_2_before_main_runs(tmp_path: Path, script: Path, run_script,
                                                one_error_line) -> None:
    missing = tmp_path / "no-such-folder"
    done = run_script(script, "--input", str(missing), cwd=tmp_path)
    assert done.returncode == 2
    one_error_line(done.stderr, "--input", str(missing))
    assert not (tmp_path / "calls.txt").exists()
    assert not (tmp_path / "out").exists()
    assert "ARGS=" not in done.stdout


def test_exception_in_main_is_the_script_s_own_failure(tmp_path: Path, run_script) -> None:
    path = tmp_path / "boom.py"
    path.write_text(textwrap.dedent("""
        from aws_sagemaker_remote import sagemaker_processing_main

        def main(args):
            raise RuntimeError("boom from main")

        if __name__ == "__main__":
            sagemaker_processing_main(main=main)
    """))
    done = run_script(path)
    assert done.returncode == 1
    assert "RuntimeError: boom from main" in done.stderr


def test_dependencies_are_importable_in_a_local_run(tmp_path: Path, run_script) -> None:
    lib = tmp_path / "libs" / "textlib"
    lib.mkdir(parents=True)
    (lib / "__init__.py").write_text("def shout(s):\n    return s.upper() + '!'\n")
    path = tmp_path / "uses_lib.py"
    path.write_text(textwrap.dedent(f"""
        from aws_sagemaker_remote import sagemaker_processing_main

        def main(args):
            import textlib
            print(textlib.shout("hello"))

        if __name__ == "__main__":
            sagemaker_processing_main(main=main, dependencies={{"textlib": {str(lib)!r}}})
    """))
    done = run_script(path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "HELLO!"


# --- in-process through argv= -------------------------------------------------------------------

def test_in_process_main_called_once_and_its_value_returned(tmp_path: Path, data: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    calls: List[argparse.Namespace] = []
    sentinel = object()

    def main(args: argparse.Namespace) -> object:
        calls.append(args)
        return sentinel

    result = sagemaker_processing_main(main=main, inputs={"input": str(data)}, outputs={"output": "o/x"},
                                       argv=["--output", "o/y"])
    assert result is sentinel
    assert len(calls) == 1
    assert calls[0].input == str(data)
    assert calls[0].output == "o/y"
    assert (tmp_path / "o" / "y").is_dir()
    assert not (tmp_path / "o" / "x").exists()


def test_in_process_missing_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch, one_error_line) -> None:
    monkeypatch.chdir(tmp_path)
    calls: List[argparse.Namespace] = []
    with pytest.raises(SystemExit) as exc:
        sagemaker_processing_main(main=calls.append, inputs={"input": str(tmp_path / "absent")},
                                  outputs={"output": "o"}, argv=[])
    assert exc.value.code == 2
    assert calls == []
    assert not (tmp_path / "o").exists()
    one_error_line(capsys.readouterr().err, "--input")


def test_in_process_optional_input_absent_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ns = sagemaker_processing_main(main=lambda a: a, inputs={"extra": OPTIONAL}, argv=[])
    assert ns.extra is None


def test_training_main_creates_its_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    seen: List[argparse.Namespace] = []

    def main(args: argparse.Namespace) -> str:
        seen.append(args)
        Path(args.model_dir, "model.txt").write_text("weights")
        return "trained"

    result = sagemaker_training_main(main=main, argv=["--checkpoint-dir", "ckpt"])
    assert result == "trained"
    assert len(seen) == 1
    ns = seen[0]
    assert (ns.model_dir, ns.output_dir, ns.checkpoint_dir) == ("output/model", "output/data", "ckpt")
    for folder in ("output/model", "output/data", "ckpt"):
        assert (tmp_path / folder).is_dir(), folder
    assert (tmp_path / "output" / "model" / "model.txt").read_text() == "weights"


def test_training_folder_keywords_set_the_local_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ns = sagemaker_training_main(main=lambda a: a, model_dir="m", output_dir="d", checkpoint_dir="c", argv=[])
    assert (ns.model_dir, ns.output_dir, ns.checkpoint_dir) == ("m", "d", "c")
    assert all((tmp_path / name).is_dir() for name in "mdc")


def test_training_script_as_subprocess(tmp_path: Path, data: Path, run_script) -> None:
    path = tmp_path / "train.py"
    path.write_text(textwrap.dedent(f"""
        import os
        from aws_sagemaker_remote import sagemaker_training_main

        def main(args):
            rows = open(os.path.join(args.train, "rows.csv")).read().count("\\n")
            with open(os.path.join(args.model_dir, "model.txt"), "w") as f:
                f.write(f"rows={{rows}} epochs={{args.epochs}}")

        if __name__ == "__main__":
            sagemaker_training_main(
                main=main,
                inputs={{"train": {str(data)!r}}},
                additional_arguments=[{{"dest": "--epochs", "type": int, "default": 1}}],
            )
    """))
    done = run_script(path, "--epochs", "4", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "output" / "model" / "model.txt").read_text() == "rows=2 epochs=4"
    assert (tmp_path / "output" / "checkpoints").is_dir()
    assert (tmp_path / "output" / "data").is_dir()


# --- the demo ----------------------------------------------------------------------------------

def test_wordcount_demo_runs_from_any_directory(tmp_path: Path, demo_dir: Path, run_script) -> None:
    out = tmp_path / "counts"
    done = run_script(demo_dir / "wordcount.py", "--output", str(out), "--lowercase", "--min-count", "2",
                      cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    counts = json.loads((out / "counts.json").read_text())
    assert counts == {"dog": 2, "fish": 4, "fox": 2, "rain": 2, "runs": 2, "the": 8}
    assert list(counts) == sorted(counts)
    with open(out / "counts.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["word", "count"]
    assert rows[1] == ["the", "8"]
    assert len(rows) == 1 + len(counts)
    assert done.stdout.strip() == (f"wordcount: 3 files, 40 words, 6 distinct with count >= 2, "
                                   f"written to {out}")


def test_wordcount_demo_is_case_sensitive_by_default(tmp_path: Path, demo_dir: Path, run_script) -> None:
    out = tmp_path / "counts"
    done = run_script(demo_dir / "wordcount.py", f"--output={out}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    counts = json.loads((out / "counts.json").read_text())
    assert counts["The"] == 3 and counts["the"] == 5


PLAIN = """
import os, sys
from aws_sagemaker_remote import sagemaker_processing_main

def main(args):
    print("MODE", os.environ.get("MODE"))

if __name__ == "__main__":
    sagemaker_processing_main(main=main, dependencies={"helpers": "helpers.py"}, env={"MODE": "from-code"})
"""


def test_plain_run_sets_the_job_environment(tmp_path: Path, run_script: Any) -> None:
    (tmp_path / "helpers.py").write_text("")
    script = tmp_path / "plain.py"
    script.write_text(PLAIN)
    run = run_script(script, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "MODE from-code" in run.stdout
    run = run_script(script, "--sagemaker-env", "MODE=from-flag", cwd=tmp_path)
    assert "MODE from-flag" in run.stdout


@pytest.mark.parametrize("argv,flag", [
    (["--sagemaker-dry-run"], "--sagemaker-dry-run"),
    (["--helpers", "missing.py"], "--helpers"),
    (["--sagemaker-image", ""], "--sagemaker-image"),
    (["--sagemaker-instance="], "--sagemaker-instance"),
    (["--sagemaker-prefix", ""], "--sagemaker-prefix"),
])
def test_plain_run_refuses_what_a_job_would(tmp_path: Path, run_script: Any, one_error_line: Any,
                                            argv: List[str], flag: str) -> None:
    (tmp_path / "helpers.py").write_text("")
    script = tmp_path / "plain.py"
    script.write_text(PLAIN)
    run = run_script(script, *argv, cwd=tmp_path)
    assert run.returncode == 2
    one_error_line(run.stderr, flag)
    assert "MODE" not in run.stdout  # main never ran
