"""The job kinds, one module each, and the registry that maps their public names to them.

``"processing"`` and ``"training"`` stay the names everywhere users see one
(the API's entry points, the CLI, :class:`~aws_sagemaker_remote.JobResult`,
the backends); code that needs to know what differs asks :func:`job_kind`
for the :class:`~aws_sagemaker_remote.kinds.base.JobKind`.
"""
from __future__ import annotations

from typing import Dict, Tuple, Union

from .base import JobKind
from .processing import PROCESSING
from .training import TRAINING

#: name → kind
KINDS: Dict[str, JobKind] = {kind.name: kind for kind in (PROCESSING, TRAINING)}
#: the public names, in the order help texts show them
NAMES: Tuple[str, ...] = tuple(KINDS)


def job_kind(kind: Union[str, JobKind]) -> JobKind:
    """The kind named ``kind`` (a kind is returned as it is); ValueError for an unknown name."""
    if isinstance(kind, JobKind):
        return kind
    try:
        return KINDS[kind]
    except (KeyError, TypeError):
        raise ValueError(f"unknown job kind {kind!r}; allowed: {', '.join(NAMES)}") from None


__all__ = ["KINDS", "NAMES", "PROCESSING", "TRAINING", "JobKind", "job_kind"]
