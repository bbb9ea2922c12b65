"""Script mode (``--sagemaker-entry=toolkit``): the image's sagemaker-training toolkit starts the job.

The request carries no entrypoint; the bundle is ``sagemaker_submit_directory``, our launcher
``sagemaker_program``, and the script's exact argument list a JSON hyperparameter. The local
backend runs the installed toolkit's own ``train`` for such a request.
"""
from __future__ import annotations

import io
import json
import re
import tarfile
import textwrap
from pathlib import Path
from typing import Any, Dict, List

import boto3
import pytest
from botocore.validate import validate_parameters

from aws_sagemaker_remote.container import (
    ARGUMENT_FILE_FLAG,
    ARGUMENTS_HYPERPARAMETER,
    ROOT_ENV,
    TOOLKIT_PROGRAM,
    ContainerPaths,
)
from aws_sagemaker_remote.toolkit_program import recorded_arguments

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/sklearn:1"

#: A training script whose arguments need every kind of care: types, repeats, spaces, quotes.
SCRIPT = textwrap.dedent('''
    import json, os
    from aws_sagemaker_remote import sagemaker_training_main

    def main(args):
        seen = {"epochs": args.epochs, "tag": args.tag, "rate": args.rate, "flag": args.flag, "name": args.name}
        print("SEEN " + json.dumps(seen, sort_keys=True))
        with open(os.path.join(args.model_dir, "model.json"), "w") as fh:
            json.dump(seen, fh)
        with open(os.path.join(args.output_dir, "note.txt"), "w") as fh:
            fh.write("written in the job")

    sagemaker_training_main(main, additional_arguments=[
        {"dest": "--epochs", "type": int, "default": 1},
        {"dest": "--rate", "type": float, "default": 0.5},
        {"dest": "--tag", "action": "append", "default": []},
        {"dest": "--flag", "action": "store_true"},
        {"dest": "--name", "default": ""},
    ])
''')
USER_ARGS = ["--epochs", "3", "--tag", "a b", "--tag", 'x"y', "--rate", "1e-3", "--flag", "--name", "émile --x=1"]
EXPECTED = {"epochs": 3, "tag": ["a b", 'x"y'], "rate": 0.001, "flag": True, "name": "émile --x=1"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "train.py").write_text(SCRIPT, encoding="utf-8")
    return folder


def _dirs(tmp_path: Path) -> List[str]:
    return ["--model-dir", str(tmp_path / "model"), "--output-dir", str(tmp_path / "data"),
            "--checkpoint-dir", str(tmp_path / "ckpt")]


def _dry_run(run_script: Any, project: Path, tmp_path: Path, *extra: str) -> Dict[str, Any]:
    done = run_script(project / "train.py", "--sagemaker-run=yes", "--sagemaker-dry-run", "--sagemaker-role", ROLE,
                      "--sagemaker-image", IMAGE, "--sagemaker-region", "us-east-1", "--sagemaker-entry=toolkit",
                      *_dirs(tmp_path), *extra, cwd=project)
    assert done.returncode == 0, done.stderr
    report: Dict[str, Any] = json.loads(done.stdout)
    return report


def test_the_dry_run_shows_a_script_mode_request(run_script: Any, project: Path, tmp_path: Path) -> None:
    report = _dry_run(run_script, project, tmp_path, *USER_ARGS)
    request = report["request"]
    client = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    validate_parameters(request, client.meta.service_model.operation_model("CreateTrainingJob").input_shape)
    algorithm = request["AlgorithmSpecification"]
    assert algorithm == {"TrainingImage": IMAGE, "TrainingInputMode": "File"}  # the image's own entry point
    assert "InputDataConfig" not in request  # no code channel: the toolkit fetches the bundle
    hyper = request["HyperParameters"]
    assert all(isinstance(v, str) for v in hyper.values())
    assert json.loads(hyper["sagemaker_program"]) == TOOLKIT_PROGRAM
    bundle_uri = json.loads(hyper["sagemaker_submit_directory"])
    assert re.search(r"/cas/sha256/[0-9a-f]{64}$", bundle_uri)  # the code archive, a content-addressed blob
    assert bundle_uri in [u["uri"] for u in report["uploads"]]
    assert json.loads(hyper["sagemaker_region"]) == "us-east-1"
    assert json.loads(hyper["sagemaker_job_name"]) == request["TrainingJobName"]
    # the exact argument list, the user's tokens as typed after the framework's own
    recorded = json.loads(hyper[ARGUMENTS_HYPERPARAMETER])
    assert recorded[0] == "--sagemaker-run=job"
    assert recorded[-len(USER_ARGS):] == USER_ARGS
    assert "--model-dir=/opt/ml/model" in recorded


def test_arguments_beyond_one_hyperparameter_travel_in_the_code_archive(run_script: Any, project: Path,
                                                                         tmp_path: Path) -> None:
    long_name = "n" * 3000
    report = _dry_run(run_script, project, tmp_path, "--name", long_name)
    request = report["request"]
    recorded = json.loads(request["HyperParameters"][ARGUMENTS_HYPERPARAMETER])
    # a file of the archive the toolkit unpacks into /opt/ml/code: no code channel is needed for it
    assert recorded == [f"{ARGUMENT_FILE_FLAG}=/opt/ml/code/arguments.json"]
    assert "InputDataConfig" not in request


@pytest.mark.parametrize("extra, needle", [
    (["--sagemaker-algorithm-name", "arn:aws:sagemaker:us-east-1:123456789012:algorithm/a"],
     "--sagemaker-algorithm-name"),
    (["--sagemaker-image", "linear-learner:1"], "linear-learner:1"),
])
def test_images_without_the_toolkit_are_refused(run_script: Any, project: Path, tmp_path: Path, one_error_line: Any,
                                                extra: List[str], needle: str) -> None:
    done = run_script(project / "train.py", "--sagemaker-run=yes", "--sagemaker-dry-run", "--sagemaker-role", ROLE,
                      "--sagemaker-entry=toolkit", *extra, cwd=project)
    assert done.returncode == 2
    one_error_line(done.stderr, "--sagemaker-entry", needle)
    assert done.stdout == ""


def test_a_processing_job_refuses_script_mode(run_script: Any, tmp_path: Path, one_error_line: Any) -> None:
    script = tmp_path / "process.py"
    script.write_text("from aws_sagemaker_remote import sagemaker_processing_main\n"
                      "sagemaker_processing_main(lambda args: None)\n")
    done = run_script(script, "--sagemaker-run=local", "--sagemaker-entry=toolkit")
    assert done.returncode == 2
    one_error_line(done.stderr, "--sagemaker-entry", "training jobs only")


def test_the_launcher_reads_the_exact_list_and_moves_relocated_paths(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "opt" / "ml"
    paths = ContainerPaths(str(root))
    Path(paths.hyperparameters).parent.mkdir(parents=True)
    argv = ["--sagemaker-run=job", "--data=/opt/ml/input/data/train", "--tag", "a b", "--tag", "a b"]
    Path(paths.hyperparameters).write_text(json.dumps({ARGUMENTS_HYPERPARAMETER: json.dumps(argv), "tag": "x"}))
    monkeypatch.setenv(ROOT_ENV, str(root))
    assert recorded_arguments() == ["--sagemaker-run=job", f"--data={root}/input/data/train",
                                    "--tag", "a b", "--tag", "a b"]
    Path(paths.hyperparameters).write_text(json.dumps({"tag": "x"}))
    with pytest.raises(ValueError, match=ARGUMENTS_HYPERPARAMETER):
        recorded_arguments()


def _tar_json(body: bytes, member: str) -> Any:
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return json.loads(tar.extractfile(member).read())  # type: ignore[union-attr]


def test_end_to_end_through_the_toolkit_against_s3(aws: Any, run_script: Any, project: Path,
                                                   tmp_path: Path) -> None:
    result_file = tmp_path / "result.json"
    done = run_script(project / "train.py", "--sagemaker-run=local", "--sagemaker-store=s3",
                      "--sagemaker-entry=toolkit", "--sagemaker-output-json", result_file,
                      "--sagemaker-download-model", tmp_path / "downloaded", *_dirs(tmp_path), *USER_ARGS,
                      cwd=project, timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    # the toolkit really ran: its own log lines, its invocation of our program, its success report
    assert "sagemaker-training-toolkit INFO" in done.stdout
    assert f"-- {TOOLKIT_PROGRAM} " in done.stdout
    assert "Reporting training SUCCESS" in done.stdout
    # it fetched the submit directory from S3 (moto) itself
    # (the code archive is the one blob of this job: it has no inputs, and in script mode no code channel)
    bundle_gets = [r for r in aws.requests
                   if r.method == "GET" and re.search(r"/cas/sha256/[0-9a-f]{64}$", r.path or "")]
    assert bundle_gets, [r.path for r in aws.requests]
    # the script got its arguments exactly, types and repeats included
    seen = [json.loads(line.split("SEEN ", 1)[1]) for line in done.stdout.splitlines() if "SEEN " in line]
    assert seen == [EXPECTED]
    result = json.loads(result_file.read_text())
    assert result["status"] == "Completed"
    assert json.loads((tmp_path / "downloaded" / "model.json").read_text()) == EXPECTED
    bucket, key = result["output_data_url"][5:].split("/", 1)
    body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert tar.extractfile("note.txt").read() == b"written in the job"  # type: ignore[union-attr]


def test_end_to_end_through_the_toolkit_offline_with_an_argument_file(run_script: Any, project: Path,
                                                                      tmp_path: Path) -> None:
    long_name = "n" * 3000
    done = run_script(project / "train.py", "--sagemaker-run=local", "--sagemaker-entry=toolkit",
                      "--sagemaker-download-model", tmp_path / "downloaded", *_dirs(tmp_path),
                      "--tag", "t", "--name", long_name, cwd=project, timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "Reporting training SUCCESS" in done.stdout
    # the local stand-in store is no S3: the backend put the bundle where the toolkit looks first
    assert "is not empty, abandoning unzipping" in done.stdout
    assert json.loads((tmp_path / "downloaded" / "model.json").read_text())["name"] == long_name


def test_requirements_in_script_mode_go_into_the_overlay_not_the_users_environment(
        run_script: Any, run_python: Any, tmp_path: Path, clean_environment: Path) -> None:
    from test_bootstrap import make_wheel
    from test_overlay import seen, under, user_packages

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "tinypkg", "0.1", {"tinypkg/__init__.py": "VALUE = 'from the requirements'\n"})
    project = tmp_path / "reqs"
    project.mkdir()
    # named like the toolkit's own requirements file: it is in the script's folder of the bundle, not at its root
    (project / "requirements.txt").write_text(f"--no-index\n--find-links {wheels}\ntinypkg==0.1\n")
    (project / "train.py").write_text(textwrap.dedent('''
        import json, sys
        from aws_sagemaker_remote import sagemaker_training_main

        def main(args):
            import tinypkg
            print("SEEN=" + json.dumps({"python": sys.executable, "tinypkg": tinypkg.__file__}))

        sagemaker_training_main(main, requirements="requirements.txt")
    '''))
    before = user_packages(run_python)
    done = run_script(project / "train.py", "--sagemaker-run=local", "--sagemaker-entry=toolkit", *_dirs(tmp_path),
                      cwd=project, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Reporting training SUCCESS" in done.stdout
    [job] = seen(done.stdout)
    overlays = clean_environment / "warmpoolcache" / "aws-sagemaker-remote" / "envs"
    assert under(job["python"], overlays) and under(job["tinypkg"], overlays)
    assert user_packages(run_python) == before
