"""Value parsers and validators with no dependencies: the plain local run's share of the package.

A run without ``--sagemaker-*`` flags (see :mod:`~aws_sagemaker_remote.quick`) reads option
keywords, checks paths and S3 locations with these functions and nothing heavier, so it costs
next to nothing. :mod:`~aws_sagemaker_remote.args` and :mod:`~aws_sagemaker_remote.options`
re-export them under their old names; the ones here are the same objects. Standard library
only (this module ships inside the job).
"""
from __future__ import annotations

import re
from typing import Any, Iterable, List, Mapping, Optional, Pattern, Tuple

TRUTHY = ("yes", "true", "1", "y", "t", "on")
FALSY = ("no", "false", "0", "n", "f", "off")
#: The ``--sagemaker-run`` value the job's own command line carries: ``main`` runs here, as
#: with ``no``, but the environment is the one the job was given (its request's
#: ``Environment`` and what a configuration command exported), so the keyword
#: ``env=`` defaults are not applied again over it.
IN_JOB = "job"


# --- option values (keyword values and command-line strings) ---------------------------------

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


def _text(value: Any) -> str:
    """A string option that must have a value (an empty one would reach the request)."""
    if value is None or str(value).strip() == "":
        raise ValueError("must not be empty")
    return str(value)


def _opt_str(value: Any) -> Optional[str]:
    if value is None:
        return None
    text = str(value)
    return text if text != "" else None


def _opt_int(value: Any) -> Optional[int]:
    if value is None or value == "":
        return None
    return _int(value)


def _int(value: Any) -> int:
    if isinstance(value, bool):
        # every converter here reports bad input as ValueError; callers turn it into a usage line
        raise ValueError(f"expected an integer, got {value!r}")  # noqa: TRY004
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected an integer, got {value!r}") from None


def _csv(value: Any) -> Tuple[str, ...]:
    """``"a,b"`` or ``["a", "b"]`` → ``("a", "b")``."""
    if value is None:
        return ()
    if isinstance(value, str):
        items: Iterable[Any] = value.split(",")
    else:
        items = value
    return tuple(str(v).strip() for v in items if str(v).strip())


def parse_pair(value: str, sep: str = "=") -> Tuple[str, str]:
    """``"KEY=VALUE"`` → ``("KEY", "VALUE")``; the value may itself contain ``=``."""
    key, found, rest = str(value).partition(sep)
    if not found or not key:
        raise ValueError(f"expected KEY{sep}VALUE, got {value!r}")
    return key, rest


def pairs(value: Any) -> Tuple[Tuple[str, str], ...]:
    """A mapping, a list of ``KEY=VALUE`` strings or of pairs → a tuple of pairs."""
    if value is None:
        return ()
    if isinstance(value, Mapping):
        return tuple((str(k), "" if v is None else str(v)) for k, v in value.items())
    if isinstance(value, str):
        return (parse_pair(value),)
    out: List[Tuple[str, str]] = []
    for item in value:
        if isinstance(item, str):
            out.append(parse_pair(item))
        else:
            k, v = item
            out.append((str(k), str(v)))
    return tuple(out)


# --- names and S3 locations (pure; the callers name the flag) -----------------------------------

#: The API's ``S3Uri`` pattern (ProcessingS3Input, S3DataSource, ...), and its length limit.
S3_URI_REGEX = r"^(https|s3)://([^/]+)/?(.*)$"
S3_URI_MAX = 1024
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
#: compiled on first use: a run that names no S3 location never needs them
_PATTERNS: List[Pattern[str]] = []


def _patterns() -> List[Pattern[str]]:
    if not _PATTERNS:
        _PATTERNS.extend(re.compile(p) for p in (S3_URI_REGEX, r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$",
                                                 r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$"))
    return _PATTERNS


def is_s3_uri(value: Any) -> bool:
    """True for strings of the form ``s3://bucket[/key]``."""
    return isinstance(value, str) and value.startswith("s3://") and len(value) > len("s3://")


def bucket_problem(name: str) -> Optional[str]:
    """Why ``name`` is not a general purpose S3 bucket name (the S3 naming rules), or None."""
    _, chars, ip_address = _patterns()
    if not 3 <= len(name) <= 63:
        return f"bucket name {name!r} has {len(name)} characters; allowed: 3-63"
    if not chars.match(name):
        return (f"bucket name {name!r}: only lowercase letters, digits, '.' and '-', "
                f"starting and ending with a letter or digit")
    if ".." in name or ip_address.match(name):
        return f"bucket name {name!r}: no two adjacent dots and not an IP address"
    if name.startswith(_BUCKET_PREFIXES) or name.endswith(_BUCKET_SUFFIXES):
        return f"bucket name {name!r} uses a prefix or suffix that S3 reserves"
    return None


def s3_uri_problem(uri: str) -> Optional[str]:
    """Why ``uri`` is not an ``s3://bucket[/key]`` location SageMaker accepts, or None."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        return f"{uri!r} is not an s3://bucket/key URI"
    if len(uri) > S3_URI_MAX:
        return f"{uri[:40]!r}... has {len(uri)} characters; allowed: at most {S3_URI_MAX}"
    match = _patterns()[0].match(uri)
    if not match or "\n" in uri or "\r" in uri:
        return f"{uri!r} is not an s3://bucket/key URI"
    problem = bucket_problem(match.group(2))
    return f"{uri!r}: {problem}" if problem else None


def name_problem(name: Any) -> Optional[str]:
    """Why ``name`` cannot name a declared input, output or dependency, or None.

    The name becomes the flag ``--NAME`` and the attribute ``args.NAME`` (``-`` read
    as ``_``), and travels as ``--NAME=VALUE``: a Python identifier, hyphens allowed.
    """
    if not isinstance(name, str) or not name:
        return f"name {name!r} must be a non-empty string"
    if name.startswith("-") or not name.replace("-", "_").isidentifier():
        return (f"name {name!r} is not an identifier: letters, digits, '_' and '-', "
                f"not starting with a digit or '-'")
    return None
