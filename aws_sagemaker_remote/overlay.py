"""A local job's own Python environment, layered over the interpreter that runs it.

On SageMaker, a job's requirements file and configuration commands change the
job's image, which disappears with the job. A local job has no image: installed
into the interpreter that runs it, they would change the user's own
environment (a pinned ``six`` downgrades the user's ``six``; ``pip install
sagemaker`` in a configuration command adds a hundred packages). So under the
local backend the bootstrap installs into an *overlay* instead:

* a virtual environment created over the interpreter that runs the job, with
  ``--system-site-packages``, so that the packages of that interpreter stand in
  for the image's;
* whose own ``site-packages`` comes first on ``sys.path``: what the job
  installs shadows the user's version of the same package without replacing it;
* with a ``.pth`` file that puts the interpreter's own ``site-packages`` after
  the overlay's when that interpreter is itself a virtual environment (a
  virtual environment created from another one sees only the base
  interpreter's packages);
* with ``pip``/``pip3`` in its ``bin`` folder, first on ``PATH`` during the
  configuration, so that ``pip install`` there installs into the overlay.

The same overlay keeps a SageMaker training job's requirements on a warm pool:
overlays live in the warm-pool cache folder
(``/opt/ml/sagemaker/warmpoolcache``, :data:`~aws_sagemaker_remote.container.WARM_POOL_CACHE_ENV`),
under ``aws-sagemaker-remote/envs``, one per image, interpreter, requirements
file, package indexes and configuration (see :func:`overlay_key`), so a
relaunch on the same warm instance finds its overlay ready and installs
nothing. The local backend gives every local job such a folder, kept across
jobs under the tool's home (``~/.cache/aws-sagemaker-remote/warmpoolcache``).
Without the folder (a SageMaker job without a warm pool), the bootstrap
installs into the image's interpreter and no overlay is made.

Jobs that build the same overlay at the same time (the instances of one local
job, or two jobs) take turns through a lock file beside it. An overlay is not
built elsewhere and renamed into place, because a virtual environment holds its
own absolute path (in its scripts' ``#!`` lines); instead, a marker file,
written atomically (``os.replace``) as the last step, says it is complete, and an
overlay without one (a build that was killed) is deleted and built again.

``uv`` builds and fills the overlay when it is on ``PATH`` (``uv venv``,
``uv pip install``); ``python -m venv`` and ``pip`` otherwise, and pip also
when pip-only settings are present (``PIP_*`` variables, or pip's configuration
files: see :func:`pip_only_setting`), since uv reads neither. The requirements
are installed by the installer this rule picks after the configuration ran (it
may export such variables), and the overlay's key includes the installer picked
before it.

Standard library only: the bootstrap imports this module inside the job.
"""
from __future__ import annotations

import configparser
import contextlib
import hashlib
import json
import os
import shutil
import site
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

#: Our folder inside the warm-pool cache folder: ``envs/`` (the overlays), ``pip/`` and ``uv/`` (package caches).
CACHE_FOLDER = "aws-sagemaker-remote"
#: Written into an overlay once it is complete; an overlay without it is rebuilt.
MARKER_FILE = "aws-sagemaker-remote-overlay.json"
#: The ``.pth`` file that layers the interpreter's own packages under the overlay's.
LAYERS_FILE = "_aws_sagemaker_remote_layers.pth"
#: Part of every key: a change in how overlays are built gives new ones.
FORMAT = 2
#: Seconds between two tries of a lock another job holds.
LOCK_POLL_SECONDS = 0.1

#: Runs a command with its output going to the job's log; returns the exit code.
Runner = Callable[[Sequence[str]], int]


class OverlayError(Exception):
    """Building the overlay failed: ``what`` failed with exit ``code`` (its output is in the log)."""

    def __init__(self, what: str, code: int) -> None:
        super().__init__(what)
        self.what = what
        self.code = code


def _digest(data: Optional[bytes]) -> Optional[str]:
    return None if data is None else hashlib.sha256(data).hexdigest()


def image_identity() -> str:
    """What the overlay depends on in the image: a digest of every distribution (name and version)
    this interpreter sees. Another image, or the same tag rebuilt with other packages, gives
    another digest; the image's URI would not tell a rebuilt tag apart."""
    from importlib import metadata

    seen = sorted({f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions()
                   if d.metadata["Name"]})
    return hashlib.sha256("\n".join(seen).encode("utf-8")).hexdigest()


def package_cache_environment(cache: str, env: Mapping[str, str]) -> Dict[str, str]:
    """``PIP_CACHE_DIR`` and ``UV_CACHE_DIR`` in the warm-pool cache folder ``cache``, for
    the ones ``env`` does not set: a changed requirements file downloads only what is new."""
    wanted = {"PIP_CACHE_DIR": os.path.join(cache, CACHE_FOLDER, "pip"),
              "UV_CACHE_DIR": os.path.join(cache, CACHE_FOLDER, "uv")}
    return {k: v for k, v in wanted.items() if not env.get(k)}


def overlay_key(requirements: Optional[bytes], configuration_script: Optional[bytes],
                configuration_command: Optional[str], indexes: Optional[bytes] = None,
                image: Optional[str] = None, installer: Optional[str] = None) -> str:
    """The name of the overlay of this image, interpreter, requirements file, package indexes,
    configuration and installer (``"uv"`` or ``"pip"``: the two resolve the same file differently).

    The interpreter (its path, prefix and version) and the image (``image``, see
    :func:`image_identity`) are part of it because an overlay is built over one
    interpreter and sees its packages; the package indexes because they decide
    which packages the same requirements give; the configuration too, because a
    configuration command may install into the overlay, and two jobs with
    different commands must not see each other's packages.
    """
    identity = {
        "format": FORMAT,
        "executable": sys.executable,
        "prefix": sys.prefix,
        "version": sys.version,
        "image": image,
        "requirements": _digest(requirements),
        "indexes": _digest(indexes),
        "configuration_script": _digest(configuration_script),
        "configuration_command": configuration_command,
        "installer": installer,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode("utf-8")).hexdigest()[:32]


def find_uv(env: Mapping[str, str]) -> Optional[str]:
    """The ``uv`` executable on ``env['PATH']``, if any."""
    return shutil.which("uv", path=env.get("PATH", os.defpath))


#: ``PIP_*`` variables (and the pip configuration keys of the same names) that change nothing about what
#: is installed where.
PIP_COSMETIC = ("PIP_DISABLE_PIP_VERSION_CHECK", "PIP_NO_INPUT", "PIP_DEFAULT_TIMEOUT", "PIP_ROOT_USER_ACTION",
                "PIP_PROGRESS_BAR", "PIP_NO_COLOR", "PIP_CACHE_DIR", "PIP_NO_CACHE_DIR", "PIP_CERT", "PIP_TIMEOUT")
#: The sections of a pip configuration file that ``pip install`` reads.
_PIP_SECTIONS = ("global", "install")


def pip_config_files(env: Mapping[str, str], prefix: Optional[str] = None) -> List[str]:
    """The configuration files pip reads (pip's "Configuration" guide: the global files in
    ``$XDG_CONFIG_DIRS`` and ``/etc``, the user's files, and ``pip.conf`` in the interpreter's
    ``prefix``); ``PIP_CONFIG_FILE`` is a ``PIP_*`` variable, counted by :func:`pip_only_setting`."""
    files = [os.path.join(d, "pip", "pip.conf") for d in (env.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(":") if d]
    files.append("/etc/pip.conf")
    home = env.get("HOME")
    if home:
        files.append(os.path.join(home, ".pip", "pip.conf"))
    config_home = env.get("XDG_CONFIG_HOME") or (os.path.join(home, ".config") if home else None)
    if config_home:
        files.append(os.path.join(config_home, "pip", "pip.conf"))
    if prefix:
        files.append(os.path.join(prefix, "pip.conf"))
    return files


def _pip_config_setting(path: str) -> Optional[str]:
    """The first setting of ``path`` that only pip reads (an index, a target folder), if any."""
    parser = configparser.RawConfigParser()
    try:
        if not parser.read(path, encoding="utf-8"):
            return None
    except (configparser.Error, UnicodeDecodeError):
        return f"{path} (unreadable)"  # pip would stop on it; uv would not even look
    for section in _PIP_SECTIONS:
        if parser.has_section(section):
            for name, value in parser.items(section):
                # pip's names: "index-url", "index_url" and "--index-url" are one setting
                variable = "PIP_" + name.lstrip("-").upper().replace("-", "_")
                if value.strip() and variable not in PIP_COSMETIC:
                    return f"{name} in {path}"
    return None


def pip_only_setting(env: Mapping[str, str], prefix: Optional[str] = None) -> Optional[str]:
    """What makes pip, not uv, install: a ``PIP_*`` variable that only pip reads (an index, a
    target folder), or such a setting in one of pip's configuration files (:func:`pip_config_files`
    for the interpreter ``prefix``); uv reads neither. None when there is none."""
    for name in sorted(env):
        if name.startswith("PIP_") and name not in PIP_COSMETIC and env[name] and \
                not (name == "PIP_CONFIG_FILE" and env[name] == os.devnull):
            return name
    for path in pip_config_files(env, prefix):
        setting = _pip_config_setting(path)
        if setting:
            return setting
    return None


def pick_installer(env: Mapping[str, str], prefix: Optional[str] = None) -> Tuple[Optional[str], Optional[str]]:
    """(the ``uv`` to install with, or None for pip; when uv is there but pip is picked, why).

    The same rule for every install: uv when it is on ``PATH`` and no pip-only setting
    (:func:`pip_only_setting`) would be lost on it.
    """
    uv = find_uv(env)
    if uv is None:
        return None, None
    setting = pip_only_setting(env, prefix)
    return (None, setting) if setting else (uv, None)


def layers() -> List[str]:
    """The ``site-packages`` folders of this interpreter that an overlay over it would not see.

    An overlay created with ``--system-site-packages`` sees the base
    interpreter's packages; when this interpreter is a virtual environment, its
    own folders are added after the overlay's.
    """
    if sys.prefix == getattr(sys, "base_prefix", sys.prefix):
        return []
    return [p for p in site.getsitepackages([sys.prefix]) if os.path.isdir(p)]


@dataclass(frozen=True)
class Overlay:
    """One overlay environment: its folder, and the ``uv`` that builds it (``None``: pip)."""

    root: str
    uv: Optional[str] = None

    @property
    def bin_dir(self) -> str:
        return os.path.join(self.root, "bin")

    @property
    def python(self) -> str:
        """The overlay's interpreter: the job's configuration and script run with it."""
        return os.path.join(self.bin_dir, "python")

    @property
    def installer(self) -> str:
        return "uv" if self.uv else "pip"

    @property
    def lock_file(self) -> str:
        return self.root + ".lock"

    def is_ready(self) -> bool:
        """Built completely, and its interpreter (a link to the base one) still there."""
        return os.path.isfile(os.path.join(self.root, MARKER_FILE)) and os.path.exists(self.python)

    def create_command(self, base_python: str) -> List[str]:
        """The command that creates the (empty) overlay over ``base_python``."""
        if self.uv:
            return [self.uv, "venv", "--quiet", "--system-site-packages", "--python", base_python, self.root]
        # no pip of its own: the user's pip is seen through the layers (see build)
        return [base_python, "-m", "venv", "--system-site-packages", "--without-pip", self.root]

    def install_command(self) -> List[str]:
        """The command, without its ``-r FILE``, that installs a requirements file into the overlay."""
        if self.uv:
            return [self.uv, "pip", "install", "--python", self.python]
        return [self.python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]

    def activate(self, env: Mapping[str, str]) -> Dict[str, str]:
        """``env`` as ``source bin/activate`` leaves it: ``pip``, ``python`` ... resolve to the overlay."""
        activated = {k: v for k, v in env.items() if k not in ("PYTHONHOME", "__PYVENV_LAUNCHER__")}
        activated["VIRTUAL_ENV"] = self.root
        activated["PATH"] = os.pathsep.join([self.bin_dir] + [
            p for p in env.get("PATH", os.defpath).split(os.pathsep) if p and p != self.bin_dir])
        return activated

    def mark_ready(self, details: Mapping[str, object]) -> None:
        """Record that the overlay is complete (written atomically)."""
        path = os.path.join(self.root, MARKER_FILE)
        with open(path + ".tmp", "w", encoding="utf-8") as fh:
            json.dump(dict(details), fh, indent=1, sort_keys=True)
        os.replace(path + ".tmp", path)


def _pip_shim(overlay: Overlay, has_pip: bool) -> str:
    """A ``pip`` for the overlay's ``bin``: the overlay's ``python -m pip``, or ``uv pip`` there."""
    if has_pip:
        return f'#!/bin/sh\nexec "{overlay.python}" -m pip "$@"\n'
    return f'#!/bin/sh\nVIRTUAL_ENV="{overlay.root}" exec "{overlay.uv}" pip "$@"\n'


def build(overlay: Overlay, base_python: str, run: Runner) -> None:
    """Create ``overlay`` over ``base_python`` (deleting an unfinished one first).

    Call with the overlay's lock held. Writes the layers ``.pth`` file and,
    where the overlay has none of its own, ``pip``/``pip3``/``pip3.X`` commands.

    :raises OverlayError: a command failed; its output went to the log through ``run``.
    """
    shutil.rmtree(overlay.root, ignore_errors=True)
    code = run(overlay.create_command(base_python))
    if code != 0:
        raise OverlayError(f"creating the overlay environment {overlay.root}", code)
    purelib = subprocess.run(
        [overlay.python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False)
    folder = purelib.stdout.decode("utf-8", "replace").strip()
    if purelib.returncode != 0 or not folder:
        raise OverlayError(f"the overlay environment's python {overlay.python}", purelib.returncode or 1)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, LAYERS_FILE), "w", encoding="utf-8") as fh:
        # addsitedir, not a bare path: the layer's own .pth files (editable installs) count too
        fh.writelines(f"import site; site.addsitedir({path!r})\n" for path in layers())
    has_pip = _has_pip(overlay)
    if not has_pip and not overlay.uv:
        ensure_pip(overlay, run)
        has_pip = True
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    for name in ("pip", "pip3", f"pip{version}"):
        path = os.path.join(overlay.bin_dir, name)
        if not os.path.exists(path):
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(_pip_shim(overlay, has_pip))
            os.chmod(path, 0o755)


def _has_pip(overlay: Overlay) -> bool:
    return subprocess.run([overlay.python, "-c", "import pip"], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode == 0


def ensure_pip(overlay: Overlay, run: Runner, hint: str = "install pip, or uv") -> None:
    """Make ``python -m pip`` work in ``overlay`` (a uv-built one may see no pip): ``ensurepip`` when needed.

    :raises OverlayError: ``ensurepip`` failed.
    """
    if _has_pip(overlay):
        return
    code = run([overlay.python, "-m", "ensurepip", "--default-pip"])
    if code != 0:
        raise OverlayError(f"installing pip into the overlay environment {overlay.root} (the interpreter "
                           f"has no pip and no ensurepip; {hint})", code)


@contextlib.contextmanager
def locked(path: str, on_wait: Callable[[], None], check: Callable[[], None]) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) for the ``with`` block.

    When another process holds it, ``on_wait`` is called once and ``check`` at
    every try, so that a stop can end the wait by raising. The lock goes with
    the process: one that dies does not leave it taken.
    """
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited:
                    waited = True
                    on_wait()
                check()
                time.sleep(LOCK_POLL_SECONDS)
        yield
    finally:
        os.close(fd)  # releases the lock
