"""Nothing secret is shipped: the code bundle's deny list, ignore files, links, size and folder checks."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, List

import pytest

from aws_sagemaker_remote.bundle import MAX_BUNDLE_ENV, build_bundle
from aws_sagemaker_remote.errors import UsageError
from aws_sagemaker_remote.spec import CodeSpec

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/python:3.11"

#: every secret-bearing file the deny list covers (each one holds a recognisable marker)
SECRETS = [
    ".env", ".env.local", ".env.production", ".envrc", ".netrc", ".npmrc", ".pypirc", ".git-credentials",
    "credentials", "credentials.json", "service-account.json", "my-service-account-prod.json", "secrets.yaml",
    "secrets.json", "token.txt", "github_token.txt", "server.pem", "tls.key", "id_rsa", "id_rsa.pub",
    "id_ed25519", "cert.p12", "cert.pfx", "store.jks", "app.keystore", "terraform.tfstate",
    ".aws/credentials", ".azure/accessTokens.json", ".config/gcloud/application_default_credentials.json",
    ".kube/config", ".docker/config.json", ".ssh/config", ".gnupg/secring.gpg", ".git/config",
    "sub/.env", "sub/deeper/credentials",
]
SCRIPT = "from aws_sagemaker_remote import sagemaker_processing_main\n" \
         "def main(args):\n    print('ran')\n" \
         "if __name__ == '__main__':\n    sagemaker_processing_main(main{extra})\n"


def _members(path: str) -> List[str]:
    """Every path in the code tree, from the code manifest."""
    with open(path, encoding="utf-8") as fh:
        return sorted(entry[0] for entry in json.load(fh)["files"])


def _contents(path: str) -> bytes:
    with open(path, encoding="utf-8") as fh:
        blobs = [entry[1] for entry in json.load(fh)["files"]]
    return b"".join((Path(path).parent / blob).read_bytes() for blob in blobs)


def _project(root: Path, extra: str = "") -> Path:
    proj = root / "proj"
    proj.mkdir(parents=True)
    (proj / "job.py").write_text(SCRIPT.format(extra=extra))
    (proj / "helper.py").write_text("X = 1\n")
    (proj / "notes.md").write_text("keep me\n")
    return proj


def _code(proj: Path, excludes: tuple = ()) -> CodeSpec:
    return CodeSpec(script=str(proj / "job.py"), script_dir=str(proj), dependencies=(), requirements=None,
                    configuration_script=None, configuration_command=None, exclude_paths=excludes)


def test_no_secret_and_no_outside_link_is_bundled(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    proj = _project(tmp_path)
    for rel in SECRETS:
        path = proj / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"SECRET-MARKER {rel}\n")
    outside = tmp_path / "home" / ".aws" / "credentials"
    outside.parent.mkdir(parents=True)
    outside.write_text("SECRET-MARKER aws_secret_access_key=x\n")
    (proj / "notes.txt").symlink_to(outside)  # a file link leading out of the project
    (proj / "alias.py").symlink_to(proj / "helper.py")  # a link inside it is fine
    bundle = build_bundle(_code(proj), "processing", workdir=str(tmp_path))
    names = _members(bundle.path)
    assert "script/helper.py" in names and "script/notes.md" in names and "script/alias.py" in names
    assert not [n for n in names if n.startswith("script/") and n not in
                ("script/job.py", "script/helper.py", "script/notes.md", "script/alias.py")], names
    assert b"SECRET-MARKER" not in _contents(bundle.path)
    err = capsys.readouterr().err
    assert "note: not bundling script/notes.txt" in err and str(outside) in err


def test_gitignore_is_honoured_and_sagemakerignore_can_ship_a_denied_file(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / ".gitignore").write_text("*.log\n")  # above the script's folder, up to the repository root
    proj = _project(repo)
    (proj / ".gitignore").write_text("data/\n*.csv\n!keep.csv\n")
    (proj / "sub").mkdir()
    (proj / "sub" / ".gitignore").write_text("local_only.py\n!.env\n")
    for rel in ("data/x.bin", "a.csv", "keep.csv", "run.log", "sub/local_only.py", "sub/ok.py", "sub/.env",
                "config.json", "credentials.json"):
        (proj / rel).parent.mkdir(parents=True, exist_ok=True)
        (proj / rel).write_text("x")
    (proj / ".sagemakerignore").write_text("config.json\n!credentials.json\n")
    names = _members(build_bundle(_code(proj), "processing", workdir=str(tmp_path)).path)
    shipped = {n[len("script/"):] for n in names if n.startswith("script/")}
    assert {"keep.csv", "sub/ok.py", "credentials.json", "job.py"} <= shipped
    # a nested .gitignore cannot re-include a secret; only .sagemakerignore can
    assert not shipped & {"data/x.bin", "a.csv", "run.log", "sub/local_only.py", "sub/.env", "config.json"}


def test_a_big_bundle_is_refused_naming_the_biggest_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proj = _project(tmp_path)
    (proj / "data").mkdir()
    (proj / "data" / "big.bin").write_bytes(os.urandom(1536 * 1024))
    (proj / "model.bin").write_bytes(os.urandom(700 * 1024))
    monkeypatch.setenv(MAX_BUNDLE_ENV, "1")
    with pytest.raises(UsageError) as raised:
        build_bundle(_code(proj), "processing", workdir=str(tmp_path))
    message = str(raised.value)
    assert "data/ (1.5 MB)" in message and "model.bin (700.0 KB)" in message and MAX_BUNDLE_ENV in message
    assert "\n" not in message
    assert not list(tmp_path.glob("bundle-*"))
    monkeypatch.setenv(MAX_BUNDLE_ENV, "3")
    assert build_bundle(_code(proj), "processing", workdir=str(tmp_path)).size > 2 * 1024 * 1024


def test_a_big_bundle_stops_the_launch_before_any_request(aws: Any, run_script: Callable[..., Any], tmp_path: Path,
                                                          one_error_line: Any) -> None:
    proj = _project(tmp_path)
    (proj / "data.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    run = run_script(proj / "job.py", "--sagemaker-run=yes", "--sagemaker-role", ROLE, "--sagemaker-image", IMAGE,
                     env={MAX_BUNDLE_ENV: "1"})
    assert run.returncode == 2, run.stderr
    one_error_line(run.stderr, "data.bin", MAX_BUNDLE_ENV)
    assert aws.requests == []


def test_a_script_in_the_home_folder_is_refused(aws: Any, run_script: Callable[..., Any], tmp_path: Path,
                                                one_error_line: Any) -> None:
    proj = _project(tmp_path)
    run = run_script(proj / "job.py", "--sagemaker-run=yes", "--sagemaker-role", ROLE, "--sagemaker-image", IMAGE,
                     env={"HOME": str(proj)})
    assert run.returncode == 2, run.stderr
    one_error_line(run.stderr, "home folder", ".sagemakerignore")
    assert aws.requests == []


def test_a_home_folder_with_a_sagemakerignore_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proj = _project(tmp_path)
    monkeypatch.setenv("HOME", str(proj))
    with pytest.raises(UsageError, match="home folder"):
        build_bundle(_code(proj), "processing", workdir=str(tmp_path))
    (proj / ".sagemakerignore").write_text("*.md\n")
    names = _members(build_bundle(_code(proj), "processing", workdir=str(tmp_path)).path)
    assert "script/job.py" in names and "script/notes.md" not in names


def test_an_input_overridden_by_s3_keeps_its_local_folder_out_of_the_bundle(
        aws: Any, run_script: Callable[..., Any], tmp_path: Path) -> None:
    proj = _project(tmp_path, extra=", inputs={'data': os.path.join(os.path.dirname(os.path.abspath(__file__)), "
                                    "'data')}, outputs={'out': os.path.join(os.path.dirname("
                                    "os.path.abspath(__file__)), 'out')}")
    script = proj / "job.py"
    script.write_text("import os\n" + script.read_text())
    for folder in ("data", "out"):
        (proj / folder).mkdir()
        (proj / folder / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    run = run_script(script, "--sagemaker-run=yes", "--sagemaker-role", ROLE, "--sagemaker-image", IMAGE,
                     "--sagemaker-dry-run", "--data", "s3://some-bucket/x/", "--out", tmp_path / "elsewhere")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    listed = [line for line in run.stderr.splitlines() if line.startswith("bundle: ")]
    assert "bundle: script/job.py (" in run.stderr and not [x for x in listed if "big.bin" in x], run.stderr
    assert not [u for u in report["uploads"] if u["size"] >= 1024 * 1024], report["uploads"]


def test_secret_looking_files_in_an_input_folder_are_named(aws: Any, run_script: Callable[..., Any],
                                                           tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "rows.csv").write_text("a,b\n")
    (data / "credentials.json").write_text("{}")
    proj = _project(tmp_path, extra=", inputs={'data': None}")
    run = run_script(proj / "job.py", "--sagemaker-run=yes", "--sagemaker-role", ROLE, "--sagemaker-image", IMAGE,
                     "--sagemaker-dry-run", "--data", data)
    assert run.returncode == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(data / "credentials.json") in warnings[0], run.stderr
