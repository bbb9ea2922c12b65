"""``sagemaker_training_args``: add the generated training flags to your own parser."""
from __future__ import annotations

import argparse
from typing import Any, Mapping, Optional

from .._parsers import add_generated_arguments, parser_for_docs

__all__ = ["sagemaker_training_args", "sagemaker_training_parser_for_docs"]


def sagemaker_training_args(
    parser: argparse.ArgumentParser,
    inputs: Optional[Mapping[str, Any]] = None,
    outputs: Optional[Mapping[str, Any]] = None,
    dependencies: Optional[Mapping[str, Any]] = None,
    **options: Any,
) -> argparse.ArgumentParser:
    """Add the flags ``sagemaker_training_main`` would generate to ``parser`` and return it.

    Same keywords as :func:`~aws_sagemaker_remote.sagemaker_training_main`.
    """
    return add_generated_arguments("training", parser, inputs, outputs, dependencies, **options)


def sagemaker_training_parser_for_docs() -> argparse.ArgumentParser:
    """The parser of the documented example declaration (rendered by sphinx-argparse)."""
    return parser_for_docs("training", "aws-sagemaker-remote-training")
