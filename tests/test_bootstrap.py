"""The job-side bootstrap, started exactly as a container starts it: ``python -c STUB BUNDLE DIR ARGS...``.

Every test packs a real bundle with ``build_bundle``, runs the stub in a
subprocess with ``AWS_SAGEMAKER_REMOTE_OPT_ML`` pointing at a temporary
``/opt/ml``, and asserts on the exit code, the output and the failure file.
"""
from __future__ import annotations

import base64
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import pytest

from aws_sagemaker_remote.bundle import Bundle
from aws_sagemaker_remote.container import ROOT_ENV, ContainerPaths, training_environment
from aws_sagemaker_remote.render import BOOTSTRAP_STUB

SECRET = "s3cr3t-Value-4242"
TIMEOUT = 60


def without_uv(path: str) -> str:
    """``path`` without the folders that hold a ``uv``."""
    return os.pathsep.join(p for p in path.split(os.pathsep) if p and not os.access(os.path.join(p, "uv"), os.X_OK))


class Job:
    """A bundle unpacked and run by the stub under a temporary ``/opt/ml``."""

    def __init__(self, bundle: Bundle, root: Path, kind: str) -> None:
        self.kind = kind
        self.bundle = bundle.path
        self.paths = ContainerPaths(str(root))
        self.unpack_dir = self.paths.unpacked_code

    def command(self, args: Sequence[str] = (), python: str = sys.executable) -> List[str]:
        return [python, "-c", BOOTSTRAP_STUB, self.bundle, self.unpack_dir] + list(args)

    def env(self, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        env = dict(os.environ)
        # an image without uv (the job would install with it, into the shared interpreter), unless a test adds it
        env["PATH"] = without_uv(env.get("PATH", os.defpath))
        env[ROOT_ENV] = self.paths.root
        env.update(extra or {})
        return env

    def run(self, args: Sequence[str] = (), env: Optional[Dict[str, str]] = None,
            python: str = sys.executable) -> "subprocess.CompletedProcess[str]":
        return subprocess.run(self.command(args, python), env=self.env(env), capture_output=True, text=True,
                              timeout=TIMEOUT, stdin=subprocess.DEVNULL)

    def failure(self) -> Optional[str]:
        path = self.paths.failure_file(self.kind)
        return Path(path).read_text() if os.path.exists(path) else None


NewJob = Callable[..., Job]


@pytest.fixture
def new_job(tmp_path: Path, make_bundle: Callable[..., Bundle]) -> NewJob:
    """``new_job(script, kind="processing", **code)``: a :class:`Job` of a bundle built by ``make_bundle``."""

    def new(script: str, kind: str = "processing", **code: Any) -> Job:
        return Job(make_bundle(script, kind, **code), tmp_path / "opt" / "ml", kind)

    return new


# --- success path ------------------------------------------------------------------------------

def test_exports_arguments_cwd_and_pythonpath_reach_the_script(tmp_path: Path, new_job: NewJob) -> None:
    lib = tmp_path / "mylib"
    lib.mkdir()
    (lib / "__init__.py").write_text("NAME = 'mylib from deps'\n")
    job = new_job("""
        import json, os, sys
        import mylib
        print(json.dumps({
            "args": sys.argv[1:], "cwd": os.getcwd(), "lib": mylib.NAME,
            "pythonpath": os.environ["PYTHONPATH"].split(os.pathsep),
            "vars": [os.environ.get(n) for n in ("FROM_SCRIPT", "FROM_COMMAND", "CHAINED")],
        }))
    """, configuration_script="export FROM_SCRIPT=one\nNOT_EXPORTED=two\n",
        configuration_command="export FROM_COMMAND=three && export CHAINED=\"$FROM_SCRIPT-$NOT_EXPORTED\" "
                              "&& export PYTHONPATH=/from/config:$PYTHONPATH",
        dependencies=[("mylib", str(lib))])
    result = job.run(["--name", "two words", "--path=/opt/ml/x"], env={"PYTHONPATH": "/already/there"})

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["args"] == ["--name", "two words", "--path=/opt/ml/x"]
    assert report["cwd"] == os.path.join(job.unpack_dir, "script")
    assert report["lib"] == "mylib from deps"
    assert report["pythonpath"][:2] == [os.path.join(job.unpack_dir, "runtime"), os.path.join(job.unpack_dir, "deps")]
    assert report["pythonpath"][2:] == ["/from/config", "/already/there"]
    assert report["vars"] == ["one", "three", "one-two"]
    assert job.failure() is None


def test_output_is_streamed_while_the_script_runs(tmp_path: Path, new_job: NewJob) -> None:
    go = tmp_path / "go"
    job = new_job(f"""
        import os, time
        print("ready")  # no flush: the bootstrap makes the script unbuffered
        deadline = time.time() + 20
        while not os.path.exists({str(go)!r}) and time.time() < deadline:
            time.sleep(0.01)
        print("done")
    """)
    process = subprocess.Popen(job.command(), env=job.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, stdin=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        assert process.poll() is None
        go.write_text("")
        assert process.stdout.readline() == "done\n"
        assert process.wait(TIMEOUT) == 0
    finally:
        process.kill()
        process.wait()


def test_requirements_are_installed_with_the_jobs_python(tmp_path: Path, new_job: NewJob) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "tinypkg", "0.1", {"tinypkg/__init__.py": "VALUE = 'installed offline'\n"})
    target = tmp_path / "target"
    job = new_job("import tinypkg\nprint(tinypkg.VALUE)\n",
              requirements=f"--no-index\n--find-links {wheels}\ntinypkg==0.1\n")
    # PIP_TARGET keeps the shared interpreter untouched; the job's PYTHONPATH finds it
    result = job.run(env={"PIP_TARGET": str(target), "PYTHONPATH": str(target)})

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "installed offline"
    assert "aws_sagemaker_remote: installing requirements/requirements.txt" in result.stderr
    # how long each phase took, for the watch's breakdown
    assert re.search(r"^aws_sagemaker_remote: phase install took \d+\.\d\ds$", result.stderr, re.MULTILINE)
    assert re.search(r"^aws_sagemaker_remote: phase script took \d+\.\d\ds$", result.stderr, re.MULTILINE)
    assert (target / "tinypkg" / "__init__.py").is_file()


def test_an_image_with_uv_installs_with_it(tmp_path: Path, new_job: NewJob) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed")
    image = tmp_path / "image"  # the image's interpreter: a fresh environment, so nothing shared changes
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(image)], check=True, timeout=TIMEOUT)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "tinypkg", "0.1", {"tinypkg/__init__.py": "VALUE = 'installed with uv'\n"})
    job = new_job("import tinypkg\nprint(tinypkg.VALUE)\n",
                  requirements=f"--no-index\n--find-links {wheels}\ntinypkg==0.1\n")
    path = os.path.dirname(uv) + os.pathsep + os.environ.get("PATH", os.defpath)
    # the variables only pip reads are empty: they would make the job install with pip
    no_pip = {k: "" for k in os.environ if k.startswith("PIP_")}
    result = job.run(env=dict(no_pip, PATH=path), python=str(image / "bin" / "python"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "aws_sagemaker_remote: installing requirements/requirements.txt with uv" in result.stderr
    assert result.stdout.strip().splitlines()[-1] == "installed with uv"
    assert list(image.glob("lib/python*/site-packages/tinypkg/__init__.py"))

    # a PIP_ setting (here a target folder) is pip's: then pip installs
    target = tmp_path / "target"
    again = new_job("import tinypkg\nprint(tinypkg.__file__)\n",
                    requirements=f"--no-index\n--find-links {wheels}\ntinypkg==0.1\n")
    result = again.run(env=dict(no_pip, PATH=path, PIP_TARGET=str(target), PYTHONPATH=str(target)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "installing requirements/requirements.txt\n" in result.stderr
    assert (target / "tinypkg" / "__init__.py").is_file()


def test_no_configuration_needs_no_bash(tmp_path: Path, new_job: NewJob) -> None:
    job = new_job("print('ran without a shell')\n")
    result = job.run(env={"PATH": str(tmp_path / "empty-path")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ran without a shell"


def test_training_jobs_get_sm_variables_from_the_config_files(new_job: NewJob) -> None:
    job = new_job("""
        import json, os
        print(json.dumps({k: v for k, v in os.environ.items() if k.startswith("SM_")}))
    """, kind="training")
    paths = job.paths
    write_json(paths.training_resource_config, {"current_host": "algo-2", "hosts": ["algo-1", "algo-2"],
                                                "current_instance_type": "ml.m5.large",
                                                "network_interface_name": "eth0"})
    write_json(paths.hyperparameters, {"lr": "0.1", "layers": 3})
    write_json(paths.input_data_config, {"train": {"TrainingInputMode": "File"},
                                         "code": {"TrainingInputMode": "File"}})
    result = job.run()

    assert result.returncode == 0, result.stderr
    env = json.loads(result.stdout.strip().splitlines()[-1])
    assert env["SM_CURRENT_HOST"] == "algo-2"
    assert json.loads(env["SM_HOSTS"]) == ["algo-1", "algo-2"]
    assert json.loads(env["SM_CHANNELS"]) == ["code", "train"]
    assert env["SM_CHANNEL_TRAIN"] == paths.training_channel("train")
    assert env["SM_MODEL_DIR"] == paths.model_dir
    assert env["SM_OUTPUT_DATA_DIR"] == paths.output_data_dir
    assert env["SM_INPUT_CONFIG_DIR"] == paths.training_config_dir
    assert env["SM_HP_LR"] == "0.1" and env["SM_HP_LAYERS"] == "3"
    assert env["SM_CURRENT_INSTANCE_TYPE"] == "ml.m5.large"
    assert int(env["SM_NUM_CPUS"]) >= 1 and int(env["SM_NUM_GPUS"]) >= 0


def test_toolkit_variables_replace_same_named_ones_as_the_toolkit_does(new_job: NewJob) -> None:
    # the toolkit writes its values over the container's environment (Environment() and
    # entry_point.run's write_env_vars), so a request's SM_MODEL_DIR does not survive it, while the
    # variables it reads (SAGEMAKER_PROGRAM) steer what it computes
    job = new_job("""
        import json, os
        print(json.dumps({k: v for k, v in os.environ.items() if k.startswith(("SM_", "SAGEMAKER_"))}))
    """, kind="training")
    write_json(job.paths.training_resource_config, {"current_host": "algo-1", "hosts": ["algo-1"]})
    write_json(job.paths.input_data_config, {"train": {"TrainingInputMode": "File"}})
    write_json(job.paths.hyperparameters, {"epochs": "4", "sagemaker_job_name": '"named-job"'})
    result = job.run(env={"SM_MODEL_DIR": "/from/the/request", "SAGEMAKER_PROGRAM": "other.py"})

    assert result.returncode == 0, result.stderr
    env = json.loads(result.stdout.strip().splitlines()[-1])
    assert env["SM_MODEL_DIR"] == job.paths.model_dir
    assert (env["SM_USER_ENTRY_POINT"], env["SM_MODULE_NAME"]) == ("other.py", "other")
    assert env["SAGEMAKER_JOB_NAME"] == "named-job"
    assert json.loads(env["SM_HPS"]) == {"epochs": 4}


# --- failures --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, failure_name", [("processing", "message"), ("training", "failure")])
def test_script_failure_goes_to_the_failure_file_of_the_job_kind(
        new_job: NewJob, kind: str, failure_name: str) -> None:
    job = new_job("raise RuntimeError('the model diverged')\n", kind=kind)
    result = job.run()

    assert result.returncode == 1
    expected = "script job.py exited with code 1: RuntimeError: the model diverged"
    assert job.failure() == expected
    assert job.paths.failure_file(kind).endswith("/output/" + failure_name)
    # the script's output, stderr included, comes out on stdout; our own lines on stderr
    assert "Traceback (most recent call last):" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "RuntimeError: the model diverged"
    # the log already ends with the exception: the bootstrap's line does not repeat it
    assert result.stderr.strip().splitlines()[-1] == "aws_sagemaker_remote: script job.py exited with code 1"


def test_output_and_traceback_keep_the_order_the_script_wrote_them_in(new_job: NewJob) -> None:
    # stdout and stderr lines alternate, then a traceback: a reader of the job's
    # log (here one pipe, as in the local backend) must see them in that order
    job = new_job("""
        import sys
        for i in range(300):
            print("out", i)
            sys.stderr.write(f"err {i}\\n")
        def load():
            raise ValueError("bad row 7")
        load()
    """)
    result = subprocess.run(job.command(), env=job.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)

    lines = result.stdout.splitlines()
    assert result.returncode == 1
    expected = [line for i in range(300) for line in (f"out {i}", f"err {i}")]
    assert lines[:600] == expected
    assert lines[600] == "Traceback (most recent call last):"
    assert lines[-3:] == ["ValueError: bad row 7",
                          # how long the script ran, for the watch's breakdown, also after a failure
                          lines[-2],
                          "aws_sagemaker_remote: script job.py exited with code 1"]
    assert re.fullmatch(r"aws_sagemaker_remote: phase script took \d+\.\d\ds", lines[-2])
    assert job.failure() == "script job.py exited with code 1: ValueError: bad row 7"


def test_exit_code_of_the_script_is_the_bootstraps(new_job: NewJob) -> None:
    job = new_job("import sys\nsys.exit(7)\n")
    result = job.run()
    assert result.returncode == 7
    assert job.failure() == "script job.py exited with code 7"


def test_a_failure_file_written_by_the_script_is_kept(new_job: NewJob) -> None:
    job = new_job("""
        import os, sys
        path = os.path.join(os.environ["AWS_SAGEMAKER_REMOTE_OPT_ML"], "output", "message")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "w").write("InputError: no rows in the input")
        sys.exit(3)
    """)
    result = job.run()
    assert result.returncode == 3
    assert job.failure() == "InputError: no rows in the input"
    assert "script job.py exited with code 3" in result.stderr


@pytest.mark.parametrize("setup, command, message, code", [
    ("echo setting up\nexit 4\n", None, "configuration script config/setup.sh failed with exit code 4", 4),
    (None, "export A=1 && false", "configuration command failed with exit code 1", 1),
    ("export A=1\n", "test -n \"$A\" && exit 9", "configuration command failed with exit code 9", 9),
])
def test_configuration_failures_stop_before_the_script(
        new_job: NewJob, setup: Optional[str], command: Optional[str], message: str, code: int) -> None:
    job = new_job("print('script ran')\n", configuration_script=setup, configuration_command=command)
    result = job.run()
    assert result.returncode == code
    assert job.failure() is not None and job.failure().startswith(message)  # type: ignore[union-attr]
    assert "script ran" not in result.stdout


def test_configuration_without_bash_is_a_clear_failure(tmp_path: Path, new_job: NewJob) -> None:
    job = new_job("print('script ran')\n", configuration_command="echo hi")
    result = job.run(env={"PATH": str(tmp_path / "empty-path")})
    assert result.returncode == 127
    assert job.failure() == "the configuration command cannot run: this image has no bash"


def test_failing_requirements_report_pips_error(new_job: NewJob) -> None:
    job = new_job("print('script ran')\n", requirements="--no-index\nno-such-package-for-tests\n")
    result = job.run()
    assert result.returncode == 1
    failure = job.failure() or ""
    assert failure.startswith("pip install -r requirements/requirements.txt failed with exit code 1: ")
    assert "no-such-package-for-tests" in failure
    assert "script ran" not in result.stdout


def test_a_bundle_without_manifest_fails_clearly(tmp_path: Path) -> None:
    paths = ContainerPaths(str(tmp_path / "opt" / "ml"))
    empty = tmp_path / "unpacked"
    empty.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from aws_sagemaker_remote.bootstrap import main; main(sys.argv[1], [])",
         str(empty)],
        env={**os.environ, ROOT_ENV: paths.root}, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 1
    failure = Path(paths.processing_failure).read_text()
    assert failure.startswith("the code bundle has no readable manifest.json")


@pytest.mark.parametrize("scenario", ["success", "script", "command", "setup", "requirements"])
def test_environment_values_are_never_printed(new_job: NewJob, scenario: str) -> None:
    script = "raise SystemExit('failing on purpose')\n" if scenario == "script" else "print('ok')\n"
    command = 'export DERIVED="$SECRET_TOKEN" && export OTHER="x$DERIVED"'
    if scenario == "command":
        command += " && false"
    setup = 'export FROM_SETUP="$SECRET_TOKEN"\n' + ("return 5\n" if scenario == "setup" else "")
    requirements = "--no-index\nmissing-package-for-tests\n" if scenario == "requirements" else "# none\n"
    job = new_job(script, configuration_script=setup, configuration_command=command,
              requirements=requirements)
    result = job.run(env={"SECRET_TOKEN": SECRET})

    assert (result.returncode == 0) == (scenario == "success"), result.stderr
    everything = result.stdout + result.stderr + (job.failure() or "")
    assert SECRET not in everything
    assert SECRET[::-1] not in everything


def test_a_shell_error_echoing_a_secret_stays_out_of_the_failure_message(new_job: NewJob) -> None:
    # bash reports the expanded word: "bash: line N: s3cr3t-...: command not found"
    job = new_job("print('script ran')\n", configuration_command='"$SECRET_TOKEN"')
    result = job.run(env={"SECRET_TOKEN": SECRET})
    assert result.returncode == 127
    assert job.failure() == "configuration command failed with exit code 127"
    ours = [line for line in result.stderr.splitlines() if line.startswith("aws_sagemaker_remote:")]
    assert ours and not any(SECRET in line for line in ours)


# --- signals and interpreters -----------------------------------------------------------------

def test_sigterm_is_forwarded_to_the_script(new_job: NewJob) -> None:
    job = new_job("""
        import signal, sys, time
        def handler(signum, frame):
            print("got", signal.Signals(signum).name, flush=True)
            sys.exit(5)
        signal.signal(signal.SIGTERM, handler)
        print("waiting", flush=True)
        time.sleep(600)  # longer than TIMEOUT: only the forwarded signal ends it in time
    """)
    process = subprocess.Popen(job.command(), env=job.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, stdin=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "waiting\n"
        process.send_signal(signal.SIGTERM)
        out, _err = process.communicate(timeout=TIMEOUT)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 5
    assert "got SIGTERM" in out
    assert job.failure() == "script job.py exited with code 5"


def test_a_stop_signal_kills_a_script_that_does_not_handle_it(new_job: NewJob) -> None:
    job = new_job("import time\nprint('waiting', flush=True)\ntime.sleep(30)\n")
    process = subprocess.Popen(job.command(), env=job.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, stdin=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "waiting\n"
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=TIMEOUT)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 128 + signal.SIGTERM
    assert job.failure() == "script job.py was stopped by SIGTERM"


def _oldest_python() -> Optional[str]:
    """A Python 3.8 interpreter on this machine, if there is one that runs."""
    candidates = ["python3.8"] + sorted(
        glob.glob(os.path.expanduser("~/.pyenv/versions/3.8*/bin/python3.8")))
    for candidate in candidates:
        try:
            out = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 8))"],
                                 capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            continue
        if out.returncode == 0 and out.stdout.strip() == "True":
            return candidate
    return None


def test_the_bootstrap_runs_on_python_3_8(new_job: NewJob) -> None:
    python = _oldest_python()
    if python is None:
        pytest.skip("no Python 3.8 interpreter on this machine")
    job = new_job("import sys\nprint('python', sys.version_info[:2])\nraise SystemExit(2)\n",
              configuration_command="export A=1", kind="training")
    result = job.run(python=python)
    assert result.returncode == 2, result.stderr
    assert "python (3, 8)" in result.stdout
    assert job.failure() == "script job.py exited with code 2"


# --- helpers ------------------------------------------------------------------------------------

def write_json(path: str, data: Any) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(data, fh)


def make_wheel(folder: Path, name: str, version: str, files: Dict[str, str]) -> Path:
    """A minimal pure-Python wheel, built by hand (no network, no build backend)."""
    dist_info = f"{name}-{version}.dist-info"
    contents = dict(files)
    contents[f"{dist_info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    contents[f"{dist_info}/WHEEL"] = ("Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
                                      "Tag: py3-none-any\n")
    record = []
    for path, text in contents.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    contents[f"{dist_info}/RECORD"] = "\n".join(record) + "\n"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in contents.items():
            zf.writestr(path, text)
    return wheel


def test_training_environment_without_config_files(tmp_path: Path) -> None:
    paths = ContainerPaths(str(tmp_path / "opt" / "ml"))
    env = training_environment(paths)
    assert env["SM_MODEL_DIR"] == paths.model_dir
    assert env["SM_CHANNELS"] == "[]"
    assert "SM_CURRENT_HOST" not in env


# --- laying out trees staged as blobs ------------------------------------------------------------

def _input_channel(tmp_path: Path, nested: str, files: Dict[str, bytes], distribution: str = "FullyReplicated",
                   lost: Sequence[str] = ()) -> Dict[str, Any]:
    """A channel folder as the download leaves it (blobs at its top, or under ``nested``, the key's
    folders) and the bootstrap's entry for it; the blobs of ``lost`` files never arrived."""
    channel = tmp_path / "opt" / "ml" / "processing" / "input" / "data"
    code = tmp_path / "code"
    (code / "inputs").mkdir(parents=True)
    where = channel / nested if nested else channel
    where.mkdir(parents=True)
    for rel, data in files.items():
        if rel not in lost:
            (where / hashlib.sha256(data).hexdigest()).write_bytes(data)
    listing = {"files": [[rel, hashlib.sha256(data).hexdigest(), False] for rel, data in files.items()],
               "dirs": ["empty"]}
    (code / "inputs" / "data.json").write_text(json.dumps(listing))
    return {"path": str(channel), "listing": "inputs/data.json", "distribution": distribution}


def _tree(folder: Path) -> Dict[str, Any]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in folder.rglob("*")}


TREE = {"a.csv": b"1,2\n", "sub/b.txt": b"bee\n", "sub/same.txt": b"1,2\n"}


@pytest.mark.parametrize("nested", ["", "pre/cas/sha256"])
def test_an_input_tree_is_laid_out_wherever_its_blobs_landed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             nested: str) -> None:
    from aws_sagemaker_remote.bootstrap import materialize_inputs

    monkeypatch.delenv(ROOT_ENV, raising=False)
    entry = _input_channel(tmp_path, nested, TREE)
    materialize_inputs(str(tmp_path / "code"), [entry])
    # exactly the user's tree: no blob, no folder of the key's path left behind
    assert _tree(Path(entry["path"])) == {"a.csv": b"1,2\n", "sub": None, "sub/b.txt": b"bee\n",
                                          "sub/same.txt": b"1,2\n", "empty": None}


@pytest.mark.parametrize("nested", ["", "pre/cas/sha256"])
def test_a_replicated_input_missing_a_blob_fails_naming_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 nested: str) -> None:
    from aws_sagemaker_remote.bootstrap import StepFailed, materialize_inputs

    monkeypatch.delenv(ROOT_ENV, raising=False)
    entry = _input_channel(tmp_path, nested, TREE, lost=["sub/b.txt"])
    with pytest.raises(StepFailed) as failed:
        materialize_inputs(str(tmp_path / "code"), [entry])
    assert "sub/b.txt" in failed.value.message and hashlib.sha256(b"bee\n").hexdigest() in failed.value.message
    assert "Traceback" not in failed.value.message


def test_a_sharded_input_leaves_out_the_files_of_other_instances(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from aws_sagemaker_remote.bootstrap import materialize_inputs

    monkeypatch.delenv(ROOT_ENV, raising=False)
    entry = _input_channel(tmp_path, "pre/cas/sha256", TREE, distribution="ShardedByS3Key", lost=["sub/b.txt"])
    materialize_inputs(str(tmp_path / "code"), [entry])
    assert _tree(Path(entry["path"])) == {"a.csv": b"1,2\n", "sub": None, "sub/same.txt": b"1,2\n", "empty": None}


def test_the_stub_finds_the_code_under_the_keys_folders(new_job: NewJob) -> None:
    job = new_job("print('ran from', __file__)\n")
    channel = Path(job.bundle).parent
    nested = channel / "pre" / "cas" / "sha256"
    nested.mkdir(parents=True)
    for blob in [p for p in channel.iterdir() if p.is_file()]:
        blob.rename(nested / blob.name)
    run = job.run()
    assert run.returncode == 0, run.stderr
    assert "ran from" in run.stdout


def test_an_input_folder_named_like_the_scratch_folder_is_the_users(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from aws_sagemaker_remote.bootstrap import materialize_inputs

    monkeypatch.delenv(ROOT_ENV, raising=False)
    files = {".aws-sagemaker-remote-blobs/keep.txt": b"mine\n", "other.txt": b"other\n"}
    entry = _input_channel(tmp_path, "", files)
    materialize_inputs(str(tmp_path / "code"), [entry])
    channel = Path(entry["path"])
    assert _tree(channel) == {".aws-sagemaker-remote-blobs": None, ".aws-sagemaker-remote-blobs/keep.txt": b"mine\n",
                              "other.txt": b"other\n", "empty": None}
    assert sorted(os.listdir(channel.parent)) == ["data"]  # no scratch folder left beside it


def test_a_layout_error_is_one_line_not_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aws_sagemaker_remote.bootstrap import StepFailed, materialize_inputs

    monkeypatch.delenv(ROOT_ENV, raising=False)
    entry = _input_channel(tmp_path, "", {"x": b"a file\n", "x/y": b"below a file of the same name\n"})
    with pytest.raises(StepFailed) as failed:
        materialize_inputs(str(tmp_path / "code"), [entry])
    assert failed.value.message.startswith(f"cannot lay out input {entry['path']}: ")
    assert "\n" not in failed.value.message


def test_the_stub_reports_a_missing_code_blob_in_one_line(new_job: NewJob) -> None:
    job = new_job("print('never')\n")
    listing = json.loads(Path(job.bundle).read_text())
    lost = next(sha for rel, sha, _exe in listing["files"] if rel.endswith("job.py"))
    (Path(job.bundle).parent / lost).unlink()
    run = job.run()
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert lost in line and "job.py" in line
