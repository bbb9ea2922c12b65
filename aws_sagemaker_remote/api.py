"""The two entry functions: run ``main`` here, or as a SageMaker job.

``sagemaker_processing_main`` and ``sagemaker_training_main`` build the parser
from the declaration, parse the command line and then either call ``main``
(``--sagemaker-run=no``, the default) or hand over to the launcher
(``yes`` / ``local``), which is imported only then: a local run never imports
boto3. These functions are the only place (with the CLI) that calls
``sys.exit``.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    NamedTuple,
    NoReturn,
    Optional,
    Sequence,
)

from .errors import DeclarationError, JobFailed, RemoteError, UsageError
from .values import IN_JOB

if TYPE_CHECKING:  # a plain run (see quick.py) never loads the declaration machinery
    from .flags import Declaration
    from .options import CommonOptions
    from .quick import Parser

#: ``main(args)`` (args: the parsed namespace, or the ``args=`` dataclass instance)
MainFunction = Callable[..., Any]


def sagemaker_processing_main(
    main: MainFunction,
    inputs: Optional[Mapping[str, Any]] = None,
    outputs: Optional[Mapping[str, Any]] = None,
    dependencies: Optional[Mapping[str, Any]] = None,
    *,
    modules: Optional[Mapping[str, Any]] = None,
    additional_arguments: Optional[Iterable[Any]] = None,
    argparse_callback: Optional[Callable[[argparse.ArgumentParser], Any]] = None,
    description: Optional[str] = None,
    script: Optional[str] = None,
    argv: Optional[Sequence[str]] = None,
    args: Optional[type] = None,
    **options: Any,
) -> Any:
    """Run ``main(args)`` here, or as a SageMaker Processing job with ``--sagemaker-run=yes``.

    :param main: the script's function; it gets the parsed ``argparse.Namespace``.
    :param inputs: name → local path, ``s3://`` URI, :class:`~aws_sagemaker_remote.args.PathArgument`
        or :data:`~aws_sagemaker_remote.args.OPTIONAL`. Each makes a flag ``--NAME``.
    :param outputs: name → local folder, ``(local, remote)`` tuple or ``PathArgument``; each makes
        ``--NAME`` (local folder) and ``--NAME-s3`` (``s3://`` URI or ``default``).
    :param dependencies: name → module folder, ``.py`` file or imported module; each makes ``--NAME``.
        Uploaded with the script and put on ``PYTHONPATH`` inside the job.
    :param modules: another name for ``dependencies`` (the first project's keyword).
    :param additional_arguments: a list of ``add_argument`` keyword dicts; ``dest`` is the flag,
        e.g. ``{'dest': '--filter-width', 'default': 32, 'help': 'Filter width'}``; or of
        ``(flags, keywords)`` pairs, e.g. ``(['--filter-width'], {'default': 32})``.
    :param argparse_callback: called with the parser to add flags of your own.
    :param description: the parser's description (shown by ``--help``).
    :param script: the script to run in the job (default: the file that defines ``main``).
    :param argv: the command line (default: ``sys.argv[1:]``).
    :param args: a dataclass declaring the script's own flags (one per field, through
        ``argparse-dataclass``); ``main`` then gets an instance of it, and the parsed namespace (paths,
        options) as a second argument if it takes two. See :doc:`quickstart`.
    :param options: defaults of the ``--sagemaker-*`` flags, by field name of
        :class:`~aws_sagemaker_remote.options.ProcessingOptions`: ``run``, ``wait``, ``image``,
        ``instance``, ``instance_count``, ``volume_size``, ``max_run``, ``role``, ``requirements``,
        ``configuration_script``, ``configuration_command``, ``env``, ``tags``, ``base_job_name``, …
    :returns: what ``main`` returned (local run) or the :class:`~aws_sagemaker_remote.spec.JobResult`.
    """
    return _entry(define_processing(main, inputs, outputs, dependencies, modules=modules,
                                    additional_arguments=additional_arguments, argparse_callback=argparse_callback,
                                    description=description, script=script, args=args, **options), argv)


def sagemaker_training_main(
    main: MainFunction,
    inputs: Optional[Mapping[str, Any]] = None,
    outputs: Optional[Mapping[str, Any]] = None,
    dependencies: Optional[Mapping[str, Any]] = None,
    *,
    modules: Optional[Mapping[str, Any]] = None,
    channels: Optional[Mapping[str, Any]] = None,
    additional_arguments: Optional[Iterable[Any]] = None,
    argparse_callback: Optional[Callable[[argparse.ArgumentParser], Any]] = None,
    description: Optional[str] = None,
    script: Optional[str] = None,
    argv: Optional[Sequence[str]] = None,
    metrics: Optional[Mapping[str, str]] = None,
    hyperparameters: Optional[Mapping[str, Any]] = None,
    model_dir: Optional[str] = None,
    output_dir: Optional[str] = None,
    checkpoint_dir: Optional[str] = None,
    args: Optional[type] = None,
    **options: Any,
) -> Any:
    """Run ``main(args)`` here, or as a SageMaker Training job with ``--sagemaker-run=yes``.

    :param inputs: channel name → local path, ``s3://`` URI or ``PathArgument``; each makes ``--NAME``.
        Inside the job the flag points at ``/opt/ml/input/data/NAME``.
    :param channels: another name for ``inputs``.
    :param outputs: extra output folders (uploaded inside ``output.tar.gz``).
    :param metrics: metric name → regex with one group, e.g. ``{'loss': r'loss: ([0-9.]+)'}``.
    :param hyperparameters: extra key → value pairs recorded on the job.
    :param model_dir: local default of ``--model-dir`` (``output/model``); ``/opt/ml/model`` in the job.
    :param output_dir: local default of ``--output-dir`` (``output/data``); ``/opt/ml/output/data`` in the job.
    :param checkpoint_dir: local default of ``--checkpoint-dir`` (``output/checkpoints``);
        ``/opt/ml/checkpoints`` in the job, synced with the checkpoint S3 location.
    :param options: defaults of the ``--sagemaker-*`` flags, by field name of
        :class:`~aws_sagemaker_remote.options.TrainingOptions` (adds ``spot``, ``max_wait``,
        ``checkpoint_s3``, ``input_mode``, ``metric``, ``output_s3``, ``download_model``, …).

    The other parameters are those of :func:`sagemaker_processing_main`.
    """
    return _entry(define_training(main, inputs, outputs, dependencies, modules=modules, channels=channels,
                                  additional_arguments=additional_arguments, argparse_callback=argparse_callback,
                                  description=description, script=script, metrics=metrics,
                                  hyperparameters=hyperparameters, model_dir=model_dir, output_dir=output_dir,
                                  checkpoint_dir=checkpoint_dir, args=args, **options), argv)


class Definition(NamedTuple):
    """A script's whole declaration, as the entry functions (and the decorators) take it."""

    kind: str
    main: Callable[..., Any]
    inputs: Optional[Mapping[str, Any]]
    outputs: Optional[Mapping[str, Any]]
    dependencies: Optional[Mapping[str, Any]]
    additional_arguments: Optional[Iterable[Any]]
    argparse_callback: Optional[Callable[[argparse.ArgumentParser], Any]]
    description: Optional[str]
    script: Optional[str]
    training: Mapping[str, Any]
    options: Mapping[str, Any]
    args: Optional[type]

    def prepare(self, script: Optional[str] = None) -> "tuple[Declaration, CommonOptions, Parser]":
        """Declaration, keyword options and parser (``script`` overrides the declared one)."""
        return prepare(self.kind, self.main, self.inputs, self.outputs, self.dependencies,
                       self.additional_arguments, self.argparse_callback, self.description,
                       script or self.script, self.training, self.options, self.args)


def define_processing(main: Callable[..., Any], inputs: Optional[Mapping[str, Any]] = None,
                      outputs: Optional[Mapping[str, Any]] = None,
                      dependencies: Optional[Mapping[str, Any]] = None, *,
                      modules: Optional[Mapping[str, Any]] = None,
                      additional_arguments: Optional[Iterable[Any]] = None,
                      argparse_callback: Optional[Callable[[argparse.ArgumentParser], Any]] = None,
                      description: Optional[str] = None, script: Optional[str] = None,
                      args: Optional[type] = None, **options: Any) -> Definition:
    """The :class:`Definition` of :func:`sagemaker_processing_main`'s keywords."""
    return Definition("processing", main, inputs, outputs, merge_dependencies(dependencies, modules),
                      additional_arguments, argparse_callback, description, script, {}, options, args)


def define_training(main: Callable[..., Any], inputs: Optional[Mapping[str, Any]] = None,
                    outputs: Optional[Mapping[str, Any]] = None,
                    dependencies: Optional[Mapping[str, Any]] = None, *,
                    modules: Optional[Mapping[str, Any]] = None,
                    channels: Optional[Mapping[str, Any]] = None,
                    additional_arguments: Optional[Iterable[Any]] = None,
                    argparse_callback: Optional[Callable[[argparse.ArgumentParser], Any]] = None,
                    description: Optional[str] = None, script: Optional[str] = None,
                    metrics: Optional[Mapping[str, str]] = None,
                    hyperparameters: Optional[Mapping[str, Any]] = None,
                    model_dir: Optional[str] = None, output_dir: Optional[str] = None,
                    checkpoint_dir: Optional[str] = None, args: Optional[type] = None,
                    **options: Any) -> Definition:
    """The :class:`Definition` of :func:`sagemaker_training_main`'s keywords."""
    if channels:
        inputs = {**dict(inputs or {}), **dict(channels)}
    dirs = {k: v for k, v in (("model_dir", model_dir), ("output_dir", output_dir),
                               ("checkpoint_dir", checkpoint_dir)) if v}
    return Definition("training", main, inputs, outputs, merge_dependencies(dependencies, modules),
                      additional_arguments, argparse_callback, description, script, {"training_dirs": dirs},
                      fold_training_keywords(options, metrics, hyperparameters), args)


def fold_training_keywords(options: Mapping[str, Any], metrics: Optional[Mapping[str, str]],
                           hyperparameters: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """``metrics`` / ``hyperparameters`` become the defaults of ``--sagemaker-metric`` /
    ``--sagemaker-hyperparameter`` (one source for both; the option keywords, if also given, win)."""
    from .values import pairs

    out = dict(options)
    for keyword, extra in (("metric", metrics), ("hyperparameter", hyperparameters)):
        if extra:
            out[keyword] = list(pairs(extra)) + list(pairs(options.get(keyword)))
    return out


def merge_dependencies(dependencies: Optional[Mapping[str, Any]],
                        modules: Optional[Mapping[str, Any]]) -> Optional[Mapping[str, Any]]:
    if dependencies and modules:
        return {**dict(modules), **dict(dependencies)}
    return dependencies or modules


def _script_of(main: Callable[..., Any]) -> str:
    """The script the job runs again.

    The file defining ``main`` when it was defined in the script being run (its
    module is ``__main__``), which holds under runner modules too (``python -m
    cProfile script.py``, ``-m pdb``, ``-m trace``: there ``sys.modules["__main__"]``
    is the runner, whose file must never become the job's code); else the script
    Python was started with (``main`` may come from another module), else the file
    that defines ``main`` (a notebook has no script file).
    """
    defined = getattr(getattr(main, "__code__", None), "co_filename", None)
    if getattr(main, "__module__", None) == "__main__" and _is_script(defined):
        return os.path.abspath(str(defined))
    started = getattr(sys.modules.get("__main__"), "__file__", None)
    argv0 = sys.argv[0] if sys.argv else None
    if _is_script(argv0) and os.path.abspath(str(argv0)) != os.path.abspath(str(started or "")):
        started = argv0  # a runner module ran the script: sys.argv[0] is the script, not the runner
    for path in (started, defined):
        if _is_script(path):
            return os.path.abspath(str(path))
    return os.path.abspath(sys.argv[0])


def _is_script(path: Optional[str]) -> bool:
    return bool(path) and str(path).endswith(".py") and os.path.exists(str(path))


def prepare(
    kind: str,
    main: Optional[MainFunction],
    inputs: Optional[Mapping[str, Any]],
    outputs: Optional[Mapping[str, Any]],
    dependencies: Optional[Mapping[str, Any]],
    additional_arguments: Optional[Iterable[Any]],
    argparse_callback: Optional[Callable[[argparse.ArgumentParser], Any]],
    description: Optional[str],
    script: Optional[str],
    training: Mapping[str, Any],
    options: Mapping[str, Any],
    args: Optional[type] = None,
) -> "tuple[Declaration, CommonOptions, Parser]":
    """Declaration, keyword options and parser (no parsing yet).

    :param args: a dataclass declaring the script's own arguments (see :mod:`~aws_sagemaker_remote.typed`).
    """
    from .flags import build_parser, declare

    if args is not None:
        from .typed import add_to_parser

        argparse_callback = add_to_parser(args, argparse_callback)
    decl = declare(
        kind,
        script or (_script_of(main) if main is not None else sys.argv[0]),
        inputs=inputs,
        outputs=outputs,
        dependencies=dependencies,
        additional_arguments=additional_arguments,
        argparse_callback=argparse_callback,
        description=description,
        **training,
    )
    from .sources import resolve

    # keywords over environment, pyproject.toml, SDK files
    resolved = resolve(decl.kind.name, decl.script, options)
    parser = build_parser(decl, resolved.options)
    parser.resolved = resolved
    return parser.declaration, resolved.options, parser


def _entry(definition: Definition, argv: Optional[Sequence[str]]) -> Any:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        main = definition.main
        if not callable(main):
            raise DeclarationError(f"main must be a function taking the parsed arguments, not {type(main).__name__}")
        from .quick import FULL, plain_run

        # no --sagemaker-* flag, variable or setting anywhere: main runs here without the option machinery
        value = plain_run(definition, argv, definition.script or _script_of(main), run_locally)
        if value is not FULL:
            return value
        decl, _, parser = definition.prepare()
        return dispatch(decl, parser, main, argv, definition.args)
    except RemoteError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def dispatch(decl: Declaration, parser: Parser, main: Callable[..., Any], argv: Sequence[str],
             args: Optional[type] = None, read_value: bool = False) -> Any:
    """Parse ``argv`` and run: ``main`` here (``no``, and inside the job), or launch the job.

    Raises the :mod:`~aws_sagemaker_remote.errors` exceptions; the call form turns them into an
    exit status, a launch from Python lets them through.

    :param args: the dataclass of the script's own arguments (``main`` then gets an instance of it).
    :param read_value: read back what ``main`` returned in the job into ``JobResult.value``.
    :returns: what ``main`` returned (``no``) or the job's :class:`~aws_sagemaker_remote.spec.JobResult`.
    """
    namespace = parser.parse_args(list(argv))
    opts = parser.resolved.options.from_namespace(namespace)
    from .sources import provenance

    sources = provenance(parser.resolved, argv)
    if opts.run in ("no", IN_JOB) and not (opts.export_ack or opts.export_kfp):  # an export stages the job
        if opts.dry_run:
            raise UsageError("describes a job: use it with --sagemaker-run=yes or local",
                             flag="--sagemaker-dry-run")
        if args is not None:
            from .typed import bind

            main = bind(main, args)
        # inside a job the request's Environment (and what the configuration ran) is already
        # set: applying the keyword defaults again would overwrite the command line's values
        if opts.run != IN_JOB:
            return run_locally(decl, namespace, main, dict(opts.env))
        try:
            value = run_locally(decl, namespace, main, None)
        except RemoteError:
            raise
        except Exception as exc:  # noqa: BLE001 - the script's own error, shown once, then the job fails
            print_user_traceback(exc)
            sys.exit(1)
        from .result import write_value

        write_value(decl, namespace, value)
        return value
    return _launch(decl, namespace, opts, argv, sources, read_value=read_value)


def _launch(decl: Declaration, namespace: argparse.Namespace, opts: CommonOptions, argv: Sequence[str],
            sources: Sequence["tuple[str, str]"] = (), read_value: bool = False) -> Any:
    """``yes`` / ``local``: plan the job, choose its target, launch it (boto3 loads from here on)."""
    import datetime as _dt

    from .bundle import check_code
    from .launch import launch, terminate_like_ctrl_c
    from .leftovers import sweep
    from .plan import plan_control, plan_job
    from .reinvoke import user_arguments
    from .targets import choose_target

    terminate_like_ctrl_c()
    spec = plan_job(decl, namespace, opts, user_arguments(argv, decl, opts),
                    now=_dt.datetime.now(_dt.timezone.utc), token=os.urandom(2).hex())
    # leftovers of killed launches go first: the code folder (the temp folder, say) may hold some
    sweep()
    notes: List[str] = []
    code = check_code(spec.code, notes)  # a home folder or an oversized bundle stops here, before any request
    control = plan_control(opts, sources=sources)
    target = choose_target(spec, control)
    for note in notes:  # files left out on purpose (links leading out of their folder)
        print(note, file=sys.stderr)
    return launch(spec, control, target, read_value=read_value, code=code)


#: While ``main`` runs here: temporary output folder -> the ``s3://`` URI it is uploaded to afterwards.
_UPLOADED_TO: Dict[str, str] = {}


def output_location(path: str) -> str:
    """Where the output folder ``path`` can be found once the run is over, for messages such as
    ``written to ...``.

    Inside a processing job, the folder disappears with the job's container: this is the
    ``s3://`` URI SageMaker uploads it to (read from the job's ``processingjobconfig.json``).
    In a run here with an ``s3://`` output, the temporary folder is removed after the upload:
    this is that URI. Otherwise (a folder here, or a training job's folders, which SageMaker
    packs into ``model.tar.gz`` / ``output.tar.gz``) it is ``path`` made absolute.
    """
    full = os.path.abspath(str(path)).rstrip(os.sep)
    if full in _UPLOADED_TO:
        return _UPLOADED_TO[full]
    from .quick import IN_JOB_ENV

    if os.environ.get(IN_JOB_ENV):
        import json

        from .container import DEFAULT, ROOT_ENV, ContainerPaths

        try:
            with open(ContainerPaths.from_env().processing_job_config, encoding="utf-8") as fh:
                outputs = (json.load(fh).get("ProcessingOutputConfig") or {}).get("Outputs") or []
        except (OSError, ValueError, AttributeError):
            outputs = []  # a training job, or no readable configuration: the folder is all we know
        root = os.environ.get(ROOT_ENV)
        for item in outputs:
            s3 = (item.get("S3Output") or {}) if isinstance(item, dict) else {}
            local = str(s3.get("LocalPath") or "")
            # the local backend runs the job under another root than /opt/ml
            if local and os.path.abspath(DEFAULT.relocate(local, root)).rstrip(os.sep) == full and s3.get("S3Uri"):
                return str(s3["S3Uri"])
    return full


#: Our own package folder: frames from files below it are not the script's.
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _without_our_frames(te: Any) -> None:
    """Drop the frames of this package from ``te`` and the exceptions chained to it (in place)."""
    seen = set()
    todo: List[Any] = [te]  # traceback.TracebackException, loaded only on failure
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        item.stack[:] = [f for f in item.stack if not os.path.abspath(f.filename).startswith(_PACKAGE_DIR)]
        todo.extend([item.__cause__, item.__context__])


def print_user_traceback(exc: BaseException) -> None:
    """Print the traceback of the script's exception to stderr, inside a job, without our frames.

    The launcher shows the end of the job's log and the failure reason: our own frames
    (the entry function, the dispatcher, the runner) only push the script's lines out of view.
    """
    import traceback

    te = traceback.TracebackException(type(exc), exc, exc.__traceback__)
    _without_our_frames(te)
    sys.stdout.flush()
    sys.stderr.write("".join(te.format()))
    sys.stderr.flush()


def _fail(exc: RemoteError) -> NoReturn:
    prog = os.path.basename(sys.argv[0]) or "aws-sagemaker-remote"
    print(f"{prog}: error: {exc.brief if isinstance(exc, JobFailed) else exc}", file=sys.stderr)
    sys.exit(exc.exit_code)


def run_locally(decl: Declaration, namespace: argparse.Namespace, main: MainFunction,
                env: Optional[Mapping[str, str]] = None) -> Any:
    """Call ``main(namespace)`` once, after checking inputs and creating output folders.

    Every path is checked before anything is created, downloaded or imported.
    ``s3://`` inputs are then downloaded to a local cache and outputs with an
    explicit ``s3://`` destination are written to a temporary folder and
    uploaded after ``main`` returns; only then is boto3 imported. ``env`` (the job's
    ``--sagemaker-env`` variables) is set while ``main`` runs, so the script sees what the job
    would; the variables it replaced are restored afterwards. The dependency folders are on
    ``sys.path`` while ``main`` runs and taken off it afterwards.
    """
    from .checks import dependency_path, input_value, output_location, outputs_outside_inputs
    from .values import is_s3_uri

    # 1. check everything
    downloads: List["tuple[str, str, str]"] = []
    for d in decl.inputs:
        value = input_value(d.name, d.flag, d.arg.optional, getattr(namespace, d.dest, None))
        setattr(namespace, d.dest, value)
        if value is not None and is_s3_uri(value):
            downloads.append((d.dest, value, d.flag))
    for d in decl.dependencies:
        # read as a launch reads it: 'script.py/../../pkg' names the folder beside the script's folder
        setattr(namespace, d.dest, dependency_path(d.name, d.flag, getattr(namespace, d.dest, None), required=False))
    s3_outputs = []
    for d in decl.outputs:
        remote = output_location(namespace, d.remote_dest, d.remote_flag) \
            if decl.kind.outputs_have_locations else "default"
        if remote != "default":
            s3_outputs.append((d, remote))
    # an output inside an input folder would be read back as input
    outputs_outside_inputs(((d.flag, getattr(namespace, d.dest, None)) for d in decl.outputs),
                           ((d.flag, getattr(namespace, d.dest, None)) for d in decl.inputs))

    # 2. then act
    if downloads:
        from .localio import download_input

        for dest, uri, flag in downloads:
            setattr(namespace, dest, download_input(uri, flag))
    uploads: List["tuple[str, str]"] = []
    for d, remote in s3_outputs:
        import tempfile  # only for s3:// outputs: a plain run does without it

        folder = tempfile.mkdtemp(prefix=f"{d.dest}-")
        setattr(namespace, d.dest, folder)
        uploads.append((folder, remote))
        _UPLOADED_TO[os.path.abspath(folder)] = remote
    dests = [d.dest for d in decl.outputs] + [decl.dir_dest(key) for key, _ in decl.training_dirs]
    for dest in dests:
        made = getattr(namespace, dest, None)
        if made:
            os.makedirs(str(made), exist_ok=True)
    parents: List[str] = []
    for d in decl.dependencies:
        path = getattr(namespace, d.dest, None)
        if path and os.path.exists(str(path)):
            parents.append(os.path.dirname(os.path.abspath(str(path)).rstrip(os.sep)))
    try:
        with _environment(env or {}), _search_path(parents):
            result = main(namespace)  # if main fails, its partial outputs stay in their temporary folders
    finally:
        for folder, _ in uploads:
            _UPLOADED_TO.pop(os.path.abspath(folder), None)
    if uploads:
        import shutil

        from .localio import upload_output

        for folder, remote in uploads:
            upload_output(folder, remote)
            shutil.rmtree(folder, ignore_errors=True)
    return result


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with ``env`` set, restored afterwards (a caller in the same process keeps its own)."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _search_path(folders: Sequence[str]) -> Iterator[None]:
    """``sys.path`` with ``folders`` first, as PYTHONPATH puts them in the job (the declared module wins).

    Only the entries added here are taken off afterwards: a caller in the same process keeps its own
    path, and whatever ``main`` itself put there stays.
    """
    added: List[str] = []
    for folder in folders:
        if folder not in sys.path:
            sys.path.insert(0, folder)
            added.append(folder)
    try:
        yield
    finally:
        for folder in added:
            if folder in sys.path:
                sys.path.remove(folder)
