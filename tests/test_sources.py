"""Where options come from: command line > keyword > AWS_SAGEMAKER_REMOTE_* > pyproject.toml > SDK config.yaml.

Every source is written for real (files under ``tmp_path``, variables through ``monkeypatch``);
the SDK's defaults files sit at the places the SDK itself reads on Linux (``$XDG_CONFIG_DIRS`` and
``$XDG_CONFIG_HOME``, then ``sagemaker/config.yaml``) or where its override variables point.
"""
from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import pytest

from aws_sagemaker_remote.api import prepare
from aws_sagemaker_remote.container import IN_JOB_ENV
from aws_sagemaker_remote.errors import UsageError
from aws_sagemaker_remote.launch import MASK
from aws_sagemaker_remote.sources import provenance

ACCOUNT = "123456789012"


def arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def sdk_yaml(section: str, role: Optional[str] = None, env: Optional[Mapping[str, str]] = None,
             extra: str = "") -> str:
    lines = ["SchemaVersion: '1.0'", "SageMaker:", f"  {section}:"]
    if role:
        lines.append(f"    RoleArn: '{role}'")
    if env:
        lines.append("    Environment:")
        lines.extend(f"      {k}: '{v}'" for k, v in env.items())
    return "\n".join(lines) + "\n" + extra


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """``tmp_path/proj/jobs/script.py``: the script sits two folders below its pyproject.toml."""
    script = write(tmp_path / "proj" / "jobs" / "script.py", "print('hi')\n")
    return script


def admin_file(tmp_path: Path) -> Path:
    return Path(os.environ["XDG_CONFIG_DIRS"]) / "sagemaker" / "config.yaml"


def user_file(tmp_path: Path) -> Path:
    return Path(os.environ["XDG_CONFIG_HOME"]) / "sagemaker" / "config.yaml"


def resolve(script: Path, kind: str, argv: Sequence[str] = (), **keywords: Any) -> Tuple[Any, Dict[str, str]]:
    """The options and their sources exactly as the entry functions compute them."""
    decl, opts, parser = prepare(kind, None, None, None, None, None, None, None, str(script), {}, keywords)
    ns = parser.parse_args(list(argv))
    return type(opts).from_namespace(ns), dict(provenance(parser.resolved, argv))


# --- the chain, one adjacent pair at a time -------------------------------------------------------

#: Highest first. Each source sets the role (and FOO, and a key of its own in --sagemaker-env).
CHAIN = ("command line", "keyword", "env", "pyproject kind table", "pyproject common table",
         "sdk user file", "sdk admin file", "built-in")


def install_sources(tmp_path: Path, script: Path, kind: str, present: Sequence[str],
                    monkeypatch: pytest.MonkeyPatch) -> Tuple[List[str], Dict[str, Any]]:
    """Write every source in ``present``; return the argv and the keywords."""
    section = "TrainingJob" if kind == "training" else "ProcessingJob"
    if "sdk admin file" in present:
        write(admin_file(tmp_path), sdk_yaml(section, arn("sdk-admin"), {"FOO": "admin", "ADMIN": "1"}))
    if "sdk user file" in present:
        write(user_file(tmp_path), sdk_yaml(section, arn("sdk-user"), {"FOO": "user", "USER": "1"}))
    table = []
    if "pyproject common table" in present:
        table += ["[tool.aws-sagemaker-remote]", f"role = '{arn('pp-common')}'",
                  "env = {FOO = 'common', COMMON = '1'}"]
    if "pyproject kind table" in present:
        table += [f"[tool.aws-sagemaker-remote.{kind}]", f"role = '{arn('pp-' + kind)}'",
                  "env = {FOO = 'kind', KIND = '1'}"]
    if table:
        write(script.parent.parent / "pyproject.toml", "[project]\nname = 'x'\n\n" + "\n".join(table) + "\n")
    if "env" in present:
        monkeypatch.setenv("AWS_SAGEMAKER_REMOTE_ROLE", arn("env"))
        monkeypatch.setenv("AWS_SAGEMAKER_REMOTE_ENV", "FOO=env,ENVVAR=1")
    keywords: Dict[str, Any] = {}
    if "keyword" in present:
        keywords = {"role": arn("keyword"), "env": {"FOO": "keyword", "KEYWORD": "1"}}
    argv: List[str] = []
    if "command line" in present:
        argv = ["--sagemaker-role", arn("cli"), "--sagemaker-env", "FOO=cli", "--sagemaker-env", "CLI=1"]
    return argv, keywords


EXPECTED = {
    "command line": (arn("cli"), "command line", "cli"),
    "keyword": (arn("keyword"), "keyword", "keyword"),
    "env": (arn("env"), "env AWS_SAGEMAKER_REMOTE_ROLE", "env"),
    "pyproject kind table": ("{kind}", "[tool.aws-sagemaker-remote.{kind}]", "kind"),
    "pyproject common table": (arn("pp-common"), "[tool.aws-sagemaker-remote]", "common"),
    "sdk user file": (arn("sdk-user"), "xdg-config-home/sagemaker/config.yaml SageMaker.{section}.RoleArn", "user"),
    "sdk admin file": (arn("sdk-admin"), "xdg-config-dirs/sagemaker/config.yaml SageMaker.{section}.RoleArn",
                       "admin"),
}


@pytest.mark.parametrize("kind", ["processing", "training"])
@pytest.mark.parametrize("higher,lower", list(zip(CHAIN, CHAIN[1:])), ids=lambda s: s.replace(" ", "-"))
def test_each_source_beats_the_next_one_with_every_lower_source_present(
        tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch, kind: str, higher: str, lower: str) -> None:
    present = CHAIN[CHAIN.index(higher):]
    argv, keywords = install_sources(tmp_path, project, kind, present, monkeypatch)
    opts, sources = resolve(project, kind, argv, **keywords)
    section = "TrainingJob" if kind == "training" else "ProcessingJob"
    role, label, foo = EXPECTED[higher] if higher != "built-in" else (None, None, None)
    if higher == "pyproject kind table":
        role = arn("pp-" + kind)
    assert opts.role == role
    if label is None:
        assert "--sagemaker-role" not in sources
    else:
        assert label.format(kind=kind, section=section) in sources["--sagemaker-role"]
    env = dict(opts.env)
    if foo is not None:
        # KEY=VALUE options merge key by key: the highest source wins FOO, every source adds its own key
        assert env.pop("FOO") == foo
        own_keys = {"command line": "CLI", "keyword": "KEYWORD", "env": "ENVVAR", "pyproject kind table": "KIND",
                    "pyproject common table": "COMMON", "sdk user file": "USER", "sdk admin file": "ADMIN"}
        assert env == {own_keys[s]: "1" for s in present if s in own_keys}
    else:
        assert env == {}


def test_sources_name_each_file_and_merge_labels_for_pairs(tmp_path: Path, project: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    argv, keywords = install_sources(tmp_path, project, "training", CHAIN, monkeypatch)
    _, sources = resolve(project, "training", argv, **keywords)
    assert sources["--sagemaker-role"] == "command line"
    labels = sources["--sagemaker-env"].split(" + ")
    assert labels[:3] == ["command line", "keyword", "env AWS_SAGEMAKER_REMOTE_ENV"]
    assert labels[3].endswith("proj/pyproject.toml [tool.aws-sagemaker-remote.training]")
    assert labels[4].endswith("proj/pyproject.toml [tool.aws-sagemaker-remote]")
    assert labels[5].endswith("xdg-config-home/sagemaker/config.yaml SageMaker.TrainingJob.Environment")
    assert labels[6].endswith("xdg-config-dirs/sagemaker/config.yaml SageMaker.TrainingJob.Environment")
    assert len(labels) == 7


def test_built_in_defaults_have_no_source(project: Path) -> None:
    opts, sources = resolve(project, "processing")
    assert opts.instance == "ml.m4.xlarge" and opts.role is None
    assert sources == {}


# --- environment variables -------------------------------------------------------------------------

def test_environment_variables_convert_like_their_flags(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SAGEMAKER_REMOTE_INSTANCE_COUNT", "3")
    monkeypatch.setenv("AWS_SAGEMAKER_REMOTE_SPOT", "yes")
    monkeypatch.setenv("AWS_SAGEMAKER_REMOTE_SUBNETS", "subnet-1,subnet-2")
    monkeypatch.setenv("AWS_SAGEMAKER_REMOTE_TAGS", '{"team": "ml", "cost": "a=b"}')
    monkeypatch.setenv("AWS_SAGEMAKER_REMOTE_BUCKET", "")  # empty: not set
    monkeypatch.setenv("AWS_SAGEMAKER_REMOTE_HOME", str(project.parent))  # not an option: left alone
    opts, sources = resolve(project, "training")
    assert (opts.instance_count, opts.spot, opts.subnets) == (3, True, ("subnet-1", "subnet-2"))
    assert dict(opts.tags) == {"team": "ml", "cost": "a=b"}
    assert opts.bucket is None and "--sagemaker-bucket" not in sources
    assert sources["--sagemaker-spot"] == "env AWS_SAGEMAKER_REMOTE_SPOT"


def test_a_bad_environment_value_names_the_variable(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SAGEMAKER_REMOTE_INSTANCE_COUNT", "many")
    with pytest.raises(UsageError, match="AWS_SAGEMAKER_REMOTE_INSTANCE_COUNT: expected an integer, got 'many'"):
        resolve(project, "processing")


def test_inside_a_job_only_the_command_line_and_keywords_count(tmp_path: Path, project: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    install_sources(tmp_path, project, "processing", CHAIN[2:], monkeypatch)
    monkeypatch.setenv(IN_JOB_ENV, "1")
    opts, sources = resolve(project, "processing", ["--sagemaker-run=no"], instance="ml.c5.xlarge")
    assert opts.role is None and opts.env == ()
    assert sources == {"--sagemaker-run": "command line", "--sagemaker-instance": "keyword"}


# --- pyproject.toml ----------------------------------------------------------------------------------

def test_the_nearest_pyproject_with_the_table_wins(tmp_path: Path, project: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.aws-sagemaker-remote]\ninstance = 'ml.c5.xlarge'\nprefix = 'far'\n")
    # nearer, but without our table: skipped, as other tools skip files without their table
    write(project.parent / "pyproject.toml", "[project]\nname = 'jobs'\n")
    write(project.parent.parent / "pyproject.toml",
          "[tool.aws-sagemaker-remote]\ninstance-count = 2\n[tool.aws-sagemaker-remote.training]\nspot = true\n")
    opts, sources = resolve(project, "processing")
    assert (opts.instance_count, opts.instance, opts.prefix) == (2, "ml.m4.xlarge", "aws-sagemaker-remote")
    # a training-only key of a sub-table does not reach a processing job
    topts, _ = resolve(project, "training")
    assert topts.spot is True and topts.instance_count == 2


@pytest.mark.parametrize("table,message", [
    ("[tool.aws-sagemaker-remote]\ninstace = 'ml.c5.xlarge'\n", "unknown key tool.aws-sagemaker-remote.instace"),
    ("[tool.aws-sagemaker-remote.processing]\nspot = true\n", "unknown key tool.aws-sagemaker-remote.processing.spot"),
    ("[tool.aws-sagemaker-remote]\ninstance-count = 'x'\n",
     "tool.aws-sagemaker-remote.instance-count: expected an integer"),
    ("[tool.aws-sagemaker-remote]\ninstance = \n", "not valid TOML"),
])
def test_a_bad_pyproject_is_one_line_naming_file_and_key(project: Path, run_script: Any, one_error_line: Any,
                                                       table: str, message: str) -> None:
    pyproject = write(project.parent.parent / "pyproject.toml", table)
    write(project, "from aws_sagemaker_remote import sagemaker_processing_main\n"
                   "sagemaker_processing_main(lambda args: print('ran'))\n")
    result = run_script(project)
    assert result.returncode == 2 and "ran" not in result.stdout
    one_error_line(result.stderr, str(pyproject), message)


# --- the SageMaker SDK's config.yaml ------------------------------------------------------------------

FULL_SDK_CONFIG = """\
SchemaVersion: '1.0'
SageMaker:
  PythonSDK:
    Modules:
      Session:
        DefaultS3Bucket: team-bucket
        DefaultS3ObjectKeyPrefix: team/prefix
      RemoteFunction:
        InstanceType: ml.c5.xlarge
  ProcessingJob:
    RoleArn: arn:aws:iam::123456789012:role/processing
    Environment: {STAGE: processing}
    Tags: [{Key: owner, Value: processing}]
    NetworkConfig:
      EnableInterContainerTrafficEncryption: true
      EnableNetworkIsolation: true
      VpcConfig: {SecurityGroupIds: [sg-p], Subnets: [subnet-p1, subnet-p2]}
    ProcessingOutputConfig: {KmsKeyId: kms-p-out}
    ProcessingResources: {ClusterConfig: {VolumeKmsKeyId: kms-p-vol}}
  TrainingJob:
    RoleArn: arn:aws:iam::123456789012:role/training
    Environment: {STAGE: training}
    Tags: [{Key: owner, Value: training}]
    EnableInterContainerTrafficEncryption: true
    EnableNetworkIsolation: true
    VpcConfig: {SecurityGroupIds: [sg-t], Subnets: [subnet-t]}
    OutputDataConfig: {KmsKeyId: kms-t-out}
    ResourceConfig: {VolumeKmsKeyId: kms-t-vol}
    ProfilerConfig: {DisableProfiler: true}
  Endpoint:
    Tags: [{Key: not, Value: ours}]
"""


def sdk_validator() -> Any:
    """The SDK's own validator; required (not skipped) where REQUIRE_SDK_TESTS is set (CI's SDK step)."""
    try:
        from sagemaker.core.config.config import validate_sagemaker_config
    except ImportError:
        if os.environ.get("REQUIRE_SDK_TESTS"):
            raise
        pytest.skip("needs the sdk extra (sagemaker-core), installed in CI's SDK step")
    return validate_sagemaker_config


@pytest.mark.sdk
def test_our_sdk_config_examples_are_valid_for_the_sdk_itself() -> None:
    import yaml

    validate = sdk_validator()
    validate(yaml.safe_load(FULL_SDK_CONFIG))
    validate(yaml.safe_load(sdk_yaml("TrainingJob", arn("x"), {"A": "b"})))
    import jsonschema

    # and a key we refuse, the SDK refuses too
    with pytest.raises(jsonschema.ValidationError):
        validate(yaml.safe_load(sdk_yaml("ProcessingJob", extra="    InstanceType: ml.c5.xlarge\n")))


@pytest.mark.parametrize("kind,expected", [
    ("processing", dict(role=arn("processing"), env=(("STAGE", "processing"),), tags=(("owner", "processing"),),
                        traffic_encryption=True, network_isolation=True, security_groups=("sg-p",),
                        subnets=("subnet-p1", "subnet-p2"), output_kms_key="kms-p-out", volume_kms_key="kms-p-vol",
                        bucket="team-bucket", prefix="team/prefix", instance="ml.m4.xlarge")),
    ("training", dict(role=arn("training"), env=(("STAGE", "training"),), tags=(("owner", "training"),),
                      traffic_encryption=True, network_isolation=True, security_groups=("sg-t",),
                      subnets=("subnet-t",), output_kms_key="kms-t-out", volume_kms_key="kms-t-vol",
                      bucket="team-bucket", prefix="team/prefix", instance="ml.m4.xlarge")),
])
def test_sdk_config_keys_for_each_kind(tmp_path: Path, project: Path, kind: str, expected: Dict[str, Any]) -> None:
    write(user_file(tmp_path), FULL_SDK_CONFIG)
    opts, sources = resolve(project, kind)
    assert {k: getattr(opts, k) for k in expected} == expected
    section = "TrainingJob" if kind == "training" else "ProcessingJob"
    assert sources["--sagemaker-volume-kms-key"].endswith(
        f"config.yaml SageMaker.{section}." + ("ResourceConfig" if kind == "training"
                                               else "ProcessingResources.ClusterConfig") + ".VolumeKmsKeyId")
    assert sources["--sagemaker-bucket"].endswith("config.yaml SageMaker.PythonSDK.Modules.Session.DefaultS3Bucket")


@pytest.mark.parametrize("kind,script,section", [
    ("processing", "wordcount.py", "ProcessingJob"), ("training", "train_linear.py", "TrainingJob")])
def test_dry_run_shows_sdk_config_values_in_the_request_and_their_sources(
        tmp_path: Path, run_script: Any, demo_dir: Path, monkeypatch: pytest.MonkeyPatch,
        kind: str, script: str, section: str) -> None:
    config = write(tmp_path / "elsewhere" / "team.yaml", FULL_SDK_CONFIG)
    monkeypatch.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", str(config))
    monkeypatch.setenv("AWS_SAGEMAKER_REMOTE_INSTANCE", "ml.c5.xlarge")
    result = run_script(demo_dir / script, "--sagemaker-run=local", "--sagemaker-dry-run",
                        "--sagemaker-env", "FROM_CLI=1")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    request = report["request"]
    assert request["RoleArn"] == arn(kind)
    assert {"Key": "owner", "Value": kind} in request["Tags"]
    # the dry run shows the variables' names, not their values (they may be secrets)
    assert {"STAGE", "FROM_CLI"} <= set(request["Environment"]) and set(request["Environment"].values()) == {MASK}
    sources = report["sources"]
    assert sources["--sagemaker-role"] == f"{config} SageMaker.{section}.RoleArn"
    assert sources["--sagemaker-instance"] == "env AWS_SAGEMAKER_REMOTE_INSTANCE"
    assert sources["--sagemaker-env"] == f"command line + {config} SageMaker.{section}.Environment"
    assert sources["--sagemaker-run"] == "command line"
    assert "--sagemaker-image" not in sources  # built-in default
    if kind == "processing":
        assert request["NetworkConfig"]["VpcConfig"] == {"SecurityGroupIds": ["sg-p"],
                                                         "Subnets": ["subnet-p1", "subnet-p2"]}
        assert request["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == "kms-p-vol"
        assert request["ProcessingResources"]["ClusterConfig"]["InstanceType"] == "ml.c5.xlarge"
    else:
        assert request["VpcConfig"] == {"SecurityGroupIds": ["sg-t"], "Subnets": ["subnet-t"]}
        assert request["OutputDataConfig"]["KmsKeyId"] == "kms-t-out"
        assert request["EnableNetworkIsolation"] is True


def test_admin_override_may_name_a_folder(tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "admin-folder"
    write(folder / "config.yaml", sdk_yaml("ProcessingJob", arn("admin-override")))
    write(admin_file(tmp_path), sdk_yaml("ProcessingJob", arn("admin-default")))
    monkeypatch.setenv("SAGEMAKER_ADMIN_CONFIG_OVERRIDE", str(folder))
    opts, sources = resolve(project, "processing")
    assert opts.role == arn("admin-override")
    assert sources["--sagemaker-role"] == f"{folder / 'config.yaml'} SageMaker.ProcessingJob.RoleArn"


@pytest.mark.parametrize("content,message", [
    (sdk_yaml("ProcessingJob", extra="    InstanceType: ml.c5.xlarge\n"),
     "unknown key SageMaker.ProcessingJob.InstanceType"),
    ("SchemaVersion: '1.0'\nSageMaker:\n  TrainingJob:\n    EnableNetworkIsolation: 'yes'\n",
     "SageMaker.TrainingJob.EnableNetworkIsolation must be a boolean"),
    ("SchemaVersion: '1.0'\nSageMaker: [\n", "not a readable YAML file"),
    ("SageMaker: {}\n", "SchemaVersion must be '1.0'"),
])
def test_a_bad_sdk_config_is_one_line_naming_file_and_key(tmp_path: Path, project: Path, run_script: Any,
                                                        one_error_line: Any, content: str, message: str) -> None:
    path = write(user_file(tmp_path), content)
    write(project, "from aws_sagemaker_remote import sagemaker_training_main\n"
                   "sagemaker_training_main(lambda args: print('ran'))\n")
    result = run_script(project)
    assert result.returncode == 2 and "ran" not in result.stdout
    one_error_line(result.stderr, str(path), message)


@pytest.mark.parametrize("value,message", [
    ("{missing}", "SAGEMAKER_USER_CONFIG_OVERRIDE: no file"),
    ("s3://bucket/config.yaml", "SAGEMAKER_USER_CONFIG_OVERRIDE: s3://bucket/config.yaml is in S3"),
])
def test_override_variables_must_name_a_local_file(tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch,
                                                  value: str, message: str) -> None:
    monkeypatch.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", value.format(missing=tmp_path / "nope.yaml"))
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        resolve(project, "processing")


def test_the_job_gets_the_resolved_values_and_the_in_job_marker(project: Path, run_script: Any,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    write(project.parent.parent / "pyproject.toml",
          "[tool.aws-sagemaker-remote]\nenv = {FROM_PYPROJECT = 'yes'}\n")
    write(project, """\
        import os
        from aws_sagemaker_remote import sagemaker_processing_main

        def main(args):
            print("in job:", os.environ.get("AWS_SAGEMAKER_REMOTE_IN_JOB"),
                  "pyproject:", os.environ.get("FROM_PYPROJECT"),
                  "variable:", os.environ.get("FROM_VARIABLE"))

        sagemaker_processing_main(main)
        """)
    monkeypatch.setenv("AWS_SAGEMAKER_REMOTE_ENV", "FROM_VARIABLE=yes")
    result = run_script(project, "--sagemaker-run=local")
    assert result.returncode == 0, result.stderr
    # both values travel in the job's request; the job itself only gets the marker
    assert "in job: 1 pyproject: yes variable: yes" in result.stdout + result.stderr
    plain = run_script(project)
    assert "in job: None pyproject: yes variable: yes" in plain.stdout


def test_a_keyword_given_as_none_or_empty_leaves_the_lower_sources(project: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SAGEMAKER_REMOTE_ROLE", arn("env"))
    monkeypatch.setenv("AWS_SAGEMAKER_REMOTE_TAGS", "team=ml")
    opts, sources = resolve(project, "processing", role=None, tags={})
    assert (opts.role, opts.tags) == (arn("env"), (("team", "ml"),))
    assert sources == {"--sagemaker-role": "env AWS_SAGEMAKER_REMOTE_ROLE",
                       "--sagemaker-tags": "env AWS_SAGEMAKER_REMOTE_TAGS"}
