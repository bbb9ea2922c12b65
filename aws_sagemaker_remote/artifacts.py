"""Job artifacts (``model.tar.gz``, ``output.tar.gz``) fetched from a store and unpacked safely."""
from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import tempfile
from typing import Iterator, List, Optional

from .errors import JobFailed
from .store import Store


@contextlib.contextmanager
def fetched(store: Store, uri: str) -> Iterator[tarfile.TarFile]:
    """A downloaded ``.tar.gz``, open, and removed afterwards."""
    tmp = tempfile.mkdtemp(prefix="artifact-")
    try:
        archive = os.path.join(tmp, "artifact.tar.gz")
        store.download_file(uri, archive)
        with tarfile.open(archive) as tar:
            yield tar
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def safe_extract(tar: tarfile.TarFile, dest: str, members: Optional[List[tarfile.TarInfo]] = None) -> None:
    """Extract without letting an entry escape ``dest``."""
    os.makedirs(dest, exist_ok=True)
    data_filter = getattr(tarfile, "data_filter", None)
    if data_filter is not None:
        tar.extractall(dest, members=members, filter=data_filter)
        return
    root = os.path.realpath(dest)
    for member in members if members is not None else tar.getmembers():
        target = os.path.realpath(os.path.join(dest, member.name))
        if not target.startswith(root + os.sep) and target != root:
            raise JobFailed(f"archive entry {member.name!r} points outside {dest}")
    tar.extractall(dest, members=members)

