"""The code bundle: one deterministic ``bundle.tar.gz`` per job.

Layout (read by :mod:`aws_sagemaker_remote.bootstrap` inside the job)::

    manifest.json                 what to run: script, requirements, configuration, PYTHONPATH
    runtime/aws_sagemaker_remote/ this framework (standard-library parts suffice in the job)
    script/...                    the script's folder (minus exclusions)
    deps/<module>[.py]            each dependency, under its import name
    requirements/<file>           the requirements file, if any
    config/<file>                 the configuration script, if any

Identical content gives identical bytes: entries are sorted, every entry has
the same mtime, owner and group, modes are normalised to 0644/0755, and the
gzip header carries no timestamp or file name — so the bundle's SHA-256 is a
content address and an unchanged project is never uploaded twice.

Excluded everywhere: ``.git``, ``__pycache__``, ``*.pyc``, virtual environments
(any folder with ``pyvenv.cfg``, and ``venv``/``.venv``), and credentials
(``.env``, ``*.pem``, ``*.key``, ``*.p12``, ``*.pfx``, SSH keys and ``.ssh/``,
``.aws/``, ``.netrc``, ``.pypirc``, ``.git-credentials``, ``.docker/config.json``,
``.kube/``), plus the patterns of a ``.sagemakerignore`` file (gitignore
syntax) in the script's folder. Local input folders are staged without the
credentials and ``.git`` (:func:`input_files`).
"""
from __future__ import annotations

import fnmatch
import gzip
import hashlib
import io
import json
import os
import re
import stat
import tarfile
import tempfile
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .leftovers import owned_prefix
from .spec import CodeSpec

#: 1980-01-01: every entry gets this mtime (the zip epoch, so nothing treats it as "unset").
FIXED_MTIME = 315532800
IGNORE_FILE = ".sagemakerignore"
MANIFEST = "manifest.json"
#: Credentials and keys: never uploaded, neither with the code nor in a local input folder.
SECRET_EXCLUDES: Tuple[str, ...] = (
    ".git/", ".env", "*.pem", "*.key", "*.p12", "*.pfx", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*",
    ".ssh/", ".aws/", ".netrc", ".pypirc", ".git-credentials", ".docker/config.json", ".kube/",
)
#: What the code bundle leaves out as well: caches and environments.
DEFAULT_EXCLUDES: Tuple[str, ...] = SECRET_EXCLUDES + (
    "__pycache__/", "*.pyc", "venv/", ".venv/", ".sagemaker-local/", ".pytest_cache/", ".mypy_cache/",
    "*.egg-info/",
)


@dataclass(frozen=True)
class Bundle:
    """A built bundle on local disk."""

    path: str
    sha256: str
    size: int
    #: (archive name, size) of every file, sorted
    files: Tuple[Tuple[str, int], ...]


class IgnoreRules:
    """A small gitignore matcher: ``#`` comments, ``!`` negation, ``/`` anchoring, trailing ``/``
    for folders only, ``*``, ``?``, ``[...]`` and ``**``. The last matching rule wins."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.rules: List[Tuple[re.Pattern, bool, bool]] = []
        for raw in patterns:
            line = raw.rstrip("\n").rstrip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            if negate:
                line = line[1:]
            dir_only = line.endswith("/")
            line = line.strip("/") if dir_only else line
            anchored = "/" in line.rstrip("/")
            line = line.lstrip("/")
            self.rules.append((re.compile(self._translate(line, anchored)), negate, dir_only))

    @staticmethod
    def _translate(pattern: str, anchored: bool) -> str:
        out = []
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out.append("(?:.*/)?")
                i += 3
            elif pattern.startswith("/**", i) and i + 3 == len(pattern):
                out.append("/.*")
                i += 3
            elif pattern[i] == "*":
                out.append("[^/]*")
                i += 1
            elif pattern[i] == "?":
                out.append("[^/]")
                i += 1
            elif pattern[i] == "[":
                j = pattern.find("]", i)
                if j < 0:
                    out.append(re.escape(pattern[i]))
                    i += 1
                else:
                    out.append(fnmatch.translate(pattern[i:j + 1])[4:-3])
                    i = j + 1
            else:
                out.append(re.escape(pattern[i]))
                i += 1
        body = "".join(out)
        return ("^" if anchored else "^(?:.*/)?") + body + "$"

    def ignored(self, rel: str, is_dir: bool) -> bool:
        verdict = False
        for regex, negate, dir_only in self.rules:
            if dir_only and not is_dir:
                continue
            if regex.match(rel):
                verdict = not negate
        return verdict


def input_files(path: str) -> List[Tuple[str, str]]:
    """(relative posix path, absolute path) of a local input: every file of a folder except
    credentials and ``.git``, or a single file under its own name."""
    if not os.path.isdir(path):
        return [(os.path.basename(path), os.path.abspath(path))]
    return collect_folder(path, "", rules=IgnoreRules(SECRET_EXCLUDES), skip_venvs=False)


def _rules_for(folder: str) -> IgnoreRules:
    patterns = list(DEFAULT_EXCLUDES)
    ignore_file = os.path.join(folder, IGNORE_FILE)
    if os.path.isfile(ignore_file):
        with open(ignore_file, encoding="utf-8") as fh:
            patterns.extend(fh.read().splitlines())
    return IgnoreRules(patterns)


def collect_folder(folder: str, arc_prefix: str, exclude_paths: Sequence[str] = (),
                   rules: Optional[IgnoreRules] = None, skip_venvs: bool = True) -> List[Tuple[str, str]]:
    """(archive name, absolute path) of the files of ``folder`` that are not excluded.

    Folders that are virtual environments or listed in ``exclude_paths`` (declared
    inputs and outputs that live beside the script) are skipped whole. Symlinked
    files are followed; symlinked folders are not (no cycles).
    """
    rules = rules or _rules_for(folder)
    excluded = {os.path.abspath(p) for p in exclude_paths}
    out: List[Tuple[str, str]] = []
    for root, dirs, files in os.walk(folder):
        rel_root = os.path.relpath(root, folder).replace(os.sep, "/")
        rel_root = "" if rel_root == "." else rel_root + "/"
        keep = []
        for d in sorted(dirs):
            full = os.path.join(root, d)
            if (os.path.islink(full) or full in excluded or rules.ignored(rel_root + d, True)
                    or (skip_venvs and os.path.isfile(os.path.join(full, "pyvenv.cfg")))):
                continue
            keep.append(d)
        dirs[:] = keep
        for name in sorted(files):
            full = os.path.join(root, name)
            if full in excluded or rules.ignored(rel_root + name, False) or not os.path.isfile(full):
                continue
            out.append((arc_prefix + rel_root + name, full))
    return out


def runtime_files() -> List[Tuple[str, str]]:
    """This framework's own source, shipped so the job needs no pip install of it."""
    package = os.path.dirname(os.path.abspath(__file__))
    out = []
    for arc, full in collect_folder(package, "runtime/aws_sagemaker_remote/"):
        if arc.endswith((".py", "py.typed")):
            out.append((arc, full))
    return out


def manifest_for(code: CodeSpec, kind: str) -> dict:
    """What the bootstrap needs to know, in archive-relative paths."""
    rel_script = os.path.relpath(code.script, code.script_dir).replace(os.sep, "/")
    return {
        "format": 1,
        "kind": kind,
        "script": "script/" + rel_script,
        "requirements": ("requirements/" + os.path.basename(code.requirements)) if code.requirements else None,
        "configuration_script": ("config/" + os.path.basename(code.configuration_script))
        if code.configuration_script else None,
        "configuration_command": code.configuration_command,
        "pythonpath": ["runtime", "deps"],
    }


def bundle_entries(code: CodeSpec) -> List[Tuple[str, str]]:
    """Every (archive name, local file) of the bundle except the manifest, sorted."""
    entries: List[Tuple[str, str]] = []
    entries += collect_folder(code.script_dir, "script/", code.exclude_paths)
    if not any(arc == "script/" + os.path.relpath(code.script, code.script_dir).replace(os.sep, "/")
               for arc, _ in entries):
        # the script itself is never excluded, whatever the ignore rules say
        entries.append(("script/" + os.path.relpath(code.script, code.script_dir).replace(os.sep, "/"),
                        code.script))
    for module, path in code.dependencies:
        if os.path.isdir(path):
            entries += collect_folder(path, f"deps/{module}/")
        else:
            entries.append((f"deps/{module}", path))
    if code.requirements:
        entries.append(("requirements/" + os.path.basename(code.requirements), code.requirements))
    if code.configuration_script:
        entries.append(("config/" + os.path.basename(code.configuration_script), code.configuration_script))
    entries += runtime_files()
    seen: Dict[str, str] = {}
    for arc, full in entries:
        seen.setdefault(arc, full)  # first one wins: the script folder before the runtime
    return sorted(seen.items())


def _tarinfo(name: str, size: int, executable: bool) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = FIXED_MTIME
    info.mode = 0o755 if executable else 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def build_bundle(code: CodeSpec, kind: str, workdir: Optional[str] = None) -> Bundle:
    """Write the bundle to a temporary file and return it with its digest."""
    entries = bundle_entries(code)
    # named after this process: the next launch removes it if this one is killed
    fd, path = tempfile.mkstemp(prefix=owned_prefix("bundle"), suffix=".tar.gz", dir=workdir)
    files: List[Tuple[str, int]] = []
    with os.fdopen(fd, "wb") as raw:
        # mtime=0 and an empty name keep the gzip header free of time and path
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                manifest = json.dumps(manifest_for(code, kind), indent=2, sort_keys=True).encode("utf-8")
                all_entries = sorted([(MANIFEST, None)] + [(a, f) for a, f in entries], key=lambda e: e[0])
                for arc, full in all_entries:
                    if full is None:
                        tar.addfile(_tarinfo(arc, len(manifest), False), io.BytesIO(manifest))
                        files.append((arc, len(manifest)))
                        continue
                    st = os.stat(full)
                    with open(full, "rb") as fh:
                        tar.addfile(_tarinfo(arc, st.st_size, bool(st.st_mode & stat.S_IXUSR)), fh)
                    files.append((arc, st.st_size))
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return Bundle(path=path, sha256=digest.hexdigest(), size=os.path.getsize(path), files=tuple(files))
