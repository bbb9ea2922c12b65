"""What the local backend does differently for a Processing and a Training job.

Each kind is three functions, gathered in :data:`KINDS`: how many instances the
request asks for, how the job runs (inputs, config files, processes, uploads,
outcome), and what its ``Describe*Job`` response adds to the fields both kinds
share (:meth:`~aws_sagemaker_remote.backends.local.state.Job.describe`).
Everything else in the backend is the same for both kinds.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from ...bootstrap import phase_line
from ...container import ContainerPaths
from ...store import upload_folder
from ..base import PROCESSING, TRAINING
from . import disk, pipes, toolkit
from .processes import execute
from .state import Instance, Job, JobError, Settings
from .transfer import fetch, read_text, upload, upload_tarball, write_json


@dataclass(frozen=True)
class KindHooks:
    """The kind-specific parts of running and describing a local job."""

    instance_count: Callable[[Mapping[str, Any]], int]
    run: Callable[[Settings, Job], None]
    describe_extras: Callable[[Job], Dict[str, Any]]


def _phase_done(settings: Settings, job: Job, instance: Instance, name: str, started: float) -> None:
    """Log how long the backend's own phase ``name`` (``download``, ``upload``) took for ``instance``, on
    the backend's clock, in the form the job's bootstrap logs its own phases: the watch's breakdown of
    the job's time reads these lines (SageMaker reports these phases in its describe response instead)."""
    job.add_line(instance.host, phase_line(name, settings.clock() - started))


# --- processing ------------------------------------------------------------------------------------

def processing_instance_count(request: Mapping[str, Any]) -> int:
    """``ProcessingResources.ClusterConfig.InstanceCount`` (1 when absent)."""
    return int(request.get("ProcessingResources", {}).get("ClusterConfig", {}).get("InstanceCount", 1) or 1)


def processing_outputs(request: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """The request's ``S3Output`` outputs."""
    config = request.get("ProcessingOutputConfig") or {}
    return [o for o in config.get("Outputs", []) or [] if o.get("S3Output")]


def processing_job_config(job: Job) -> Dict[str, Any]:
    """``/opt/ml/config/processingjobconfig.json`` as SageMaker writes it: the request without its
    tags, the ARN, ``S3DownloadMode`` on each S3 input and the KMS keys, ``null`` when unset."""
    config = {k: v for k, v in copy.deepcopy(job.request).items() if k != "Tags"}
    config["ProcessingJobArn"] = job.arn
    for item in config.get("ProcessingInputs", []) or []:
        if item.get("S3Input"):
            item["S3Input"].setdefault("S3DownloadMode", "StartOfJob")
    if config.get("ProcessingOutputConfig") is not None:
        config["ProcessingOutputConfig"].setdefault("KmsKeyId", None)
    cluster = config.get("ProcessingResources", {}).get("ClusterConfig")
    if cluster is not None:
        cluster.setdefault("VolumeKmsKeyId", None)
    return config


def joined_messages(instances: List[Instance]) -> Optional[str]:
    """Every instance's ``/opt/ml/output/message``, concatenated in host order as SageMaker does
    (cut to 1 KB by :meth:`Job.publish`), or None when none wrote one. A message that does not end
    with a line break gets one, so that two one-line messages stay two lines."""
    parts = []
    for instance in instances:
        try:
            with open(instance.paths.processing_failure, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError:
            continue
        if text.strip():
            parts.append(text if text.endswith("\n") else text + "\n")
    text = "".join(parts).strip()
    return text or None


def _check_inputs_fit(job: Job, limit: Optional[int]) -> None:
    """The downloaded inputs must fit in the volume, as on SageMaker, before anything runs."""
    reason = disk.over_limit(job, limit)
    if reason:
        raise JobError("ClientError: the input data does not fit in the volume: " + reason)


def run_processing(settings: Settings, job: Job) -> None:
    """Inputs and config files into every instance, run, then outputs if every instance succeeded."""
    request = job.request
    hosts = [i.host for i in job.instances]
    streams: List[Tuple[Instance, pipes.PipeChannel]] = []
    for instance in job.instances:
        started = settings.clock()
        for item in request.get("ProcessingInputs", []) or []:
            source = item.get("S3Input")
            if not source:
                raise JobError(f"ClientError: input {item.get('InputName')}: only S3Input is supported "
                               "by the local backend")
            if pipes.is_pipe(source.get("S3InputMode")):
                # Processing has no RecordWrapperType: the objects arrive back to back
                streams.append((instance, pipes.plan_channel(
                    settings, job, instance, str(item.get("InputName")), source,
                    source.get("S3CompressionType", "None") == "Gzip", False, instance.local(source["LocalPath"]))))
                continue
            fetch(settings, job, instance, source["S3Uri"], source.get("S3DataType", "S3Prefix"),
                  source.get("S3DataDistributionType", "FullyReplicated"),
                  source.get("S3CompressionType", "None") == "Gzip", instance.local(source["LocalPath"]))
        for output in processing_outputs(request):
            os.makedirs(instance.local(output["S3Output"]["LocalPath"]), exist_ok=True)
        write_json(instance.paths.processing_job_config, processing_job_config(job))
        write_json(instance.paths.processing_resource_config, {"current_host": instance.host, "hosts": hosts})
        _phase_done(settings, job, instance, "download", started)
    if job.stopped_early():
        return
    limit = disk.volume_bytes(PROCESSING, request)
    _check_inputs_fit(job, limit)
    app = request.get("AppSpecification", {})
    with disk.watched(job, limit), pipes.feeding(job, streams) as writers:
        execute(settings, job, app.get("ContainerEntrypoint"), app.get("ContainerArguments"), lambda _instance: {})
    streamed = pipes.stream_failure(writers)
    failed = [i for i in job.instances if i.exit_code != 0]
    first = (failed or job.instances)[0]
    message = joined_messages(job.instances)
    if job.disk_failure:
        job.finish("Failed", "AlgorithmError: " + job.disk_failure, message)
    elif streamed and not job.stop_event.is_set():
        job.finish("Failed", streamed, message)
    elif job.stop_event.is_set():
        job.finish("Stopped", job.stop_reason_text(), message)
    elif failed:
        job.finish("Failed", "AlgorithmError: " + (message or f"Exit code {first.exit_code}"), message)
    else:
        # SageMaker uploads each output once the job succeeded; every instance
        # uploads under the same prefix, so equal file names overwrite (algo-N last)
        for instance in job.instances:
            started = settings.clock()
            for output in processing_outputs(request):
                upload(f"output {output.get('OutputName')}", upload_folder, settings.store,
                       instance.local(output["S3Output"]["LocalPath"]), output["S3Output"]["S3Uri"])
            _phase_done(settings, job, instance, "upload", started)
        job.finish("Completed", None, message)


def processing_describe_extras(job: Job) -> Dict[str, Any]:
    """``ProcessingJobArn``, start and end times, ``ExitMessage``; call with ``job.lock`` held."""
    extras: Dict[str, Any] = {"ProcessingJobArn": job.arn}
    if job.started:
        extras["ProcessingStartTime"] = job.started
    if job.ended:
        extras["ProcessingEndTime"] = job.ended
    if job.exit_message:
        extras["ExitMessage"] = job.exit_message
    return extras


# --- training --------------------------------------------------------------------------------------

def training_instance_count(request: Mapping[str, Any]) -> int:
    """``ResourceConfig.InstanceCount`` (1 when absent)."""
    return int(request.get("ResourceConfig", {}).get("InstanceCount", 1) or 1)


def _prepare_training_instance(settings: Settings, job: Job, instance: Instance,
                               hosts: List[str]) -> List[pipes.PipeChannel]:
    """Channels, config files, model/output folders and checkpoints of one instance; returns its
    Pipe-mode channels, which stream while the job runs."""
    request = job.request
    algorithm = request.get("AlgorithmSpecification", {})
    default_mode = algorithm.get("TrainingInputMode", "File")
    checkpoint = request.get("CheckpointConfig")
    paths = instance.paths
    data_config: Dict[str, Dict[str, str]] = {}
    streams: List[pipes.PipeChannel] = []
    for channel in request.get("InputDataConfig", []) or []:
        name = channel["ChannelName"]
        source = channel.get("DataSource", {}).get("S3DataSource")
        if not source:
            raise JobError(f"ClientError: channel {name}: only S3DataSource is supported by the local backend")
        distribution = source.get("S3DataDistributionType", "FullyReplicated")
        mode = channel.get("InputMode") or default_mode
        if pipes.is_pipe(mode):
            streams.append(pipes.plan_channel(
                settings, job, instance, name, source, channel.get("CompressionType", "None") == "Gzip",
                channel.get("RecordWrapperType", "None") == "RecordIO", paths.training_channel(name)))
        elif source.get("S3DataType") == "AugmentedManifestFile":
            raise JobError(f"ClientError: channel {name}: S3DataType AugmentedManifestFile needs InputMode Pipe")
        else:
                fetch(settings, job, instance, source["S3Uri"], source.get("S3DataType", "S3Prefix"), distribution,
                  channel.get("CompressionType", "None") == "Gzip", paths.training_channel(name))
        entry = {
            # FastFile channels are presented to the container as File (SageMaker's own files say so)
            "TrainingInputMode": _container_input_mode(mode),
            "S3DistributionType": distribution,
            "RecordWrapperType": channel.get("RecordWrapperType", "None"),
        }
        if channel.get("ContentType"):
            entry["ContentType"] = channel["ContentType"]
        data_config[name] = entry
    instance_type = request.get("ResourceConfig", {}).get("InstanceType", "")
    write_json(paths.hyperparameters, request.get("HyperParameters") or {})
    write_json(paths.input_data_config, data_config)
    write_json(paths.training_resource_config, {
        "current_host": instance.host,
        "current_instance_type": instance_type,
        "current_group_name": "homogeneousCluster",
        "hosts": hosts,
        "instance_groups": [{
            "instance_group_name": "homogeneousCluster",
            "instance_type": instance_type,
            "hosts": hosts,
        }],
        "network_interface_name": "eth0",
    })
    for folder in (paths.model_dir, paths.output_data_dir):
        os.makedirs(folder, exist_ok=True)
    if checkpoint:
        # every instance starts from what the last run left in S3
        local = instance.local(checkpoint.get("LocalPath") or ContainerPaths().checkpoints)
        fetch(settings, job, instance, checkpoint["S3Uri"].rstrip("/") + "/", "S3Prefix", "FullyReplicated",
              False, local, required=False)
    return streams


def _container_input_mode(mode: str) -> str:
    """The ``TrainingInputMode`` inputdataconfig.json shows for a channel's mode."""
    return "File" if mode == "FastFile" else mode


def _training_environment(job: Job, instance: Instance) -> Dict[str, str]:
    """What SageMaker sets in a training container: the job's name and ARN.

    The ``SM_*`` variables come from the image's toolkit on SageMaker, and from
    our bootstrap in both places; a request with its own entrypoint gets none.
    """
    return {"TRAINING_JOB_NAME": job.name, "TRAINING_JOB_ARN": job.arn}


def run_training(settings: Settings, job: Job) -> None:
    """Channels, config files and checkpoints into every instance, run, then checkpoints and the model."""
    request = job.request
    algorithm = request.get("AlgorithmSpecification", {})
    checkpoint = request.get("CheckpointConfig")
    hosts = [i.host for i in job.instances]
    job.set_secondary("Downloading", "Downloading input data")
    streams: List[Tuple[Instance, pipes.PipeChannel]] = []
    for instance in job.instances:
        started = settings.clock()
        streams += [(instance, c) for c in _prepare_training_instance(settings, job, instance, hosts)]
        _phase_done(settings, job, instance, "download", started)
    if job.stopped_early():
        return
    limit = disk.volume_bytes(TRAINING, request)
    _check_inputs_fit(job, limit)
    entrypoint, arguments = algorithm.get("ContainerEntrypoint"), algorithm.get("ContainerArguments")
    extra: Dict[str, str] = {}
    if not entrypoint:
        # the image's own entry point: a framework image's toolkit (script mode)
        entrypoint, arguments, extra = toolkit.command(), [], toolkit.environment(settings, job)
        for instance in job.instances:
            toolkit.place_submit_directory(settings, job, instance)
    job.set_secondary("Training", "Training image download completed. Training in progress.")
    with disk.watched(job, limit), pipes.feeding(job, streams) as writers:
        execute(settings, job, entrypoint, arguments, lambda instance: {**_training_environment(job, instance),
                                                                        **extra})
    if job.disk_failure:
        job.finish("Failed", "AlgorithmError: " + job.disk_failure)
        return
    streamed = pipes.stream_failure(writers)
    if streamed and not job.stop_event.is_set():
        job.finish("Failed", streamed)
        return
    failed = [i for i in job.instances if i.exit_code != 0]
    first = (failed or job.instances)[0]
    stopped = job.stop_event.is_set()
    job.set_secondary("Uploading", "Uploading generated training model")
    leader = job.instances[0]
    started = settings.clock()
    if checkpoint:
        # also after a failure or a stop: a restarted job resumes from here
        local = leader.local(checkpoint.get("LocalPath") or ContainerPaths().checkpoints)
        upload("checkpoints", upload_folder, settings.store, local, checkpoint["S3Uri"])
    if not failed or stopped:
        # SageMaker keeps what the script saved in the SIGTERM grace period of a stop
        base = request["OutputDataConfig"]["S3OutputPath"].rstrip("/") + f"/{job.name}/output"
        scratch = job.job_dir or ""
        upload("model.tar.gz", upload_tarball, settings.store, leader.paths.model_dir, base + "/model.tar.gz",
               scratch)
        upload("output.tar.gz", upload_tarball, settings.store, leader.paths.output_data_dir,
               base + "/output.tar.gz", scratch)
        with job.lock:
            job.model_artifacts = base + "/model.tar.gz"
    _phase_done(settings, job, leader, "upload", started)
    if stopped:
        job.finish("Stopped", job.stop_reason_text())
    elif failed:
        message = read_text(first.paths.training_failure)
        job.finish("Failed", "AlgorithmError: " + (message or f"Exit code {first.exit_code}"))
    else:
        job.finish("Completed")


def training_describe_extras(job: Job) -> Dict[str, Any]:
    """ARN, secondary statuses, times, model artifacts and final metrics; call with ``job.lock`` held."""
    extras: Dict[str, Any] = {
        "TrainingJobArn": job.arn,
        "SecondaryStatus": job.secondary,
        "SecondaryStatusTransitions": copy.deepcopy(job.transitions),
    }
    if job.started:
        extras["TrainingStartTime"] = job.started
    if job.ended:
        extras["TrainingEndTime"] = job.ended
        if job.started:
            extras["TrainingTimeInSeconds"] = int((job.ended - job.started).total_seconds())
    if job.ended and (job.request.get("ResourceConfig") or {}).get("KeepAlivePeriodInSeconds"):
        # no instance outlives a local job: the pool it asked for ends with it, and nothing was billed
        extras["WarmPoolStatus"] = {"Status": "Terminated", "ResourceRetainedBillableTimeInSeconds": 0}
    if job.model_artifacts:
        extras["ModelArtifacts"] = {"S3ModelArtifacts": job.model_artifacts}
    if job.metrics:
        extras["FinalMetricDataList"] = [
            {"MetricName": metric, "Value": value, "Timestamp": stamp}
            for metric, (value, stamp) in sorted(job.metrics.items())
        ]
    return extras


#: The job kinds the local backend runs, by ``kind``.
KINDS: Dict[str, KindHooks] = {
    PROCESSING: KindHooks(processing_instance_count, run_processing, processing_describe_extras),
    TRAINING: KindHooks(training_instance_count, run_training, training_describe_extras),
}
