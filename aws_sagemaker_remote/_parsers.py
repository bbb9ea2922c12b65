"""Shared body of the ``*_args`` compatibility functions and the parsers the docs render."""
from __future__ import annotations

import argparse
from typing import Any, Dict, Mapping, Optional

from .flags import Parser, add_arguments, declare
from .kinds import job_kind

#: The declaration the generated docs show (the same one as seed 003's example).
DOCS_EXAMPLE: Dict[str, Any] = {
    "inputs": {"input": "/path/to/input"},
    "outputs": {"output": ("/path/to/output", "default")},
    "dependencies": {"my_module": "/path/to/my_module"},
}


def add_generated_arguments(
    kind: str,
    parser: argparse.ArgumentParser,
    inputs: Optional[Mapping[str, Any]] = None,
    outputs: Optional[Mapping[str, Any]] = None,
    dependencies: Optional[Mapping[str, Any]] = None,
    script: str = "script.py",
    **options: Any,
) -> argparse.ArgumentParser:
    from .api import fold_training_keywords, merge_dependencies

    job = job_kind(kind)
    dirs = {key: options.pop(key) for key, *_ in job.folders if options.get(key)}
    if job.name == "training":  # the keywords only sagemaker_training_main has
        options = fold_training_keywords(options, options.pop("metrics", None), options.pop("hyperparameters", None))
    dependencies = merge_dependencies(dependencies, options.pop("modules", None))
    decl = declare(kind, script, inputs=inputs, outputs=outputs, dependencies=dependencies, training_dirs=dirs)
    return add_arguments(parser, decl, job.options.from_keywords(options))


def parser_for_docs(kind: str, prog: str) -> argparse.ArgumentParser:
    parser = Parser(prog=prog, allow_abbrev=False)
    return add_generated_arguments(kind, parser, **DOCS_EXAMPLE)
