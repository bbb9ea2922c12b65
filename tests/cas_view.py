"""What a job sees of trees staged as blobs: read back from a store the way the job's bootstrap lays them out."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Dict, Optional

from aws_sagemaker_remote.safepath import materialize, unpack
from aws_sagemaker_remote.store import Store, manifest_objects


def fetch_channel(store: Store, uri: str, dest: Path) -> Path:
    """Download every object a ``ManifestFile`` channel names into ``dest`` (named as SageMaker names them)."""
    for obj, rel, _ in manifest_objects(store, uri):
        store.download_file(obj, str(dest / rel))
    return dest


def code_tree(store: Store, code_uri: str, entry: str, dest: Path) -> Path:
    """The code tree the stub lays out from the code channel ``code_uri`` (``entry``: the code manifest)."""
    blobs = fetch_channel(store, code_uri, dest / "code-channel")
    unpack(str(blobs / entry), str(dest / "code"))
    return dest / "code"


def input_tree(store: Store, code: Path, channel_uri: str, container_path: str, dest: Path) -> Path:
    """The tree of the input staged at ``channel_uri`` that the job finds at ``container_path``."""
    manifest = json.loads((code / "manifest.json").read_text(encoding="utf-8"))
    listing = next(i["listing"] for i in manifest["inputs"] if i["path"] == container_path)
    blobs = fetch_channel(store, channel_uri, dest / "blobs")
    materialize(json.loads((code / listing).read_text(encoding="utf-8")), str(blobs), str(dest / "tree"))
    return dest / "tree"


def files_of(folder: Path, names: Optional[Dict[str, bytes]] = None) -> Dict[str, bytes]:
    """Relative posix path → bytes of every file under ``folder``."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


#: S3's usual part size, which names a blob of more than one part (8 MiB up to 80,000 MiB).
PART = 8 * 1024 * 1024


def blob_name_of(data: bytes) -> str:
    """A blob's name, made here as the docs define it (not by the package): the SHA-256 of the
    bytes; above one 8 MiB part, S3's composite checksum of its parts in hex, ``-`` their number."""
    if len(data) <= PART:
        return hashlib.sha256(data).hexdigest()
    parts = [hashlib.sha256(data[at:at + PART]).digest() for at in range(0, len(data), PART)]
    return f"{hashlib.sha256(b''.join(parts)).hexdigest()}-{len(parts)}"
