"""Turning names chosen by someone else (S3 keys, archive members) into local paths.

An object key relative to an input prefix, or a member of a downloaded
``.tar.gz``, becomes a file under a target folder. Whoever wrote the bucket or
the archive chose that name, so it may try to leave the folder: an absolute
path, a ``..`` segment, or a path through a link that points elsewhere. Every
place that writes such names goes through :func:`local_path` (one name) or
:func:`safe_extract` (an archive), which refuse them with :class:`UnsafePath`.

Standard library only, with no imports from this package: the job's bootstrap
stub reads this file straight out of the code channel (it is one of the code's
content-addressed blobs) to lay out the code tree itself (:func:`unpack`),
before anything else of the package is on disk.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
from typing import Any, Dict, List, Optional

__all__ = ["MissingBlob", "UnsafePath", "check_member", "check_name", "find_blobs", "local_path", "materialize",
           "safe_extract", "start", "unpack"]

#: tarfile's own 'data' filter where this Python has it (3.8.17+, 3.12+): a second guard
#: after :func:`check_member`, and it keeps newer Pythons from warning about unfiltered extraction.
_FILTER: Dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


class UnsafePath(ValueError):
    """A key or archive member would land outside its target folder; the message names it."""


class MissingBlob(LookupError):
    """A file's blob is not where the tree's blobs were downloaded; the message names both."""


def _segments(name: str, what: str) -> List[str]:
    if not name:
        raise UnsafePath(f"{what} {name!r} is empty")
    # "c:x" is a drive path only on Windows; elsewhere "a:b.csv" and "1:00.log" are plain names
    drive = os.name == "nt" and len(name) > 1 and name[1] == ":"
    if name.startswith(("/", "\\")) or drive or "\0" in name:
        raise UnsafePath(f"{what} {name!r} is an absolute path, outside the target folder")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePath(f"{what} {name!r} has a '..' segment, leading outside the target folder")
    if not parts:
        raise UnsafePath(f"{what} {name!r} names no file")
    return parts


def check_name(name: str, what: str = "key") -> str:
    """``name`` as :func:`local_path` lays it out (``/``-separated, without empty or ``.`` segments),
    or :class:`UnsafePath`: the launch checks every name of a tree with it, so a name the job would
    refuse fails before anything is uploaded."""
    return "/".join(_segments(name, what))


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def local_path(root: str, name: str, what: str = "key") -> str:
    """The path under ``root`` for the relative ``name`` (``/``-separated), or :class:`UnsafePath`.

    Refuses absolute names, ``..`` segments, and names whose folders already
    exist on disk as links leading out of ``root``. Empty and ``.`` segments are
    dropped (``a//b`` is ``a/b``). ``what`` says what ``name`` is in the message.
    """
    parts = _segments(name, what)
    target = os.path.join(os.path.abspath(root), *parts)
    real_root = os.path.realpath(root)
    # an existing folder on the way may be a link out of the target; the file itself is replaced
    real_parent = os.path.realpath(os.path.dirname(target))
    if not _inside(real_parent, real_root):
        raise UnsafePath(f"{what} {name!r} goes through a link that leaves {root}")
    if os.path.islink(target):
        raise UnsafePath(f"{what} {name!r} is an existing link in {root}; refusing to write through it")
    return target


def check_member(member: tarfile.TarInfo, root: str) -> str:
    """Where ``member`` would go under ``root``; refuses escaping names, links leaving ``root`` and
    special files (devices, FIFOs)."""
    what = "archive member"
    target = local_path(root, member.name, what)
    if member.issym() or member.islnk():
        link = member.linkname
        if member.issym():
            if link.startswith(("/", "\\")):
                raise UnsafePath(f"{what} {member.name!r} is a link to the absolute path {link!r}")
            resolved = os.path.normpath(os.path.join(os.path.dirname(target), link))
        else:
            try:
                resolved = os.path.join(os.path.abspath(root), *_segments(link, "link target"))
            except UnsafePath as exc:
                raise UnsafePath(f"{what} {member.name!r} is a hard link: {exc}") from None
        if not _inside(resolved, os.path.abspath(root)):
            raise UnsafePath(f"{what} {member.name!r} is a link to {link!r}, outside the target folder")
    elif not (member.isfile() or member.isdir()):
        raise UnsafePath(f"{what} {member.name!r} is a special file (device or FIFO)")
    return target


def safe_extract(tar: tarfile.TarFile, dest: str, members: Optional[List[tarfile.TarInfo]] = None) -> int:
    """Extract ``tar`` (or ``members`` of it) into ``dest``; returns the number of members.

    Every member is checked first (:func:`check_member`), so a refused archive
    writes nothing. The members are unpacked into a temporary sibling of
    ``dest`` and moved into place only when all of them are there, so an
    archive that fails half-way (a truncated download, a full disk) leaves no
    partial result behind. Modes keep only the permission bits.
    """
    chosen = list(tar.getmembers() if members is None else members)
    dest = os.path.abspath(dest)
    for member in chosen:
        check_member(member, dest)
    parent = os.path.dirname(dest)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix="." + os.path.basename(dest) + ".part-", dir=parent)
    try:
        for member in chosen:
            member.mode &= 0o777
            member.uid = member.gid = os.getuid() if hasattr(os, "getuid") else 0
            tar.extract(member, staging, set_attrs=not member.issym(), numeric_owner=True, **_FILTER)
        _merge(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return len(chosen)


def _merge(source: str, dest: str) -> None:
    """Move everything under ``source`` into ``dest`` (which may exist), replacing files."""
    if not os.path.exists(dest):
        os.replace(source, dest)
        os.makedirs(source, exist_ok=True)  # the caller removes it
        return
    for root, dirs, files in os.walk(source):
        rel = os.path.relpath(root, source)
        target_root = dest if rel == "." else os.path.join(dest, rel)
        os.makedirs(target_root, exist_ok=True)
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            target = os.path.join(target_root, name)
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)
            os.replace(os.path.join(root, name), target)


def find_blobs(folder: str, digests: Any) -> Dict[str, str]:
    """Where each of ``digests`` is under ``folder``: ``folder/<digest>``, or, where a download
    kept the key's folders, any file below ``folder`` named by the digest."""
    found = {d: os.path.join(folder, d) for d in digests if os.path.isfile(os.path.join(folder, d))}
    if len(found) < len(set(digests)):
        wanted = set(digests) - set(found)
        for root, _dirs, names in os.walk(folder):
            for name in names:
                if name in wanted and name not in found:
                    found[name] = os.path.join(root, name)
    return found


#: What a blob's name looks like (see :func:`aws_sagemaker_remote.transfers.blob_name`): the
#: SHA-256 of its bytes in hex, or of its parts' digests followed by ``-`` and their number.
BLOB_NAME = re.compile(r"[0-9a-f]{64}(?:-[1-9][0-9]{0,4})?\Z")


def materialize(listing: Dict[str, Any], blobs: str, dest: str, move: bool = False,
                sharded: bool = False) -> int:
    """Lay out a tree of content-addressed blobs: returns the number of files written.

    ``listing`` is ``{"files": [[rel, sha256, executable], ...], "dirs": [rel, ...]}``;
    the blob of each file is a file named ``<sha256>`` anywhere under ``blobs``
    (:func:`find_blobs`). Every name is checked first (:func:`local_path`), so a
    refused listing writes nothing. With ``move`` the blobs are moved into place
    (the last use of a blob; earlier ones are copies). With ``sharded`` files whose
    blob is absent are skipped (an instance that got its share of a sharded input);
    otherwise a missing blob is :class:`MissingBlob`, before anything is written.
    """
    files = [(str(e[0]), str(e[1]), bool(e[2]) if len(e) > 2 else False) for e in listing.get("files") or ()]
    dirs = [str(d) for d in listing.get("dirs") or ()]
    dest = os.path.abspath(dest)
    targets = [(local_path(dest, rel, "file"), sha, exe) for rel, sha, exe in files]
    folders = [local_path(dest, rel, "folder") for rel in dirs]
    for sha in {sha for _t, sha, _e in targets}:
        if not BLOB_NAME.match(sha):
            raise UnsafePath(f"{sha!r} is not a blob name (a SHA-256 digest)")
    where = find_blobs(blobs, {sha for _t, sha, _e in targets})
    if not sharded:
        for target, sha, _e in targets:
            if sha not in where:
                raise MissingBlob(f"the blob of {os.path.relpath(target, dest)!r} (sha256 {sha}) is not in {blobs}")
    uses: Dict[str, int] = {}
    for _t, sha, _e in targets:
        uses[sha] = uses.get(sha, 0) + 1
    for folder in folders:
        os.makedirs(folder, exist_ok=True)
    written = 0
    for target, sha, exe in targets:
        if sha not in where:
            continue  # sharded: another instance has it
        blob = where[sha]
        os.makedirs(os.path.dirname(target), exist_ok=True)
        uses[sha] -= 1
        if move and uses[sha] == 0:
            os.replace(blob, target)
        else:
            shutil.copyfile(blob, target)
        os.chmod(target, 0o755 if exe else 0o644)
        written += 1
    return written


def unpack(manifest: str, dest: str) -> None:
    """The bootstrap stub's step: lay out the code tree that ``manifest`` lists (:func:`materialize`,
    blobs beside the manifest), or extract a ``.tar.gz`` bundle; on a refused name one line and exit 1."""
    try:
        if tarfile.is_tarfile(manifest):
            with tarfile.open(manifest) as tar:
                safe_extract(tar, dest)
        else:
            with open(manifest, encoding="utf-8") as fh:
                listing = json.load(fh)
            materialize(listing, os.path.dirname(os.path.abspath(manifest)), dest)
    except (UnsafePath, MissingBlob, OSError, ValueError) as exc:
        # one line, not a traceback: a refused name, a missing blob, a name clash, a full disk
        sys.stderr.write(f"error: cannot lay out the code from {manifest}: {exc}\n")
        raise SystemExit(1) from None


def start(manifest: str, dest: str, args: List[str]) -> None:
    """What the bootstrap stub runs: lay out the code (:func:`unpack`), then hand over to the
    shipped bootstrap, imported from the tree just laid out."""
    unpack(manifest, dest)
    sys.path.insert(0, os.path.join(dest, "runtime"))
    from aws_sagemaker_remote.bootstrap import main

    main(dest, args)
