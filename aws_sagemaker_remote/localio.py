"""``s3://`` paths in a local run (``--sagemaker-run=no``).

An ``s3://`` input is downloaded into a cache folder and ``main`` gets that
folder, or the file's path in it when the URI names one object (the shape the
job sees, :mod:`~aws_sagemaker_remote.shape`); the cache is reused while the
objects under the prefix are unchanged. An output with an explicit ``s3://``
destination is written to a temporary folder and uploaded after ``main``
returns. Only this module, not a plain local run, imports boto3.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys

from .errors import UsageError
from .store import LocalStore, Store, default_store, download_prefix, home_dir, upload_folder


def _store() -> Store:
    store = default_store()
    if isinstance(store, LocalStore):
        # no credentials and no endpoint: say so, rather than pretend to reach S3
        print(f"no AWS credentials or AWS_ENDPOINT_URL: s3:// paths use the local stand-in at {store.root}",
              file=sys.stderr)
    return store


def _cache_dir(uri: str) -> str:
    return os.path.join(home_dir(), "cache", "inputs", hashlib.sha256(uri.encode("utf-8")).hexdigest()[:32])


def download_input(uri: str, flag: str = "inputs") -> str:
    """A local folder holding the objects of the ``S3Prefix`` ``uri`` (cached), or the file's path in it
    when ``uri`` names one object; ``flag`` names it in errors."""
    from .aws import translate_errors
    from .shape import one_object_name

    store = _store()
    folder = _cache_dir(uri)
    stamp_file = folder + ".json"
    with translate_errors(f"listing {uri}"):
        stamp = store.fingerprint(uri)
    if not stamp:
        where = f" in the local stand-in at {store.root}" if isinstance(store, LocalStore) else ""
        raise UsageError(f"no objects under {uri}{where}", flag=flag)
    name = one_object_name(uri, (found for found, _tag in stamp))
    shaped = os.path.join(folder, name) if name else folder
    try:
        with open(stamp_file, encoding="utf-8") as fh:
            if json.load(fh) == [list(s) for s in stamp] and os.path.exists(shaped):
                return shaped
    except (OSError, ValueError):
        pass
    tmp = folder + ".part"
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"downloading {uri} ...", file=sys.stderr)
    with translate_errors(f"downloading {uri}"):
        download_prefix(store, uri, tmp)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    with open(stamp_file, "w", encoding="utf-8") as fh:
        json.dump([list(s) for s in stamp], fh)
    return shaped


def upload_output(local: str, uri: str) -> None:
    """Upload every file of ``local`` below ``uri``."""
    from .aws import translate_errors

    store = _store()
    with translate_errors(f"uploading {local} to {uri}"):
        uploaded = upload_folder(store, local, uri)
    print(f"uploaded {len(uploaded)} file(s) to {uri}", file=sys.stderr)
