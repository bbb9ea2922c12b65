"""Pipe-mode channels: the FIFOs ``<channel>_<epoch>`` SageMaker streams an input through.

In Pipe mode SageMaker copies nothing to the volume: a training channel
appears as the named pipe ``/opt/ml/input/data/<channel>_0``, and once a
reader has read it to its end, ``<channel>_1`` follows for the next pass over
the data, and so on for as long as the job runs. The stream is, per channel:

* ``S3Prefix`` / ``ManifestFile``: the objects back to back, in key order
  (a manifest's objects in the manifest's order), decompressed when ``Gzip``, each wrapped in one RecordIO record when
  ``RecordWrapperType`` is ``RecordIO``;
* ``AugmentedManifestFile``: for each line of the manifest and in the order of
  ``AttributeNames``, the object an ``-ref`` attribute points to or the
  attribute's value (see
  :func:`~aws_sagemaker_remote.util.pipes.augmented_manifest_payloads`), each
  wrapped in RecordIO when ``RecordWrapperType`` is ``RecordIO``.

For each instance and Pipe channel, :func:`feeding` runs one writer thread
that creates the FIFOs in the instance's folder (so that, in a mount
namespace, they are under the instance's ``/opt/ml``), waits for a reader,
streams one epoch per FIFO, and stops when the job's processes have ended.
A reader that closes its FIFO early ends that epoch; the next FIFO waits for
a reader that may never come, which costs nothing: the writer gives up when
the job ends. Objects are read through the store when an epoch streams them,
never stored on the volume.
"""
from __future__ import annotations

import contextlib
import gzip
import json
import os
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from ...util.pipes import augmented_manifest_payloads, feed_fifo, fifo_path
from .state import Instance, Job, JobError, Settings
from .transfer import no_objects_reason, objects

#: Seconds one attempt to open a FIFO for writing waits for its reader before the
#: writer looks again whether the job has ended.
OPEN_ATTEMPT_SECONDS = 0.2
#: Seconds the job waits for a writer thread once the processes have ended.
WRITER_JOIN_SECONDS = 5.0

#: SageMaker's limit on a channel's ``AttributeNames``.
MAX_ATTRIBUTES = 16

#: The bytes of one epoch's records, in order.
Payloads = Callable[[], Iterator[bytes]]


@dataclass(frozen=True)
class PipeChannel:
    """One Pipe-mode input of one instance: where its FIFOs go and what they stream."""

    #: the channel (training) or input (processing) name, for messages
    name: str
    #: the FIFOs' path on this machine without the ``_<epoch>`` suffix
    base: str
    #: a fresh iterator over one epoch's records
    payloads: Payloads
    #: wrap each record in RecordIO (``RecordWrapperType=RecordIO``)
    recordio: bool


def is_pipe(mode: Optional[str]) -> bool:
    """Whether an input mode is ``Pipe``."""
    return mode == "Pipe"


def plan_channel(settings: Settings, job: Job, instance: Instance, name: str, source: Mapping[str, Any],
                 gzipped: bool, recordio: bool, base: str) -> PipeChannel:
    """The Pipe channel an ``S3DataSource`` / ``S3Input`` names for ``instance``.

    What the channel streams is listed here, before anything runs, so that a
    missing prefix, a bad manifest or a manifest line without one of the
    attributes fails the job as a File-mode input would.

    :raises JobError: no object, an unreadable or bad manifest, an unknown data type.
    """
    uri = source["S3Uri"]
    data_type = source.get("S3DataType", "S3Prefix")
    sharded = source.get("S3DataDistributionType", "FullyReplicated") == "ShardedByS3Key"
    count = len(job.instances)
    store = settings.store
    if data_type == "AugmentedManifestFile":
        attributes = list(source.get("AttributeNames") or [])
        if not attributes or len(attributes) > MAX_ATTRIBUTES:
            raise JobError(f"ClientError: channel {name}: S3DataType AugmentedManifestFile needs AttributeNames "
                           f"(1 to {MAX_ATTRIBUTES} attributes of each manifest line to stream, in order), "
                           f"got {len(attributes)}")
        lines = _manifest_lines(store, uri, attributes)
        if not lines:
            raise JobError(no_objects_reason(settings.region, job, uri, "ManifestFile"))
        if sharded:
            # our reading: an augmented manifest is sharded by line, as a manifest is by object
            lines = lines[instance.index::count]

        def manifest_payloads() -> Iterator[bytes]:
            return augmented_manifest_payloads(lines, attributes, read_ref=lambda ref: _read_ref(store, ref))
        return PipeChannel(name, base, manifest_payloads, recordio)
    found = objects(store, uri, data_type)
    if data_type != "ManifestFile":
        found = sorted(found)  # a prefix streams in key order; a manifest in its own order
    if not found:
        raise JobError(no_objects_reason(settings.region, job, uri, data_type))
    if sharded:
        found = found[instance.index::count]
    uris = [obj_uri for obj_uri, _rel, _size in found]

    def object_payloads() -> Iterator[bytes]:
        for obj_uri in uris:
            data = store.get_bytes(obj_uri)
            yield gzip.decompress(data) if gzipped else data
    return PipeChannel(name, base, object_payloads, recordio)


def _manifest_lines(store: Any, uri: str, attributes: Sequence[str]) -> List[Dict[str, Any]]:
    """The JSON objects of an augmented manifest, each checked to hold every attribute."""
    try:
        text = store.get_bytes(uri).decode("utf-8")
    except Exception as exc:  # missing object and botocore errors alike
        raise JobError(f"ClientError: cannot read augmented manifest {uri}: {exc}") from exc
    lines: List[Dict[str, Any]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise JobError(f"ClientError: augmented manifest {uri} line {number} is not JSON: {exc.msg}") from None
        if not isinstance(line, dict):
            raise JobError(f"ClientError: augmented manifest {uri} line {number} is not a JSON object")
        missing = [a for a in attributes if a not in line]
        if missing:
            raise JobError(f"ClientError: augmented manifest {uri} line {number} has no attribute "
                           f"{', '.join(missing)}")
        refs = [a for a in attributes if a.endswith("-ref") and not str(line[a]).startswith("s3://")]
        if refs:
            raise JobError(f"ClientError: augmented manifest {uri} line {number}: {refs[0]} is not an s3:// URI: "
                           f"{line[refs[0]]!r}")
        lines.append(line)
    return lines


def _read_ref(store: Any, ref: str) -> bytes:
    """The object an ``-ref`` attribute names; SageMaker reads only ``s3://`` references."""
    if not ref.startswith("s3://"):
        raise ValueError(f"the -ref value {ref!r} is not an s3:// URI")
    return bytes(store.get_bytes(ref))


class Writer:
    """The thread that feeds one Pipe channel's FIFOs, epoch after epoch, while the job runs."""

    def __init__(self, job: Job, instance: Instance, channel: PipeChannel) -> None:
        self.job = job
        self.instance = instance
        self.channel = channel
        self.finished = threading.Event()
        #: the job's failure reason when the store failed mid-stream
        self.error: Optional[str] = None
        #: records written whole, per epoch
        self.written: List[int] = []
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name=f"local-pipe-{job.name}-{instance.host}-{channel.name}")

    def _run(self) -> None:
        epoch = 0
        while not self.finished.is_set():
            path = fifo_path(self.channel.base, epoch)
            try:
                count = self._feed(path)
            except Exception as exc:  # noqa: BLE001 - a store error ends the stream and fails the job
                self.error = f"ClientError: cannot stream channel {self.channel.name}: {exc}"
                self.job.add_line(self.instance.host, f"local backend: {self.error}")
                return
            if count is None:
                return  # the job ended before a reader came
            self.written.append(count)
            epoch += 1

    def _feed(self, path: str) -> Optional[int]:
        """One epoch: wait for a reader (until the job ends), then stream; None when none came."""
        while not self.finished.is_set():
            try:
                return feed_fifo(path, self.channel.payloads(), recordio=self.channel.recordio,
                                 timeout=OPEN_ATTEMPT_SECONDS)
            except TimeoutError:
                continue  # no reader yet: look again whether the job ended
        return None

    def stop(self) -> None:
        """The job's processes ended: no reader will come any more."""
        self.finished.set()
        self.thread.join(WRITER_JOIN_SECONDS)


@contextlib.contextmanager
def feeding(job: Job, channels: Sequence[Tuple[Instance, PipeChannel]]) -> Iterator[List[Writer]]:
    """Feed every Pipe channel while the block (the job's processes) runs."""
    writers = [Writer(job, instance, channel) for instance, channel in channels]
    for _instance, channel in channels:
        # epoch 0 exists before the processes start, as on SageMaker: a script may look for it at once
        os.makedirs(os.path.dirname(channel.base) or ".", exist_ok=True)
        if not os.path.exists(fifo_path(channel.base, 0)):
            os.mkfifo(fifo_path(channel.base, 0))
    for writer in writers:
        writer.thread.start()
    try:
        yield writers
    finally:
        for writer in writers:
            writer.finished.set()
        for writer in writers:
            writer.stop()


def stream_failure(writers: Sequence[Writer]) -> Optional[str]:
    """The first writer's failure reason, if a channel could not be streamed."""
    return next((w.error for w in writers if w.error), None)
