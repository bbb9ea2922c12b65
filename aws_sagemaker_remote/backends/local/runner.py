"""Local jobs that outlive their launcher (``--sagemaker-run=local --sagemaker-wait=no``).

The launcher stages the job as usual; then :class:`DetachedLocalBackend` writes
the rendered request to ``<registry>/<kind>/<name>/runner.json`` and starts
``python -m aws_sagemaker_remote.backends.local.runner FILE``, the *runner*, in
a session of its own: a Ctrl-C or hang-up meant for the launcher never reaches
it, and the launcher's guard (:mod:`.guard`) does not know it. The runner
creates the job with an ordinary :class:`~aws_sagemaker_remote.backends.local.LocalBackend`,
so the job is recorded in the :class:`~aws_sagemaker_remote.backends.local.state.Registry`
with the runner as its owner, answers ``created`` (or the error) on its
standard output, and waits for the job to end. The launcher returns once it has
read that answer.

From then on the job is another process's job, like one whose launcher waits:
``aws-sagemaker-remote describe``, ``logs --follow`` and ``stop`` read its record
and signal the runner; SIGTERM (or SIGINT) makes the runner stop the job. The
runner's own guard kills the job's processes if the runner dies (``kill -9``),
and the record then reads ``Failed``. What the runner itself writes to its
standard error goes to ``runner.log`` beside the record.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

from ...errors import AwsError, JobExists
from ...store import LocalStore, Store
from ..base import NAME_KEY, STATUS_KEY, TERMINAL_STATUSES, LogCursor, LogEvent
from .state import RecordedJobs, Registry

#: The request file the launcher hands to the runner, and the runner's own log, in the job's record folder.
REQUEST_FILE = "runner.json"
RUNNER_LOG = "runner.log"
REQUEST_FORMAT = "aws_sagemaker_remote.local-runner/1"
MODULE = "aws_sagemaker_remote.backends.local.runner"


class DetachedLocalBackend:
    """The local backend for a launcher that does not wait: each job runs in a runner process
    that outlives this one; ``describe``, ``logs`` and ``stop`` go through the job's record.

    ``store`` describes where the runner finds the job's files: ``{"name": "local", "root": ...}``
    for the local stand-in, ``{"name": "s3", "profile", "region", "assume_role", "endpoint_url"}``
    for S3 (the runner builds its own session from the same settings; no credentials are written).
    """

    name = "local"
    #: the job runs in the runner, which outlives the launcher
    outlives_caller = True
    poll_interval = RecordedJobs.poll_interval
    log_poll_interval = RecordedJobs.log_poll_interval

    def __init__(self, store: Dict[str, Any], region: str, registry: Optional[Registry] = None) -> None:
        self.store = dict(store)
        self.region = region
        self.registry = registry or Registry()
        self.recorded = RecordedJobs(self.registry)

    def create(self, kind: str, request: Dict[str, Any]) -> None:
        """Start the runner and return once it has created the job.

        :raises JobExists: a local job of this kind with this name is recorded already.
        :raises AwsError: the runner could not create the job (its reason).
        """
        name = str(request.get(NAME_KEY[kind]) or "")
        if not name:
            raise AwsError(f"the request has no {NAME_KEY[kind]}", code="ValidationException")
        if self.registry.read(kind, name) is not None:
            raise JobExists(kind, name)
        folder = self.registry.folder(kind, name)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, REQUEST_FILE)
        with open(path, "w", encoding="utf-8") as fh:
            json.dump({"format": REQUEST_FORMAT, "kind": kind, "request": request, "store": self.store,
                       "region": self.region, "registry": self.registry.root}, fh)
        package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__)))))
        with open(os.path.join(folder, RUNNER_LOG), "ab") as log:
            runner = subprocess.Popen(
                [sys.executable, "-m", MODULE, path],
                # ``-m`` finds this very package from there, without changing the jobs' PYTHONPATH
                cwd=package_parent, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                start_new_session=True, close_fds=True)
        assert runner.stdout is not None
        with runner.stdout:
            answer = runner.stdout.readline().decode("utf-8", "replace")
        try:
            reply = json.loads(answer)
        except ValueError:
            reply = {"error": _log_tail(folder) or f"the local job runner exited with code {runner.wait()}"}
        if reply.get("created"):
            return
        if self.registry.read(kind, name) is None:
            self.registry.remove(kind, name)  # nothing was created: leave no half record
        if reply.get("code") == "ResourceInUse":
            raise JobExists(kind, name)
        raise AwsError(str(reply.get("error")), code=reply.get("code"))

    def describe(self, kind: str, job_name: str) -> Dict[str, Any]:
        return self.recorded.describe(kind, job_name)

    def stop(self, kind: str, job_name: str) -> None:
        self.recorded.stop(kind, job_name)

    def logs(self, kind: str, job_name: str, cursor: LogCursor) -> List[LogEvent]:
        return self.recorded.logs(kind, job_name, cursor)

    def console_url(self, kind: str, job_name: str) -> Optional[str]:
        """Local jobs have no console."""
        return None


def _log_tail(folder: str) -> str:
    try:
        with open(os.path.join(folder, RUNNER_LOG), encoding="utf-8", errors="replace") as fh:
            lines = [line.strip() for line in fh if line.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def _store(described: Dict[str, Any]) -> Store:
    if described.get("name") == "local":
        return LocalStore(described.get("root"))
    from ...aws import make_clients, make_session
    from ...store import S3Store

    session = make_session(described.get("profile"), described.get("region"), described.get("assume_role"))
    return S3Store(make_clients(session, described.get("endpoint_url")).s3)


def _answer(reply: Dict[str, Any]) -> None:
    """The launcher's one line; then standard output goes nowhere, so its pipe closes."""
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the job described by the request file ``argv[0]`` to its end; 0 once it ended, 1 if not created."""
    from . import LocalBackend

    args = sys.argv[1:] if argv is None else argv
    try:
        with open(args[0], encoding="utf-8") as fh:
            data = json.load(fh)
        os.unlink(args[0])  # the request lives on in the job's record; one copy is enough
        if data.get("format") != REQUEST_FORMAT:
            raise ValueError(f"{args[0]} is not a {REQUEST_FORMAT} file")
        kind, request = str(data["kind"]), data["request"]
        backend = LocalBackend(_store(data["store"]), region=str(data["region"]),
                               registry=Registry(data.get("registry")))
        name = str(request[NAME_KEY[kind]])

        def stop(signum: int, frame: Any) -> None:
            backend.stop(kind, name)

        # ``stop JOB`` sends SIGTERM to the job's owner: this process
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        backend.create(kind, request)
    except AwsError as exc:
        _answer({"error": str(exc), "code": exc.code})
        return 1
    except Exception as exc:  # any failure is the launcher's one error line (and the traceback goes to the log)
        _answer({"error": f"the local job runner failed: {exc}"})
        raise
    _answer({"created": True})
    # the final status is published last, once the job's folders are gone; the signal
    # handlers run between two looks
    while backend.describe(kind, name)[STATUS_KEY[kind]] not in TERMINAL_STATUSES:
        time.sleep(0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
