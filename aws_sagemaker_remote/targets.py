"""Where a job goes: the store for its files, the backend that runs it, and its placement.

The entry point builds a :class:`Target` and hands it to
:func:`~aws_sagemaker_remote.launch.launch`, which never chooses one itself, so
a test can launch a whole job in-process with any store and backend.

* ``yes``: S3 through boto3 and the SageMaker backend.
* ``yes`` with ``--sagemaker-dry-run`` and no AWS configured: nothing is
  contacted; what only AWS could say (the account, which objects already
  exist) is marked unknown.
* ``local``: the local backend over the local stand-in folder
  (:class:`~aws_sagemaker_remote.store.LocalStore`), so having credentials
  configured never sends a local job to AWS; over S3 when
  ``--sagemaker-store=s3`` asks for it, or (``auto``, the default) when the job
  names ``s3://`` locations and AWS is configured.

This is the only module that decides whether AWS is configured and what a
role name means when none is given.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from .backends.base import Backend
from .errors import UsageError
from .images import is_image_shorthand, needs_sdk, resolve_image, sdk_available
from .spec import AwsSettings, JobSpec, Placement, RunControl
from .store import LocalStore, S3Store, Store
from .transfers import Checks

#: The local stand-in's bucket when none is given.
LOCAL_BUCKET = "sagemaker-local"
#: The role name the local backend shows when none is given (it assumes no role).
LOCAL_ROLE_NAME = "aws-sagemaker-remote-local"


@dataclass(frozen=True)
class Target:
    """The store for the job's files, how to build its backend, and its placement."""

    store: Store
    #: builds the backend when a job is really created (a dry run never needs it)
    make_backend: Callable[[], Backend]
    placement: Placement
    #: what this target could not know (a dry run without AWS): "region", "account",
    #: "role", "image", "existing objects"
    unknown: Tuple[str, ...] = ()


#: Stands for a value only AWS could tell (a dry run without AWS).
UNKNOWN_ACCOUNT = "<unknown-account>"
UNKNOWN_REGION = "<unknown-region>"


class UnknownStore:
    """S3 as a dry run without AWS sees it: nothing can be looked up, nothing is written.

    Every object looks absent, so the upload plan lists everything (at most what
    would be sent); the dry-run report marks it as unknown.
    """

    name = "s3"

    def head(self, uri: str) -> Optional[int]:
        return None

    def list(self, uri: str) -> List[Tuple[str, int]]:
        return []

    def fingerprint(self, uri: str) -> List[Tuple[str, str]]:
        return []

    def list_children(self, uri: str) -> Dict[str, int]:
        return {}

    def upload_file(self, path: str, uri: str, progress: Optional[Callable[[int], None]] = None,
                    sha256: Optional[str] = None, checks: Optional[Checks] = None) -> None:
        raise _no_transfer()

    def put_bytes(self, data: bytes, uri: str, sha256: Optional[str] = None) -> None:
        raise _no_transfer()

    def copy(self, source: str, uri: str) -> None:
        raise _no_transfer()

    def get_bytes(self, uri: str) -> bytes:
        raise _no_transfer()

    def read_if_present(self, uri: str) -> Optional[bytes]:
        return None  # nothing can be read: every blob counts as unknown

    def download_file(self, uri: str, path: str, progress: Optional[Callable[[int], None]] = None) -> None:
        raise _no_transfer()

    def delete(self, uri: str) -> int:
        raise _no_transfer()

    def ensure_bucket(self, bucket: str, region: Optional[str], create: bool = True) -> bool:
        return False

    def created(self, bucket: str) -> bool:
        return False


def _no_transfer() -> RuntimeError:
    return RuntimeError("a dry run without AWS reads and writes no object")


def _no_backend() -> Backend:
    raise RuntimeError("a dry run creates no job")


def default_role_arn(role: Optional[str], account: str, partition: str = "aws") -> str:
    """``role`` as an ARN: an ARN is kept, a name is placed in ``account``; no role → the local name."""
    name = role or LOCAL_ROLE_NAME
    return name if name.startswith("arn:") else f"arn:{partition}:iam::{account}:role/{name}"


def aws_target(aws: AwsSettings, spec: JobSpec, control: RunControl) -> Target:
    """Session, clients, account, bucket and role for a job that uses AWS (``yes``, or ``local`` over S3)."""
    from .aws import (
        account_id,
        make_clients,
        make_session,
        resolve_role,
        resolve_role_arn,
        translate_errors,
    )

    session = make_session(aws.profile, aws.region, aws.assume_role)
    clients = make_clients(session, aws.endpoint_url)
    region = session.region_name or _local_region()
    role_arn = aws.role if (aws.role or "").startswith("arn:") else None
    if aws.bucket and role_arn:
        account = role_arn.split(":")[4]  # nothing to look up: saves an STS client and a request
    else:
        with translate_errors("looking up the AWS account"):
            account = account_id(clients)
    bucket = aws.bucket or f"sagemaker-{region}-{account}"
    store = S3Store(clients.s3)
    make_backend: Callable[[], Backend]
    if control.run == "yes":
        from .backends.sagemaker import SageMakerBackend

        make_backend = functools.partial(SageMakerBackend.from_clients, clients)
        image = resolve_image(aws.image, region, spec.kind.name, spec.resources.instance_type)
        if not aws.role:  # choose_target refuses this before any request; kept for direct callers
            raise _role_required()
        role = resolve_role_arn(clients, aws.role)  # a name is looked up: IAM knows its path and partition
    else:
        make_backend = local_backend(control, store, region, {
            "name": "s3", "profile": aws.profile, "region": region, "assume_role": aws.assume_role,
            "endpoint_url": aws.endpoint_url})
        image = aws.image
        role = resolve_role(aws.role, account, region) if aws.role else default_role_arn(None, account)
    # checked (and created) at the first request that needs it: a warm launch's first request,
    # the HEAD of its code manifest, proves the bucket exists
    store.expect_bucket(bucket, region, create=not control.dry_run)
    return Target(store, make_backend, Placement(role_arn=role, image_uri=image, bucket=bucket, prefix=aws.prefix,
                                                 region=region))


def local_target(aws: AwsSettings, control: RunControl, store: Optional[LocalStore] = None) -> Target:
    """The local backend over the local stand-in store (no AWS at all)."""
    from .backends.local import LOCAL_ACCOUNT, LOCAL_REGION

    store = store or LocalStore()
    bucket = aws.bucket or LOCAL_BUCKET
    store.ensure_bucket(bucket, None, create=not control.dry_run)
    region = aws.region or LOCAL_REGION
    placement = Placement(role_arn=default_role_arn(aws.role, LOCAL_ACCOUNT), image_uri=aws.image, bucket=bucket,
                          prefix=aws.prefix, region=region)
    return Target(store, local_backend(control, store, region, {"name": "local", "root": store.root}), placement)


def local_backend(control: RunControl, store: Store, region: str, described: Dict[str, Any]) -> Callable[[], Backend]:
    """How to build the local backend: in this process, or, when the launcher does not wait
    (``--sagemaker-wait=no``, ``--sagemaker-detach``), in a runner process that outlives it and
    rebuilds the store from ``described``."""
    from .backends.local import LocalBackend

    if control.wait and not control.detach:
        return functools.partial(LocalBackend, store, region=region)
    from .backends.local.runner import DetachedLocalBackend

    return functools.partial(DetachedLocalBackend, described, region)


def _local_region() -> str:
    from .backends.local import LOCAL_REGION

    return LOCAL_REGION


def offline_target(aws: AwsSettings, spec: JobSpec) -> Target:
    """What a dry run can tell without AWS: no request is sent, and what only AWS knows is marked unknown.

    The account is known from a role ARN; otherwise it is :data:`UNKNOWN_ACCOUNT`
    in the default bucket and the role ARN. The region comes from the option or the
    AWS config files (read, not requested). Which objects already exist is unknown.
    """
    import boto3
    from botocore.exceptions import ProfileNotFound

    from .aws import check_region, missing_profile, resolve_role

    unknown: List[str] = []
    # AWS_REGION first, as make_session reads it (boto3 itself reads only AWS_DEFAULT_REGION)
    explicit = aws.region or os.environ.get("AWS_REGION") or None
    try:
        region = boto3.Session(profile_name=aws.profile, region_name=explicit).region_name
    except ProfileNotFound:
        raise missing_profile(aws.profile) from None
    if region:
        check_region(region, "--sagemaker-region" if aws.region else
                     "AWS_REGION / AWS_DEFAULT_REGION (or the profile's region)")
    else:
        region = UNKNOWN_REGION
        unknown.append("region")
    role = aws.role or ""
    account = role.split(":")[4] if role.startswith("arn:") else UNKNOWN_ACCOUNT
    if account == UNKNOWN_ACCOUNT:
        unknown.append("account")
    if not role.startswith("arn:"):
        # only IAM knows a named role's real path and ARN (GetRole): the one shown is built from the name
        unknown.append("role")
    image = aws.image
    if is_image_shorthand(image):
        if region == UNKNOWN_REGION:
            unknown.append("image")
        else:
            image = resolve_image(image, region, spec.kind.name, spec.resources.instance_type)
    unknown.append("existing objects")
    from .shape import may_be_file

    if any(may_be_file(channel) for channel in spec.inputs):
        unknown.append("input shapes")  # whether an s3:// input names one object (a file) or a folder
    bucket = aws.bucket or f"sagemaker-{region}-{account}"
    placement = Placement(role_arn=resolve_role(role, account, region), image_uri=image, bucket=bucket,
                          prefix=aws.prefix, region=None if region == UNKNOWN_REGION else region)
    return Target(UnknownStore(), _no_backend, placement, tuple(unknown))


def _role_required() -> UsageError:
    return UsageError("a role is needed to launch on SageMaker: an IAM role ARN or name that "
                      "SageMaker can assume", flag="--sagemaker-role")


def choose_target(spec: JobSpec, control: RunControl) -> Target:
    """The target the command line asks for (see the module's description)."""
    from .aws import aws_available

    aws = control.aws
    if control.run == "yes":
        if not aws.role:  # a dry run too: the request it shows would not be the one sent
            raise _role_required()
        if is_image_shorthand(aws.image) and not sdk_available():
            raise needs_sdk(aws.image)  # before anything is uploaded
        if control.dry_run and not aws_available():
            return offline_target(aws, spec)
        return aws_target(aws, spec, control)
    if control.store == "s3" or (control.store == "auto" and names_s3_locations(spec) and aws_available()):
        return aws_target(aws, spec, control)
    return local_target(aws, control)


def names_s3_locations(spec: JobSpec) -> bool:
    """True when the job reads or writes an ``s3://`` location the user named (not a default)."""
    locations = [out.location for out in spec.outputs]
    if spec.training is not None:
        locations.append(spec.training.model_output)
        if spec.training.checkpoint is not None:
            locations.append(spec.training.checkpoint)
    return any(ch.is_s3 for ch in spec.inputs) or any(loc.uri is not None for loc in locations)
