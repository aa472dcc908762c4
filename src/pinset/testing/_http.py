"""Reading HTTP/1.1 requests off a TLS socket, counting every byte, for TLSServer's ``http`` mode.

Just enough HTTP for test clients: a request head, a body framed by
``Content-Length`` or chunked encoding, and a close_notify after the last answer.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from contextlib import suppress

from pinset.testing._connect import RECV_SIZE

__all__ = [
    "MAX_HEAD",
    "Closed",
    "Reader",
    "close_notify",
    "parse_head",
    "read_body",
]

MAX_HEAD = 64 * 1024


class Closed(Exception):
    """The peer closed the connection before the request was complete."""


class Reader:
    """Buffered reads from one TLS socket that count every application byte."""

    def __init__(self, sock: ssl.SSLSocket, count: Callable[[int], None]) -> None:
        self._sock = sock
        self._count = count
        self.buf = b""

    def fill(self) -> bool:
        data = self._sock.recv(RECV_SIZE)
        if data:
            self._count(len(data))
            self.buf += data
        return bool(data)

    def until(self, delimiter: bytes, limit: int) -> bytes | None:
        """Return bytes up to and including *delimiter*; None on EOF before any byte."""
        while (end := self.buf.find(delimiter)) < 0:
            if len(self.buf) > limit:
                raise ValueError("request head too long")
            if not self.fill():
                if self.buf:
                    raise Closed("the client closed the connection mid-request")
                return None
        end += len(delimiter)
        out, self.buf = self.buf[:end], self.buf[end:]
        return out

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self.fill():
                raise Closed("the client closed the connection mid-request")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def close_notify(tls: ssl.SSLSocket) -> None:
    """Send a TLS close_notify without waiting for the client's, so clients see a clean EOF."""
    with suppress(OSError, ValueError):
        tls.setblocking(False)
        tls.unwrap()


def parse_head(head: bytes) -> tuple[str, str, dict[str, str]] | None:
    try:
        lines = head.decode("latin-1").split("\r\n")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes any byte
        return None
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            return None
        headers[name.strip().lower()] = value.strip()
    return parts[0], parts[2], headers


def read_body(reader: Reader, headers: dict[str, str]) -> bool:
    """Consume the request body; False if its framing is malformed."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size_line = reader.until(b"\r\n", MAX_HEAD)
            if size_line is None:
                raise Closed("the client closed the connection mid-request")
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                return False
            if size == 0:
                # Trailer fields, if any, end with an empty line.
                while reader.until(b"\r\n", MAX_HEAD) not in (b"\r\n", None):
                    pass
                return True
            reader.exactly(size + 2)
    length = headers.get("content-length", "0")
    if not (length.isascii() and length.isdigit()):
        return False
    reader.exactly(int(length))
    return True
