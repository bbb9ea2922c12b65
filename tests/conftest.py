"""Shared test harness: a clean environment for every test and a real AWS stand-in on loopback.

Fixtures
--------

``clean_environment`` (autouse, every test)
    Removes every ``AWS_*`` variable and every proxy variable, points
    ``AWS_CONFIG_FILE`` / ``AWS_SHARED_CREDENTIALS_FILE`` at files that do not
    exist, points the SageMaker SDK's defaults files (``XDG_CONFIG_HOME``,
    ``XDG_CONFIG_DIRS``) at empty folders, sets ``AWS_EC2_METADATA_DISABLED=true`` (botocore would otherwise
    probe the instance metadata address for credentials) and gives
    ``AWS_SAGEMAKER_REMOTE_HOME`` a fresh per-test folder, where the framework
    keeps its local S3 stand-in and caches (and local jobs their overlay
    environments; ``UV_CACHE_DIR`` goes there too). Everything goes through
    ``monkeypatch``, so the next test starts from the same state. With no
    credentials, no config file and no proxy, a test that forgets the ``aws``
    fixture fails instead of reaching a real AWS endpoint.

``process_state_guard`` (autouse, every test, set up before any other fixture)
    Snapshots ``os.environ`` and ``sys.path`` before the test and fails it at
    teardown, naming the variables and entries, if they differ afterwards
    (``monkeypatch`` changes are undone first, so they never count). The
    snapshot is then restored, so one leak does not spread to later tests.

``loopback_only`` (autouse, every test)
    In the test process, refuses every socket connection and name lookup that
    is not for a loopback address, with an error saying so; subprocesses stay
    on loopback through the scrubbed environment.

``moto_server`` (session)
    moto's WSGI application served by werkzeug on ``127.0.0.1`` and a free
    port, in one daemon thread, behind a middleware that records every request
    it receives (see :class:`RecordedRequest`). It exposes:

    * ``url``: ``http://127.0.0.1:PORT``;
    * ``requests``: the recorded requests, oldest first (a copy);
    * ``clear_log()``: forget the recorded requests;
    * ``reset()``: ``POST /moto-api/reset`` (moto forgets every bucket, job and
      log) and clear the log;
    * ``s3_uploads()``: the recorded requests that sent object bytes to S3
      (``PutObject``, ``CreateMultipartUpload``, ``UploadPart``);
    * ``operations(service=None)``: the recorded operation names, in order;
    * ``json_bodies(operation)``: the decoded JSON requests of one operation
      (``aws.json_bodies("CreateProcessingJob")[0]["AppSpecification"]``).

    Only this fixture starts a server; it is shut down at the end of the session.

``aws`` (function, uses ``moto_server``)
    Points every boto3 client at the server through ``AWS_ENDPOINT_URL`` with
    dummy credentials (``testing``/``testing``) and ``us-east-1``; clears the
    request log before the test and resets the server after it. Yields the
    server, so a test can assert on ``aws.requests``.

``run_python`` / ``run_script`` (function)
    Run ``python ARGS...`` / ``python SCRIPT ARGS...`` as a subprocess with the
    current interpreter and the test's environment (including what ``aws``
    set), the repository first on ``PYTHONPATH``; returns the
    ``CompletedProcess`` with text ``stdout`` and ``stderr``. End-to-end tests run
    the demos this way, exactly as a user would.

``repo_root`` / ``demo_dir`` (session)
    The checkout under test and its ``demo/`` folder.

``one_error_line`` (function)
    ``one_error_line(stderr, "--flag", ...)`` asserts that a refused command
    printed exactly one ``error:`` line, naming each given text, and no
    traceback; returns the line.

``fault_proxy`` (function, uses ``aws``)
    A fault-injecting proxy on loopback between boto3 and the moto server
    (``tests/faultproxy.py``): loses responses, throttles one service, stalls or
    slows uploads. ``AWS_ENDPOINT_URL`` points at it for the test.
"""
from __future__ import annotations

import contextlib
import errno
import io
import ipaddress
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import pytest

if TYPE_CHECKING:
    from aws_sagemaker_remote.backends.local import LocalBackend
    from aws_sagemaker_remote.store import LocalStore

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_DIR = REPO_ROOT / "demo"

#: Proxy variables are removed too: urllib and botocore honour them, and a proxy
#: would carry a request for 127.0.0.1 off this machine.
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")

#: Seconds a subprocess started by ``run_python``/``run_script`` may take by default.
DEFAULT_SCRIPT_TIMEOUT = 300.0

#: Largest JSON or form body the recorder keeps (SageMaker requests are far smaller).
BODY_LIMIT = 1 << 20


# --- request recording -----------------------------------------------------------------

@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the moto server received.

    ``operation`` is the API operation when it can be told from the request
    itself: the ``X-Amz-Target`` header (SageMaker, CloudWatch Logs), the
    ``Action`` form field (STS, IAM), or, for S3, the method, the path and the
    query (``PutObject``, ``UploadPart``, ``ListObjectsV2``, ...). ``bucket`` and
    ``key`` are set for path-style S3 requests, which is what boto3 sends to an
    ``http://127.0.0.1:PORT`` endpoint.
    """

    method: str
    path: str
    query: str
    service: Optional[str]
    operation: Optional[str]
    bucket: Optional[str]
    key: Optional[str]
    content_length: int
    status: Optional[int]
    #: the request body of JSON and query-protocol calls (SageMaker, Logs, STS, IAM);
    #: never S3 object data, so the log stays small
    body: Optional[bytes] = None
    #: the request's checksum headers (``x-amz-checksum-*``, ``x-amz-sdk-checksum-algorithm``,
    #: ``x-amz-trailer``), lower-case name → value
    checksums: Tuple[Tuple[str, str], ...] = ()
    #: ``x-amz-content-sha256``: what the signature says of the body (its SHA-256 in hex, or
    #: ``UNSIGNED-PAYLOAD``); None for a request without one
    payload_hash: Optional[str] = None

    def json(self) -> Any:
        """The decoded JSON body of a JSON-protocol call (SageMaker, CloudWatch Logs)."""
        if self.body is None:
            raise ValueError(f"{self.operation or self.path}: no body was recorded")
        return json.loads(self.body.decode("utf-8"))

    @property
    def query_params(self) -> Dict[str, List[str]]:
        return urllib.parse.parse_qs(self.query, keep_blank_values=True)


def _service_from_auth(environ: Mapping[str, Any]) -> Optional[str]:
    """The signing service of a SigV4 request (``Credential=AKID/DATE/REGION/SERVICE/aws4_request``)."""
    auth = str(environ.get("HTTP_AUTHORIZATION") or "")
    scope = ""
    if "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0]
    else:
        query = urllib.parse.parse_qs(str(environ.get("QUERY_STRING") or ""))
        scope = (query.get("X-Amz-Credential") or [""])[0]
    parts = scope.split("/")
    return parts[3].lower() if len(parts) >= 5 else None


def s3_operation(method: str, key: Optional[str], bucket: Optional[str], query: Mapping[str, Any],
                 copy_source: bool) -> str:
    """Name the S3 operation of a path-style request (the common ones; others get ``METHOD:bucket|object``)."""
    if bucket is None:
        return "ListBuckets" if method == "GET" else f"{method}:service"
    if key is None:
        if method == "PUT":
            return "CreateBucket" if not query else "PutBucket" + _first_subresource(query)
        if method == "HEAD":
            return "HeadBucket"
        if method == "DELETE":
            return "DeleteBucket" if not query else "DeleteBucket" + _first_subresource(query)
        if method == "POST" and "delete" in query:
            return "DeleteObjects"
        if method == "GET":
            if query.get("list-type") == ["2"]:
                return "ListObjectsV2"
            if "uploads" in query:
                return "ListMultipartUploads"
            if "location" in query:
                return "GetBucketLocation"
            if "versions" in query:
                return "ListObjectVersions"
            return "ListObjects"
        return f"{method}:bucket"
    if method == "PUT":
        if "partNumber" in query and "uploadId" in query:
            return "UploadPartCopy" if copy_source else "UploadPart"
        if copy_source:
            return "CopyObject"
        if "tagging" in query:
            return "PutObjectTagging"
        return "PutObject"
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
        return "POST:object"
    if method == "GET":
        if "uploadId" in query:
            return "ListParts"
        if "tagging" in query:
            return "GetObjectTagging"
        return "GetObject"
    if method == "HEAD":
        return "HeadObject"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
    return f"{method}:object"


def _first_subresource(query: Mapping[str, Any]) -> str:
    name = min(query)
    return "".join(part.capitalize() for part in name.split("-"))


#: S3 operations that carry object bytes to the server.
S3_UPLOAD_OPERATIONS = ("PutObject", "CreateMultipartUpload", "UploadPart")


def _wsgi_text(value: str) -> str:
    """WSGI hands over the already-unquoted path as latin-1 text; S3 keys are UTF-8."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _is_form(environ: Mapping[str, Any], method: str, length: int) -> bool:
    content_type = str(environ.get("CONTENT_TYPE") or "")
    return method == "POST" and length > 0 and content_type.startswith("application/x-www-form-urlencoded")


class RecordingMiddleware:
    """WSGI middleware that records each request before handing it to moto.

    Recording happens on the server's threads; a lock keeps the log consistent
    while the test thread reads it.
    """

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._log: List[RecordedRequest] = []

    def __call__(self, environ: Dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = _wsgi_text(str(environ.get("PATH_INFO") or "/"))
        query_string = str(environ.get("QUERY_STRING") or "")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body: Optional[bytes] = None
        if environ.get("HTTP_X_AMZ_TARGET") or _is_form(environ, method, length):
            # JSON and query-protocol calls: keep the body (the request itself) and
            # hand moto an identical stream. S3 bodies are object data: never read.
            body = environ["wsgi.input"].read(length) if 0 < length <= BODY_LIMIT else None
            if body is not None:
                environ["wsgi.input"] = io.BytesIO(body)
        service, operation, bucket, key = self._classify(environ, method, path, query_string, body)
        captured: Dict[str, int] = {}

        def recording_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            captured["status"] = int(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        try:
            return self.app(environ, recording_start_response)
        finally:
            checksums = tuple(sorted(
                (name[5:].replace("_", "-").lower(), str(value)) for name, value in environ.items()
                if name.startswith(("HTTP_X_AMZ_CHECKSUM", "HTTP_X_AMZ_SDK_CHECKSUM", "HTTP_X_AMZ_TRAILER"))))
            record = RecordedRequest(method=method, path=path, query=query_string, service=service,
                                     operation=operation, bucket=bucket, key=key, content_length=length,
                                     status=captured.get("status"), body=body, checksums=checksums,
                                     payload_hash=environ.get("HTTP_X_AMZ_CONTENT_SHA256"))
            with self._lock:
                self._log.append(record)

    def _classify(self, environ: Dict[str, Any], method: str, path: str, query_string: str,
                  body: Optional[bytes]) -> Tuple[Optional[str], Optional[str], Optional[str], Optional[str]]:
        if path.startswith("/moto-api"):
            return "moto-api", path[len("/moto-api"):].strip("/") or None, None, None
        service = _service_from_auth(environ)
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target:
            # "SageMaker.CreateProcessingJob", "Logs_20140328.GetLogEvents"
            return service, str(target).rsplit(".", 1)[-1], None, None
        if body is not None and _is_form(environ, method, len(body)):
            # Query-protocol services (STS, IAM) name the operation in the body.
            action = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action", [None])[0]
            return service, action, None, None
        if service in (None, "s3"):
            segments = path.lstrip("/").split("/", 1)
            bucket = segments[0] or None
            key = segments[1] if len(segments) > 1 and segments[1] else None
            query = urllib.parse.parse_qs(query_string, keep_blank_values=True)
            copy = bool(environ.get("HTTP_X_AMZ_COPY_SOURCE"))
            return "s3", s3_operation(method, key, bucket, query, copy), bucket, key
        return service, None, None, None

    @property
    def log(self) -> List[RecordedRequest]:
        with self._lock:
            return list(self._log)

    def clear(self) -> None:
        with self._lock:
            self._log.clear()


# --- the server ---------------------------------------------------------------------------

class MotoServer:
    """A moto server on ``127.0.0.1`` in a daemon thread, with a request log."""

    def __init__(self) -> None:
        # moto (and with it boto3) is imported only by tests that ask for this fixture.
        from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        self._recorder = RecordingMiddleware(DomainDispatcherApplication(create_backend_app))
        # MotoRequestHandler keeps the original header spelling (S3 metadata
        # relies on it); it is what moto's own ThreadedMotoServer uses.
        self._server = make_server("127.0.0.1", 0, self._recorder, threaded=True,
                                   request_handler=MotoRequestHandler)
        host, port = self._server.server_address[:2]
        self.host = str(host)
        self.port = int(port)
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)
        # A plain opener without proxy handlers: control requests stay on loopback.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def start(self) -> "MotoServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    @property
    def requests(self) -> List[RecordedRequest]:
        """Every request received since the log was last cleared, oldest first."""
        return self._recorder.log

    def clear_log(self) -> None:
        self._recorder.clear()

    def reset(self) -> None:
        """Make moto forget all state (buckets, objects, jobs, logs) and clear the request log."""
        request = urllib.request.Request(self.url + "/moto-api/reset", data=b"", method="POST")
        with self._opener.open(request, timeout=30) as response:
            response.read()
        self.clear_log()

    def s3_uploads(self) -> List[RecordedRequest]:
        """Recorded ``PutObject``, ``CreateMultipartUpload`` and ``UploadPart`` requests."""
        return [r for r in self.requests if r.service == "s3" and r.operation in S3_UPLOAD_OPERATIONS]

    def json_bodies(self, operation: str) -> List[Any]:
        """The decoded JSON requests of one operation (``"CreateProcessingJob"``), oldest first."""
        return [r.json() for r in self.requests if r.operation == operation and r.body is not None]

    def operations(self, service: Optional[str] = None) -> List[str]:
        """The recorded operation names, oldest first, optionally of one service (``s3``, ``sagemaker``...)."""
        return [r.operation or f"{r.method} {r.path}" for r in self.requests
                if service is None or r.service == service]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """The session's moto server on 127.0.0.1 (prefer ``aws``, which also sets the environment)."""
    # werkzeug logs every request at INFO; a failing test's report should show our output instead
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = MotoServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:
    """Send every boto3 client, here and in subprocesses, to the moto server; reset it afterwards."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    moto_server.clear_log()
    try:
        yield moto_server
    finally:
        moto_server.reset()


# --- environment ----------------------------------------------------------------------------

#: Set by pytest itself around each phase of a test.
GUARD_IGNORED_VARIABLES = frozenset({"PYTEST_CURRENT_TEST"})


def process_state_changes(environ_before: Mapping[str, str], path_before: Sequence[str]) -> List[str]:
    """What differs in ``os.environ`` and ``sys.path`` from a snapshot, one phrase per kind of change."""
    environ = {k: v for k, v in os.environ.items() if k not in GUARD_IGNORED_VARIABLES}
    before = {k: v for k, v in environ_before.items() if k not in GUARD_IGNORED_VARIABLES}
    changes = []
    added = sorted(set(environ) - set(before))
    removed = sorted(set(before) - set(environ))
    changed = sorted(k for k in set(environ) & set(before) if environ[k] != before[k])
    if added:
        changes.append("os.environ gained " + ", ".join(added))
    if removed:
        changes.append("os.environ lost " + ", ".join(removed))
    if changed:
        changes.append("os.environ changed " + ", ".join(changed))
    if list(sys.path) != list(path_before):
        new = [p for p in sys.path if p not in path_before]
        gone = [p for p in path_before if p not in sys.path]
        detail = "; ".join(filter(None, ["added " + ", ".join(new) if new else "",
                                         "removed " + ", ".join(gone) if gone else ""])) or "reordered"
        changes.append("sys.path " + detail)
    return changes


class ProcessStateLeaked(AssertionError):
    """Raised by :func:`process_state_kept` (a distinct type, so ``xfail(raises=...)`` can name it)."""


@contextlib.contextmanager
def process_state_kept() -> Iterator[None]:
    """Assert that the block leaves ``os.environ`` and ``sys.path`` as it found them.

    The state is restored either way. A failure inside the block propagates as
    itself; only a leak raises :class:`ProcessStateLeaked`. Tests of code that is
    known to leak wrap that code in this and are marked
    ``xfail(strict=True, raises=ProcessStateLeaked)``: the leak then shows during
    the test rather than at teardown, and their other assertions still count.
    """
    environ = dict(os.environ)
    path = list(sys.path)
    try:
        yield
    finally:
        changes = process_state_changes(environ, path)
        os.environ.clear()
        os.environ.update(environ)
        sys.path[:] = path
    if changes:
        raise ProcessStateLeaked("the code left process state behind: " + "; ".join(changes))


@pytest.fixture(autouse=True)
def process_state_guard() -> Iterator[None]:
    """Fail the test that leaves variables in ``os.environ`` or entries in ``sys.path`` (use ``monkeypatch``).

    ``clean_environment`` requests this fixture first, so it is set up before
    ``monkeypatch`` and checks after every ``monkeypatch`` change is undone.
    """
    environ = dict(os.environ)
    path = list(sys.path)
    yield
    changes = process_state_changes(environ, path)
    if changes:
        # restore, so the following tests start from the state this one found
        os.environ.clear()
        os.environ.update(environ)
        sys.path[:] = path
        pytest.fail("the test left process state behind (use monkeypatch): " + "; ".join(changes), pytrace=False)


@pytest.fixture(autouse=True)
def clean_environment(process_state_guard: None, monkeypatch: pytest.MonkeyPatch,
                      tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Scrub AWS and proxy settings; returns the test's ``AWS_SAGEMAKER_REMOTE_HOME``."""
    for name in list(os.environ):
        if name.startswith("AWS_") or name in PROXY_VARIABLES:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    home = tmp_path_factory.mktemp("aws-env")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "missing-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "missing-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    remote_home = home / "aws-sagemaker-remote-home"
    remote_home.mkdir()
    monkeypatch.setenv("AWS_SAGEMAKER_REMOTE_HOME", str(remote_home))
    # the SageMaker SDK's defaults files: none, unless a test writes one
    for name in ("SAGEMAKER_ADMIN_CONFIG_OVERRIDE", "SAGEMAKER_USER_CONFIG_OVERRIDE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg-config-home"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(home / "xdg-config-dirs"))
    # local jobs build their overlay environments with uv when it is installed: its cache stays here too
    monkeypatch.setenv("UV_CACHE_DIR", str(home / "uv-cache"))
    boto3 = sys.modules.get("boto3")
    if boto3 is not None:
        # boto3.client() reuses one module-level session that caches the
        # credentials, region and endpoint it first saw; without this a test
        # would inherit the previous test's AWS settings.
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    return remote_home


def _is_loopback_host(host: Any) -> bool:
    if not isinstance(host, str):
        return False
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse, in this process, every connection and name lookup that leaves the machine.

    A test that would reach AWS or any other host gets the error an offline
    machine gives (botocore reports it as ``EndpointConnectionError``), with a
    message saying why. Unix sockets and loopback addresses are untouched.
    Subprocesses are kept on loopback by the environment instead (no
    credentials, no config, no proxy, ``AWS_ENDPOINT_URL`` only from ``aws``).
    """
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex
    original_getaddrinfo = socket.getaddrinfo

    def allowed(address: Any) -> bool:
        return not isinstance(address, tuple) or _is_loopback_host(address[0])

    def connect(self: socket.socket, address: Any) -> None:
        if not allowed(address):
            raise OSError(errno.ENETUNREACH, f"tests may only connect to loopback, not {address!r}")
        return original_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not allowed(address):
            return errno.ENETUNREACH
        return original_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and not _is_loopback_host(name):
            raise socket.gaierror(socket.EAI_NONAME, f"tests may only resolve loopback names, not {name!r}")
        return original_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


# --- subprocesses -----------------------------------------------------------------------------

PathOrStr = Union[str, "os.PathLike[str]"]
RunPython = Callable[..., "subprocess.CompletedProcess[str]"]


def python_environment(extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The current (test) environment for a child interpreter, the checkout first on ``PYTHONPATH``."""
    env = dict(os.environ)
    paths = [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra or {})
    return env


def run_python_process(args: Sequence[PathOrStr], cwd: Optional[PathOrStr] = None,
                       env: Optional[Mapping[str, str]] = None, timeout: float = DEFAULT_SCRIPT_TIMEOUT,
                       input: Optional[str] = None) -> "subprocess.CompletedProcess[str]":
    """Run ``sys.executable ARGS...``; never raises on a non-zero exit (tests assert on it)."""
    return subprocess.run(
        [sys.executable, *(os.fspath(a) for a in args)],
        cwd=os.fspath(cwd) if cwd is not None else None,
        env=python_environment(env),
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def run_python(tmp_path: Path) -> RunPython:
    """``run_python("-c", code)`` or ``run_python("-m", "module", ...)``; cwd defaults to ``tmp_path``."""

    def run(*args: PathOrStr, cwd: Optional[PathOrStr] = None, env: Optional[Mapping[str, str]] = None,
            timeout: float = DEFAULT_SCRIPT_TIMEOUT, input: Optional[str] = None) -> "subprocess.CompletedProcess[str]":
        return run_python_process(args, cwd=tmp_path if cwd is None else cwd, env=env, timeout=timeout, input=input)

    return run


@pytest.fixture
def run_script(run_python: RunPython) -> RunPython:
    """``run_script(path, *args, cwd=..., env=..., timeout=...)``: ``python path args...``."""

    def run(script: PathOrStr, *args: PathOrStr, **kwargs: Any) -> "subprocess.CompletedProcess[str]":
        return run_python(script, *args, **kwargs)

    return run


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def demo_dir() -> Path:
    return DEMO_DIR


def stderr_error_lines(stderr: str) -> List[str]:
    """The ``error:`` lines of a process's stderr (what a user reads when a flag is refused)."""
    return [line for line in stderr.splitlines() if "error:" in line]


def assert_one_error_line(stderr: str, *needles: str) -> str:
    """Assert stderr has exactly one ``error:`` line containing each needle, and no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = stderr_error_lines(stderr)
    assert len(lines) == 1, stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture
def one_error_line() -> Callable[..., str]:
    """``one_error_line(stderr, "--flag", ...)``: see :func:`assert_one_error_line`."""
    return assert_one_error_line


# --- code bundles -----------------------------------------------------------------------------

MakeBundle = Callable[..., Any]


@pytest.fixture
def make_bundle(tmp_path: Path) -> MakeBundle:
    """``make_bundle(script, kind="processing", ...)``: a real code bundle of a one-file project.

    Writes ``script`` (dedented) as ``job.py`` in a fresh project folder under
    ``tmp_path``, with, when given, ``requirements`` (``requirements.txt``
    text), ``configuration_script`` (``setup.sh`` text), ``configuration_command``
    and ``dependencies`` (``(name, local path)`` pairs), and packs it with
    ``build_bundle`` exactly as staging does. Returns the
    :class:`~aws_sagemaker_remote.bundle.Bundle` (``path`` and ``sha256``).
    """
    import tempfile
    import textwrap

    from aws_sagemaker_remote.bundle import build_bundle
    from aws_sagemaker_remote.spec import CodeSpec

    def make(script: str, kind: str = "processing", *, requirements: Optional[str] = None,
             configuration_script: Optional[str] = None, configuration_command: Optional[str] = None,
             dependencies: Sequence[Tuple[str, str]] = ()) -> Any:
        project = Path(tempfile.mkdtemp(prefix="project-", dir=tmp_path))
        (project / "job.py").write_text(textwrap.dedent(script))
        extra: Dict[str, Any] = {"dependencies": tuple(dependencies)}
        if requirements is not None:
            (project / "requirements.txt").write_text(requirements)
            extra["requirements"] = str(project / "requirements.txt")
        if configuration_script is not None:
            (project / "setup.sh").write_text(configuration_script)
            extra["configuration_script"] = str(project / "setup.sh")
        if configuration_command is not None:
            extra["configuration_command"] = configuration_command
        code = CodeSpec(script=str(project / "job.py"), script_dir=str(project), **extra)
        return build_bundle(code, kind, workdir=str(tmp_path))

    return make


# --- faults ------------------------------------------------------------------------------------

@pytest.fixture
def fault_proxy(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A :class:`faultproxy.FaultProxy` in front of the moto server, with ``AWS_ENDPOINT_URL`` pointing at it.

    boto3 clients made afterwards, here and in subprocesses, go through the
    proxy; ``aws`` (the server behind it) still records what really arrived.
    """
    from faultproxy import FaultProxy

    proxy = FaultProxy(aws.url).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    try:
        yield proxy
    finally:
        proxy.stop()


# --- the local backend over the local stand-in store (tests of the local backend) ------------------

@pytest.fixture
def store(tmp_path: Path) -> "LocalStore":
    """A local stand-in for S3 in the test's folder."""
    from aws_sagemaker_remote.store import LocalStore

    return LocalStore(str(tmp_path / "s3"))


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The folder a local backend keeps its jobs in."""
    folder = tmp_path / "jobs"
    folder.mkdir()
    return folder


@pytest.fixture
def backend(store: "LocalStore", workdir: Path) -> "LocalBackend":
    """A local backend over :func:`store`, its jobs in :func:`workdir`."""
    from aws_sagemaker_remote.backends.local import LocalBackend

    return LocalBackend(store, workdir=str(workdir), stop_grace=5.0)
