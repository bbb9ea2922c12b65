"""The S3 seam: one small interface, two implementations.

:class:`S3Store` talks to S3 through an injected boto3 client (like s3transfer's
``TransferManager``, it never builds its own). :class:`LocalStore` keeps the same
``s3://bucket/key`` namespace in a folder, so ``--sagemaker-run=local`` works on
a machine with no AWS account: staging writes there and the local backend
reads from there. Both are used by staging, by the local backend and by local
runs with ``s3://`` paths.

The module imports no AWS library at import time.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Protocol, Set, Tuple

from .errors import ContentChanged, RemoteError
from .safepath import UnsafePath, local_path
from .transfers import Checks, NameHasher, bytes_digests, upload_verified

#: Where the framework keeps its local S3 stand-in and caches (overridable for tests).
HOME_ENV = "AWS_SAGEMAKER_REMOTE_HOME"

Progress = Optional[Callable[[int], None]]


class UnsafeDownload(RemoteError):
    """An S3 key or archive member would be written outside its target folder (exit 1)."""


def home_dir() -> str:
    """``$AWS_SAGEMAKER_REMOTE_HOME`` or ``~/.cache/aws-sagemaker-remote``."""
    return os.environ.get(HOME_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "aws-sagemaker-remote")


def split_uri(uri: str) -> Tuple[str, str]:
    """``s3://bucket/key`` → ``("bucket", "key")``."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


def join_uri(bucket: str, *parts: str) -> str:
    key = "/".join(p.strip("/") for p in parts if p and p.strip("/"))
    return f"s3://{bucket}/{key}" if key else f"s3://{bucket}/"


class Store(Protocol):
    """What staging, the local backend and local runs need from S3."""

    #: "s3" or "local"; shown to the user
    name: str

    def head(self, uri: str) -> Optional[int]:
        """The object's size, or None when it does not exist."""

    def list(self, uri: str) -> List[Tuple[str, int]]:
        """Every object whose key starts with the URI's key: (uri, size), sorted by key."""

    def fingerprint(self, uri: str) -> List[Tuple[str, str]]:
        """(uri, version tag) of every object under ``uri``: changes whenever an object changes."""

    def list_children(self, uri: str) -> Dict[str, int]:
        """Name → size of the objects directly in the folder ``uri`` (ends with ``/``), not below it."""

    def upload_file(self, path: str, uri: str, progress: Progress = None, sha256: Optional[str] = None,
                    checks: Optional[Checks] = None) -> None:
        """Upload a local file (streamed; multipart for large files).

        With ``sha256``, the object is stored only if the bytes read are those of
        that blob name (:func:`~aws_sagemaker_remote.transfers.blob_name`: the
        SHA-256 of a file of one part); otherwise
        :class:`~aws_sagemaker_remote.errors.ContentChanged`.
        ``checks``, what the read that made that name found of each part (the
        CRC-32 of a file of one part, the SHA-256 of each part of a bigger one;
        :func:`~aws_sagemaker_remote.transfers.file_digests`), let a store check
        the bytes it sends against them without reading the file a third time.
        """

    def put_bytes(self, data: bytes, uri: str, sha256: Optional[str] = None) -> None:
        """Write a small object; ``sha256`` (its blob name, when known) goes with it for S3 to check."""

    def copy(self, source: str, uri: str) -> None:
        """Copy an object within the store (no bytes leave this machine)."""

    def get_bytes(self, uri: str) -> bytes:
        """Read a small object."""

    def read_if_present(self, uri: str) -> Optional[bytes]:
        """Read a small object; None when there is none."""

    def download_file(self, uri: str, path: str, progress: Progress = None) -> None:
        """Download one object to a local file (created atomically)."""

    def delete(self, uri: str) -> int:
        """Delete every object whose key starts with the URI's key; returns how many."""

    def ensure_bucket(self, bucket: str, region: Optional[str], create: bool = True) -> bool:
        """True when the bucket exists (creating it if allowed)."""

    def created(self, bucket: str) -> bool:
        """Whether this store created ``bucket`` itself (then it holds only what was put there since)."""


class LocalStore:
    """``s3://bucket/key`` ↔ ``ROOT/bucket/key`` on this machine."""

    name = "local"

    def __init__(self, root: Optional[str] = None) -> None:
        self.root = os.path.abspath(root or os.path.join(home_dir(), "s3"))
        self._created: Set[str] = set()

    def path(self, uri: str) -> str:
        """The local file that stands for ``uri``."""
        bucket, key = split_uri(uri)
        parts = [p for p in key.split("/") if p]
        if ".." in parts or bucket in ("", ".", "..") or "\0" in key:
            # real S3 stores such a key as a name; a folder would resolve it outside the stand-in
            raise UnsafeDownload(f"{uri}: the local stand-in for S3 ({self.root}) cannot hold a key with "
                                 f"'..' segments")
        return os.path.join(self.root, bucket, *parts)

    def head(self, uri: str) -> Optional[int]:
        path = self.path(uri)
        return os.path.getsize(path) if os.path.isfile(path) else None

    def list(self, uri: str) -> List[Tuple[str, int]]:
        bucket, key = split_uri(uri)
        base = os.path.join(self.root, bucket)
        out: List[Tuple[str, int]] = []
        if not os.path.isdir(base):
            return out
        for folder, dirs, files in os.walk(base):
            dirs.sort()
            for name in files:
                full = os.path.join(folder, name)
                rel = os.path.relpath(full, base).replace(os.sep, "/")
                if rel.startswith(key) and not name.startswith(".tmp-"):
                    out.append((f"s3://{bucket}/{rel}", os.path.getsize(full)))
        return sorted(out)

    def fingerprint(self, uri: str) -> List[Tuple[str, str]]:
        out = []
        for obj, size in self.list(uri):
            st = os.stat(self.path(obj))
            out.append((obj, f"{size}-{st.st_mtime_ns}"))
        return out

    def _write(self, uri: str, writer: Callable[[Any], None]) -> None:
        dest = self.path(uri)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(dest))
        try:
            with os.fdopen(fd, "wb") as fh:
                writer(fh)
            os.replace(tmp, dest)  # readers never see half a file
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def list_children(self, uri: str) -> Dict[str, int]:
        folder = self.path(uri)
        out: Dict[str, int] = {}
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_file() and not entry.name.startswith(".tmp-"):
                        out[entry.name] = entry.stat().st_size
        except OSError:
            pass
        return out

    def upload_file(self, path: str, uri: str, progress: Progress = None, sha256: Optional[str] = None,
                    checks: Optional[Checks] = None) -> None:
        # the bytes written are hashed whole (the name checked, not the CRCs): a local copy is cheap
        def copy(fh: Any) -> None:
            with open(path, "rb") as src:
                hasher = NameHasher(os.fstat(src.fileno()).st_size)
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    fh.write(chunk)
                    hasher.update(chunk)
                    if progress:
                        progress(len(chunk))
            if sha256 and hasher.name() != sha256:
                raise ContentChanged(path)  # before the rename: nothing appears under the name

        self._write(uri, copy)

    def put_bytes(self, data: bytes, uri: str, sha256: Optional[str] = None) -> None:
        if sha256 and bytes_digests(data)[0] != sha256:
            raise ContentChanged(uri)  # as S3 refuses bytes that do not have their ChecksumSHA256
        self._write(uri, lambda fh: fh.write(data))

    def copy(self, source: str, uri: str) -> None:
        self.upload_file(self.path(source), uri)

    def get_bytes(self, uri: str) -> bytes:
        path = self.path(uri)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{uri} does not exist in the local store {self.root}")
        with open(path, "rb") as fh:
            return fh.read()

    def read_if_present(self, uri: str) -> Optional[bytes]:
        try:
            return self.get_bytes(uri)
        except FileNotFoundError:
            return None

    def download_file(self, uri: str, path: str, progress: Progress = None) -> None:
        src = self.path(uri)
        if not os.path.isfile(src):
            raise FileNotFoundError(f"{uri} does not exist in the local store {self.root}")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = path + ".part"
        shutil.copyfile(src, tmp)
        os.replace(tmp, path)
        if progress:
            progress(os.path.getsize(path))

    def delete(self, uri: str) -> int:
        objects = self.list(uri)
        for obj, _ in objects:
            os.remove(self.path(obj))
        return len(objects)

    def ensure_bucket(self, bucket: str, region: Optional[str], create: bool = True) -> bool:
        folder = os.path.join(self.root, bucket)
        if not os.path.isdir(folder) and create:
            os.makedirs(folder, exist_ok=True)
            self._created.add(bucket)
        return os.path.isdir(folder)

    def created(self, bucket: str) -> bool:
        return bucket in self._created


# Multipart above 16 MiB in 16 MiB parts, at most 4 parts in flight: memory stays
# bounded (s3transfer reads each part from disk as it sends it).
MULTIPART_THRESHOLD = 16 * 1024 * 1024
MULTIPART_CHUNKSIZE = 16 * 1024 * 1024
MAX_CONCURRENCY = 4
#: Parts of a checked upload in flight at once (each read straight from the file, not held in memory).
STREAM_CONCURRENCY = 10
#: Files up to this size go up in one PutObject read whole into memory (a bounded number at a time).
SMALL_OBJECT = 1024 * 1024



class S3Store:
    """The real S3, through an injected boto3 S3 client."""

    name = "s3"

    def __init__(self, client: Any) -> None:
        self.client = client
        #: (bucket, region, create) of :meth:`expect_bucket`, until the first request settles it
        self._expected: Optional[Tuple[str, Optional[str], bool]] = None
        self._expected_lock = threading.Lock()
        self._created: Set[str] = set()
        from boto3.s3.transfer import TransferConfig

        self.transfer_config = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=MULTIPART_CHUNKSIZE,
            max_concurrency=MAX_CONCURRENCY,
        )

    def expect_bucket(self, bucket: str, region: Optional[str], create: bool = True) -> None:
        """:meth:`ensure_bucket`, made at the first request that needs it instead of now.

        A HEAD that finds its object in ``bucket`` proves the bucket exists: a warm launch,
        whose first request is that HEAD, then sends no ``HeadBucket`` at all. Any other
        request (or a HEAD that finds nothing) checks the bucket first, creating it if allowed.
        """
        self._expected = (bucket, region, create)

    def _settle(self) -> None:
        """Check the bucket :meth:`expect_bucket` named, once, before the first request that needs it."""
        if self._expected is None:
            return
        with self._expected_lock:
            expected = self._expected
            if expected is None:
                return
            from .aws import translate_errors

            with translate_errors(f"checking bucket {expected[0]}"):
                self.ensure_bucket(*expected)
            self._expected = None

    def head(self, uri: str) -> Optional[int]:
        from botocore.exceptions import ClientError

        bucket, key = split_uri(uri)
        expected = self._expected
        if expected is not None and expected[0] != bucket:
            self._settle()  # an object elsewhere says nothing about the expected bucket
        try:
            size = int(self.client.head_object(Bucket=bucket, Key=key)["ContentLength"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound", "NoSuchBucket"):
                self._settle()  # the object is missing: the bucket may be too
                return None
            raise
        if expected is not None:
            self._expected = None  # the object is there, so its bucket is
        return size

    def list(self, uri: str) -> List[Tuple[str, int]]:
        self._settle()
        from botocore.exceptions import ClientError

        bucket, key = split_uri(uri)
        out: List[Tuple[str, int]] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
                for obj in page.get("Contents", []) or []:
                    out.append((f"s3://{bucket}/{obj['Key']}", int(obj["Size"])))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
                return []
            raise
        return sorted(out)

    def fingerprint(self, uri: str) -> List[Tuple[str, str]]:
        self._settle()
        bucket, key = split_uri(uri)
        out: List[Tuple[str, str]] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            for obj in page.get("Contents", []) or []:
                out.append((f"s3://{bucket}/{obj['Key']}", f"{obj['Size']}-{obj.get('ETag', '')}"))
        return sorted(out)

    def list_children(self, uri: str) -> Dict[str, int]:
        self._settle()
        from botocore.exceptions import ClientError

        bucket, key = split_uri(uri)
        out: Dict[str, int] = {}
        try:
            # one listing, page by page; the delimiter leaves out everything in sub-folders
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key, Delimiter="/")
            for page in pages:
                for obj in page.get("Contents", []) or []:
                    out[obj["Key"][len(key):]] = int(obj["Size"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
                return {}
            raise
        return out

    def upload_file(self, path: str, uri: str, progress: Progress = None, sha256: Optional[str] = None,
                    checks: Optional[Checks] = None) -> None:
        self._settle()
        bucket, key = split_uri(uri)
        if sha256:
            # a file of one part in one PutObject from this thread; larger ones in parallel parts
            # read straight from the file on a daemon thread (Ctrl-C is not held up); every byte
            # sent is checked against what was hashed, and S3 checks the checksum of what it gets
            upload_verified(self.client, path, bucket, key, sha256, STREAM_CONCURRENCY, progress, checks)
            return
        from .transfers import upload_file

        # Ctrl-C is not held up by a stalled request
        upload_file(self.client, path, bucket, key, self.transfer_config, progress)

    def put_bytes(self, data: bytes, uri: str, sha256: Optional[str] = None) -> None:
        self._settle()
        bucket, key = split_uri(uri)
        if sha256 is None:
            self.client.put_object(Bucket=bucket, Key=key, Body=data)
            return
        from .transfers import put_verified

        put_verified(self.client, data, bucket, key, sha256)

    def copy(self, source: str, uri: str) -> None:
        self._settle()
        src_bucket, src_key = split_uri(source)
        bucket, key = split_uri(uri)
        from botocore.exceptions import ClientError

        try:
            # one request: the managed copy would HEAD the source first
            self.client.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": src_bucket, "Key": src_key})
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "InvalidRequest":
                raise
            from .transfers import copy_object

            # CopyObject stops at 5 GB; the managed copy switches to a multipart copy
            copy_object(self.client, src_bucket, src_key, bucket, key, self.transfer_config)

    def get_bytes(self, uri: str) -> bytes:
        self._settle()
        bucket, key = split_uri(uri)
        data: bytes = self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return data

    def read_if_present(self, uri: str) -> Optional[bytes]:
        """Like :meth:`head`, an answer about the object settles the expected bucket: found, or
        ``NoSuchKey`` (the bucket is there); ``NoSuchBucket`` checks (or creates) it."""
        from botocore.exceptions import ClientError

        bucket, key = split_uri(uri)
        expected = self._expected
        if expected is not None and expected[0] != bucket:
            self._settle()
        try:
            data: bytes = self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "NoSuchBucket":
                self._settle()
                return None
            if code in ("404", "NoSuchKey", "NotFound"):
                if expected is not None and expected[0] == bucket:
                    self._expected = None  # a missing key in an existing bucket
                return None
            raise
        if expected is not None and expected[0] == bucket:
            self._expected = None
        return data

    def download_file(self, uri: str, path: str, progress: Progress = None) -> None:
        self._settle()
        bucket, key = split_uri(uri)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = path + ".part"
        from .transfers import download_file

        download_file(self.client, bucket, key, tmp, self.transfer_config, progress)  # Ctrl-C acts at once
        os.replace(tmp, path)

    def delete(self, uri: str) -> int:
        self._settle()
        bucket, _ = split_uri(uri)
        keys = [split_uri(obj)[1] for obj, _ in self.list(uri)]
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": k} for k in keys[start:start + 1000]]
            self.client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        return len(keys)

    def ensure_bucket(self, bucket: str, region: Optional[str], create: bool = True) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=bucket)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise
        if not create:
            return False
        kwargs: Dict[str, Any] = {"Bucket": bucket}
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self.client.create_bucket(**kwargs)
        except ClientError as exc:
            # the answer to our own create was lost and botocore's retry found the bucket made
            # (or another launch made it first: not known to be empty, so not marked created)
            if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise
        else:
            self._created.add(bucket)
        return True

    def created(self, bucket: str) -> bool:
        return bucket in self._created


# --- SageMaker's S3 input semantics, shared by the local backend and local runs -------

def prefix_objects(store: Store, uri: str) -> List[Tuple[str, str, int]]:
    """Objects an ``S3Prefix`` input ``uri`` names: (uri, relative local path, size).

    Like SageMaker, the local path is the key relative to the prefix's folder:
    ``s3://b/data/`` + ``data/x/y.csv`` → ``x/y.csv``; ``s3://b/data/train`` +
    ``data/train.csv`` → ``train.csv``.
    """
    _, key = split_uri(uri)
    if not key or key.endswith("/"):
        base = key
    elif "/" in key:
        base = key.rsplit("/", 1)[0] + "/"
    else:
        base = ""
    out = []
    for obj_uri, size in store.list(uri):
        _, obj_key = split_uri(obj_uri)
        if obj_key.endswith("/"):
            continue  # folder marker objects
        out.append((obj_uri, obj_key[len(base):], size))
    return out


def manifest_objects(store: Store, uri: str) -> List[Tuple[str, str, int]]:
    """Objects a ``ManifestFile`` input names: ``[{"prefix": "s3://b/p/"}, "rel/a", ...]``."""
    entries = json.loads(store.get_bytes(uri).decode("utf-8"))
    if not entries or not isinstance(entries[0], dict) or "prefix" not in entries[0]:
        raise ValueError(f"{uri}: a manifest starts with {{\"prefix\": \"s3://...\"}}")
    prefix = entries[0]["prefix"]
    out = []
    for rel in entries[1:]:
        obj = prefix + rel if prefix.endswith("/") else prefix + "/" + rel
        out.append((obj, rel, store.head(obj) or 0))
    return out


def iter_files(folder: str) -> Iterator[Tuple[str, str]]:
    """(absolute path, relative posix path) of every file under ``folder``, sorted."""
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            yield full, os.path.relpath(full, folder).replace(os.sep, "/")


#: Transfers of a folder's files in flight at once.
TRANSFER_WORKERS = 8


def in_parallel(step: Callable[..., Any], jobs: List[Tuple[Any, ...]], workers: int = TRANSFER_WORKERS) -> None:
    """``step(*job)`` for every job on a bounded pool of threads.

    Jobs are handed to the pool a few at a time (twice as many as it has threads), not all
    at once: 10,000 waiting futures cost memory, and every look at them cost time. The first
    error is raised once the transfers already running have ended, and no new one starts
    after it. Ctrl-C acts at once: the pool's threads are daemon threads and the wait is made
    of short steps (see :mod:`aws_sagemaker_remote.transfers`), so a stalled request is left
    behind instead of holding up the interrupt.
    """
    if len(jobs) <= 1:
        for job in jobs:
            step(*job)
        return
    import concurrent.futures

    from .transfers import WAIT_STEP, DaemonExecutor

    threads = min(workers, len(jobs))
    pool = DaemonExecutor(threads)
    waiting = iter(jobs)
    pending: Set[Any] = set()
    failed: Optional[BaseException] = None
    try:
        while True:
            if failed is None:  # after an error, no new job starts
                for job in waiting:
                    pending.add(pool.submit(step, *job))
                    if len(pending) >= 2 * threads:
                        break
            if not pending:
                break
            done, still = concurrent.futures.wait(pending, timeout=WAIT_STEP,
                                                  return_when=concurrent.futures.FIRST_COMPLETED)
            pending = set(still)
            for future in done:
                if failed is None and not future.cancelled() and future.exception() is not None:
                    failed = future.exception()
                    for other in pending:
                        other.cancel()  # those not started yet never start
        if failed is not None:
            raise failed
    except KeyboardInterrupt:
        for future in pending:
            future.cancel()
        raise
    finally:
        pool.shutdown(wait=False)


def upload_folder(store: Store, folder: str, uri: str) -> List[str]:
    """Upload every file under ``folder`` below ``uri`` (several at a time); returns the object URIs."""
    base = uri.rstrip("/")
    jobs = [(full, f"{base}/{rel}") for full, rel in iter_files(folder)]
    in_parallel(store.upload_file, jobs)
    return [target for _, target in jobs]


def download_prefix(store: Store, uri: str, dest: str) -> List[str]:
    """Download every object of an ``S3Prefix`` input into ``dest``; returns local paths.

    Every key is checked before the first download (:func:`~aws_sagemaker_remote.safepath.local_path`):
    a key with ``..``, an absolute key or one through a link out of ``dest`` stops the
    download with :class:`~aws_sagemaker_remote.errors.UnsafeDownload` naming it, and
    nothing is written.
    """
    planned = []
    for obj_uri, rel, _size in prefix_objects(store, uri):
        try:
            planned.append((obj_uri, local_path(dest, rel)))
        except UnsafePath as exc:
            raise UnsafeDownload(f"refusing to download {obj_uri}: {exc}") from None
    in_parallel(store.download_file, planned)
    return [local for _, local in planned]


def default_store() -> Store:
    """S3 when an endpoint or credentials are configured, the local stand-in otherwise.

    Imports boto3 only to look for credentials; used by local runs with ``s3://`` paths.
    """
    import boto3

    from .aws import aws_available

    if aws_available():
        return S3Store(boto3.client("s3"))
    return LocalStore()
