"""The CONNECT plumbing both test proxies share: loopback targets only, and HTTP error replies.

:func:`read_request` reads a request head; :func:`parse_target` reads the
``host:port`` of a CONNECT; :func:`loopback_addresses` resolves it
and raises :class:`Refused` (with the HTTP status to answer) for anything that is
not loopback, before a connection is attempted.
"""

from __future__ import annotations

import ipaddress
import selectors
import socket
from collections.abc import Callable
from contextlib import suppress
from typing import TypeVar

from pinset.errors import ConfigError
from pinset.hosts import canonical_host

__all__ = [
    "RECV_SIZE",
    "Refused",
    "bracket",
    "canonical_or_raw",
    "connect_any",
    "loopback_addresses",
    "parse_target",
    "read_request",
    "relay",
    "reply",
]

_LOOPBACK_NAMES = frozenset({"localhost"})
_MAX_HEAD = 16 * 1024
RECV_SIZE = 64 * 1024

_Sock = TypeVar("_Sock", bound=socket.socket)


class Refused(Exception):
    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason


def read_request(sock: socket.socket) -> tuple[list[str], bytes, int] | None:
    """Read a request head: (request line split on spaces, bytes after the head, bytes read).

    None when the client closes before the head is complete; :class:`Refused` (431)
    when the head grows past 16 KiB.
    """
    buf = b""
    while b"\r\n\r\n" not in buf:
        if len(buf) > _MAX_HEAD:
            raise Refused(431, "Request Header Fields Too Large", "request head too long")
        data = sock.recv(RECV_SIZE)
        if not data:
            return None
        buf += data
    head, _, early = buf.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0].decode("latin-1").split(" "), early, len(buf)


def parse_target(target: str) -> tuple[str, int]:
    host, sep, port_text = target.rpartition(":")
    digits = port_text.isascii() and port_text.isdigit()
    if not sep or not digits or not 0 < int(port_text) < 65536:
        raise Refused(400, "Bad Request", f"CONNECT target {target!r} is not host:port")
    return canonical_or_raw(host.removeprefix("[").removesuffix("]")), int(port_text)


def canonical_or_raw(name: str) -> str:
    """The name a test proxy records and compares: :func:`~pinset.hosts.canonical_host`.

    A name with no canonical form (``a..b``) is kept as the client sent it: the proxy
    records whatever it was asked for (and then refuses it as not loopback).
    """
    try:
        return canonical_host(name)
    except ConfigError:
        return name


def loopback_addresses(host: str, port: int) -> list[str]:
    """The loopback addresses to try for *host*; refuses any other target."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if host not in _LOOPBACK_NAMES:
            raise Refused(403, "Forbidden", f"{host} is not loopback") from None
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = [str(info[4][0]) for info in infos]
    else:
        addresses = [str(ip)]
    if not addresses or not all(ipaddress.ip_address(a).is_loopback for a in addresses):
        raise Refused(403, "Forbidden", f"{host} is not loopback")
    return addresses


def connect_any(addresses: list[str], port: int, timeout: float) -> socket.socket:
    """A connection to the first of *addresses* that answers; else the last OSError."""
    error = OSError("no address to connect to")
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout=timeout)
        except OSError as exc:
            error = exc
    raise error


def reply(sock: socket.socket, status: int, reason: str, detail: str) -> None:
    body = f"{detail}\n".encode()
    with suppress(OSError):
        sock.sendall(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("ascii")
            + body
        )


def bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _nothing(_sock: socket.socket, _data: bytes) -> None:
    return None


def relay(
    client: _Sock,
    upstream: _Sock,
    io_timeout: float,
    *,
    read: Callable[[_Sock], tuple[list[bytes], bool]],
    half_close: bool,
    received: Callable[[_Sock, bytes], None] = _nothing,
    sent: Callable[[_Sock, bytes], None] = _nothing,
) -> None:
    """Copy bytes both ways between ``client`` and ``upstream`` until they are done.

    ``read(sock)`` returns what ``sock`` has, and whether it reached EOF. Each chunk is
    passed to ``received(source, data)``, sent on, then to ``sent(source, data)``. At
    an EOF, with ``half_close`` the other side's writing half is shut down and the
    other direction goes on until it ends too; without it the relay ends. A relay idle
    in both directions for ``io_timeout`` seconds ends as well.
    """
    peers = {client.fileno(): (client, upstream), upstream.fileno(): (upstream, client)}
    with selectors.DefaultSelector() as selector:
        for src, _ in peers.values():
            selector.register(src, selectors.EVENT_READ)
        open_sides = 2
        while open_sides:
            events = selector.select(io_timeout)
            if not events:
                return  # idle for io_timeout: give up rather than hang a test
            for key, _ in events:
                src, dst = peers[key.fd]
                chunks, eof = read(src)
                for data in chunks:
                    received(src, data)
                    dst.sendall(data)
                    sent(src, data)
                if not eof:
                    continue
                if not half_close:
                    return
                # Pass the half-close on, keep relaying the other direction.
                selector.unregister(src)
                open_sides -= 1
                with suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
