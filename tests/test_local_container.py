"""The container contract of local jobs: literal ``/opt/ml`` paths, and the toolkit's variables.

Namespace mode (each instance's folder mounted at ``/opt/ml`` in a private
mount namespace) is checked where this machine allows it; relocation mode is
forced with ``AWS_SAGEMAKER_REMOTE_LOCAL_PATHS=relocate``. The variables the
bootstrap derives are compared with what the installed sagemaker-training
toolkit itself computes, inside the same job, from the same files.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import pytest

from aws_sagemaker_remote.backends.base import LogCursor
from aws_sagemaker_remote.backends.local import LocalBackend, isolation
from aws_sagemaker_remote.container import DEFAULT as PATHS
from aws_sagemaker_remote.leftovers import owned_prefix
from aws_sagemaker_remote.render import ENTRYPOINT
from aws_sagemaker_remote.store import LocalStore

#: the code manifest's name in the code channel of these hand-made requests
CODE_ENTRY = "code.json"
BUCKET = "bucket"
NAMESPACE_SCRIPT = Path(isolation.__file__).with_name("namespace.py")


def _namespaces_work() -> Optional[str]:
    scratch = tempfile.mkdtemp(prefix="aws-sagemaker-remote-probe-test-")
    try:
        return isolation._probe(sys.executable, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


_WHY_NOT = _namespaces_work()
needs_namespaces = pytest.mark.skipif(_WHY_NOT is not None, reason=f"no mount namespaces here: {_WHY_NOT}")


def snapshot(folder: str) -> Dict[str, Any]:
    """Names, kinds and modes of everything directly in ``folder`` (and in its ``ml``), to prove it unchanged."""
    def listing(path: str) -> Any:
        if not os.path.isdir(path):
            return None
        return sorted((name, os.lstat(os.path.join(path, name)).st_mode) for name in os.listdir(path))
    return {"top": listing(folder), "ml": listing(os.path.join(folder, "ml")),
            "mode": os.lstat(folder).st_mode if os.path.exists(folder) else None}


# --- a backend and hand-built requests -----------------------------------------------------------

PutCode = Callable[..., str]


@pytest.fixture
def put_code(make_bundle: Callable[..., Any], store: LocalStore) -> PutCode:
    def put(kind: str, script: str) -> str:
        bundle = make_bundle(script, kind)
        uri = f"s3://{BUCKET}/code/{bundle.sha256}/"
        # the code's blobs, and its manifest under a fixed name the container arguments give
        folder = os.path.dirname(bundle.path)
        for name in os.listdir(folder):
            target = CODE_ENTRY if name == bundle.sha256 else name
            store.upload_file(os.path.join(folder, name), uri + target)
        return uri
    return put


def _channel(name: str, uri: str, mode: str = "File", data_type: str = "S3Prefix") -> Dict[str, Any]:
    return {"ChannelName": name, "DataSource": {"S3DataSource": {
        "S3DataType": data_type, "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}},
        "CompressionType": "None", "InputMode": mode}


def training_request(name: str, code_uri: str, *, channels: Sequence[Dict[str, Any]] = (),
                     hyperparameters: Optional[Dict[str, str]] = None, instance_count: int = 1,
                     volume_gb: int = 30, environment: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    request: Dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/image:latest",
            "TrainingInputMode": "File",
            "ContainerEntrypoint": list(ENTRYPOINT),
            "ContainerArguments": [PATHS.code_dir("training") + "/" + CODE_ENTRY, PATHS.unpacked_code],
        },
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        "InputDataConfig": [_channel("code", code_uri)] + list(channels),
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": instance_count,
                           "VolumeSizeInGB": volume_gb},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }
    if hyperparameters:
        request["HyperParameters"] = hyperparameters
    if environment:
        request["Environment"] = environment
    return request


def processing_request(name: str, code_uri: str, *, instance_count: int = 1,
                       volume_gb: int = 30) -> Dict[str, Any]:
    return {
        "ProcessingJobName": name,
        "ProcessingInputs": [{"InputName": "code", "S3Input": {
            "S3Uri": code_uri, "LocalPath": PATHS.processing_input("code"), "S3DataType": "S3Prefix",
            "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated", "S3CompressionType": "None"}}],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {
            "S3Uri": f"s3://{BUCKET}/out", "LocalPath": PATHS.processing_output("out"),
            "S3UploadMode": "EndOfJob"}}]},
        "ProcessingResources": {"ClusterConfig": {
            "InstanceCount": instance_count, "InstanceType": "ml.m5.large", "VolumeSizeInGB": volume_gb}},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "AppSpecification": {
            "ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/image:latest",
            "ContainerEntrypoint": list(ENTRYPOINT),
            "ContainerArguments": [PATHS.code_dir("processing") + "/" + CODE_ENTRY, PATHS.unpacked_code],
        },
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
    }


def run_job(backend: LocalBackend, kind: str, request: Dict[str, Any], timeout: float = 60) -> Dict[str, Any]:
    name = request["ProcessingJobName" if kind == "processing" else "TrainingJobName"]
    key = "ProcessingJobStatus" if kind == "processing" else "TrainingJobStatus"
    backend.create(kind, request)
    deadline = time.monotonic() + timeout
    while True:
        described = backend.describe(kind, name)
        if described[key] in ("Completed", "Failed", "Stopped"):
            return described
        assert time.monotonic() < deadline, f"{name} still {described[key]}"
        time.sleep(0.02)


def lines_by_host(backend: LocalBackend, kind: str, name: str) -> Dict[str, List[str]]:
    found: Dict[str, List[str]] = {}
    for event in backend.logs(kind, name, LogCursor.start()):
        found.setdefault(event.host, []).append(event.message)
    return found


def tagged(lines: Sequence[str], tag: str) -> Any:
    """The JSON a job printed after ``tag``."""
    hits = [line[len(tag):] for line in lines if line.startswith(tag)]
    assert len(hits) == 1, lines
    return json.loads(hits[0])


# --- literal /opt/ml paths, end to end --------------------------------------------------------------

LITERAL_SCRIPT = """
import json, os
from aws_sagemaker_remote import sagemaker_training_main

BASE = os.environ.get("SAGEMAKER_BASE_DIR", "/opt/ml") if {relocated} else "/opt/ml"

def main(args):
    with open(BASE + "/input/config/hyperparameters.json") as fh:
        hyper = json.load(fh)
    files = sorted(os.listdir(BASE + "/input/data/train"))
    with open(os.path.join(BASE + "/input/data/train", files[0])) as fh:
        first = fh.read().strip()
    print("LITERAL=" + json.dumps({{"epochs": hyper["epochs"], "files": files, "first": first,
                                   "base": os.environ.get("SAGEMAKER_BASE_DIR")}}))
    with open(BASE + "/model/weights.txt", "w") as fh:
        fh.write("epochs=" + hyper["epochs"])

if __name__ == "__main__":
    sagemaker_training_main(main=main, inputs={{"train": {train!r}}},
                            additional_arguments=[{{"dest": "--epochs", "type": int, "default": 1}}])
"""


def _literal_run(tmp_path: Path, run_script: Any, relocated: bool, env: Dict[str, str]) -> Any:
    train = tmp_path / "train"
    train.mkdir()
    (train / "a.csv").write_text("1,2\n")
    (train / "b.csv").write_text("3,4\n")
    script = tmp_path / "literal.py"
    script.write_text(LITERAL_SCRIPT.format(relocated=relocated, train=str(train)))
    done = run_script(script, "--sagemaker-run=local", "--epochs", "4",
                      "--sagemaker-download-model", tmp_path / "model", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    found = [line.split("LITERAL=", 1)[1] for line in done.stdout.splitlines() if "LITERAL=" in line]
    assert len(found) == 1, done.stdout
    assert (tmp_path / "model" / "weights.txt").read_text() == "epochs=4"
    return json.loads(found[0]), done


@needs_namespaces
def test_a_script_reading_literal_opt_ml_paths_runs_locally(tmp_path: Path, run_script: Any) -> None:
    before = snapshot("/opt")
    seen, done = _literal_run(tmp_path, run_script, relocated=False, env={isolation.PATHS_ENV: "auto"})
    assert seen == {"epochs": "4", "files": ["a.csv", "b.csv"], "first": "1,2", "base": None}
    assert "relocated" not in done.stderr
    assert snapshot("/opt") == before  # nothing was created or changed on the host


def test_relocation_mode_names_the_folder_in_sagemaker_base_dir(tmp_path: Path, run_script: Any) -> None:
    seen, done = _literal_run(tmp_path, run_script, relocated=True, env={isolation.PATHS_ENV: "relocate"})
    assert seen["epochs"] == "4" and seen["files"] == ["a.csv", "b.csv"] and seen["first"] == "1,2"
    assert seen["base"].endswith("/algo-1/opt/ml")
    # said once, on stderr
    assert done.stderr.count("relocated under the job folder") == 1, done.stderr


def test_an_unknown_paths_mode_is_refused(store: LocalStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(isolation.PATHS_ENV, "chroot")
    with pytest.raises(ValueError, match="AWS_SAGEMAKER_REMOTE_LOCAL_PATHS must be one of auto, namespace, relocate"):
        LocalBackend(store)


# --- instances are separated ------------------------------------------------------------------------

SEPARATE_SCRIPT = """
import json, os
host = json.load(open("/opt/ml/config/resourceconfig.json"))["current_host"]
out = "/opt/ml/processing/output/out"
with open(os.path.join(out, host + ".txt"), "w") as fh:
    fh.write(host)
import time; time.sleep(0.5)  # both instances are running now
print("SEEN=" + json.dumps({"host": host, "files": sorted(os.listdir(out)),
                            "cwd": os.getcwd(), "root": os.environ.get("AWS_SAGEMAKER_REMOTE_OPT_ML")}))
"""


@needs_namespaces
def test_two_instances_see_only_their_own_opt_ml(put_code: PutCode, store: LocalStore, workdir: Path) -> None:
    before = snapshot("/opt")
    backend = LocalBackend(store, workdir=str(workdir), paths="namespace")
    described = run_job(backend, "processing",
                        processing_request("separate", put_code("processing", SEPARATE_SCRIPT), instance_count=2))
    assert described["ProcessingJobStatus"] == "Completed", described.get("FailureReason")
    lines = lines_by_host(backend, "processing", "separate")
    for host in ("algo-1", "algo-2"):
        seen = tagged(lines[host], "SEEN=")
        assert seen["host"] == host
        assert seen["files"] == [host + ".txt"]
        assert seen["root"] is None  # nothing relocated
    # both files were uploaded: each instance wrote into its own folder on this machine
    assert sorted(uri.rsplit("/", 1)[1] for uri, _ in store.list(f"s3://{BUCKET}/out/")) == ["algo-1.txt",
                                                                                            "algo-2.txt"]
    assert snapshot("/opt") == before


@needs_namespaces
def test_the_job_folder_is_hidden_from_the_instances(put_code: PutCode, store: LocalStore, workdir: Path) -> None:
    script = """
        import json, os, sys
        folder = sys.argv[1]
        print("HIDDEN=" + json.dumps(os.listdir(folder)))
    """
    backend = LocalBackend(store, workdir=str(workdir), paths="namespace")
    request = processing_request("hidden", put_code("processing", script), instance_count=2)
    request["AppSpecification"]["ContainerArguments"].append(str(workdir))
    described = run_job(backend, "processing", request)
    assert described["ProcessingJobStatus"] == "Completed", described.get("FailureReason")
    for lines in lines_by_host(backend, "processing", "hidden").values():
        # the workdir holds this job's folder, but what is inside it (every instance's files) is covered
        (job_folder,) = tagged(lines, "HIDDEN=")
        # named after its owner, so a later launch removes it if this one is killed
        assert job_folder.startswith(owned_prefix("job", "hidden"))


# --- the mount helper itself: a missing /opt/ml, a non-root user ---------------------------------------

@pytest.fixture
def host_tree() -> Iterator[Path]:
    """A world-readable folder playing a host's ``/`` (``opt`` with a folder, a file and a link)."""
    top = Path(tempfile.mkdtemp(prefix="aws-sagemaker-remote-host-", dir="/tmp"))
    try:
        top.chmod(0o755)
        (top / "opt" / "tool").mkdir(parents=True)
        (top / "opt" / "tool" / "bin.sh").write_text("echo tool\n")
        (top / "opt" / "notes.txt").write_text("notes\n")
        (top / "opt" / "latest").symlink_to("tool")
        (top / "source").mkdir()
        (top / "source" / "hello.txt").write_text("hello\n")
        for path in top.rglob("*"):
            if not path.is_symlink():
                path.chmod(0o777 if path.is_dir() else 0o666)
        yield top
    finally:
        shutil.rmtree(top, ignore_errors=True)


#: Run inside (a shell, which any user can start): write into the target, then describe what it sees.
LOOK = (
    'echo "from inside" > "$1/written.txt"; opt=$(dirname "$1"); id -u; pwd; '
    'ls "$opt" | tr "\\n" " "; echo; ls "$1" | tr "\\n" " "; echo; readlink "$opt/latest"; cat "$opt/latest/bin.sh"'
)


def _wrapped(prefix: Sequence[str], source: Path, target: Path,
             script: Path = NAMESPACE_SCRIPT) -> "subprocess.CompletedProcess[str]":
    command = [*prefix, sys.executable, "-I", "-S", str(script), str(source), str(target), "", "--",
               "/bin/sh", "-c", LOOK, "look", str(target)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def _seen(stdout: str) -> Dict[str, Any]:
    uid, cwd, opt, target, link, tool = stdout.splitlines()
    return {"uid": int(uid), "cwd": cwd, "opt": opt.split(), "target": target.split(), "link": link, "tool": tool}


@needs_namespaces
def test_a_missing_target_is_made_in_a_tmpfs_and_the_host_is_unchanged(host_tree: Path) -> None:
    before = snapshot(str(host_tree / "opt"))
    done = _wrapped([], host_tree / "source", host_tree / "opt" / "ml")
    assert done.returncode == 0, done.stderr
    seen = _seen(done.stdout)
    assert seen["opt"] == ["latest", "ml", "notes.txt", "tool"]  # the host's entries, and ml
    assert seen["target"] == ["hello.txt", "written.txt"]
    assert (seen["link"], seen["tool"]) == ("tool", "echo tool")
    assert seen["cwd"] == str(host_tree / "opt" / "ml")
    assert snapshot(str(host_tree / "opt")) == before  # no ml folder on the host
    assert (host_tree / "source" / "written.txt").read_text() == "from inside\n"


@needs_namespaces
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to act as an unprivileged user")
def test_an_unprivileged_user_gets_a_user_namespace(host_tree: Path) -> None:
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    # the helper is a standalone script: a copy in the world-readable tree is what the unprivileged
    # user can read wherever the checkout lives
    script = host_tree / "namespace.py"
    shutil.copyfile(NAMESPACE_SCRIPT, script)
    script.chmod(0o644)
    before = snapshot(str(host_tree / "opt"))
    done = _wrapped(nobody, host_tree / "source", host_tree / "opt" / "ml", script)
    if done.returncode != 0 and "unshare" in done.stderr:
        pytest.skip(f"user namespaces are not allowed here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    seen = _seen(done.stdout)
    assert seen["uid"] == 65534  # the same user inside, without privileges
    assert seen["target"] == ["hello.txt", "written.txt"]
    assert snapshot(str(host_tree / "opt")) == before
    assert (host_tree / "source" / "written.txt").stat().st_uid == 65534


def test_a_failed_set_up_exits_125_with_one_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-I", "-S", str(NAMESPACE_SCRIPT), "only-two", "args"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 125
    assert done.stderr.startswith("aws_sagemaker_remote: cannot mount the instance's folder at /opt/ml:")
    assert len(done.stderr.strip().splitlines()) == 1


# --- the toolkit's variables, compared with the toolkit ------------------------------------------------

#: Variables the toolkit puts in the script's environment besides ``SM_*``.
TOOLKIT_OTHERS = ("SAGEMAKER_JOB_NAME", "CURRENT_HOST", "SAGEMAKER_REGION")

COMPARE_SCRIPT = f"""
import json, os, subprocess, sys
OTHERS = {TOOLKIT_OTHERS!r}
ours = {{k: v for k, v in os.environ.items() if k.startswith("SM_") or k in OTHERS}}
# The toolkit, as a framework container runs it: a fresh process, none of our variables, the same
# /opt/ml tree (or SAGEMAKER_BASE_DIR), and the entry point named by SAGEMAKER_PROGRAM.
clean = {{k: v for k, v in os.environ.items() if k not in ours}}
clean["SAGEMAKER_PROGRAM"] = os.path.basename(__file__)
code = (
    "import json, os\\n"
    "from sagemaker_training import environment\\n"
    "found = environment.Environment().to_env_vars()\\n"
    "found.update({{k: os.environ[k] for k in {TOOLKIT_OTHERS!r}}})\\n"
    "print('TOOLKIT=' + json.dumps(found))\\n"
)
done = subprocess.run([sys.executable, "-c", code], env=clean, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                      universal_newlines=True)
assert done.returncode == 0, done.stderr
print([line for line in done.stdout.splitlines() if line.startswith("TOOLKIT=")][-1])
print("OURS=" + json.dumps(ours))
print("SCRIPT_DIR=" + json.dumps(os.path.dirname(os.path.abspath(__file__))))
"""


def _compare(backend: LocalBackend, store: LocalStore, put_code: PutCode, name: str, instances: int,
             hyperparameters: Dict[str, str]) -> List[Dict[str, Any]]:
    pytest.importorskip("sagemaker_training")
    for i in range(3):
        store.put_bytes(f"{i},{i}".encode(), f"s3://{BUCKET}/train/part-{i}.csv")
    store.put_bytes(b"v", f"s3://{BUCKET}/validation/v.csv")
    channels = [_channel("train", f"s3://{BUCKET}/train/"), _channel("validation", f"s3://{BUCKET}/validation/")]
    channels[1]["ContentType"] = "text/csv"
    described = run_job(backend, "training", training_request(
        name, put_code("training", COMPARE_SCRIPT), channels=channels, instance_count=instances,
        hyperparameters=hyperparameters))
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    results = []
    for host, lines in sorted(lines_by_host(backend, "training", name).items()):
        results.append({"host": host, "ours": tagged(lines, "OURS="), "toolkit": tagged(lines, "TOOLKIT="),
                        "script_dir": tagged(lines, "SCRIPT_DIR=")})
    assert [r["host"] for r in results] == [f"algo-{i + 1}" for i in range(instances)]
    return results


def _same_but_deliberate(result: Dict[str, Any], job_name: str, toolkit_job_name: str = "") -> None:
    """Equal to the toolkit's, but for the differences docs/container.rst lists."""
    ours, toolkit = dict(result["ours"]), dict(result["toolkit"])
    # the toolkit's module_dir is sagemaker_submit_directory or /opt/ml/code; ours is the script's folder
    assert ours.pop("SM_MODULE_DIR") == result["script_dir"]
    assert toolkit.pop("SM_MODULE_DIR").endswith("/opt/ml/code")
    ours_env, toolkit_env = json.loads(ours.pop("SM_TRAINING_ENV")), json.loads(toolkit.pop("SM_TRAINING_ENV"))
    assert ours_env.pop("module_dir") == result["script_dir"]
    toolkit_env.pop("module_dir")
    assert ours_env == toolkit_env
    # SAGEMAKER_JOB_NAME: the toolkit takes the sagemaker_job_name hyperparameter, "" without one
    assert ours.pop("SAGEMAKER_JOB_NAME") == (toolkit_job_name or job_name)
    assert toolkit.pop("SAGEMAKER_JOB_NAME") == toolkit_job_name
    assert ours == toolkit
    # every variable of the toolkit's list is there, not a few that happen to agree
    assert {"SM_TRAINING_ENV", "SM_USER_ARGS", "SM_LOG_LEVEL", "SM_FRAMEWORK_PARAMS", "SM_FRAMEWORK_MODULE",
            "SM_OUTPUT_INTERMEDIATE_DIR", "SM_NUM_NEURONS", "SM_CURRENT_INSTANCE_GROUP", "SM_INSTANCE_GROUPS",
            "SM_INSTANCE_GROUPS_DICT", "SM_CURRENT_INSTANCE_GROUP_HOSTS", "SM_DISTRIBUTION_INSTANCE_GROUPS",
            "SM_IS_HETERO", "SM_HPS", "SM_CHANNEL_TRAIN", "CURRENT_HOST", "SAGEMAKER_REGION"} <= set(result["ours"])
    assert len(ours_env) > 30


def test_one_instance_gets_what_the_toolkit_computes(put_code: PutCode, store: LocalStore, workdir: Path) -> None:
    backend = LocalBackend(store, workdir=str(workdir))
    hyper = {"epochs": "4", "lr": "0.1", "layers": "[64, 32]", "use_bn": "true", "optimizer": "adam",
             "x": "{\"a\": 1}", "note": "not json"}
    (result,) = _compare(backend, store, put_code, "toolkit-one", 1, hyper)
    _same_but_deliberate(result, "toolkit-one")
    ours = result["ours"]
    # typed values, as the toolkit gives them
    assert json.loads(ours["SM_HPS"])["epochs"] + 1 == 5
    assert json.loads(ours["SM_HPS"])["layers"] == [64, 32]
    assert ours["SM_HP_USE_BN"] == "true" and ours["SM_HP_NOTE"] == "not json"
    assert ours["SM_USER_ENTRY_POINT"] == "job.py" and ours["SM_MODULE_NAME"] == "job"
    assert json.loads(ours["SM_CHANNELS"]) == ["code", "train", "validation"]
    assert ours["SM_CHANNEL_TRAIN"] == "/opt/ml/input/data/train" or _WHY_NOT is not None


def test_three_instances_with_framework_parameters_get_what_the_toolkit_computes(
        put_code: PutCode, store: LocalStore, workdir: Path) -> None:
    backend = LocalBackend(store, workdir=str(workdir))
    hyper = {"epochs": "2", "sagemaker_mpi_enabled": "true", "sagemaker_container_log_level": "10",
             "sagemaker_job_name": "\"framework-name\"", "sagemaker_region": "\"eu-west-1\""}
    results = _compare(backend, store, put_code, "toolkit-three", 3, hyper)
    for result in results:
        _same_but_deliberate(result, "toolkit-three", toolkit_job_name="framework-name")
        ours = result["ours"]
        assert ours["CURRENT_HOST"] == ours["SM_CURRENT_HOST"] == result["host"]
        assert ours["SM_LOG_LEVEL"] == "10" and ours["SAGEMAKER_REGION"] == "eu-west-1"
        assert json.loads(ours["SM_HPS"]) == {"epochs": 2}
        assert json.loads(ours["SM_FRAMEWORK_PARAMS"]) == {"sagemaker_mpi_enabled": True}
        assert json.loads(ours["SM_HOSTS"]) == ["algo-1", "algo-2", "algo-3"]
        training_env = json.loads(ours["SM_TRAINING_ENV"])
        assert training_env["is_master"] == (result["host"] == "algo-1")
        assert training_env["distribution_hosts"] == ["algo-1", "algo-2", "algo-3"]


def test_relocated_instances_get_what_the_toolkit_computes(put_code: PutCode, store: LocalStore,
                                                           workdir: Path) -> None:
    backend = LocalBackend(store, workdir=str(workdir), paths="relocate")
    (result,) = _compare(backend, store, put_code, "toolkit-relocated", 1, {"epochs": "3"})
    _same_but_deliberate(result, "toolkit-relocated")
    assert result["ours"]["SM_MODEL_DIR"].endswith("/algo-1/opt/ml/model")


def test_a_request_sm_variable_is_replaced_as_the_toolkit_replaces_it(
        put_code: PutCode, store: LocalStore, workdir: Path) -> None:
    script = """
        import os
        print("MODEL_DIR=" + repr(os.environ["SM_MODEL_DIR"]))
        print("OTHER=" + repr(os.environ["SM_SOMETHING_ELSE"]))
    """
    backend = LocalBackend(store, workdir=str(workdir))
    described = run_job(backend, "training", training_request(
        "env-precedence", put_code("training", script),
        environment={"SM_MODEL_DIR": "/from/the/request", "SM_SOMETHING_ELSE": "kept"}))
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    lines = lines_by_host(backend, "training", "env-precedence")["algo-1"]
    model_dir = [line for line in lines if line.startswith("MODEL_DIR=")]
    assert model_dir != ["MODEL_DIR='/from/the/request'"] and model_dir[0].endswith("/opt/ml/model'")
    assert "OTHER='kept'" in lines


# --- the volume size bounds the job's files --------------------------------------------------------------

def test_training_that_outgrows_its_volume_fails_like_a_full_disk(put_code: PutCode, store: LocalStore,
                                                                  workdir: Path) -> None:
    script = """
        import os, time
        # a sparse file: 1.5 GiB of apparent size, nothing on this machine's disk
        with open(os.path.join(os.environ["SM_MODEL_DIR"], "huge.bin"), "wb") as fh:
            fh.truncate(3 * 2 ** 29)
        print("written", flush=True)
        time.sleep(60)
    """
    backend = LocalBackend(store, workdir=str(workdir))
    started = time.monotonic()
    described = run_job(backend, "training", training_request("too-big", put_code("training", script),
                                                              volume_gb=1))
    assert time.monotonic() - started < 30  # killed, not waited for
    assert described["TrainingJobStatus"] == "Failed"
    found = re.fullmatch(r"AlgorithmError: \[Errno 28\] No space left on device: algo-1 has (\d+) bytes under "
                         r"/opt/ml, more than its VolumeSizeInGB=1 volume holds \(1073741824 bytes\)",
                         described["FailureReason"])
    assert found, described["FailureReason"]
    # the sparse file and the (small) code bundle
    assert 3 * 2 ** 29 < int(found.group(1)) < 3 * 2 ** 29 + 2 ** 24
    assert "ModelArtifacts" not in described
    assert store.list(f"s3://{BUCKET}/models/") == []


def test_processing_that_ends_over_its_volume_fails(put_code: PutCode, store: LocalStore, workdir: Path) -> None:
    script = """
        import os
        root = os.environ.get("AWS_SAGEMAKER_REMOTE_OPT_ML", "/opt/ml")
        with open(root + "/processing/output/out/huge.bin", "wb") as fh:
            fh.truncate(2 * 2 ** 30 + 1)  # and exits at once: the last measurement catches it
    """
    backend = LocalBackend(store, workdir=str(workdir))
    described = run_job(backend, "processing", processing_request("too-big", put_code("processing", script),
                                                                  volume_gb=2))
    assert described["ProcessingJobStatus"] == "Failed"
    found = re.search(r"No space left on device: algo-1 has (\d+) bytes", described["FailureReason"])
    assert found and 2 * 2 ** 30 < int(found.group(1)) < 2 * 2 ** 30 + 2 ** 24, described["FailureReason"]
    assert "VolumeSizeInGB=2" in described["FailureReason"]
    assert store.list(f"s3://{BUCKET}/out/") == []  # a failed job uploads nothing


# --- config files and messages as AWS writes them ----------------------------------------------------------

def test_processingjobconfig_has_s3_download_mode_and_null_kms_keys(put_code: PutCode, store: LocalStore,
                                                                     workdir: Path) -> None:
    script = """
        import os
        root = os.environ.get("AWS_SAGEMAKER_REMOTE_OPT_ML", "/opt/ml")
        print("CONFIG=" + open(root + "/config/processingjobconfig.json").read().replace("\\n", " "))
    """
    backend = LocalBackend(store, workdir=str(workdir))
    described = run_job(backend, "processing", processing_request("config", put_code("processing", script)))
    assert described["ProcessingJobStatus"] == "Completed", described.get("FailureReason")
    config = tagged(lines_by_host(backend, "processing", "config")["algo-1"], "CONFIG=")
    assert [i["S3Input"]["S3DownloadMode"] for i in config["ProcessingInputs"]] == ["StartOfJob"]
    assert config["ProcessingOutputConfig"]["KmsKeyId"] is None
    assert config["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] is None
    assert config["ProcessingJobArn"].endswith(":processing-job/config")
    # paths are the container's own, as the job sees them
    assert config["ProcessingInputs"][0]["S3Input"]["LocalPath"] == "/opt/ml/processing/input/code"
    # the request's own values are kept, and describe still answers with the request
    assert "S3DownloadMode" not in described["ProcessingInputs"][0]["S3Input"]


def test_failing_processing_instances_messages_are_concatenated_and_cut_to_1_kb(
        put_code: PutCode, store: LocalStore, workdir: Path) -> None:
    script = """
        import json, os, sys
        root = os.environ.get("AWS_SAGEMAKER_REMOTE_OPT_ML", "/opt/ml")
        host = json.load(open(root + "/config/resourceconfig.json"))["current_host"]
        os.makedirs(root + "/output", exist_ok=True)
        with open(root + "/output/message", "w") as fh:
            fh.write("message from %s: " % host + host[-1] * 500)
        sys.exit(3)
    """
    backend = LocalBackend(store, workdir=str(workdir))
    described = run_job(backend, "processing", processing_request("three-fail", put_code("processing", script),
                                                                  instance_count=3))
    assert described["ProcessingJobStatus"] == "Failed"
    first, second = ("message from algo-1: " + "1" * 500), ("message from algo-2: " + "2" * 500)
    joined = first + "\n" + second + "\n" + "message from algo-3: " + "3" * 500
    assert described["ExitMessage"] == joined[:1021] + "..."
    assert len(described["ExitMessage"]) == 1024
    assert described["FailureReason"] == ("AlgorithmError: " + joined)[:1021] + "..."


# --- FastFile with a manifest is refused before anything happens -------------------------------------------

MANIFEST_SCRIPT = """
from aws_sagemaker_remote import PathArgument, sagemaker_training_main
sagemaker_training_main(main=lambda args: print("RAN"),
                        inputs={{"listed": PathArgument({manifest!r}, s3_data_type="ManifestFile"{mode})}})
"""


@pytest.mark.parametrize("mode, flags", [(', mode="FastFile"', []), ("", ["--sagemaker-input-mode", "FastFile"])])
def test_fastfile_with_a_manifest_is_refused_at_plan_time(tmp_path: Path, run_script: Any, one_error_line: Any,
                                                          mode: str, flags: List[str]) -> None:
    manifest = tmp_path / "listed.manifest"
    manifest.write_text('[{"prefix": "s3://bucket/data/"}, "a.csv"]')
    script = tmp_path / "manifest.py"
    script.write_text(MANIFEST_SCRIPT.format(manifest=str(manifest), mode=mode))
    workdir = tmp_path / "jobs"
    done = run_script(script, "--sagemaker-run=local", *flags, env={"TMPDIR": str(workdir)})
    assert done.returncode == 2, done.stdout + done.stderr
    line = one_error_line(done.stderr, "--listed", "FastFile", "S3Prefix")
    assert ("--sagemaker-input-mode" in line) == bool(flags)
    assert "RAN" not in done.stdout and not workdir.exists()


def test_auto_falls_back_to_relocation_and_says_so_once(tmp_path: Path, run_python: Any) -> None:
    # an interpreter that cannot run the helper stands for a machine without namespaces
    code = textwrap.dedent(f"""
        from aws_sagemaker_remote.backends.local import isolation
        print(isolation.use_namespaces("auto", "/bin/false", {str(tmp_path)!r}))
        print(isolation.use_namespaces("auto", "/bin/false", {str(tmp_path)!r}))
        try:
            isolation.use_namespaces("namespace", "/bin/false", {str(tmp_path)!r})
        except isolation.IsolationError as exc:
            print("refused:", exc)
    """)
    done = run_python("-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["False", "False",
                                        "refused: cannot mount the job's folder at /opt/ml: exit code 1"]
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "relocated under the job folder (exit code 1)" in lines[0], done.stderr
    assert "SAGEMAKER_BASE_DIR names it" in lines[0]
