"""The ``aws-sagemaker-remote`` command on local jobs (``--sagemaker-run=local``), as a user runs it.

No AWS at all: the demos run as local jobs over the local stand-in store, the local
backend records them under the tool's home, and the command, another process,
finds them there by name.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
from conftest import python_environment

from aws_sagemaker_remote.backends.local.state import RECORD_FILE, REGISTRY_DIR

RunPython = Callable[..., "subprocess.CompletedProcess[str]"]
CLI = ("-m", "aws_sagemaker_remote")
DEMOS = {"processing": "wordcount.py", "training": "train_linear.py"}


def run_local(run_script: RunPython, demo_dir: Path, tmp_path: Path, kind: str, *extra: str) -> Dict[str, Any]:
    result_file = tmp_path / f"{kind}-{len(list(tmp_path.glob('*.result.json')))}.result.json"
    run = run_script(demo_dir / DEMOS[kind], "--sagemaker-run=local", "--sagemaker-output-json", result_file, *extra)
    assert run.returncode == 0, run.stderr
    result: Dict[str, Any] = json.loads(result_file.read_text())
    return result


@pytest.fixture
def local_jobs(run_script: RunPython, demo_dir: Path, tmp_path: Path) -> Dict[str, Dict[str, Any]]:
    """One processing and one training job run locally; kind → result."""
    return {kind: run_local(run_script, demo_dir, tmp_path, kind) for kind in DEMOS}


def test_list_describe_and_logs_of_local_jobs(local_jobs: Dict[str, Dict[str, Any]], run_python: RunPython) -> None:
    names = {kind: r["job_name"] for kind, r in local_jobs.items()}

    listed = run_python(*CLI, "list")
    listed_json = json.loads(run_python(*CLI, "list", "--json").stdout)

    assert listed.returncode == 0, listed.stderr
    assert [row.split()[:4] for row in listed.stdout.splitlines()[1:]] == [
        [names["training"], "training", "local", "Completed"],
        [names["processing"], "processing", "local", "Completed"],
    ]
    assert "SageMaker was not asked" in listed.stderr  # no AWS configured: said, not an error
    assert [(j["job_name"], j["where"], j["status"]) for j in listed_json] == [
        (names["training"], "local", "Completed"), (names["processing"], "local", "Completed")]
    for kind, name in names.items():
        text = run_python(*CLI, "describe", name)
        fields = dict(line.split(":", 1) for line in text.stdout.splitlines())
        assert fields["kind"].strip() == kind
        assert fields["where"].strip() == "this machine (local backend)"
        assert fields["status"].strip().startswith("Completed")
        description = json.loads(run_python(*CLI, "describe", name, "--json").stdout)
        assert description["ProcessingJobStatus" if kind == "processing" else "TrainingJobStatus"] == "Completed"
        logs = run_python(*CLI, "logs", name)
        assert logs.returncode == 0 and logs.stdout.startswith("[algo-1] ")
        events = [json.loads(line) for line in run_python(*CLI, "logs", name, "--json").stdout.splitlines()]
        assert [f"[{e['host']}] {e['message']}" for e in events] == logs.stdout.splitlines()
        followed = run_python(*CLI, "logs", "--follow", name)
        assert followed.returncode == 0
        assert f"{kind} job {name}: Completed" in followed.stderr.splitlines()
        followed_json = run_python(*CLI, "logs", "--follow", name, "--json")
        assert json.loads(followed_json.stdout)["status"] == "Completed"  # only the result on stdout
        assert logs.stdout.splitlines()[0] in followed_json.stderr.splitlines()

    only_training = json.loads(run_python(*CLI, "list", "--json", "--prefix", "train-").stdout)
    assert [j["job_name"] for j in only_training] == [names["training"]]


def test_download_of_local_jobs(local_jobs: Dict[str, Dict[str, Any]], run_python: RunPython,
                                tmp_path: Path) -> None:
    processing, training = local_jobs["processing"]["job_name"], local_jobs["training"]["job_name"]

    counts = run_python(*CLI, "download", processing, "--to", tmp_path / "p", "--json")
    model = run_python(*CLI, "download", training, "model", "--to", tmp_path / "t")

    assert counts.returncode == 0, counts.stderr
    assert json.loads((tmp_path / "p" / "output" / "counts.json").read_text())
    assert [d["name"] for d in json.loads(counts.stdout)] == ["output"]
    assert model.returncode == 0, model.stderr
    assert (tmp_path / "t" / "model" / "model.json").is_file()


@pytest.mark.parametrize("kind", ["processing", "training"])
def test_rerun_of_a_local_job_runs_it_again_here(local_jobs: Dict[str, Dict[str, Any]], run_python: RunPython,
                                                 kind: str) -> None:
    first = local_jobs[kind]["job_name"]
    inputs = "ProcessingInputs" if kind == "processing" else "InputDataConfig"

    rerun = run_python(*CLI, "rerun", first, "--env", "EXTRA=1", "--json")

    assert rerun.returncode == 0, rerun.stderr
    result = json.loads(rerun.stdout)
    assert result["status"] == "Completed" and result["job_name"] != first and result["rerun_of"] == first
    again = json.loads(run_python(*CLI, "describe", result["job_name"], "--json").stdout)
    assert again["Environment"]["EXTRA"] == "1"
    assert again[inputs] == json.loads(run_python(*CLI, "describe", first, "--json").stdout)[inputs]
    listed = json.loads(run_python(*CLI, "list", "--json").stdout)
    assert listed[0]["job_name"] == result["job_name"]


SLOW = """
    import time
    from aws_sagemaker_remote import sagemaker_{kind}_main

    def main(args):
        print("started", flush=True)
        time.sleep(120)

    if __name__ == "__main__":
        sagemaker_{kind}_main(main=main, inputs={{}}, base_job_name="slow")
"""


def _wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@pytest.mark.parametrize("kind", ["processing", "training"])
def test_stop_and_follow_a_local_job_another_process_runs(tmp_path: Path, run_python: RunPython, kind: str) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "slow.py").write_text(textwrap.dedent(SLOW.format(kind=kind)))
    launcher = subprocess.Popen([sys.executable, str(project / "slow.py"), "--sagemaker-run=local"],
                                cwd=project, env=python_environment(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    follower = None
    try:
        listed: List[Dict[str, Any]] = []

        def started() -> bool:
            listed[:] = json.loads(run_python(*CLI, "list", "--json", "--local").stdout)
            return bool(listed) and "started" in run_python(*CLI, "logs", listed[0]["job_name"]).stdout

        _wait_for(started)
        name = listed[0]["job_name"]
        assert listed[0]["status"] == "InProgress"
        follower = subprocess.Popen([sys.executable, *CLI, "logs", "--follow", name], env=python_environment(),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        stop = run_python(*CLI, "stop", name)

        assert stop.returncode == 0, stop.stderr
        assert stop.stderr.strip() == f"stopping {kind} job {name}"
        _out, err = launcher.communicate(timeout=90)
        assert launcher.returncode == 130, err
        followed_out, followed_err = follower.communicate(timeout=30)
        assert follower.returncode == 1, followed_err
        assert "[algo-1] started" in followed_out.splitlines()
        assert f"{kind} job {name}: Stopped" in followed_err.splitlines()
        status_key = "ProcessingJobStatus" if kind == "processing" else "TrainingJobStatus"
        assert json.loads(run_python(*CLI, "describe", name, "--json").stdout)[status_key] == "Stopped"
    finally:
        for process in (launcher, follower):
            if process is not None and process.poll() is None:
                process.kill()
                process.communicate()


def test_a_local_job_whose_process_died_is_failed(local_jobs: Dict[str, Dict[str, Any]], run_python: RunPython,
                                                   clean_environment: Path) -> None:
    name = local_jobs["processing"]["job_name"]
    path = clean_environment / REGISTRY_DIR / "processing" / name / RECORD_FILE
    record = json.loads(path.read_text())
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a process id nobody uses now
    record["owner"] = {"pid": gone.pid, "started": None}
    record["description"]["ProcessingJobStatus"] = "InProgress"
    path.write_text(json.dumps(record))

    described = json.loads(run_python(*CLI, "describe", name, "--json").stdout)

    assert described["ProcessingJobStatus"] == "Failed"
    assert f"pid {gone.pid}" in described["FailureReason"]
    # stopping a job nobody runs does nothing and says so without an error
    assert run_python(*CLI, "stop", name).returncode == 0


def _age(path: Path, days: float) -> None:
    stamp = time.time() - days * 86400
    for file in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(file, (stamp, stamp))


def test_clean_keeps_what_recent_jobs_use_and_deletes_the_rest(run_script: RunPython, demo_dir: Path,
                                                               tmp_path: Path, run_python: RunPython,
                                                               clean_environment: Path) -> None:
    old_input = tmp_path / "old-text"
    old_input.mkdir()
    (old_input / "a.txt").write_text("only the old job read this\n")
    old = run_local(run_script, demo_dir, tmp_path, "processing", "--input", str(old_input))["job_name"]
    new = run_local(run_script, demo_dir, tmp_path, "processing")["job_name"]
    # the old job ran 30 days ago: its record, its launch record and its staged files are that old
    cas = clean_environment / "s3" / "sagemaker-local" / "aws-sagemaker-remote" / "cas" / "sha256"
    _age(cas, 30)
    launch = clean_environment / "launches" / f"{old}.json"
    record = json.loads(launch.read_text())
    record["created"] = "2026-01-01T00:00:00+00:00"
    launch.write_text(json.dumps(record))
    job_file = clean_environment / REGISTRY_DIR / "processing" / old / RECORD_FILE
    job = json.loads(job_file.read_text())
    job["created"] = "2026-01-01T00:00:00+00:00"
    job_file.write_text(json.dumps(job))
    old_description = json.loads(run_python(*CLI, "describe", old, "--json").stdout)
    old_input_uri = next(i["S3Input"]["S3Uri"] for i in old_description["ProcessingInputs"] if i["InputName"] == "input")
    before = sorted(p.name for p in cas.iterdir())

    dry = json.loads(run_python(*CLI, "clean", "--json").stdout)

    # the old job's input goes (its channel manifest and the blob only it used), and the channel
    # manifest of its code (which listed that input); the code's files are the new job's too and stay
    groups = {t["uri"]: t for t in dry["trees"]}
    assert old_input_uri in groups and len(groups) == 2
    assert groups[old_input_uri]["objects"] == 2
    old_blob = hashlib.sha256(b"only the old job read this\n").hexdigest()
    assert dry["launch_records"] == [old]
    assert dry["local_jobs"] == [{"kind": "processing", "job_name": old}]
    assert sorted(p.name for p in cas.iterdir()) == before

    text = run_python(*CLI, "clean", "--yes")

    assert text.returncode == 0, text.stderr
    assert f"deleted {old_input_uri}" in text.stdout
    after = sorted(p.name for p in cas.iterdir())
    assert old_blob in before and old_blob not in after
    assert len(before) - len(after) == sum(t["objects"] for t in dry["trees"])
    assert not launch.exists() and not job_file.parent.exists()
    assert [j["job_name"] for j in json.loads(run_python(*CLI, "list", "--json").stdout)] == [new]
    # the new job still reruns from what is left
    assert run_python(*CLI, "rerun", new).returncode == 0


def test_stop_signal_reaches_only_the_recorded_owner(local_jobs: Dict[str, Dict[str, Any]],
                                                      run_python: RunPython, clean_environment: Path) -> None:
    # a record whose owner id was reused by an unrelated process: that process is left alone
    name = local_jobs["training"]["job_name"]
    path = clean_environment / REGISTRY_DIR / "training" / name / RECORD_FILE
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        record = json.loads(path.read_text())
        record["owner"] = {"pid": bystander.pid, "started": "1"}
        record["description"]["TrainingJobStatus"] = "InProgress"
        path.write_text(json.dumps(record))

        assert run_python(*CLI, "stop", name).returncode == 0
        time.sleep(0.5)
        assert bystander.poll() is None
    finally:
        bystander.send_signal(signal.SIGKILL)
        bystander.wait()


def test_rerun_no_wait_of_a_local_job_returns_while_the_job_runs_on(tmp_path: Path, run_python: RunPython) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "slow.py").write_text(textwrap.dedent(SLOW.format(kind="processing")))
    launched = subprocess.run([sys.executable, str(project / "slow.py"), "--sagemaker-run=local",
                               "--sagemaker-wait=no", f"--sagemaker-output-json={tmp_path / 'out.json'}"], cwd=project,
                              env=python_environment(), capture_output=True, text=True, timeout=120)
    assert launched.returncode == 0, launched.stderr
    first = json.loads((tmp_path / "out.json").read_text())["job_name"]
    names = [first]
    try:
        assert run_python(*CLI, "stop", first).returncode == 0

        rerun = run_python(*CLI, "rerun", first, "--no-wait", "--json")

        assert rerun.returncode == 0, rerun.stderr
        result = json.loads(rerun.stdout)
        names.append(result["job_name"])
        assert result["status"] == "InProgress" and result["rerun_of"] == first
        assert f"follow it with: aws-sagemaker-remote logs --follow {result['job_name']}" in rerun.stderr
        # the command has returned and the job runs on, in a process of its own
        _wait_for(lambda: "started" in run_python(*CLI, "logs", result["job_name"]).stdout)
        described = json.loads(run_python(*CLI, "describe", result["job_name"], "--json").stdout)
        assert described["ProcessingJobStatus"] == "InProgress"
        assert run_python(*CLI, "stop", result["job_name"]).returncode == 0
        _wait_for(lambda: json.loads(run_python(*CLI, "describe", result["job_name"], "--json").stdout)
                  ["ProcessingJobStatus"] == "Stopped")
    finally:
        for name in names:
            run_python(*CLI, "stop", name)
