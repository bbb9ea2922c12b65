"""Where a local job finds ``/opt/ml``: at its real path (a mount namespace) or relocated.

Two modes, chosen once per backend from its ``paths`` argument or the
``AWS_SAGEMAKER_REMOTE_LOCAL_PATHS`` environment variable:

``namespace`` (the default where it works: Linux with mount namespaces, user
namespaces for a non-root user)
   each instance runs through :mod:`.namespace`, which mounts the instance's
   folder at ``/opt/ml`` in a private mount namespace: literal paths, the
   sagemaker-training toolkit and anything reading the config files work
   unchanged, and nothing is rewritten.
``relocate`` (elsewhere, or when asked for)
   each instance's ``/opt/ml`` is a folder under the job folder; arguments and
   ``Environment`` values naming ``/opt/ml`` are rewritten to it, and
   ``SAGEMAKER_BASE_DIR`` and ``AWS_SAGEMAKER_REMOTE_OPT_ML`` name it, so the
   toolkit and the bootstrap find it. Literal ``/opt/ml`` paths in a script do
   not work.

``auto`` (the default) probes namespaces once per interpreter and falls back to
``relocate``, saying so once on stderr.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import Dict, List, Optional, Sequence, Tuple

from ...container import OPT_ML, ROOT_ENV

#: Environment variable that chooses the mode: ``auto`` (default), ``namespace`` or ``relocate``.
PATHS_ENV = "AWS_SAGEMAKER_REMOTE_LOCAL_PATHS"
AUTO, NAMESPACE, RELOCATE = "auto", "namespace", "relocate"
MODES = (AUTO, NAMESPACE, RELOCATE)
#: The toolkit's variable for a moved ``/opt/ml`` (``sagemaker_training.environment``).
BASE_DIR_ENV = "SAGEMAKER_BASE_DIR"

_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "namespace.py")
_lock = threading.Lock()
#: interpreter -> None when namespaces work, else why not
_probed: Dict[str, Optional[str]] = {}
_announced = False


class IsolationError(Exception):
    """``namespace`` was asked for and does not work on this machine."""


def requested(mode: Optional[str]) -> str:
    """The mode asked for: ``mode`` if given, else the environment variable, else ``auto``.

    :raises ValueError: not one of :data:`MODES`.
    """
    chosen = (mode or os.environ.get(PATHS_ENV) or AUTO).strip().lower()
    if chosen not in MODES:
        raise ValueError(f"{PATHS_ENV} must be one of {', '.join(MODES)}, not {chosen!r}")
    return chosen


def _probe(python: str, scratch: str) -> Optional[str]:
    """None when this interpreter can set up the namespace, else the reason it cannot."""
    if not sys.platform.startswith("linux"):
        return f"mount namespaces need Linux (this is {sys.platform})"
    with _lock:
        if python in _probed:
            return _probed[python]
        try:
            done = subprocess.run([python, "-I", "-S", _SCRIPT, "--probe", scratch, OPT_ML], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30, check=False)
            reason = None if done.returncode == 0 else (
                done.stderr.decode("utf-8", "replace").strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        except (OSError, subprocess.SubprocessError) as exc:
            reason = str(exc)
        _probed[python] = reason
        return reason


def _announce(text: str) -> None:
    global _announced
    with _lock:
        if _announced:
            return
        _announced = True
    sys.stderr.write(f"aws_sagemaker_remote: {text}\n")
    sys.stderr.flush()


def use_namespaces(mode: str, python: str, scratch: str) -> bool:
    """Whether this backend's jobs run in mount namespaces (see the module's docstring).

    ``scratch`` is a folder the probe may use (the job's folder).

    :raises IsolationError: ``mode`` is ``namespace`` and namespaces do not work here.
    """
    if mode == RELOCATE:
        _announce(f"local jobs find /opt/ml relocated under the job folder ({PATHS_ENV}=relocate); "
                  f"{BASE_DIR_ENV} names it, literal /opt/ml paths do not work")
        return False
    reason = _probe(python, scratch)
    if reason is None:
        return True
    if mode == NAMESPACE:
        raise IsolationError(f"cannot mount the job's folder at /opt/ml: {reason}")
    _announce(f"local jobs find /opt/ml relocated under the job folder ({reason}); "
              f"{BASE_DIR_ENV} names it, literal /opt/ml paths do not work")
    return False


def wrap(python: str, source: str, hidden: str, line: Sequence[str]) -> List[str]:
    """``line`` run with ``source`` mounted at ``/opt/ml`` and ``hidden`` covered."""
    return [python, "-I", "-S", _SCRIPT, source, OPT_ML, hidden, "--"] + list(line)


def relocated_variables(root: str) -> Tuple[Tuple[str, str], ...]:
    """The variables that name a relocated ``/opt/ml`` (for the bootstrap and for the toolkit)."""
    return ((ROOT_ENV, root), (BASE_DIR_ENV, root))
