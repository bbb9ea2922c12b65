"""What ``--sagemaker-requirements`` names, turned into the requirements file the job installs.

Accepted values (see ``docs/usage.rst``):

``FILE``
    a requirements file, shipped as it is;
``pyproject.toml`` / ``pyproject.toml[EXTRA,...]``
    the ``[project] dependencies`` of a ``pyproject.toml`` (any file whose name
    ends in ``.toml`` and has a ``[project]`` table), plus those of the named
    optional-dependency extras;
``pylock.toml`` / ``pylock.NAME.toml``
    a PEP 751 lock file: every locked package pinned (``name==version``, or
    ``name @ URL`` for a locked archive or repository), with its marker;
``uv.lock`` / ``uv.lock[EXTRA,...]``
    a uv lock file, exported here with ``uv export`` (uv must be on ``PATH``)
    into a hashed requirements file, without the project itself and its
    development groups;
``freeze``
    ``NAME==VERSION`` of each installed distribution that the bundled code
    imports (the standard library and the bundled modules left out).

The private package indexes of the user's pip and uv configuration go with the
job (:func:`package_indexes`) in a file of the code bundle, never in the job's
``Environment``, and are printed only with their credentials masked
(:func:`mask_url`).

Launcher side only (it is not shipped into the job).
"""
from __future__ import annotations

import ast
import configparser
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from .errors import UsageError

FLAG = "--sagemaker-requirements"
#: The value that pins what the script imports.
FREEZE = "freeze"
#: The name in the bundle of a requirements file generated from another form.
GENERATED_NAME = "requirements.txt"
#: What the flag accepts, for error messages.
ALLOWED = ("a requirements file, a pyproject.toml (pyproject.toml[EXTRA,...] adds optional dependencies), "
           "a pylock.toml or uv.lock lock file, or 'freeze'")

_WITH_EXTRAS = re.compile(r"^(?P<path>.+?)\[(?P<extras>[^\[\]]*)\]$")
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]*)@")
#: Modules this framework ships with the job itself: never pinned.
_SHIPPED = frozenset({"aws_sagemaker_remote", "argparse_dataclass"})


@dataclass(frozen=True)
class Requirements:
    """The requirements the job installs.

    ``path`` is the user's requirements file when it ships unchanged, ``text`` the
    generated file otherwise (``name`` is its name in the bundle).
    """

    name: str
    path: Optional[str] = None
    text: Optional[str] = None


def mask_url(text: str) -> str:
    """``text`` with the ``user:password@`` of every URL in it replaced by ``***@``."""
    return _USERINFO.sub(lambda m: m.group("scheme") + "***@", text)


def _error(what: str) -> UsageError:
    return UsageError(f"{what}; it accepts {ALLOWED}", flag=FLAG)


def _normalize(name: str) -> str:
    """PEP 503 / PEP 685 normalized name (extras and distributions)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _load_toml(path: str, shown: str) -> Dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.8-3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise _error(f"cannot read {shown}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise _error(f"{shown} is not valid TOML ({exc})") from None


def _existing(path: str, shown: str, base_dir: str) -> str:
    full = path if os.path.isabs(path) else os.path.join(base_dir, path)
    full = os.path.abspath(os.path.expanduser(full))
    if not os.path.isfile(full):
        raise _error(f"file {shown!r} does not exist")
    return full


def _extras(raw: str, shown: str) -> Tuple[str, ...]:
    names = tuple(part.strip() for part in raw.split(",") if part.strip())
    if not names:
        raise _error(f"{shown} names no extra between the brackets")
    return names


def _pyproject(path: str, shown: str, extras: Sequence[str]) -> Requirements:
    data = _load_toml(path, shown)
    project = data.get("project")
    if not isinstance(project, dict):
        raise _error(f"{shown} has no [project] table")
    if "dependencies" in (project.get("dynamic") or ()):
        raise _error(f"{shown} declares its dependencies as dynamic, so they cannot be read from it; "
                     "name a requirements file instead")
    dependencies = project.get("dependencies") or []
    optional = project.get("optional-dependencies") or {}
    if not isinstance(dependencies, list) or not isinstance(optional, dict):
        raise _error(f"{shown}: [project] dependencies must be a list and optional-dependencies a table")
    by_name = {_normalize(str(k)): (str(k), v) for k, v in optional.items()}
    own = _normalize(str(project.get("name") or ""))
    lines: List[str] = [str(d) for d in dependencies]
    wanted = [_normalize(e) for e in extras]
    done: Set[str] = set()
    while wanted:
        extra = wanted.pop(0)
        if extra in done:
            continue
        done.add(extra)
        if extra not in by_name:
            known = ", ".join(sorted(k for k, _ in by_name.values())) or "none"
            raise _error(f"{shown} has no optional-dependencies extra {extra!r} (its extras: {known})")
        for requirement in by_name[extra][1] or []:
            # "myproject[other]" inside an extra means another extra of the same project
            match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*\[([^\]]*)\]\s*$", str(requirement))
            if own and match and _normalize(match.group(1)) == own:
                wanted += [_normalize(e) for e in match.group(2).split(",") if e.strip()]
            else:
                lines.append(str(requirement))
    if not lines:
        raise _error(f"{shown} lists no dependencies" + (" in those extras" if extras else ""))
    what = "[project] dependencies" + (f" and extras {', '.join(extras)}" if extras else "")
    header = f"# {what} of {os.path.basename(path)}\n"
    return Requirements(GENERATED_NAME, text=header + "".join(f"{line}\n" for line in lines))


#: The hash algorithms of a lock file that pip's ``--hash`` option takes.
_PIP_HASHES = ("sha256", "sha384", "sha512")


def _locked_hashes(package: Mapping[str, Any]) -> List[str]:
    """``ALGORITHM:DIGEST`` of every wheel, sdist and archive a ``[[packages]]`` entry locks."""
    files = list(package.get("wheels") or []) + [package.get("sdist"), package.get("archive")]
    found: List[str] = []
    for entry in files:
        hashes = entry.get("hashes") if isinstance(entry, dict) else None
        if isinstance(hashes, dict):
            found += [f"{name}:{value}" for name, value in sorted(hashes.items())
                      if name in _PIP_HASHES and f"{name}:{value}" not in found]
    return found


def _pylock(path: str, shown: str) -> Requirements:
    data = _load_toml(path, shown)
    packages = data.get("packages")
    if not isinstance(packages, list) or not packages:
        raise _error(f"{shown} lists no [[packages]] (is it a PEP 751 lock file?)")
    specs: List[Tuple[str, List[str]]] = []
    for package in packages:
        if not isinstance(package, dict) or not package.get("name"):
            raise _error(f"{shown} has a [[packages]] entry without a name")
        name = str(package["name"])
        marker = f" ; {package['marker']}" if package.get("marker") else ""
        vcs, archive = package.get("vcs"), package.get("archive")
        if isinstance(vcs, dict) and vcs.get("url") and vcs.get("commit-id"):
            spec = f"{name} @ {vcs.get('type', 'git')}+{vcs['url']}@{vcs['commit-id']}"
        elif isinstance(archive, dict) and archive.get("url"):
            spec = f"{name} @ {archive['url']}"
        elif package.get("version"):
            spec = f"{name}=={package['version']}"
        else:
            raise _error(f"{shown} locks {name} to a local folder or file, which the job cannot reach")
        specs.append((spec + marker, [] if isinstance(vcs, dict) else _locked_hashes(package)))
    lines = [f"# the packages locked in {os.path.basename(path)}\n"]
    unhashed = [spec.split(" ", 1)[0] for spec, hashes in specs if not hashes]
    if unhashed and len(unhashed) < len(specs):
        # pip checks hashes for every requirement or for none: one without any turns all of them off
        lines.append(f"# without hashes: the lock has none for {', '.join(unhashed)}\n")
    for spec, hashes in specs:
        options = "".join(f" \\\n    --hash={h}" for h in hashes) if not unhashed else ""
        lines.append(spec + options + "\n")
    return Requirements(GENERATED_NAME, text="".join(lines))


def _uv_lock(path: str, shown: str, extras: Sequence[str]) -> Requirements:
    uv = shutil.which("uv")
    if uv is None:
        raise _error(f"reading {shown} needs uv on PATH (pip install uv)")
    if not os.path.isfile(os.path.join(os.path.dirname(path), "pyproject.toml")):
        raise _error(f"{shown} has no pyproject.toml beside it, which uv needs to read it")
    command = [uv, "export", "--frozen", "--format", "requirements.txt", "--no-dev", "--no-emit-project",
               "--no-header", "--project", os.path.dirname(path)]
    for extra in extras:
        command += ["--extra", extra]
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise _error(f"uv export of {shown} failed: {exc}") from None
    if done.returncode != 0:
        why = (done.stderr.decode("utf-8", "replace").strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise _error(f"uv export of {shown} failed: {mask_url(why)}")
    text = done.stdout.decode("utf-8", "replace")
    if not any(line.strip() and not line.lstrip().startswith(("#", "-")) for line in text.splitlines()):
        raise _error(f"{shown} locks no package besides the project itself")
    return Requirements(GENERATED_NAME, text=f"# exported from {os.path.basename(path)}\n" + text)


# --- freeze ---------------------------------------------------------------------------------------


def imported_modules(source: str) -> Set[str]:
    """The top-level names of every absolute import in ``source`` (anywhere in it)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    names: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _stdlib() -> Set[str]:
    names = set(getattr(sys, "stdlib_module_names", ())) | set(sys.builtin_module_names)
    if not getattr(sys, "stdlib_module_names", None):  # pragma: no cover - Python 3.8 and 3.9
        import sysconfig

        folder = sysconfig.get_paths()["stdlib"]
        for entry in os.listdir(folder):
            if entry != "site-packages":
                names.add(entry[:-3] if entry.endswith(".py") else entry)
    return names


def _distributions_by_module() -> Dict[str, List[str]]:
    """Top-level module -> the installed distributions that provide it."""
    from importlib import metadata

    mapping = getattr(metadata, "packages_distributions", None)
    if mapping is not None:
        return {k: list(v) for k, v in mapping().items()}
    found: Dict[str, List[str]] = {}  # pragma: no cover - Python 3.8 and 3.9
    for dist in metadata.distributions():  # pragma: no cover
        top = (dist.read_text("top_level.txt") or "").split()
        if not top:
            top = [str(f).split("/")[0].split(".")[0] for f in (dist.files or []) if str(f).endswith(".py")]
        for module in set(top):
            found.setdefault(module, []).append(dist.metadata["Name"])
    return found  # pragma: no cover


def _local_install(dist: Any) -> bool:
    """Installed from a folder here (``pip install -e .``, ``pip install ./x``): no index has it."""
    raw = dist.read_text("direct_url.json")
    return bool(raw) and '"file:' in raw


def freeze(files: Iterable[Tuple[str, str]], own_modules: Iterable[str],
           notes: Optional[List[str]] = None) -> Requirements:
    """Pin the installed distributions that the Python ``files`` (arc name, local path) import.

    ``own_modules`` are the top-level names the bundle itself provides; they and the
    standard library are not looked up. Imports nothing installed provides are named in
    ``notes`` and skipped.
    """
    from importlib import metadata

    imports: Set[str] = set()
    for _arc, full in files:
        try:
            with open(full, encoding="utf-8", errors="replace") as fh:
                imports |= imported_modules(fh.read())
        except OSError:
            continue
    skip = _stdlib() | set(own_modules) | _SHIPPED | {"__future__"}
    providers = _distributions_by_module()
    pins: Dict[str, str] = {}
    for module in sorted(imports - skip):
        names = providers.get(module)
        if not names:
            if notes is not None:
                notes.append(f"note: {FLAG}=freeze: no installed distribution provides the imported module "
                             f"{module}; it is not pinned")
            continue
        for name in names:
            try:
                dist = metadata.distribution(name)
            except metadata.PackageNotFoundError:
                continue
            if _local_install(dist):
                if notes is not None:
                    notes.append(f"note: {FLAG}=freeze: {name} is installed from a local folder, which no "
                                 f"index has; it is not pinned")
                continue
            pins.setdefault(_normalize(dist.metadata["Name"]), f"{dist.metadata['Name']}=={dist.version}")
    if not pins:
        raise _error("freeze found no installed distribution that the script or its dependencies import")
    text = "# the versions installed where the job was launched, of what the code imports\n"
    text += "".join(f"{pins[key]}\n" for key in sorted(pins))
    return Requirements(GENERATED_NAME, text=text)


def own_modules(arcs: Iterable[str]) -> Set[str]:
    """Top-level importable names the bundle provides (the script's folder and the dependencies)."""
    names: Set[str] = set()
    for arc in arcs:
        parts = arc.split("/")
        if parts[0] not in ("script", "deps") or len(parts) < 2:
            continue
        head = parts[1]
        names.add(head[:-3] if len(parts) == 2 and head.endswith(".py") else head)
    return names


# --- the flag's value -------------------------------------------------------------------------------


def resolve(value: str, base_dir: str) -> Requirements:
    """The requirements a value other than ``freeze`` names (relative paths from ``base_dir``).

    :raises UsageError: naming the flag and what it accepts.
    """
    match = _WITH_EXTRAS.match(value)
    extras: Tuple[str, ...] = ()
    path = value
    if match and not os.path.isfile(os.path.join(base_dir, value)):
        path, extras = match.group("path"), _extras(match.group("extras"), value)
    full = _existing(path, path, base_dir)
    name = os.path.basename(full)
    if name == "uv.lock":
        return _uv_lock(full, path, extras)
    if re.match(r"^pylock\.([^.]+\.)?toml$", name):
        if extras:
            raise _error(f"{value}: a pylock.toml takes no extras (it locks one set of packages)")
        return _pylock(full, path)
    if name.endswith(".toml"):
        return _pyproject(full, path, extras)
    if extras:
        raise _error(f"{value}: only a pyproject.toml or a uv.lock takes [EXTRA,...]")
    return Requirements(name, path=full)


# --- package indexes --------------------------------------------------------------------------------

#: (variable, what it means): the index settings pip and uv read from the environment.
_INDEX_VARIABLES = (
    ("PIP_INDEX_URL", "index-url"), ("PIP_EXTRA_INDEX_URL", "extra-index-url"),
    ("UV_INDEX_URL", "index-url"), ("UV_DEFAULT_INDEX", "index-url"),
    ("UV_EXTRA_INDEX_URL", "extra-index-url"), ("UV_INDEX", "extra-index-url"),
)


def _pip_config_files(environ: Mapping[str, str]) -> List[str]:
    """pip's configuration files, in the order pip reads them (later ones win)."""
    if environ.get("PIP_CONFIG_FILE"):
        if environ["PIP_CONFIG_FILE"] == os.devnull:
            return []
        return [environ["PIP_CONFIG_FILE"]]
    home = os.path.expanduser("~")
    xdg_dirs = (environ.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(os.pathsep)
    xdg_home = environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    files = [os.path.join(d, "pip", "pip.conf") for d in xdg_dirs] + ["/etc/pip.conf"]
    files += [os.path.join(home, ".pip", "pip.conf"), os.path.join(xdg_home, "pip", "pip.conf")]
    if environ.get("VIRTUAL_ENV"):
        files.append(os.path.join(environ["VIRTUAL_ENV"], "pip.conf"))
    return files


def _index_value(value: str) -> str:
    """A URL of ``UV_INDEX`` / ``UV_DEFAULT_INDEX``, which may be ``NAME=URL``."""
    name, sep, rest = value.partition("=")
    return rest if sep and "://" not in name else value


def package_indexes(environ: Optional[Mapping[str, str]] = None) -> Tuple[Tuple[str, str], ...]:
    """The package indexes of this machine's pip and uv configuration, as (``index-url`` or
    ``extra-index-url``, URL) pairs: the variables (``PIP_INDEX_URL``, ``PIP_EXTRA_INDEX_URL``,
    ``UV_INDEX_URL``, ``UV_DEFAULT_INDEX``, ``UV_EXTRA_INDEX_URL``, ``UV_INDEX``) win over
    pip's configuration files (``[global]`` / ``[install]`` ``index-url``, ``extra-index-url``).
    URLs may hold credentials: print them only through :func:`mask_url`.
    """
    environ = os.environ if environ is None else environ
    found: List[Tuple[str, str]] = []
    config = configparser.RawConfigParser()
    for path in _pip_config_files(environ):
        try:
            config.read(path, encoding="utf-8")
        except (OSError, configparser.Error):
            continue
    for key in ("index-url", "extra-index-url"):
        for section in ("install", "global"):
            if config.has_option(section, key):
                found += [(key, url) for url in config.get(section, key).split()]
                break
    from_environment = [(key, _index_value(url)) for name, key in _INDEX_VARIABLES
                        for url in environ.get(name, "").split()]
    if any(key == "index-url" for key, _ in from_environment):
        found = [(k, u) for k, u in found if k != "index-url"]
    found += from_environment
    # one index-url (the last one set wins), extra ones in order, no repeats
    main = [u for k, u in found if k == "index-url"][-1:]
    extra: List[str] = []
    for key, url in found:
        if key == "extra-index-url" and url not in extra and url not in main:
            extra.append(url)
    return tuple([("index-url", u) for u in main] + [("extra-index-url", u) for u in extra])
