"""A framework image's own entry point, for a training request without ``ContainerEntrypoint``.

SageMaker's framework images (scikit-learn, PyTorch, TensorFlow, ...) start the
sagemaker-training toolkit's ``train`` when the request names no entrypoint: it
reads ``/opt/ml/input/config``, downloads the ``sagemaker_submit_directory``
archive into ``/opt/ml/code`` and runs ``sagemaker_program`` from there (script
mode, ``--sagemaker-entry=toolkit``). The local backend has no image, so it runs
the toolkit's ``train`` console script from the installed ``sagemaker-training``
package (``pip install sagemaker-training``) with the interpreter that runs the
jobs, with the variables a framework container has:

* ``SAGEMAKER_PROGRAM``, ``SAGEMAKER_SUBMIT_DIRECTORY`` and ``SAGEMAKER_REGION``, from
  the request's hyperparameters and the backend's region;
* ``S3_ENDPOINT_URL`` (the toolkit's own variable) set to the endpoint of the S3
  store, so the toolkit downloads the submit directory from the same S3 (moto in the
  tests) with the credentials of the environment, as the job's script would;
* ``SM_STUDIO_LOCAL_MODE=true``: the toolkit then skips waiting for the DNS names of
  the hosts (``algo-1`` ...), which no resolver here knows.

With the local stand-in store there is no S3 to download from: the backend unpacks the
archive into each instance's ``/opt/ml/code`` itself, and the toolkit, finding that
folder filled, uses it as it is (it logs so). The toolkit would install a
``requirements.txt`` at the root of the submit directory with the jobs' interpreter;
our bundle never has one there (the job's requirements are the bootstrap's, in the
overlay environment), so the user's environment is left alone.
"""
from __future__ import annotations

import json
import os
import tarfile
import tempfile
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ...safepath import safe_extract
from ...store import LocalStore
from .state import Instance, Job, JobError, Settings

#: The toolkit's distribution and console script (``sagemaker_training.cli.train:main``).
DISTRIBUTION = "sagemaker-training"
SCRIPT = "train"


def _hyperparameter(request: Mapping[str, Any], name: str) -> Optional[str]:
    """A hyperparameter decoded as the toolkit decodes it (JSON where it is JSON)."""
    raw = (request.get("HyperParameters") or {}).get(name)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return str(raw)
    return value if isinstance(value, str) else str(raw)


def entry_point() -> Tuple[str, str]:
    """(module, function) of the installed toolkit's ``train`` console script.

    :raises JobError: the toolkit is not installed.
    """
    from importlib import metadata

    try:
        found = [ep for ep in metadata.distribution(DISTRIBUTION).entry_points
                 if ep.group == "console_scripts" and ep.name == SCRIPT]
    except metadata.PackageNotFoundError:
        found = []
    if not found:
        raise JobError("ClientError: the request has no ContainerEntrypoint, so the image's own entry point runs; "
                       "the local backend runs the sagemaker-training toolkit's train in its place, and it is not "
                       "installed (pip install sagemaker-training)")
    module, _, function = found[0].value.partition(":")
    return module.strip(), function.strip()


def command() -> List[str]:
    """The instance's command line: the toolkit's ``train`` (``python3`` becomes the jobs' interpreter)."""
    module, function = entry_point()
    return ["python3", "-c", f"import sys; from {module} import {function} as train; sys.exit(train())"]


def environment(settings: Settings, job: Job) -> Dict[str, str]:
    """What a framework container adds for the toolkit (see the module's description)."""
    env = {"SM_STUDIO_LOCAL_MODE": "true", "SAGEMAKER_REGION": settings.region}
    for name, variable in (("sagemaker_program", "SAGEMAKER_PROGRAM"),
                           ("sagemaker_submit_directory", "SAGEMAKER_SUBMIT_DIRECTORY")):
        value = _hyperparameter(job.request, name)
        if value:
            env[variable] = value
    client = getattr(settings.store, "client", None)
    endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None)
    if endpoint:
        env["S3_ENDPOINT_URL"] = str(endpoint)
    return env


def place_submit_directory(settings: Settings, job: Job, instance: Instance) -> None:
    """With the local stand-in store, unpack ``sagemaker_submit_directory`` into the instance's
    ``/opt/ml/code``, where the toolkit finds it (it downloads only into an empty folder)."""
    if not isinstance(settings.store, LocalStore):
        return
    uri = _hyperparameter(job.request, "sagemaker_submit_directory")
    if not uri or not uri.startswith("s3://"):
        return  # a local path or nothing: the toolkit reads it (or fails) as it would in an image
    target = instance.paths.unpacked_code
    fd, archive = tempfile.mkstemp(suffix=".tar.gz", dir=job.job_dir)
    os.close(fd)
    try:
        settings.store.download_file(uri, archive)
        with tarfile.open(archive) as tar:
            safe_extract(tar, target)
    except Exception as exc:  # noqa: BLE001 - a missing object, a bad or unsafe archive alike fail the job
        raise JobError(f"ClientError: cannot unpack sagemaker_submit_directory {uri}: {exc}") from None
    finally:
        os.unlink(archive)
