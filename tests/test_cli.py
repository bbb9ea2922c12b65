"""The ``aws-sagemaker-remote`` command against SageMaker jobs, run as a user runs it.

Jobs are launched through the real processing and training paths (the demos with
``--sagemaker-run=yes``) against the moto server, which marks them ``Completed`` at
once and keeps no log streams; the command then lists, describes, follows, stops,
downloads, reruns and cleans them over real HTTP. Ctrl-C during ``logs --follow``
needs a job that keeps running, so that one test scripts SageMaker's answers with
botocore's ``Stubber`` instead.
"""
from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import boto3
import pytest
from botocore.stub import Stubber
from conftest import python_environment

from aws_sagemaker_remote import __version__
from aws_sagemaker_remote.backends.sagemaker import SageMakerBackend
from aws_sagemaker_remote.cli import build_parser, run_command
from aws_sagemaker_remote.errors import Interrupted
from aws_sagemaker_remote.jobs import AwsOptions, Finder, FoundJob

#: the ``aws`` fixture's server and the ``run_python`` fixture (see conftest.py)
MotoServer = Any
RunPython = Callable[..., "subprocess.CompletedProcess[str]"]

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/python:3.11"
CLI = ("-m", "aws_sagemaker_remote")
DEMOS = {"processing": "wordcount.py", "training": "train_linear.py"}
TAG = "aws-sagemaker-remote:launcher"


def launch(run_script: RunPython, demo_dir: Path, tmp_path: Path, kind: str, *extra: str) -> Dict[str, Any]:
    """Launch a demo on the moto server; returns its ``--sagemaker-output-json`` result."""
    result_file = tmp_path / f"{kind}-{len(list(tmp_path.glob('*.result.json')))}.result.json"
    run = run_script(demo_dir / DEMOS[kind], "--sagemaker-run=yes", "--sagemaker-role", ROLE,
                     "--sagemaker-image", IMAGE, "--sagemaker-output-json", result_file, *extra)
    assert run.returncode == 0, run.stderr
    result: Dict[str, Any] = json.loads(result_file.read_text())
    return result


def foreign_job(name: str) -> None:
    """A processing job some other tool created (no launcher tag, no launch record)."""
    boto3.client("sagemaker", region_name=REGION).create_processing_job(
        ProcessingJobName=name,
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                               "VolumeSizeInGB": 30}},
        AppSpecification={"ImageUri": IMAGE}, RoleArn=ROLE)


@pytest.fixture
def jobs(aws: MotoServer, run_script: RunPython, demo_dir: Path, tmp_path: Path) -> Dict[str, str]:
    """One processing and one training job launched through the demos; kind → job name."""
    names = {kind: launch(run_script, demo_dir, tmp_path, kind)["job_name"] for kind in DEMOS}
    aws.clear_log()
    return names


# --- launching without waiting ----------------------------------------------------------------------------

def test_a_launch_that_does_not_wait_prints_the_command_that_follows_it(aws: MotoServer, run_script: RunPython,
                                                                         demo_dir: Path, run_python: RunPython,
                                                                         tmp_path: Path) -> None:
    launched = run_script(demo_dir / "wordcount.py", "--sagemaker-run=yes", "--sagemaker-role", ROLE,
                          "--sagemaker-image", IMAGE, "--sagemaker-wait=no", "--sagemaker-output-json",
                          tmp_path / "result.json")
    assert launched.returncode == 0, launched.stderr
    name = json.loads((tmp_path / "result.json").read_text())["job_name"]
    hint = [line for line in launched.stderr.splitlines() if line.startswith("follow it with: ")]
    assert hint == [f"follow it with: aws-sagemaker-remote logs --follow {name} --region {REGION}"]

    followed = run_python(*CLI, *hint[0].split()[4:])

    assert followed.returncode == 0, followed.stderr
    assert f"processing job {name}: Completed" in followed.stderr.splitlines()


# --- list ---------------------------------------------------------------------------------------------

def test_list_shows_this_tools_jobs_of_both_kinds_newest_first(jobs: Dict[str, str], run_python: RunPython) -> None:
    foreign_job("someone-elses-job")

    result = run_python(*CLI, "list")

    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split()[:4] == ["NAME", "KIND", "WHERE", "STATUS"]
    assert [row.split()[:4] for row in rows] == [
        [jobs["training"], "training", "SageMaker", "Completed"],
        [jobs["processing"], "processing", "SageMaker", "Completed"],
    ]


def test_list_json_finds_jobs_by_their_tag_without_local_records(jobs: Dict[str, str], run_python: RunPython,
                                                                  clean_environment: Path,
                                                                  aws: MotoServer) -> None:
    # another machine: no launch records, only the tag says which jobs are ours
    shutil.rmtree(clean_environment / "launches")
    foreign_job("someone-elses-job")

    result = run_python(*CLI, "list", "--json")

    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert {(j["job_name"], j["kind"], j["where"], j["status"]) for j in listed} == {
        (jobs["processing"], "processing", "SageMaker", "Completed"),
        (jobs["training"], "training", "SageMaker", "Completed"),
    }
    assert "ListTags" in aws.operations("sagemaker")
    every = json.loads(run_python(*CLI, "list", "--json", "--all").stdout)
    assert "someone-elses-job" in {j["job_name"] for j in every}


def test_list_filters_by_prefix_and_status(jobs: Dict[str, str], run_python: RunPython,
                                           one_error_line: Callable[..., str]) -> None:
    by_prefix = json.loads(run_python(*CLI, "list", "--json", "--prefix", "wordcount").stdout)
    assert [j["job_name"] for j in by_prefix] == [jobs["processing"]]
    assert json.loads(run_python(*CLI, "list", "--json", "--status", "failed").stdout) == []
    completed = json.loads(run_python(*CLI, "list", "--json", "--status", "Completed").stdout)
    assert len(completed) == 2

    bad = run_python(*CLI, "list", "--status", "done")
    assert bad.returncode == 2
    one_error_line(bad.stderr, "--status", "InProgress")


# --- describe ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["processing", "training"])
def test_describe_finds_the_kind_by_name(jobs: Dict[str, str], run_python: RunPython, kind: str) -> None:
    name = jobs[kind]

    text = run_python(*CLI, "describe", name)
    as_json = run_python(*CLI, "describe", name, "--json")

    assert text.returncode == 0 and as_json.returncode == 0, text.stderr + as_json.stderr
    fields = dict(line.split(":", 1) for line in text.stdout.splitlines())
    assert fields["job"].strip() == name
    assert fields["kind"].strip() == kind
    assert fields["where"].strip() == "SageMaker"
    assert fields["status"].strip().startswith("Completed")
    assert fields["role"].strip() == ROLE
    assert "console" in fields
    description = json.loads(as_json.stdout)
    assert description["ProcessingJobName" if kind == "processing" else "TrainingJobName"] == name
    assert "ResponseMetadata" not in description


def test_aws_flags_go_after_the_subcommand_too(jobs: Dict[str, str], run_python: RunPython,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert run_python(*CLI, "describe", jobs["processing"]).returncode == 1  # no region anywhere

    after = run_python(*CLI, "describe", jobs["processing"], "--region", REGION, "--json")
    before = run_python(*CLI, "--region", REGION, "describe", jobs["processing"], "--json")

    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout) == json.loads(before.stdout)


def test_describe_piped_into_head_exits_quietly(jobs: Dict[str, str]) -> None:
    # the reader is gone before the command writes a byte: every write fails with EPIPE
    process = subprocess.Popen([sys.executable, *CLI, "describe", jobs["training"], "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=python_environment())
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=60) == 141
    assert stderr == ""


def test_a_job_that_does_not_exist_is_one_error_line(aws: MotoServer, run_python: RunPython,
                                                     one_error_line: Callable[..., str]) -> None:
    for args in (["describe", "no-such-job"], ["describe", "no-such-job", "--json"]):
        result = run_python(*CLI, *args)
        assert result.returncode == 1
        assert result.stdout == ""
        one_error_line(result.stderr, "no-such-job", "processing", "training")


@pytest.mark.parametrize("name", ["../../etc/passwd", "a_b", "x" * 64])
def test_a_name_that_is_no_job_name_is_a_usage_error(aws: MotoServer, run_python: RunPython,
                                                     one_error_line: Callable[..., str], name: str) -> None:
    result = run_python(*CLI, "describe", name)
    assert result.returncode == 2
    one_error_line(result.stderr, "JOB", "not a valid job name")
    assert aws.requests == []


def test_no_command_is_a_usage_error(run_python: RunPython, one_error_line: Callable[..., str]) -> None:
    result = run_python(*CLI)
    assert result.returncode == 2
    one_error_line(result.stderr, "list", "describe")


def test_a_missing_region_names_this_commands_flag(run_python: RunPython,
                                                   one_error_line: Callable[..., str]) -> None:
    # no aws fixture: no region anywhere, and nothing is sent before the check
    result = run_python(*CLI, "describe", "some-job")
    assert result.returncode == 1
    line = one_error_line(result.stderr, "--region")
    assert "--sagemaker-region" not in line


def test_missing_credentials_name_this_commands_flag(run_python: RunPython,
                                                     one_error_line: Callable[..., str]) -> None:
    result = run_python(*CLI, "--region", REGION, "describe", "some-job", env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert result.returncode == 1
    line = one_error_line(result.stderr, "--profile")
    assert "--sagemaker-profile" not in line


@pytest.mark.parametrize("args", [["list"], ["describe", "some-job"]])
def test_an_unknown_profile_from_the_environment_is_named(run_python: RunPython, one_error_line: Callable[..., str],
                                                          args: List[str]) -> None:
    result = run_python(*CLI, *args, env={"AWS_PROFILE": "nosuch"})
    assert result.returncode == 2
    line = one_error_line(result.stderr, "--profile", "'nosuch'")
    assert "None" not in line


def test_an_unknown_profile_names_this_commands_flag(run_python: RunPython,
                                                     one_error_line: Callable[..., str]) -> None:
    result = run_python(*CLI, "describe", "some-job", "--profile", "nobody", "--region", REGION)
    assert result.returncode == 2
    line = one_error_line(result.stderr, "--profile", "nobody")
    assert "--sagemaker-profile" not in line


# --- logs and stop ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["processing", "training"])
def test_logs_follow_of_a_completed_job_prints_the_summary_and_exits_0(jobs: Dict[str, str], run_python: RunPython,
                                                                        kind: str) -> None:
    name = jobs[kind]

    followed = run_python(*CLI, "logs", "--follow", name)
    as_json = run_python(*CLI, "logs", "-f", name, "--json")
    so_far = run_python(*CLI, "logs", name)

    assert followed.returncode == 0, followed.stderr
    assert f"[{name}] Completed" in followed.stderr.splitlines()
    assert f"{kind} job {name}: Completed" in followed.stderr.splitlines()
    assert json.loads(as_json.stdout)["status"] == "Completed"
    assert so_far.returncode == 0 and so_far.stdout == ""  # moto keeps no log streams


def test_logs_prints_each_event_of_each_instance(jobs: Dict[str, str], run_python: RunPython) -> None:
    name = jobs["processing"]
    logs = boto3.client("logs", region_name=REGION)
    group = "/aws/sagemaker/ProcessingJobs"
    logs.create_log_group(logGroupName=group)
    now = int(time.time() * 1000)
    for host, message in (("algo-1", "first"), ("algo-2", "second")):
        stream = f"{name}/{host}-1700000000"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        logs.put_log_events(logGroupName=group, logStreamName=stream,
                            logEvents=[{"timestamp": now + len(host + message), "message": message}])

    text = run_python(*CLI, "logs", name)
    as_json = run_python(*CLI, "logs", name, "--json")

    assert text.stdout.splitlines() == ["[algo-1] first", "[algo-2] second"]
    assert [(e["host"], e["message"]) for e in map(json.loads, as_json.stdout.splitlines())] == [
        ("algo-1", "first"), ("algo-2", "second")]


def test_stop_stops_the_job(jobs: Dict[str, str], run_python: RunPython, aws: MotoServer) -> None:
    name = jobs["processing"]

    result = run_python(*CLI, "stop", name, "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"job_name": name, "kind": "processing", "where": "SageMaker",
                                         "stopping": True}
    described = boto3.client("sagemaker", region_name=REGION).describe_processing_job(ProcessingJobName=name)
    assert described["ProcessingJobStatus"] == "Stopped"
    assert "StopProcessingJob" in aws.operations("sagemaker")


def test_an_html_error_page_is_one_line_with_its_title(jobs: Dict[str, str], run_python: RunPython,
                                                       one_error_line: Callable[..., str]) -> None:
    # moto answers StopTrainingJob with its HTML "500 Internal Server Error" page
    result = run_python(*CLI, "stop", jobs["training"])
    assert result.returncode == 1
    line = one_error_line(result.stderr, jobs["training"], "500 Internal Server Error")
    assert "<" not in line


def test_ctrl_c_during_logs_leaves_the_job_running(monkeypatch: pytest.MonkeyPatch) -> None:
    # Stubber answers before anything is signed or sent, but botocore still wants credentials.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    sm, logs = boto3.client("sagemaker", region_name=REGION), boto3.client("logs", region_name=REGION)
    job = "cli-clean-data-1"
    running: Dict[str, Any] = {
        "ProcessingJobName": job, "ProcessingJobStatus": "InProgress", "CreationTime": 0,
        "ProcessingJobArn": f"arn:aws:sagemaker:{REGION}:123456789012:processing-job/{job}",
        "ProcessingResources": {"ClusterConfig": {
            "InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}},
        "AppSpecification": {"ImageUri": IMAGE},
    }
    sleeps: List[float] = []

    def ctrl_c(seconds: float) -> None:
        sleeps.append(seconds)
        raise KeyboardInterrupt

    class StubFinder(Finder):
        def find(self, name: str, kind: Any = None) -> FoundJob:
            return FoundJob(name, "processing", "SageMaker", SageMakerBackend(sm, logs, REGION))

    args = build_parser().parse_args(["logs", "--follow", job])
    err = io.StringIO()
    with Stubber(sm) as sm_stub, Stubber(logs) as logs_stub:
        sm_stub.add_response("describe_processing_job", running, {"ProcessingJobName": job})
        logs_stub.add_client_error("describe_log_streams", "ResourceNotFoundException", "no log group yet")
        # no StopProcessingJob answer is queued: a stop request would fail the test
        with pytest.raises(Interrupted) as info:
            run_command(args, StubFinder(AwsOptions()), out=io.StringIO(), err=err, sleep=ctrl_c,
                        clock=lambda: 0.0)
        sm_stub.assert_no_pending_responses()
        logs_stub.assert_no_pending_responses()

    assert sleeps and info.value.exit_code == 130
    assert "keeps running" in str(info.value) and job in str(info.value)
    assert "keeps running" in err.getvalue().splitlines()[-1]


# --- download ------------------------------------------------------------------------------------------

def _tar_gz(files: Dict[str, bytes], links: Dict[str, str] = {}) -> bytes:  # noqa: B006 - read only
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, target in links.items():  # links first: later entries may go through them
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _put(uri: str, data: bytes) -> None:
    bucket, key = uri[len("s3://"):].split("/", 1)
    boto3.client("s3", region_name=REGION).put_object(Bucket=bucket, Key=key, Body=data)


def test_download_processing_outputs(aws: MotoServer, run_script: RunPython, demo_dir: Path, tmp_path: Path,
                                     run_python: RunPython, one_error_line: Callable[..., str]) -> None:
    result = launch(run_script, demo_dir, tmp_path, "processing")
    output = result["output_artifacts"]["output"]
    # moto runs nothing: put what the job would have written
    _put(output + "/counts.json", b'{"a": 1}')
    _put(output + "/sub/counts.csv", b"a,1\n")
    target = tmp_path / "results"

    first = run_python(*CLI, "download", result["job_name"], "--to", target, "--json")
    again = run_python(*CLI, "download", result["job_name"], "output", "--to", target)
    forced = run_python(*CLI, "download", result["job_name"], "output", "--to", target, "--overwrite")

    assert first.returncode == 0, first.stderr
    assert (target / "output" / "counts.json").read_text() == '{"a": 1}'
    assert (target / "output" / "sub" / "counts.csv").read_text() == "a,1\n"
    assert json.loads(first.stdout) == [{"name": "output", "uri": output, "path": str(target / "output"),
                                         "files": 2, "bytes": 12}]
    assert again.returncode == 2
    one_error_line(again.stderr, "--overwrite", str(target / "output"))
    assert forced.returncode == 0, forced.stderr
    assert "progress" not in forced.stderr and "\r" not in forced.stderr  # no bar without a terminal


def test_download_training_model_and_output_unpacked(aws: MotoServer, run_script: RunPython, demo_dir: Path,
                                                     tmp_path: Path, run_python: RunPython,
                                                     one_error_line: Callable[..., str]) -> None:
    result = launch(run_script, demo_dir, tmp_path, "training")
    _put(result["model_artifact_url"], _tar_gz({"model.json": b"{}", "weights/w.bin": b"\x00\x01"}))
    _put(result["output_data_url"], _tar_gz({"report/summary.txt": b"ok", "other.txt": b"x"}))
    name = result["job_name"]

    everything = run_python(*CLI, "download", name, "--to", tmp_path / "all")
    one_folder = run_python(*CLI, "download", name, "report", "--to", tmp_path / "one")
    unknown = run_python(*CLI, "download", name, "../escape", "--to", tmp_path / "bad")

    assert everything.returncode == 0, everything.stderr
    assert (tmp_path / "all" / "model" / "weights" / "w.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "all" / "output" / "report" / "summary.txt").read_text() == "ok"
    assert one_folder.returncode == 0, one_folder.stderr
    assert sorted(p.name for p in (tmp_path / "one").rglob("*")) == ["report", "summary.txt"]
    assert unknown.returncode == 1
    one_error_line(unknown.stderr, "..")


@pytest.mark.parametrize("files,links,needle", [
    ({"/etc/evil": b"x"}, {}, "absolute"),
    ({"../evil": b"x"}, {}, ".."),
    ({}, {"link": "../../outside"}, "links outside"),
    ({"link/evil": b"x"}, {"link": "."}, "through a link"),
])
def test_download_refuses_archive_entries_that_leave_the_folder(aws: MotoServer, run_script: RunPython,
                                                                 demo_dir: Path, tmp_path: Path,
                                                                 run_python: RunPython,
                                                                 one_error_line: Callable[..., str],
                                                                 files: Dict[str, bytes], links: Dict[str, str],
                                                                 needle: str) -> None:
    result = launch(run_script, demo_dir, tmp_path, "training")
    _put(result["model_artifact_url"], _tar_gz(files, links))
    target = tmp_path / "deep" / "er" / "results"

    refused = run_python(*CLI, "download", result["job_name"], "model", "--to", target)

    assert refused.returncode == 1
    one_error_line(refused.stderr, needle)
    assert not (tmp_path / "deep" / "er" / "evil").exists() and not (tmp_path / "evil").exists()
    assert list((target / "model").iterdir()) == []


# --- rerun ----------------------------------------------------------------------------------------------

def test_rerun_creates_the_recorded_request_again_with_overrides(aws: MotoServer, run_script: RunPython,
                                                                  demo_dir: Path, tmp_path: Path,
                                                                  run_python: RunPython) -> None:
    first = launch(run_script, demo_dir, tmp_path, "processing", "--sagemaker-env", "MODE=demo")
    original = aws.json_bodies("CreateProcessingJob")[0]
    aws.clear_log()

    rerun = run_python(*CLI, "rerun", first["job_name"], "--instance-type", "ml.c5.2xlarge", "--env", "EXTRA=1",
                       "--max-run", "600", "--json")

    assert rerun.returncode == 0, rerun.stderr
    again = aws.json_bodies("CreateProcessingJob")[0]
    result = json.loads(rerun.stdout)
    assert result["status"] == "Completed" and result["rerun_of"] == first["job_name"]
    assert again["ProcessingJobName"] == result["job_name"] != first["job_name"]
    assert again["ProcessingJobName"].startswith("wordcount-")
    assert again["ProcessingResources"]["ClusterConfig"]["InstanceType"] == "ml.c5.2xlarge"
    assert again["StoppingCondition"] == {"MaxRuntimeInSeconds": 600}
    assert again["Environment"] == {"MODE": "demo", "EXTRA": "1"}
    # the same staged code, inputs and arguments: nothing is staged again
    assert again["ProcessingInputs"] == original["ProcessingInputs"]
    assert again["AppSpecification"] == original["AppSpecification"]
    assert {"Key": TAG, "Value": __version__} in again["Tags"]
    assert [u.key for u in aws.s3_uploads()] == [f"aws-sagemaker-remote/jobs/{result['job_name']}/launch.json"]


def test_rerun_on_another_machine_reads_the_record_beside_the_staged_code(
        aws: MotoServer, run_script: RunPython, demo_dir: Path, tmp_path: Path, run_python: RunPython,
        clean_environment: Path) -> None:
    first = launch(run_script, demo_dir, tmp_path, "training")
    original = aws.json_bodies("CreateTrainingJob")[0]
    shutil.rmtree(clean_environment / "launches")
    aws.clear_log()

    rerun = run_python(*CLI, "rerun", first["job_name"], "--instance-count", "2", "--job-name", "again-1",
                       "--tag", "run=2")

    assert rerun.returncode == 0, rerun.stderr
    again = aws.json_bodies("CreateTrainingJob")[0]
    assert again["TrainingJobName"] == "again-1"
    assert again["ResourceConfig"]["InstanceCount"] == 2
    assert again["InputDataConfig"] == original["InputDataConfig"]
    assert again["HyperParameters"] == original["HyperParameters"]
    assert {"Key": "run", "Value": "2"} in again["Tags"]


@pytest.mark.parametrize("flag,value", [
    ("--instance-type", "m5.large"), ("--instance-count", "0"), ("--job-name", "no_underscores"),
    ("--env", "NOEQUALS"), ("--max-run", "-5"),
])
def test_a_bad_override_is_refused_before_anything_is_asked(aws: MotoServer, run_python: RunPython,
                                                             one_error_line: Callable[..., str], flag: str,
                                                             value: str) -> None:
    result = run_python(*CLI, "rerun", "any-job", flag, value)
    assert result.returncode == 2
    one_error_line(result.stderr, flag, value)
    assert aws.requests == []


def test_rerun_of_a_job_without_a_record_says_so(aws: MotoServer, run_python: RunPython,
                                                  one_error_line: Callable[..., str]) -> None:
    foreign_job("someone-elses-job")
    result = run_python(*CLI, "rerun", "someone-elses-job")
    assert result.returncode == 2
    one_error_line(result.stderr, "someone-elses-job", "no launch record")
    assert aws.operations("sagemaker").count("CreateProcessingJob") == 1  # the foreign job only


# --- clean ----------------------------------------------------------------------------------------------

def _cas_keys() -> List[str]:
    s3 = boto3.client("s3", region_name=REGION)
    bucket = "sagemaker-us-east-1-123456789012"
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="aws-sagemaker-remote/cas/")
    return [o["Key"] for o in listed.get("Contents", [])]


def test_clean_lists_then_deletes_staged_trees_no_recent_job_uses(jobs: Dict[str, str], run_python: RunPython,
                                                                   aws: MotoServer) -> None:
    staged = _cas_keys()
    assert staged

    recent = run_python(*CLI, "clean", "--json")
    dry = run_python(*CLI, "clean", "--older-than", "0")
    dry_json = json.loads(run_python(*CLI, "clean", "--older-than", "0", "--json").stdout)

    assert json.loads(recent.stdout)["trees"] == []  # every tree is younger than the default 7 days
    assert dry.returncode == 0, dry.stderr
    assert "pass --yes" in dry.stderr
    assert dry.stdout.count("would delete s3://sagemaker-us-east-1-123456789012/aws-sagemaker-remote/cas/") == \
        len(dry_json["trees"]) > 0
    assert dry_json["deleted"] is False
    assert _cas_keys() == staged  # a dry listing deletes nothing
    assert "DeleteObjects" not in aws.operations("s3")

    deleted = run_python(*CLI, "clean", "--older-than", "0", "--yes")

    assert deleted.returncode == 0, deleted.stderr
    # only the generation object, rewritten so every machine's index of stored blobs is checked again
    assert _cas_keys() == ["aws-sagemaker-remote/cas/generation"]
    assert "deleted" in deleted.stderr


def test_clean_of_a_bucket_that_does_not_exist_finds_nothing(aws: MotoServer, run_python: RunPython) -> None:
    result = run_python(*CLI, "clean", "--bucket", "never-created", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["trees"] == []


@pytest.mark.parametrize("name", ["a" * 64, "a" * 64 + "-2"])
def test_the_launch_record_sits_beside_code_whatever_its_manifest_is_named(name: str) -> None:
    """A code channel's manifest of more than 8 MiB is named by its parts (``HEX-PARTS``): its
    job's launch record is still found beside it (``rerun`` from another machine reads it)."""
    from aws_sagemaker_remote.jobs import record_uri

    request = {"ProcessingJobName": "job-1",
               "ProcessingInputs": [{"InputName": "code", "S3Input": {"S3Uri": f"s3://b/pre/cas/sha256/{name}"}}]}
    assert record_uri("processing", request) == "s3://b/pre/jobs/job-1/launch.json"
