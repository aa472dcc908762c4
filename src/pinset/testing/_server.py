"""A loopback TLS server for tests that serves exactly the chain it is given.

:class:`TLSServer` answers HTTP/1.1, echoes, or silently counts, on 127.0.0.1 in a
background thread, and records what every connection did: whether the handshake
completed, the SNI, and how many application bytes the client sent. The byte count
is the measure of a leak: a client that refuses a pin must send nothing.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from cryptography import x509

from pinset.testing._connect import RECV_SIZE, bracket
from pinset.testing._http import (
    MAX_HEAD,
    Reader,
    close_notify,
    parse_head,
    read_body,
)
from pinset.testing._pki import LeafCert, PrivateKey, configure_cert_chain
from pinset.testing._service import Link, LoopbackService, Tracked, describe

__all__ = ["ConnectionRecord", "ServerMode", "TLSServer"]

ServerMode = Literal["http", "echo", "silent"]
_MODES: tuple[ServerMode, ...] = get_args(ServerMode)
# Python's default server ciphers, at security level 0: the server presents whatever it
# is given (a 1024-bit RSA key, a weak CA); refusing it is the client's business.
_SERVER_CIPHERS = (
    "@SECLEVEL=0:ECDH+AESGCM:ECDH+CHACHA20:ECDH+AES:DHE+AES:!aNULL:!eNULL:!aDSS:!SHA1:!AESCCM"
)


@dataclass(frozen=True, slots=True)
class ConnectionRecord:
    """What one client connection did, as seen by the server.

    ``received`` counts application bytes after the handshake; ``error`` is set when the
    handshake failed or the connection ended other than by a clean EOF.
    """

    peer: tuple[str, int]
    handshake_completed: bool = False
    received: int = 0
    sent: int = 0
    error: str | None = None
    sni: str | None = None
    tls_version: str | None = None
    alpn_protocol: str | None = None
    closed: bool = False


class TLSServer(LoopbackService):
    """A TLS server on loopback that serves exactly the certificates it is given.

    *chain* is a :class:`~pinset.testing.LeafCert` or any sequence of certificates, leaf
    first, sent in that order even if they do not form a valid path (e.g. a forged leaf
    followed by the genuine pinned certificate); *private_key* is required with a plain
    sequence. *mode* picks the application protocol: ``"http"`` answers each HTTP/1.1
    request with ``200 OK`` and *http_body*; ``"echo"`` echoes; ``"silent"`` only counts.
    *port* 0 picks a free port. *io_timeout* bounds every blocking socket operation,
    so an idle or stuck client ends its connection (recorded as an error) after it.
    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        chain: LeafCert | Sequence[x509.Certificate],
        private_key: PrivateKey | None = None,
        *,
        mode: ServerMode = "http",
        host: str = "127.0.0.1",
        http_body: bytes = b"pinned hello\n",
        alpn: Sequence[str] | None = None,
        port: int = 0,
        io_timeout: float = 10.0,
    ) -> None:
        if mode not in _MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(_MODES)}")
        super().__init__(host, io_timeout, port)
        self.mode: ServerMode = mode
        self.http_body = http_body
        self._alpn = list(alpn) if alpn is not None else None
        self._local = threading.local()
        self._context = self._make_context(chain, private_key)
        self._conns: list[Tracked[ConnectionRecord]] = []
        self._requests: list[bytes] = []
        self._received = 0
        self._changed = threading.Condition(self._lock)

    @property
    def url(self) -> str:
        """``https://HOST:PORT/``."""
        return f"https://{bracket(self.host)}:{self.port}/"

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The server context new connections use (tweak it at your own risk)."""
        with self._lock:
            return self._context

    def set_chain(
        self, chain: LeafCert | Sequence[x509.Certificate], private_key: PrivateKey | None = None
    ) -> None:
        """Serve *chain* to new connections from now on (e.g. after a key rotation)."""
        context = self._make_context(chain, private_key)
        with self._lock:
            self._context = context

    @property
    def received_bytes(self) -> int:
        """Application bytes received from all clients since start or :meth:`reset`."""
        with self._lock:
            return self._received

    @property
    def connections(self) -> list[ConnectionRecord]:
        """A snapshot of every connection since start or :meth:`reset`, oldest first."""
        with self._lock:
            return [c.record for c in self._conns]

    @property
    def requests(self) -> list[bytes]:
        """The raw HTTP request heads seen in ``"http"`` mode, oldest first."""
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forget the connections, requests and byte counts seen so far."""
        with self._lock:
            for conn in self._conns:
                conn.counted = False
            self._conns.clear()
            self._requests.clear()
            self._received = 0

    def wait_for_connections(self, count: int = 1, timeout: float = 5.0) -> list[ConnectionRecord]:
        """Wait until *count* connections were seen and all of them are closed.

        Client-side calls return before the server thread has counted the last bytes;
        call this before asserting on counters. Raises :class:`TimeoutError`.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._conns) < count or not all(c.record.closed for c in self._conns):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [c.record for c in self._conns]
                    raise TimeoutError(f"waited {timeout}s for {count} closed connections: {seen}")
                self._changed.wait(remaining)
            return [c.record for c in self._conns]

    def __repr__(self) -> str:
        where = self.url if self._listener is not None else "not started"
        return f"<TLSServer {self.mode} {where}>"

    def _make_context(
        self, chain: LeafCert | Sequence[x509.Certificate], private_key: PrivateKey | None
    ) -> ssl.SSLContext:
        if isinstance(chain, LeafCert):
            certificates: Sequence[x509.Certificate] = chain.chain
            key = private_key if private_key is not None else chain.private_key
        elif private_key is None:
            raise TypeError("a certificate sequence needs its private_key")
        else:
            certificates, key = chain, private_key
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.set_ciphers(_SERVER_CIPHERS)
        configure_cert_chain(context, certificates, key)
        if self._alpn is not None:
            context.set_alpn_protocols(self._alpn)
        context.sni_callback = self._on_sni
        return context

    def _on_sni(self, _sslobj: object, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        # The callback runs inside do_handshake(), on the connection's own thread.
        state: Tracked[ConnectionRecord] | None = getattr(self._local, "state", None)
        if state is not None:
            with self._lock:
                state.update(sni=server_name)

    def _on_accept(self, link: Link, peer: tuple[str, int]) -> None:
        link.state = Tracked(ConnectionRecord(peer=peer))
        with self._changed:
            self._conns.append(link.state)
            self._changed.notify_all()

    def _count(self, state: Tracked[ConnectionRecord], n: int) -> None:
        with self._lock:
            state.add(received=n)
            if state.counted:
                self._received += n

    def _handle(self, link: Link, peer: tuple[str, int]) -> None:
        state = link.state
        assert state is not None
        self._local.state = state
        try:
            tls = self.ssl_context.wrap_socket(
                link.socks[0], server_side=True, do_handshake_on_connect=False
            )
            link.socks[0] = tls
            if self._stopping.is_set():
                return
            tls.do_handshake()
            with self._lock:
                state.update(
                    handshake_completed=True,
                    tls_version=tls.version(),
                    alpn_protocol=tls.selected_alpn_protocol(),
                )
            self._serve(tls, state)
        except Exception as exc:  # recorded for the test to inspect, never printed
            with self._lock:
                state.update(error=describe(exc))
        finally:
            self._local.state = None
            with self._changed:
                state.update(closed=True)
                self._changed.notify_all()

    def _send(self, tls: ssl.SSLSocket, state: Tracked[ConnectionRecord], data: bytes) -> None:
        tls.sendall(data)
        with self._lock:
            state.add(sent=len(data))

    def _serve(self, tls: ssl.SSLSocket, state: Tracked[ConnectionRecord]) -> None:
        if self.mode == "http":
            self._serve_http(tls, state)
            return
        while data := tls.recv(RECV_SIZE):
            self._count(state, len(data))
            if self.mode == "echo":
                self._send(tls, state, data)

    def _serve_http(self, tls: ssl.SSLSocket, state: Tracked[ConnectionRecord]) -> None:
        reader = Reader(tls, lambda n: self._count(state, n))
        while True:
            try:
                head = reader.until(b"\r\n\r\n", MAX_HEAD)
            except ValueError:
                self._respond(tls, state, 431, b"request head too long\n", keep_alive=False)
                return
            if head is None:
                return
            with self._lock:
                self._requests.append(head)
            parsed = parse_head(head)
            if parsed is None:
                self._respond(tls, state, 400, b"bad request\n", keep_alive=False)
                return
            method, version, headers = parsed
            if method == "CONNECT":
                self._respond(tls, state, 405, b"this is not a proxy\n", keep_alive=False)
                return
            if not read_body(reader, headers):
                self._respond(tls, state, 400, b"bad request body\n", keep_alive=False)
                return
            connection = headers.get("connection", "").lower()
            if version == "HTTP/1.0":
                keep_alive = "keep-alive" in connection
            else:
                keep_alive = "close" not in connection
            body = b"" if method == "HEAD" else self.http_body
            self._respond(tls, state, 200, body, keep_alive=keep_alive, length=len(self.http_body))
            if not keep_alive:
                close_notify(tls)
                return

    def _respond(
        self,
        tls: ssl.SSLSocket,
        state: Tracked[ConnectionRecord],
        status: int,
        body: bytes,
        *,
        keep_alive: bool,
        length: int | None = None,
    ) -> None:
        reason = {200: "OK", 400: "Bad Request", 405: "Method Not Allowed", 431: "Too Large"}
        head = (
            f"HTTP/1.1 {status} {reason[status]}\r\n"
            "Content-Type: text/plain\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n"
            "\r\n"
        )
        self._send(tls, state, head.encode("ascii") + body)
