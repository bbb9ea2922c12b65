"""Measure the package's speed claims side by side with the SageMaker SDK and the AWS CLI.

Usage::

    pip install -e '.[bench]'
    python bench/run.py                       # everything, then rewrite docs/performance.rst
    python bench/run.py --venv-dir ~/.cache/asr-bench   # keep the three venvs for the next run
    python bench/run.py --skip-sdk --no-docs  # quick look without the 1 GB SDK install

Every measurement runs in fresh subprocesses, several times; tables show the
median. The tools under comparison live in their own virtual environments,
built from this interpreter: ``ours`` (this checkout, installed the way a user
installs it, with its dependencies), ``sdk`` (``sagemaker>=3``) and
``awscli``. AWS traffic goes to a moto server on 127.0.0.1 running in its own
process (``bench/moto_counting_server.py``), which counts the bytes each client
sends to S3. Everything the run creates lives under one temporary folder that
is removed at the end; the moto server is stopped by its pid.

Measured, each side by side with the alternatives, in one run:

1. import cost, and installed size;
2. local run overhead (the demo with the framework vs the same counting without it);
3. re-launch uploads: bytes and time of a first and second launch, vs ``aws s3 cp``,
   ``aws s3 sync`` and the SDK's ``ScriptProcessor.run``;
4. peak memory of launching a small and a large input (staging streams);
5. dry-run latency vs the time the SDK needs just to import.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
DEMO = REPO / "demo" / "wordcount.py"
DEMO_INPUT = REPO / "demo" / "data" / "text"
DOC_PAGE = REPO / "docs" / "performance.rst"

DEFAULT_REPEAT = 7
DEFAULT_LAUNCH_REPEAT = 3
#: The re-launch data set: 50 files of 400 KiB (about 20 MB).
DATA_FILES = 50
DATA_FILE_BYTES = 400 * 1024
SMALL_FILE_MIB = 1
BIG_FILE_MIB = 200

REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/R"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/x:1"
CLI_BUCKET = "bench-cli"
SDK_BUCKET = "bench-sdk"
MEMORY_BUCKET = "bench-memory"

SDK_REQUIREMENT = "sagemaker>=3"
AWSCLI_REQUIREMENT = "awscli"
SDK_IMPORT = "sagemaker.core.processing"
#: What the package's own source distribution needs to build and install.
OUR_SOURCE_FILES = ("setup.cfg", "pyproject.toml", "README.rst", "aws_sagemaker_remote")
#: Distributions every fresh venv brings along; not part of anyone's install size.
VENV_SEED_DISTRIBUTIONS = ("pip", "setuptools", "wheel")
#: What ``bench/peak_rss.py`` prints last on stderr.
PEAK_RSS_MARKER = "BENCH_PEAK_RSS_KIB="
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")

_STAGED_RE = re.compile(r"staged (\d+) file\(s\) .*\((.+) uploaded, (\d+) copied within S3, (\d+) already there\)")


class BenchError(RuntimeError):
    """A step of the benchmark could not run; the message says which and why."""


def log(message: str) -> None:
    """Progress on stderr, so stdout keeps only the result tables."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- running and timing processes ---------------------------------------------------------

@dataclass(frozen=True)
class Run:
    """One finished subprocess: wall time, exit code and output."""

    seconds: float
    returncode: int
    stdout: str
    stderr: str

    def tail(self, lines: int = 5) -> str:
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return " | ".join(text[-lines:]) or f"exit code {self.returncode}"

    def peak_rss_kib(self) -> int:
        """The peak RSS that ``bench/peak_rss.py`` reported for the process it wrapped."""
        for line in reversed(self.stderr.splitlines()):
            if line.startswith(PEAK_RSS_MARKER):
                return int(line[len(PEAK_RSS_MARKER):])
        raise BenchError(f"no {PEAK_RSS_MARKER} line in: {self.tail()}")


def run_measured(cmd: Sequence[str], env: Mapping[str, str], cwd: Path, timeout: float = 600.0) -> Run:
    """Run ``cmd`` and return its wall time, from start to exit, and its output.

    Output goes to files, not pipes, so a chatty child can never block on a
    full pipe while we wait for it. The wait is a blocking ``waitpid``, with
    the timeout enforced by a timer that kills the child: ``Popen.wait(timeout)``
    polls with growing sleeps (up to 50 ms), which would round every
    measurement up to the next poll.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), env=dict(env), cwd=str(cwd), stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            proc.wait()
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        return Run(seconds=seconds, returncode=proc.returncode,
                   stdout=out.read().decode("utf-8", "replace"), stderr=err.read().decode("utf-8", "replace"))


def run_checked(cmd: Sequence[str], env: Mapping[str, str], cwd: Path, what: str, timeout: float = 600.0) -> Run:
    run = run_measured(cmd, env, cwd, timeout)
    if run.returncode != 0:
        raise BenchError(f"{what} failed: {run.tail()}")
    return run


@dataclass(frozen=True)
class Case:
    """One command to time, with the environment it runs in."""

    label: str
    cmd: Sequence[str]
    env: Mapping[str, str]


def timed(cases: Sequence[Case], cwd: Path, repeat: int) -> List[float]:
    """Median wall time of each case over ``repeat`` rounds, after one untimed warm-up round.

    The cases take turns within each round, so a burst of load on the machine
    slows all of them alike instead of one; the warm-up round fills the page
    cache and writes bytecode for every tool alike.
    """
    samples: List[List[float]] = [[] for _ in cases]
    for round_ in range(repeat + 1):
        for case, times in zip(cases, samples):
            run = run_checked(case.cmd, case.env, cwd, case.label)
            if round_:
                times.append(run.seconds)
    return [median(times) for times in samples]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


# --- virtual environments --------------------------------------------------------------------

@dataclass
class Venv:
    """A virtual environment with one tool installed; ``error`` says why it is unusable."""

    name: str
    path: Path
    requirement: str
    error: Optional[str] = None
    install_seconds: Optional[float] = None

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")

    def script(self, name: str) -> List[str]:
        """A console script, run through this venv's interpreter (survives moving the venv)."""
        return [self.python, str(self.path / "bin" / name)]


def build_venv(name: str, path: Path, requirement: str, install_args: Sequence[str], check_import: str,
               logs: Path, reinstall_args: Optional[Sequence[str]] = None) -> Venv:
    """Create (or reuse) a venv, install ``install_args`` into it and check that ``check_import`` works.

    A venv from an earlier run with the same requirement is reused; only
    ``reinstall_args`` (if given) are installed again, so a kept venv still
    measures the current checkout.
    """
    venv = Venv(name, path, requirement)
    marker = path / ".bench-requirement"
    reuse = marker.is_file() and marker.read_text(encoding="utf-8") == requirement
    pip_log = logs / f"pip-{name}.log"
    start = time.perf_counter()
    try:
        if not reuse:
            shutil.rmtree(path, ignore_errors=True)
            log(f"creating venv {name} ({requirement})")
            subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, capture_output=True)
            args: Optional[Sequence[str]] = install_args
        else:
            log(f"reusing venv {name} at {path}")
            args = reinstall_args
        if args:
            with open(pip_log, "ab") as fh:
                done = subprocess.run([venv.python, "-m", "pip", "install", "--quiet", *args],
                                      stdout=fh, stderr=subprocess.STDOUT, timeout=1800)
            if done.returncode != 0:
                lines = [line for line in pip_log.read_text(encoding="utf-8", errors="replace").splitlines()
                         if line.strip() and not line.startswith("WARNING: Location")]
                raise BenchError(f"pip install {' '.join(args)} failed: {' | '.join(lines[-3:])}")
        check = subprocess.run([venv.python, "-c", f"import {check_import}"], capture_output=True, text=True,
                               env={**os.environ, "AWS_DEFAULT_REGION": REGION})
        if check.returncode != 0:
            raise BenchError(f"import {check_import} failed: {check.stderr.strip().splitlines()[-1:]}")
        marker.write_text(requirement, encoding="utf-8")
        if not reuse:
            venv.install_seconds = time.perf_counter() - start
    except (BenchError, subprocess.SubprocessError, OSError) as exc:
        venv.error = str(exc)
        log(f"venv {name} unusable: {exc}")
    return venv


def copy_our_source(dest: Path) -> Path:
    """The files a source install of the package needs, copied out of the checkout.

    Installing from a copy keeps setuptools' in-tree ``build/`` and
    ``*.egg-info`` out of the checkout.
    """
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for name in OUR_SOURCE_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif src.is_file():
            shutil.copy2(src, dest / name)
    return dest


def checkout_revision() -> str:
    """The commit the measured package comes from, noting uncommitted changes to its files."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "aws_sagemaker_remote"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return f"commit {head}" + (" with uncommitted changes to the package" if dirty else "")


#: Run inside a venv: the on-disk size (like ``du``) of its site-packages without
#: pip and setuptools, and the number of distributions installed there.
_SIZE_SNIPPET = r"""
import importlib.metadata as md, json, os, sysconfig
site = sysconfig.get_paths()["purelib"]
seed = set(json.loads(SEED))
skip, count = set(), 0
for dist in md.distributions(path=[site]):
    name = (dist.metadata["Name"] or "").lower()
    if name in seed:
        skip.update(str(f).split("/")[0] for f in (dist.files or []))
    else:
        count += 1
total = 0
for entry in os.scandir(site):
    if entry.name in skip:
        continue
    paths = [entry.path] if not entry.is_dir(follow_symlinks=False) else [
        os.path.join(root, n) for root, _d, names in os.walk(entry.path) for n in names]
    for p in paths:
        total += os.lstat(p).st_blocks * 512
print(json.dumps({"bytes": total, "distributions": count}))
"""


def venv_size(venv: Venv) -> Tuple[int, int]:
    """(bytes on disk, number of distributions) of what was installed into ``venv``."""
    code = _SIZE_SNIPPET.replace("SEED", repr(json.dumps(list(VENV_SEED_DISTRIBUTIONS))))
    done = subprocess.run([venv.python, "-c", code], capture_output=True, text=True, check=True)
    data = json.loads(done.stdout)
    return int(data["bytes"]), int(data["distributions"])


def venv_version(venv: Venv, distribution: str) -> str:
    done = subprocess.run([venv.python, "-c", f"import importlib.metadata as m; print(m.version({distribution!r}))"],
                          capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else "?"


# --- the workspace and the moto server ---------------------------------------------------------

class Workspace:
    """The run's temporary folder and the environments its subprocesses get."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.tmp = root / "tmp"
        self.logs = root / "logs"
        self.work = root / "work"
        for folder in (self.home, self.tmp, self.logs, self.work):
            folder.mkdir(parents=True, exist_ok=True)
        self.sdk_config = root / "sagemaker-config.yaml"
        # The SDK's documented switch for its telemetry request.
        self.sdk_config.write_text("SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n"
                                   "      TelemetryOptOut: true\n", encoding="utf-8")
        self._counter = 0

    def fresh_dir(self, prefix: str) -> Path:
        self._counter += 1
        path = self.work / f"{prefix}-{self._counter}"
        path.mkdir(parents=True)
        return path

    def base_env(self) -> Dict[str, str]:
        """No AWS settings, no proxies, no user configuration: every tool starts from the same place.

        ``HOME`` and ``TMPDIR`` point into the workspace, so nothing a tool caches
        or leaves behind outlives the run, and no user config file is read.
        """
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "SAGEMAKER_", "PYTHON", "PIP_")) and k not in PROXY_VARIABLES
               and k not in ("VIRTUAL_ENV",)}
        env.update({
            "HOME": str(self.home),
            "TMPDIR": str(self.tmp),
            "AWS_CONFIG_FILE": str(self.root / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.root / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_SAGEMAKER_REMOTE_HOME": str(self.root / "asr-home"),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        })
        return env

    def aws_env(self, endpoint: str, remote_home: Optional[Path] = None) -> Dict[str, str]:
        """Every boto3 client sent to the moto server, with dummy credentials, on loopback only."""
        env = self.base_env()
        env.update({
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "SAGEMAKER_USER_CONFIG_OVERRIDE": str(self.sdk_config),
            "PYTHONPATH": str(BENCH / "loopback_guard"),
        })
        if remote_home is not None:
            env["AWS_SAGEMAKER_REMOTE_HOME"] = str(remote_home)
        return env


class MotoProcess:
    """``bench/moto_counting_server.py`` in a subprocess, stopped by its pid."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.proc: Optional[subprocess.Popen] = None
        self._log: Optional[Any] = None
        self.url = ""
        # A plain opener without proxy handlers: control requests stay on loopback.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def start(self) -> "MotoProcess":
        env = self.workspace.base_env()
        self._log = open(self.workspace.logs / "moto.log", "wb")
        self.proc = subprocess.Popen([sys.executable, str(BENCH / "moto_counting_server.py")], env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._log, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("URL "):
            self.stop()
            raise BenchError(f"moto server did not start; see {self.workspace.logs / 'moto.log'}")
        self.url = line.split()[1]
        log(f"moto server pid {self.proc.pid} at {self.url}")
        return self

    def stop(self) -> None:
        """SIGTERM to the server's pid (it shuts down cleanly), SIGKILL if it does not exit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _post(self, path: str) -> Any:
        request = urllib.request.Request(self.url + path, data=b"", method="POST")
        with self._opener.open(request, timeout=60) as response:
            return response.read()

    def reset(self) -> None:
        """Forget every bucket, object and job (moto's memory grows with stored bytes)."""
        self._post("/moto-api/reset")
        self._post("/_bench/stats/reset")

    def take_stats(self) -> Dict[str, Any]:
        """The counters since the last call, then zero them."""
        with self._opener.open(self.url + "/_bench/stats", timeout=60) as response:
            stats = json.loads(response.read())
        self._post("/_bench/stats/reset")
        return stats

    def create_bucket(self, bucket: str) -> None:
        import boto3

        client = boto3.client("s3", endpoint_url=self.url, region_name=REGION,
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        client.create_bucket(Bucket=bucket)


# --- results -------------------------------------------------------------------------------------

@dataclass
class Table:
    """One result table. Cells may hold RST literals (````x````); plain text drops the backticks."""

    title: str
    header: Sequence[str]
    rows: List[Sequence[str]] = field(default_factory=list)
    note: str = ""

    def text(self) -> str:
        rows = [[_plain(c) for c in row] for row in [list(self.header), *self.rows]]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.header))]
        lines = [self.title, "=" * len(self.title)]
        for n, row in enumerate(rows):
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        if self.note:
            lines.append(_plain(self.note))
        return "\n".join(lines)

    def rst(self) -> str:
        lines = [self.title, "~" * len(self.title), "", ".. list-table::", "   :header-rows: 1", ""]
        for row in [list(self.header), *self.rows]:
            lines.append(f"   * - {row[0]}")
            lines.extend(f"     - {cell}" for cell in row[1:])
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines)


def _plain(cell: str) -> str:
    """An RST cell as plain text: no literal markers, no escapes."""
    return re.sub(r"\\(.)", r"\1", cell.replace("``", ""))


def ms(seconds: Optional[float]) -> str:
    if seconds is None:
        return "—"
    value = seconds * 1000
    return f"{value:.0f} ms" if value >= 100 else f"{value:.1f} ms"


def size(n: Optional[float]) -> str:
    if n is None:
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def ratio(value: Optional[float], reference: Optional[float]) -> str:
    if value is None or reference is None:
        return "—"
    if reference == 0:
        return "—" if value == 0 else "∞"
    return f"{value / reference:.1f}×" if value / reference < 100 else f"{value / reference:.0f}×"


def not_measured(reason: str) -> str:
    """A table cell for a row that could not be measured; the reason is escaped for RST."""
    return "not measured: " + re.sub(r"([\\`*_|])", r"\\\1", reason)


@dataclass
class Results:
    """Everything the run measured, plus the short claims it supports."""

    tables: List[Table] = field(default_factory=list)
    summary: Table = field(default_factory=lambda: Table(
        "Summary", ["Claim", "This package", "Compared with", "Ratio"]))
    facts: Dict[str, str] = field(default_factory=dict)

    def claim(self, what: str, ours: str, other: str, value: str) -> None:
        self.summary.rows.append([what, ours, other, value])


# --- 1. import cost and installed size -------------------------------------------------------------

def bench_imports(ws: Workspace, ours: Venv, sdk: Venv, repeat: int, res: Results) -> None:
    """Median start-up time of four one-liners, each in its own venv, without the loopback guard."""
    log("1/5 import cost")
    env = ws.base_env()
    cases: List[Tuple[str, Venv, str]] = [
        ('``python -c "pass"``', ours, "pass"),
        ('``import aws_sagemaker_remote``', ours, "import aws_sagemaker_remote"),
        ('``import boto3``', ours, "import boto3"),
        (f'``import {SDK_IMPORT}``', sdk, f"import {SDK_IMPORT}"),
    ]
    medians: Dict[str, Optional[float]] = {}
    errors: Dict[str, str] = {}
    runnable: List[Tuple[str, Case]] = []
    for label, venv, code in cases:
        if venv.error:
            medians[code], errors[code] = None, f"{venv.name} venv: {venv.error}"
            continue
        # The SDK resolves a region at import in some modules; the region alone
        # gives it no endpoint, credentials or network.
        case_env = {**env, "AWS_DEFAULT_REGION": REGION} if venv is sdk else env
        runnable.append((code, Case(label, [venv.python, "-c", code], case_env)))
    for (code, _case), value in zip(runnable, timed([case for _code, case in runnable], ws.tmp, repeat)):
        medians[code] = value
    base = medians["pass"]
    ours_ms = medians["import aws_sagemaker_remote"]
    table = Table("Import cost", ["Command", "Median", "Over bare interpreter", "× ours"],
                  note=f"Median of {repeat} fresh interpreters after one warm-up run; each command in the "
                       f"venv of its tool (``ours`` for the first three, ``sdk`` for the last).")
    for label, _venv, code in cases:
        value = medians[code]
        if value is None:
            table.rows.append([label, not_measured(errors[code]), "—", "—"])
            continue
        extra = ms(value - base) if base is not None and code != "pass" else "—"
        table.rows.append([label, ms(value), extra, ratio(value, ours_ms)])
    res.tables.append(table)

    sizes = Table("Installed size", ["Install", "Distributions", "On disk (site-packages)", "× ours",
                                     "``pip install`` time"],
                  note="What ``pip install`` puts into a fresh venv, without the venv's own pip and "
                       "setuptools; counted in disk blocks, as ``du`` does. The install time includes venv "
                       "creation and, for this package, building it from the checkout; it depends on the "
                       "network and pip's cache, and is blank for a venv reused from an earlier run.")
    ours_size: Optional[int] = None
    sdk_size: Optional[int] = None
    for venv, label in ((ours, "``aws-sagemaker-remote`` (boto3 and its dependencies)"),
                        (sdk, f"``{SDK_REQUIREMENT}``")):
        if venv.error:
            sizes.rows.append([label, "—", not_measured(venv.error), "—", "—"])
            continue
        nbytes, count = venv_size(venv)
        if venv is ours:
            ours_size = nbytes
        else:
            sdk_size = nbytes
        installed = f"{venv.install_seconds:.0f} s" if venv.install_seconds is not None else "—"
        sizes.rows.append([label, str(count), size(nbytes), ratio(nbytes, ours_size), installed])
    res.tables.append(sizes)

    sdk_ms = medians.get(f"import {SDK_IMPORT}")
    if sdk_ms is not None and ours_ms is not None:
        res.claim("Import time", ms(ours_ms), f"{ms(sdk_ms)} (``import {SDK_IMPORT}``)",
                  f"{ratio(sdk_ms, ours_ms)} faster")
    if ours_size is not None and sdk_size is not None:
        res.claim("Installed size", size(ours_size), f"{size(sdk_size)} (``{SDK_REQUIREMENT}``)",
                  f"{ratio(sdk_size, ours_size)} smaller")


# --- 2. local run overhead -----------------------------------------------------------------------

def bench_local_run(ws: Workspace, ours: Venv, repeat: int, res: Results) -> None:
    """The demo run here (``--sagemaker-run=no`` and ``local``) vs the same counting without the framework."""
    log("2/5 local run overhead")
    if ours.error:
        raise BenchError(f"the ours venv is needed: {ours.error}")
    env = ws.base_env()
    out_plain, out_demo, out_local = ws.fresh_dir("plain"), ws.fresh_dir("demo"), ws.fresh_dir("local")
    cases = [
        Case("plain script (``bench/plain_wordcount.py``)",
             [ours.python, str(BENCH / "plain_wordcount.py"), "--input", str(DEMO_INPUT), "--output", str(out_plain)],
             env),
        Case("``demo/wordcount.py``",
             [ours.python, str(DEMO), "--input", str(DEMO_INPUT), "--output", str(out_demo)], env),
        Case("``demo/wordcount.py --sagemaker-run=local``",
             [ours.python, str(DEMO), "--input", str(DEMO_INPUT), "--output", str(out_local),
              "--sagemaker-run=local"], env),
    ]
    medians = timed(cases, ws.tmp, repeat)
    # Same work, same answer: the comparison is only fair if both count alike.
    if (out_plain / "counts.json").read_bytes() != (out_demo / "counts.json").read_bytes():
        raise BenchError("plain_wordcount.py and demo/wordcount.py disagree on counts.json")
    plain = medians[0]
    table = Table("Local run overhead", ["Command", "Median", "Overhead vs plain", "× plain"],
                  note=f"Median of {repeat} runs on ``demo/data/text`` (three small files), so the times are "
                       "almost all start-up. The ``local`` row runs the whole job path on this machine: "
                       "bundle, local stand-in for S3, container layout, a second interpreter for the job.")
    for case, value in zip(cases, medians):
        table.rows.append([case.label, ms(value), "—" if value is plain else f"+{ms(value - plain)}", ratio(value, plain)])
    res.tables.append(table)
    res.claim("Local run (``--sagemaker-run=no``)", ms(medians[1]), f"{ms(plain)} (the same script without it)",
              f"{ratio(medians[1], plain)} the plain script's time")


# --- 3. re-launch uploads --------------------------------------------------------------------------

@dataclass
class LaunchSamples:
    """Per tool: wall time, S3 payload bytes and object writes of the 1st and 2nd launch, per repetition."""

    seconds: Tuple[List[float], List[float]] = field(default_factory=lambda: ([], []))
    payload: Tuple[List[int], List[int]] = field(default_factory=lambda: ([], []))
    writes: Tuple[List[int], List[int]] = field(default_factory=lambda: ([], []))
    error: Optional[str] = None

    def add(self, nth: int, run: Run, stats: Mapping[str, Any]) -> None:
        self.seconds[nth].append(run.seconds)
        self.payload[nth].append(int(stats["s3_payload_bytes"]))
        self.writes[nth].append(int(stats["s3_object_writes"]))

    def time(self, nth: int) -> Optional[float]:
        return median(self.seconds[nth]) if self.seconds[nth] else None

    def bytes(self, nth: int) -> Optional[float]:
        return median(self.payload[nth]) if self.payload[nth] else None


def make_data(folder: Path, files: int, file_bytes: int) -> int:
    """``files`` text files of random base64 (nothing compresses or deduplicates it)."""
    import base64

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        raw = os.urandom(file_bytes * 3 // 4)
        (folder / f"part-{i:03d}.txt").write_bytes(base64.b64encode(raw)[:file_bytes])
    return sum(p.stat().st_size for p in folder.iterdir())


def bench_relaunch(ws: Workspace, moto: MotoProcess, ours: Venv, sdk: Venv, awscli: Venv, repeat: int,
                   res: Results) -> None:
    """First and second launch of the same job, and two copies of the same folder with the AWS CLI."""
    log("3/5 re-launch uploads")
    data = ws.work / "relaunch-data"
    total = make_data(data, DATA_FILES, DATA_FILE_BYTES)
    ours_cmd = [ours.python, str(DEMO), "--sagemaker-run=yes", "--sagemaker-role", ROLE, "--sagemaker-image", IMAGE,
                "--sagemaker-wait=no", "--input", str(data), "--output", str(ws.fresh_dir("relaunch-out"))]
    tools: Dict[str, Tuple[Venv, Callable[[int], List[str]]]] = {
        "ours": (ours, lambda nth: ours_cmd),
        "sdk": (sdk, lambda nth: [sdk.python, str(BENCH / "sdk_launch.py"), str(DEMO), str(data), ROLE, IMAGE,
                                  SDK_BUCKET]),
        "cp": (awscli, lambda nth: [*awscli.script("aws"), "s3", "cp", "--recursive", "--only-show-errors",
                                    "--endpoint-url", moto.url, str(data), f"s3://{CLI_BUCKET}/cp/"]),
        "sync": (awscli, lambda nth: [*awscli.script("aws"), "s3", "sync", "--only-show-errors",
                                      "--endpoint-url", moto.url, str(data), f"s3://{CLI_BUCKET}/sync/"]),
    }
    samples = {name: LaunchSamples() for name in tools}
    for rep in range(repeat + 1):  # repetition 0 warms the page cache and is not counted
        for name, (venv, command) in tools.items():
            if venv.error:
                samples[name].error = f"{venv.name} venv: {venv.error}"
                continue
            if samples[name].error:
                continue
            moto.reset()
            if name in ("cp", "sync"):
                moto.create_bucket(CLI_BUCKET)
            # A fresh home: the first launch starts with an empty hash cache, as a first launch does.
            env = ws.aws_env(moto.url, remote_home=ws.fresh_dir("asr-home"))
            for nth in (0, 1):
                run = run_measured(command(nth), env, ws.tmp)
                stats = moto.take_stats()
                if run.returncode != 0:
                    samples[name].error = f"launch {nth + 1} failed: {run.tail()}"
                    if name == "ours":
                        raise BenchError(f"our launch failed: {run.tail()}")
                    break
                if name == "ours":
                    check_staged_line(run.stderr, nth)
                if rep:
                    samples[name].add(nth, run, stats)
    moto.reset()
    shutil.rmtree(data)

    ours_s = samples["ours"]
    labels = {
        "ours": "this package: ``wordcount.py --sagemaker-run=yes --sagemaker-wait=no``",
        "sdk": "SageMaker SDK: ``ScriptProcessor.run(wait=False)``",
        "cp": "AWS CLI: ``aws s3 cp --recursive``",
        "sync": "AWS CLI: ``aws s3 sync``",
    }
    table = Table("Re-launch uploads",
                  ["Tool", "1st: sent to S3", "1st: time", "2nd: sent to S3", "2nd: time", "2nd time × ours"],
                  note=f"A folder of {DATA_FILES} files, {size(total)} in all, against the moto server; median of "
                       f"{repeat} repetitions, each starting from an empty server (and, for this package, an "
                       "empty hash cache). Bytes are S3 request payloads counted by the server. A launch also "
                       "uploads the code bundle and creates the job; the CLI rows only copy the folder.")
    for name, s in samples.items():
        if s.error and not s.seconds[0]:
            table.rows.append([labels[name], not_measured(s.error), "—", "—", "—", "—"])
            continue
        table.rows.append([labels[name], size(s.bytes(0)), ms(s.time(0)), size(s.bytes(1)), ms(s.time(1)),
                           ratio(s.time(1), ours_s.time(1))])
    res.tables.append(table)
    res.facts["relaunch_data"] = f"{DATA_FILES} files ({size(total)})"

    res.claim("Second launch, nothing changed: bytes uploaded", size(ours_s.bytes(1)),
              ", ".join(f"{size(samples[n].bytes(1))} ({short})" for n, short in
                        (("sdk", "SDK"), ("cp", "``aws s3 cp``"), ("sync", "``aws s3 sync``"))
                        if samples[n].seconds[1]), "—")
    if samples["sdk"].seconds[1]:
        res.claim("Second launch, nothing changed: time", ms(ours_s.time(1)),
                  f"{ms(samples['sdk'].time(1))} (SDK, uploads everything again)",
                  f"{ratio(samples['sdk'].time(1), ours_s.time(1))} faster")
    if samples["sync"].seconds[1]:
        res.claim("Second launch vs ``aws s3 sync`` of the data alone", ms(ours_s.time(1)),
                  f"{ms(samples['sync'].time(1))} (``aws s3 sync``, 2nd run)",
                  f"{ratio(ours_s.time(1), samples['sync'].time(1))} the CLI's time")


def check_staged_line(stderr: str, nth: int) -> None:
    """Our own report of the upload must agree with what the server saw: nothing on the 2nd launch."""
    match = _STAGED_RE.search(stderr)
    if match is None:
        raise BenchError(f"no 'staged ...' line in the launch output: {stderr[-500:]}")
    if nth == 1 and match.group(2) != "0 B":
        raise BenchError(f"the second launch uploaded {match.group(2)}")


# --- 4. staging memory ----------------------------------------------------------------------------

def write_random_file(path: Path, mib: int) -> None:
    with open(path, "wb") as fh:
        for _ in range(mib):
            fh.write(os.urandom(1 << 20))


def bench_memory(ws: Workspace, moto: MotoProcess, ours: Venv, sdk: Venv, awscli: Venv, repeat: int,
                 res: Results) -> None:
    """Peak RSS of a launch (or copy) of a small and a large file, in the uploading process only.

    Every tool runs under ``bench/peak_rss.py``, which reads the process's own
    high-water mark at exit; the moto server, whose memory grows with what it
    stores, is another process.
    """
    log("4/5 staging memory")
    folders = {mib: ws.work / f"memory-{mib}mib" for mib in (SMALL_FILE_MIB, BIG_FILE_MIB)}

    def data_file(mib: int) -> Path:
        return folders[mib] / "data.bin"

    wrap = str(BENCH / "peak_rss.py")
    tools: Dict[str, Tuple[Venv, Callable[[int], List[str]]]] = {
        "ours": (ours, lambda mib: [ours.python, wrap, str(DEMO), "--sagemaker-run=yes", "--sagemaker-role", ROLE,
                                    "--sagemaker-image", IMAGE, "--sagemaker-wait=no", "--input", str(folders[mib]),
                                    "--output", str(ws.fresh_dir("memory-out"))]),
        "sdk": (sdk, lambda mib: [sdk.python, wrap, str(BENCH / "sdk_launch.py"), str(DEMO), str(folders[mib]), ROLE,
                                  IMAGE, SDK_BUCKET]),
        "cli": (awscli, lambda mib: [awscli.python, wrap, str(awscli.path / "bin" / "aws"), "s3", "cp",
                                     "--only-show-errors", "--endpoint-url", moto.url, str(data_file(mib)),
                                     f"s3://{MEMORY_BUCKET}/cli/data.bin"]),
    }
    peaks: Dict[Tuple[str, int], List[int]] = {}
    seconds: Dict[Tuple[str, int], List[float]] = {}
    errors = {name: f"{venv.name} venv: {venv.error}" for name, (venv, _cmd) in tools.items() if venv.error}
    for mib, folder in folders.items():
        folder.mkdir(parents=True)
        write_random_file(data_file(mib), mib)
        try:
            for _ in range(repeat):
                for name, (_venv, command) in tools.items():
                    if name in errors:
                        continue
                    moto.reset()
                    if name == "cli":
                        moto.create_bucket(MEMORY_BUCKET)
                    # A fresh home each time: this package hashes the file, as on a first launch.
                    run = run_measured(command(mib), ws.aws_env(moto.url, remote_home=ws.fresh_dir("asr-home")),
                                       ws.tmp)
                    sent = int(moto.take_stats()["s3_payload_bytes"])
                    if run.returncode != 0 or sent < mib << 20:
                        errors[name] = f"{mib} MiB: exit code {run.returncode}, {sent} bytes sent: {run.tail()}"
                        if name == "ours":
                            raise BenchError(f"our launch of {mib} MiB failed: {errors[name]}")
                        continue
                    peaks.setdefault((name, mib), []).append(run.peak_rss_kib())
                    seconds.setdefault((name, mib), []).append(run.seconds)
        finally:
            shutil.rmtree(folder)
    moto.reset()

    def peak(tool: str, mib: int) -> Optional[float]:
        values = peaks.get((tool, mib))
        return median(values) * 1024 if values else None

    def took(tool: str, mib: int) -> Optional[float]:
        values = seconds.get((tool, mib))
        return median(values) if values else None

    small, big = SMALL_FILE_MIB, BIG_FILE_MIB
    table = Table("Staging memory", ["Uploader", f"Peak RSS, {small} MiB", f"Peak RSS, {big} MiB",
                                     "Large − small", "Large ÷ small", f"Time, {big} MiB"],
                  note=f"Peak resident memory (``VmHWM``) of the uploading process alone, median of {repeat} runs; "
                       f"the moto server runs in another process. The input is one file of random bytes. This "
                       f"package and the SDK launch the demo with it as the input folder (code bundle and job "
                       f"included, nothing staged before); the CLI copies the file. Time is the whole process, "
                       f"start-up included.")
    labels = {"ours": "this package: ``--sagemaker-run=yes --sagemaker-wait=no``",
              "sdk": "SageMaker SDK: ``ScriptProcessor.run(wait=False)``",
              "cli": "AWS CLI: ``aws s3 cp``"}
    for name, label in labels.items():
        low, high = peak(name, small), peak(name, big)
        if low is None or high is None:
            table.rows.append([label, not_measured(errors.get(name, "no result")), "—", "—", "—", "—"])
            continue
        table.rows.append([label, size(low), size(high), size(high - low), ratio(high, low), ms(took(name, big))])
    res.tables.append(table)
    res.claim(f"Launch memory, {big} MiB vs {small} MiB input", size(peak("ours", big)),
              f"{size(peak('ours', small))} with {small} MiB",
              f"{ratio(peak('ours', big), peak('ours', small))} for {big}× the data")


# --- 5. dry run ------------------------------------------------------------------------------------

def bench_dry_run(ws: Workspace, moto: MotoProcess, ours: Venv, sdk: Venv, repeat: int, res: Results) -> None:
    """``--sagemaker-dry-run`` end to end (AWS calls included) vs the SDK's bare import, taking turns."""
    log("5/5 dry run")
    env = ws.aws_env(moto.url, remote_home=ws.fresh_dir("asr-home"))
    moto.reset()
    common = [ours.python, str(DEMO), "--sagemaker-run=yes", "--sagemaker-role", ROLE, "--sagemaker-image", IMAGE,
              "--output", str(ws.fresh_dir("dry-out"))]
    # One real launch first: a dry run usually checks a job whose bucket and code already exist.
    run_checked([*common, "--sagemaker-wait=no"], env, ws.tmp, "launch before the dry runs")
    cases = [Case("dry run", [*common, "--sagemaker-dry-run"], env)]
    if not sdk.error:
        cases.append(Case(f"import {SDK_IMPORT}", [sdk.python, "-c", f"import {SDK_IMPORT}"],
                          {**ws.base_env(), "AWS_DEFAULT_REGION": REGION}))
    medians = timed(cases, ws.tmp, repeat)
    moto.reset()
    dry = medians[0]
    sdk_import = medians[1] if len(medians) > 1 else None
    table = Table("Dry run", ["Command", "Median", "× dry run"],
                  note=f"Median of {repeat} runs, the two commands taking turns. The dry run parses flags, plans, "
                       "builds the bundle, asks STS and S3 (on the moto server) what is already staged and prints "
                       "the request; the SDK row is only its import, before any of that work.")
    table.rows.append(["``wordcount.py --sagemaker-run=yes --sagemaker-dry-run``", ms(dry), "1.0×"])
    table.rows.append([f"``python -c \"import {SDK_IMPORT}\"``",
                       ms(sdk_import) if sdk_import is not None else not_measured(f"sdk venv: {sdk.error}"),
                       ratio(sdk_import, dry)])
    res.tables.append(table)
    if sdk_import is not None:
        res.claim("Dry run, end to end", ms(dry), f"{ms(sdk_import)} (the SDK's import alone)",
                  f"{ratio(sdk_import, dry)} faster")


# --- machine facts and the page ---------------------------------------------------------------------

def machine_facts(ours: Venv, sdk: Venv, awscli: Venv) -> Dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        kib = int(Path("/proc/meminfo").read_text(encoding="utf-8").split("MemTotal:")[1].split()[0])
        memory = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, IndexError, ValueError):
        pass
    try:
        import moto

        moto_version = str(moto.__version__)
    except ImportError:
        moto_version = "?"
    facts = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d"),
        "nproc": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()),
        "cpu": cpu,
        "memory": memory,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(terse=True),
        "aws-sagemaker-remote": venv_version(ours, "aws-sagemaker-remote") if not ours.error else "?",
        "boto3": venv_version(ours, "boto3") if not ours.error else "?",
        "sagemaker": venv_version(sdk, "sagemaker") if not sdk.error else f"not installed ({sdk.error})",
        "awscli": venv_version(awscli, "awscli") if not awscli.error else f"not installed ({awscli.error})",
        "moto": moto_version,
    }
    return facts


PAGE_TEMPLATE = """\
Performance
===========

Rerun the measurements on your machine (PyPI must be reachable: the run
builds throwaway virtual environments for this package, the SageMaker SDK and
the AWS CLI, and installing the 1 GB SDK takes most of its few minutes):

.. code-block:: shell

   pip install -e '.[bench]' && python bench/run.py

``python bench/run.py --help`` lists the options: ``--venv-dir DIR`` keeps
the virtual environments for the next run, ``--skip-sdk`` leaves the SDK out,
``--no-docs`` prints the tables without rewriting this page. Each run rewrites
this page from a template in ``bench/run.py``; edit the text there.

The framework keeps its own cost small where users pay it most often:
``import aws_sagemaker_remote`` and a local run load neither boto3 nor the
SageMaker SDK; a second launch with nothing changed uploads zero bytes,
because files are staged by content address; and staging streams files, so
memory does not grow with their size. The benchmark checks each of these
side by side, in one run, with what a user would otherwise use: the SageMaker
Python SDK (v3) and the AWS CLI, against the same moto server.

Results
-------

Measured on {date} on a machine with {nproc} cores ({cpu}), {memory} of memory,
{python} on {os}; aws-sagemaker-remote {ours_version} ({revision}), boto3 {boto3},
sagemaker {sagemaker}, awscli {awscli}, moto {moto}. The run took
{elapsed}, {setup} of it for the virtual environments.

{tables}

Method
------

* Every number comes from fresh subprocesses, timed from start to exit, with
  one untimed warm-up round first (so the page cache and compiled bytecode
  are warm for every tool alike); the tables give the median. Commands that
  are compared take turns within each round, so a burst of load on the
  machine slows all of them rather than one.
* Each tool runs from its own virtual environment, all made from the same
  Python: ``ours`` holds this checkout installed as a user installs it (with
  boto3 and its dependencies), ``sdk`` holds ``{sdk_requirement}``, ``awscli``
  holds the AWS CLI v1 from PyPI. Installed sizes are those of each venv's
  ``site-packages`` without pip and setuptools.
* AWS is a moto server on 127.0.0.1 in its own process
  (``bench/moto_counting_server.py``). It counts the payload bytes of every S3
  request as it arrives, so uploads are compared the same way for every tool,
  whatever each tool reports about itself. Launches use ``--sagemaker-wait=no``
  and the SDK's ``wait=False``: moto marks jobs completed at once, so waiting
  would measure nothing real. A small ``sitecustomize`` on ``PYTHONPATH``
  (``bench/loopback_guard``) refuses any connection that is not to loopback,
  for every launched tool alike; the SDK's telemetry is switched off through
  its own config file.
* Re-launch: the same script is launched twice with a folder of
  {relaunch_data} as its input. This package stages by content address, so the second launch only
  asks S3 whether the content is already there. The SDK uploads the script
  and the inputs under a prefix named after each new job, so it uploads
  everything every time. ``aws s3 cp --recursive`` copies everything every
  time; ``aws s3 sync`` skips files whose size and modification time match.
  The CLI rows copy only the data: no bundle, no job.
* Memory: each uploader runs under ``bench/peak_rss.py``, which runs the
  tool's Python script in its own process and reports that process's
  high-water mark (``VmHWM``) at exit. ``getrusage`` cannot be used for this:
  on Linux a child's ``ru_maxrss`` starts at its parent's size at fork time.
  This package sends a large file as a multipart upload whose parts are read
  from disk as they go out, a few at a time, so its memory stays bounded
  whatever the file's size.
* Dry run: ``--sagemaker-dry-run`` does everything a launch does except
  uploading and creating the job, including the STS and S3 calls to the moto
  server. It is compared with ``python -c "import {sdk_import}"``, the least
  any SDK-based launch can cost.

Reading the numbers
-------------------

The ratios matter more than the absolute times, which depend on the machine
and its load. The moto server answers faster than AWS, so launch and dry-run
times here are lower bounds: against AWS every request adds a network round
trip, and uploads are limited by bandwidth, which makes skipping them (the
second-launch rows) worth more, not less. Import and local-run times do not
involve AWS and carry over as they are.

* A local run costs the plain script's time plus the framework's import and
  flag parsing: a fixed few tens of milliseconds, whatever the script does.
  ``--sagemaker-run=local`` costs more because it really runs the job path:
  it builds the bundle, stages it and starts the job's own interpreter.
* With nothing to upload, a launch costs about what ``aws s3 sync`` costs to
  find nothing to copy: both are mostly botocore starting up (importing it,
  loading service models, building clients). A launch also builds the code
  bundle and creates the job, which the CLI rows do not.
* The SDK's launches are slower mainly because of its import (compare the
  dry-run table) and because it uploads the inputs again for every job.
"""


def duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def render_page(res: Results, elapsed: float) -> str:
    facts = res.facts
    tables = "\n\n".join([res.summary.rst(), *(t.rst() for t in res.tables)])
    return PAGE_TEMPLATE.format(
        setup=facts.get("setup", "none"), date=facts["date"], nproc=facts["nproc"], cpu=facts["cpu"],
        memory=facts["memory"], python=facts["python"], os=facts["os"],
        ours_version=facts["aws-sagemaker-remote"], revision=facts.get("revision", "?"), boto3=facts["boto3"],
        sagemaker=facts["sagemaker"],
        awscli=facts["awscli"], moto=facts["moto"], elapsed=duration(elapsed), tables=tables,
        sdk_requirement=SDK_REQUIREMENT, sdk_import=SDK_IMPORT,
        relaunch_data=facts.get("relaunch_data", f"{DATA_FILES} files"),
    )


# --- main ------------------------------------------------------------------------------------------

def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT,
                        help="runs per timing of imports, local runs and dry runs (default: %(default)s)")
    parser.add_argument("--launch-repeat", type=int, default=DEFAULT_LAUNCH_REPEAT,
                        help="repetitions of the re-launch and memory measurements (default: %(default)s)")
    parser.add_argument("--venv-dir", type=Path, default=None,
                        help="keep the ours/sdk/awscli venvs here and reuse them next time "
                             "(default: a temporary folder, removed at the end)")
    parser.add_argument("--skip-sdk", action="store_true", help="do not install or measure the SageMaker SDK")
    parser.add_argument("--no-docs", action="store_true", help=f"do not rewrite {DOC_PAGE.relative_to(REPO)}")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.launch_repeat < 1:
        parser.error("--repeat and --launch-repeat must be at least 1")
    return args


@dataclass
class Environments:
    ours: Venv
    sdk: Venv
    awscli: Venv


def build_environments(ws: Workspace, venv_dir: Path, skip_sdk: bool, facts: Dict[str, str]) -> Environments:
    facts["revision"] = checkout_revision()
    source = copy_our_source(ws.work / "source")
    ours = build_venv("ours", venv_dir / "ours", "aws-sagemaker-remote (this checkout)", [str(source)],
                      "aws_sagemaker_remote", ws.logs,
                      reinstall_args=["--no-deps", "--force-reinstall", str(source)])
    if skip_sdk:
        sdk = Venv("sdk", venv_dir / "sdk", SDK_REQUIREMENT, error="skipped (--skip-sdk)")
    else:
        sdk = build_venv("sdk", venv_dir / "sdk", SDK_REQUIREMENT, [SDK_REQUIREMENT], SDK_IMPORT, ws.logs)
    awscli = build_venv("awscli", venv_dir / "awscli", AWSCLI_REQUIREMENT, [AWSCLI_REQUIREMENT], "awscli", ws.logs)
    if ours.error:
        raise BenchError(f"cannot install this checkout: {ours.error}")
    return Environments(ours, sdk, awscli)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="asr-bench-"))
    ws = Workspace(root)
    venv_dir = args.venv_dir.expanduser().resolve() if args.venv_dir else root / "venvs"
    moto = MotoProcess(ws)
    res = Results()
    try:
        envs = build_environments(ws, venv_dir, args.skip_sdk, res.facts)
        res.facts["setup"] = duration(time.perf_counter() - started)
        res.facts.update(machine_facts(envs.ours, envs.sdk, envs.awscli))
        bench_imports(ws, envs.ours, envs.sdk, args.repeat, res)
        bench_local_run(ws, envs.ours, args.repeat, res)
        moto.start()
        bench_relaunch(ws, moto, envs.ours, envs.sdk, envs.awscli, args.launch_repeat, res)
        bench_memory(ws, moto, envs.ours, envs.sdk, envs.awscli, args.launch_repeat, res)
        bench_dry_run(ws, moto, envs.ours, envs.sdk, args.repeat, res)
    except BenchError as exc:
        log(f"error: {exc}")
        return 1
    finally:
        moto.stop()
        shutil.rmtree(root, ignore_errors=True)
    elapsed = time.perf_counter() - started
    facts = res.facts
    print(f"{facts['date']}: {facts['nproc']} cores ({facts['cpu']}), {facts['python']}; "
          f"{duration(elapsed)} ({facts['setup']} for the venvs)\n")
    for table in [res.summary, *res.tables]:
        print(table.text() + "\n")
    if not args.no_docs:
        DOC_PAGE.write_text(render_page(res, elapsed), encoding="utf-8")
        log(f"wrote {DOC_PAGE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
