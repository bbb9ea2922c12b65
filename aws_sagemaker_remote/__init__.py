"""Run an ordinary Python script on Amazon SageMaker by adding one flag.

``python script.py`` runs ``main`` here; ``python script.py --sagemaker-run=yes``
runs the same script, with the same arguments, as a SageMaker Processing or
Training job; ``--sagemaker-run=local`` runs that job on this machine without
Docker. Importing this package loads neither boto3 nor the SageMaker SDK.
"""
from typing import TYPE_CHECKING

from ._version import __version__
from .api import output_location, sagemaker_processing_main, sagemaker_training_main
from .args import OPTIONAL, PathArgument
from .errors import (
    AwsError,
    DeclarationError,
    Interrupted,
    JobFailed,
    RemoteError,
    UsageError,
)
from .options import ProcessingOptions, TrainingOptions

if TYPE_CHECKING:  # loaded lazily below; the checker sees the real names
    from .decorators import Job, processing_job, training_job

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


def __getattr__(name: str) -> object:
    # JobResult is only needed once a job ran; loading it lazily keeps a local run's import short
    if name == "JobResult":
        from .spec import JobResult

        return JobResult
    if name in ("Job", "processing_job", "training_job"):  # the decorator form, loaded when first used
        from . import decorators

        return getattr(decorators, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
