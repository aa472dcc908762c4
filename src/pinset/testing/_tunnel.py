"""A plain HTTP CONNECT proxy on loopback, for testing clients that go through a proxy.

:class:`TunnelProxy` relays bytes without looking at them (no TLS interception), so a
pinned client must succeed through it. It only ever connects to loopback targets:
anything else is refused with ``403`` before a connection is attempted.
"""

from __future__ import annotations

import socket
from contextlib import suppress

from pinset.testing._connect import (
    RECV_SIZE,
    Refused,
    bracket,
    connect_any,
    loopback_addresses,
    parse_target,
    read_request,
    relay,
    reply,
)
from pinset.testing._service import Link, LoopbackService

__all__ = ["TunnelProxy"]


class TunnelProxy(LoopbackService):
    """An HTTP CONNECT proxy on 127.0.0.1 that tunnels to loopback targets only.

    ``connects`` lists every requested ``host:port`` (refused ones too);
    ``bytes_client_to_upstream`` and ``bytes_upstream_to_client`` count tunnelled bytes.
    A tunnel idle in both directions for *io_timeout* seconds is closed.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, io_timeout: float = 10.0) -> None:
        super().__init__(host, io_timeout, port)
        self._connects: list[str] = []
        self._up = 0
        self._down = 0

    @property
    def url(self) -> str:
        """``http://HOST:PORT``, the form proxy settings expect."""
        return f"http://{bracket(self.host)}:{self.port}"

    @property
    def connects(self) -> list[str]:
        """The ``host:port`` targets clients asked for, oldest first."""
        with self._lock:
            return list(self._connects)

    @property
    def bytes_client_to_upstream(self) -> int:
        """Bytes relayed from clients to their targets (after the CONNECT exchange)."""
        with self._lock:
            return self._up

    @property
    def bytes_upstream_to_client(self) -> int:
        """Bytes relayed from targets back to clients."""
        with self._lock:
            return self._down

    def __repr__(self) -> str:
        where = self.url if self._listener is not None else "not started"
        return f"<TunnelProxy {where}>"

    def _handle(self, link: Link, peer: tuple[str, int]) -> None:
        client = link.socks[0]
        try:
            upstream, early = self._open_tunnel(link, client)
        except Refused as refused:
            reply(client, refused.status, refused.reason, str(refused))
            return
        except OSError:
            return
        with suppress(OSError):
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if early:
                upstream.sendall(early)
                self._add(len(early), 0)
            self._relay(client, upstream)

    def _open_tunnel(self, link: Link, client: socket.socket) -> tuple[socket.socket, bytes]:
        request = read_request(client)
        if request is None:
            raise OSError("client closed before sending a request")
        parts, early, _ = request
        if len(parts) != 3 or parts[0] != "CONNECT":
            raise Refused(405, "Method Not Allowed", "this proxy only supports CONNECT")
        with self._lock:
            self._connects.append(parts[1])
        host, port = parse_target(parts[1])
        addresses = loopback_addresses(host, port)
        try:
            upstream = connect_any(addresses, port, self._io_timeout)
        except OSError as exc:
            raise Refused(502, "Bad Gateway", f"cannot connect to {parts[1]}: {exc}") from None
        link.socks.append(upstream)
        if self._stopping.is_set():
            raise OSError("proxy is stopping")
        return upstream, early

    def _add(self, up: int, down: int) -> None:
        with self._lock:
            self._up += up
            self._down += down

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        def read(sock: socket.socket) -> tuple[list[bytes], bool]:
            data = sock.recv(RECV_SIZE)
            return [data] if data else [], not data

        def sent(src: socket.socket, data: bytes) -> None:
            if src is client:
                self._add(len(data), 0)
            else:
                self._add(0, len(data))

        relay(client, upstream, self._io_timeout, read=read, half_close=True, sent=sent)
