"""Training jobs (CreateTrainingJob): channels, model and output archives, metrics, spot, checkpoints."""
from __future__ import annotations

import argparse
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, TextIO, Tuple

from ..container import DEFAULT as PATHS
from ..errors import UsageError
from ..options import DEFAULT_IMAGE, KEEP_ALIVE_MAX, RETRIES_MAX, CommonOptions, TrainingOptions
from .base import CHANNEL_NAME_RE, JobKind

if TYPE_CHECKING:  # pragma: no cover
    from ..container import ContainerPaths
    from ..flags import Declaration
    from ..spec import JobResult, JobSpec, Placement, RunControl, StagedJob, Training
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


#: Why a training job with the framework's own entrypoint has no ACK resource.
ACK_NEEDS_SCRIPT_MODE = ("the ACK TrainingJob resource has no containerEntrypoint/containerArguments: "
                         "exporting a training job needs script mode (--sagemaker-entry=toolkit)")
#: Framework shorthands (``--sagemaker-image NAME:VERSION``) whose images start with the
#: sagemaker-training toolkit, so that script mode (``--sagemaker-entry=toolkit``) runs there.
TOOLKIT_FRAMEWORKS = ("sklearn", "pytorch", "tensorflow", "mxnet", "huggingface", "xgboost", "chainer",
                      "pytorch-training-compiler", "huggingface-training-compiler")


def check_toolkit_image(options: TrainingOptions) -> None:
    """Refuse script mode where the image cannot run it, when that is known before any request.

    An algorithm resource has no toolkit; a shorthand names its framework. A full image URI
    cannot be told apart here (an image built on a framework image has the toolkit too): it
    must start the toolkit's ``train``, as docs/training.rst says.
    """
    from ..images import is_image_shorthand

    if options.algorithm_name:
        raise UsageError("toolkit (script mode) needs a framework image; an algorithm resource "
                         "(--sagemaker-algorithm-name) runs its own program", flag="--sagemaker-entry")
    if is_image_shorthand(options.image):
        framework = options.image.split(":", 1)[0]
        if framework not in TOOLKIT_FRAMEWORKS:
            raise UsageError(f"toolkit (script mode) needs an image that runs the sagemaker-training toolkit; "
                             f"{options.image!r} is not one of the framework images "
                             f"({', '.join(TOOLKIT_FRAMEWORKS)})", flag="--sagemaker-entry")


def _check_iteration_options(o: TrainingOptions) -> None:
    """Limits of the warm-pool, retry and remote-debug options (botocore's model, the SageMaker guide)."""
    from ..plan import check_range

    check_range(o.keep_alive, 0, KEEP_ALIVE_MAX, "--sagemaker-keep-alive")
    check_range(o.retries, 0, RETRIES_MAX, "--sagemaker-retries")
    if o.keep_alive and o.spot:
        # the warm pools guide: "managed warm pools cannot be used with spot instances"
        raise UsageError("a warm pool cannot hold spot instances; allowed: 0 with --sagemaker-spot",
                         flag="--sagemaker-keep-alive")
    if o.remote_debug and o.network_isolation:
        # the remote debugging guide: the SSM agent needs the network that isolation takes away
        raise UsageError("needs the network, and --sagemaker-network-isolation takes it away; allowed: one of them",
                         flag="--sagemaker-remote-debug")
    if o.remote_debug and o.algorithm_name:
        raise UsageError("SageMaker offers no remote debugging of algorithm resources; allowed: with "
                         "--sagemaker-image", flag="--sagemaker-remote-debug")


def _render_iteration_options(request: Dict[str, Any], training: "Training") -> None:
    """The warm-pool, retry, health-check, session-chaining and remote-debug fields, only when asked for."""
    if training.keep_alive:
        request["ResourceConfig"]["KeepAlivePeriodInSeconds"] = training.keep_alive
    if training.retries:
        request["RetryStrategy"] = {"MaximumRetryAttempts": training.retries}
    if training.infra_check:
        request["InfraCheckConfig"] = {"EnableInfraCheck": True}
    if training.session_chaining:
        request["SessionChainingConfig"] = {"EnableSessionTagChaining": True}
    if training.remote_debug:
        request["RemoteDebugConfig"] = {"EnableRemoteDebug": True}


#: Secondary statuses of a job past provisioning: a job on a warm pool is ``InUse`` by then.
STARTED_STATUSES = ("Downloading", "DownloadingTrainingImage", "Training", "Uploading")
#: What a job must share with the job that kept a warm pool to get it (SageMaker developer guide,
#: "SageMaker AI Managed Warm Pools", "Matching training jobs").
POOL_MATCH = ("no warm pool matched: a pool moves only to a job with the same role, instance type and count, "
              "volume size and KMS key, VPC subnets and security groups, network isolation and traffic "
              "encryption, once the job that kept it has ended")

#: Secondary statuses that begin an attempt: a retry "changes SecondaryStatus to Starting" (RetryStrategy
#: in the API reference); ``Restarting`` is the model's other start.
_ATTEMPT_STARTS = ("Starting", "Restarting")


def training_attempts(description: Mapping[str, Any]) -> Tuple[int, Optional[int]]:
    """(the attempt the job is on, attempts allowed or None) of a ``DescribeTrainingJob`` response.

    SageMaker reports no attempt number: each return to ``Starting`` (or ``Restarting``) after a later
    secondary status in ``SecondaryStatusTransitions`` counts as one more attempt.
    """
    attempt, previous = 1, None
    for transition in description.get("SecondaryStatusTransitions") or []:
        status = transition.get("Status")
        if status in _ATTEMPT_STARTS and previous is not None and previous not in _ATTEMPT_STARTS:
            attempt += 1
        previous = status
    retries = (description.get("RetryStrategy") or {}).get("MaximumRetryAttempts")
    return attempt, (1 + int(retries)) if retries else None


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
    ack_kind = "TrainingJob"
    resources_path = ("ResourceConfig",)
    image_path = ("AlgorithmSpecification", "TrainingImage")
    network_path = ()
    output_config_key = "OutputDataConfig"

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
        from ..checks import check_s3
        from ..plan import check_metrics, check_range, default_checkpoint, script_hyperparameters
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
        if o.entry == "toolkit":
            check_toolkit_image(o)
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
        _check_iteration_options(o)
        return Training(
            input_mode=o.input_mode,
            algorithm_name=o.algorithm_name,
            spot=o.spot,
            metrics=metrics,
            hyperparameters=tuple(dict(shown + list(o.hyperparameter)).items()),
            model_output=Location(uri=o.output_s3) if o.output_s3 != "default" else Location(key=("jobs",)),
            checkpoint=checkpoint,
            entry=o.entry,
            fresh=o.fresh,
            keep_alive=o.keep_alive,
            retries=o.retries,
            infra_check=o.infra_check,
            session_chaining=o.session_chaining,
            remote_debug=o.remote_debug,
        )

    def ack_plan_refusal(self, spec: "JobSpec") -> Optional[str]:
        # the TrainingJob resource has no entrypoint fields: only the image's own entry point (script mode)
        return None if spec.training is not None and spec.training.entry == "toolkit" else ACK_NEEDS_SCRIPT_MODE

    def needs_argument_file(self, spec: "JobSpec") -> bool:
        from ..container import needs_argument_file_in_hyperparameter

        if spec.training is not None and spec.training.entry == "toolkit":
            return needs_argument_file_in_hyperparameter(spec.arguments)
        return super().needs_argument_file(spec)

    # --- request and responses --------------------------------------------------------
    def render(self, staged: "StagedJob", placement: "Placement") -> Dict[str, Any]:
        from ..container import CODE_CHANNEL, HYPERPARAMETERS_MAX
        from ..render import (
            ENTRYPOINT,
            container_command,
            display_hyperparameters,
            resource_config,
            tag_list,
            toolkit_hyperparameters,
            vpc_config,
        )
        from ..spec import Training

        spec = staged.spec
        training = spec.training or Training()
        toolkit = training.entry == "toolkit"
        channels: List[Dict[str, Any]] = []
        if not toolkit:
            # script mode has no code channel: the toolkit fetches the code archive, which holds
            # the argument file too when there is one
            channels.append({
                "ChannelName": CODE_CHANNEL,
                "DataSource": {"S3DataSource": {
                    "S3DataType": "ManifestFile",  # the code's blobs and its manifest (see stage)
                    "S3Uri": staged.code_uri,
                    "S3DataDistributionType": "FullyReplicated",
                }},
                "CompressionType": "None",
                "InputMode": "File",
            })
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
        algorithm: Dict[str, Any] = {"TrainingInputMode": training.input_mode}
        if not toolkit:
            algorithm["ContainerEntrypoint"] = list(ENTRYPOINT)
            algorithm["ContainerArguments"] = container_command(staged)
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
            "OutputDataConfig": output,
            "ResourceConfig": resource_config(spec.resources),
            "StoppingCondition": stopping,
        }
        if channels:  # none in script mode without inputs: the API wants at least one, or no list
            request["InputDataConfig"] = channels
        if toolkit:
            hyper = toolkit_hyperparameters(staged, placement)
            shown = [(k, v) for k, v in training.hyperparameters if k not in hyper]
            hyper.update(display_hyperparameters(shown[:HYPERPARAMETERS_MAX - len(hyper)]))
        else:
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
        _render_iteration_options(request, training)
        return request

    def request_inputs(self, request: Mapping[str, Any]) -> Dict[str, Dict[str, Any]]:
        from ..container import CODE_CHANNEL

        return {c["ChannelName"]: c["DataSource"]["S3DataSource"] for c in request.get("InputDataConfig", [])
                if c["ChannelName"] != CODE_CHANNEL and "S3DataSource" in c.get("DataSource", {})}

    def ack_refusal(self, request: Mapping[str, Any]) -> Optional[str]:
        algorithm = request.get("AlgorithmSpecification", {})
        if "ContainerEntrypoint" in algorithm or "ContainerArguments" in algorithm:
            return ACK_NEEDS_SCRIPT_MODE
        return None

    def kfp_values(self, request: Mapping[str, Any]) -> Dict[str, Any]:
        algorithm = request["AlgorithmSpecification"]
        return {
            "spot_instance": bool(request.get("EnableManagedSpotTraining", False)),
            "max_wait_time": request["StoppingCondition"].get("MaxWaitTimeInSeconds", 0),
            "checkpoint_config": dict(request.get("CheckpointConfig", {})),
            "metric_definitions": {m["Name"]: m["Regex"] for m in algorithm.get("MetricDefinitions", [])},
            "model_artifact_path": request["OutputDataConfig"]["S3OutputPath"],
        }

    def apply_kfp_values(self, request: Dict[str, Any], values: Mapping[str, Any]) -> None:
        from ..export.kfp import in_recorded_order, set_or_drop

        v = values
        stopping = request["StoppingCondition"]
        if "spot_instance" in v:
            set_or_drop(request, "EnableManagedSpotTraining", v["spot_instance"])
        if request.get("EnableManagedSpotTraining"):
            wait = v.get("max_wait_time") or stopping.get("MaxWaitTimeInSeconds") or 0
            # the API wants a wait of at least the run time
            stopping["MaxWaitTimeInSeconds"] = max(int(wait), stopping["MaxRuntimeInSeconds"])
        else:
            stopping.pop("MaxWaitTimeInSeconds", None)
        if "checkpoint_config" in v:
            set_or_drop(request, "CheckpointConfig", dict(v["checkpoint_config"]) or None)
        if "metric_definitions" in v:
            algorithm = request["AlgorithmSpecification"]
            recorded = [m["Name"] for m in algorithm.get("MetricDefinitions", [])]
            set_or_drop(algorithm, "MetricDefinitions", [{"Name": n, "Regex": r} for n, r in
                                                         in_recorded_order(v["metric_definitions"], recorded)])
        if v.get("model_artifact_path"):
            request["OutputDataConfig"]["S3OutputPath"] = v["model_artifact_path"]

    def kfp_outputs(self, description: Mapping[str, Any]) -> Dict[str, str]:
        return {"job_name": str(description[self.name_key]),
                "model_artifact_url": str(description.get("ModelArtifacts", {}).get("S3ModelArtifacts", "")),
                "training_image": str(description.get("AlgorithmSpecification", {}).get("TrainingImage", ""))}

    def status_details(self, description: Mapping[str, Any]) -> Tuple[Optional[str], Optional[str]]:
        secondary = description.get("SecondaryStatus")
        message: Optional[str] = None
        transitions = description.get("SecondaryStatusTransitions") or []
        if transitions and transitions[-1].get("Status") == secondary:
            message = transitions[-1].get("StatusMessage")
        return secondary, message

    def watch_notes(self, description: Mapping[str, Any]) -> Tuple[str, ...]:
        notes: List[str] = []
        if self.runs_on_warm_pool(description):
            notes.append("running on instances kept warm by an earlier job (warm pool InUse)")
        attempt, allowed = training_attempts(description)
        if attempt > 1:
            of = f" of {allowed}" if allowed else ""
            notes.append(f"attempt {attempt}{of}: SageMaker started the job again")
        return tuple(notes)

    def not_emulated_locally(self, request: Mapping[str, Any]) -> Tuple[str, ...]:
        asked = (
            ((request.get("ResourceConfig") or {}).get("KeepAlivePeriodInSeconds"),
             "--sagemaker-keep-alive (no instance outlives a local job)"),
            (request.get("RetryStrategy"), ("--sagemaker-retries (SageMaker retries after its own internal errors, "
                                           "which a local job never meets)")),
            (request.get("InfraCheckConfig"), "--sagemaker-infra-check (no instance health check)"),
            (request.get("SessionChainingConfig"), ("--sagemaker-session-chaining (the job runs with your "
                                                   "credentials)")),
            (request.get("RemoteDebugConfig"), ("--sagemaker-remote-debug (the processes run on this machine; "
                                               "no SSM session)")),
        )
        return tuple(text for value, text in asked if value)

    def runs_on_warm_pool(self, description: Mapping[str, Any]) -> bool:
        """``WarmPoolStatus`` ``InUse`` while the job runs: SageMaker's lifecycle gives that status to
        the job that took over an earlier job's pool."""
        pool = description.get("WarmPoolStatus") or {}
        return pool.get("Status") == "InUse" and description.get(self.status_key) == "InProgress"

    def starts_cold(self, description: Mapping[str, Any]) -> Optional[str]:
        """A job with a keep-alive that reached its download or script without ``WarmPoolStatus`` ``InUse``
        started on new instances: no pool matched it."""
        keep_alive = (description.get("ResourceConfig") or {}).get("KeepAlivePeriodInSeconds") or 0
        pool = description.get("WarmPoolStatus") or {}
        if keep_alive and description.get(self.status_key) == "InProgress" and \
                description.get("SecondaryStatus") in STARTED_STATUSES and pool.get("Status") != "InUse":
            return f"started on new instances ({POOL_MATCH})"
        return None

    def iteration_facts(self, description: Mapping[str, Any], reused_pool: bool,
                        new_instances: bool = False) -> Dict[str, Any]:
        from ..spec import WarmPool

        facts: Dict[str, Any] = {}
        keep_alive = int((description.get("ResourceConfig") or {}).get("KeepAlivePeriodInSeconds") or 0)
        pool = description.get("WarmPoolStatus") or {}
        if pool or keep_alive or reused_pool:
            status = str(pool.get("Status") or ("Requested" if keep_alive else "Terminated"))
            import datetime as _dt

            until = None
            ended = description.get("TrainingEndTime")
            if status == "Available" and keep_alive and isinstance(ended, _dt.datetime):
                until = (ended + _dt.timedelta(seconds=keep_alive)).astimezone(_dt.timezone.utc).isoformat()
            billable = pool.get("ResourceRetainedBillableTimeInSeconds")
            facts["warm_pool"] = WarmPool(status=status, keep_alive=keep_alive, reused=reused_pool,
                                          new_instances=new_instances and not reused_pool,
                                          available_until=until,
                                          billable_seconds=int(billable) if billable is not None else None,
                                          reused_by=pool.get("ReusedByJob"))
        attempt, allowed = training_attempts(description)
        if allowed or attempt > 1:
            facts.update(attempt=attempt, attempts_allowed=allowed)
        return facts

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
        out: Dict[str, Any] = {
            "model_artifact_url": result.model_artifact_url,
            "output_data_url": result.output_data_url,
            "training_image": result.training_image,
            "final_metrics": dict(result.final_metrics),
        }
        if result.warm_pool is not None:
            out["warm_pool"] = result.warm_pool.to_json()
        if result.attempt is not None:
            out["attempt"] = result.attempt
            out["attempts_allowed"] = result.attempts_allowed
        return out

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
