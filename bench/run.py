"""Measure the launches users repeat, side by side with the AWS CLI and the SageMaker SDK, in one run.

Usage::

    python -m venv /tmp/bench-env && . /tmp/bench-env/bin/activate
    pip install -e '.[bench]'          # moto server and the AWS CLI (awscli), pinned
    python bench/run.py --quick        # small sizes, few repeats: a smoke test of the harness
    python bench/run.py --update-docs  # the full run (about 40 min); rewrites the results in docs/performance.rst
    python bench/run.py --rst table.rst   # the same, the RST tables to a file instead

The ``bench`` extra pins an AWS CLI whose dependencies conflict with the ``docs``
extra (``docutils``), hence its own environment.

Rows (each a user's iteration; the sizes are options, ``--help`` lists them):

1. a launch of a 20 MiB / 300-file code folder with nothing changed since the last launch;
2. the same with one code file changed;
3. a launch with an input folder of 3,000 and 10,000 × 1 KiB files, one file changed;
4. a cold launch (empty bucket, empty cache) with 300 / 3,000 / 10,000 × 1 KiB input files;
5. a cold launch with 1,000 × 1 MiB input files;
6. a cold launch with one 1 GiB input file (against ``aws s3 cp``);
7. a local run of ``demo/wordcount.py`` against the same ``main`` behind plain argparse.

Rows 1-6 run three tools against one moto server on 127.0.0.1
(``bench/moto_counting_server.py``, its own process): this checkout
(``--sagemaker-run=yes --sagemaker-wait=no``, from this interpreter with the
checkout first on ``PYTHONPATH``), ``aws s3 sync`` / ``aws s3 cp`` of the same
folder from this environment's ``awscli``, and the SageMaker SDK v2
``FrameworkProcessor.run(wait=False)`` from its own virtual environment, created
under ``--cache-dir`` with a pinned version. The tools take turns within each
repetition (the order rotating), so a burst of load slows all of them; ratios are
medians of the ratios of each repetition's pair. Every launch runs under
``bench/peak_rss.py`` (peak RSS of that process alone). The server counts every
request by operation and the bytes each client sent (headers included).
"""
from __future__ import annotations

import argparse
import base64
import datetime as _dt
import json
import importlib.util
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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
DEMO = REPO / "demo" / "wordcount.py"
DEMO_INPUT = REPO / "demo" / "data" / "text"
PLAIN = BENCH / "plain_wordcount.py"
PEAK_RSS = BENCH / "peak_rss.py"
SDK_LAUNCH = BENCH / "sdk_launch.py"
GUARD = BENCH / "loopback_guard"

REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/R"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/x:1"
OURS_BUCKET = "bench-ours"
CLI_BUCKET = "bench-cli"
SDK_BUCKET = "bench-sdk"

#: The SDK compared with: v2, whose ``FrameworkProcessor`` launches a code folder; pinned so runs compare.
SDK_REQUIREMENT = "sagemaker==2.257.7"
SDK_CHECK_IMPORT = "sagemaker.processing"
DOC_PAGE = REPO / "docs" / "performance.rst"
#: ``--update-docs`` replaces what lies between these two RST comments of the page.
DOC_BEGIN = ".. bench-results-begin"
DOC_END = ".. bench-results-end"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aws-sagemaker-remote-bench"
PEAK_RSS_MARKER = "BENCH_PEAK_RSS_KIB="
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
RUN_TIMEOUT = 3600.0
MIB = 1 << 20

TOOLS = ("ours", "cli", "sdk")
TOOL_NAMES = {"ours": "this package", "cli": "AWS CLI", "sdk": "SDK v2"}


class BenchError(RuntimeError):
    """A step of the benchmark could not run; the message says which and why."""


def log(message: str) -> None:
    """Progress on stderr, so stdout keeps only the result tables."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- sizes --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sizes:
    """What the run measures and how often; ``--quick`` and the size options replace fields."""

    code_files: int = 300
    code_mib: float = 20.0
    changed_inputs: Tuple[int, ...] = (3000, 10000)
    cold_inputs: Tuple[int, ...] = (300, 3000, 10000)
    small_file_bytes: int = 1024
    mib_files: int = 1000
    big_mib: int = 1024
    repeat: int = 5
    big_repeat: int = 3
    local_repeat: int = 21
    #: Rows (key prefixes) the SDK takes part in; empty: all. Its launches are the slowest of the three.
    sdk_rows: Tuple[str, ...] = ()


FULL = Sizes()
#: One row with and one without an input folder are enough to check that the SDK's launch works.
QUICK = Sizes(code_files=30, code_mib=2.0, changed_inputs=(100,), cold_inputs=(100,), mib_files=8, big_mib=32,
              repeat=1, big_repeat=1, local_repeat=5, sdk_rows=("code-same", "cold-100"))


# --- running processes ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    """One finished subprocess: wall and CPU time, exit code, output, peak RSS if it was wrapped."""

    seconds: float
    cpu: float
    returncode: int
    stdout: str
    stderr: str

    def tail(self, lines: int = 4) -> str:
        text = [line for line in (self.stderr.strip() or self.stdout.strip()).splitlines()
                if not line.startswith(PEAK_RSS_MARKER)]
        return " | ".join(text[-lines:]) or f"exit code {self.returncode}"

    def peak_rss(self) -> Optional[int]:
        """Bytes: the high-water mark ``bench/peak_rss.py`` reported for the process it ran."""
        for line in reversed(self.stderr.splitlines()):
            if line.startswith(PEAK_RSS_MARKER):
                return int(line[len(PEAK_RSS_MARKER):]) * 1024
        return None


def run_measured(cmd: Sequence[str], env: Mapping[str, str], cwd: Path, timeout: float = RUN_TIMEOUT) -> Run:
    """Run ``cmd``; wall time from start to exit, CPU time (user + system) of the child from ``wait4``.

    Output goes to files, not pipes, so a chatty child never blocks on a full
    pipe. The wait is one blocking ``wait4``: ``Popen.wait(timeout)`` polls with
    growing sleeps, which would round every measurement up to the next poll.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), env=dict(env), cwd=str(cwd), stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _pid, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(seconds=seconds, cpu=usage.ru_utime + usage.ru_stime, returncode=proc.returncode,
                   stdout=out.read().decode("utf-8", "replace"), stderr=err.read().decode("utf-8", "replace"))


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


# --- the SDK's virtual environment ------------------------------------------------------------------

@dataclass
class Venv:
    """A virtual environment with one tool installed; ``error`` says why it is unusable."""

    path: Path
    requirement: str
    error: Optional[str] = None

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")


def sdk_venv(cache: Path, logs: Path) -> Venv:
    """The SDK's own venv under ``cache``, made from this interpreter; reused while the pin is the same."""
    path = cache / "sdk-v2"
    venv = Venv(path, SDK_REQUIREMENT)
    marker = path / ".bench-requirement"
    try:
        if not (marker.is_file() and marker.read_text(encoding="utf-8") == SDK_REQUIREMENT):
            shutil.rmtree(path, ignore_errors=True)
            log(f"creating the SDK's venv at {path} ({SDK_REQUIREMENT}); this takes a few minutes once")
            subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, capture_output=True)
            pip_log = logs / "pip-sdk.log"
            with open(pip_log, "wb") as fh:
                done = subprocess.run([venv.python, "-m", "pip", "install", "--quiet", SDK_REQUIREMENT],
                                      stdout=fh, stderr=subprocess.STDOUT, timeout=1800)
            if done.returncode != 0:
                lines = [line for line in pip_log.read_text(encoding="utf-8", errors="replace").splitlines()
                         if line.strip() and not line.startswith("WARNING:")]
                raise BenchError(f"pip install {SDK_REQUIREMENT} failed: {' | '.join(lines[-3:])}")
        check = subprocess.run([venv.python, "-c", f"import {SDK_CHECK_IMPORT}"], capture_output=True, text=True,
                               env={**os.environ, "AWS_DEFAULT_REGION": REGION})
        if check.returncode != 0:
            raise BenchError(f"import {SDK_CHECK_IMPORT} failed: {check.stderr.strip().splitlines()[-1:]}")
        marker.write_text(SDK_REQUIREMENT, encoding="utf-8")
    except (BenchError, subprocess.SubprocessError, OSError) as exc:
        venv.error = str(exc)
        log(f"SDK venv unusable, its column stays empty: {exc}")
    return venv


def version_in(python: str, distribution: str) -> str:
    done = subprocess.run([python, "-c", f"import importlib.metadata as m; print(m.version({distribution!r}))"],
                          capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else "?"


def aws_cli_script() -> Path:
    """The ``aws`` script installed with ``awscli`` next to this interpreter."""
    script = Path(sys.executable).parent / "aws"
    if importlib.util.find_spec("awscli") is None:
        raise BenchError("awscli is not installed here; install the bench extra: pip install -e '.[bench]'")
    if not script.is_file():
        raise BenchError(f"no aws script next to {sys.executable}; install the bench extra")
    return script


# --- workspace and moto server -------------------------------------------------------------------

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
        """No AWS settings, proxies or user configuration: every tool starts from the same place."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "SAGEMAKER_", "PYTHON", "PIP_")) and k not in PROXY_VARIABLES
               and k != "VIRTUAL_ENV"}
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

    def aws_env(self, endpoint: str, ours: bool = False, remote_home: Optional[Path] = None) -> Dict[str, str]:
        """Clients sent to the moto server with dummy credentials, on loopback only."""
        env = self.base_env()
        env.update({
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "SAGEMAKER_USER_CONFIG_OVERRIDE": str(self.sdk_config),
            "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
            "PYTHONPATH": os.pathsep.join([str(GUARD), str(REPO)] if ours else [str(GUARD)]),
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
        self._log = open(self.workspace.logs / "moto.log", "wb")
        self.proc = subprocess.Popen([sys.executable, str(BENCH / "moto_counting_server.py")],
                                     env=self.workspace.base_env(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self._log, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("URL "):
            self.stop()
            tail = (self.workspace.logs / "moto.log").read_text(errors="replace").strip().splitlines()[-2:]
            raise BenchError(f"moto server did not start: {' | '.join(tail)}")
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
        with self._opener.open(request, timeout=300) as response:
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
        self.take_stats()


# --- data ---------------------------------------------------------------------------------------------

def random_text(nbytes: int) -> bytes:
    """Random base64 text: nothing compresses or deduplicates it."""
    return base64.b64encode(os.urandom(nbytes * 3 // 4 + 3))[:nbytes]


def make_code_folder(folder: Path, files: int, mib: float, with_input: bool) -> Path:
    """``main.py`` (a job that does nothing) plus ``files`` Python modules of random text, ``mib`` MiB in all."""
    folder.mkdir(parents=True, exist_ok=True)
    inputs = '{"data": "data"}' if with_input else "{}"
    (folder / "main.py").write_text(
        '"""A job that does nothing: what is measured is its launch."""\n'
        "from aws_sagemaker_remote import sagemaker_processing_main\n\n\n"
        "def main(args):\n    return 0\n\n\n"
        'if __name__ == "__main__":\n'
        f"    sagemaker_processing_main(main, inputs={inputs}, outputs={{}})\n", encoding="utf-8")
    if files:
        per_file = max(64, int(mib * MIB) // files)
        for i in range(files):
            write_module(folder / "pkg" / f"mod_{i:04d}.py", per_file)
    return folder


def write_module(path: Path, nbytes: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = random_text(nbytes)
    lines = b"\n".join(b"# " + text[i:i + 76] for i in range(0, len(text), 76))
    path.write_bytes(lines[:nbytes - 1] + b"\n")


def make_input_folder(folder: Path, files: int, file_bytes: int) -> int:
    """``files`` files of ``file_bytes`` random bytes, 1,000 per subfolder; returns the total size."""
    for i in range(files):
        path = folder / f"d{i // 1000:03d}" / f"f{i:05d}.bin"
        if i % 1000 == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
        if file_bytes >= MIB:
            with open(path, "wb") as fh:
                left = file_bytes
                while left:
                    chunk = min(left, 8 * MIB)
                    fh.write(os.urandom(chunk))
                    left -= chunk
        else:
            path.write_bytes(os.urandom(file_bytes))
    return files * file_bytes


def change_one_file(folder: Path, nth: int) -> Path:
    """Give one file (the ``nth`` in sorted order, wrapping) new content of the same size."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "main.py")
    path = files[nth % len(files)]
    nbytes = path.stat().st_size
    if path.suffix == ".py":
        write_module(path, nbytes)
    else:
        path.write_bytes(os.urandom(nbytes))
    return path


# --- scenarios ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scenario:
    """One row: what the code folder and input are, what happened since the last launch, what the CLI does."""

    key: str
    label: str
    code_files: int
    code_mib: float
    input_files: int = 0
    input_file_bytes: int = 0
    state: str = "same"  # same | code-changed | input-changed | cold
    cli: str = "sync-code"  # sync-code | sync-input | cp-file | cp-file-sha256
    goal: str = "—"
    repeat: int = 1
    throughput: bool = False

    @property
    def input_bytes(self) -> int:
        return self.input_files * self.input_file_bytes


def kib_files(n: int) -> str:
    return f"{n:,} × 1 KiB"


def scenarios(sizes: Sizes) -> List[Scenario]:
    code = f"{sizes.code_mib:g} MiB / {sizes.code_files:,}-file code folder"
    rows = [
        Scenario("code-same", f"{code}, nothing changed", sizes.code_files, sizes.code_mib,
                 goal="≤ 1.0×", repeat=sizes.repeat),
        Scenario("code-changed", f"{code}, one code file changed", sizes.code_files, sizes.code_mib,
                 state="code-changed", goal="≤ 1.2×", repeat=sizes.repeat),
    ]
    for n in sizes.changed_inputs:
        rows.append(Scenario(f"input-changed-{n}", f"input of {kib_files(n)}, one file changed", 0, 0, n,
                             sizes.small_file_bytes, state="input-changed", cli="sync-input", goal="≤ 1.2×",
                             repeat=sizes.big_repeat))
    for n in sizes.cold_inputs:
        rows.append(Scenario(f"cold-{n}", f"input of {kib_files(n)}, cold", 0, 0, n, sizes.small_file_bytes,
                             state="cold", cli="sync-input", goal="≤ 1.0×" if n >= 10000 else "—",
                             repeat=sizes.big_repeat))
    rows.append(Scenario(f"cold-mib-{sizes.mib_files}", f"input of {sizes.mib_files:,} × 1 MiB, cold", 0, 0,
                         sizes.mib_files, MIB, state="cold", cli="sync-input", goal="≤ 1.0× (throughput ≥ CLI)",
                         repeat=sizes.big_repeat, throughput=True))
    big = f"{sizes.big_mib // 1024} GiB" if sizes.big_mib % 1024 == 0 else f"{sizes.big_mib} MiB"
    rows.append(Scenario(f"cold-big-{sizes.big_mib}", f"one {big} input file, cold (vs ``aws s3 cp``)", 0, 0, 1,
                         sizes.big_mib * MIB, state="cold", cli="cp-file", goal="≤ 1.0× (throughput ≥ CLI)",
                         repeat=sizes.big_repeat, throughput=True))
    # the same file against the CLI sending SHA-256 checksums as we do: the server then hashes what
    # both receive alike (moto computes a part's checksum when it stores it, and the parts' again
    # when the upload completes: SHA-256 costs it more than the CLI's default CRC-32)
    rows.append(Scenario(f"cold-big-sha256-{sizes.big_mib}",
                         f"one {big} input file, cold (vs ``aws s3 cp --checksum-algorithm SHA256``)", 0, 0, 1,
                         sizes.big_mib * MIB, state="cold", cli="cp-file-sha256", repeat=sizes.big_repeat,
                         throughput=True))
    return rows


#: Figures measured before, for the same rows at the default sizes: the 2026-12-02 review of commit
#: 70f2b78 (ours vs the CLI and the SDK v2 2.257.7) and, where the old page had the row, its 2026-11-21 figure.
EARLIER: Dict[str, str] = {
    "code-same": "2.15× (1.24 s vs 0.58 s), 0 B sent; SDK v2 7.24 s (ours 0.20×), 11.1 MiB sent; "
                 "2026-11-21 page (demo code, 50-file input): 1.0× (698 vs 712 ms), SDK v3 7.7× slower",
    "code-changed": "2.49× (1.60 s, 11.1 MiB sent vs 0.60 s, 0.07 MiB)",
    "input-changed-3000": "22.5× (39.7 s: 6,001 HeadObject + 2,999 CopyObject vs 1.75 s)",
    "input-changed-10000": "not measured (≈ 130 s projected)",
    "cold-300": "1.83× (3.89 s vs 2.22 s)",
    "cold-3000": "2.22× (30.9 s vs 14.5 s)",
    "cold-10000": "1.81× (75.5 s vs 43.2 s)",
    "cold-mib-1000": "1.42× (74 vs 112 MiB/s), peak RSS 71 vs 91 MiB",
    "cold-big-1024": "1.11× (87 vs 108 MiB/s), peak RSS 80 vs 91 MiB; "
                     "2026-11-21 page, 200 MiB: peak RSS 80.7 vs 90.9 MiB (SDK v3 246.1 MiB)",
    "local-run": "1.82× wall, 1.71× cpu (88 vs 56 ms); 2026-11-21 page: 1.9× (81.2 vs 43.4 ms)",
}


# --- one row's measurements ------------------------------------------------------------------------

@dataclass
class ToolSamples:
    """Per tool: one entry per measured repetition."""

    seconds: List[float] = field(default_factory=list)
    cpu: List[float] = field(default_factory=list)
    sent: List[int] = field(default_factory=list)
    peak: List[int] = field(default_factory=list)
    operations: Dict[str, int] = field(default_factory=dict)
    error: Optional[str] = None

    def add(self, run: Run, stats: Mapping[str, Any]) -> None:
        self.seconds.append(run.seconds)
        self.cpu.append(run.cpu)
        self.sent.append(int(stats.get("sent_bytes", 0)))
        peak = run.peak_rss()
        if peak is not None:
            self.peak.append(peak)
        # The last repetition's requests: the same launch state each time, so any one shows the pattern.
        self.operations = dict(stats.get("operations", {}))


@dataclass
class RowResult:
    scenario: Scenario
    tools: Dict[str, ToolSamples]
    ratios: Dict[str, List[float]] = field(default_factory=dict)  # "cli" / "sdk" -> ours/other per repetition

    def to_json(self) -> Dict[str, Any]:
        return {"key": self.scenario.key, "label": self.scenario.label,
                "tools": {name: vars(samples) for name, samples in self.tools.items()}, "ratios": self.ratios}


class Bench:
    """Runs the rows against one moto server."""

    def __init__(self, ws: Workspace, moto: MotoProcess, sdk: Venv, aws: Path, sdk_rows: Sequence[str]) -> None:
        self.ws = ws
        self.moto = moto
        self.sdk = sdk
        self.aws = aws
        self.sdk_rows = tuple(sdk_rows)
        self.sdk_warm = False

    def commands(self, sc: Scenario, code: Path, data: Optional[Path], prefix: str) -> Dict[str, List[str]]:
        wrap = [sys.executable, str(PEAK_RSS)]
        ours = [*wrap, str(code / "main.py"), "--sagemaker-run=yes", "--sagemaker-wait=no",
                "--sagemaker-role", ROLE, "--sagemaker-image", IMAGE, "--sagemaker-bucket", OURS_BUCKET]
        if data is not None:
            ours += ["--data", str(data)]
        aws = [*wrap, str(self.aws), "s3"]
        endpoint = ["--only-show-errors", "--endpoint-url", self.moto.url]
        if sc.cli == "sync-code":
            cli = [*aws, "sync", *endpoint, str(code), f"s3://{CLI_BUCKET}/{prefix}/"]
        elif sc.cli == "sync-input":
            assert data is not None
            cli = [*aws, "sync", *endpoint, str(data), f"s3://{CLI_BUCKET}/{prefix}/"]
        else:
            assert data is not None
            (only,) = [p for p in data.rglob("*") if p.is_file()]
            checksum = ["--checksum-algorithm", "SHA256"] if sc.cli == "cp-file-sha256" else []
            cli = [*aws, "cp", *endpoint, *checksum, str(only), f"s3://{CLI_BUCKET}/{prefix}/{only.name}"]
        sdk = [self.sdk.python, str(PEAK_RSS), str(SDK_LAUNCH), str(code), "main.py",
               str(data) if data is not None else "-", ROLE, IMAGE, SDK_BUCKET]
        return {"ours": ours, "cli": cli, "sdk": sdk}

    def run_row(self, sc: Scenario) -> RowResult:
        log(f"row {sc.key}: {sc.repeat} repetition(s)")
        folder = self.ws.fresh_dir(sc.key)
        code = make_code_folder(folder / "code", sc.code_files, sc.code_mib, with_input=sc.input_files > 0)
        data: Optional[Path] = None
        if sc.input_files:
            data = folder / "data"
            make_input_folder(data, sc.input_files, sc.input_file_bytes)
        # the data just written is still being flushed to disk: whichever tool ran first would
        # read it while that goes on (a gigabyte of writeback slowed the first run by a third)
        os.sync()
        with_sdk = not self.sdk.error and wanted(sc.key, list(self.sdk_rows) or None)
        tools = [t for t in TOOLS if t != "sdk" or with_sdk]
        samples = {t: ToolSamples() for t in TOOLS}
        if self.sdk.error:
            samples["sdk"].error = f"SDK venv: {self.sdk.error}"
        ratios: Dict[str, List[float]] = {}
        home = self.ws.fresh_dir("asr-home")
        self.moto.reset()
        self.moto.create_bucket(CLI_BUCKET)
        try:
            if sc.state != "cold":
                # One untimed launch each: the state the measured launches start from. The SDK
                # uploads everything on every launch whatever came before, so it needs one only
                # to warm the page cache for its own files, once per run.
                for tool in tools:
                    if tool == "sdk" and self.sdk_warm:
                        continue
                    self.one(sc, tool, code, data, home, "warm", samples[tool], warm_up=True)
                    self.sdk_warm = self.sdk_warm or tool == "sdk"
            for rep in range(sc.repeat):
                if sc.state == "code-changed":
                    change_one_file(code, rep)
                elif sc.state == "input-changed":
                    assert data is not None
                    change_one_file(data, rep * 7919)
                order = tools[rep % len(tools):] + tools[:rep % len(tools)]
                for tool in order:
                    if samples[tool].error:
                        continue
                    if sc.state == "cold":
                        self.moto.reset()
                        self.moto.create_bucket(CLI_BUCKET)
                        home = self.ws.fresh_dir("asr-home")
                    self.one(sc, tool, code, data, home, f"r{rep}", samples[tool])
                ours = samples["ours"].seconds
                for other in ("cli", "sdk"):
                    theirs = samples[other].seconds
                    if len(ours) == rep + 1 and len(theirs) == rep + 1 and theirs[-1] > 0:
                        ratios.setdefault(other, []).append(ours[-1] / theirs[-1])
        finally:
            self.moto.reset()
            shutil.rmtree(folder, ignore_errors=True)
        return RowResult(sc, samples, ratios=ratios)

    @staticmethod
    def missed_work(sc: Scenario, tool: str, stats: Mapping[str, Any], warm_up: bool) -> Optional[str]:
        """Why a launch that exited 0 did not do what the row measures, if it did not (checked on the server)."""
        jobs = int(stats.get("operations", {}).get("sagemaker:CreateProcessingJob", 0))
        if tool != "cli" and jobs != 1:
            return f"{jobs} CreateProcessingJob requests, not 1"
        payload = int(stats.get("s3_payload_bytes", 0))
        # Input files are random bytes: no tool can send less than all of them to a cold server.
        if sc.state == "cold" and payload < sc.input_bytes:
            return f"sent {size(payload)} of uploads to an empty server, less than the {size(sc.input_bytes)} input"
        if sc.state in ("code-changed", "input-changed") and not warm_up and payload == 0:
            return "uploaded nothing although a file changed"
        return None

    def one(self, sc: Scenario, tool: str, code: Path, data: Optional[Path], home: Path, prefix: str,
            samples: ToolSamples, warm_up: bool = False) -> None:
        """One launch (or copy) by ``tool``, counted into ``samples`` unless it is a warm-up.

        A failure marks ``samples``, so that the tool sits out the rest of the row: after a
        failed warm-up its launches would not start from the row's state.
        """
        cmd = self.commands(sc, code, data, "same" if sc.state != "cold" else prefix)[tool]
        env = self.ws.aws_env(self.moto.url, ours=tool == "ours", remote_home=home)
        self.moto.take_stats()
        run = run_measured(cmd, env, code)
        stats = self.moto.take_stats()
        problem = f"exit code {run.returncode}: {run.tail()}" if run.returncode else self.missed_work(
            sc, tool, stats, warm_up)
        if problem:
            message = f"{'warm-up: ' if warm_up else ''}{problem}"
            log(f"  {tool} failed: {message}")
            samples.error = message
            return
        if not warm_up:
            samples.add(run, stats)
            log(f"  {tool}: {run.seconds:.2f} s, {size(stats.get('sent_bytes', 0))} sent, "
                f"{sum(stats.get('operations', {}).values())} requests")


# --- local run ------------------------------------------------------------------------------------------

@dataclass
class LocalResult:
    ours: List[float] = field(default_factory=list)
    plain: List[float] = field(default_factory=list)
    ours_cpu: List[float] = field(default_factory=list)
    plain_cpu: List[float] = field(default_factory=list)
    ratios: List[float] = field(default_factory=list)
    cpu_ratios: List[float] = field(default_factory=list)


def bench_local_run(ws: Workspace, repeat: int) -> LocalResult:
    """``demo/wordcount.py`` vs ``bench/plain_wordcount.py``: interleaved pairs, order alternating."""
    log(f"row local-run: {repeat} pair(s)")
    env = ws.base_env()
    env["PYTHONPATH"] = str(REPO)
    out_plain, out_demo = ws.fresh_dir("plain"), ws.fresh_dir("demo")
    demo = [sys.executable, str(DEMO), "--input", str(DEMO_INPUT), "--output", str(out_demo)]
    plain = [sys.executable, str(PLAIN), "--input", str(DEMO_INPUT), "--output", str(out_plain)]
    result = LocalResult()
    for pair in range(repeat + 1):  # pair 0 warms the page cache and writes bytecode for both
        first, second = (demo, plain) if pair % 2 else (plain, demo)
        runs = {}
        for cmd in (first, second):
            run = run_measured(cmd, env, ws.tmp)
            if run.returncode != 0:
                raise BenchError(f"{Path(cmd[1]).name} failed: {run.tail()}")
            runs[id(cmd)] = run
        if pair:
            a, b = runs[id(demo)], runs[id(plain)]
            result.ours.append(a.seconds)
            result.plain.append(b.seconds)
            result.ours_cpu.append(a.cpu)
            result.plain_cpu.append(b.cpu)
            result.ratios.append(a.seconds / b.seconds)
            result.cpu_ratios.append(a.cpu / b.cpu if b.cpu else float("nan"))
    # Same work, same answer: the comparison is only fair if both count alike.
    if (out_plain / "counts.json").read_bytes() != (out_demo / "counts.json").read_bytes():
        raise BenchError("plain_wordcount.py and demo/wordcount.py disagree on counts.json")
    return result


# --- formatting -------------------------------------------------------------------------------------------

def seconds_text(value: Optional[float]) -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def size(n: Optional[float]) -> str:
    if n is None:
        return "—"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def ratio_text(values: Sequence[float]) -> str:
    if not values:
        return "—"
    mid = median(values)
    text = f"{mid:.2f}×"
    if len(values) > 2:
        text += f" ({min(values):.2f}–{max(values):.2f})"
    return text


def operations_text(operations: Mapping[str, int]) -> str:
    """``s3:PutObject 301, s3:ListObjectsV2 1`` as ``PutObject 301, ListObjectsV2 1, sagemaker: ...``."""
    if not operations:
        return "—"
    items = sorted(operations.items(), key=lambda kv: (not kv[0].startswith("s3:"), -kv[1], kv[0]))
    return ", ".join(f"{name.split(':', 1)[1] if name.startswith('s3:') else name} {count:,}"
                     for name, count in items)


def tool_cell(sc: Scenario, s: ToolSamples) -> str:
    if s.error and not s.seconds:
        # Escaped for RST: an error message may hold markup characters.
        reason = re.sub(r"([\\`*_|])", r"\\\1", s.error[:160])
        return ("not measured: " if s.error.startswith("SDK venv") else "failed: ") + reason
    if not s.seconds:
        return "not in this run"
    wall = median(s.seconds)
    text = seconds_text(wall)
    if sc.throughput and wall > 0:
        text += f" ({sc.input_bytes / MIB / wall:.0f} MiB/s)"
    return text


def triple(values: Sequence[Optional[float]], fmt: Callable[[Optional[float]], str]) -> str:
    return " / ".join(fmt(v) for v in values)


def med(values: Sequence[float]) -> Optional[float]:
    return median(values) if values else None


@dataclass
class Table:
    """A result table; cells may hold RST literals (````x````), dropped in the text form."""

    title: str
    header: Sequence[str]
    rows: List[Sequence[str]] = field(default_factory=list)
    note: str = ""

    def text(self) -> str:
        rows = [[_plain(c) for c in row] for row in [list(self.header), *self.rows]]
        lines = [self.title, "=" * len(self.title)]
        # One block per row: wide cells (requests, earlier figures) do not fit a terminal's columns.
        head = rows[0]
        for row in rows[1:]:
            lines.append(f"* {row[0]}")
            lines.extend(f"    {name}: {cell}" for name, cell in zip(head[1:], row[1:]))
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


def tables(rows: List[RowResult], local: Optional[LocalResult], sizes: Sizes, sdk_label: str,
           defaults: bool) -> List[Table]:
    main = Table("Iterations", ["Scenario", "This package", "Anchor", "Ours ÷ anchor", "Goal", sdk_label,
                                "Ours ÷ SDK", "Sent: ours / anchor / SDK", "Peak RSS: ours / anchor / SDK",
                                "Earlier (70f2b78)"])
    requests = Table("Requests per launch", ["Scenario", "This package", "Anchor", sdk_label],
                     note="Requests the server received during the last measured repetition, by operation "
                          "(S3 unless a service is named).")
    for r in rows:
        sc, t = r.scenario, r.tools
        anchor = {"cp-file": "``aws s3 cp``", "cp-file-sha256": "``aws s3 cp --checksum-algorithm SHA256``"}.get(
            sc.cli, "``aws s3 sync``")
        main.rows.append([
            sc.label, tool_cell(sc, t["ours"]), f"{anchor}: {tool_cell(sc, t['cli'])}",
            ratio_text(r.ratios.get("cli", [])), sc.goal, tool_cell(sc, t["sdk"]),
            ratio_text(r.ratios.get("sdk", [])),
            triple([med(t[n].sent) for n in TOOLS], size), triple([med(t[n].peak) for n in TOOLS], size),
            EARLIER.get(sc.key, "—") if defaults else "— (other sizes)",
        ])
        requests.rows.append([sc.label, *(operations_text(t[n].operations) for n in TOOLS)])
    if local is not None and local.ratios:
        main.rows.append([
            "local run of ``demo/wordcount.py`` (``--sagemaker-run=no``)",
            f"{seconds_text(med(local.ours))} ({seconds_text(med(local.ours_cpu))} cpu)",
            f"same ``main`` behind plain argparse: {seconds_text(med(local.plain))} "
            f"({seconds_text(med(local.plain_cpu))} cpu)",
            f"{ratio_text(local.ratios)}; cpu {ratio_text(local.cpu_ratios)}", "≤ 1.25×", "—", "—", "—", "—",
            EARLIER["local-run"] if defaults else "— (other sizes)",
        ])
    main.note = (
        f"Times are medians over the repetitions ({sizes.repeat} for the code folder, {sizes.big_repeat} for "
        f"inputs, {sizes.local_repeat} pairs for the local run), whole process from start to exit; ratios are "
        "medians of each repetition's ours ÷ other (range in brackets when there are three or more). Sent: "
        "bytes the server received from the client, headers included. Peak RSS: the launching process alone.")
    return [main, requests]


# --- main -----------------------------------------------------------------------------------------------

def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and one repetition each: checks the harness in about two minutes "
                             "(once the SDK's venv exists); the figures mean little")
    sizes = parser.add_argument_group("sizes (defaults: the full run; --quick changes them, these override both)")
    sizes.add_argument("--code-files", type=int, help=f"files in the code folder (full: {FULL.code_files})")
    sizes.add_argument("--code-mib", type=float, help=f"size of the code folder in MiB (full: {FULL.code_mib:g})")
    sizes.add_argument("--changed-inputs", type=_counts,
                       help="comma-separated input sizes (files) of the one-file-changed rows "
                            f"(full: {','.join(map(str, FULL.changed_inputs))})")
    sizes.add_argument("--cold-inputs", type=_counts, help="comma-separated input sizes of the cold small-file rows "
                                                           f"(full: {','.join(map(str, FULL.cold_inputs))})")
    sizes.add_argument("--mib-files", type=int, help=f"files of the 1 MiB row (full: {FULL.mib_files})")
    sizes.add_argument("--big-mib", type=int, help=f"size of the single big file in MiB (full: {FULL.big_mib})")
    sizes.add_argument("--repeat", type=int, help=f"repetitions of the code-folder rows (full: {FULL.repeat})")
    sizes.add_argument("--big-repeat", type=int, help=f"repetitions of the input rows (full: {FULL.big_repeat})")
    sizes.add_argument("--local-repeat", type=int, help=f"pairs of the local-run row (full: {FULL.local_repeat})")
    parser.add_argument("--rows", type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                        help="only the rows whose key starts with one of these (code, input-changed, cold, "
                             "cold-mib, cold-big, local), comma-separated")
    parser.add_argument("--skip-sdk", action="store_true", help="leave the SDK column empty")
    parser.add_argument("--sdk-rows", type=lambda s: tuple(x.strip() for x in s.split(",") if x.strip()),
                        help="run the SDK only in the rows whose key starts with one of these (default: all "
                             "rows; --quick: code-same,cold-100)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE,
                        help="where the SDK's venv is kept between runs (default: %(default)s)")
    parser.add_argument("--rst", type=Path, help="also write the tables as RST list-tables to this file")
    parser.add_argument("--json", type=Path, help="also write every sample to this file")
    parser.add_argument("--update-docs", action="store_true",
                        help=f"put the RST tables into {DOC_PAGE.relative_to(REPO)}, between the "
                             f"'{DOC_BEGIN}' and '{DOC_END}' comments (not with --quick)")
    args = parser.parse_args(argv)
    if args.update_docs and args.quick:
        parser.error("--update-docs needs a full run: quick figures mean little")
    base = QUICK if args.quick else FULL
    overrides = {name: getattr(args, name) for name in (
        "code_files", "code_mib", "changed_inputs", "cold_inputs", "mib_files", "big_mib", "repeat",
        "big_repeat", "local_repeat", "sdk_rows") if getattr(args, name) is not None}
    args.sizes = replace(base, **overrides)
    if min(args.sizes.repeat, args.sizes.big_repeat, args.sizes.local_repeat, args.sizes.big_mib) < 1:
        parser.error("repetitions and --big-mib must be at least 1")
    return args


def _counts(text: str) -> Tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated file counts, got {text!r}")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive file counts, got {text!r}")
    return values


def wanted(key: str, rows: Optional[List[str]]) -> bool:
    return rows is None or any(key.startswith(prefix) for prefix in rows)


def machine_facts(sdk: Venv) -> Dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "aws_sagemaker_remote"],
                               capture_output=True, text=True, check=True).stdout.strip()
        revision = head + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        revision = "not a git checkout"
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()),
        "cpu": cpu,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "revision": revision,
        "awscli": version_in(sys.executable, "awscli"),
        "botocore": version_in(sys.executable, "botocore"),
        "moto": version_in(sys.executable, "moto"),
        "sagemaker": version_in(sdk.python, "sagemaker") if not sdk.error else "not measured",
    }


def check_counting(url: str) -> None:
    """The server's counts must match botocore's operation names before they are reported."""
    # bench/ is this script's folder, hence first on sys.path.
    from counting_check import CountingError, check

    try:
        count = check(url)
    except CountingError as exc:
        raise BenchError(f"the counting server miscounts: {exc}")
    log(f"counting server checked: {count} operations counted as botocore names them")


def duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def update_docs(rst: str) -> None:
    """Replace the results between the page's two marker comments, keeping the rest of the page."""
    page = DOC_PAGE.read_text(encoding="utf-8")
    begin, end = page.find(DOC_BEGIN + "\n"), page.find(DOC_END + "\n")
    if begin < 0 or end < begin:
        raise BenchError(f"{DOC_PAGE} lacks the '{DOC_BEGIN}' / '{DOC_END}' comments; paste the tables by hand")
    start = begin + len(DOC_BEGIN) + 1
    DOC_PAGE.write_text(page[:start] + "\n" + rst + "\n" + page[end:], encoding="utf-8")
    log(f"updated {DOC_PAGE.relative_to(REPO)}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    sizes: Sizes = args.sizes
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="asr-bench-"))
    ws = Workspace(root)
    moto = MotoProcess(ws)
    rows: List[RowResult] = []
    local: Optional[LocalResult] = None
    try:
        aws = aws_cli_script()
        if args.skip_sdk:
            sdk = Venv(args.cache_dir / "sdk-v2", SDK_REQUIREMENT, error="skipped (--skip-sdk)")
        else:
            sdk = sdk_venv(args.cache_dir.expanduser().resolve(), ws.logs)
        facts = machine_facts(sdk)
        chosen = [sc for sc in scenarios(sizes) if wanted(sc.key, args.rows)]
        if chosen:
            moto.start()
            check_counting(moto.url)
            bench = Bench(ws, moto, sdk, aws, sizes.sdk_rows)
            for sc in chosen:
                rows.append(bench.run_row(sc))
        if wanted("local-run", args.rows):
            local = bench_local_run(ws, sizes.local_repeat)
    except BenchError as exc:
        log(f"error: {exc}")
        return 1
    finally:
        moto.stop()
        shutil.rmtree(root, ignore_errors=True)
    elapsed = time.perf_counter() - started
    defaults = replace(sizes, sdk_rows=()) == FULL  # which rows the SDK joins changes no size
    sdk_label = (f"SageMaker SDK {facts['sagemaker']} ``FrameworkProcessor``" if not sdk.error
                 else "SageMaker SDK v2 ``FrameworkProcessor`` (not measured)")
    header = (f"Measured {facts['date']} on {facts['cores']} cores ({facts['cpu']}), {facts['python']}; "
              f"aws-sagemaker-remote at {facts['revision']}, awscli {facts['awscli']} (botocore "
              f"{facts['botocore']}), sagemaker {facts['sagemaker']}, moto {facts['moto']}; "
              f"{'quick mode, ' if args.quick else ''}the run took {duration(elapsed)}.")
    # A list-table needs a row below its header.
    result_tables = [t for t in tables(rows, local, sizes, sdk_label, defaults) if t.rows]
    print(header + "\n")
    for table in result_tables:
        print(table.text() + "\n")
    rst = header + "\n\n" + "\n\n".join(t.rst() for t in result_tables) + "\n"
    print(f"The same as RST, for {DOC_PAGE.relative_to(REPO)} between '{DOC_BEGIN}' and '{DOC_END}' "
          "(--update-docs puts it there):\n")
    print(rst)
    if args.rst:
        args.rst.write_text(rst, encoding="utf-8")
        log(f"wrote {args.rst}")
    if args.update_docs:
        try:
            update_docs(rst)
        except BenchError as exc:
            log(f"error: {exc}")
            return 1
    if args.json:
        args.json.write_text(json.dumps({"facts": facts, "sizes": asdict(sizes),
                                         "rows": [r.to_json() for r in rows],
                                         "local": vars(local) if local else None}, indent=1), encoding="utf-8")
        log(f"wrote {args.json}")
    failed = [f"{r.scenario.key}/{name}" for r in rows for name, s in r.tools.items()
              if s.error and not s.error.startswith("SDK venv")]
    if failed:
        log(f"failed launches: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
