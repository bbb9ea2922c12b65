"""Local jobs that are not waited for (``--sagemaker-run=local --sagemaker-wait=no``) run detached.

The launcher returns as soon as the job is created; a runner process in a
session of its own runs the job to its end; the ``aws-sagemaker-remote``
command, another process again, describes, follows and stops it. Everything is
run as a user runs it, as subprocesses, with no AWS at all.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest
from conftest import python_environment

from aws_sagemaker_remote.backends.local.state import RECORD_FILE, REGISTRY_DIR, Registry, owner_alive

RunPython = Callable[..., "subprocess.CompletedProcess[str]"]
CLI = ("-m", "aws_sagemaker_remote")

#: A job that prints ticks, starts a child process named by a marker (so a test can tell
#: whether anything of the job is left), then writes its output.
SCRIPT = """
    import os, subprocess, sys, time
    from aws_sagemaker_remote import sagemaker_processing_main

    def main(args):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", {marker!r}])
        for i in range({ticks}):
            print("tick", i, flush=True)
            time.sleep({pause})
        child.kill()
        with open(os.path.join(args.output, "done.txt"), "w") as fh:
            fh.write("done")

    if __name__ == "__main__":
        sagemaker_processing_main(main=main, inputs={{}}, outputs={{"output": "out"}}, base_job_name="detached")
"""


@pytest.fixture(autouse=True)
def no_runner_left(clean_environment: Path) -> Iterator[None]:
    """A test that fails midway leaves no job running: each runner still alive is killed (its guard
    then kills its job's processes)."""
    yield
    for record in Registry(str(clean_environment / REGISTRY_DIR)).records():
        owner = record.get("owner") or {}
        if owner_alive(owner):
            os.kill(int(owner["pid"]), signal.SIGKILL)


def _script(folder: Path, ticks: int, pause: float) -> "tuple[Path, str]":
    marker = f"marker-{uuid.uuid4().hex}"
    folder.mkdir(exist_ok=True)
    path = folder / f"job-{len(list(folder.glob('*.py')))}.py"
    path.write_text(textwrap.dedent(SCRIPT.format(marker=marker, ticks=ticks, pause=pause)))
    return path, marker


def _marked_processes(marker: str) -> List[int]:
    """Ids of the live processes whose command line holds ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if marker.encode() in fh.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def _wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _status(run_python: RunPython, name: str) -> str:
    described = run_python(*CLI, "describe", name, "--json")
    assert described.returncode == 0, described.stderr
    return str(json.loads(described.stdout)["ProcessingJobStatus"])


def _launch(run_python: RunPython, script: Path, *flags: str) -> Dict[str, Any]:
    started = time.monotonic()
    run = run_python(script, "--sagemaker-run=local", *flags, "--sagemaker-output-json",
                     script.with_suffix(".json"), cwd=script.parent)
    took = time.monotonic() - started
    assert run.returncode == 0, run.stderr
    result: Dict[str, Any] = json.loads(script.with_suffix(".json").read_text())
    return dict(result, took=took, stderr=run.stderr)


def test_a_detached_job_outlives_its_launcher_and_is_followed(tmp_path: Path, run_python: RunPython,
                                                              clean_environment: Path) -> None:
    script, marker = _script(tmp_path / "project", ticks=6, pause=1.0)

    launched = _launch(run_python, script, "--sagemaker-wait=no")

    name = launched["job_name"]
    assert launched["status"] == "InProgress"
    assert launched["took"] < 6 * 1.0 + 30  # returned long before the job could end
    assert f"follow it with: aws-sagemaker-remote logs --follow {name}\n" in launched["stderr"]
    assert _status(run_python, name) == "InProgress"
    followed = run_python(*CLI, "logs", "--follow", name)
    assert followed.returncode == 0, followed.stderr
    assert [line for line in followed.stdout.splitlines() if "tick" in line] == [
        f"[algo-1] tick {i}" for i in range(6)]
    assert f"processing job {name}: Completed" in followed.stderr.splitlines()
    assert _status(run_python, name) == "Completed"
    output = clean_environment / "s3" / "sagemaker-local" / "aws-sagemaker-remote" / "jobs" / name / "output"
    assert (output / "output" / "done.txt").read_text() == "done"
    listed = json.loads(run_python(*CLI, "list", "--json", "--local").stdout)
    assert [(j["job_name"], j["status"]) for j in listed] == [(name, "Completed")]
    _wait_for(lambda: not _marked_processes(marker))


def test_a_detached_job_is_stopped_with_stop(tmp_path: Path, run_python: RunPython) -> None:
    script, marker = _script(tmp_path / "project", ticks=300, pause=1.0)

    name = _launch(run_python, script, "--sagemaker-detach")["job_name"]
    _wait_for(lambda: len(_marked_processes(marker)) == 1)  # the job's child runs
    stop = run_python(*CLI, "stop", name)

    assert stop.returncode == 0, stop.stderr
    _wait_for(lambda: _status(run_python, name) == "Stopped")
    _wait_for(lambda: not _marked_processes(marker), timeout=30)
    followed = run_python(*CLI, "logs", "--follow", name)
    assert followed.returncode == 1
    assert "[algo-1] tick 0" in followed.stdout.splitlines()


def test_killing_the_launcher_does_not_kill_the_detached_job(tmp_path: Path, run_python: RunPython) -> None:
    script, marker = _script(tmp_path / "project", ticks=4, pause=1.0)
    # a launcher that stays alive after launching, in a process group of its own: killing the group
    # is what closing its terminal does
    wrapper = tmp_path / "project" / "wrapper.py"
    wrapper.write_text(textwrap.dedent(f"""
        import runpy, sys, time
        sys.argv = [{str(script)!r}, "--sagemaker-run=local", "--sagemaker-wait=no"]
        try:
            runpy.run_path(sys.argv[0], run_name="__main__")
        except SystemExit:
            pass
        print("launched", flush=True)
        time.sleep(600)
    """))
    launcher = subprocess.Popen([sys.executable, str(wrapper)], cwd=script.parent, env=python_environment(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert launcher.stdout is not None
        assert launcher.stdout.readline() == "launched\n"
        _wait_for(lambda: len(_marked_processes(marker)) == 1)

        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.communicate(timeout=30)

        listed = json.loads(run_python(*CLI, "list", "--json", "--local").stdout)
        name = listed[0]["job_name"]
        followed = run_python(*CLI, "logs", "--follow", name)
        assert followed.returncode == 0, followed.stderr
        assert f"processing job {name}: Completed" in followed.stderr.splitlines()
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.communicate()


def test_the_runner_takes_its_job_with_it_when_killed(tmp_path: Path, run_python: RunPython,
                                                      clean_environment: Path) -> None:
    script, marker = _script(tmp_path / "project", ticks=300, pause=1.0)
    name = _launch(run_python, script, "--sagemaker-wait=no")["job_name"]
    _wait_for(lambda: len(_marked_processes(marker)) == 1)
    record = json.loads((clean_environment / REGISTRY_DIR / "processing" / name / RECORD_FILE).read_text())

    os.kill(record["owner"]["pid"], signal.SIGKILL)

    _wait_for(lambda: not _marked_processes(marker), timeout=30)
    described = json.loads(run_python(*CLI, "describe", name, "--json").stdout)
    assert described["ProcessingJobStatus"] == "Failed"
    assert "ended before the job did" in described["FailureReason"]
