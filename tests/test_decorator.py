"""The decorator form: the same script as a command line, a plain function, and a launch from Python.

Launches from Python run in a child interpreter (a driver script that imports the decorated
``main``), as a notebook or another program would; what the driver prints is what a user sees.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any, Callable

import pytest

from aws_sagemaker_remote import Job, UsageError, processing_job, training_job
from aws_sagemaker_remote.errors import DeclarationError
from aws_sagemaker_remote.result import VALUE_FILE

WORDCOUNT = '''
import json, os, sys
from aws_sagemaker_remote import processing_job

@processing_job(inputs={"input": "data"}, outputs={"output": "out"}, instance="ml.m5.large",
                additional_arguments=[{"dest": "--top", "type": int, "default": 2}])
def main(args):
    words = {}
    for name in sorted(os.listdir(args.input)):
        with open(os.path.join(args.input, name)) as fh:
            for word in fh.read().split():
                words[word] = words.get(word, 0) + 1
    top = sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))[:args.top]
    with open(os.path.join(args.output, "counts.json"), "w") as fh:
        json.dump(dict(top), fh)
    return {"total": sum(words.values()), "top": [w for w, _ in top]}

if __name__ == "__main__":
    print("RETURNED " + json.dumps(main.cli(), default=lambda result: result.status))
'''

TRAIN = '''
import json, os
from aws_sagemaker_remote import training_job

@training_job(inputs={"train": "data"}, additional_arguments=[{"dest": "--epochs", "type": int, "default": 1}],
              metrics={"loss": r"loss=([0-9.]+)"})
def main(args):
    with open(os.path.join(args.model_dir, "model.json"), "w") as fh:
        json.dump({"epochs": args.epochs}, fh)
    print("loss=0.25", flush=True)
    return {"epochs": args.epochs, "loss": 0.25}

if __name__ == "__main__":
    main.cli()
'''


def _project(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "a.txt").write_text("b a b c b a\n")
    script = tmp_path / name
    script.write_text(textwrap.dedent(text))
    return script


def _driver(run_python: Callable[..., Any], tmp_path: Path, body: str) -> Any:
    """Run ``body`` (after ``from wordcount import main``) in a child interpreter from ``tmp_path``."""
    code = "import json, sys\nsys.path.insert(0, '.')\n" + textwrap.dedent(body)
    return run_python("-c", code, cwd=tmp_path)


def _printed(stdout: str, marker: str) -> Any:
    lines = [line[len(marker) + 1:] for line in stdout.splitlines() if line.startswith(marker + " ")]
    assert len(lines) == 1, stdout
    return json.loads(lines[0])


# --- 1. the script: main.cli() parses sys.argv as sagemaker_processing_main does ------------------

def test_script_runs_here_with_its_flags(run_script: Any, tmp_path: Path) -> None:
    script = _project(tmp_path, "wordcount.py", WORDCOUNT)
    done = run_script(script, "--top", "1", "--output", tmp_path / "mine", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert _printed(done.stdout, "RETURNED") == {"total": 6, "top": ["b"]}
    assert json.loads((tmp_path / "mine" / "counts.json").read_text()) == {"b": 3}
    assert not (tmp_path / "mine" / VALUE_FILE).exists()  # only the job writes its value


def test_script_help_and_bad_flag_are_the_call_forms(run_script: Any, tmp_path: Path, one_error_line: Any) -> None:
    script = _project(tmp_path, "wordcount.py", WORDCOUNT)
    shown = run_script(script, "--help", cwd=tmp_path)
    assert shown.returncode == 0
    for flag in ("--input", "--output", "--output-s3", "--top", "--sagemaker-run", "--sagemaker-instance"):
        assert flag in shown.stdout
    bad = run_script(script, "--top", "many", cwd=tmp_path)
    assert bad.returncode == 2
    one_error_line(bad.stderr, "--top")
    missing = run_script(script, "--input", tmp_path / "nowhere", cwd=tmp_path)
    assert missing.returncode == 2
    one_error_line(missing.stderr, "--input", "does not exist")


def test_script_as_a_local_job(run_script: Any, tmp_path: Path) -> None:
    script = _project(tmp_path, "wordcount.py", WORDCOUNT)
    done = run_script(script, "--sagemaker-run=local", "--top", "1", "--output", tmp_path / "back",
                      "--sagemaker-download-outputs", cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "processing job wordcount-" in done.stderr and "Completed" in done.stderr
    assert json.loads((tmp_path / "back" / "counts.json").read_text()) == {"b": 3}
    # the value travels beside the outputs, as JSON
    assert json.loads((tmp_path / "back" / VALUE_FILE).read_text()) == {"total": 6, "top": ["b"]}


# --- 2. the plain function ------------------------------------------------------------------------

def test_decorated_main_stays_a_plain_function(tmp_path: Path) -> None:
    seen = []

    @processing_job(inputs={"input": "data"}, outputs={"output": "out"})
    def main(args: Any) -> str:
        """Count words."""
        seen.append(args)
        return "done"

    assert isinstance(main, Job) and main.kind == "processing"
    assert main.__name__ == "main" and main.__doc__ == "Count words."
    assert main("anything") == "done" and seen == ["anything"]
    parser = main.parser
    assert parser.parse_args(["--input", "x"]).input == "x"
    assert parser.parse_args([]).output == "out"
    assert "--sagemaker-instance" in main.build_parser().format_help()


def test_decorator_without_parentheses_and_training_folders() -> None:
    @training_job
    def main(args: Any) -> None:
        return None

    assert main.kind == "training"
    assert main.parser.parse_args([]).model_dir == "output/model"


def test_bad_declaration_raises(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown keyword inputz"):
        processing_job(inputz={"a": "b"})(lambda args: None).parser  # noqa: B018
    with pytest.raises(DeclarationError, match="decorates a function"):
        processing_job()(42)


# --- 3. launch from Python ------------------------------------------------------------------------

def test_launch_errors_are_raised_not_exited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             clean_environment: Path) -> None:
    script = _project(tmp_path, "wordcount.py", WORDCOUNT)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "wordcount_under_test", "__file__": str(script)}
    exec(compile(script.read_text(), str(script), "exec"), namespace)
    main = namespace["main"]
    with pytest.raises(UsageError, match="--top"):
        main.launch(run="no", top="many")
    with pytest.raises(UsageError, match="instance_cont"):
        main.launch(run="local", instance_cont=2)
    with pytest.raises(UsageError, match="--sagemaker-instance-count"):
        main.launch(run="local", instance_count=0)
    with pytest.raises(UsageError, match="run"):
        main.launch(run="maybe")
    with pytest.raises(UsageError, match="does not exist"):
        main.launch(run="no", input=str(tmp_path / "nowhere"))
    # nothing was staged or started
    assert not [p for p in clean_environment.rglob("*") if p.is_file()]
    result = main.launch(run="no", top=1, output=str(tmp_path / "here"))
    assert result.status == "Completed" and result.value == {"total": 6, "top": ["b"]}
    assert result.output_artifacts == {"output": str(tmp_path / "here")}


def test_launch_local_returns_outputs_and_value(run_python: Any, tmp_path: Path) -> None:
    _project(tmp_path, "wordcount.py", WORDCOUNT)
    done = _driver(run_python, tmp_path, '''
        from wordcount import main
        result = main.launch(run="local", top=1, input="data", instance_count=1)
        print("RESULT " + json.dumps(result.to_json()))
        print("VALUE " + json.dumps(result.value))
    ''')
    assert done.returncode == 0, done.stderr
    result = _printed(done.stdout, "RESULT")
    assert result["status"] == "Completed" and result["kind"] == "processing"
    assert result["job_name"].startswith("wordcount-")
    assert result["output_artifacts"]["output"].startswith("s3://")
    assert _printed(done.stdout, "VALUE") == {"total": 6, "top": ["b"]}
    assert result["value"] == {"total": 6, "top": ["b"]}


def test_launch_local_training_returns_model_metrics_and_value(run_python: Any, tmp_path: Path) -> None:
    _project(tmp_path, "train.py", TRAIN)
    done = _driver(run_python, tmp_path, '''
        from train import main
        result = main.launch(run="local", epochs=4)
        print("RESULT " + json.dumps(result.to_json()))
    ''')
    assert done.returncode == 0, done.stderr
    result = _printed(done.stdout, "RESULT")
    assert result["status"] == "Completed"
    assert result["model_artifact_url"].endswith("model.tar.gz")
    assert result["final_metrics"] == {"loss": 0.25}
    assert result["value"] == {"epochs": 4, "loss": 0.25}


def test_launch_of_a_failing_job_raises_job_failed(run_python: Any, tmp_path: Path) -> None:
    _project(tmp_path, "broken.py", WORDCOUNT.replace("words = {}", "raise RuntimeError('no words today')"))
    done = _driver(run_python, tmp_path, '''
        from aws_sagemaker_remote import JobFailed
        from broken import main
        try:
            main.launch(run="local")
        except JobFailed as exc:
            print("FAILED " + json.dumps([exc.result.status, str(exc)]))
    ''')
    assert done.returncode == 0, done.stderr
    status, message = _printed(done.stdout, "FAILED")
    assert status == "Failed" and "no words today" in message


# --- 4. a notebook: main has no script file -------------------------------------------------------

NOTEBOOK = '''
    from aws_sagemaker_remote import DeclarationError, processing_job

    @processing_job(outputs={"output": "out"})
    def main(args):
        return 1

    try:
        main.launch(run="local")
    except DeclarationError as exc:
        print("ERROR " + json.dumps(str(exc)))
    print("HERE " + json.dumps(main.launch(run="no").value))
'''


def test_notebook_function_without_a_file_says_to_pass_script(run_python: Any, tmp_path: Path) -> None:
    done = _driver(run_python, tmp_path, NOTEBOOK)
    assert done.returncode == 0, done.stderr
    message = _printed(done.stdout, "ERROR")
    assert "script=" in message and "__main__" in message
    assert _printed(done.stdout, "HERE") == 1  # running here needs no file
    assert "created processing job" not in done.stderr


def test_notebook_function_with_script_runs_that_file(run_python: Any, tmp_path: Path) -> None:
    _project(tmp_path, "wordcount.py", WORDCOUNT)
    done = _driver(run_python, tmp_path, '''
        from aws_sagemaker_remote import processing_job

        @processing_job(inputs={"input": "data"}, outputs={"output": "out"},
                        additional_arguments=[{"dest": "--top", "type": int, "default": 2}])
        def main(args):
            raise AssertionError("the job runs wordcount.py, not this cell")

        result = main.launch(run="local", script="wordcount.py", top=1)
        print("VALUE " + json.dumps(result.value))
    ''')
    assert done.returncode == 0, done.stderr
    assert _printed(done.stdout, "VALUE") == {"total": 6, "top": ["b"]}


def test_module_file_that_never_calls_cli_is_refused(run_python: Any, tmp_path: Path) -> None:
    _project(tmp_path, "library.py", WORDCOUNT.split("if __name__")[0])
    done = _driver(run_python, tmp_path, '''
        from aws_sagemaker_remote import DeclarationError
        from library import main
        try:
            main.launch(run="local")
        except DeclarationError as exc:
            print("ERROR " + json.dumps(str(exc)))
    ''')
    assert done.returncode == 0, done.stderr
    assert "main.cli()" in _printed(done.stdout, "ERROR")


def test_launch_keywords_become_the_flags_a_user_would_type() -> None:
    """Each kind of flag: one value, several values, one flag per item, a switch, a value starting with '-'."""
    @processing_job(additional_arguments=[
        {"dest": "--width", "type": int, "default": 1},
        {"dest": "--sizes", "type": int, "nargs": "+", "default": [1]},
        {"dest": "--tag", "action": "append"},
        {"dest": "--fast", "action": "store_true"},
        {"dest": "--label", "default": "x"},
    ])
    def main(args: Any) -> Any:
        return [args.width, args.sizes, args.tag, args.fast, args.label]

    assert main.launch(run="no").value == [1, [1], None, False, "x"]
    assert main.launch(run="no", width=3, sizes=[4, 5], tag=["a", "b"], fast=True, label="-y").value == \
        [3, [4, 5], ["a", "b"], True, "-y"]
    with pytest.raises(UsageError, match="fast"):
        main.launch(run="no", fast="sometimes")


def test_value_the_job_cannot_keep_is_reported_not_written(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import argparse

    from aws_sagemaker_remote.flags import declare
    from aws_sagemaker_remote.result import write_value

    with_output = declare("processing", str(tmp_path / "s.py"), outputs={"output": str(tmp_path / "out")})
    namespace = argparse.Namespace(output=str(tmp_path / "out"))
    assert write_value(with_output, namespace, {1, 2}) is None
    assert "not JSON-serialisable" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    without = declare("processing", str(tmp_path / "s.py"))
    assert write_value(without, argparse.Namespace(), [1]) is None
    assert "declares none" in capsys.readouterr().err
    written = write_value(with_output, namespace, {"ok": [1.5, None]})
    assert written == str(tmp_path / "out" / VALUE_FILE)
    assert json.loads((tmp_path / "out" / VALUE_FILE).read_text()) == {"ok": [1.5, None]}
