"""Run a Python script in this process and report the process's peak memory at exit.

Usage: ``python bench/peak_rss.py SCRIPT [ARGS...]``, for example
``python bench/peak_rss.py VENV/bin/aws s3 cp FILE s3://bucket/key``. The
script runs as ``__main__`` with ``sys.argv = [SCRIPT, ARGS...]`` and its own
folder first on ``sys.path``, as ``python SCRIPT ARGS...`` would; afterwards
one line ``BENCH_PEAK_RSS_KIB=<n>`` goes to stderr and the script's exit code
is kept.

The number is ``VmHWM`` from ``/proc/self/status``: the high-water mark of
this process's own memory. ``getrusage`` is no use here: on Linux a child's
``ru_maxrss`` starts at its parent's resident size at fork time, so it would
report the benchmark's footprint rather than the tool's.
"""
from __future__ import annotations

import os
import runpy
import sys
from typing import List, Optional

MARKER = "BENCH_PEAK_RSS_KIB="


def peak_rss_kib() -> int:
    """``VmHWM`` of this process in KiB (Linux)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    sys.argv = list(args)
    sys.path[0] = os.path.dirname(os.path.abspath(args[0]))
    code = 0
    try:
        runpy.run_path(args[0], run_name="__main__")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stderr.write(f"\n{MARKER}{peak_rss_kib()}\n")
        sys.stderr.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
