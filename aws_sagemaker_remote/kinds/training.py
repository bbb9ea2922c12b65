"""Training jobs (CreateTrainingJob): channels, model and output archives, metrics, spot, checkpoints."""
from __future__ import annotations

import argparse
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, TextIO, Tuple

from ..container import DEFAULT as PATHS
from ..errors import UsageError
from ..options import DEFAULT_IMAGE, CommonOptions, TrainingOptions
from .base import CHANNEL_NAME_RE, JobKind

if TYPE_CHECKING:  # pragma: no cover
    from ..container import ContainerPaths
    from ..flags import Declaration
    from ..spec import JobResult, Placement, RunControl, StagedJob, Training
    from ..store import Store

#: Training's generated folder flags: (keyword, local default, folder in the job, help).
TRAINING_DIRS: Tuple[Tuple[str, str, str, str], ...] = (
    ("model_dir", "output/model", PATHS.model_dir,
     f"Where the script saves its model (in the job: {PATHS.model_dir}, uploaded as model.tar.gz)."),
    ("output_dir", "output/data", PATHS.output_data_dir,
     f"Where the script writes other output data (in the job: {PATHS.output_data_dir}, uploaded as output.tar.gz)."),
    ("checkpoint_dir", "output/checkpoints", PATHS.checkpoints,
     f"Where the script saves and finds checkpoints (in the job: {PATHS.checkpoints}, synced with S3)."),
)


class TrainingKind(JobKind):
    """A Training job: input channels, the model and other outputs uploaded as archives, metrics,
    spot capacity and checkpoints."""

    name = "training"
    options = TrainingOptions
    limits = MappingProxyType({
        "inputs": 20,  # InputDataConfig channels, including the code channel
        "outputs": 10,  # our sub-folders of /opt/ml/output/data
        "env_entries": 100,
        "env_key": 512,
        "env_value": 512,
        "max_run": 2419200,  # 28 days, API reference for MaxRuntimeInSeconds
        "instance_count": 100,
        "volume": 16384,
    })
    status_key = "TrainingJobStatus"
    name_key = "TrainingJobName"
    log_group = "/aws/sagemaker/TrainingJobs"
    console_page = "jobs"
    # outputs are folders of /opt/ml/output/data, uploaded inside output.tar.gz
    outputs_have_locations = False
    input_modes = ("File", "Pipe", "FastFile")
    channel_name_re = CHANNEL_NAME_RE
    folders = TRAINING_DIRS

    def code_dir(self, paths: "ContainerPaths") -> str:
        return paths.training_code

    def failure_file(self, paths: "ContainerPaths") -> str:
        return paths.training_failure

    def input_path(self, paths: "ContainerPaths", name: str, declared: Optional[str]) -> str:
        return paths.training_channel(name)  # SageMaker decides where channels go

    def output_path(self, paths: "ContainerPaths", name: str, declared: Optional[str]) -> str:
        return paths.output_data_dir + "/" + name

    # --- plan ---------------------------------------------------------------------
    def plan_part(self, decl: "Declaration", namespace: argparse.Namespace, options: CommonOptions,
                  mapped: Mapping[str, str], base_job_name: str) -> "Optional[Training]":
        from ..plan import check_metrics, check_range, check_s3, default_checkpoint, script_hyperparameters
        from ..spec import Location, Training

        assert isinstance(options, TrainingOptions)
        o = options
        if o.output_s3 != "default":
            check_s3(o.output_s3, "--sagemaker-output-s3")
        if o.checkpoint_s3 not in (None, "default"):
            check_s3(o.checkpoint_s3, "--sagemaker-checkpoint-s3")
        if o.max_wait is not None:
            if not o.spot:
                raise UsageError("only applies with --sagemaker-spot", flag="--sagemaker-max-wait")
            if o.max_wait < o.max_run:
                raise UsageError(f"{o.max_wait} is less than --sagemaker-max-run={o.max_run}; "
                                 f"allowed: at least the max run time", flag="--sagemaker-max-wait")
            check_range(o.max_wait, 1, self.limits["max_run"], flag="--sagemaker-max-wait")
        if o.algorithm_name and o.image != DEFAULT_IMAGE:
            raise UsageError("give either --sagemaker-image or --sagemaker-algorithm-name, not both",
                             flag="--sagemaker-algorithm-name")
        metrics = check_metrics(tuple(dict(o.metric).items()))
        shown = script_hyperparameters(namespace, o, decl, mapped)
        checkpoint: Optional[Location] = None
        if o.checkpoint_s3 and o.checkpoint_s3 != "default":
            checkpoint = Location(uri=o.checkpoint_s3)
        elif o.checkpoint_s3 == "default":
            checkpoint = default_checkpoint(base_job_name, decl.script)
        if o.fresh and checkpoint is None:
            raise UsageError("empties the checkpoint location, and --sagemaker-checkpoint-s3 is none",
                             flag="--sagemaker-fresh")
        return Training(
            input_mode=o.input_mode,
            algorithm_name=o.algorithm_name,
            spot=o.spot,
            metrics=metrics,
            hyperparameters=tuple(dict(shown + list(o.hyperparameter)).items()),
            model_output=Location(uri=o.output_s3) if o.output_s3 != "default" else Location(key=("jobs",)),
            checkpoint=checkpoint,
            fresh=o.fresh,
        )

    # --- request and responses --------------------------------------------------------
    def render(self, staged: "StagedJob", placement: "Placement") -> Dict[str, Any]:
        from ..container import CODE_CHANNEL
        from ..render import (
            ENTRYPOINT,
            container_command,
            display_hyperparameters,
            resource_config,
            tag_list,
            vpc_config,
        )
        from ..spec import Training

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
            if ch.attributes:
                channel["DataSource"]["S3DataSource"]["AttributeNames"] = list(ch.attributes)
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
        if spec.stopping.max_wait is not None:
            stopping["MaxWaitTimeInSeconds"] = spec.stopping.max_wait
        request: Dict[str, Any] = {
            "TrainingJobName": spec.job_name,
            "AlgorithmSpecification": algorithm,
            "RoleArn": placement.role_arn,
            "InputDataConfig": channels,
            "OutputDataConfig": output,
            "ResourceConfig": resource_config(spec.resources),
            "StoppingCondition": stopping,
        }
        hyper = display_hyperparameters(training.hyperparameters)
        if hyper:
            request["HyperParameters"] = hyper
        vpc = vpc_config(spec.network)
        if vpc:
            request["VpcConfig"] = vpc
        if spec.network.isolation:
            request["EnableNetworkIsolation"] = True
        if spec.network.traffic_encryption:
            request["EnableInterContainerTrafficEncryption"] = True
        if training.spot:
            request["EnableManagedSpotTraining"] = True
        if training.checkpoint is not None:
            request["CheckpointConfig"] = {"S3Uri": training.checkpoint.resolve(placement.bucket, placement.prefix),
                                           "LocalPath": PATHS.checkpoints}
        if spec.environment:
            request["Environment"] = dict(spec.environment)
        if spec.tags:
            request["Tags"] = tag_list(spec.tags)
        return request

    def status_details(self, description: Mapping[str, Any]) -> Tuple[Optional[str], Optional[str]]:
        secondary = description.get("SecondaryStatus")
        message: Optional[str] = None
        transitions = description.get("SecondaryStatusTransitions") or []
        if transitions and transitions[-1].get("Status") == secondary:
            message = transitions[-1].get("StatusMessage")
        return secondary, message

    def result(self, description: Mapping[str, Any], common: Dict[str, Any],
               metrics_seen: Mapping[str, float]) -> "JobResult":
        from ..spec import JobResult

        job_name = common["job_name"]
        output_path = ((description.get("OutputDataConfig") or {}).get("S3OutputPath") or "").rstrip("/")
        job_output = f"{output_path}/{job_name}/output" if output_path else None
        model = (description.get("ModelArtifacts") or {}).get("S3ModelArtifacts") or (
            f"{job_output}/model.tar.gz" if job_output else None)
        final_metrics = {
            m["MetricName"]: float(m["Value"])
            for m in description.get("FinalMetricDataList") or []
            if "MetricName" in m and "Value" in m
        }
        return JobResult(
            model_artifact_url=model,
            output_data_url=f"{job_output}/output.tar.gz" if job_output else None,
            training_image=(description.get("AlgorithmSpecification") or {}).get("TrainingImage"),
            final_metrics=final_metrics or dict(metrics_seen),
            **common,
        )

    def result_json(self, result: "JobResult") -> Dict[str, Any]:
        return {
            "model_artifact_url": result.model_artifact_url,
            "output_data_url": result.output_data_url,
            "training_image": result.training_image,
            "final_metrics": dict(result.final_metrics),
        }

    def download(self, staged: "StagedJob", result: "JobResult", control: "RunControl", store: "Store",
                 output_uris: Mapping[str, str], err: TextIO) -> None:
        from ..artifacts import fetched, safe_extract

        if control.download_outputs and result.output_data_url:
            # training outputs are folders of /opt/ml/output/data, inside output.tar.gz
            targets = {out_ch.name: out_ch.local_path for out_ch in staged.spec.outputs if out_ch.local_path}
            if targets:
                with fetched(store, result.output_data_url) as tar:
                    for name, folder in targets.items():
                        members = [m for m in tar.getmembers()
                                   if m.name.startswith(name + "/") and m.name.rstrip("/") != name]
                        for member in members:
                            member.name = member.name[len(name) + 1:]
                        safe_extract(tar, folder, members, result.output_data_url)
                        err.write(f"downloaded {len(members)} file(s) of {name} to {folder}\n")
        if control.download_model and result.model_artifact_url:
            with fetched(store, result.model_artifact_url) as tar:
                safe_extract(tar, control.download_model, None, result.model_artifact_url)
            err.write(f"unpacked {result.model_artifact_url} into {control.download_model}\n")


TRAINING = TrainingKind()
