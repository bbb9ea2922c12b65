"""A first real launch: region and profile from the usual variables, a role by name, the default image.

AWS calls go to the moto server (``aws`` fixture). The image tests that need the SDK's image
tables are marked ``sdk``: CI installs the ``sdk`` extra in a separate step and runs them with
``REQUIRE_SDK_TESTS=1``, where a missing SDK fails them instead of skipping them.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, List

import boto3
import pytest

from aws_sagemaker_remote.images import is_image_shorthand, resolve_image, sdk_available

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/python:3.11"
BUCKET = "first-launch"
DEMOS = {"processing": "wordcount.py", "training": "train_linear.py"}
CLI = ("-m", "aws_sagemaker_remote.cli")


def dry_run(run_script: Any, demo_dir: Path, kind: str, *args: str, env: Any = None) -> Any:
    return run_script(demo_dir / DEMOS[kind], "--sagemaker-run=yes", "--sagemaker-dry-run",
                      "--sagemaker-bucket", BUCKET, *args, env=env)


def request_of(result: Any) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["request"]


def image_of(request: Any) -> str:
    return str(request.get("AppSpecification", {}).get("ImageUri")
               or request["AlgorithmSpecification"]["TrainingImage"])


# --- region and profile -----------------------------------------------------------------------------

@pytest.mark.parametrize("variables,region", [
    ({"AWS_REGION": "eu-west-1"}, "eu-west-1"),
    ({"AWS_DEFAULT_REGION": "ap-south-1"}, "ap-south-1"),
    ({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "ap-south-1"}, "eu-west-1"),  # as the AWS CLI v2
])
def test_region_from_aws_region_or_aws_default_region(aws: Any, run_script: Any, demo_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch, variables: Any,
                                                      region: str) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    result = run_script(demo_dir / "wordcount.py", "--sagemaker-run=yes", "--sagemaker-dry-run",
                        "--sagemaker-role", ROLE, "--sagemaker-image", IMAGE)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    # the default bucket is named after the region, and the account came from STS in that region
    assert report["uploads"][0]["uri"].startswith(f"s3://sagemaker-{region}-123456789012/")
    assert "GetCallerIdentity" in aws.operations()


def test_no_region_anywhere_names_both_variables(aws: Any, run_script: Any, demo_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch, one_error_line: Any) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    result = run_script(demo_dir / "wordcount.py", "--sagemaker-run=yes", "--sagemaker-dry-run",
                        "--sagemaker-role", ROLE, "--sagemaker-image", IMAGE)
    assert result.returncode == 1
    one_error_line(result.stderr, "--sagemaker-region", "AWS_REGION", "AWS_DEFAULT_REGION")
    assert aws.requests == []


def test_a_missing_profile_from_aws_profile_is_named(aws: Any, run_script: Any, run_python: Any, demo_dir: Path,
                                                     monkeypatch: pytest.MonkeyPatch, one_error_line: Any) -> None:
    monkeypatch.setenv("AWS_PROFILE", "nosuch")
    result = run_script(demo_dir / "wordcount.py", "--sagemaker-run=yes", "--sagemaker-role", ROLE,
                        "--sagemaker-image", IMAGE)
    assert result.returncode == 2
    line = one_error_line(result.stderr, "AWS_PROFILE", "'nosuch'")
    assert "None" not in line
    cli = run_python(*CLI, "describe", "some-job")
    assert cli.returncode == 2
    assert "None" not in one_error_line(cli.stderr, "AWS_PROFILE", "'nosuch'")
    assert aws.requests == []


# --- the role: an ARN, or a name looked up in IAM ---------------------------------------------------

@pytest.fixture
def job_role(aws: Any) -> str:
    iam = boto3.client("iam")
    return str(iam.create_role(RoleName="JobRole", Path="/service-role/",
                               AssumeRolePolicyDocument="{}")["Role"]["Arn"])


@pytest.mark.parametrize("kind", ["processing", "training"])
@pytest.mark.parametrize("given", ["JobRole", "service-role/JobRole", "role/service-role/JobRole"])
def test_a_role_name_is_resolved_through_iam(aws: Any, job_role: str, run_script: Any, demo_dir: Path,
                                             kind: str, given: str) -> None:
    assert "/service-role/JobRole" in job_role
    request = request_of(dry_run(run_script, demo_dir, kind, "--sagemaker-role", given,
                                 "--sagemaker-image", IMAGE))
    assert request["RoleArn"] == job_role
    assert "GetRole" in aws.operations("iam")


def test_a_role_arn_is_used_without_asking_iam(aws: Any, run_script: Any, demo_dir: Path) -> None:
    request = request_of(dry_run(run_script, demo_dir, "training", "--sagemaker-role", ROLE,
                                 "--sagemaker-image", IMAGE))
    assert request["RoleArn"] == ROLE
    assert aws.operations("iam") == []


@pytest.mark.parametrize("given,message", [
    ("NoSuchRole", "no IAM role named 'NoSuchRole'"),
    ("other-path/JobRole", "has the path '/service-role/'"),
])
def test_an_unknown_role_name_is_one_line_and_nothing_is_created(aws: Any, job_role: str, run_script: Any,
                                                                 demo_dir: Path, one_error_line: Any,
                                                                 given: str, message: str) -> None:
    result = run_script(demo_dir / "wordcount.py", "--sagemaker-run=yes", "--sagemaker-role", given,
                        "--sagemaker-image", IMAGE, "--sagemaker-bucket", BUCKET)
    assert result.returncode == 2
    one_error_line(result.stderr, "--sagemaker-role", message)
    assert aws.s3_uploads() == [] and aws.operations("sagemaker") == []
    assert "CreateBucket" not in aws.operations("s3")


# --- images ----------------------------------------------------------------------------------------

def test_shorthands_and_uris() -> None:
    assert is_image_shorthand("sklearn:1.2-1") and is_image_shorthand("huggingface:4.28-pytorch2.0")
    assert not is_image_shorthand(IMAGE)
    assert resolve_image(IMAGE, "us-east-1", "processing", "ml.m5.large") == IMAGE  # no SDK needed


def test_without_the_sdk_a_shorthand_is_one_line_before_any_request(aws: Any, run_script: Any, demo_dir: Path,
                                                                   tmp_path: Path, repo_root: Path,
                                                                   one_error_line: Any) -> None:
    # an empty package named sagemaker, first on the path, hides any installed SDK from the script
    hidden = tmp_path / "no-sdk"
    (hidden / "sagemaker").mkdir(parents=True)
    (hidden / "sagemaker" / "__init__.py").write_text("")
    env = {"PYTHONPATH": os.pathsep.join([str(hidden), str(repo_root)])}
    for kind in DEMOS:
        result = run_script(demo_dir / DEMOS[kind], "--sagemaker-run=yes", "--sagemaker-role", ROLE, env=env)
        assert result.returncode == 2
        one_error_line(result.stderr, "--sagemaker-image", "'sklearn:1.2-1'", "pip install 'aws-sagemaker-remote[sdk]'",
                       "full image URI")
    assert aws.requests == []


def image_uris() -> Any:
    """The SDK's image tables; required (not skipped) where REQUIRE_SDK_TESTS is set (CI's SDK step)."""
    if not sdk_available():
        if os.environ.get("REQUIRE_SDK_TESTS"):
            pytest.fail("REQUIRE_SDK_TESTS is set but the sdk extra is not installed")
        pytest.skip("needs the sdk extra, installed in CI's SDK step")
    try:
        from sagemaker.core import image_uris as module
    except ImportError:  # the sagemaker SDK 2
        from sagemaker import image_uris as module  # type: ignore[no-redef]
    return module


def sklearn_regions() -> List[str]:
    try:
        return sorted(image_uris().config_for_framework("sklearn")["training"]["versions"]["1.2-1"]["registries"])
    except BaseException:  # collected without the SDK: one placeholder, skipped in the test
        return ["us-east-1"]


@pytest.mark.sdk
@pytest.mark.parametrize("kind", ["processing", "training"])
def test_default_image_resolves_for_both_kinds_in_every_region_the_sdk_knows(kind: str) -> None:
    sdk = image_uris()
    regions = sklearn_regions()
    assert len(regions) > 20
    for region in regions:
        # the SDK's SKLearnProcessor asks for the training image too: processing has no scope of its own
        expected = sdk.retrieve("sklearn", region=region, version="1.2-1", instance_type="ml.m4.xlarge",
                                image_scope="training")
        assert resolve_image("sklearn:1.2-1", region, kind, "ml.m4.xlarge") == expected
        assert "sagemaker-scikit-learn:1.2-1-cpu-py3" in expected


@pytest.mark.sdk
@pytest.mark.parametrize("kind", ["processing", "training"])
@pytest.mark.parametrize("shorthand,instance,repository", [
    ("pytorch:2.1", "ml.m5.xlarge", "pytorch-training:2.1"),
    ("xgboost:1.7-1", "ml.m5.xlarge", "sagemaker-xgboost:1.7-1"),
    ("tensorflow:2.13", "ml.m5.xlarge", "tensorflow-training:2.13"),
    ("huggingface:4.28", "ml.g5.xlarge", "huggingface-pytorch-training:2.0.0-transformers4.28.1"),
    ("huggingface:4.56-pytorch2.8", "ml.g5.xlarge", "huggingface-pytorch-training:2.8-transformers4.56.2"),
])
def test_framework_shorthands_resolve_through_the_training_scope(kind: str, shorthand: str, instance: str,
                                                                 repository: str) -> None:
    image_uris()
    uri = resolve_image(shorthand, "eu-west-1", kind, instance)
    assert ".dkr.ecr.eu-west-1.amazonaws.com/" + repository in uri


@pytest.mark.sdk
def test_a_table_with_a_processing_scope_gives_its_processing_image() -> None:
    image_uris()
    assert "/sagemaker-spark-processing:3.3" in resolve_image("spark:3.3", "us-east-1", "processing", "ml.m5.xlarge")


@pytest.mark.sdk
@pytest.mark.parametrize("shorthand,instance,message", [
    ("sklearn:0.1", "ml.m5.xlarge", "cannot resolve 'sklearn:0.1' in us-east-1"),
    ("nosuchframework:1.0", "ml.m5.xlarge", "the SDK knows no framework 'nosuchframework'"),
    ("huggingface:4.28", "ml.m5.xlarge", "Unsupported processor: cpu"),
])
def test_unresolvable_shorthands_are_usage_errors(shorthand: str, instance: str, message: str) -> None:
    from aws_sagemaker_remote.errors import UsageError

    image_uris()
    with pytest.raises(UsageError, match=message) as info:
        resolve_image(shorthand, "us-east-1", "processing", instance)
    assert str(info.value).startswith("--sagemaker-image: ") and "\n" not in str(info.value)
    assert "upgrade your SDK" not in str(info.value)


@pytest.mark.sdk
@pytest.mark.parametrize("kind", ["processing", "training"])
def test_the_default_image_reaches_the_request_of_both_kinds(aws: Any, run_script: Any, demo_dir: Path,
                                                             kind: str) -> None:
    sdk = image_uris()
    expected = sdk.retrieve("sklearn", region="us-east-1", version="1.2-1", instance_type="ml.m4.xlarge",
                            image_scope="training")
    request = request_of(dry_run(run_script, demo_dir, kind, "--sagemaker-role", ROLE))  # no --sagemaker-image
    assert image_of(request) == expected
