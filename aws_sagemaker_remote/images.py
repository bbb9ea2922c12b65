"""Container images: a full URI is used as given; a framework shorthand is looked up.

A shorthand is ``NAME:VERSION`` without a registry (``sklearn:1.2-1``, ``pytorch:2.1``,
``xgboost:1.7-1``, ``tensorflow:2.13``, ``huggingface:4.28``). It is resolved with the image
tables of the SageMaker SDK (the ``sdk`` extra: ``sagemaker-core``, or the full ``sagemaker``
package), which are data shipped with the SDK: nothing is fetched.

Processing jobs resolve framework images the way the SDK's own processors do
(``SKLearnProcessor``, ``FrameworkProcessor``): framework tables have no ``processing``
scope, so the ``training`` image is used; a table that has a ``processing`` scope
(``spark``, ``data-wrangler``, ...) gives that one.

Hugging Face images are built on a base framework. ``huggingface:4.28`` takes the only base
that the table has for that version; ``huggingface:4.26-pytorch1.13`` names it.
"""
from __future__ import annotations

import importlib.util
import os
import re
from typing import Any, Optional, Tuple

from .errors import UsageError

_SHORTHAND = re.compile(r"^([a-z0-9][a-z0-9-]*):([A-Za-z0-9._-]+)$")
#: ``4.28-pytorch2.0`` → version ``4.28``, base framework ``pytorch2.0``
_BASE = re.compile(r"^(?P<version>.+?)-(?P<base>(?:pytorch|tensorflow)[0-9][0-9.]*)$")
FLAG = "--sagemaker-image"
INSTALL_HINT = "pip install 'aws-sagemaker-remote[sdk]'"


def is_image_shorthand(image: str) -> bool:
    """``NAME:VERSION`` without a registry (every ECR URI has a ``/``)."""
    return "/" not in image and bool(_SHORTHAND.match(image))


def sdk_available() -> bool:
    """Whether the SDK's ``image_uris`` module can be imported (checked without importing it:
    importing the SDK takes seconds)."""
    try:
        spec = importlib.util.find_spec("sagemaker")
    except (ImportError, ValueError):
        return False
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for module in (os.path.join("core", "image_uris.py"), "image_uris.py"):
            if os.path.isfile(os.path.join(folder, module)):
                return True
    return False


def needs_sdk(image: str) -> UsageError:
    """The one-line error for a shorthand when the SDK is not installed."""
    return UsageError(f"{image!r} is a framework shorthand; install the SDK extra "
                      f"({INSTALL_HINT}) or pass a full image URI", flag=FLAG)


def _image_uris() -> Any:
    try:
        from sagemaker.core import image_uris  # sagemaker-core 2 (and the sagemaker SDK 3 on top of it)
    except ImportError:
        from sagemaker import image_uris  # the sagemaker SDK 2
    return image_uris


def image_scope(image_uris: Any, framework: str, kind: str) -> str:
    """``processing`` where the framework's table has that scope, else ``training`` (as the SDK's
    processors do); always ``training`` for a training job."""
    if kind != "processing":
        return "training"
    config = image_uris.config_for_framework(framework)
    scopes = config.get("scope", list(config))
    return "processing" if "processing" in scopes else "training"


def _base_framework(image_uris: Any, framework: str, version: str, scope: str) -> Tuple[str, Optional[str]]:
    """Split ``4.28-pytorch2.0``; for a table built on base frameworks, find the only base if none is named."""
    match = _BASE.match(version)
    if match:
        return match.group("version"), match.group("base")
    config = image_uris.config_for_framework(framework)
    table = config.get(scope, config) if "scope" not in config else config
    versions = table.get("versions", {})
    full = table.get("version_aliases", {}).get(version, version)
    entry = versions.get(full)
    if not isinstance(entry, dict) or "registries" in entry:
        return version, None  # not built on a base framework
    bases = sorted(k for k in entry if k != "version_aliases")
    if len(bases) == 1:
        return version, bases[0]
    raise UsageError(f"{framework}:{version} is built on one of {', '.join(bases)}: name it, "
                     f"e.g. {framework}:{version}-{bases[0]}", flag=FLAG)


def resolve_image(image: str, region: str, kind: str, instance: str) -> str:
    """A full image URI; framework shorthands are looked up in the SDK's image tables."""
    if not is_image_shorthand(image):
        return image
    framework, version = _SHORTHAND.match(image).groups()  # type: ignore[union-attr]
    try:
        image_uris = _image_uris()
    except ImportError:
        raise needs_sdk(image) from None
    try:
        scope = image_scope(image_uris, framework, kind)
        version, base = _base_framework(image_uris, framework, version, scope)
        return str(image_uris.retrieve(framework, region=region, version=version, instance_type=instance,
                                       image_scope=scope, base_framework_version=base))
    except UsageError:
        raise
    except FileNotFoundError:
        raise UsageError(f"cannot resolve {image!r}: the SDK knows no framework {framework!r}; "
                         f"pass a full image URI", flag=FLAG) from None
    except Exception as exc:  # noqa: BLE001 - the SDK raises ValueError and friends for unknown versions, regions, ...
        raise UsageError(f"cannot resolve {image!r} in {region} for {instance}: {_first_sentences(exc)}",
                         flag=FLAG) from None


def _first_sentences(exc: BaseException) -> str:
    """The SDK's reason without its upgrade advice; the list of what it supports when short."""
    text = " ".join(str(exc).split())
    reason, _, rest = text.partition(" You may need to upgrade")
    supported = rest[rest.find("Supported"):] if "Supported" in rest else ""
    return reason + (" " + supported if supported and len(supported) <= 200 else "")
