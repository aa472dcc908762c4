"""The CONNECT plumbing both test proxies share: loopback targets only, and HTTP error replies.

:func:`_parse_target` reads ``host:port``; :func:`_loopback_addresses` resolves it
and raises :class:`_Refused` (with the HTTP status to answer) for anything that is
not loopback, before a connection is attempted.
"""

from __future__ import annotations

import ipaddress
import socket
from contextlib import suppress

__all__ = ["_Refused", "_bracket", "_connect_any", "_loopback_addresses", "_parse_target", "_reply"]

_LOOPBACK_NAMES = frozenset({"localhost"})


class _Refused(Exception):
    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason


def _parse_target(target: str) -> tuple[str, int]:
    host, sep, port_text = target.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise _Refused(400, "Bad Request", f"CONNECT target {target!r} is not host:port")
    return host.removeprefix("[").removesuffix("]").lower(), int(port_text)


def _loopback_addresses(host: str, port: int) -> list[str]:
    """The loopback addresses to try for *host*; refuses any other target."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if host not in _LOOPBACK_NAMES:
            raise _Refused(403, "Forbidden", f"{host} is not loopback") from None
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = [str(info[4][0]) for info in infos]
    else:
        addresses = [str(ip)]
    if not addresses or not all(ipaddress.ip_address(a).is_loopback for a in addresses):
        raise _Refused(403, "Forbidden", f"{host} is not loopback")
    return addresses


def _connect_any(addresses: list[str], port: int, timeout: float) -> socket.socket | None:
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout=timeout)
        except OSError:
            continue
    return None


def _reply(sock: socket.socket, status: int, reason: str, detail: str) -> None:
    body = f"{detail}\n".encode()
    with suppress(OSError):
        sock.sendall(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("ascii")
            + body
        )


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host
