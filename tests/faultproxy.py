"""A fault-injecting HTTP proxy on loopback, between boto3 and the moto server.

:class:`FaultProxy` listens on ``127.0.0.1`` and a free port, in daemon threads
of the test process, and forwards every request to the moto server unchanged,
unless a fault rule matches it. Point ``AWS_ENDPOINT_URL`` at :attr:`FaultProxy.url`
(the ``fault_proxy`` fixture does) and the launcher, in the test process or in
a subprocess, goes through it. Faults are real network behaviour:

* :meth:`~FaultProxy.lose_response`: the request reaches moto and is carried
  out, then the client's connection is closed before any byte of the answer,
  so botocore sees a dropped connection and retries;
* :meth:`~FaultProxy.fail`: answer with an AWS error (JSON or XML, as the
  service's protocol wants) without forwarding, ``times`` times or for
  ``seconds``; :meth:`~FaultProxy.throttle` is the ``ThrottlingException`` case
  for one service's API only;
* :meth:`~FaultProxy.stall`: read the request, then answer nothing until
  :meth:`~FaultProxy.release` or the stall's bound, then close the connection;
* :meth:`~FaultProxy.rate_limit`: read the request bodies of uploads at a
  fixed number of bytes per second.

A rule matches on the service (the SigV4 signing name: ``s3``, ``sagemaker``,
``logs``, ``sts``), the operation (``PutObject``, ``CreateProcessingJob``, ...)
and, for S3, a text the key must contain. Rules are tried in the order they
were added; a rule with a count is spent after that many matches.

Bounded: every stall ends after its bound, and the proxy shuts itself down
after ``lifetime`` seconds even if the test forgets to stop it.
"""
from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple

from conftest import S3_UPLOAD_OPERATIONS, _service_from_auth, s3_operation

#: Seconds after which a proxy stops by itself.
DEFAULT_LIFETIME = 300.0
#: Longest stall, in seconds, whatever a rule asks.
MAX_STALL = 120.0
#: Headers that belong to one connection and are not forwarded.
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
               "expect", "content-length"}


@dataclass
class Call:
    """What the proxy knows about one request before answering it."""

    method: str
    path: str
    query: str
    service: Optional[str]
    operation: Optional[str]
    bucket: Optional[str] = None
    key: Optional[str] = None


@dataclass
class Rule:
    """One fault: what it matches and what it does."""

    action: str  # "lose", "fail", "stall", "rate", "running"
    service: Optional[str] = None
    operation: Optional[Tuple[str, ...]] = None
    key_contains: Optional[str] = None
    times: Optional[int] = None
    until: Optional[float] = None
    # fail
    status: int = 400
    code: str = ""
    message: str = "injected by the test's fault proxy"
    # stall
    stall_seconds: float = MAX_STALL
    # rate
    bytes_per_second: float = 0.0
    hits: int = 0

    def matches(self, call: Call, now: float) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.until is not None and now >= self.until:
            return False
        if self.service is not None and call.service != self.service:
            return False
        if self.operation is not None and call.operation not in self.operation:
            return False
        return self.key_contains is None or (call.key is not None and self.key_contains in call.key)


@dataclass(frozen=True)
class Event:
    """One request as the proxy handled it: ``fault`` is the action applied, or ``forwarded``."""

    service: Optional[str]
    operation: Optional[str]
    key: Optional[str]
    fault: str
    status: Optional[int]
    time: float = field(compare=False)


def classify(method: str, path: str, query: str, headers: Any) -> Call:
    """The service and operation of a request, from its headers and path (body-less, so before reading it)."""
    environ = {"HTTP_AUTHORIZATION": headers.get("Authorization", ""), "QUERY_STRING": query}
    service = _service_from_auth(environ)
    target = headers.get("X-Amz-Target")
    if target:
        return Call(method, path, query, service, str(target).rsplit(".", 1)[-1])
    if service in (None, "s3"):
        segments = path.lstrip("/").split("/", 1)
        bucket = segments[0] or None
        key = segments[1] if len(segments) > 1 and segments[1] else None
        params = urllib.parse.parse_qs(query, keep_blank_values=True)
        operation = s3_operation(method, key, bucket, params, bool(headers.get("x-amz-copy-source")))
        return Call(method, path, query, "s3", operation, bucket, key)
    return Call(method, path, query, service, None)


def error_body(service: Optional[str], code: str, message: str) -> Tuple[str, bytes]:
    """An AWS error answer in the service's protocol: (content type, body)."""
    if service == "s3":
        xml = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
        return "application/xml", xml.encode("utf-8")
    return "application/x-amz-json-1.1", json.dumps({"__type": code, "message": message}).encode("utf-8")


class FaultProxy:
    """A loopback HTTP proxy in front of ``upstream`` (``http://127.0.0.1:PORT``) that injects faults."""

    def __init__(self, upstream: str, lifetime: float = DEFAULT_LIFETIME) -> None:
        parsed = urllib.parse.urlparse(upstream)
        assert parsed.hostname == "127.0.0.1", "the proxy only forwards to loopback"
        self.upstream = (parsed.hostname, int(parsed.port or 80))
        self.lifetime = lifetime
        self._lock = threading.Lock()
        self._rules: List[Rule] = []
        self._events: List[Event] = []
        self._release = threading.Event()
        self._stopped = threading.Event()
        #: set whenever a request is being stalled
        self.stalling = threading.Event()
        handler = type("Handler", (_Handler,), {"proxy": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True

    # --- life --------------------------------------------------------------------------------
    def start(self) -> "FaultProxy":
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        """Release every stall and stop serving (idempotent; also called by the lifetime timer)."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._timer.cancel()
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    # --- rules -------------------------------------------------------------------------------
    def _add(self, rule: Rule) -> Rule:
        with self._lock:
            self._rules.append(rule)
        return rule

    @staticmethod
    def _ops(operation: Any) -> Optional[Tuple[str, ...]]:
        if operation is None:
            return None
        return (operation,) if isinstance(operation, str) else tuple(operation)

    def lose_response(self, operation: Any, *, service: Optional[str] = None, times: int = 1) -> Rule:
        """Forward the next ``times`` matching requests, then drop the connection instead of answering."""
        return self._add(Rule("lose", service=service, operation=self._ops(operation), times=times))

    def fail(self, code: str, *, operation: Any = None, service: Optional[str] = None, status: int = 400,
             times: Optional[int] = None, seconds: Optional[float] = None, key_contains: Optional[str] = None,
             message: str = "injected by the test's fault proxy") -> Rule:
        """Answer matching requests with the AWS error ``code`` (not forwarded)."""
        until = time.monotonic() + seconds if seconds is not None else None
        return self._add(Rule("fail", service=service, operation=self._ops(operation), times=times, until=until,
                              status=status, code=code, message=message, key_contains=key_contains))

    def throttle(self, service: str, seconds: float, *, operation: Any = None) -> Rule:
        """Answer every request to one service's API with ``ThrottlingException`` for ``seconds``."""
        return self.fail("ThrottlingException", service=service, operation=operation, seconds=seconds,
                         message="Rate exceeded")

    def stall(self, operation: Any = "PutObject", *, key_contains: Optional[str] = None, times: int = 1,
              seconds: float = MAX_STALL) -> Rule:
        """Read matching requests, then answer nothing until :meth:`release` or ``seconds`` (then close)."""
        return self._add(Rule("stall", operation=self._ops(operation), key_contains=key_contains, times=times,
                              stall_seconds=min(seconds, MAX_STALL)))

    def rate_limit(self, bytes_per_second: float, *, operation: Any = S3_UPLOAD_OPERATIONS,
                   key_contains: Optional[str] = None) -> Rule:
        """Read the bodies of matching requests (S3 uploads by default) at ``bytes_per_second``."""
        return self._add(Rule("rate", operation=self._ops(operation), key_contains=key_contains,
                              bytes_per_second=float(bytes_per_second)))

    def keep_running(self, operation: Any = ("DescribeProcessingJob", "DescribeTrainingJob")) -> Rule:
        """Answer matching describes of a ``Completed`` job as ``InProgress`` (a job that takes its time:
        the server completes jobs at once). A job the server has stopped reads ``Stopped`` as it is."""
        return self._add(Rule("running", service="sagemaker", operation=self._ops(operation)))

    def release(self) -> None:
        """End every stall now."""
        self._release.set()

    def clear(self) -> None:
        """Forget every rule (requests are forwarded untouched from now on)."""
        with self._lock:
            self._rules.clear()

    # --- what happened -----------------------------------------------------------------------
    @property
    def events(self) -> List[Event]:
        with self._lock:
            return list(self._events)

    def faults(self, fault: Optional[str] = None) -> List[Event]:
        """Events where a fault was applied (all, or of one kind: ``lose``, ``fail``, ``stall``, ``rate``)."""
        return [e for e in self.events if e.fault != "forwarded" and (fault is None or e.fault == fault)]

    def wait_for(self, predicate: Any, timeout: float = 60.0) -> Event:
        """The first event for which ``predicate(event)`` is true, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if predicate(event):
                    return event
            time.sleep(0.02)
        raise TimeoutError(f"no such request reached the proxy within {timeout:g} s: {self.events}")

    # --- used by the handler -----------------------------------------------------------------
    def _pick(self, call: Call, actions: Tuple[str, ...]) -> Optional[Rule]:
        now = time.monotonic()
        with self._lock:
            for rule in self._rules:
                if rule.action in actions and rule.matches(call, now):
                    if rule.times is not None:
                        rule.times -= 1
                    rule.hits += 1
                    return rule
        return None

    def _record(self, call: Call, fault: str, status: Optional[int]) -> None:
        with self._lock:
            self._events.append(Event(call.service, call.operation, call.key, fault, status, time.monotonic()))


def _still_running(payload: bytes) -> bytes:
    """A job description whose ``Completed`` status reads ``InProgress``, without an end time."""
    description = json.loads(payload)
    for key in ("ProcessingJobStatus", "TrainingJobStatus"):
        if description.get(key) == "Completed":
            description[key] = "InProgress"
            for end in ("ProcessingEndTime", "TrainingEndTime"):
                description.pop(end, None)
    return json.dumps(description).encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: FaultProxy

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the test's report shows the proxy's events instead

    def do_GET(self) -> None:
        self._handle()

    do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_GET

    def _read_body(self, rate: Optional[Rule]) -> bytes:
        chunks: List[bytes] = []
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        remaining = int(self.headers.get("Content-Length") or 0)
        started = time.monotonic()
        done = 0
        step = 1 << 16
        if rate is not None:
            step = max(1024, min(step, int(rate.bytes_per_second / 20)))
        while remaining > 0:
            data = self.rfile.read(min(step, remaining))
            if not data:
                break
            chunks.append(data)
            remaining -= len(data)
            done += len(data)
            if rate is not None:
                ahead = done / rate.bytes_per_second - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        return b"".join(chunks)

    def _handle(self) -> None:
        proxy = self.proxy
        path, _, query = self.path.partition("?")
        call = classify(self.command, urllib.parse.unquote(path), query, self.headers)
        rate = proxy._pick(call, ("rate",))
        if rate is not None:
            proxy._record(call, "rate", None)
        body = self._read_body(rate)
        rule = proxy._pick(call, ("lose", "fail", "stall"))
        if rule is not None and rule.action == "fail":
            content_type, payload = error_body(call.service, rule.code, rule.message)
            self.send_response(rule.status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            if call.service != "s3":
                self.send_header("x-amzn-ErrorType", rule.code)
            self.end_headers()
            # recorded before the answer leaves, so a client that has its answer sees the event
            proxy._record(call, "fail", rule.status)
            if self.command != "HEAD":
                self.wfile.write(payload)
            return
        if rule is not None and rule.action == "stall":
            proxy._record(call, "stall", None)
            proxy.stalling.set()
            proxy._release.wait(rule.stall_seconds)
            self._drop()
            return
        status, reason, headers, payload = self._forward(body)
        running = proxy._pick(call, ("running",))
        if running is not None and status == 200:
            payload = _still_running(payload)
            proxy._record(call, "running", status)
        if rule is not None and rule.action == "lose":
            proxy._record(call, "lose", status)
            self._drop()
            return
        self.send_response_only(status, reason)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        length = {k.lower(): v for k, v in headers}.get("content-length")
        # a HEAD answer describes the object: keep its length; otherwise the body's
        self.send_header("Content-Length", length if self.command == "HEAD" and length else str(len(payload)))
        proxy._record(call, "forwarded", status)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _forward(self, body: bytes) -> Tuple[int, str, List[Tuple[str, str]], bytes]:
        host, port = self.proxy.upstream
        connection = http.client.HTTPConnection(host, port, timeout=60)
        try:
            headers: Dict[str, str] = {}
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    headers[name] = value
            headers["Content-Length"] = str(len(body))
            connection.request(self.command, self.path, body=body if body or self.command in ("PUT", "POST")
                               else None, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            return response.status, response.reason, response.getheaders(), payload
        finally:
            connection.close()

    def _drop(self) -> None:
        """Close the client's connection without a byte of answer."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
