"""Moving data between the store (standing in for S3) and the instances' folders.

Downloads follow SageMaker's input rules (``S3Prefix`` / ``ManifestFile``,
``FullyReplicated`` / ``ShardedByS3Key``, ``Gzip``); an error of the store ends
the job ``Failed`` with a ``ClientError`` reason, as SageMaker reports it.
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import tarfile
import tempfile
from typing import Any, Callable, List, Optional, Tuple

from ...safepath import UnsafePath, local_path
from ...store import Store, in_parallel, iter_files, manifest_objects, prefix_objects, split_uri
from .state import Instance, Job, JobError, Settings


def objects(store: Store, uri: str, data_type: str) -> List[Tuple[str, str, int]]:
    """``(object URI, relative path, size)`` of every object an input names."""
    try:
        if data_type == "S3Prefix":
            return prefix_objects(store, uri)
        if data_type == "ManifestFile":
            return manifest_objects(store, uri)
    except Exception as exc:  # missing objects, bad manifests and botocore errors alike
        raise JobError(f"ClientError: cannot read input {uri}: {exc}") from exc
    raise JobError(f"ClientError: S3DataType {data_type} is not supported by the local backend")


def fetch(settings: Settings, job: Job, instance: Instance, uri: str, data_type: str, distribution: str,
          gzipped: bool, dest: str, required: bool = True) -> None:
    """Download the objects an input names into ``dest``, as SageMaker does for ``instance``.

    An input (``required``) that names no object fails the job before anything
    runs, as on SageMaker; a checkpoint prefix may be empty (a first run).
    """
    found = sorted(objects(settings.store, uri, data_type))
    if not found and required:
        raise JobError(no_objects_reason(settings.region, job, uri, data_type))
    if distribution == "ShardedByS3Key":
        found = found[instance.index::len(job.instances)]
    os.makedirs(dest, exist_ok=True)
    try:  # every key is checked before the first download, so a refused input writes nothing
        targets = [(obj_uri, local_path(dest, rel)) for obj_uri, rel, _size in found]
    except UnsafePath as exc:
        raise JobError(f"ClientError: refusing to download {uri}: {exc}") from None

    def one(obj_uri: str, target: str) -> None:
        try:
            settings.store.download_file(obj_uri, target)
        except Exception as exc:  # as above
            raise JobError(f"ClientError: cannot download {obj_uri}: {exc}") from exc
        if gzipped:
            gunzip_in_place(target)

    in_parallel(one, targets)  # several at a time, as SageMaker's own downloads are


def no_objects_reason(region: str, job: Job, uri: str, data_type: str) -> str:
    """SageMaker's FailureReason for an input with no objects (its wording, cut to the essentials)."""
    bucket = split_uri(uri)[0]
    where = "in the manifest file" if data_type == "ManifestFile" else "under S3 URL"
    return (f'ClientError: No S3 objects found {where} "{uri}" given in input data source. Please ensure '
            f"that the bucket exists in the selected region ({region}), that objects exist under that "
            f'S3 prefix, and that the role "{job.request.get("RoleArn", "")}" has "s3:ListBucket" '
            f'permissions on bucket "{bucket}".')


def upload(what: str, step: Callable[..., Any], *args: Any) -> None:
    """Run an upload step; a store error fails the job as SageMaker reports it (a client error)."""
    try:
        step(*args)
    except Exception as exc:  # botocore and OS errors alike end the job Failed
        raise JobError(f"ClientError: cannot upload {what}: {exc}") from exc


def upload_tarball(store: Store, folder: str, uri: str, scratch: str) -> None:
    """Pack ``folder`` as a ``.tar.gz`` (in ``scratch``) and put it at ``uri``."""
    fd, path = tempfile.mkstemp(suffix=".tar.gz", dir=scratch or None)
    os.close(fd)
    try:
        with tarfile.open(path, "w:gz") as tar:
            for full, rel in iter_files(folder):
                tar.add(full, arcname=rel, recursive=False)
        store.upload_file(path, uri)
    finally:
        os.unlink(path)


def gunzip_in_place(path: str) -> None:
    """``Gzip`` inputs arrive decompressed; a trailing ``.gz`` is dropped from the name."""
    target = path[:-3] if path.endswith(".gz") else path
    tmp = target + ".gunzip"
    try:
        with gzip.open(path, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except (OSError, EOFError) as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise JobError(f"ClientError: {os.path.basename(path)} is not gzip data: {exc}") from exc
    os.replace(tmp, target)
    if target != path:
        os.unlink(path)


def write_json(path: str, data: Any) -> None:
    """Write a config file SageMaker writes into the container."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, default=str)


def read_text(path: str) -> Optional[str]:
    """A failure file's text, or None when it is missing or empty."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read().strip()
    except OSError:
        return None
    return text or None
