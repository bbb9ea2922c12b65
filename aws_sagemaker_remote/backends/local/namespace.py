"""Run a command with a folder mounted at ``/opt/ml`` in a private mount namespace (Linux).

The local backend starts each instance's process through this file, run as a
script by the job's interpreter (``python namespace.py SOURCE TARGET HIDE -- COMMAND...``),
so that the job sees SageMaker's literal paths: ``/opt/ml/input/config/...``,
``/opt/ml/processing/input/...`` are the instance's own folders, and no
instance sees another's. Standard library only; nothing is imported from the
package, because the process must be single-threaded when it calls
``unshare(CLONE_NEWUSER)``, which a fresh interpreter is.

What it does, in the new process, before ``exec`` of the command:

1. ``unshare(CLONE_NEWNS)`` as root; otherwise ``unshare(CLONE_NEWUSER | CLONE_NEWNS)``
   and a user namespace that maps only the caller's own uid and gid onto themselves
   (so the job runs as the same user, and files it writes belong to that user);
2. make every mount private (``mount --make-rprivate /``), so nothing done next
   reaches the host's mount table;
3. put ``SOURCE`` at ``TARGET`` (``/opt/ml``) without creating anything on the host:
   * ``TARGET`` is a folder on the host: bind ``SOURCE`` over it;
   * otherwise, take the nearest existing ancestor (``/opt``), mount an empty
     ``tmpfs`` over it *inside the namespace*, re-bind every entry the host has
     there (folders and files bound, symbolic links copied), create the
     missing folders in the tmpfs and bind ``SOURCE`` at ``TARGET``. A
     ``mkdir /opt/ml`` on the host would not be private: mount namespaces
     separate mounts, not files;
4. mount an empty read-only ``tmpfs`` over ``HIDE`` (the job folder holding
   every instance's files), so an instance cannot reach the others' folders
   through their host paths either; the working folder becomes ``TARGET``;
5. ``exec`` the command. A non-root user's capabilities in the namespace end
   there: the job runs without privileges.

``--probe SCRATCH TARGET`` does steps 1-3 with an empty folder made in ``SCRATCH`` and exits 0: the local backend
runs it once to learn whether namespaces work on this machine. Exit code 125
and one line on stderr mean the set-up failed.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import stat
import sys
import tempfile
from typing import List, Optional, Sequence

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_RDONLY = 0x1
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
#: Exit code of a failed set-up (like ``env``/``chroot``: the command never ran).
SETUP_FAILED = 125

_libc: Optional[ctypes.CDLL] = None


def _c() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source: Optional[str], target: str, fstype: Optional[str], flags: int, data: Optional[str] = None) -> None:
    """``mount(2)``."""
    enc = os.fsencode
    _check(_c().mount(enc(source) if source else None, enc(target), enc(fstype) if fstype else None,
                      ctypes.c_ulong(flags), enc(data) if data else None), f"mount {target}")


def _write(path: str, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)


def enter(user_namespace: Optional[bool] = None) -> None:
    """Step 1 and 2: a private mount namespace (in a user namespace unless root)."""
    uid, gid = os.geteuid(), os.getegid()
    if user_namespace is None:
        user_namespace = uid != 0
    flags = CLONE_NEWNS | (CLONE_NEWUSER if user_namespace else 0)
    if _c().unshare(flags) != 0:
        if user_namespace:
            _check(-1, "unshare")
        # root without CAP_SYS_ADMIN (inside a container): a user namespace may still be allowed
        user_namespace = True
        _check(_c().unshare(CLONE_NEWNS | CLONE_NEWUSER), "unshare")
    if user_namespace:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1\n")
        _write("/proc/self/gid_map", f"{gid} {gid} 1\n")
    mount(None, "/", None, MS_REC | MS_PRIVATE)


def place(source: str, target: str) -> None:
    """Step 3: ``source`` at ``target``; the host's files are never changed."""
    target = os.path.abspath(target)
    if os.path.isdir(target) and not os.path.islink(target):
        mount(source, target, None, MS_BIND | MS_REC)
        return
    # the nearest existing ancestor, and the first missing component below it
    anchor, missing = target, []  # type: str, List[str]
    while not os.path.isdir(anchor) or os.path.islink(anchor):
        anchor, name = os.path.split(anchor)
        missing.insert(0, name)
    if anchor == "/":
        raise OSError(f"cannot create {target}: no folder but / above it exists")
    original = os.open(anchor, os.O_RDONLY | os.O_DIRECTORY)
    try:
        entries = os.listdir(original)
        mode = stat.S_IMODE(os.fstat(original).st_mode)
        mount("tmpfs", anchor, "tmpfs", 0, f"mode={mode:o}")
        for name in entries:
            if name == missing[0]:
                continue  # replaced by source
            _rebind(f"/proc/self/fd/{original}/{name}", os.path.join(anchor, name))
    finally:
        os.close(original)
    os.makedirs(target)
    mount(source, target, None, MS_BIND | MS_REC)


def _rebind(host: str, inside: str) -> None:
    """Make ``inside`` (in the tmpfs) show the host's entry ``host``."""
    info = os.lstat(host)
    if stat.S_ISLNK(info.st_mode):
        os.symlink(os.readlink(host), inside)
        return
    if stat.S_ISDIR(info.st_mode):
        os.mkdir(inside)
    elif stat.S_ISREG(info.st_mode):
        open(inside, "w").close()
    else:
        return  # sockets, pipes, devices: nothing SageMaker images keep in /opt
    mount(host, inside, None, MS_BIND | MS_REC)


def hide(folder: str) -> None:
    """Step 4: an empty read-only tmpfs over ``folder``."""
    mount("tmpfs", folder, "tmpfs", MS_RDONLY, "mode=755,size=4k")


def probe(scratch: str, target: str) -> None:
    """Steps 1-3 with an empty folder made in ``scratch``; raises when namespaces do not work here."""
    enter()
    source = tempfile.mkdtemp(prefix="probe-", dir=scratch)
    try:
        place(source, target)
        if os.listdir(target):
            raise OSError("the bind mount did not take effect")
    finally:
        os.rmdir(source)


def main(argv: Sequence[str]) -> int:
    """``SOURCE TARGET HIDE -- COMMAND...``, or ``--probe SCRATCH TARGET``."""
    try:
        if list(argv[:1]) == ["--probe"]:
            probe(argv[1], argv[2])
            return 0
        split = list(argv).index("--")
        source, target, hidden = argv[:split]
        command: List[str] = list(argv[split + 1:])
        enter()
        place(source, target)
        if hidden:
            hide(hidden)
        os.chdir(target)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"aws_sagemaker_remote: cannot mount the instance's folder at /opt/ml: {exc}\n")
        return SETUP_FAILED
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        sys.stderr.write(f"aws_sagemaker_remote: cannot start {command[0]}: {exc}\n")
        return 127
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
