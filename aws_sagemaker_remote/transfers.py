"""S3 transfers that store only verified bytes and never hold up Ctrl-C.

Two guarantees on top of s3transfer's managed transfers, used by
:class:`~aws_sagemaker_remote.store.S3Store`:

* **Content addresses are true.** Staging names an object by the SHA-256 of
  the file it read first. :func:`upload_verified` (what staging uses) checks
  the bytes it reads and sends against that digest and completes nothing
  else (see there), raising
  :class:`~aws_sagemaker_remote.errors.ContentChanged` on a mismatch *before*
  the object is completed. An object that exists under a digest therefore
  holds bytes with that digest. (S3 itself cannot check a whole-object SHA-256
  of a multipart upload, so the check is ours; botocore's default request
  checksums cover the bytes on the wire.)
* **Ctrl-C acts at once.** s3transfer waits for every request in flight
  before it lets an interrupted transfer go, and an interpreter waits for the
  threads of :mod:`concurrent.futures` before it exits: a stalled request held
  Ctrl-C for a whole read timeout. Here the transfer runs on daemon threads
  (:class:`DaemonExecutor`) driven from a daemon thread, and the caller waits in
  short, interruptible steps; on ``KeyboardInterrupt`` the transfer is
  cancelled and left behind, and the interrupt goes on at once. An unfinished
  multipart upload is never completed, so nothing half-sent becomes visible;
  the partial file of an unfinished download is removed.
"""
from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import copy as _copy
import hashlib
import os
import queue
import threading
from typing import Any, BinaryIO, Callable, Dict, List, Optional, cast

from .errors import ContentChanged

#: Seconds between two looks at a running transfer (how late Ctrl-C can be, at most).
WAIT_STEP = 0.1

Progress = Optional[Callable[[int], None]]


class DaemonExecutor(concurrent.futures.Executor):
    """A thread pool of daemon threads that an exiting interpreter does not wait for.

    The ``executor_cls`` of s3transfer's ``TransferManager``: ``submit`` and
    ``shutdown`` as :class:`concurrent.futures.ThreadPoolExecutor` has them;
    threads start as work arrives, up to ``max_workers``.
    """

    def __init__(self, max_workers: int = 1) -> None:
        self._max = max(1, int(max_workers))
        self._queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._threads: List[threading.Thread] = []
        self._lock = threading.Lock()
        self._idle = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> "concurrent.futures.Future[Any]":
        future: "concurrent.futures.Future[Any]" = concurrent.futures.Future()
        self._queue.put((future, fn, args, kwargs))
        with self._lock:
            if self._idle == 0 and len(self._threads) < self._max:
                thread = threading.Thread(target=self._work, name="s3-transfer", daemon=True)
                self._threads.append(thread)
                thread.start()
        return future

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            item = self._queue.get()
            with self._lock:
                self._idle -= 1
            if item is None:
                return
            future, fn, args, kwargs = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                future.set_exception(exc)
            else:
                future.set_result(result)
            # an idle thread holds nothing: the arguments may be a part's bytes
            del item, fn, args, kwargs, future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(None)
        if wait:
            for thread in threads:
                if thread is not threading.current_thread():
                    thread.join()


def _manager(client: Any, config: Any) -> Any:
    from s3transfer.manager import TransferManager

    config = _copy.copy(config)
    # bodies read from a stream are held in memory part by part: keep that bounded
    config.max_in_memory_upload_chunks = max(2, int(getattr(config, "max_concurrency", 4)) + 1)
    return TransferManager(client, config, executor_cls=cast(Any, DaemonExecutor))


def run_interruptibly(work: Callable[[Dict[str, Any]], None],
                      on_interrupt: Optional[Callable[[], None]] = None) -> None:
    """Run ``work(holder)`` on a daemon thread and wait for it in steps Ctrl-C can break.

    ``work`` puts the s3transfer future it waits on in ``holder["future"]``; on
    ``KeyboardInterrupt`` that future is cancelled (which does not wait),
    ``on_interrupt`` is called, and the interrupt is raised again at once.
    """
    done = threading.Event()
    holder: Dict[str, Any] = {}

    def target() -> None:
        try:
            work(holder)
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            holder["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name="s3-transfer-driver", daemon=True).start()
    try:
        while not done.wait(WAIT_STEP):
            pass
    except KeyboardInterrupt:
        future = holder.get("future")
        if future is not None:
            with contextlib.suppress(Exception):  # interrupting matters more than a clean cancel
                future.cancel()
        if on_interrupt is not None:
            with contextlib.suppress(Exception):
                on_interrupt()
        raise
    error = holder.get("error")
    if error is not None:
        raise error


def _subscribers(progress: Progress) -> List[Any]:
    if progress is None:
        return []
    from boto3.s3.transfer import ProgressCallbackInvoker

    return [ProgressCallbackInvoker(progress)]


def upload_file(client: Any, path: str, bucket: str, key: str, config: Any, progress: Progress = None) -> None:
    """Upload ``path`` to ``s3://bucket/key`` (a managed transfer: multipart above the threshold)."""

    def work(holder: Dict[str, Any]) -> None:
        with open(path, "rb") as fh, _manager(client, config) as manager:
            holder["future"] = manager.upload(fh, bucket, key, subscribers=_subscribers(progress))
            holder["future"].result()

    run_interruptibly(work)


def copy_object(client: Any, source_bucket: str, source_key: str, bucket: str, key: str, config: Any) -> None:
    """Copy an object within S3 (multipart copy above the threshold), interruptibly."""

    def work(holder: Dict[str, Any]) -> None:
        with _manager(client, config) as manager:
            holder["future"] = manager.copy({"Bucket": source_bucket, "Key": source_key}, bucket, key)
            holder["future"].result()

    run_interruptibly(work)


def download_file(client: Any, bucket: str, key: str, path: str, config: Any, progress: Progress = None) -> None:
    """Download ``s3://bucket/key`` to ``path`` (written whole or not at all), interruptibly."""

    def work(holder: Dict[str, Any]) -> None:
        with _manager(client, config) as manager:
            holder["future"] = manager.download(bucket, key, path, subscribers=_subscribers(progress))
            holder["future"].result()

    def remove_partial() -> None:
        # s3transfer writes PATH.<random> and renames it when complete
        folder, name = os.path.split(os.path.abspath(path))
        for entry in os.listdir(folder):
            if entry.startswith(name + "."):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, entry))

    run_interruptibly(work, remove_partial)


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def upload_verified(client: Any, path: str, bucket: str, key: str, sha256: str, part_size: int, in_flight: int,
                    progress: Progress = None) -> None:
    """Upload ``path`` to ``s3://bucket/key`` only if its bytes have digest ``sha256``; interruptibly.

    A file of at most ``part_size`` bytes goes in one ``PutObject``, read whole and checked
    before it is sent. A larger one goes in parts of ``part_size``, ``in_flight`` at a time,
    each sent straight from the file (no part is held in memory), so memory stays small
    whatever the file's size. One reader reads the file front to back first, feeding the
    whole file's digest in order and taking each part's SHA-256 on the way; each part is sent
    with that checksum (which S3 checks), and every pass over a part's bytes while it is sent
    is checked against it as well: a part whose bytes changed since the ordered read is never
    sent whole. The upload is completed only when the whole digest is ``sha256`` and every
    part went up checked; otherwise it is aborted (its parts discarded) and nothing is stored
    under ``key``.

    :raises ContentChanged: the bytes read do not have digest ``sha256``.
    """

    def work(holder: Dict[str, Any]) -> None:
        with open(path, "rb") as fh:
            data = fh.read(part_size + 1)
            if len(data) <= part_size:
                if hashlib.sha256(data).hexdigest() != sha256:
                    raise ContentChanged(path)
                client.put_object(Bucket=bucket, Key=key, Body=data, ChecksumSHA256=_b64(hashlib.sha256(data)))
                if progress:
                    progress(len(data))
                return
            del data
            _upload_parts(client, fh, path, bucket, key, sha256, part_size, in_flight, progress)

    run_interruptibly(work)


def _b64(digest: Any) -> str:
    return base64.b64encode(digest.digest()).decode("ascii")


#: Bytes read at a time while hashing a file in order.
READ_BLOCK = 1024 * 1024
#: Bytes a part's body reads from the file at a time (however little is asked for).
PART_BLOCK = 128 * 1024


class PartBody:
    """One part of a file as a seekable, read-only body, read straight from the file.

    The bytes are read in blocks of :data:`PART_BLOCK` (however little the HTTP connection
    asks for at a time). Every pass from the part's start to its end is hashed and compared
    with ``sha256`` (the part's digest from the ordered read) as soon as its last block is
    read, before any of that block is handed out, so a request whose body changed since never
    ends: :class:`~aws_sagemaker_remote.errors.ContentChanged` is raised instead.
    """

    def __init__(self, fd: int, path: str, offset: int, length: int, sha256: bytes) -> None:
        self._fd = fd
        self.path = path
        self.offset = offset
        self.length = length
        self.expected = sha256
        self._pos = 0  # of the next byte handed out
        self._block = b""  # the block read last; its bytes from _at on are not handed out yet
        self._at = 0
        self._digest: Optional[Any] = hashlib.sha256()

    def __len__(self) -> int:
        return self.length

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self.length}[whence]
        self._pos = max(0, min(self.length, base + offset))
        self._block, self._at = b"", 0
        # a pass is checked only when it starts at the part's start (what botocore does)
        self._digest = hashlib.sha256() if self._pos == 0 else None
        return self._pos

    def _fill(self) -> None:
        start = self._pos
        amount = min(PART_BLOCK, self.length - start)
        data = os.pread(self._fd, amount, self.offset + start)
        if len(data) < amount:
            raise ContentChanged(self.path)  # the file got shorter
        if self._digest is not None:
            self._digest.update(data)
        if start + amount == self.length and (self._digest is None or self._digest.digest() != self.expected):
            raise ContentChanged(self.path)  # this pass differs (or cannot be checked): never complete it
        self._block, self._at = data, 0

    def read(self, amount: Optional[int] = -1) -> bytes:
        left = self.length - self._pos
        if amount is None or amount < 0 or amount > left:
            amount = left
        out = []
        while amount > 0:
            if self._at >= len(self._block):
                self._fill()
            block = self._block
            # a whole block is handed out as it is: no copy (memory is what ten of these hold)
            piece = block if self._at == 0 and amount >= len(block) else block[self._at:self._at + amount]
            self._at += len(piece)
            self._pos += len(piece)
            amount -= len(piece)
            out.append(piece)
        if self._at >= len(self._block):
            self._block, self._at = b"", 0  # not kept once handed out
        return out[0] if len(out) == 1 else b"".join(out)


class _Skipped(Exception):
    """A part not sent because another one failed first."""


def _upload_parts(client: Any, fh: BinaryIO, path: str, bucket: str, key: str, sha256: str, part_size: int,
                  in_flight: int, progress: Progress) -> None:
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256")["UploadId"]
    # the pool's threads are daemons: an interrupted launch does not wait for a stalled part
    pool = DaemonExecutor(in_flight)
    failed = threading.Event()
    futures: List["concurrent.futures.Future[Dict[str, Any]]"] = []
    fd = fh.fileno()

    def send(number: int, offset: int, length: int, part_digest: bytes) -> Dict[str, Any]:
        try:
            if failed.is_set():
                raise _Skipped()  # another part failed, or the file changed: send no more
            checksum = base64.b64encode(part_digest).decode("ascii")
            answer = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                        Body=PartBody(fd, path, offset, length, part_digest),
                                        ContentLength=length, ChecksumSHA256=checksum)
            if progress:
                progress(length)
            return {"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": checksum}
        except BaseException:
            failed.set()
            raise

    digest = hashlib.sha256()
    try:
        fh.seek(0)
        offset = number = 0
        while not failed.is_set():
            # the ordered read: the whole digest, and each part's, from the same bytes
            part = hashlib.sha256()
            length = 0
            while length < part_size:
                block = fh.read(min(READ_BLOCK, part_size - length))
                if not block:
                    break
                digest.update(block)
                part.update(block)
                length += len(block)
            if length == 0 and number > 0:
                break
            number += 1
            futures.append(pool.submit(send, number, offset, length, part.digest()))
            offset += length
            if length < part_size:
                break
        if not failed.is_set() and digest.hexdigest() != sha256:
            raise ContentChanged(path)
        concurrent.futures.wait(futures)
        errors = [e for e in (f.exception() for f in futures if not f.cancelled()) if e is not None]
        if errors:
            raise next((e for e in errors if not isinstance(e, _Skipped)), errors[0])
        client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                         MultipartUpload={"Parts": [f.result() for f in futures]})
    except BaseException:
        failed.set()
        # parts already sent are discarded: no incomplete upload is left behind to pay for
        with contextlib.suppress(Exception):
            concurrent.futures.wait(futures)
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise
    finally:
        pool.shutdown(wait=False)
