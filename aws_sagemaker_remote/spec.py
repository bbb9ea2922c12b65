"""The frozen values that flow from one step to the next.

``JobSpec`` and ``RunControl`` (from :mod:`~aws_sagemaker_remote.plan`) say
what to run and how this launch behaves; a target gives the ``Placement`` (role,
image, bucket, prefix); ``StagedJob`` (from :mod:`~aws_sagemaker_remote.stage`)
adds where the code and inputs are in S3; :mod:`~aws_sagemaker_remote.render`
turns a ``StagedJob`` and its ``Placement`` into the request; a backend runs it
and :mod:`~aws_sagemaker_remote.watch` returns a ``JobResult``. No step changes
a value it was given, and nothing after plan reads the parsed options.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Tuple

if TYPE_CHECKING:  # pragma: no cover
    from .kinds.base import JobKind


@dataclass(frozen=True)
class InputChannel:
    """One input of the job (a ProcessingInput or a training channel)."""

    name: str
    #: absolute local path (file or folder) or ``s3://`` URI
    source: str
    #: the flag the script reads it from (``--NAME``), or None for the code channel
    flag: Optional[str]
    #: the folder it appears in inside the container
    container_path: str
    #: the value the flag gets inside the job (the folder, or folder/filename for one file)
    container_value: str
    mode: str = "File"
    s3_data_type: str = "S3Prefix"
    distribution: str = "FullyReplicated"
    compression: str = "None"
    content_type: Optional[str] = None
    record_wrapper: str = "None"
    #: ``AttributeNames`` of an augmented manifest (training channels)
    attributes: Tuple[str, ...] = ()

    @property
    def is_s3(self) -> bool:
        return self.source.startswith("s3://")


@dataclass(frozen=True)
class Location:
    """An S3 location decided in plan: an explicit ``s3://`` URI, or a default named by its key
    parts under the job's bucket and prefix, which render fills in from the placement."""

    #: the ``s3://`` URI the user gave, or None for the default
    uri: Optional[str] = None
    #: the default's key parts below ``PREFIX`` (used when ``uri`` is None)
    key: Tuple[str, ...] = ()

    def resolve(self, bucket: str, prefix: str) -> str:
        """The ``s3://`` URI: the explicit one, or ``s3://BUCKET/PREFIX/KEY...``."""
        if self.uri is not None:
            return self.uri
        key = "/".join(p.strip("/") for p in (prefix,) + self.key if p and p.strip("/"))
        return f"s3://{bucket}/{key}" if key else f"s3://{bucket}/"


@dataclass(frozen=True)
class OutputChannel:
    """One output folder of the job."""

    name: str
    flag: Optional[str]
    #: the local folder the user named (for --sagemaker-download-outputs)
    local_path: Optional[str]
    #: where the job uploads it (processing; training outputs travel inside output.tar.gz)
    location: Location
    container_path: str
    upload_mode: str = "EndOfJob"


@dataclass(frozen=True)
class CodeSpec:
    """What goes into the code bundle."""

    #: absolute path of the script
    script: str
    #: the folder that is bundled as the script's folder
    script_dir: str
    #: (module name, absolute path of a folder or .py file)
    dependencies: Tuple[Tuple[str, str], ...] = ()
    #: the user's requirements file, shipped unchanged (``requirements_text`` is None then)
    requirements: Optional[str] = None
    configuration_script: Optional[str] = None
    configuration_command: Optional[str] = None
    #: absolute paths inside script_dir that are not bundled (inputs, outputs)
    exclude_paths: Tuple[str, ...] = ()
    #: a requirements file generated from --sagemaker-requirements (pyproject, lock file, freeze)
    requirements_text: Optional[str] = None
    #: ("index-url" | "extra-index-url", URL) of the user's pip/uv configuration; the URLs may
    #: hold credentials: kept out of repr, printed only masked
    package_indexes: Tuple[Tuple[str, str], ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class Resources:
    """The instances: ``ClusterConfig`` (processing) or ``ResourceConfig`` (training)."""

    instance_type: str
    count: int = 1
    volume_gb: int = 30
    volume_kms: Optional[str] = None


@dataclass(frozen=True)
class Network:
    """VPC and network settings; empty means SageMaker's defaults."""

    subnets: Tuple[str, ...] = ()
    security_groups: Tuple[str, ...] = ()
    isolation: bool = False
    traffic_encryption: bool = False


@dataclass(frozen=True)
class Stopping:
    """``StoppingCondition``: ``max_wait`` is set (plan's default: ``max_run``) only for spot training."""

    max_run: int
    max_wait: Optional[int] = None


@dataclass(frozen=True)
class Training:
    """What only a training job has."""

    #: default input mode of the channels (File, Pipe or FastFile)
    input_mode: str = "File"
    #: a SageMaker algorithm resource run instead of an image
    algorithm_name: Optional[str] = None
    spot: bool = False
    #: metric name → regex
    metrics: Tuple[Tuple[str, str], ...] = ()
    #: hyperparameters recorded on the job (display only)
    hyperparameters: Tuple[Tuple[str, str], ...] = ()
    #: ``OutputDataConfig.S3OutputPath`` (SageMaker appends ``JOB/output/model.tar.gz``)
    model_output: Location = Location(key=("jobs",))
    #: ``CheckpointConfig.S3Uri``, or None for no checkpoint sync
    checkpoint: Optional[Location] = None
    #: how the job starts: ``bootstrap`` (our entrypoint) or ``toolkit`` (the image's, script mode)
    entry: str = "bootstrap"
    #: empty the checkpoint location before the job starts (``--sagemaker-fresh``)
    fresh: bool = False
    #: ``ResourceConfig.KeepAlivePeriodInSeconds``: seconds the instances stay warm after the job (0: none)
    keep_alive: int = 0
    #: ``RetryStrategy.MaximumRetryAttempts`` (0: no retry strategy)
    retries: int = 0
    #: ``InfraCheckConfig.EnableInfraCheck``
    infra_check: bool = False
    #: ``SessionChainingConfig.EnableSessionTagChaining``
    session_chaining: bool = False
    #: ``RemoteDebugConfig.EnableRemoteDebug`` (an SSM session into the running container)
    remote_debug: bool = False


@dataclass(frozen=True)
class JobSpec:
    """The whole job, resolved: everything that can be known without any network call.

    Nothing downstream of plan reads the options the command line was parsed into.
    """

    kind: "JobKind"
    job_name: str
    code: CodeSpec
    inputs: Tuple[InputChannel, ...]
    outputs: Tuple[OutputChannel, ...]
    #: the script's argument list inside the job (paths mapped, --sagemaker-run=job)
    arguments: Tuple[str, ...]
    resources: Resources
    stopping: Stopping
    network: Network = Network()
    environment: Tuple[Tuple[str, str], ...] = ()
    tags: Tuple[Tuple[str, str], ...] = ()
    #: KMS key of the job's outputs in S3
    output_kms: Optional[str] = None
    #: training only
    training: Optional[Training] = None
    #: base job name (used in the default checkpoint location)
    base_job_name: str = ""

    @property
    def metrics(self) -> Tuple[Tuple[str, str], ...]:
        """Training metric definitions (none for processing)."""
        return self.training.metrics if self.training else ()


@dataclass(frozen=True)
class AwsSettings:
    """How to reach AWS and where the job's files go, as the user asked (resolved in targets)."""

    profile: Optional[str] = None
    region: Optional[str] = None
    endpoint_url: Optional[str] = None
    assume_role: Optional[str] = None
    #: role ARN or name, None when no source gave one
    role: Optional[str] = None
    bucket: Optional[str] = None
    prefix: str = "aws-sagemaker-remote"  # options.DEFAULT_PREFIX (this module imports no options)
    #: image URI or framework shorthand as given
    image: str = ""


@dataclass(frozen=True)
class RunControl:
    """How this launch behaves: not part of the job, so never in the request."""

    run: str  # "yes" | "local"
    wait: bool = True
    detach: bool = False
    dry_run: bool = False
    output_json: Optional[str] = None
    download_outputs: bool = False
    download_model: Optional[str] = None
    #: write the ACK resource / the KFP component to these files instead of creating the job
    export_ack: Optional[str] = None
    export_kfp: Optional[str] = None
    #: "local", "s3" or "auto": where ``--sagemaker-run=local`` keeps the job's files
    store: str = "auto"
    #: (option name, where its value came from) for each value not from a built-in default
    sources: Tuple[Tuple[str, str], ...] = ()
    aws: AwsSettings = AwsSettings()


@dataclass(frozen=True)
class Placement:
    """Where the job runs and keeps its files: decided by the target, after plan."""

    role_arn: str
    image_uri: str
    bucket: str
    prefix: str
    #: the region the job runs in, when the target knows it
    region: Optional[str] = None


@dataclass(frozen=True)
class UploadItem:
    """One object in the upload plan."""

    local_path: str
    uri: str
    size: int
    present: bool  # already in S3 (skipped)
    #: the same content already stored elsewhere: copied within S3 instead of uploaded
    copy_from: Optional[str] = None


@dataclass(frozen=True)
class StagedJob:
    """A JobSpec plus the S3 locations staging gave its code and inputs."""

    spec: JobSpec
    #: the code channel's URI (a ``ManifestFile`` naming the code's blobs)
    code_uri: str
    #: input name → S3 URI the job reads
    input_uris: Mapping[str, str]
    uploads: Tuple[UploadItem, ...] = ()
    #: the staged argument file, when the arguments do not fit ``ContainerArguments``
    arguments_uri: Optional[str] = None
    #: the code manifest's file name in the code channel (the bootstrap stub's first argument)
    code_entry: str = "bundle.json"


def output_uris(spec: JobSpec, placement: Placement) -> Dict[str, str]:
    """Output name → the ``s3://`` URI the job uploads it to."""
    return {out.name: out.location.resolve(placement.bucket, placement.prefix) for out in spec.outputs}


#: The phases of :class:`Timing`, in the order they happen.
TIMING_PHASES = ("provisioning", "download", "install", "script", "upload")


@dataclass(frozen=True)
class Timing:
    """Where a job's time went, in seconds; None where the job did not say (see ``docs/operating.rst``)."""

    #: from the job's creation until its input download began (instances, image; for processing also
    #: the input download, which SageMaker does not time apart)
    provisioning: Optional[float] = None
    #: the input download
    download: Optional[float] = None
    #: the requirements install (the job's own ``phase install took`` line)
    install: Optional[float] = None
    #: the user's script (the job's own ``phase script took`` line)
    script: Optional[float] = None
    #: the upload of outputs and model
    upload: Optional[float] = None
    #: from the job's creation to its end
    total: Optional[float] = None
    #: training: the seconds SageMaker bills (``BillableTimeInSeconds``)
    billable: Optional[float] = None

    def to_json(self) -> Dict[str, float]:
        """The known values by name (``provisioning``, ..., ``total``, ``billable``), in seconds."""
        names = TIMING_PHASES + ("total", "billable")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


@dataclass(frozen=True)
class WarmPool:
    """A training job's managed warm pool, as ``DescribeTrainingJob`` reports it (``WarmPoolStatus``)."""

    #: ``Available`` (kept, waiting for a matching job), ``InUse``, ``Reused`` (moved to another job),
    #: ``Terminated``; ``Requested`` when the job asked for a pool and SageMaker reports no status yet
    status: str
    #: ``ResourceConfig.KeepAlivePeriodInSeconds`` of the job
    keep_alive: int
    #: the job ran on instances that an earlier job's pool kept warm (seen ``InUse`` while it ran)
    reused: bool = False
    #: when an ``Available`` pool ends unless a matching job takes it (ISO 8601, UTC)
    available_until: Optional[str] = None
    #: ``ResourceRetainedBillableTimeInSeconds``: billed seconds of the kept instances (times the count)
    billable_seconds: Optional[int] = None
    #: ``ReusedByJob``: the job the pool moved to
    reused_by: Optional[str] = None
    #: the job asked for a pool but was seen starting on new instances (no pool matched it)
    new_instances: bool = False

    def to_json(self) -> Dict[str, Any]:
        """The pool's fields, without the ones SageMaker did not report."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class JobResult:
    """What a finished (or detached) job left behind."""

    kind: str
    job_name: str
    status: str  # Completed | Failed | Stopped | InProgress (detached)
    failure_reason: Optional[str] = None
    output_artifacts: Mapping[str, str] = field(default_factory=dict)
    console_url: Optional[str] = None
    last_log_lines: Tuple[str, ...] = ()
    #: where the job's whole log can be read after it ended (a CloudWatch console URL, a local file)
    log_locations: Tuple[str, ...] = ()
    #: training
    model_artifact_url: Optional[str] = None
    output_data_url: Optional[str] = None
    training_image: Optional[str] = None
    final_metrics: Mapping[str, float] = field(default_factory=dict)
    #: what the script's ``main`` returned, when it was JSON-serialisable (read back from the file the
    #: job wrote beside its outputs, see :mod:`aws_sagemaker_remote.result`); None otherwise
    value: Any = None
    #: training: the job's warm pool, when it asked for one (``--sagemaker-keep-alive``) or ran on one
    warm_pool: Optional[WarmPool] = None
    #: training with a retry strategy: the attempt this result is of (1: the first), and how many
    #: SageMaker allows (1 + ``RetryStrategy.MaximumRetryAttempts``)
    attempt: Optional[int] = None
    attempts_allowed: Optional[int] = None
    #: where the job's time went, once it ended (see :func:`aws_sagemaker_remote.phases.timing`)
    timing: Optional[Timing] = None

    @property
    def exit_code(self) -> int:
        """0 for ``Completed``, and for ``InProgress`` (a job left running with
        ``--sagemaker-wait=no`` or ``--sagemaker-detach``); 1 for ``Failed`` and ``Stopped``."""
        return 0 if self.status in ("Completed", "InProgress") else 1

    def to_json(self) -> Dict[str, Any]:
        """What ``--sagemaker-output-json`` writes: ``job_name``, ``kind``, ``status`` and
        ``output_artifacts`` (output name → S3 URI), the failure reason and console URL when
        known, ``timing`` (seconds by phase, see :class:`Timing`) once the job ended, and for
        training ``model_artifact_url``, ``output_data_url``, ``training_image`` and ``final_metrics``."""
        out: Dict[str, Any] = {
            "job_name": self.job_name,
            "kind": self.kind,
            "status": self.status,
            "output_artifacts": dict(self.output_artifacts),
        }
        if self.failure_reason:
            out["failure_reason"] = self.failure_reason
        if self.console_url:
            out["console_url"] = self.console_url
        if self.value is not None:
            out["value"] = self.value
        if self.timing is not None:
            out["timing"] = self.timing.to_json()
        from .kinds import job_kind

        out.update(job_kind(self.kind).result_json(self))
        return out
