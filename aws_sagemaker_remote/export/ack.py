"""The ACK SageMaker controller's custom resource for a rendered request.

``--sagemaker-export-ack FILE.yaml`` writes the ``ProcessingJob`` or
``TrainingJob`` resource (``sagemaker.services.k8s.aws/v1alpha1``) whose
``spec`` is the ``CreateProcessingJob`` / ``CreateTrainingJob`` request that
:mod:`aws_sagemaker_remote.render` produced, field for field. Applying it with
``kubectl apply -f FILE.yaml`` in a cluster running the controller creates the
same job the launcher would have created.

Field names are not listed by hand. Each request key is translated by the
controller's naming rule (the request's PascalCase with its initialisms
upper-cased, then the first word lower-cased: ``RoleArn`` → ``roleARN``,
``S3Uri`` → ``s3URI``, ``VolumeKmsKeyId`` → ``volumeKMSKeyID``,
``SecurityGroupIds`` → ``securityGroupIDs``), then looked up in the
controller's CRD schema (``ack_crds.json``, transcribed from the controller's
``config/crd/bases``; its ``_source`` names the commits). The Kubernetes API
server silently drops fields its schema does not know, so a field with no
counterpart is refused here instead of becoming a job that runs differently.

Pure and standard library only.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from .. import kinds
from ..errors import UsageError
from ..kinds.training import ACK_NEEDS_SCRIPT_MODE
from .yamltext import dump

API_VERSION = "sagemaker.services.k8s.aws/v1alpha1"
FLAG = "--sagemaker-export-ack"
#: Why a training job with the framework's own entrypoint cannot be exported.
NEEDS_SCRIPT_MODE = ACK_NEEDS_SCRIPT_MODE
#: The ACK annotation that pins a resource to a region (else the namespace's or the controller's).
REGION_ANNOTATION = "services.k8s.aws/region"

#: Initialisms the controller's code generator upper-cases inside a name (the rule is in
#: aws-controllers-k8s/pkg, names/names.go); the ones SageMaker request members use, and
#: their common neighbours.
INITIALISMS = {
    "Acl": "ACL", "Ami": "AMI", "Api": "API", "Arn": "ARN", "Aws": "AWS", "Az": "AZ", "Cidr": "CIDR",
    "Cpu": "CPU", "Db": "DB", "Dns": "DNS", "Ebs": "EBS", "Ec2": "EC2", "Ecr": "ECR", "Efs": "EFS",
    "Gpu": "GPU", "Http": "HTTP", "Https": "HTTPS", "Iam": "IAM", "Id": "ID", "Ids": "IDs", "Ip": "IP",
    "Json": "JSON", "Kms": "KMS", "Sdk": "SDK", "Sns": "SNS", "Sql": "SQL", "Sqs": "SQS", "Sse": "SSE",
    "Ssl": "SSL", "Tls": "TLS", "Uri": "URI", "Url": "URL", "Uuid": "UUID", "Vpc": "VPC", "Xml": "XML",
    "Yaml": "YAML",
}
_WORD = re.compile(r"[A-Z][a-z0-9]*|[a-z0-9]+")
#: metadata.name: an RFC 1123 subdomain.
_K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
#: metadata.namespace: an RFC 1123 label.
_K8S_LABEL = re.compile(r"(?=.{1,63}\Z)[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_SCHEMA_FILE = Path(__file__).with_name("ack_crds.json")


def crd_name(request_key: str) -> str:
    """The controller's property name for a request member name (``RoleArn`` → ``roleARN``).

    Words are the request name's capitalised runs (``S3Uri`` → ``S3``, ``Uri``); a word
    that is a known initialism is upper-cased; the first word is then lower-cased whole.
    """
    words: List[str] = _WORD.findall(request_key)
    if "".join(words) != request_key or not words:
        return request_key  # not PascalCase: left alone, and the schema lookup refuses it
    first = words[0]
    head = first.lower() if first in INITIALISMS else first[:1].lower() + first[1:]
    return head + "".join(INITIALISMS.get(w, w) for w in words[1:])


@lru_cache(maxsize=None)
def crd_schemas() -> Dict[str, Any]:
    """The two CRDs' ``openAPIV3Schema`` (spec part, without descriptions), by kind, plus ``_source``."""
    data: Dict[str, Any] = json.loads(_SCHEMA_FILE.read_text(encoding="utf-8"))
    return data


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _convert(value: Any, schema: Mapping[str, Any], where: str, kind: str) -> Any:
    want = schema.get("type")
    got = _type_name(value)
    if want != got:
        raise UsageError(f"{where} is {got}, but the ACK {kind} resource wants {want} there", flag=FLAG)
    if want == "array":
        return [_convert(item, schema["items"], f"{where}[{i}]", kind) for i, item in enumerate(value)]
    if want != "object":
        return value
    if "properties" not in schema:
        # a string map (Environment, HyperParameters): its keys are data, kept as they are
        values = schema.get("additionalProperties", {})
        return {key: _convert(item, values, f"{where}.{key}", kind) for key, item in value.items()}
    out: Dict[str, Any] = {}
    for key, item in value.items():
        prop = crd_name(key)
        if prop not in schema["properties"]:
            raise UsageError(f"{where}.{key} has no counterpart in the ACK {kind} resource "
                             f"(no field {prop!r}); it cannot be exported", flag=FLAG)
        out[prop] = _convert(item, schema["properties"][prop], f"{where}.{key}", kind)
    return out


def resource_name(job_name: str) -> str:
    """``metadata.name`` for a job: the job name in lower case (job names are letters, digits, ``-``)."""
    name = job_name.lower()
    if len(name) > 253 or not _K8S_NAME.match(name):
        raise UsageError(f"{job_name!r} is not a valid Kubernetes resource name "
                         "(lower-case letters, digits, '-' and '.')", flag=FLAG)
    return name


def ack_manifest(request: Mapping[str, Any], kind: str, *, name: Optional[str] = None,
                 namespace: Optional[str] = None, region: Optional[str] = None) -> Dict[str, Any]:
    """The ACK custom resource equivalent to ``request``.

    :param request: the ``CreateProcessingJob`` / ``CreateTrainingJob`` keyword arguments,
        exactly as :func:`aws_sagemaker_remote.render.render` returns them.
    :param kind: ``"processing"`` or ``"training"``.
    :param name: ``metadata.name``; default: the job name in lower case.
    :param namespace: ``metadata.namespace``; default: none (``kubectl``'s current namespace).
    :param region: written as the ``services.k8s.aws/region`` annotation, so the controller
        creates the job in the region the request was staged for.
    :raises UsageError: a request field has no counterpart in the CRD (one line naming it), or
        a training request runs its own entrypoint: the ``TrainingJob`` resource has no
        ``containerEntrypoint``/``containerArguments``, so only script mode exports.
    """
    job_kind = kinds.job_kind(kind)
    crd_kind = job_kind.ack_kind
    refusal = job_kind.ack_refusal(request)
    if refusal:
        raise UsageError(refusal, flag=FLAG)
    schema = crd_schemas()[crd_kind]
    spec = _convert(dict(request), schema["properties"]["spec"], crd_kind, crd_kind)
    missing = [p for p in schema["properties"]["spec"].get("required", []) if p not in spec]
    if missing:
        raise UsageError(f"the request has no {', '.join(missing)}, which the ACK {crd_kind} resource requires",
                         flag=FLAG)
    job_name = spec[crd_name(job_kind.name_key)]
    metadata: Dict[str, Any] = {"name": resource_name(name or job_name)}
    if namespace:
        if not _K8S_LABEL.match(namespace):
            raise UsageError(f"{namespace!r} is not a valid Kubernetes namespace "
                             "(at most 63 lower-case letters, digits and '-')", flag=FLAG)
        metadata["namespace"] = namespace
    if region:
        metadata["annotations"] = {REGION_ANNOTATION: region}
    return {"apiVersion": API_VERSION, "kind": crd_kind, "metadata": metadata, "spec": spec}


def ack_yaml(request: Mapping[str, Any], kind: str, **options: Any) -> str:
    """:func:`ack_manifest` as the YAML document ``--sagemaker-export-ack`` writes."""
    return dump(ack_manifest(request, kind, **options))


def write_ack_manifest(path: str, request: Mapping[str, Any], kind: str, **options: Any) -> str:
    """Write :func:`ack_yaml` to ``path`` (``-`` for standard output is the caller's business).

    The document is built before the file is opened, so a refused request leaves no file.
    Returns the text written.
    """
    text = ack_yaml(request, kind, **options)
    Path(path).write_text(text, encoding="utf-8")
    return text

