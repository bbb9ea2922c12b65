"""Read SageMaker Pipe-mode channels: one FIFO per epoch, RecordIO records, augmented manifests.

In Pipe mode SageMaker streams a training channel through named pipes (FIFOs)
instead of copying it to disk: the channel's path (what the script's flag
holds, e.g. ``/opt/ml/input/data/train``) gets a suffix per pass over the
data, ``train_0`` for the first epoch, ``train_1`` for the second, and so on.
A reader opens ``<channel>_<epoch>``, reads it to its end, then opens the next
one if it wants another epoch. When the channel's ``RecordWrapperType`` is
``RecordIO`` the stream is a sequence of RecordIO records, one per S3 object
(see :mod:`aws_sagemaker_remote.util.recordio`); with ``None`` the objects
arrive back to back and the reader must know where each ends.

An augmented manifest channel (``S3DataType=AugmentedManifestFile`` with
``AttributeNames``) streams, for each JSON line of the manifest and in the
order of ``AttributeNames``, one record per attribute: the content of the
object an attribute ending in ``-ref`` points to, or the attribute's value
itself. :func:`augmented_manifest_records` regroups them into one dict per line.

Everything here is standard library only and works on regular files as well
as FIFOs, so the same script reads a channel on SageMaker, in a local run, and
in a test that writes ``channel_0`` itself (:func:`feed_fifo`).
"""
from __future__ import annotations

import errno
import itertools
import json
import os
import stat
import threading
import time
from typing import (
    IO,
    Any,
    BinaryIO,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
    TypeVar,
)
from urllib.parse import unquote, urlparse

from .recordio import RECORDIO_MAGIC, read_recordio, recordio_bytes

__all__ = [
    "LAST_CHUNK_POLICIES",
    "RECORDIO_MAGIC",
    "PipeIterator",
    "augmented_manifest_payloads",
    "augmented_manifest_records",
    "chunk_iterable",
    "epoch_iterable",
    "feed_fifo",
    "fifo_path",
    "is_fifo",
    "open_pipe",
    "pipe_iterator",
    "pipe_paths",
    "pipe_records",
    "read_jsonlines",
    "read_recordio",
]

T = TypeVar("T")

#: What :func:`chunk_iterable` does with a shorter final chunk.
LAST_CHUNK_POLICIES = ("skip", "yield", "error")

#: Seconds :func:`open_pipe` waits for an epoch's FIFO to appear by default. SageMaker
#: creates the next epoch's FIFO once the previous one was read to its end, not instantly.
DEFAULT_OPEN_TIMEOUT = 60.0


def chunk_iterable(iterable: Iterable[T], size: int, last: str = "skip") -> Iterator[list[T]]:
    """Group an iterable into lists of ``size`` consecutive items.

    :param iterable: any iterable, e.g. the records of a pipe.
    :param size: items per chunk (at least 1); for an augmented manifest, the
        number of attribute names, so that each chunk is one manifest line.
    :param last: what to do when the items run out mid-chunk: ``"skip"`` drops
        the shorter final chunk, ``"yield"`` yields it (never an empty one),
        ``"error"`` raises :class:`ValueError` saying how many items it held.
    :raises ValueError: ``size`` below 1 or ``last`` not one of
        :data:`LAST_CHUNK_POLICIES` (raised at the call, before any item is read).
    """
    if last not in LAST_CHUNK_POLICIES:
        raise ValueError(f"chunk_iterable last={last!r}: allowed values are {', '.join(LAST_CHUNK_POLICIES)}")
    if size < 1:
        raise ValueError(f"chunk_iterable size={size!r}: must be at least 1")
    return _chunks(iter(iterable), size, last)


def _chunks(iterator: Iterator[T], size: int, last: str) -> Iterator[list[T]]:
    while True:
        chunk = list(itertools.islice(iterator, size))
        if len(chunk) == size:
            yield chunk
            continue
        if chunk and last == "yield":
            yield chunk
        elif chunk and last == "error":
            raise ValueError(f"incomplete final chunk: {len(chunk)} of {size} items "
                             f"(the stream does not hold a whole number of groups of {size})")
        return


def epoch_iterable(epochs: int) -> Iterable[int]:
    """The epoch numbers ``0, 1, ...``: ``epochs`` of them, or without end when ``epochs`` is 0."""
    if epochs < 0:
        raise ValueError(f"epochs={epochs!r}: must be 0 (no end) or more")
    return itertools.count() if epochs == 0 else range(epochs)


def fifo_path(channel: str | os.PathLike[str], epoch: int = 0) -> str:
    """The FIFO of one epoch of a Pipe-mode channel: ``<channel>_<epoch>``."""
    if epoch < 0:
        raise ValueError(f"epoch={epoch!r}: must be 0 or more")
    return f"{os.fspath(channel)}_{epoch}"


def pipe_paths(value: str | os.PathLike[str] | Mapping[str, str] | Sequence[str]) -> list[str]:
    """The channel path(s) an input argument holds, as a list.

    A Pipe-mode input is usually one path; an input made of several manifests
    (the original project's ``AugmentedManifestFolder``) arrives as a mapping
    of name -> path or as a list. Empty values give an empty list.
    """
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)] if os.fspath(value) else []
    if isinstance(value, Mapping):
        return [os.fspath(v) for v in value.values()]
    return [os.fspath(v) for v in value]


def open_pipe(channel: str | os.PathLike[str], epoch: int = 0, *,
              timeout: float = DEFAULT_OPEN_TIMEOUT, buffering: int = -1) -> BinaryIO:
    """Open the FIFO ``<channel>_<epoch>`` for binary reading.

    Waits up to ``timeout`` seconds for it to appear (SageMaker creates each
    epoch's FIFO after the previous one was read), then opens it; opening a
    FIFO itself waits until the writer is there. A regular file of that name
    is opened the same way, which is how tests and local runs stand in for a pipe.

    :raises FileNotFoundError: it did not appear in time; the message names the
        channel, the epoch and what the channel's folder holds.
    """
    path = fifo_path(channel, epoch)
    deadline = time.monotonic() + max(timeout, 0.0)
    while not os.path.exists(path):
        if time.monotonic() >= deadline:
            folder = os.path.dirname(os.path.abspath(path))
            try:
                present = sorted(os.listdir(folder))
            except OSError:
                present = []
            raise FileNotFoundError(
                f"pipe {path!r} (channel {os.fspath(channel)!r}, epoch {epoch}) did not appear within "
                f"{timeout:g} s; {folder} holds {present or 'nothing'}: is the channel in Pipe mode?")
        time.sleep(0.05)
    return open(path, "rb", buffering=buffering)


def is_fifo(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` exists and is a named pipe (not a regular file)."""
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False


def pipe_records(channel: str | os.PathLike[str], epoch: int = 0, *,
                 timeout: float = DEFAULT_OPEN_TIMEOUT) -> Iterator[bytes]:
    """Yield the RecordIO records of one epoch of a Pipe-mode channel, then close its FIFO.

    :param channel: the channel's path as the script's argument holds it (no ``_0``).
    :param epoch: which pass over the data (``<channel>_<epoch>``).
    :param timeout: see :func:`open_pipe`.
    """
    with open_pipe(channel, epoch, timeout=timeout) as stream:
        yield from read_recordio(stream)


def pipe_iterator(path: str | os.PathLike[str], size: int = 1, *, epochs: int = 0, start: int = 0,
                  timeout: float = DEFAULT_OPEN_TIMEOUT) -> Iterator[list[bytes]]:
    """Yield the records of a Pipe-mode channel in chunks of ``size``, epoch after epoch.

    Reads ``<path>_<start>``, then ``<path>_<start+1>``, ... ``epochs`` FIFOs
    in all, or without end when ``epochs`` is 0 (the default, as in the original
    project: on SageMaker a new epoch's FIFO always follows, so stop iterating
    when you have had enough). Each item is a list of ``size`` records; an
    epoch that does not hold a whole number of chunks raises :class:`ValueError`.
    """
    chunk_iterable((), size)  # bad arguments raise here, at the call, not at the first record
    return _epochs_in_chunks(path, size, epoch_iterable(epochs), start, timeout)


def _epochs_in_chunks(path: str | os.PathLike[str], size: int, epochs: Iterable[int], start: int,
                      timeout: float) -> Iterator[list[bytes]]:
    for offset in epochs:
        yield from chunk_iterable(pipe_records(path, start + offset, timeout=timeout), size, last="error")


class PipeIterator:
    """A re-iterable reader of a Pipe-mode channel: each ``for`` loop reads the next epoch(s).

    :param path: the channel's path (no ``_0``).
    :param size: records per item; items are lists of ``size`` records.
    :param count: the first epoch to read (its FIFO is ``<path>_<count>``).
    :param epochs: epochs read by one ``for`` loop over the iterator; 0 means
        without end.
    :param timeout: see :func:`open_pipe`.

    ``count`` advances as FIFOs are opened, so ``for batch in it`` twice reads
    epochs 0 and 1, as a training loop that iterates its dataset once per epoch
    expects. Threads sharing one iterator each get a different epoch.
    """

    def __init__(self, path: str | os.PathLike[str], size: int = 1, count: int = 0, epochs: int = 1,
                 timeout: float = DEFAULT_OPEN_TIMEOUT) -> None:
        chunk_iterable((), size)
        epoch_iterable(epochs)
        self.path = os.fspath(path)
        self.size = size
        self.count = count
        self.epochs = epochs
        self.timeout = timeout
        self._lock = threading.Lock()

    def _next_epoch(self) -> int:
        with self._lock:
            epoch = self.count
            self.count = epoch + 1
            return epoch

    def __iter__(self) -> Iterator[list[bytes]]:
        for _ in epoch_iterable(self.epochs):
            records = pipe_records(self.path, self._next_epoch(), timeout=self.timeout)
            yield from chunk_iterable(records, self.size, last="error")

    def __getstate__(self) -> dict[str, Any]:
        # a lock cannot be pickled: DataLoader workers started with "spawn" get a copy with a fresh one
        state = dict(self.__dict__)
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PipeIterator({self.path!r}, size={self.size}, count={self.count}, epochs={self.epochs})"


def read_jsonlines(path: str | os.PathLike[str]) -> Iterator[Any]:
    """Yield the JSON value of each non-blank line of a JSON Lines file (e.g. a manifest).

    :raises ValueError: a line is not JSON; the message names the file and line number.
    """
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text:
                continue
            try:
                yield json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{os.fspath(path)}:{number}: not a JSON line ({exc.msg})") from None


def augmented_manifest_records(channel: str | os.PathLike[str], attributes: Sequence[str],
                               epoch: int = 0, *, timeout: float = DEFAULT_OPEN_TIMEOUT
                               ) -> Iterator[dict[str, bytes]]:
    """Yield one dict per manifest line from one epoch of an augmented-manifest Pipe channel.

    :param channel: the channel's path (no ``_0``).
    :param attributes: the channel's ``AttributeNames``, in the same order (the
        stream carries no names, only one record per attribute per line).
    :param epoch: which epoch's FIFO to read.
    :returns: dicts of attribute name -> the record's bytes: the referenced
        object's content for a ``-ref`` attribute, the value's text otherwise.
    :raises ValueError: the stream ends inside a line (the attribute list does
        not match the channel's) or is not RecordIO-wrapped.

    The channel must have ``RecordWrapperType=RecordIO``: without it the
    attributes arrive back to back with nothing to tell where one ends.
    """
    names = list(attributes)
    if not names:
        raise ValueError("augmented_manifest_records needs the channel's attribute names, got none")
    return (dict(zip(names, chunk))
            for chunk in chunk_iterable(pipe_records(channel, epoch, timeout=timeout), len(names), last="error"))


def _read_local_ref(uri: str) -> bytes:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        path = unquote(parsed.path)
    elif parsed.scheme == "":
        path = uri
    else:
        raise ValueError(f"cannot read {uri!r} without a read_ref function (only local paths and file:// URIs)")
    with open(path, "rb") as handle:
        return handle.read()


def augmented_manifest_payloads(lines: Iterable[Mapping[str, Any]], attributes: Sequence[str],
                                read_ref: Callable[[str], bytes] | None = None) -> Iterator[bytes]:
    """The record payloads an augmented-manifest channel streams, in order (the writing side).

    :param lines: the manifest's JSON objects, e.g. ``read_jsonlines(path)``.
    :param attributes: ``AttributeNames``; for each line, one payload per name in this order.
    :param read_ref: ``uri -> bytes`` for ``-ref`` attributes; by default local
        paths and ``file://`` URIs are read (pass a function that fetches
        ``s3://`` URIs when there are any).
    :raises ValueError: a line lacks one of the attributes (naming the line and the attribute).

    A ``-ref`` attribute streams the referenced object's bytes; a string value
    streams its UTF-8 text; any other value its compact JSON text (the number
    ``1`` streams ``b"1"``, as in AWS's ``["image-ref", "is-a-cat"]`` example; AWS
    shows no string value, so streaming a string without JSON quotes is this
    package's reading).
    Wrap each payload with :func:`~aws_sagemaker_remote.util.recordio.recordio_bytes`
    (or let :func:`feed_fifo` do it) to get the byte stream of the channel.
    """
    reader = read_ref or _read_local_ref
    names = list(attributes)
    for number, line in enumerate(lines, start=1):
        for name in names:
            if name not in line:
                raise ValueError(f"manifest line {number} has no attribute {name!r} "
                                 f"(it has {', '.join(sorted(line)) or 'none'})")
            value = line[name]
            if name.endswith("-ref"):
                yield reader(str(value))
            elif isinstance(value, str):
                yield value.encode("utf-8")
            else:
                yield json.dumps(value, separators=(",", ":")).encode("utf-8")


def _open_for_writing(target: str, timeout: float | None) -> IO[bytes]:
    if timeout is None:
        return open(target, "wb")
    deadline = time.monotonic() + max(timeout, 0.0)
    while True:
        try:
            # non-blocking open of a FIFO fails with ENXIO while no reader has it open: poll instead of hanging
            fd = os.open(target, os.O_WRONLY | os.O_NONBLOCK | os.O_TRUNC)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no reader opened {target!r} within {timeout:g} s") from None
            time.sleep(0.02)
            continue
        os.set_blocking(fd, True)
        return os.fdopen(fd, "wb")


def feed_fifo(path: str | os.PathLike[str], payloads: Iterable[bytes], *, recordio: bool = True,
              create: bool = True, timeout: float | None = None) -> int:
    """Write payloads into a FIFO (or file) as a Pipe-mode channel would; return how many were written.

    :param path: the FIFO, usually ``fifo_path(channel, epoch)``; created with
        ``os.mkfifo`` when ``create`` is true and nothing exists there yet.
    :param payloads: the records' bytes.
    :param recordio: wrap each payload in RecordIO (``RecordWrapperType=RecordIO``);
        false writes them back to back, as ``RecordWrapperType=None`` does.
    :param timeout: seconds to wait for a reader to open the FIFO; ``None``
        waits as long as it takes.
    :raises TimeoutError: no reader opened the FIFO within ``timeout``.

    Opening a FIFO for writing waits until a reader opens it, so call this from
    a thread (or process) other than the reader's. A reader that stops early
    closes the pipe: the writing ends there and the count says how many
    records were written whole.
    """
    target = os.fspath(path)
    if create and not os.path.exists(target):
        os.mkfifo(target)
    written = 0
    handle = _open_for_writing(target, timeout)
    try:
        for payload in payloads:
            handle.write(recordio_bytes(payload) if recordio else bytes(payload))
            handle.flush()
            written += 1
    except BrokenPipeError:
        pass
    finally:
        try:
            handle.close()
        except BrokenPipeError:
            pass
    return written
