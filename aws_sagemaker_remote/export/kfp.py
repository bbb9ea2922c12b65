"""A Kubeflow Pipelines v2 component that runs a staged job from a pipeline pod.

``--sagemaker-export-kfp FILE.yaml`` stages the job like a launch, then writes
a component (compiled with the ``kfp`` package, the optional ``kfp`` extra)
whose container runs this package::

    python3 -m aws_sagemaker_remote rerun JOB_NAME --from-kfp RECORD OPTIONS...

The component's inputs are the runtime arguments of the SageMaker Processing /
Training components for Kubeflow Pipelines (same names; see
:data:`PROCESSING_ARGUMENTS` and :data:`TRAINING_ARGUMENTS`) plus one input per
declared input of the script (its S3 URI) and, for processing, one per
declared output (``NAME_s3``, its S3 destination). Every input defaults to the
value the job was staged with, so the component with no arguments runs the
staged job again. Its outputs are ``job_name`` and ``output_artifacts``
(processing, plus one string output per declared output, so one step's output
can feed the next step's input), or ``job_name``, ``model_artifact_url`` and
``training_image`` (training).

**The contract of** ``rerun --from-kfp``, what the component's command line means:

``JOB_NAME``
    the staged job's name (shown in the pipeline UI; the job run gets a new name).
``--from-kfp RECORD``
    the JSON text of :func:`job_record`: ``{"format": "aws_sagemaker_remote.kfp/1",
    "kind": "processing"|"training", "base_job_name": ..., "request": {...}}``, where
    ``request`` is the rendered ``CreateProcessingJob`` / ``CreateTrainingJob`` request.
    The staged code bundle and inputs it names are reused as they are: nothing is uploaded.
``--ARGUMENT VALUE``
    one per runtime argument, the argument's name with ``-`` for ``_`` (``--instance-type``).
    Values are text as Kubeflow passes them: integers in decimal, booleans ``true``/``false``,
    dicts as JSON, comma-separated lists for the VPC arguments. An empty string means
    "none" for the optional ones (``endpoint_url``, ``assume_role``, encryption keys, VPC)
    and "generate one" for ``job_name``.
``--input NAME URI`` / ``--output NAME URI``
    the S3 URI of a declared input, the S3 destination of a declared (processing) output.
``--write OUTPUT PATH``
    after the job ends, write the component output ``OUTPUT`` to ``PATH`` (Kubeflow's
    output parameter file): ``job_name``, ``output_artifacts`` (JSON), each declared
    output's URI (processing), ``model_artifact_url``, ``training_image`` (training).

``rerun`` then: parses this with :func:`parse_invocation`; builds the request with
:func:`request_for_run` (pure: the record's request with the overrides applied and a new
job name); creates the job with the session from ``region`` / ``endpoint_url`` /
``assume_role`` (the pod's credentials otherwise); follows its status and logs to the end;
stops the SageMaker job when the pod is terminated (SIGTERM) or interrupted; writes the
outputs named by ``--write`` from the final description with :func:`output_values`; and
exits 0 when the job completed, 1 when it failed or was stopped, 2 for bad arguments
(nothing created).
"""
from __future__ import annotations

import argparse
import copy
import datetime as _dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
)

from .._version import __version__
from ..errors import UsageError
from ..plan import make_job_name

if TYPE_CHECKING:  # pragma: no cover
    from ..kinds.base import JobKind
    from ..spec import StagedJob

FLAG = "--sagemaker-export-kfp"
NEEDS_KFP = "needs the kfp package: pip install 'aws-sagemaker-remote[kfp]'"
RECORD_FORMAT = "aws_sagemaker_remote.kfp/1"
#: The image the component's container starts from when none is given; the package is
#: installed into it with pip when the step starts (like Kubeflow's lightweight components).
DEFAULT_COMPONENT_IMAGE = "python:3.11-slim"
DEFAULT_INSTALL = f"aws-sagemaker-remote=={__version__}"
#: Kubeflow replaces ``{{$.`` sequences in a container's arguments with values.
_PLACEHOLDER = "{{$"


@dataclass(frozen=True)
class Argument:
    """One component input: its name, Kubeflow type, description and how ``rerun`` reads it."""

    name: str
    type: str  # String | Integer | Boolean | Dict
    description: str

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")


#: The runtime arguments of the Kubeflow Pipelines SageMaker Processing component.
PROCESSING_ARGUMENTS: Tuple[Argument, ...] = (
    Argument("region", "String", "The region where the job runs."),
    Argument("endpoint_url", "String", "The SageMaker endpoint URL (for example a private link); empty: default."),
    Argument("assume_role", "String", "The ARN of an IAM role to assume before calling SageMaker; empty: none."),
    Argument("job_name", "String", "The job's name; empty: BASE-YYYYmmdd-HHMMSS-xxxx."),
    Argument("role", "String", "The ARN of the role SageMaker assumes to run the job."),
    Argument("image", "String", "The image the job runs in."),
    Argument("instance_type", "String", "The ML compute instance type."),
    Argument("instance_count", "Integer", "The number of instances."),
    Argument("volume_size", "Integer", "The size of each instance's storage volume in GB."),
    Argument("max_run_time", "Integer", "The maximum run time in seconds."),
    Argument("resource_encryption_key", "String", "The KMS key for the instances' storage volumes; empty: none."),
    Argument("output_encryption_key", "String", "The KMS key for the outputs; empty: none."),
    Argument("network_isolation", "Boolean", "Isolates the job's container from the network."),
    Argument("traffic_encryption", "Boolean", "Encrypts traffic between the job's instances."),
    Argument("vpc_subnets", "String", "Comma-separated subnet IDs; empty: no VPC."),
    Argument("vpc_security_group_ids", "String", "Comma-separated security group IDs; empty: no VPC."),
    Argument("environment", "Dict", "Environment variables of the job's container."),
    Argument("tags", "Dict", "Tags of the job."),
)
#: The Training component's arguments: the same, then spot training, checkpoints, metrics
#: and the model's S3 location.
TRAINING_ARGUMENTS: Tuple[Argument, ...] = PROCESSING_ARGUMENTS + (
    Argument("spot_instance", "Boolean", "Uses managed spot training."),
    Argument("max_wait_time", "Integer", "The maximum seconds to wait for spot capacity and run (spot only)."),
    Argument("checkpoint_config", "Dict", 'Where checkpoints are synced: {"S3Uri": ..., "LocalPath": ...}; '
                                          "{}: none."),
    Argument("metric_definitions", "Dict", "Metric name to the regular expression that finds it in the logs."),
    Argument("model_artifact_path", "String", "The S3 location SageMaker writes the model archive under."),
)
ARGUMENTS = {"processing": PROCESSING_ARGUMENTS, "training": TRAINING_ARGUMENTS}
#: Fixed outputs of the component, by job kind.
OUTPUTS = {
    "processing": (("job_name", "String", "The job's name."),
                   ("output_artifacts", "Dict", "Output name to the S3 URI it was uploaded to.")),
    "training": (("job_name", "String", "The job's name."),
                 ("model_artifact_url", "String", "The S3 URI of model.tar.gz."),
                 ("training_image", "String", "The image the job ran in.")),
}


# --------------------------------------------------------------------------------------
# Reading a request: what the component's inputs default to
# --------------------------------------------------------------------------------------

def _at(request: Mapping[str, Any], path: Tuple[str, ...]) -> Mapping[str, Any]:
    """The member of ``request`` at ``path`` (``()``: the request), empty when absent."""
    found: Mapping[str, Any] = request
    for key in path:
        found = found.get(key, {})
    return found


def current_values(request: Mapping[str, Any], kind: str, region: str) -> Dict[str, Any]:
    """The runtime arguments as ``request`` sets them (the component's defaults)."""
    job_kind = _kind(kind)
    resources = _at(request, job_kind.resources_path)
    network = _at(request, job_kind.network_path)
    vpc = network.get("VpcConfig", {})
    values: Dict[str, Any] = {
        "region": region,
        "endpoint_url": "",
        "assume_role": "",
        "job_name": "",
        "role": request["RoleArn"],
        "image": _at(request, job_kind.image_path[:-1]).get(job_kind.image_path[-1], ""),
        "instance_type": resources["InstanceType"],
        "instance_count": resources["InstanceCount"],
        "volume_size": resources["VolumeSizeInGB"],
        "max_run_time": request["StoppingCondition"]["MaxRuntimeInSeconds"],
        "resource_encryption_key": resources.get("VolumeKmsKeyId", ""),
        "output_encryption_key": request.get(job_kind.output_config_key, {}).get("KmsKeyId", ""),
        "network_isolation": bool(network.get("EnableNetworkIsolation", False)),
        "traffic_encryption": bool(network.get("EnableInterContainerTrafficEncryption", False)),
        "vpc_subnets": ",".join(vpc.get("Subnets", [])),
        "vpc_security_group_ids": ",".join(vpc.get("SecurityGroupIds", [])),
        "environment": dict(request.get("Environment", {})),
        "tags": {t["Key"]: t["Value"] for t in request.get("Tags", [])},
    }
    values.update(job_kind.kfp_values(request))
    return values


def _kind(kind: str) -> "JobKind":
    from ..kinds import job_kind

    return job_kind(kind)


def _inputs_of(request: Mapping[str, Any], kind: str) -> Dict[str, str]:
    """Declared input name → S3 URI (the code channel is the framework's, not an input)."""
    return {name: source["S3Uri"] for name, source in _kind(kind).request_inputs(request).items()}


def _outputs_of(request: Mapping[str, Any], kind: str) -> Dict[str, str]:
    """Declared output name → S3 destination (processing; training outputs go into output.tar.gz)."""
    return {name: output["S3Uri"] for name, output in _kind(kind).request_outputs(request).items()}


def parameter_name(name: str) -> str:
    """A declared name as a component parameter name: other characters than letters, digits, ``_`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


# --------------------------------------------------------------------------------------
# The record and the component
# --------------------------------------------------------------------------------------

def job_record(request: Mapping[str, Any], kind: str, base_job_name: str) -> Dict[str, Any]:
    """What the component carries of the staged job: enough for ``rerun`` with no other state."""
    return {"format": RECORD_FORMAT, "kind": kind, "base_job_name": base_job_name, "request": dict(request)}


@dataclass(frozen=True)
class ComponentInterface:
    """The component's inputs (name, type, default, description) and outputs, in order."""

    inputs: Tuple[Tuple[str, str, Any, str], ...]
    outputs: Tuple[Tuple[str, str, str], ...]
    #: component input name → ("input"|"output", declared name) for the script's own inputs/outputs
    declared: Mapping[str, Tuple[str, str]] = field(default_factory=dict)


def component_interface(request: Mapping[str, Any], kind: str, region: str) -> ComponentInterface:
    """Inputs and outputs of the component for ``request``.

    :raises UsageError: a declared input or output name clashes with a runtime argument.
    """
    defaults = current_values(request, kind, region)
    inputs: List[Tuple[str, str, Any, str]] = [(a.name, a.type, defaults[a.name], a.description)
                                               for a in ARGUMENTS[kind]]
    outputs: List[Tuple[str, str, str]] = list(OUTPUTS[kind])
    declared: Dict[str, Tuple[str, str]] = {}
    taken = {name for name, *_ in inputs} | {name for name, *_ in outputs}

    def claim(name: str, what: str) -> None:
        if name in taken:
            raise UsageError(f"the script's {what} becomes the component parameter {name!r}, which is "
                             "already a runtime argument or output; rename it to export", flag=FLAG)
        taken.add(name)

    for name, uri in _inputs_of(request, kind).items():
        param = parameter_name(name)
        claim(param, f"input {name!r}")
        inputs.append((param, "String", uri, f"S3 URI of the input {name!r}."))
        declared[param] = ("input", name)
    for name, uri in _outputs_of(request, kind).items():
        param = parameter_name(name) + "_s3"
        claim(param, f"output {name!r}")
        inputs.append((param, "String", uri, f"S3 destination of the output {name!r}."))
        declared[param] = ("output", name)
        out_param = parameter_name(name)
        claim(out_param, f"output {name!r}")
        outputs.append((out_param, "String", f"S3 URI of the output {name!r}."))
    return ComponentInterface(inputs=tuple(inputs), outputs=tuple(outputs), declared=declared)


def component_command(request: Mapping[str, Any], kind: str, base_job_name: str,
                      interface: ComponentInterface) -> List[Any]:
    """The ``rerun --from-kfp`` arguments with Kubeflow placeholders for the inputs and outputs.

    Needs ``kfp`` (the placeholders are its objects).
    """
    from kfp.dsl import placeholders as ph  # type: ignore[import-untyped]

    record = json.dumps(job_record(request, kind, base_job_name), sort_keys=True, separators=(",", ":"))
    if _PLACEHOLDER in record:
        raise UsageError(f"the job's request contains {_PLACEHOLDER!r}, which Kubeflow would replace; "
                         "it cannot be exported", flag=FLAG)
    name = request[_kind(kind).name_key]
    args: List[Any] = ["rerun", name, "--from-kfp", record]
    for argument in ARGUMENTS[kind]:
        args += [argument.option, ph.InputValuePlaceholder(argument.name)]
    for param, (what, declared_name) in interface.declared.items():
        args += ["--" + what, declared_name, ph.InputValuePlaceholder(param)]
    for out_name, _, _ in interface.outputs:
        args += ["--write", out_name, ph.OutputParameterPlaceholder(out_name)]
    return args


def kfp_component_spec(request: Mapping[str, Any], kind: str, *, region: str, base_job_name: str,
                       component_image: str = DEFAULT_COMPONENT_IMAGE,
                       install: Optional[str] = DEFAULT_INSTALL, name: Optional[str] = None) -> Any:
    """The ``kfp.dsl.structures.ComponentSpec`` of the component (``kfp`` imported here).

    :param component_image: the image of the pipeline step's container.
    :param install: a pip requirement installed into it when the step starts (``None``: the
        image already has this package).
    :raises UsageError: ``kfp`` is not installed, or see :func:`component_interface`.
    """
    try:
        from kfp.dsl import structures
    except ImportError as exc:
        raise UsageError(NEEDS_KFP, flag=FLAG) from exc

    interface = component_interface(request, kind, region)
    if install:
        # "$0" is the requirement, "$@" the rerun arguments: no quoting of either is needed
        script = ('python3 -m pip install --quiet --no-warn-script-location "$0" '
                  '&& exec python3 -m aws_sagemaker_remote "$@"')
        command = ["sh", "-ec", script, install]
    else:
        command = ["python3", "-m", "aws_sagemaker_remote"]
    label = kind.capitalize()
    return structures.ComponentSpec(
        name=name or f"{base_job_name}-{kind}",
        description=f"Runs the SageMaker {label} job {base_job_name} staged by aws_sagemaker_remote, "
                    "with these inputs as overrides; waits for it and stops it if the step is terminated.",
        inputs={n: structures.InputSpec(type=t, default=d, optional=True, description=text)
                for n, t, d, text in interface.inputs},
        outputs={n: structures.OutputSpec(type=t, description=text) for n, t, text in interface.outputs},
        implementation=structures.Implementation(container=structures.ContainerSpecImplementation(
            image=component_image, command=command,
            args=component_command(request, kind, base_job_name, interface))),
    )


def write_kfp_component(path: str, staged: "StagedJob", request: Mapping[str, Any], *, region: str,
                        **options: Any) -> str:
    """Compile the component for ``staged`` (rendered as ``request``) to ``path``; return the YAML.

    ``region`` is where the job runs (the target's region: it is not part of the request).

    ``options`` go to :func:`kfp_component_spec` (``component_image``, ``install``, ``name``).
    The component is built before the file is written, so a refusal leaves no file.
    """
    spec = kfp_component_spec(request, staged.spec.kind.name, region=region,
                              base_job_name=staged.spec.base_job_name or staged.spec.job_name, **options)
    target = Path(path)
    spec.save_to_component_yaml(str(target))
    return target.read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------
# The rerun side: reading the command line, building the request, writing the outputs
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Invocation:
    """``rerun JOB_NAME --from-kfp RECORD ...`` parsed."""

    job_name: str
    record: Mapping[str, Any]
    #: runtime argument name → value (typed: int, bool, dict, str)
    values: Mapping[str, Any]
    inputs: Mapping[str, str]
    outputs: Mapping[str, str]
    #: component output name → file to write it to
    writes: Mapping[str, str]

    @property
    def kind(self) -> str:
        return str(self.record["kind"])


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _dict(text: str) -> Dict[str, Any]:
    value = json.loads(text) if text.strip() else {}
    if not isinstance(value, dict):
        raise ValueError(f"not a JSON object: {text!r}")  # noqa: TRY004  # reported as a bad value, like the others
    return value


def _int(text: str) -> int:
    # Kubeflow may render integers as 3 or 3.0
    number = float(text)
    if number != int(number):
        raise ValueError(f"not an integer: {text!r}")
    return int(number)


_CONVERT: Dict[str, Callable[[str], Any]] = {"String": str, "Integer": _int, "Boolean": _bool, "Dict": _dict}


def parse_invocation(argv: Sequence[str]) -> Invocation:
    """Parse the arguments after ``rerun`` (``JOB_NAME --from-kfp RECORD ...``).

    :raises UsageError: one line naming the bad option.
    """
    parser = argparse.ArgumentParser(prog="aws-sagemaker-remote rerun", add_help=False)
    parser.add_argument("job_name")
    parser.add_argument("--from-kfp", dest="record", required=True)
    for argument in TRAINING_ARGUMENTS:
        parser.add_argument(argument.option, dest=argument.name)
    parser.add_argument("--input", nargs=2, action="append", default=[], metavar=("NAME", "URI"))
    parser.add_argument("--output", nargs=2, action="append", default=[], metavar=("NAME", "URI"))
    parser.add_argument("--write", nargs=2, action="append", default=[], metavar=("OUTPUT", "PATH"))

    def refuse(message: str) -> None:
        raise UsageError(message, flag="rerun")

    parser.error = refuse  # type: ignore[method-assign,assignment]
    ns = parser.parse_args(list(argv))
    try:
        record = json.loads(ns.record)
    except ValueError as exc:
        raise UsageError(f"the record is not JSON: {exc}", flag="--from-kfp") from exc
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT or record.get("kind") not in ARGUMENTS:
        raise UsageError(f"not a {RECORD_FORMAT} record", flag="--from-kfp")
    values: Dict[str, Any] = {}
    for argument in ARGUMENTS[record["kind"]]:
        text = getattr(ns, argument.name)
        if text is None:
            continue
        try:
            values[argument.name] = _CONVERT[argument.type](text)
        except ValueError as exc:
            raise UsageError(f"{exc}", flag=argument.option) from exc
    request = record.get("request")
    if not isinstance(request, dict):
        raise UsageError(f"not a {RECORD_FORMAT} record", flag="--from-kfp")
    known = {name for name, _, _ in OUTPUTS[record["kind"]]}
    known |= {parameter_name(name) for name in _outputs_of(request, record["kind"])}
    for name, _ in ns.write:
        if name not in known:
            raise UsageError(f"the component has no output {name!r} (it has {', '.join(sorted(known))})",
                             flag="--write")
    return Invocation(job_name=ns.job_name, record=record, values=values, inputs=dict(ns.input),
                      outputs=dict(ns.output), writes=dict(ns.write))


def in_recorded_order(values: Mapping[str, Any], recorded: Sequence[str]) -> List[Tuple[str, str]]:
    """``values`` as pairs, names the record has first in its order: Kubeflow hands dicts over with
    sorted keys, and an unchanged list should stay the recorded list."""
    rank = {name: i for i, name in enumerate(recorded)}
    names = sorted(values, key=lambda n: (rank.get(n, len(rank)), n))
    return [(str(n), str(values[n])) for n in names]


def set_or_drop(target: Dict[str, Any], key: str, value: Any) -> None:
    if value in ("", None, False, {}, []):
        target.pop(key, None)
    else:
        target[key] = value


def request_for_run(invocation: Invocation, *, now: _dt.datetime, token: str) -> Dict[str, Any]:
    """The recorded request with the invocation's values applied and a job name for this run.

    Pure. ``region``, ``endpoint_url`` and ``assume_role`` are not part of the request: the
    caller builds its session from them.

    :raises UsageError: an ``--input`` / ``--output`` names nothing the job declared.
    """
    kind = invocation.kind
    job_kind = _kind(kind)
    request: Dict[str, Any] = copy.deepcopy(dict(invocation.record["request"]))
    v = invocation.values
    base = str(invocation.record.get("base_job_name") or request[job_kind.name_key])
    request[job_kind.name_key] = v.get("job_name") or make_job_name(base, now, token)
    if "role" in v:
        request["RoleArn"] = v["role"]
    if v.get("image"):
        _member(request, job_kind.image_path[:-1])[job_kind.image_path[-1]] = v["image"]
    resources = _member(request, job_kind.resources_path)
    for name, key in (("instance_type", "InstanceType"), ("instance_count", "InstanceCount"),
                      ("volume_size", "VolumeSizeInGB")):
        if name in v:
            resources[key] = v[name]
    if "resource_encryption_key" in v:
        set_or_drop(resources, "VolumeKmsKeyId", v["resource_encryption_key"])
    stopping = request["StoppingCondition"]
    if "max_run_time" in v:
        stopping["MaxRuntimeInSeconds"] = v["max_run_time"]
    if "output_encryption_key" in v and job_kind.output_config_key in request:
        set_or_drop(request[job_kind.output_config_key], "KmsKeyId", v["output_encryption_key"])
    network = _member(request, job_kind.network_path)
    if "network_isolation" in v:
        set_or_drop(network, "EnableNetworkIsolation", v["network_isolation"])
    if "traffic_encryption" in v:
        set_or_drop(network, "EnableInterContainerTrafficEncryption", v["traffic_encryption"])
    if "vpc_subnets" in v or "vpc_security_group_ids" in v:
        old = network.get("VpcConfig", {})
        subnets = [s for s in v.get("vpc_subnets", ",".join(old.get("Subnets", []))).split(",") if s]
        groups = [g for g in v.get("vpc_security_group_ids",
                                   ",".join(old.get("SecurityGroupIds", []))).split(",") if g]
        set_or_drop(network, "VpcConfig", {"SecurityGroupIds": groups, "Subnets": subnets}
                    if subnets and groups else None)
    if job_kind.network_path and not network:
        request.pop(job_kind.network_path[0], None)  # an empty NetworkConfig is no network config
    if "environment" in v:
        set_or_drop(request, "Environment", {str(k): str(x) for k, x in v["environment"].items()})
    if "tags" in v:
        recorded_tags = [t["Key"] for t in request.get("Tags", [])]
        set_or_drop(request, "Tags", [{"Key": k, "Value": x}
                                      for k, x in in_recorded_order(v["tags"], recorded_tags)])
    job_kind.apply_kfp_values(request, v)
    _apply_locations(request, job_kind, invocation)
    return request


def _member(request: Dict[str, Any], path: Tuple[str, ...]) -> Dict[str, Any]:
    """The member of ``request`` at ``path``, created empty where missing, to edit in place."""
    found = request
    for key in path:
        found = found.setdefault(key, {})
    return found


def _apply_locations(request: Dict[str, Any], job_kind: "JobKind", invocation: Invocation) -> None:
    inputs = job_kind.request_inputs(request)
    outputs = job_kind.request_outputs(request)
    for what, given, known in (("--input", invocation.inputs, inputs), ("--output", invocation.outputs, outputs)):
        for name, uri in given.items():
            if name not in known:
                raise UsageError(f"the job declares no {what[2:]} {name!r}", flag=what)
            if not uri.startswith("s3://"):
                raise UsageError(f"{name}: {uri!r} is not an s3:// URI", flag=what)
            known[name]["S3Uri"] = uri


def output_values(kind: str, description: Mapping[str, Any]) -> Dict[str, str]:
    """The component's outputs as text (what ``--write`` writes) from the finished job's
    ``DescribeProcessingJob`` / ``DescribeTrainingJob`` response."""
    return _kind(kind).kfp_outputs(description)


def write_outputs(invocation: Invocation, description: Mapping[str, Any]) -> None:
    """Write each ``--write OUTPUT PATH`` of ``invocation`` from the job's final description."""
    values = output_values(invocation.kind, description)
    for name, path in invocation.writes.items():
        if name not in values:
            raise UsageError(f"the component has no output {name!r}", flag="--write")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(values[name], encoding="utf-8")
