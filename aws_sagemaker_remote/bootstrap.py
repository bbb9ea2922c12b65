"""The job side: prepares the environment inside the job image and runs the user's script.

This module runs inside the SageMaker container (and under the local backend)
with nothing but Python 3's standard library, from the ``runtime/`` folder of
the code bundle. It supports Python 3.8 and later. The container starts it
through :data:`aws_sagemaker_remote.render.BOOTSTRAP_STUB`, which unpacks the
bundle and calls :func:`main`.

Steps, in order (see ``docs/container.rst``):

1. read ``<unpack_dir>/manifest.json``, and lay out each input that was
   staged as blobs (a ``ManifestFile`` channel) from its listing
   (:func:`materialize_inputs`);
2. run the configuration script (``source FILE``) and the configuration
   command (``eval COMMAND``) in one ``bash`` process with ``set -e``, and keep
   the environment they leave behind: what they ``export`` reaches the script;
3. ``python -m pip install -r REQUIREMENTS`` with the job's interpreter
   (``uv pip install`` when the image has uv), with the package indexes of the
   bundle's ``package_indexes`` file in this step's environment only;
4. put the bundle's ``runtime`` and ``deps`` folders first on ``PYTHONPATH``;
5. run ``python SCRIPT ARGS...`` from the script's folder, streaming its output
   line by line.

On a warm pool (the warm-pool cache folder ``/opt/ml/sagemaker/warmpoolcache``
exists; the local backend gives every local job one), steps 2 and 3 happen in
an overlay environment kept in that folder instead, reused by the next job on
the instance, and step 5 runs with its ``python`` (see
:mod:`aws_sagemaker_remote.overlay`): the interpreter that runs the job stays
as it was.

Each step's standard output and error go through one pipe, merged, to the
bootstrap's standard output: the lines keep the order the step wrote them in
(a traceback comes after the prints before it), and the failure message is
taken from the end of that merged output.

When a step fails, a one-paragraph message goes to the job's failure file
(``/opt/ml/output/message`` for processing, ``/opt/ml/output/failure`` for
training), where SageMaker picks it up as the job's exit message / failure
reason, and the process exits with a non-zero code. Environment variable
values are never printed: the configuration may export secrets.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import IO, Any, Deque, Dict, List, Mapping, NoReturn, Optional, Sequence, Tuple

from .container import (
    ARGUMENT_FILE_FLAG,
    DEFAULT as DEFAULT_PATHS,
    IN_JOB_ENV,
    ROOT_ENV,
    ContainerPaths,
    training_environment,
    warm_pool_cache,
)
from .errors import exit_status
from .overlay import (
    CACHE_FOLDER,
    Overlay,
    OverlayError,
    build,
    ensure_pip,
    image_identity,
    locked,
    overlay_key,
    package_cache_environment,
    pick_installer,
)

#: Lines of output kept from each step for the failure message.
TAIL_LINES = 20
#: SageMaker keeps at most 1 KiB of ``ExitMessage`` / ``FailureReason``.
MESSAGE_LIMIT = 1024
#: Seconds to wait for the rest of a child's output once it exited.
PIPE_DRAIN_SECONDS = 2.0
#: Printed in front of the bootstrap's own log lines.
LOG_PREFIX = "aws_sagemaker_remote:"

# Names of the variables that carry our own values into the configuration shell.
# They are removed from the environment the shell hands back.
_SHELL_PREFIX = "__AWS_SAGEMAKER_REMOTE_"
# Variables bash changes on its own; the script gets the values it would have had.
_SHELL_OWN_VARIABLES = ("_", "SHLVL", "PWD", "OLDPWD")

#: Runs inside ``bash``: source the script, eval the command, and on any exit
#: write the resulting environment (and the step that was running) to a file.
#: The values come in through environment variables, so nothing is quoted into
#: the shell text and nothing is echoed.
CONFIGURE_SHELL = r"""
__aws_sagemaker_remote_exit() {
  __aws_sagemaker_remote_rc=$?
  "$__AWS_SAGEMAKER_REMOTE_PYTHON" -c "$__AWS_SAGEMAKER_REMOTE_DUMP" \
    "$__AWS_SAGEMAKER_REMOTE_OUT" "$__aws_sagemaker_remote_step" || true
  exit $__aws_sagemaker_remote_rc
}
trap __aws_sagemaker_remote_exit EXIT
set -e
__aws_sagemaker_remote_step=script
if [ -n "$__AWS_SAGEMAKER_REMOTE_SCRIPT" ]; then
  source "$__AWS_SAGEMAKER_REMOTE_SCRIPT"
fi
__aws_sagemaker_remote_step=command
if [ -n "$__AWS_SAGEMAKER_REMOTE_COMMAND" ]; then
  eval "$__AWS_SAGEMAKER_REMOTE_COMMAND"
fi
__aws_sagemaker_remote_step=done
"""

#: Python run by the shell's exit trap: dump the environment as JSON.
_DUMP_ENVIRONMENT = (
    "import json,os,sys\n"
    "env={k:v for k,v in os.environ.items() if not k.startswith('" + _SHELL_PREFIX + "')}\n"
    "with open(sys.argv[1],'w') as f: json.dump({'step':sys.argv[2],'env':env},f)\n"
)


class StepFailed(Exception):
    """A bootstrap step failed; ``message`` is the paragraph for the failure file.

    ``log_line`` (default: ``message``) is what the log gets: after a traceback the log
    already ends with the exception, so it need not be repeated there.
    """

    def __init__(self, message: str, exit_code: int, log_line: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code if exit_code > 0 else 1
        self.log_line = message if log_line is None else log_line


class _Children:
    """The child process currently running, so a stop signal can be forwarded to it.

    SageMaker stops a job by sending SIGTERM to the container's first process,
    which is this one; the user's script is our child and must get the signal
    too, so that it can save a checkpoint in the grace period.
    """

    def __init__(self) -> None:
        self.current: Optional["subprocess.Popen[bytes]"] = None
        self.stop_signal: Optional[int] = None

    def forward(self, signum: int, _frame: Any) -> None:
        self.stop_signal = signum
        child = self.current
        if child is not None and child.poll() is None:
            try:
                child.send_signal(signum)
            except OSError:
                pass  # it ended in the meantime


_CHILDREN = _Children()


def _log(text: str) -> None:
    """One line of the bootstrap's own, on stderr (never an environment value)."""
    try:
        sys.stderr.write(f"{LOG_PREFIX} {text}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def phase_line(name: str, seconds: float) -> str:
    """``aws_sagemaker_remote: phase NAME took 1.23s``: how long one phase of the job took.

    The watch code reads these lines from the log for its breakdown of the job's time
    (:mod:`aws_sagemaker_remote.phases`); the local backend writes the same for its own phases.
    """
    return f"{LOG_PREFIX} phase {name} took {max(seconds, 0.0):.2f}s"


def _phase(name: str, seconds: float) -> None:
    """Log how long phase ``name`` (``install``, ``script``) took, in the form :func:`phase_line` gives."""
    _log(phase_line(name, seconds)[len(LOG_PREFIX) + 1:])


def _binary(stream: IO[Any]) -> Any:
    return getattr(stream, "buffer", stream)


#: How Python starts printing an uncaught exception.
_TRACEBACK_HEADER = b"Traceback (most recent call last):"


class StepOutput:
    """What a step left behind: its exit code and the end of its merged output.

    ``traceback_seen`` says a Python traceback was printed at some point, so the
    last line of the output is most likely the exception that ended the step.
    """

    def __init__(self) -> None:
        self.code = 0
        self.tail: Deque[bytes] = collections.deque(maxlen=TAIL_LINES)
        self.traceback_seen = False

    @property
    def lines(self) -> List[str]:
        """The last :data:`TAIL_LINES` lines, decoded."""
        # list() copies in one step, even if a pump that outlived the child still appends
        return [raw.decode("utf-8", "replace").rstrip("\r\n") for raw in list(self.tail)]


def _pump(source: IO[bytes], sink: Any, output: StepOutput) -> None:
    """Copy ``source`` to ``sink`` line by line, flushing each line (logs are read live)."""
    broken = False
    for line in iter(source.readline, b""):
        output.tail.append(line)
        if line.startswith(_TRACEBACK_HEADER):
            output.traceback_seen = True
        if broken:
            continue  # keep draining so the child never blocks on a full pipe
        try:
            sink.write(line)
            sink.flush()
        except (OSError, ValueError):
            broken = True
    source.close()


def run_streaming(command: Sequence[str], env: Mapping[str, str], cwd: Optional[str]) -> StepOutput:
    """Run ``command``, stream its merged stdout and stderr to our stdout, return its code and last lines.

    Both streams share one pipe, so lines come out in the order the child wrote
    them; two pipes read by two threads could put a traceback before the prints
    that preceded it. A negative exit code means the child died from that
    signal. Stop signals received meanwhile are forwarded to the child.
    """
    output = StepOutput()
    process = subprocess.Popen(list(command), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _CHILDREN.current = process
    if _CHILDREN.stop_signal is not None:
        # the stop arrived between two steps
        _CHILDREN.forward(_CHILDREN.stop_signal, None)
    assert process.stdout is not None
    pump = threading.Thread(target=_pump, args=(process.stdout, _binary(sys.stdout), output), daemon=True)
    pump.start()
    try:
        output.code = process.wait()
    finally:
        # A background process the child left behind may hold the pipe open for
        # ever; its output keeps flowing while we live, but it must not hold up the job.
        # After a stop signal the grace period is short: do not spend it waiting.
        pump.join(PIPE_DRAIN_SECONDS if _CHILDREN.stop_signal is None else PIPE_DRAIN_SECONDS / 10)
        _CHILDREN.current = None
    return output


def _last_lines(lines: Sequence[str], count: int) -> str:
    meaningful = [line.strip() for line in lines if line.strip()]
    return " ".join(meaningful[-count:])


def _outcome(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was stopped by {name}"
    return f"failed with exit code {code}"


def read_manifest(unpack_dir: str) -> Dict[str, Any]:
    """The bundle's ``manifest.json``."""
    path = os.path.join(unpack_dir, "manifest.json")
    try:
        with open(path, encoding="utf-8") as fh:
            manifest = json.load(fh)
    except (OSError, ValueError) as exc:
        raise StepFailed(f"the code bundle has no readable manifest.json ({exc})", 1) from exc
    if not isinstance(manifest, dict) or not manifest.get("script"):
        raise StepFailed("the code bundle's manifest.json names no script", 1)
    return manifest


#: Where an input's blobs wait while its tree is laid out: a fresh folder beside the input's
#: (same filesystem, so a blob moves into place without a copy), never a name in the user's tree.
_BLOBS = ".aws-sagemaker-remote-blobs-"


def materialize_inputs(unpack_dir: str, inputs: Sequence[Mapping[str, Any]]) -> None:
    """Turn each input channel that received blobs (files named by their SHA-256) back into the
    tree its listing describes: names, empty folders, duplicates. Each blob is found wherever
    below the channel folder the download put it (at the top, or under its key's folders). Blobs
    this instance did not receive leave their files out of a sharded input
    (``ShardedByS3Key``); any other input missing one fails, naming the file."""
    from .safepath import MissingBlob, UnsafePath, materialize

    root = os.environ.get(ROOT_ENV)
    for entry in inputs:
        folder = ContainerPaths().relocate(str(entry["path"]), root)
        try:
            with open(os.path.join(unpack_dir, str(entry["listing"])), encoding="utf-8") as fh:
                listing = json.load(fh)
        except (OSError, ValueError) as exc:
            raise StepFailed(f"cannot read the listing of input {folder}: {exc}", 1) from exc
        wanted = {str(f[1]) for f in listing.get("files") or ()}
        blobs = ""
        try:
            blobs = tempfile.mkdtemp(prefix=_BLOBS, dir=os.path.dirname(os.path.abspath(folder)))
            # first out of the way, so a file whose name is a digest cannot meet a blob; the folders
            # of a key's path the download made go too, so the user's tree is all that remains
            for where, _dirs, names in os.walk(folder, topdown=False):
                for name in names:
                    if name in wanted:
                        os.replace(os.path.join(where, name), os.path.join(blobs, name))
                if where != folder and not os.listdir(where):
                    os.rmdir(where)
            materialize(listing, blobs, folder, move=True, sharded=entry.get("distribution") == "ShardedByS3Key")
        except UnsafePath as exc:
            raise StepFailed(f"refusing to lay out input {folder}: {exc}", 1) from None
        except MissingBlob as exc:
            raise StepFailed(f"input {folder} is incomplete: {exc}", 1) from None
        except OSError as exc:  # a file and a folder of one name, a full disk: one line, not a traceback
            raise StepFailed(f"cannot lay out input {folder}: {exc}", 1) from None
        finally:
            if blobs:
                shutil.rmtree(blobs, ignore_errors=True)


def prepend_pythonpath(env: Dict[str, str], folders: Sequence[str]) -> None:
    """Put ``folders`` first on ``env['PYTHONPATH']``, keeping the other entries after them."""
    existing = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p not in folders]
    env["PYTHONPATH"] = os.pathsep.join(list(folders) + existing)


def configure(unpack_dir: str, manifest: Mapping[str, Any], env: Dict[str, str], cwd: str) -> Dict[str, str]:
    """Run the configuration script and command in one bash; return the environment they leave."""
    script = manifest.get("configuration_script")
    command = manifest.get("configuration_command")
    if not script and not command:
        return env
    what = " and ".join(part for part, present in (
        (f"configuration script {script}", script), ("configuration command", command)) if present)
    _log(f"running {what}")
    fd, out_path = tempfile.mkstemp(prefix="aws-sagemaker-remote-env-", suffix=".json")
    os.close(fd)
    shell_env = dict(env)
    shell_env.update({
        _SHELL_PREFIX + "PYTHON": sys.executable,
        _SHELL_PREFIX + "DUMP": _DUMP_ENVIRONMENT,
        _SHELL_PREFIX + "OUT": out_path,
        _SHELL_PREFIX + "SCRIPT": os.path.join(unpack_dir, script) if script else "",
        _SHELL_PREFIX + "COMMAND": command or "",
    })
    try:
        try:
            code = run_streaming(["bash", "-c", CONFIGURE_SHELL], shell_env, cwd).code
        except FileNotFoundError as exc:
            raise StepFailed(f"the {what} cannot run: this image has no bash", 127) from exc
        try:
            with open(out_path, encoding="utf-8") as fh:
                dumped = json.load(fh)
        except (OSError, ValueError):
            dumped = {"step": "script" if script else "command", "env": None}
    finally:
        os.unlink(out_path)
    if code != 0:
        step = dumped.get("step")
        failed = f"configuration script {script}" if step == "script" and script else "configuration command"
        # No output in the message: a shell error can echo an expanded variable
        # ("bash: s3cr3t: command not found"), and the failure reason is shown
        # more widely than the logs, where that output already is.
        raise StepFailed(f"{failed} {_outcome(code)}", exit_status(code))
    new_env = dumped.get("env")
    if not isinstance(new_env, dict):
        raise StepFailed(f"the {what} ended without handing back its environment", 1)
    for name in _SHELL_OWN_VARIABLES:
        if name in env:
            new_env[name] = env[name]
        else:
            new_env.pop(name, None)
    return {str(k): str(v) for k, v in new_env.items()}


def index_environment(unpack_dir: str, manifest: Mapping[str, Any]) -> Dict[str, str]:
    """The variables that give pip and uv the package indexes of the launching machine.

    They come from a file of the bundle (never from the job's ``Environment``) and are
    set for the install step only: the URLs may hold credentials.
    """
    arc = manifest.get("package_indexes")
    if not arc:
        return {}
    try:
        with open(os.path.join(unpack_dir, str(arc)), encoding="utf-8") as fh:
            pairs = [(str(k), str(u)) for k, u in json.load(fh)]
    except (OSError, ValueError, TypeError) as exc:
        raise StepFailed(f"cannot read the package indexes from the code bundle: {type(exc).__name__}", 1) from None
    main = [u for k, u in pairs if k == "index-url"]
    extra = " ".join(u for k, u in pairs if k == "extra-index-url")
    env: Dict[str, str] = {}
    if main:
        env.update(PIP_INDEX_URL=main[-1], UV_INDEX_URL=main[-1])
    if extra:
        env.update(PIP_EXTRA_INDEX_URL=extra, UV_EXTRA_INDEX_URL=extra)
    return env


def install_requirements(unpack_dir: str, requirements: str, env: Mapping[str, str], cwd: str,
                         overlay: Optional[Overlay] = None, indexes: Optional[Mapping[str, str]] = None) -> None:
    """``pip install -r FILE`` (``uv pip install`` when the image has uv and nothing pip-only is set:
    :func:`~aws_sagemaker_remote.overlay.pick_installer`, on the environment the configuration left)
    into this interpreter (into ``overlay`` when given); ``indexes`` are added to the install step's
    environment only."""
    uv, pip_setting = pick_installer(env, None if overlay is not None else sys.prefix)
    if pip_setting:
        _log(f"uv is on PATH, but pip reads {pip_setting} and uv does not: installing with pip")
    _log(f"installing {requirements}" + (" with uv" if uv else ""))
    if overlay is not None:
        # the installer of this install, which may not be the one that built the overlay
        overlay = dataclasses.replace(overlay, uv=uv)
        if not uv:
            try:
                ensure_pip(overlay, lambda line: run_streaming(line, env, cwd).code, hint="install pip")
            except OverlayError as exc:
                raise StepFailed(f"{exc.what} {_outcome(exc.code)}", exit_status(exc.code)) from None
        head = overlay.install_command()
    elif uv:
        head = [uv, "pip", "install", "--python", sys.executable]
    else:
        head = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
    output = run_streaming(head + ["-r", os.path.join(unpack_dir, requirements)], dict(env, **(indexes or {})), cwd)
    code = output.code
    if code != 0:
        # pip (and uv) end a failure with their error lines
        tool = "uv pip" if uv else "pip"
        detail = _last_lines(output.lines, 3)
        raise StepFailed(f"{tool} install -r {requirements} {_outcome(code)}" + (f": {detail}" if detail else ""),
                         exit_status(code))


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise StepFailed(f"cannot read {os.path.basename(path)} from the code bundle: {exc}", 1) from None


def prepare_in_overlay(cache: str, unpack_dir: str, manifest: Mapping[str, Any], env: Dict[str, str],
                       cwd: str) -> Tuple[Dict[str, str], str]:
    """Configuration and requirements in the job's overlay environment, kept in the warm-pool
    cache folder ``cache``.

    Returns the environment the configuration left (the overlay activated) and
    the overlay's interpreter, which runs the script. The overlay is built the
    first time, and its requirements installed; afterwards only the
    configuration runs again. Other jobs building the same overlay wait.
    The package caches of pip and uv are kept in ``cache`` too, unless the
    environment names its own.
    """
    requirements = manifest.get("requirements")
    script = manifest.get("configuration_script")
    command = manifest.get("configuration_command")
    indexes = index_environment(unpack_dir, manifest)
    folder = os.path.join(cache, CACHE_FOLDER, "envs")
    # the image's settings pick it before the configuration runs; the install picks again after it
    builder = pick_installer(env)[0]
    key = overlay_key(_read_bytes(os.path.join(unpack_dir, str(requirements))) if requirements else None,
                      _read_bytes(os.path.join(unpack_dir, str(script))) if script else None,
                      str(command) if command else None,
                      indexes=json.dumps(indexes, sort_keys=True).encode("utf-8") if indexes else None,
                      image=image_identity(), installer="uv" if builder else "pip")
    overlay = Overlay(os.path.join(folder, key), builder)
    env = dict(env, **package_cache_environment(cache, env))
    started = time.monotonic()
    try:
        os.makedirs(folder, exist_ok=True)
        with locked(overlay.lock_file, lambda: _log(f"waiting for another job to build the overlay environment "
                                                     f"{overlay.root}"), _stop_point):
            cached = overlay.is_ready()
            install_seconds = 0.0
            if cached:
                _log(f"using the overlay environment {overlay.root}")
            else:
                _log(f"creating the overlay environment {overlay.root} over {sys.executable} "
                     f"with {overlay.installer}")
                try:
                    build(overlay, sys.executable, lambda line: run_streaming(line, env, cwd).code)
                except BaseException:
                    if requirements:  # with requirements, building the environment is part of installing them
                        _phase("install", time.monotonic() - started)
                    raise
                install_seconds = time.monotonic() - started
            env = configure(unpack_dir, manifest, overlay.activate(env), cwd)
            _stop_point()
            if requirements and cached:
                # nothing installed: no install phase (the breakdown shows none)
                _log(f"{requirements} is already installed in the overlay environment: nothing to install")
            elif requirements:
                started = time.monotonic()
                try:
                    install_requirements(unpack_dir, str(requirements), env, cwd, overlay, indexes)
                finally:  # a failed install took its time too, as without a warm pool
                    _phase("install", install_seconds + time.monotonic() - started)
                _stop_point()
            if not cached:
                # not the configuration's text: it stays in the bundle, not in a cache on disk
                overlay.mark_ready({"python": sys.executable, "installer": overlay.installer,
                                    "requirements": requirements})
    except OverlayError as exc:
        raise StepFailed(f"{exc.what} {_outcome(exc.code)}", exit_status(exc.code)) from None
    except OSError as exc:
        raise StepFailed(f"cannot prepare the overlay environment in {folder}: {exc}", 1) from None
    return env, overlay.python


def run_script(unpack_dir: str, script: str, script_args: Sequence[str], env: Mapping[str, str],
               python: str = sys.executable) -> None:
    """Run the user's script from its folder in the bundle with ``python``; raise :class:`StepFailed` on failure."""
    path = os.path.join(unpack_dir, script)
    display = script[len("script/"):] if script.startswith("script/") else script
    # the launcher resolved every option already: the script does not read option sources again
    env = dict(env, **{IN_JOB_ENV: "1"})
    started = time.monotonic()
    output = run_streaming([python, path] + list(script_args), env, os.path.dirname(path))
    _phase("script", time.monotonic() - started)
    code = output.code
    if code != 0:
        # After an uncaught exception the last line is "ValueError: why"; without
        # one the last line is whatever the script printed, which explains nothing.
        detail = _last_lines(output.lines, 1) if output.traceback_seen else ""
        verb = f"exited with code {code}" if code > 0 else _outcome(code)
        raise StepFailed(f"script {display} {verb}" + (f": {detail}" if detail else ""), exit_status(code),
                         log_line=f"script {display} {verb}")


def read_arguments(script_args: Sequence[str]) -> List[str]:
    """The script's arguments: as given, or from the staged file that replaces them when they
    did not fit in ``ContainerArguments`` (see ``container.needs_argument_file``)."""
    prefix = ARGUMENT_FILE_FLAG + "="
    if len(script_args) == 1 and script_args[0].startswith(prefix):
        path = script_args[0][len(prefix):]
        try:
            with open(path, encoding="utf-8") as fh:
                loaded = json.load(fh)
        except (OSError, ValueError) as exc:
            raise StepFailed(f"cannot read the script's arguments from {path}: {exc}", 1) from None
        if not isinstance(loaded, list) or not all(isinstance(a, str) for a in loaded):
            raise StepFailed(f"{path} does not hold a list of strings", 1)
        # the local backend moves /opt/ml and rewrites ContainerArguments; these were not among them
        root = os.environ.get(ROOT_ENV)
        return [DEFAULT_PATHS.relocate(a, root) for a in loaded] if root else loaded
    return list(script_args)


def write_failure(kind: str, message: str) -> str:
    """Write ``message`` to the job's failure file unless the script already wrote its own there."""
    path = ContainerPaths.from_env().failure_file(kind)
    try:
        if os.path.isfile(path) and os.path.getsize(path) > 0:
            return path  # the script's own explanation is more specific than ours
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(message[:MESSAGE_LIMIT])
    except OSError as exc:
        _log(f"could not write the failure file {path}: {exc}")
    return path


def run(unpack_dir: str, script_args: Sequence[str]) -> int:
    """Every step of the job; returns the process exit code (0 on success).

    Failures are written to the failure file and to stderr.
    """
    unpack_dir = os.path.abspath(unpack_dir)
    kind = _guess_kind()
    try:
        manifest = read_manifest(unpack_dir)
        kind = str(manifest.get("kind") or kind)
        materialize_inputs(unpack_dir, manifest.get("inputs") or ())
        script_args = read_arguments(script_args)
        script = str(manifest["script"])
        cwd = os.path.dirname(os.path.join(unpack_dir, script))
        env = dict(os.environ)
        if kind == "training":
            # as the toolkit does, its values replace same-named ones of the image or the request
            env.update(training_environment(ContainerPaths.from_env(), entry_point=os.path.basename(script),
                                            module_dir=cwd, environ=env))
        pythonpath = [os.path.join(unpack_dir, p) for p in manifest.get("pythonpath") or ("runtime", "deps")]
        prepend_pythonpath(env, pythonpath)
        python = sys.executable
        requirements = manifest.get("requirements")
        cache = warm_pool_cache(env)
        if cache and (requirements or manifest.get("configuration_script")
                      or manifest.get("configuration_command")):
            env, python = prepare_in_overlay(cache, unpack_dir, manifest, env, cwd)
        else:
            env = configure(unpack_dir, manifest, env, cwd)
            _stop_point()
            if requirements:
                started = time.monotonic()
                try:
                    install_requirements(unpack_dir, str(requirements), env, cwd,
                                         indexes=index_environment(unpack_dir, manifest))
                finally:  # a failed install took its time too
                    _phase("install", time.monotonic() - started)
                _stop_point()
        # the configuration may have changed PYTHONPATH; ours still comes first
        prepend_pythonpath(env, pythonpath)
        env.setdefault("PYTHONUNBUFFERED", "1")  # print() reaches the logs as it happens
        run_script(unpack_dir, script, script_args, env, python)
    except StepFailed as exc:
        write_failure(kind, exc.message)
        _log(exc.log_line)
        return exc.exit_code
    return 0


def _guess_kind() -> str:
    """The job kind before the manifest is read: only training jobs have ``input/config``."""
    paths = ContainerPaths.from_env()
    return "training" if os.path.exists(paths.training_resource_config) else "processing"


def _stop_point() -> None:
    """Do not start another step once a stop signal arrived."""
    if _CHILDREN.stop_signal is not None:
        name = signal.Signals(_CHILDREN.stop_signal).name
        raise StepFailed(f"the job was stopped by {name} before the script ran",
                         exit_status(-_CHILDREN.stop_signal))


def main(unpack_dir: str, script_args: List[str]) -> NoReturn:
    """Entry point inside the job: run every step and exit with the outcome's code."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            signal.signal(signum, _CHILDREN.forward)
        except (ValueError, OSError):
            pass  # not the main thread: signals stay as they are
    code = run(unpack_dir, script_args)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)
