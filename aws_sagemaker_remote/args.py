"""Path declarations and value parsers shared by both job kinds.

``PathArgument`` and ``OPTIONAL`` keep the names the first aws_sagemaker_remote
documented, so scripts written for it keep working. This module is
standard-library only: it ships inside the job.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, replace
from typing import Any, Dict, Optional, Sequence, Tuple

from .errors import DeclarationError
from .values import (  # the plain run's share, re-exported under the names scripts import
    FALSY,
    IN_JOB,
    S3_URI_MAX,
    S3_URI_REGEX,
    TRUTHY,
    bucket_problem,
    is_s3_uri,
    name_problem,
    parse_bool,
    parse_run,
    s3_uri_problem,
)

__all__ = [
    "FALSY",
    "IN_JOB",
    "OPTIONAL",
    "S3_URI_MAX",
    "S3_URI_PATTERN",
    "TRUTHY",
    "PathArgument",
    "bucket_problem",
    "is_s3_uri",
    "name_problem",
    "parse_bool",
    "parse_run",
    "s3_uri_problem",
]

INPUT_MODES = ("File", "Pipe", "FastFile")
S3_DATA_TYPES = ("S3Prefix", "ManifestFile", "AugmentedManifestFile")
DISTRIBUTIONS = ("FullyReplicated", "ShardedByS3Key")
COMPRESSIONS = ("None", "Gzip")
UPLOAD_MODES = ("EndOfJob", "Continuous")
RECORD_WRAPPERS = ("None", "RecordIO")
#: ``AttributeNames`` limits (botocore's service model: 0-16 names of 1-256 characters).
MAX_ATTRIBUTES = 16
MAX_ATTRIBUTE_LENGTH = 256


def _original_modes() -> Dict[str, Dict[str, str]]:
    # The first aws-sagemaker-remote spelt a channel's whole setting as one mode name: every
    # manifest mode streamed (Pipe), "...Folder" meant a manifest (one per job here), and
    # "...Wrapped" added RecordIO framing; EndOfJob/Continuous were output upload modes.
    table: Dict[str, Dict[str, str]] = {
        "EndOfJob": {"upload_mode": "EndOfJob"},
        "Continuous": {"upload_mode": "Continuous"},
    }
    streamed = {
        "Pipe": "S3Prefix",
        "ManifestFile": "ManifestFile",
        "ManifestFolder": "ManifestFile",
        "AugmentedManifestFile": "AugmentedManifestFile",
        "AugmentedManifestFolder": "AugmentedManifestFile",
        "PipeAugmentedManifest": "AugmentedManifestFile",
    }
    for name, data_type in streamed.items():
        for suffix, wrapper in (("", None), ("Wrapped", "RecordIO")):
            entry = {"mode": "Pipe", "s3_data_type": data_type}
            if wrapper:
                entry["record_wrapper"] = wrapper
            table.setdefault(name + suffix, entry)
    del table["Pipe"]  # the input mode of today's spelling, combinable with any s3_data_type
    return table


#: The first project's ``PathArgument(mode=...)`` names → the settings they stand for.
ORIGINAL_MODES: Dict[str, Dict[str, str]] = _original_modes()


class OptionalInput:
    """Marker for an input with no default: its flag is ``None`` unless given."""

    _instance: Optional["OptionalInput"] = None

    def __new__(cls) -> "OptionalInput":  # noqa: PYI034 - a singleton, and typing.Self needs Python 3.11
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "OPTIONAL"

    def __reduce__(self) -> str:
        return "OPTIONAL"

    def copy(self, **changes: Any) -> "PathArgument":
        """An optional ``PathArgument`` with these fields (the first project's ``OPTIONAL.copy(mode=...)``)."""
        return PathArgument(**{"optional": True, **changes})


#: Declare an input that may be left out: ``inputs={"extra": OPTIONAL}``.
OPTIONAL = OptionalInput()


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
    :param attributes: training channels with ``s3_data_type='AugmentedManifestFile'``: the
        channel's ``AttributeNames``, the keys of each manifest line streamed, in this order.

    ``mode`` also takes the first project's names, each standing for several settings:
    ``ManifestFile``, ``AugmentedManifestFile``, ``ManifestFolder``, ``AugmentedManifestFolder``
    and ``PipeAugmentedManifest`` (Pipe with that ``s3_data_type``), the same with ``Wrapped``
    appended (``record_wrapper='RecordIO'``), ``PipeWrapped``, and for outputs ``EndOfJob`` and
    ``Continuous`` (``upload_mode``). See :data:`ORIGINAL_MODES`.
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
    #: a list or tuple of names; stored as a tuple
    attributes: Optional[Sequence[str]] = None

    def __post_init__(self) -> None:
        if self.mode in ORIGINAL_MODES:
            defaults = {"mode": None, "s3_data_type": "S3Prefix", "record_wrapper": "None", "upload_mode": "EndOfJob"}
            settings = {"mode": None, **ORIGINAL_MODES[self.mode]}
            for key, value in settings.items():
                current = getattr(self, key) if key != "mode" else None
                if current not in (defaults[key], value):
                    raise declaration_error(f"PathArgument mode={self.mode!r} means {key}={value!r}, "
                                            f"which contradicts {key}={current!r}")
                object.__setattr__(self, key, value)
        if self.attributes is not None:
            object.__setattr__(self, "attributes", _attribute_names(self.attributes))
            if self.s3_data_type != "AugmentedManifestFile":
                raise declaration_error(f"PathArgument attributes={list(self.attributes)!r}: AttributeNames "
                                        f"apply to s3_data_type='AugmentedManifestFile' (mode="
                                        f"'AugmentedManifestFile' or 'PipeAugmentedManifest'), not "
                                        f"{self.s3_data_type!r}")
        for value, allowed, what in (
            (self.mode or "File", INPUT_MODES, "mode"),
            (self.s3_data_type, S3_DATA_TYPES, "s3_data_type"),
            (self.distribution, DISTRIBUTIONS, "distribution"),
            (self.compression, COMPRESSIONS, "compression"),
            (self.upload_mode, UPLOAD_MODES, "upload_mode"),
            (self.record_wrapper, RECORD_WRAPPERS, "record_wrapper"),
        ):
            if value not in allowed:
                names = allowed + tuple(ORIGINAL_MODES) if what == "mode" else allowed
                raise declaration_error(f"PathArgument {what}={value!r}: allowed values are {', '.join(names)}")

    def copy(self, **changes: Any) -> "PathArgument":
        """A copy with some fields changed (``OPTIONAL.copy(local="data")``), as the first project had."""
        return replace(self, **changes)


def _attribute_names(value: Any) -> Tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, Sequence) or not all(isinstance(n, str) for n in names):
        raise declaration_error(f"PathArgument attributes={value!r}: expected a list of attribute names")
    if not 1 <= len(names) <= MAX_ATTRIBUTES or not all(1 <= len(n) <= MAX_ATTRIBUTE_LENGTH for n in names):
        raise declaration_error(f"PathArgument attributes={list(names)!r}: allowed: 1-{MAX_ATTRIBUTES} names "
                                f"of 1-{MAX_ATTRIBUTE_LENGTH} characters (the channel's AttributeNames)")
    return tuple(names)


# --- declaration errors raised in a script's own module code -----------------------------

class PathArgumentError(DeclarationError, ValueError):
    """A ``PathArgument`` keyword has a value that is not allowed (also a ``ValueError``)."""


def _usage_hook(previous: Any) -> Any:
    def hook(kind: Any, value: BaseException, tb: Any) -> None:
        if isinstance(value, DeclarationError):
            # what argparse does for a bad flag: one line and exit code 2, no traceback
            prog = sys.argv[0].rsplit("/", 1)[-1] if sys.argv and sys.argv[0] else "python"
            sys.stderr.write(f"{prog}: error: {value}\n")
            sys.stderr.flush()
            raise SystemExit(2)
        previous(kind, value, tb)

    hook.usage_hook = True  # type: ignore[attr-defined]
    return hook


def declaration_error(message: str) -> PathArgumentError:
    """The error for a bad declaration made at import time (``PathArgument(mode="Bogus")`` in the
    script's module code, before any entry function runs). If nothing catches it, the
    interpreter prints one line and exits 2 instead of a traceback, as for a bad flag."""
    if _in_script_module_code() and not getattr(sys.excepthook, "usage_hook", False):
        sys.excepthook = _usage_hook(sys.excepthook)
    return PathArgumentError(message)


def _in_script_module_code(depth: int = 3) -> bool:
    """True when the declaration is made by the running script's module code (or a function it
    calls directly), where nothing of ours can catch the error; library and test code that build a
    ``PathArgument`` get a plain exception and no change to ``sys.excepthook``."""
    frame = sys._getframe(1)
    while frame is not None and (frame.f_globals.get("__name__", "").startswith(__package__ or "aws_sagemaker_remote")
                                 or frame.f_code.co_filename == "<string>"):
        frame = frame.f_back  # type: ignore[assignment]
    for _ in range(depth):
        if frame is None:
            return False
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == "__main__":
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


# --- validators for names and S3 locations (pure; the callers name the flag) ---------------

#: The API's ``S3Uri`` pattern (ProcessingS3Input, S3DataSource, ...), compiled.
S3_URI_PATTERN = re.compile(S3_URI_REGEX)
