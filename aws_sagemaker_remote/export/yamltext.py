"""A small YAML writer for plain data (dicts, lists, strings, numbers, booleans, None).

Standard library only, so an export needs no YAML package. Strings are written
plain only when no YAML 1.1 or 1.2 reader can take them for anything but a
string; every other string is double-quoted with escapes, so the document
reads back as exactly the value that was written.
"""
from __future__ import annotations

import math
import re
from typing import Any, List

#: Plain scalars we allow: start with a letter or ``/``, then characters without YAML meaning here.
_PLAIN = re.compile(r"[A-Za-z/][A-Za-z0-9_./:=@+-]*\Z")
#: Words YAML 1.1 readers (PyYAML among them) resolve to booleans or null.
_RESERVED = {"y", "n", "yes", "no", "true", "false", "on", "off", "null"}
_NAMED_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def quote(text: str) -> str:
    """``text`` as a YAML scalar: plain when unambiguous, else double-quoted."""
    if _PLAIN.match(text) and text.lower() not in _RESERVED and not text.endswith(":"):
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if ch in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[ch])
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, str):
        return quote(value)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _inline(value: Any) -> str:
    """The text after ``key:`` or ``-`` for scalars and empty collections."""
    if isinstance(value, dict) and not value:
        return "{}"
    if isinstance(value, list) and not value:
        return "[]"
    return _scalar(value)


def _is_block(value: Any) -> bool:
    return isinstance(value, (dict, list)) and bool(value)


def _emit(value: Any, indent: int, lines: List[str]) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError("YAML keys written here are strings")
            if _is_block(item):
                lines.append(f"{pad}{quote(key)}:")
                _emit(item, indent + 2, lines)
            else:
                lines.append(f"{pad}{quote(key)}: {_inline(item)}")
    else:
        for item in value:
            if not _is_block(item):
                lines.append(f"{pad}- {_inline(item)}")
                continue
            sub: List[str] = []
            _emit(item, indent + 2, sub)
            # the first line of the item goes on the dash line
            lines.append(f"{pad}- {sub[0][indent + 2:]}")
            lines.extend(sub[1:])


def dump(value: Any) -> str:
    """``value`` (a dict or list) as a block-style YAML document ending in a newline."""
    if not _is_block(value):
        return _inline(value) + "\n"
    lines: List[str] = []
    _emit(value, 0, lines)
    return "\n".join(lines) + "\n"
