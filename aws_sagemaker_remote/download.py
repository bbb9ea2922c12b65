"""``aws-sagemaker-remote download``: a finished job's outputs, model and output archives, on this machine.

What a job leaves behind, by name:

* processing: each output (``ProcessingOutputConfig.Outputs``), an S3 folder;
* training: ``model`` (``model.tar.gz``) and ``output`` (``output.tar.gz``, the job's
  ``/opt/ml/output/data``), and each declared output, a folder inside ``output.tar.gz``.

Each goes into ``DIR/<name>``; archives are unpacked. Nothing from the job may land
outside that folder: object keys and archive entries with an absolute path or a ``..``
part, links that lead out of it (or entries reached through a link), devices and pipes
are refused before anything is written. The checks are those of
:mod:`aws_sagemaker_remote.safepath` (shared with staging and the bootstrap), plus the
one only the whole archive shows: an entry reached through a link the archive itself
makes. A folder that is not empty is refused unless ``--overwrite`` is given.
"""
from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, TextIO, Tuple

from .backends.base import PROCESSING
from .errors import RemoteError, UsageError
from .store import Store, split_uri


class UnsafePath(RemoteError):
    """An object key or archive entry that would be written outside the target folder."""


def safe_relative(name: str) -> str:
    """``name`` as a relative POSIX path that stays inside a folder, or :class:`UnsafePath`.

    Refuses absolute paths, Windows drive letters, ``..`` parts and empty names.
    """
    text = name.replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise UnsafePath(f"{name!r} is an absolute path")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts:
        raise UnsafePath(f"{name!r} names no file")
    if ".." in parts:
        raise UnsafePath(f"{name!r} leaves the folder (..)")
    return "/".join(parts)


def safe_join(root: str, name: str) -> str:
    """``root/name`` for a :func:`safe_relative` name, also refused when a folder on the way is a
    link leaving ``root`` (:func:`aws_sagemaker_remote.safepath.local_path`)."""
    from . import safepath

    safe_relative(name)
    try:
        return safepath.local_path(root, name)
    except safepath.UnsafePath as exc:
        raise UnsafePath(f"{exc} (through a link)") from exc


def checked_members(tar: tarfile.TarFile) -> List[tarfile.TarInfo]:
    """The archive's entries once each is known to stay inside the folder it is unpacked into."""
    members: List[tarfile.TarInfo] = []
    links: Set[str] = set()
    for member in tar.getmembers():
        name = safe_relative(member.name)
        parents = name.split("/")[:-1]
        if any("/".join(parents[:i + 1]) in links for i in range(len(parents))):
            raise UnsafePath(f"{member.name!r} is reached through a link in the archive")
        if member.issym():
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
            if member.linkname.startswith("/") or target == ".." or target.startswith("../"):
                raise UnsafePath(f"{member.name!r} links outside the folder ({member.linkname!r})")
            links.add(name)
        elif member.islnk():
            safe_relative(member.linkname)
        elif not (member.isfile() or member.isdir()):
            raise UnsafePath(f"{member.name!r} is a device or pipe")
        member.name = name
        members.append(member)
    return members


def safe_extract(archive: str, dest: str, prefix: Optional[str] = None) -> int:
    """Unpack ``archive`` (a ``.tar.gz``) into ``dest``; with ``prefix``, only the entries under
    ``prefix/``, moved up to ``dest``. Returns the number of files written.

    :raises UnsafePath: an entry would leave ``dest`` (nothing is written then).
    """
    with tarfile.open(archive) as tar:
        members = checked_members(tar)
        if prefix is not None:
            chosen = []
            for member in members:
                if member.name.startswith(prefix + "/"):
                    member.name = member.name[len(prefix) + 1:]
                    if member.islnk():
                        if not member.linkname.startswith(prefix + "/"):
                            raise UnsafePath(f"{member.name!r} links outside {prefix}/")
                        member.linkname = member.linkname[len(prefix) + 1:]
                    chosen.append(member)
            members = chosen
        from . import safepath

        try:
            # its checks again, per member, then everything unpacked beside dest and moved in at once
            safepath.safe_extract(tar, dest, members)
        except safepath.UnsafePath as exc:
            raise UnsafePath(str(exc)) from exc
        return sum(1 for m in members if m.isfile())


@dataclass(frozen=True)
class Artifact:
    """One thing a job left: a folder of objects (``archive=False``) or an archive to unpack."""

    name: str
    uri: str
    archive: bool = False
    #: for an output inside output.tar.gz: its folder there
    member_prefix: Optional[str] = None


def artifacts(kind: str, job_name: str, description: Mapping[str, Any],
              request: Optional[Mapping[str, Any]] = None) -> Dict[str, Artifact]:
    """What ``download`` can fetch of a job, by name. ``request`` (the launch record's) fills in
    what a describe response leaves out."""
    if kind == PROCESSING:
        outputs = ((description.get("ProcessingOutputConfig") or {}).get("Outputs")
                   or ((request or {}).get("ProcessingOutputConfig") or {}).get("Outputs") or [])
        return {o["OutputName"]: Artifact(o["OutputName"], o["S3Output"]["S3Uri"])
                for o in outputs if (o.get("S3Output") or {}).get("S3Uri")}
    path = ((description.get("OutputDataConfig") or (request or {}).get("OutputDataConfig") or {})
            .get("S3OutputPath") or "").rstrip("/")
    job_output = f"{path}/{job_name}/output" if path else ""
    model = (description.get("ModelArtifacts") or {}).get("S3ModelArtifacts") or (
        f"{job_output}/model.tar.gz" if job_output else "")
    found: Dict[str, Artifact] = {}
    if model:
        found["model"] = Artifact("model", model, archive=True)
    if job_output:
        found["output"] = Artifact("output", f"{job_output}/output.tar.gz", archive=True)
    return found


def choose(available: Mapping[str, Artifact], output: Optional[str], kind: str) -> List[Artifact]:
    """The artifacts to fetch: all, or the one named ``output`` (training: also a folder in ``output``).

    :raises UsageError: no artifact of that name.
    """
    if output is None:
        if not available:
            raise UsageError("the job names no outputs to download", flag="OUTPUT")
        return list(available.values())
    if output in available:
        return [available[output]]
    if kind != PROCESSING and "output" in available and output not in ("model", "output"):
        safe_relative(output)
        whole = available["output"]
        return [Artifact(output, whole.uri, archive=True, member_prefix=output)]
    raise UsageError(f"the job has no output {output!r}; it has {', '.join(sorted(available)) or 'none'}",
                     flag="OUTPUT")


def _not_empty(folder: str) -> bool:
    return os.path.isdir(folder) and bool(os.listdir(folder))


@dataclass(frozen=True)
class Downloaded:
    name: str
    uri: str
    path: str
    files: int
    size: int


def download(store: Store, chosen: Sequence[Artifact], to: str, *, overwrite: bool = False,
             progress_stream: Optional[TextIO] = None) -> List[Downloaded]:
    """Fetch each artifact into ``to/<name>``.

    :raises UsageError: a target folder is not empty and ``overwrite`` is false (checked
        for all of them before anything is fetched).
    :raises UnsafePath: a key or archive entry would leave its folder.
    """
    from .stage import Progress

    targets: List[Tuple[Artifact, str]] = [(a, os.path.join(to, safe_relative(a.name))) for a in chosen]
    if os.path.exists(to) and not os.path.isdir(to):
        raise UsageError(f"{to} exists and is not a folder", flag="--to")
    for artifact, folder in targets:
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise UsageError(f"{folder} exists and is not a folder", flag="--to")
        if _not_empty(folder) and not overwrite:
            raise UsageError(f"{folder} is not empty; pass --overwrite to write into it", flag="--to")
    plans: List[Tuple[Artifact, str, List[Tuple[str, str, int]]]] = []
    for artifact, folder in targets:
        if artifact.archive:
            size = store.head(artifact.uri)
            if size is None:
                raise RemoteError(f"{artifact.uri} does not exist (the job wrote no {artifact.name})")
            plans.append((artifact, folder, [(artifact.uri, "", size)]))
            continue
        base = artifact.uri if artifact.uri.endswith("/") else artifact.uri + "/"
        _, base_key = split_uri(base)
        objects = []
        for uri, size in store.list(base):
            _, key = split_uri(uri)
            if key.endswith("/"):
                continue  # folder marker objects
            objects.append((uri, safe_relative(key[len(base_key):]), size))
        plans.append((artifact, folder, objects))
    bar = Progress(sum(size for _, _, objs in plans for _, _, size in objs), progress_stream, label="download")
    done: List[Downloaded] = []
    try:
        for artifact, folder, objects in plans:
            os.makedirs(folder, exist_ok=True)
            size = sum(s for _, _, s in objects)
            if artifact.archive:
                scratch = tempfile.mkdtemp(prefix="download-")
                try:
                    local = os.path.join(scratch, "artifact.tar.gz")
                    store.download_file(artifact.uri, local, bar)
                    files = safe_extract(local, folder, artifact.member_prefix)
                finally:
                    shutil.rmtree(scratch, ignore_errors=True)
            else:
                for uri, rel, _ in objects:
                    store.download_file(uri, safe_join(folder, rel), bar)
                files = len(objects)
            done.append(Downloaded(artifact.name, artifact.uri, folder, files, size))
    finally:
        bar.close()
    return done
