"""Job artifacts (``model.tar.gz``, ``output.tar.gz``) fetched from a store and unpacked safely."""
from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import tempfile
from typing import Iterator, List, Optional

from .safepath import UnsafePath, safe_extract as _extract
from .store import Store, UnsafeDownload


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


def safe_extract(tar: tarfile.TarFile, dest: str, members: Optional[List[tarfile.TarInfo]] = None,
                 source: str = "the archive") -> None:
    """Extract without letting an entry escape ``dest`` (see :func:`~aws_sagemaker_remote.safepath.safe_extract`).

    :raises UnsafeDownload: an entry would land outside ``dest``, or the archive is damaged; one line,
        nothing written.
    """
    try:
        _extract(tar, dest, members)
    except (UnsafePath, tarfile.TarError) as exc:
        raise UnsafeDownload(f"refusing to unpack {source} into {dest}: {exc}") from None
