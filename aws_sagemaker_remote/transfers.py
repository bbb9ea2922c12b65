"""S3 transfers that store only verified bytes and never hold up Ctrl-C.

Two guarantees on top of s3transfer's managed transfers, used by
:class:`~aws_sagemaker_remote.store.S3Store`:

* **Content addresses are true.** Staging names an object by the SHA-256 of
  the file it read first, and takes the CRC-32 and SHA-256 of each part the
  file will be sent in from that same read (:func:`file_digests`).
  :func:`upload_verified` (what staging uses) checks every byte it reads and
  sends against the CRCs, raising
  :class:`~aws_sagemaker_remote.errors.ContentChanged` on a mismatch *before*
  the object is completed, and sends each request with the SHA-256 of what
  was first read (the digest itself for a one-request upload, each part's
  for a multipart one), which S3 checks against what it receives: a file
  that changed after it was hashed is never stored under the old digest.
  An object that exists under a digest therefore holds bytes with that
  digest. (A server that does not check checksums, such as a test server,
  leaves the CRC as the only check: enough for a file that changes by
  accident, not for one changed on purpose to keep its CRCs.)
* **Ctrl-C acts at once.** s3transfer waits for every request in flight
  before it lets an interrupted transfer go, and an interpreter waits for the
  threads of :mod:`concurrent.futures` before it exits: a stalled request held
  Ctrl-C for a whole read timeout. Here the transfer runs on daemon threads
  (:class:`DaemonExecutor`) driven from a daemon thread, and the caller waits in
  short, interruptible steps; on ``KeyboardInterrupt`` the transfer is
  cancelled and left behind, and the interrupt goes on at once. An interrupted
  multipart upload sends no more parts and is never completed (it is aborted
  if the process lives on), so nothing half-sent becomes visible; the partial
  file of an unfinished download is removed. (A file of one part is sent from
  the calling thread, whose socket waits Ctrl-C interrupts.)
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
import zlib
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, cast

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
        self._idle = 0  # threads waiting for work
        self._waiting = 0  # work no thread has taken yet

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> "concurrent.futures.Future[Any]":
        future: "concurrent.futures.Future[Any]" = concurrent.futures.Future()
        with self._lock:
            self._queue.put((future, fn, args, kwargs))
            self._waiting += 1
            # a thread for each piece of work the idle ones cannot take: counting idle threads
            # alone, a burst of submissions met one idle thread and started no other
            if self._waiting > self._idle and len(self._threads) < self._max:
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
                if item is not None:
                    self._waiting -= 1
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


#: Parts of a checked upload (the AWS CLI's size); a file up to this size goes in one request.
STREAM_CHUNKSIZE = 8 * 1024 * 1024
#: S3 takes at most 10,000 parts; larger files get larger parts.
MAX_PARTS = 10000
#: Bytes read at a time while hashing a file.
READ_BLOCK = 1024 * 1024
#: Bytes read at a time while hashing a file of several parts (into one buffer, used again).
BIG_READ_BLOCK = 4 * 1024 * 1024
#: Bytes a part's body reads from the file at a time (however little is asked for).
PART_BLOCK = 128 * 1024


def part_size(size: int) -> int:
    """The size of the parts a file of ``size`` bytes is uploaded in (one part when it is not larger)."""
    return max(STREAM_CHUNKSIZE, -(-size // MAX_PARTS))


#: What is known of one part of a file from the read that named it: its CRC-32, and its
#: SHA-256 in base64 (as ``ChecksumSHA256`` carries it).
PartCheck = Tuple[int, str]
#: One :data:`PartCheck` per part (:func:`part_size`), in order.
Checks = Tuple[PartCheck, ...]


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def file_digests(path: str) -> Tuple[str, Checks]:
    """The file's SHA-256 (hex) and, from the same read, the CRC-32 and SHA-256 of each of its
    parts (:func:`part_size`).

    An upload checks what it reads later against the CRCs (cheaply) and sends each part with
    its SHA-256, which S3 checks: so what is stored under the file's digest is what was read
    here. A file of one part has the file's digest as its part's. The parts of a larger file
    are hashed on a second thread beside the whole file's digest (hashlib lets both run at
    once), from one buffer read into again and again: memory does not grow with the size.
    """
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        size = os.fstat(fh.fileno()).st_size
        part = part_size(size)
        if size > part:
            return _parts_digests(fh, part)
        crc = length = 0
        while length <= part:
            block = fh.read(min(READ_BLOCK, part + 1 - length))
            if not block:
                break
            digest.update(block)
            crc = zlib.crc32(block, crc)
            length += len(block)
        if length <= part:  # one part: the usual case
            return digest.hexdigest(), ((crc, _b64(digest.digest())),)
        return _parts_digests(fh, part)  # it grew past one part since fstat: start again


def bytes_digests(data: bytes) -> Tuple[str, Checks]:
    """:func:`file_digests` of bytes held in memory (a manifest, a listing, a small file read whole)."""
    part = part_size(len(data))
    if len(data) <= part:  # one part: its SHA-256 is the whole's
        whole = hashlib.sha256(data).digest()
        return whole.hex(), ((zlib.crc32(data), _b64(whole)),)
    view = memoryview(data)
    checks = tuple((zlib.crc32(piece), _b64(hashlib.sha256(piece).digest()))
                   for piece in (view[at:at + part] for at in range(0, len(data) or 1, part)))
    return hashlib.sha256(data).hexdigest(), checks


class _PartHasher:
    """The CRC-32 and SHA-256 of one part, fed block by block."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.crc = 0

    def update(self, block: memoryview) -> None:
        self.sha256.update(block)
        self.crc = zlib.crc32(block, self.crc)

    def check(self) -> PartCheck:
        return self.crc, _b64(self.sha256.digest())


def _parts_digests(fh: Any, part: int) -> Tuple[str, Checks]:
    # The whole file's SHA-256 is one sequential computation: it is the critical path, so this
    # thread only reads and feeds it, while a helper thread makes each part's CRC and SHA-256
    # from the same blocks. Two buffers take turns: the next block is read while the helper
    # still hashes the last one (hashlib and zlib let other threads run on large blocks).
    fh.seek(0)
    digest = hashlib.sha256()
    checks: List[PartCheck] = []
    buffers = (bytearray(BIG_READ_BLOCK), bytearray(BIG_READ_BLOCK))
    using: List[Optional["concurrent.futures.Future[None]"]] = [None, None]  # the helper's work on each
    hasher = _PartHasher()
    in_part = turn = 0

    def close(done: _PartHasher) -> None:
        checks.append(done.check())

    closing: List["concurrent.futures.Future[None]"] = []
    with concurrent.futures.ThreadPoolExecutor(1) as helper:  # runs its tasks in order
        while True:
            busy = using[turn]
            if busy is not None:
                busy.result()  # the helper is done with this buffer: it may be read into again
            view = memoryview(buffers[turn])[:min(BIG_READ_BLOCK, part - in_part)]
            got = fh.readinto(view)
            if not got:
                break
            block = view[:got]
            using[turn] = helper.submit(hasher.update, block)
            digest.update(block)
            in_part += got
            turn ^= 1
            if in_part == part:
                closing.append(helper.submit(close, hasher))
                hasher, in_part = _PartHasher(), 0
        if in_part:
            closing.append(helper.submit(close, hasher))
    for done in [*using, *closing]:
        if done is not None:
            done.result()  # an error of the helper's is raised here
    return digest.hexdigest(), tuple(checks)


def upload_verified(client: Any, path: str, bucket: str, key: str, sha256: str, in_flight: int,
                    progress: Progress = None, checks: Optional[Checks] = None) -> None:
    """Upload ``path`` to ``s3://bucket/key`` only if its bytes are those of digest ``sha256``.

    ``checks`` are the CRC-32 and SHA-256 of the file's parts (:func:`part_size`), read
    together with ``sha256`` (:func:`file_digests`); without them the file is read once more
    to get them (and refused at once if its digest is not ``sha256``). A file of one part is
    read whole, checked against its CRC, and sent in one ``PutObject`` whose
    ``ChecksumSHA256`` is ``sha256`` itself. A larger one goes in parts, ``in_flight`` at a
    time, each sent straight from the file (no part is held in memory, so memory stays small
    whatever the size) with its SHA-256 as ``ChecksumSHA256``; every pass over a part's bytes
    is checked against its CRC before its last block is handed to the connection. S3 checks
    each SHA-256 against the bytes it received, so a change the CRC cannot see is refused
    there. The upload is completed only when every part went up checked; otherwise it is
    aborted (its parts discarded) and nothing is stored under ``key``. Multipart uploads run
    on a daemon thread (Ctrl-C is not held up); a one-part file is sent from the calling thread.

    :raises ContentChanged: the bytes read are not those ``sha256`` and ``checks`` were made of.
    """
    if checks is None:
        found, checks = file_digests(path)
        if found != sha256:
            raise ContentChanged(path)
    expected = tuple(checks)
    size = os.path.getsize(path)
    part = part_size(size)
    if size <= part:
        _put_whole(client, path, bucket, key, sha256, expected, part, progress)
        return

    stop = threading.Event()  # set on Ctrl-C: no more parts, and never completed (aborted instead)

    def work(holder: Dict[str, Any]) -> None:
        _upload_parts(client, path, bucket, key, expected, part, in_flight, progress, stop)

    run_interruptibly(work, on_interrupt=stop.set)


@contextlib.contextmanager
def _changed_if_refused(path: str) -> Iterator[None]:
    """S3's ``BadDigest`` (the bytes it received do not have the checksum sent with them) as
    what it means here: the file changed since it was hashed, in a way its CRCs did not show."""
    try:
        yield
    except Exception as exc:
        response = getattr(exc, "response", None)
        if isinstance(response, dict) and response.get("Error", {}).get("Code") == "BadDigest":
            raise ContentChanged(path) from exc
        raise


def put_verified(client: Any, data: bytes, bucket: str, key: str, sha256: str, source: str = "") -> None:
    """One ``PutObject`` of ``data`` whose SHA-256 is ``sha256`` (hex), sent as ``ChecksumSHA256``
    for S3 to check; its refusal (``BadDigest``) is :class:`ContentChanged` of ``source``."""
    with _changed_if_refused(source or f"s3://{bucket}/{key}"):
        client.put_object(Bucket=bucket, Key=key, Body=data, ChecksumSHA256=_b64(bytes.fromhex(sha256)))


def _put_whole(client: Any, path: str, bucket: str, key: str, sha256: str, checks: Checks,
               part: int, progress: Progress) -> None:
    with open(path, "rb") as fh:
        data = fh.read(part + 1)
    if len(checks) != 1 or len(data) > part or zlib.crc32(data) != checks[0][0]:
        raise ContentChanged(path)
    put_verified(client, data, bucket, key, sha256, path)
    if progress:
        progress(len(data))


class PartBody:
    """One part of a file as a seekable, read-only body, read straight from the file.

    The bytes are read in blocks of :data:`PART_BLOCK` (however little the HTTP connection
    asks for at a time). Every pass from the part's start to its end is checked against
    ``crc`` (the part's CRC-32 from when the file was hashed) as soon as its last block is
    read, before any of that block is handed out, so a request whose body changed since never
    ends: :class:`~aws_sagemaker_remote.errors.ContentChanged` is raised instead.
    """

    def __init__(self, fd: int, path: str, offset: int, length: int, crc: int) -> None:
        self._fd = fd
        self.path = path
        self.offset = offset
        self.length = length
        self.expected = crc
        self._pos = 0  # of the next byte handed out
        self._block = b""  # the block read last; its bytes from _at on are not handed out yet
        self._at = 0
        self._crc: Optional[int] = 0  # of this pass so far; None when the pass did not start at 0

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
        self._crc = 0 if self._pos == 0 else None
        return self._pos

    def _fill(self) -> None:
        start = self._pos
        amount = min(PART_BLOCK, self.length - start)
        data = os.pread(self._fd, amount, self.offset + start)
        if len(data) < amount:
            raise ContentChanged(self.path)  # the file got shorter
        if self._crc is not None:
            self._crc = zlib.crc32(data, self._crc)
        if start + amount == self.length and self._crc != self.expected:
            raise ContentChanged(self.path)  # this pass differs (or cannot be checked): never complete it
        self._block, self._at = data, 0

    def read(self, amount: Optional[int] = -1) -> bytes:
        left = self.length - self._pos
        if amount is None or amount < 0:
            amount = left  # all of it: the only read that joins blocks
        else:
            # at most what is left of one block, as a raw file may return: botocore hashes a body
            # for its signature in 1 MiB reads, and joined blocks would cost each thread that much
            block_left = len(self._block) - self._at
            amount = min(amount, left, block_left if block_left > 0 else PART_BLOCK)
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


def _upload_parts(client: Any, path: str, bucket: str, key: str, checks: Checks, part: int,
                  in_flight: int, progress: Progress, failed: threading.Event) -> None:
    # the pool's threads are daemons: an interrupted launch does not wait for a stalled part
    pool = DaemonExecutor(in_flight)
    futures: List["concurrent.futures.Future[Dict[str, Any]]"] = []
    with open(path, "rb") as fh:
        fd = fh.fileno()
        size = os.fstat(fd).st_size
        if len(checks) != -(-size // part):
            raise ContentChanged(path)  # not the size it had when it was hashed
        upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256")["UploadId"]

        def send(number: int, offset: int, length: int, check: PartCheck) -> Dict[str, Any]:
            try:
                if failed.is_set():
                    raise _Skipped()  # another part failed, or the file changed: send no more
                crc, checksum = check
                with _changed_if_refused(path):
                    answer = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                                Body=PartBody(fd, path, offset, length, crc),
                                                ContentLength=length, ChecksumSHA256=checksum)
                if progress:
                    progress(length)
                return {"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": checksum}
            except BaseException:
                failed.set()
                raise

        try:
            for index, check in enumerate(checks):
                offset = index * part
                futures.append(pool.submit(send, index + 1, offset, min(part, size - offset), check))
            concurrent.futures.wait(futures)
            errors = [e for e in (f.exception() for f in futures if not f.cancelled()) if e is not None]
            if errors:
                raise next((e for e in errors if not isinstance(e, _Skipped)), errors[0])
            if failed.is_set():
                raise _Skipped()  # interrupted: the caller has gone on already
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
