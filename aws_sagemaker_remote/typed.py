"""Typed script arguments: the script's own flags declared as a dataclass.

``args=TrainArgs`` (on :func:`~aws_sagemaker_remote.sagemaker_training_main`,
:func:`~aws_sagemaker_remote.training_job`, ...) adds one flag per field of the dataclass,
as ``argparse-dataclass`` makes them (``epochs: int = 10`` → ``--epochs``; a ``bool``
defaulting to False → ``--flag``, to True → ``--no-flag``; ``Optional[X]``, ``Literal``
choices, ``nargs`` lists through ``field(metadata={"nargs": "+"})``), next to the
generated path and ``--sagemaker-*`` flags. ``main`` is then called with an instance of the
dataclass; if it takes a second positional parameter, that one gets the whole parsed
``argparse.Namespace``, where the paths of the declared inputs, outputs and dependencies are
(``paths.input``, ``paths.output``).

The flags are ordinary command-line tokens, so the job's command line carries them exactly
as typed and the job parses them into the same instance. ``argparse-dataclass`` is imported
only when a script uses ``args=``.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import typing
from typing import Any, Callable, List, Optional

from .errors import DeclarationError


def _check(cls: Any) -> None:
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise DeclarationError(f"args must be a dataclass type (the script's own arguments), "
                               f"not {type(cls).__name__}")


def _resolve_annotations(cls: type) -> None:
    """Field types written as strings (``from __future__ import annotations``) become the types
    themselves: ``argparse-dataclass`` reads ``field.type`` and needs the type to convert a value."""
    if not any(isinstance(f.type, str) for f in dataclasses.fields(cls)):
        return
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError, AttributeError) as exc:  # the user's annotation names no type
        raise DeclarationError(f"args={cls.__name__}: its field types cannot be resolved: {exc}") from None
    for f in dataclasses.fields(cls):
        if isinstance(f.type, str) and f.name in hints:
            f.type = hints[f.name]


def dest_of(field: "dataclasses.Field[Any]") -> str:
    """The namespace attribute argparse-dataclass stores ``field`` under."""
    names = field.metadata.get("args")
    if names and not str(names[0]).startswith("-"):
        return str(names[0])  # a positional argument is stored under its own name
    return field.name


def add_to_parser(cls: type, then: Optional[Callable[[argparse.ArgumentParser], Any]] = None
                  ) -> Callable[[argparse.ArgumentParser], Any]:
    """An ``argparse_callback`` adding the flags of dataclass ``cls`` (then calling ``then``)."""
    _check(cls)

    def callback(parser: argparse.ArgumentParser) -> None:
        _resolve_annotations(cls)
        group = parser.add_argument_group("arguments", f"The script's arguments ({cls.__name__}).")
        added: List[argparse.Action] = getattr(parser, "added", [])
        before = len(added)
        try:
            _adding_to(group)(cls)
        except argparse.ArgumentError as exc:
            raise DeclarationError(f"args={cls.__name__}: a field's flag collides with another flag: "
                                   f"{exc.message}") from None
        except (TypeError, ValueError) as exc:
            raise DeclarationError(f"args={cls.__name__}: {exc}") from None
        for action in added[before:]:  # marked, so a path flag of the same name is refused, not adopted
            action.dataclass_name = cls.__name__  # type: ignore[attr-defined]
        if then is not None:
            then(parser)

    return callback


def _adding_to(group: Any) -> Callable[[type], Any]:
    """argparse-dataclass's parser for a dataclass, with every argument it adds sent to ``group``
    (one of our parser's groups) instead: its flags, made by its own code, land in our parser."""
    import argparse_dataclass

    class Forwarding(argparse_dataclass.ArgumentParser):  # type: ignore[misc]
        def add_argument(self, *args: Any, **kwargs: Any) -> Any:
            return group.add_argument(*args, **kwargs)

    return lambda cls: Forwarding(cls, add_help=False)


def instance(cls: type, namespace: argparse.Namespace) -> Any:
    """The dataclass instance of the parsed ``namespace`` (a field whose flag was not given
    keeps the dataclass's default: argparse-dataclass parses it as ``MISSING``)."""
    values = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        value = getattr(namespace, dest_of(f), dataclasses.MISSING)
        if value is not dataclasses.MISSING:
            values[f.name] = value
    return cls(**values)


def takes_paths(main: Callable[..., Any]) -> bool:
    """Whether ``main`` takes a second positional argument (the namespace with the paths)."""
    try:
        params = list(inspect.signature(main).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


def bind(main: Callable[..., Any], cls: type) -> Callable[[argparse.Namespace], Any]:
    """``main`` as the entry functions call it: with the namespace, turned into ``cls``."""
    both = takes_paths(main)

    def call(namespace: argparse.Namespace) -> Any:
        args = instance(cls, namespace)
        return main(args, namespace) if both else main(args)

    return call
