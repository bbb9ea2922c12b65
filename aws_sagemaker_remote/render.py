"""Step 4 of the data flow: a :class:`~aws_sagemaker_remote.spec.StagedJob` → the exact request.

Pure. SageMaker's PascalCase names live only in this module (and in the
backends that read responses). Every request built here is checked against
botocore's own service model in the tests.

How the job starts: the container runs ``python3 -c BOOTSTRAP_STUB BUNDLE DIR ARGS...``.
The stub (standard library only, under the API's 256-character limit for one
entrypoint element) unpacks the code bundle into ``DIR`` and hands over to
:mod:`aws_sagemaker_remote.bootstrap` from the bundle, which runs the script
with ``ARGS`` (the user's argument list with paths mapped).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from .container import (
    ARGUMENT_FILE_FLAG,
    ARGUMENT_FILENAME,
    BUNDLE_FILENAME,
    CODE_CHANNEL,
    DEFAULT as PATHS,
    needs_argument_file,
)
from .options import CommonOptions, TrainingOptions
from .spec import StagedJob

#: Unpacks argv[1] into argv[2] with the bundle's own safepath module (read straight
#: out of the archive: nothing is written before every member is checked, on any
#: Python 3 the image has), puts the bundled runtime first on sys.path and runs the
#: bootstrap with the remaining arguments.
BOOTSTRAP_STUB = (
    "import sys,tarfile as t;b,d=sys.argv[1:3];g={};"
    "exec(t.open(b).extractfile('runtime/aws_sagemaker_remote/safepath.py').read(),g);g['unpack'](b,d);"
    "sys.path.insert(0,d+'/runtime');"
    "from aws_sagemaker_remote.bootstrap import main;main(d,sys.argv[3:])"
)
ENTRYPOINT = ("python3", "-c", BOOTSTRAP_STUB)

HYPERPARAMETER_VALUE_MAX = 2500
HYPERPARAMETERS_MAX = 100


def container_command(staged: StagedJob) -> List[str]:
    """``ContainerArguments``: bundle path, unpack folder, then the script's arguments.

    Arguments beyond the API's limits (see :func:`~aws_sagemaker_remote.container.needs_argument_file`)
    are staged beside the bundle and named by one argument instead, so nothing is ever cut.
    """
    code_dir = PATHS.code_dir(staged.spec.kind)
    head = [code_dir + "/" + BUNDLE_FILENAME, PATHS.unpacked_code]
    if needs_argument_file(staged.spec.arguments):
        return head + [f"{ARGUMENT_FILE_FLAG}={code_dir}/{ARGUMENT_FILENAME}"]
    return head + list(staged.spec.arguments)


def _tags(staged: StagedJob) -> List[Dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in staged.spec.tags]


def render(staged: StagedJob) -> Dict[str, Any]:
    """The ``CreateProcessingJob`` or ``CreateTrainingJob`` keyword arguments for ``staged``."""
    if staged.spec.kind == "processing":
        return render_processing(staged)
    return render_training(staged)


def render_processing(staged: StagedJob) -> Dict[str, Any]:
    spec, o = staged.spec, staged.spec.options
    inputs: List[Dict[str, Any]] = [{
        "InputName": CODE_CHANNEL,
        "S3Input": {
            "S3Uri": staged.code_uri,
            "LocalPath": PATHS.processing_code,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
            "S3CompressionType": "None",
        },
    }]
    for ch in spec.inputs:
        inputs.append({
            "InputName": ch.name,
            "S3Input": {
                "S3Uri": staged.input_uris[ch.name],
                "LocalPath": ch.container_path,
                "S3DataType": ch.s3_data_type,
                "S3InputMode": ch.mode,
                "S3DataDistributionType": ch.distribution,
                "S3CompressionType": ch.compression,
            },
        })
    request: Dict[str, Any] = {
        "ProcessingJobName": spec.job_name,
        "ProcessingInputs": inputs,
        "ProcessingResources": {"ClusterConfig": _resources(o)},
        "StoppingCondition": {"MaxRuntimeInSeconds": o.max_run},
        "AppSpecification": {
            "ImageUri": staged.image_uri,
            "ContainerEntrypoint": list(ENTRYPOINT),
            "ContainerArguments": container_command(staged),
        },
        "RoleArn": staged.role_arn,
    }
    if spec.outputs:
        output_config: Dict[str, Any] = {"Outputs": [
            {
                "OutputName": out.name,
                "S3Output": {
                    "S3Uri": staged.output_uris[out.name],
                    "LocalPath": out.container_path,
                    "S3UploadMode": out.upload_mode,
                },
            }
            for out in spec.outputs
        ]}
        if o.output_kms_key:
            output_config["KmsKeyId"] = o.output_kms_key
        request["ProcessingOutputConfig"] = output_config
    if spec.environment:
        request["Environment"] = dict(spec.environment)
    network = _network(staged)
    if network:
        request["NetworkConfig"] = network
    if spec.tags:
        request["Tags"] = _tags(staged)
    return request


def _resources(o: CommonOptions) -> Dict[str, Any]:
    """``ClusterConfig`` (processing) and ``ResourceConfig`` (training) share their fields."""
    resources: Dict[str, Any] = {
        "InstanceCount": o.instance_count,
        "InstanceType": o.instance,
        "VolumeSizeInGB": o.volume_size,
    }
    if o.volume_kms_key:
        resources["VolumeKmsKeyId"] = o.volume_kms_key
    return resources


def _vpc(staged: StagedJob) -> Optional[Dict[str, Any]]:
    o = staged.spec.options
    if o.subnets and o.security_groups:
        return {"SecurityGroupIds": list(o.security_groups), "Subnets": list(o.subnets)}
    return None


def _network(staged: StagedJob) -> Dict[str, Any]:
    o = staged.spec.options
    network: Dict[str, Any] = {}
    if o.traffic_encryption:
        network["EnableInterContainerTrafficEncryption"] = True
    if o.network_isolation:
        network["EnableNetworkIsolation"] = True
    vpc = _vpc(staged)
    if vpc:
        network["VpcConfig"] = vpc
    return network


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


def render_training(staged: StagedJob) -> Dict[str, Any]:
    spec = staged.spec
    o = spec.options
    assert isinstance(o, TrainingOptions)
    channels: List[Dict[str, Any]] = [{
        "ChannelName": CODE_CHANNEL,
        "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix",
            "S3Uri": staged.code_uri,
            "S3DataDistributionType": "FullyReplicated",
        }},
        "CompressionType": "None",
        "InputMode": "File",
    }]
    for ch in spec.inputs:
        channel: Dict[str, Any] = {
            "ChannelName": ch.name,
            "DataSource": {"S3DataSource": {
                "S3DataType": ch.s3_data_type,
                "S3Uri": staged.input_uris[ch.name],
                "S3DataDistributionType": ch.distribution,
            }},
            "CompressionType": ch.compression,
            "RecordWrapperType": ch.record_wrapper,
            "InputMode": ch.mode,
        }
        if ch.content_type:
            channel["ContentType"] = ch.content_type
        channels.append(channel)
    algorithm: Dict[str, Any] = {
        "TrainingInputMode": o.input_mode,
        "ContainerEntrypoint": list(ENTRYPOINT),
        "ContainerArguments": container_command(staged),
    }
    if o.algorithm_name:
        algorithm["AlgorithmName"] = o.algorithm_name
    else:
        algorithm["TrainingImage"] = staged.image_uri
    if spec.metrics:
        algorithm["MetricDefinitions"] = [{"Name": n, "Regex": r} for n, r in spec.metrics]
    output: Dict[str, Any] = {"S3OutputPath": staged.model_output_uri}
    if o.output_kms_key:
        output["KmsKeyId"] = o.output_kms_key
    stopping: Dict[str, Any] = {"MaxRuntimeInSeconds": o.max_run}
    request: Dict[str, Any] = {
        "TrainingJobName": spec.job_name,
        "AlgorithmSpecification": algorithm,
        "RoleArn": staged.role_arn,
        "InputDataConfig": channels,
        "OutputDataConfig": output,
        "ResourceConfig": _resources(o),
        "StoppingCondition": stopping,
    }
    hyper = display_hyperparameters(spec.hyperparameters)
    if hyper:
        request["HyperParameters"] = hyper
    vpc = _vpc(staged)
    if vpc:
        request["VpcConfig"] = vpc
    if o.network_isolation:
        request["EnableNetworkIsolation"] = True
    if o.traffic_encryption:
        request["EnableInterContainerTrafficEncryption"] = True
    if o.spot:
        request["EnableManagedSpotTraining"] = True
        stopping["MaxWaitTimeInSeconds"] = o.max_wait or o.max_run
    if staged.checkpoint_uri:
        request["CheckpointConfig"] = {"S3Uri": staged.checkpoint_uri, "LocalPath": PATHS.checkpoints}
    if spec.environment:
        request["Environment"] = dict(spec.environment)
    if spec.tags:
        request["Tags"] = _tags(staged)
    return request
