"""``--sagemaker-export-ack`` and ``--sagemaker-export-kfp``: a real script stages its job to S3 (moto)
and writes the file instead of creating the job; the file says what the dry run's request says."""
from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml
from test_export_ack import _same, _validate

from aws_sagemaker_remote.export.ack import crd_schemas

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/sklearn:1"

PROCESSING = textwrap.dedent('''
    from aws_sagemaker_remote import sagemaker_processing_main

    def main(args):
        pass

    sagemaker_processing_main(main, inputs={"raw": "data"}, outputs={"clean": "out"},
                              additional_arguments=[{"dest": "--limit", "type": int, "default": 3}])
''')
TRAINING = textwrap.dedent('''
    from aws_sagemaker_remote import sagemaker_training_main

    def main(args):
        pass

    sagemaker_training_main(main, inputs={"train": "data"}, metrics={"loss": "loss: ([0-9.]+)"},
                            additional_arguments=[{"dest": "--epochs", "type": int, "default": 3}])
''')


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "rows.csv").write_text("1\n2\n")
    (folder / "process.py").write_text(PROCESSING)
    (folder / "train.py").write_text(TRAINING)
    return folder


def _common(name: str) -> List[str]:
    return ["--sagemaker-role", ROLE, "--sagemaker-image", IMAGE, "--sagemaker-job-name", name,
            "--sagemaker-tags", "team=ml", "--sagemaker-instance-count", "2"]


def _dry_run_request(run_script: Any, script: Path, *args: str) -> Dict[str, Any]:
    done = run_script(script, "--sagemaker-run=yes", "--sagemaker-dry-run", *args, cwd=script.parent)
    assert done.returncode == 0, done.stderr
    request: Dict[str, Any] = json.loads(done.stdout)["request"]
    return request


@pytest.mark.parametrize("script, extra, crd_kind", [
    ("process.py", ["--limit", "7"], "ProcessingJob"),
    ("train.py", ["--sagemaker-entry=toolkit", "--epochs", "9"], "TrainingJob"),
])
def test_the_ack_export_of_a_run_is_the_dry_run_request(aws: Any, run_script: Any, project: Path, tmp_path: Path,
                                                        script: str, extra: List[str], crd_kind: str) -> None:
    args = _common("exported-1") + extra
    target = tmp_path / "job.yaml"
    done = run_script(project / script, f"--sagemaker-export-ack={target}", *args, cwd=project)
    assert done.returncode == 0, done.stderr
    assert f"wrote the ACK resource of {'processing' if crd_kind == 'ProcessingJob' else 'training'} job " \
           f"exported-1 to {target}" in done.stderr
    # staged like a launch: the bundle and the local input were uploaded; no job was created
    assert any(r.operation == "PutObject" and re.search(r"/cas/sha256/[0-9a-f]{64}$", r.key or "")
               for r in aws.requests)
    assert not [op for op in aws.operations("sagemaker") if op.startswith("Create")]
    manifest = yaml.safe_load(target.read_text())
    assert manifest["kind"] == crd_kind
    assert manifest["metadata"] == {"name": "exported-1", "annotations": {"services.k8s.aws/region": "us-east-1"}}
    request = _dry_run_request(run_script, project / script, *args)
    leaves = list(_same(request, manifest["spec"], "spec"))
    assert len(leaves) > 20
    _validate(manifest, crd_schemas()[crd_kind])


def test_a_training_ack_export_needs_script_mode(aws: Any, run_script: Any, project: Path, tmp_path: Path,
                                                 one_error_line: Any) -> None:
    target = tmp_path / "job.yaml"
    done = run_script(project / "train.py", f"--sagemaker-export-ack={target}", *_common("exported-2"), cwd=project)
    assert done.returncode == 2
    one_error_line(done.stderr, "--sagemaker-export-ack", "--sagemaker-entry=toolkit")
    assert not target.exists()
    assert not aws.s3_uploads()


def test_an_export_is_not_a_local_run(run_script: Any, project: Path, tmp_path: Path, one_error_line: Any) -> None:
    target = tmp_path / "job.yaml"
    done = run_script(project / "process.py", "--sagemaker-run=local", f"--sagemaker-export-ack={target}",
                      cwd=project)
    assert done.returncode == 2
    one_error_line(done.stderr, "--sagemaker-export-ack", "--sagemaker-run=local")
    assert not target.exists()


def test_a_dry_run_export_writes_nothing(aws: Any, run_script: Any, project: Path, tmp_path: Path) -> None:
    target = tmp_path / "job.yaml"
    done = run_script(project / "process.py", "--sagemaker-dry-run", f"--sagemaker-export-ack={target}",
                      *_common("exported-3"), cwd=project)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["request"]["ProcessingJobName"] == "exported-3"
    assert not target.exists()
    assert not aws.s3_uploads()


def test_the_kfp_export_compiles_into_a_pipeline(aws: Any, run_script: Any, project: Path, tmp_path: Path) -> None:
    from kfp import compiler, components, dsl  # type: ignore[import-untyped]

    prepare_file, train_file = tmp_path / "prepare.yaml", tmp_path / "train.yaml"
    done = run_script(project / "process.py", f"--sagemaker-export-kfp={prepare_file}", *_common("prep-1"),
                      cwd=project)
    assert done.returncode == 0, done.stderr
    done = run_script(project / "train.py", f"--sagemaker-export-kfp={train_file}", *_common("train-1"),
                      cwd=project)
    assert done.returncode == 0, done.stderr
    assert not [op for op in aws.operations("sagemaker") if op.startswith("Create")]
    request = _dry_run_request(run_script, project / "process.py", *_common("prep-1"))
    prepare_op = components.load_component_from_file(str(prepare_file))
    train_op = components.load_component_from_file(str(train_file))
    # the component's defaults are the staged request's values
    inputs = prepare_op.component_spec.inputs
    assert inputs["role"].default == ROLE and inputs["instance_count"].default == 2
    staged_raw = next(i["S3Input"]["S3Uri"] for i in request["ProcessingInputs"] if i["InputName"] == "raw")
    assert inputs["raw"].default == staged_raw

    def pipeline() -> None:
        prepared = prepare_op()
        train_op(train=prepared.outputs["clean"])

    pipeline.__annotations__ = {}  # kfp would read the return annotation as an output
    compiled = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(dsl.pipeline(name="prepare-and-train")(pipeline), str(compiled))
    spec = yaml.safe_load(compiled.read_text())
    tasks = spec["root"]["dag"]["tasks"]
    wiring = tasks["train-training"]["inputs"]["parameters"]["train"]["taskOutputParameter"]
    assert wiring == {"outputParameterKey": "clean", "producerTask": "process-processing"}
