"""Where each ``--sagemaker-*`` option comes from: one resolution, highest first.

1. the command line (``--sagemaker-role ...``);
2. the keyword of ``sagemaker_processing_main`` / ``sagemaker_training_main``;
3. an environment variable ``AWS_SAGEMAKER_REMOTE_<FIELD>`` (``AWS_SAGEMAKER_REMOTE_ROLE``,
   ``AWS_SAGEMAKER_REMOTE_INSTANCE_COUNT``, ...);
4. the nearest ``pyproject.toml`` (searched upward from the script's folder) that has a
   ``[tool.aws-sagemaker-remote]`` table; its ``processing`` / ``training`` sub-table
   overrides the common table for that kind of job;
5. the SageMaker Python SDK's defaults files, read as data (the SDK is not imported):
   the administrator's and the user's ``config.yaml`` at the SDK's documented places,
   or where ``SAGEMAKER_ADMIN_CONFIG_OVERRIDE`` / ``SAGEMAKER_USER_CONFIG_OVERRIDE`` point;
   only the keys that mean one of our options are read (:data:`SDK_KEYS`);
6. the built-in defaults of :mod:`aws_sagemaker_remote.options`.

``KEY=VALUE`` options (``env``, ``tags``, ``metric``, ``hyperparameter``) merge key by key
across the sources, the higher source winning for a key. Every other option takes the
value of the highest source that sets it.

Nothing here touches the network. A file that cannot be read or names a key that is not
ours is one :class:`~aws_sagemaker_remote.errors.UsageError` naming the file and the key
(exit code 2). Inside a job (the bootstrap sets :data:`IN_JOB_ENV`) only the command line
and the keywords count: the launching machine resolved everything already, and the job's
image may not be able to read these files.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple, Type

from .container import IN_JOB_ENV
from .errors import UsageError
from .options import OPTIONS_BY_KIND, CommonOptions, alias_flag, canonical_keywords, flag_name
from .quick import pyprojects_naming_us, sdk_config_paths  # the plain run checks the same places

#: Prefix of the environment variables that set option defaults.
ENV_PREFIX = "AWS_SAGEMAKER_REMOTE_"
#: The ``pyproject.toml`` table.
PYPROJECT_TABLE = "aws-sagemaker-remote"
ADMIN_OVERRIDE_ENV = "SAGEMAKER_ADMIN_CONFIG_OVERRIDE"
USER_OVERRIDE_ENV = "SAGEMAKER_USER_CONFIG_OVERRIDE"
SDK_CONFIG_NAME = "config.yaml"

#: Labels of the two sources that are not files.
COMMAND_LINE = "command line"
KEYWORD = "keyword"

#: Option fields of either kind (a common pyproject table may hold training-only keys).
_ALL_FIELDS: Dict[str, "dataclasses.Field[Any]"] = {
    f.name: f for cls in OPTIONS_BY_KIND.values() for f in dataclasses.fields(cls)
}
#: The first project's option names of either kind (alias → field), read like their options.
_ALL_ALIASES: Dict[str, str] = {a: n for cls in OPTIONS_BY_KIND.values() for a, n in cls.aliases.items()}

# --- SDK config.yaml keys -------------------------------------------------------------------
# The SageMaker Python SDK's defaults-file schema (SageMaker.ProcessingJob,
# SageMaker.TrainingJob, SageMaker.PythonSDK.Modules.Session): each leaf maps to
# (option field, value type). IGNORED marks keys the schema defines that are no
# option of ours; a key that the schema does not define is refused, as the SDK does.

IGNORED = "ignored"
_STR, _BOOL, _STRS, _ENV, _TAGS = "string", "boolean", "list of strings", "mapping of strings", "list of Key/Value"
_VPC = {"Subnets": ("subnets", _STRS), "SecurityGroupIds": ("security_groups", _STRS)}
_SESSION = {"DefaultS3Bucket": ("bucket", _STR), "DefaultS3ObjectKeyPrefix": ("prefix", _STR)}

SDK_KEYS: Dict[str, Any] = {
    "SchemaVersion": IGNORED,
    "CustomParameters": IGNORED,
    "SageMaker": {
        "PythonSDK": {"Modules": {
            "Session": _SESSION,
            **{name: IGNORED for name in ("ModelTrainer", "RemoteFunction", "NotebookJob", "Serve",
                                           "TelemetryOptOut")},
        }},
        "ProcessingJob": {
            "RoleArn": ("role", _STR),
            "Environment": ("env", _ENV),
            "Tags": ("tags", _TAGS),
            "NetworkConfig": {
                "EnableInterContainerTrafficEncryption": ("traffic_encryption", _BOOL),
                "EnableNetworkIsolation": ("network_isolation", _BOOL),
                "VpcConfig": _VPC,
            },
            "ProcessingOutputConfig": {"KmsKeyId": ("output_kms_key", _STR)},
            "ProcessingResources": {"ClusterConfig": {"VolumeKmsKeyId": ("volume_kms_key", _STR)}},
            "ProcessingInputs": IGNORED,
        },
        "TrainingJob": {
            "RoleArn": ("role", _STR),
            "Environment": ("env", _ENV),
            "Tags": ("tags", _TAGS),
            "EnableInterContainerTrafficEncryption": ("traffic_encryption", _BOOL),
            "EnableNetworkIsolation": ("network_isolation", _BOOL),
            "VpcConfig": _VPC,
            "OutputDataConfig": {"KmsKeyId": ("output_kms_key", _STR)},
            "ResourceConfig": {"VolumeKmsKeyId": ("volume_kms_key", _STR)},
            "ProfilerConfig": IGNORED,
        },
        **{name: IGNORED for name in ("FeatureGroup", "MonitoringSchedule", "Endpoint", "EndpointConfig",
                                       "AutoMLJob", "AutoMLJobV2", "TransformJob", "CompilationJob",
                                       "Pipeline", "Model", "ModelPackage", "EdgePackagingJob")},
    },
}
#: The section of ``SageMaker`` each job kind reads.
SDK_SECTION = {"processing": "ProcessingJob", "training": "TrainingJob"}


@dataclass(frozen=True)
class Setting:
    """One option's value from one source."""

    field: str
    value: Any
    label: str


@dataclass(frozen=True)
class Resolved:
    """The options every source below the command line gives, and where each came from."""

    options: CommonOptions
    #: field name → label, for every field whose value is not the built-in default
    origins: Tuple[Tuple[str, str], ...]


# --- the chain --------------------------------------------------------------------------------

def resolve(kind: str, script: str, keywords: Mapping[str, Any],
            environ: Optional[Mapping[str, str]] = None) -> Resolved:
    """Resolve every option from the keywords and the sources below them.

    :param script: the script's path; ``pyproject.toml`` is searched upward from its folder.
    :param environ: the environment (default ``os.environ``).
    :raises UsageError: an unknown keyword, a bad value, an unreadable file or a key that is not ours.
    """
    cls = OPTIONS_BY_KIND[kind]
    environ = os.environ if environ is None else environ
    from_keywords = cls.from_keywords(keywords)  # checks names and values, in the keywords' own words
    keywords = canonical_keywords(cls, keywords)  # an alias (training_instance=) is its option (instance=)
    layers: List[List[Setting]] = []  # lowest first
    if not environ.get(IN_JOB_ENV):
        layers.extend(sdk_settings(kind, environ))
        layers.extend(pyproject_settings(kind, os.path.dirname(os.path.abspath(script))))
        layers.append(env_settings(cls, environ))
    # a keyword given as None sets nothing: the sources below it still apply
    layers.append([Setting(name, getattr(from_keywords, name), KEYWORD) for name, value in keywords.items()
                   if value is not None])
    return _merge(cls, layers)


def _merge(cls: Type[CommonOptions], layers: Sequence[Sequence[Setting]]) -> Resolved:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: Dict[str, Any] = {}
    labels: Dict[str, List[str]] = {}
    for layer in layers:
        for s in layer:
            s = dataclasses.replace(s, field=cls.aliases.get(s.field, s.field))
            if s.field not in fields:
                continue  # a training-only key (or name) of a common table, for a processing job
            if fields[s.field].metadata["repeat"]:
                merged = dict(values.get(s.field, ()))
                for key, value in s.value:
                    merged.pop(key, None)
                    merged[key] = value
                values[s.field] = tuple(merged.items())
                if s.value:  # an empty mapping contributes nothing
                    labels.setdefault(s.field, []).insert(0, s.label)
            else:
                values[s.field] = s.value
                labels[s.field] = [s.label]
    options = cls(**values)
    origins = tuple((name, " + ".join(dict.fromkeys(labels[name]))) for name in fields if name in labels)
    return Resolved(options, origins)


def provenance(resolved: Resolved, argv: Sequence[str]) -> Tuple[Tuple[str, str], ...]:
    """``((flag, label), ...)`` for every option that did not come from a built-in default.

    A flag given in ``argv`` is from the command line; a repeatable ``KEY=VALUE`` flag given
    there also keeps the sources it was merged with.
    """
    given = command_line_flags(argv)
    fields = {f.name: f for f in dataclasses.fields(resolved.options)}
    lower = dict(resolved.origins)
    out = []
    for name, f in fields.items():
        flag = flag_name(f)
        label = lower.get(name)
        if flag in given or any(alias_flag(a) in given for a in resolved.options.alias_names(name)):
            label = COMMAND_LINE + (f" + {label}" if label and f.metadata["repeat"] else "")
        if label:
            out.append((flag, label))
    return tuple(out)


def command_line_flags(argv: Sequence[str]) -> FrozenSet[str]:
    """The long flags given in ``argv`` before any ``--`` (the parser refuses abbreviations)."""
    flags = set()
    for token in argv:
        if token == "--":
            break
        if token.startswith("--"):
            flags.add(token.split("=", 1)[0])
    return frozenset(flags)


def _convert(name: str, value: Any, where: str) -> Setting:
    f = _ALL_FIELDS[name]
    try:
        converted = f.metadata["convert"](value)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{where}: {exc}") from None
    return Setting(name, converted, "")


# --- environment variables ----------------------------------------------------------------------

def env_name(field: str) -> str:
    """``instance_count`` → ``AWS_SAGEMAKER_REMOTE_INSTANCE_COUNT``."""
    return ENV_PREFIX + field.upper()


def env_settings(cls: Type[CommonOptions], environ: Mapping[str, str]) -> List[Setting]:
    """One setting per ``AWS_SAGEMAKER_REMOTE_<FIELD>`` variable that is set and not empty.

    Other variables with the prefix (``AWS_SAGEMAKER_REMOTE_HOME``, ...) are not options
    and are left alone. ``KEY=VALUE`` options take a JSON object or comma-separated pairs.
    """
    out = []
    for f in dataclasses.fields(cls):
        # the option's own variable, else one named after an alias (AWS_SAGEMAKER_REMOTE_TRAINING_INSTANCE)
        names = [env_name(f.name)] + [env_name(a) for a in cls.alias_names(f.name)]
        name = next((n for n in names if (environ.get(n) or "").strip()), names[0])
        text = environ.get(name)
        if text is None or text.strip() == "":
            continue
        value: Any = text
        if f.metadata["repeat"]:
            value = _env_pairs(name, text)
        s = _convert(f.name, value, name)
        out.append(dataclasses.replace(s, label=f"env {name}"))
    return out


def _env_pairs(name: str, text: str) -> Any:
    if text.lstrip().startswith("{"):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise UsageError(f"{name}: not a JSON object: {exc}") from None
        if not isinstance(value, dict):
            raise UsageError(f"{name}: expected a JSON object of KEY: VALUE")
        return value
    return [item.strip() for item in text.split(",") if item.strip()]


# --- pyproject.toml ------------------------------------------------------------------------------

def find_pyproject(folder: str) -> Optional[str]:
    """The nearest ``pyproject.toml`` at or above ``folder`` that has our table."""
    for path, _ in pyprojects_naming_us(folder):
        if _table(path) is not None:
            return path
    return None


def _load_toml(path: str) -> Dict[str, Any]:
    try:
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - exercised on Python 3.8-3.10 only
            import tomli as tomllib
    except ImportError:  # pragma: no cover
        raise UsageError(f"{_short(path)}: reading [tool.{PYPROJECT_TABLE}] needs Python 3.11 or "
                         f"'pip install tomli'") from None
    try:
        with open(path, "rb") as fh:
            return dict(tomllib.load(fh))
    except (OSError, ValueError) as exc:  # TOMLDecodeError is a ValueError
        raise UsageError(f"{_short(path)}: not valid TOML: {exc}") from None


def _table(path: str) -> Optional[Dict[str, Any]]:
    table = _load_toml(path).get("tool", {})
    if not isinstance(table, dict) or PYPROJECT_TABLE not in table:
        return None
    ours = table[PYPROJECT_TABLE]
    if not isinstance(ours, dict):
        raise UsageError(f"{_short(path)}: tool.{PYPROJECT_TABLE} must be a table")
    return ours


def pyproject_settings(kind: str, folder: str) -> List[List[Setting]]:
    """The common table, then the table of ``kind`` (each a layer, lowest first)."""
    path = find_pyproject(folder)
    if path is None:
        return []
    table = _table(path) or {}
    common: Dict[str, Any] = {}
    by_kind: Dict[str, Dict[str, Any]] = {}
    for key, value in table.items():
        if key in OPTIONS_BY_KIND:
            if not isinstance(value, dict):
                raise UsageError(f"{_short(path)}: tool.{PYPROJECT_TABLE}.{key} must be a table")
            by_kind[key] = value
        else:
            common[key] = value
    # every table is checked, also the other kind's: a typo is found on the first run
    layers = {}
    for sub, entries in (("", common), *sorted(by_kind.items())):
        allowed = _ALL_FIELDS if not sub else {f.name for f in dataclasses.fields(OPTIONS_BY_KIND[sub])}
        where = f"tool.{PYPROJECT_TABLE}" + (f".{sub}" if sub else "")
        label = f"{_short(path)} [{where}]"
        settings = []
        aliases = _ALL_ALIASES if not sub else OPTIONS_BY_KIND[sub].aliases
        for key, value in entries.items():
            written = key.replace("-", "_")
            name = aliases.get(written, written)
            if name not in allowed:
                allowed_names = ", ".join(sorted(allowed)) + ("" if sub else ", processing, training")
                raise UsageError(f"{_short(path)}: unknown key {where}.{key}; allowed: {allowed_names}")
            s = _convert(name, value, f"{_short(path)}: {where}.{key}")
            # an alias keeps its name here: each kind reads it as its own option, or not at all
            settings.append(dataclasses.replace(s, field=written if written in aliases else name, label=label))
        layers[sub] = settings
    return [layers[""], layers.get(kind, [])]


# --- the SageMaker SDK's config.yaml -------------------------------------------------------------

def sdk_settings(kind: str, environ: Mapping[str, str]) -> List[List[Setting]]:
    """The settings of the admin file, then of the user file (each a layer, lowest first)."""
    layers = []
    for path, variable, required in sdk_config_paths(environ):
        if path.startswith("s3://"):
            # the SDK would download it; resolving options never touches the network
            raise UsageError(f"{variable}: {path} is in S3; options are resolved without the network: "
                             f"copy the file to this machine and point {variable} at it")
        if os.path.isdir(path):
            path = os.path.join(path, SDK_CONFIG_NAME)  # the SDK accepts a folder, too
        if not os.path.exists(path):
            if required:
                raise UsageError(f"{variable}: no file {path}")
            continue
        layers.append(read_sdk_config(path, kind))
    return layers


def read_sdk_config(path: str, kind: str) -> List[Setting]:
    """The settings one SDK ``config.yaml`` gives a job of ``kind``."""
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML is a dependency
        raise UsageError(f"{_short(path)}: reading it needs PyYAML (pip install pyyaml)") from None
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UsageError(f"{_short(path)}: not a readable YAML file: {' '.join(str(exc).split())}") from None
    if data is None:
        return []
    if not isinstance(data, dict):
        raise UsageError(f"{_short(path)}: expected a mapping with SchemaVersion and SageMaker")
    if data.get("SchemaVersion") != "1.0":
        raise UsageError(f"{_short(path)}: SchemaVersion must be '1.0' (the SDK's defaults-file format)")
    found: List[Tuple[str, str, Any]] = []
    _walk(path, data, SDK_KEYS, (), found)
    section = SDK_SECTION[kind]
    out = []
    for dotted, name, value in found:
        parts = dotted.split(".")
        if parts[1] in SDK_SECTION.values() and parts[1] != section:
            continue
        s = _convert(name, value, f"{_short(path)}: {dotted}")
        out.append(dataclasses.replace(s, label=f"{_short(path)} {dotted}"))
    return out


def _walk(path: str, data: Any, spec: Any, at: Tuple[str, ...], found: List[Tuple[str, str, Any]]) -> None:
    dotted = ".".join(at)
    if spec == IGNORED:
        return
    if isinstance(spec, dict):
        if not isinstance(data, dict):
            raise UsageError(f"{_short(path)}: {dotted} must be a mapping")
        for key, value in data.items():
            if key not in spec:
                raise UsageError(f"{_short(path)}: unknown key {'.'.join(at + (str(key),))}; "
                                 f"allowed: {', '.join(spec)}")
            _walk(path, value, spec[key], at + (key,), found)
        return
    name, kind = spec
    found.append((dotted, name, _sdk_value(path, dotted, data, kind)))


def _sdk_value(path: str, dotted: str, value: Any, kind: str) -> Any:
    ok = {
        _STR: isinstance(value, str),
        _BOOL: isinstance(value, bool),
        _STRS: isinstance(value, list) and all(isinstance(v, str) for v in value),
        _ENV: isinstance(value, dict) and all(isinstance(v, str) for v in value.values()),
        _TAGS: isinstance(value, list) and all(isinstance(t, dict) and set(t) == {"Key", "Value"}
                                               and all(isinstance(v, str) for v in t.values()) for t in value),
    }[kind]
    if not ok:
        raise UsageError(f"{_short(path)}: {dotted} must be a {kind}")
    if kind == _TAGS:
        return [(t["Key"], t["Value"]) for t in value]
    return value


def _short(path: str) -> str:
    """``~/...`` for paths in the home folder, otherwise the absolute path."""
    path = os.path.abspath(path)
    home = os.path.expanduser("~")
    if home not in ("", "/") and path.startswith(home.rstrip(os.sep) + os.sep):
        return "~" + path[len(home.rstrip(os.sep)):]
    return path
