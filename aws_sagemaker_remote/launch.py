"""The remote path: stage → render → backend → watch, for ``yes`` and ``local``.

Imported only when ``--sagemaker-run`` is ``yes`` or ``local``; this is where
boto3 may load. :func:`launch` gets the planned job, the launch controls and
its :class:`~aws_sagemaker_remote.targets.Target` (store, backend, placement);
each step gets a value and returns a new one, and this module only wires them
together, reports, and downloads results when asked.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import tarfile
import tempfile
from typing import Any, Dict, Iterator, List, Optional, TextIO

from .bundle import build_bundle
from .errors import JobFailed
from .render import render
from .spec import JobResult, JobSpec, RunControl, StagedJob, output_uris
from .stage import human_bytes, stage
from .store import LocalStore, Store, download_prefix
from .targets import Target


def launch(
    spec: JobSpec,
    control: RunControl,
    target: Target,
    *,
    out: Optional[TextIO] = None,
    err: Optional[TextIO] = None,
) -> JobResult:
    """Run ``spec`` as a job on ``target`` and return its result (``DryRun`` for a dry run).

    :raises JobFailed: the job ended Failed or Stopped.
    :raises Interrupted: Ctrl-C while waiting.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    staged = _stage(spec, control, target, err)
    request = render(staged, target.placement)
    if control.dry_run:
        out.write(json.dumps(dry_run_report(staged, request, target), indent=2, sort_keys=True, default=str) + "\n")
        return JobResult(kind=spec.kind, job_name=spec.job_name, status="DryRun")
    return _run(staged, request, control, target, out, err)


def terminate_like_ctrl_c() -> None:
    """SIGTERM (a closed terminal, ``kill``) stops the job as Ctrl-C does, instead of orphaning it."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, interrupt)
    except ValueError:
        pass  # not the main thread: the caller owns signal handling


def _stage(spec: JobSpec, control: RunControl, target: Target, err: TextIO) -> StagedJob:
    from .aws import translate_errors

    bundle = build_bundle(spec.code, spec.kind)
    try:
        with translate_errors(f"staging files to s3://{target.placement.bucket}"):
            return stage(spec, bundle, target.store, target.placement, upload=not control.dry_run, progress=err)
    finally:
        os.unlink(bundle.path)


def dry_run_report(staged: StagedJob, request: Dict[str, Any], target: Target) -> Dict[str, Any]:
    """What ``--sagemaker-dry-run`` prints: the request and the upload plan."""
    return {
        "kind": staged.spec.kind,
        "job_name": staged.spec.job_name,
        "store": target.store.name,
        "request": request,
        "uploads": [
            {"path": u.local_path, "uri": u.uri, "size": u.size, "staged": u.present, "copy_from": u.copy_from}
            for u in staged.uploads
        ],
        "upload_bytes": sum(u.size for u in staged.uploads if not (u.present or u.copy_from)),
    }


def _run(staged: StagedJob, request: Dict[str, Any], control: RunControl, target: Target, out: TextIO,
         err: TextIO) -> JobResult:
    from .aws import translate_errors
    from .watch import summary_lines, wait

    spec, o = staged.spec, control
    kind, name = spec.kind, spec.job_name
    skipped = sum(1 for u in staged.uploads if u.present)
    copied = sum(1 for u in staged.uploads if u.copy_from)
    sent = sum(u.size for u in staged.uploads if not (u.present or u.copy_from))
    err.write(f"staged {len(staged.uploads)} file(s) to s3://{target.placement.bucket}/{target.placement.prefix} "
              f"({human_bytes(sent)} uploaded, {copied} copied within S3, {skipped} already there)\n")
    with translate_errors(f"creating {kind} job {name}"):
        backend = target.make_backend()
        backend.create(kind, request)
    url = backend.console_url(kind, name)
    err.write(f"created {kind} job {name} ({backend.name})" + (f": {url}" if url else "") + "\n")
    must_wait = o.wait and not o.detach
    if not must_wait and backend.name == "local":
        err.write("the local backend runs the job in this process: waiting for it\n")
        must_wait = True
    if not must_wait:
        result = JobResult(kind=kind, job_name=name, status="InProgress",
                           output_artifacts=output_uris(spec, target.placement), console_url=url)
    else:
        result = wait(backend, kind, name, out=out, err=err, detach=o.detach, metrics=spec.metrics)
    for line in summary_lines(result):
        err.write(line + "\n")
    if isinstance(target.store, LocalStore) and result.output_artifacts:
        # no AWS here: show where the stand-in keeps the S3 URIs above
        err.write(f"  (s3:// URIs above are folders under {target.store.root})\n")
    if o.output_json:
        with open(o.output_json, "w", encoding="utf-8") as fh:
            json.dump(result.to_json(), fh, indent=2, sort_keys=True)
    if result.status not in ("Completed", "InProgress"):
        raise JobFailed(f"{kind} job {name} {result.status.lower()}"
                        + (f": {result.failure_reason}" if result.failure_reason else ""), result)
    if result.status == "Completed":
        with translate_errors(f"downloading the results of {name}"):
            _download(staged, result, control, target, err)
    return result


def _download(staged: StagedJob, result: JobResult, control: RunControl, target: Target, err: TextIO) -> None:
    """``--sagemaker-download-outputs`` and ``--sagemaker-download-model``, after a completed job."""
    o, store = control, target.store
    uris = output_uris(staged.spec, target.placement)
    if o.download_outputs and staged.spec.kind == "processing":
        for out_ch in staged.spec.outputs:
            uri = result.output_artifacts.get(out_ch.name) or uris[out_ch.name]
            if out_ch.local_path:
                files = download_prefix(store, uri if uri.endswith("/") else uri + "/", out_ch.local_path)
                err.write(f"downloaded {len(files)} file(s) of {out_ch.name} to {out_ch.local_path}\n")
    if o.download_outputs and staged.spec.kind == "training" and result.output_data_url:
        # training outputs are folders of /opt/ml/output/data, inside output.tar.gz
        targets = {out_ch.name: out_ch.local_path for out_ch in staged.spec.outputs if out_ch.local_path}
        if targets:
            with _fetched(store, result.output_data_url) as tar:
                for name, folder in targets.items():
                    members = [m for m in tar.getmembers() if m.name.startswith(name + "/")]
                    for member in members:
                        member.name = member.name[len(name) + 1:]
                    _safe_extract(tar, folder, members)
                    err.write(f"downloaded {len(members)} file(s) of {name} to {folder}\n")
    if o.download_model and result.model_artifact_url:
        dest = o.download_model
        with _fetched(store, result.model_artifact_url) as tar:
            _safe_extract(tar, dest)
        err.write(f"unpacked {result.model_artifact_url} into {dest}\n")


@contextlib.contextmanager
def _fetched(store: Store, uri: str) -> Iterator[tarfile.TarFile]:
    """A downloaded ``.tar.gz``, open, and removed afterwards."""
    tmp = tempfile.mkdtemp(prefix="artifact-")
    try:
        archive = os.path.join(tmp, "artifact.tar.gz")
        store.download_file(uri, archive)
        with tarfile.open(archive) as tar:
            yield tar
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _safe_extract(tar: tarfile.TarFile, dest: str, members: Optional[List[tarfile.TarInfo]] = None) -> None:
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

