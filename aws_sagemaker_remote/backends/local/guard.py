"""A watcher process that kills a local job's processes when the launcher dies, however it dies.

A container's processes end with the container. The local backend's instances
run in process groups of their own (so a stop reaches everything they
started), and an ``atexit`` hook kills them when the launcher exits normally;
but ``kill -9``, an out-of-memory kill or a crash runs no Python code at all.

So the first local job starts one small guard process per launcher, in a
session of its own, that reads a pipe whose only writer is the launcher. Each
instance's process group is announced on the pipe when it starts (``+PGID``)
and withdrawn once it has been killed at its end (``-PGID``). When the
launcher dies, for any reason, the kernel closes the pipe; the guard reads
end-of-file, sends SIGKILL to every group still announced, and exits. The pipe
is not inherited by the jobs' processes (Python's pipes are close-on-exec), so
only the launcher's death can close it.

POSIX only (process groups); the guard needs nothing but the standard library.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import IO, Optional

#: The guard's program: read "+PGID" / "-PGID" lines until end-of-file, then kill what is left.
GUARD_PROGRAM = r"""
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
groups = set()
for line in sys.stdin:
    line = line.strip()
    if line[:1] == "+" and line[1:].isdigit():
        groups.add(int(line[1:]))
    elif line[:1] == "-" and line[1:].isdigit():
        groups.discard(int(line[1:]))
for pgid in groups:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
"""

_lock = threading.Lock()
_guard: Optional["subprocess.Popen[str]"] = None
_pipe: Optional[IO[str]] = None


def _start() -> Optional[IO[str]]:
    """The pipe to this process's guard, started on first use (None when it cannot start)."""
    global _guard, _pipe
    if _pipe is not None and _guard is not None and _guard.poll() is None:
        return _pipe
    try:
        _guard = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", GUARD_PROGRAM], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True, bufsize=1,
            # its own session: a Ctrl-C or hang-up meant for the launcher does not end the guard first
            start_new_session=True, close_fds=True)
    except OSError:
        _guard = _pipe = None
        return None  # best effort: the atexit hook still covers a normal exit
    _pipe = _guard.stdin
    return _pipe


def _send(line: str, start: bool) -> None:
    with _lock:
        pipe = _start() if start else _pipe
        if pipe is None:
            return
        try:
            pipe.write(line + "\n")
            pipe.flush()
        except (OSError, ValueError):
            pass


def watch(pgid: int) -> None:
    """Have the guard kill process group ``pgid`` if this process dies before :func:`forget`."""
    _send(f"+{pgid}", start=True)


def forget(pgid: int) -> None:
    """The group ``pgid`` was killed and its leader is about to be reaped: the guard lets it go."""
    _send(f"-{pgid}", start=False)


def guard_pid() -> Optional[int]:
    """The guard process's id, once started (for tests and diagnostics)."""
    return _guard.pid if _guard is not None and _guard.poll() is None else None


def _reset_after_fork() -> None:
    # a forked child is not the guard's launcher: holding the pipe open would keep the
    # guard from seeing the launcher's death
    global _guard, _pipe
    if _pipe is not None:
        try:
            _pipe.close()
        except (OSError, ValueError):
            pass
    _guard = _pipe = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
