"""Step 2 of the data flow: parsed flags → a frozen :class:`~aws_sagemaker_remote.spec.JobSpec`.

Pure: no network, no clock and no randomness of its own (both are passed in).
Every limit of the CreateProcessingJob / CreateTrainingJob API reference that
the user's input can break is checked here, so a bad value fails with exit
code 2 before anything is uploaded or created; the limits that differ by job
kind are the kind's (:mod:`aws_sagemaker_remote.kinds`). Limits follow the botocore
service model (``sagemaker/2017-07-24``) and the SageMaker API reference; where
they differ from the older numbers in the Kubeflow component documents, the
API wins (docs/reference.rst lists them).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import posixpath
import re
import sys
from dataclasses import fields
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from .args import IN_JOB, is_s3_uri
from .checks import (
    dependency_path,
    inside,
    input_value,
    local_abs,
    output_location,
    outputs_outside_inputs,
)
from .bundle import input_files
from .container import DEFAULT as PATHS
from .errors import UsageError
from .flags import Declaration, PathDecl
from .kinds import JobKind
from .options import CommonOptions, dest_name
from .reinvoke import job_arguments
from .spec import (
    AwsSettings,
    CodeSpec,
    InputChannel,
    JobSpec,
    Location,
    Network,
    OutputChannel,
    Resources,
    RunControl,
    Stopping,
)

# --- limits (botocore sagemaker service model / API reference) ---------------------
JOB_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
JOB_NAME_MAX = 63
ENV_KEY_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
VPC_ID_RE = re.compile(r"^[-0-9a-zA-Z]{1,32}$")
KMS_RE = re.compile(r"^[a-zA-Z0-9:/_-]{1,2048}$")
ROLE_ARN_RE = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")
ROLE_NAME_RE = re.compile(r"^(?:role/)?(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}$")  # a name, with its IAM path
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
INSTANCE_RE = re.compile(r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")
TAG_SPECIALS = set("_.:/=+-@ ")

#: SageMaker allows 50 tags on a job; the launcher adds two of its own (the tag that lets
#: ``aws-sagemaker-remote list`` find the job, and the launch token)
TAGS_MAX = 48
TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
METRICS_MAX = 40
S3_URI_MAX = 1024
#: length of ``-YYYYmmdd-HHMMSS-xxxx``
NAME_SUFFIX_LEN = 21


# --- job names ------------------------------------------------------------------------

def sanitize_base_name(name: str) -> str:
    """Make any text a valid job-name stem: invalid characters become ``-``."""
    cleaned = re.sub(r"[^a-zA-Z0-9-]", "-", name).strip("-")
    cleaned = re.sub(r"-{2,}", "-", cleaned)
    return cleaned or "job"


def make_job_name(base: str, now: _dt.datetime, token: str) -> str:
    """``<base>-YYYYmmdd-HHMMSS-<token>``, always matching SageMaker's job-name pattern."""
    stem = sanitize_base_name(base)[: JOB_NAME_MAX - NAME_SUFFIX_LEN].rstrip("-") or "job"
    token = re.sub(r"[^a-zA-Z0-9]", "", token)[:4] or "0000"
    return f"{stem}-{now.strftime('%Y%m%d-%H%M%S')}-{token}"


def check_job_name(name: str, flag: str = "--sagemaker-job-name") -> str:
    if not JOB_NAME_RE.match(name):
        raise UsageError(f"{name!r} is not a valid job name: 1-63 letters, digits and hyphens, "
                         f"starting and ending with a letter or digit", flag=flag)
    return name


# --- planning ---------------------------------------------------------------------------



def plan_job(
    decl: Declaration,
    namespace: argparse.Namespace,
    options: CommonOptions,
    user_argv: Sequence[str],
    *,
    now: _dt.datetime,
    token: str,
) -> JobSpec:
    """Turn the parsed command line into a complete :class:`JobSpec`, checking every limit.

    :param user_argv: the user's own tokens of the command line
        (:func:`~aws_sagemaker_remote.reinvoke.user_arguments`), kept as typed in the job.
    :param now: UTC time used in generated job names.
    :param token: a short random string used in generated job names.
    :raises UsageError: naming the flag at fault.
    """
    kind = decl.kind
    limits = kind.limits
    script_dir = os.path.dirname(decl.script)
    base = options.base_job_name or os.path.splitext(os.path.basename(decl.script))[0]
    job_name = check_job_name(options.job_name) if options.job_name else make_job_name(base, now, token)

    # each part returns its channels plus (flag, value in the job) pairs and the local paths
    # that live beside the script and so must stay out of the code bundle
    used: Dict[str, str] = {PATHS.processing_code: "the code bundle"}
    inputs, mapped, excludes = _plan_inputs(decl, namespace, options, script_dir, used)
    outputs, out_mapped, out_excludes = _plan_outputs(decl, namespace, script_dir, used, job_name)
    _check_outputs_outside_inputs(inputs, outputs)
    dir_mapped, dir_excludes = _plan_training_dirs(decl, namespace, script_dir)
    deps, dep_mapped = _plan_dependencies(decl, namespace)
    mapped += out_mapped + dir_mapped + dep_mapped
    code = CodeSpec(
        script=decl.script,
        script_dir=script_dir,
        dependencies=tuple(deps),
        configuration_script=_existing_file(options.configuration_script, "--sagemaker-configuration-script"),
        configuration_command=options.configuration_command or None,
        exclude_paths=tuple(sorted(set(excludes + out_excludes + dir_excludes))),
    )
    code = plan_requirements(options.requirements, code)

    arguments = job_arguments(IN_JOB, user_argv, mapped)
    _check_options(options, limits)
    environment = _check_env(options.env, limits)
    tags = _check_tags(options.tags)

    training = kind.plan_part(decl, namespace, options, dict(mapped), sanitize_base_name(base))
    # spot training waits for capacity: at most max_wait, by default as long as it may run
    max_wait = (getattr(options, "max_wait", None) or options.max_run) if training and training.spot else None
    return JobSpec(
        kind=kind,
        job_name=job_name,
        code=code,
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        arguments=arguments,
        resources=Resources(instance_type=options.instance, count=options.instance_count,
                            volume_gb=options.volume_size, volume_kms=options.volume_kms_key),
        stopping=Stopping(max_run=options.max_run, max_wait=max_wait),
        network=Network(subnets=options.subnets, security_groups=options.security_groups,
                        isolation=options.network_isolation, traffic_encryption=options.traffic_encryption),
        environment=environment,
        tags=tags,
        output_kms=options.output_kms_key,
        training=training,
        base_job_name=sanitize_base_name(base),
    )


def plan_control(options: CommonOptions, sources: Sequence[Tuple[str, str]] = ()) -> RunControl:
    """The launch-time controls and AWS settings of a checked ``options`` (see :func:`plan_job`).

    An export (``--sagemaker-export-ack`` / ``--sagemaker-export-kfp``) stages for SageMaker
    whatever ``--sagemaker-run`` says, except ``local``, which it refuses.
    """
    exports = [(flag, path) for flag, path in (("--sagemaker-export-ack", options.export_ack),
                                               ("--sagemaker-export-kfp", options.export_kfp)) if path]
    if exports and options.run == "local":
        raise UsageError("writes a job for SageMaker; it cannot be combined with --sagemaker-run=local",
                         flag=exports[0][0])
    return RunControl(
        run="yes" if exports else options.run,
        wait=options.wait,
        detach=options.detach,
        dry_run=options.dry_run,
        output_json=os.path.abspath(options.output_json) if options.output_json else None,
        download_outputs=options.download_outputs,
        download_model=_abspath(getattr(options, "download_model", None)),
        export_ack=_abspath(options.export_ack),
        export_kfp=_abspath(options.export_kfp),
        store=options.store,
        sources=tuple(sources),
        aws=AwsSettings(profile=options.profile, region=options.region, endpoint_url=options.endpoint_url,
                        assume_role=options.assume_role, role=options.role, bucket=options.bucket,
                        prefix=options.prefix.strip("/"), image=options.image),
    )


def _abspath(path: Optional[str]) -> Optional[str]:
    return os.path.abspath(path) if path else None


def default_output(job_name: str, output: str) -> Location:
    """``s3://BUCKET/PREFIX/jobs/JOB/output/NAME``."""
    return Location(key=("jobs", job_name, "output", output))


def default_checkpoint(base_job_name: str, script: str) -> Location:
    """Shared by every run of one script with one base job name, so the next run resumes from the
    last checkpoint; the digest of the script's path keeps two projects' ``train.py`` apart."""
    digest = hashlib.sha256(os.path.abspath(script).encode("utf-8")).hexdigest()[:8]
    return Location(key=("checkpoints", f"{base_job_name}-{digest}"))


Mapped = List[Tuple[str, str]]


def _plan_inputs(decl: Declaration, namespace: argparse.Namespace, options: CommonOptions, script_dir: str,
                 used: Dict[str, str]) -> Tuple[List[InputChannel], Mapped, List[str]]:
    kind = decl.kind
    inputs: List[InputChannel] = []
    mapped: Mapped = []
    excludes: List[str] = []
    default_mode = getattr(options, "input_mode", None)  # training's --sagemaker-input-mode
    for d in decl.inputs:
        given = input_value(d.name, d.flag, d.arg.optional, getattr(namespace, d.dest, None))
        if given is None:
            continue
        value = given
        if kind.channel_name_re is not None and not kind.channel_name_re.match(d.name):
            raise UsageError(f"channel name {d.name!r}: 1-64 letters, digits, '.', '-' or '_'", flag=d.flag)
        container = _decided_path(kind, kind.input_path(PATHS, d.name, d.arg.container_path), d)
        if is_s3_uri(value):
            source = value
            container_value = container
        else:
            source = local_abs(value)
            if not input_files(source, warn=_warn):
                # SageMaker fails a job whose input prefix holds no object
                raise UsageError(f"input folder {value!r} holds no files to upload", flag=d.flag)
            # one file arrives under its own name; a manifest's objects arrive in the folder
            single = os.path.isfile(source) and d.arg.s3_data_type == "S3Prefix"
            container_value = container + "/" + os.path.basename(source) if single else container
            if inside(source, script_dir):
                excludes.append(source)
        if d.default and not is_s3_uri(d.default) and inside(local_abs(d.default), script_dir):
            # the declared folder stays out of the code bundle even when the flag points elsewhere
            excludes.append(local_abs(d.default))
        mode = d.arg.mode or default_mode or "File"
        if mode not in kind.input_modes:
            raise UsageError(f"{kind.name} inputs support mode {' or '.join(kind.input_modes)}, not {mode}",
                             flag=d.flag)
        if mode == "FastFile" and d.arg.s3_data_type != "S3Prefix":
            # SageMaker refuses the pair: FastFile streams only S3Prefix channels
            raise UsageError(f"mode FastFile needs s3_data_type='S3Prefix', not {d.arg.s3_data_type!r}; use File or "
                             "Pipe" + ("" if d.arg.mode else " (FastFile comes from --sagemaker-input-mode)"),
                             flag=d.flag)
        if d.arg.s3_data_type not in kind.s3_data_types:
            # ProcessingS3Input's S3DataType takes S3Prefix or ManifestFile, and it has no AttributeNames
            raise UsageError(f"{kind.name} inputs take s3_data_type {' or '.join(kind.s3_data_types)}, not "
                             f"{d.arg.s3_data_type} (augmented manifests and their attributes are training "
                             f"channels only)", flag=d.flag)
        if d.arg.compression == "Gzip" and mode != "Pipe":
            raise UsageError("Gzip-compressed inputs need mode='Pipe' (SageMaker decompresses only streams)",
                             flag=d.flag)
        _check_container_path(kind, container, d.flag, kind.input_path(PATHS, "", None), used)
        code = kind.code_dir(PATHS)
        if code.startswith(container.rstrip("/") + "/") and not is_s3_uri(value) \
                and os.path.exists(os.path.join(source, posixpath.relpath(code, container))):
            raise UsageError(f"input folder {value!r} has a {posixpath.relpath(code, container)!r} entry, which "
                             f"would land in the job's code folder {code}; allowed: another container_path "
                             f"or a folder without it", flag=d.flag)
        inputs.append(InputChannel(
            name=d.name, source=source, flag=d.flag, container_path=container, container_value=container_value,
            mode=mode, s3_data_type=d.arg.s3_data_type, distribution=d.arg.distribution,
            compression=d.arg.compression, content_type=d.arg.content_type, record_wrapper=d.arg.record_wrapper,
            attributes=tuple(d.arg.attributes or ()),
        ))
        mapped.append((d.flag, container_value))
    most = kind.limits["inputs"] - 1  # the code bundle takes one
    if len(inputs) > most:
        raise UsageError(f"{len(inputs)} inputs: a {kind.name} job takes at most {most} besides the code bundle",
                         flag="inputs")
    return inputs, mapped, excludes


def _plan_outputs(decl: Declaration, namespace: argparse.Namespace, script_dir: str,
                  used: Dict[str, str], job_name: str) -> Tuple[List[OutputChannel], Mapped, List[str]]:
    kind = decl.kind
    outputs: List[OutputChannel] = []
    mapped: Mapped = []
    excludes: List[str] = []
    for d in decl.outputs:
        local = getattr(namespace, d.dest, None)
        remote = output_location(namespace, d.remote_dest, d.remote_flag)
        container = _decided_path(kind, kind.output_path(PATHS, d.name, d.arg.container_path), d)
        _check_container_path(kind, container, d.flag, kind.output_path(PATHS, "", None), used)
        if local:
            local = local_abs(str(local))
            if inside(local, script_dir):
                excludes.append(local)
        if d.default and inside(local_abs(d.default), script_dir):
            excludes.append(local_abs(d.default))
        location = Location(uri=remote) if remote != "default" else default_output(job_name, d.name)
        outputs.append(OutputChannel(name=d.name, flag=d.flag, local_path=local, location=location,
                                     container_path=container, upload_mode=d.arg.upload_mode))
        mapped.append((d.flag, container))
        if kind.outputs_have_locations:
            # SageMaker uploads the folder; the script in the job must not upload it itself
            mapped.append((d.remote_flag, "default"))
    most = kind.limits["outputs"]
    if len(outputs) > most:
        raise UsageError(f"{len(outputs)} outputs: a {kind.name} job takes at most {most}", flag="outputs")
    return outputs, mapped, excludes


def _plan_training_dirs(decl: Declaration, namespace: argparse.Namespace,
                        script_dir: str) -> Tuple[Mapped, List[str]]:
    targets = {key: target for key, _, target, _ in decl.kind.folders}
    mapped: Mapped = []
    excludes: List[str] = []
    for key, _default in decl.training_dirs:
        local = getattr(namespace, decl.dir_dest(key), None)
        if local and inside(local_abs(str(local)), script_dir):
            excludes.append(local_abs(str(local)))
        mapped.append((decl.dir_flag(key), targets[key]))
    return mapped, excludes


def _plan_dependencies(decl: Declaration, namespace: argparse.Namespace) -> Tuple[List[Tuple[str, str]], Mapped]:
    """(import name, local path) of each dependency; two with one import name would shadow each other."""
    deps: List[Tuple[str, str]] = []
    mapped: Mapped = []
    seen_modules: Dict[str, str] = {}
    for d in decl.dependencies:
        path = str(dependency_path(d.name, d.flag, getattr(namespace, d.dest, None)))
        module = os.path.basename(path.rstrip(os.sep))
        if module in seen_modules:
            raise UsageError(f"dependencies {seen_modules[module]!r} and {d.name!r} are both named {module!r} "
                             f"on PYTHONPATH", flag=d.flag)
        seen_modules[module] = d.name
        deps.append((module, path))
        mapped.append((d.flag, PATHS.unpacked_code + "/deps/" + module))
    return deps, mapped


def script_hyperparameters(namespace: argparse.Namespace, options: CommonOptions, decl: Declaration,
                           mapped: Mapping[str, str]) -> List[Tuple[str, str]]:
    """The script's parsed arguments as strings, paths as the job sees them, for the console.

    Display only: the job gets its real argument list from ``ContainerArguments``.
    """
    skip = {dest_name(f) for f in fields(options)}
    flag_of = {d.dest: d.flag for d in decl.path_decls()}
    flag_of.update({decl.dir_dest(key): decl.dir_flag(key) for key, _ in decl.training_dirs})
    out: List[Tuple[str, str]] = []
    for dest, value in sorted(vars(namespace).items()):
        if dest in skip:
            continue
        if dest in flag_of:
            value = mapped.get(flag_of[dest], value)
        if value is None:
            continue
        out.append((dest, value if isinstance(value, str) else json.dumps(value, default=str)))
    return out


# --- checks -------------------------------------------------------------------------------

def _check_container_path(kind: JobKind, path: str, flag: str, root: str, used: Dict[str, str]) -> None:
    """A LocalPath the user may choose (processing) must lie under the kind's folder and not be shared."""
    folder = kind.checked_root(PATHS)
    if folder is None:
        return
    if not path.startswith(folder + "/") or path.rstrip("/") == folder:
        raise UsageError(f"container path {path!r} must be a folder under {folder}/", flag=flag)
    code = kind.code_dir(PATHS)
    for other, owner in used.items():
        if other == code and path.rstrip("/") == root.rstrip("/"):
            # /opt/ml/processing/input itself holds the code bundle's folder, as in SageMaker's own
            # examples (the SDK puts its code in /opt/ml/processing/input/code too)
            continue
        if path == other or path.startswith(other.rstrip("/") + "/") or other.startswith(path.rstrip("/") + "/"):
            raise UsageError(f"container path {path!r} overlaps {owner} ({other})", flag=flag)
    used[path] = flag


def _decided_path(kind: JobKind, container: str, d: PathDecl) -> str:
    """A ``container_path`` the job kind does not let the user choose (training: SageMaker decides
    where channels and outputs go) is accepted when it names that place, refused otherwise."""
    declared = d.arg.container_path
    if declared and declared.rstrip("/") != container.rstrip("/"):
        raise UsageError(f"container_path {declared!r}: a {kind.name} job puts {d.name!r} at {container}; "
                         f"allowed: that path or none", flag=d.flag)
    return container


def plan_requirements(value: Optional[str], code: CodeSpec) -> CodeSpec:
    """``code`` with the requirements ``--sagemaker-requirements`` names (see :mod:`.requirements`)
    and the package indexes of this machine's pip/uv configuration (only when there are requirements).

    :raises UsageError: naming the flag and what it accepts.
    """
    if not value:
        return code
    from dataclasses import replace

    from . import requirements

    if value.strip().lower() == requirements.FREEZE:
        from .bundle import bundle_entries

        notes: List[str] = []
        entries = bundle_entries(code)
        python_files = [(arc, full) for arc, full in entries
                        if arc.startswith(("script/", "deps/")) and arc.endswith(".py")]
        resolved = requirements.freeze(python_files, requirements.own_modules(arc for arc, _ in entries), notes)
        pins = [line for line in (resolved.text or "").splitlines() if line and not line.startswith("#")]
        for note in notes + [f"note: {requirements.FLAG}=freeze pins {', '.join(pins)}"]:
            print(note, file=sys.stderr)
    else:
        resolved = requirements.resolve(value, os.getcwd())
    return replace(code, requirements=resolved.path, requirements_text=resolved.text,
                   package_indexes=requirements.package_indexes())


def _existing_file(path: Optional[str], flag: str) -> Optional[str]:
    if not path:
        return None
    full = local_abs(path)
    if not os.path.isfile(full):
        raise UsageError(f"file {path!r} does not exist", flag=flag)
    return full


def _check_outputs_outside_inputs(inputs: Sequence[InputChannel], outputs: Sequence[OutputChannel]) -> None:
    """An output folder inside an input folder would be uploaded as input and shadowed in the job."""
    outputs_outside_inputs(((str(out.flag), out.local_path) for out in outputs),
                           ((str(inp.flag), inp.source) for inp in inputs))


def _warn(line: str) -> None:
    print(line, file=sys.stderr)




def check_range(value: int, low: int, high: Optional[int], flag: str) -> None:
    if value < low or (high is not None and value > high):
        allowed = f"{low}..{high}" if high is not None else f"at least {low}"
        raise UsageError(f"{value} is out of range; allowed: {allowed}", flag=flag)


def _check_options(o: CommonOptions, limits: Mapping[str, int]) -> None:
    check_range(o.instance_count, 1, limits["instance_count"], "--sagemaker-instance-count")
    check_range(o.volume_size, 1, limits["volume"], "--sagemaker-volume-size")
    check_range(o.max_run, 1, limits["max_run"], "--sagemaker-max-run")
    if not INSTANCE_RE.match(o.instance):
        raise UsageError(f"{o.instance!r} is not an instance type like ml.m5.large", flag="--sagemaker-instance")
    if o.base_job_name is not None and not o.base_job_name.strip():
        raise UsageError("must not be empty", flag="--sagemaker-base-job-name")
    if o.role and not (ROLE_ARN_RE.match(o.role) or ROLE_NAME_RE.match(o.role)):
        raise UsageError(f"{o.role!r} is neither an IAM role ARN nor a role name", flag="--sagemaker-role")
    if o.assume_role and not ROLE_ARN_RE.match(o.assume_role):
        raise UsageError(f"{o.assume_role!r} is not an IAM role ARN", flag="--sagemaker-assume-role")
    for flag, key in (("--sagemaker-volume-kms-key", o.volume_kms_key), ("--sagemaker-output-kms-key", o.output_kms_key)):
        if key and not KMS_RE.match(key):
            raise UsageError(f"{key!r} is not a KMS key ID or ARN", flag=flag)
    if bool(o.subnets) != bool(o.security_groups):
        raise UsageError("a VPC needs both --sagemaker-subnets and --sagemaker-security-groups",
                         flag="--sagemaker-subnets" if not o.subnets else "--sagemaker-security-groups")
    for flag, ids, most in (("--sagemaker-subnets", o.subnets, 16), ("--sagemaker-security-groups", o.security_groups, 5)):
        if len(ids) > most:
            raise UsageError(f"{len(ids)} given; allowed: at most {most}", flag=flag)
        for i in ids:
            if not VPC_ID_RE.match(i):
                raise UsageError(f"{i!r} is not a VPC ID", flag=flag)
    if o.store == "local" and o.run == "yes":
        raise UsageError("a SageMaker job reads and writes S3; allowed: auto or s3 with --sagemaker-run=yes, "
                         "local only with --sagemaker-run=local", flag="--sagemaker-store")
    if o.output_json and not os.path.isdir(os.path.dirname(local_abs(o.output_json))):
        raise UsageError(f"the folder of {o.output_json!r} does not exist", flag="--sagemaker-output-json")
    if o.bucket and not BUCKET_RE.match(o.bucket):
        raise UsageError(f"{o.bucket!r} is not an S3 bucket name", flag="--sagemaker-bucket")
    if o.image is not None and (not o.image or len(o.image) > 255):
        raise UsageError("an image URI has 1-255 characters", flag="--sagemaker-image")


def _check_env(pairs: Iterable[Tuple[str, str]], limits: Mapping[str, int]) -> Tuple[Tuple[str, str], ...]:
    env = dict(pairs)
    if len(env) > limits["env_entries"]:
        raise UsageError(f"{len(env)} variables; allowed: at most {limits['env_entries']}", flag="--sagemaker-env")
    for k, v in env.items():
        if not ENV_KEY_RE.match(k) or len(k) > limits["env_key"]:
            raise UsageError(f"{k!r} is not a variable name ([A-Za-z_][A-Za-z0-9_]*, at most "
                             f"{limits['env_key']} characters)", flag="--sagemaker-env")
        if len(v) > limits["env_value"]:
            raise UsageError(f"the value of {k} has {len(v)} characters; allowed: at most {limits['env_value']}",
                             flag="--sagemaker-env")
    return tuple(env.items())


def _tag_text_ok(text: str) -> bool:
    # the API allows letters, numbers, separators (\p{Z}: spaces, not line breaks or tabs) and _.:/=+-@
    return all(ch.isalnum() or ch in TAG_SPECIALS or (ch.isspace() and ch not in "\t\n\r\x0b\x0c")
               for ch in text)


def _check_tags(pairs: Iterable[Tuple[str, str]]) -> Tuple[Tuple[str, str], ...]:
    tags = dict(pairs)
    if len(tags) > TAGS_MAX:
        raise UsageError(f"{len(tags)} tags; allowed: at most {TAGS_MAX}", flag="--sagemaker-tags")
    for k, v in tags.items():
        if not k or len(k) > TAG_KEY_MAX or not _tag_text_ok(k) or k.lower().startswith("aws:"):
            raise UsageError(f"tag key {k!r}: 1-{TAG_KEY_MAX} letters, digits, spaces or _.:/=+-@, "
                             f"not starting with aws:", flag="--sagemaker-tags")
        if len(v) > TAG_VALUE_MAX or not _tag_text_ok(v):
            raise UsageError(f"tag value of {k!r}: at most {TAG_VALUE_MAX} letters, digits, spaces or _.:/=+-@",
                             flag="--sagemaker-tags")
    return tuple(tags.items())


def check_metrics(pairs: Tuple[Tuple[str, str], ...]) -> Tuple[Tuple[str, str], ...]:
    if len(pairs) > METRICS_MAX:
        raise UsageError(f"{len(pairs)} metrics; allowed: at most {METRICS_MAX}", flag="--sagemaker-metric")
    for name, regex in pairs:
        if not name or len(name) > 255:
            raise UsageError(f"metric name {name!r}: 1-255 characters", flag="--sagemaker-metric")
        if not regex or len(regex) > 500:
            raise UsageError(f"metric {name!r}: the regex has 1-500 characters", flag="--sagemaker-metric")
        try:
            compiled = re.compile(regex)
        except re.error as exc:
            raise UsageError(f"metric {name!r}: invalid regex ({exc})", flag="--sagemaker-metric") from None
        if compiled.groups < 1:
            raise UsageError(f"metric {name!r}: the regex needs a group around the value, like 'loss: ([0-9.]+)'",
                             flag="--sagemaker-metric")
    return pairs
