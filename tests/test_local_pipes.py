"""Pipe-mode channels of the local backend: FIFOs ``<channel>_<epoch>`` fed while the job runs.

Each test hands the backend a hand-built ``CreateTrainingJob`` request (checked
against botocore's service model) whose entrypoint is a small standard-library
script: it opens the channel's FIFOs, reads them and prints what it read as hex,
so the assertions are on the exact bytes a job on SageMaker would read.
"""
from __future__ import annotations

import io
import json
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from test_local_backend import BUCKET, check_request, messages, run_job, training_request

from aws_sagemaker_remote.backends.base import LogCursor
from aws_sagemaker_remote.backends.local import LocalBackend
from aws_sagemaker_remote.container import DEFAULT as PATHS
from aws_sagemaker_remote.store import LocalStore
from aws_sagemaker_remote.util.recordio import read_recordio, recordio_bytes

#: Reads ``EPOCHS`` epochs of the channel whose path is argv[1] and prints each as hex.
READER = textwrap.dedent("""
    import os, stat, sys, time
    base, epochs = sys.argv[1], int(sys.argv[2])
    print("folder exists", os.path.exists(base), flush=True)
    for number in range(epochs):
        path = "{}_{}".format(base, number)
        deadline = time.time() + 20
        while not os.path.exists(path):
            if time.time() > deadline:
                print("missing", path, flush=True)
                sys.exit(3)
            time.sleep(0.02)
        kind = "fifo" if stat.S_ISFIFO(os.stat(path).st_mode) else "file"
        with open(path, "rb") as fh:
            data = fh.read()
        print("epoch", number, kind, data.hex(), flush=True)
""")




def pipe_channel(name: str, uri: str, *, wrapper: str = "None", data_type: str = "S3Prefix",
                 distribution: str = "FullyReplicated", attributes: Optional[List[str]] = None,
                 mode: str = "Pipe") -> Dict[str, Any]:
    source: Dict[str, Any] = {"S3DataType": data_type, "S3Uri": uri, "S3DataDistributionType": distribution}
    if attributes is not None:
        source["AttributeNames"] = attributes
    return {"ChannelName": name, "DataSource": {"S3DataSource": source}, "CompressionType": "None",
            "RecordWrapperType": wrapper, "InputMode": mode}


def reading_job(name: str, channel: Dict[str, Any], script: str = READER, epochs: int = 1,
                instance_count: int = 1) -> Dict[str, Any]:
    """A training request that runs ``script`` on the channel's path (moved with ``/opt/ml`` if need be)."""
    request = training_request(name, "s3://bucket/unused/", channels=[channel], instance_count=instance_count)
    request["InputDataConfig"] = [channel]
    algorithm = request["AlgorithmSpecification"]
    algorithm["ContainerEntrypoint"] = ["python3", "-c", script]
    algorithm["ContainerArguments"] = [PATHS.training_channel(channel["ChannelName"]), str(epochs)]
    return check_request("CreateTrainingJob", request)


def streams(backend: LocalBackend, name: str, host: str = "algo-1") -> Dict[int, bytes]:
    """What the job's script read, per epoch, on ``host``."""
    out = {}
    for event in backend.logs("training", name, LogCursor.start()):
        words = event.message.split()
        if event.host == host and words[:1] == ["epoch"]:
            assert words[2] == "fifo", event.message
            out[int(words[1])] = bytes.fromhex(words[3] if len(words) > 3 else "")
    return out


def records(data: bytes) -> List[bytes]:
    return list(read_recordio(io.BytesIO(data)))


def put_objects(store: LocalStore, prefix: str, contents: Dict[str, bytes]) -> None:
    for key, data in contents.items():
        store.put_bytes(data, f"s3://{BUCKET}/{prefix}/{key}")


def pipe_threads() -> List[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("local-pipe-")]


@pytest.mark.parametrize("paths", ["relocate", "auto"])
def test_a_plain_pipe_channel_streams_the_objects_back_to_back_in_key_order(
        store: LocalStore, workdir: Path, paths: str) -> None:
    backend = LocalBackend(store, workdir=str(workdir), stop_grace=5.0, paths=paths)
    put_objects(store, "data", {"b.txt": b"second;", "a.txt": b"first;", "sub/c.txt": b"third;"})
    described = run_job(backend, "training", reading_job("plain", pipe_channel("train", f"s3://{BUCKET}/data/")))
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert streams(backend, "plain") == {0: b"first;second;third;"}
    # as on SageMaker, a Pipe channel is its FIFOs only: no folder at the channel's path
    assert "folder exists False" in messages(backend, "training", "plain")


def test_recordio_wraps_each_object_in_one_record(store: LocalStore, backend: LocalBackend) -> None:
    put_objects(store, "data", {"0": b"a", "1": b"bcdef", "2": b""})
    described = run_job(backend, "training", reading_job(
        "wrapped", pipe_channel("train", f"s3://{BUCKET}/data/", wrapper="RecordIO")))
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    stream = streams(backend, "wrapped")[0]
    assert stream == recordio_bytes(b"a") + recordio_bytes(b"bcdef") + recordio_bytes(b"")
    assert records(stream) == [b"a", b"bcdef", b""]


def test_the_next_epochs_fifo_follows_each_finished_one(store: LocalStore, backend: LocalBackend) -> None:
    put_objects(store, "data", {"x": b"one", "y": b"two"})
    described = run_job(backend, "training", reading_job(
        "epochs", pipe_channel("train", f"s3://{BUCKET}/data/", wrapper="RecordIO"), epochs=2))
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    read = streams(backend, "epochs")
    assert {epoch: records(data) for epoch, data in read.items()} == {0: [b"one", b"two"], 1: [b"one", b"two"]}


def test_sharded_by_s3_key_gives_each_instance_its_share(store: LocalStore, backend: LocalBackend) -> None:
    put_objects(store, "data", {f"part-{i}": f"<{i}>".encode() for i in range(5)})
    described = run_job(backend, "training", reading_job(
        "sharded", pipe_channel("train", f"s3://{BUCKET}/data/", distribution="ShardedByS3Key"),
        instance_count=2))
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert streams(backend, "sharded", "algo-1") == {0: b"<0><2><4>"}
    assert streams(backend, "sharded", "algo-2") == {0: b"<1><3>"}


def test_an_augmented_manifest_streams_each_lines_attributes_in_order(
        store: LocalStore, backend: LocalBackend) -> None:
    put_objects(store, "clips", {"one.bin": b"\x00\x01binary", "two.bin": b"\xff"})
    lines = [{"source-ref": f"s3://{BUCKET}/clips/one.bin", "label": 3, "note": "unused"},
             {"label": "cat", "source-ref": f"s3://{BUCKET}/clips/two.bin"}]
    put_objects(store, "manifests", {"train.jsonl": "".join(json.dumps(line) + "\n" for line in lines).encode()})
    described = run_job(backend, "training", reading_job("augmented", pipe_channel(
        "train", f"s3://{BUCKET}/manifests/train.jsonl", wrapper="RecordIO", data_type="AugmentedManifestFile",
        attributes=["label", "source-ref"])))
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert records(streams(backend, "augmented")[0]) == [b"3", b"\x00\x01binary", b"cat", b"\xff"]


@pytest.mark.parametrize("attributes, problem", [
    ([], "needs AttributeNames (1 to 16 attributes of each manifest line to stream, in order), got 0"),
    (["label", "missing-ref"], "line 1 has no attribute missing-ref"),
    (["local-ref"], "line 1: local-ref is not an s3:// URI: '/data/a.wav'"),
])
def test_a_bad_augmented_manifest_fails_the_job_before_the_script_runs(
        store: LocalStore, backend: LocalBackend, attributes: List[str], problem: str) -> None:
    put_objects(store, "manifests", {"m.jsonl": b'{"label": 1, "local-ref": "/data/a.wav"}\n'})
    described = run_job(backend, "training", reading_job("bad-manifest", pipe_channel(
        "train", f"s3://{BUCKET}/manifests/m.jsonl", wrapper="RecordIO", data_type="AugmentedManifestFile",
        attributes=attributes)))
    assert described["TrainingJobStatus"] == "Failed"
    assert described["FailureReason"].startswith("ClientError: ") and problem in described["FailureReason"]
    assert not any(m.startswith("folder exists") for m in messages(backend, "training", "bad-manifest"))


def test_an_augmented_manifest_in_file_mode_fails_as_on_sagemaker(store: LocalStore, backend: LocalBackend) -> None:
    put_objects(store, "manifests", {"m.jsonl": b'{"label": 1}\n'})
    described = run_job(backend, "training", reading_job("file-manifest", pipe_channel(
        "train", f"s3://{BUCKET}/manifests/m.jsonl", data_type="AugmentedManifestFile", attributes=["label"],
        mode="File")))
    assert described["TrainingJobStatus"] == "Failed"
    assert described["FailureReason"] == ("ClientError: channel train: S3DataType AugmentedManifestFile needs "
                                          "InputMode Pipe")


def test_a_reference_the_store_cannot_read_fails_the_job(store: LocalStore, backend: LocalBackend) -> None:
    put_objects(store, "manifests", {"m.jsonl": b'{"image-ref": "s3://bucket/nowhere.jpg"}\n'})
    described = run_job(backend, "training", reading_job("bad-ref", pipe_channel(
        "train", f"s3://{BUCKET}/manifests/m.jsonl", wrapper="RecordIO", data_type="AugmentedManifestFile",
        attributes=["image-ref"])))
    assert described["TrainingJobStatus"] == "Failed"
    assert described["FailureReason"].startswith("ClientError: cannot stream channel train: ")


EARLY_STOP = textwrap.dedent("""
    import sys, time
    with open(sys.argv[1] + "_0", "rb") as fh:
        print("head", fh.read(4).hex(), flush=True)
    print("stopped reading", flush=True)
""")

NEVER_READS = "print('not reading', flush=True)\n"


@pytest.mark.parametrize("script", [EARLY_STOP, NEVER_READS], ids=["early-stop", "never-opens"])
def test_a_reader_that_stops_early_does_not_hold_up_the_jobs_end(
        store: LocalStore, backend: LocalBackend, script: str) -> None:
    # far more than a pipe's buffer: the writer is blocked mid-object when the reader goes away
    put_objects(store, "data", {"big": b"z" * (4 << 20), "more": b"y" * 10})
    started = time.monotonic()
    described = run_job(backend, "training", reading_job(
        "early", pipe_channel("train", f"s3://{BUCKET}/data/"), script=script))
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert time.monotonic() - started < 15
    lines = messages(backend, "training", "early")
    assert ("head 7a7a7a7a" in lines) if script == EARLY_STOP else ("not reading" in lines)
    assert pipe_threads() == []
