"""Faults caused for real through the fault proxy (``tests/faultproxy.py``) and the OS.

Each test runs a launcher as a user would (a subprocess), between it and the
moto server a proxy that loses answers, throttles one API, stalls or slows
uploads; or kills the launcher outright. What is asserted is what the user
sees: exit codes, the lines printed, what the server holds, which processes
and files are left.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Dict, List, Tuple

import boto3
import pytest
from cas_view import blob_name_of
from conftest import python_environment

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/python:3.11"
YES = ("--sagemaker-run=yes", "--sagemaker-role", ROLE, "--sagemaker-image", IMAGE)
IN_USE = "Job name must be unique within an AWS account and region, and a job with this name already exists"


# --- what is reported is what happened ------------------------------------------------------------

def test_lost_create_processing_response_is_recognised(fault_proxy: Any, aws: Any, run_script: Any,
                                                       demo_dir: Path, tmp_path: Path) -> None:
    # SageMaker creates the job, the answer never arrives, botocore asks again and is told the name is taken
    fault_proxy.lose_response("CreateProcessingJob")
    fault_proxy.fail("ResourceInUse", operation="CreateProcessingJob", times=1, message=IN_USE)
    result_file = tmp_path / "result.json"
    run = run_script(demo_dir / "wordcount.py", *YES, "--sagemaker-output-json", result_file)
    assert run.returncode == 0, run.stderr
    assert "error" not in run.stderr.lower()
    name = json.loads(result_file.read_text())["job_name"]
    assert f"created processing job {name}" in run.stderr
    assert "Completed" in run.stderr
    assert [e.fault for e in fault_proxy.events if e.operation == "CreateProcessingJob"] == ["lose", "fail"]
    created = aws.json_bodies("CreateProcessingJob")
    assert len(created) == 1  # one job, the one whose answer was lost
    assert boto3.client("sagemaker").describe_processing_job(ProcessingJobName=name)["ProcessingJobName"] == name


def test_lost_create_training_response_is_recognised(fault_proxy: Any, aws: Any, run_script: Any,
                                                     demo_dir: Path, tmp_path: Path) -> None:
    fault_proxy.lose_response("CreateTrainingJob")
    fault_proxy.fail("ResourceInUse", operation="CreateTrainingJob", times=1, message=IN_USE)
    result_file = tmp_path / "result.json"
    run = run_script(demo_dir / "train_linear.py", *YES, "--epochs", "2", "--sagemaker-output-json", result_file)
    assert run.returncode == 0, run.stderr
    name = json.loads(result_file.read_text())["job_name"]
    assert "Completed" in run.stderr
    assert len(aws.json_bodies("CreateTrainingJob")) == 1
    assert boto3.client("sagemaker").describe_training_job(TrainingJobName=name)["TrainingJobName"] == name


def test_lost_create_bucket_response_is_recognised(fault_proxy: Any, aws: Any, run_script: Any,
                                                   demo_dir: Path) -> None:
    # outside us-east-1 the retry of a CreateBucket that succeeded answers BucketAlreadyOwnedByYou
    fault_proxy.lose_response("CreateBucket")
    run = run_script(demo_dir / "wordcount.py", *YES, "--sagemaker-region", "eu-west-1")
    assert run.returncode == 0, run.stderr
    assert [e.fault for e in fault_proxy.events if e.operation == "CreateBucket"] == ["lose", "forwarded"]
    assert "Completed" in run.stderr


def test_a_name_taken_by_another_launch_is_still_an_error(fault_proxy: Any, aws: Any, run_script: Any,
                                                          demo_dir: Path, one_error_line: Any) -> None:
    # a job of that name exists and was not created by this launch: no token of ours on it
    sm = boto3.client("sagemaker")
    sm.create_processing_job(
        ProcessingJobName="taken-name", RoleArn=ROLE,
        AppSpecification={"ImageUri": IMAGE},
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                               "VolumeSizeInGB": 30}})
    fault_proxy.fail("ResourceInUse", operation="CreateProcessingJob", times=1, message=IN_USE)
    run = run_script(demo_dir / "wordcount.py", *YES, "--sagemaker-job-name", "taken-name")
    assert run.returncode == 1, run.stderr
    one_error_line(run.stderr, "taken-name", "ResourceInUse")
    assert "Completed" not in run.stderr


def test_throttled_logs_do_not_fail_a_completed_job(fault_proxy: Any, aws: Any, run_script: Any,
                                                    demo_dir: Path, tmp_path: Path) -> None:
    # CloudWatch Logs answers ThrottlingException for longer than the whole launch; SageMaker is fine
    fault_proxy.throttle("logs", seconds=120)
    result_file = tmp_path / "result.json"
    started = time.monotonic()
    run = run_script(demo_dir / "wordcount.py", *YES, "--sagemaker-output-json", result_file)
    took = time.monotonic() - started
    assert run.returncode == 0, run.stderr
    assert json.loads(result_file.read_text())["status"] == "Completed"
    assert "Completed" in run.stderr
    assert "logs are incomplete" in run.stderr
    assert "may still be running" not in run.stderr
    assert fault_proxy.faults("fail")  # the logs API really was throttled
    assert not [e for e in fault_proxy.faults("fail") if e.service != "logs"]
    assert took < 45, run.stderr


def test_throttled_logs_do_not_fail_a_completed_training_job(fault_proxy: Any, aws: Any, run_script: Any,
                                                             demo_dir: Path) -> None:
    fault_proxy.throttle("logs", seconds=120)
    run = run_script(demo_dir / "train_linear.py", *YES, "--epochs", "2")
    assert run.returncode == 0, run.stderr
    assert "Completed" in run.stderr
    assert "logs are incomplete" in run.stderr


# --- content addresses are true -------------------------------------------------------------------

HASHER = """
import hashlib, os
from aws_sagemaker_remote import sagemaker_processing_main

def main(args):
    for name in sorted(os.listdir(args.input)):
        with open(os.path.join(args.input, name), "rb") as fh:
            print("sha", name, hashlib.sha256(fh.read()).hexdigest(), flush=True)

if __name__ == "__main__":
    sagemaker_processing_main(main=main, inputs={"input": "data"}, base_job_name="hasher")
"""


def _launcher(args: Any, cwd: Path, **popen: Any) -> "subprocess.Popen[str]":
    return subprocess.Popen([sys.executable, *map(str, args)], cwd=cwd, env=python_environment(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **popen)


def test_a_file_rewritten_while_it_uploads_is_not_stored_under_its_old_digest(
        fault_proxy: Any, aws: Any, tmp_path: Path, one_error_line: Any) -> None:
    from aws_sagemaker_remote.store import SMALL_OBJECT

    project = tmp_path / "project"
    data = project / "data"
    data.mkdir(parents=True)
    (project / "hasher.py").write_text(HASHER)
    # larger than one request's worth: streamed through the transfer manager, checked as it is read
    size = SMALL_OBJECT + 512 * 1024
    original = {f"p{i}.bin": os.urandom(size) for i in range(1, 5)}
    for name, content in original.items():
        (data / name).write_bytes(content)
    digest = {name: hashlib.sha256(content).hexdigest() for name, content in original.items()}
    fault_proxy.rate_limit(1024 * 1024)  # about a second and a half per file

    proc = _launcher([project / "hasher.py", "--sagemaker-run=local", "--sagemaker-store=s3"], project)
    try:
        # p1's blob is on its way (large blobs go one after the other); p4, hashed already, is
        # rewritten in place before its turn
        fault_proxy.wait_for(lambda e: e.fault == "rate" and (e.key or "").endswith("/" + digest["p1.bin"]),
                             timeout=120)
        rewritten = os.urandom(size)
        with open(data / "p4.bin", "r+b") as fh:
            fh.write(rewritten)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    one_error_line(err, "p4.bin", "changed while it was being staged")
    assert "Completed" not in err
    assert "CreateProcessingJob" not in aws.operations()
    s3 = boto3.client("s3", endpoint_url=aws.url)
    bucket = "sagemaker-us-east-1-123456789012"
    objects = [o for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
               for o in page.get("Contents", [])]
    names = {o["Key"].rsplit("/", 1)[-1] for o in objects}
    # nothing under the old digest, nor the new bytes under any name
    assert digest["p4.bin"] not in names and hashlib.sha256(rewritten).hexdigest() not in names
    channels = []
    for obj in objects:  # and no channel (a ManifestFile object) names the old digest
        if obj["Size"] < 64 * 1024:
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            if body.startswith(b'[{"prefix"'):
                channels.append(json.loads(body))
    assert not [c for c in channels if digest["p4.bin"] in c[1:]]

    # the user puts the file back; the next launch stages it and the job reads the right bytes
    fault_proxy.clear()
    (data / "p4.bin").write_bytes(original["p4.bin"])
    proc = _launcher([project / "hasher.py", "--sagemaker-run=local", "--sagemaker-store=s3"], project)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    seen = dict(line.split()[2:4] for line in out.splitlines() if " sha " in line)
    assert seen == digest


def test_s3_store_refuses_bytes_that_do_not_have_the_digest(aws: Any, tmp_path: Path) -> None:
    from aws_sagemaker_remote.errors import ContentChanged
    from aws_sagemaker_remote.store import MULTIPART_THRESHOLD, S3Store

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="cas-check")
    store = S3Store(s3)
    small = tmp_path / "small.bin"
    small.write_bytes(b"hello")
    big = tmp_path / "big.bin"  # multipart: the check comes before CompleteMultipartUpload
    big.write_bytes(os.urandom(MULTIPART_THRESHOLD + 1024))
    for path in (small, big):
        wrong = hashlib.sha256(b"something else").hexdigest()
        with pytest.raises(ContentChanged, match=path.name):
            store.upload_file(str(path), f"s3://cas-check/{path.name}", sha256=wrong)
        right = blob_name_of(path.read_bytes())
        store.upload_file(str(path), f"s3://cas-check/ok-{path.name}", sha256=right)
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="cas-check").get("Contents", []))
    assert keys == ["ok-big.bin", "ok-small.bin"]
    assert not s3.list_multipart_uploads(Bucket="cas-check").get("Uploads")
    assert "PutObject" not in [r.operation for r in aws.requests if r.key == "small.bin"]
    assert "CompleteMultipartUpload" not in [r.operation for r in aws.requests if r.key == "big.bin"]
    assert s3.get_object(Bucket="cas-check", Key="ok-big.bin")["Body"].read() == big.read_bytes()


def test_local_store_refuses_bytes_that_do_not_have_the_digest(tmp_path: Path) -> None:
    from aws_sagemaker_remote.errors import ContentChanged
    from aws_sagemaker_remote.store import LocalStore

    store = LocalStore(str(tmp_path / "s3"))
    path = tmp_path / "f.bin"
    path.write_bytes(b"new bytes")
    with pytest.raises(ContentChanged):
        store.upload_file(str(path), "s3://b/cas/f.bin", sha256=hashlib.sha256(b"old bytes").hexdigest())
    with pytest.raises(ContentChanged):  # bytes sent from memory are checked the same way
        store.put_bytes(b"new bytes", "s3://b/cas/g.bin", sha256=hashlib.sha256(b"old bytes").hexdigest())
    assert store.list("s3://b/") == []
    assert not [p for p in (tmp_path / "s3").rglob("*") if p.is_file()]  # no temporary file either


@pytest.mark.parametrize("size", [5, 8 * 1024 * 1024, 8 * 1024 * 1024 + 1, 2 * 8 * 1024 * 1024 + 3])
def test_local_store_names_bytes_as_s3_does(tmp_path: Path, size: int) -> None:
    """The local stand-in store checks the name S3 would (the parts' composite above 8 MiB),
    for a file and for bytes, and refuses the SHA-256 of the whole where the parts name it."""
    from aws_sagemaker_remote.errors import ContentChanged
    from aws_sagemaker_remote.store import LocalStore

    store = LocalStore(str(tmp_path / "s3"))
    data = os.urandom(size)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    name = blob_name_of(data)
    store.upload_file(str(path), f"s3://b/cas/{name}", sha256=name)
    store.put_bytes(data, f"s3://b/mem/{name}", sha256=name)
    assert store.get_bytes(f"s3://b/cas/{name}") == data == store.get_bytes(f"s3://b/mem/{name}")
    whole = hashlib.sha256(data).hexdigest()
    if whole != name:
        with pytest.raises(ContentChanged):
            store.upload_file(str(path), "s3://b/cas/whole", sha256=whole)
        with pytest.raises(ContentChanged):
            store.put_bytes(data, "s3://b/mem/whole", sha256=whole)


# --- processes and leftovers ----------------------------------------------------------------------

#: Runs a script as a terminal would: SIGINT raises KeyboardInterrupt even when this test
#: process was started with SIGINT ignored (a background job of a non-interactive shell).
AS_FROM_A_TERMINAL = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                      "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")


def _ctrl_c(proc: "subprocess.Popen[str]", ready: Any, settle: float) -> Tuple[str, str, float]:
    """Once ``ready()`` is true and ``settle`` seconds more have passed, SIGINT ``proc`` as a
    terminal's Ctrl-C would: (its stdout, its stderr, seconds from the signal to its exit)."""
    try:
        assert ready()
        time.sleep(settle)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        return out, err, time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()


def test_ctrl_c_during_a_stalled_upload_exits_130_at_once(fault_proxy: Any, aws: Any, demo_dir: Path,
                                                          tmp_path: Path) -> None:
    fault_proxy.stall("PutObject", key_contains="/cas/sha256/")  # one of the code's blobs
    proc = _launcher(["-c", AS_FROM_A_TERMINAL, demo_dir / "wordcount.py", *YES], tmp_path)
    # once the launcher is waiting for an answer that does not come
    _out, err, took = _ctrl_c(proc, lambda: fault_proxy.stalling.wait(60), 0.5)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert "Traceback" not in err
    assert took < 10, f"{took:.1f} s after SIGINT"
    assert "CreateProcessingJob" not in aws.operations()


SLEEPER = """
import os, time
from aws_sagemaker_remote import sagemaker_processing_main

def main(args):
    print("started", flush=True)
    time.sleep(float(os.environ.get("SLEEP_FOR", "0")))

if __name__ == "__main__":
    sagemaker_processing_main(main=main, base_job_name="sleeper")
"""


def _processes_with(marker: str) -> list:
    """Ids of this user's processes whose environment holds ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if marker.encode() in fh.read():
                    found.append(int(entry))
        except OSError:
            continue  # gone, or not ours
    return found


def _wait_until(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_kill_9_of_the_launcher_leaves_no_process_and_the_next_start_cleans_up(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    script = tmp_path / "sleeper.py"
    script.write_text(SLEEPER)
    marker = f"FAULTS_MARKER_{os.getpid()}_{time.monotonic_ns()}"
    env = python_environment({"TMPDIR": str(temp)})
    proc = subprocess.Popen([sys.executable, str(script), "--sagemaker-run=local", "--sagemaker-env",
                             f"{marker}=1", "--sagemaker-env", "SLEEP_FOR=120"], cwd=tmp_path, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        for line in proc.stdout:
            if "started" in line:
                break
            assert time.monotonic() < deadline
        job_processes = _processes_with(marker)
        assert job_processes  # the bootstrap and the script
        proc.kill()  # SIGKILL: no Python code of the launcher runs any more
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    try:
        assert _wait_until(lambda: not _processes_with(marker), timeout=10), _processes_with(marker)
    finally:
        for pid in _processes_with(marker):  # never leave them behind, even when the test fails
            os.kill(pid, signal.SIGKILL)
    left = sorted(p.name for p in temp.iterdir())
    assert [name for name in left if "sleeper-" in name], left  # the dead launcher's job folder

    # the next start (a quick job) removes what the killed launch left
    run = subprocess.run([sys.executable, str(script), "--sagemaker-run=local"], cwd=tmp_path, env=env,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in temp.iterdir()) == []


def test_the_next_start_removes_only_leftovers_whose_owner_is_gone(tmp_path: Path, run_script: Any) -> None:
    from aws_sagemaker_remote.leftovers import host_tag

    temp = tmp_path / "tmp"
    temp.mkdir()
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    tag = host_tag()
    stale_bundle = temp / f"aws-sagemaker-remote-bundle-{tag}-{ended.pid}-x1y2.tar.gz"
    stale_bundle.write_bytes(b"old bundle")
    stale_job = temp / f"aws-sagemaker-remote-job-{tag}-{ended.pid}-sleeper-1-abcd"
    (stale_job / "algo-1").mkdir(parents=True)
    live = temp / f"aws-sagemaker-remote-bundle-{tag}-{os.getpid()}-live.tar.gz"  # this test is alive
    live.write_bytes(b"in use")
    other_host = temp / f"aws-sagemaker-remote-job-000000-{ended.pid}-x-1"  # another machine's, shared /tmp
    other_host.mkdir()
    unrelated = temp / "bundle-unrelated.tar.gz"
    unrelated.write_bytes(b"not ours")
    script = tmp_path / "sleeper.py"
    script.write_text(SLEEPER)
    run = run_script(script, "--sagemaker-run=local", env={"TMPDIR": str(temp)})
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in temp.iterdir()) == sorted([live.name, other_host.name, unrelated.name])


def test_the_launch_token_rides_with_the_user_tags_within_the_limit() -> None:
    from aws_sagemaker_remote.backends.sagemaker import LAUNCH_TOKEN_TAG, MAX_TAGS, with_launch_token

    request = {"ProcessingJobName": "j", "Tags": [{"Key": "team", "Value": "ml"}]}
    sent = with_launch_token(request, "abc")
    assert sent["Tags"] == [{"Key": "team", "Value": "ml"}, {"Key": LAUNCH_TOKEN_TAG, "Value": "abc"}]
    assert request["Tags"] == [{"Key": "team", "Value": "ml"}]  # the rendered request is left as it is
    assert with_launch_token({"ProcessingJobName": "j"}, "abc")["Tags"] == [{"Key": LAUNCH_TOKEN_TAG, "Value": "abc"}]
    full = {"Tags": [{"Key": f"k{i}", "Value": "v"} for i in range(MAX_TAGS)]}
    assert with_launch_token(full, "abc") == full  # SageMaker would refuse a 51st tag


def test_s3_store_stores_files_of_every_size_when_the_digest_matches(aws: Any, tmp_path: Path) -> None:
    from aws_sagemaker_remote.store import MULTIPART_THRESHOLD, S3Store

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="cas-sizes")
    store = S3Store(s3)
    seen: List[int] = []
    for size in (0, 1, MULTIPART_THRESHOLD):  # empty, tiny, exactly the multipart threshold
        path = tmp_path / f"f{size}.bin"
        path.write_bytes(os.urandom(size))
        store.upload_file(str(path), f"s3://cas-sizes/{path.name}", seen.append,
                          sha256=blob_name_of(path.read_bytes()))
        assert s3.get_object(Bucket="cas-sizes", Key=path.name)["Body"].read() == path.read_bytes()
    assert sum(seen) == 1 + MULTIPART_THRESHOLD  # progress counts every byte sent


def test_ctrl_c_during_a_stalled_download_exits_130_at_once(fault_proxy: Any, aws: Any, demo_dir: Path,
                                                            tmp_path: Path) -> None:
    s3 = boto3.client("s3", endpoint_url=aws.url)
    s3.create_bucket(Bucket="stalled-input")
    s3.put_object(Bucket="stalled-input", Key="in/words.txt", Body=b"a b c\n" * 1000)
    fault_proxy.stall("GetObject", key_contains="words.txt")
    proc = _launcher(["-c", AS_FROM_A_TERMINAL, demo_dir / "wordcount.py", "--input", "s3://stalled-input/in/",
                      "--output", tmp_path / "out"], tmp_path)
    _out, err, took = _ctrl_c(proc, lambda: fault_proxy.stalling.wait(60), 0.5)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert took < 10, f"{took:.1f} s after SIGINT"
    home = Path(os.environ["AWS_SAGEMAKER_REMOTE_HOME"])
    assert not [p for p in home.rglob("words.txt*") if p.is_file()]  # no partial download presented as data


def test_a_blob_whose_bytes_do_not_have_its_digest_is_refused_before_anything_is_sent(aws: Any,
                                                                                       tmp_path: Path) -> None:
    from aws_sagemaker_remote.errors import ContentChanged
    from aws_sagemaker_remote.store import S3Store
    from aws_sagemaker_remote.transfers import STREAM_CHUNKSIZE

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="cas-abort")
    for size in (1024, 3 * STREAM_CHUNKSIZE + 1024):  # one request; four parts
        path = tmp_path / f"f{size}.bin"
        path.write_bytes(os.urandom(size))
        with pytest.raises(ContentChanged, match=path.name):
            S3Store(s3).upload_file(str(path), f"s3://cas-abort/{path.name}",
                                    sha256=hashlib.sha256(b"other bytes").hexdigest())
    assert not [r.operation for r in aws.requests if r.bucket == "cas-abort" and r.key]
    assert not s3.list_multipart_uploads(Bucket="cas-abort").get("Uploads")
    assert not s3.list_objects_v2(Bucket="cas-abort").get("Contents")


@pytest.mark.parametrize("parts", [1, 4])
def test_a_file_changed_after_it_was_hashed_is_never_stored_under_its_digest(aws: Any, tmp_path: Path,
                                                                             parts: int) -> None:
    """What staging does: digest and part CRCs from one read, the upload later; the file
    changes in between (same size, one part's bytes), as a script writing its input would."""
    from aws_sagemaker_remote.errors import ContentChanged
    from aws_sagemaker_remote.store import S3Store
    from aws_sagemaker_remote.transfers import STREAM_CHUNKSIZE, file_digests

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="cas-changed")
    path = tmp_path / "data.bin"
    size = 1024 * 1024 if parts == 1 else 3 * STREAM_CHUNKSIZE + 1024
    path.write_bytes(os.urandom(size))
    digest, checks = file_digests(str(path))
    assert len(checks) == parts
    with open(path, "r+b") as fh:
        fh.seek(size - 1000)  # in the last part: the earlier ones go up, checked, first
        fh.write(os.urandom(10))
    with pytest.raises(ContentChanged, match="data.bin"):
        S3Store(s3).upload_file(str(path), f"s3://cas-changed/{digest}", sha256=digest, checks=checks)
    operations = [r.operation for r in aws.requests if r.key == digest]
    if parts == 1:
        assert operations == []  # read, checked, refused: nothing sent
    else:
        assert "AbortMultipartUpload" in operations and "CompleteMultipartUpload" not in operations, operations
    assert not s3.list_multipart_uploads(Bucket="cas-changed").get("Uploads")
    assert not s3.list_objects_v2(Bucket="cas-changed").get("Contents")


def test_each_request_carries_the_sha256_s3_checks_and_botocore_adds_none(aws: Any, tmp_path: Path) -> None:
    """A whole file goes with its SHA-256 (its name), a part with its own SHA-256: the values
    S3 checks the received bytes against, as botocore's own checksum code computes them."""
    from botocore.httpchecksum import Sha256Checksum

    from aws_sagemaker_remote.store import S3Store
    from aws_sagemaker_remote.transfers import STREAM_CHUNKSIZE, file_digests

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="cas-sums")
    store = S3Store(s3)
    small, big = tmp_path / "small.bin", tmp_path / "big.bin"
    small.write_bytes(os.urandom(300 * 1024))
    big.write_bytes(os.urandom(2 * STREAM_CHUNKSIZE + 5))
    for path in (small, big):
        digest, checks = file_digests(str(path))
        assert digest == blob_name_of(path.read_bytes())
        store.upload_file(str(path), f"s3://cas-sums/{path.name}", sha256=digest, checks=checks)
        assert s3.get_object(Bucket="cas-sums", Key=path.name)["Body"].read() == path.read_bytes()
    # the big file's name is the checksum the server made of the parts it stored (COMPOSITE; S3
    # writes it with "-<parts>" after it, moto without)
    sha, _, parts = file_digests(str(big))[0].partition("-")
    stored = s3.get_object_attributes(Bucket="cas-sums", Key=big.name, ObjectAttributes=["Checksum"])["Checksum"]
    assert stored["ChecksumType"] == "COMPOSITE" and parts == "3"
    assert stored["ChecksumSHA256"] in {base64.b64encode(bytes.fromhex(sha)).decode("ascii") + suffix
                                        for suffix in ("", "-3")}

    def sha256_header(data: bytes) -> str:
        checksum = Sha256Checksum()
        checksum.update(data)
        return str(checksum.b64digest())

    (put,) = [r for r in aws.requests if r.key == "small.bin" and r.method == "PUT"]
    assert put.operation == "PutObject"
    assert dict(put.checksums) == {"x-amz-checksum-sha256": sha256_header(small.read_bytes())}
    data = big.read_bytes()
    sent = {int(r.query_params["partNumber"][0]): dict(r.checksums) for r in aws.requests
            if r.key == "big.bin" and r.operation == "UploadPart"}
    assert sorted(sent) == [1, 2, 3]
    for number, headers in sent.items():
        part = data[(number - 1) * STREAM_CHUNKSIZE:number * STREAM_CHUNKSIZE]
        assert headers == {"x-amz-checksum-sha256": sha256_header(part)}, (number, headers)


def test_a_body_sent_with_its_sha256_is_not_hashed_again_for_the_signature(aws: Any, tmp_path: Path) -> None:
    """Over plain HTTP botocore signs the SHA-256 of every body, reading it once more. A blob
    or part carries ``x-amz-checksum-sha256`` (signed, and checked by S3 against the bytes),
    so its body goes as ``UNSIGNED-PAYLOAD``; every other request keeps its signed payload hash."""
    from aws_sagemaker_remote.aws import make_clients
    from aws_sagemaker_remote.store import S3Store
    from aws_sagemaker_remote.transfers import STREAM_CHUNKSIZE, file_digests

    s3 = make_clients(boto3.Session()).s3
    s3.create_bucket(Bucket="cas-unsigned")
    store = S3Store(s3)
    small, big = tmp_path / "small.bin", tmp_path / "big.bin"
    small.write_bytes(os.urandom(1000))
    big.write_bytes(os.urandom(STREAM_CHUNKSIZE + 5))
    for path in (small, big):
        digest, checks = file_digests(str(path))
        store.upload_file(str(path), f"s3://cas-unsigned/{path.name}", sha256=digest, checks=checks)
    listing = b'{"files": []}'
    store.put_bytes(listing, "s3://cas-unsigned/listing.json")  # no checksum of ours: signed as before
    for path in (small, big):
        assert s3.get_object(Bucket="cas-unsigned", Key=path.name)["Body"].read() == path.read_bytes()

    sent = [r for r in aws.requests if r.bucket == "cas-unsigned" and r.method in ("PUT", "POST")]
    checked = [r for r in sent if dict(r.checksums).get("x-amz-checksum-sha256")]
    assert sorted(r.operation or "" for r in checked) == ["PutObject", "UploadPart", "UploadPart"]
    assert {r.payload_hash for r in checked} == {"UNSIGNED-PAYLOAD"}
    others = {r.operation: r.payload_hash for r in sent if r not in checked}
    assert set(others) >= {"CreateBucket", "CreateMultipartUpload", "CompleteMultipartUpload", "PutObject"}
    for operation, payload_hash in others.items():
        assert re.fullmatch(r"[0-9a-f]{64}", payload_hash or ""), (operation, payload_hash)
    assert others["PutObject"] == hashlib.sha256(listing).hexdigest()


def test_payload_signing_set_in_the_aws_config_is_kept(aws: Any, tmp_path: Path, monkeypatch: Any) -> None:
    from aws_sagemaker_remote.aws import make_clients
    from aws_sagemaker_remote.store import S3Store
    from aws_sagemaker_remote.transfers import file_digests

    config = tmp_path / "config"
    config.write_text("[default]\ns3 =\n    payload_signing_enabled = true\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    s3 = make_clients(boto3.Session()).s3
    s3.create_bucket(Bucket="cas-signed")
    path = tmp_path / "small.bin"
    path.write_bytes(os.urandom(1000))
    digest, checks = file_digests(str(path))
    S3Store(s3).upload_file(str(path), "s3://cas-signed/small.bin", sha256=digest, checks=checks)
    (put,) = [r for r in aws.requests if r.key == "small.bin" and r.method == "PUT"]
    assert dict(put.checksums).get("x-amz-checksum-sha256") and put.payload_hash == digest


def _keeping_the_crc(data: bytes, change_at: int, fix_at: int) -> bytes:
    """``data`` with the byte at ``change_at`` flipped and the 4 at ``fix_at`` set so that the
    CRC-32 stays the same (a CRC is linear over GF(2): solve for the 32 bits that cancel it)."""
    empty = zlib.crc32(bytes(len(data)))

    def effect(flips: Dict[int, int]) -> int:  # the CRC change a set of bit flips makes
        delta = bytearray(len(data))
        for at, bits in flips.items():
            delta[at] = bits
        return zlib.crc32(bytes(delta)) ^ empty

    target = effect({change_at: 0xFF})
    pivots: Dict[int, Tuple[int, int]] = {}  # top bit -> (effect, which of the 32 fix bits)
    for bit in range(32):
        value, mask = effect({fix_at + bit // 8: 1 << (bit % 8)}), 1 << bit
        for top in range(31, -1, -1):
            if value >> top & 1:
                if top not in pivots:
                    pivots[top] = (value, mask)
                    break
                value, mask = value ^ pivots[top][0], mask ^ pivots[top][1]
    mask = 0
    for top in range(31, -1, -1):
        if target >> top & 1:
            target, mask = target ^ pivots[top][0], mask ^ pivots[top][1]
    out = bytearray(data)
    out[change_at] ^= 0xFF
    for bit in range(32):
        if mask >> bit & 1:
            out[fix_at + bit // 8] ^= 1 << (bit % 8)
    assert zlib.crc32(bytes(out)) == zlib.crc32(data) and bytes(out) != data
    return bytes(out)


def test_a_change_that_keeps_a_parts_crc_is_caught_by_its_sha256(aws: Any, tmp_path: Path) -> None:
    """A part of a big file is checked against its SHA-256 as it is sent (as S3 checks the
    ``ChecksumSHA256`` sent with it), so a change made to keep each CRC is refused here as
    well, even by a server that checks nothing (moto stores parts without checking): the
    upload is aborted and nothing is stored."""
    from aws_sagemaker_remote.errors import ContentChanged
    from aws_sagemaker_remote.store import S3Store
    from aws_sagemaker_remote.transfers import STREAM_CHUNKSIZE, file_digests

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="cas-forged")
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(STREAM_CHUNKSIZE + 4096))
    digest, checks = file_digests(str(path))
    first = path.read_bytes()[:STREAM_CHUNKSIZE]
    forged = _keeping_the_crc(first, 5000, 9000)
    with open(path, "r+b") as fh:
        fh.write(forged)
    with pytest.raises(ContentChanged, match="big.bin"):
        S3Store(s3).upload_file(str(path), f"s3://cas-forged/{digest}", sha256=digest, checks=checks)
    operations = [r.operation for r in aws.requests if r.key == digest]
    assert "AbortMultipartUpload" in operations and "CompleteMultipartUpload" not in operations, operations
    assert not s3.list_objects_v2(Bucket="cas-forged").get("Contents")
    assert not s3.list_multipart_uploads(Bucket="cas-forged").get("Uploads")


def test_parts_that_do_not_make_the_name_are_refused_before_anything_is_sent(aws: Any, tmp_path: Path) -> None:
    """Checks handed in with a name (from the stat cache) must make that name: otherwise the
    file would be stored under a name S3 never sees (it checks each part, not the name)."""
    from aws_sagemaker_remote.errors import ContentChanged
    from aws_sagemaker_remote.store import S3Store
    from aws_sagemaker_remote.transfers import STREAM_CHUNKSIZE, file_digests

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="cas-misnamed")
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(STREAM_CHUNKSIZE + 10))
    name, checks = file_digests(str(path))
    wrong = "0" * 64 + "-2"
    with pytest.raises(ContentChanged, match="big.bin"):
        S3Store(s3).upload_file(str(path), f"s3://cas-misnamed/{wrong}", sha256=wrong, checks=checks)
    assert not [r for r in aws.requests if r.key == wrong]
    S3Store(s3).upload_file(str(path), f"s3://cas-misnamed/{name}", sha256=name, checks=checks)
    assert s3.get_object(Bucket="cas-misnamed", Key=name)["Body"].read() == path.read_bytes()


HASH_A_BIG_FILE = """
import sys
from aws_sagemaker_remote.transfers import file_digests
print("hashing", flush=True)
file_digests(sys.argv[1])
print("hashed", flush=True)
"""


def test_ctrl_c_while_a_big_file_is_hashed_stops_every_hashing_thread(tmp_path: Path) -> None:
    """The parts are hashed on several threads: Ctrl-C stops them all at once, rather than
    after the whole file has been read (a sparse file of 256 GiB: a minute of hashing or more)."""
    sparse = tmp_path / "sparse.bin"
    with open(sparse, "wb") as fh:
        fh.truncate(256 * 1024 ** 3)  # no blocks on disk: reads return zeros
    script = tmp_path / "hash.py"
    script.write_text(HASH_A_BIG_FILE)
    proc = subprocess.Popen([sys.executable, "-c", AS_FROM_A_TERMINAL, str(script), str(sparse)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=python_environment())
    assert proc.stdout is not None
    stdout = proc.stdout
    # a second after it started, every hashing thread is reading
    out, err, took = _ctrl_c(proc, lambda: stdout.readline().strip() == "hashing", 1.0)
    assert "KeyboardInterrupt" in err and "hashed" not in out, err
    assert took < 10, f"{took:.1f} s after SIGINT"


def _in_background(work: Any) -> Tuple[threading.Event, List[BaseException]]:
    """Run ``work()`` on a daemon thread: (set when it ends, what it raised)."""
    done = threading.Event()
    errors: List[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # the test checks it
            errors.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    return done, errors


def test_a_part_whose_bytes_change_while_it_is_sent_never_completes_and_the_upload_is_aborted(
        fault_proxy: Any, aws: Any, tmp_path: Path) -> None:
    from aws_sagemaker_remote.errors import ContentChanged
    from aws_sagemaker_remote.store import S3Store
    from aws_sagemaker_remote.transfers import STREAM_CHUNKSIZE

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="cas-torn")
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(STREAM_CHUNKSIZE + 1024 * 1024))  # two parts, both sent at once
    digest = blob_name_of(path.read_bytes())
    fault_proxy.rate_limit(1024 * 1024, operation="UploadPart")  # the first part takes seconds to send
    done, errors = _in_background(
        lambda: S3Store(boto3.client("s3")).upload_file(str(path), "s3://cas-torn/blob", sha256=digest))
    fault_proxy.wait_for(lambda e: e.fault == "rate" and e.operation == "UploadPart", timeout=60)
    with open(path, "r+b") as fh:  # the file was hashed whole already: the end of part one changes
        fh.seek(STREAM_CHUNKSIZE - 512 * 1024)
        fh.write(os.urandom(512 * 1024))
    assert done.wait(120)
    assert len(errors) == 1 and isinstance(errors[0], ContentChanged), errors
    operations = [r.operation for r in aws.requests if r.key == "blob"]
    assert "AbortMultipartUpload" in operations and "CompleteMultipartUpload" not in operations, operations
    assert not s3.list_multipart_uploads(Bucket="cas-torn").get("Uploads")
    assert not s3.list_objects_v2(Bucket="cas-torn").get("Contents")


def test_a_large_blob_goes_up_in_parallel_parts_bounded_in_number(
        fault_proxy: Any, aws: Any, tmp_path: Path) -> None:
    from aws_sagemaker_remote.store import STREAM_CONCURRENCY, S3Store
    from aws_sagemaker_remote.transfers import STREAM_CHUNKSIZE

    in_flight = STREAM_CONCURRENCY
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="cas-parts")
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom((in_flight + 3) * STREAM_CHUNKSIZE))
    digest = blob_name_of(path.read_bytes())
    fault_proxy.stall("UploadPart", times=1000)  # no part is answered until released
    done, errors = _in_background(
        lambda: S3Store(boto3.client("s3")).upload_file(str(path), "s3://cas-parts/blob", sha256=digest))
    try:
        fault_proxy.wait_for(lambda e: len(fault_proxy.faults("stall")) >= in_flight, timeout=60)
        time.sleep(1.0)  # room for any part beyond the bound to show up
        # several parts are on their way at once, and never more than the bound
        stalled = fault_proxy.faults("stall")
        assert len(stalled) == in_flight, stalled
    finally:
        fault_proxy.clear()
        fault_proxy.release()
    assert done.wait(120) and not errors, errors
    assert s3.get_object(Bucket="cas-parts", Key="blob")["Body"].read() == path.read_bytes()
    numbers = {r.query.split("partNumber=")[1].split("&")[0] for r in aws.requests
               if r.key == "blob" and r.operation == "UploadPart" and r.status == 200}
    assert numbers == {str(n) for n in range(1, in_flight + 4)}


def test_the_transfer_pool_starts_a_thread_for_each_job_an_idle_one_cannot_take() -> None:
    """Work submitted in a burst while one thread is idle: each job runs at once (up to the
    bound), not after the one before it ends. A job here blocks until released, as a stalled
    request would."""
    from aws_sagemaker_remote.transfers import DaemonExecutor

    pool = DaemonExecutor(4)
    release = threading.Event()
    started: List[int] = []
    try:
        pool.submit(lambda: None).result(timeout=10)
        time.sleep(0.2)  # that thread is idle now, waiting for work

        def job(n: int) -> None:
            started.append(n)
            release.wait(30)

        futures = [pool.submit(job, n) for n in range(6)]
        deadline = time.monotonic() + 10
        while len(started) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # room for a fifth to start, which the bound forbids
        assert sorted(started) == [0, 1, 2, 3], started
    finally:
        release.set()
    for future in futures:
        future.result(timeout=10)
    assert sorted(started) == list(range(6))
    pool.shutdown(wait=True)


def test_a_prefix_trees_large_files_go_up_one_at_a_time_beside_the_small_ones(
        fault_proxy: Any, aws: Any, tmp_path: Path) -> None:
    """Files above 1 MiB are read whole (up to a part's size) before they are sent: ten at
    once would hold ten of them in memory. They go one after the other while the small ones
    go ten at a time."""
    from aws_sagemaker_remote.stage import HashCache, StagedIndex, plan_tree, tree_of_path, upload_tree
    from aws_sagemaker_remote.store import SMALL_OBJECT, S3Store

    folder = tmp_path / "tree"
    folder.mkdir()
    for i in range(4):
        (folder / f"big-{i}.bin").write_bytes(os.urandom(SMALL_OBJECT + 4096))
    for i in range(6):
        (folder / f"small-{i}.txt").write_text(f"small {i}\n")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="tree-lanes")
    store = S3Store(s3)
    plan = plan_tree(store, "tree-lanes", "pre", tree_of_path(str(folder), HashCache(str(tmp_path / "h.json"))),
                     StagedIndex("s3", str(tmp_path / "index.json")))
    fault_proxy.stall("PutObject", key_contains="big-", times=100)
    done, errors = _in_background(lambda: upload_tree(store, "tree-lanes", "pre", plan))
    try:
        fault_proxy.wait_for(lambda e: e.fault == "stall", timeout=60)
        fault_proxy.wait_for(lambda e: len([x for x in fault_proxy.events if x.operation == "PutObject"
                                            and "small-" in (x.key or "")]) == 6, timeout=60)
        time.sleep(0.5)  # room for a second large one to start, which must not
        assert len(fault_proxy.faults("stall")) == 1, fault_proxy.faults("stall")
    finally:
        fault_proxy.clear()
        fault_proxy.release()
    assert done.wait(120) and not errors, errors
    stored = {o["Key"].rsplit("/", 1)[-1] for o in s3.list_objects_v2(Bucket="tree-lanes")["Contents"]}
    assert {f"big-{i}.bin" for i in range(4)} | {f"small-{i}.txt" for i in range(6)} <= stored


def test_after_the_first_error_no_new_transfer_starts_and_the_large_ones_stop() -> None:
    """Jobs reach the pool a few at a time, so the first error leaves the rest unstarted; the
    one job sending the large files one after the other stops at it too."""
    from aws_sagemaker_remote.stage import _call, _small_beside_large
    from aws_sagemaker_remote.store import SMALL_OBJECT, in_parallel

    started: List[str] = []
    lock = threading.Lock()

    def send(name: str) -> None:
        with lock:
            started.append(name)
        time.sleep(0.05)
        if name == "small-3":
            raise OSError("disk gone")

    jobs = [(f"large-{i}",) for i in range(50)] + [(f"small-{i}",) for i in range(500)]
    with pytest.raises(OSError, match="disk gone"):
        in_parallel(_call, _small_beside_large(jobs, lambda job: SMALL_OBJECT + 1 if job[0].startswith("large")
                                               else 1, send), 4)
    larges = [name for name in started if name.startswith("large")]
    smalls = [name for name in started if name.startswith("small")]
    assert "small-3" in smalls and len(smalls) < 20, smalls  # not the 500
    assert len(larges) < 5, larges  # one at a time, and none after the error

    ran: List[int] = []
    in_parallel(lambda n: ran.append(n), [(n,) for n in range(300)], 4)  # without errors, every job runs once
    assert sorted(ran) == list(range(300))


@pytest.mark.parametrize("size_parts", [1, 2])
def test_s3_refusing_the_checksum_means_the_file_changed(fault_proxy: Any, aws: Any, tmp_path: Path,
                                                         size_parts: int) -> None:
    """S3 answers BadDigest when the bytes it received do not have the checksum sent with them
    (a change the CRCs did not show): the user sees the one line of a changed file, and a
    multipart upload is aborted."""
    from aws_sagemaker_remote.errors import ContentChanged
    from aws_sagemaker_remote.store import S3Store
    from aws_sagemaker_remote.transfers import STREAM_CHUNKSIZE, file_digests

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="cas-bad-digest")
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(1000 if size_parts == 1 else STREAM_CHUNKSIZE + 1000))
    digest, checks = file_digests(str(path))
    fault_proxy.fail("BadDigest", operation="PutObject" if size_parts == 1 else "UploadPart", times=1,
                     message="The SHA256 you specified did not match the calculated checksum.")
    with pytest.raises(ContentChanged, match="f.bin"):
        S3Store(boto3.client("s3")).upload_file(str(path), f"s3://cas-bad-digest/{digest}", sha256=digest,
                                                checks=checks)
    assert not s3.list_objects_v2(Bucket="cas-bad-digest").get("Contents")
    assert not s3.list_multipart_uploads(Bucket="cas-bad-digest").get("Uploads")
