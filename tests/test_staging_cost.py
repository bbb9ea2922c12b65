"""What a relaunch costs on the wire (counted on the moto server), what the job sees of a tree
staged as blobs (the local backend), and which script a runner module launches."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Dict, List, Tuple

import boto3
import pytest
from cas_view import blob_name_of

from aws_sagemaker_remote.api import prepare
from aws_sagemaker_remote.bundle import bundle_entries
from aws_sagemaker_remote.plan import plan_job
from aws_sagemaker_remote.reinvoke import user_arguments
from aws_sagemaker_remote.spec import Placement
from aws_sagemaker_remote.stage import HashCache, stage
from aws_sagemaker_remote.store import S3Store

NOW = dt.datetime(2026, 12, 2, tzinfo=dt.timezone.utc)
BUCKET = "cost-bucket"
PLACEMENT = Placement(role_arn="arn:aws:iam::123456789012:role/r", image_uri="img", bucket=BUCKET, prefix="pre")


def _project(tmp_path: Path, code_files: int = 40, input_files: int = 0) -> Path:
    project = tmp_path / "project"
    (project / "lib").mkdir(parents=True)
    (project / "job.py").write_text("print('job')\n")
    for i in range(code_files):  # ~20 KB each
        (project / "lib" / f"mod{i:03}.py").write_text(f"# module {i}\n" + hashlib.sha256(b"%d" % i).hexdigest() * 320)
    data = tmp_path / "data"
    data.mkdir()
    for i in range(input_files):
        (data / f"part-{i // 100:02}").mkdir(exist_ok=True)
        (data / f"part-{i // 100:02}" / f"row-{i:05}.txt").write_text(f"row {i}\n")
    return project


def _stage(tmp_path: Path, with_input: bool) -> Any:
    project = tmp_path / "project"
    inputs = {"data": str(tmp_path / "data")} if with_input else {}
    decl, opts, parser = prepare("processing", None, inputs, {}, None, None, None, None, str(project / "job.py"),
                                 {}, {})
    ns = parser.parse_args([])
    opts = type(opts).from_namespace(ns)
    spec = plan_job(decl, ns, opts, user_arguments([], decl, opts), now=NOW, token="c0st")
    return stage(spec, bundle_entries(spec.code), S3Store(boto3.client("s3")), PLACEMENT,
                 cache=HashCache(str(tmp_path / "hashes.json")))


def _sent(aws: Any) -> Tuple[List[str], int, Dict[str, int]]:
    """(operations, bytes of request bodies, PutObject key → body size) since the log was cleared."""
    ops = aws.operations("s3")
    puts = {r.key: r.content_length for r in aws.s3_uploads()}
    return ops, sum(r.content_length for r in aws.requests if r.service == "s3"), puts


@pytest.fixture
def bucket(aws: Any) -> None:
    boto3.client("s3").create_bucket(Bucket=BUCKET)


def test_nothing_changed_sends_nothing_and_asks_once(aws: Any, bucket: None, tmp_path: Path) -> None:
    _project(tmp_path, input_files=300)
    first = _stage(tmp_path, with_input=True)
    aws.clear_log()
    again = _stage(tmp_path, with_input=True)
    ops, sent, puts = _sent(aws)
    assert puts == {} and sent == 0
    # the bucket's generation object (which clean rewrites when it deletes blobs): no LIST, no HEAD per file
    assert ops == ["GetObject"]
    assert again.code_uri == first.code_uri and again.input_uris == first.input_uris


def test_one_changed_code_file_sends_that_file_and_two_small_manifests(aws: Any, bucket: None,
                                                                      tmp_path: Path) -> None:
    project = _project(tmp_path, code_files=40)
    _stage(tmp_path, with_input=False)
    changed = project / "lib" / "mod007.py"
    changed.write_text(changed.read_text() + "# edited\n")
    aws.clear_log()
    _stage(tmp_path, with_input=False)
    ops, sent, puts = _sent(aws)
    blob = hashlib.sha256(changed.read_bytes()).hexdigest()
    assert len(puts) == 3 and f"pre/cas/sha256/{blob}" in puts  # the file, the code manifest, the channel
    # the generation object vouches for the index; one HEAD for the changed file's unknown blob (the
    # manifests this launch wrote are new): no listing of the blob folder, nothing per file
    assert ops.count("GetObject") == 1 and ops.count("HeadObject") == 1 and "ListObjectsV2" not in ops, ops
    assert ops.count("PutObject") == 3 and len(ops) == 5, ops
    size = changed.stat().st_size
    metadata = sent - size
    assert size > 20_000 and metadata < 24 * 1024, (size, metadata)  # the folder holds ~850 KB


def test_one_changed_input_file_in_a_thousand_sends_that_file_and_the_manifests(aws: Any, bucket: None,
                                                                              tmp_path: Path) -> None:
    _project(tmp_path, code_files=2, input_files=1000)
    _stage(tmp_path, with_input=True)
    changed = tmp_path / "data" / "part-04" / "row-00421.txt"
    changed.write_text("row 421, edited\n")
    aws.clear_log()
    _stage(tmp_path, with_input=True)
    ops, sent, puts = _sent(aws)
    blob = hashlib.sha256(changed.read_bytes()).hexdigest()
    # the file, the input's listing and channel manifest, the code manifest and channel: nothing per file
    assert len(puts) == 5 and f"pre/cas/sha256/{blob}" in puts
    # no listing of the blob folder (two pages of 1,000 keys here): the generation object and one HEAD
    assert ops.count("GetObject") == 1 and ops.count("HeadObject") == 1 and "ListObjectsV2" not in ops, ops
    assert ops.count("PutObject") == 5 and len(ops) == 7, ops
    # a ManifestFile channel is one object naming every key (~67 bytes a file), plus the listing
    assert sent < 200 * 1000, sent


def test_a_first_launch_of_many_files_sends_each_from_the_read_that_named_it(aws: Any, bucket: None,
                                                                            tmp_path: Path) -> None:
    """More files than are worth a HEAD each, none hashed before: one listing says what the blob
    folder holds, then each file is read, named and (when missing) sent from that one read."""
    _project(tmp_path, code_files=2, input_files=600)
    data = tmp_path / "data"
    (data / "same-a.txt").write_text("same bytes\n")
    (data / "same-b.txt").write_text("same bytes\n")
    s3 = boto3.client("s3")
    held = hashlib.sha256(b"row 7\n").hexdigest()  # data/part-00/row-00007.txt, stored by another launch
    s3.put_object(Bucket=BUCKET, Key=f"pre/cas/sha256/{held}", Body=b"row 7\n")
    aws.clear_log()
    staged = _stage(tmp_path, with_input=True)

    ops = aws.operations("s3")
    assert ops.count("ListObjectsV2") == 1 and "HeadObject" not in ops, ops
    blob_puts = [r for r in aws.requests if r.operation == "PutObject" and (r.key or "").startswith("pre/cas/")]
    keys = [r.key or "" for r in blob_puts]
    assert len(keys) == len(set(keys)), "a blob was sent twice"
    files = [p for p in data.rglob("*") if p.is_file()] + [p for p in (tmp_path / "project").rglob("*.py")]
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    assert f"pre/cas/sha256/{held}" not in keys
    assert digests - {held} <= {k.rsplit("/", 1)[1] for k in keys}
    for request in blob_puts:  # each with the SHA-256 of what was read, for S3 to check
        digest = (request.key or "").rsplit("/", 1)[1]
        assert dict(request.checksums)["x-amz-checksum-sha256"] == base64.b64encode(bytes.fromhex(digest)).decode()
    for path in files:
        key = "pre/cas/sha256/" + hashlib.sha256(path.read_bytes()).hexdigest()
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == path.read_bytes()
    reported = {u.uri.rsplit("/", 1)[1]: u.present for u in staged.uploads if "/cas/" in u.uri}
    assert reported[held] is True and reported[hashlib.sha256(b"same bytes\n").hexdigest()] is False

    # the reads were kept: nothing is read or sent again, and a file changed since goes alone
    aws.clear_log()
    _stage(tmp_path, with_input=True)
    assert "PutObject" not in aws.operations("s3"), aws.operations("s3")
    # with the stat cache gone every file is read again, but the blob index still knows each
    # digest: nothing is listed, looked up or sent
    os.remove(tmp_path / "hashes.json")
    aws.clear_log()
    _stage(tmp_path, with_input=True)
    assert aws.operations("s3") == ["GetObject"], aws.operations("s3")
    changed = data / "part-03" / "row-00321.txt"
    changed.write_text("row 321, edited\n")
    aws.clear_log()
    _stage(tmp_path, with_input=True)
    _, _, puts = _sent(aws)
    assert len(puts) == 5 and f"pre/cas/sha256/{hashlib.sha256(changed.read_bytes()).hexdigest()}" in puts


def test_a_first_launch_of_many_files_into_a_new_bucket_looks_nothing_up(aws: Any, run_script: Any,
                                                                        tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    script = project / "job.py"
    script.write_text(WARM_SCRIPT.replace("inputs={}", 'inputs={"data": "data"}'))
    for i in range(300):
        (project / "data" / f"d{i // 100}").mkdir(parents=True, exist_ok=True)
        (project / "data" / f"d{i // 100}" / f"f{i:03}.txt").write_text(f"file {i}\n")
    flags = ["--sagemaker-run=yes", "--sagemaker-wait=no", "--sagemaker-role", "arn:aws:iam::123456789012:role/R",
             "--sagemaker-image", "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1", "--sagemaker-bucket",
             "new-bucket", "--data", str(project / "data")]
    done = run_script(script, *flags, cwd=project)
    assert done.returncode == 0, done.stderr
    ops = aws.operations("s3")
    assert ops[:3] == ["GetObject", "HeadBucket", "CreateBucket"], ops
    assert set(ops[3:]) == {"PutObject"}, ops
    assert re.search(r"\(\d+(\.\d+)? \w+ uploaded, 0 copied within S3, 0 already there\)", done.stderr), done.stderr
    s3 = boto3.client("s3")
    stored = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="new-bucket")
              for o in page.get("Contents", [])}
    (create,) = aws.json_bodies("CreateProcessingJob")
    for channel in create["ProcessingInputs"]:
        manifest = json.loads(s3.get_object(Bucket="new-bucket",
                                            Key=channel["S3Input"]["S3Uri"].split("/", 3)[3])["Body"].read())
        prefix = manifest[0]["prefix"].split("/", 3)[3]
        assert [name for name in manifest[1:] if prefix + name not in stored] == []
    assert len([k for k in stored if "/cas/" in k]) > 300


UNICODE_TREE = {
    "données/été.txt": "chaud\n",
    "日本語/ファイル.csv": "a,b\n1,2\n",
    "same-1.txt": "duplicate bytes\n",
    "nested/deeper/same-2.txt": "duplicate bytes\n",
    "e" * 64: "a file whose name looks like a blob\n",
    "emoji-✓.txt": "",
    "a:b.csv": "colon\n",  # plain names on Linux, not drive paths
    "logs/1:00.log": "one o'clock\n",
    "c:": "a drive letter alone\n",
}
EMPTY_DIRS = ("empty", "nested/empty-too")

TREE_SCRIPT = '''
import json, os
from aws_sagemaker_remote import sagemaker_processing_main


def main(args):
    files, dirs = {}, []
    for root, subdirs, names in os.walk(args.data):
        rel = os.path.relpath(root, args.data)
        if not subdirs and not names and rel != ".":
            dirs.append(rel.replace(os.sep, "/"))
        for name in names:
            path = os.path.join(root, name)
            with open(path, encoding="utf-8") as fh:
                files[os.path.relpath(path, args.data).replace(os.sep, "/")] = fh.read()
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "tree.json"), "w", encoding="utf-8") as fh:
        json.dump({"files": files, "dirs": sorted(dirs)}, fh, ensure_ascii=False)


if __name__ == "__main__":
    sagemaker_processing_main(main, inputs={"data": "data"}, outputs={"output": "output"})
'''


@pytest.mark.parametrize("extra", [0, 300])  # 300 more files: named and sent from one read each
def test_a_job_sees_exactly_the_local_tree(run_script: Any, clean_environment: Path, tmp_path: Path,
                                           extra: int) -> None:
    script = tmp_path / "tree.py"
    script.write_text(TREE_SCRIPT)
    data = tmp_path / "data"
    tree = dict(UNICODE_TREE, **{f"many/f{i:03}.txt": f"file {i % 250}\n" for i in range(extra)})
    # a file of two parts (named by them: "<hex>-2"), and a file whose name looks like that
    tree.update({"big/two-parts.txt": "x" * (8 * 1024 * 1024 + 1), "f" * 64 + "-2": "not a blob\n"})
    for rel, text in tree.items():
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_text(text, encoding="utf-8")
    for rel in EMPTY_DIRS:
        (data / rel).mkdir(parents=True)
    here = run_script(script, "--output", tmp_path / "here")
    assert here.returncode == 0, here.stderr
    job = run_script(script, "--sagemaker-run=local", "--output", tmp_path / "job", "--sagemaker-download-outputs")
    assert job.returncode == 0, job.stdout + job.stderr
    seen = json.loads((tmp_path / "job" / "tree.json").read_text(encoding="utf-8"))
    assert seen == json.loads((tmp_path / "here" / "tree.json").read_text(encoding="utf-8"))
    assert seen["files"] == tree and seen["dirs"] == sorted(EMPTY_DIRS)
    # and the local stand-in store holds the input as blobs named by their digest
    blobs = clean_environment / "s3"
    stored = {p.name for p in blobs.rglob("*") if p.is_file()}
    assert hashlib.sha256(b"chaud\n").hexdigest() in stored
    assert blob_name_of(tree["big/two-parts.txt"].encode()) in stored
    assert "été.txt" not in stored


@pytest.mark.skipif(os.name == "nt", reason="Windows has no such file names")
@pytest.mark.parametrize("others", [0, 300])  # 300 more: files that would be sent as they are read
@pytest.mark.parametrize("name", ["\\lead.txt", "caf\udce9.txt"])  # a backslash; bytes that are not UTF-8
def test_an_input_name_the_job_would_refuse_fails_the_launch(run_script: Any, clean_environment: Path,
                                                            tmp_path: Path, one_error_line: Any, name: str,
                                                            others: int) -> None:
    script = tmp_path / "tree.py"
    script.write_text(TREE_SCRIPT)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "fine.txt").write_text("fine\n")
    for i in range(others):
        (tmp_path / "data" / f"other-{i:03}.txt").write_text(f"other {i}\n")
    try:
        (tmp_path / "data" / name).write_text("a name the job would lay out elsewhere, or cannot name\n")
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system takes no such name")
    job = run_script(script, "--sagemaker-run=local", "--output", tmp_path / "job")
    assert job.returncode == 2, job.stdout + job.stderr
    one_error_line(job.stderr, "--data", "lead.txt" if "lead" in name else "not UTF-8")
    assert not [p for p in (clean_environment / "s3").rglob("*") if p.is_file()]  # nothing uploaded


RUNNER_SCRIPT = '''
from aws_sagemaker_remote import sagemaker_processing_main


def main(args):
    print("ran", args.output)


if __name__ == "__main__":
    sagemaker_processing_main(main, outputs={"output": "output"})
'''


@pytest.mark.parametrize("runner", ["cProfile", "pdb"])
def test_a_runner_module_launches_the_users_script(runner: str, run_python: Any, clean_environment: Path,
                                                   tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    script = project / "mine.py"
    script.write_text(RUNNER_SCRIPT)
    run = run_python("-m", runner, script, "--sagemaker-run=local", "--sagemaker-dry-run", cwd=project,
                     input="continue\nquit\n" if runner == "pdb" else None)
    report_text = run.stdout[run.stdout.index("{"):] if "{" in run.stdout else ""
    assert '"ContainerArguments"' in report_text, run.stdout + run.stderr
    listed = [line for line in run.stderr.splitlines() if line.startswith("bundle: ")]
    assert listed == [f"bundle: script/mine.py ({len(RUNNER_SCRIPT)} B)"], run.stderr
    report = json.JSONDecoder().raw_decode(report_text)[0]
    shipped = {os.path.basename(u["path"]) for u in report["uploads"]}
    assert "mine.py" in shipped and f"{runner}.py" not in shipped
    manifest_uploads = [u for u in report["uploads"] if u["path"].startswith(str(project))]
    assert [u["path"] for u in manifest_uploads] == [str(script)]


@pytest.mark.parametrize("size", [1024, 17 * 1024 * 1024])
def test_a_blob_is_stored_only_with_the_bytes_its_name_says(aws: Any, bucket: None, tmp_path: Path,
                                                            size: int) -> None:
    from aws_sagemaker_remote.errors import ContentChanged
    from aws_sagemaker_remote.transfers import STREAM_CHUNKSIZE

    path = tmp_path / "blob.bin"
    path.write_bytes(os.urandom(size))
    store = S3Store(boto3.client("s3"))
    stale = hashlib.sha256(b"what the file held when it was hashed").hexdigest()
    with pytest.raises(ContentChanged):
        store.upload_file(str(path), f"s3://{BUCKET}/pre/cas/sha256/{stale}", sha256=stale)
    assert store.head(f"s3://{BUCKET}/pre/cas/sha256/{stale}") is None
    aws.clear_log()
    digest = blob_name_of(path.read_bytes())
    store.upload_file(str(path), f"s3://{BUCKET}/pre/cas/sha256/{digest}", sha256=digest)
    ops = aws.operations("s3")
    # small: one PutObject; large: parts of STREAM_CHUNKSIZE, read as they are sent
    parts = -(-size // STREAM_CHUNKSIZE) if size > STREAM_CHUNKSIZE else 0
    assert ops.count("UploadPart") == parts and ops.count("PutObject") == (0 if parts else 1), ops
    assert store.get_bytes(f"s3://{BUCKET}/pre/cas/sha256/{digest}") == path.read_bytes()


def test_a_pipe_input_keeps_its_prefix_tree_and_copies_unchanged_files_without_a_head_each(
        aws: Any, bucket: None, tmp_path: Path) -> None:
    from aws_sagemaker_remote.args import PathArgument

    _project(tmp_path, code_files=1, input_files=120)
    project = tmp_path / "project"

    def staged() -> Any:
        decl, opts, parser = prepare("processing", None, {"data": PathArgument(str(tmp_path / "data"), mode="Pipe")},
                                     {}, None, None, None, None, str(project / "job.py"), {}, {})
        ns = parser.parse_args([])
        opts = type(opts).from_namespace(ns)
        spec = plan_job(decl, ns, opts, user_arguments([], decl, opts), now=NOW, token="c0st")
        return stage(spec, bundle_entries(spec.code), S3Store(boto3.client("s3")), PLACEMENT,
                     cache=HashCache(str(tmp_path / "hashes.json")))

    first = staged()
    assert first.input_uris["data"].endswith("/") and first.spec.inputs[0].s3_data_type == "S3Prefix"
    (tmp_path / "data" / "part-00" / "new.txt").write_text("new\n")
    aws.clear_log()
    second = staged()
    ops = aws.operations("s3")
    # one request a copy; a HEAD only of the tree's marker, a GET of the blobs' generation object
    assert ops.count("CopyObject") == 120 and ops.count("HeadObject") == 1 and ops.count("GetObject") == 1, ops
    puts = sorted(r.key for r in aws.s3_uploads())
    assert len(puts) == 2 and any(key.endswith("/part-00/new.txt") for key in puts)  # the file, the marker
    assert second.input_uris["data"] != first.input_uris["data"]


def test_script_mode_ships_one_archive_built_again_only_when_a_file_changed(
        aws: Any, bucket: None, clean_environment: Path, tmp_path: Path) -> None:
    project = _project(tmp_path, code_files=20)

    def staged() -> Any:
        decl, opts, parser = prepare("training", None, {}, {}, None, None, None, None, str(project / "job.py"),
                                     {}, {})
        ns = parser.parse_args(["--sagemaker-entry=toolkit", "--sagemaker-image=sklearn:1.2-1"])
        opts = type(opts).from_namespace(ns)
        spec = plan_job(decl, ns, opts, user_arguments([], decl, opts), now=NOW, token="c0st")
        return stage(spec, bundle_entries(spec.code), S3Store(boto3.client("s3")), PLACEMENT,
                     cache=HashCache(str(tmp_path / "hashes.json")))

    archives = clean_environment / "cache" / "archives.txt"

    def builds() -> int:
        return len(archives.read_text().splitlines())

    first = staged()
    assert builds() == 1
    puts = [r.key for r in aws.s3_uploads()]
    # the archive alone: the code's files do not travel one by one in script mode
    assert puts == [first.code_uri.split("/", 3)[3]], puts
    assert [u.uri for u in first.uploads] == [first.code_uri]

    aws.clear_log()
    assert staged().code_uri == first.code_uri
    assert builds() == 1  # nothing changed: not archived (nor read) again
    assert aws.operations("s3") == ["GetObject"] and not aws.s3_uploads()

    os.utime(project / "lib" / "mod003.py")  # touched, same bytes: archived again, to the same address
    aws.clear_log()
    assert staged().code_uri == first.code_uri
    assert builds() == 2 and not aws.s3_uploads()

    changed = project / "lib" / "mod003.py"
    changed.write_text(changed.read_text() + "# edited\n")
    aws.clear_log()
    third = staged()
    assert builds() == 3 and third.code_uri != first.code_uri
    assert [r.key for r in aws.s3_uploads()] == [third.code_uri.split("/", 3)[3]]


def _delete_blob(name: str) -> str:
    """Delete one blob as ``clean`` does on another machine: the object, then a new generation."""
    from aws_sagemaker_remote.clean import S3Place

    s3 = boto3.client("s3")
    s3.delete_object(Bucket=BUCKET, Key=f"pre/cas/sha256/{name}")
    S3Place(s3, BUCKET, "pre").new_generation()
    return name


def test_a_blob_deleted_by_clean_elsewhere_is_sent_again(aws: Any, bucket: None, tmp_path: Path) -> None:
    _project(tmp_path, code_files=2, input_files=5)
    _stage(tmp_path, with_input=True)
    data = (tmp_path / "data" / "part-00" / "row-00003.txt").read_bytes()
    blob = _delete_blob(hashlib.sha256(data).hexdigest())
    aws.clear_log()
    _stage(tmp_path, with_input=True)
    ops, sent, puts = _sent(aws)
    assert puts == {f"pre/cas/sha256/{blob}": len(data)}, puts
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=f"pre/cas/sha256/{blob}")["Body"].read()
    assert body == data
    aws.clear_log()
    _stage(tmp_path, with_input=True)
    assert aws.operations("s3") == ["GetObject"]  # the index holds again, at the new generation


def test_the_blob_index_is_checked_again_after_a_day(aws: Any, bucket: None, clean_environment: Path,
                                                    tmp_path: Path) -> None:
    from aws_sagemaker_remote.stage import INDEX_MAX_AGE

    _project(tmp_path, code_files=2, input_files=5)
    _stage(tmp_path, with_input=True)
    data = (tmp_path / "data" / "part-00" / "row-00002.txt").read_bytes()
    blob = hashlib.sha256(data).hexdigest()
    # removed behind the generation's back (a lifecycle rule, a manual delete)
    boto3.client("s3").delete_object(Bucket=BUCKET, Key=f"pre/cas/sha256/{blob}")
    (index,) = (clean_environment / "cache").glob("blobs-s3-*.txt")
    head, rest = index.read_text().split("\n", 1)
    word, generation, since = head.split()
    index.write_text(f"{word} {generation} {float(since) - INDEX_MAX_AGE - 1}\n{rest}")
    aws.clear_log()
    _stage(tmp_path, with_input=True)
    assert _sent(aws)[2] == {f"pre/cas/sha256/{blob}": len(data)}


def test_the_blob_index_belongs_to_one_endpoint(aws: Any, bucket: None, tmp_path: Path) -> None:
    from aws_sagemaker_remote.stage import BlobIndex, store_place

    here = S3Store(boto3.client("s3"))
    there = S3Store(boto3.client("s3", endpoint_url="http://127.0.0.2:1"))
    assert BlobIndex("s3", BUCKET, "pre", where=store_place(here)).path != \
        BlobIndex("s3", BUCKET, "pre", where=store_place(there)).path


def test_a_few_new_blobs_cost_a_head_each_whatever_the_bucket_holds(aws: Any, bucket: None,
                                                                      tmp_path: Path) -> None:
    project = _project(tmp_path, code_files=2, input_files=10)
    _stage(tmp_path, with_input=True)
    s3 = boto3.client("s3")
    for i in range(2500):  # blobs of other projects and earlier versions under the same prefix
        s3.put_object(Bucket=BUCKET, Key="pre/cas/sha256/" + hashlib.sha256(b"other %d" % i).hexdigest(), Body=b"x")
    (project / "job.py").write_text("print('job 2')\n")
    aws.clear_log()
    _stage(tmp_path, with_input=True)
    ops, sent, puts = _sent(aws)
    assert "ListObjectsV2" not in ops and ops.count("HeadObject") == 1 and len(ops) == 5, ops
    assert len(puts) == 3 and sent < 16 * 1024, (puts, sent)  # the file, the code manifest, its channel


WARM_SCRIPT = '''
from aws_sagemaker_remote import sagemaker_processing_main


def main(args):
    return 0


if __name__ == "__main__":
    sagemaker_processing_main(main, inputs={}, outputs={})
'''


def test_a_warm_launch_sends_three_requests(aws: Any, run_script: Any, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    script = project / "job.py"
    script.write_text(WARM_SCRIPT)
    flags = ["--sagemaker-run=yes", "--sagemaker-wait=no", "--sagemaker-role", "arn:aws:iam::123456789012:role/R",
             "--sagemaker-image", "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1", "--sagemaker-bucket",
             "warm-bucket"]
    first = run_script(script, *flags, cwd=project)
    assert first.returncode == 0, first.stderr
    # a first launch reads the generation object, finds no bucket, checks it and makes it; then
    # it only writes: nothing can be stored in a bucket it just made, so nothing is looked up
    ops = aws.operations("s3")
    assert ops[:3] == ["GetObject", "HeadBucket", "CreateBucket"], ops
    assert ops[3:] and set(ops[3:]) == {"PutObject"}, ops
    aws.clear_log()
    again = run_script(script, *flags, cwd=project)
    assert again.returncode == 0, again.stderr
    # the generation object (its NoSuchKey proves the bucket too), the job, and its launch record
    assert aws.operations("s3") == ["GetObject", "PutObject"]
    assert aws.operations("sagemaker") == ["CreateProcessingJob"]
    assert aws.operations("sts") == [] and aws.operations("iam") == [] and aws.operations("logs") == []


def test_a_bucket_deleted_and_made_again_gets_every_blob_again(aws: Any, run_script: Any, tmp_path: Path) -> None:
    """The local index remembers the blobs of the first bucket; the launch that makes the
    bucket again must not trust it, or the job would be handed a manifest of missing blobs."""
    project = tmp_path / "project"
    project.mkdir()
    script = project / "job.py"
    script.write_text(WARM_SCRIPT)
    (project / "helper.py").write_text("VALUE = 1\n")
    flags = ["--sagemaker-run=yes", "--sagemaker-wait=no", "--sagemaker-role", "arn:aws:iam::123456789012:role/R",
             "--sagemaker-image", "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1", "--sagemaker-bucket",
             "gone-bucket"]
    assert run_script(script, *flags, cwd=project).returncode == 0
    s3 = boto3.client("s3")
    first = {o["Key"] for o in s3.list_objects_v2(Bucket="gone-bucket")["Contents"]}
    for key in first:
        s3.delete_object(Bucket="gone-bucket", Key=key)
    s3.delete_bucket(Bucket="gone-bucket")
    aws.clear_log()
    again = run_script(script, *flags, cwd=project)
    assert again.returncode == 0, again.stderr
    (create,) = aws.json_bodies("CreateProcessingJob")
    code = create["ProcessingInputs"][0]["S3Input"]["S3Uri"]
    manifest = json.loads(s3.get_object(Bucket="gone-bucket", Key=code.split("/", 3)[3])["Body"].read())
    stored = {o["Key"] for o in s3.list_objects_v2(Bucket="gone-bucket")["Contents"]}
    prefix = manifest[0]["prefix"].split("/", 3)[3]
    missing = [name for name in manifest[1:] if prefix + name not in stored]
    assert len(manifest) > 3 and not missing, missing
