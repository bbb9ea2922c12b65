"""Processing jobs (CreateProcessingJob): inputs and outputs under ``/opt/ml/processing``."""
from __future__ import annotations

import argparse
import json
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, TextIO

from ..errors import UsageError
from ..options import CommonOptions, ProcessingOptions
from .base import JobKind

if TYPE_CHECKING:  # pragma: no cover
    from ..container import ContainerPaths
    from ..flags import Declaration
    from ..spec import JobResult, Placement, RunControl, StagedJob
    from ..store import Store


class ProcessingKind(JobKind):
    """A Processing job: inputs and outputs in folders the user may choose under ``/opt/ml/processing``,
    each output uploaded to its own S3 location."""

    name = "processing"
    options = ProcessingOptions
    limits = MappingProxyType({
        "inputs": 10,  # ProcessingInputs, including the code bundle
        "outputs": 10,
        "env_entries": 100,
        "env_key": 256,
        "env_value": 256,
        "max_run": 777600,  # StoppingCondition.MaxRuntimeInSeconds (seed 000 says 432000: older)
        "instance_count": 100,
        "volume": 16384,
    })
    status_key = "ProcessingJobStatus"
    name_key = "ProcessingJobName"
    log_group = "/aws/sagemaker/ProcessingJobs"
    console_page = "processing-jobs"
    outputs_have_locations = True
    input_modes = ("File", "Pipe")
    ack_kind = "ProcessingJob"
    resources_path = ("ProcessingResources", "ClusterConfig")
    image_path = ("AppSpecification", "ImageUri")
    network_path = ("NetworkConfig",)
    output_config_key = "ProcessingOutputConfig"
    s3_data_types = ("S3Prefix", "ManifestFile")  # ProcessingS3Input has no augmented manifests

    def code_dir(self, paths: "ContainerPaths") -> str:
        return paths.processing_code

    def failure_file(self, paths: "ContainerPaths") -> str:
        return paths.processing_failure

    def input_path(self, paths: "ContainerPaths", name: str, declared: Optional[str]) -> str:
        return declared or paths.processing_input(name)

    def output_path(self, paths: "ContainerPaths", name: str, declared: Optional[str]) -> str:
        return declared or paths.processing_output(name)

    def checked_root(self, paths: "ContainerPaths") -> Optional[str]:
        return paths.processing_dir

    def plan_part(self, decl: "Declaration", namespace: argparse.Namespace, options: CommonOptions,
                  mapped: Mapping[str, str], base_job_name: str) -> None:
        if options.entry == "toolkit":
            # a processing image has no toolkit that fetches and runs a program: the entrypoint is ours
            raise UsageError("toolkit (script mode) applies to training jobs only; a processing job always "
                             "starts with the bootstrap", flag="--sagemaker-entry")

    def render(self, staged: "StagedJob", placement: "Placement") -> Dict[str, Any]:
        from ..container import CODE_CHANNEL, DEFAULT as PATHS
        from ..render import ENTRYPOINT, container_command, network_config, resource_config, tag_list
        from ..spec import output_uris

        spec = staged.spec
        inputs: List[Dict[str, Any]] = [{
            "InputName": CODE_CHANNEL,
            "S3Input": {
                "S3Uri": staged.code_uri,
                "LocalPath": PATHS.processing_code,
                "S3DataType": "ManifestFile",  # the code's blobs and its manifest (see stage)
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
            "ProcessingResources": {"ClusterConfig": resource_config(spec.resources)},
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
        network = network_config(spec.network)
        if network:
            request["NetworkConfig"] = network
        if spec.tags:
            request["Tags"] = tag_list(spec.tags)
        return request

    def request_inputs(self, request: Mapping[str, Any]) -> Dict[str, Dict[str, Any]]:
        from ..container import CODE_CHANNEL

        return {i["InputName"]: i["S3Input"] for i in request.get("ProcessingInputs", [])
                if i["InputName"] != CODE_CHANNEL and "S3Input" in i}

    def request_outputs(self, request: Mapping[str, Any]) -> Dict[str, Dict[str, Any]]:
        return {o["OutputName"]: o["S3Output"]
                for o in request.get("ProcessingOutputConfig", {}).get("Outputs", []) if "S3Output" in o}

    def kfp_outputs(self, description: Mapping[str, Any]) -> Dict[str, str]:
        from ..export.kfp import parameter_name

        artifacts = {name: out["S3Uri"] for name, out in self.request_outputs(description).items()}
        values = {"job_name": str(description[self.name_key]),
                  "output_artifacts": json.dumps(artifacts, sort_keys=True)}
        values.update({parameter_name(n): uri for n, uri in artifacts.items()})
        return values

    def result(self, description: Mapping[str, Any], common: Dict[str, Any],
               metrics_seen: Mapping[str, float]) -> "JobResult":
        from ..spec import JobResult

        outputs = (description.get("ProcessingOutputConfig") or {}).get("Outputs") or []
        artifacts = {
            o["OutputName"]: o["S3Output"]["S3Uri"]
            for o in outputs
            if o.get("OutputName") and (o.get("S3Output") or {}).get("S3Uri")
        }
        return JobResult(output_artifacts=artifacts, **common)

    def download(self, staged: "StagedJob", result: "JobResult", control: "RunControl", store: "Store",
                 output_uris: Mapping[str, str], err: TextIO) -> None:
        from ..store import download_prefix

        if not control.download_outputs:
            return
        for out_ch in staged.spec.outputs:
            uri = result.output_artifacts.get(out_ch.name) or output_uris[out_ch.name]
            if out_ch.local_path:
                files = download_prefix(store, uri if uri.endswith("/") else uri + "/", out_ch.local_path)
                err.write(f"downloaded {len(files)} file(s) of {out_ch.name} to {out_ch.local_path}\n")


PROCESSING = ProcessingKind()
