"""Path declarations and value parsers shared by both job kinds.

``PathArgument`` and ``OPTIONAL`` keep the names the first aws_sagemaker_remote
documented, so scripts written for it keep working. This module is
standard-library only: it ships inside the job.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

__all__ = [
    "OPTIONAL",
    "PathArgument",
    "parse_bool",
    "parse_run",
    "is_s3_uri",
    "TRUTHY",
    "FALSY",
    "IN_JOB",
]

TRUTHY = ("yes", "true", "1", "y", "t", "on")
FALSY = ("no", "false", "0", "n", "f", "off")
#: The ``--sagemaker-run`` value the job's own command line carries: ``main`` runs here, as
#: with ``no``, but the environment is the one the job was given (its request's
#: ``Environment`` and what a configuration command exported), so the keyword
#: ``env=`` defaults are not applied again over it.
IN_JOB = "job"

INPUT_MODES = ("File", "Pipe", "FastFile")
S3_DATA_TYPES = ("S3Prefix", "ManifestFile", "AugmentedManifestFile")
DISTRIBUTIONS = ("FullyReplicated", "ShardedByS3Key")
COMPRESSIONS = ("None", "Gzip")
UPLOAD_MODES = ("EndOfJob", "Continuous")
RECORD_WRAPPERS = ("None", "RecordIO")


class _Optional:
    """Marker for an input with no default: its flag is ``None`` unless given."""

    _instance: Optional["_Optional"] = None

    def __new__(cls) -> "_Optional":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "OPTIONAL"

    def __reduce__(self) -> str:
        return "OPTIONAL"


#: Declare an input that may be left out: ``inputs={"extra": OPTIONAL}``.
OPTIONAL = _Optional()


@dataclass(frozen=True)
class PathArgument:
    """A path declared in ``inputs``, ``outputs`` or ``dependencies``, with its job settings.

    :param local: the default value of the generated flag: a local path, an
        ``s3://`` URI (inputs), or ``None`` for no default.
    :param remote: for outputs, where the job uploads the folder: an ``s3://``
        URI or ``"default"`` (``s3://BUCKET/PREFIX/jobs/<job-name>/output/<name>``).
        For an input without ``local``, an ``s3://`` remote is the flag's default.
    :param optional: the input may be absent (the flag then defaults to ``None``).
    :param mode: input mode: ``File`` or ``Pipe`` (processing), also ``FastFile`` (training);
        ``None`` (default) means ``File`` for processing and ``--sagemaker-input-mode`` for training.
    :param s3_data_type: ``S3Prefix`` (default) or ``ManifestFile``.
    :param distribution: ``FullyReplicated`` (default) or ``ShardedByS3Key`` to give each
        instance a share of the objects.
    :param compression: ``None`` or ``Gzip``.
    :param upload_mode: outputs: ``EndOfJob`` (default) or ``Continuous``.
    :param content_type: training channels: the channel's ``ContentType``.
    :param record_wrapper: training channels: ``None`` or ``RecordIO``.
    :param container_path: processing: the ``LocalPath`` inside the container
        (default ``/opt/ml/processing/{input,output}/<name>``).
    :param help: help text of the generated flag.
    """

    local: Optional[str] = None
    remote: str = "default"
    optional: bool = False
    mode: Optional[str] = None
    s3_data_type: str = "S3Prefix"
    distribution: str = "FullyReplicated"
    compression: str = "None"
    upload_mode: str = "EndOfJob"
    content_type: Optional[str] = None
    record_wrapper: str = "None"
    container_path: Optional[str] = None
    help: Optional[str] = None

    def __post_init__(self) -> None:
        for value, allowed, what in (
            (self.mode or "File", INPUT_MODES, "mode"),
            (self.s3_data_type, S3_DATA_TYPES, "s3_data_type"),
            (self.distribution, DISTRIBUTIONS, "distribution"),
            (self.compression, COMPRESSIONS, "compression"),
            (self.upload_mode, UPLOAD_MODES, "upload_mode"),
            (self.record_wrapper, RECORD_WRAPPERS, "record_wrapper"),
        ):
            if value not in allowed:
                raise ValueError(f"PathArgument {what}={value!r}: allowed values are {', '.join(allowed)}")


def parse_bool(value: Any) -> bool:
    """Parse the truthy/falsy spellings the command line accepts (``yes/no``, ``true/false``, ``1/0``)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUTHY:
        return True
    if text in FALSY:
        return False
    raise ValueError(f"expected one of {'/'.join(TRUTHY[:3])} or {'/'.join(FALSY[:3])}, got {value!r}")


def parse_run(value: Any) -> str:
    """Parse ``--sagemaker-run``: a truthy value means ``yes``, a falsy one ``no``, or ``local``."""
    if value is True:
        return "yes"
    if value is False or value is None:
        return "no"
    text = str(value).strip().lower()
    if text in ("local", IN_JOB):
        return text
    try:
        return "yes" if parse_bool(text) else "no"
    except ValueError:
        raise ValueError(
            f"expected yes (or true/1), no (or false/0) or local, got {value!r}"
        ) from None


def is_s3_uri(value: Any) -> bool:
    """True for strings of the form ``s3://bucket[/key]``."""
    return isinstance(value, str) and value.startswith("s3://") and len(value) > len("s3://")
