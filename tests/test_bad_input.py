"""Bad input is refused before any side effect: one line naming the flag, exit 2, no request sent."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Callable

import pytest

from aws_sagemaker_remote.args import S3_URI_MAX, S3_URI_PATTERN, bucket_problem, name_problem, s3_uri_problem

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/python:3.11"
YES = ["--sagemaker-run=yes", "--sagemaker-role", ROLE, "--sagemaker-image", IMAGE]


def test_the_s3_uri_pattern_is_the_apis() -> None:
    import botocore.session

    shape = botocore.session.get_session().get_service_model("sagemaker").shape_for("S3Uri")
    assert shape.metadata["max"] == S3_URI_MAX
    assert "^" + shape.metadata["pattern"] + "$" == S3_URI_PATTERN.pattern
    api = re.compile("^" + shape.metadata["pattern"] + "$")
    for uri in ("s3:///key", "s3://", "s3://UPPER/x", "s3://ok-bucket/a", "s3://bucket"):
        # whatever the API's pattern refuses, we refuse too
        if not api.match(uri):
            assert s3_uri_problem(uri)


@pytest.mark.parametrize("name", ["UPPER", "Bad_Bucket", "ab", "a" * 64, "-abc", "abc-", "a..b", "192.168.1.1",
                                  "xn--abc", "sthree-x", "my-bucket-s3alias", "x--ol-s3", "x.mrap", "a b"])
def test_bucket_rules(name: str) -> None:
    assert bucket_problem(name)


@pytest.mark.parametrize("name", ["abc", "my.bucket-1", "sagemaker-us-east-1-123456789012", "a" * 63])
def test_valid_buckets(name: str) -> None:
    assert bucket_problem(name) is None


@pytest.mark.parametrize("name", ["a=b", "1x", "-x", "a b", "a.b", "", "x\n"])
def test_names_that_are_not_identifiers(name: str) -> None:
    assert name_problem(name)


@pytest.mark.parametrize("name", ["input", "train-data", "données", "_x"])
def test_names_that_are_identifiers(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize("flag,value", [("--input", "s3://UPPER/x"), ("--input", "s3:///key"),
                                        ("--output-s3", "s3://Bad_Bucket/x")])
@pytest.mark.parametrize("run", ["yes", "no"])
def test_invalid_s3_uris_send_nothing(aws: Any, run_script: Callable[..., Any], demo_dir: Path, tmp_path: Path,
                                      one_error_line: Any, flag: str, value: str, run: str) -> None:
    args = YES if run == "yes" else ["--output", str(tmp_path / "out")]
    result = run_script(demo_dir / "wordcount.py", *args, flag, value)
    assert result.returncode == 2, result.stderr
    one_error_line(result.stderr, flag, value)
    assert aws.requests == []
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_an_unknown_region_creates_nothing(aws: Any, run_script: Callable[..., Any], demo_dir: Path,
                                           one_error_line: Any, how: str) -> None:
    if how == "flag":
        result = run_script(demo_dir / "wordcount.py", *YES, "--sagemaker-region", "mars-north-1")
        one_error_line(result.stderr, "--sagemaker-region", "'mars-north-1'")
    else:
        result = run_script(demo_dir / "wordcount.py", *YES, env={"AWS_DEFAULT_REGION": "mars-north-1"})
        one_error_line(result.stderr, "AWS_DEFAULT_REGION", "'mars-north-1'")
    assert result.returncode == 2, result.stderr
    assert aws.requests == []


def test_a_known_region_of_another_partition_is_accepted() -> None:
    from aws_sagemaker_remote.aws import check_region

    for region in ("us-east-1", "eu-central-2", "cn-north-1", "us-gov-west-1"):
        check_region(region, "--sagemaker-region")


def test_an_output_inside_an_input_folder_is_refused(aws: Any, run_script: Callable[..., Any], demo_dir: Path,
                                                     tmp_path: Path, one_error_line: Any) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("words words\n")
    result = run_script(demo_dir / "wordcount.py", *YES, "--input", data, "--output", data / "out")
    assert result.returncode == 2, result.stderr
    one_error_line(result.stderr, "--output", "--input")
    assert aws.requests == []


DECLARATIONS = {
    "input named a=b": "sagemaker_processing_main(main, inputs={'a=b': '.'})",
    "output named 1x": "sagemaker_processing_main(main, outputs={'1x': 'out'})",
    "PathArgument mode": "PathArgument('.', mode='Bogus')\nsagemaker_processing_main(main)",
    "PathArgument distribution": "sagemaker_processing_main(main, inputs={'x': PathArgument('.', "
                                 "distribution='Random')})",
    "main is None": "sagemaker_processing_main(None)",
    "PathArgument in a function": "def run():\n    sagemaker_processing_main(main, inputs={'x': PathArgument("
                                  "'.', compression='Zip')})\nif __name__ == '__main__':\n    run()",
}


def test_a_bad_path_argument_in_library_code_is_a_plain_value_error() -> None:
    import sys

    from aws_sagemaker_remote import DeclarationError, PathArgument

    hook = sys.excepthook
    with pytest.raises(ValueError, match="mode='Bogus'") as raised:
        PathArgument(".", mode="Bogus")
    assert isinstance(raised.value, DeclarationError)
    assert sys.excepthook is hook  # only a script's own module code gets the one-line exit


@pytest.mark.parametrize("case", sorted(DECLARATIONS))
def test_declaration_errors_are_one_line_and_exit_2(aws: Any, run_script: Callable[..., Any], tmp_path: Path,
                                                    one_error_line: Any, case: str) -> None:
    script = tmp_path / "job.py"
    script.write_text("from aws_sagemaker_remote import PathArgument, sagemaker_processing_main\n"
                      "def main(args):\n    pass\n" + DECLARATIONS[case] + "\n")
    result = run_script(script, *YES)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("job.py: error: "), result.stderr
    one_error_line(result.stderr)
    assert aws.requests == []


def test_an_output_inside_an_input_folder_is_refused_in_a_plain_run(run_script: Callable[..., Any], demo_dir: Path,
                                                                     tmp_path: Path, one_error_line: Any) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("words words\n")
    result = run_script(demo_dir / "wordcount.py", "--input", data, "--output", data / "out")
    assert result.returncode == 2, result.stderr
    one_error_line(result.stderr, "--output", "--input")
    assert sorted(os.listdir(data)) == ["a.txt"]
