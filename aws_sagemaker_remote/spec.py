"""The frozen values that flow from one step to the next.

``JobSpec`` (from :mod:`~aws_sagemaker_remote.plan`) says what to run;
``StagedJob`` (from :mod:`~aws_sagemaker_remote.stage`) adds where everything
is in S3; :mod:`~aws_sagemaker_remote.render` turns a ``StagedJob`` into the
request; a backend runs it and :mod:`~aws_sagemaker_remote.watch` returns a
``JobResult``. No step changes a value it was given.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

from .options import CommonOptions


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

    @property
    def is_s3(self) -> bool:
        return self.source.startswith("s3://")


@dataclass(frozen=True)
class OutputChannel:
    """One output folder of the job."""

    name: str
    flag: Optional[str]
    #: the local folder the user named (for --sagemaker-download-outputs)
    local_path: Optional[str]
    #: ``s3://`` URI or ``"default"``
    destination: str
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
    requirements: Optional[str] = None
    configuration_script: Optional[str] = None
    configuration_command: Optional[str] = None
    #: absolute paths inside script_dir that are not bundled (inputs, outputs)
    exclude_paths: Tuple[str, ...] = ()


@dataclass(frozen=True)
class JobSpec:
    """Everything about a job that can be known without any network call."""

    kind: str  # "processing" | "training"
    job_name: str
    code: CodeSpec
    inputs: Tuple[InputChannel, ...]
    outputs: Tuple[OutputChannel, ...]
    #: the script's argument list inside the job (paths mapped, --sagemaker-run=no)
    arguments: Tuple[str, ...]
    options: CommonOptions
    environment: Tuple[Tuple[str, str], ...] = ()
    tags: Tuple[Tuple[str, str], ...] = ()
    #: training: metric name → regex
    metrics: Tuple[Tuple[str, str], ...] = ()
    #: training: hyperparameters recorded on the job (display only)
    hyperparameters: Tuple[Tuple[str, str], ...] = ()
    #: base job name used for default checkpoint locations
    base_job_name: str = ""


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
    """A JobSpec plus the concrete locations of everything."""

    spec: JobSpec
    region: str
    role_arn: str
    image_uri: str
    bucket: str
    prefix: str
    #: code bundle object URI
    code_uri: str
    #: input name → S3 URI the job reads
    input_uris: Mapping[str, str]
    #: output name → S3 URI the job writes
    output_uris: Mapping[str, str]
    #: training: OutputDataConfig.S3OutputPath
    model_output_uri: Optional[str] = None
    #: training: CheckpointConfig.S3Uri
    checkpoint_uri: Optional[str] = None
    uploads: Tuple[UploadItem, ...] = ()


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
    #: training
    model_artifact_url: Optional[str] = None
    output_data_url: Optional[str] = None
    training_image: Optional[str] = None
    final_metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 for ``Completed``, and for ``InProgress`` (a job left running with
        ``--sagemaker-wait=no`` or ``--sagemaker-detach``); 1 for ``Failed`` and ``Stopped``."""
        return 0 if self.status in ("Completed", "InProgress") else 1

    def to_json(self) -> Dict[str, Any]:
        """What ``--sagemaker-output-json`` writes: ``job_name``, ``kind``, ``status`` and
        ``output_artifacts`` (output name → S3 URI), the failure reason and console URL when
        known, and for training ``model_artifact_url``, ``output_data_url``, ``training_image``
        and ``final_metrics``."""
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
        if self.kind == "training":
            out.update(
                model_artifact_url=self.model_artifact_url,
                output_data_url=self.output_data_url,
                training_image=self.training_image,
                final_metrics=dict(self.final_metrics),
            )
        return out
