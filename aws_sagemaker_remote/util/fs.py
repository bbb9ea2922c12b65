"""Small file helpers for job code (standard library only)."""
from __future__ import annotations

import os
from typing import Iterable

__all__ = ["ensure_path", "write_chunks"]

_BYTES = (bytes, bytearray, memoryview)


def ensure_path(path: str | os.PathLike[str]) -> str:
    """Create the folder that will hold the file ``path`` (and its parents); return that folder."""
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    os.makedirs(folder, exist_ok=True)
    return folder


def write_chunks(path: str | os.PathLike[str], chunks: str | bytes | Iterable[str] | Iterable[bytes]) -> int:
    """Write one string/bytes value, or an iterable of them, to ``path``; return the number of chunks.

    Creates the parent folders. Text is written as UTF-8, bytes as they are; all
    chunks must be of one kind (:class:`TypeError` otherwise, before the file
    is touched). An empty iterable creates an empty file.
    """
    items: list[str | bytes] = [chunks] if isinstance(chunks, (str, bytes)) else list(chunks)
    binary = bool(items) and isinstance(items[0], _BYTES)
    for chunk in items:
        if not isinstance(chunk, _BYTES if binary else str):
            raise TypeError(f"write_chunks: a chunk of type {type(chunk).__name__} among "
                            f"{'bytes' if binary else 'str'} chunks")
    ensure_path(path)
    data = b"".join(c if isinstance(c, bytes) else bytes(c, "utf-8") if isinstance(c, str) else bytes(c)
                    for c in items)
    with open(path, "wb") as handle:
        handle.write(data)
    return len(items)
