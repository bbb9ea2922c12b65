"""The code bundle: deterministic bytes, the right files, the default exclusions."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Dict

import pytest

from aws_sagemaker_remote.bundle import IgnoreRules, build_bundle
from aws_sagemaker_remote.spec import CodeSpec


def _project(root: Path) -> CodeSpec:
    (root / "proj").mkdir()
    proj = root / "proj"
    (proj / "train.py").write_text("print('train')\n")
    (proj / "helpers.py").write_text("X = 1\n")
    (proj / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(proj / "run.sh", 0o755)
    for junk in (".git/config", "__pycache__/x.cpython-311.pyc", "m.pyc", ".env", "cert.pem", "my.key",
                 "id_rsa", "id_rsa.pub", ".aws/credentials", "venv/lib/x.py", ".venv/lib/y.py",
                 "envdir/pyvenv.cfg", "envdir/lib/z.py", "data/big.bin", "notes/draft.md", "logs/a.log"):
        path = proj / junk
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("secret")
    (proj / ".sagemakerignore").write_text("# comments are ignored\nnotes/\n*.log\n")
    lib = root / "mylib"
    (lib / "sub").mkdir(parents=True)
    (lib / "__init__.py").write_text("")
    (lib / "sub" / "mod.py").write_text("Y = 2\n")
    (lib / "__pycache__").mkdir()
    (lib / "__pycache__" / "a.pyc").write_text("x")
    single = root / "tools.py"
    single.write_text("Z = 3\n")
    req = root / "reqs-prod.txt"
    req.write_text("# nothing\n")
    conf = root / "setup.sh"
    conf.write_text("export A=1\n")
    return CodeSpec(
        script=str(proj / "train.py"),
        script_dir=str(proj),
        dependencies=(("mylib", str(lib)), ("tools.py", str(single))),
        requirements=str(req),
        configuration_script=str(conf),
        configuration_command="export B=2 && true",
        exclude_paths=(str(proj / "data"),),
    )


def _members(path: str) -> Dict[str, Any]:
    """Path in the code tree → ``[path, sha256, executable]``, from the code manifest."""
    with open(path, encoding="utf-8") as fh:
        return {entry[0]: entry for entry in json.load(fh)["files"]}


def _read(bundle: Any, name: str) -> bytes:
    return (Path(bundle.path).parent / _members(bundle.path)[name][1]).read_bytes()


def test_bundle_contents_and_exclusions(tmp_path: Path) -> None:
    code = _project(tmp_path)
    bundle = build_bundle(code, "training", workdir=str(tmp_path))
    names = set(_members(bundle.path))
    assert {"script/train.py", "script/helpers.py", "script/run.sh", "script/.sagemakerignore",
            "deps/mylib/__init__.py", "deps/mylib/sub/mod.py", "deps/tools.py",
            "requirements/reqs-prod.txt", "config/setup.sh", "manifest.json",
            "runtime/aws_sagemaker_remote/bootstrap.py", "runtime/aws_sagemaker_remote/container.py",
            "runtime/aws_sagemaker_remote/api.py"} <= names
    leaked = [n for n in names if any(bad in n for bad in (
        ".git/", "__pycache__", ".pyc", ".env", ".pem", ".key", "id_rsa", ".aws/", "venv/", "envdir/",
        "data/big.bin", "notes/", ".log"))]
    assert leaked == []
    manifest = json.loads(_read(bundle, "manifest.json"))
    assert manifest["script"] == "script/train.py"
    assert manifest["requirements"] == "requirements/reqs-prod.txt"
    assert manifest["configuration_script"] == "config/setup.sh"
    assert manifest["configuration_command"] == "export B=2 && true"
    assert manifest["kind"] == "training"


def test_bundle_is_deterministic(tmp_path: Path) -> None:
    code = _project(tmp_path)
    first = build_bundle(code, "processing", workdir=str(tmp_path))
    # touch every file: new mtimes must not change the bytes
    later = time.time() + 1000
    for folder, _dirs, files in os.walk(tmp_path / "proj"):
        for name in files:
            os.utime(os.path.join(folder, name), (later, later))
    second = build_bundle(code, "processing", workdir=str(tmp_path))
    assert first.sha256 == second.sha256
    assert Path(first.path).read_bytes() == Path(second.path).read_bytes()
    members = _members(second.path)
    assert [m for m in members] == sorted(members)
    assert members["script/run.sh"][2] is True  # executable in the job
    assert members["script/train.py"][2] is False
    # a content change changes the digest
    (tmp_path / "proj" / "helpers.py").write_text("X = 2\n")
    assert build_bundle(code, "processing", workdir=str(tmp_path)).sha256 != first.sha256


@pytest.mark.parametrize(
    "pattern,path,is_dir,ignored",
    [
        ("*.log", "a/b/c.log", False, True),
        ("/top.txt", "top.txt", False, True),
        ("/top.txt", "sub/top.txt", False, False),
        ("build/", "build", True, True),
        ("build/", "build", False, False),
        ("**/secret", "x/y/secret", False, True),
        ("docs/**", "docs/a/b.md", False, True),
        ("file?.txt", "file1.txt", False, True),
        ("[ab].txt", "c.txt", False, False),
    ],
)
def test_ignore_rules(pattern: str, path: str, is_dir: bool, ignored: bool) -> None:
    assert IgnoreRules([pattern]).ignored(path, is_dir) is ignored


def test_negation_wins_when_last() -> None:
    rules = IgnoreRules(["*.csv", "!keep.csv"])
    assert rules.ignored("drop.csv", False)
    assert not rules.ignored("keep.csv", False)


def test_credentials_never_leave_the_machine(tmp_path: Path) -> None:
    from aws_sagemaker_remote.bundle import input_files

    code = _project(tmp_path)
    proj = tmp_path / "proj"
    for secret in (".ssh/id_ed25519", ".netrc", ".pypirc", ".git-credentials", ".docker/config.json",
                   ".kube/config", "cert.p12"):
        path = proj / secret
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("secret")
    names = set(_members(build_bundle(code, "processing", workdir=str(tmp_path)).path))
    assert not any(s in n for n in names for s in (".ssh", ".netrc", ".pypirc", ".git-credentials", ".docker",
                                                  ".kube", ".p12"))
    # a local input folder is staged without them too, but keeps its data
    staged = {rel for rel, _ in input_files(str(proj))}
    assert "data/big.bin" in staged and "train.py" in staged
    assert not any(s in rel for rel in staged for s in (".ssh", ".netrc", ".env", ".git/", "id_rsa", ".pem"))


@pytest.mark.parametrize("which", ["DEFAULT_EXCLUDES", "SECRET_LOOKING", "user"])
def test_ignore_rules_decide_as_pathspec_does_pattern_by_pattern(which: str) -> None:
    """A layer is searched with one expression first; the verdicts stay pathspec's own."""
    import itertools

    import pathspec

    from aws_sagemaker_remote import bundle

    patterns = list(getattr(bundle, which)) if which != "user" else [
        "*.csv", "!keep.csv", "data/", "/root.txt", "**/deep/*.py", "a?b", "[!x]y", "\\#hash", "trailing\\ "]
    names = [".git", ".env.local", "a.pem", "id_rsa.pub", ".ssh", "config.json", ".docker", "credentials.json",
             "x-service-account-1.json", "secrets.yaml", "token", "__pycache__", "m.pyc", ".venv", "keep.csv",
             "t.csv", "data", "root.txt", "deep", "s.py", "axb", "zy", "#hash", "trailing ", "été", "gcloud", ".config"]
    spec = pathspec.GitIgnoreSpec.from_lines(patterns)
    rules = IgnoreRules(patterns)
    for depth in (1, 2, 3):
        for parts in itertools.islice(itertools.product(names, repeat=depth), 4000):
            path = "/".join(parts)
            for is_dir in (False, True):
                expected = bool(spec.check_file(path + ("/" if is_dir else "")).include)
                assert rules.ignored(path, is_dir) == expected, (path, is_dir)
