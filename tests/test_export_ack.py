"""ACK export: the custom resource says what the rendered request says, in the controller's own fields."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Set, Tuple

import boto3
import pytest
import yaml
from botocore.validate import validate_parameters
from hypothesis import given, settings, strategies as st
from staged_jobs import CODE_URI, IMAGE, ROLE, TRAINING_FULL, rendered, staged_job

from aws_sagemaker_remote.container import TOOLKIT_PROGRAM
from aws_sagemaker_remote.errors import UsageError
from aws_sagemaker_remote.export.ack import (
    API_VERSION,
    REGION_ANNOTATION,
    ack_manifest,
    ack_yaml,
    crd_name,
    crd_schemas,
    write_ack_manifest,
)
from aws_sagemaker_remote.export.yamltext import dump

DATA = Path(__file__).parent / "data" / "ack_crd_fields.txt"
OPERATIONS = {"processing": ("CreateProcessingJob", "ProcessingJob"), "training": ("CreateTrainingJob", "TrainingJob")}


def _crd_fields() -> Tuple[Dict[Tuple[str, str], str], Dict[Tuple[str, str], Set[str]]]:
    """(kind, path) → type, and (kind, path) → required properties, from the transcribed field list."""
    types: Dict[Tuple[str, str], str] = {}
    required: Dict[Tuple[str, str], Set[str]] = {}
    for line in DATA.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("required "):
            head, names = line[len("required "):].split(":")
            kind, path = head.split()
            required[(kind, path)] = set(names.split())
            continue
        kind, path, type_ = line.split()
        types[(kind, path)] = type_
    return types, required


def _input_shape(kind: str) -> Any:
    client = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client.meta.service_model.operation_model(OPERATIONS[kind][0]).input_shape


def _script_mode(tmp_path: Path) -> Dict[str, Any]:
    """The training request in the framework's script mode (``--sagemaker-entry=toolkit``): no
    entrypoint of our own; the image's toolkit fetches and runs the program."""
    return rendered(staged_job(tmp_path, "training", TRAINING_FULL + ["--sagemaker-entry", "toolkit"]))


@pytest.fixture
def processing_request(tmp_path: Path) -> Dict[str, Any]:
    request = rendered(staged_job(tmp_path, "processing"))
    validate_parameters(request, _input_shape("processing"))
    return request


@pytest.fixture
def training_request(tmp_path: Path) -> Dict[str, Any]:
    request = _script_mode(tmp_path)
    validate_parameters(request, _input_shape("training"))
    return request


def _same(request: Any, spec: Any, where: str, map_keys: bool = False) -> Iterator[str]:
    """Walk the request and the manifest side by side; yield each leaf path compared. Object
    keys must agree ignoring case (the controller only changes casing); map keys exactly."""
    if isinstance(request, dict):
        assert isinstance(spec, dict), where
        if map_keys:
            assert set(spec) == set(request), where
            pairs = [(k, k) for k in request]
        else:
            by_lower = {k.lower(): k for k in spec}
            assert len(by_lower) == len(spec) == len(request), where
            pairs = [(k, by_lower[k.lower()]) for k in request]
        for req_key, spec_key in pairs:
            # Environment and HyperParameters are string maps: their keys are data
            is_map = req_key in ("Environment", "HyperParameters") and not map_keys
            yield from _same(request[req_key], spec[spec_key], f"{where}.{spec_key}", map_keys=is_map)
    elif isinstance(request, list):
        assert isinstance(spec, list) and len(spec) == len(request), where
        for i, (a, b) in enumerate(zip(request, spec)):
            yield from _same(a, b, f"{where}[{i}]")
    else:
        assert type(spec) is type(request) and spec == request, (where, request, spec)
        yield where


def _paths(value: Any, path: str, map_paths: Set[str]) -> Iterator[Tuple[str, Any]]:
    """Every (path, value) of a manifest spec in the field list's notation."""
    yield path, value
    if isinstance(value, list):
        for item in value:
            yield from _paths(item, path + "[]", map_paths)
    elif isinstance(value, dict):
        for key, item in value.items():
            if path in map_paths:
                yield from _paths(item, path + "{}", map_paths)
            else:
                yield from _paths(item, f"{path}.{key}", map_paths)


def _json_type(value: Any) -> str:
    return {bool: "boolean", int: "integer", str: "string", list: "array", dict: "object"}[type(value)]


def _check_against_field_list(manifest: Mapping[str, Any]) -> int:
    types, required = _crd_fields()
    kind = manifest["kind"]
    maps = {p for (k, p), t in types.items() if k == kind and (k, p + "{}") in types}
    count = 0
    for path, value in _paths(manifest["spec"], "spec", maps):
        assert (kind, path) in types, f"{kind} has no field {path}"
        assert types[(kind, path)] == _json_type(value), path
        count += 1
    assert required[(kind, "spec")] <= set(manifest["spec"])
    return count


def _validate(value: Any, schema: Mapping[str, Any], where: str = "") -> None:
    """A small openAPIV3Schema walk: types, required properties, no property the schema lacks."""
    assert _json_type(value) == schema["type"], where
    if schema["type"] == "array":
        for i, item in enumerate(value):
            _validate(item, schema["items"], f"{where}[{i}]")
    elif schema["type"] == "object":
        for name in schema.get("required", []):
            assert name in value, f"{where} lacks required {name}"
        if "properties" in schema:
            for key, item in value.items():
                assert key in schema["properties"], f"{where}.{key} would be pruned"
                _validate(item, schema["properties"][key], f"{where}.{key}")
        elif "additionalProperties" in schema:
            for key, item in value.items():
                _validate(item, schema["additionalProperties"], f"{where}.{key}")


def test_processing_manifest_is_the_request_field_by_field(processing_request: Dict[str, Any]) -> None:
    manifest = ack_manifest(processing_request, "processing", region="us-east-1")
    assert manifest["apiVersion"] == API_VERSION == "sagemaker.services.k8s.aws/v1alpha1"
    assert manifest["kind"] == "ProcessingJob"
    assert manifest["metadata"] == {"name": "job-20261121-000000-ab12",
                                    "annotations": {REGION_ANNOTATION: "us-east-1"}}
    leaves = list(_same(processing_request, manifest["spec"], "spec"))
    assert len(leaves) > 40
    spec = manifest["spec"]
    # the controller's acronym casing, where it matters most
    assert spec["roleARN"] == ROLE
    assert spec["appSpecification"]["imageURI"] == IMAGE
    assert spec["appSpecification"]["containerEntrypoint"] == processing_request["AppSpecification"][
        "ContainerEntrypoint"]
    assert spec["processingInputs"][0]["s3Input"]["s3URI"] == CODE_URI
    kms = "arn:aws:kms:us-east-1:123456789012:key/abc"
    assert spec["processingResources"]["clusterConfig"]["volumeKMSKeyID"] == kms
    assert spec["processingOutputConfig"]["kmsKeyID"] == "alias/out"
    assert spec["networkConfig"]["vpcConfig"]["securityGroupIDs"] == ["sg-1"]
    assert spec["environment"] == {"MODE": "fast", "yes": "on"}
    assert spec["tags"] == [{"key": "team", "value": "ml"}, {"key": "area", "value": "data"}]
    assert _check_against_field_list(manifest) > 40
    _validate(manifest, crd_schemas()["ProcessingJob"])


def test_training_manifest_in_script_mode_is_the_request_field_by_field(training_request: Dict[str, Any]) -> None:
    manifest = ack_manifest(training_request, "training")
    assert manifest["kind"] == "TrainingJob" and "annotations" not in manifest["metadata"]
    assert len(list(_same(training_request, manifest["spec"], "spec"))) > 40
    spec = manifest["spec"]
    assert spec["algorithmSpecification"] == {
        "trainingInputMode": "FastFile", "trainingImage": IMAGE,
        "metricDefinitions": [{"name": "loss", "regex": "loss: ([0-9.]+)"}, {"name": "acc", "regex": "acc=([0-9.]+)"}]}
    assert spec["hyperParameters"]["sagemaker_program"] == json.dumps(TOOLKIT_PROGRAM)
    assert spec["hyperParameters"]["sagemaker_submit_directory"] == json.dumps(CODE_URI)
    # no code channel: the toolkit downloads the code archive
    assert [c["channelName"] for c in spec["inputDataConfig"]] == ["train", "shards"]
    assert spec["inputDataConfig"][1]["dataSource"]["s3DataSource"]["s3URI"] == "s3://bucket/shards/"
    assert re.fullmatch(r"s3://b/p/checkpoints/job-[0-9a-f]+", spec["checkpointConfig"]["s3URI"])
    assert spec["checkpointConfig"]["localPath"] == "/opt/ml/checkpoints"
    assert spec["resourceConfig"]["volumeKMSKeyID"] == "arn:aws:kms:us-east-1:123456789012:key/abc"
    assert spec["vpcConfig"] == {"securityGroupIDs": ["sg-1"], "subnets": ["subnet-1", "subnet-2"]}
    assert spec["stoppingCondition"] == {"maxRuntimeInSeconds": 3600, "maxWaitTimeInSeconds": 7200}
    assert spec["enableManagedSpotTraining"] is True
    _check_against_field_list(manifest)
    _validate(manifest, crd_schemas()["TrainingJob"])


def test_minimal_requests_export_too(tmp_path: Path) -> None:
    processing = rendered(staged_job(tmp_path, "processing", [], outputs={}))
    manifest = ack_manifest(processing, "processing")
    assert set(manifest["spec"]) == {"processingJobName", "processingInputs", "processingResources",
                                     "stoppingCondition", "appSpecification", "roleARN"}
    _check_against_field_list(manifest)
    _validate(manifest, crd_schemas()["ProcessingJob"])


def test_training_with_its_own_entrypoint_is_refused_in_one_line(tmp_path: Path) -> None:
    request = rendered(staged_job(tmp_path, "training"))
    with pytest.raises(UsageError) as info:
        ack_manifest(request, "training")
    message = str(info.value)
    assert "\n" not in message and info.value.exit_code == 2
    assert message.startswith("--sagemaker-export-ack: ")
    assert "containerEntrypoint" in message and "--sagemaker-entry=toolkit" in message
    target = tmp_path / "job.yaml"
    with pytest.raises(UsageError):
        write_ack_manifest(str(target), request, "training")
    assert not target.exists()


def test_a_request_field_without_crd_counterpart_is_refused(processing_request: Dict[str, Any]) -> None:
    # ExperimentConfig.RunName is in the SageMaker API (botocore accepts it) but not in the CRD
    request = dict(processing_request, ExperimentConfig={"ExperimentName": "e", "RunName": "r"})
    validate_parameters(request, _input_shape("processing"))
    with pytest.raises(UsageError) as info:
        ack_manifest(request, "processing")
    assert str(info.value) == ("--sagemaker-export-ack: ProcessingJob.ExperimentConfig.RunName has no counterpart "
                               "in the ACK ProcessingJob resource (no field 'runName'); it cannot be exported")
    # a training-only field on a processing request
    with pytest.raises(UsageError, match="EnableManagedSpotTraining"):
        ack_manifest(dict(processing_request, EnableManagedSpotTraining=True), "processing")


def test_the_naming_rule_gives_the_crd_name_for_every_member_both_have() -> None:
    """Walk botocore's request shapes beside the CRDs: wherever a CRD property matches a member
    ignoring case, the naming rule must produce it exactly (so the rule, not luck, finds it)."""
    checked: List[str] = []

    def walk(shape: Any, schema: Mapping[str, Any], where: str) -> None:
        if shape.type_name == "list" and schema.get("type") == "array":
            walk(shape.member, schema["items"], where + "[]")
        if shape.type_name != "structure" or "properties" not in schema:
            return
        by_lower = {k.lower(): k for k in schema["properties"]}
        for member, sub in shape.members.items():
            prop = by_lower.get(member.lower())
            if prop is None:
                continue
            assert crd_name(member) == prop, f"{where}.{member}"
            checked.append(f"{where}.{prop}")
            walk(sub, schema["properties"][prop], f"{where}.{prop}")

    for kind in OPERATIONS:
        crd_kind = OPERATIONS[kind][1]
        walk(_input_shape(kind), crd_schemas()[crd_kind]["properties"]["spec"], crd_kind)
    assert len(checked) > 150
    assert "TrainingJob.resourceConfig.volumeKMSKeyID" in checked
    assert "ProcessingJob.processingInputs[].datasetDefinition.redshiftDatasetDefinition.clusterRoleARN" in checked


def test_the_shipped_schema_and_the_field_list_agree() -> None:
    """Two transcriptions of the CRDs (the schema the export checks against, and the field list
    the tests use) name the same paths, types and required properties."""
    types, required = _crd_fields()
    flat: Dict[Tuple[str, str], str] = {}
    flat_required: Dict[Tuple[str, str], Set[str]] = {}

    def flatten(kind: str, schema: Mapping[str, Any], path: str) -> None:
        flat[(kind, path)] = schema["type"]
        if schema.get("required"):
            flat_required[(kind, path)] = set(schema["required"])
        if schema["type"] == "array":
            flatten(kind, schema["items"], path + "[]")
        for name, sub in schema.get("properties", {}).items():
            flatten(kind, sub, f"{path}.{name}")
        if "additionalProperties" in schema:
            flatten(kind, schema["additionalProperties"], path + "{}")

    schemas = crd_schemas()
    for kind in ("ProcessingJob", "TrainingJob"):
        flatten(kind, schemas[kind]["properties"]["spec"], "spec")
    assert flat == types
    assert flat_required == required
    assert "containerEntrypoint" not in schemas["TrainingJob"]["properties"]["spec"]["properties"][
        "algorithmSpecification"]["properties"]
    source = schemas["_source"]
    assert source["repository"] == "https://github.com/aws-controllers-k8s/sagemaker-controller"
    header = DATA.read_text()
    for kind in ("ProcessingJob", "TrainingJob"):
        assert source[kind]["path"] in header and source[kind]["commit"] in header


def test_yaml_reads_back_as_the_manifest(processing_request: Dict[str, Any], training_request: Dict[str, Any]) -> None:
    for request, kind in ((processing_request, "processing"), (training_request, "training")):
        text = ack_yaml(request, kind, namespace="ml-jobs")
        assert text.startswith("apiVersion: sagemaker.services.k8s.aws/v1alpha1\n")
        assert yaml.safe_load(text) == ack_manifest(request, kind, namespace="ml-jobs")
    # a map key YAML 1.1 would read as a boolean stays a string
    assert '"yes": "on"' in ack_yaml(processing_request, "processing")


def test_write_ack_manifest(tmp_path: Path, processing_request: Dict[str, Any]) -> None:
    target = tmp_path / "job.yaml"
    text = write_ack_manifest(str(target), processing_request, "processing", name="clean-data")
    assert target.read_text() == text
    assert yaml.safe_load(text)["metadata"] == {"name": "clean-data"}


def test_a_name_kubernetes_refuses_is_refused(processing_request: Dict[str, Any]) -> None:
    with pytest.raises(UsageError, match="not a valid Kubernetes resource name"):
        ack_manifest(processing_request, "processing", name="Bad_Name")


_text = st.text(st.characters(codec="utf-8"), max_size=12)
_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_text, _values, min_size=1, max_size=4))
def test_yaml_writer_round_trips_any_plain_data(value: Dict[str, Any]) -> None:
    assert yaml.safe_load(dump(value)) == value


def test_the_docs_mapping_tables_say_what_the_export_does() -> None:
    page = (Path(__file__).parent.parent / "docs" / "pipelines.rst").read_text()
    tables = page.split("Field mapping", 1)[1].split("Kubeflow Pipelines components", 1)[0]
    rows = re.findall(r"\* - ``([^`]+)``[^\n]*\n\s+- ``([^`]+)``", tables)
    assert len(rows) > 60
    for request_path, spec_path in rows:
        segments = request_path.replace("[]", "").split(".")
        expected = ".".join(crd_name(s) for s in segments)
        assert expected == spec_path.replace("[]", ""), request_path


def test_a_namespace_kubernetes_refuses_is_refused(processing_request: Dict[str, Any]) -> None:
    assert ack_manifest(processing_request, "processing", namespace="ml-jobs")["metadata"]["namespace"] == "ml-jobs"
    for bad in ("ml.jobs", "ML", "x" * 64, "-a"):
        with pytest.raises(UsageError, match="not a valid Kubernetes namespace"):
            ack_manifest(processing_request, "processing", namespace=bad)
