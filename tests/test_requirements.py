"""``--sagemaker-requirements``: a requirements file, a pyproject.toml, a lock file or ``freeze``,
and the package indexes of this machine's pip/uv configuration passed on without being printed.

Nothing needs the internet: the packages are wheels built in the test's folder, found through
``PIP_NO_INDEX``/``PIP_FIND_LINKS`` (which a local job inherits, as it inherits the launcher's
environment), or served by a package index on 127.0.0.1 that asks for a password.
"""
from __future__ import annotations

import base64
import http.server
import importlib.metadata
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest
from test_bootstrap import Job, make_wheel, without_uv

from aws_sagemaker_remote.bundle import INDEXES_ARC, build_bundle
from aws_sagemaker_remote.plan import plan_requirements
from aws_sagemaker_remote.requirements import mask_url, package_indexes, resolve
from aws_sagemaker_remote.spec import CodeSpec

TIMEOUT = 180
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/python:3.11"
SECRET = "hunter2-Pw-4242"

SCRIPT = """
import json
from aws_sagemaker_remote import sagemaker_processing_main

def main(args):
    import importlib
    found = {}
    for name in ("tinypkg", "cfgpkg"):
        try:
            found[name] = importlib.import_module(name).VALUE
        except ImportError:
            found[name] = None
    print("SEEN=" + json.dumps(found))

if __name__ == "__main__":
    sagemaker_processing_main(main=main, base_job_name="reqs")
"""

PYPROJECT = """
[project]
name = "proj"
version = "0.1"
requires-python = ">=3.8"
dependencies = ["tinypkg==0.1"]

[project.optional-dependencies]
gpu = ["cfgpkg==0.2"]
all = ["proj[gpu]"]
"""


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    folder = tmp_path / "wheels"
    folder.mkdir()
    make_wheel(folder, "tinypkg", "0.1", {"tinypkg/__init__.py": "VALUE = 'tiny'\n"})
    make_wheel(folder, "cfgpkg", "0.2", {"cfgpkg/__init__.py": "VALUE = 'cfg'\n"})
    return folder


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "job.py").write_text(SCRIPT)
    (folder / "pyproject.toml").write_text(PYPROJECT)
    return folder


def offline(wheels: Path, uv: bool = False) -> Dict[str, str]:
    """pip and uv find the test's wheels and nothing else; the job installs with pip (no uv on PATH)
    unless ``uv``."""
    path = os.environ.get("PATH", os.defpath)
    return {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels), "UV_NO_INDEX": "1", "UV_FIND_LINKS": str(wheels),
            "PATH": path if uv else without_uv(path)}


def seen(output: str) -> List[Dict[str, Any]]:
    return [json.loads(line.split("SEEN=", 1)[1]) for line in output.splitlines() if "SEEN=" in line]


def _uv_lock(project: Path, wheels: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed")
    import subprocess

    done = subprocess.run([uv, "lock", "--offline", "--no-index", "--find-links", str(wheels)], cwd=project,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def _pylock(project: Path) -> None:
    (project / "pylock.toml").write_text(
        'lock-version = "1.0"\ncreated-by = "tests"\n\n'
        '[[packages]]\nname = "tinypkg"\nversion = "0.1"\n\n'
        '[[packages]]\nname = "cfgpkg"\nversion = "0.2"\nmarker = "python_version >= \'3\'"\n')


@pytest.mark.parametrize(("value", "expected", "prepare"), [
    ("pyproject.toml", {"tinypkg": "tiny", "cfgpkg": None}, None),
    ("pyproject.toml[gpu]", {"tinypkg": "tiny", "cfgpkg": "cfg"}, None),
    ("pyproject.toml[all]", {"tinypkg": "tiny", "cfgpkg": "cfg"}, None),
    ("pylock.toml", {"tinypkg": "tiny", "cfgpkg": "cfg"}, "pylock"),
    ("uv.lock", {"tinypkg": "tiny", "cfgpkg": None}, "uv"),
    ("uv.lock[gpu]", {"tinypkg": "tiny", "cfgpkg": "cfg"}, "uv"),
    ("reqs.txt", {"tinypkg": None, "cfgpkg": "cfg"}, "file"),
])
def test_each_form_installs_what_it_declares_in_a_local_job(
        value: str, expected: Dict[str, Any], prepare: Any, project: Path, wheels: Path, run_script: Any) -> None:
    if prepare == "uv":
        _uv_lock(project, wheels)
    elif prepare == "pylock":
        _pylock(project)
    elif prepare == "file":
        (project / "reqs.txt").write_text("cfgpkg==0.2\n")
    result = run_script(project / "job.py", "--sagemaker-run=local", f"--sagemaker-requirements={value}",
                        cwd=project, env=offline(wheels, uv=prepare == "uv"), timeout=TIMEOUT)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert seen(result.stdout) == [expected]
    shipped = "reqs.txt" if prepare == "file" else "requirements.txt"
    assert f"aws_sagemaker_remote: installing requirements/{shipped}" in log
    assert "aws_sagemaker_remote: phase install took " in log


def test_freeze_pins_the_versions_installed_here_of_what_the_code_imports(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    (folder / "helpers").mkdir(parents=True)
    (folder / "job.py").write_text(
        "import json, os.path\nimport yaml\nfrom helpers import util\nimport aws_sagemaker_remote\n"
        "def main():\n    from pathspec import PathSpec\n    import not_installed_anywhere\n")
    (folder / "helpers" / "__init__.py").write_text("")
    (folder / "helpers" / "util.py").write_text("import helpers\nfrom . import x\n")
    code = CodeSpec(script=str(folder / "job.py"), script_dir=str(folder))
    planned = plan_requirements("freeze", code)
    assert planned.requirements is None
    pins = [line for line in (planned.requirements_text or "").splitlines() if not line.startswith("#")]
    yaml, pathspec = importlib.metadata.distribution("PyYAML"), importlib.metadata.distribution("pathspec")
    # the standard library, the project's own modules and the framework itself are not pinned
    assert pins == sorted([f"{yaml.metadata['Name']}=={yaml.version}", f"pathspec=={pathspec.version}"],
                          key=str.lower)


def test_freeze_installs_the_pins_in_a_local_job(tmp_path: Path, run_script: Any, wheels: Path) -> None:
    folder = tmp_path / "frozen"
    folder.mkdir()
    (folder / "job.py").write_text(SCRIPT.replace("import importlib\n", "import importlib\n    import yaml\n"))
    result = run_script(folder / "job.py", "--sagemaker-run=local", "--sagemaker-requirements=freeze",
                        cwd=folder, env=offline(wheels), timeout=TIMEOUT)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    version = importlib.metadata.version("PyYAML")
    # pip finds the pinned version already there (the overlay sees this interpreter's packages)
    assert f"pyyaml=={version}" in log.lower() and "Requirement already satisfied" in log
    assert f"note: --sagemaker-requirements=freeze pins PyYAML=={version}" in result.stderr


@pytest.mark.parametrize(("value", "files", "needle"), [
    ("missing.txt", {}, "file 'missing.txt' does not exist"),
    ("pyproject.toml[nope]", {"pyproject.toml": PYPROJECT}, "has no optional-dependencies extra 'nope'"),
    ("pyproject.toml", {"pyproject.toml": "[project\nname = 1"}, "is not valid TOML"),
    ("pyproject.toml", {"pyproject.toml": "[tool.x]\na = 1\n"}, "has no [project] table"),
    ("pyproject.toml", {"pyproject.toml": '[project]\nname = "p"\ndynamic = ["dependencies"]\n'}, "dynamic"),
    ("reqs.txt[gpu]", {"reqs.txt": "six\n"}, "only a pyproject.toml or a uv.lock takes [EXTRA,...]"),
    ("pylock.toml", {"pylock.toml": 'lock-version = "1.0"\n'}, "lists no [[packages]]"),
    ("freeze", {}, "freeze found no installed distribution"),
])
def test_bad_values_stop_before_anything_is_staged(
        value: str, files: Dict[str, str], needle: str, tmp_path: Path, run_script: Any,
        one_error_line: Callable[..., str], clean_environment: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "job.py").write_text("import json\nprint('ran')\n" if value == "freeze" else SCRIPT)
    if value == "freeze":
        (folder / "job.py").write_text(
            "import json\nfrom aws_sagemaker_remote import sagemaker_processing_main\n"
            "sagemaker_processing_main(main=lambda args: print('ran'), base_job_name='bad')\n")
    for name, text in files.items():
        (folder / name).write_text(text)
    result = run_script(folder / "job.py", "--sagemaker-run=local", f"--sagemaker-requirements={value}",
                        cwd=folder, timeout=TIMEOUT)
    assert result.returncode == 2, result.stdout + result.stderr
    line = one_error_line(result.stderr, "--sagemaker-requirements", needle)
    assert "it accepts a requirements file, a pyproject.toml" in line
    assert "ran" not in result.stdout
    assert not [p for p in clean_environment.rglob("*") if p.is_file()], "something was staged or created"


def test_index_credentials_are_masked_in_the_dry_run(tmp_path: Path, run_script: Any) -> None:
    folder = tmp_path / "dry"
    folder.mkdir()
    (folder / "job.py").write_text(SCRIPT)
    (folder / "requirements.txt").write_text("tinypkg==0.1\n")
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\nextra-index-url = https://token:{SECRET}@extra.example.com/simple\n")
    result = run_script(folder / "job.py", "--sagemaker-run=yes", "--sagemaker-dry-run", "--sagemaker-role", ROLE,
                        "--sagemaker-image", IMAGE, "--sagemaker-region", "us-east-1",
                        "--sagemaker-requirements", "requirements.txt", cwd=folder, timeout=TIMEOUT,
                        env={"PIP_INDEX_URL": f"https://bob:{SECRET}@pypi.example.com/simple",
                             "PIP_CONFIG_FILE": str(conf)})
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "package index: https://***@pypi.example.com/simple (index-url" in result.stderr
    assert "package index: https://***@extra.example.com/simple (extra-index-url" in result.stderr
    assert SECRET not in out
    # nor in the request: the indexes travel in the bundle, not in the job's Environment
    assert "PIP_INDEX_URL" not in json.dumps(json.loads(result.stdout)["request"])


def test_package_indexes_from_variables_and_pip_configuration(tmp_path: Path) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = https://a.example/simple\nextra-index-url =\n"
                    "    https://b.example/simple\n    https://c.example/simple\n")
    assert package_indexes({"PIP_CONFIG_FILE": str(conf)}) == (
        ("index-url", "https://a.example/simple"), ("extra-index-url", "https://b.example/simple"),
        ("extra-index-url", "https://c.example/simple"))
    # the variables win over the file; uv's too
    assert package_indexes({"PIP_CONFIG_FILE": str(conf), "UV_INDEX_URL": "https://u:p@uv.example/simple",
                            "UV_INDEX": "extra=https://d.example/simple"}) == (
        ("index-url", "https://u:p@uv.example/simple"), ("extra-index-url", "https://b.example/simple"),
        ("extra-index-url", "https://c.example/simple"), ("extra-index-url", "https://d.example/simple"))
    assert package_indexes({"PIP_CONFIG_FILE": os.devnull}) == ()
    assert mask_url("see https://u:p@h/simple and http://tok@x/y") == "see https://***@h/simple and http://***@x/y"


# --- a private index that asks for a password ------------------------------------------------------------

class _Index(http.server.BaseHTTPRequestHandler):
    """PEP 503 pages of the wheels in ``folder``, behind HTTP basic authentication."""

    folder: Path
    expected: str
    seen: List[str]

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization") or "")
        if self.headers.get("Authorization") != self.expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="index"')
            self.end_headers()
            return
        if self.path.startswith("/files/"):
            body = (self.folder / self.path[len("/files/"):]).read_bytes()
            kind = "application/octet-stream"
        else:
            name = self.path.strip("/").split("/")[-1]
            links = "".join(f'<a href="/files/{w.name}">{w.name}</a>' for w in sorted(self.folder.iterdir())
                            if w.name.split("-")[0] == name.replace("-", "_"))
            body = f"<html><body>{links}</body></html>".encode()
            kind = "text/html"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def private_index(wheels: Path) -> Iterator[Any]:
    handler = type("Index", (_Index,), {"folder": wheels, "seen": [],
                                        "expected": "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_the_index_of_the_pip_configuration_reaches_the_install_and_nothing_prints_its_password(
        tmp_path: Path, private_index: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server, handler = private_index
    url = f"http://alice:{SECRET}@127.0.0.1:{server.server_address[1]}/simple"
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\nindex-url = {url}\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_EXTRA_INDEX_URL",
                 "UV_INDEX"):
        monkeypatch.delenv(name, raising=False)  # this machine's own settings would win over the file
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "job.py").write_text("import os, tinypkg\nprint('index-var=' + str('PIP_INDEX_URL' in os.environ))\n"
                                   "print(tinypkg.VALUE)\n")
    (folder / "requirements.txt").write_text("tinypkg==0.1\n")
    code = plan_requirements(str(folder / "requirements.txt"),
                             CodeSpec(script=str(folder / "job.py"), script_dir=str(folder)))
    assert SECRET not in repr(code)
    bundle = build_bundle(code, "processing", workdir=str(tmp_path))
    with open(bundle.path, encoding="utf-8") as fh:  # the code manifest: path, blob, executable
        blobs = {entry[0]: entry[1] for entry in json.load(fh)["files"]}
    manifest = json.loads((Path(bundle.path).parent / blobs["manifest.json"]).read_text())
    assert manifest["package_indexes"] == INDEXES_ARC
    # the copy on this disk is its owner's alone: its URL holds the password
    assert (Path(bundle.path).parent / blobs[INDEXES_ARC]).stat().st_mode & 0o777 == 0o600
    job = Job(bundle, tmp_path / "opt" / "ml", "processing")
    target = tmp_path / "target"
    # the job's machine has no pip configuration of its own: the index comes from the bundle
    result = job.run(env={"PIP_CONFIG_FILE": os.devnull, "PIP_TARGET": str(target), "PYTHONPATH": str(target)})
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert result.stdout.strip().splitlines()[-1] == "tiny"
    assert handler.expected in handler.seen  # the install authenticated with the configured credentials
    assert SECRET not in out
    # the script itself does not get the index variables
    assert "index-var=False" in result.stdout


def _hashed_pylock(project: Path, wheels: Path, tiny_hash: str) -> None:
    import hashlib

    cfg = hashlib.sha256((wheels / "cfgpkg-0.2-py3-none-any.whl").read_bytes()).hexdigest()
    (project / "pylock.toml").write_text(
        'lock-version = "1.0"\ncreated-by = "tests"\n\n'
        '[[packages]]\nname = "tinypkg"\nversion = "0.1"\n'
        f'wheels = [{{ name = "tinypkg-0.1-py3-none-any.whl", hashes = {{ sha256 = "{tiny_hash}" }} }}]\n\n'
        '[[packages]]\nname = "cfgpkg"\nversion = "0.2"\nmarker = "python_version >= \'3\'"\n'
        f'sdist = {{ name = "cfgpkg-0.2.tar.gz", hashes = {{ sha256 = "{"0" * 64}" }} }}\n'
        f'wheels = [{{ name = "cfgpkg-0.2-py3-none-any.whl", hashes = {{ sha256 = "{cfg}", md5 = "x" }} }}]\n')


def test_a_lock_files_hashes_are_checked_by_the_install(project: Path, wheels: Path, run_script: Any) -> None:
    import hashlib

    tiny = hashlib.sha256((wheels / "tinypkg-0.1-py3-none-any.whl").read_bytes()).hexdigest()
    _hashed_pylock(project, wheels, tiny)
    text = resolve("pylock.toml", str(project)).text or ""
    # every file's hash the lock names, in pip's form (md5 is not one pip takes)
    assert f"tinypkg==0.1 \\\n    --hash=sha256:{tiny}\n" in text
    assert "cfgpkg==0.2 ; python_version >= '3' \\\n    --hash=sha256:" in text
    assert text.count("--hash=") == 3 and "md5" not in text

    result = run_script(project / "job.py", "--sagemaker-run=local", "--sagemaker-requirements=pylock.toml",
                        cwd=project, env=offline(wheels), timeout=TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert seen(result.stdout) == [{"tinypkg": "tiny", "cfgpkg": "cfg"}]

    # a wheel that is not the locked one is refused
    _hashed_pylock(project, wheels, "f" * 64)
    refused = run_script(project / "job.py", "--sagemaker-run=local", "--sagemaker-requirements=pylock.toml",
                         cwd=project, env=offline(wheels), timeout=TIMEOUT)
    assert refused.returncode != 0
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in refused.stdout + refused.stderr


def test_a_lock_with_a_package_without_hashes_ships_none(tmp_path: Path) -> None:
    """pip checks hashes for every requirement or none: a package without any turns them off."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "job.py").write_text("")
    (folder / "pylock.toml").write_text(
        'lock-version = "1.0"\ncreated-by = "tests"\n\n'
        f'[[packages]]\nname = "tinypkg"\nversion = "0.1"\n'
        f'wheels = [{{ name = "tinypkg-0.1-py3-none-any.whl", hashes = {{ sha256 = "{"a" * 64}" }} }}]\n\n'
        '[[packages]]\nname = "mylib"\nvcs = { type = "git", url = "https://example.com/mylib.git", '
        'commit-id = "0123456789abcdef0123456789abcdef01234567" }\n')
    text = resolve("pylock.toml", str(folder)).text or ""
    assert "--hash" not in text
    assert "# without hashes: the lock has none for mylib\n" in text
    assert "tinypkg==0.1\n" in text


def test_files_written_from_memory_for_staging_are_private(tmp_path: Path) -> None:
    from aws_sagemaker_remote.stage import Blobs, CodeArchive

    digest = Blobs(str(tmp_path)).add_bytes(b'[["index-url", "https://alice:pw@example.com/simple"]]')
    assert (tmp_path / digest).stat().st_mode & 0o777 == 0o600
    CodeArchive([], [(INDEXES_ARC, b"[]")], str(tmp_path), path=str(tmp_path / "archives.txt"))
    assert (tmp_path / "generated" / INDEXES_ARC).stat().st_mode & 0o777 == 0o600
