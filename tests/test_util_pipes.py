"""Pipe-mode channel helpers on real FIFOs in tmp_path, fed by writer threads."""
from __future__ import annotations

import json
import os
import pickle
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import pytest

from aws_sagemaker_remote.util.fs import ensure_path, write_chunks
from aws_sagemaker_remote.util.pipes import (
    PipeIterator,
    augmented_manifest_payloads,
    augmented_manifest_records,
    chunk_iterable,
    epoch_iterable,
    feed_fifo,
    fifo_path,
    is_fifo,
    open_pipe,
    pipe_iterator,
    pipe_paths,
    pipe_records,
    read_jsonlines,
)
from aws_sagemaker_remote.util.recordio import read_recordio


class Writer:
    """``feed_fifo`` in a thread; keeps its result or exception for the test to check."""

    def __init__(self, path: Path, payloads: Iterable[bytes], **kwargs: Any) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(path, list(payloads)), kwargs=kwargs, daemon=True)
        self.thread.start()

    def _run(self, path: Path, payloads: list[bytes], **kwargs: Any) -> None:
        try:
            self.result = feed_fifo(path, payloads, timeout=kwargs.pop("timeout", 20), **kwargs)
        except BaseException as exc:
            self.error = exc

    def join(self) -> Any:
        self.thread.join(30)
        assert not self.thread.is_alive(), "writer still blocked"
        if self.error is not None:
            raise self.error
        return self.result


def epochs_of(channel: Path, *epochs: list[bytes]) -> list[Writer]:
    """One writer per epoch FIFO ``<channel>_<n>``; each FIFO exists before this returns."""
    writers = []
    for number, payloads in enumerate(epochs):
        os.mkfifo(fifo_path(channel, number))
        writers.append(Writer(Path(fifo_path(channel, number)), payloads))
    return writers


# --- chunking and epochs ------------------------------------------------------------------------

@pytest.mark.parametrize(("last", "expected"), [
    ("skip", [[0, 1, 2], [3, 4, 5]]),
    ("yield", [[0, 1, 2], [3, 4, 5], [6, 7]]),
])
def test_chunk_iterable_final_chunk(last: str, expected: list) -> None:
    assert list(chunk_iterable(range(8), 3, last=last)) == expected


def test_chunk_iterable_error_names_the_count_after_the_whole_chunks() -> None:
    chunks = chunk_iterable(range(8), 3, last="error")
    assert next(chunks) == [0, 1, 2] and next(chunks) == [3, 4, 5]
    with pytest.raises(ValueError, match="incomplete final chunk: 2 of 3 items"):
        next(chunks)


@pytest.mark.parametrize("last", ["skip", "yield", "error"])
def test_chunk_iterable_exact_multiple_has_no_empty_tail(last: str) -> None:
    assert list(chunk_iterable(iter(range(6)), 2, last=last)) == [[0, 1], [2, 3], [4, 5]]
    assert list(chunk_iterable([], 2, last=last)) == []


@pytest.mark.parametrize(("size", "last", "message"), [(0, "skip", "size=0"), (2, "drop", "last='drop'")])
def test_chunk_iterable_bad_arguments_raise_at_the_call(size: int, last: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        chunk_iterable(range(3), size, last=last)


def test_pipe_iterator_bad_arguments_raise_at_the_call(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="size=0"):
        pipe_iterator(tmp_path / "c", size=0)
    with pytest.raises(ValueError, match="epochs=-2"):
        pipe_iterator(tmp_path / "c", epochs=-2)
    with pytest.raises(ValueError, match="epochs=-1"):
        PipeIterator(tmp_path / "c", epochs=-1)


def test_pipe_iterator_survives_pickling_for_worker_processes(tmp_path: Path) -> None:
    channel = tmp_path / "train"
    writers = epochs_of(channel, [], [b"x"])
    dataset = PipeIterator(channel, count=0)
    assert list(dataset) == []
    copy = pickle.loads(pickle.dumps(dataset))
    assert (copy.path, copy.count, copy.size, copy.epochs) == (str(channel), 1, 1, 1)
    assert list(copy) == [[b"x"]] and copy.count == 2 and dataset.count == 1
    assert [w.join() for w in writers] == [0, 1]


def test_epoch_iterable() -> None:
    assert list(epoch_iterable(3)) == [0, 1, 2]
    endless = iter(epoch_iterable(0))
    assert [next(endless) for _ in range(5)] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="epochs=-1"):
        epoch_iterable(-1)


def test_fifo_path_and_pipe_paths(tmp_path: Path) -> None:
    assert fifo_path("/opt/ml/input/data/train", 3) == "/opt/ml/input/data/train_3"
    assert fifo_path(tmp_path / "c") == f"{tmp_path}/c_0"
    assert pipe_paths("/a") == ["/a"]
    assert pipe_paths(tmp_path) == [str(tmp_path)]
    assert pipe_paths({"x": "/a", "y": "/b"}) == ["/a", "/b"]
    assert pipe_paths(["/a", "/b"]) == ["/a", "/b"]
    assert pipe_paths("") == [] and pipe_paths(None) == []  # type: ignore[arg-type]


# --- reading FIFOs ------------------------------------------------------------------------------

def test_pipe_records_reads_one_epoch_fifo(tmp_path: Path) -> None:
    channel = tmp_path / "train"
    (writer,) = epochs_of(channel, [b"r0", b"r1", b"r2"])
    assert is_fifo(fifo_path(channel, 0)) and not is_fifo(channel)
    assert list(pipe_records(channel)) == [b"r0", b"r1", b"r2"]
    assert writer.join() == 3


def test_pipe_iterator_reads_epoch_after_epoch_in_chunks(tmp_path: Path) -> None:
    channel = tmp_path / "train"
    writers = epochs_of(channel, [b"a", b"b", b"c", b"d"], [b"e", b"f"])
    assert list(pipe_iterator(channel, size=2, epochs=2)) == [[b"a", b"b"], [b"c", b"d"], [b"e", b"f"]]
    assert [w.join() for w in writers] == [4, 2]


def test_pipe_iterator_without_epoch_limit_keeps_going_until_the_caller_stops(tmp_path: Path) -> None:
    channel = tmp_path / "train"
    writers = epochs_of(channel, [b"a"], [b"b"], [b"c"])
    seen = []
    for (record,) in pipe_iterator(channel):
        seen.append(record)
        if len(seen) == 3:
            break
    assert seen == [b"a", b"b", b"c"]
    assert [w.join() for w in writers] == [1, 1, 1]


def test_pipe_iterator_epoch_not_a_whole_number_of_chunks(tmp_path: Path) -> None:
    channel = tmp_path / "train"
    epochs_of(channel, [b"a", b"b", b"c"])
    with pytest.raises(ValueError, match="incomplete final chunk: 1 of 2"):
        list(pipe_iterator(channel, size=2, epochs=1))


def test_pipe_iterator_class_reads_the_next_epoch_on_each_loop(tmp_path: Path) -> None:
    channel = tmp_path / "train"
    writers = epochs_of(channel, [b"e0-a", b"e0-b"], [b"e1-a", b"e1-b"], [b"e2-a", b"e2-b"])
    dataset = PipeIterator(str(channel), size=1)
    assert list(dataset) == [[b"e0-a"], [b"e0-b"]]
    assert dataset.count == 1
    assert list(dataset) == [[b"e1-a"], [b"e1-b"]]
    both = PipeIterator(channel, size=2, count=2)
    assert list(both) == [[b"e2-a", b"e2-b"]]
    assert "count=3" in repr(both)
    assert [w.join() for w in writers] == [2, 2, 2]


def test_open_pipe_waits_for_a_fifo_that_appears_later(tmp_path: Path) -> None:
    channel = tmp_path / "train"

    def later() -> None:
        time.sleep(0.3)
        feed_fifo(fifo_path(channel, 1), [b"late"], timeout=20)

    writer = threading.Thread(target=later, daemon=True)
    writer.start()
    with open_pipe(channel, 1, timeout=20) as stream:
        assert list(read_recordio(stream)) == [b"late"]
    writer.join(10)


def test_open_pipe_missing_fifo_says_what_the_folder_holds(tmp_path: Path) -> None:
    (tmp_path / "train").write_text("manifest")
    with pytest.raises(FileNotFoundError) as info:
        open_pipe(tmp_path / "train", 0, timeout=0.2)
    message = str(info.value)
    assert f"{tmp_path}/train_0" in message and "epoch 0" in message
    assert "['train']" in message and "Pipe mode" in message


def test_regular_files_stand_in_for_fifos(tmp_path: Path) -> None:
    channel = tmp_path / "train"
    with open(fifo_path(channel, 0), "wb") as out:
        out.write(b"")
    assert feed_fifo(fifo_path(channel, 0), [b"x", b"y"], create=False, timeout=5) == 2
    assert not is_fifo(fifo_path(channel, 0))
    assert list(pipe_records(channel)) == [b"x", b"y"]


# --- the writing side ---------------------------------------------------------------------------

def test_feed_fifo_without_recordio_writes_raw_bytes(tmp_path: Path) -> None:
    fifo = tmp_path / "raw_0"
    writer = Writer(fifo, [b"ab", b"c", b"def"], recordio=False)
    deadline = time.monotonic() + 10
    while not fifo.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    with open(fifo, "rb") as stream:
        assert stream.read() == b"abcdef"
    assert writer.join() == 3


def test_feed_fifo_times_out_without_a_reader(tmp_path: Path) -> None:
    with pytest.raises(TimeoutError, match="no reader opened .*within 0.2 s"):
        feed_fifo(tmp_path / "nobody_0", [b"x"], timeout=0.2)
    assert is_fifo(tmp_path / "nobody_0")


def test_feed_fifo_stops_quietly_when_the_reader_leaves_early(tmp_path: Path) -> None:
    channel = tmp_path / "train"
    big = [bytes([n]) * 200_000 for n in range(10)]  # far more than a pipe buffer holds
    (writer,) = epochs_of(channel, big)
    with open_pipe(channel, 0) as stream:
        first = next(read_recordio(stream))
    assert first == big[0]
    assert 1 <= writer.join() < 10


def test_reader_in_another_process_sees_the_records(tmp_path: Path, run_python: Callable[..., Any]) -> None:
    channel = tmp_path / "train"
    (writer,) = epochs_of(channel, [b"one", b"two"])
    code = ("import sys; from aws_sagemaker_remote.util.pipes import pipe_records; "
            "print([r.decode() for r in pipe_records(sys.argv[1])])")
    done = run_python("-c", code, str(channel))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['one', 'two']"
    assert writer.join() == 2


# --- augmented manifests ------------------------------------------------------------------------

@pytest.fixture
def audio_manifest(tmp_path: Path) -> Path:
    """A manifest in the shape of the original project's demo: a label and two ``-ref`` attributes."""
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "one.wav").write_bytes(b"RIFF-one")
    (clips / "two.wav").write_bytes(b"RIFF-two\0\xff")
    lines = [
        {"label": 0, "audio-1-ref": str(clips / "one.wav"), "audio-2-ref": (clips / "two.wav").as_uri(),
         "source": "a"},
        {"label": 1, "audio-1-ref": str(clips / "two.wav"), "audio-2-ref": str(clips / "one.wav"),
         "meta": {"speaker": "b"}},
    ]
    manifest = tmp_path / "manifest.json"
    manifest.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    return manifest


ATTRIBUTES = ["label", "audio-1-ref", "audio-2-ref"]


def test_payloads_follow_lines_then_attribute_order(audio_manifest: Path) -> None:
    payloads = list(augmented_manifest_payloads(read_jsonlines(audio_manifest), ATTRIBUTES))
    assert payloads == [b"0", b"RIFF-one", b"RIFF-two\0\xff", b"1", b"RIFF-two\0\xff", b"RIFF-one"]


def test_payloads_of_plain_values(tmp_path: Path) -> None:
    lines = [{"s": "text é", "n": 1.5, "d": {"k": [1, 2]}, "t": True}]
    assert list(augmented_manifest_payloads(lines, ["s", "n", "d", "t"])) == [
        "text é".encode(), b"1.5", b'{"k":[1,2]}', b"true"]


def test_payloads_refuse_a_missing_attribute(audio_manifest: Path) -> None:
    with pytest.raises(ValueError, match=r"manifest line 2 has no attribute 'source'"):
        list(augmented_manifest_payloads(read_jsonlines(audio_manifest), ["source"]))


def test_payloads_need_a_reader_for_s3_refs() -> None:
    lines = [{"x-ref": "s3://bucket/key"}]
    with pytest.raises(ValueError, match="read_ref"):
        list(augmented_manifest_payloads(lines, ["x-ref"]))
    fetched: dict[str, bytes] = {"s3://bucket/key": b"object"}
    reader: Callable[[str], bytes] = fetched.__getitem__
    assert list(augmented_manifest_payloads(lines, ["x-ref"], read_ref=reader)) == [b"object"]


def test_augmented_manifest_records_regroup_each_line(tmp_path: Path, audio_manifest: Path) -> None:
    channel = tmp_path / "data" / "test_pipe"
    ensure_path(channel)
    payloads = list(augmented_manifest_payloads(read_jsonlines(audio_manifest), ATTRIBUTES))
    writers = epochs_of(channel, payloads, payloads)
    for epoch in (0, 1):
        records = list(augmented_manifest_records(channel, ATTRIBUTES, epoch))
        assert records == [
            {"label": b"0", "audio-1-ref": b"RIFF-one", "audio-2-ref": b"RIFF-two\0\xff"},
            {"label": b"1", "audio-1-ref": b"RIFF-two\0\xff", "audio-2-ref": b"RIFF-one"},
        ]
        assert int(records[1]["label"].decode("utf-8")) == 1
    assert [w.join() for w in writers] == [6, 6]


def test_augmented_manifest_records_with_the_wrong_attribute_count(tmp_path: Path, audio_manifest: Path) -> None:
    channel = tmp_path / "test_pipe"
    payloads = list(augmented_manifest_payloads(read_jsonlines(audio_manifest), ATTRIBUTES))
    epochs_of(channel, payloads)
    with pytest.raises(ValueError, match="incomplete final chunk: 2 of 4"):
        list(augmented_manifest_records(channel, ["a", "b", "c", "d"]))


def test_augmented_manifest_records_need_attribute_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="attribute names"):
        augmented_manifest_records(tmp_path / "x", [])


# --- small helpers ------------------------------------------------------------------------------

def test_read_jsonlines_skips_blank_lines_and_names_a_bad_one(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text('{"a": 1}\n\n  \n[2]\n')
    assert list(read_jsonlines(good)) == [{"a": 1}, [2]]
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": 1}\n{oops\n')
    with pytest.raises(ValueError, match=r"bad\.json:2: not a JSON line"):
        list(read_jsonlines(bad))


def test_write_chunks_and_ensure_path(tmp_path: Path) -> None:
    text = tmp_path / "a" / "b" / "t.txt"
    assert write_chunks(text, ["x", "é"]) == 2
    assert text.read_text(encoding="utf-8") == "xé"
    data = tmp_path / "c" / "d.bin"
    assert write_chunks(data, b"\0\1") == 1 and data.read_bytes() == b"\0\1"
    assert write_chunks(tmp_path / "empty", []) == 0 and (tmp_path / "empty").read_bytes() == b""
    with pytest.raises(TypeError, match="chunk of type str among bytes"):
        write_chunks(tmp_path / "e" / "mixed", [b"a", "b"])  # type: ignore[arg-type]  # the mistake under test
    assert not (tmp_path / "e").exists()
    assert ensure_path(tmp_path / "f" / "g" / "h.txt") == str(tmp_path / "f" / "g")
    assert (tmp_path / "f" / "g").is_dir()


# --- what importing costs -----------------------------------------------------------------------

def test_util_is_standard_library_only_and_off_the_package_import_path(run_python: Callable[..., Any]) -> None:
    code = (
        "import json, sys\n"
        "import aws_sagemaker_remote\n"
        "before = sorted(m for m in sys.modules if m.startswith('aws_sagemaker_remote.util'))\n"
        "base = set(sys.modules)\n"
        "import aws_sagemaker_remote.util.pipes, aws_sagemaker_remote.util.recordio, aws_sagemaker_remote.util.fs\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - base}\n"
        "print(json.dumps([before, sorted(new - set(sys.stdlib_module_names) - {'aws_sagemaker_remote'})]))\n"
    )
    done = run_python("-c", code)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [[], []]
