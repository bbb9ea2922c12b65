"""The decorator form: ``@processing_job(...)`` / ``@training_job(...)`` on ``def main(args)``.

A decorated ``main`` is a :class:`Job`: still the plain function (``main(args)`` calls it),
plus

* ``main.cli(argv=None)``: what :func:`~aws_sagemaker_remote.sagemaker_processing_main` does
  with the same keywords (it *is* that call: parse ``sys.argv``, run here or as a job, exit
  with the documented status on an error);
* ``main.parser`` / ``main.build_parser()``: the script's parser, with every generated flag;
* ``main.launch(run="yes", wait=True, **keywords)``: run it from Python (a notebook, another
  program). The keywords are the script's arguments by name (``input="s3://..."``,
  ``epochs=3``) and the options of the ``--sagemaker-*`` flags (``instance_count=2``); it
  returns a :class:`~aws_sagemaker_remote.spec.JobResult` and raises the exceptions of
  :mod:`aws_sagemaker_remote.errors` instead of exiting.

The job itself runs the script file with ``main.cli()`` in it, so that file must call it under
``if __name__ == "__main__":``.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import os
from dataclasses import MISSING
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence

from . import api
from .errors import DeclarationError, UsageError
from .flags import Declaration, Parser
from .options import CommonOptions

if TYPE_CHECKING:  # loaded with the first result: a script run here never needs it
    from .spec import JobResult


class Job:
    """A script's ``main`` with its job declaration (made by :func:`processing_job` / :func:`training_job`)."""

    # set from main by functools.update_wrapper
    __name__: str
    __qualname__: str
    __wrapped__: Callable[..., Any]

    def __init__(self, definition: "api.Definition") -> None:
        self.definition = definition
        functools.update_wrapper(self, definition.main)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call ``main`` as the plain function it is (nothing parsed, nothing launched)."""
        return self.definition.main(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<{self.definition.kind} job {getattr(self.definition.main, '__qualname__', '?')}>"

    @property
    def kind(self) -> str:
        """``processing`` or ``training``."""
        return self.definition.kind

    # --- the script's command line ----------------------------------------------------

    def cli(self, argv: Optional[Sequence[str]] = None) -> Any:
        """Parse ``argv`` (default ``sys.argv[1:]``) and run, exactly as the call form does.

        :returns: what ``main`` returned (``--sagemaker-run=no``) or the job's ``JobResult``.
        """
        return api._entry(self.definition, argv)

    def build_parser(self, script: Optional[str] = None) -> argparse.ArgumentParser:
        """A new parser of the script's command line (every generated flag included)."""
        _, _, parser = self.definition.prepare(script)
        return parser

    @property
    def parser(self) -> argparse.ArgumentParser:
        """The script's parser (see :meth:`build_parser`)."""
        return self.build_parser()

    # --- from Python --------------------------------------------------------------------

    def launch(self, run: str = "yes", wait: bool = True, *, script: Optional[str] = None,
               **keywords: Any) -> "JobResult":
        """Run ``main`` as a job (``run="yes"``), as a job on this machine (``"local"``), or here
        (``"no"``), and return its :class:`~aws_sagemaker_remote.spec.JobResult`.

        :param keywords: the script's arguments by their name in ``args`` (``input="s3://..."``,
            ``output="out"``, ``epochs=3``), written as the command-line flags the job gets, and
            the options of the ``--sagemaker-*`` flags by field name (``instance_count=2``,
            ``instance="ml.m5.xlarge"``); a name that is both is the script's argument.
        :param script: the file the job runs (it must call ``main.cli()``); default: the file
            that defines ``main``. Needed where ``main`` has no file (a notebook cell).
        :returns: the ``JobResult``; ``value`` is what ``main`` returned, when it was JSON (for
            ``run="no"``: whatever it returned).
        :raises UsageError: a bad keyword or value (nothing was created).
        :raises JobFailed: the job ended Failed or Stopped (``exc.result`` is its ``JobResult``).
        :raises AwsError: an AWS request failed.
        """
        if run not in ("yes", "local", "no"):
            raise UsageError(f"{run!r} is not allowed; allowed: 'yes', 'local', 'no'", flag="run")
        definition = self.definition
        path = script or definition.script or _file_for(definition.main, run)
        options = {**definition.options, "run": run, "wait": wait}
        parser = _prepare(definition, path, {})  # to know which keywords are the script's arguments
        script_args = _script_dests(parser)
        defaults = _field_defaults(definition.args)
        argv: List[str] = []
        for name, value in keywords.items():
            if name in script_args:
                argv.extend(tokens(script_args[name], value, name, defaults.get(name, MISSING)))
            else:
                options[name] = value
        if run != "no":
            _check_calls_cli(path)
        decl, _, parser = _prepared(definition, path, options)
        parser.raise_errors = True
        returned = api.dispatch(decl, parser, definition.main, argv, definition.args, read_value=True)
        if run != "no":
            result: JobResult = returned
            return result
        from .spec import JobResult

        outputs = {d.name: str(getattr(parser.parse_args(argv), d.dest, "") or "") for d in decl.outputs}
        return JobResult(kind=definition.kind, job_name="", status="Completed", output_artifacts=outputs,
                         value=returned)


def _prepare(definition: "api.Definition", script: str, options: Mapping[str, Any]) -> Parser:
    return _prepared(definition, script, options)[2]


def _prepared(definition: "api.Definition", script: str,
              options: Mapping[str, Any]) -> "tuple[Declaration, CommonOptions, Parser]":
    return definition._replace(options=options or definition.options).prepare(script)


def _field_defaults(cls: Optional[type]) -> Dict[str, Any]:
    """Each dataclass field's default by dest (argparse-dataclass leaves argparse's default unset)."""
    if cls is None:
        return {}
    from .typed import dest_of

    out: Dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is not MISSING:
            out[dest_of(f)] = f.default
        elif f.default_factory is not MISSING:
            out[dest_of(f)] = f.default_factory()
    return out


def _check_calls_cli(script: str) -> None:
    """The job runs ``script``: one that never hands its command line over would do nothing."""
    try:
        with open(script, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise UsageError(f"cannot read the script {script!r}: {exc.strerror}", flag="script") from None
    if not any(call in text for call in (".cli(", "sagemaker_processing_main", "sagemaker_training_main")):
        raise DeclarationError(f"{script} never calls main.cli(): the job runs this file, so it needs "
                               f"'if __name__ == \"__main__\": main.cli()' (or pass script=)")


def _file_for(main: Callable[..., Any], run: str) -> str:
    """The script of a launch: the module file; a run here needs none (options are then read
    from the current folder's pyproject.toml, as for a script there)."""
    if run == "no":
        try:
            return module_file(main)
        except DeclarationError:
            return os.path.join(os.getcwd(), "__main__.py")
    return module_file(main)


def module_file(main: Callable[..., Any]) -> str:
    """The ``.py`` file that defines ``main``, which the job runs again.

    :raises DeclarationError: ``main`` has no such file (defined in a notebook cell or in
        ``python -c``): the message says to pass ``script=``.
    """
    code = getattr(main, "__code__", None)
    path = str(getattr(code, "co_filename", "") or "")
    if path and path.endswith(".py") and os.path.isfile(path):
        return os.path.abspath(path)
    where = getattr(main, "__module__", None) or "?"
    raise DeclarationError(
        f"{getattr(main, '__qualname__', 'main')} is defined in {where!r}, which has no script file "
        f"(a notebook cell or python -c): the job runs a script, so pass script='path/to/script.py' "
        f"(a file that defines it and calls main.cli() under if __name__ == '__main__') "
        f"to processing_job(...)/training_job(...) or to launch(...)")


def _script_dests(parser: Parser) -> Dict[str, argparse.Action]:
    """The script's own arguments (paths, user flags) by dest; ``--sagemaker-*`` options are not."""
    out: Dict[str, argparse.Action] = {}
    for action in parser.added:
        if action.dest in ("help", argparse.SUPPRESS) or action.dest.startswith("sagemaker_"):
            continue
        out.setdefault(action.dest, action)
    return out


def tokens(action: argparse.Action, value: Any, name: str, default: Any = MISSING) -> List[str]:
    """Command-line tokens that make ``action`` parse back to ``value`` (the keyword ``name``).

    :param default: what the script gets when the flag is not given (``action.default`` unless
        given; a dataclass field's default for typed arguments). A value equal to it adds no token.
    """
    if default is MISSING:
        default = action.default
    if default is not MISSING and type(value) is type(default) and value == default:
        return []
    flags = list(action.option_strings)
    if action.nargs == 0:  # a switch: store_true / store_false / BooleanOptionalAction
        negative = [f for f in flags if f.startswith("--no-")]
        positive = [f for f in flags if not f.startswith("--no-")]
        if negative and positive and isinstance(value, bool):  # BooleanOptionalAction: both spellings
            return [positive[0] if value else negative[0]]
        if type(value) is type(action.const) and value == action.const:
            return [flags[0]]
        raise UsageError(f"{value!r} is not allowed; allowed: {action.const!r} or {default!r}", flag=name)
    if value is None:
        raise UsageError(f"None is not allowed here: {flags[0] if flags else name} takes a value", flag=name)
    if action.nargs not in (None, "?"):  # the flag takes several values
        if not isinstance(value, (list, tuple)):
            raise UsageError(f"{value!r} is not allowed; allowed: a list", flag=name)
        items = [_text(v) for v in value]
        return [flags[0]] + items if flags else items
    if isinstance(value, (list, tuple)) and flags:  # a flag given once per item (action="append")
        return [f"{flags[0]}={_text(v)}" for v in value]
    text = _text(value)
    # --flag=value: a value that starts with '-' stays a value
    return [f"{flags[0]}={text}"] if flags else [text]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(os.fspath(value)) if isinstance(value, os.PathLike) else str(value)


def _job(kind: str, main: Optional[Callable[..., Any]], declaration: Mapping[str, Any]) -> Any:
    define = {"processing": api.define_processing, "training": api.define_training}[kind]

    def wrap(func: Callable[..., Any]) -> Job:
        if not callable(func):
            raise DeclarationError(f"@{kind}_job decorates a function, not {type(func).__name__}")
        try:
            return Job(define(func, **declaration))
        except TypeError as exc:  # an unknown keyword of the declaration itself
            raise DeclarationError(f"{kind}_job: {exc}") from None

    return wrap(main) if main is not None else wrap


def processing_job(main: Optional[Callable[..., Any]] = None, **declaration: Any) -> Any:
    """Declare ``main`` as a Processing job script; the decorator form of
    :func:`~aws_sagemaker_remote.sagemaker_processing_main`, with the same keywords
    (``inputs``, ``outputs``, ``dependencies``, ``args``, option defaults such as ``instance``)::

        @processing_job(inputs={"input": "data"}, outputs={"output": "out"}, instance="ml.m5.large")
        def main(args):
            ...

        if __name__ == "__main__":
            main.cli()

    :returns: a :class:`Job` (``@processing_job`` without parentheses works too).
    """
    return _job("processing", main, declaration)


def training_job(main: Optional[Callable[..., Any]] = None, **declaration: Any) -> Any:
    """Declare ``main`` as a Training job script; the decorator form of
    :func:`~aws_sagemaker_remote.sagemaker_training_main`, with the same keywords
    (``inputs``/``channels``, ``outputs``, ``metrics``, ``hyperparameters``, ``args``, option
    defaults such as ``instance``, ``spot``).

    :returns: a :class:`Job`.
    """
    return _job("training", main, declaration)

