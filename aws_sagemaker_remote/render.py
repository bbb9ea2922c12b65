"""Step 4 of the data flow: a :class:`~aws_sagemaker_remote.spec.StagedJob` and its
:class:`~aws_sagemaker_remote.spec.Placement` → the exact request.

Pure: it reads only the staged job and the placement, never the options.
SageMaker's PascalCase request names live here and in the job kinds'
``render`` (:mod:`aws_sagemaker_remote.kinds`), which build on the parts
below. Every request built here is checked against botocore's own service
model in the tests.

How the job starts: the container runs ``python3 -c BOOTSTRAP_STUB MANIFEST DIR ARGS...``.
The stub (standard library only, under the API's 256-character limit for one
entrypoint element) lays out the code tree its manifest lists into ``DIR`` and hands over to
:mod:`aws_sagemaker_remote.bootstrap` from the bundle, which runs the script
with ``ARGS`` (the user's argument list with paths mapped).
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .container import (
    ARGUMENT_FILE_FLAG,
    ARGUMENT_FILENAME,
    ARGUMENTS_HYPERPARAMETER,
    DEFAULT as PATHS,
    HYPERPARAMETER_VALUE_MAX,
    HYPERPARAMETERS_MAX,
    TOOLKIT_PROGRAM,
)
from .spec import Network, Placement, Resources, StagedJob

#: Finds the code manifest argv[1] in its channel folder (at the top, or in the first folder
#: below that holds it, where a download kept the key's folders), then runs the code's own
#: safepath module (the manifest's "boot" blob, beside it): it lays the code tree out into
#: argv[2] (every name checked before anything is written, on any Python 3 the image has)
#: and runs the shipped bootstrap with the remaining arguments.
BOOTSTRAP_STUB = (
    "import sys,json,os;m,d=sys.argv[1:3];c,b=os.path.split(m);"
    "p=next(r for r,_,n in os.walk(c)if b in n)+'/';g={};"
    "exec(open(p+json.load(open(p+b))['boot']).read(),g);g['start'](p+b,d,sys.argv[3:])"
)
ENTRYPOINT = ("python3", "-c", BOOTSTRAP_STUB)



def container_command(staged: StagedJob) -> List[str]:
    """``ContainerArguments``: code manifest path, unpack folder, then the script's arguments.

    When staging put the arguments in a file beside the bundle (they are beyond the API's
    limits, see :func:`~aws_sagemaker_remote.container.needs_argument_file`), one argument
    names that file instead, so nothing is ever cut.
    """
    code_dir = staged.spec.kind.code_dir(PATHS)
    head = [code_dir + "/" + staged.code_entry, PATHS.unpacked_code]
    if staged.arguments_uri is not None:
        # a file of the code tree: the stub has laid it out before the bootstrap reads it
        return head + [f"{ARGUMENT_FILE_FLAG}={PATHS.unpacked_code}/{ARGUMENT_FILENAME}"]
    return head + list(staged.spec.arguments)


#: ``sagemaker_container_log_level``: ``logging.INFO``, what the SDK's framework estimators send.
TOOLKIT_LOG_LEVEL = 20


def toolkit_hyperparameters(staged: StagedJob, placement: Placement) -> Dict[str, str]:
    """Script mode's hyperparameters, JSON-encoded as the SDK's framework estimators send them.

    ``sagemaker_submit_directory`` is the staged bundle (a ``.tar.gz``, which the toolkit
    unpacks into ``/opt/ml/code``), ``sagemaker_program`` our launcher at its root
    (:mod:`aws_sagemaker_remote.toolkit_program`), and
    :data:`~aws_sagemaker_remote.container.ARGUMENTS_HYPERPARAMETER` the script's exact
    argument list, or the argument file's flag when the list does not fit in one value.
    """
    spec = staged.spec
    out = {
        "sagemaker_program": json.dumps(TOOLKIT_PROGRAM),
        "sagemaker_submit_directory": json.dumps(staged.code_uri),
        "sagemaker_container_log_level": str(TOOLKIT_LOG_LEVEL),
        "sagemaker_job_name": json.dumps(spec.job_name),
        ARGUMENTS_HYPERPARAMETER: json.dumps(container_command(staged)[2:]),
    }
    if placement.region:
        out["sagemaker_region"] = json.dumps(placement.region)
    return out


def tag_list(tags: Sequence[Tuple[str, str]]) -> List[Dict[str, str]]:
    """``Tags``: a list of ``{"Key", "Value"}``."""
    return [{"Key": k, "Value": v} for k, v in tags]


def render(staged: StagedJob, placement: Placement) -> Dict[str, Any]:
    """The ``CreateProcessingJob`` or ``CreateTrainingJob`` keyword arguments for ``staged``,
    run as ``placement`` says (role, image, and the bucket and prefix of default locations).

    Each job kind renders its own request (:mod:`aws_sagemaker_remote.kinds`) from the parts below.
    """
    return staged.spec.kind.render(staged, placement)


def resource_config(resources: Resources) -> Dict[str, Any]:
    """``ClusterConfig`` (processing) and ``ResourceConfig`` (training) share their fields."""
    out: Dict[str, Any] = {
        "InstanceCount": resources.count,
        "InstanceType": resources.instance_type,
        "VolumeSizeInGB": resources.volume_gb,
    }
    if resources.volume_kms:
        out["VolumeKmsKeyId"] = resources.volume_kms
    return out


def vpc_config(network: Network) -> Optional[Dict[str, Any]]:
    if network.subnets and network.security_groups:
        return {"SecurityGroupIds": list(network.security_groups), "Subnets": list(network.subnets)}
    return None


def network_config(network: Network) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    if network.traffic_encryption:
        out["EnableInterContainerTrafficEncryption"] = True
    if network.isolation:
        out["EnableNetworkIsolation"] = True
    vpc = vpc_config(network)
    if vpc:
        out["VpcConfig"] = vpc
    return out


def display_hyperparameters(pairs: Any) -> Dict[str, str]:
    """Hyperparameters as the console shows them: at most 100, values cut to the API's 2500 characters.

    Display only: the job's script gets its real arguments from ``ContainerArguments``.
    """
    out: Dict[str, str] = {}
    for key, value in list(pairs)[:HYPERPARAMETERS_MAX]:
        text = " ".join(str(value).splitlines())  # the API's pattern ".*" takes no line breaks
        if len(text) > HYPERPARAMETER_VALUE_MAX:
            text = text[: HYPERPARAMETER_VALUE_MAX - 3] + "..."
        out[str(key)[:256]] = text
    return out
