"""Local runs install requirements and configuration into an overlay, never into the user's interpreter.

The packages are wheels built by hand in the test's folder and found through
``--no-index --find-links`` lines, so nothing needs the internet. Every test
runs both ways the overlay can be built: with ``uv`` on ``PATH`` (skipped when
uv is not installed) and with ``python -m venv`` and pip (``PATH`` without uv).
The user's interpreter is the one running the tests: ``pip list`` of it must not
change.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, List

import pytest
from test_bootstrap import Job, make_wheel

from aws_sagemaker_remote.bundle import build_bundle
from aws_sagemaker_remote.container import WARM_POOL_CACHE_ENV
from aws_sagemaker_remote.overlay import (
    CACHE_FOLDER,
    MARKER_FILE,
    PIP_COSMETIC,
    image_identity,
    locked,
    overlay_key,
    pick_installer,
)
from aws_sagemaker_remote.spec import CodeSpec

#: The launcher's timeout: the first run builds an overlay and runs pip.
TIMEOUT = 180


def _without_uv(path: str) -> str:
    return os.pathsep.join(p for p in path.split(os.pathsep)
                           if p and not os.access(os.path.join(p, "uv"), os.X_OK))


def _uv_binary() -> str:
    found = shutil.which("uv")
    if found:
        return found
    try:
        import uv  # the PyPI package ships the binary

        return str(uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        pytest.skip("uv is not installed (pip install uv)")
    raise AssertionError("unreachable")


@pytest.fixture(params=["pip", "uv"])
def installer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Puts uv on ``PATH`` or takes it off; returns which one builds the overlay."""
    path = _without_uv(os.environ.get("PATH", os.defpath))
    if request.param == "uv":
        path = os.path.dirname(_uv_binary()) + os.pathsep + path
    monkeypatch.setenv("PATH", path)
    for name in [k for k in os.environ if k.startswith("PIP_") and k not in PIP_COSMETIC]:
        # pip-only settings of this machine (an index) would make pip install though uv is there
        monkeypatch.delenv(name)
    return str(request.param)


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    """A stand-in ``six`` 1.16.0 and two small pure packages, as wheels."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    make_wheel(folder, "six", "1.16.0", {"six.py": "__version__ = '1.16.0'\n"})
    make_wheel(folder, "tinypkg", "0.1", {"tinypkg/__init__.py": "VALUE = 'from the requirements'\n"})
    make_wheel(folder, "cfgpkg", "0.2", {"cfgpkg/__init__.py": "VALUE = 'from the configuration'\n"})
    return folder


def user_packages(run_python: Any) -> List[Dict[str, str]]:
    """``pip list --format=json`` of the interpreter that runs the tests (the user's)."""
    listed = run_python("-m", "pip", "list", "--format=json", "--disable-pip-version-check")
    assert listed.returncode == 0, listed.stderr
    return sorted(json.loads(listed.stdout), key=lambda p: p["name"].lower())


def version_of(packages: List[Dict[str, str]], name: str) -> Any:
    return next((p["version"] for p in packages if p["name"].lower() == name), None)


SCRIPT = """
import json, os, sys
from aws_sagemaker_remote import sagemaker_processing_main

def main(args):
    import cfgpkg, six, tinypkg  # only the job has them
    print("SEEN=" + json.dumps({{
        "python": sys.executable, "prefix": sys.prefix, "virtual_env": os.environ.get("VIRTUAL_ENV"),
        "six": [six.__version__, six.__file__], "tinypkg": tinypkg.__file__, "cfgpkg": cfgpkg.__file__}}))

if __name__ == "__main__":
    sagemaker_processing_main(main=main, base_job_name="overlay", requirements={requirements!r},
                              configuration_command={command!r})
"""


def seen(output: str) -> List[Dict[str, Any]]:
    return [json.loads(line.split("SEEN=", 1)[1]) for line in output.splitlines() if "SEEN=" in line]


def under(path: str, folder: Path) -> bool:
    return os.path.abspath(path).startswith(os.path.abspath(folder) + os.sep)


@pytest.fixture
def project(tmp_path: Path, wheels: Path) -> Path:
    """A script whose requirements pin ``six==1.16.0`` and add tinypkg, and whose configuration
    command pip-installs cfgpkg; its main imports all three."""
    folder = tmp_path / "project"
    folder.mkdir()
    requirements = folder / "requirements.txt"
    requirements.write_text(f"--no-index\n--find-links {wheels}\nsix==1.16.0\ntinypkg==0.1\n")
    command = f"pip install --no-index --find-links {wheels} cfgpkg==0.2"
    (folder / "job.py").write_text(SCRIPT.format(requirements=str(requirements), command=command))
    return folder


def test_local_run_leaves_the_users_environment_as_it_was(
        installer: str, project: Path, run_script: Any, run_python: Any, clean_environment: Path) -> None:
    before = user_packages(run_python)
    overlays = clean_environment / "warmpoolcache" / CACHE_FOLDER / "envs"

    first = run_script(project / "job.py", "--sagemaker-run=local", timeout=TIMEOUT)
    assert first.returncode == 0, first.stdout + first.stderr
    log = first.stdout + first.stderr
    assert f"creating the overlay environment {overlays}" in log and f"with {installer}" in log
    assert "nothing to install" not in log
    assert "aws_sagemaker_remote: installing requirements/requirements.txt" in log
    [job] = seen(first.stdout)
    # the job ran in the overlay, with what it installed first and the user's packages behind
    assert under(job["python"], overlays) and job["prefix"] == job["virtual_env"]
    assert job["six"][0] == "1.16.0" and under(job["six"][1], overlays)
    assert under(job["tinypkg"], overlays) and under(job["cfgpkg"], overlays)

    after = user_packages(run_python)
    assert after == before
    assert version_of(after, "tinypkg") is None and version_of(after, "cfgpkg") is None
    assert version_of(after, "six") != "1.16.0" or version_of(before, "six") == "1.16.0"

    second = run_script(project / "job.py", "--sagemaker-run=local", timeout=TIMEOUT)
    assert second.returncode == 0, second.stdout + second.stderr
    log = second.stdout + second.stderr
    assert "creating the overlay environment" not in log
    assert "aws_sagemaker_remote: installing" not in log  # the second local job installs nothing
    assert f"using the overlay environment {overlays}" in log
    assert "requirements/requirements.txt is already installed in the overlay environment: nothing to install" in log
    # the configuration runs again, and finds its package there
    assert "Successfully installed" not in log and "Installed 1 package" not in log
    assert seen(second.stdout) == [job]
    assert [p.name for p in overlays.iterdir() if p.is_dir()] == [Path(job["prefix"]).name]
    assert user_packages(run_python) == before


def test_instances_of_one_job_build_the_overlay_once(
        installer: str, project: Path, run_script: Any, clean_environment: Path) -> None:
    run = run_script(project / "job.py", "--sagemaker-run=local", "--sagemaker-instance-count", "3",
                     timeout=TIMEOUT)
    assert run.returncode == 0, run.stdout + run.stderr
    log = run.stdout + run.stderr
    # one builds it while the others wait for the lock, then use it as it is
    assert log.count("creating the overlay environment") == 1
    assert log.count("nothing to install") == 2
    assert len(seen(run.stdout)) == 3
    assert {job["prefix"] for job in seen(run.stdout)} == {str(next(
        p for p in (clean_environment / "warmpoolcache" / CACHE_FOLDER / "envs").iterdir() if p.is_dir()))}


# --- the bootstrap alone, as the local backend starts it ----------------------------------------

def warm_pool(overlays: Path) -> Dict[str, str]:
    """The environment of a job on a warm instance whose overlays are ``overlays``."""
    cache = overlays.parent.parent
    cache.mkdir(parents=True, exist_ok=True)
    # PATH as the installer fixture left it: with uv, or without
    return {WARM_POOL_CACHE_ENV: str(cache), "PATH": os.environ.get("PATH", os.defpath)}


def bundle_job(tmp_path: Path, script: str, **code: Any) -> Job:
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    (project / "job.py").write_text(textwrap.dedent(script))
    if "requirements" in code:
        (project / "requirements.txt").write_text(code.pop("requirements"))
        code["requirements"] = str(project / "requirements.txt")
    spec = CodeSpec(script=str(project / "job.py"), script_dir=str(project), **code)
    return Job(build_bundle(spec, "processing", workdir=str(tmp_path)), tmp_path / "opt" / "ml", "processing")


def test_configuration_commands_pip_and_python_are_the_overlays(
        installer: str, tmp_path: Path, wheels: Path) -> None:
    overlays = tmp_path / "warmpoolcache" / CACHE_FOLDER / "envs"
    command = ('for c in pip pip3 python python3; do echo "$c=$(command -v $c)"; done; '
               'echo "python-prefix=$(python -c "import sys; print(sys.prefix)")"; '
               'echo "python3-prefix=$(python3 -c "import sys; print(sys.prefix)")"; '
               f'pip3 install --no-index --find-links {wheels} cfgpkg==0.2 && '
               'echo "pip-sees=$(pip list --format=freeze 2>/dev/null | grep -i cfgpkg)"')
    job = bundle_job(tmp_path, "import cfgpkg, os, sys\nprint('script-python=' + sys.executable)\n",
                     configuration_command=command)
    result = job.run(env=warm_pool(overlays))
    assert result.returncode == 0, result.stdout + result.stderr
    found = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    [root] = [p for p in overlays.iterdir() if p.is_dir()]
    for name in ("pip", "pip3", "python", "python3"):
        assert found[name] == str(root / "bin" / name)
    assert found["python-prefix"] == found["python3-prefix"] == str(root)
    assert found["pip-sees"] == "cfgpkg==0.2"
    assert found["script-python"] == str(root / "bin" / "python")
    assert (root / MARKER_FILE).is_file()


def test_an_unfinished_overlay_is_built_again(installer: str, tmp_path: Path, wheels: Path) -> None:
    overlays = tmp_path / "warmpoolcache" / CACHE_FOLDER / "envs"
    later = tmp_path / "later"
    later.mkdir()
    job = bundle_job(tmp_path, "import tinypkg\nprint(tinypkg.VALUE)\n",
                     requirements=f"--no-index\n--find-links {later}\ntinypkg==0.1\n")
    failed = job.run(env=warm_pool(overlays))
    assert failed.returncode != 0
    assert "pip install -r requirements/requirements.txt failed with exit code" in (job.failure() or "")
    # a failed install took its time too, as without a warm pool
    assert len(re.findall(r"^aws_sagemaker_remote: phase install took \d+\.\d\ds$", failed.stderr, re.MULTILINE)) == 1
    [root] = [p for p in overlays.iterdir() if p.is_dir()]
    assert not (root / MARKER_FILE).exists()

    shutil.copy(wheels / "tinypkg-0.1-py3-none-any.whl", later)
    again = job.run(env=warm_pool(overlays))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "creating the overlay environment" in again.stderr
    assert again.stdout.strip().splitlines()[-1] == "from the requirements"
    assert (root / MARKER_FILE).is_file()


def test_a_relaunch_on_a_warm_instance_installs_nothing(installer: str, tmp_path: Path, wheels: Path) -> None:
    """As on SageMaker: ``/opt/ml/sagemaker/warmpoolcache`` exists (the variable aside), and survives the job."""
    job = bundle_job(tmp_path, "import tinypkg\nprint(tinypkg.VALUE)\n",
                     requirements=f"--no-index\n--find-links {wheels}\ntinypkg==0.1\n")
    cache = Path(job.paths.warm_pool_cache)
    cache.mkdir(parents=True)
    env = {"PATH": os.environ["PATH"], "UV_CACHE_DIR": ""}  # the package caches go to the warm-pool folder too

    first = job.run(env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "aws_sagemaker_remote: installing requirements/requirements.txt" in first.stderr
    assert "aws_sagemaker_remote: phase install took " in first.stderr
    [root] = [p for p in (cache / CACHE_FOLDER / "envs").iterdir() if p.is_dir()]
    if installer == "uv":
        assert (cache / CACHE_FOLDER / "uv").is_dir()

    second = job.run(env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "aws_sagemaker_remote: installing" not in second.stderr
    # nothing was installed: no install step in the breakdown either
    assert "phase install took" not in second.stderr
    assert f"aws_sagemaker_remote: using the overlay environment {root}" in second.stderr
    assert second.stdout.strip().splitlines()[-1] == "from the requirements"

    # another requirements file is another environment, beside the first
    other = bundle_job(tmp_path, "import six\nprint(six.__version__)\n",
                       requirements=f"--no-index\n--find-links {wheels}\nsix==1.16.0\n")
    third = other.run(env=env)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "aws_sagemaker_remote: installing requirements/requirements.txt" in third.stderr
    assert len([p for p in (cache / CACHE_FOLDER / "envs").iterdir() if p.is_dir()]) == 2


def test_without_a_warm_pool_the_requirements_go_into_the_images_python(tmp_path: Path, wheels: Path) -> None:
    job = bundle_job(tmp_path, "import sys, tinypkg\nprint(sys.executable)\n",
                     requirements=f"--no-index\n--find-links {wheels}\ntinypkg==0.1\n")
    target = tmp_path / "target"
    result = job.run(env={"PIP_TARGET": str(target), "PYTHONPATH": str(target)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == sys.executable
    assert "overlay" not in result.stderr
    assert (target / "tinypkg").is_dir()


def test_a_requirement_the_user_already_has(installer: str, tmp_path: Path, wheels: Path) -> None:
    """pip counts the user's ``six`` as installed; uv installs its own into the overlay (docs say so)."""
    import importlib.metadata

    try:
        users = importlib.metadata.distribution("six")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("six is not installed here")
    overlays = tmp_path / "warmpoolcache" / CACHE_FOLDER / "envs"
    job = bundle_job(tmp_path, "import six\nprint('six=' + six.__file__)\n",
                     requirements=f"--no-index\n--find-links {wheels}\nsix\n")
    result = job.run(env=warm_pool(overlays))
    assert result.returncode == 0, result.stdout + result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("six=")]
    if installer == "pip":
        assert line == "six=" + str(users.locate_file("six.py"))
    else:
        assert under(line[len("six="):], overlays)


def test_a_stop_ends_the_wait_for_another_jobs_build(tmp_path: Path) -> None:
    """While another process builds the overlay, a stopped job stops waiting and runs nothing."""
    overlays = tmp_path / "warmpoolcache" / CACHE_FOLDER / "envs"
    overlays.mkdir(parents=True)
    requirements = "# nothing\n"
    job = bundle_job(tmp_path, "print('script ran')\n", requirements=requirements)
    # the job's interpreter is this one, so it looks for the overlay of the same key
    env = job.env(warm_pool(overlays))
    installer = "uv" if pick_installer(env)[0] else "pip"
    lock = overlays / (overlay_key(requirements.encode(), None, None, image=image_identity(), installer=installer)
                       + ".lock")
    with locked(str(lock), lambda: None, lambda: None):
        process = subprocess.Popen(job.command(), env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   stdin=subprocess.DEVNULL)
        try:
            assert process.stderr is not None
            line = process.stderr.readline()
            assert line.startswith("aws_sagemaker_remote: waiting for another job to build the overlay environment")
            process.send_signal(signal.SIGTERM)
            assert process.wait(TIMEOUT) == 128 + signal.SIGTERM
        finally:
            process.kill()
            process.communicate()
    assert job.failure() == "the job was stopped by SIGTERM before the script ran"
    assert not (overlays / lock.stem).exists()


def test_nothing_to_install_needs_no_overlay(tmp_path: Path) -> None:
    overlays = tmp_path / "warmpoolcache" / CACHE_FOLDER / "envs"
    job = bundle_job(tmp_path, "import sys\nprint(sys.executable)\n")
    result = job.run(env=warm_pool(overlays))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == sys.executable
    assert not overlays.exists()


def test_overlays_differ_by_requirements_configuration_and_interpreter(
        run_python: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    key = overlay_key(b"six==1.16.0\n", None, None)
    assert len({
        key,
        overlay_key(None, None, None),
        overlay_key(b"six==1.17.0\n", None, None),
        overlay_key(b"six==1.16.0\n", b"export A=1\n", None),
        overlay_key(b"six==1.16.0\n", None, "pip install sagemaker"),
        overlay_key(b"six==1.16.0\n", None, None, installer="uv"),
    }) == 6
    # stable: another process of the same interpreter finds the same overlay
    other = run_python("-c", "from aws_sagemaker_remote.overlay import overlay_key; "
                             "print(overlay_key(b'six==1.16.0\\n', None, None))")
    assert other.returncode == 0, other.stderr
    assert other.stdout.strip() == key
    monkeypatch.setattr(sys, "executable", "/opt/other/bin/python3")
    assert overlay_key(b"six==1.16.0\n", None, None) != key


@pytest.mark.parametrize("where", ["configuration", "pip.conf"])
def test_pip_only_settings_make_pip_install_on_a_warm_pool_too(where: str, tmp_path: Path, wheels: Path) -> None:
    """An index that only pip reads (a ``PIP_INDEX_URL`` the configuration exports, or ``index-url`` in
    the user's pip.conf) makes pip install, as without a warm pool; uv would not see it."""
    index = tmp_path / "index"
    (index / "tinypkg").mkdir(parents=True)
    wheel = wheels / "tinypkg-0.1-py3-none-any.whl"
    (index / "tinypkg" / "index.html").write_text(f'<a href="{wheel.as_uri()}">{wheel.name}</a>\n')
    uv_calls = tmp_path / "uv-calls"
    fake = tmp_path / "fake-uv"
    fake.mkdir()
    (fake / "uv").write_text(f'#!/bin/sh\necho "$*" >> "{uv_calls}"\nexec "{_uv_binary()}" "$@"\n')
    (fake / "uv").chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    code: Dict[str, Any] = {"requirements": "tinypkg==0.1\n"}
    if where == "configuration":
        code["configuration_command"] = f"export PIP_INDEX_URL={index.as_uri()}"
    else:
        (home / ".config" / "pip").mkdir(parents=True)
        (home / ".config" / "pip" / "pip.conf").write_text(f"[global]\nindex-url = {index.as_uri()}\n")
    job = bundle_job(tmp_path, "import tinypkg\nprint(tinypkg.VALUE)\n", **code)
    overlays = tmp_path / "warmpoolcache" / CACHE_FOLDER / "envs"
    env = dict(warm_pool(overlays), HOME=str(home), XDG_CONFIG_HOME="",
               PATH=str(fake) + os.pathsep + _without_uv(os.environ.get("PATH", os.defpath)),
               # none of this machine's own pip settings: the job's are the test's
               **{k: "" for k in os.environ if k.startswith("PIP_") and k not in PIP_COSMETIC})

    result = job.run(env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == "from the requirements"
    log = result.stderr.splitlines()
    assert "aws_sagemaker_remote: installing requirements/requirements.txt" in log
    setting = "PIP_INDEX_URL" if where == "configuration" else f"index-url in {home}/.config/pip/pip.conf"
    assert f"aws_sagemaker_remote: uv is on PATH, but pip reads {setting} and uv does not: installing with pip" in log
    calls = uv_calls.read_text().splitlines() if uv_calls.exists() else []
    assert not any(call.startswith("pip install") for call in calls), calls
    # the image's own settings are known before the configuration runs: then uv builds nothing either
    assert (calls == []) == (where == "pip.conf"), calls

    again = job.run(env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "aws_sagemaker_remote: installing" not in again.stderr
