"""Scripts shaped like the original project's Pipe-mode demos, run with ``--sagemaker-run=no``.

The original aws-sagemaker-remote shipped two demos that read Pipe-mode channels:
``processing_pipe.py`` (despite its name a training script: it reads ``<input>_0``
and parses each record as a protobuf ``Record``) and ``training_pipe.py`` (reads
``<input>_<epoch>`` for several epochs and regroups the augmented-manifest
records with ``aws_sagemaker_remote.util.pipes.chunk_iterable``). The scripts
below are written for these tests in the same shape; where the originals took
``read_recordio`` / ``Record`` from the SageMaker SDK and audio decoding from
scipy, they use this package's standard-library helpers and :mod:`wave`.

With ``--sagemaker-run=no`` the script runs here, so the test plays SageMaker's
part: it puts FIFOs ``<input>_0``, ``<input>_1`` beside the input and feeds them
from writer threads, exactly as a Pipe-mode channel streams an augmented manifest.

Each script is run twice: with the original's declaration (``PathArgument`` with
``mode='PipeAugmentedManifest'`` / ``'AugmentedManifestFolder'`` and
``attributes=[...]``) and with this package's own spelling (``mode='Pipe',
s3_data_type='AugmentedManifestFile'``).
"""
from __future__ import annotations

import io
import json
import os
import re
import struct
import textwrap
import threading
import time
import wave
from pathlib import Path
from typing import Any, Callable

import pytest

from aws_sagemaker_remote.util.pipes import augmented_manifest_payloads, feed_fifo, fifo_path, read_jsonlines

RECORD_DEMO = '''
import os
import pathlib
import stat

import aws_sagemaker_remote
from aws_sagemaker_remote.args import PathArgument
from aws_sagemaker_remote.training import sagemaker_training_main
from aws_sagemaker_remote.util.recordio import parse_record, read_recordio


def show_path(path):
    if not path:
        print("Empty")
    elif path.startswith("s3://"):
        print("Path [{}] is on s3".format(path))
    elif not os.path.exists(path):
        print("Path [{}] does not exist".format(path))
    else:
        print("Path [{}] exists".format(path))
        mode = pathlib.Path(path).stat().st_mode
        if os.path.isdir(path):
            print("Directory contents: {}".format(sorted(os.listdir(path))))
        elif stat.S_ISFIFO(mode):
            print("Path is fifo")
        elif os.path.isfile(path):
            print("File lines: {}".format(len(open(path).read().splitlines())))


def read_pipe(pipe):
    with open(pipe, "rb") as f:
        for rec in read_recordio(f):
            record = parse_record(rec)
            print("record parsed uid={} values={}".format(record.uid, record.features["values"].values))


def main(args):
    print("Test folder: {}".format(args.test_pipe))
    show_path(args.test_pipe)
    print("Input path: {}".format(os.path.dirname(args.test_pipe)))
    print("Test pipe 0: {}_0".format(args.test_pipe))
    show_path("{}_0".format(args.test_pipe))
    read_pipe("{}_0".format(args.test_pipe))


if __name__ == "__main__":
    sagemaker_training_main(
        main=main,
        inputs={
            "test_pipe": DECLARATION
        },
        dependencies={
            "aws_sagemaker_remote": aws_sagemaker_remote
        },
        base_job_name="demo-training-pipe"
    )
'''

AUDIO_DEMO = '''
import glob
import os
import wave
from io import BytesIO

import aws_sagemaker_remote
from aws_sagemaker_remote.args import PathArgument
from aws_sagemaker_remote.training import sagemaker_training_main
from aws_sagemaker_remote.util.pipes import chunk_iterable
from aws_sagemaker_remote.util.recordio import read_recordio

EPOCHS = 2


def read_pipe(pipe):
    for i in range(EPOCHS):
        with open(pipe + "_{}".format(i), "rb") as f:
            print("opened pipe {}".format(i))
            count = 0
            for label, f1, f2 in chunk_iterable(read_recordio(f), 3):
                label = int(label.decode("utf-8"))
                with wave.open(BytesIO(f1)) as w1, wave.open(BytesIO(f2)) as w2:
                    print("{} label: {} audio1: {},{} audio2: {},{}".format(
                        count, label, w1.getframerate(), w1.getnframes(), w2.getframerate(), w2.getnframes()))
                count += 1


def main(args):
    print("Test folder: {}".format(args.test_pipe))
    if isinstance(args.test_pipe, dict):
        for k, v in args.test_pipe.items():
            print("Pipe dict entry {}->{}".format(k, v))
            print("Glob: {}".format(sorted(glob.glob(os.path.join(os.path.dirname(v), "**", "*"), recursive=True))))
            read_pipe(v)
    elif isinstance(args.test_pipe, str):
        print("Pipe {}".format(args.test_pipe))
        read_pipe(args.test_pipe)
    else:
        raise ValueError("Input should be string or dictionary")


if __name__ == "__main__":
    sagemaker_training_main(
        main=main,
        inputs={
            "test_pipe": DECLARATION
        },
        dependencies={
            "aws_sagemaker_remote": aws_sagemaker_remote
        },
        base_job_name="demo-training-pipe",
        volume_size=20
    )
'''

RECORD_ATTRIBUTES = ["audioone-ref"]
AUDIO_ATTRIBUTES = ["label", "audio-1-ref", "audio-2-ref"]

DECLARATIONS = {
    "record-original": ("PathArgument('data/manifest-txt.json', mode='PipeAugmentedManifest', "
                        f"attributes={RECORD_ATTRIBUTES!r})"),
    "record-today": "PathArgument('data/manifest-txt.json', mode='Pipe', s3_data_type='AugmentedManifestFile')",
    "audio-original": ("PathArgument('data/manifest-speakers.json', mode='AugmentedManifestFolder', "
                       f"attributes={AUDIO_ATTRIBUTES!r})"),
    "audio-today": "PathArgument('data/manifest-speakers.json', mode='Pipe', s3_data_type='AugmentedManifestFile')",
}


LOCAL_PIPES_MISSING = (
    "today's declaration (mode='Pipe', s3_data_type='AugmentedManifestFile') cannot name the channel's "
    "AttributeNames: the local backend streams augmented manifests, but refuses the channel with "
    "'S3DataType AugmentedManifestFile needs AttributeNames' (SageMaker's S3DataSource takes one or more; the original declaration's "
    "attributes=[...] is what supplies them, issue 12, item 3)"
)


class LocalPipesRefused(Exception):
    """The local job failed because the channel has no AttributeNames to stream."""


class DeclarationRefused(Exception):
    """The script died on the declaration itself: PathArgument refused the original's mode or attributes."""


REFUSALS = ("got an unexpected keyword argument 'attributes'", "PathArgument mode='PipeAugmentedManifest'",
            "PathArgument mode='AugmentedManifestFolder'")


def write_script(folder: Path, template: str, declaration: str) -> Path:
    script = folder / "demo_pipe.py"
    script.write_text(textwrap.dedent(template).replace("DECLARATION", declaration))
    return script


def record_message(uid: str, values: tuple) -> bytes:
    """A serialised ``aialgs.data.Record`` with ``features["values"]`` a float32 tensor (hand-encoded protobuf)."""
    packed = struct.pack(f"<{len(values)}f", *values)
    tensor = b"\x0a" + bytes([len(packed)]) + packed
    value = b"\x12" + bytes([len(tensor)]) + tensor
    entry = b"\x0a\x06values" + b"\x12" + bytes([len(value)]) + value
    return b"\x0a" + bytes([len(entry)]) + entry + b"\x1a" + bytes([len(uid)]) + uid.encode()


def wav_bytes(rate: int, frames: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\1" * frames)
    return out.getvalue()


class Feeder:
    """Feeds ``<input>_<epoch>`` FIFOs from threads; ``release`` unblocks any writer whose reader never came."""

    def __init__(self, channel: Path, payloads: list, epochs: int) -> None:
        self.fifos = [Path(fifo_path(channel, epoch)) for epoch in range(epochs)]
        self.counts: dict = {}
        self.threads = []
        for fifo in self.fifos:
            os.mkfifo(fifo)
            thread = threading.Thread(target=self._feed, args=(fifo, payloads), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _feed(self, fifo: Path, payloads: list) -> None:
        try:
            self.counts[fifo.name] = feed_fifo(fifo, payloads, timeout=120)
        except TimeoutError:
            self.counts[fifo.name] = None

    def release(self) -> None:
        # a script that failed before opening its pipes leaves writers waiting: be their reader, drain, close
        for fifo, thread in zip(self.fifos, self.threads):
            if not thread.is_alive():
                continue
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            try:
                deadline = time.monotonic() + 10
                while thread.is_alive() and time.monotonic() < deadline:
                    try:
                        os.read(fd, 1 << 16)
                    except BlockingIOError:
                        time.sleep(0.01)
            finally:
                os.close(fd)
            thread.join(10)


@pytest.fixture
def record_project(tmp_path: Path) -> Path:
    """The processing_pipe-shaped demo's data: a manifest whose ``audioone-ref`` objects are protobuf Records."""
    data = tmp_path / "data"
    (data / "objects").mkdir(parents=True)
    lines = []
    for number, values in enumerate([(1.0, 2.0), (-0.5,)]):
        target = data / "objects" / f"record{number}.pb"
        target.write_bytes(record_message(f"rec-{number}", values))
        lines.append({"label": number, "audioone-ref": str(target)})
    (data / "manifest-txt.json").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return tmp_path


@pytest.fixture
def audio_project(tmp_path: Path) -> Path:
    """The training_pipe-shaped demo's data: a manifest of a label and two WAV clips per line."""
    data = tmp_path / "data"
    (data / "clips").mkdir(parents=True)
    (data / "clips" / "band1.wav").write_bytes(wav_bytes(8000, 40))
    (data / "clips" / "band2.wav").write_bytes(wav_bytes(16000, 25))
    lines = [{"label": number, "audio-1-ref": str(data / "clips" / f"band{1 + number % 2}.wav"),
              "audio-2-ref": str(data / "clips" / "band2.wav")} for number in range(3)]
    (data / "manifest-speakers.json").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return tmp_path


def run_fed(run_script: Callable[..., Any], project: Path, template: str, declaration: str, manifest: str,
            attributes: list, epochs: int) -> Any:
    """Run the demo with ``--sagemaker-run=no`` while the test streams the manifest into its input's FIFOs."""
    script = write_script(project, template, declaration)
    channel = project / "data" / manifest
    payloads = list(augmented_manifest_payloads(read_jsonlines(channel), attributes))
    feeder = Feeder(channel, payloads, epochs)
    try:
        done = run_script(script, "--sagemaker-run=no", "--test_pipe", str(channel), cwd=project)
    finally:
        feeder.release()
    refused = [line for line in done.stderr.splitlines() if any(r in line for r in REFUSALS)]
    if done.returncode != 0 and refused:
        raise DeclarationRefused(refused[-1])
    return done, feeder


def script_lines(stdout: str) -> list:
    """The script's output lines, without the ``[algo-N] `` a local job's log lines start with."""
    return [re.sub(r"^\[algo-\d+\] ", "", line) for line in stdout.splitlines()]


def check_record_demo(done: Any, feeder: Feeder | None, project: Path) -> None:
    assert done.returncode == 0, done.stderr
    lines = script_lines(done.stdout)
    assert "Path is fifo" in lines
    if feeder is None:
        assert any(line.startswith("Test pipe 0: ") and line.endswith("_0") for line in lines), done.stdout
    else:
        channel = project / "data" / "manifest-txt.json"
        assert f"Test folder: {channel}" in lines
        assert f"Path [{channel}] exists" in lines and "File lines: 2" in lines
        assert f"Test pipe 0: {channel}_0" in lines
    assert [line for line in lines if line.startswith("record parsed")] == [
        "record parsed uid=rec-0 values=(1.0, 2.0)",
        "record parsed uid=rec-1 values=(-0.5,)",
    ]
    assert feeder is None or feeder.counts == {"manifest-txt.json_0": 2}


def check_audio_demo(done: Any, feeder: Feeder | None, project: Path) -> None:
    assert done.returncode == 0, done.stderr
    lines = script_lines(done.stdout)
    if feeder is not None:
        assert f"Pipe {project / 'data' / 'manifest-speakers.json'}" in lines
    expected = ["opened pipe 0",
                "0 label: 0 audio1: 8000,40 audio2: 16000,25",
                "1 label: 1 audio1: 16000,25 audio2: 16000,25",
                "2 label: 2 audio1: 8000,40 audio2: 16000,25"]
    expected += [line.replace("pipe 0", "pipe 1") for line in expected]
    assert [line for line in lines if line.startswith(("opened pipe", "0 ", "1 ", "2 "))] == expected
    assert feeder is None or feeder.counts == {"manifest-speakers.json_0": 9, "manifest-speakers.json_1": 9}


def test_record_demo_with_todays_declaration(run_script: Callable[..., Any], record_project: Path) -> None:
    done, feeder = run_fed(run_script, record_project, RECORD_DEMO, DECLARATIONS["record-today"],
                           "manifest-txt.json", RECORD_ATTRIBUTES, epochs=1)
    check_record_demo(done, feeder, record_project)


def test_record_demo_with_the_original_declaration(run_script: Callable[..., Any], record_project: Path) -> None:
    done, feeder = run_fed(run_script, record_project, RECORD_DEMO, DECLARATIONS["record-original"],
                           "manifest-txt.json", RECORD_ATTRIBUTES, epochs=1)
    check_record_demo(done, feeder, record_project)


def test_audio_demo_with_todays_declaration(run_script: Callable[..., Any], audio_project: Path) -> None:
    done, feeder = run_fed(run_script, audio_project, AUDIO_DEMO, DECLARATIONS["audio-today"],
                           "manifest-speakers.json", AUDIO_ATTRIBUTES, epochs=2)
    check_audio_demo(done, feeder, audio_project)


def test_audio_demo_with_the_original_declaration(run_script: Callable[..., Any], audio_project: Path) -> None:
    done, feeder = run_fed(run_script, audio_project, AUDIO_DEMO, DECLARATIONS["audio-original"],
                           "manifest-speakers.json", AUDIO_ATTRIBUTES, epochs=2)
    check_audio_demo(done, feeder, audio_project)


def run_local(run_script: Callable[..., Any], project: Path, template: str, declaration: str) -> Any:
    """Run the demo as a local job: the backend, not the test, has to stream the channel."""
    script = write_script(project, template, declaration)
    done = run_script(script, "--sagemaker-run=local", cwd=project, timeout=300)
    if done.returncode != 0 and "AugmentedManifestFile needs AttributeNames" in done.stderr:
        raise LocalPipesRefused(done.stderr.strip().splitlines()[-1])
    return done


@pytest.mark.xfail(strict=True, raises=LocalPipesRefused, reason=LOCAL_PIPES_MISSING)
def test_record_demo_as_a_local_job(run_script: Callable[..., Any], record_project: Path) -> None:
    done = run_local(run_script, record_project, RECORD_DEMO, DECLARATIONS["record-today"])
    check_record_demo(done, None, record_project)


@pytest.mark.xfail(strict=True, raises=LocalPipesRefused, reason=LOCAL_PIPES_MISSING)
def test_audio_demo_as_a_local_job(run_script: Callable[..., Any], audio_project: Path) -> None:
    done = run_local(run_script, audio_project, AUDIO_DEMO, DECLARATIONS["audio-today"])
    check_audio_demo(done, None, audio_project)


PLAIN_PIPE_DEMO = '''
from aws_sagemaker_remote.args import PathArgument
from aws_sagemaker_remote.training import sagemaker_training_main
from aws_sagemaker_remote.util.pipes import PipeIterator


def main(args):
    dataset = PipeIterator(args.records, size=2, timeout=10)
    for epoch in range(2):
        for first, second in dataset:
            print("epoch {} pair {} {}".format(epoch, first.decode(), second.decode()))


if __name__ == "__main__":
    sagemaker_training_main(
        main=main,
        inputs={"records": PathArgument("data/records", mode="Pipe", record_wrapper="RecordIO")},
        base_job_name="demo-plain-pipe",
    )
'''

LOCAL_FIFOS_MISSING = (
    "the local backend delivers a Pipe-mode channel as plain files: it creates no FIFO <channel>_<epoch> "
    "streaming the channel's objects (RecordIO-wrapped when record_wrapper='RecordIO'), so reading "
    "<channel>_0 finds nothing"
)


class LocalFifoMissing(Exception):
    """The script waited for ``<channel>_0`` in a local job and it never appeared."""


@pytest.fixture
def records_project(tmp_path: Path) -> Path:
    folder = tmp_path / "data" / "records"
    folder.mkdir(parents=True)
    (folder / "part-0").write_bytes(b"a")
    (folder / "part-1").write_bytes(b"b")
    return tmp_path


def check_plain_demo(done: Any) -> None:
    assert done.returncode == 0, done.stderr
    assert [line for line in script_lines(done.stdout) if line.startswith("epoch ")] == [
        "epoch 0 pair a b", "epoch 1 pair a b"]


def test_plain_pipe_demo(run_script: Callable[..., Any], records_project: Path) -> None:
    script = write_script(records_project, PLAIN_PIPE_DEMO, "")
    channel = records_project / "data" / "records"
    feeder = Feeder(channel, [b"a", b"b"], epochs=2)
    try:
        done = run_script(script, "--sagemaker-run=no", cwd=records_project)
    finally:
        feeder.release()
    check_plain_demo(done)
    assert feeder.counts == {"records_0": 2, "records_1": 2}


def test_plain_pipe_demo_as_a_local_job(run_script: Callable[..., Any], records_project: Path) -> None:
    script = write_script(records_project, PLAIN_PIPE_DEMO, "")
    done = run_script(script, "--sagemaker-run=local", cwd=records_project, timeout=300)
    if done.returncode != 0 and "records_0' (channel" in done.stderr and "did not appear within" in done.stderr:
        raise LocalFifoMissing(done.stderr.strip().splitlines()[-1])
    check_plain_demo(done)
