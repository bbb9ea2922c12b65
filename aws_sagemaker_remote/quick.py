"""The plain local run, at the cost of plain argparse: ``python script.py`` with no SageMaker in sight.

``python script.py --input data`` (no ``--sagemaker-*`` flag) calls ``main`` here. The full
path builds the option dataclasses, resolves every option source and generates ~40
``--sagemaker-*`` flags only to find that nothing asks for SageMaker. This module finds that
out first, from what is cheap to check, and then parses the script's own flags and path flags
with the same :class:`Parser` and the same flag table, and fills the ``sagemaker_*``
attributes from :mod:`~aws_sagemaker_remote._option_table` (generated from
:mod:`~aws_sagemaker_remote.options`; ``python -m aws_sagemaker_remote.quick`` rewrites it).

It takes over only when the result is the full path's exactly (same namespace, same errors
and exit codes, same ``main`` call), and hands back (:data:`FULL`) whenever anything could
make a difference: a ``--sagemaker-*`` or help token in the command line, an
``AWS_SAGEMAKER_REMOTE_*`` or SageMaker SDK config variable, an SDK ``config.yaml``, a
``pyproject.toml`` that mentions our table, a training job, ``args=``, ``argparse_callback``,
a ``PathArgument`` / ``OPTIONAL`` / module declaration, a keyword whose parser lives in
:mod:`~aws_sagemaker_remote.options`, a flag the framework would adopt or refuse, or a table
that does not match ``options.py``. Standard library only; imports nothing heavier than argparse.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

from . import values
from .errors import DeclarationError, UsageError

#: What :func:`plain_run` returns when the full path must run instead.
FULL: Any = object()

#: Prefix of the environment variables that set option defaults (``sources.ENV_PREFIX``).
ENV_PREFIX = "AWS_SAGEMAKER_REMOTE_"
#: Set for the script inside a job (``container.IN_JOB_ENV``).
IN_JOB_ENV = ENV_PREFIX + "IN_JOB"
ADMIN_OVERRIDE_ENV = "SAGEMAKER_ADMIN_CONFIG_OVERRIDE"
USER_OVERRIDE_ENV = "SAGEMAKER_USER_CONFIG_OVERRIDE"
SDK_CONFIG_NAME = "config.yaml"
#: The ``pyproject.toml`` table name (``sources.PYPROJECT_TABLE``).
PYPROJECT_TABLE = "aws-sagemaker-remote"
#: The input name the code bundle takes (``container.CODE_CHANNEL``).
CODE_CHANNEL = "code"


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (usage is on ``--help``)."""

    #: the resolved defaults of the ``--sagemaker-*`` flags and their sources
    #: (a :class:`~aws_sagemaker_remote.sources.Resolved`, set by ``api.prepare``)
    resolved: Any = None
    #: the declaration with the path flags the script declares itself (set by :func:`build_parser`)
    declaration: Any = None
    #: raise :class:`UsageError` instead of exiting (a launch from Python must not end the caller)
    raise_errors: bool = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        #: every action added, through the parser or any of its groups, in order
        #: (argparse keeps its own list private)
        self.added: List[argparse.Action] = []
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.added.append(action)
        return action

    def add_argument_group(self, *args: Any, **kwargs: Any) -> Any:
        return self._recording(super().add_argument_group(*args, **kwargs))

    def add_mutually_exclusive_group(self, *args: Any, **kwargs: Any) -> Any:
        return self._recording(super().add_mutually_exclusive_group(*args, **kwargs))

    def _recording(self, group: Any) -> Any:
        """``group`` with ``add_argument`` (and nested groups) reporting to :attr:`added`."""
        add, add_group = group.add_argument, getattr(group, "add_mutually_exclusive_group", None)

        def add_argument(*args: Any, **kwargs: Any) -> argparse.Action:
            action: argparse.Action = add(*args, **kwargs)
            self.added.append(action)
            return action

        group.add_argument = add_argument
        if add_group is not None:
            group.add_mutually_exclusive_group = lambda *a, **k: self._recording(add_group(*a, **k))
        return group

    def error(self, message: str) -> "argparse.NoReturn":  # type: ignore[name-defined]
        message = self._other_kind(message) or message
        if self.raise_errors:
            raise UsageError(message)
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")

    def _other_kind(self, message: str) -> Optional[str]:
        """Say so when an unrecognized flag is an option of the other job kind (``--sagemaker-keep-alive``
        on a processing script): the other kind's request has a field this kind's lacks."""
        prefix = "unrecognized arguments: "
        kind = getattr(self.declaration, "kind", None)
        if kind is None or not message.startswith(prefix):
            return None
        import dataclasses  # an error path: the plain run stays without the dataclass machinery

        from .options import OPTIONS_BY_KIND, flag_name

        mine = {flag_name(f) for f in dataclasses.fields(kind.options)}
        for token in message[len(prefix):].split():
            flag = token.split("=", 1)[0]
            for other, options in OPTIONS_BY_KIND.items():
                if flag not in mine and flag in {flag_name(f) for f in dataclasses.fields(options)}:
                    return f"{flag}: an option of {other} jobs only; a {kind.name} job has no such setting"
        return None


def _additional_argument(spec: Any) -> Dict[str, Any]:
    """One ``additional_arguments`` entry as ``add_argument`` keywords: a dict (``dest`` or
    ``name_or_flags`` is the flag), or the first project's ``(['--foo', '-f'], {...})`` pair."""
    if isinstance(spec, Mapping):
        return dict(spec)
    if isinstance(spec, (tuple, list)) and len(spec) == 2 and isinstance(spec[1], Mapping):
        names, kwargs = spec
        names = [names] if isinstance(names, str) else list(names)
        if names and all(isinstance(n, str) for n in names):
            return {**dict(kwargs), "name_or_flags": names}
    raise DeclarationError(f"additional_arguments entry {spec!r}: expected a dict of add_argument keywords "
                           f"or a (flags, keywords) pair such as (['--foo'], {{'default': 1}})")


def _add_user_arguments(parser: argparse.ArgumentParser, additional_arguments: Iterable[Mapping[str, Any]],
                        argparse_callback: Optional[Callable[[argparse.ArgumentParser], Any]]) -> None:
    """The script's ``additional_arguments`` (normalised by :func:`_additional_argument`) and
    ``argparse_callback``."""
    for spec in additional_arguments:
        kwargs = dict(spec)
        names = kwargs.pop("name_or_flags", None) or kwargs.pop("flags", None) or kwargs.pop("dest", None)
        if names is None:
            raise DeclarationError("additional_arguments entries need 'dest' (the flag, e.g. '--filter-width')")
        names = [names] if isinstance(names, str) else list(names)
        try:
            parser.add_argument(*names, **kwargs)
        except argparse.ArgumentError as exc:
            raise DeclarationError(f"additional argument {names[0]} collides with a generated flag: "
                                   f"{exc.message}") from None
        except (TypeError, ValueError) as exc:
            raise DeclarationError(f"additional argument {names[0]}: {exc}") from None
    if argparse_callback is not None:
        try:
            argparse_callback(parser)
        except argparse.ArgumentError as exc:
            raise DeclarationError(f"argparse_callback adds a flag that collides with a generated flag: "
                                   f"{exc.message}") from None


def sdk_config_paths(environ: Mapping[str, str]) -> List[Tuple[str, Optional[str], bool]]:
    """``[(path, override variable or None, must exist), ...]``: the admin file, then the user file.

    The default places follow the SDK (``platformdirs``' site and user config folders of the
    application ``sagemaker``): on Linux ``$XDG_CONFIG_DIRS`` (first entry, default
    ``/etc/xdg``) and ``$XDG_CONFIG_HOME`` (default ``~/.config``), each ``/sagemaker/config.yaml``;
    on macOS ``/Library/Application Support/sagemaker`` and ``~/Library/Application Support/sagemaker``.
    """
    if sys.platform == "darwin":
        site = "/Library/Application Support/sagemaker"
        user = os.path.expanduser("~/Library/Application Support/sagemaker")
    elif os.name == "nt":  # pragma: no cover - not run on the CI machines
        site = os.path.join(environ.get("PROGRAMDATA", r"C:\ProgramData"), "sagemaker")
        user = os.path.join(environ.get("LOCALAPPDATA", os.path.expanduser(r"~\AppData\Local")),
                            "sagemaker", "sagemaker")
    else:
        dirs = (environ.get("XDG_CONFIG_DIRS") or "").strip() or "/etc/xdg"
        site = os.path.join(os.path.expanduser(dirs.split(os.pathsep)[0].rstrip(os.sep)), "sagemaker")
        home = (environ.get("XDG_CONFIG_HOME") or "").strip() or os.path.expanduser("~/.config")
        user = os.path.join(os.path.expanduser(home), "sagemaker")
    out: List[Tuple[str, Optional[str], bool]] = []
    for variable, folder in ((ADMIN_OVERRIDE_ENV, site), (USER_OVERRIDE_ENV, user)):
        override = environ.get(variable)
        if override:
            out.append((override, variable, True))
        else:
            out.append((os.path.join(folder, SDK_CONFIG_NAME), None, False))
    return out


# --- the plain run --------------------------------------------------------------------------------

# Plain classes rather than NamedTuples: typing.NamedTuple compiles each field's annotation,
# which would cost this path more than everything else it does.

class _Arg:
    """What :func:`~aws_sagemaker_remote.api.run_locally` reads of a path's ``PathArgument``."""

    optional = False


class _Kind:
    """What :func:`~aws_sagemaker_remote.api.run_locally` reads of the processing kind."""

    name = "processing"
    outputs_have_locations = True


class PlainPath:
    """A declared path given as a plain path (what :class:`~aws_sagemaker_remote.flags.PathDecl`
    makes of it), with the attributes :func:`~aws_sagemaker_remote.api.run_locally` reads."""

    __slots__ = ("default", "name")
    remote = "default"
    arg = _Arg()

    def __init__(self, name: str, default: str) -> None:
        self.name = name
        self.default = default

    @property
    def flag(self) -> str:
        return "--" + self.name

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def remote_flag(self) -> str:
        return f"--{self.name}-s3"

    @property
    def remote_dest(self) -> str:
        return f"{self.dest}_s3"

    def other_spellings(self, suffix: str = "") -> Tuple[str, ...]:
        """As :meth:`~aws_sagemaker_remote.flags.PathDecl.other_spellings`."""
        names = [self.name]
        for other in (self.name.replace("_", "-"), self.name.replace("-", "_")):
            if other not in names:
                names.append(other)
        return tuple(f"--{n}{suffix}" for n in names[1:])


class PlainDeclaration:
    """A processing declaration of plain paths, as :func:`~aws_sagemaker_remote.api.run_locally` reads it."""

    kind = _Kind()
    training_dirs: Tuple[Tuple[str, str], ...] = ()

    def __init__(self, script: str, inputs: Tuple[PlainPath, ...], outputs: Tuple[PlainPath, ...],
                 dependencies: Tuple[PlainPath, ...]) -> None:
        self.script = script
        self.inputs = inputs
        self.outputs = outputs
        self.dependencies = dependencies

    def dir_dest(self, key: str) -> str:
        return key


def _paths(mapping: Optional[Mapping[str, Any]]) -> Optional[Tuple[PlainPath, ...]]:
    """Plain paths of ``mapping``, or None when any entry is more than a path with a valid name."""
    if mapping is None:
        return ()
    if not isinstance(mapping, Mapping):
        return None
    out = []
    for name, value in mapping.items():
        if values.name_problem(name) or not isinstance(value, (str, os.PathLike)):
            return None
        path = os.fspath(value)
        if not isinstance(path, str):
            return None
        out.append(PlainPath(name, path))
    return tuple(out)


def requested(argv: Sequence[str], environ: Mapping[str, str], variables: Iterable[str]) -> bool:
    """Whether the command line or the environment could ask for more than ``main`` here: any token
    that is or starts a ``--sagemaker-*`` flag or asks for help, or any of ``variables`` (set at all,
    even empty: the full path decides what an empty one means)."""
    for token in argv:
        if token.startswith("--sagemaker") or token.split("=", 1)[0] == "--help":
            return True
        if token.startswith("-") and not token.startswith("--") and "h" in token:
            return True  # -h, or -h among combined short flags (-vh)
    return any(name in environ for name in variables)


def configured(script: str, environ: Mapping[str, str]) -> bool:
    """Whether an SDK ``config.yaml`` exists or the ``pyproject.toml`` files at or above the script's
    folder have our table, or one that names it cannot be read (the full path reports that)."""
    if any(os.path.exists(path) for path, _, _ in sdk_config_paths(environ)):
        return True
    folder = os.path.dirname(os.path.abspath(script))
    return any(_has_table(data) for _, data in pyprojects_naming_us(folder))


def pyprojects_naming_us(folder: str) -> Iterator[Tuple[str, bytes]]:
    """``(path, bytes)`` of each ``pyproject.toml`` at or above ``folder``, nearest first, whose
    bytes name our table: most never do (or only as a dependency) and need not be parsed. An
    unreadable one is skipped. ``sources.find_pyproject`` walks the same way."""
    folder = os.path.abspath(folder)
    while True:
        path = os.path.join(folder, "pyproject.toml")
        if os.path.isfile(path):
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
            except OSError:
                data = b""
            if PYPROJECT_TABLE.encode() in data:
                yield path, data
        parent = os.path.dirname(folder)
        if parent == folder:
            return
        folder = parent


def _has_table(data: bytes) -> bool:
    """Whether ``data`` (a ``pyproject.toml`` naming us) has ``[tool.aws-sagemaker-remote]``, as
    ``sources.find_pyproject`` reads it; True also when it cannot be read as TOML here."""
    try:
        import tomllib
    except ImportError:  # pragma: no cover - Python 3.8-3.10: the full path reads it with tomli
        return True
    try:
        tool = tomllib.loads(data.decode("utf-8")).get("tool", {})
    except ValueError:  # not UTF-8 or not TOML: the full path says so
        return True
    return isinstance(tool, dict) and PYPROJECT_TABLE in tool


def _table(kind: str) -> Optional[Tuple[Tuple[Tuple[str, str, Any, str, bool], ...], Mapping[str, str]]]:
    """``(fields, aliases)`` of ``kind`` from the generated table, or None when the table is not
    the one of the ``options.py`` beside it (edited since: the full path reads the real thing)."""

    try:
        from . import _option_table as table

        if _sources_crc() != table.OPTIONS_CRC32:
            return None
    except (ImportError, OSError):
        return None
    return table.FIELDS[kind], table.ALIASES[kind]


#: The option parsers :func:`plain_run` may call: those of :mod:`~aws_sagemaker_remote.values`.
_CONVERTERS: Mapping[str, Callable[[Any], Any]] = {
    f"{values.__name__}:{name}": getattr(values, name)
    for name in ("parse_run", "parse_bool", "_text", "_opt_str", "_opt_int", "_int", "_csv", "pairs")
}


def _sagemaker_values(table: Tuple[Tuple[Tuple[str, str, Any, str, bool], ...], Mapping[str, str]],
                      keywords: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """dest → value of every ``--sagemaker-*`` flag after parsing a command line without any (the
    keywords over the built-in defaults), or None when that takes the full path."""
    fields, aliases = table
    known = {name: (dest, convert) for name, dest, _, convert, _ in fields}
    given: Dict[str, Any] = {}
    for keyword, value in keywords.items():
        name = aliases.get(keyword, keyword)
        if name not in known or name in given or known[name][1] not in _CONVERTERS:
            return None  # unknown, given twice, or parsed by options.py: the full path says what
        try:
            converted = _CONVERTERS[known[name][1]](value)
        except (TypeError, ValueError):
            return None
        if value is not None:  # a keyword given as None sets nothing
            given[name] = converted
    out: Dict[str, Any] = {}
    for name, dest, default, convert, repeat in fields:
        value = default
        if name in given:
            value = given[name]
            if repeat:  # KEY=VALUE pairs merge over the lower sources': here there are none
                merged: Dict[str, Any] = {}
                for key, item in value:
                    merged.pop(key, None)
                    merged[key] = item
                value = tuple(merged.items())
            elif isinstance(value, str):
                try:  # argparse parses a string default with the flag's type, as it does in the full path
                    value = _CONVERTERS[convert](value)
                except (TypeError, ValueError):
                    return None
        out[dest] = value
    return out


#: The argparse actions a script's own flag may have on the short path: each only stores what it
#: is given (or prints the script's version). A help action or an action class of the script's own
#: could print or read the parser, which lacks the ``--sagemaker-*`` flags here.
_PLAIN_ACTIONS = tuple(getattr(argparse, name) for name in (
    "_StoreAction", "_StoreConstAction", "_StoreTrueAction", "_StoreFalseAction", "_AppendAction",
    "_AppendConstAction", "_CountAction", "_ExtendAction", "_VersionAction", "BooleanOptionalAction")
    if hasattr(argparse, name))  # BooleanOptionalAction is Python 3.9 and later


def plain_run(definition: Any, argv: Sequence[str], script: str,
              run_locally: Callable[..., Any], environ: Optional[Mapping[str, str]] = None) -> Any:
    """Parse ``argv`` and call ``main`` here as :func:`~aws_sagemaker_remote.api.dispatch` would, or
    return :data:`FULL` (having done nothing) when the full path must.

    :param definition: the :class:`~aws_sagemaker_remote.api.Definition`.
    :param script: the script's path (its folder is where ``pyproject.toml`` is searched from).
    :param run_locally: :func:`~aws_sagemaker_remote.api.run_locally`.
    """
    environ = os.environ if environ is None else environ
    if definition.kind != "processing" or definition.args is not None or definition.argparse_callback is not None:
        return FULL
    table = _table(definition.kind)
    if table is None:
        return FULL
    # the option variables (AWS_SAGEMAKER_REMOTE_INSTANCE, ...; others such as ..._HOME are no option)
    variables = [ENV_PREFIX + name.upper() for name in [f[0] for f in table[0]] + list(table[1])]
    if requested(argv, environ, [*variables, IN_JOB_ENV, ADMIN_OVERRIDE_ENV, USER_OVERRIDE_ENV]) \
            or configured(script, environ):
        return FULL
    inputs, outputs, dependencies = (_paths(m) for m in (definition.inputs, definition.outputs,
                                                         definition.dependencies))
    if inputs is None or outputs is None or dependencies is None:
        return FULL
    paths = inputs + outputs + dependencies
    namespace_values = _sagemaker_values(table, definition.options)
    if namespace_values is None or namespace_values["sagemaker_run"] != "no" or namespace_values["sagemaker_dry_run"] \
            or namespace_values["sagemaker_export_ack"] or namespace_values["sagemaker_export_kfp"]:
        return FULL
    path_dests = [d.dest for d in paths] + [d.remote_dest for d in outputs]
    if len(set(path_dests)) != len(path_dests) or set(path_dests) & set(namespace_values) \
            or any(d.name == CODE_CHANNEL for d in inputs):
        return FULL  # the full path refuses these declarations
    script = os.path.abspath(script)
    parser = Parser(prog=os.path.basename(script), description=definition.description, allow_abbrev=False)
    before = len(parser.added)  # the parser's own -h/--help
    try:
        specs = [_additional_argument(a) for a in (definition.additional_arguments or ())]
        _add_user_arguments(parser, specs, None)
    except (DeclarationError, argparse.ArgumentError, TypeError, ValueError):
        return FULL
    user = parser.added[before:]
    user_flags = {flag for a in user for flag in a.option_strings}
    own = set(parser._option_string_actions)  # -h/--help and the script's flags
    if any(type(a) not in _PLAIN_ACTIONS for a in user) \
            or any(flag.startswith("--sagemaker") for flag in user_flags) \
            or any(a.dest.startswith("sagemaker_") for a in user) \
            or len({a.dest for a in user}) != len(user) \
            or any(d.flag in own for d in paths) \
            or {a.dest for a in user} & set(path_dests):
        return FULL  # adopted, colliding or shadowing flags: the full path's declaration rules apply
    try:
        for d in inputs + outputs + dependencies:
            parser.add_argument(d.flag, dest=d.dest, default=d.default, metavar="PATH")
            if d in outputs:
                parser.add_argument(d.remote_flag, dest=d.remote_dest, default=d.remote, metavar="URI")
        for d in paths:
            taken = set(parser._option_string_actions)
            spellings = [(f, d.dest) for f in d.other_spellings() if f not in taken]
            if d in outputs:
                spellings += [(f, d.remote_dest) for f in d.other_spellings("-s3") if f not in taken]
            for flag, dest in spellings:
                parser.add_argument(flag, dest=dest, default=argparse.SUPPRESS, metavar="PATH")
    except argparse.ArgumentError:
        return FULL
    namespace = parser.parse_args(list(argv), argparse.Namespace(**namespace_values))
    decl = PlainDeclaration(script, inputs, outputs, dependencies)
    return run_locally(decl, namespace, definition.main, dict(namespace_values["sagemaker_env"]))


# --- the generated table ---------------------------------------------------------------------------

#: The modules the table is generated from: the declarations and the converters of their defaults.
TABLE_SOURCES = ("options.py", "values.py")


def _sources_crc() -> int:
    """The CRC-32 of :data:`TABLE_SOURCES` as they are beside this module."""
    import zlib

    crc = 0
    folder = os.path.dirname(os.path.abspath(__file__))
    for name in TABLE_SOURCES:
        with open(os.path.join(folder, name), "rb") as fh:
            crc = zlib.crc32(fh.read(), crc)
    return crc


def table_source() -> str:
    """The text of :mod:`~aws_sagemaker_remote._option_table` for the ``options.py`` beside this module."""

    from .options import OPTIONS_BY_KIND, dest_name, flag_name

    crc = _sources_crc()
    lines = [
        '"""Generated by ``python -m aws_sagemaker_remote.quick`` from options.py: do not edit."""',
        "# name, dest, value after parsing no flag, parser, repeatable",
        f"OPTIONS_CRC32 = {crc}",
        "FIELDS = {",
    ]
    aliases = {}
    for kind, cls in OPTIONS_BY_KIND.items():
        parser = argparse.ArgumentParser(add_help=False)
        cls().add_arguments(parser)
        parsed = vars(parser.parse_args([]))
        lines.append(f"    {kind!r}: (")
        for f in cls.option_fields():
            convert = f.metadata["convert"]
            row = (f.name, dest_name(f), parsed[dest_name(f)], f"{convert.__module__}:{convert.__qualname__}",
                   bool(f.metadata["repeat"]))
            lines.append(f"        {row!r},")
            if not flag_name(f).startswith("--sagemaker-"):  # requested() looks for these tokens only
                raise ValueError(f"{flag_name(f)}: a plain run would not see this flag; name it --sagemaker-*")
        lines.append("    ),")
        aliases[kind] = dict(cls.aliases)
    lines.append("}")
    lines.append(f"ALIASES = {aliases!r}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - the maintainers' command
    target = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_option_table.py")
    with open(target, "w", encoding="utf-8") as out:
        out.write(table_source())
    print(f"wrote {target}")
