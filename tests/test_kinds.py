"""The job kinds: one object per kind, found by its public name, true to botocore's service model."""
from __future__ import annotations

from typing import Any

import boto3
import pytest

from aws_sagemaker_remote.container import ContainerPaths
from aws_sagemaker_remote.errors import DeclarationError
from aws_sagemaker_remote.flags import declare
from aws_sagemaker_remote.kinds import KINDS, NAMES, PROCESSING, TRAINING, job_kind


def _model() -> Any:
    client = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, client.meta.service_model


def test_the_registry_maps_the_public_names() -> None:
    assert NAMES == ("processing", "training")
    assert job_kind("processing") is PROCESSING and job_kind("training") is TRAINING
    assert job_kind(TRAINING) is TRAINING
    assert all(KINDS[name].name == name for name in NAMES)
    with pytest.raises(ValueError, match="allowed: processing, training"):
        job_kind("transform")


def test_a_declaration_names_its_kind_and_refuses_others(tmp_path: Any) -> None:
    assert declare("training", str(tmp_path / "s.py")).kind is TRAINING
    with pytest.raises(DeclarationError, match="unknown job kind 'tuning'"):
        declare("tuning", str(tmp_path / "s.py"))


@pytest.mark.parametrize("name", NAMES)
def test_each_kind_names_what_botocore_knows(name: str) -> None:
    """Operations, request and response keys of each kind exist in botocore's SageMaker model."""
    kind = job_kind(name)
    client, model = _model()
    for verb in ("create", "describe", "stop"):
        assert callable(getattr(client, kind.api(verb)))
    # describe_processing_job → DescribeProcessingJob
    describe = model.operation_model("".join(part.title() for part in kind.api("describe").split("_")))
    assert kind.status_key in describe.output_shape.members
    assert kind.name_key in describe.output_shape.members
    assert kind.name_key in describe.input_shape.members
    assert set(kind.input_modes) <= set(model.shape_for("TrainingInputMode").enum)


def test_container_layout_by_kind() -> None:
    paths = ContainerPaths("/x")
    assert PROCESSING.code_dir(paths) == "/x/processing/input/code" == paths.code_dir("processing")
    assert TRAINING.code_dir(paths) == "/x/input/data/code" == paths.code_dir("training")
    assert PROCESSING.input_path(paths, "a", None) == "/x/processing/input/a"
    assert PROCESSING.input_path(paths, "a", "/x/processing/mine") == "/x/processing/mine"
    # a training channel's folder is SageMaker's choice, whatever was declared
    assert TRAINING.input_path(paths, "a", "/x/processing/mine") == "/x/input/data/a"
    assert TRAINING.output_path(paths, "report", None) == "/x/output/data/report"
    assert PROCESSING.failure_file(paths) == "/x/output/message"
    assert TRAINING.failure_file(paths) == "/x/output/failure"
    assert PROCESSING.checked_root(paths) == "/x/processing" and TRAINING.checked_root(paths) is None
