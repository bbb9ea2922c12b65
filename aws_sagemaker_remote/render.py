"""Step 4 of the data flow: a :class:`~aws_sagemaker_remote.spec.StagedJob` and its
:class:`~aws_sagemaker_remote.spec.Placement` → the exact request.

Pure: it reads only the staged job and the placement, never the options. SageMaker's PascalCase names live only in this module (and in the
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
)
from .container import (
    DEFAULT as PATHS,
)
from .spec import (
    JobSpec,
    Network,
    Placement,
    Resources,
    StagedJob,
    Training,
    output_uris,
)

#: Unpacks argv[1] into argv[2], puts the bundled runtime first on sys.path and
#: runs the bootstrap with the remaining arguments. Uses tarfile's 'data' filter
#: where the image's Python has it (3.8.17+/3.12+) so a bundle cannot write
#: outside its folder.
BOOTSTRAP_STUB = (
    "import sys,tarfile as t;b,d=sys.argv[1:3];f=getattr(t,'data_filter',0);"
    "a=t.open(b);a.extractall(d,**({'filter':f} if f else {}));a.close();"
    "sys.path.insert(0,d+'/runtime');"
    "from aws_sagemaker_remote.bootstrap import main;main(d,sys.argv[3:])"
)
ENTRYPOINT = ("python3", "-c", BOOTSTRAP_STUB)

HYPERPARAMETER_VALUE_MAX = 2500
HYPERPARAMETERS_MAX = 100


def container_command(staged: StagedJob) -> List[str]:
    """``ContainerArguments``: bundle path, unpack folder, then the script's arguments.

    When staging put the arguments in a file beside the bundle (they are beyond the API's
    limits, see :func:`~aws_sagemaker_remote.container.needs_argument_file`), one argument
    names that file instead, so nothing is ever cut.
    """
    code_dir = PATHS.code_dir(staged.spec.kind)
    head = [code_dir + "/" + BUNDLE_FILENAME, PATHS.unpacked_code]
    if staged.arguments_uri is not None:
        return head + [f"{ARGUMENT_FILE_FLAG}={code_dir}/{ARGUMENT_FILENAME}"]
    return head + list(staged.spec.arguments)


def _tags(spec: JobSpec) -> List[Dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in spec.tags]


def render(staged: StagedJob, placement: Placement) -> Dict[str, Any]:
    """The ``CreateProcessingJob`` or ``CreateTrainingJob`` keyword arguments for ``staged``,
    run as ``placement`` says (role, image, and the bucket and prefix of default locations)."""
    if staged.spec.kind == "processing":
        return render_processing(staged, placement)
    return render_training(staged, placement)


def render_processing(staged: StagedJob, placement: Placement) -> Dict[str, Any]:
    spec = staged.spec
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
        "ProcessingResources": {"ClusterConfig": _resources(spec.resources)},
        "StoppingCondition": {"MaxRuntimeInSeconds": spec.stopping.max_run},
        "AppSpecification": {
            "ImageUri": placement.image_uri,
            "ContainerEntrypoint": list(ENTRYPOINT),
            "ContainerArguments": container_command(staged),
        },
        "RoleArn": placement.role_arn,
    }
    if spec.outputs:
        uris = output_uris(spec, placement)
        output_config: Dict[str, Any] = {"Outputs": [
            {
                "OutputName": out.name,
                "S3Output": {
                    "S3Uri": uris[out.name],
                    "LocalPath": out.container_path,
                    "S3UploadMode": out.upload_mode,
                },
            }
            for out in spec.outputs
        ]}
        if spec.output_kms:
            output_config["KmsKeyId"] = spec.output_kms
        request["ProcessingOutputConfig"] = output_config
    if spec.environment:
        request["Environment"] = dict(spec.environment)
    network = _network(spec.network)
    if network:
        request["NetworkConfig"] = network
    if spec.tags:
        request["Tags"] = _tags(spec)
    return request


def _resources(resources: Resources) -> Dict[str, Any]:
    """``ClusterConfig`` (processing) and ``ResourceConfig`` (training) share their fields."""
    out: Dict[str, Any] = {
        "InstanceCount": resources.count,
        "InstanceType": resources.instance_type,
        "VolumeSizeInGB": resources.volume_gb,
    }
    if resources.volume_kms:
        out["VolumeKmsKeyId"] = resources.volume_kms
    return out


def _vpc(network: Network) -> Optional[Dict[str, Any]]:
    if network.subnets and network.security_groups:
        return {"SecurityGroupIds": list(network.security_groups), "Subnets": list(network.subnets)}
    return None


def _network(network: Network) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    if network.traffic_encryption:
        out["EnableInterContainerTrafficEncryption"] = True
    if network.isolation:
        out["EnableNetworkIsolation"] = True
    vpc = _vpc(network)
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


def render_training(staged: StagedJob, placement: Placement) -> Dict[str, Any]:
    spec = staged.spec
    training = spec.training or Training()
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
        "TrainingInputMode": training.input_mode,
        "ContainerEntrypoint": list(ENTRYPOINT),
        "ContainerArguments": container_command(staged),
    }
    if training.algorithm_name:
        algorithm["AlgorithmName"] = training.algorithm_name
    else:
        algorithm["TrainingImage"] = placement.image_uri
    if training.metrics:
        algorithm["MetricDefinitions"] = [{"Name": n, "Regex": r} for n, r in training.metrics]
    output: Dict[str, Any] = {"S3OutputPath": training.model_output.resolve(placement.bucket, placement.prefix)}
    if spec.output_kms:
        output["KmsKeyId"] = spec.output_kms
    stopping: Dict[str, Any] = {"MaxRuntimeInSeconds": spec.stopping.max_run}
    request: Dict[str, Any] = {
        "TrainingJobName": spec.job_name,
        "AlgorithmSpecification": algorithm,
        "RoleArn": placement.role_arn,
        "InputDataConfig": channels,
        "OutputDataConfig": output,
        "ResourceConfig": _resources(spec.resources),
        "StoppingCondition": stopping,
    }
    hyper = display_hyperparameters(training.hyperparameters)
    if hyper:
        request["HyperParameters"] = hyper
    vpc = _vpc(spec.network)
    if vpc:
        request["VpcConfig"] = vpc
    if spec.network.isolation:
        request["EnableNetworkIsolation"] = True
    if spec.network.traffic_encryption:
        request["EnableInterContainerTrafficEncryption"] = True
    if training.spot:
        request["EnableManagedSpotTraining"] = True
    if spec.stopping.max_wait is not None:
        stopping["MaxWaitTimeInSeconds"] = spec.stopping.max_wait
    if training.checkpoint is not None:
        request["CheckpointConfig"] = {"S3Uri": training.checkpoint.resolve(placement.bucket, placement.prefix),
                                       "LocalPath": PATHS.checkpoints}
    if spec.environment:
        request["Environment"] = dict(spec.environment)
    if spec.tags:
        request["Tags"] = _tags(spec)
    return request
