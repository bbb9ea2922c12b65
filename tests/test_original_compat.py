"""Scripts written for the first aws-sagemaker-remote run unchanged.

Each compatibility point is checked the way a user meets it: a script run with
its command line (``--sagemaker-run=no``, ``local``, or ``yes`` with
``--sagemaker-dry-run``, which prints the request without any AWS call), its
exit code, output lines and the request. Requests are validated against
botocore's service model, the definition SageMaker's API gives of them.

The demo-shaped scripts below are written for these tests in the shape of the
first project's demos (``optional_arguments.py``, ``demo_checkpoint.py``,
``training_inputs.py``): the same declaration syntax, keywords and flags.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any, Callable, Dict

import botocore.session
import pytest
from botocore.validate import validate_parameters

from aws_sagemaker_remote.api import prepare
from aws_sagemaker_remote.args import OPTIONAL, ORIGINAL_MODES, PathArgument, PathArgumentError
from aws_sagemaker_remote.errors import UsageError
from aws_sagemaker_remote.options import ProcessingOptions, TrainingOptions
from aws_sagemaker_remote.reinvoke import generated_arity, user_arguments
from aws_sagemaker_remote.sources import provenance, resolve

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/python:3.11"
SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")


def validate(operation: str, request: Dict[str, Any]) -> None:
    """Raise botocore's ParamValidationError unless ``request`` fits the operation's input shape."""
    validate_parameters(request, SAGEMAKER.operation_model(operation).input_shape)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def dry_run(run_script: Callable[..., Any], script: Path, *args: str) -> Dict[str, Any]:
    done = run_script(script, "--sagemaker-run=yes", "--sagemaker-dry-run", "--sagemaker-region", "us-east-1",
                      *args, cwd=script.parent)
    assert done.returncode == 0, done.stderr
    report: Dict[str, Any] = json.loads(done.stdout)
    return report


# --- option names of the first project ----------------------------------------------------------

TRAINING_WITH_KEYWORDS = '''
from aws_sagemaker_remote.training import sagemaker_training_main


def main(args):
    print("main ran")


if __name__ == "__main__":
    sagemaker_training_main(
        main=main,
        inputs={"train": "data"},
        training_instance="ml.c5.xlarge",
        training_image="IMAGE",
        training_role="ROLE",
        spot_instances=True,
        runtime_seconds=3600,
        base_job_name="demo-aliases",
    )
'''

TRAINING_PLAIN = '''
from aws_sagemaker_remote.training import sagemaker_training_main


def main(args):
    print("main ran")


if __name__ == "__main__":
    sagemaker_training_main(main=main, inputs={"train": "data"}, base_job_name="demo-aliases")
'''


@pytest.fixture
def training_project(tmp_path: Path) -> Path:
    write(tmp_path, "data/rows.csv", "a,b\n1,2\n")
    return tmp_path


def test_original_keywords_set_their_options(run_script: Callable[..., Any], training_project: Path) -> None:
    script = write(training_project, "train.py",
                   TRAINING_WITH_KEYWORDS.replace("IMAGE", IMAGE).replace("ROLE", ROLE))
    request = dry_run(run_script, script)["request"]
    validate("CreateTrainingJob", request)
    assert request["ResourceConfig"]["InstanceType"] == "ml.c5.xlarge"
    assert request["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert request["RoleArn"] == ROLE
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"]["MaxRuntimeInSeconds"] == 3600


def test_original_flags_set_their_options(run_script: Callable[..., Any], training_project: Path) -> None:
    script = write(training_project, "train.py", TRAINING_PLAIN)
    request = dry_run(run_script, script, "--sagemaker-training-instance", "ml.c5.2xlarge",
                      "--sagemaker-training-image", IMAGE, "--sagemaker-training-role", ROLE,
                      "--sagemaker-spot-instances", "--sagemaker-runtime-seconds=1800")["request"]
    validate("CreateTrainingJob", request)
    assert request["ResourceConfig"]["InstanceType"] == "ml.c5.2xlarge"
    assert request["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert request["RoleArn"] == ROLE
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"]["MaxRuntimeInSeconds"] == 1800
    # the job's own command line carries none of them (nor the bare --sagemaker-run of the next test)
    arguments = request["AlgorithmSpecification"]["ContainerArguments"]
    assert not [a for a in arguments if "training-" in a or "spot-instances" in a or "runtime-seconds" in a]


def test_an_original_flag_overrides_a_keyword_and_is_reported_as_the_command_line(tmp_path: Path) -> None:
    resolved = resolve("training", str(tmp_path / "train.py"), {"training_instance": "ml.m5.large"})
    assert resolved.options.instance == "ml.m5.large"
    assert dict(resolved.origins)["instance"] == "keyword"
    assert dict(provenance(resolved, ["--sagemaker-training-instance=ml.c5.xlarge"]))["--sagemaker-instance"] \
        == "command line"


def test_original_names_in_the_environment_and_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.aws-sagemaker-remote.training]\ntraining-role = "RoleFromFile"\n')
    resolved = resolve("training", str(tmp_path / "train.py"), {},
                       environ={"AWS_SAGEMAKER_REMOTE_TRAINING_INSTANCE": "ml.p3.2xlarge",
                                "AWS_SAGEMAKER_REMOTE_RUNTIME_SECONDS": "600"})
    assert (resolved.options.instance, resolved.options.role, resolved.options.max_run) == \
        ("ml.p3.2xlarge", "RoleFromFile", 600)


def test_one_option_under_two_names_is_refused() -> None:
    with pytest.raises(UsageError, match="instance and training_instance are one option"):
        TrainingOptions.from_keywords({"instance": "ml.m5.large", "training_instance": "ml.c5.xlarge"})
    # the training-only names are not processing keywords (the first project had none of them there)
    with pytest.raises(UsageError, match="unknown keyword training_instance"):
        ProcessingOptions.from_keywords({"training_instance": "ml.m5.large"})
    assert ProcessingOptions.from_keywords({"runtime_seconds": 60}).max_run == 60


def test_a_bad_value_under_an_original_flag_is_one_line_naming_it(run_script: Callable[..., Any],
                                                                  training_project: Path,
                                                                  one_error_line: Callable[..., str]) -> None:
    script = write(training_project, "train.py", TRAINING_PLAIN)
    done = run_script(script, "--sagemaker-runtime-seconds", "soon", cwd=training_project)
    assert done.returncode == 2
    one_error_line(done.stderr, "--sagemaker-runtime-seconds", "soon")


def test_help_hides_the_original_names(run_script: Callable[..., Any], training_project: Path) -> None:
    script = write(training_project, "train.py", TRAINING_PLAIN.replace(
        'inputs={"train": "data"}', 'inputs={"train_set": "data"}, dependencies={"my_module": "data"}'))
    done = run_script(script, "--help", cwd=training_project)
    assert done.returncode == 0, done.stderr
    for hidden in ("--sagemaker-training-instance", "--sagemaker-spot-instances", "--sagemaker-runtime-seconds",
                   "--train-set", "--my-module"):
        assert hidden not in done.stdout
    for shown in ("--sagemaker-instance", "--sagemaker-spot", "--sagemaker-max-run", "--train_set", "--my_module"):
        assert shown in done.stdout


def test_bare_sagemaker_run_means_yes(run_script: Callable[..., Any], training_project: Path) -> None:
    script = write(training_project, "train.py", TRAINING_PLAIN)
    done = run_script(script, "--sagemaker-run", "--sagemaker-dry-run", "--sagemaker-role", ROLE,
                      "--sagemaker-image", IMAGE, "--sagemaker-region", "us-east-1", cwd=training_project)
    assert done.returncode == 0, done.stderr
    request = json.loads(done.stdout)["request"]
    validate("CreateTrainingJob", request)
    assert "main ran" not in done.stdout
    assert "--sagemaker-run=job" in request["AlgorithmSpecification"]["ContainerArguments"]


# --- declarations of the first project ------------------------------------------------------------

OPTIONAL_ARGUMENTS = '''
import os

from aws_sagemaker_remote.api import prepare
from aws_sagemaker_remote.args import OPTIONAL
from aws_sagemaker_remote.processing import sagemaker_processing_main


def main(args):
    import helpers

    print("greeting: {}".format(helpers.GREETING))
    print("input: [{}]".format(args.input))
    print("width: {}".format(args.filter_width))
    if args.input and os.path.isdir(args.input):
        print("listing: {}".format(sorted(os.listdir(args.input))))
    elif not args.input:
        print("Path is empty")


if __name__ == "__main__":
    sagemaker_processing_main(
        script=__file__,
        main=main,
        inputs={
            "input": OPTIONAL
        },
        dependencies={
            "helpers": os.path.join(__file__, "../../helpers")
        },
        additional_arguments=[
            (["--filter-width"], {"type": int, "default": 32, "help": "Filter width"})
        ],
        base_job_name="demo-optional-arguments"
    )
'''


@pytest.fixture
def optional_project(tmp_path: Path) -> Path:
    write(tmp_path, "helpers/__init__.py", 'GREETING = "hello from helpers"\n')
    write(tmp_path, "demo/optional_arguments.py", OPTIONAL_ARGUMENTS)
    write(tmp_path, "demo/data/one.txt", "1\n")
    return tmp_path


@pytest.mark.parametrize("run", ["no", "local"])
def test_optional_arguments_demo_runs_unchanged(run_script: Callable[..., Any], optional_project: Path,
                                                run: str) -> None:
    script = optional_project / "demo" / "optional_arguments.py"
    done = run_script(script, f"--sagemaker-run={run}", cwd=optional_project, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "greeting: hello from helpers" in done.stdout
    assert "Path is empty" in done.stdout and "width: 32" in done.stdout
    done = run_script(script, f"--sagemaker-run={run}", "--input", "demo/data", "--filter-width", "8",
                      cwd=optional_project, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "listing: ['one.txt']" in done.stdout and "width: 8" in done.stdout


@pytest.mark.parametrize("spelling", ["--helpers", "--other-helpers", "--other_helpers"])
def test_dependency_flags_in_both_spellings(run_script: Callable[..., Any], optional_project: Path,
                                            spelling: str) -> None:
    write(optional_project, "elsewhere/helpers/__init__.py", 'GREETING = "hello from elsewhere"\n')
    script = optional_project / "demo" / "optional_arguments.py"
    text = script.read_text()
    if spelling != "--helpers":
        script.write_text(text.replace('"helpers": os.path', '"other_helpers": os.path'))
    done = run_script(script, spelling, "elsewhere/helpers", cwd=optional_project)
    assert done.returncode == 0, done.stderr
    assert "greeting: hello from elsewhere" in done.stdout


def test_a_missing_dependency_is_still_one_line(run_script: Callable[..., Any], optional_project: Path,
                                                one_error_line: Callable[..., str]) -> None:
    script = optional_project / "demo" / "optional_arguments.py"
    done = run_script(script, "--helpers", "nowhere/helpers", cwd=optional_project)
    assert done.returncode == 2
    one_error_line(done.stderr, "--helpers", "does not exist")


def test_a_malformed_additional_argument_is_one_line(run_script: Callable[..., Any], optional_project: Path,
                                                     one_error_line: Callable[..., str]) -> None:
    script = optional_project / "demo" / "optional_arguments.py"
    script.write_text(script.read_text().replace('(["--filter-width"], {', '(["--filter-width"], 32, {'))
    done = run_script(script, cwd=optional_project)
    assert done.returncode == 2
    one_error_line(done.stderr, "additional_arguments")


def test_optional_copy_and_path_argument_copy() -> None:
    made = OPTIONAL.copy(local="data", mode="AugmentedManifestFile", attributes=["source-ref"])
    assert made.optional and made.local == "data"
    assert (made.mode, made.s3_data_type, made.attributes) == ("Pipe", "AugmentedManifestFile", ("source-ref",))
    assert made.copy(local="other").attributes == ("source-ref",)
    assert made.copy(local="other").local == "other"


# --- PathArgument modes -----------------------------------------------------------------------------

CHANNEL_DEMO = '''
from aws_sagemaker_remote.args import PathArgument
from aws_sagemaker_remote.training import sagemaker_training_main


def main(args):
    print("main ran")


if __name__ == "__main__":
    sagemaker_training_main(
        main=main,
        inputs={"train": DECLARATION},
        base_job_name="demo-modes",
    )
'''

INPUT_MODES = sorted(m for m, s in ORIGINAL_MODES.items() if "mode" in s)


@pytest.mark.parametrize("mode", INPUT_MODES)
def test_original_input_modes_render_a_valid_training_channel(run_script: Callable[..., Any], tmp_path: Path,
                                                              mode: str) -> None:
    write(tmp_path, "data/manifest.json", '{"source-ref": "s3://b/a.jpg", "label": 1}\n')
    augmented = "Augmented" in mode
    declaration = f"PathArgument('data/manifest.json', mode={mode!r}" + \
        (", attributes=['source-ref', 'label'])" if augmented else ")")
    script = write(tmp_path, "train.py", CHANNEL_DEMO.replace("DECLARATION", declaration))
    request = dry_run(run_script, script, "--sagemaker-role", ROLE, "--sagemaker-image", IMAGE)["request"]
    validate("CreateTrainingJob", request)
    channel = next(c for c in request["InputDataConfig"] if c["ChannelName"] == "train")
    source = channel["DataSource"]["S3DataSource"]
    expected = ORIGINAL_MODES[mode]
    assert channel["InputMode"] == expected["mode"] == "Pipe"
    assert source["S3DataType"] == expected["s3_data_type"]
    assert channel["RecordWrapperType"] == expected.get("record_wrapper", "None")
    assert source["S3DataType"] == "S3Prefix" or source["S3Uri"].endswith("manifest.json")
    if augmented:
        assert source["AttributeNames"] == ["source-ref", "label"]
    else:
        assert "AttributeNames" not in source


PROCESSING_DEMO = '''
from aws_sagemaker_remote.args import PathArgument
from aws_sagemaker_remote.processing import sagemaker_processing_main


def main(args):
    print("main ran")


if __name__ == "__main__":
    sagemaker_processing_main(
        main=main,
        inputs={"rows": INPUT},
        outputs={"result": OUTPUT},
        base_job_name="demo-modes",
    )
'''


@pytest.mark.parametrize("upload", ["EndOfJob", "Continuous"])
def test_original_output_modes_render_the_upload_mode(run_script: Callable[..., Any], tmp_path: Path,
                                                      upload: str) -> None:
    write(tmp_path, "data/rows.csv", "a\n")
    script = write(tmp_path, "process.py", PROCESSING_DEMO.replace("INPUT", "PathArgument('data', mode='ManifestFile')")
                   .replace("OUTPUT", f"PathArgument('out', mode={upload!r})"))
    request = dry_run(run_script, script, "--sagemaker-role", ROLE, "--sagemaker-image", IMAGE)["request"]
    validate("CreateProcessingJob", request)
    output = request["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]
    assert output["S3UploadMode"] == upload
    rows = next(i for i in request["ProcessingInputs"] if i["InputName"] == "rows")["S3Input"]
    assert (rows["S3InputMode"], rows["S3DataType"]) == ("Pipe", "ManifestFile")


def test_processing_refuses_augmented_manifests_in_one_line(run_script: Callable[..., Any], tmp_path: Path,
                                                            one_error_line: Callable[..., str]) -> None:
    # botocore's model: ProcessingS3Input's S3DataType is S3Prefix or ManifestFile, and it has no AttributeNames
    shape = SAGEMAKER.shape_for("ProcessingS3Input")
    assert "AttributeNames" not in shape.members
    assert "AugmentedManifestFile" not in shape.members["S3DataType"].enum
    write(tmp_path, "data/manifest.json", '{"source-ref": "s3://b/a.jpg"}\n')
    script = write(tmp_path, "process.py", PROCESSING_DEMO.replace(
        "INPUT", "PathArgument('data/manifest.json', mode='AugmentedManifestFile', attributes=['source-ref'])")
        .replace("OUTPUT", "'out'"))
    done = run_script(script, "--sagemaker-run=yes", "--sagemaker-dry-run", "--sagemaker-role", ROLE,
                      "--sagemaker-region", "us-east-1", cwd=tmp_path)
    assert done.returncode == 2
    one_error_line(done.stderr, "--rows", "AugmentedManifestFile", "training channels only")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"mode": "Bogus"}, "allowed values are File, Pipe, FastFile, EndOfJob"),
    ({"attributes": ["a"]}, "apply to s3_data_type='AugmentedManifestFile'"),
    ({"mode": "AugmentedManifestFile", "attributes": []}, "1-16 names"),
    ({"mode": "AugmentedManifestFile", "attributes": ["x"] * 17}, "1-16 names"),
    ({"mode": "ManifestFileWrapped", "record_wrapper": "None", "s3_data_type": "AugmentedManifestFile"},
     "means s3_data_type='ManifestFile'"),
])
def test_path_argument_refuses_what_the_request_cannot_hold(kwargs: Dict[str, Any], needle: str) -> None:
    with pytest.raises(PathArgumentError, match=needle.replace("(", r"\(").replace("[", r"\[")):
        PathArgument("data", **kwargs)


def test_attribute_limits_are_botocores() -> None:
    names = SAGEMAKER.shape_for("AttributeNames")
    assert names.metadata["max"] == 16
    assert SAGEMAKER.shape_for("AttributeName").metadata["max"] == 256
    assert len(PathArgument("m", mode="AugmentedManifestFile", attributes=["a" * 256] * 16).attributes or ()) == 16


# --- checkpoints persist between runs ------------------------------------------------------------

CHECKPOINT_DEMO = '''
import glob
import json
import os

from aws_sagemaker_remote.training.main import sagemaker_training_main


def main(args):
    files = sorted(os.path.basename(f) for f in glob.glob(os.path.join(args.checkpoint_dir, "**", "*"),
                                                          recursive=True))
    print("checkpoint files: {}".format(files))
    runs = len([f for f in files if f.startswith("sm-checkpoint-")])
    with open(os.path.join(args.checkpoint_dir, "sm-checkpoint-{}.json".format(runs + 1)), "w") as f:
        json.dump({"step": 123, "files": files}, f)
    print("complete")


if __name__ == "__main__":
    sagemaker_training_main(
        main=main,
        base_job_name="demo-checkpoint",
        volume_size=20
    )
'''


def test_checkpoints_persist_between_local_runs_and_fresh_starts_over(run_script: Callable[..., Any],
                                                                      tmp_path: Path) -> None:
    script = write(tmp_path, "demo_checkpoint.py", CHECKPOINT_DEMO)

    def run(*args: str) -> str:
        done = run_script(script, "--sagemaker-run=local", *args, cwd=tmp_path, timeout=300)
        assert done.returncode == 0, done.stderr
        # a local job's lines come with the instance's name, as in CloudWatch: "[algo-1] ..."
        line = next(x for x in done.stdout.splitlines() if x.startswith("[algo-1] checkpoint files:"))
        return line[len("[algo-1] "):]

    assert run() == "checkpoint files: []"
    assert run() == "checkpoint files: ['sm-checkpoint-1.json']"
    assert run() == "checkpoint files: ['sm-checkpoint-1.json', 'sm-checkpoint-2.json']"
    # a fresh start finds nothing, and leaves its own checkpoint for the next run
    assert run("--sagemaker-fresh") == "checkpoint files: []"
    assert run() == "checkpoint files: ['sm-checkpoint-1.json']"
    # no sync: the job starts empty and keeps nothing
    assert run("--sagemaker-checkpoint-s3", "none") == "checkpoint files: []"
    assert run() == "checkpoint files: ['sm-checkpoint-1.json', 'sm-checkpoint-2.json']"


def test_checkpoint_default_is_in_the_request_and_none_removes_it(run_script: Callable[..., Any],
                                                                   training_project: Path,
                                                                   one_error_line: Callable[..., str]) -> None:
    script = write(training_project, "train.py", TRAINING_PLAIN)
    args = ("--sagemaker-role", ROLE, "--sagemaker-image", IMAGE)
    request = dry_run(run_script, script, *args)["request"]
    validate("CreateTrainingJob", request)
    assert request["CheckpointConfig"]["LocalPath"] == "/opt/ml/checkpoints"
    assert "/checkpoints/demo-aliases-" in request["CheckpointConfig"]["S3Uri"]
    request = dry_run(run_script, script, *args, "--sagemaker-checkpoint-s3", "none")["request"]
    assert "CheckpointConfig" not in request
    done = run_script(script, "--sagemaker-run=local", "--sagemaker-checkpoint-s3", "none", "--sagemaker-fresh",
                      cwd=training_project)
    assert done.returncode == 2
    one_error_line(done.stderr, "--sagemaker-fresh")


def test_the_readme_resume_demo_works_where_it_ran_before(run_script: Callable[..., Any], repo_root: Path,
                                                          tmp_path: Path) -> None:
    # the README's commands, twice in a row as on a machine where the demo ran before; the local
    # folders go to tmp_path (the checkpoint location is in the per-test stand-in for S3)
    text = (repo_root / "README.rst").read_text()
    commands = [line.split()[2:] for line in text.splitlines()
                if line.strip().startswith("python demo/train_linear.py") and "--sagemaker-instance-count" not in line]
    assert len(commands) == 2 and "--sagemaker-fresh" in commands[0] and "--stop-after" in commands[0]
    dirs = ["--model-dir", str(tmp_path / "model"), "--output-dir", str(tmp_path / "data"),
            "--checkpoint-dir", str(tmp_path / "checkpoints")]
    for _ in range(2):
        first = run_script(repo_root / "demo" / "train_linear.py", *commands[0], *dirs, cwd=repo_root, timeout=300)
        assert first.returncode == 1, first.stderr
        assert "resuming" not in first.stdout and "[algo-1] epoch 1 loss:" in first.stdout
        second = run_script(repo_root / "demo" / "train_linear.py", *commands[1], *dirs, cwd=repo_root, timeout=300)
        assert second.returncode == 0, second.stderr
        assert "resuming from epoch 3" in second.stdout


@pytest.mark.parametrize("kind", ["processing", "training"])
def test_every_other_spelling_is_a_generated_flag_of_the_job_command_line(tmp_path: Path, kind: str) -> None:
    """The job's command line drops the original's spellings as it drops the flags they stand for, and
    each spelling takes what the parser gives it."""
    script = tmp_path / "s.py"
    script.write_text("")
    decl, opts, parser = prepare(kind, None, {"train_set": "s3://b/d/"}, {"my_out": "out"},
                                 {"my_module": str(script)}, [(["--width"], {"type": int})], None, None,
                                 str(script), {}, {})
    arity = generated_arity(decl, opts)
    spellings = {"--train-set", "--my-module", "--sagemaker-runtime-seconds"}
    if kind == "processing":
        spellings.add("--my-out-s3")
    else:
        spellings |= {"--sagemaker-training-instance", "--sagemaker-spot-instances"}
    assert spellings <= set(arity)
    assert arity["--sagemaker-run"] == "?"
    for flag, takes in arity.items():
        if takes == "?":
            parser.parse_args([flag])
        else:
            with pytest.raises(SystemExit):
                parser.parse_args([flag])
    argv = ["--sagemaker-run", "--train-set", "s3://b/x/", "--width", "3", "--my-module", str(script),
            "--sagemaker-runtime-seconds", "60", "x"]
    assert user_arguments(argv, decl, opts) == ("--width", "3", "--sagemaker-run=job", "x")
    namespace = parser.parse_args(argv[:-1])
    assert (namespace.train_set, namespace.my_module, namespace.width, namespace.sagemaker_run,
            namespace.sagemaker_max_run) == ("s3://b/x/", str(script), 3, "yes", 60)


def test_a_training_name_in_the_common_table_sets_training_only(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.aws-sagemaker-remote]\ntraining-instance = "ml.p3.2xlarge"\n'
                                             'runtime-seconds = 900\n')
    training = resolve("training", str(tmp_path / "train.py"), {}, environ={}).options
    processing = resolve("processing", str(tmp_path / "process.py"), {}, environ={}).options
    assert (training.instance, training.max_run) == ("ml.p3.2xlarge", 900)
    assert (processing.instance, processing.max_run) == (ProcessingOptions().instance, 900)


TRAINING_INPUTS = '''
import os

import aws_sagemaker_remote
from aws_sagemaker_remote.args import PathArgument
from aws_sagemaker_remote.training import sagemaker_training_main


def show_path(path):
    if os.path.isdir(path):
        print("Directory contents: {}".format(sorted(os.listdir(path))))
    elif os.path.isfile(path):
        with open(path) as f:
            print("File contents: [{}]".format(f.read().strip()))
    else:
        print("Path [{}] does not exist".format(path))


def main(args):
    print("Test folder")
    show_path(args.test_folder)
    print("Test file")
    show_path(args.test_file)
    print("Test manifest mode: {}".format(args.test_manifest is not None))


if __name__ == "__main__":
    sagemaker_training_main(
        main=main,
        inputs={
            "test_folder": "demo/test_folder",
            "test_file": "demo/test_folder/test_file.txt",
            "test_manifest": OPTIONAL_MANIFEST,
        },
        dependencies={
            "aws_sagemaker_remote": aws_sagemaker_remote
        },
        training_instance="ml.m5.large",
        base_job_name="demo-training-inputs"
    )
'''


@pytest.mark.parametrize("run", ["no", "local"])
def test_training_inputs_demo_runs_unchanged_with_the_original_spellings(run_script: Callable[..., Any],
                                                                        tmp_path: Path, run: str) -> None:
    write(tmp_path, "demo/test_folder/test_file.txt", "first file\n")
    write(tmp_path, "demo/other/test_file.txt", "other file\n")
    script = write(tmp_path, "demo/training_inputs.py", TRAINING_INPUTS.replace(
        "OPTIONAL_MANIFEST", "OPTIONAL.copy(mode='ManifestFile')").replace(
        "from aws_sagemaker_remote.args import PathArgument", "from aws_sagemaker_remote.args import OPTIONAL"))
    done = run_script(script, f"--sagemaker-run={run}", "--test-file", "demo/other/test_file.txt",
                      "--sagemaker-training-instance", "ml.c5.xlarge", cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [line.split("] ", 1)[-1] if run == "local" else line for line in done.stdout.splitlines()]
    assert "Directory contents: ['test_file.txt']" in lines
    assert "File contents: [other file]" in lines
    assert "Test manifest mode: False" in lines


AUGMENTED_DEMO = '''
from aws_sagemaker_remote.args import PathArgument
from aws_sagemaker_remote.training import sagemaker_training_main
from aws_sagemaker_remote.util.pipes import augmented_manifest_records

ATTRIBUTES = ["label", "clip-ref"]


def main(args):
    for line in augmented_manifest_records(args.test_pipe, ATTRIBUTES, 0):
        print("label {} clip {}".format(line["label"].decode(), line["clip-ref"].decode()))


if __name__ == "__main__":
    sagemaker_training_main(
        main=main,
        inputs={
            "test_pipe": PathArgument("data/manifest.json", mode="AugmentedManifestFileWrapped",
                                      attributes=ATTRIBUTES)
        },
        base_job_name="demo-augmented"
    )
'''


def test_an_original_augmented_manifest_declaration_streams_in_a_local_job(run_script: Callable[..., Any],
                                                                           tmp_path: Path) -> None:
    from aws_sagemaker_remote.store import LocalStore

    store = LocalStore()  # the per-test stand-in for S3 the local job also uses
    lines = []
    for number in range(3):
        uri = f"s3://demo-clips/clips/clip{number}.txt"
        store.put_bytes(f"clip-{number}".encode(), uri)
        lines.append(json.dumps({"label": number, "clip-ref": uri, "unused": "x"}))
    write(tmp_path, "data/manifest.json", "\n".join(lines) + "\n")
    script = write(tmp_path, "train.py", AUGMENTED_DEMO)
    done = run_script(script, "--sagemaker-run=local", cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert [line.split("] ", 1)[-1] for line in done.stdout.splitlines() if "] label " in line] == [
        "label 0 clip clip-0", "label 1 clip clip-1", "label 2 clip clip-2"]
