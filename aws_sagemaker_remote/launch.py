"""The remote path: plan → stage → render → backend → watch, for ``yes`` and ``local``.

Imported only when ``--sagemaker-run`` is ``yes`` or ``local``; this is where
boto3 may load. Each step gets a value and returns a new one; this module only
wires them together and decides which store and backend to use:

* ``yes``: S3 through boto3, the SageMaker backend.
* ``local``: the local backend; S3 through boto3 when an endpoint
  (``AWS_ENDPOINT_URL``) or credentials are configured, otherwise the local
  stand-in folder (:class:`~aws_sagemaker_remote.store.LocalStore`), so it works
  on a machine with no AWS account.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import functools
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, TextIO

from .backends.base import Backend
from .backends.local import LOCAL_ACCOUNT, LOCAL_REGION, LocalBackend
from .bundle import build_bundle
from .errors import JobFailed, UsageError
from .flags import Declaration
from .jobs import follow_command, record_launch, with_launcher_tag
from .options import CommonOptions, TrainingOptions
from .plan import plan_job
from .render import render
from .spec import JobResult, JobSpec, StagedJob
from .stage import human_bytes, stage
from .store import LocalStore, S3Store, Store, download_prefix

LOCAL_BUCKET = "sagemaker-local"

_SHORTHAND = re.compile(r"^([a-z0-9][a-z0-9-]*):([A-Za-z0-9._-]+)$")


@dataclass(frozen=True)
class Target:
    """Where a job goes: the store for its files, the backend that will run it, and names."""

    store: Store
    #: builds the backend when a job is really created (a dry run never needs it)
    make_backend: Callable[[], Backend]
    region: str
    account: str
    bucket: str
    role_arn: str
    image_uri: str


def is_image_shorthand(image: str) -> bool:
    """``NAME:VERSION`` without a registry (every ECR URI has a ``/``)."""
    return "/" not in image and bool(_SHORTHAND.match(image))


def resolve_image(image: str, region: str, kind: str, instance: str) -> str:
    """A full image URI; framework shorthands are looked up with the sagemaker SDK."""
    if not is_image_shorthand(image):
        return image
    framework, version = _SHORTHAND.match(image).groups()  # type: ignore[union-attr]
    try:
        try:
            from sagemaker.core import image_uris  # SDK v3
        except ImportError:
            from sagemaker import image_uris  # type: ignore[no-redef]  # SDK v2
        scope = "training" if kind == "training" else "processing"
        return str(image_uris.retrieve(framework, region=region, version=version, instance_type=instance,
                                       image_scope=scope))
    except ImportError:
        raise _needs_sdk(image) from None
    except Exception as exc:  # the SDK raises ValueError and friends for unknown names/versions
        raise UsageError(f"cannot resolve {image!r} in {region}: {exc}", flag="--sagemaker-image") from None


def _needs_sdk(image: str) -> UsageError:
    return UsageError(f"{image!r} is a framework shorthand; install the SDK extra "
                      f"(pip install 'aws-sagemaker-remote[sdk]') or pass a full image URI", flag="--sagemaker-image")


def _aws_available() -> bool:
    if os.environ.get("AWS_ENDPOINT_URL"):
        return True
    import boto3

    return boto3.Session().get_credentials() is not None


def aws_target(o: CommonOptions, kind: str, backend_kind: str) -> Target:
    """Session, clients, account, bucket and role for a job that uses AWS (``yes``, or ``local`` with AWS)."""
    from .aws import account_id, make_clients, make_session, resolve_role, translate_errors

    session = make_session(o.profile, o.region, o.assume_role)
    clients = make_clients(session, o.endpoint_url)
    region = session.region_name or LOCAL_REGION
    role_arn = o.role if (o.role or "").startswith("arn:") else None
    if o.bucket and role_arn:
        account = role_arn.split(":")[4]  # nothing to look up: saves an STS client and a request
    else:
        with translate_errors("looking up the AWS account"):
            account = account_id(clients)
    bucket = o.bucket or f"sagemaker-{region}-{account}"
    store = S3Store(clients.s3)
    make_backend: Callable[[], Backend]
    if backend_kind == "yes":
        from .backends.sagemaker import SageMakerBackend

        make_backend = functools.partial(SageMakerBackend.from_clients, clients)
        image = resolve_image(o.image, region, kind, o.instance)
        role = resolve_role(o.role, account, region) if o.role else f"arn:aws:iam::{account}:role/ROLE-REQUIRED"
    else:
        make_backend = functools.partial(LocalBackend, store, region=region)
        image = o.image
        role = resolve_role(o.role, account, region) if o.role else f"arn:aws:iam::{account}:role/aws-sagemaker-remote-local"
    with translate_errors(f"checking bucket {bucket}"):
        store.ensure_bucket(bucket, region, create=not o.dry_run)
    return Target(store, make_backend, region, account, bucket, role, image)


def local_target(o: CommonOptions) -> Target:
    """The local backend over the local stand-in store (no AWS at all)."""
    store = LocalStore()
    bucket = o.bucket or LOCAL_BUCKET
    store.ensure_bucket(bucket, None, create=not o.dry_run)
    account = LOCAL_ACCOUNT
    name = o.role or "aws-sagemaker-remote-local"
    role = name if name.startswith("arn:") else f"arn:aws:iam::{account}:role/{name}"
    region = o.region or LOCAL_REGION
    return Target(store, functools.partial(LocalBackend, store, region=region), region, account, bucket, role,
                  o.image)


def choose_target(o: CommonOptions, kind: str) -> Target:
    if o.run == "yes":
        if not o.role and not o.dry_run:
            raise UsageError("a role is needed to launch on SageMaker: an IAM role ARN or name that "
                             "SageMaker can assume", flag="--sagemaker-role")
        if is_image_shorthand(o.image) and importlib.util.find_spec("sagemaker") is None:
            raise _needs_sdk(o.image)  # before anything is uploaded
        return aws_target(o, kind, "yes")
    if _aws_available():
        return aws_target(o, kind, "local")
    return local_target(o)


def launch(
    decl: Declaration,
    parser: argparse.ArgumentParser,
    namespace: argparse.Namespace,
    options: CommonOptions,
    argv: Sequence[str],
    *,
    out: Optional[TextIO] = None,
    err: Optional[TextIO] = None,
) -> JobResult:
    """Run the script as a job (``--sagemaker-run=yes`` or ``local``) and return its result.

    :raises UsageError: bad input (nothing uploaded or created).
    :raises JobFailed: the job ended Failed or Stopped.
    :raises Interrupted: Ctrl-C while waiting.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    _terminate_like_ctrl_c()
    now = _dt.datetime.now(_dt.timezone.utc)
    spec = plan_job(decl, namespace, options, argv, parser, now=now, token=secrets.token_hex(2))
    target = choose_target(options, spec.kind)
    staged = _stage(spec, target, err)
    request = with_launcher_tag(render(staged))
    if options.dry_run:
        out.write(json.dumps(dry_run_report(staged, request, target), indent=2, sort_keys=True, default=str) + "\n")
        return JobResult(kind=spec.kind, job_name=spec.job_name, status="DryRun")
    return _run(staged, request, target, out, err)


def _terminate_like_ctrl_c() -> None:
    """SIGTERM (a closed terminal, ``kill``) stops the job as Ctrl-C does, instead of orphaning it."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, interrupt)
    except ValueError:
        pass  # not the main thread: the caller owns signal handling


def _stage(spec: JobSpec, target: Target, err: TextIO) -> StagedJob:
    from .aws import translate_errors

    bundle = build_bundle(spec.code, spec.kind)
    try:
        with translate_errors(f"staging files to s3://{target.bucket}"):
            return stage(spec, bundle, target.store, bucket=target.bucket, prefix=spec.options.prefix,
                         region=target.region, role_arn=target.role_arn, image_uri=target.image_uri,
                         dry_run=spec.options.dry_run, progress_stream=err)
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


def _run(staged: StagedJob, request: Dict[str, Any], target: Target, out: TextIO, err: TextIO) -> JobResult:
    from .aws import translate_errors
    from .watch import summary_lines, wait

    spec, o = staged.spec, staged.spec.options
    kind, name = spec.kind, spec.job_name
    skipped = sum(1 for u in staged.uploads if u.present)
    copied = sum(1 for u in staged.uploads if u.copy_from)
    sent = sum(u.size for u in staged.uploads if not (u.present or u.copy_from))
    err.write(f"staged {len(staged.uploads)} file(s) to s3://{target.bucket}/{staged.prefix} "
              f"({human_bytes(sent)} uploaded, {copied} copied within S3, {skipped} already there)\n")
    with translate_errors(f"creating {kind} job {name}"):
        backend = target.make_backend()
        backend.create(kind, request)
    record_launch(kind, request, spec.base_job_name or name, backend=backend.name, region=target.region,
                  store=target.store)
    url = backend.console_url(kind, name)
    err.write(f"created {kind} job {name} ({backend.name})" + (f": {url}" if url else "") + "\n")
    must_wait = o.wait and not o.detach
    if not must_wait and backend.name == "local":
        err.write("the local backend runs the job in this process: waiting for it\n")
        must_wait = True
    if not must_wait:
        result = JobResult(kind=kind, job_name=name, status="InProgress", output_artifacts=dict(staged.output_uris),
                           console_url=url)
        err.write(f"follow it with: {follow_command(name, region=target.region, profile=o.profile)}\n")
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
            _download(staged, result, target.store, err)
    return result


def _download(staged: StagedJob, result: JobResult, store: Store, err: TextIO) -> None:
    """``--sagemaker-download-outputs`` and ``--sagemaker-download-model``, after a completed job."""
    o = staged.spec.options
    if o.download_outputs and staged.spec.kind == "processing":
        for out_ch in staged.spec.outputs:
            uri = result.output_artifacts.get(out_ch.name) or staged.output_uris[out_ch.name]
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
    if isinstance(o, TrainingOptions) and o.download_model and result.model_artifact_url:
        dest = os.path.abspath(o.download_model)
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

