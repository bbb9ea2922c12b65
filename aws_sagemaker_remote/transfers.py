"""S3 transfers that store only verified bytes and never hold up Ctrl-C.

Two guarantees on top of s3transfer's managed transfers, used by
:class:`~aws_sagemaker_remote.store.S3Store`:

* **Content addresses are true.** Staging names an object by the SHA-256 of
  the file it read first (of each part it is sent in, for a file of several:
  :func:`blob_name`), and takes the SHA-256 of each part the file will be
  sent in from that same read (:func:`file_digests`; and the CRC-32 of a
  file of one part). :func:`upload_verified` (what staging uses) checks
  every byte it reads and sends against those (a file of one part against
  its CRC, a part of a larger one against its SHA-256), raising
  :class:`~aws_sagemaker_remote.errors.ContentChanged` on a mismatch *before*
  the object is completed, and sends each request with the SHA-256 of what
  was first read (the name itself for a one-request upload, each part's
  for a multipart one), which S3 checks against what it receives: a file
  that changed after it was hashed is never stored under the old name.
  An object that exists under a name therefore holds bytes of that name.
  (A server that does not check checksums, such as a test server, leaves
  the local check alone: for a file of one part, its CRC, enough for a
  file that changes by accident, not for one changed on purpose to keep it.)
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
import itertools
import os
import queue
import threading
import zlib
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, cast

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
#: Threads that hash the parts of one big file at once (at most one per core).
HASH_THREADS = 8
#: Bytes a part's body reads from the file at a time (however little is asked for).
PART_BLOCK = 128 * 1024


def part_size(size: int) -> int:
    """The size of the parts a file of ``size`` bytes is uploaded in (one part when it is not larger)."""
    return max(STREAM_CHUNKSIZE, -(-size // MAX_PARTS))


#: What is known of one part of a file from the read that named it: its CRC-32, and its
#: SHA-256 in base64 (as ``ChecksumSHA256`` carries it). The parts of a file of several are
#: checked against their SHA-256 as they are sent, so their CRC is not made (0).
PartCheck = Tuple[int, str]
#: One :data:`PartCheck` per part (:func:`part_size`), in order.
Checks = Tuple[PartCheck, ...]


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def blob_name(part_digests: Sequence[bytes]) -> str:
    """The name of a blob whose parts (:func:`part_size`) have these SHA-256 digests, in order.

    One part: the SHA-256 of the bytes, in hex. More: the SHA-256 of the parts' digests joined,
    in hex, then ``-`` and the number of parts: what S3 reports as the ``COMPOSITE`` SHA-256
    checksum of the multipart upload the blob is sent in (there in base64): S3 checks each
    part against its digest, and :func:`upload_verified` that the digests make the name, so
    what S3 stores has that name. The parts of a big file are hashed on every core at once,
    where one SHA-256 of the whole would take one core through the file before its first byte
    could be sent; the suffix keeps the two kinds of name apart (no file of one part can be
    made to take the name of another file's parts).
    """
    if len(part_digests) == 1:
        return part_digests[0].hex()
    return f"{hashlib.sha256(b''.join(part_digests)).hexdigest()}-{len(part_digests)}"


def object_sha256(name: str, data: bytes) -> str:
    """The SHA-256 (base64) a ``PutObject`` of ``data``, the blob named ``name``, is sent with:
    the name itself for a blob of one part (the usual case: no hashing again)."""
    if "-" not in name:
        return _b64(bytes.fromhex(name))
    return _b64(hashlib.sha256(data).digest())


def file_digests(path: str) -> Tuple[str, Checks]:
    """The file's blob name (:func:`blob_name`) and, from the same read, the CRC-32 and SHA-256
    of each of its parts (:func:`part_size`).

    An upload checks what it reads later against these (a file of one part against its CRC,
    cheaply, as it is read whole; a part of a larger file against its SHA-256, hashed as it
    streams out) and sends each part with its SHA-256, which S3 checks: so what is stored under
    the file's name is what was read here. The parts of a larger file are hashed on several
    threads at once (hashlib lets them run together), each reading into a buffer of its own:
    memory does not grow with the size.
    """
    with open(path, "rb", buffering=0) as fh:
        size = os.fstat(fh.fileno()).st_size
        part = part_size(size)
        if size <= part:
            hasher = _PartHasher()
            length = 0
            while length <= part:
                block = fh.read(min(READ_BLOCK, part + 1 - length))
                if not block:
                    break
                hasher.update(block)
                length += len(block)
            if length <= part:  # one part: the usual case
                return hasher.sha256.hexdigest(), (hasher.check(),)
            size = os.fstat(fh.fileno()).st_size  # it grew past one part since: hash its parts
    return _parts_digests(path, max(size, part + 1))


def bytes_digests(data: bytes) -> Tuple[str, Checks]:
    """:func:`file_digests` of bytes held in memory (a manifest, a listing, a small file read whole)."""
    part = part_size(len(data))
    view = memoryview(data)
    several = len(data) > part
    hashers = []
    for at in range(0, len(data) or 1, part):
        hasher = _PartHasher(crc=not several)
        hasher.update(view[at:at + part])
        hashers.append(hasher)
    return blob_name([h.sha256.digest() for h in hashers]), tuple(h.check() for h in hashers)


class _PartHasher:
    """The SHA-256 and (with ``crc``) the CRC-32 of one part, fed block by block."""

    def __init__(self, crc: bool = True) -> None:
        self.sha256 = hashlib.sha256()
        self.crc = 0
        self._with_crc = crc

    def update(self, block: Any) -> None:
        self.sha256.update(block)
        if self._with_crc:
            self.crc = zlib.crc32(block, self.crc)

    def check(self) -> PartCheck:
        return self.crc, _b64(self.sha256.digest())


class NameHasher:
    """:func:`blob_name` of bytes fed in order, for a blob of ``size`` bytes (a copy that names
    what it writes); bytes of another length give a name that is not the blob's."""

    def __init__(self, size: int) -> None:
        self.part = part_size(size)
        self._done: List[bytes] = []
        self._current = hashlib.sha256()
        self._in_part = 0

    def update(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._in_part == self.part:  # the part is full and more follows: the next part
                self._done.append(self._current.digest())
                self._current, self._in_part = hashlib.sha256(), 0
            piece = view[:self.part - self._in_part]
            self._current.update(piece)
            self._in_part += len(piece)
            view = view[len(piece):]

    def name(self) -> str:
        return blob_name([*self._done, self._current.digest()])


def _hash_threads() -> int:
    try:
        return max(1, min(HASH_THREADS, len(os.sched_getaffinity(0))))
    except AttributeError:  # no sched_getaffinity (macOS)
        return max(1, min(HASH_THREADS, os.cpu_count() or 1))


def _parts_digests(path: str, size: int) -> Tuple[str, Checks]:
    # Each thread takes the next part not taken yet and reads it, block by block into its own
    # buffer, feeding the part's SHA-256 (which lets the other threads run meanwhile). No CRC:
    # a part is checked against its SHA-256 when it is sent (PartBody).
    part = part_size(size)
    count = -(-size // part)
    found: List[Optional[_PartHasher]] = [None] * count
    taken = itertools.count()  # next() of a count is atomic: every part is taken once
    stop = threading.Event()  # this thread was interrupted (Ctrl-C) or failed: the helpers stop too

    def hash_parts() -> None:
        buffer = memoryview(bytearray(READ_BLOCK))
        with open(path, "rb", buffering=0) as fh:
            for index in iter(lambda: next(taken), None):
                if index >= count:
                    return
                hasher = _PartHasher(crc=False)
                fh.seek(index * part)
                left = min(part, size - index * part)
                while left and not stop.is_set():
                    got = fh.readinto(buffer[:min(READ_BLOCK, left)])
                    if not got:
                        break  # shorter than it was: the upload refuses it (its parts' count or SHA-256)
                    hasher.update(buffer[:got])
                    left -= got
                found[index] = hasher

    threads = min(_hash_threads(), count)
    # daemon threads, not waited for on the way out: Ctrl-C does not wait for the whole file
    helpers = DaemonExecutor(threads - 1 or 1)
    try:
        others = [helpers.submit(hash_parts) for _ in range(threads - 1)]
        hash_parts()  # this thread is one of them
        for other in others:
            other.result()  # an error of a helper's is raised here
    except BaseException:
        stop.set()
        raise
    finally:
        helpers.shutdown(wait=False)
    hashers = cast(List[_PartHasher], found)
    return blob_name([h.sha256.digest() for h in hashers]), tuple(h.check() for h in hashers)


def upload_verified(client: Any, path: str, bucket: str, key: str, sha256: str, in_flight: int,
                    progress: Progress = None, checks: Optional[Checks] = None) -> None:
    """Upload ``path`` to ``s3://bucket/key`` only if its bytes are those of the blob named
    ``sha256`` (:func:`blob_name`: the SHA-256 of a file of one part).

    ``checks`` are the CRC-32 (one part) and SHA-256 of the file's parts (:func:`part_size`), read
    together with that name (:func:`file_digests`); without them the file is read once more
    to get them (and refused at once if its name is not ``sha256``). A file of one part is
    read whole, checked against its CRC, and sent in one ``PutObject`` whose
    ``ChecksumSHA256`` is ``sha256`` itself. A larger one goes in parts, ``in_flight`` at a
    time, each sent straight from the file (no part is held in memory, so memory stays small
    whatever the size) with its SHA-256 as ``ChecksumSHA256``; every pass over a part's bytes
    is hashed and checked against that before its last block is handed to the connection, as
    S3 checks it against the bytes it received. The upload is completed only when every part went up checked; otherwise it is
    aborted (its parts discarded) and nothing is stored under ``key``; S3's checksum of what it
    stores is then the name itself (``COMPOSITE``). Multipart uploads run
    on a daemon thread (Ctrl-C is not held up); a one-part file is sent from the calling thread.

    :raises ContentChanged: the bytes read are not those ``sha256`` and ``checks`` were made of.
    """
    if checks is None:
        found, checks = file_digests(path)
        if found != sha256:
            raise ContentChanged(path)
    elif len(checks) > 1 and blob_name([base64.b64decode(sha) for _, sha in checks]) != sha256:
        raise ContentChanged(path)  # parts that do not make this name: whatever kept them is wrong
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
    what it means here: the file changed since it was hashed, in a way the check here did not show."""
    try:
        yield
    except Exception as exc:
        response = getattr(exc, "response", None)
        if isinstance(response, dict) and response.get("Error", {}).get("Code") == "BadDigest":
            raise ContentChanged(path) from exc
        raise


def put_verified(client: Any, data: bytes, bucket: str, key: str, name: str, source: str = "") -> None:
    """One ``PutObject`` of ``data``, the blob named ``name`` (:func:`blob_name`), sent with its
    SHA-256 as ``ChecksumSHA256`` for S3 to check; its refusal (``BadDigest``) is
    :class:`ContentChanged` of ``source``. Bytes of several parts, whose name S3 cannot check
    in one request, are checked here first."""
    what = source or f"s3://{bucket}/{key}"
    if "-" in name and bytes_digests(data)[0] != name:
        raise ContentChanged(what)
    with _changed_if_refused(what):
        client.put_object(Bucket=bucket, Key=key, Body=data, ChecksumSHA256=object_sha256(name, data))


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
    asks for at a time). Every pass from the part's start to its end is hashed and checked
    against ``sha256`` (the part's SHA-256 in base64, from when the file was named) as soon
    as its last block is read, before any of that block is handed out, so a request whose
    body changed since never ends:
    :class:`~aws_sagemaker_remote.errors.ContentChanged` is raised instead. (It is the check
    S3 makes of the ``ChecksumSHA256`` sent with the part, made here too for a server that
    makes none.)
    """

    def __init__(self, fd: int, path: str, offset: int, length: int, sha256: str) -> None:
        self._fd = fd
        self.path = path
        self.offset = offset
        self.length = length
        self.expected = sha256
        self._pos = 0  # of the next byte handed out
        self._block = b""  # the block read last; its bytes from _at on are not handed out yet
        self._at = 0
        self._hash: Optional[Any] = hashlib.sha256()  # of this pass so far; None when it did not start at 0

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
        self._hash = hashlib.sha256() if self._pos == 0 else None
        return self._pos

    def _fill(self) -> None:
        start = self._pos
        amount = min(PART_BLOCK, self.length - start)
        data = os.pread(self._fd, amount, self.offset + start)
        if len(data) < amount:
            raise ContentChanged(self.path)  # the file got shorter
        if self._hash is not None:
            self._hash.update(data)
        if start + amount == self.length and (self._hash is None or _b64(self._hash.digest()) != self.expected):
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
                checksum = check[1]
                with _changed_if_refused(path):
                    answer = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                                Body=PartBody(fd, path, offset, length, checksum),
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
