"""Step 3 of the data flow: put the bundle and local inputs in S3 by content address.

Every staged thing is a *tree* (a folder, a single file, or the bundle) stored
under ``s3://BUCKET/PREFIX/cas/sha256/<digest>/`` with its files at their
relative paths, which is exactly the ``S3Prefix`` a job input needs. The digest
covers every relative path, size and file digest, so equal content has an
equal address. A small marker object ``.../cas/sha256/<digest>.json`` (outside
the prefix, so the job never downloads it) is written last: when it exists,
the whole tree is there and nothing is uploaded — a second launch with nothing
changed uploads zero bytes. An interrupted upload resumes: files already
present with the right size are skipped. A changed folder is a new tree, yet
its unchanged files are copied inside S3 from an earlier tree
(:class:`StagedIndex`), so only new content is sent.

Hashing reads each file once per launch; a cache keyed by path, size, mtime and
inode skips even that for unchanged large files.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, TextIO, Tuple

from .bundle import Bundle, input_files
from .container import ARGUMENT_FILENAME, BUNDLE_FILENAME
from .leftovers import owned_prefix
from .shape import with_input_shapes
from .spec import JobSpec, Placement, StagedJob, UploadItem
from .store import Store, home_dir, join_uri

HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class TreeFile:
    rel: str  # posix path inside the tree
    path: str  # local file
    size: int
    sha256: str


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


class HashCache(_JsonCache):
    """``path → sha256`` for files whose size, mtime and inode are unchanged since last time."""

    def __init__(self, path: Optional[str] = None) -> None:
        super().__init__(path or os.path.join(home_dir(), "cache", "sha256.json"))
        self._lock = threading.Lock()

    def sha256(self, path: str) -> str:
        st = os.stat(path)
        key = os.path.abspath(path)
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
        with self._lock:
            hit = self._data.get(key)
        if hit and hit[:3] == stamp:
            return str(hit[3])
        digest = file_sha256(path)
        with self._lock:
            self._data[key] = stamp + [digest]
            self._dirty = True
        return digest


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree_of(files: Sequence[Tuple[str, str]], cache: Optional[HashCache] = None,
            known: Optional[Mapping[str, str]] = None) -> Tree:
    """The tree of ``(relative path, local file)`` pairs; ``known`` maps files whose digest is known."""
    entries = []
    for rel, path in sorted(files):
        sha = (known or {}).get(path) or (cache.sha256(path) if cache else file_sha256(path))
        entries.append(TreeFile(rel=rel, path=path, size=os.path.getsize(path), sha256=sha))
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
    """The tree's URI and the upload plan (read-only: only HEAD and LIST requests)."""
    base = tree_uri(bucket, prefix, tree.digest)
    if store.head(marker_uri(bucket, prefix, tree.digest)) is not None:
        return TreePlan(tree, base, tuple(UploadItem(f.path, base + f.rel, f.size, True) for f in tree.files), True)
    existing = dict(store.list(base))
    items = []
    for f in tree.files:
        present = existing.get(base + f.rel) == f.size
        source = index.get(f.sha256) if (index and not present) else None
        if source and (source == base + f.rel or store.head(source) != f.size):
            source = None  # gone or changed since: send the bytes
        items.append(UploadItem(f.path, base + f.rel, f.size, present, source))
    return TreePlan(tree, base, tuple(items), False)


def upload_tree(store: Store, bucket: str, prefix: str, plan: TreePlan,
                progress: Optional[Callable[[int], None]] = None, index: Optional[StagedIndex] = None) -> None:
    """Upload (or copy) what is missing, then write the marker that says the tree is complete."""
    tree, items = plan.tree, plan.items
    if not plan.complete:
        for f, item in zip(tree.files, items):
            if item.copy_from:
                store.copy(item.copy_from, item.uri)
            elif not item.present:
                # stored only if the bytes sent still have the digest the tree's address was made of
                store.upload_file(item.local_path, item.uri, progress, sha256=f.sha256)
    if index is not None:
        for f, item in zip(tree.files, items):
            index.add(f.sha256, item.uri)
    if plan.complete:
        return
    listing = [{"path": f.rel, "size": f.size, "sha256": f.sha256} for f in tree.files]
    store.put_bytes(json.dumps({"files": listing}, sort_keys=True).encode("utf-8"),
                    marker_uri(bucket, prefix, tree.digest))


def stage(
    spec: JobSpec,
    bundle: Bundle,
    store: Store,
    placement: Placement,
    *,
    upload: bool = True,
    progress: Optional[TextIO] = None,
    cache: Optional[HashCache] = None,
) -> StagedJob:
    """Put the bundle and every local input in ``placement``'s bucket and return the staged job.

    With ``upload=False`` (a dry run) only the upload plan is made: nothing is written.
    ``s3://`` inputs are passed through untouched. ``progress`` is the stream of the
    upload progress bar (shown only on a terminal).
    """
    cache = cache or HashCache()
    spec = with_input_shapes(spec, store, progress)  # an s3:// object gets its file path in the job
    with tempfile.TemporaryDirectory(prefix=owned_prefix("stage")) as scratch:
        code = [(BUNDLE_FILENAME, bundle.path)]
        if spec.kind.needs_argument_file(spec):
            # too long for ContainerArguments: the list travels beside the bundle
            path = os.path.join(scratch, ARGUMENT_FILENAME)
            with open(path, "w", encoding="utf-8") as fh:
                json.dump(list(spec.arguments), fh, ensure_ascii=False)
            code.append((ARGUMENT_FILENAME, path))
        return _stage(spec, code, {bundle.path: bundle.sha256}, store, cache, placement, upload, progress)


def _stage(spec: JobSpec, code: List[Tuple[str, str]], known: Mapping[str, str], store: Store, cache: HashCache,
           placement: Placement, upload: bool, progress: Optional[TextIO]) -> StagedJob:
    """:func:`stage` once the code tree's files are known (``known``: digests already computed)."""
    bucket, prefix = placement.bucket, placement.prefix
    index = StagedIndex(store.name)
    plans: List[TreePlan] = [plan_tree(store, bucket, prefix, tree_of(code, cache, known), index)]
    code_uri = plans[0].uri
    input_uris: Dict[str, str] = {}
    for ch in spec.inputs:
        if ch.is_s3:
            input_uris[ch.name] = ch.source
            continue
        plan = plan_tree(store, bucket, prefix, tree_of_path(ch.source, cache), index)
        plans.append(plan)
        # a manifest is named by its object, anything else by its folder (S3Prefix)
        input_uris[ch.name] = plan.items[0].uri if ch.s3_data_type != "S3Prefix" else plan.uri
    cache.save()
    uploads = tuple(item for plan in plans for item in plan.items)

    if upload:
        training = spec.training
        if training is not None and training.fresh and training.checkpoint is not None:
            # --sagemaker-fresh: the job must find no earlier run's checkpoints (a key prefix of its own)
            store.delete(training.checkpoint.resolve(bucket, prefix).rstrip("/") + "/")
        missing = sum(i.size for i in uploads if not (i.present or i.copy_from))
        bar = Progress(missing, progress)
        try:
            for plan in plans:
                upload_tree(store, bucket, prefix, plan, bar, index)
        finally:
            bar.close()
            index.save()
    arguments_uri = code_uri + ARGUMENT_FILENAME if len(code) > 1 else None
    return StagedJob(spec=spec, code_uri=code_uri, input_uris=input_uris, uploads=uploads,
                     arguments_uri=arguments_uri)
