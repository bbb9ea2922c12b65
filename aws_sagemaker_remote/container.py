"""Every path inside the SageMaker container, in one place.

SageMaker lays out ``/opt/ml`` the same way in every job; the paths below come
from the Processing and Training container contracts in the SageMaker
developer guide ("Build your own processing container", "How Amazon SageMaker
provides training information"). Nothing else in the package spells ``/opt/ml``.

The root can be moved: :class:`ContainerPaths` takes a ``root`` so the local
backend can give each emulated instance its own folder, and the bootstrap reads
``AWS_SAGEMAKER_REMOTE_OPT_ML`` (set only by the local backend) to find it.
This module is standard-library only because it ships inside the job.
"""
from __future__ import annotations

import os
import posixpath
from typing import Optional

#: The root SageMaker mounts everything under.
OPT_ML = "/opt/ml"
#: Environment variable through which the local backend moves the root.
ROOT_ENV = "AWS_SAGEMAKER_REMOTE_OPT_ML"

# Where the code bundle is unpacked inside the job (our own convention).
CODE_CHANNEL = "code"
BUNDLE_FILENAME = "bundle.tar.gz"
#: When the script's arguments do not fit in ``ContainerArguments`` (at most 100
#: entries of at most 256 characters each), they travel as a JSON list in this
#: file beside the bundle, named by one argument ``ARGUMENT_FILE_FLAG=<path>``.
ARGUMENT_FILENAME = "arguments.json"
ARGUMENT_FILE_FLAG = "--aws-sagemaker-remote-arguments-file"
#: ``ContainerArguments`` limits of both CreateProcessingJob and CreateTrainingJob.
CONTAINER_ARGUMENTS_MAX = 100
CONTAINER_ARGUMENT_LENGTH = 256
#: The bootstrap's own leading arguments: bundle path and unpack folder.
BOOTSTRAP_ARGUMENTS = 2


def needs_argument_file(arguments: "list[str] | tuple[str, ...]") -> bool:
    """True when ``arguments`` cannot be passed as ``ContainerArguments`` directly."""
    # the API's pattern for an argument is ".*": a line break does not match it
    return (len(arguments) + BOOTSTRAP_ARGUMENTS > CONTAINER_ARGUMENTS_MAX
            or any(len(a) > CONTAINER_ARGUMENT_LENGTH or "\n" in a or "\r" in a for a in arguments))


class ContainerPaths:
    """The ``/opt/ml`` layout, relative to a movable root.

    ``ContainerPaths()`` describes a real container; ``ContainerPaths("/tmp/x/opt/ml")``
    describes the same layout under a temporary folder.
    """

    def __init__(self, root: str = OPT_ML) -> None:
        self.root = root

    @classmethod
    def from_env(cls) -> "ContainerPaths":
        """The layout of the job this process runs in (honours the local backend's root)."""
        return cls(os.environ.get(ROOT_ENV) or OPT_ML)

    def _join(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    # --- processing -----------------------------------------------------
    @property
    def processing_dir(self) -> str:
        """Every processing input and output lives below this folder."""
        return self._join("processing")

    def processing_input(self, name: str) -> str:
        """Default ``LocalPath`` of a processing input."""
        return self._join("processing", "input", name)

    def processing_output(self, name: str) -> str:
        """Default ``LocalPath`` of a processing output."""
        return self._join("processing", "output", name)

    @property
    def processing_code(self) -> str:
        """Where the code bundle input is downloaded in a processing job."""
        return self.processing_input(CODE_CHANNEL)

    @property
    def processing_job_config(self) -> str:
        return self._join("config", "processingjobconfig.json")

    @property
    def processing_resource_config(self) -> str:
        return self._join("config", "resourceconfig.json")

    @property
    def processing_failure(self) -> str:
        """Text written here becomes the processing job's ``ExitMessage``."""
        return self._join("output", "message")

    # --- training -------------------------------------------------------
    def training_channel(self, name: str) -> str:
        return self._join("input", "data", name)

    @property
    def training_code(self) -> str:
        return self.training_channel(CODE_CHANNEL)

    @property
    def training_config_dir(self) -> str:
        return self._join("input", "config")

    @property
    def hyperparameters(self) -> str:
        return self._join("input", "config", "hyperparameters.json")

    @property
    def input_data_config(self) -> str:
        return self._join("input", "config", "inputdataconfig.json")

    @property
    def training_resource_config(self) -> str:
        return self._join("input", "config", "resourceconfig.json")

    @property
    def model_dir(self) -> str:
        return self._join("model")

    @property
    def output_data_dir(self) -> str:
        return self._join("output", "data")

    @property
    def training_failure(self) -> str:
        """Text written here becomes the training job's ``FailureReason``."""
        return self._join("output", "failure")

    @property
    def checkpoints(self) -> str:
        return self._join("checkpoints")

    # --- both -----------------------------------------------------------
    def code_dir(self, kind: str) -> str:
        """Where the bundle input lands for a job ``kind`` ('processing' or 'training')."""
        from .kinds import job_kind  # the kinds describe their layout in terms of this class

        return job_kind(kind).code_dir(self)

    def failure_file(self, kind: str) -> str:
        """Where the job ``kind`` writes its failure reason."""
        from .kinds import job_kind

        return job_kind(kind).failure_file(self)

    @property
    def unpacked_code(self) -> str:
        """Where the bootstrap unpacks the bundle (our convention, writable in every image)."""
        return self._join("code")

    def relocate(self, value: str, new_root: Optional[str]) -> str:
        """Rewrite a string naming a path under this root to the same path under ``new_root``.

        Used by the local backend on container arguments such as ``--input=/opt/ml/...``:
        the prefix is replaced where a path starts (beginning of the value or after ``=``).
        """
        if not new_root:
            return value
        root = self.root.rstrip("/")
        if value == root or value.startswith(root + "/"):
            return new_root.rstrip("/") + value[len(root):]
        head, sep, tail = value.partition("=")
        if sep and (tail == root or tail.startswith(root + "/")):
            return head + sep + new_root.rstrip("/") + tail[len(root):]
        return value


#: The layout of a real SageMaker container.
DEFAULT = ContainerPaths()
