"""KFP export: a two-step pipeline compiles with kfp, and the component's command line means the staged job."""
from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple

import boto3
import kfp  # type: ignore[import-untyped]
import pytest
import yaml
from botocore.validate import validate_parameters
from kfp import compiler, dsl  # type: ignore[import-untyped]
from staged_jobs import CODE_URI, IMAGE, REGION, ROLE, rendered, staged_job

from aws_sagemaker_remote.errors import UsageError
from aws_sagemaker_remote.export.kfp import (
    DEFAULT_INSTALL,
    PROCESSING_ARGUMENTS,
    TRAINING_ARGUMENTS,
    job_record,
    parse_invocation,
    request_for_run,
    write_kfp_component,
    write_outputs,
)
from aws_sagemaker_remote.spec import StagedJob

NOW = dt.datetime(2026, 12, 2, 7, 0, 0, tzinfo=dt.timezone.utc)
OPERATION = {"processing": "CreateProcessingJob", "training": "CreateTrainingJob"}


def _validate(kind: str, request: Mapping[str, Any]) -> None:
    client = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    validate_parameters(request, client.meta.service_model.operation_model(OPERATION[kind]).input_shape)


def _job(tmp_path: Path, kind: str) -> Tuple[StagedJob, Dict[str, Any]]:
    folder = tmp_path / kind
    folder.mkdir()
    staged = staged_job(folder, kind)
    return staged, rendered(staged)


def _two_step_pipeline(tmp_path: Path) -> Tuple[Dict[str, Any], Dict[str, Any], Dict[str, Any]]:
    """Compile "processing output report → training channel train"; return the compiled spec
    and the two rendered requests."""
    prep_staged, prep_request = _job(tmp_path, "processing")
    train_staged, train_request = _job(tmp_path, "training")
    train_request = json.loads(json.dumps(train_request))
    write_kfp_component(str(tmp_path / "prep.yaml"), prep_staged, prep_request, region=REGION)
    write_kfp_component(str(tmp_path / "train.yaml"), train_staged, train_request, region=REGION, install=None,
                        component_image="registry.example/tools:1")
    prep_op = kfp.components.load_component_from_file(str(tmp_path / "prep.yaml"))
    train_op = kfp.components.load_component_from_file(str(tmp_path / "train.yaml"))

    def pipeline(instance_type: str = "ml.m5.xlarge") -> None:
        prep = prep_op()
        train_op(train=prep.outputs["report"], instance_type=instance_type)

    # kfp reads real types from the signature; this module's annotations are strings
    pipeline.__annotations__ = {"instance_type": str}
    target = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(dsl.pipeline(name="prepare-and-train")(pipeline), str(target))
    return yaml.safe_load(target.read_text()), prep_request, train_request


def _component(spec: Mapping[str, Any], kind: str) -> Tuple[str, Mapping[str, Any], Mapping[str, Any]]:
    """(task name, component definition, executor container) of the step running ``kind``."""
    for task_name, task in spec["root"]["dag"]["tasks"].items():
        component = spec["components"][task["componentRef"]["name"]]
        container = spec["deploymentSpec"]["executors"][component["executorLabel"]]["container"]
        if ("--from-kfp" in container["args"]
                and json.loads(container["args"][container["args"].index("--from-kfp") + 1])["kind"] == kind):
            return task_name, component, container
    raise AssertionError(f"no {kind} step")


def test_two_step_pipeline_compiles_with_inputs_outputs_and_wiring(tmp_path: Path) -> None:
    spec, _, train_request = _two_step_pipeline(tmp_path)
    prep_task, prep, prep_container = _component(spec, "processing")
    train_task, train, train_container = _component(spec, "training")

    prep_inputs = prep["inputDefinitions"]["parameters"]
    assert set(prep_inputs) == {a.name for a in PROCESSING_ARGUMENTS} | {"train", "shards", "report_s3",
                                                                          "stream_s3"}
    # every input defaults to the staged job's value
    assert prep_inputs["region"] == {"defaultValue": "us-east-1", "isOptional": True, "parameterType": "STRING"}
    assert prep_inputs["role"]["defaultValue"] == ROLE
    assert prep_inputs["image"]["defaultValue"] == IMAGE
    assert prep_inputs["instance_type"]["defaultValue"] == "ml.c5.xlarge"
    assert prep_inputs["instance_count"]["parameterType"] == "NUMBER_INTEGER"
    assert prep_inputs["instance_count"]["defaultValue"] == 2
    assert prep_inputs["network_isolation"] == {"defaultValue": True, "isOptional": True,
                                                "parameterType": "BOOLEAN"}
    assert prep_inputs["environment"]["parameterType"] == "STRUCT"
    assert prep_inputs["environment"]["defaultValue"] == {"MODE": "fast", "yes": "on"}
    assert prep_inputs["tags"]["defaultValue"] == {"team": "ml", "area": "data"}
    assert prep_inputs["vpc_subnets"]["defaultValue"] == "subnet-1,subnet-2"
    assert prep_inputs["train"]["defaultValue"] == "s3://b/p/cas/sha256/def/"
    assert prep_inputs["report_s3"]["defaultValue"] == "s3://bucket/reports/"
    assert set(prep["outputDefinitions"]["parameters"]) == {"job_name", "output_artifacts", "report", "stream"}
    assert prep["outputDefinitions"]["parameters"]["output_artifacts"]["parameterType"] == "STRUCT"

    train_inputs = train["inputDefinitions"]["parameters"]
    assert set(train_inputs) == {a.name for a in TRAINING_ARGUMENTS} | {"train", "shards"}
    assert train_inputs["spot_instance"]["defaultValue"] is True
    assert train_inputs["max_wait_time"]["defaultValue"] == 7200
    assert train_inputs["checkpoint_config"]["defaultValue"] == {"S3Uri": train_request["CheckpointConfig"]["S3Uri"],
                                                                 "LocalPath": "/opt/ml/checkpoints"}
    assert re.fullmatch(r"s3://b/p/checkpoints/job-[0-9a-f]+", train_request["CheckpointConfig"]["S3Uri"])
    assert train_inputs["metric_definitions"]["defaultValue"] == {"loss": "loss: ([0-9.]+)", "acc": "acc=([0-9.]+)"}
    assert train_inputs["model_artifact_path"]["defaultValue"] == "s3://b/p/jobs"
    assert set(train["outputDefinitions"]["parameters"]) == {"job_name", "model_artifact_url", "training_image"}

    # wiring: the processing step's output feeds the training channel; the pipeline's parameter the instance
    train_params = spec["root"]["dag"]["tasks"][train_task]["inputs"]["parameters"]
    assert train_params["train"] == {"taskOutputParameter": {"outputParameterKey": "report",
                                                             "producerTask": prep_task}}
    assert train_params["instance_type"] == {"componentInputParameter": "instance_type"}

    # the command: this package's rerun on the recorded job
    assert prep_container["command"][:2] == ["sh", "-ec"] and prep_container["command"][3] == DEFAULT_INSTALL
    assert 'exec python3 -m aws_sagemaker_remote "$@"' in prep_container["command"][2]
    assert train_container["command"] == ["python3", "-m", "aws_sagemaker_remote"]
    assert train_container["image"] == "registry.example/tools:1"
    args = train_container["args"]
    assert args[:3] == ["rerun", train_request["TrainingJobName"], "--from-kfp"]
    assert json.loads(args[3]) == job_record(train_request, "training", "job")
    assert args[args.index("--instance-type") + 1] == "{{$.inputs.parameters['instance_type']}}"
    assert args[args.index("--input") + 1: args.index("--input") + 3] == [
        "train", "{{$.inputs.parameters['train']}}"]
    writes = [args[i + 1: i + 3] for i, a in enumerate(args) if a == "--write"]
    assert writes == [[name, f"{{{{$.outputs.parameters['{name}'].output_file}}}}"]
                      for name in ("job_name", "model_artifact_url", "training_image")]
    prep_args = prep_container["args"]
    assert ["--output", "report", "{{$.inputs.parameters['report_s3']}}"] == prep_args[
        prep_args.index("--output"): prep_args.index("--output") + 3]


def _as_kubeflow_passes(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _resolve(args: List[str], inputs: Mapping[str, Any], values: Mapping[str, Any], out_dir: Path) -> List[str]:
    """The container's arguments as the Kubeflow launcher gives them: placeholders replaced."""
    resolved = []
    for arg in args:
        for name, definition in inputs.items():
            arg = arg.replace(f"{{{{$.inputs.parameters['{name}']}}}}",
                              _as_kubeflow_passes(values.get(name, definition.get("defaultValue"))))
        if arg.startswith("{{$.outputs.parameters['"):
            arg = str(out_dir / arg.split("'")[1])
        resolved.append(arg)
    return resolved


@pytest.mark.parametrize("kind", ["processing", "training"])
def test_the_command_with_its_defaults_is_the_staged_request(tmp_path: Path, kind: str) -> None:
    spec, prep_request, train_request = _two_step_pipeline(tmp_path)
    _, component, container = _component(spec, kind)
    args = _resolve(container["args"], component["inputDefinitions"]["parameters"], {}, tmp_path / "out")
    assert args[0] == "rerun"
    invocation = parse_invocation(args[1:])
    request = request_for_run(invocation, now=NOW, token="zz99")
    original = prep_request if kind == "processing" else train_request
    name_key = "ProcessingJobName" if kind == "processing" else "TrainingJobName"
    assert request[name_key] == "job-20261202-070000-zz99"
    assert {**request, name_key: original[name_key]} == original
    _validate(kind, request)


def test_the_command_with_overrides(tmp_path: Path) -> None:
    spec, _, train_request = _two_step_pipeline(tmp_path)
    _, component, container = _component(spec, "training")
    values = {"instance_type": "ml.g5.xlarge", "instance_count": 1, "train": "s3://bucket/reports/",
              "spot_instance": False, "network_isolation": False, "vpc_subnets": "", "resource_encryption_key": "",
              "environment": {"A": "1"}, "tags": {}, "metric_definitions": {"f1": "f1=([0-9.]+)"},
              "job_name": "nightly-7", "checkpoint_config": {}}
    args = _resolve(container["args"], component["inputDefinitions"]["parameters"], values, tmp_path / "out")
    request = request_for_run(parse_invocation(args[1:]), now=NOW, token="zz99")
    _validate("training", request)
    assert request["TrainingJobName"] == "nightly-7"
    assert request["ResourceConfig"] == {"InstanceCount": 1, "InstanceType": "ml.g5.xlarge", "VolumeSizeInGB": 50}
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]}
    assert channels == {"code": CODE_URI, "train": "s3://bucket/reports/",
                        "shards": "s3://bucket/shards/"}
    for gone in ("EnableManagedSpotTraining", "EnableNetworkIsolation", "VpcConfig", "Tags", "CheckpointConfig"):
        assert gone not in request
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert request["Environment"] == {"A": "1"}
    assert request["AlgorithmSpecification"]["MetricDefinitions"] == [{"Name": "f1", "Regex": "f1=([0-9.]+)"}]
    # the script's own command line is the staged one
    assert request["AlgorithmSpecification"]["ContainerArguments"] == train_request["AlgorithmSpecification"][
        "ContainerArguments"]


def test_outputs_are_written_from_the_final_description(tmp_path: Path) -> None:
    spec, prep_request, _ = _two_step_pipeline(tmp_path)
    _, component, container = _component(spec, "processing")
    out = tmp_path / "out"
    args = _resolve(container["args"], component["inputDefinitions"]["parameters"], {}, out)
    invocation = parse_invocation(args[1:])
    description = dict(prep_request, ProcessingJobName="job-20261202-070000-zz99", ProcessingJobStatus="Completed")
    write_outputs(invocation, description)
    assert (out / "job_name").read_text() == "job-20261202-070000-zz99"
    assert json.loads((out / "output_artifacts").read_text()) == {"report": "s3://bucket/reports/",
                                                                  "stream": "s3://b/p/jobs/job-20261121-000000-ab12/output/stream"}
    assert (out / "report").read_text() == "s3://bucket/reports/"


def test_training_outputs(tmp_path: Path) -> None:
    spec, _, train_request = _two_step_pipeline(tmp_path)
    _, component, container = _component(spec, "training")
    out = tmp_path / "out"
    invocation = parse_invocation(_resolve(container["args"], component["inputDefinitions"]["parameters"], {},
                                           out)[1:])
    write_outputs(invocation, dict(train_request, ModelArtifacts={"S3ModelArtifacts": "s3://b/p/jobs/j/output/"
                                                                                     "model.tar.gz"}))
    assert (out / "model_artifact_url").read_text() == "s3://b/p/jobs/j/output/model.tar.gz"
    assert (out / "training_image").read_text() == IMAGE


def test_bad_arguments_are_one_line_usage_errors(tmp_path: Path) -> None:
    _, request = _job(tmp_path, "processing")
    record = json.dumps(job_record(request, "processing", "job"))
    with pytest.raises(UsageError, match="^--network-isolation: not a boolean: 'maybe'$"):
        parse_invocation(["j", "--from-kfp", record, "--network-isolation", "maybe"])
    with pytest.raises(UsageError, match="^--input: the job declares no input 'nope'$"):
        request_for_run(parse_invocation(["j", "--from-kfp", record, "--input", "nope", "s3://b/x"]),
                        now=NOW, token="a")
    with pytest.raises(UsageError, match="^--from-kfp: not a aws_sagemaker_remote.kfp/1 record$"):
        parse_invocation(["j", "--from-kfp", "{}"])
    with pytest.raises(UsageError, match="^rerun: "):
        parse_invocation(["j"])


def test_a_declared_name_that_clashes_is_refused(tmp_path: Path) -> None:
    staged = staged_job(tmp_path, "processing", [], outputs={"region": str(tmp_path / "out")})
    target = tmp_path / "c.yaml"
    with pytest.raises(UsageError, match="^--sagemaker-export-kfp: the script's output 'region'"):
        write_kfp_component(str(target), staged, rendered(staged), region=REGION)
    assert not target.exists()


def test_without_kfp_the_export_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    staged, request = _job(tmp_path, "processing")
    monkeypatch.setitem(sys.modules, "kfp", None)
    monkeypatch.setitem(sys.modules, "kfp.dsl", None)
    with pytest.raises(UsageError, match=r"^--sagemaker-export-kfp: needs the kfp package: pip install "):
        write_kfp_component(str(tmp_path / "c.yaml"), staged, request, region=REGION)


def test_an_unknown_write_is_refused_before_anything_runs(tmp_path: Path) -> None:
    _, request = _job(tmp_path, "processing")
    record = json.dumps(job_record(request, "processing", "job"))
    with pytest.raises(UsageError, match=r"^--write: the component has no output 'model_artifact_url' \(it has "
                                         r"job_name, output_artifacts, report, stream\)$"):
        parse_invocation(["j", "--from-kfp", record, "--write", "model_artifact_url", str(tmp_path / "x")])


def test_text_kubeflow_would_replace_is_refused(tmp_path: Path) -> None:
    staged = staged_job(tmp_path, "processing", ["--sagemaker-env", "TEMPLATE={{$.inputs.parameters['x']}}"])
    target = tmp_path / "c.yaml"
    with pytest.raises(UsageError, match=r"^--sagemaker-export-kfp: the job's request contains '\{\{\$'"):
        write_kfp_component(str(target), staged, rendered(staged), region=REGION)
    assert not target.exists()
