"""Which blobs ``clean`` deletes: never one that a recent or referenced channel manifest names."""
from __future__ import annotations

import datetime as dt
import json
from typing import Dict, List

from aws_sagemaker_remote.clean import MANIFEST_MAX, StoredObject, unused_blobs

NOW = dt.datetime(2026, 12, 2, tzinfo=dt.timezone.utc)
OLD = NOW - dt.timedelta(days=30)
CUTOFF = NOW - dt.timedelta(days=7)
BASE = "pre/cas/sha256/"


def _manifest(*digests: str) -> bytes:
    return json.dumps([{"prefix": f"s3://bk/{BASE}"}] + list(digests)).encode()


def _deleted(objects: List[StoredObject], contents: Dict[str, bytes], referenced: List[str]) -> List[str]:
    groups = unused_blobs("bk", objects, lambda key: contents[key], {f"s3://bk/{k}" for k in referenced},
                          set(), CUTOFF)
    return sorted(key for group in groups for key in group.keys)


def test_a_manifest_written_since_the_cutoff_keeps_the_older_blobs_it_names() -> None:
    kept, dropped, manifest = "a" * 64, "c" * 64, "b" * 64
    body = _manifest(kept)
    objects = [StoredObject(BASE + kept, 10, OLD), StoredObject(BASE + dropped, 10, OLD),
               StoredObject(BASE + manifest, len(body), NOW)]
    contents = {BASE + manifest: body, BASE + kept: b"0123456789", BASE + dropped: b"0123456789"}
    assert _deleted(objects, contents, []) == [BASE + dropped]


def test_a_referenced_manifest_too_large_to_read_keeps_everything() -> None:
    blob, manifest = "a" * 64, "b" * 64
    objects = [StoredObject(BASE + blob, 10, OLD), StoredObject(BASE + manifest, MANIFEST_MAX + 1, OLD)]
    contents: Dict[str, bytes] = {}  # neither may be read: the manifest is too large, the blob is data
    assert _deleted(objects, contents, [BASE + manifest]) == []
    # not referenced by a recent job: both go
    assert _deleted(objects, contents, []) == sorted([BASE + blob, BASE + manifest])
