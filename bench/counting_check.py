"""Check the counting moto server against botocore before it counts anything for the benchmark.

``check(url)`` makes one request per operation the benchmark reports on (and a
few it might), each with boto3, and compares what the server counted with
the operation name in botocore's own service model. It also checks that an
upload's body is counted once. ``bench/run.py`` calls it right after starting
the server; ``python bench/counting_check.py URL`` runs it against a server
started by hand. The server is left with one bucket of a few small objects,
which the benchmark removes with its first reset.
"""
from __future__ import annotations

import json
import sys
import urllib.request
from typing import Any, Callable, Dict, List, Optional, Tuple

REGION = "us-east-1"
BUCKET = "bench-counting-check"
BODY = b"x" * 1000


class CountingError(RuntimeError):
    """The server counted a request differently from botocore's name for it."""


def check(url: str) -> int:
    """Raise :class:`CountingError` on the first mismatch; return the number of operations checked."""
    import boto3

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def stats() -> Dict[str, Any]:
        with opener.open(url + "/_bench/stats", timeout=60) as response:
            data: Dict[str, Any] = json.loads(response.read())
        request = urllib.request.Request(url + "/_bench/stats/reset", data=b"", method="POST")
        with opener.open(request, timeout=60):
            pass
        return data

    kw: Dict[str, Any] = {"endpoint_url": url, "region_name": REGION,
                          "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    clients: Dict[str, Any] = {name: boto3.client(name, **kw) for name in ("s3", "sts", "sagemaker", "logs")}
    s3 = clients["s3"]
    stats()
    uploads: List[str] = []

    def multipart(key: str) -> str:
        upload_id = str(s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"])
        uploads.append(upload_id)
        stats()
        return upload_id

    calls: List[Tuple[str, str, Callable[[], Dict[str, Any]]]] = [
        ("s3", "create_bucket", lambda: {"Bucket": BUCKET}),
        ("s3", "head_bucket", lambda: {"Bucket": BUCKET}),
        ("s3", "list_buckets", lambda: {}),
        ("s3", "put_object", lambda: {"Bucket": BUCKET, "Key": "a/b c.txt", "Body": BODY}),
        ("s3", "head_object", lambda: {"Bucket": BUCKET, "Key": "a/b c.txt"}),
        ("s3", "get_object", lambda: {"Bucket": BUCKET, "Key": "a/b c.txt"}),
        ("s3", "copy_object", lambda: {"Bucket": BUCKET, "Key": "copy",
                                       "CopySource": {"Bucket": BUCKET, "Key": "a/b c.txt"}}),
        ("s3", "list_objects_v2", lambda: {"Bucket": BUCKET}),
        ("s3", "list_objects", lambda: {"Bucket": BUCKET}),
        ("s3", "get_bucket_location", lambda: {"Bucket": BUCKET}),
        ("s3", "create_multipart_upload", lambda: {"Bucket": BUCKET, "Key": "m"}),
        ("s3", "upload_part", lambda: {"Bucket": BUCKET, "Key": "m1", "UploadId": multipart("m1"),
                                       "PartNumber": 1, "Body": BODY}),
        ("s3", "upload_part_copy", lambda: {"Bucket": BUCKET, "Key": "m2", "UploadId": multipart("m2"),
                                            "PartNumber": 1, "CopySource": {"Bucket": BUCKET, "Key": "copy"}}),
        ("s3", "list_parts", lambda: {"Bucket": BUCKET, "Key": "m1", "UploadId": uploads[0]}),
        ("s3", "list_multipart_uploads", lambda: {"Bucket": BUCKET}),
        ("s3", "abort_multipart_upload", lambda: {"Bucket": BUCKET, "Key": "m2", "UploadId": uploads[1]}),
        ("s3", "delete_object", lambda: {"Bucket": BUCKET, "Key": "copy"}),
        ("s3", "delete_objects", lambda: {"Bucket": BUCKET, "Delete": {"Objects": [{"Key": "nothing"}]}}),
        ("sts", "get_caller_identity", lambda: {}),
        ("sagemaker", "list_processing_jobs", lambda: {}),
        ("logs", "describe_log_groups", lambda: {}),
    ]
    for service, method, arguments in calls:
        client = clients[service]
        params = arguments()
        getattr(client, method)(**params)
        counted = stats()
        expected = f"{service}:{client.meta.method_to_api_mapping[method]}"
        if counted["operations"] != {expected: 1}:
            raise CountingError(f"{method}: counted {counted['operations']}, botocore calls it {expected}")
        if method in ("put_object", "upload_part"):
            sent = int(counted["sent_bytes"])
            # The body once, plus a request line and headers of well under 4 KiB.
            if not len(BODY) < sent < len(BODY) + 4096 or int(counted["s3_payload_bytes"]) != len(BODY):
                raise CountingError(f"{method} of {len(BODY)} bytes: counted {counted}")
    return len(calls)


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python bench/counting_check.py http://127.0.0.1:PORT", file=sys.stderr)
        return 2
    try:
        count = check(args[0])
    except CountingError as exc:
        print(f"counting server: {exc}", file=sys.stderr)
        return 1
    print(f"counting server: {count} operations counted as botocore names them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
