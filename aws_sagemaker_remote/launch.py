"""The remote path: stage → render → backend → watch, for ``yes`` and ``local``.

Imported only when ``--sagemaker-run`` is ``yes`` or ``local``; this is where
boto3 may load. :func:`launch` gets the planned job, the launch controls and
its :class:`~aws_sagemaker_remote.targets.Target` (store, backend, placement);
each step gets a value and returns a new one, and this module only wires them
together, reports, and downloads results when asked.
"""
from __future__ import annotations

import functools
import json
import os
import signal
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO, Tuple

from .bundle import bundle_entries, listing as bundle_listing
from .errors import JobFailed, UsageError
from .jobs import follow_command, record_launch, with_launcher_tag
from .leftovers import sweep
from .render import render
from .requirements import mask_url
from .spec import JobResult, JobSpec, Placement, RunControl, StagedJob, output_uris
from .stage import human_bytes, stage
from .store import LocalStore
from .targets import Target


def launch(
    spec: JobSpec,
    control: RunControl,
    target: Target,
    *,
    out: Optional[TextIO] = None,
    err: Optional[TextIO] = None,
    read_value: bool = False,
    code: Optional[Sequence[Tuple[str, str]]] = None,
) -> JobResult:
    """Run ``spec`` as a job on ``target`` and return its result (``DryRun`` for a dry run).

    The caller has checked the code (:func:`~aws_sagemaker_remote.bundle.check_code`) before it chose
    ``target``, so a bundle that cannot be shipped stops before any request.

    :raises UsageError: bad input (nothing uploaded or created).
    :raises JobFailed: the job ended Failed or Stopped.
    :raises Interrupted: Ctrl-C while waiting.

    :param read_value: read what ``main`` returned in the job back into ``JobResult.value``
        (see :mod:`~aws_sagemaker_remote.result`).
    :param code: the bundle's entries as the caller's check returned them
        (:func:`~aws_sagemaker_remote.bundle.check_code`, after :func:`~aws_sagemaker_remote.leftovers.sweep`),
        so the folder is not walked twice; collected here when not given.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    sweep()  # bundles and job folders left by launches that were killed
    exporting = bool(control.export_ack or control.export_kfp)
    if exporting:
        check_exports(spec, control)
    staged = _stage(spec, control, target, err, exporting, code)
    request = with_launcher_tag(render(staged, target.placement))
    if control.dry_run:
        report = dry_run_report(staged, request, control, target)
        out.write(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
        if exporting:
            err.write("dry run: nothing uploaded and no file written\n")
        return JobResult(kind=spec.kind.name, job_name=spec.job_name, status="DryRun")
    if exporting:
        return _export(staged, request, control, target, err)
    return _run(staged, request, control, target, out, err, read_value)


def check_exports(spec: JobSpec, control: RunControl) -> None:
    """What refuses an export before anything is staged: a training ACK export needs script mode
    (the ``TrainingJob`` resource has no entrypoint fields), a KFP export the ``kfp`` package."""
    import importlib.util

    from .export import ack, kfp

    refusal = spec.kind.ack_plan_refusal(spec) if control.export_ack else None
    if refusal:
        raise UsageError(refusal, flag=ack.FLAG)
    if control.export_kfp and importlib.util.find_spec("kfp") is None:
        raise UsageError(kfp.NEEDS_KFP, flag=kfp.FLAG)


def export_documents(staged: StagedJob, request: Dict[str, Any], control: RunControl,
                     placement: Placement) -> Dict[str, Callable[[], str]]:
    """Path → a function that writes the export there, for each export asked for; the documents are
    built here, so a refused request raises before anything is written (or, run on the upload plan,
    uploaded)."""
    from .export.ack import ack_manifest, write_ack_manifest
    from .export.kfp import kfp_component_spec, write_kfp_component

    kind = staged.spec.kind.name
    writers: Dict[str, Callable[[], str]] = {}
    if control.export_ack:
        path = control.export_ack
        ack_manifest(request, kind, region=placement.region)
        writers[path] = functools.partial(write_ack_manifest, path, request, kind, region=placement.region)
    if control.export_kfp:
        path = control.export_kfp
        kfp_component_spec(request, kind, region=placement.region or "",
                           base_job_name=staged.spec.base_job_name or staged.spec.job_name)
        writers[path] = functools.partial(write_kfp_component, path, staged, request,
                                          region=placement.region or "")
    return writers


def _export(staged: StagedJob, request: Dict[str, Any], control: RunControl, target: Target,
            err: TextIO) -> JobResult:
    """Write the exports of a staged job instead of creating it."""
    spec = staged.spec
    sent = sum(u.size for u in staged.uploads if not (u.present or u.copy_from))
    err.write(f"staged {len(staged.uploads)} file(s) to s3://{target.placement.bucket}/{target.placement.prefix} "
              f"({human_bytes(sent)} uploaded); no job created\n")
    for path, write in export_documents(staged, request, control, target.placement).items():
        write()
        what = "Kubeflow Pipelines component" if path == control.export_kfp else "ACK resource"
        err.write(f"wrote the {what} of {spec.kind.name} job {spec.job_name} to {path}\n")
    return JobResult(kind=spec.kind.name, job_name=spec.job_name, status="Exported")


def terminate_like_ctrl_c() -> None:
    """SIGTERM (a closed terminal, ``kill``) stops the job as Ctrl-C does, instead of orphaning it."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, interrupt)
    except ValueError:
        pass  # not the main thread: the caller owns signal handling


def _stage(spec: JobSpec, control: RunControl, target: Target, err: TextIO, exporting: bool = False,
           code: Optional[Sequence[Tuple[str, str]]] = None) -> StagedJob:
    from .aws import translate_errors

    if code is None:
        notes: List[str] = []
        code = bundle_entries(spec.code, notes)
        for note in notes:  # files left out on purpose (links leading out of their folder)
            print(note, file=sys.stderr)
    if control.dry_run:  # what would be shipped, before anything is
        err.writelines(bundle_listing([(name, os.path.getsize(path)) for name, path in code]))
        err.writelines(f"package index: {mask_url(url)} ({key}, from this machine's pip/uv configuration)\n"
                       for key, url in spec.code.package_indexes)
    with translate_errors(f"staging files to s3://{target.placement.bucket}"):
        if exporting and not control.dry_run:
            # the exported documents, built from the upload plan first: a refusal uploads nothing
            planned = stage(spec, code, target.store, target.placement, upload=False)
            export_documents(planned, render(planned, target.placement), control, target.placement)
        return stage(spec, code, target.store, target.placement, upload=not control.dry_run, progress=err)


#: What the dry run prints instead of an environment variable's value.
MASK = "***"


def dry_run_report(staged: StagedJob, request: Dict[str, Any], control: RunControl,
                   target: Target) -> Dict[str, Any]:
    """What ``--sagemaker-dry-run`` prints: the request (environment values masked), the upload
    plan, where option values came from, and what could not be known without AWS."""
    shown = dict(request)
    if "Environment" in shown:  # values may be secrets; the names are what one checks
        shown["Environment"] = {key: MASK for key in shown["Environment"]}
    objects_known = "existing objects" not in target.unknown
    report: Dict[str, Any] = {
        "kind": staged.spec.kind.name,
        "job_name": staged.spec.job_name,
        "store": target.store.name,
        "request": shown,
        "uploads": [
            {"path": u.local_path, "uri": u.uri, "size": u.size,
             "staged": u.present if objects_known else "unknown", "copy_from": u.copy_from}
            for u in staged.uploads
        ],
        "upload_bytes": sum(u.size for u in staged.uploads if not (u.present or u.copy_from)),
    }
    if target.unknown:
        report["unknown"] = list(target.unknown)
    if not objects_known:
        report["upload_bytes_note"] = ("at most: without S3, which of these objects are already staged "
                                       "is unknown")
    if control.sources:
        report["sources"] = dict(control.sources)
    return report


def _run(staged: StagedJob, request: Dict[str, Any], control: RunControl, target: Target, out: TextIO,
         err: TextIO, read_value: bool = False) -> JobResult:
    from .aws import translate_errors
    from .watch import summary_lines, wait

    spec, o = staged.spec, control
    kind, name = spec.kind.name, spec.job_name
    skipped = sum(1 for u in staged.uploads if u.present)
    copied = sum(1 for u in staged.uploads if u.copy_from)
    sent = sum(u.size for u in staged.uploads if not (u.present or u.copy_from))
    err.write(f"staged {len(staged.uploads)} file(s) to s3://{target.placement.bucket}/{target.placement.prefix} "
              f"({human_bytes(sent)} uploaded, {copied} copied within S3, {skipped} already there)\n")
    with translate_errors(f"creating {kind} job {name}"):
        backend = target.make_backend()
        backend.create(kind, request)
    record_launch(kind, request, spec.base_job_name or name, backend=backend.name,
                  region=str(getattr(backend, "region", "") or o.aws.region or ""), store=target.store)
    url = backend.console_url(kind, name)
    err.write(f"created {kind} job {name} ({backend.name})" + (f": {url}" if url else "") + "\n")
    if backend.name == "local":
        for note in spec.kind.not_emulated_locally(request):
            err.write(f"note: the local backend accepts and ignores {note}\n")
    must_wait = o.wait and not o.detach
    if not must_wait and not backend.outlives_caller:
        err.write(f"the {backend.name} backend runs the job in this process: waiting for it\n")
        must_wait = True
    if not must_wait:
        result = JobResult(kind=kind, job_name=name, status="InProgress",
                           output_artifacts=output_uris(spec, target.placement), console_url=url)
        # a local job is found on this machine by its name alone
        here = backend.name == "local"
        follow = follow_command(name, region=None if here else getattr(backend, "region", None),
                                profile=None if here else o.aws.profile)
        err.write(f"follow it with: {follow}\n")
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
        ended = f"{kind} job {name} {result.status.lower()}"
        # the summary above holds the reason: a command's error line need not repeat it
        raise JobFailed(ended + (f": {result.failure_reason}" if result.failure_reason else ""), result,
                        brief=ended + (" (reason above)" if result.failure_reason else ""))
    if result.status == "Completed":
        with translate_errors(f"downloading the results of {name}"):
            spec.kind.download(staged, result, control, target.store, output_uris(spec, target.placement), err)
        if read_value:
            from dataclasses import replace

            from .result import read_value as read

            with translate_errors(f"reading the return value of {name}"):
                result = replace(result, value=read(spec, result, target.store, output_uris(spec, target.placement)))
    return result
