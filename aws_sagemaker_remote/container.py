"""Every path inside the SageMaker container, in one place.

SageMaker lays out ``/opt/ml`` the same way in every job; the paths below come
from the Processing and Training container contracts in the SageMaker
developer guide ("Build your own processing container", "How Amazon SageMaker
provides training information"). Nothing else in the package spells ``/opt/ml``.

The root can be moved: :class:`ContainerPaths` takes a ``root`` so the local
backend can give each emulated instance its own folder, and the bootstrap reads
``AWS_SAGEMAKER_REMOTE_OPT_ML`` (set only by the local backend) to find it.

:func:`training_environment` derives the ``SM_*`` variables of a training job
from the config files under this layout; the bootstrap (in a SageMaker job) or
the local backend (on this machine) computes them, never both.
This module is standard-library only because it ships inside the job.
"""
from __future__ import annotations

import json
import os
import posixpath
import subprocess
from typing import Any, Dict, Optional

#: The root SageMaker mounts everything under.
OPT_ML = "/opt/ml"
#: Environment variable through which the local backend moves the root.
ROOT_ENV = "AWS_SAGEMAKER_REMOTE_OPT_ML"
#: Set to ``1`` by whoever already put the :func:`training_environment` variables
#: in the job's environment (the local backend), so the bootstrap does not
#: compute them a second time.
TRAINING_ENV_SET = "AWS_SAGEMAKER_REMOTE_SM_SET"
#: Set for the script inside a job: it does not read option sources (files, variables) again.
IN_JOB_ENV = "AWS_SAGEMAKER_REMOTE_IN_JOB"

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
        return self.processing_code if kind == "processing" else self.training_code

    def failure_file(self, kind: str) -> str:
        return self.processing_failure if kind == "processing" else self.training_failure

    def resource_config(self, kind: str) -> str:
        return self.processing_resource_config if kind == "processing" else self.training_resource_config

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


def training_environment(paths: ContainerPaths, gpus: Optional[int] = None) -> Dict[str, str]:
    """The ``SM_*`` variables of a training job, derived from ``/opt/ml/input/config``.

    SageMaker's framework images compute these in their own entry point (the
    sagemaker-training-toolkit), which a job with our entrypoint does not run;
    the bootstrap (or, on this machine, the local backend) computes them here
    instead, so scripts that read ``SM_MODEL_DIR`` or ``SM_CHANNEL_TRAIN`` work
    in both places. Missing config files give the variables that do not depend
    on them. ``gpus`` is ``SM_NUM_GPUS``; by default the GPUs ``nvidia-smi``
    lists.
    """

    def load(path: str) -> Any:
        try:
            with open(path, encoding="utf-8") as fh:
                return json.load(fh)
        except (OSError, ValueError):
            return None

    resource = load(paths.training_resource_config) or {}
    hyper = load(paths.hyperparameters) or {}
    channels = load(paths.input_data_config) or {}
    input_dir = os.path.dirname(paths.training_config_dir)
    env = {
        "SM_MODEL_DIR": paths.model_dir,
        "SM_OUTPUT_DATA_DIR": paths.output_data_dir,
        "SM_OUTPUT_DIR": os.path.dirname(paths.output_data_dir),
        "SM_INPUT_DIR": input_dir,
        "SM_INPUT_CONFIG_DIR": paths.training_config_dir,
        "SM_CHANNELS": json.dumps(sorted(channels)),
        "SM_HPS": json.dumps(hyper, sort_keys=True),
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "SM_NUM_GPUS": str(_count_gpus() if gpus is None else gpus),
    }
    if resource:
        env["SM_CURRENT_HOST"] = str(resource.get("current_host", ""))
        env["SM_HOSTS"] = json.dumps(list(resource.get("hosts", [])))
        env["SM_NETWORK_INTERFACE_NAME"] = str(resource.get("network_interface_name", "eth0"))
        if resource.get("current_instance_type"):
            env["SM_CURRENT_INSTANCE_TYPE"] = str(resource["current_instance_type"])
        env["SM_RESOURCE_CONFIG"] = json.dumps(resource, sort_keys=True)
    if channels:
        env["SM_INPUT_DATA_CONFIG"] = json.dumps(channels, sort_keys=True)
    for name in channels:
        env["SM_CHANNEL_" + str(name).upper()] = paths.training_channel(str(name))
    for name, value in hyper.items():
        env["SM_HP_" + str(name).upper()] = value if isinstance(value, str) else json.dumps(value)
    return env


def _count_gpus() -> int:
    """GPUs ``nvidia-smi`` lists, 0 where there is none (or no driver)."""
    try:
        listing = subprocess.run(["nvidia-smi", "--list-gpus"], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return 0
    if listing.returncode != 0:
        return 0
    return sum(1 for line in listing.stdout.decode("utf-8", "replace").splitlines() if line.startswith("GPU "))
