"""Step 1 of the data flow: the declaration and the command-line parser it generates.

A script declares its inputs, outputs and dependencies (plus extra flags); this
module normalises that declaration into a frozen :class:`Declaration` and builds
the argparse parser: one flag per path, the user's own flags, and the
``--sagemaker-*`` flags of :mod:`aws_sagemaker_remote.options`.
No AWS import here; standard library only (this module also runs inside the job).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import types
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from .args import OptionalInput, PathArgument, is_s3_uri, name_problem
from .container import CODE_CHANNEL
from .errors import DeclarationError, UsageError
from .kinds import JobKind, job_kind
from .options import CommonOptions


@dataclass(frozen=True)
class PathDecl:
    """One declared input, output or dependency, normalised."""

    name: str
    default: Optional[str]
    arg: PathArgument
    #: for outputs: the default of the ``--NAME-s3`` flag
    remote: str = "default"
    #: the attribute of the script's own ``--NAME``, when the framework adopted it (see :func:`adopting_arguments`)
    adopted_dest: Optional[str] = None
    #: hidden other spellings of ``--NAME`` / ``--NAME-s3`` the parser has (see :func:`adopting_arguments`)
    aliases: Tuple[str, ...] = ()
    remote_aliases: Tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return "--" + self.name

    def other_spellings(self, suffix: str = "") -> Tuple[str, ...]:
        """``--NAME`` + ``suffix`` with ``_`` and ``-`` swapped in the name (the first project spelt
        ``my_module`` as ``--my-module``): the candidates for hidden flags."""
        names = [self.name]
        for other in (self.name.replace("_", "-"), self.name.replace("-", "_")):
            if other not in names:
                names.append(other)
        return tuple(f"--{n}{suffix}" for n in names[1:])

    @property
    def flags(self) -> Tuple[str, ...]:
        """``--NAME`` and the hidden other spellings the parser has."""
        return (self.flag,) + self.aliases

    @property
    def remote_flags(self) -> Tuple[str, ...]:
        """``--NAME-s3`` and the hidden other spellings the parser has."""
        return (self.remote_flag,) + self.remote_aliases

    @property
    def dest(self) -> str:
        """The attribute of ``args``: the name with ``-`` as ``_``, as argparse would make it
        (or the attribute of the script's own ``--NAME``, when the framework adopted it)."""
        return self.adopted_dest or self.name.replace("-", "_")

    @property
    def remote_flag(self) -> str:
        return f"--{self.name}-s3"

    @property
    def remote_dest(self) -> str:
        return f"{self.dest}_s3"


@dataclass(frozen=True)
class Declaration:
    """Everything a script declares about itself, before any flag is parsed."""

    kind: JobKind
    script: str
    inputs: Tuple[PathDecl, ...] = ()
    outputs: Tuple[PathDecl, ...] = ()
    dependencies: Tuple[PathDecl, ...] = ()
    additional_arguments: Tuple[Mapping[str, Any], ...] = ()
    argparse_callback: Optional[Callable[[argparse.ArgumentParser], Any]] = None
    description: Optional[str] = None
    #: training only: ((keyword, default), ...) of the model/output/checkpoint dirs
    training_dirs: Tuple[Tuple[str, str], ...] = ()
    #: training folders the script declares itself: ((keyword, its flag, its attribute), ...)
    adopted_dirs: Tuple[Tuple[str, str, str], ...] = ()

    def path_decls(self) -> Tuple[PathDecl, ...]:
        return self.inputs + self.outputs + self.dependencies

    def dir_flag(self, key: str) -> str:
        """The flag of training folder ``key``: the generated one, or the script's own (adopted)."""
        return next((flag for k, flag, _ in self.adopted_dirs if k == key), dir_flag(key))

    def dir_dest(self, key: str) -> str:
        """The attribute of ``args`` that holds training folder ``key``."""
        return next((dest for k, _, dest in self.adopted_dirs if k == key), key)


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
        from .options import OPTIONS_BY_KIND, flag_name

        mine = {flag_name(f) for f in dataclasses.fields(kind.options)}
        for token in message[len(prefix):].split():
            flag = token.split("=", 1)[0]
            for other, options in OPTIONS_BY_KIND.items():
                if flag not in mine and flag in {flag_name(f) for f in dataclasses.fields(options)}:
                    return f"{flag}: an option of {other} jobs only; a {kind.name} job has no such setting"
        return None


# --- normalising declarations ------------------------------------------------------

def _input_decl(name: str, value: Any) -> PathDecl:
    if isinstance(value, OptionalInput) or value is None:
        return PathDecl(name, None, PathArgument(None, optional=True))
    if isinstance(value, PathArgument):
        default = value.local if value.local is not None else (value.remote if is_s3_uri(value.remote) else None)
        arg = value if default is not None else dataclasses.replace(value, optional=True)
        return PathDecl(name, _fspath(default), arg)
    if isinstance(value, (str, os.PathLike)):
        return PathDecl(name, _fspath(value), PathArgument(_fspath(value)))
    raise DeclarationError(f"inputs[{name!r}] must be a path, an s3:// URI, PathArgument or OPTIONAL, "
                           f"not {type(value).__name__}")


def _output_decl(name: str, value: Any) -> PathDecl:
    if isinstance(value, tuple):
        if len(value) != 2:
            raise DeclarationError(f"outputs[{name!r}] tuple must be (local, remote)")
        local, remote = value
        return PathDecl(name, _fspath(local), PathArgument(_fspath(local), remote=str(remote)), str(remote))
    if isinstance(value, PathArgument):
        return PathDecl(name, _fspath(value.local), value, value.remote)
    if isinstance(value, (str, os.PathLike)):
        return PathDecl(name, _fspath(value), PathArgument(_fspath(value)))
    if isinstance(value, OptionalInput) or value is None:
        return PathDecl(name, None, PathArgument(None, optional=True))
    raise DeclarationError(f"outputs[{name!r}] must be a path, a (local, remote) tuple or PathArgument, "
                           f"not {type(value).__name__}")


def _dependency_decl(name: str, value: Any) -> PathDecl:
    path: Optional[str]
    if isinstance(value, types.ModuleType):
        path = module_path(value)
    elif isinstance(value, PathArgument):
        path = _fspath(value.local)
    elif isinstance(value, (str, os.PathLike)):
        path = _fspath(value)
    else:
        raise DeclarationError(f"dependencies[{name!r}] must be a path or an imported module, "
                               f"not {type(value).__name__}")
    return PathDecl(name, path, PathArgument(path))


def module_path(module: types.ModuleType) -> str:
    """The folder of a package, or the file of a single-file module."""
    file: Optional[str] = getattr(module, "__file__", None)
    if not file:
        paths = list(getattr(module, "__path__", []) or [])
        if paths:
            return str(paths[0])
        raise DeclarationError(f"module {module.__name__} has no file to upload")
    if os.path.basename(file) == "__init__.py":
        return os.path.dirname(os.path.abspath(file))
    return os.path.abspath(file)


def _fspath(value: Any) -> Optional[str]:
    return None if value is None else os.fspath(value)


def _items(mapping: Optional[Mapping[str, Any]], what: str) -> List[Tuple[str, Any]]:
    if mapping is None:
        return []
    if not isinstance(mapping, Mapping):
        raise DeclarationError(f"{what} must be a dict of name → path, not {type(mapping).__name__}")
    out = []
    for name, value in mapping.items():
        problem = name_problem(name)
        if problem:
            raise DeclarationError(f"{what}: {problem}")
        out.append((name, value))
    return out


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


def declare(
    kind: Union[str, JobKind],
    script: str,
    inputs: Optional[Mapping[str, Any]] = None,
    outputs: Optional[Mapping[str, Any]] = None,
    dependencies: Optional[Mapping[str, Any]] = None,
    additional_arguments: Optional[Iterable[Any]] = None,
    argparse_callback: Optional[Callable[[argparse.ArgumentParser], Any]] = None,
    description: Optional[str] = None,
    training_dirs: Optional[Mapping[str, str]] = None,
) -> Declaration:
    """Normalise a script's declaration; raises :class:`DeclarationError` when it is inconsistent."""
    try:
        kind = job_kind(kind)
    except ValueError as exc:
        raise DeclarationError(str(exc)) from None
    ins = tuple(_input_decl(n, v) for n, v in _items(inputs, "inputs"))
    outs = tuple(_output_decl(n, v) for n, v in _items(outputs, "outputs"))
    deps = tuple(_dependency_decl(n, v) for n, v in _items(dependencies, "dependencies"))
    given = dict(training_dirs or {})
    dirs = tuple((key, str(given.get(key) or default)) for key, default, _, _ in kind.folders)
    seen: Dict[str, str] = {}
    for what, decls in (("inputs", ins), ("outputs", outs), ("dependencies", deps)):
        for d in decls:
            if d.dest in seen:
                raise DeclarationError(f"{what} name {d.name!r} is also declared in {seen[d.dest]}; "
                                       f"each name makes one flag --{d.name}")
            seen[d.dest] = what
    for d in ins:
        if d.name == CODE_CHANNEL:
            raise DeclarationError(f"input name {CODE_CHANNEL!r} is reserved for the job's code bundle")
    if not kind.outputs_have_locations:
        for d in outs:
            if d.remote != "default":
                raise DeclarationError(f"outputs[{d.name!r}]: a {kind.name} job uploads its outputs inside "
                                       f"output.tar.gz, so they cannot have their own S3 location")
    for key, _ in dirs:
        if key in seen or key.replace("_", "-") in {d.name for d in ins + outs + deps}:
            raise DeclarationError(f"{seen[key]} name {key!r} collides with the generated training flag "
                                   f"--{key.replace('_', '-')}")
    return Declaration(
        kind=kind,
        script=os.path.abspath(script),
        inputs=ins,
        outputs=outs,
        dependencies=deps,
        additional_arguments=tuple(_additional_argument(a) for a in (additional_arguments or ())),
        argparse_callback=argparse_callback,
        description=description,
        training_dirs=dirs,
    )


# --- building the parser -------------------------------------------------------------

def _add(target: Any, flag: str, **kwargs: Any) -> argparse.Action:
    try:
        action: argparse.Action = target.add_argument(flag, **kwargs)
        return action
    except argparse.ArgumentError as exc:
        raise DeclarationError(f"{flag} is declared twice: {exc.message}") from None


def _add_spellings(target: Any, flags: Sequence[str], dest: str, primary: str) -> None:
    """Hidden flags writing ``dest`` under other spellings; no default of their own."""
    for flag in flags:
        action = _add(target, flag, dest=dest, default=argparse.SUPPRESS, metavar="PATH", help=argparse.SUPPRESS)
        action.alias_of = primary  # type: ignore[attr-defined]


def dir_flag(key: str) -> str:
    """``model_dir`` → ``--model-dir``."""
    return "--" + key.replace("_", "-")


#: The spellings a training script may use for a training folder it declares itself, preferred first
#: (``--output-data-dir`` is SageMaker's, ``--output-dir`` this framework's; ``SM_OUTPUT_DIR`` is
#: ``/opt/ml/output``, so a script that declares both keeps ``--output-dir`` as its own flag).
ADOPTABLE_DIRS: Mapping[str, Tuple[str, ...]] = types.MappingProxyType({
    "model_dir": ("--model-dir",),
    "output_dir": ("--output-data-dir", "--output-dir"),
    "checkpoint_dir": ("--checkpoint-dir",),
})


def add_arguments(parser: argparse.ArgumentParser, decl: Declaration, options: CommonOptions) -> argparse.ArgumentParser:
    """Add every generated flag of ``decl`` and ``options`` to an existing parser.

    The ``--sagemaker-*`` flags go in first so that a user flag colliding with one
    is reported as the user's declaration error. The script's own flags
    (``additional_arguments``, ``argparse_callback``, or flags ``parser`` already has) come
    next, then the path flags: a path flag the script declares itself is adopted (see
    :func:`adopting_arguments`).
    """
    adopting_arguments(parser, decl, options)
    return parser


def adopting_arguments(parser: argparse.ArgumentParser, decl: Declaration, options: CommonOptions) -> Declaration:
    """:func:`add_arguments`, returning the declaration with the flags the script declares itself.

    A script written for SageMaker declares ``--model-dir`` (with ``SM_MODEL_DIR`` as its
    default), ``--output-data-dir``, ``--checkpoint-dir`` or a channel flag such as ``--train``
    itself. Instead of refusing the second declaration, the framework uses the script's:
    the path flag is not generated, the script's flag is read and rewritten in its place
    (locally its value is what was typed, else the script's default, else the declared
    one; in the job it is the container path), and the returned declaration says so.
    """
    groups: Dict[str, Any] = {}
    if decl.inputs:
        groups["inputs"] = parser.add_argument_group("inputs", "Input paths: local paths or s3:// URIs.")
    if decl.outputs:
        groups["outputs"] = parser.add_argument_group(
            "outputs", "Output folders, and where the job uploads them (s3:// URI or 'default').")
    if decl.dependencies:
        groups["dependencies"] = parser.add_argument_group(
            "dependencies", "Module folders or files uploaded with the script and put on PYTHONPATH.")
    if decl.training_dirs:
        groups["training"] = parser.add_argument_group(
            "training folders", "Local defaults; inside the job they point at the SageMaker folders.")
    sm_group = parser.add_argument_group(
        "SageMaker options", "Where and how the script runs; the defaults come from the script.")
    before = set(_flag_actions(parser))  # the flags of a parser the script made itself
    options.add_arguments(sm_group)
    generated = set(_flag_actions(parser)) - before  # never adopted: a path named so collides
    _add_user_arguments(parser, decl)
    declared = {flag: action for flag, action in _flag_actions(parser).items() if flag not in generated}

    def adopt(d: PathDecl) -> PathDecl:
        action = declared.get(d.flag)
        if action is None:
            return d
        owner = getattr(action, "dataclass_name", None)
        if owner is not None:  # a typed field is not a path flag: its default and type say otherwise
            raise DeclarationError(f"args={owner}: the flag of field {action.dest!r} is {d.flag}, the flag of "
                                   f"the declared path {d.name!r}; allowed: a field name no path uses")
        _adopted(action, d.flag, d.default)
        return dataclasses.replace(d, adopted_dest=action.dest)

    inputs, outputs, dependencies = (tuple(adopt(d) for d in ds) for ds in (decl.inputs, decl.outputs,
                                                                         decl.dependencies))
    def spell(group: Any, d: PathDecl, remote_flags: bool = False) -> PathDecl:
        """Hidden other spellings of the path's flags, where neither the script nor another path has them."""
        taken = set(_flag_actions(parser))
        aliases = () if d.adopted_dest else tuple(f for f in d.other_spellings() if f not in taken)
        _add_spellings(group, aliases, d.dest, d.flag)
        remote: Tuple[str, ...] = ()
        if remote_flags:
            remote = tuple(f for f in d.other_spellings("-s3") if f not in taken)
            _add_spellings(group, remote, d.remote_dest, d.remote_flag)
        return dataclasses.replace(d, aliases=aliases, remote_aliases=remote)

    for d in inputs:
        if d.adopted_dest is None:
            hint = d.arg.help or f"Input {d.name!r}" + (" (optional)" if d.arg.optional else "")
            _add(groups["inputs"], d.flag, dest=d.dest, default=d.default, metavar="PATH",
                 help=f"{hint} (default: {d.default if d.default is not None else 'none'})")
    for d in outputs:
        hint = d.arg.help or f"Output {d.name!r} local folder"
        if d.adopted_dest is None:
            _add(groups["outputs"], d.flag, dest=d.dest, default=d.default, metavar="PATH",
                 help=f"{hint} (default: {d.default if d.default is not None else 'none'})")
        if decl.kind.outputs_have_locations:  # training outputs travel inside output.tar.gz
            _add(groups["outputs"], d.remote_flag, dest=d.remote_dest, default=d.remote, metavar="URI",
                 help=f"Where the job uploads output {d.name!r}: s3:// URI or 'default' (default: {d.remote})")
    for d in dependencies:
        if d.adopted_dest is None:
            _add(groups["dependencies"], d.flag, dest=d.dest, default=d.default, metavar="PATH",
                 help=f"Module {d.name!r} (default: {d.default})")
    inputs = tuple(spell(groups.get("inputs"), d) for d in inputs)
    outputs = tuple(spell(groups.get("outputs"), d, decl.kind.outputs_have_locations) for d in outputs)
    dependencies = tuple(spell(groups.get("dependencies"), d) for d in dependencies)
    helps = {key: text for key, _, _, text in decl.kind.folders}
    adopted_dirs: List[Tuple[str, str, str]] = []
    for key, default in decl.training_dirs:
        own = next((flag for flag in ADOPTABLE_DIRS.get(key, (dir_flag(key),)) if flag in declared), None)
        if own is not None:
            _adopted(declared[own], own, default)
            adopted_dirs.append((key, own, declared[own].dest))
            continue
        _add(groups["training"], dir_flag(key), dest=key, default=default, metavar="DIR",
             help=f"{helps[key]} (default: {default})")
    if isinstance(parser, Parser):  # a caller's own parser: its other flags are its owner's business
        _check_dests(parser)
    return dataclasses.replace(decl, inputs=inputs, outputs=outputs, dependencies=dependencies,
                               adopted_dirs=tuple(adopted_dirs))


def _adopted(action: argparse.Action, flag: str, default: Optional[str]) -> None:
    """Check that the script's own path flag takes one value; without a default of its own (an
    ``SM_*`` variable read outside a job is None) it gets the declared one."""
    if action.nargs is not None or not _stores_one_value(action):
        raise DeclarationError(f"the script declares {flag} itself, so it must take one value (the path); "
                               f"allowed: add_argument({flag!r}, default=...) with no nargs or action")
    if action.default is None and default is not None:
        action.default = default


def _flag_actions(parser: argparse.ArgumentParser) -> Dict[str, argparse.Action]:
    """Every option string of ``parser`` → its action.

    Our :class:`Parser` records what is added to it. A parser the script built itself
    before handing it over (``sagemaker_*_args``) is read through argparse's own table:
    argparse offers no public view of a parser's flags, and this is the one place we look.
    """
    if isinstance(parser, Parser):
        return {flag: action for action in parser.added for flag in action.option_strings}
    return dict(parser._option_string_actions)


def _stores_one_value(action: argparse.Action) -> bool:
    """True when ``--flag VALUE`` leaves exactly ``VALUE`` in the namespace (``store``, not ``append``)."""
    probe = argparse.Namespace(**{action.dest: None})
    try:
        action(argparse.ArgumentParser(add_help=False), probe, "/probe", None)
    except Exception:  # noqa: BLE001 - any action that cannot take one plain value is not a path flag
        return False
    return getattr(probe, action.dest, None) == "/probe"


def _add_user_arguments(parser: argparse.ArgumentParser, decl: Declaration) -> None:
    """The script's ``additional_arguments`` and ``argparse_callback``."""
    for spec in decl.additional_arguments:
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
    if decl.argparse_callback is not None:
        try:
            decl.argparse_callback(parser)
        except argparse.ArgumentError as exc:
            raise DeclarationError(f"argparse_callback adds a flag that collides with a generated flag: "
                                   f"{exc.message}") from None


def _check_dests(parser: Parser) -> None:
    """Two flags writing the same attribute would silently shadow each other."""
    owners: Dict[str, str] = {}
    for action in parser.added:
        if action.dest in (argparse.SUPPRESS, "help") or not action.option_strings and action.dest == "help":
            continue
        if getattr(action, "alias_of", None):
            continue  # another spelling of a generated flag, writing the same attribute on purpose
        flag = action.option_strings[0] if action.option_strings else action.dest
        if action.dest in owners and owners[action.dest] != flag:
            raise DeclarationError(f"{flag} and {owners[action.dest]} both set args.{action.dest}")
        owners[action.dest] = flag


def build_parser(decl: Declaration, options: CommonOptions, prog: Optional[str] = None) -> Parser:
    """A new parser with every generated flag (see :func:`add_arguments`)."""
    parser = Parser(
        prog=prog or os.path.basename(decl.script),
        description=decl.description,
        allow_abbrev=False,  # an abbreviation could not be found again when the argv is rewritten
    )
    parser.declaration = adopting_arguments(parser, decl, options)
    return parser
