"""``aws-sagemaker-remote clean``: staged files and local records that no recent job uses.

Staging keeps every tree it uploads (``PREFIX/cas/sha256/<digest>/`` and its marker
``<digest>.json``) so that the next launch sends nothing new; nothing ever removes
them. ``clean`` removes a tree when both hold:

* no recent job refers to it: recent jobs are those launched in the last
  ``--older-than`` days (their launch records, on this machine and in the bucket),
  and every job still running (SageMaker jobs ``InProgress``/``Stopping`` and local
  jobs whose process runs);
* none of its objects was written in that time either, so a launch staging right
  now keeps what it uploads.

Blobs (``PREFIX/cas/sha256/<digest>``: the files of the code and of ``File``-mode
inputs, their manifests, script mode's code archives) go by the same two rules; a
channel manifest that a recent job names keeps every blob it names. Deleting blobs
drops this machine's index of stored blobs and writes new content into
``PREFIX/cas/generation``, so every machine's next launch checks the bucket again.

It also removes this machine's records of local jobs and launches older than that.
Outputs, models and checkpoints are never touched. Without ``--yes`` it only lists.

Where: the local stand-in store (every bucket in it), and, unless ``--local``, the
S3 bucket of the scripts (``--bucket``, default ``sagemaker-REGION-ACCOUNT``) when
AWS is configured.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Optional, Set, TextIO, Tuple

from .backends.base import NAME_KEY, PROCESSING, TERMINAL_STATUSES, TRAINING
from .errors import AwsError, UsageError
from .options import DEFAULT_PREFIX

if TYPE_CHECKING:  # pragma: no cover
    from .jobs import Finder

_TREE_KEY = re.compile(r"^(?P<base>(?:.*/)?cas/sha256/)(?P<digest>[0-9a-f]{64})(?:\.json|/.*)$")
#: a blob: one file's bytes (or a manifest, or script mode's code archive) under its own name
#: (:func:`~aws_sagemaker_remote.transfers.blob_name`: its SHA-256, or its parts' and their number)
_BLOB_KEY = re.compile(r"^(?P<base>(?:.*/)?cas/sha256/)(?P<digest>[0-9a-f]{64}(?:-[1-9][0-9]{0,4})?)$")
#: channel manifests larger than this are not read (one names ~70 bytes a file: 900,000 files)
MANIFEST_MAX = 64 * 1024 * 1024
DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    modified: _dt.datetime


@dataclass(frozen=True)
class Tree:
    """One staged tree: its folder URI, its objects (with the marker) and when it was last written."""

    uri: str
    keys: Tuple[str, ...]
    size: int
    modified: _dt.datetime


def uris_in(value: Any) -> Iterator[str]:
    """Every ``s3://`` string inside a request (any depth)."""
    if isinstance(value, str):
        if value.startswith("s3://"):
            yield value
        elif value.startswith('"s3://'):  # a JSON-encoded hyperparameter (script mode's submit directory)
            try:
                decoded = json.loads(value)
            except ValueError:
                return
            if isinstance(decoded, str):
                yield decoded
    elif isinstance(value, dict):
        for item in value.values():
            yield from uris_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from uris_in(item)


def trees(bucket: str, objects: Iterable[StoredObject]) -> List[Tree]:
    """Staged trees among ``objects`` (keys of other things are left out)."""
    groups: Dict[str, List[StoredObject]] = {}
    for obj in objects:
        match = _TREE_KEY.match(obj.key)
        if match:
            groups.setdefault(match.group("base") + match.group("digest") + "/", []).append(obj)
    return [Tree(uri=f"s3://{bucket}/{base}", keys=tuple(sorted(o.key for o in objs)),
                 size=sum(o.size for o in objs), modified=max(o.modified for o in objs))
            for base, objs in sorted(groups.items())]


def unused(found: Iterable[Tree], referenced: Set[str], cutoff: _dt.datetime) -> List[Tree]:
    """The trees no reference points into and that were not written since ``cutoff``."""
    out = []
    for tree in found:
        if tree.modified >= cutoff:
            continue
        if any(uri.startswith(tree.uri) or tree.uri.startswith(uri.rstrip("/") + "/") for uri in referenced):
            continue
        out.append(tree)
    return out


def channel_blobs(data: bytes) -> List[str]:
    """The blob URIs a ``ManifestFile`` object names (``[{"prefix": P}, KEY, ...]``); none for anything else."""
    try:
        listed = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return []
    if not (isinstance(listed, list) and listed and isinstance(listed[0], dict)
            and isinstance(listed[0].get("prefix"), str)):
        return []
    return [listed[0]["prefix"] + key for key in listed[1:] if isinstance(key, str)]


def unused_blobs(bucket: str, objects: Iterable[StoredObject], read: Any, referenced: Set[str],
                 old_roots: Set[str], cutoff: _dt.datetime) -> List[Tree]:
    """The blobs no reference reaches and that were not written since ``cutoff``, as groups.

    A referenced channel manifest, and any manifest written since ``cutoff`` (a launch
    staging now), keeps every blob it names. A referenced manifest too large to read
    (:data:`MANIFEST_MAX`) might name any blob: then nothing is deleted. The blobs an
    old job's manifests reach form one group each, named by that manifest; blobs no
    job names (left by launches that created no job) form one group named by their
    folder. ``read(key)`` returns an object's bytes.
    """
    blobs = {f"s3://{bucket}/{o.key}": o for o in objects if _BLOB_KEY.match(o.key)}

    def named(uri: str) -> List[str]:
        found = blobs.get(uri)
        if found is None or found.size > MANIFEST_MAX:
            return []
        return channel_blobs(read(found.key))

    recent = {uri for uri, o in blobs.items() if o.modified >= cutoff}
    live = set(recent)
    for uri in sorted(referenced & set(blobs)):
        if blobs[uri].size > MANIFEST_MAX:
            return []  # it may name any blob: delete none rather than one a job needs
        live.add(uri)
        live.update(named(uri))
    # a launch staging right now (or one that created no job) may name older blobs in the
    # manifests it just wrote; a recent blob too large to be read is a data file, not a manifest
    for uri in sorted(recent - referenced):
        live.update(named(uri))
    dead = set(blobs) - live
    groups: List[Tuple[str, List[str]]] = []
    for root in sorted(old_roots):
        if root in dead:
            members = [root] + sorted(u for u in set(named(root)) if u in dead and u != root)
            dead.difference_update(members)
            groups.append((root, members))
    by_folder: Dict[str, List[str]] = {}
    for uri in sorted(dead):
        by_folder.setdefault(uri[:uri.rindex("/") + 1], []).append(uri)
    groups += sorted(by_folder.items())
    return [Tree(uri=name, keys=tuple(blobs[u].key for u in members), size=sum(blobs[u].size for u in members),
                 modified=max(blobs[u].modified for u in members)) for name, members in groups]


def forget_blob_indexes() -> None:
    """Drop this machine's indexes of stored blobs (``stage.BlobIndex``): after blobs were deleted,
    the next launch lists the bucket instead of trusting them."""
    from .store import home_dir

    folder = os.path.join(home_dir(), "cache")
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if name.startswith("blobs-") and name.endswith(".txt"):
            _remove(os.path.join(folder, name))


# --- the two stores -----------------------------------------------------------------------------------

class LocalPlace:
    """The local stand-in store: every bucket folder in it."""

    label = "local store"

    def __init__(self, root: str, prefix: str) -> None:
        self.root = root
        self.prefix = prefix

    def _objects(self) -> Iterator[Tuple[str, List[StoredObject]]]:
        if not os.path.isdir(self.root):
            return
        for bucket in sorted(os.listdir(self.root)):
            base = os.path.join(self.root, bucket, *self.prefix.split("/"), "cas", "sha256")
            objects = []
            for folder, dirs, files in os.walk(base):
                dirs.sort()
                for name in files:
                    path = os.path.join(folder, name)
                    st = os.stat(path)
                    key = os.path.relpath(path, os.path.join(self.root, bucket)).replace(os.sep, "/")
                    objects.append(StoredObject(key, st.st_size, _dt.datetime.fromtimestamp(
                        st.st_mtime, _dt.timezone.utc)))
            yield bucket, objects

    def trees(self) -> List[Tree]:
        return [tree for bucket, objects in self._objects() for tree in trees(bucket, objects)]

    def blob_groups(self, referenced: Set[str], old_roots: Set[str], cutoff: _dt.datetime) -> List[Tree]:
        found: List[Tree] = []
        for bucket, objects in self._objects():
            def read(key: str, bucket: str = bucket) -> bytes:
                with open(os.path.join(self.root, bucket, *key.split("/")), "rb") as fh:
                    return fh.read()

            found += unused_blobs(bucket, objects, read, referenced, old_roots, cutoff)
        return found

    def new_generation(self) -> None:
        """New content in ``PREFIX/cas/generation`` of every bucket (see :func:`stage.generation_uri`)."""
        for bucket in sorted(os.listdir(self.root)):
            folder = os.path.join(self.root, bucket, *self.prefix.split("/"), "cas")
            if os.path.isdir(folder):
                with open(os.path.join(folder, "generation"), "w", encoding="ascii") as fh:
                    fh.write(uuid.uuid4().hex)

    def delete(self, tree: Tree) -> None:
        bucket = tree.uri[len("s3://"):].split("/", 1)[0]
        for key in tree.keys:
            try:
                os.remove(os.path.join(self.root, bucket, *key.split("/")))
            except FileNotFoundError:
                pass
        # drop the folders left empty, up to the cas/sha256 folder
        folder = os.path.join(self.root, bucket, *tree.uri[len(f"s3://{bucket}/"):].rstrip("/").split("/"))
        for current, _, _ in sorted(os.walk(folder), key=lambda item: -len(item[0])):
            try:
                os.rmdir(current)
            except OSError:
                pass


class S3Place:
    """The scripts' bucket in S3."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.label = f"s3://{bucket}/{prefix}"

    def _objects(self, key_prefix: str) -> Iterator[Dict[str, Any]]:
        from .aws import translate_errors

        try:
            with translate_errors(f"listing s3://{self.bucket}/{key_prefix}"):
                for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                                   Prefix=key_prefix):
                    yield from page.get("Contents", []) or []
        except AwsError as exc:
            if exc.code != "NoSuchBucket":
                raise  # no bucket: nothing was ever staged there

    def _stored(self) -> List[StoredObject]:
        return [StoredObject(o["Key"], int(o["Size"]), o["LastModified"])
                for o in self._objects(f"{self.prefix}/cas/sha256/")]

    def trees(self) -> List[Tree]:
        return trees(self.bucket, self._stored())

    def blob_groups(self, referenced: Set[str], old_roots: Set[str], cutoff: _dt.datetime) -> List[Tree]:
        from .aws import translate_errors

        def read(key: str) -> bytes:
            with translate_errors(f"reading s3://{self.bucket}/{key}"):
                return bytes(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())

        return unused_blobs(self.bucket, self._stored(), read, referenced, old_roots, cutoff)

    def delete(self, tree: Tree) -> None:
        from .aws import translate_errors

        keys = list(tree.keys)
        with translate_errors(f"deleting {tree.uri}"):
            for start in range(0, len(keys), DELETE_BATCH):
                self.client.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": k} for k in keys[start:start + DELETE_BATCH]], "Quiet": True})

    def new_generation(self) -> None:
        """New content in ``PREFIX/cas/generation`` (see :func:`stage.generation_uri`)."""
        from .aws import translate_errors

        key = f"{self.prefix}/cas/generation"
        with translate_errors(f"writing s3://{self.bucket}/{key}"):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=uuid.uuid4().hex.encode())

    def launch_records(self, cutoff: _dt.datetime) -> List[Dict[str, Any]]:
        """The launch records in the bucket written since ``cutoff``."""
        from .aws import translate_errors

        records = []
        for obj in self._objects(f"{self.prefix}/jobs/"):
            if not obj["Key"].endswith("/launch.json") or obj["LastModified"] < cutoff:
                continue
            with translate_errors(f"reading s3://{self.bucket}/{obj['Key']}"):
                data = self.client.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read()
            try:
                records.append(json.loads(data.decode("utf-8")))
            except ValueError:
                continue
        return records


# --- the command -----------------------------------------------------------------------------------

def _running_sagemaker_uris(finder: "Finder") -> Set[str]:
    from .aws import translate_errors

    uris: Set[str] = set()
    sm = finder.clients.sagemaker
    for kind in (PROCESSING, TRAINING):
        label = "Processing" if kind == PROCESSING else "Training"
        for status in ("InProgress", "Stopping"):
            with translate_errors(f"listing running {kind} jobs"):
                pages = sm.get_paginator(f"list_{kind}_jobs").paginate(StatusEquals=status)
                names = [s[NAME_KEY[kind]] for page in pages for s in page.get(f"{label}JobSummaries", [])]
            for name in names:
                uris.update(uris_in(finder.sagemaker.describe(kind, name)))
    return uris


def run_clean(args: argparse.Namespace, finder: "Finder", out: TextIO, err: TextIO,
              now: Optional[_dt.datetime] = None) -> int:
    """``clean``; returns the exit code."""
    from .backends.local.state import recorded_status
    from .jobs import aws_configured, launches, launches_dir, parse_time
    from .store import LocalStore

    if args.older_than < 0:
        raise UsageError(f"{args.older_than:g} is not a number of days (0 or more)", flag="--older-than")
    prefix = (args.prefix or DEFAULT_PREFIX).strip("/")
    now = now or _dt.datetime.now(_dt.timezone.utc)
    cutoff = now - _dt.timedelta(days=args.older_than)
    places: List[Any] = [LocalPlace(LocalStore().root, prefix)]
    referenced: Set[str] = set()
    use_s3 = not args.local and (finder.aws.given or args.bucket or aws_configured())
    if use_s3:
        from .aws import account_id

        bucket = args.bucket or f"sagemaker-{finder.clients.region}-{account_id(finder.clients)}"
        place = S3Place(finder.clients.s3, bucket, prefix)
        places.append(place)
        for record in place.launch_records(cutoff):
            referenced.update(uris_in(record.get("request")))
        referenced.update(_running_sagemaker_uris(finder))

    old_launches = []
    old_roots: Set[str] = set()  # what old jobs named: their blobs are grouped under these
    for record in launches():
        created = parse_time(record.get("created"))
        if created is not None and created < cutoff:
            old_launches.append(record)
            old_roots.update(uris_in(record.get("request")))
        else:
            referenced.update(uris_in(record.get("request")))
    old_jobs = []
    for record in finder.registry.records():
        status, _ = recorded_status(record)
        created = parse_time(record.get("created"))
        if status in TERMINAL_STATUSES and created is not None and created < cutoff:
            old_jobs.append(record)
            old_roots.update(uris_in(record.get("description") or {}))
        else:
            referenced.update(uris_in(record.get("description") or {}))

    doomed: List[Tuple[Any, Tree]] = []
    for place in places:
        doomed += [(place, tree) for tree in unused(place.trees(), referenced, cutoff)]
        doomed += [(place, group) for group in place.blob_groups(referenced, old_roots, cutoff)]
    if args.yes:
        for place, tree in doomed:
            place.delete(tree)
        for place in {place for place, tree in doomed if _BLOB_KEY.match(tree.keys[0] if tree.keys else "")}:
            place.new_generation()  # other machines' indexes of stored blobs are stale now
        if doomed:
            forget_blob_indexes()
        for record in old_launches:
            _remove(os.path.join(launches_dir(), record["job_name"] + ".json"))
        for record in old_jobs:
            finder.registry.remove(record["kind"], record["name"])
    total = sum(tree.size for _, tree in doomed)
    if args.json:
        data = {
            "deleted": bool(args.yes),
            "older_than_days": args.older_than,
            "trees": [{"where": place.label, "uri": tree.uri, "objects": len(tree.keys), "bytes": tree.size,
                       "modified": tree.modified.isoformat()} for place, tree in doomed],
            "launch_records": [r["job_name"] for r in old_launches],
            "local_jobs": [{"kind": r["kind"], "job_name": r["name"]} for r in old_jobs],
            "bytes": total,
        }
        out.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        return 0
    from .stage import human_bytes

    verb = "deleted" if args.yes else "would delete"
    for place, tree in doomed:
        print(f"{verb} {tree.uri} ({len(tree.keys)} objects, {human_bytes(tree.size)}, last written "
              f"{tree.modified.strftime('%Y-%m-%d')})", file=out)
    for record in old_launches:
        print(f"{verb} the launch record of {record['job_name']}", file=out)
    for record in old_jobs:
        print(f"{verb} the record of local {record['kind']} job {record['name']}", file=out)
    summary = (f"{len(doomed)} staged tree(s), {human_bytes(total)}; {len(old_launches) + len(old_jobs)} "
               f"record(s) older than {args.older_than:g} day(s)")
    print(f"{verb} {summary}" + ("" if args.yes else ": pass --yes to delete them"), file=err)
    return 0


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
