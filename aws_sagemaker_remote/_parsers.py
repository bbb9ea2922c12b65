"""Shared body of the ``*_args`` compatibility functions and the parsers the docs render."""
from __future__ import annotations

import argparse
from typing import Any, Mapping, Optional

from .flags import Parser, add_arguments, declare
from .options import OPTIONS_BY_KIND

#: The declaration the generated docs show (the same one as seed 003's example).
DOCS_EXAMPLE = {
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
    training = {}
    if kind == "training":
        training = {"training_dirs": {k: options.pop(k) for k in ("model_dir", "output_dir", "checkpoint_dir")
                                      if options.get(k)},
                    "metrics": options.pop("metrics", None),
                    "hyperparameters": options.pop("hyperparameters", None)}
    if "modules" in options:
        dependencies = {**dict(options.pop("modules") or {}), **dict(dependencies or {})}
    decl = declare(kind, script, inputs=inputs, outputs=outputs, dependencies=dependencies, **training)
    return add_arguments(parser, decl, OPTIONS_BY_KIND[kind].from_keywords(options))


def parser_for_docs(kind: str, prog: str) -> argparse.ArgumentParser:
    parser = Parser(prog=prog, allow_abbrev=False)
    return add_generated_arguments(kind, parser, **DOCS_EXAMPLE)
