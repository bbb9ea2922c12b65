"""The checks of the paths a command line gives, shared by a plain run and a launch.

A plain run (:func:`~aws_sagemaker_remote.api.run_locally`) and the planner
(:mod:`~aws_sagemaker_remote.plan`) read the same declared flags; each rule about
what those flags may hold is written here once, so both refuse the same input
with the same line. Standard library only, and light: a plain run imports it.
"""
from __future__ import annotations

import argparse
import os
from typing import Iterable, Optional, Tuple

from .errors import UsageError
from .values import is_s3_uri, s3_uri_problem


def local_abs(path: str) -> str:
    """``path`` as an absolute path, ``~`` expanded and ``..`` resolved (``script.py/../pkg`` included)."""
    return os.path.abspath(os.path.expanduser(path))


def inside(path: str, folder: str) -> bool:
    """True when ``path`` is ``folder`` or lies under it."""
    try:
        return os.path.commonpath([os.path.abspath(path), os.path.abspath(folder)]) == os.path.abspath(folder)
    except ValueError:  # different drives
        return False


def check_s3(uri: str, flag: str) -> None:
    """Refuse ``uri`` unless it is an S3 URI SageMaker and S3 accept (see :func:`~.args.s3_uri_problem`)."""
    problem = s3_uri_problem(uri)
    if problem:
        raise UsageError(problem, flag=flag)


def input_value(name: str, flag: str, optional: bool, value: object) -> Optional[str]:
    """The value of an input flag: None for an optional input left out; an ``s3://`` URI as given;
    a local path as given, once it exists (a Pipe-mode channel inside a job is only its FIFOs
    ``PATH_0``, ``PATH_1``...)."""
    if value is None or value == "":
        if optional:
            return None
        raise UsageError(f"input {name!r} needs a path (local path or s3:// URI)", flag=flag)
    text = str(value)
    if is_s3_uri(text):
        check_s3(text, flag)
    elif not os.path.exists(text) and not os.path.exists(f"{text}_0"):
        raise UsageError(f"input path {text!r} does not exist", flag=flag)
    return text


def dependency_path(name: str, flag: str, value: object, required: bool = True) -> Optional[str]:
    """The absolute path of a dependency flag's value, once it exists."""
    if not value:
        if required:
            raise UsageError(f"dependency {name!r} needs a path", flag=flag)
        return None
    path = local_abs(str(value))
    if not os.path.exists(path):
        raise UsageError(f"dependency path {str(value)!r} does not exist", flag=flag)
    return path


def output_location(namespace: argparse.Namespace, remote_dest: str, remote_flag: str) -> str:
    """Where the job uploads an output: ``default`` or an ``s3://`` URI S3 accepts."""
    remote = str(getattr(namespace, remote_dest, "default") or "default")
    if remote != "default":
        if not is_s3_uri(remote):
            raise UsageError(f"{remote!r} is not an s3:// URI or 'default'", flag=remote_flag)
        check_s3(remote, remote_flag)
    return remote


def outputs_outside_inputs(outputs: Iterable[Tuple[str, Optional[str]]],
                           inputs: Iterable[Tuple[str, Optional[str]]]) -> None:
    """Refuse an output folder inside a local input folder: it would be read back as input
    (and, in a job, uploaded as input and shadowed). Each pair is ``(flag, path)``."""
    sources = [(flag, src) for flag, src in inputs if src and not is_s3_uri(src) and os.path.isdir(src)]
    for out_flag, out in outputs:
        for in_flag, src in sources:
            if out and inside(out, src):
                raise UsageError(f"output folder {out!r} is inside the folder of input {in_flag} "
                                 f"({src!r}); allowed: a folder outside every input", flag=out_flag)
