"""The local backend runs real rendered-shape requests: real bundles, real processes, a LocalStore.

Each test builds a tiny project, packs it with ``build_bundle``, puts it in a
``LocalStore`` and hands the backend a request shaped like ``render`` builds
(checked against botocore's service model). Assertions are on the store's
objects, the job's statuses and its log lines.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

import botocore.session
import pytest
from botocore.validate import validate_parameters

from aws_sagemaker_remote.backends.base import Backend, LogCursor, LogEvent
from aws_sagemaker_remote.backends.local import KEEP_ENV, LocalBackend
from aws_sagemaker_remote.backends.sagemaker import SageMakerBackend
from aws_sagemaker_remote.bundle import Bundle
from aws_sagemaker_remote.container import DEFAULT as PATHS
from aws_sagemaker_remote.errors import AwsError, JobExists, JobNotFound
from aws_sagemaker_remote.render import ENTRYPOINT
from aws_sagemaker_remote.store import LocalStore

#: the code manifest's name in the code channel of these hand-made requests
CODE_ENTRY = "code.json"
BUCKET = "bucket"
JOB_TIMEOUT = 30.0

_MODEL = botocore.session.get_session().get_service_model("sagemaker")


def check_request(operation: str, request: Dict[str, Any]) -> Dict[str, Any]:
    """Hand-built requests are valid SageMaker requests, like the ones render builds."""
    validate_parameters(request, _MODEL.operation_model(operation).input_shape)
    return request


# --- fixtures and builders ---------------------------------------------------------------------



PutCode = Callable[..., str]


@pytest.fixture
def put_code(make_bundle: Callable[..., Bundle], store: LocalStore) -> PutCode:
    """``put_code(kind, script, **code)``: bundle a one-file project the way staging does, put it in
    the store, and return the bundle's S3 URI (``code``: see the ``make_bundle`` fixture)."""

    def put(kind: str, script: str, **code: Any) -> str:
        bundle = make_bundle(script, kind, **code)
        uri = f"s3://{BUCKET}/code/{bundle.sha256}/"
        # the code's blobs, and its manifest under a fixed name the container arguments give
        folder = os.path.dirname(bundle.path)
        for name in os.listdir(folder):
            target = CODE_ENTRY if name == bundle.sha256 else name
            store.upload_file(os.path.join(folder, name), uri + target)
        return uri

    return put


def container_arguments(kind: str, args: Sequence[str]) -> List[str]:
    return [PATHS.code_dir(kind) + "/" + CODE_ENTRY, PATHS.unpacked_code] + list(args)


def processing_input(name: str, uri: str, *, distribution: str = "FullyReplicated", data_type: str = "S3Prefix",
                     compression: str = "None", mode: str = "File") -> Dict[str, Any]:
    return {"InputName": name, "S3Input": {
        "S3Uri": uri, "LocalPath": PATHS.processing_input(name), "S3DataType": data_type,
        "S3InputMode": mode, "S3DataDistributionType": distribution, "S3CompressionType": compression}}


def processing_request(name: str, code_uri: str, args: Sequence[str] = (), *,
                       inputs: Iterable[Dict[str, Any]] = (), outputs: Optional[Dict[str, str]] = None,
                       instance_count: int = 1, max_run: int = 600,
                       environment: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    request: Dict[str, Any] = {
        "ProcessingJobName": name,
        "ProcessingInputs": [processing_input("code", code_uri)] + list(inputs),
        "ProcessingResources": {"ClusterConfig": {
            "InstanceCount": instance_count, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_run},
        "AppSpecification": {
            "ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/image:latest",
            "ContainerEntrypoint": list(ENTRYPOINT),
            "ContainerArguments": container_arguments("processing", args),
        },
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
    }
    if outputs:
        request["ProcessingOutputConfig"] = {"Outputs": [
            {"OutputName": out, "S3Output": {"S3Uri": uri, "LocalPath": PATHS.processing_output(out),
                                             "S3UploadMode": "EndOfJob"}}
            for out, uri in outputs.items()]}
    if environment:
        request["Environment"] = environment
    return check_request("CreateProcessingJob", request)


def channel(name: str, uri: str, *, distribution: str = "FullyReplicated", mode: str = "File") -> Dict[str, Any]:
    return {"ChannelName": name, "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": distribution}},
        "CompressionType": "None", "InputMode": mode}


def training_request(name: str, code_uri: str, args: Sequence[str] = (), *,
                     channels: Iterable[Dict[str, Any]] = (), metrics: Optional[Dict[str, str]] = None,
                     checkpoint_uri: Optional[str] = None, hyperparameters: Optional[Dict[str, str]] = None,
                     instance_count: int = 1, max_run: int = 600) -> Dict[str, Any]:
    algorithm: Dict[str, Any] = {
        "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/image:latest",
        "TrainingInputMode": "File",
        "ContainerEntrypoint": list(ENTRYPOINT),
        "ContainerArguments": container_arguments("training", args),
    }
    if metrics:
        algorithm["MetricDefinitions"] = [{"Name": n, "Regex": r} for n, r in metrics.items()]
    request: Dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": algorithm,
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        "InputDataConfig": [channel("code", code_uri)] + list(channels),
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": instance_count, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_run},
    }
    if hyperparameters:
        request["HyperParameters"] = hyperparameters
    if checkpoint_uri:
        request["CheckpointConfig"] = {"S3Uri": checkpoint_uri, "LocalPath": PATHS.checkpoints}
    return check_request("CreateTrainingJob", request)


class ManualClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def wait_until_done(backend: LocalBackend, kind: str, name: str, timeout: float = JOB_TIMEOUT) -> Dict[str, Any]:
    """The job's description once it shows a final status (which the backend publishes after cleaning up)."""
    key = "ProcessingJobStatus" if kind == "processing" else "TrainingJobStatus"
    deadline = time.monotonic() + timeout
    while True:
        described = backend.describe(kind, name)
        if described[key] in ("Completed", "Failed", "Stopped"):
            return described
        if time.monotonic() > deadline:
            raise AssertionError(f"{kind} job {name} still {described[key]} after {timeout} s")
        time.sleep(0.02)


def run_job(backend: LocalBackend, kind: str, request: Dict[str, Any]) -> Dict[str, Any]:
    name = request["ProcessingJobName" if kind == "processing" else "TrainingJobName"]
    backend.create(kind, request)
    return wait_until_done(backend, kind, name)


def all_events(backend: LocalBackend, kind: str, name: str) -> List[LogEvent]:
    return backend.logs(kind, name, LogCursor.start())


def messages(backend: LocalBackend, kind: str, name: str) -> List[str]:
    return [e.message for e in all_events(backend, kind, name)]


def objects(store: LocalStore, prefix: str) -> Dict[str, bytes]:
    """Relative key → content of every object under ``prefix``."""
    return {uri[len(prefix):]: store.get_bytes(uri) for uri, _ in store.list(prefix)}


def tar_members(data: bytes) -> Dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def alive(pid: int) -> bool:
    """True while ``pid`` is a running (not zombie) process."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def wait_for_line(backend: LocalBackend, kind: str, name: str, needle: str, timeout: float = 15.0,
                  count: int = 1) -> List[str]:
    """The job's log lines once ``count`` of them contain ``needle``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = messages(backend, kind, name)
        if sum(1 for line in lines if needle in line) >= count:
            return lines
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} never appeared in the logs: {messages(backend, kind, name)}")


# --- processing ----------------------------------------------------------------------------------

COPY_SCRIPT = """
    import argparse, json, os
    parser = argparse.ArgumentParser()
    parser.add_argument("--input")
    parser.add_argument("--output")
    parser.add_argument("--sagemaker-run")
    args = parser.parse_args()
    for root, _, files in os.walk(args.input):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), args.input)
            os.makedirs(os.path.dirname(os.path.join(args.output, rel)) or args.output, exist_ok=True)
            with open(os.path.join(root, name)) as src, open(os.path.join(args.output, rel), "w") as dst:
                dst.write(src.read().upper())
            print("copied", rel)
    with open(os.path.join(os.environ.get("AWS_SAGEMAKER_REMOTE_OPT_ML", "/opt/ml"), "config", "processingjobconfig.json")) as fh:
        config = json.load(fh)
    with open(os.path.join(args.output, "job.txt"), "w") as fh:
        fh.write(config["ProcessingJobName"] + " " + config["ProcessingJobArn"])
"""


def test_processing_downloads_inputs_runs_the_script_and_uploads_outputs(
        put_code: PutCode, store: LocalStore, backend: LocalBackend, workdir: Path) -> None:
    store.put_bytes(b"alpha", f"s3://{BUCKET}/data/raw/a.txt")
    store.put_bytes(b"beta", f"s3://{BUCKET}/data/raw/sub/b.txt")
    code = put_code("processing", COPY_SCRIPT)
    request = processing_request(
        "copy-job", code,
        ["--sagemaker-run=no", "--input=/opt/ml/processing/input/input", "--output",
         "/opt/ml/processing/output/output"],
        inputs=[processing_input("input", f"s3://{BUCKET}/data/raw/")],
        outputs={"output": f"s3://{BUCKET}/results/clean"})

    backend.create("processing", request)
    assert backend.describe("processing", "copy-job")["ProcessingJobStatus"] in ("InProgress", "Completed")
    described = wait_until_done(backend, "processing", "copy-job")

    assert described["ProcessingJobStatus"] == "Completed", described.get("FailureReason")
    assert described["ProcessingJobArn"] == "arn:aws:sagemaker:us-east-1:000000000000:processing-job/copy-job"
    assert described["ProcessingEndTime"] >= described["ProcessingStartTime"] >= described["CreationTime"]
    assert described["ProcessingInputs"] == request["ProcessingInputs"]
    assert "FailureReason" not in described
    uploaded = objects(store, f"s3://{BUCKET}/results/clean/")
    assert uploaded["a.txt"] == b"ALPHA"
    assert uploaded["sub/b.txt"] == b"BETA"
    assert uploaded["job.txt"].decode().startswith("copy-job arn:aws:sagemaker:")
    events = all_events(backend, "processing", "copy-job")
    assert {e.host for e in events} == {"algo-1"}
    assert "copied a.txt" in [e.message for e in events]
    assert [e.timestamp for e in events] == sorted(e.timestamp for e in events)
    # temporary container folders are gone
    assert list(workdir.iterdir()) == []


def test_logs_are_returned_once_in_order(put_code: PutCode, backend: LocalBackend) -> None:
    code = put_code("processing", """
        for i in range(5):
            print("line", i)
    """)
    backend.create("processing", processing_request("log-job", code))
    cursor = LogCursor.start()
    seen: List[str] = []
    while backend.describe("processing", "log-job")["ProcessingJobStatus"] == "InProgress":
        seen += [e.message for e in backend.logs("processing", "log-job", cursor)]
        time.sleep(0.02)
    seen += [e.message for e in backend.logs("processing", "log-job", cursor)]
    assert [m for m in seen if m.startswith("line")] == [f"line {i}" for i in range(5)]
    assert backend.logs("processing", "log-job", cursor) == []


def test_script_failure_fails_the_job_with_the_failure_file_text(
        put_code: PutCode, store: LocalStore, backend: LocalBackend) -> None:
    code = put_code("processing", """
        def load():
            raise ValueError("the input folder is empty")
        load()
    """)
    described = run_job(backend, "processing", processing_request(
        "fail-job", code, outputs={"output": f"s3://{BUCKET}/results/fail"}))

    assert described["ProcessingJobStatus"] == "Failed"
    assert "script job.py exited with code 1: ValueError: the input folder is empty" in described["FailureReason"]
    assert "ValueError: the input folder is empty" in described["ExitMessage"]
    lines = messages(backend, "processing", "fail-job")
    assert "Traceback (most recent call last):" in lines
    assert any('raise ValueError("the input folder is empty")' in line for line in lines)
    assert objects(store, f"s3://{BUCKET}/results/fail/") == {}


def test_output_and_traceback_reach_the_logs_in_the_order_they_were_written(
        put_code: PutCode, backend: LocalBackend) -> None:
    code = put_code("processing", """
        import sys
        for i in range(200):
            print("step", i)
            sys.stderr.write(f"warning {i}\\n")
        def load():
            raise ValueError("bad row 7")
        load()
    """)
    described = run_job(backend, "processing", processing_request("ordered", code))

    assert described["ProcessingJobStatus"] == "Failed"
    assert described["FailureReason"] == "AlgorithmError: script job.py exited with code 1: ValueError: bad row 7"
    lines = messages(backend, "processing", "ordered")
    first = lines.index("step 0")
    assert lines[first:first + 400] == [line for i in range(200) for line in (f"step {i}", f"warning {i}")]
    assert lines[first + 400] == "Traceback (most recent call last):"
    assert lines.index("ValueError: bad row 7") > first + 400


def test_exit_code_without_failure_file(backend: LocalBackend) -> None:
    request = processing_request("raw-exit", "s3://bucket/unused/")
    request["ProcessingInputs"] = []
    request["AppSpecification"]["ContainerEntrypoint"] = ["python3", "-c", "import sys; sys.exit(4)"]
    request["AppSpecification"].pop("ContainerArguments")
    described = run_job(backend, "processing", request)
    assert described["ProcessingJobStatus"] == "Failed"
    assert described["FailureReason"] == "AlgorithmError: Exit code 4"


def test_configuration_script_and_command_exports_reach_the_script(
        put_code: PutCode, backend: LocalBackend) -> None:
    code = put_code(
        "processing",
        """
        import os
        print("seen", os.environ.get("FROM_SCRIPT"), os.environ.get("FROM_COMMAND"))
        """,
        configuration_script="export FROM_SCRIPT=alpha\necho script-configured\n",
        configuration_command="export FROM_COMMAND=beta && echo command-configured")
    described = run_job(backend, "processing", processing_request("config-job", code))

    assert described["ProcessingJobStatus"] == "Completed", described.get("FailureReason")
    lines = messages(backend, "processing", "config-job")
    assert "script-configured" in lines and "command-configured" in lines
    assert "seen alpha beta" in lines


@pytest.mark.parametrize("script, command, expected", [
    (None, "echo before && exit 3", "configuration command failed with exit code 3"),
    ("echo in-script\nfalse\necho never\n", None, "configuration script config/setup.sh failed with exit code 1"),
])
def test_failing_configuration_fails_the_job_before_the_script(
        put_code: PutCode, backend: LocalBackend, script: Optional[str],
        command: Optional[str], expected: str) -> None:
    code = put_code("processing", "print('script ran')\n",
                    configuration_script=script, configuration_command=command)
    described = run_job(backend, "processing", processing_request("bad-config", code))

    assert described["ProcessingJobStatus"] == "Failed"
    assert expected in described["FailureReason"]
    lines = messages(backend, "processing", "bad-config")
    assert "script ran" not in lines and "never" not in lines


def test_requirements_file_is_installed_before_the_script(
        put_code: PutCode, backend: LocalBackend) -> None:
    code = put_code("processing", "print('script ran')\n",
                    requirements="# nothing to install\n")
    described = run_job(backend, "processing", processing_request("req-job", code))
    assert described["ProcessingJobStatus"] == "Completed", described.get("FailureReason")
    lines = messages(backend, "processing", "req-job")
    # "installing requirements/requirements.txt", "... with uv" when uv does it
    installing = next(i for i, line in enumerate(lines)
                      if line.startswith("aws_sagemaker_remote: installing requirements/requirements.txt"))
    assert installing < lines.index("script ran")


def test_failing_requirements_fail_the_job_with_pips_error(
        put_code: PutCode, backend: LocalBackend) -> None:
    code = put_code("processing", "print('script ran')\n",
                    requirements="--no-index\nnot-a-real-package-for-tests==1.0\n")
    described = run_job(backend, "processing", processing_request("bad-req", code))
    assert described["ProcessingJobStatus"] == "Failed"
    reason = described["FailureReason"]
    assert "pip install -r requirements/requirements.txt failed with exit code 1" in reason
    assert "not-a-real-package-for-tests" in reason
    assert "script ran" not in messages(backend, "processing", "bad-req")


SHARD_SCRIPT = """
    import json, os, sys
    root = os.environ.get("AWS_SAGEMAKER_REMOTE_OPT_ML", "/opt/ml")
    with open(os.path.join(root, "config", "resourceconfig.json")) as fh:
        resource = json.load(fh)
    shard = sorted(os.listdir(os.path.join(root, "processing", "input", "shards")))
    everything = sorted(os.listdir(os.path.join(root, "processing", "input", "all")))
    out = os.path.join(root, "processing", "output", "report")
    with open(os.path.join(out, resource["current_host"] + ".json"), "w") as fh:
        json.dump({"resource": resource, "shard": shard, "all": everything}, fh)
    print("host", resource["current_host"], "has", len(shard))
"""


def test_three_instances_get_distinct_shards_and_their_own_resource_config(
        put_code: PutCode, store: LocalStore, backend: LocalBackend) -> None:
    names = [f"part-{i:02d}.csv" for i in range(7)]
    for name in names:
        store.put_bytes(name.encode(), f"s3://{BUCKET}/shards/{name}")
    store.put_bytes(b"x", f"s3://{BUCKET}/lookup/table.csv")
    code = put_code("processing", SHARD_SCRIPT)
    described = run_job(backend, "processing", processing_request(
        "shard-job", code, instance_count=3,
        inputs=[processing_input("shards", f"s3://{BUCKET}/shards/", distribution="ShardedByS3Key"),
                processing_input("all", f"s3://{BUCKET}/lookup/")],
        outputs={"report": f"s3://{BUCKET}/reports"}))

    assert described["ProcessingJobStatus"] == "Completed", described.get("FailureReason")
    reports = {k: json.loads(v) for k, v in objects(store, f"s3://{BUCKET}/reports/").items()}
    assert sorted(reports) == ["algo-1.json", "algo-2.json", "algo-3.json"]
    for i in range(3):
        report = reports[f"algo-{i + 1}.json"]
        assert report["resource"] == {"current_host": f"algo-{i + 1}", "hosts": ["algo-1", "algo-2", "algo-3"]}
        assert report["shard"] == names[i::3]
        assert report["all"] == ["table.csv"]
    events = all_events(backend, "processing", "shard-job")
    by_host = {e.host: e.message for e in events if e.message.startswith("host ")}
    assert by_host == {"algo-1": "host algo-1 has 3", "algo-2": "host algo-2 has 2", "algo-3": "host algo-3 has 2"}


def test_manifest_file_and_gzip_inputs(put_code: PutCode, store: LocalStore, backend: LocalBackend) -> None:
    store.put_bytes(gzip.compress(b"first"), f"s3://{BUCKET}/pool/one.txt.gz")
    store.put_bytes(gzip.compress(b"second"), f"s3://{BUCKET}/pool/deep/two.txt.gz")
    store.put_bytes(gzip.compress(b"skipped"), f"s3://{BUCKET}/pool/three.txt.gz")
    manifest = [{"prefix": f"s3://{BUCKET}/pool/"}, "one.txt.gz", "deep/two.txt.gz"]
    store.put_bytes(json.dumps(manifest).encode(), f"s3://{BUCKET}/manifests/input.json")
    code = put_code("processing", """
        import os
        root = os.path.join(os.environ.get("AWS_SAGEMAKER_REMOTE_OPT_ML", "/opt/ml"), "processing", "input")
        print("folder", sorted(os.listdir(root)))
        with open(os.path.join(root, "picked_0"), "rb") as fh:
            print("stream", fh.read().decode())
    """)
    described = run_job(backend, "processing", processing_request(
        "manifest-job", code,
        inputs=[processing_input("picked", f"s3://{BUCKET}/manifests/input.json", data_type="ManifestFile",
                                 compression="Gzip", mode="Pipe")]))
    assert described["ProcessingJobStatus"] == "Completed", described.get("FailureReason")
    # Pipe mode: one FIFO, the manifest's objects decompressed and back to back, in the manifest's order
    lines = [line for line in messages(backend, "processing", "manifest-job") if line.startswith(("folder", "stream"))]
    assert lines == ["folder ['code', 'picked_0']", "stream firstsecond"]


def test_missing_manifest_fails_with_a_client_error(put_code: PutCode, backend: LocalBackend) -> None:
    code = put_code("processing", "print('script ran')\n")
    described = run_job(backend, "processing", processing_request(
        "no-manifest", code,
        inputs=[processing_input("picked", f"s3://{BUCKET}/missing.json", data_type="ManifestFile")]))
    assert described["ProcessingJobStatus"] == "Failed"
    assert described["FailureReason"].startswith("ClientError: cannot read input s3://bucket/missing.json")


def no_objects_reason(uri: str, *, region: str = "us-east-1", manifest: bool = False) -> str:
    where = "in the manifest file" if manifest else "under S3 URL"
    return (f'ClientError: No S3 objects found {where} "{uri}" given in input data source. Please ensure that '
            f"the bucket exists in the selected region ({region}), that objects exist under that S3 prefix, and "
            f'that the role "arn:aws:iam::123456789012:role/SageMakerRole" has "s3:ListBucket" permissions on '
            f'bucket "{uri[5:].split("/", 1)[0]}".')


@pytest.mark.parametrize("uri", [f"s3://{BUCKET}/empty/", "s3://no-such-bucket/data/"])
def test_an_input_with_no_objects_fails_the_job_before_the_script_runs(
        put_code: PutCode, store: LocalStore, backend: LocalBackend, uri: str) -> None:
    store.put_bytes(b"x", f"s3://{BUCKET}/elsewhere/a.txt")
    code = put_code("processing", "print('script ran')\n")
    described = run_job(backend, "processing", processing_request(
        "empty-input", code, inputs=[processing_input("input", uri)],
        outputs={"output": f"s3://{BUCKET}/results/empty"}))

    assert described["ProcessingJobStatus"] == "Failed"
    assert described["FailureReason"] == no_objects_reason(uri)
    assert "script ran" not in messages(backend, "processing", "empty-input")
    assert "ProcessingStartTime" not in described
    assert objects(store, f"s3://{BUCKET}/results/") == {}


def test_a_manifest_that_lists_no_objects_fails_the_job(put_code: PutCode, store: LocalStore,
                                                        backend: LocalBackend) -> None:
    store.put_bytes(json.dumps([{"prefix": f"s3://{BUCKET}/pool/"}]).encode(), f"s3://{BUCKET}/manifests/none.json")
    code = put_code("processing", "print('script ran')\n")
    described = run_job(backend, "processing", processing_request(
        "empty-manifest", code,
        inputs=[processing_input("picked", f"s3://{BUCKET}/manifests/none.json", data_type="ManifestFile")]))

    assert described["ProcessingJobStatus"] == "Failed"
    assert described["FailureReason"] == no_objects_reason(f"s3://{BUCKET}/manifests/none.json", manifest=True)
    assert "script ran" not in messages(backend, "processing", "empty-manifest")


def test_an_empty_training_channel_fails_the_job_in_the_backends_region(
        put_code: PutCode, store: LocalStore, workdir: Path) -> None:
    backend = LocalBackend(store, workdir=str(workdir), region="eu-west-1")
    code = put_code("training", "print('script ran')\n")
    described = run_job(backend, "training", training_request(
        "empty-channel", code, channels=[channel("train", f"s3://{BUCKET}/train/")]))

    assert described["TrainingJobStatus"] == "Failed"
    assert described["SecondaryStatus"] == "Failed"
    assert described["FailureReason"] == no_objects_reason(f"s3://{BUCKET}/train/", region="eu-west-1")
    assert described["TrainingJobArn"] == "arn:aws:sagemaker:eu-west-1:000000000000:training-job/empty-channel"
    assert "script ran" not in messages(backend, "training", "empty-channel")


SLEEP_SCRIPT = """
    import os, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    print("pids", os.getpid(), child.pid, flush=True)
    print("sleeping", flush=True)
    time.sleep(60)
"""


def test_stop_ends_a_sleeping_job_stopped_and_leaves_no_process(
        put_code: PutCode, store: LocalStore, workdir: Path) -> None:
    # The clock never moves, so the grace period never ends: SIGTERM alone must stop the job.
    backend = LocalBackend(store, workdir=str(workdir), stop_grace=5.0, clock=ManualClock())
    code = put_code("processing", SLEEP_SCRIPT)
    backend.create("processing", processing_request("sleepy", code, instance_count=2))
    lines = wait_for_line(backend, "processing", "sleepy", "sleeping", count=2)
    pids = [int(p) for line in lines if line.startswith("pids ")
            for p in line.split()[1:]]
    assert len(pids) == 4

    backend.stop("processing", "sleepy")
    assert backend.describe("processing", "sleepy")["ProcessingJobStatus"] in ("Stopping", "Stopped")
    described = wait_until_done(backend, "processing", "sleepy")

    assert described["ProcessingJobStatus"] == "Stopped"
    assert "FailureReason" not in described  # a stop asked for is not a failure
    # the bootstrap forwarded SIGTERM to the script, which died of it; both instances' messages are kept
    assert described["ExitMessage"] == "script job.py was stopped by SIGTERM\nscript job.py was stopped by SIGTERM"
    deadline = time.monotonic() + 2
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [pid for pid in pids if alive(pid)] == []
    backend.stop("processing", "sleepy")  # stopping a finished job changes nothing
    assert backend.describe("processing", "sleepy")["ProcessingJobStatus"] == "Stopped"


def test_a_process_that_ignores_sigterm_is_killed_when_the_grace_period_ends(
        put_code: PutCode, store: LocalStore, workdir: Path) -> None:
    clock = ManualClock()
    backend = LocalBackend(store, workdir=str(workdir), stop_grace=30.0, clock=clock)
    code = put_code("processing", """
        import signal, time
        signal.signal(signal.SIGTERM, lambda signum, frame: print("ignoring SIGTERM", flush=True))
        print("sleeping", flush=True)
        time.sleep(60)
    """)
    backend.create("processing", processing_request("stubborn", code))
    wait_for_line(backend, "processing", "stubborn", "sleeping")

    backend.stop("processing", "stubborn")
    wait_for_line(backend, "processing", "stubborn", "ignoring SIGTERM")
    time.sleep(0.3)  # real time passes, the injected clock does not: no SIGKILL yet
    assert backend.describe("processing", "stubborn")["ProcessingJobStatus"] == "Stopping"

    clock.advance(31)
    described = wait_until_done(backend, "processing", "stubborn")
    assert described["ProcessingJobStatus"] == "Stopped"
    # SIGKILL left the bootstrap no time to write a failure file
    assert "ExitMessage" not in described


def test_max_runtime_stops_the_job(put_code: PutCode, store: LocalStore, workdir: Path) -> None:
    clock = ManualClock()
    backend = LocalBackend(store, workdir=str(workdir), stop_grace=5.0, clock=clock)
    code = put_code("training", "import time\nprint('sleeping', flush=True)\ntime.sleep(60)\n")
    backend.create("training", training_request("too-long", code, max_run=1))
    wait_for_line(backend, "training", "too-long", "sleeping")
    time.sleep(0.3)  # the limit is counted on the injected clock, not in real time
    assert backend.describe("training", "too-long")["TrainingJobStatus"] == "InProgress"

    clock.advance(1.5)
    described = wait_until_done(backend, "training", "too-long")
    assert described["TrainingJobStatus"] == "Stopped"
    assert described["SecondaryStatus"] == "MaxRuntimeExceeded"
    assert described["FailureReason"] == "MaxRuntimeExceeded: the job ran longer than MaxRuntimeInSeconds=1"
    assert [t["Status"] for t in described["SecondaryStatusTransitions"]] == [
        "Starting", "Downloading", "Training", "Uploading", "MaxRuntimeExceeded"]


def test_unknown_and_duplicate_jobs(put_code: PutCode, backend: LocalBackend) -> None:
    with pytest.raises(KeyError):
        backend.describe("processing", "never-created")
    with pytest.raises(JobNotFound) as info:
        backend.logs("training", "never-created", LogCursor.start())
    assert info.value.code == "ValidationException"
    with pytest.raises(JobNotFound):
        backend.stop("training", "never-created")
    code = put_code("processing", "print('hi')\n")
    run_job(backend, "processing", processing_request("once", code))
    with pytest.raises(JobExists):
        backend.create("processing", processing_request("once", code))
    assert backend.console_url("processing", "once") is None


def test_both_backends_offer_everything_the_seam_declares(backend: LocalBackend) -> None:
    sagemaker = SageMakerBackend(None, None, "us-east-1")
    declared = set(Backend.__annotations__) | {n for n in vars(Backend) if not n.startswith("_")}
    assert {"create", "describe", "stop", "logs", "console_url", "outlives_caller"} <= declared
    for candidate in (backend, sagemaker):
        assert sorted(n for n in declared if not hasattr(candidate, n)) == []
    # a local job's processes end with this one; a SageMaker job keeps running
    assert (backend.outlives_caller, sagemaker.outlives_caller) == (False, True)


def test_keep_environment_variable_keeps_the_container_folders(
        put_code: PutCode, backend: LocalBackend, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEEP_ENV, "1")
    code = put_code("processing", "print('hi')\n")
    run_job(backend, "processing", processing_request("kept", code, instance_count=2))
    kept = [folder for folder in workdir.iterdir() if folder.name.startswith("kept-")]
    assert len(kept) == 1
    job_dir = str(kept[0])
    for host in ("algo-1", "algo-2"):
        with open(os.path.join(job_dir, host, "opt", "ml", "config", "resourceconfig.json")) as fh:
            assert json.load(fh)["current_host"] == host
        assert os.path.isfile(os.path.join(job_dir, host, "opt", "ml", "code", "manifest.json"))


# --- training ----------------------------------------------------------------------------------

TRAIN_SCRIPT = """
    import json, os, sys
    env = os.environ
    train = env["SM_CHANNEL_TRAIN"]
    files = sorted(os.listdir(train))
    print("train files", files)
    print("hosts", env["SM_CURRENT_HOST"], env["SM_HOSTS"], env["SM_NUM_GPUS"], env["SM_CHANNELS"])
    print("hp", env["SM_HP_EPOCHS"], env["TRAINING_JOB_NAME"])
    with open(os.path.join(env["SM_INPUT_CONFIG_DIR"], "inputdataconfig.json")) as fh:
        print("modes", json.load(fh)["train"]["TrainingInputMode"])
    ckpt = os.path.join(env.get("AWS_SAGEMAKER_REMOTE_OPT_ML", "/opt/ml"), "checkpoints")
    for arg in sys.argv[1:]:
        if arg.startswith("--checkpoints="):
            ckpt = arg.split("=", 1)[1]
    step_file = os.path.join(ckpt, "step.txt")
    step = int(open(step_file).read()) if os.path.exists(step_file) else 0
    print("resuming from step", step)
    with open(step_file, "w") as fh:
        fh.write(str(step + 1))
    with open(os.path.join(env["SM_MODEL_DIR"], "model.txt"), "w") as fh:
        fh.write("weights for " + ",".join(files))
    os.makedirs(os.path.join(env["SM_OUTPUT_DATA_DIR"], "plots"), exist_ok=True)
    with open(os.path.join(env["SM_OUTPUT_DATA_DIR"], "plots", "summary.txt"), "w") as fh:
        fh.write("summary")
    print("epoch 1 loss: 0.50 accuracy=0.7")
    print("epoch 2 loss: 0.25 accuracy=0.9")
    if env.get("FAIL_AT_END"):
        with open(os.path.join(env["SM_OUTPUT_DIR"], "failure"), "w") as fh:
            fh.write("DivergenceError: loss became NaN")
        sys.exit(2)
"""


def test_training_channels_model_output_checkpoints_and_metrics(
        put_code: PutCode, store: LocalStore, backend: LocalBackend) -> None:
    store.put_bytes(b"1,2", f"s3://{BUCKET}/train/a.csv")
    store.put_bytes(b"3,4", f"s3://{BUCKET}/train/b.csv")
    store.put_bytes(b"1", f"s3://{BUCKET}/checkpoints/run/step.txt")
    code = put_code("training", TRAIN_SCRIPT)
    request = training_request(
        "train-job", code, ["--sagemaker-run=no", "--checkpoints=/opt/ml/checkpoints"],
        channels=[channel("train", f"s3://{BUCKET}/train/", mode="FastFile")],
        metrics={"loss": r"loss: ([0-9.]+)", "accuracy": r"accuracy=([0-9.]+)"},
        checkpoint_uri=f"s3://{BUCKET}/checkpoints/run", hyperparameters={"epochs": "2"})
    described = run_job(backend, "training", request)

    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert described["SecondaryStatus"] == "Completed"
    assert [t["Status"] for t in described["SecondaryStatusTransitions"]] == [
        "Starting", "Downloading", "Training", "Uploading", "Completed"]
    model_uri = f"s3://{BUCKET}/models/train-job/output/model.tar.gz"
    assert described["ModelArtifacts"] == {"S3ModelArtifacts": model_uri}
    assert tar_members(store.get_bytes(model_uri)) == {"model.txt": b"weights for a.csv,b.csv"}
    output = tar_members(store.get_bytes(f"s3://{BUCKET}/models/train-job/output/output.tar.gz"))
    assert output == {"plots/summary.txt": b"summary"}
    assert store.get_bytes(f"s3://{BUCKET}/checkpoints/run/step.txt") == b"2"
    metrics = {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]}
    assert metrics == {"accuracy": 0.9, "loss": 0.25}
    lines = messages(backend, "training", "train-job")
    assert "train files ['a.csv', 'b.csv']" in lines
    assert 'hosts algo-1 ["algo-1"] 0 ["code","train"]' in lines
    assert "hp 2 train-job" in lines
    assert "modes File" in lines  # FastFile channels show as File, as on SageMaker
    assert "resuming from step 1" in lines


def test_an_invalid_metric_regex_is_refused_when_the_job_is_created(put_code: PutCode,
                                                                     backend: LocalBackend) -> None:
    code = put_code("training", "print('loss=1')\n")
    with pytest.raises(AwsError) as info:
        backend.create("training", training_request("bad-metric", code, metrics={"loss": "loss=("}))
    assert info.value.code == "ValidationException"
    assert str(info.value).startswith("MetricDefinitions: metric 'loss': invalid regex 'loss=('")
    with pytest.raises(JobNotFound):
        backend.describe("training", "bad-metric")


def test_training_failure_file_becomes_the_failure_reason_and_checkpoints_are_kept(
        put_code: PutCode, store: LocalStore, backend: LocalBackend) -> None:
    store.put_bytes(b"1,2", f"s3://{BUCKET}/train/a.csv")
    code = put_code("training", TRAIN_SCRIPT)
    request = training_request(
        "train-fail", code, channels=[channel("train", f"s3://{BUCKET}/train/")],
        checkpoint_uri=f"s3://{BUCKET}/checkpoints/failing/", hyperparameters={"epochs": "1"})
    request["Environment"] = {"FAIL_AT_END": "1"}
    described = run_job(backend, "training", check_request("CreateTrainingJob", request))

    assert described["TrainingJobStatus"] == "Failed"
    assert described["SecondaryStatus"] == "Failed"
    assert described["FailureReason"] == "AlgorithmError: DivergenceError: loss became NaN"
    assert "ModelArtifacts" not in described
    assert store.head(f"s3://{BUCKET}/models/train-fail/output/model.tar.gz") is None
    # the checkpoint written before the failure is in S3 for the next attempt
    assert store.get_bytes(f"s3://{BUCKET}/checkpoints/failing/step.txt") == b"1"


def test_training_with_two_instances(put_code: PutCode, store: LocalStore, backend: LocalBackend) -> None:
    for i in range(4):
        store.put_bytes(b"x", f"s3://{BUCKET}/train/{i}.csv")
    code = put_code("training", """
        import json, os
        host = os.environ["SM_CURRENT_HOST"]
        files = sorted(os.listdir(os.environ["SM_CHANNEL_TRAIN"]))
        print("host", host, files, json.loads(os.environ["SM_HOSTS"]))
        with open(os.path.join(os.environ["SM_MODEL_DIR"], host + ".txt"), "w") as fh:
            fh.write(host)
    """)
    described = run_job(backend, "training", training_request(
        "two-hosts", code, instance_count=2,
        channels=[channel("train", f"s3://{BUCKET}/train/", distribution="ShardedByS3Key")]))
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    lines = {e.host: e.message for e in all_events(backend, "training", "two-hosts") if e.message.startswith("host")}
    assert lines == {
        "algo-1": "host algo-1 ['0.csv', '2.csv'] ['algo-1', 'algo-2']",
        "algo-2": "host algo-2 ['1.csv', '3.csv'] ['algo-1', 'algo-2']",
    }
    # the model comes from the first host
    model = tar_members(store.get_bytes(described["ModelArtifacts"]["S3ModelArtifacts"]))
    assert model == {"algo-1.txt": b"algo-1"}


def test_stopped_training_keeps_what_the_script_saved(
        put_code: PutCode, store: LocalStore, backend: LocalBackend) -> None:
    code = put_code("training", """
        import os, signal, sys, time
        def save(signum, frame):
            with open(os.path.join(os.environ["SM_MODEL_DIR"], "partial.txt"), "w") as fh:
                fh.write("saved on " + signal.Signals(signum).name)
            print("saved", flush=True)
            sys.exit(0)
        signal.signal(signal.SIGTERM, save)
        print("training", flush=True)
        time.sleep(60)
    """)
    backend.create("training", training_request("stop-train", code))
    wait_for_line(backend, "training", "stop-train", "training")
    backend.stop("training", "stop-train")
    described = wait_until_done(backend, "training", "stop-train")

    assert described["TrainingJobStatus"] == "Stopped"
    assert described["SecondaryStatus"] == "Stopped"
    assert "Stopping" in [t["Status"] for t in described["SecondaryStatusTransitions"]]
    assert "saved" in messages(backend, "training", "stop-train")
    model = tar_members(store.get_bytes(described["ModelArtifacts"]["S3ModelArtifacts"]))
    assert model == {"partial.txt": b"saved on SIGTERM"}
