"""The code bundle: the tree of files the job's code folder holds, shipped file by file.

Each file travels as a content-addressed blob (see :mod:`aws_sagemaker_remote.stage`);
a small JSON *code manifest* lists ``[path, sha256, executable]`` for every file,
and the job's bootstrap stub lays the tree out from it
(:func:`aws_sagemaker_remote.safepath.unpack`). There is no archive: an
unchanged file is never read again (a stat cache keeps its digest), and one
changed file is the only blob a relaunch sends. Script mode
(``--sagemaker-entry=toolkit``) is the exception: the image's toolkit takes the
code only as a ``.tar.gz`` (:func:`write_archive`), itself a content-addressed
blob, built again only when a file's size or mtime changed.

Layout (read by :mod:`aws_sagemaker_remote.bootstrap` inside the job)::

    manifest.json                 what to run: script, requirements, configuration, PYTHONPATH
    aws_sagemaker_remote_entry.py script mode's program (the toolkit runs it; see toolkit_program)
    runtime/aws_sagemaker_remote/ this framework (standard-library parts suffice in the job)
    script/...                    the script's folder (minus exclusions)
    deps/<module>[.py]            each dependency, under its import name
    requirements/<file>           the requirements file, if any (requirements.txt when generated)
    requirements/aws-sagemaker-remote-package-indexes.json  the pip/uv package indexes, if any
    config/<file>                 the configuration script, if any

Identical content gives an identical manifest: entries are sorted and modes are
reduced to "executable or not" (0755/0644 in the job).

Excluded everywhere: ``.git``, ``__pycache__``, ``*.pyc``, virtual environments
(any folder with ``pyvenv.cfg``, and ``venv``/``.venv``), and files that usually
hold secrets (:data:`SECRET_LOOKING`: ``.env*``, ``.envrc``, ``.netrc``, ``.npmrc``,
``.pypirc``, ``credentials*``, ``*service-account*.json``, ``secrets.*``, token
files, private keys and keystores, and the ``.aws``, ``.azure``, ``.config/gcloud``,
``.kube``, ``.ssh``, ``.gnupg`` folders and ``.docker/config.json``). The rules
are read in this order, the last matching one deciding: ``.gitignore`` files (in
the folders above the script's, up to the repository root, in its folder and
below), the deny list, then ``.sagemakerignore`` (gitignore syntax), whose
``!pattern`` lines can ship a denied file on purpose. Links to files outside the
folder are not followed (a ``note:`` line names each). A script folder that is
the home folder or a filesystem root (without a ``.sagemakerignore``) and a bundle
over :data:`MAX_BUNDLE_MB` are refused (:class:`~aws_sagemaker_remote.errors.UsageError`).
Local input folders are staged without the credentials and ``.git``
(:func:`input_files`); other secret-looking files in them are named in a warning.
"""
from __future__ import annotations

import gzip
import json
import os
import stat
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Pattern, Sequence, Tuple

from .container import TOOLKIT_PROGRAM
from .errors import UsageError
from .leftovers import owned_prefix
from .spec import CodeSpec

#: 1980-01-01: every entry gets this mtime (the zip epoch, so nothing treats it as "unset").
FIXED_MTIME = 315532800
IGNORE_FILE = ".sagemakerignore"
MANIFEST = "manifest.json"
#: The one file the bootstrap stub runs before the tree exists: it lays the tree out.
BOOT_FILE = "runtime/aws_sagemaker_remote/safepath.py"
#: Credentials and keys: never uploaded, neither with the code nor in a local input folder.
SECRET_EXCLUDES: Tuple[str, ...] = (
    ".git/", ".env", "*.pem", "*.key", "*.p12", "*.pfx", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*",
    ".ssh/", ".aws/", ".netrc", ".pypirc", ".git-credentials", ".docker/config.json", ".kube/",
)
#: Files that usually hold secrets: left out of the code bundle (a ``!pattern`` line in
#: ``.sagemakerignore`` ships one anyway); in a local input folder they are uploaded with a warning.
SECRET_LOOKING: Tuple[str, ...] = SECRET_EXCLUDES + (
    ".env*", ".envrc", ".npmrc", ".yarnrc", ".yarnrc.yml", ".pgpass", ".my.cnf", ".htpasswd",
    "credentials", "credentials*", "*credentials.json", "*service-account*.json", "*service_account*.json",
    "client_secret*.json", "secrets.*", "secret.*", "*.secret", "*.secrets",
    "token", "token.txt", "token.json", ".token", "*.token", "*_token.txt", "*-token.txt", "*_token.json",
    "*-token.json", "*.jks", "*.keystore", "*.ppk", "*.kdbx", "*.ovpn", "*.tfstate", "*.tfstate.backup",
    ".azure/", ".config/gcloud/", ".gnupg/", ".docker/config.json",
)
#: What the code bundle leaves out as well: caches and environments.
DEFAULT_EXCLUDES: Tuple[str, ...] = SECRET_LOOKING + (
    "__pycache__/", "*.pyc", "venv/", ".venv/", ".sagemaker-local/", ".pytest_cache/", ".mypy_cache/",
    "*.egg-info/",
)
#: Git's own ignore file, honoured like ``.sagemakerignore`` (and in the folders above, up to the repository).
GITIGNORE = ".gitignore"
#: The code bundle's size limit (files before compression), and the variable that changes it.
MAX_BUNDLE_MB = 50
MAX_BUNDLE_ENV = "AWS_SAGEMAKER_REMOTE_MAX_BUNDLE_MB"


@dataclass(frozen=True)
class Bundle:
    """A built bundle on local disk."""

    #: the code manifest (blobs beside it)
    path: str
    #: the code manifest's SHA-256 (its file name)
    sha256: str
    #: bytes of every file
    size: int
    #: (path in the tree, size) of every file, sorted
    files: Tuple[Tuple[str, int], ...]


class IgnoreRules:
    """Gitignore matching (through ``pathspec``), in layers: the last layer with a matching
    pattern decides, as the last matching line does inside one file.

    A layer is a list of gitignore lines with where they apply: ``strip`` is the
    folder (relative to the walked folder, ``sub/``) that holds a nested ignore
    file, whose lines only see paths below it; ``add`` is the path of the walked
    folder relative to an ignore file in a folder above it.
    """

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.layers: List[Tuple[str, str, object, Optional[Pattern[str]]]] = []
        #: where nested ``.gitignore`` layers go: before the deny list, so they cannot re-include a secret
        self.nested_at: Optional[int] = None
        self.add(patterns)

    def add(self, patterns: Iterable[str], strip: str = "", add: str = "") -> "IgnoreRules":
        import pathspec  # only when a bundle is built: keeps ``import aws_sagemaker_remote`` light

        lines = [line.rstrip("\n") for line in patterns]
        spec = pathspec.GitIgnoreSpec.from_lines(lines)
        layer = (strip, add, spec, _any_pattern(spec))
        if strip and self.nested_at is not None:
            self.layers.insert(self.nested_at, layer)
            self.nested_at += 1
        else:
            self.layers.append(layer)
        return self

    def ignored(self, rel: str, is_dir: bool) -> bool:
        verdict = False
        for strip, add, spec, anything in self.layers:
            if strip and not rel.startswith(strip):
                continue
            path = add + rel[len(strip):] + ("/" if is_dir else "")
            if anything is not None and not anything.search(path):
                continue  # no pattern of the layer matches: it has no say
            include = spec.check_file(path).include  # type: ignore[attr-defined]
            if include is not None:
                verdict = bool(include)
        return verdict


def _any_pattern(spec: Any) -> Optional[Pattern[str]]:
    """One regular expression that matches where any pattern of ``spec`` does, or None.

    Most paths match no pattern of a layer: one search of this expression then
    replaces one per pattern (a deny list has about fifty), and only a path it
    matches is checked pattern by pattern, which decides the verdict as before.
    """
    import re

    sources = [p.regex.pattern for p in getattr(spec, "patterns", ()) if getattr(p, "regex", None) is not None]
    if not sources:
        return re.compile(r"(?!)")  # matches nothing
    # the patterns' named groups would clash in one expression; they only capture
    joined = "|".join(f"(?:{re.sub(r'[(][?]P<[A-Za-z_][A-Za-z0-9_]*>', '(?:', text)})" for text in sources)
    try:
        return re.compile(joined)
    except re.error:
        return None  # checked pattern by pattern


def _read_lines(path: str) -> List[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read().splitlines()
    except OSError:
        return []


def _ancestor_gitignores(folder: str) -> List[Tuple[str, List[str]]]:
    """(path of ``folder`` relative to the ignore file's folder, lines) of the ``.gitignore``
    files above ``folder``, outermost first, up to the repository root (a folder with ``.git``)."""
    found: List[Tuple[str, List[str]]] = []
    current = os.path.realpath(folder)
    while True:
        parent = os.path.dirname(current)
        if os.path.exists(os.path.join(current, ".git")) or parent == current:
            break
        current = parent
        ignore = os.path.join(current, GITIGNORE)
        if os.path.isfile(ignore):
            rel = os.path.relpath(os.path.realpath(folder), current).replace(os.sep, "/") + "/"
            found.append((rel, _read_lines(ignore)))
    return list(reversed(found))


def _rules_for(folder: str) -> IgnoreRules:
    """``.gitignore`` files (above and in ``folder``), then the default deny list, then
    ``.sagemakerignore``, whose ``!pattern`` lines can ship a denied file on purpose."""
    rules = IgnoreRules()
    for rel, lines in _ancestor_gitignores(folder):
        rules.add(lines, add=rel)
    rules.add(_read_lines(os.path.join(folder, GITIGNORE)))
    rules.nested_at = len(rules.layers)
    rules.add(DEFAULT_EXCLUDES)
    rules.add(_read_lines(os.path.join(folder, IGNORE_FILE)))
    return rules


def input_files(path: str, warn: Optional[Callable[[str], None]] = None,
                dirs: Optional[List[str]] = None) -> List[Tuple[str, str]]:
    """(relative posix path, absolute path) of a local input: every file of a folder except
    credentials and ``.git``, or a single file under its own name.

    ``warn`` (if given) gets one line for each uploaded file that looks like a secret
    (``credentials.json``, ``secrets.yaml``, ...): data may have such names, so they go,
    but not silently. ``dirs`` (if given) gets the relative path of every folder kept, in the same walk.
    """
    if not os.path.isdir(path):
        return [(os.path.basename(path), os.path.abspath(path))]
    files = collect_folder(path, "", rules=IgnoreRules(SECRET_EXCLUDES), skip_venvs=False, dirs_out=dirs)
    if warn is not None:
        looks = IgnoreRules(SECRET_LOOKING)
        folders: Dict[str, bool] = {}  # a folder's verdict, asked once for all its files
        for rel, _full in files:
            if _ignored_path(looks, rel, folders):
                warn(f"warning: {os.path.join(path, rel)} looks like a secret and is uploaded with the input; "
                     f"move it out of the folder if it should not leave this machine")
    return files


def _ignored_path(rules: IgnoreRules, rel: str, folders: Optional[Dict[str, bool]] = None) -> bool:
    """Whether ``rel`` or one of its folders is matched (``folders``: verdicts of folders met before)."""
    parts = rel.split("/")
    folders = {} if folders is None else folders
    for i in range(1, len(parts)):
        folder = "/".join(parts[:i])
        if folder not in folders:
            folders[folder] = rules.ignored(folder, True)
        if folders[folder]:
            return True
    return rules.ignored(rel, False)


def collect_folder(folder: str, arc_prefix: str, exclude_paths: Sequence[str] = (),
                   rules: Optional[IgnoreRules] = None, skip_venvs: bool = True,
                   notes: Optional[List[str]] = None, dirs_out: Optional[List[str]] = None) -> List[Tuple[str, str]]:
    """(archive name, absolute path) of the files of ``folder`` that are not excluded.

    Folders that are virtual environments or listed in ``exclude_paths`` (declared
    inputs and outputs that live beside the script) are skipped whole. Nested
    ``.gitignore`` files apply below their folder (unless ``rules`` is given).
    Symlinked folders are not followed (no cycles); a symlinked file is followed
    only when its target is inside ``folder``; the others are skipped, with a line
    in ``notes``.
    """
    nested = rules is None
    rules = rules or _rules_for(folder)
    real_root = os.path.realpath(folder)
    excluded = {os.path.abspath(p) for p in exclude_paths}
    out: List[Tuple[str, str]] = []
    for root, dirs, files in os.walk(folder):
        rel_root = os.path.relpath(root, folder).replace(os.sep, "/")
        rel_root = "" if rel_root == "." else rel_root + "/"
        if nested and rel_root and GITIGNORE in files:
            rules.add(_read_lines(os.path.join(root, GITIGNORE)), strip=rel_root)
        keep = []
        for d in sorted(dirs):
            full = os.path.join(root, d)
            if (os.path.islink(full) or full in excluded or rules.ignored(rel_root + d, True)
                    or (skip_venvs and os.path.isfile(os.path.join(full, "pyvenv.cfg")))):
                continue
            keep.append(d)
        dirs[:] = keep
        if dirs_out is not None:
            dirs_out.extend(arc_prefix + rel_root + d for d in keep)
        for name in sorted(files):
            full = os.path.join(root, name)
            if full in excluded or rules.ignored(rel_root + name, False) or not os.path.isfile(full):
                continue
            if os.path.islink(full):
                real = os.path.realpath(full)
                if not (real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)):
                    if notes is not None:
                        notes.append(f"note: not bundling {arc_prefix + rel_root + name}: a link to {real}, "
                                     f"outside {folder}")
                    continue
            out.append((arc_prefix + rel_root + name, full))
    return out


#: Modules only the launcher uses (creating, watching, exporting and operating jobs): the job
#: never imports them, so they stay out of its runtime.
LAUNCHER_ONLY = (
    "__main__.py", "artifacts.py", "backends/", "clean.py", "cli.py", "download.py", "export/", "images.py",
    "jobs.py", "launch.py", "leftovers.py", "rerun.py", "stage.py", "targets.py", "transfers.py", "watch.py",
)


def runtime_files() -> List[Tuple[str, str]]:
    """This framework's own source, shipped so the job needs no pip install of it (what runs
    inside a job: the bootstrap and what a script imports; not :data:`LAUNCHER_ONLY`)."""
    package = os.path.dirname(os.path.abspath(__file__))
    prefix = "runtime/aws_sagemaker_remote/"
    out = []
    for arc, full in collect_folder(package, prefix, rules=IgnoreRules(DEFAULT_EXCLUDES)):
        if arc.endswith((".py", "py.typed")) and not arc[len(prefix):].startswith(LAUNCHER_ONLY):
            out.append((arc, full))
    # typed arguments (args=SomeDataclass) parse with argparse-dataclass in the job too, whose image
    # need not have it: its one module travels with the runtime (it is pure Python)
    import importlib.util

    found = importlib.util.find_spec("argparse_dataclass")
    if found is not None and found.origin and found.origin.endswith(".py"):
        out.append(("runtime/argparse_dataclass.py", found.origin))
    return out


#: The package indexes of the user's pip/uv configuration, for the install step only (see
#: :func:`aws_sagemaker_remote.requirements.package_indexes`): in the bundle, in the user's own
#: bucket, rather than in the job's ``Environment``, which DescribeTrainingJob shows to anyone allowed to describe it.
INDEXES_ARC = "requirements/aws-sagemaker-remote-package-indexes.json"


def write_private(path: str, data: bytes) -> None:
    """Write ``data`` as a new file only its owner may read: a file written from memory may be the
    package indexes, whose URLs can hold credentials."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _requirements_arc(code: CodeSpec) -> Optional[str]:
    if code.requirements_text is not None:
        from .requirements import GENERATED_NAME

        return "requirements/" + GENERATED_NAME
    return ("requirements/" + os.path.basename(code.requirements)) if code.requirements else None


def generated_files(code: CodeSpec, kind: str, inputs: Optional[Sequence[Mapping[str, str]]] = None
                    ) -> Dict[str, bytes]:
    """The bundle's files that are written from memory: the manifest (with the ``inputs`` the
    bootstrap lays out from their listings, when given), a generated requirements file, the
    package indexes."""
    manifest = manifest_for(code, kind)
    if inputs is not None:
        manifest["inputs"] = list(inputs)
    files = {MANIFEST: json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")}
    arc = _requirements_arc(code)
    if code.requirements_text is not None and arc:
        files[arc] = code.requirements_text.encode("utf-8")
    if code.package_indexes:
        files[INDEXES_ARC] = json.dumps([list(pair) for pair in code.package_indexes]).encode("utf-8")
    return files


def manifest_for(code: CodeSpec, kind: str) -> Dict[str, Any]:
    """What the bootstrap needs to know, in archive-relative paths."""
    rel_script = os.path.relpath(code.script, code.script_dir).replace(os.sep, "/")
    return {
        "format": 1,
        "kind": kind,
        "script": "script/" + rel_script,
        "requirements": _requirements_arc(code),
        "package_indexes": INDEXES_ARC if code.package_indexes else None,
        "configuration_script": ("config/" + os.path.basename(code.configuration_script))
        if code.configuration_script else None,
        "configuration_command": code.configuration_command,
        "pythonpath": ["runtime", "deps"],
    }


def _max_bundle_bytes() -> int:
    raw = os.environ.get(MAX_BUNDLE_ENV, "")
    try:
        return int(float(raw) * 1024 * 1024) if raw.strip() else MAX_BUNDLE_MB * 1024 * 1024
    except ValueError:
        raise UsageError(f"{MAX_BUNDLE_ENV}={raw!r} is not a number of megabytes") from None


def check_script_folder(folder: str) -> None:
    """Refuse to bundle a home folder or a filesystem root, unless it holds a ``.sagemakerignore``
    (which says what to ship): it would send everything in it."""
    real = os.path.realpath(folder)
    home = os.path.realpath(os.path.expanduser("~"))
    what = "your home folder" if real == home else "a filesystem root" if os.path.dirname(real) == real else None
    if what and not os.path.isfile(os.path.join(folder, IGNORE_FILE)):
        raise UsageError(f"the script's folder {folder} is {what}, and all of it would be shipped as code; "
                         f"move the script into a folder of its own, or add a {IGNORE_FILE} there that "
                         f"excludes what must not be uploaded")


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"  # pragma: no cover


def check_bundle_size(entries: Sequence[Tuple[str, str]]) -> None:
    """Refuse a bundle whose files add up to more than the limit, naming the biggest entries."""
    limit = _max_bundle_bytes()
    sizes: Dict[str, int] = {}
    total = 0
    for arc, full in entries:
        size = os.path.getsize(full)
        total += size
        parts = arc.split("/")
        # group by the first folder inside script/ or deps/: that is what one exclude line removes
        key = "/".join(parts[:2]) + ("/" if len(parts) > 2 else "")
        sizes[key] = sizes.get(key, 0) + size
    if total <= limit:
        return
    biggest = sorted(sizes.items(), key=lambda kv: -kv[1])[:3]
    listed = ", ".join(f"{name.split('/', 1)[1] or name} ({_human(size)})" for name, size in biggest)
    raise UsageError(f"the code bundle would hold {_human(total)} (limit {_human(limit)}); biggest: {listed}; "
                     f"exclude them in {IGNORE_FILE} (or .gitignore), declare data folders as inputs, or raise "
                     f"the limit with {MAX_BUNDLE_ENV}=<megabytes>")


def check_code(code: CodeSpec, notes: Optional[List[str]] = None) -> List[Tuple[str, str]]:
    """The checks :func:`bundle_entries` makes: run before anything is sent. Returns the entries
    (for :func:`~aws_sagemaker_remote.launch.launch`, which then does not walk the folders again)."""
    return bundle_entries(code, notes)


def bundle_entries(code: CodeSpec, notes: Optional[List[str]] = None) -> List[Tuple[str, str]]:
    """Every (archive name, local file) of the bundle except the manifest, sorted.

    :raises UsageError: the script's folder is a home folder or a filesystem root, or the
        files add up to more than the size limit (:data:`MAX_BUNDLE_MB`, :data:`MAX_BUNDLE_ENV`).
    """
    check_script_folder(code.script_dir)
    entries: List[Tuple[str, str]] = []
    entries += collect_folder(code.script_dir, "script/", code.exclude_paths, notes=notes)
    if not any(arc == "script/" + os.path.relpath(code.script, code.script_dir).replace(os.sep, "/")
               for arc, _ in entries):
        # the script itself is never excluded, whatever the ignore rules say
        entries.append(("script/" + os.path.relpath(code.script, code.script_dir).replace(os.sep, "/"),
                        code.script))
    for module, path in code.dependencies:
        if os.path.isdir(path):
            entries += collect_folder(path, f"deps/{module}/", notes=notes)
        else:
            entries.append((f"deps/{module}", path))
    if code.requirements:
        entries.append(("requirements/" + os.path.basename(code.requirements), code.requirements))
    if code.configuration_script:
        entries.append(("config/" + os.path.basename(code.configuration_script), code.configuration_script))
    check_bundle_size(entries)
    entries += runtime_files()
    # script mode's sagemaker_program, at the root where the toolkit looks for it
    entries.append((TOOLKIT_PROGRAM, os.path.join(os.path.dirname(os.path.abspath(__file__)), "toolkit_program.py")))
    seen: Dict[str, str] = {}
    for arc, full in entries:
        seen.setdefault(arc, full)  # first one wins: the script folder before the runtime
    return sorted(seen.items())


def listing(files: Sequence[Tuple[str, int]]) -> List[str]:
    """One ``bundle: NAME (SIZE)`` line per (name, size) the user shipped (the framework's own
    runtime left out): what ``--sagemaker-dry-run`` shows before anything is uploaded."""
    return [f"bundle: {name} ({_human(size)})\n" for name, size in files
            if not name.startswith("runtime/") and name != TOOLKIT_PROGRAM]


def code_manifest(files: Sequence[Tuple[str, str, bool]], boot: str) -> bytes:
    """The code manifest: ``{"boot": SHA, "files": [[path, sha256, executable], ...]}``, sorted.

    ``boot`` is the digest of ``safepath.py``, which the stub runs to lay out the rest.
    """
    return json.dumps({"boot": boot, "files": [list(f) for f in sorted(files)]},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def is_executable(path: str) -> bool:
    """Whether the owner may execute ``path`` (the one mode bit the job's copy keeps)."""
    return bool(os.stat(path).st_mode & stat.S_IXUSR)


def _tarinfo(name: str, size: int, executable: bool) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = FIXED_MTIME
    info.mode = 0o755 if executable else 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def write_archive(entries: Sequence[Tuple[str, str, bool]], out: str) -> Tuple[str, int]:
    """Write ``(name in the archive, local file, executable)`` entries as one ``.tar.gz`` to ``out``
    and return its (blob name, size): the code as script mode's toolkit takes it
    (``sagemaker_submit_directory``).

    Identical content gives identical bytes: entries are sorted, every entry has the
    same mtime, owner and group, modes are 0644/0755, and the gzip header carries no
    timestamp or file name, so the name is a content address.
    """
    with open(out, "wb") as raw:  # noqa: SIM117 - a parenthesised with-group needs Python 3.9
        # mtime=0 and an empty name keep the gzip header free of time and path
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for arc, full, executable in sorted(entries):
                    with open(full, "rb") as fh:
                        tar.addfile(_tarinfo(arc, os.fstat(fh.fileno()).st_size, executable), fh)
    from .transfers import file_digests  # named as every blob is: the name S3 checks

    return file_digests(out)[0], os.path.getsize(out)


def build_bundle(code: CodeSpec, kind: str, workdir: Optional[str] = None) -> Bundle:
    """The code tree laid out as the job's code channel receives it, in a fresh folder:
    one file per blob, named by its content (:func:`~aws_sagemaker_remote.transfers.blob_name`),
    and the code manifest, whose path is :attr:`Bundle.path` (the bootstrap stub's first argument).

    Staging does not use this (it uploads the files where they are); it serves tools
    and tests that need a job's code channel on disk. Files left out on purpose
    (links leading out of their folder) are named on standard error, one ``note:`` line each.
    """
    notes: List[str] = []
    entries = bundle_entries(code, notes)
    for note in notes:
        print(note, file=sys.stderr)
    # named after this process: the next launch removes it if this one is killed
    folder = tempfile.mkdtemp(prefix=owned_prefix("bundle"), dir=workdir)
    listed: List[Tuple[str, str, bool]] = []
    files: List[Tuple[str, int]] = []
    boot = ""

    from .transfers import bytes_digests

    def add(rel: str, data: bytes, executable: bool) -> str:
        sha = bytes_digests(data)[0]
        write_private(os.path.join(folder, sha), data)
        listed.append((rel, sha, executable))
        files.append((rel, len(data)))
        return sha

    generated = generated_files(code, kind)
    for arc, data in sorted(generated.items()):
        add(arc, data, False)
    for arc, full in entries:
        if arc in generated:
            continue
        with open(full, "rb") as src:
            sha = add(arc, src.read(), is_executable(full))
        if arc == BOOT_FILE:
            boot = sha
    data = code_manifest(listed, boot)
    path = os.path.join(folder, bytes_digests(data)[0])
    with open(path, "wb") as out:
        out.write(data)
    return Bundle(path=path, sha256=os.path.basename(path), size=sum(size for _, size in files),
                  files=tuple(sorted(files)))
