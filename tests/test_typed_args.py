"""Typed arguments: a dataclass of the script's own flags, through argparse-dataclass.

The round trip that matters: the instance ``main`` receives inside a job (run by the local
backend, from the job's re-written command line) is the one it receives in a plain run of the
same command line. ``main`` returns ``repr(args)`` (which shows the types: ``3`` vs ``3.0``,
``None`` vs ``'None'``) and the job carries it back as JSON.
"""
from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Literal, Optional

import argparse_dataclass
import pytest

from aws_sagemaker_remote import DeclarationError, UsageError, processing_job, sagemaker_processing_main

SCRIPT = '''
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import List, Literal, Optional

from aws_sagemaker_remote import processing_job


@dataclass
class Args:
    epochs: int = 3
    rate: float = 0.5
    name: str = "run"
    verbose: bool = False
    shuffle: bool = True
    limit: Optional[int] = None
    label: Optional[str] = None
    layers: List[int] = field(default_factory=lambda: [1, 2], metadata={"nargs": "+"})
    tags: List[str] = field(default_factory=list, metadata={"nargs": "*"})
    mode: Literal["fast", "slow"] = "fast"
    level: Literal[1, 2, 3] = 1


@processing_job(inputs={"input": "data"}, outputs={"output": "out"}, args=Args)
def main(args: Args, paths):
    with open(paths.output + "/seen.txt", "w") as fh:
        fh.write(repr(args))
    return repr(args)


if __name__ == "__main__":
    value = main.cli()
    print("VALUE " + json.dumps(value if isinstance(value, str) else None))
'''

#: keyword overrides, and the same as typed on a command line
OVERRIDES = dict(epochs=7, rate=0.25, name="-dash first", verbose=True, shuffle=False, limit=4, label="x y",
                 layers=[5, 6, 7], tags=["a", "b c"], mode="slow", level=3)
OVERRIDE_ARGV = ["--epochs", "7", "--rate", "0.25", "--name=-dash first", "--verbose", "--no-shuffle",
                 "--limit", "4", "--label", "x y", "--layers", "5", "6", "7", "--tags", "a", "b c",
                 "--mode", "slow", "--level", "3"]
DEFAULT_REPR = ("Args(epochs=3, rate=0.5, name='run', verbose=False, shuffle=True, limit=None, label=None, "
                "layers=[1, 2], tags=[], mode='fast', level=1)")
OVERRIDE_REPR = ("Args(epochs=7, rate=0.25, name='-dash first', verbose=True, shuffle=False, limit=4, "
                 "label='x y', layers=[5, 6, 7], tags=['a', 'b c'], mode='slow', level=3)")


def _project(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("x")
    script = tmp_path / "typed.py"
    script.write_text(textwrap.dedent(SCRIPT))
    return script


def _value(stdout: str, marker: str = "VALUE") -> Any:
    lines = [line[len(marker) + 1:] for line in stdout.splitlines() if line.startswith(marker + " ")]
    assert len(lines) == 1, stdout
    return json.loads(lines[0])


@pytest.mark.parametrize("argv, expected", [([], DEFAULT_REPR), (OVERRIDE_ARGV, OVERRIDE_REPR)],
                         ids=["defaults", "overrides"])
def test_command_line_round_trips_through_a_local_job(run_script: Any, tmp_path: Path, argv: List[str],
                                                      expected: str) -> None:
    script = _project(tmp_path)
    here = run_script(script, *argv, "--output", tmp_path / "here", cwd=tmp_path)
    assert here.returncode == 0, here.stderr
    assert _value(here.stdout) == expected
    job = run_script(script, "--sagemaker-run=local", *argv, "--output", tmp_path / "job",
                     "--sagemaker-download-outputs", cwd=tmp_path, timeout=300)
    assert job.returncode == 0, job.stderr
    assert (tmp_path / "job" / "seen.txt").read_text() == (tmp_path / "here" / "seen.txt").read_text() == expected


@pytest.mark.parametrize("keywords, expected", [({}, DEFAULT_REPR), (OVERRIDES, OVERRIDE_REPR)],
                         ids=["defaults", "overrides"])
def test_keywords_round_trip_through_launch(run_python: Any, tmp_path: Path, keywords: dict,
                                            expected: str) -> None:
    _project(tmp_path)
    code = textwrap.dedent(f'''
        import json, sys
        sys.path.insert(0, ".")
        from typed import main
        here = main.launch(run="no", output="here", **{keywords!r})
        job = main.launch(run="local", **{keywords!r})
        print("HERE " + json.dumps(here.value))
        print("JOB " + json.dumps(job.value))
    ''')
    done = run_python("-c", code, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert _value(done.stdout, "HERE") == _value(done.stdout, "JOB") == expected


def test_opposite_booleans_round_trip(run_python: Any, tmp_path: Path) -> None:
    """Each boolean set to the value that is not its default, one at a time."""
    _project(tmp_path)
    code = textwrap.dedent('''
        import json, sys
        sys.path.insert(0, ".")
        from typed import main
        for keywords in ({"verbose": True}, {"shuffle": False}, {"verbose": False, "shuffle": True}):
            here = main.launch(run="no", output="here", **keywords).value
            job = main.launch(run="local", **keywords).value
            print("PAIR " + json.dumps([here, job]))
    ''')
    done = run_python("-c", code, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    pairs = [json.loads(line[5:]) for line in done.stdout.splitlines() if line.startswith("PAIR ")]
    assert len(pairs) == 3
    for here, job in pairs:
        assert here == job
    assert "verbose=True, shuffle=True" in pairs[0][0]
    assert "verbose=False, shuffle=False" in pairs[1][0]
    assert "verbose=False, shuffle=True" in pairs[2][0]


# --- in this process: parsing, binding, errors ---------------------------------------------------

@dataclass
class Small:
    count: int = 2
    fast: bool = False
    choice: Literal["a", "b"] = "a"
    maybe: Optional[float] = None
    items: List[str] = field(default_factory=lambda: ["x"], metadata={"nargs": "+"})


def test_main_gets_the_instance_and_optionally_the_paths(tmp_path: Path) -> None:
    got: list = []
    sagemaker_processing_main(lambda args: got.append(args), args=Small,
                              argv=["--count", "5", "--fast", "--items", "p", "q"])
    assert got == [Small(count=5, fast=True, items=["p", "q"])]

    def two(args: Small, paths: Any) -> None:
        got.append((args, paths.output))

    sagemaker_processing_main(two, outputs={"output": str(tmp_path / "o")}, args=Small, argv=["--maybe", "1.5"])
    assert got[-1] == (Small(maybe=1.5), str(tmp_path / "o"))


def test_same_parser_as_argparse_dataclass() -> None:
    """Our flags for the dataclass are argparse-dataclass's own: the same tokens give the same instance."""
    ours = processing_job(args=Small)(lambda args: args)
    argv = ["--count", "9", "--choice", "b", "--maybe", "0.5", "--items", "k"]
    theirs = argparse_dataclass.ArgumentParser(Small).parse_args(argv)
    assert ours.launch(run="no", count=9, choice="b", maybe=0.5, items=["k"]).value == theirs
    assert ours.cli(argv) == theirs


def test_bad_typed_values_are_usage_errors(tmp_path: Path, run_script: Any, one_error_line: Any) -> None:
    job = processing_job(args=Small)(lambda args: args)
    with pytest.raises(UsageError, match="--choice"):
        job.launch(run="no", choice="c")
    with pytest.raises(UsageError, match="count"):
        job.launch(run="no", count=None)
    with pytest.raises(UsageError, match="a list"):
        job.launch(run="no", items="x")
    script = _project(tmp_path)
    bad = run_script(script, "--mode", "medium", cwd=tmp_path)
    assert bad.returncode == 2
    one_error_line(bad.stderr, "--mode", "medium")


def test_declaration_errors() -> None:
    @dataclass
    class Clash:
        input: str = "x"

    with pytest.raises(DeclarationError, match="Clash"):
        processing_job(inputs={"input": "data"}, args=Clash)(lambda args: None).parser  # noqa: B018
    with pytest.raises(DeclarationError, match="dataclass"):
        processing_job(args=dict)(lambda args: None).parser  # noqa: B018
