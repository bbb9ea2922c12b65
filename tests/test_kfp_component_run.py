"""The Kubeflow Pipelines component's own command, run against the moto server.

A job is launched through the demo (``--sagemaker-run=yes``); its launch record gives
the rendered request the component is compiled from (with kfp, ``install=None``: the
step's image already has this package). The compiled container command and
arguments are then run as Kubeflow's launcher would run them: each input
placeholder replaced by the input's value as text, each output placeholder by the
file Kubeflow reads the output parameter from.
"""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
import yaml

from aws_sagemaker_remote import __version__
from aws_sagemaker_remote.export.kfp import kfp_component_spec

MotoServer = Any
RunPython = Callable[..., "subprocess.CompletedProcess[str]"]
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/python:3.11"
DEMOS = {"processing": "wordcount.py", "training": "train_linear.py"}
_INPUT = re.compile(r"\{\{\$\.inputs\.parameters\['(\w+)'\]\}\}")
_OUTPUT = re.compile(r"\{\{\$\.outputs\.parameters\['(\w+)'\]\.output_file\}\}")


def _text(value: Any) -> str:
    """A parameter value as Kubeflow hands it to a container: strings as they are, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def compiled_command(request: Dict[str, Any], kind: str, base: str, path: Path) -> Dict[str, Any]:
    """The component compiled to ``path`` and read back: its container and its input defaults."""
    spec = kfp_component_spec(request, kind, region="us-east-1", base_job_name=base, install=None)
    spec.save_to_component_yaml(str(path))
    document = yaml.safe_load(path.read_text())
    (executor,) = document["deploymentSpec"]["executors"].values()
    defaults = {name: item.get("defaultValue", "")
                for name, item in document["root"]["inputDefinitions"]["parameters"].items()}
    return {"command": executor["container"]["command"], "args": executor["container"]["args"],
            "defaults": defaults}


def substitute(args: List[str], values: Dict[str, Any], outputs: Path) -> List[str]:
    def one(arg: str) -> str:
        arg = _INPUT.sub(lambda m: _text(values[m.group(1)]), arg)
        return _OUTPUT.sub(lambda m: str(outputs / m.group(1)), arg)

    return [one(a) for a in args]


@pytest.mark.parametrize("kind", ["processing", "training"])
def test_the_components_command_runs_the_staged_job_on_sagemaker(aws: MotoServer, run_script: RunPython,
                                                                   demo_dir: Path, tmp_path: Path,
                                                                   clean_environment: Path, kind: str) -> None:
    launched = run_script(demo_dir / DEMOS[kind], "--sagemaker-run=yes", "--sagemaker-role", ROLE,
                          "--sagemaker-image", IMAGE, "--sagemaker-output-json", tmp_path / "first.json")
    assert launched.returncode == 0, launched.stderr
    first = json.loads((tmp_path / "first.json").read_text())["job_name"]
    record = json.loads((clean_environment / "launches" / f"{first}.json").read_text())
    staged = aws.json_bodies("CreateProcessingJob" if kind == "processing" else "CreateTrainingJob")[0]
    component = compiled_command(record["request"], kind, record["base_job_name"], tmp_path / "component.yaml")
    assert component["command"] == ["python3", "-m", "aws_sagemaker_remote"]
    values = dict(component["defaults"], instance_type="ml.c5.xlarge", instance_count=2)
    outputs = tmp_path / "outputs"
    aws.clear_log()

    step = subprocess.run([sys.executable, *component["command"][1:],
                           *substitute(component["args"], values, outputs)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env=_environment())

    assert step.returncode == 0, step.stderr
    created = aws.json_bodies("CreateProcessingJob" if kind == "processing" else "CreateTrainingJob")
    assert len(created) == 1
    request = created[0]
    name = (outputs / "job_name").read_text()
    if kind == "processing":
        assert request["ProcessingJobName"] == name != first
        assert request["ProcessingResources"]["ClusterConfig"]["InstanceType"] == "ml.c5.xlarge"
        assert request["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 2
        assert request["ProcessingInputs"] == staged["ProcessingInputs"]
        assert request["AppSpecification"] == staged["AppSpecification"]
        artifacts = json.loads((outputs / "output_artifacts").read_text())
        assert artifacts == {"output": (outputs / "output").read_text()}
        assert artifacts["output"].startswith("s3://")
    else:
        assert request["TrainingJobName"] == name != first
        assert request["ResourceConfig"]["InstanceType"] == "ml.c5.xlarge"
        assert request["InputDataConfig"] == staged["InputDataConfig"]
        assert request["AlgorithmSpecification"] == staged["AlgorithmSpecification"]
        assert (outputs / "training_image").read_text() == IMAGE
        assert (outputs / "model_artifact_url").exists()
    assert {"Key": "aws-sagemaker-remote:launcher", "Value": __version__} in request["Tags"]
    assert f"{name}: Completed" in step.stderr
    # nothing was staged again: the only object written is the new job's launch record
    assert [u.key for u in aws.s3_uploads()] == [f"aws-sagemaker-remote/jobs/{name}/launch.json"]


def test_bad_component_arguments_exit_2_and_create_nothing(aws: MotoServer, run_python: RunPython,
                                                            one_error_line: Callable[..., str]) -> None:
    record = json.dumps({"format": "aws_sagemaker_remote.kfp/1", "kind": "processing", "base_job_name": "x",
                         "request": {}})
    result = run_python("-m", "aws_sagemaker_remote", "rerun", "x", "--from-kfp", record,
                        "--instance-count", "many")
    assert result.returncode == 2
    one_error_line(result.stderr, "--instance-count", "many")
    assert aws.requests == []


def _environment() -> Dict[str, str]:
    from conftest import python_environment

    return python_environment()


def test_a_component_command_with_options_before_rerun_is_refused(aws: MotoServer, run_python: RunPython,
                                                                  one_error_line: Callable[..., str]) -> None:
    result = run_python("-m", "aws_sagemaker_remote", "--region", "us-east-1", "rerun", "x", "--from-kfp", "{}")
    assert result.returncode == 2
    one_error_line(result.stderr, "--from-kfp", "rerun JOB --from-kfp RECORD")
    assert aws.requests == []


def test_a_terminated_pipeline_step_stops_its_running_job(aws: MotoServer, fault_proxy: Any, run_script: RunPython,
                                                          demo_dir: Path, tmp_path: Path,
                                                          clean_environment: Path) -> None:
    # Kubeflow ends a step's pod with SIGTERM (a run cancelled, a timeout): the job must not run on unwatched
    launched = run_script(demo_dir / DEMOS["processing"], "--sagemaker-run=yes", "--sagemaker-role", ROLE,
                          "--sagemaker-image", IMAGE, "--sagemaker-output-json", tmp_path / "first.json")
    assert launched.returncode == 0, launched.stderr
    first = json.loads((tmp_path / "first.json").read_text())["job_name"]
    record = json.loads((clean_environment / "launches" / f"{first}.json").read_text())
    component = compiled_command(record["request"], "processing", record["base_job_name"],
                                 tmp_path / "component.yaml")
    fault_proxy.keep_running("DescribeProcessingJob")
    step = subprocess.Popen([sys.executable, *component["command"][1:],
                             *substitute(component["args"], component["defaults"], tmp_path / "outputs")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env=_environment())
    try:
        fault_proxy.wait_for(lambda e: e.fault == "running")  # the step is following a running job
        step.send_signal(signal.SIGTERM)
        _out, err = step.communicate(timeout=60)
    finally:
        if step.poll() is None:
            step.kill()
            step.communicate()

    assert step.returncode == 130, err
    (created,) = aws.json_bodies("CreateProcessingJob")[1:]
    assert aws.json_bodies("StopProcessingJob") == [{"ProcessingJobName": created["ProcessingJobName"]}]
    assert "stopping the processing job" in err and "Traceback" not in err
    assert "ended Stopped" in err
