"""A moto server on 127.0.0.1 that counts the bytes each client sends to S3.

Run as its own process (``python bench/moto_counting_server.py``) so that its
memory, which grows with every object it stores, never shows up in the peak RSS
of the process being measured. It prints ``URL http://127.0.0.1:PORT`` on
stdout once it accepts connections and serves until it receives SIGTERM.

Besides moto's API (and ``POST /moto-api/reset``) it answers:

``GET /_bench/stats``
    JSON: ``s3_body_bytes`` (request body bytes of every S3 request, as read
    off the socket), ``s3_payload_bytes`` (the same, without the aws-chunked
    framing that newer botocore puts around uploads), ``s3_object_writes``
    (``PutObject`` and ``UploadPart`` requests) and ``requests`` (count per
    AWS service).
``POST /_bench/stats/reset``
    Zero the counters.

Counting happens on the server side because that is the only place that sees
every client the same way: our package, the SageMaker SDK and the AWS CLI each
report their transfers differently, or not at all.
"""
from __future__ import annotations

import json
import re
import signal
import sys
import threading
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional

#: ``Credential=AKID/20261121/us-east-1/s3/aws4_request`` in a SigV4 Authorization header.
_SERVICE_RE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")
STATS_PATH = "/_bench/stats"
RESET_PATH = "/_bench/stats/reset"


class CountingStream:
    """A ``wsgi.input`` that adds the number of bytes read to a counter."""

    def __init__(self, stream: Any, add: Callable[[int], None]) -> None:
        self._stream = stream
        self._add = add

    def read(self, *args: Any) -> bytes:
        data = self._stream.read(*args)
        self._add(len(data))
        return data

    def readline(self, *args: Any) -> bytes:
        data = self._stream.readline(*args)
        self._add(len(data))
        return data

    def readlines(self, *args: Any) -> List[bytes]:
        lines = self._stream.readlines(*args)
        self._add(sum(len(line) for line in lines))
        return lines

    def __iter__(self) -> Iterator[bytes]:
        for line in self._stream:
            self._add(len(line))
            yield line

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class CountingMiddleware:
    """Counts S3 request bodies and requests per service, then hands the request to moto."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._stats: Dict[str, Any] = {}
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._stats = {"s3_body_bytes": 0, "s3_payload_bytes": 0, "s3_object_writes": 0, "requests": {}}

    def snapshot(self) -> Dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self._stats))

    def _add_body(self, amount: int) -> None:
        with self._lock:
            self._stats["s3_body_bytes"] += amount

    def __call__(self, environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO") or "/")
        method = str(environ.get("REQUEST_METHOD") or "GET").upper()
        if path == STATS_PATH and method == "GET":
            return self._json(start_response, self.snapshot())
        if path == RESET_PATH and method == "POST":
            self.reset()
            return self._json(start_response, {"reset": True})
        match = _SERVICE_RE.search(str(environ.get("HTTP_AUTHORIZATION") or ""))
        service = match.group(1) if match else ("moto-api" if path.startswith("/moto-api") else "unsigned")
        with self._lock:
            counts = self._stats["requests"]
            counts[service] = counts.get(service, 0) + 1
            if service == "s3" and method in ("PUT", "POST"):
                # aws-chunked uploads carry the payload size here; plain ones in Content-Length.
                payload = environ.get("HTTP_X_AMZ_DECODED_CONTENT_LENGTH") or environ.get("CONTENT_LENGTH") or 0
                self._stats["s3_payload_bytes"] += int(payload)
                query = str(environ.get("QUERY_STRING") or "")
                is_object = path.strip("/").count("/") >= 1
                if method == "PUT" and is_object and "HTTP_X_AMZ_COPY_SOURCE" not in environ and (
                        not query or "partNumber=" in query):
                    self._stats["s3_object_writes"] += 1
        if service == "s3" and "wsgi.input" in environ:
            environ["wsgi.input"] = CountingStream(environ["wsgi.input"], self._add_body)
        return self.app(environ, start_response)

    @staticmethod
    def _json(start_response: Callable[..., Any], payload: Dict[str, Any]) -> List[bytes]:
        body = json.dumps(payload).encode("utf-8")
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def serve(port: int = 0, ready: Optional[Callable[[str], None]] = None) -> None:
    """Serve moto on ``127.0.0.1:port`` (0 picks a free port) until SIGTERM or SIGINT."""
    from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    app = CountingMiddleware(DomainDispatcherApplication(create_backend_app))
    # MotoRequestHandler keeps header spelling intact (S3 metadata relies on it);
    # moto's own ThreadedMotoServer uses it too.
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
    host, bound = server.server_address[:2]

    def stop(signum: int, frame: Any) -> None:
        # shutdown() waits for serve_forever to return, so it must run off the serving thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if ready is not None:
        ready(f"http://{host}:{bound}")
    try:
        server.serve_forever()
    finally:
        server.server_close()


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    port = int(args[0]) if args else 0

    def announce(url: str) -> None:
        print(f"URL {url}", flush=True)

    serve(port, announce)
    return 0


if __name__ == "__main__":
    sys.exit(main())
