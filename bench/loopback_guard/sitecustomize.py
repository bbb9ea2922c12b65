"""Keep every benchmarked client on this machine.

The benchmark puts this folder on ``PYTHONPATH`` for the processes that talk to
the moto server (our launches, the AWS CLI, the SageMaker SDK), so Python
imports it at start-up. It refuses any TCP connection or name lookup that is
not for a loopback address: a client that would reach out to AWS (the SDK's
telemetry, a region lookup, a forgotten endpoint) fails at once with an error
naming the host, instead of sending traffic off the machine.

It costs well under a millisecond and is loaded by every launch alike; the
import-time measurements run without it.
"""
from __future__ import annotations

import socket
from typing import Any

_LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def _is_loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    host = host.split("%", 1)[0].lower()
    return host in _LOOPBACK_NAMES or host.startswith("127.") or host == "::1"


_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_getaddrinfo = socket.getaddrinfo


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if isinstance(address, tuple) and not _is_loopback(address[0]):
        raise OSError(f"benchmark processes may only connect to loopback, not {address!r}")
    return _connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if isinstance(address, tuple) and not _is_loopback(address[0]):
        raise OSError(f"benchmark processes may only connect to loopback, not {address!r}")
    return _connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host is not None and not _is_loopback(host):
        raise socket.gaierror(socket.EAI_NONAME, f"benchmark processes may only resolve loopback, not {host!r}")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
socket.getaddrinfo = _guarded_getaddrinfo
