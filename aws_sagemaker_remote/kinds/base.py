"""What a job kind is: everything that differs between a Processing and a Training job.

A :class:`JobKind` holds the API's limits, the container layout it uses, how
its request is rendered, the keys and names of its describe responses, logs
and console page, how its result and downloads are read, and the planning
that only it needs. The rest of the package asks the kind object instead of
comparing kind names; adding a kind is adding one module.

Standard library only at import time (the package ships inside the job);
rendering and planning helpers are imported when a method needs them.
"""
from __future__ import annotations

import argparse
import re
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Pattern, TextIO, Tuple, Type

from ..options import CommonOptions

if TYPE_CHECKING:  # pragma: no cover
    from ..container import ContainerPaths
    from ..flags import Declaration
    from ..spec import JobResult, JobSpec, Placement, RunControl, StagedJob, Training
    from ..store import Store


class JobKind:
    """One kind of SageMaker job; each module of :mod:`aws_sagemaker_remote.kinds` defines one instance."""

    #: the public name: ``"processing"`` or ``"training"`` (flags, CLI, JobResult.kind, backends)
    name: str = ""
    #: the options class whose fields make this kind's ``--sagemaker-*`` flags
    options: Type[CommonOptions] = CommonOptions
    #: API limits the user's input can break (see :mod:`aws_sagemaker_remote.plan`)
    limits: Mapping[str, int] = MappingProxyType({})
    #: the describe response's status and name keys
    status_key: str = ""
    name_key: str = ""
    #: the CloudWatch Logs group of the jobs
    log_group: str = ""
    #: the SageMaker console's page of a job (``#/PAGE/JOB``)
    console_page: str = ""
    #: outputs have their own S3 location (``--NAME-s3``); otherwise they travel in an archive
    outputs_have_locations: bool = True
    #: input modes the kind accepts
    input_modes: Tuple[str, ...] = ("File", "Pipe")
    #: the input ``S3DataType`` values the request takes (augmented manifests carry ``AttributeNames``)
    s3_data_types: Tuple[str, ...] = ("S3Prefix", "ManifestFile", "AugmentedManifestFile")
    #: channel names must match this, when not None
    channel_name_re: Optional[Pattern[str]] = None
    #: the generated folder flags: (keyword, local default, folder in the job, help)
    folders: Tuple[Tuple[str, str, str, str], ...] = ()

    # --- the request's layout, for code that reads or edits a rendered request (the exporters)
    #: the ACK SageMaker controller's resource of this kind
    ack_kind: str = ""
    #: where the request keeps ``InstanceType``, ``InstanceCount``, ``VolumeSizeInGB``, ``VolumeKmsKeyId``
    resources_path: Tuple[str, ...] = ()
    #: where the request keeps the image URI
    image_path: Tuple[str, ...] = ()
    #: where the request keeps ``EnableNetworkIsolation``, ``EnableInterContainerTrafficEncryption`` and
    #: ``VpcConfig`` (``()``: at its top level)
    network_path: Tuple[str, ...] = ()
    #: the request member with the outputs' ``KmsKeyId``
    output_config_key: str = ""

    def __repr__(self) -> str:
        return f"<job kind {self.name}>"

    def response_key(self, suffix: str) -> str:
        """A key of this kind's requests and responses: ``response_key("StartTime")`` →
        ``ProcessingStartTime``."""
        return self.name_key[: -len("JobName")] + suffix

    @staticmethod
    def at(response: Mapping[str, Any], path: Tuple[str, ...]) -> Any:
        """The member of a request or response at ``path`` (such as :attr:`resources_path`), None when absent."""
        found: Any = response
        for key in path:
            found = found.get(key) if isinstance(found, Mapping) else None
        return found

    def api(self, verb: str) -> str:
        """The boto3 method: ``api("create")`` → ``create_processing_job``."""
        return f"{verb}_{self.name}_job"

    # --- container layout ------------------------------------------------------
    def code_dir(self, paths: "ContainerPaths") -> str:
        """Where the code bundle input lands."""
        raise NotImplementedError

    def failure_file(self, paths: "ContainerPaths") -> str:
        """Text written here becomes the job's failure reason."""
        raise NotImplementedError

    def input_path(self, paths: "ContainerPaths", name: str, declared: Optional[str]) -> str:
        """The folder an input appears in (``declared``: the ``PathArgument.container_path``)."""
        raise NotImplementedError

    def output_path(self, paths: "ContainerPaths", name: str, declared: Optional[str]) -> str:
        """The folder the script writes an output to."""
        raise NotImplementedError

    def checked_root(self, paths: "ContainerPaths") -> Optional[str]:
        """Inputs and outputs must lie in distinct folders under this one, when not None."""
        return None

    # --- plan ---------------------------------------------------------------------
    def plan_part(self, decl: "Declaration", namespace: argparse.Namespace, options: CommonOptions,
                  mapped: Mapping[str, str], base_job_name: str) -> "Optional[Training]":
        """Check this kind's own options and return its part of the job (None: it has none)."""
        return None

    def needs_argument_file(self, spec: "JobSpec") -> bool:
        """Whether the script's arguments travel in a staged file instead of the request."""
        from ..container import needs_argument_file

        return needs_argument_file(spec.arguments)

    def ack_plan_refusal(self, spec: "JobSpec") -> Optional[str]:
        """Why the ACK controller's resource of this kind cannot express the job, when that is known
        from the plan, before anything is staged (:meth:`ack_refusal` checks the rendered request)."""
        return None

    # --- request and responses --------------------------------------------------------
    def render(self, staged: "StagedJob", placement: "Placement") -> Dict[str, Any]:
        """The create request's keyword arguments."""
        raise NotImplementedError

    def request_inputs(self, request: Mapping[str, Any]) -> Dict[str, Dict[str, Any]]:
        """Each declared input's S3 source in ``request`` (the dict holding its ``S3Uri``), by name;
        the code bundle's input is the framework's, not one of them."""
        raise NotImplementedError

    def request_outputs(self, request: Mapping[str, Any]) -> Dict[str, Dict[str, Any]]:
        """Each output's ``S3Output`` in ``request`` (holding ``S3Uri``), by name; none when the
        outputs travel in an archive."""
        return {}

    def ack_refusal(self, request: Mapping[str, Any]) -> Optional[str]:
        """Why the ACK resource of this kind cannot express ``request``, or None."""
        return None

    def status_details(self, description: Mapping[str, Any]) -> Tuple[Optional[str], Optional[str]]:
        """(secondary status, its message) of a describe response, when the kind has them."""
        return None, None

    def watch_notes(self, description: Mapping[str, Any]) -> Tuple[str, ...]:
        """What a describe response of the running job says beyond its status, one line each
        (training: a reused warm pool, a retried attempt)."""
        return ()

    def not_emulated_locally(self, request: Mapping[str, Any]) -> Tuple[str, ...]:
        """What ``request`` asks for that the local backend accepts but does not do, one phrase each."""
        return ()

    def runs_on_warm_pool(self, description: Mapping[str, Any]) -> bool:
        """The running job took over instances an earlier job kept warm."""
        return False

    def starts_cold(self, description: Mapping[str, Any]) -> Optional[str]:
        """The note, when the running job asked for a warm pool but started on new instances; None otherwise."""
        return None

    def iteration_facts(self, description: Mapping[str, Any], reused_pool: bool,
                        new_instances: bool = False) -> Dict[str, Any]:
        """The :class:`~aws_sagemaker_remote.spec.JobResult` fields on warm pools and attempts
        (``warm_pool``, ``attempt``, ``attempts_allowed``) of a final describe response; ``reused_pool``
        and ``new_instances`` say what the watch saw while the job ran."""
        return {}

    def result(self, description: Mapping[str, Any], common: Dict[str, Any],
               metrics_seen: Mapping[str, float]) -> "JobResult":
        """The :class:`~aws_sagemaker_remote.spec.JobResult` of a final describe response."""
        raise NotImplementedError

    def kfp_values(self, request: Mapping[str, Any]) -> Dict[str, Any]:
        """The kind's own runtime arguments of the Kubeflow Pipelines component
        (:mod:`aws_sagemaker_remote.export.kfp`) as ``request`` sets them."""
        return {}

    def apply_kfp_values(self, request: Dict[str, Any], values: Mapping[str, Any]) -> None:
        """Apply the kind's own runtime arguments given in ``values`` to ``request``, in place."""

    def kfp_outputs(self, description: Mapping[str, Any]) -> Dict[str, str]:
        """The component's outputs of this kind (as text) from the final describe response."""
        raise NotImplementedError

    def result_json(self, result: "JobResult") -> Dict[str, Any]:
        """What ``--sagemaker-output-json`` adds for this kind."""
        return {}

    def download(self, staged: "StagedJob", result: "JobResult", control: "RunControl", store: "Store",
                 output_uris: Mapping[str, str], err: TextIO) -> None:
        """``--sagemaker-download-outputs`` / ``--sagemaker-download-model`` after a completed job."""


#: SageMaker's channel name pattern (CreateTrainingJob ``ChannelName``).
CHANNEL_NAME_RE = re.compile(r"^[A-Za-z0-9.\-_]{1,64}$")
