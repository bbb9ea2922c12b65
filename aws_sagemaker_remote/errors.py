"""The one exception tree of aws_sagemaker_remote.

Every error the framework raises on purpose derives from :class:`RemoteError`
and carries the process exit code that the entry points use::

    RemoteError (exit 1)
    ├── UsageError (exit 2)          bad flag, bad keyword or bad input; nothing was created
    │   └── DeclarationError         the script's own declaration is inconsistent
    ├── AwsError (exit 1)            an AWS call failed (translated from botocore)
    │   ├── CredentialsError         no usable credentials / region
    │   ├── EndpointError            the endpoint could not be reached
    │   ├── ThrottledError           the service kept throttling us
    │   ├── JobNotFound              no job of that kind and name (also a KeyError)
    │   └── JobExists                a job of that kind and name was already created
    ├── ContentChanged (exit 1)      a file changed while it was being staged
    ├── JobFailed (exit 1)           the job ended Failed or Stopped
    └── Interrupted (exit 130)       Ctrl-C; the job was stopped (or detached)

Foreign exceptions (botocore, OS errors during staging) are translated at the
boundary where they occur with ``raise ... from exc`` so the original stays in
the traceback chain. Only the entry points (:mod:`aws_sagemaker_remote.api`
and :mod:`aws_sagemaker_remote.cli`) turn these into ``sys.exit``.
"""
from __future__ import annotations

from typing import Any, Optional

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def exit_status(returncode: int) -> int:
    """The exit status a shell reports for a child's ``returncode``: death by signal N is 128+N.

    :mod:`subprocess` gives a negative ``returncode`` (``-N``) for a process killed
    by signal N; a container, the bootstrap and the local backend report ``128+N``.
    """
    return 128 - returncode if returncode < 0 else returncode


class RemoteError(Exception):
    """Base class of every error raised by aws_sagemaker_remote."""

    exit_code: int = EXIT_FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(RemoteError):
    """A flag, keyword or input value is not allowed.

    ``flag`` names the command-line flag (or keyword) at fault, so the message
    a user sees always says which one to change.
    """

    exit_code = EXIT_USAGE

    def __init__(self, message: str, flag: Optional[str] = None) -> None:
        if flag and not message.startswith(flag):
            message = f"{flag}: {message}"
        super().__init__(message)
        self.flag = flag


class DeclarationError(UsageError):
    """The script declares something inconsistent (for example two flags with one name)."""


class AwsError(RemoteError):
    """An AWS request failed. ``code`` is the AWS error code when there is one."""

    def __init__(self, message: str, code: Optional[str] = None) -> None:
        super().__init__(message)
        self.code = code


class CredentialsError(AwsError):
    """No credentials or no region could be found for the AWS session."""


class EndpointError(AwsError):
    """The AWS endpoint could not be reached (server gone, DNS, connection refused)."""


class ThrottledError(AwsError):
    """AWS kept throttling the requests after the retries botocore makes."""


class JobNotFound(AwsError, KeyError):
    """``describe``/``stop``/``logs`` of a job the backend never created (SageMaker: ValidationException)."""

    def __init__(self, kind: str, job_name: str) -> None:
        super().__init__(f"Could not find {kind} job '{job_name}'", code="ValidationException")
        self.kind = kind
        self.job_name = job_name


class JobExists(AwsError):
    """``create`` with a name already used by a job of the same kind (SageMaker: ResourceInUse)."""

    def __init__(self, kind: str, job_name: str) -> None:
        super().__init__(f"A {kind} job named '{job_name}' already exists", code="ResourceInUse")
        self.kind = kind
        self.job_name = job_name


class ContentChanged(RemoteError):
    """A file's bytes changed between hashing and uploading it: nothing was stored for it.

    Staging names what it uploads by the SHA-256 of its content; storing other
    bytes under that name would hand a later job stale data.
    """

    def __init__(self, path: str) -> None:
        super().__init__(f"{path} changed while it was being staged (its content no longer matches the digest "
                         "taken when staging began); nothing was stored for it: launch again once it stops changing")
        self.path = path


class JobFailed(RemoteError):
    """The job ended in ``Failed`` or ``Stopped``. ``result`` is the final :class:`JobResult`.

    ``brief`` is the error line of a command whose summary already showed the reason (the
    message, for a caller in Python, keeps it).
    """

    def __init__(self, message: str, result: Any = None, brief: Optional[str] = None) -> None:
        super().__init__(message)
        self.result = result
        self.brief = brief or message


class Interrupted(RemoteError):
    """The user pressed Ctrl-C while the framework was waiting."""

    exit_code = EXIT_INTERRUPTED
