"""Run an ordinary Python script on Amazon SageMaker by adding one flag.

``python script.py`` runs ``main`` here; ``python script.py --sagemaker-run=yes``
runs the same script, with the same arguments, as a SageMaker Processing or
Training job; ``--sagemaker-run=local`` runs that job on this machine without
Docker. Importing this package loads neither boto3 nor the SageMaker SDK.
"""
from typing import TYPE_CHECKING

from ._version import __version__
from .api import output_location, sagemaker_processing_main, sagemaker_training_main
from .errors import (
    AwsError,
    DeclarationError,
    Interrupted,
    JobFailed,
    RemoteError,
    UsageError,
)

if TYPE_CHECKING:  # loaded lazily below; the checker sees the real names
    from .args import OPTIONAL, PathArgument
    from .decorators import Job, processing_job, training_job
    from .options import ProcessingOptions, TrainingOptions
    from .spec import JobResult

__all__ = [
    "OPTIONAL",
    "AwsError",
    "DeclarationError",
    "Interrupted",
    "Job",
    "JobFailed",
    "JobResult",
    "PathArgument",
    "ProcessingOptions",
    "RemoteError",
    "TrainingOptions",
    "UsageError",
    "__version__",
    "output_location",
    "processing_job",
    "sagemaker_processing_main",
    "sagemaker_training_main",
    "training_job",
]


#: name → module of the names loaded when first used: each needs the dataclass machinery, which a
#: plain local run (``python script.py``, see :mod:`~aws_sagemaker_remote.quick`) does without
_LAZY = {
    "OPTIONAL": "args",
    "PathArgument": "args",
    "ProcessingOptions": "options",
    "TrainingOptions": "options",
    "JobResult": "spec",
    "Job": "decorators",
    "processing_job": "decorators",
    "training_job": "decorators",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # once loaded, an ordinary attribute
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> "list[str]":
    return sorted(set(globals()) | set(_LAZY))
