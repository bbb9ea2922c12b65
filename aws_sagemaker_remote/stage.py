"""Step 3 of the data flow: put the code and local inputs in S3 by content address.

**Blobs.** Every file is stored once, as a blob named by the SHA-256 of its
bytes: ``s3://BUCKET/PREFIX/cas/sha256/<hex>`` (a file of more than one part,
above 8 MiB, by the SHA-256 of its parts' digests and their number,
``<hex>-<parts>``: S3's own checksum of the multipart upload, made on every
core at once; :func:`~aws_sagemaker_remote.transfers.blob_name`). The job gets each tree (its
code, and each local input read in ``File`` mode) as a manifest: a
``ManifestFile`` channel (``[{"prefix": ".../cas/sha256/"}, "<hex>", ...]``)
that downloads the tree's blobs, plus a listing (``[path, hex, executable]``
for every file, and the empty folders) that the job's bootstrap turns back
into the tree before the script starts: the code through the stub
(:func:`aws_sagemaker_remote.safepath.unpack`), each input by
:func:`aws_sagemaker_remote.bootstrap.materialize_inputs`. Which blobs are
already stored comes from a local index of blobs this machine has seen in the
bucket (checked with one small GET of ``PREFIX/cas/generation``, which ``clean``
rewrites whenever it deletes blobs, and trusted for a day at most) and, for the
few blobs it does not know, a HEAD each in parallel; only when many are unknown
(the first launch of a big tree), one paginated LIST of the ``cas`` folder. A relaunch after one file changed sends
that file's blob and the small manifests; nothing else. Blobs go up on a
bounded pool of threads (up to 1 MiB ten at a time, larger ones one at a time
beside them: up to 8 MiB in one request, above in parallel multipart parts), and every upload is checked against what
was read when the file was named: part CRCs here, each part's SHA-256 by S3
(:class:`~aws_sagemaker_remote.errors.ContentChanged`). A launch that created
the bucket looks no blob up.

**Prefix trees.** Where the job reads S3 itself (``Pipe`` and ``FastFile``
modes, compressed or record-wrapped inputs, a local manifest file) an input is a *tree*
stored under ``s3://BUCKET/PREFIX/cas/sha256/<digest>/`` with its files at their
relative paths, which is exactly the ``S3Prefix`` a job input needs. The digest
covers every relative path, size and file digest, so equal content has an
equal address. A small marker object ``.../cas/sha256/<digest>.json`` (outside
the prefix, so the job never downloads it) is written last: when it exists,
the whole tree is there and nothing is uploaded — a second launch with nothing
changed uploads zero bytes. An interrupted upload resumes: files already
present with the right size are skipped. A changed folder is a new tree, yet
its unchanged files are copied inside S3 from an earlier tree
(:class:`StagedIndex`), several at a time, so only new content is sent (the
files sent go as blobs do: up to 1 MiB ten at a time, larger ones one at a time).

**Script mode** (``--sagemaker-entry=toolkit``): the image's toolkit takes the
code only as a ``.tar.gz`` (``sagemaker_submit_directory``), so the code tree is
one deterministic archive stored as a blob (:class:`CodeArchive`), archived
again only when a file's size or mtime changed; the inputs are staged as above.

A file whose size, mtime and inode are unchanged since the last launch is not
read again: a stat cache (:class:`HashCache`) keeps its digest.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, TextIO, Tuple

from .bundle import (
    BOOT_FILE,
    code_manifest,
    generated_files,
    input_files,
    is_executable,
    write_archive,
    write_private,
)
from .container import ARGUMENT_FILENAME
from .leftovers import owned_prefix
from .shape import with_input_shapes
from .spec import InputChannel, JobSpec, Placement, StagedJob, UploadItem
from .store import SMALL_OBJECT, Store, home_dir, in_parallel, join_uri, split_uri
from .transfers import STREAM_CHUNKSIZE, Checks, bytes_digests, file_digests, part_size


@dataclass(frozen=True)
class TreeFile:
    rel: str  # posix path inside the tree
    path: str  # local file
    size: int
    sha256: str
    checks: Optional[Checks] = None  # of each part, read with the digest (when known)


@dataclass(frozen=True)
class Tree:
    """A folder or file to stage, with its content address."""

    digest: str
    files: Tuple[TreeFile, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


class _JsonCache:
    """A dict kept in a JSON file under the framework's home. Losing it only costs time: a file
    that cannot be read starts empty, and one that cannot be written is skipped."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._dirty = False
        try:
            with open(self.path, encoding="utf-8") as fh:
                self._data: Dict[str, Any] = json.load(fh)
        except (OSError, ValueError):
            self._data = {}

    def save(self) -> None:
        if not self._dirty:
            return
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            tmp = self.path + f".{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(self._data, fh)
            os.replace(tmp, self.path)  # another launch never reads half a file
        except OSError:
            pass


#: Bytes of files to hash above which they are hashed on several threads at once.
PARALLEL_HASH_BYTES = 16 * 1024 * 1024
#: Threads hashing at once.
HASH_WORKERS = min(4, os.cpu_count() or 1)


#: Entries the stat cache keeps before it drops those of files the launch did not name (about
#: 100 bytes each for files of one part: the cache is read whole at every launch).
HASH_CACHE_ENTRIES = 50_000


class HashCache(_JsonCache):
    """``path → sha256`` for files whose size, mtime and inode are unchanged since last time.

    Each entry keeps, beside the name, what the same read found of each part the file is
    uploaded in (:func:`~aws_sagemaker_remote.transfers.file_digests`): the CRC-32 of a file of
    one part, which its upload checks instead of hashing it again, and the SHA-256 of each part
    of a bigger one, sent with the part (and checked against it as it is sent).
    """

    def __init__(self, path: Optional[str] = None, max_entries: int = HASH_CACHE_ENTRIES) -> None:
        super().__init__(path or os.path.join(home_dir(), "cache", "sha256.json"))
        self._lock = threading.Lock()
        self.max_entries = max_entries
        self._used: Set[str] = set()  # the files this launch named

    def sha256(self, path: str) -> str:
        st = os.stat(path)
        key = os.path.abspath(path)
        with self._lock:
            self._used.add(key)
            hit: Any = self._data.get(key)
        if _fresh(hit, st):
            return str(hit[3])
        digest, checks = file_digests(path)
        self.record(path, st, digest, checks)
        return digest

    def record(self, path: str, st: os.stat_result, sha256: str, checks: Checks) -> None:
        """Keep what a read of ``path`` found (:func:`~aws_sagemaker_remote.transfers.file_digests`);
        ``st`` is its stat from before that read, so that a change since makes the entry stale."""
        key = os.path.abspath(path)
        # the part size goes with the checks: they describe parts of that size only
        # (a file of one part keeps its CRC alone: its part's SHA-256 is its digest)
        kept = [checks[0][0]] if len(checks) == 1 else [list(c) for c in checks]
        entry: List[Any] = [st.st_size, st.st_mtime_ns, st.st_ino, sha256, part_size(st.st_size), kept]
        if len(checks) > 1:
            entry.append(_PARTS_NAMED)  # an earlier version, which would misread the entry, skips it
        with self._lock:
            self._used.add(key)
            self._data[key] = entry
            self._dirty = True

    def save(self) -> None:
        """Write the cache; past ``max_entries`` it keeps only the files this launch named (the
        others, of folders staged before, are hashed again if they come back), so it does not
        grow with every folder ever staged."""
        with self._lock:
            if len(self._data) > self.max_entries:
                self._data = {key: entry for key, entry in self._data.items() if key in self._used}
                self._dirty = True
        super().save()

    def unknown(self, paths: Sequence[str]) -> Dict[str, int]:
        """The files of ``paths`` the cache does not know as they are now, with their sizes."""
        stale: Dict[str, int] = {}
        for path in paths:
            st = os.stat(path)
            with self._lock:
                hit: Any = self._data.get(os.path.abspath(path))
            if not _fresh(hit, st):
                stale[path] = st.st_size
        return stale

    def hash_all(self, paths: Sequence[str]) -> None:
        """Hash the files of ``paths`` the cache does not know yet, several at a time when they
        add up to much (file reads and hashlib let other threads run: a cold tree of big files
        is hashed on every core)."""
        stale = self.unknown(paths)
        if sum(stale.values()) >= PARALLEL_HASH_BYTES and len(stale) > 1:
            in_parallel(self.sha256, [(path,) for path in stale], HASH_WORKERS)

    def checks(self, path: str, sha256: str) -> Optional[Checks]:
        """The part checks read with digest ``sha256`` of ``path``; None if this cache has none.

        No stat is checked: they describe the bytes that had that digest, and an upload
        refuses bytes that do not match them. Checks made for another part size (or damaged)
        are not handed out: the upload then reads the file again to make them.
        """
        with self._lock:
            hit: Any = self._data.get(os.path.abspath(path))
        if not _complete(hit) or hit[3] != sha256 or hit[4] != part_size(hit[0]):
            return None
        try:
            if len(hit[5]) == 1 and isinstance(hit[5][0], int) and int(hit[0]) <= int(hit[4]):
                return ((hit[5][0], base64.b64encode(bytes.fromhex(sha256)).decode("ascii")),)
            checks = tuple((int(crc), str(sha)) for crc, sha in hit[5])
        except (TypeError, ValueError):
            return None
        return checks if len(checks) == max(1, -(-int(hit[0]) // int(hit[4]))) else None


#: The last field of the entry of a file of several parts, named by them (with no CRCs):
#: versions that named such a file by the SHA-256 of the whole, with the parts' CRCs, kept
#: six fields, and take an entry of seven for one they cannot read (and read the file again).
_PARTS_NAMED = "parts"


def _complete(entry: Any) -> bool:
    """Whether a cache entry is ``[size, mtime_ns, inode, name, part size, checks]``, and
    ``"parts"`` after them for a file of several parts (earlier entries had no checks, or
    named a file of several parts by the SHA-256 of the whole where its parts now name it:
    their files are read again once)."""
    if not (isinstance(entry, list) and len(entry) in (6, 7) and isinstance(entry[5], list)
            and isinstance(entry[0], int) and isinstance(entry[4], int)):
        return False
    several = entry[0] > entry[4]
    return entry[6:] == ([_PARTS_NAMED] if several else []) and (not several or "-" in str(entry[3]))


def _fresh(entry: Any, st: os.stat_result) -> bool:
    """Whether a cache entry describes the file of stat ``st``: complete, and the same size,
    mtime and inode."""
    return _complete(entry) and entry[:3] == [st.st_size, st.st_mtime_ns, st.st_ino]


def file_sha256(path: str) -> str:
    return file_digests(path)[0]


def tree_of(files: Sequence[Tuple[str, str]], cache: Optional[HashCache] = None,
            known: Optional[Mapping[str, str]] = None) -> Tree:
    """The tree of ``(relative path, local file)`` pairs; ``known`` maps files whose digest is known."""
    entries = []
    if cache is not None:
        cache.hash_all([path for _, path in files if path not in (known or {})])
    for rel, path in sorted(files):
        sha = (known or {}).get(path) or (cache.sha256(path) if cache else file_sha256(path))
        entries.append(TreeFile(rel=rel, path=path, size=os.path.getsize(path), sha256=sha,
                                checks=cache.checks(path, sha) if cache else None))
    listing = "".join(f"{f.rel}\0{f.size}\0{f.sha256}\n" for f in entries)
    return Tree(digest=hashlib.sha256(listing.encode("utf-8")).hexdigest(), files=tuple(entries))


def tree_of_path(path: str, cache: Optional[HashCache] = None) -> Tree:
    """A local input: a folder (its files, without credentials) or a single file under its own name."""
    return tree_of(input_files(path), cache)


def tree_uri(bucket: str, prefix: str, digest: str) -> str:
    """The ``S3Prefix`` URI of a staged tree (with a trailing slash: it names a folder)."""
    return join_uri(bucket, prefix, "cas", "sha256", digest) + "/"


def marker_uri(bucket: str, prefix: str, digest: str) -> str:
    return join_uri(bucket, prefix, "cas", "sha256", digest + ".json")


class Progress:
    """Bytes transferred, on one stderr line; silent when stderr is not a terminal."""

    def __init__(self, total: int, stream: Optional[TextIO] = None, enabled: Optional[bool] = None,
                 label: str = "upload") -> None:
        self.label = label
        self.total = max(total, 1)
        self.done = 0
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._lock = threading.Lock()
        self._last = 0.0

    def __call__(self, amount: int) -> None:
        with self._lock:
            self.done += amount
            now = time.monotonic()
            if not self.enabled or (now - self._last < 0.1 and self.done < self.total):
                return
            self._last = now
            width = 30
            filled = int(width * min(self.done, self.total) / self.total)
            self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                              f"{human_bytes(self.done)}/{human_bytes(self.total)}")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.done:
            self.stream.write("\n")
            self.stream.flush()


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


@dataclass(frozen=True)
class TreePlan:
    """Where a tree goes and what of it is already there."""

    tree: Tree
    uri: str
    items: Tuple[UploadItem, ...]
    #: the marker exists: the whole tree is staged
    complete: bool


class StagedIndex(_JsonCache):
    """``sha256 → URI`` of content this machine has staged before, one file per store.

    A folder with one new file is a new tree; the files it shares with an earlier
    tree are then copied inside S3 from where they already are, and only the new
    file's bytes are sent.
    """

    def __init__(self, store_name: str, path: Optional[str] = None) -> None:
        super().__init__(path or os.path.join(home_dir(), "cache", f"staged-{store_name}.json"))

    def get(self, sha256: str) -> Optional[str]:
        found = self._data.get(sha256)
        return str(found) if found else None

    def add(self, sha256: str, uri: str) -> None:
        if self._data.get(sha256) != uri:
            self._data[sha256] = uri
            self._dirty = True


def plan_tree(store: Store, bucket: str, prefix: str, tree: Tree, index: Optional[StagedIndex] = None) -> TreePlan:
    """The tree's URI and the upload plan (read-only: one HEAD of the marker, one LIST of the tree)."""
    base = tree_uri(bucket, prefix, tree.digest)
    if store.head(marker_uri(bucket, prefix, tree.digest)) is not None:
        return TreePlan(tree, base, tuple(UploadItem(f.path, base + f.rel, f.size, True) for f in tree.files), True)
    existing = dict(store.list(base))
    items = []
    for f in tree.files:
        present = existing.get(base + f.rel) == f.size
        source = index.get(f.sha256) if (index and not present) else None
        if source == base + f.rel:
            source = None  # a source that is gone is noticed by the copy, which then sends the bytes
        items.append(UploadItem(f.path, base + f.rel, f.size, present, source))
    return TreePlan(tree, base, tuple(items), False)


def _copied(store: Store, source: str, uri: str) -> bool:
    """Copy ``source`` to ``uri`` inside the store; False when the source is gone (send the bytes)."""
    try:
        store.copy(source, uri)
    except Exception:  # noqa: BLE001 - botocore's and the local store's errors alike
        return False
    return True


def upload_tree(store: Store, bucket: str, prefix: str, plan: TreePlan,
                progress: Optional[Callable[[int], None]] = None, index: Optional[StagedIndex] = None) -> None:
    """Upload (or copy) what is missing, then write the marker that says the tree is complete."""
    tree, items = plan.tree, plan.items
    if not plan.complete:

        def send(f: TreeFile, item: UploadItem) -> None:
            if item.copy_from and _copied(store, item.copy_from, item.uri):
                return
            # stored only if the bytes sent still have the digest the tree's address was made of
            store.upload_file(item.local_path, item.uri, progress, f.sha256, f.checks)

        todo = [(f, item) for f, item in zip(tree.files, items) if not item.present]
        # a copy inside S3 reads nothing here: it never waits behind the large files
        in_parallel(_call, _small_beside_large(todo, lambda job: 0 if job[1].copy_from else job[0].size, send),
                    TRANSFER_WORKERS)
    if index is not None:
        for f, item in zip(tree.files, items):
            index.add(f.sha256, item.uri)
    if plan.complete:
        return
    listing = [{"path": f.rel, "size": f.size, "sha256": f.sha256} for f in tree.files]
    store.put_bytes(json.dumps({"files": listing}, sort_keys=True).encode("utf-8"),
                    marker_uri(bucket, prefix, tree.digest))


#: Blob uploads in flight at once (small files; large ones go one at a time, in parallel parts).
TRANSFER_WORKERS = 10
#: Where the job's bootstrap finds the listing of each manifest-staged input, inside the code tree.
INPUT_LISTINGS = "inputs"


def blob_folder(bucket: str, prefix: str) -> str:
    """The folder of every blob (and the ``prefix`` of every manifest staging writes)."""
    return join_uri(bucket, prefix, "cas", "sha256") + "/"


#: the index of stored blobs is trusted this long; then it is checked against the bucket again, so
#: blobs removed behind the generation's back (a lifecycle rule, a manual delete) are found
INDEX_MAX_AGE = 24 * 3600
#: up to this many blobs the index does not know are looked up one HEAD each (in parallel); more
#: (the cold launch of a big tree) are found with one listing of the blob folder
HEAD_AT_MOST = 256


def generation_uri(folder: str) -> str:
    """The generation object beside the blob folder ``folder``: ``clean`` writes new content into
    it whenever it deletes blobs, so an index made before that is known to be stale."""
    return folder.rstrip("/").rsplit("/", 1)[0] + "/generation"


def store_place(store: Store) -> str:
    """Where ``store`` keeps its objects (endpoint and region, or the local root): equal bucket
    names on two endpoints are two different buckets."""
    meta = getattr(getattr(store, "client", None), "meta", None)
    if meta is not None:
        return f"{getattr(meta, 'endpoint_url', '')} {getattr(meta, 'region_name', '')}"
    return str(getattr(store, "root", ""))


class BlobIndex:
    """The blobs this machine has stored in (or seen in) one bucket and prefix of one endpoint: a
    header (the bucket's generation when the index was started, and when) then one digest a line,
    appended to, so loading it costs one read and a split."""

    def __init__(self, store_name: str, bucket: str, prefix: str, path: Optional[str] = None,
                 where: str = "") -> None:
        name = hashlib.sha256(f"{store_name}\0{where}\0{bucket}\0{prefix}".encode()).hexdigest()[:16]
        self.path = path or os.path.join(home_dir(), "cache", f"blobs-{store_name}-{name}.txt")
        self.generation = ""
        self.since = 0.0
        try:
            with open(self.path, encoding="ascii") as fh:
                words = fh.read().split()
        except (OSError, ValueError):
            words = []
        if len(words) >= 3 and words[0] == "#generation":
            try:
                self.generation, self.since, words = words[1], float(words[2]), words[3:]
            except ValueError:
                words = []
        else:
            words = []  # no header: written before generations existed, so it cannot be checked
        self.known: Set[str] = set(words)
        self._new: List[str] = []
        self._fresh = not self.known

    def check(self, generation: str, now: Optional[float] = None) -> None:
        """Keep the index only if the bucket's generation is the one it was started at and it is
        younger than :data:`INDEX_MAX_AGE`; otherwise start again, empty, at ``generation``."""
        now = time.time() if now is None else now
        if generation != self.generation or not (self.since <= now < self.since + INDEX_MAX_AGE):
            self.forget()
        if self._fresh:
            self.generation, self.since = generation, now

    def add(self, digests: Any) -> None:
        for digest in digests:
            if digest not in self.known:
                self.known.add(digest)
                self._new.append(digest)

    def forget(self) -> None:
        """The index was wrong (a blob it named may be gone): start again from what the bucket says."""
        self.known = set()
        self._new = []
        self._fresh = True
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def save(self) -> None:
        if not self._new and not self._fresh:
            return
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            if self._fresh:  # a new file: the header, then every digest known
                with open(self.path, "w", encoding="ascii") as fh:
                    fh.write(f"#generation {self.generation or '-'} {self.since}\n")
                    fh.write("".join(d + "\n" for d in sorted(self.known)))
                self._fresh = False
            else:
                with open(self.path, "a", encoding="ascii") as fh:
                    fh.write("".join(d + "\n" for d in self._new))
            self._new = []
        except OSError:
            pass  # losing the index only costs a few requests


class Blobs:
    """The blobs one launch needs: digest → (local file, size), in the order they were added."""

    def __init__(self, scratch: str) -> None:
        self.scratch = scratch
        self.files: Dict[str, Tuple[str, int]] = {}
        #: what the read that named a blob found of its parts, where known (see :class:`HashCache`)
        self.checks: Dict[str, Checks] = {}
        #: blobs that name others (manifests, listings): stored after everything they name
        self.roots: List[str] = []

    def add_file(self, path: str, sha256: str, size: int, checks: Optional[Checks] = None) -> None:
        if sha256 not in self.files:
            self.files[sha256] = (path, size)
            if checks is not None:
                self.checks[sha256] = checks

    def made(self, digest: str) -> bool:
        """Whether the blob was written by this launch (a manifest, a listing), not read from a user's file."""
        path = self.files[digest][0]
        return not path or os.path.dirname(path) == self.scratch

    def add_bytes(self, data: bytes, root: bool = False) -> str:
        digest, checks = bytes_digests(data)
        if digest not in self.files:
            path = os.path.join(self.scratch, digest)
            write_private(path, data)
            self.files[digest] = (path, len(data))
            self.checks[digest] = checks
        if root and digest not in self.roots:
            self.roots.append(digest)
        return digest


def channel_manifest(folder: str, digests: Sequence[str]) -> bytes:
    """A ``ManifestFile`` object: the blob folder as prefix, then each blob's key relative to it."""
    return json.dumps([{"prefix": folder}] + sorted(set(digests)), separators=(",", ":")).encode("utf-8")


def tree_listing(files: Sequence[Tuple[str, str, bool]], dirs: Sequence[str] = ()) -> bytes:
    """What the job lays a tree out from: ``{"files": [[path, sha256, executable], ...], "dirs": [...]}``."""
    return json.dumps({"files": [list(f) for f in sorted(files)], "dirs": sorted(dirs)},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _check_names(names: Sequence[str], where: str) -> None:
    """Refuse (exit 2) a tree with a name the job's bootstrap would refuse or lay out elsewhere."""
    from .errors import UsageError
    from .safepath import UnsafePath, check_name

    for rel in names:
        try:
            rel.encode("utf-8")
        except UnicodeEncodeError:  # bytes the file system gave that are not UTF-8
            raise UsageError(f"{where}: the name {rel!r} is not UTF-8, which S3 keys and the job's "
                             f"listing are; rename it") from None
        try:
            laid_out = check_name(rel, "file")
        except UnsafePath as exc:
            raise UsageError(f"{where}: {exc}; rename it") from None
        if laid_out != rel:
            raise UsageError(f"{where}: file {rel!r} would be laid out as {laid_out!r} in the job; rename it")


def empty_dirs(dirs: Sequence[str], files: Sequence[str]) -> List[str]:
    """The folders of ``dirs`` with no file anywhere below them (the others appear by themselves)."""
    parents = set()
    for rel in files:
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parents.add("/".join(parts[:i]))
    leaves = [d for d in dirs if d not in parents]
    return [d for d in leaves if not any(o.startswith(d + "/") for o in leaves)]


def by_manifest(ch: InputChannel) -> bool:
    """A local input the job gets as blobs and a listing: one read in File mode, as written.

    Pipe and FastFile read S3 themselves (they need the files under their names),
    and compressed, record-wrapped or manifest inputs are handed over as they are.
    """
    return (not ch.is_s3 and ch.mode == "File" and ch.s3_data_type == "S3Prefix" and ch.compression == "None"
            and ch.record_wrapper == "None")


def stage(
    spec: JobSpec,
    code: Sequence[Tuple[str, str]],
    store: Store,
    placement: Placement,
    *,
    upload: bool = True,
    progress: Optional[TextIO] = None,
    cache: Optional[HashCache] = None,
) -> StagedJob:
    """Put the code (``code``: (path in the tree, local file) pairs, see
    :func:`~aws_sagemaker_remote.bundle.bundle_entries`) and every local input in
    ``placement``'s bucket and return the staged job.

    With ``upload=False`` (a dry run) only the upload plan is made: nothing is written
    (it may list the blob folder). ``s3://`` inputs are passed through untouched.
    ``progress`` is the stream of the upload progress bar (shown only on a terminal).
    """
    cache = cache or HashCache()
    spec = with_input_shapes(spec, store, progress)  # an s3:// object gets its file path in the job
    with tempfile.TemporaryDirectory(prefix=owned_prefix("stage")) as scratch:
        return _stage(spec, code, store, cache, placement, upload, progress, scratch)


def ships_archive(spec: JobSpec) -> bool:
    """Script mode: the image's toolkit takes the code as one ``.tar.gz`` (``sagemaker_submit_directory``)."""
    return spec.training is not None and spec.training.entry == "toolkit"


def _stage(spec: JobSpec, code: Sequence[Tuple[str, str]], store: Store, cache: HashCache,
           placement: Placement, upload: bool, progress: Optional[TextIO], scratch: str) -> StagedJob:
    bucket, prefix = placement.bucket, placement.prefix
    folder = blob_folder(bucket, prefix)
    blobs = Blobs(scratch)
    code_files: List[Tuple[str, str, bool]] = []
    plans: List[TreePlan] = []
    input_uris: Dict[str, str] = {}
    channels: List[InputChannel] = []
    listings: List[Dict[str, str]] = []
    staged_index: Optional[StagedIndex] = None
    generated: List[Tuple[str, bytes]] = []
    walked: Dict[str, Tuple[List[Tuple[str, str]], List[str]]] = {}  # manifest inputs: files, folders
    for ch in spec.inputs:
        if not ch.is_s3 and by_manifest(ch):
            dirs: List[str] = []
            files = input_files(ch.source, dirs=dirs)
            _check_names([rel for rel, _ in files] + dirs, ch.flag or ch.name)
            walked[ch.name] = (files, dirs)
    archived = ships_archive(spec)
    if not archived:
        _check_names([rel for rel, _ in code], "the code folder")
    index = BlobIndex(store.name, bucket, prefix, where=store_place(store))
    view: Optional[_FolderView] = None
    sent: Set[str] = set()
    if upload:  # every name is checked: sending may start
        unnamed = [path for files, _ in walked.values() for _, path in files]
        unnamed += [] if archived else [path for _, path in code]
        view, sent = _send_unnamed(store, folder, cache, unnamed, index, progress)
    for ch in spec.inputs:
        if ch.is_s3:
            input_uris[ch.name] = ch.source
            channels.append(ch)
            continue
        if not by_manifest(ch):
            staged_index = staged_index or StagedIndex(store.name)
            plan = plan_tree(store, bucket, prefix, tree_of_path(ch.source, cache), staged_index)
            plans.append(plan)
            # a manifest is named by its object, anything else by its folder (S3Prefix)
            input_uris[ch.name] = plan.items[0].uri if ch.s3_data_type != "S3Prefix" else plan.uri
            channels.append(ch)
            continue
        files, dirs = walked[ch.name]
        cache.hash_all([path for _, path in files])
        entries = []
        for rel, path in files:
            digest = cache.sha256(path)
            blobs.add_file(path, digest, os.path.getsize(path), cache.checks(path, digest))
            entries.append((rel, digest, False))
        listing = f"{INPUT_LISTINGS}/{ch.name}.json"
        generated.append((listing, tree_listing(entries, empty_dirs(dirs, [rel for rel, _ in files]))))
        # a sharded input's instance gets only some blobs; any other must get them all
        listings.append({"path": ch.container_path, "listing": listing, "distribution": ch.distribution})
        manifest_digest = blobs.add_bytes(channel_manifest(folder, [d for _, d, _ in entries]), root=True)
        input_uris[ch.name] = folder + manifest_digest
        channels.append(replace(ch, s3_data_type="ManifestFile"))

    # the code tree: the user's files, the bootstrap's manifest, and the listings above
    made = generated_files(spec.code, spec.kind.name, inputs=listings)
    generated += sorted(made.items())
    code = [(rel, path) for rel, path in code if rel not in made]  # a generated file replaces its namesake
    arguments_uri = None
    if spec.kind.needs_argument_file(spec):
        # too long for the request: the list travels in the code tree
        data = json.dumps(list(spec.arguments), ensure_ascii=False).encode("utf-8")
        generated.append((ARGUMENT_FILENAME, data))
        arguments_uri = folder + bytes_digests(data)[0]  # the blob add_bytes makes of it below
    archive: Optional[CodeArchive] = None
    if archived:
        archive = CodeArchive(code, generated, scratch)
        code_digest = archive.digest_for(blobs)
        code_entry = ""
    else:
        for rel, data in generated:
            code_files.append((rel, blobs.add_bytes(data), False))
        boot = ""
        cache.hash_all([path for _, path in code])
        for rel, path in code:
            digest = cache.sha256(path)
            blobs.add_file(path, digest, os.path.getsize(path), cache.checks(path, digest))
            code_files.append((rel, digest, is_executable(path)))
            if rel == BOOT_FILE:
                boot = digest
        code_entry = blobs.add_bytes(code_manifest(code_files, boot), root=True)
        code_digest = blobs.add_bytes(channel_manifest(folder, [d for _, d, _ in code_files] + [code_entry]),
                                      root=True)
    cache.save()

    present = _present(store, folder, blobs, index, view)
    if archive is not None and code_digest not in present and not blobs.files[code_digest][0]:
        code_digest = archive.build(blobs)  # known from the cache, yet to be sent: now it must exist
    uploads = tuple(UploadItem(path, folder + digest, size, digest in present and digest not in sent)
                    for digest, (path, size) in blobs.files.items())
    uploads += tuple(item for plan in plans for item in plan.items)
    if upload:
        training = spec.training
        if training is not None and training.fresh and training.checkpoint is not None:
            # --sagemaker-fresh: the job must find no earlier run's checkpoints (a key prefix of its own)
            store.delete(training.checkpoint.resolve(bucket, prefix).rstrip("/") + "/")
        missing = sum(i.size for i in uploads if not (i.present or i.copy_from or i.uri[len(folder):] in sent))
        bar = Progress(missing, progress)
        try:
            _upload_blobs(store, folder, blobs, present, bar, index)
            for plan in plans:
                upload_tree(store, bucket, prefix, plan, bar, staged_index)
        finally:
            bar.close()
            if staged_index is not None:
                staged_index.save()
    spec = replace(spec, inputs=tuple(channels))
    return StagedJob(spec=spec, code_uri=folder + code_digest, input_uris=input_uris, uploads=uploads,
                     arguments_uri=arguments_uri, code_entry=code_entry)


class CodeArchive:
    """Script mode's code: every file of the code tree in one deterministic ``.tar.gz``
    (:func:`~aws_sagemaker_remote.bundle.write_archive`), stored as a blob like any other.

    Building it reads and compresses every file, so it is built only when it must be
    sent: a cache maps the tree's names, sizes, mtimes and modes (and the generated
    files' bytes) to the archive's digest and size, and an unchanged tree whose archive
    the bucket holds is neither archived nor hashed again.
    """

    def __init__(self, code: Sequence[Tuple[str, str]], generated: Sequence[Tuple[str, bytes]], scratch: str,
                 path: Optional[str] = None) -> None:
        self.scratch = scratch
        self.path = path or os.path.join(home_dir(), "cache", "archives.txt")
        self.entries: List[Tuple[str, str, bool]] = []
        stats: List[Any] = []
        for rel, data in generated:
            file = os.path.join(scratch, "generated", rel)
            os.makedirs(os.path.dirname(file), exist_ok=True)
            write_private(file, data)
            self.entries.append((rel, file, False))
            stats.append([rel, hashlib.sha256(data).hexdigest()])
        for rel, full in code:
            st = os.stat(full)
            executable = bool(st.st_mode & 0o100)
            self.entries.append((rel, full, executable))
            stats.append([rel, full, st.st_size, st.st_mtime_ns, st.st_ino, executable])
        self.key = hashlib.sha256(json.dumps(sorted(stats), ensure_ascii=False).encode("utf-8")).hexdigest()
        self.digest = ""

    def _cached(self) -> Optional[Tuple[str, int]]:
        found = None
        try:
            with open(self.path, encoding="ascii") as fh:
                for line in fh:
                    parts = line.split()
                    if len(parts) == 3 and parts[0] == self.key:
                        found = (parts[1], int(parts[2]))  # the last record of a key wins
        except (OSError, ValueError):
            return None
        return found

    def digest_for(self, blobs: "Blobs") -> str:
        """The archive's digest, added to ``blobs`` as a root (built only when the cache does not know it)."""
        cached = self._cached()
        if cached is None:
            return self.build(blobs)
        self.digest = cached[0]
        # not built yet: the path is filled in by build() if the bucket lacks it
        blobs.files[self.digest] = ("", cached[1])
        blobs.roots.append(self.digest)
        return self.digest

    def build(self, blobs: "Blobs") -> str:
        """Write the archive, record it in the cache and in ``blobs`` (replacing a stale cached digest)."""
        out = os.path.join(self.scratch, "code.tar.gz")
        digest, size = write_archive(self.entries, out)
        if self.digest and self.digest != digest:
            blobs.files.pop(self.digest, None)
            blobs.roots.remove(self.digest)
        final = os.path.join(self.scratch, digest)
        os.replace(out, final)
        blobs.files[digest] = (final, size)
        if digest not in blobs.roots:
            blobs.roots.append(digest)
        self.digest = digest
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(self.path, "a", encoding="ascii") as fh:
                fh.write(f"{self.key} {digest} {size}\n")
        except OSError:
            pass  # losing the cache only costs building the archive again
        return digest


def _generation(store: Store, uri: str) -> str:
    """A short tag of the generation object's content; ``-`` when there is none (no ``clean`` ever
    deleted a blob there)."""
    data = store.read_if_present(uri)
    return "-" if data is None else hashlib.sha256(data).hexdigest()[:32]


def _present(store: Store, folder: str, blobs: Blobs, index: BlobIndex,
             view: Optional[_FolderView] = None) -> Set[str]:
    """The blobs of ``blobs`` already stored, at a cost proportional to what the index does not know.

    One small GET of the generation object tells whether ``clean`` deleted blobs since
    the index was started (then the index is dropped); an index older than
    :data:`INDEX_MAX_AGE` is dropped as well. Blobs the index knows are taken as stored.
    When up to :data:`HEAD_AT_MOST` are unknown (a relaunch after some files changed),
    each gets one HEAD, in parallel, except those this launch wrote itself (manifests,
    listings), which a working index lacks only when they are new; when more are unknown
    (a first launch of a big tree), one listing of the blob folder answers for all. In a
    bucket the launch has just created, nothing is looked up. ``view`` is what
    :func:`_send_unnamed` learnt of the folder (the GET is not made again, nor a listing it took).
    """
    needed = set(blobs.files)
    view = view or _FolderView(store, folder, index)
    if view.new_bucket:
        return needed & index.known  # what this launch has sent: nothing else is there
    unknown = sorted(needed - index.known)
    if not unknown:
        index.save()
        return needed
    sizes: Dict[str, Optional[int]] = {}
    if view.listing is not None or len(unknown) > HEAD_AT_MOST:
        listing = view.listed()
        sizes.update((d, listing.get(d)) for d in unknown)
    else:
        working = bool(index.known)  # not just started or dropped
        ask = [d for d in unknown if not (working and blobs.made(d))]

        def look(digest: str) -> None:
            sizes[digest] = store.head(folder + digest)

        in_parallel(look, [(d,) for d in ask], TRANSFER_WORKERS)
    found = {d for d in unknown if sizes.get(d) == blobs.files[d][1]}
    index.add(sorted(found))
    index.save()
    return (needed - set(unknown)) | found


#: Files smaller than this are read with a request of their own size (see :func:`_send_unnamed`).
SMALL_READ = 64 * 1024


class _FolderView:
    """What the blob folder holds, asked at most once each way: the generation object is read
    first (the index dropped if ``clean`` deleted blobs since, or if the launch has just made
    the bucket, which holds nothing), and one listing is taken only when it is needed."""

    def __init__(self, store: Store, folder: str, index: BlobIndex) -> None:
        self.store, self.folder = store, folder
        index.check(_generation(store, generation_uri(folder)))
        self.new_bucket = store.created(split_uri(folder)[0])
        if self.new_bucket:
            # the GET found no bucket and the launch made it: nothing is stored, whatever the index
            # says (it may remember a bucket of that name that was deleted since)
            index.forget()
        self.listing: Optional[Dict[str, int]] = {} if self.new_bucket else None

    def listed(self) -> Dict[str, int]:
        """Name -> size of every blob in the folder (one paginated listing, taken once)."""
        if self.listing is None:
            self.listing = self.store.list_children(self.folder)
        return self.listing


def _send_unnamed(store: Store, folder: str, cache: HashCache, paths: Sequence[str], index: BlobIndex,
                  progress: Optional[TextIO]) -> Tuple[Optional[_FolderView], Set[str]]:
    """Name and send, from one read each, the small files of ``paths`` the cache does not know,
    when there are more than :data:`HEAD_AT_MOST` of them (the first launch of a tree, or one
    whose stat cache is gone).

    Each is read once, hashed, and sent from those same bytes when the blob folder lacks it:
    no file waits for all the others to be hashed first, and none is read twice. A digest
    the index knows is taken as stored; the first one it does not know brings one listing
    of the folder (what :func:`_present` takes for that many unknown blobs anyway), and in a
    bucket the launch has just made nothing is looked up. Returns what was learnt of the
    folder, for :func:`_present` (None when this did nothing: too few such files, or one
    that cannot be read, which the usual path then reports before anything is sent), and
    the digests sent.
    """
    sizes = cache.unknown(paths)
    small = [path for path, size in sizes.items() if size <= SMALL_OBJECT]
    if len(small) <= HEAD_AT_MOST or not all(os.access(path, os.R_OK) for path in small):
        return None, set()
    view = _FolderView(store, folder, index)
    sent: Set[str] = set()
    lock = threading.Lock()
    bar = Progress(sum(sizes[path] for path in small), progress)

    def one(path: str) -> None:
        st = os.stat(path)  # before the read: a change after it leaves the cache entry stale
        with open(path, "rb") as fh:
            # one byte more than the size tells a file that grew; a file near 1 MiB is asked for a
            # part's worth: a request that large gets pages of its own, returned when freed, where
            # one of 1 MiB settles in the thread's heap and stays (glibc's adaptive mmap
            # threshold): ten threads kept 17 MiB more
            data = fh.read(st.st_size + 1 if st.st_size < SMALL_READ else STREAM_CHUNKSIZE + 1)
        if len(data) != st.st_size or len(data) > SMALL_OBJECT:
            return  # changed while read: named with the others, later
        digest, checks = bytes_digests(data)
        cache.record(path, st, digest, checks)
        with lock:  # also while the one listing is taken: the other files wait for it
            # sent (or being sent) by another file of the same bytes, known, or listed
            stored = digest in sent or digest in index.known or view.listed().get(digest) == len(data)
            if not stored:
                sent.add(digest)
        if not stored:
            store.put_bytes(data, folder + digest, sha256=digest)
            index.add([digest])
        bar(len(data))  # a file found stored is done as well

    try:
        in_parallel(one, [(path,) for path in small], TRANSFER_WORKERS)
    finally:
        bar.close()
        index.save()
    return view, sent


def _upload_blobs(store: Store, folder: str, blobs: Blobs, present: Set[str],
                  progress: Optional[Callable[[int], None]], index: BlobIndex) -> None:
    """Send the missing blobs: small ones on a bounded pool, large ones one after the other beside
    them (each in parallel parts), the manifests last, so a manifest never names a blob that is
    not there. Each upload is checked against what was read when the blob was named."""
    missing = [d for d in blobs.files if d not in present and d not in blobs.roots]

    def send(digest: str) -> None:
        store.upload_file(blobs.files[digest][0], folder + digest, progress, digest, blobs.checks.get(digest))
        index.add([digest])

    try:
        in_parallel(_call, _small_beside_large([(d,) for d in missing], lambda job: blobs.files[job[0]][1], send),
                    TRANSFER_WORKERS)
        for digest in blobs.roots:
            if digest not in present:
                send(digest)
    finally:
        index.save()


def _call(step: Callable[..., None], *args: Any) -> None:
    step(*args)


def _small_beside_large(jobs: Sequence[Tuple[Any, ...]], size: Callable[[Tuple[Any, ...]], int],
                        send: Callable[..., None]) -> List[Tuple[Any, ...]]:
    """Jobs for :func:`_call` on a pool, from ``send``'s argument tuples: each small one (``size``
    up to :data:`SMALL_OBJECT`: a file read whole into memory, or none read at all) on its
    own, and one job that sends the larger ones one after the other (each read whole up to a
    part's size, or in parallel parts above it). So memory holds at most one large file's
    reads, whatever the tree holds; the large ones start first, and stop at the first error
    of any job (the pool starts no new job after it, but this one is already running)."""
    large = [job for job in jobs if size(job) > SMALL_OBJECT]
    failed = threading.Event()

    def guarded(*args: Any) -> None:
        try:
            send(*args)
        except BaseException:
            failed.set()
            raise

    def send_large() -> None:
        for job in large:
            if failed.is_set():
                return  # the error is raised by the job that failed
            guarded(*job)

    return ([(send_large,)] if large else []) + [(guarded, *job) for job in jobs if size(job) <= SMALL_OBJECT]
