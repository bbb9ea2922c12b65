"""What ``main`` returned, carried from the job back to the launcher as JSON.

Inside the job, after ``main`` returns a value that is not None, :func:`write_value`
writes it as JSON into a file beside the job's outputs:

* a Processing job: ``.aws-sagemaker-remote-value.json`` in the first declared output
  folder (uploaded with that output); a job without outputs has nowhere to keep it;
* a Training job: ``.aws-sagemaker-remote-value.json`` at the top of the output data
  folder (``/opt/ml/output/data``), so inside ``output.tar.gz``.

A launch from Python (``main.launch(...)``) reads it back with :func:`read_value` into
:attr:`JobResult.value <aws_sagemaker_remote.spec.JobResult.value>`. JSON, never pickle:
the job's image and this machine need not share a Python or a package version.
The job-side half is standard library only (it runs inside the job).
"""
from __future__ import annotations

import argparse
import json
import os
import posixpath
import sys
from typing import TYPE_CHECKING, Any, Mapping, Optional

if TYPE_CHECKING:  # pragma: no cover
    from .flags import Declaration
    from .spec import JobResult, JobSpec

#: The file name of the value, in the folder :func:`value_folder` names.
VALUE_FILE = ".aws-sagemaker-remote-value.json"


def value_folder(decl: "Declaration", namespace: argparse.Namespace) -> Optional[str]:
    """The folder the job writes the value into (None: the job has none to keep it in)."""
    dirs = dict(decl.training_dirs)
    if "output_dir" in dirs:
        return getattr(namespace, "output_dir", None) or None
    for d in decl.outputs:
        return getattr(namespace, d.dest, None) or None
    return None


def write_value(decl: "Declaration", namespace: argparse.Namespace, value: Any) -> Optional[str]:
    """Job side: write ``value`` as JSON beside the outputs; returns the file written, if any.

    Nothing is written for None. A value JSON cannot represent, or a job without a folder to
    keep it in, gets one line on standard error (the job's log) and no file: the job itself
    succeeded, only its return value is not carried back.
    """
    if value is None:
        return None
    try:
        text = json.dumps(value)
    except (TypeError, ValueError) as exc:
        print(f"aws_sagemaker_remote: main's return value is not kept: it is not JSON-serialisable ({exc})",
              file=sys.stderr)
        return None
    folder = value_folder(decl, namespace)
    if not folder:
        print("aws_sagemaker_remote: main's return value is not kept: a processing job keeps it in its "
              "first output, and this one declares none", file=sys.stderr)
        return None
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, VALUE_FILE)
    tmp = path + ".part"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return path


def read_value(spec: "JobSpec", result: "JobResult", store: Any, output_uris: Mapping[str, str]) -> Any:
    """Launcher side: the value a completed job wrote, or None when it wrote none.

    :param store: the :class:`~aws_sagemaker_remote.store.Store` the job's outputs went to.
    """
    if spec.kind.name == "training":
        url = result.output_data_url
        if not url or store.head(url) is None:
            return None
        from .artifacts import fetched

        with fetched(store, url) as tar:
            for member in tar.getmembers():
                if member.isfile() and posixpath.normpath(member.name) == VALUE_FILE:
                    handle = tar.extractfile(member)
                    return None if handle is None else _decode(handle.read(), url)
        return None
    for out in spec.outputs:  # the first output, as the job chose it
        base = output_uris.get(out.name)
        if not base:
            return None
        uri = base.rstrip("/") + "/" + VALUE_FILE
        if store.head(uri) is None:
            return None
        return _decode(store.get_bytes(uri), uri)
    return None


def _decode(data: bytes, where: str) -> Any:
    from .errors import RemoteError

    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RemoteError(f"the return value the job wrote to {where} is not JSON: {exc}") from None
