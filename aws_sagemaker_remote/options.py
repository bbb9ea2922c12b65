"""Job options: one frozen dataclass per job kind, the single source of defaults.

Each field is declared once, with its flag name, help text and parser; the same
declaration gives

* the keyword of :func:`~aws_sagemaker_remote.sagemaker_processing_main` /
  :func:`~aws_sagemaker_remote.sagemaker_training_main` (the field name),
* the ``--sagemaker-*`` flag (``metadata["flag"]``), whose default is the keyword's value,
* the row of the generated flag reference in the docs,
* the row of ``_option_table.py``, which a plain local run reads instead of this module
  (``python -m aws_sagemaker_remote.quick`` rewrites it after a change here; until then a
  plain run takes the full path and ``tests/test_quick.py`` fails).

Why not argparse-dataclass: the classes below are imported inside the job,
where only the standard library is guaranteed, and several flags need argparse
features it cannot express (``--sagemaker-wait=no`` and a bare ``--sagemaker-spot``
on one flag, repeatable ``KEY=VALUE`` flags merged with keyword dicts).
Standard library only: this module ships inside the job.
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, Callable, ClassVar, Dict, Mapping, Optional, Tuple, Type, TypeVar

from .args import INPUT_MODES, parse_bool, parse_run
from .container import DEFAULT as PATHS
from .errors import UsageError

# defined beside the plain run's other parsers (see quick.py), which reads keywords with them too
from .values import _csv, _int, _opt_int, _opt_str, _text, pairs, parse_pair

T = TypeVar("T", bound="CommonOptions")

DEFAULT_PREFIX = "aws-sagemaker-remote"
DEFAULT_INSTANCE = "ml.m4.xlarge"  # seeds 000/001: default instance type
DEFAULT_MAX_RUN = 86400  # seeds 000/001: one day
#: Framework image shorthand (resolved with the optional ``sagemaker`` SDK); see docs/options.
DEFAULT_IMAGE = "sklearn:1.2-1"
DEFAULT_PROCESSING_VOLUME = 30  # seed 000
DEFAULT_TRAINING_VOLUME = 1  # seed 001
#: ``ResourceConfig.KeepAlivePeriodInSeconds`` and ``RetryStrategy.MaximumRetryAttempts`` at most
#: (botocore's SageMaker service model; 0 here means the field is left out)
KEEP_ALIVE_MAX = 21600
RETRIES_MAX = 30


# --- value parsers (keyword values and command-line strings) ------------------

#: ``--sagemaker-store`` values.
STORE_CHOICES = ("auto", "local", "s3")


def _checkpoint(value: Any) -> Optional[str]:
    """``--sagemaker-checkpoint-s3``: an ``s3://`` URI, ``default``, or ``none`` (no checkpoint sync)."""
    text = _opt_str(value)
    return None if text is None or text.strip().lower() == "none" else text


def _store_choice(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in STORE_CHOICES:
        raise ValueError(f"expected one of {', '.join(STORE_CHOICES)}, got {value!r}")
    return text


#: ``--sagemaker-entry`` values: how a training job starts (see docs/training.rst, "Script mode").
ENTRY_CHOICES = ("bootstrap", "toolkit")


def _entry_choice(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in ENTRY_CHOICES:
        raise ValueError(f"expected one of {', '.join(ENTRY_CHOICES)}, got {value!r}")
    return text


def _input_mode(value: Any) -> str:
    text = str(value)
    for mode in INPUT_MODES:
        if text.lower() == mode.lower():
            return mode
    raise ValueError(f"expected one of {', '.join(INPUT_MODES)}, got {value!r}")


# --- declaration helper --------------------------------------------------------

def option(
    default: Any,
    help: str,
    *,
    convert: Callable[[Any], Any] = _opt_str,
    metavar: Optional[str] = None,
    boolean: bool = False,
    repeat: bool = False,
    flag: Optional[str] = None,
    unset: str = "none",
    const: Any = None,
) -> Any:
    """Declare an option field.

    :param convert: parses a keyword value or one command-line string.
    :param boolean: the flag takes an optional yes/no value (a bare flag means yes).
    :param repeat: the flag may be given several times; each occurrence adds one
        ``convert``-ed item to the keyword's items.
    :param unset: what the help shows as the default when the value is ``None``.
    :param const: the value of the bare flag (its value becomes optional), as ``--sagemaker-run``
        alone means ``yes``.
    """
    return field(
        default=default,
        metadata={
            "help": help,
            "convert": convert,
            "metavar": metavar,
            "boolean": boolean,
            "repeat": repeat,
            "flag": flag,
            "unset": unset,
            "const": const,
        },
    )


def flag_name(f: "dataclasses.Field[Any]") -> str:
    """The command-line flag of an option field."""
    return f.metadata.get("flag") or "--sagemaker-" + f.name.replace("_", "-")


def alias_flag(alias: str) -> str:
    """The command-line flag of an alias keyword: ``training_instance`` → ``--sagemaker-training-instance``."""
    return "--sagemaker-" + alias.replace("_", "-")


def takes_optional_value(f: "dataclasses.Field[Any]") -> bool:
    """Whether the flag may be given without a value (yes/no flags, and ``--sagemaker-run``)."""
    return bool(f.metadata["boolean"] or f.metadata.get("const") is not None)


def dest_name(f: "dataclasses.Field[Any]") -> str:
    """The attribute name of an option field in the parsed namespace."""
    return "sagemaker_" + f.name


@dataclass(frozen=True)
class CommonOptions:
    """Options shared by Processing and Training jobs."""

    #: keyword and flag names of the first aws-sagemaker-remote that mean one of these options
    #: (alias → field); accepted everywhere the option is, hidden from ``--help``
    aliases: ClassVar[Mapping[str, str]] = {"runtime_seconds": "max_run"}

    run: str = option("no", "Where to run: no (call main here), yes (launch a SageMaker job) or local "
                      "(run the job's container command on this machine, no Docker, no AWS). "
                      "Also accepts true/false/1/0; the bare flag means yes.", convert=parse_run,
                      metavar="{no,yes,local}", const="yes")
    wait: bool = option(True, "Follow the job's status and logs until it ends.", convert=parse_bool, boolean=True)
    detach: bool = option(False, "Do not wait, and leave the job running on Ctrl-C.", convert=parse_bool, boolean=True)
    dry_run: bool = option(False, "Print the job request and the upload plan as JSON; create and upload nothing.",
                           convert=parse_bool, boolean=True)
    output_json: Optional[str] = option(None, "Write the job's result (job name, status, output URIs) to this JSON file.",
                                        metavar="FILE")
    profile: Optional[str] = option(None, "AWS profile for credentials and region.", metavar="NAME")
    region: Optional[str] = option(None, "AWS region.", metavar="REGION", unset="the profile's region or AWS_DEFAULT_REGION")
    endpoint_url: Optional[str] = option(None, "SageMaker endpoint URL, for example a VPC endpoint "
                                         "(S3 and logs use AWS_ENDPOINT_URL or their defaults).", metavar="URL")
    role: Optional[str] = option(None, "IAM role (ARN or role name) that SageMaker assumes to run the job. "
                                 "Required to launch on SageMaker.", metavar="ROLE")
    assume_role: Optional[str] = option(None, "ARN of an IAM role to assume before calling AWS.", metavar="ARN")
    image: str = option(DEFAULT_IMAGE, "Container image URI, or a framework shorthand NAME:VERSION "
                        "resolved with the sagemaker SDK (pip install aws-sagemaker-remote[sdk]).", convert=_text, metavar="URI")
    instance: str = option(DEFAULT_INSTANCE, "Instance type.", convert=_text, metavar="TYPE")
    instance_count: int = option(1, "Number of instances.", convert=_int, metavar="N")
    volume_size: int = option(DEFAULT_PROCESSING_VOLUME, "Size of each instance's storage volume in GB.",
                              convert=_int, metavar="GB")
    max_run: int = option(DEFAULT_MAX_RUN, "Maximum run time in seconds.", convert=_int, metavar="SECONDS")
    job_name: Optional[str] = option(None, "Job name.", unset="the base job name, a UTC timestamp and a random suffix",
                                     metavar="NAME")
    base_job_name: Optional[str] = option(None, "Prefix of generated job names.", unset="the script's name",
                                          metavar="NAME")
    requirements: Optional[str] = option(None, "What the job installs before the script runs: a requirements file, "
                                         "a pyproject.toml[EXTRA,...], a pylock.toml or uv.lock, or 'freeze' (pins "
                                         "the installed versions of what the script imports).", metavar="FILE")
    configuration_script: Optional[str] = option(None, "Bash script sourced inside the job before the script runs "
                                                 "(what it exports reaches the script).", metavar="FILE")
    configuration_command: Optional[str] = option(None, "Bash command run inside the job before the script runs, "
                                                  "in the same shell as the configuration script.", metavar="COMMAND")
    env: Tuple[Tuple[str, str], ...] = option((), "Environment variable for the job, KEY=VALUE (repeatable).",
                                              convert=pairs, repeat=True, metavar="KEY=VALUE")
    tags: Tuple[Tuple[str, str], ...] = option((), "Tag for the job, KEY=VALUE (repeatable).", convert=pairs,
                                               repeat=True, metavar="KEY=VALUE")
    volume_kms_key: Optional[str] = option(None, "KMS key that encrypts the instances' storage volumes.", metavar="KEY")
    output_kms_key: Optional[str] = option(None, "KMS key that encrypts the job's outputs in S3.", metavar="KEY")
    subnets: Tuple[str, ...] = option((), "VPC subnet IDs, comma-separated.", convert=_csv, metavar="IDS")
    security_groups: Tuple[str, ...] = option((), "VPC security group IDs, comma-separated.", convert=_csv,
                                              metavar="IDS")
    network_isolation: bool = option(False, "Run the container without network access "
                                     "(requirements cannot be installed then).", convert=parse_bool, boolean=True)
    traffic_encryption: bool = option(False, "Encrypt traffic between the job's instances.", convert=parse_bool,
                                      boolean=True)
    bucket: Optional[str] = option(None, "S3 bucket for code, inputs and outputs (created if missing).",
                                   metavar="BUCKET", unset="sagemaker-REGION-ACCOUNT")
    prefix: str = option(DEFAULT_PREFIX, "Key prefix in the bucket.", convert=_text, metavar="PREFIX")
    store: str = option("auto", "Where a local job (--sagemaker-run=local) keeps its files: local (a folder "
                        "standing in for S3, no AWS), s3 (S3 through the configured credentials), or auto "
                        "(S3 when the job names s3:// locations and AWS is configured, else local). "
                        "A SageMaker job always uses S3.", convert=_store_choice, metavar="{auto,local,s3}")
    download_outputs: bool = option(False, "After the job completes, download each output into its local path.",
                                    convert=parse_bool, boolean=True)
    entry: str = option("bootstrap", "How a training job starts: bootstrap (the framework's own entrypoint, any "
                        "image with Python 3) or toolkit (script mode of a framework image: its sagemaker-training "
                        "toolkit fetches the code and runs it; training jobs only).", convert=_entry_choice,
                        metavar="{bootstrap,toolkit}")
    export_ack: Optional[str] = option(None, "Stage the job to S3 and write the ACK SageMaker controller's "
                                       "ProcessingJob/TrainingJob resource to this YAML file instead of creating "
                                       "the job.", metavar="FILE")
    export_kfp: Optional[str] = option(None, "Stage the job to S3 and write a Kubeflow Pipelines component that "
                                       "runs it to this YAML file instead of creating the job (needs kfp).",
                                       metavar="FILE")

    # ------------------------------------------------------------------
    @classmethod
    def from_keywords(cls: Type[T], keywords: Mapping[str, Any]) -> T:
        """Build options from function keywords, converting each value like its flag would.

        Unknown keywords and values a flag would refuse raise :class:`UsageError`.
        """
        known = {f.name: f for f in fields(cls)}
        given = dict(keywords)
        keywords = canonical_keywords(cls, keywords)
        unknown = sorted(set(keywords) - set(known))
        if unknown:
            raise UsageError(
                f"unknown keyword{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(known))}"
            )
        values: Dict[str, Any] = {}
        for name, value in keywords.items():
            f = known[name]
            try:
                values[name] = f.metadata["convert"](value)
            except (TypeError, ValueError) as exc:
                said = next((a for a, n in cls.aliases.items() if n == name and a in given), name)
                raise UsageError(f"{exc}", flag=f"{said}= (keyword)") from None
        return cls(**values)

    @classmethod
    def option_fields(cls) -> Tuple["dataclasses.Field[Any]", ...]:
        return fields(cls)

    def add_arguments(self, group: Any) -> None:
        """Add one ``--sagemaker-*`` flag per field to an argparse parser or group.

        The flag's default is this instance's value, so keywords set defaults and the
        command line overrides them.
        """
        for f in fields(self):
            md = f.metadata
            default = getattr(self, f.name)
            shown = md["unset"] if default is None else _show_default(default)
            text = f"{md['help']} (default: {shown})"
            kwargs: Dict[str, Any] = {
                "dest": dest_name(f),
                "help": text.replace("%", "%%"),
                "metavar": md["metavar"],
            }
            convert = _for_argparse(md["convert"], flag_name(f))
            if md["boolean"]:
                kwargs.update(nargs="?", const=True, type=convert, default=default, metavar="{yes,no}")
            elif md.get("const") is not None:
                kwargs.update(nargs="?", const=md["const"], type=convert, default=default)
            elif md["repeat"]:
                kwargs.update(action=_ExtendPairs, type=_for_argparse(parse_pair, flag_name(f)), default=default)
            else:
                kwargs.update(type=convert, default=default)
            group.add_argument(flag_name(f), **kwargs)
            for alias in self.alias_names(f.name):
                # the same flag under the first project's name: hidden, and with no default of its
                # own, so the option's default stands unless the alias is given
                hidden = dict(kwargs, help=argparse.SUPPRESS, default=argparse.SUPPRESS)
                if "type" in hidden:
                    hidden["type"] = _for_argparse(md["convert"], alias_flag(alias))
                action = group.add_argument(alias_flag(alias), **hidden)
                action.alias_of = flag_name(f)  # flags.py skips it when checking for shadowed attributes

    @classmethod
    def alias_names(cls, name: str) -> Tuple[str, ...]:
        """The aliases of option field ``name``."""
        return tuple(a for a, n in cls.aliases.items() if n == name)

    @classmethod
    def from_namespace(cls: Type[T], namespace: argparse.Namespace) -> T:
        """Read the parsed ``--sagemaker-*`` values back into an options instance."""
        return cls(**{f.name: getattr(namespace, dest_name(f)) for f in fields(cls)})


@dataclass(frozen=True)
class ProcessingOptions(CommonOptions):
    """Options of a Processing job (see :func:`~aws_sagemaker_remote.sagemaker_processing_main`)."""


@dataclass(frozen=True)
class TrainingOptions(CommonOptions):
    """Options of a Training job (see :func:`~aws_sagemaker_remote.sagemaker_training_main`)."""

    aliases: ClassVar[Mapping[str, str]] = {
        **CommonOptions.aliases,
        "training_instance": "instance",
        "training_image": "image",
        "training_role": "role",
        "spot_instances": "spot",
    }

    volume_size: int = option(DEFAULT_TRAINING_VOLUME, "Size of each instance's storage volume in GB.",
                              convert=_int, metavar="GB")
    algorithm_name: Optional[str] = option(None, "SageMaker algorithm resource to run instead of an image.",
                                           metavar="NAME")
    input_mode: str = option("File", "Default input mode of the channels: File, Pipe or FastFile.",
                             convert=_input_mode, metavar="{File,Pipe,FastFile}")
    metric: Tuple[Tuple[str, str], ...] = option((), "Metric definition NAME=REGEX (repeatable); the regex's "
                                                 "first group is the value.", convert=pairs, repeat=True,
                                                 metavar="NAME=REGEX")
    hyperparameter: Tuple[Tuple[str, str], ...] = option((), "Extra hyperparameter KEY=VALUE recorded on the job "
                                                         "(repeatable).", convert=pairs, repeat=True,
                                                         metavar="KEY=VALUE")
    output_s3: str = option("default", "Model artifact path (OutputDataConfig.S3OutputPath): an s3:// URI, "
                            "or 'default' for s3://BUCKET/PREFIX/jobs.", convert=_text, metavar="URI")
    spot: bool = option(False, "Use managed spot training (keep a checkpoint location so an interrupted "
                        "job resumes).", convert=parse_bool,
                        boolean=True)
    max_wait: Optional[int] = option(None, "Maximum seconds to wait for spot capacity and run "
                                     "(at least --sagemaker-max-run).", convert=_opt_int, metavar="SECONDS",
                                     unset="the max run time")
    checkpoint_s3: Optional[str] = option("default", f"S3 URI that {PATHS.checkpoints} is synced with, 'default' "
                                          "for s3://BUCKET/PREFIX/checkpoints/BASE-JOB-NAME-SCRIPTDIGEST (shared "
                                          "by every run of the script, so a run resumes from the last one's "
                                          "checkpoints), or 'none' for no checkpoint sync.",
                                          convert=_checkpoint, metavar="URI")
    fresh: bool = option(False, "Start without earlier runs' checkpoints: empty the checkpoint location "
                         "before the job starts (the job's own checkpoints are kept there for the next run).",
                         convert=parse_bool, boolean=True)
    download_model: Optional[str] = option(None, "After completion, download model.tar.gz and unpack it here.",
                                           metavar="DIR")
    keep_alive: int = option(0, "Keep the instances warm for SECONDS after the job ends, so that a relaunch with "
                             "the same instances, role and network starts on them (a managed warm pool, "
                             "billed while it waits; end it early with `aws-sagemaker-remote stop-pool JOB`); "
                             f"0 to {KEEP_ALIVE_MAX}, 0 is off.", convert=_int, metavar="SECONDS")
    retries: int = option(0, "Retry the job up to N times when it fails with a SageMaker internal error "
                          f"(RetryStrategy; 0 to {RETRIES_MAX}, 0 is off). A failure of the script is not retried.",
                          convert=_int, metavar="N")
    infra_check: bool = option(False, "Run SageMaker's health check of the instances' hardware and network "
                               "before the script (InfraCheckConfig).", convert=parse_bool, boolean=True)
    session_chaining: bool = option(False, "Pass the session tags of the role that creates the job on to the "
                                    "job's role (SessionChainingConfig.EnableSessionTagChaining).",
                                    convert=parse_bool, boolean=True)
    remote_debug: bool = option(False, "Let `aws-sagemaker-remote shell JOB` open a shell in the running job "
                                "through AWS Systems Manager (RemoteDebugConfig; the role needs the ssmmessages "
                                "permissions).", convert=parse_bool, boolean=True)


def canonical_keywords(cls: Type[CommonOptions], keywords: Mapping[str, Any]) -> Dict[str, Any]:
    """``keywords`` with each alias (``training_instance``) renamed to its option (``instance``).

    :raises UsageError: an option given under two names.
    """
    out: Dict[str, Any] = {}
    for name, value in keywords.items():
        target = cls.aliases.get(name, name)
        if target in out:
            names = sorted(n for n in keywords if cls.aliases.get(n, n) == target)
            raise UsageError(f"{' and '.join(names)} are one option; give one of them", flag=f"{target}= (keyword)")
        out[target] = value
    return out


def _show_default(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        if not value:
            return "none"
        if isinstance(value[0], tuple):
            return " ".join(f"{k}={v}" for k, v in value)
        return ",".join(value)
    return "none" if value is None else str(value)


def _for_argparse(convert: Callable[[Any], Any], flag: str) -> Callable[[str], Any]:
    """Wrap a converter so argparse reports its message (argparse hides a bare ValueError's text)."""

    def parse(text: str) -> Any:
        try:
            return convert(text)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = flag
    return parse


class _ExtendPairs(argparse.Action):
    """Append one ``KEY=VALUE`` pair to the keyword's pairs; a later key replaces an earlier one."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: Optional[str] = None) -> None:
        current = dict(getattr(namespace, self.dest) or ())
        key, value = values
        current.pop(key, None)
        current[key] = value
        setattr(namespace, self.dest, tuple(current.items()))


OPTIONS_BY_KIND: Dict[str, Type[CommonOptions]] = {
    "processing": ProcessingOptions,
    "training": TrainingOptions,
}

