"""A moto server on 127.0.0.1 that counts what each client sends, by operation.

Run as its own process (``python bench/moto_counting_server.py [PORT]``) so that
its memory, which grows with every object it stores, never shows up in the peak
RSS of the process being measured. It prints ``URL http://127.0.0.1:PORT`` on
stdout once it accepts connections and serves until it receives SIGTERM.

Besides moto's API (and ``POST /moto-api/reset``) it answers:

``GET /_bench/stats``
    JSON with the counters since the last reset:

    ``sent_bytes``
        every request's bytes as the client sent them: request line, headers
        (as received, so within a few bytes of the wire) and the body as read
        off the socket;
    ``s3_body_bytes``
        request body bytes of every S3 request, as read off the socket;
    ``s3_payload_bytes``
        the same, without the aws-chunked framing that newer botocore puts
        around uploads;
    ``s3_object_writes``
        ``PutObject`` and ``UploadPart`` requests;
    ``requests``
        count per AWS service;
    ``operations``
        count per ``service:Operation`` (``s3:PutObject``,
        ``sagemaker:CreateProcessingJob``, ...), derived from the method, path,
        query and headers of S3 requests, ``X-Amz-Target`` of JSON services and
        ``Action`` of query services.
``POST /_bench/stats/reset``
    Zero the counters.

Counting happens on the server side because that is the only place that sees
every client the same way: our package, the SageMaker SDK and the AWS CLI each
report their transfers differently, or not at all.
"""
from __future__ import annotations

import io
import json
import re
import signal
import sys
import threading
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional
from urllib.parse import parse_qs

#: ``Credential=AKID/20261121/us-east-1/s3/aws4_request`` in a SigV4 Authorization header.
_SERVICE_RE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")
STATS_PATH = "/_bench/stats"
RESET_PATH = "/_bench/stats/reset"
#: Form bodies of query-protocol services (STS, IAM) are read to find their ``Action``; larger ones are not.
_FORM_LIMIT = 1 << 20

#: Bucket sub-resources (query keys) that name a bucket-level operation, by method.
_BUCKET_SUBRESOURCES = ("acl", "cors", "encryption", "lifecycle", "location", "logging", "notification",
                        "ownershipControls", "policy", "publicAccessBlock", "replication", "tagging",
                        "versioning", "website", "accelerate", "requestPayment", "object-lock")


def s3_operation(method: str, path: str, query: str, has_copy_source: bool) -> str:
    """The S3 API operation of a path-style request (botocore uses path style for an IP endpoint)."""
    keys = set(parse_qs(query, keep_blank_values=True))
    parts = path.lstrip("/").split("/", 1)
    bucket = parts[0]
    has_key = len(parts) > 1 and parts[1] != ""
    if not bucket:
        return "ListBuckets" if method == "GET" else f"{method} /"
    if not has_key:
        if method == "HEAD":
            return "HeadBucket"
        if method == "POST" and "delete" in keys:
            return "DeleteObjects"
        sub = next((k for k in _BUCKET_SUBRESOURCES if k in keys), None)
        if method == "GET":
            if "list-type" in keys:
                return "ListObjectsV2"
            if "uploads" in keys:
                return "ListMultipartUploads"
            if "versions" in keys:
                return "ListObjectVersions"
            if sub == "location":
                return "GetBucketLocation"
            return f"GetBucket{sub[0].upper()}{sub[1:]}" if sub else "ListObjects"
        if method == "PUT":
            return f"PutBucket{sub[0].upper()}{sub[1:]}" if sub else "CreateBucket"
        if method == "DELETE":
            return f"DeleteBucket{sub[0].upper()}{sub[1:]}" if sub else "DeleteBucket"
        return f"{method} bucket"
    if method == "PUT":
        if has_copy_source:
            return "UploadPartCopy" if "partNumber" in keys else "CopyObject"
        if "partNumber" in keys:
            return "UploadPart"
        return "PutObjectTagging" if "tagging" in keys else "PutObject"
    if method == "POST":
        if "uploads" in keys:
            return "CreateMultipartUpload"
        if "uploadId" in keys:
            return "CompleteMultipartUpload"
        return "POST object"
    if method == "GET":
        if "uploadId" in keys:
            return "ListParts"
        return "GetObjectTagging" if "tagging" in keys else "GetObject"
    if method == "HEAD":
        return "HeadObject"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in keys else "DeleteObject"
    return f"{method} object"


def header_bytes(environ: Dict[str, Any]) -> int:
    """Bytes of the request line and headers, rebuilt from the WSGI environ (HTTP/1.1 framing)."""
    query = str(environ.get("QUERY_STRING") or "")
    target = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "") or (
        str(environ.get("PATH_INFO") or "/") + (f"?{query}" if query else ""))
    total = len(str(environ.get("REQUEST_METHOD") or "GET")) + 1 + len(target) + len(" HTTP/1.1\r\n")
    for name, value in environ.items():
        if name.startswith("HTTP_"):
            header = name[5:]
        elif name in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            header = name
        else:
            continue
        total += len(header) + 2 + len(str(value)) + 2
    return total + 2


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
            self._stats = {"sent_bytes": 0, "s3_body_bytes": 0, "s3_payload_bytes": 0, "s3_object_writes": 0,
                           "requests": {}, "operations": {}}

    def snapshot(self) -> Dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self._stats))

    def _add_body(self, amount: int) -> None:
        with self._lock:
            self._stats["sent_bytes"] += amount

    def _add_s3_body(self, amount: int) -> None:
        with self._lock:
            self._stats["s3_body_bytes"] += amount
            self._stats["sent_bytes"] += amount

    @staticmethod
    def _operation(service: str, method: str, path: str, environ: Dict[str, Any]) -> str:
        query = str(environ.get("QUERY_STRING") or "")
        if service == "s3":
            return s3_operation(method, path, query, "HTTP_X_AMZ_COPY_SOURCE" in environ)
        target = str(environ.get("HTTP_X_AMZ_TARGET") or "")
        if target:
            return target.rsplit(".", 1)[-1]
        action = parse_qs(query).get("Action")
        if not action and method == "POST" and str(environ.get("CONTENT_TYPE") or "").startswith(
                "application/x-www-form-urlencoded"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if 0 < length <= _FORM_LIMIT:
                # Read the small form body here and hand moto an identical stream.
                body = environ["wsgi.input"].read(length)
                environ["wsgi.input"] = io.BytesIO(body)
                action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        return action[0] if action else f"{method} {path}"

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
        operation = f"{service}:{self._operation(service, method, path, environ)}"
        with self._lock:
            counts = self._stats["requests"]
            counts[service] = counts.get(service, 0) + 1
            operations = self._stats["operations"]
            operations[operation] = operations.get(operation, 0) + 1
            self._stats["sent_bytes"] += header_bytes(environ)
            if service == "s3" and method in ("PUT", "POST"):
                # aws-chunked uploads carry the payload size here; plain ones in Content-Length.
                payload = environ.get("HTTP_X_AMZ_DECODED_CONTENT_LENGTH") or environ.get("CONTENT_LENGTH") or 0
                self._stats["s3_payload_bytes"] += int(payload)
                query = str(environ.get("QUERY_STRING") or "")
                is_object = path.strip("/").count("/") >= 1
                if method == "PUT" and is_object and "HTTP_X_AMZ_COPY_SOURCE" not in environ and (
                        not query or "partNumber=" in query):
                    self._stats["s3_object_writes"] += 1
        if "wsgi.input" in environ:
            add = self._add_s3_body if service == "s3" else self._add_body
            environ["wsgi.input"] = CountingStream(environ["wsgi.input"], add)
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
    if isinstance(host, bytes):
        host = host.decode("ascii")

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
