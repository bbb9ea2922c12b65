"""Staging by content address, against a real (moto) S3 over HTTP."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict, List

import boto3
import pytest
from cas_view import blob_name_of

from aws_sagemaker_remote.api import prepare
from aws_sagemaker_remote.bundle import bundle_entries
from aws_sagemaker_remote.plan import plan_job
from aws_sagemaker_remote.reinvoke import user_arguments
from aws_sagemaker_remote.safepath import materialize, unpack
from aws_sagemaker_remote.spec import Placement, output_uris
from aws_sagemaker_remote.stage import HashCache, stage, tree_of_path
from aws_sagemaker_remote.store import LocalStore, S3Store, manifest_objects
from aws_sagemaker_remote.transfers import STREAM_CHUNKSIZE, bytes_digests, file_digests

NOW = dt.datetime(2026, 11, 21, tzinfo=dt.timezone.utc)
BUCKET = "stage-bucket"
PLACEMENT = Placement(role_arn="arn:aws:iam::123456789012:role/r", image_uri="img", bucket=BUCKET, prefix="pre")


def _spec(tmp_path: Path, argv: List[str] = ()):  # type: ignore[assignment]
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    (project / "job.py").write_text("print('job')\n")
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True, exist_ok=True)
    single = tmp_path / "table.csv"
    if not single.exists():  # later calls keep edits made by the test
        (data / "a.txt").write_text("alpha")
        (data / "sub" / "b.txt").write_text("beta")
        single.write_text("x,y\n1,2\n")
    decl, opts, parser = prepare("processing", None, {"data": str(data), "table": str(single),
                                                      "remote": "s3://elsewhere/prefix/"},
                                 {"out": str(tmp_path / "out")}, None, None, None, None,
                                 str(project / "job.py"), {}, {})
    ns = parser.parse_args(list(argv))
    opts = type(opts).from_namespace(ns)
    return plan_job(decl, ns, opts, user_arguments(list(argv), decl, opts), now=NOW, token="ab12")


def _stage(spec: Any, store: Any, tmp_path: Path, dry_run: bool = False):
    code = bundle_entries(spec.code)
    return stage(spec, code, store, PLACEMENT, upload=not dry_run, cache=HashCache(str(tmp_path / "hashes.json")))


def job_tree(store: Any, staged: Any, name: str, dest: Path) -> Path:
    """What the job sees in input ``name`` (or the code tree for "code"): the blobs its
    ``ManifestFile`` channel names, laid out from the listing in the code tree as the job does."""
    code_blobs = dest / "code-channel"
    for uri, rel, _ in manifest_objects(store, staged.code_uri):
        store.download_file(uri, str(code_blobs / rel))
    unpack(str(code_blobs / staged.code_entry), str(dest / "code"))
    if name == "code":
        return dest / "code"
    manifest = json.loads((dest / "code" / "manifest.json").read_text())
    channel = next(ch for ch in staged.spec.inputs if ch.name == name)
    listing = next(i["listing"] for i in manifest["inputs"] if i["path"] == channel.container_path)
    folder = dest / name
    for uri, rel, _ in manifest_objects(store, staged.input_uris[name]):
        store.download_file(uri, str(folder / "blobs" / rel))
    materialize(json.loads((dest / "code" / listing).read_text()), str(folder / "blobs"), str(folder / "tree"))
    return folder / "tree"


def files_of(folder: Path) -> Dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_stage_uploads_once_by_content_address(aws: Any, tmp_path: Path) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    store = S3Store(s3)
    staged = _stage(_spec(tmp_path), store, tmp_path)
    blobs = f"s3://{BUCKET}/pre/cas/sha256/"
    assert staged.code_uri.startswith(blobs)
    # local inputs travel as manifests of blobs; the job lays the tree out again
    kinds = {ch.name: ch.s3_data_type for ch in staged.spec.inputs}
    assert kinds == {"data": "ManifestFile", "table": "ManifestFile", "remote": "S3Prefix"}
    assert files_of(job_tree(store, staged, "data", tmp_path / "job")) == {"a.txt": b"alpha", "sub/b.txt": b"beta"}
    assert files_of(job_tree(store, staged, "table", tmp_path / "job2")) == {"table.csv": b"x,y\n1,2\n"}
    assert files_of(job_tree(store, staged, "code", tmp_path / "job3"))["script/job.py"] == b"print('job')\n"
    assert all(key.startswith("pre/cas/sha256/") for key in {r.key for r in aws.s3_uploads()})
    assert staged.input_uris["remote"] == "s3://elsewhere/prefix/"  # passed through, not copied
    assert output_uris(staged.spec, PLACEMENT)["out"] == f"s3://{BUCKET}/pre/jobs/job-20261121-000000-ab12/output/out"

    # second launch, nothing changed: no upload, no listing, one GET of the blobs' generation object
    aws.clear_log()
    again = _stage(_spec(tmp_path), store, tmp_path)
    assert aws.s3_uploads() == []
    assert aws.operations("s3") == ["GetObject"]
    assert all(u.present for u in again.uploads)
    assert again.input_uris == staged.input_uris and again.code_uri == staged.code_uri

    # one file changes: its blob and the manifests that name it, nothing else
    (tmp_path / "data" / "a.txt").write_text("alpha, edited")
    aws.clear_log()
    third = _stage(_spec(tmp_path), store, tmp_path)
    assert third.input_uris["data"] != staged.input_uris["data"]
    assert third.input_uris["table"] == staged.input_uris["table"]
    bodies = {r.key.rsplit("/", 1)[1]: r for r in aws.s3_uploads()}
    assert hashlib.sha256(b"alpha, edited").hexdigest() in bodies
    assert len(bodies) == 5  # the blob, the input's listing and channel, the code's manifest and channel
    assert files_of(job_tree(store, third, "data", tmp_path / "job4")) == {"a.txt": b"alpha, edited",
                                                                          "sub/b.txt": b"beta"}


def test_dry_run_uploads_nothing(aws: Any, tmp_path: Path) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    aws.clear_log()
    staged = _stage(_spec(tmp_path), S3Store(s3), tmp_path, dry_run=True)
    assert aws.s3_uploads() == []
    assert staged.uploads and not any(u.present for u in staged.uploads)
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


def test_interrupted_upload_resumes(aws: Any, tmp_path: Path) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    store = S3Store(s3)
    spec = _spec(tmp_path)
    staged = _stage(spec, store, tmp_path, dry_run=True)
    # only one blob made it before an interruption
    first = next(u for u in staged.uploads if u.local_path == str(tmp_path / "data" / "a.txt"))
    store.upload_file(first.local_path, first.uri)
    aws.clear_log()
    _stage(spec, store, tmp_path)
    uploaded = {f"s3://{BUCKET}/{r.key}" for r in aws.s3_uploads()}
    assert first.uri not in uploaded
    assert {u.uri for u in staged.uploads if u.uri != first.uri} == uploaded
    # a few blobs the index does not know: a HEAD each, no listing of the blob folder
    assert aws.operations("s3").count("HeadObject") == len(staged.uploads)
    assert "ListObjectsV2" not in aws.operations("s3")


def test_multipart_upload_for_large_files(aws: Any, tmp_path: Path) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    big = tmp_path / "big.bin"
    with open(big, "wb") as fh:
        fh.write(os.urandom(1024) * (17 * 1024))  # 17 MiB: above the multipart threshold
    store = S3Store(s3)
    store.upload_file(str(big), f"s3://{BUCKET}/big.bin")
    operations = [r.operation for r in aws.s3_uploads()]
    assert "CreateMultipartUpload" in operations and operations.count("UploadPart") == 2
    assert store.head(f"s3://{BUCKET}/big.bin") == big.stat().st_size


def test_tree_digest_depends_on_names_and_content(tmp_path: Path) -> None:
    a = tmp_path / "a"
    a.mkdir()
    (a / "x.txt").write_text("same")
    b = tmp_path / "b"
    b.mkdir()
    (b / "y.txt").write_text("same")
    assert tree_of_path(str(a)).digest != tree_of_path(str(b)).digest
    c = tmp_path / "c"
    c.mkdir()
    (c / "x.txt").write_text("same")
    assert tree_of_path(str(a)).digest == tree_of_path(str(c)).digest


def test_local_store_stages_without_aws(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path / "s3"))
    staged = _stage(_spec(tmp_path), store, tmp_path)
    assert files_of(job_tree(store, staged, "data", tmp_path / "job")) == {"a.txt": b"alpha", "sub/b.txt": b"beta"}
    again = _stage(_spec(tmp_path), store, tmp_path)
    assert all(u.present for u in again.uploads)


def test_a_local_manifest_is_named_by_its_object(tmp_path: Path) -> None:
    from aws_sagemaker_remote.args import PathArgument

    script = tmp_path / "job.py"
    script.write_text("")
    manifest = tmp_path / "files.manifest"
    manifest.write_text('[{"prefix": "s3://data-bucket/rows/"}, "a.csv"]')
    decl, opts, parser = prepare("processing", None,
                                 {"rows": PathArgument(str(manifest), s3_data_type="ManifestFile")},
                                 None, None, None, None, None, str(script), {}, {})
    spec = plan_job(decl, parser.parse_args([]), opts, (), now=NOW, token="ab12")
    staged = _stage(spec, LocalStore(str(tmp_path / "s3")), tmp_path)
    assert staged.input_uris["rows"].endswith("/files.manifest")
    assert LocalStore(str(tmp_path / "s3")).get_bytes(staged.input_uris["rows"]) == manifest.read_bytes()


def test_progress_bar_only_on_a_terminal() -> None:
    import io

    from aws_sagemaker_remote.stage import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    quiet = io.StringIO()
    bar = Progress(3 * 1024 * 1024, quiet)
    bar(3 * 1024 * 1024)
    bar.close()
    assert quiet.getvalue() == ""  # piped or redirected: no control characters in the log
    shown = Terminal()
    bar = Progress(3 * 1024 * 1024, shown)
    bar(1024 * 1024)
    bar(2 * 1024 * 1024)
    bar.close()
    assert "3.0 MiB/3.0 MiB" in shown.getvalue() and shown.getvalue().endswith("\n")


def test_one_new_file_in_a_staged_folder_sends_only_that_file(aws: Any, tmp_path: Path) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    store = S3Store(s3)
    first = _stage(_spec(tmp_path), store, tmp_path)
    (tmp_path / "data" / "c.txt").write_text("gamma: the only new bytes")
    aws.clear_log()
    second = _stage(_spec(tmp_path), store, tmp_path)
    assert second.input_uris["data"] != first.input_uris["data"]  # a new tree...
    blob = hashlib.sha256(b"gamma: the only new bytes").hexdigest()
    sent = [r for r in aws.s3_uploads() if r.key.endswith(blob)]
    assert len(sent) == 1  # ...but only c.txt's bytes travel, with no copies inside S3
    assert "CopyObject" not in aws.operations("s3")
    assert files_of(job_tree(store, second, "data", tmp_path / "job")) == {
        "a.txt": b"alpha", "sub/b.txt": b"beta", "c.txt": b"gamma: the only new bytes"}


def test_the_stat_cache_keeps_part_crcs_read_with_the_digest(tmp_path: Path) -> None:
    from aws_sagemaker_remote.transfers import file_digests

    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(70_000))
    cache_file = tmp_path / "hashes.json"
    cache = HashCache(str(cache_file))
    digest = cache.sha256(str(path))
    assert (digest, cache.checks(str(path), digest)) == file_digests(str(path))
    assert cache.checks(str(path), "0" * 64) is None  # CRCs of other bytes are never handed out
    cache.save()
    # an entry written before CRCs were kept (or a damaged one) is read again, not trusted
    st = path.stat()
    stale = {str(path): [st.st_size, st.st_mtime_ns, st.st_ino, "f" * 64]}
    cache_file.write_text(json.dumps(stale))
    again = HashCache(str(cache_file))
    assert again.checks(str(path), "f" * 64) is None
    assert again.sha256(str(path)) == digest and again.checks(str(path), digest) == file_digests(str(path))[1]


@pytest.mark.parametrize("size", [0, 1, 1000, STREAM_CHUNKSIZE, STREAM_CHUNKSIZE + 1, 3 * STREAM_CHUNKSIZE + 7])
def test_bytes_in_memory_get_the_digests_of_the_same_bytes_in_a_file(tmp_path: Path, size: int) -> None:
    """Manifests and listings are named and checked as files of the same bytes would be."""
    data = os.urandom(size)
    path = tmp_path / "same.bin"
    path.write_bytes(data)
    digest, checks = bytes_digests(data)
    assert (digest, checks) == file_digests(str(path))
    assert digest == blob_name_of(data) and len(checks) == max(1, -(-size // STREAM_CHUNKSIZE))


def test_a_stat_cache_entry_naming_a_big_file_by_its_whole_sha256_is_made_again(tmp_path: Path) -> None:
    """Files of several parts were once named by the SHA-256 of the whole; their parts name them
    now: such an entry is read again (once), not handed out."""
    path = tmp_path / "big.bin"
    data = os.urandom(STREAM_CHUNKSIZE + 10)
    path.write_bytes(data)
    cache_file = tmp_path / "sha256.json"
    cache = HashCache(str(cache_file))
    name = cache.sha256(str(path))
    assert name == blob_name_of(data) and name.endswith("-2")
    cache.save()
    entries = json.loads(cache_file.read_text())
    # seven fields: an earlier version, reading six, takes the entry for one it cannot read
    assert len(entries[str(path)]) == 7 and entries[str(path)][6] == "parts"
    # what an earlier version kept: the SHA-256 of the whole, six fields
    entries[str(path)] = entries[str(path)][:6]
    entries[str(path)][3] = hashlib.sha256(data).hexdigest()
    cache_file.write_text(json.dumps(entries))
    again = HashCache(str(cache_file))
    assert again.unknown([str(path)]) == {str(path): len(data)}
    assert again.sha256(str(path)) == name


def test_the_stat_cache_past_its_size_keeps_only_the_files_the_launch_named(tmp_path: Path) -> None:
    files = []
    for i in range(5):
        files.append(tmp_path / f"f{i}.txt")
        files[-1].write_text(f"file {i}\n")
    store = tmp_path / "hashes.json"
    first = HashCache(str(store), max_entries=3)
    for path in files:
        first.sha256(str(path))
    first.save()  # five entries, all named by this launch: all kept
    assert len(json.loads(store.read_text())) == 5
    under = HashCache(str(store), max_entries=10)
    under.sha256(str(files[0]))
    under.save()  # under the limit: the others stay
    assert len(json.loads(store.read_text())) == 5
    again = HashCache(str(store), max_entries=3)
    for path in files[:2]:
        again.sha256(str(path))
    again.save()
    assert set(json.loads(store.read_text())) == {os.path.abspath(p) for p in files[:2]}
