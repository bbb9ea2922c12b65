"""Names chosen by someone else (S3 keys, archive members) never write outside their target folder.

Each download path is run for real: keys with ``..`` are put on the moto server,
crafted tarballs are built here and extracted by the same code the launcher and
the job's bootstrap stub use.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any, Callable, List

import pytest

from aws_sagemaker_remote.render import BOOTSTRAP_STUB
from aws_sagemaker_remote.safepath import UnsafePath, local_path, safe_extract

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/python:3.11"
DEFAULT_BUCKET = "sagemaker-us-east-1-123456789012"
EVIL_KEY = "../../../../escape.txt"


def _files(root: Path) -> List[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# --- the helper itself ---------------------------------------------------------------

@pytest.mark.parametrize("name", ["../x", "a/../../x", "/etc/passwd", "\\x", "a/..", "", "./", "a\0b"]
                         + (["C:/x", "c:"] if os.name == "nt" else []))
def test_local_path_refuses_names_that_leave_the_folder(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafePath) as raised:
        local_path(str(tmp_path), name)
    assert repr(name) in str(raised.value)


@pytest.mark.skipif(os.name == "nt", reason="a drive prefix on Windows")
@pytest.mark.parametrize("name", ["a:b.csv", "1:00.log", "c:", "C:/x"])
def test_local_path_keeps_names_with_a_colon_where_they_are_not_drives(tmp_path: Path, name: str) -> None:
    assert local_path(str(tmp_path), name) == os.path.join(str(tmp_path), *name.split("/"))


def test_local_path_keeps_ordinary_names(tmp_path: Path) -> None:
    assert local_path(str(tmp_path), "a//b/./c.txt") == str(tmp_path / "a" / "b" / "c.txt")
    assert local_path(str(tmp_path), "..hidden/x..y") == str(tmp_path / "..hidden" / "x..y")


def test_local_path_refuses_a_folder_that_is_a_link_out(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    (target / "lnk").symlink_to(outside)
    with pytest.raises(UnsafePath, match="link"):
        local_path(str(target), "lnk/x.txt")


def _tar(path: Path, *members: Any) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(_info("ok.txt", b"fine"), io.BytesIO(b"fine"))
        for member in members:
            info, data = member
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _info(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.type = kind
    info.linkname = link
    info.mode = 0o644
    return info


CRAFTED = {
    "dotdot": (_info("../../escape.txt", b"pwned"), b"pwned"),
    "absolute": (_info("/tmp/escape-absolute.txt", b"pwned"), b"pwned"),
    "symlink-out": (_info("lnk", kind=tarfile.SYMTYPE, link="/etc"), None),
    "relative-symlink-out": (_info("lnk", kind=tarfile.SYMTYPE, link="../../../../tmp"), None),
    "hardlink-out": (_info("hard", kind=tarfile.LNKTYPE, link="../../etc/hostname"), None),
    "fifo": (_info("pipe", kind=tarfile.FIFOTYPE), None),
    "device": (_info("dev", kind=tarfile.CHRTYPE), None),
}


@pytest.mark.parametrize("variant", sorted(CRAFTED))
def test_crafted_archives_write_nothing(tmp_path: Path, variant: str) -> None:
    archive = _tar(tmp_path / "evil.tar.gz", CRAFTED[variant])
    dest = tmp_path / "a" / "b" / "dest"
    with tarfile.open(archive) as tar, pytest.raises(UnsafePath):
        safe_extract(tar, str(dest))
    # not even the harmless member: a refused archive leaves no partial result
    assert not (tmp_path / "a").exists()
    assert _files(tmp_path) == ["evil.tar.gz"]


def test_an_archive_with_inner_links_extracts_into_an_existing_folder(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "good.tar.gz", (_info("sub/data.txt", b"abc"), b"abc"),
                   (_info("sub/alias", kind=tarfile.SYMTYPE, link="data.txt"), None))
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep.txt").write_text("kept")
    with tarfile.open(archive) as tar:
        assert safe_extract(tar, str(dest)) == 3
    assert (dest / "sub" / "alias").read_text() == "abc"
    assert sorted(os.listdir(dest)) == ["keep.txt", "ok.txt", "sub"]  # no staging folder left


# --- the bootstrap stub in the job ------------------------------------------------------

def test_bootstrap_stub_refuses_a_tampered_code_manifest(tmp_path: Path, repo_root: Path) -> None:
    channel = tmp_path / "channel"
    channel.mkdir()
    boot = (repo_root / "aws_sagemaker_remote" / "safepath.py").read_bytes()
    boot_sha = hashlib.sha256(boot).hexdigest()
    (channel / boot_sha).write_bytes(boot)
    bad_sha = hashlib.sha256(b"pwned").hexdigest()
    (channel / bad_sha).write_bytes(b"pwned")
    manifest = channel / ("f" * 64)
    manifest.write_text(json.dumps({"boot": boot_sha, "files": [
        ["runtime/aws_sagemaker_remote/safepath.py", boot_sha, False], ["../../escape.txt", bad_sha, False]]}))
    unpack = tmp_path / "job" / "code"
    run = subprocess.run([sys.executable, "-c", BOOTSTRAP_STUB, str(manifest), str(unpack)],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "'../../escape.txt'" in lines[0] and "Traceback" not in run.stderr
    assert _files(tmp_path) == sorted(f"channel/{name}" for name in (boot_sha, bad_sha, "f" * 64))


# --- every download path, against the moto server ---------------------------------------

def _evil_prefix(bucket: str, prefix: str) -> None:
    import boto3

    s3 = boto3.client("s3")
    try:
        s3.create_bucket(Bucket=bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    s3.put_object(Bucket=bucket, Key=prefix + "!a.txt", Body=b"ok")
    s3.put_object(Bucket=bucket, Key=prefix + EVIL_KEY, Body=b"pwned")
    # the key really holds the '..' segments on the server
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
    assert prefix + EVIL_KEY in keys


def test_s3_input_of_a_local_run_refuses_dotdot_keys(aws: Any, run_script: Callable[..., Any], demo_dir: Path,
                                                     tmp_path: Path, one_error_line: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "a" / "b" / "c" / "home"
    monkeypatch.setenv("AWS_SAGEMAKER_REMOTE_HOME", str(home))
    _evil_prefix("evilbkt", "in/")
    run = run_script(demo_dir / "wordcount.py", "--input", "s3://evilbkt/in/", "--output", tmp_path / "out")
    assert run.returncode == 1, run.stderr
    one_error_line(run.stderr, EVIL_KEY)
    assert not any(name.endswith("escape.txt") for name in _files(tmp_path))
    # no cache folder presented as complete
    cache = home / "cache" / "inputs"
    assert not cache.exists() or all(not p.name.endswith(".json") for p in cache.iterdir())


def test_local_job_refuses_dotdot_keys(aws: Any, run_script: Callable[..., Any], demo_dir: Path,
                                       tmp_path: Path) -> None:
    _evil_prefix("evilbkt", "in/")
    run = run_script(demo_dir / "wordcount.py", "--sagemaker-run=local", "--input", "s3://evilbkt/in/",
                     "--output", tmp_path / "out")
    assert run.returncode == 1, run.stderr
    assert EVIL_KEY in run.stderr and "Traceback" not in run.stderr
    assert not any(name.endswith("escape.txt") for name in _files(tmp_path))


def test_processing_download_outputs_refuses_dotdot_keys(aws: Any, run_script: Callable[..., Any],
                                                         demo_dir: Path, tmp_path: Path,
                                                         one_error_line: Any) -> None:
    _evil_prefix(DEFAULT_BUCKET, "aws-sagemaker-remote/jobs/j1/output/output/")
    out = tmp_path / "o" / "x" / "y" / "output"
    out.mkdir(parents=True)
    run = run_script(demo_dir / "wordcount.py", "--sagemaker-run=yes", "--sagemaker-role", ROLE,
                     "--sagemaker-image", IMAGE, "--sagemaker-job-name", "j1", "--sagemaker-download-outputs",
                     "--output", out)
    assert run.returncode == 1, run.stderr
    one_error_line(run.stderr, EVIL_KEY)
    assert _files(tmp_path) == []  # nothing downloaded at all, not even the harmless object


@pytest.mark.parametrize("variant", ["dotdot", "symlink-out", "hardlink-out"])
def test_download_model_refuses_a_crafted_model_archive(aws: Any, run_script: Callable[..., Any], demo_dir: Path,
                                                        tmp_path: Path, one_error_line: Any, variant: str) -> None:
    import boto3

    archive = _tar(tmp_path / "model.tar.gz", CRAFTED[variant])
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=DEFAULT_BUCKET)
    s3.upload_file(str(archive), DEFAULT_BUCKET, "aws-sagemaker-remote/jobs/j2/output/model.tar.gz")
    dest = tmp_path / "m"
    base = tmp_path / "job"
    run = run_script(demo_dir / "train_linear.py", "--sagemaker-run=yes", "--sagemaker-role", ROLE,
                     "--sagemaker-image", IMAGE, "--sagemaker-job-name", "j2", "--sagemaker-download-model", dest,
                     "--model-dir", base / "model", "--output-dir", base / "data",
                     "--checkpoint-dir", base / "checkpoints")
    assert run.returncode == 1, run.stderr
    one_error_line(run.stderr, "model.tar.gz", CRAFTED[variant][0].name)
    assert not dest.exists()
    assert [p for p in _files(tmp_path) if not p.startswith("job")] == ["model.tar.gz"]


TRAINING_WITH_OUTPUT = """
from aws_sagemaker_remote import sagemaker_training_main

def main(args):
    pass

if __name__ == "__main__":
    sagemaker_training_main(main=main, outputs={"report": "report"})
"""


@pytest.mark.parametrize("member", ["report/../../escape.txt", "report/lnk"])
def test_training_download_outputs_refuses_a_crafted_output_archive(aws: Any, run_script: Callable[..., Any],
                                                                    tmp_path: Path, one_error_line: Any,
                                                                    member: str) -> None:
    import boto3

    archive = tmp_path / "output.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.addfile(_info("report/ok.txt", b"fine"), io.BytesIO(b"fine"))
        if member.endswith("lnk"):  # a link leading out of the output folder
            tar.addfile(_info(member, kind=tarfile.SYMTYPE, link="../../../etc"))
        else:
            tar.addfile(_info(member, b"pwned"), io.BytesIO(b"pwned"))
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=DEFAULT_BUCKET)
    s3.upload_file(str(archive), DEFAULT_BUCKET, "aws-sagemaker-remote/jobs/j3/output/output.tar.gz")
    script = tmp_path / "train.py"
    script.write_text(TRAINING_WITH_OUTPUT)
    base = tmp_path / "job"
    report = tmp_path / "here" / "report"
    run = run_script(script, "--sagemaker-run=yes", "--sagemaker-role", ROLE, "--sagemaker-image", IMAGE,
                     "--sagemaker-job-name", "j3", "--sagemaker-download-outputs", "--report", report,
                     "--model-dir", base / "model", "--output-dir", base / "data",
                     "--checkpoint-dir", base / "checkpoints")
    assert run.returncode == 1, run.stderr
    one_error_line(run.stderr, "output.tar.gz")
    assert not report.exists()
    assert not any(name.endswith("escape.txt") for name in _files(tmp_path))


def test_the_local_stand_in_refuses_keys_leading_out_of_it(tmp_path: Path) -> None:
    from aws_sagemaker_remote.store import LocalStore, UnsafeDownload

    store = LocalStore(str(tmp_path / "s3"))
    store.put_bytes(b"ok", "s3://bkt/a/b.txt")
    assert (tmp_path / "s3" / "bkt" / "a" / "b.txt").read_bytes() == b"ok"
    for uri in ("s3://bkt/../../escape.txt", "s3://bkt/a/../../../escape.txt", "s3://../x"):
        with pytest.raises(UnsafeDownload, match="'..'"):
            store.put_bytes(b"pwned", uri)
    assert _files(tmp_path) == ["s3/bkt/a/b.txt"]


def test_an_output_uploaded_to_the_stand_in_stays_inside_it(run_script: Callable[..., Any], demo_dir: Path,
                                                             tmp_path: Path, one_error_line: Any) -> None:
    # no AWS configured: s3:// paths of a plain run use the local stand-in folder
    run = run_script(demo_dir / "wordcount.py", "--output-s3", "s3://bkt/../../../../escape/")
    assert run.returncode == 1, run.stderr
    one_error_line(run.stderr, "'..'")
    home = os.environ["AWS_SAGEMAKER_REMOTE_HOME"]
    assert not os.path.exists(os.path.normpath(os.path.join(home, "s3", "bkt", "../../../../escape")))
