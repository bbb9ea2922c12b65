"""Staging by content address, against a real (moto) S3 over HTTP."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, List

import boto3

from aws_sagemaker_remote.api import prepare
from aws_sagemaker_remote.bundle import build_bundle
from aws_sagemaker_remote.plan import plan_job
from aws_sagemaker_remote.reinvoke import user_arguments
from aws_sagemaker_remote.spec import Placement, output_uris
from aws_sagemaker_remote.stage import HashCache, stage, tree_of_path
from aws_sagemaker_remote.store import LocalStore, S3Store, prefix_objects

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
    bundle = build_bundle(spec.code, spec.kind.name, workdir=str(tmp_path))
    return stage(spec, bundle, store, PLACEMENT, upload=not dry_run, cache=HashCache(str(tmp_path / "hashes.json")))


def test_stage_uploads_once_by_content_address(aws: Any, tmp_path: Path) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    store = S3Store(s3)
    staged = _stage(_spec(tmp_path), store, tmp_path)
    assert staged.code_uri.startswith(f"s3://{BUCKET}/pre/cas/sha256/") and staged.code_uri.endswith("/")
    # a folder keeps its relative paths under its prefix; one file keeps its name
    data_objects = {rel for _, rel, _ in prefix_objects(store, staged.input_uris["data"])}
    assert data_objects == {"a.txt", "sub/b.txt"}
    assert {rel for _, rel, _ in prefix_objects(store, staged.input_uris["table"])} == {"table.csv"}
    assert {rel for _, rel, _ in prefix_objects(store, staged.code_uri)} == {"bundle.tar.gz"}
    assert staged.input_uris["remote"] == "s3://elsewhere/prefix/"  # passed through, not copied
    assert output_uris(staged.spec, PLACEMENT)["out"] == f"s3://{BUCKET}/pre/jobs/job-20261121-000000-ab12/output/out"
    assert len(aws.s3_uploads()) >= 4

    # second launch, nothing changed: zero uploads reach the server
    aws.clear_log()
    again = _stage(_spec(tmp_path), store, tmp_path)
    assert aws.s3_uploads() == []
    assert all(u.present for u in again.uploads)
    assert again.input_uris == staged.input_uris and again.code_uri == staged.code_uri

    # one file changes: only that folder's tree is uploaded again
    (tmp_path / "data" / "a.txt").write_text("alpha, edited")
    aws.clear_log()
    third = _stage(_spec(tmp_path), store, tmp_path)
    assert third.input_uris["data"] != staged.input_uris["data"]
    assert third.input_uris["table"] == staged.input_uris["table"]
    uploaded_keys = {r.path for r in aws.s3_uploads()}
    assert all("/cas/sha256/" in key for key in uploaded_keys)
    assert not any(staged.input_uris["table"].split(BUCKET)[1] in key for key in uploaded_keys)


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
    # only the first file of the data tree made it before an interruption: no marker yet
    first = next(u for u in staged.uploads if u.uri.startswith(staged.input_uris["data"]))
    store.upload_file(first.local_path, first.uri)
    aws.clear_log()
    _stage(spec, store, tmp_path)

    def key(uri: str) -> str:
        return uri.split(f"s3://{BUCKET}/", 1)[1]

    uploaded = {r.key for r in aws.s3_uploads()}
    data_uri = staged.input_uris["data"]
    rest = {key(u.uri) for u in staged.uploads if u.uri.startswith(data_uri) and u.uri != first.uri}
    assert rest, "the data tree has more than one file"
    # the file already there is not sent again; the rest of the tree and its marker are
    assert key(first.uri) not in uploaded
    assert rest <= uploaded
    assert key(data_uri).rstrip("/") + ".json" in uploaded
    assert {rel for _, rel, _ in prefix_objects(store, data_uri)} == {"a.txt", "sub/b.txt"}


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
    assert {rel for _, rel, _ in prefix_objects(store, staged.input_uris["data"])} == {"a.txt", "sub/b.txt"}
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
    sent = [r for r in aws.s3_uploads() if "/cas/sha256/" in r.path and not r.path.endswith(".json")]
    assert [r.path.rsplit("/", 1)[1] for r in sent] == ["c.txt"]  # ...but only c.txt's bytes travel
    assert aws.operations("s3").count("CopyObject") == 2  # a.txt and sub/b.txt, copied inside S3
    by_rel = {rel: uri for uri, rel, _ in prefix_objects(store, second.input_uris["data"])}
    assert set(by_rel) == {"a.txt", "sub/b.txt", "c.txt"}
    assert store.get_bytes(by_rel["sub/b.txt"]) == b"beta"
    copied = [u for u in second.uploads if u.copy_from]
    assert sorted(u.uri.rsplit("/", 1)[1] for u in copied) == ["a.txt", "b.txt"]
