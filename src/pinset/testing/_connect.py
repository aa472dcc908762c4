"""The CONNECT plumbing both test proxies share: loopback targets only, and HTTP error replies.

:func:`_read_request` reads a request head; :func:`_parse_target` reads the
``host:port`` of a CONNECT; :func:`_loopback_addresses` resolves it
and raises :class:`_Refused` (with the HTTP status to answer) for anything that is
not loopback, before a connection is attempted.
"""

from __future__ import annotations

import ipaddress
import socket
from contextlib import suppress

__all__ = [
    "_RECV_SIZE",
    "_Refused",
    "_bracket",
    "_connect_any",
    "_loopback_addresses",
    "_parse_target",
    "_read_request",
    "_reply",
]

_LOOPBACK_NAMES = frozenset({"localhost"})
_MAX_HEAD = 16 * 1024
_RECV_SIZE = 64 * 1024


class _Refused(Exception):
    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason


def _read_request(sock: socket.socket) -> tuple[list[str], bytes, int] | None:
    """Read a request head: (request line split on spaces, bytes after the head, bytes read).

    None when the client closes before the head is complete; :class:`_Refused` (431)
    when the head grows past 16 KiB.
    """
    buf = b""
    while b"\r\n\r\n" not in buf:
        if len(buf) > _MAX_HEAD:
            raise _Refused(431, "Request Header Fields Too Large", "request head too long")
        data = sock.recv(_RECV_SIZE)
        if not data:
            return None
        buf += data
    head, _, early = buf.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0].decode("latin-1").split(" "), early, len(buf)


def _parse_target(target: str) -> tuple[str, int]:
    host, sep, port_text = target.rpartition(":")
    digits = port_text.isascii() and port_text.isdigit()
    if not sep or not digits or not 0 < int(port_text) < 65536:
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


def _connect_any(addresses: list[str], port: int, timeout: float) -> socket.socket:
    """A connection to the first of *addresses* that answers; else the last OSError."""
    error = OSError("no address to connect to")
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout=timeout)
        except OSError as exc:
            error = exc
    raise error


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
