"""Refuse, for the whole test session, any connection or name lookup beyond loopback.

The suite must never touch the network: a background reporter pointed at a
report URI from a sample policy, or a live audit of a real name, would otherwise
go out quietly. Installed from conftest.py before any test runs; subprocesses
(curl, mitmdump, the CLI in a child process) are not covered.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

__all__ = ["BLOCKED", "install"]

BLOCKED: list[str] = []  # every refused destination, for the end-of-session summary
_LOOPBACK_NAMES = {"localhost", "localhost.", "ip6-localhost"}


class NetworkBeyondLoopbackError(OSError):
    """A test tried to reach an address that is not on this machine's loopback."""


def _is_loopback_literal(host: str) -> bool | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0]).is_loopback
    except ValueError:
        return None


def _check_host(host: Any) -> None:
    if host is None or not isinstance(host, str | bytes):
        return
    name = host.decode() if isinstance(host, bytes) else host
    if name.lower() in _LOOPBACK_NAMES or name == "":
        return
    literal = _is_loopback_literal(name)
    if literal is True:
        return
    BLOCKED.append(name)
    if literal is False:
        raise NetworkBeyondLoopbackError(f"test tried to reach {name}: only loopback is allowed")
    # Any other name would need DNS: answer as a resolver that knows nothing would.
    raise socket.gaierror(socket.EAI_NONAME, f"{name}: name lookups are off in the test suite")


def install() -> None:
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        _check_host(host)
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _check_host(address[0])
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _check_host(address[0])
        return real_connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo
    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
