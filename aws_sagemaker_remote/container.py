"""Every path inside the SageMaker container, in one place.

SageMaker lays out ``/opt/ml`` the same way in every job; the paths below come
from the Processing and Training container contracts in the SageMaker
developer guide ("Build your own processing container", "How Amazon SageMaker
provides training information"). Nothing else in the package spells ``/opt/ml``.

The root can be moved: :class:`ContainerPaths` takes a ``root`` so the local
backend can keep each emulated instance's files in its own folder. Where the
local backend cannot mount that folder at ``/opt/ml`` (no mount namespaces),
it names it in ``AWS_SAGEMAKER_REMOTE_OPT_ML``, which the bootstrap reads, and
in the toolkit's ``SAGEMAKER_BASE_DIR``.

:func:`training_environment` derives the variables the sagemaker-training
toolkit gives a training script (``SM_*`` and a few others) from the config
files under this layout, with the toolkit's rules; the bootstrap computes
them, in SageMaker jobs and local ones alike.
This module is standard-library only because it ships inside the job.
"""
from __future__ import annotations

import json
import os
import posixpath
import subprocess
from typing import Any, Dict, List, Mapping, Optional

#: The root SageMaker mounts everything under.
OPT_ML = "/opt/ml"
#: Environment variable through which the local backend moves the root.
ROOT_ENV = "AWS_SAGEMAKER_REMOTE_OPT_ML"
#: Set for the script inside a job: it does not read option sources (files, variables) again.
IN_JOB_ENV = "AWS_SAGEMAKER_REMOTE_IN_JOB"
#: Names the warm-pool cache folder of a training job that asked for a warm pool
#: (``ResourceConfig.KeepAlivePeriodInSeconds``): what is kept there survives into the next job
#: that reuses the instance ("Using persistent cache", SageMaker developer guide, "SageMaker AI
#: Managed Warm Pools"). The local backend emulates it for every local job.
WARM_POOL_CACHE_ENV = "SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY"

# Where the code bundle is unpacked inside the job (our own convention).
CODE_CHANNEL = "code"
#: When the script's arguments do not fit in ``ContainerArguments`` (at most 100
#: entries of at most 256 characters each), they travel as a JSON list in this
#: file of the code tree, named by one argument ``ARGUMENT_FILE_FLAG=<path>``.
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


#: Script mode (``--sagemaker-entry=toolkit``): the image's sagemaker-training toolkit unpacks the
#: bundle (``sagemaker_submit_directory``) into ``/opt/ml/code`` and runs this file of its root
#: (``sagemaker_program``), our launcher (:mod:`aws_sagemaker_remote.toolkit_program`).
TOOLKIT_PROGRAM = "aws_sagemaker_remote_entry.py"
#: The hyperparameter that carries the script's exact argument list, as JSON, in script mode.
#: Its ``sagemaker_`` prefix makes it a framework parameter to the toolkit, which then leaves it out
#: of the ``--key value`` arguments it gives the program (and of ``SM_HPS``).
ARGUMENTS_HYPERPARAMETER = "sagemaker_remote_arguments"
#: CreateTrainingJob's limits of one hyperparameter value and of their number.
HYPERPARAMETER_VALUE_MAX = 2500
HYPERPARAMETERS_MAX = 100


def needs_argument_file_in_hyperparameter(arguments: "list[str] | tuple[str, ...]") -> bool:
    """True when ``arguments`` as JSON do not fit in one hyperparameter value (script mode)."""
    return len(json.dumps(list(arguments))) > HYPERPARAMETER_VALUE_MAX


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

    @property
    def warm_pool_cache(self) -> str:
        """The warm-pool cache folder (see :data:`WARM_POOL_CACHE_ENV`); it exists only on a warm pool."""
        return self._join("sagemaker", "warmpoolcache")

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


def warm_pool_cache(environ: Mapping[str, str]) -> Optional[str]:
    """The warm-pool cache folder of the instance this process runs on, resolved to its real path
    (environments built there keep working when it is reached through a link), or None when there
    is none (no warm pool): the folder :data:`WARM_POOL_CACHE_ENV` names, else the layout's."""
    named = environ.get(WARM_POOL_CACHE_ENV) or ContainerPaths(environ.get(ROOT_ENV) or OPT_ML).warm_pool_cache
    return os.path.realpath(named) if os.path.isdir(named) else None


#: Hyperparameters the toolkit keeps for itself (``sagemaker_training.params.SAGEMAKER_HYPERPARAMETERS``):
#: they are neither in ``SM_HPS`` nor in ``SM_FRAMEWORK_PARAMS``.
_TOOLKIT_HYPERPARAMETERS = (
    "sagemaker_program", "sagemaker_submit_directory", "sagemaker_enable_cloudwatch_metrics",
    "sagemaker_region", "sagemaker_container_log_level", "sagemaker_job_name", "default_user_module_name",
    "_tuning_objective_metric", "sagemaker_s3_output",
)
#: Framework parameters that put the current instance group into the distribution.
_DISTRIBUTION_SWITCHES = (
    "sagemaker_mpi_enabled", "sagemaker_parameter_server_enabled", "sagemaker_distributed_dataparallel_enabled",
    "sagemaker_pytorch_ddp_enabled", "sagemaker_pytorch_xla_multi_worker_enabled",
    "sagemaker_multi_worker_mirrored_strategy_enabled", "sagemaker_torch_distributed_enabled",
)
#: ``logging.INFO``, the toolkit's default log level.
_LOG_LEVEL_INFO = 20


def _env_value(value: Any) -> str:
    """A value as the toolkit writes it into an ``SM_*`` variable."""
    if isinstance(value, bytes):
        return value.decode("latin1")
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _cmd_args(hyperparameters: Dict[str, Any]) -> List[str]:
    """``SM_USER_ARGS``: the hyperparameters as ``--key value`` arguments, keys sorted."""
    args: List[str] = []
    for key in sorted(hyperparameters):
        name = str(key)
        args.append(("--" if len(name) > 1 else "-") + name if name else "")
        value = hyperparameters[key]
        if hasattr(value, "items"):
            args.append(",".join(f"{k}={v}" for k, v in sorted(value.items())))
        else:
            args.append("" if value is None else value.decode("latin1") if isinstance(value, bytes) else str(value))
    return args


def _decode_hyperparameters(raw: Dict[str, Any]) -> Dict[str, Any]:
    """Each value JSON-decoded where it is JSON (``"4"`` → 4, ``"[1, 2]"`` → [1, 2]), else kept."""
    decoded = {}
    for key, value in raw.items():
        try:
            value = json.loads(value)
        except (ValueError, TypeError):
            pass
        decoded[key] = value
    return decoded


def _region(framework: Dict[str, Any], environ: Mapping[str, str]) -> Optional[str]:
    """``sagemaker_region``, else the region boto3 would use (``AWS_DEFAULT_REGION``, then the config file)."""
    if "sagemaker_region" in framework:
        return str(framework["sagemaker_region"])
    if environ.get("AWS_DEFAULT_REGION"):
        return environ["AWS_DEFAULT_REGION"]
    import configparser
    profile = environ.get("AWS_PROFILE") or environ.get("AWS_DEFAULT_PROFILE") or "default"
    path = os.path.expanduser(environ.get("AWS_CONFIG_FILE") or "~/.aws/config")
    config = configparser.RawConfigParser()
    try:
        config.read(path, encoding="utf-8")
    except (OSError, configparser.Error):
        return None
    for section in (f"profile {profile}", profile):
        if config.has_option(section, "region"):
            return config.get(section, "region") or None
    return None


def _count_neurons(instance_type: str) -> int:
    """Neuron cores ``neuron-ls -j`` lists (64 on trn2.48xlarge), 0 where there is none."""
    if "trn2.48xlarge" in instance_type:
        return 64
    try:
        listing = subprocess.run(["neuron-ls", "-j"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 timeout=30, check=True)
        return sum(int(item.get("nc_count", 0)) for item in json.loads(listing.stdout.decode("utf-8")))
    except (OSError, subprocess.SubprocessError, ValueError, TypeError, AttributeError):
        return 0


def _installed(program: str) -> bool:
    import shutil
    return shutil.which(program) is not None


def training_environment(paths: ContainerPaths, gpus: Optional[int] = None, entry_point: Optional[str] = None,
                         module_dir: Optional[str] = None,
                         environ: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The variables the sagemaker-training toolkit gives a training script, from ``/opt/ml/input/config``.

    SageMaker's framework images compute these in their own entry point (the
    toolkit's ``Environment().to_env_vars()``, plus ``SAGEMAKER_JOB_NAME``,
    ``CURRENT_HOST`` and ``SAGEMAKER_REGION``), which a job with our
    entrypoint does not run; the bootstrap computes them here instead, with the
    toolkit's rules, in real jobs and local ones alike: hyperparameters
    JSON-decoded, ``sagemaker_*`` ones split off as framework parameters,
    values JSON-encoded compactly with sorted keys.

    Deliberate differences, where the toolkit would not know what we know:
    ``entry_point`` (the script's file name) and ``module_dir`` (its folder)
    fill ``SM_USER_ENTRY_POINT``, ``SM_MODULE_NAME`` and ``SM_MODULE_DIR`` when
    neither ``SAGEMAKER_PROGRAM`` nor the ``sagemaker_program`` /
    ``sagemaker_submit_directory`` hyperparameters say otherwise, and
    ``SAGEMAKER_JOB_NAME`` is ``TRAINING_JOB_NAME`` when there is no
    ``sagemaker_job_name`` hyperparameter. Missing config files give only
    the variables that do not depend on them (the toolkit raises instead).
    ``gpus`` is ``SM_NUM_GPUS``; by default the GPUs ``nvidia-smi`` lists.
    ``environ`` is the job's environment (``os.environ`` by default).
    """
    environ = os.environ if environ is None else environ

    def load(path: str) -> Any:
        try:
            with open(path, encoding="utf-8") as fh:
                return json.load(fh)
        except (OSError, ValueError):
            return None

    resource = load(paths.training_resource_config) or {}
    raw_hyper = load(paths.hyperparameters) or {}
    channels = load(paths.input_data_config) or {}
    input_dir = os.path.dirname(paths.training_config_dir)
    output_dir = os.path.dirname(paths.output_data_dir)
    all_hyper = _decode_hyperparameters(raw_hyper)
    framework = {k: v for k, v in all_hyper.items()
                 if k in _TOOLKIT_HYPERPARAMETERS or str(k).startswith("sagemaker_")}
    hyper = {k: v for k, v in all_hyper.items() if k not in framework}
    additional = {k: v for k, v in framework.items() if k not in _TOOLKIT_HYPERPARAMETERS}

    program = environ.get("SAGEMAKER_PROGRAM") or None
    user_entry_point = program or framework.get("sagemaker_program") or entry_point
    module_name = program if program is not None else (
        str(framework["sagemaker_program"]) if "sagemaker_program" in framework else entry_point)
    if module_name and module_name.endswith(".py"):
        module_name = module_name[:-3]
    code_dir = paths.unpacked_code
    if "sagemaker_submit_directory" in framework:
        module_dir = str(framework["sagemaker_submit_directory"])
    module_dir = module_dir or code_dir
    log_level = framework.get("sagemaker_container_log_level", _LOG_LEVEL_INFO)
    mp_parameters = environ.get("SM_HP_MP_PARAMETERS")

    env: Dict[str, Any] = {
        "model_dir": paths.model_dir,
        "output_data_dir": paths.output_data_dir,
        "output_dir": output_dir,
        "output_intermediate_dir": posixpath.join(output_dir, "intermediate"),
        "input_dir": input_dir,
        "input_config_dir": paths.training_config_dir,
        "channels": sorted(channels),
        "input_data_config": channels,
        "hps": hyper,
        "user_args": _cmd_args(hyper),
        "user_entry_point": user_entry_point,
        "module_name": module_name if module_name is not None else "None",
        "module_dir": module_dir,
        "log_level": log_level,
        "framework_params": additional,
        "framework_module": environ.get("SAGEMAKER_TRAINING_MODULE"),
        "num_cpus": os.cpu_count() or 1,
        "num_gpus": _count_gpus() if gpus is None else gpus,
    }
    extra: Dict[str, str] = {}
    job_name = framework.get("sagemaker_job_name", environ.get("TRAINING_JOB_NAME", ""))
    extra["SAGEMAKER_JOB_NAME"] = _env_value(job_name)
    if resource:
        hosts = list(resource.get("hosts", []))
        current_host = str(resource.get("current_host", ""))
        instance_type = resource.get("current_instance_type", "local")
        group = resource.get("current_group_name", "homogeneousCluster")
        groups_config = resource.get("instance_groups", []) or []
        groups = [g["instance_group_name"] for g in groups_config]
        groups_dict = {g["instance_group_name"]: g for g in groups_config}
        group_hosts: List[Any] = next((g["hosts"] for g in groups_config if g["instance_group_name"] == group), [])
        if "sagemaker_distribution_instance_groups" in additional:
            distribution_groups = additional["sagemaker_distribution_instance_groups"]
        else:
            distribution_groups = [group] if any(additional.get(k, False) for k in _DISTRIBUTION_SWITCHES) else []
        if groups_config:
            distribution_hosts = [h for g in groups_config if g["instance_group_name"] in distribution_groups
                                  for h in g["hosts"]]
        else:
            distribution_hosts = list(hosts)
        master = distribution_hosts[0] if distribution_hosts else (hosts[0] if hosts else "")
        channel_dirs = {str(name): paths.training_channel(str(name)) for name in channels}
        env.update({
            "hosts": hosts,
            "current_host": current_host,
            "current_instance_type": instance_type,
            "current_instance_group": group,
            "current_instance_group_hosts": group_hosts,
            "instance_groups": groups,
            "instance_groups_dict": groups_dict,
            "distribution_instance_groups": distribution_groups,
            "is_hetero": len(groups) > 1,
            "network_interface_name": resource.get("network_interface_name", "eth0"),
            "num_neurons": _count_neurons(str(instance_type)),
            "resource_config": resource,
        })
        topology = resource.get("topology", [])
        if topology:
            env["topology"] = topology
        training_env = {
            "additional_framework_parameters": additional,
            "channel_input_dirs": channel_dirs,
            "current_host": current_host,
            "current_instance_group": group,
            "current_instance_group_hosts": group_hosts,
            "current_instance_type": instance_type,
            "distribution_hosts": distribution_hosts,
            "distribution_instance_groups": distribution_groups,
            "framework_module": env["framework_module"],
            "hosts": hosts,
            "hyperparameters": hyper,
            "input_config_dir": env["input_config_dir"],
            "input_data_config": channels,
            "input_dir": input_dir,
            "instance_groups": groups,
            "instance_groups_dict": groups_dict,
            "is_hetero": len(groups) > 1,
            "is_master": current_host == master,
            "is_modelparallel_enabled": mp_parameters and mp_parameters != "{}",
            "is_smddpmprun_installed": _installed("smddpmprun"),
            "is_smddprun_installed": _installed("smddprun"),
            "job_name": environ.get("TRAINING_JOB_NAME"),
            "log_level": log_level,
            "master_hostname": master,
            "model_dir": paths.model_dir,
            "module_dir": module_dir,
            "module_name": env["module_name"],
            "network_interface_name": env["network_interface_name"],
            "num_cpus": env["num_cpus"],
            "num_gpus": env["num_gpus"],
            "num_neurons": env["num_neurons"],
            "output_data_dir": paths.output_data_dir,
            "output_dir": output_dir,
            "output_intermediate_dir": env["output_intermediate_dir"],
            "resource_config": resource,
            "topology": topology,
            "user_entry_point": user_entry_point,
        }
        env["training_env"] = training_env
        for name, path in channel_dirs.items():
            env["channel_" + name] = path
        extra["CURRENT_HOST"] = current_host
    extra["SAGEMAKER_REGION"] = _env_value(_region(framework, environ) or "")
    for key, value in hyper.items():
        env[f"hp_{key}"] = value
    result = {f"SM_{str(k).upper()}": _env_value(v) for k, v in env.items()}
    result.update(extra)
    return result


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
