"""Temporary files and folders that name their owner, and the sweep that removes orphans.

A launch writes a code bundle, a staging scratch folder and, for a local job,
the job's container folders into the temporary folder. A launch that ends
normally removes them; one killed outright (``kill -9``, a power cut) cannot.
Each of these names therefore carries the owning process's id and a tag of the
host, ``aws-sagemaker-remote-<what>-<host>-<pid>-...``, and :func:`sweep`, run
when a launch starts, removes those of this host whose process is gone.

Only entries owned by the current user are considered, an id that has been
reused by a live process keeps its entry (removed by a later sweep), and a
name that does not follow the pattern is never touched. Standard library only.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import tempfile
from typing import List, Optional

PREFIX = "aws-sagemaker-remote-"
_OWNED = re.compile(r"^aws-sagemaker-remote-(?P<what>[a-z]+)-(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-")


def host_tag() -> str:
    """Six hex digits naming this host, so machines sharing a temporary folder never sweep each other's."""
    return hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:6]


def owned_prefix(what: str, name: str = "") -> str:
    """A ``tempfile`` prefix that names this process as the owner: ``aws-sagemaker-remote-job-<host>-<pid>-``."""
    prefix = f"{PREFIX}{what}-{host_tag()}-{os.getpid()}-"
    return prefix + f"{name}-" if name else prefix


def process_alive(pid: int) -> bool:
    """True while process ``pid`` exists and has not ended (a zombie has ended)."""
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process: alive
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            # "pid (comm) state ...": the state follows the last ')'
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def sweep(folder: Optional[str] = None) -> List[str]:
    """Remove the leftovers of ended launches of this host from ``folder`` (the temp folder); return them."""
    folder = folder or tempfile.gettempdir()
    removed: List[str] = []
    tag = host_tag()
    uid = os.getuid() if hasattr(os, "getuid") else None
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _OWNED.match(entry.name)
        if not match or match.group("host") != tag or process_alive(int(match.group("pid"))):
            continue
        try:
            if uid is not None and entry.stat(follow_symlinks=False).st_uid != uid:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            continue  # another launch is sweeping it too, or it is not ours to remove
        removed.append(entry.path)
    return removed
