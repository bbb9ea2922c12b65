"""Each instance's files bounded by the job's volume size, as its ML storage volume bounds them.

On SageMaker an instance's ``/opt/ml`` (inputs in File mode, code, model,
output, checkpoints) lives on a volume of ``VolumeSizeInGB``; a job that
writes more gets ``No space left on device`` and fails. Locally the files
are on this machine's disk, so the backend measures each instance's folder
(the apparent size of its files) after the downloads, every
:data:`CHECK_SECONDS` while the processes run, and once they ended; past the
limit the instance's processes are killed and the job ends ``Failed`` with a
reason that says so.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any, Iterator, Mapping, Optional

from .processes import kill_group
from .state import Job

#: Seconds between two measurements while the processes run.
CHECK_SECONDS = 0.5
GIB = 1024 ** 3


def volume_bytes(kind: str, request: Mapping[str, Any]) -> Optional[int]:
    """The request's ``VolumeSizeInGB`` in bytes, None when it names none."""
    if kind == "processing":
        size = request.get("ProcessingResources", {}).get("ClusterConfig", {}).get("VolumeSizeInGB")
    else:
        size = request.get("ResourceConfig", {}).get("VolumeSizeInGB")
    return int(size) * GIB if size else None


def tree_size(folder: str) -> int:
    """Bytes of every file under ``folder`` (links not followed; files that vanish meanwhile skipped)."""
    total = 0
    for top, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(top, name)).st_size
            except OSError:
                continue
    return total


def over_limit(job: Job, limit: Optional[int]) -> Optional[str]:
    """The failure reason of the first instance whose files exceed ``limit``, else None."""
    if not limit:
        return None
    for instance in job.instances:
        used = tree_size(instance.fs_root)
        if used > limit:
            return (f"[Errno 28] No space left on device: {instance.host} has {used} bytes under /opt/ml, more "
                    f"than its VolumeSizeInGB={limit // GIB} volume holds ({limit} bytes)")
    return None


def fail(job: Job, instance_reason: str) -> None:
    """Record the disk failure and kill every instance's processes, as a full disk ends the job."""
    with job.lock:
        if job.disk_failure is None:
            job.disk_failure = instance_reason
    for instance in job.instances:
        kill_group(instance, signal.SIGKILL)


@contextlib.contextmanager
def watched(job: Job, limit: Optional[int]) -> Iterator[None]:
    """Measure every instance's folder while the block runs, and once after it."""
    if not limit:
        yield
        return
    done = threading.Event()

    def watch() -> None:
        while not done.wait(CHECK_SECONDS):
            reason = over_limit(job, limit)
            if reason:
                fail(job, reason)
                return

    thread = threading.Thread(target=watch, name=f"local-disk-{job.name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
    if job.disk_failure is None:
        reason = over_limit(job, limit)
        if reason:
            with job.lock:
                job.disk_failure = reason

