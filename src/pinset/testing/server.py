"""A loopback TLS server for tests that serves exactly the chain it is given.

:class:`TLSServer` answers HTTP/1.1, echoes, or silently counts, on 127.0.0.1 in a
background thread, and records what every connection did: whether the handshake
completed, the SNI, and how many application bytes the client sent. The byte count
is the measure of a leak: a client that refuses a pin must send nothing.
"""

from __future__ import annotations

import ipaddress
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, TypeVar

from cryptography import x509

from pinset.testing.pki import LeafCert, PrivateKey, configure_cert_chain

__all__ = ["ConnectionRecord", "ServerMode", "TLSServer"]

ServerMode = Literal["http", "echo", "silent"]
_MODES: tuple[ServerMode, ...] = ("http", "echo", "silent")
_MAX_HEAD = 64 * 1024
_RECV_SIZE = 64 * 1024
_JOIN_TIMEOUT = 2.0
# Python's default server ciphers, at security level 0: the server presents whatever it
# is given (a 1024-bit RSA key, a weak CA); refusing it is the client's business.
_SERVER_CIPHERS = (
    "@SECLEVEL=0:ECDH+AESGCM:ECDH+CHACHA20:ECDH+AES:DHE+AES:!aNULL:!eNULL:!aDSS:!SHA1:!AESCCM"
)

_S = TypeVar("_S", bound="_LoopbackService")


def _require_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"test servers listen on loopback only, not {host!r}")


def _format_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _shutdown(sock: socket.socket) -> None:
    # socket.socket.shutdown, not SSLSocket.shutdown: the latter drops the SSL object
    # under the feet of the thread reading from it. Shutting the TCP socket down makes
    # that thread's blocking recv return, which is all stop() needs.
    with suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Link:
    """The sockets of one accepted connection, so that stop() can unblock its thread."""

    def __init__(self, sock: socket.socket) -> None:
        self.socks: list[socket.socket] = [sock]
        self.state: _ConnState | None = None


class _LoopbackService:
    """Accept loop on a loopback port; each connection is handled in its own daemon thread."""

    def __init__(self, host: str, io_timeout: float, port: int = 0) -> None:
        _require_loopback(host)
        self.host = host.strip("[]")
        self._io_timeout = io_timeout
        self._requested_port = port
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._threads: set[threading.Thread] = set()
        self._links: set[_Link] = set()
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        """The port the service listens on (assigned by :meth:`start`)."""
        if self._listener is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        port: int = self._listener.getsockname()[1]
        return port

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` to connect to."""
        return (self.host, self.port)

    def start(self: _S) -> _S:
        """Bind the port (0: a free one) and start serving in a background thread."""
        if self._listener is not None:
            raise RuntimeError(f"{type(self).__name__} is already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            if self._requested_port:
                # A fixed port may still be in TIME_WAIT from a previous run.
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, self._requested_port))
            listener.listen(128)
            listener.setblocking(False)
        except OSError:
            listener.close()
            raise
        self._listener = listener
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping.clear()
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"{type(self).__name__}:{self.port}", daemon=True
        )
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, cut open connections and join the threads (bounded wait)."""
        if self._listener is None:
            return
        self._stopping.set()
        if self._wake_w is not None:
            with suppress(OSError):
                self._wake_w.send(b"x")
        if self._accept_thread is not None:
            self._accept_thread.join(_JOIN_TIMEOUT)
        with self._lock:
            links = list(self._links)
            threads = list(self._threads)
        for link in links:
            for sock in list(link.socks):
                _shutdown(sock)
        deadline = time.monotonic() + _JOIN_TIMEOUT
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for owned in (self._listener, self._wake_r, self._wake_w):
            if owned is not None:
                owned.close()
        self._listener = self._wake_r = self._wake_w = None
        self._accept_thread = None

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        listener, wake = self._listener, self._wake_r
        assert listener is not None
        assert wake is not None
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is not listener or self._stopping.is_set():
                        continue
                    try:
                        sock, peer = listener.accept()
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        return
                    sock.settimeout(self._io_timeout)
                    self._spawn(sock, peer)

    def _spawn(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        link = _Link(sock)
        thread = threading.Thread(
            target=self._run, args=(link, peer), name=f"{type(self).__name__}-conn", daemon=True
        )
        with self._lock:
            self._links.add(link)
            self._threads.add(thread)
        self._on_accept(link, peer)
        thread.start()

    def _run(self, link: _Link, peer: tuple[str, int]) -> None:
        try:
            self._handle(link, peer)
        finally:
            for sock in link.socks:
                with suppress(OSError):
                    sock.close()
            with self._lock:
                self._links.discard(link)
                self._threads.discard(threading.current_thread())

    def _on_accept(self, link: _Link, peer: tuple[str, int]) -> None:
        """Called in the accept thread before the connection's thread starts."""

    def _handle(self, link: _Link, peer: tuple[str, int]) -> None:
        raise NotImplementedError

    @property
    def alive_threads(self) -> int:
        """Connection threads still running (0 after a clean :meth:`stop`)."""
        with self._lock:
            threads = list(self._threads)
        accept = self._accept_thread
        return sum(t.is_alive() for t in threads) + int(accept is not None and accept.is_alive())


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


@dataclass(slots=True)
class _ConnState:
    peer: tuple[str, int]
    handshake_completed: bool = False
    received: int = 0
    sent: int = 0
    error: str | None = None
    sni: str | None = None
    tls_version: str | None = None
    alpn_protocol: str | None = None
    closed: bool = False
    counted: bool = True  # False once reset() has forgotten this connection

    def snapshot(self) -> ConnectionRecord:
        return ConnectionRecord(
            peer=self.peer,
            handshake_completed=self.handshake_completed,
            received=self.received,
            sent=self.sent,
            error=self.error,
            sni=self.sni,
            tls_version=self.tls_version,
            alpn_protocol=self.alpn_protocol,
            closed=self.closed,
        )


class _Closed(Exception):
    """The peer closed the connection before the request was complete."""


class _Reader:
    """Buffered reads from one TLS socket that count every application byte."""

    def __init__(self, sock: ssl.SSLSocket, count: Callable[[int], None]) -> None:
        self._sock = sock
        self._count = count
        self.buf = b""

    def fill(self) -> bool:
        data = self._sock.recv(_RECV_SIZE)
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
                    raise _Closed("the client closed the connection mid-request")
                return None
        end += len(delimiter)
        out, self.buf = self.buf[:end], self.buf[end:]
        return out

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self.fill():
                raise _Closed("the client closed the connection mid-request")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


class TLSServer(_LoopbackService):
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
        self._conns: list[_ConnState] = []
        self._requests: list[bytes] = []
        self._received = 0
        self._changed = threading.Condition(self._lock)

    @property
    def url(self) -> str:
        """``https://HOST:PORT/``."""
        return f"https://{_format_host(self.host)}:{self.port}/"

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
            return [c.snapshot() for c in self._conns]

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
            while len(self._conns) < count or not all(c.closed for c in self._conns):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [c.snapshot() for c in self._conns]
                    raise TimeoutError(f"waited {timeout}s for {count} closed connections: {seen}")
                self._changed.wait(remaining)
            return [c.snapshot() for c in self._conns]

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
        state: _ConnState | None = getattr(self._local, "state", None)
        if state is not None:
            with self._lock:
                state.sni = server_name

    def _on_accept(self, link: _Link, peer: tuple[str, int]) -> None:
        link.state = _ConnState(peer=peer)
        with self._changed:
            self._conns.append(link.state)
            self._changed.notify_all()

    def _count(self, state: _ConnState, n: int) -> None:
        with self._lock:
            state.received += n
            if state.counted:
                self._received += n

    def _handle(self, link: _Link, peer: tuple[str, int]) -> None:
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
                state.handshake_completed = True
                state.tls_version = tls.version()
                state.alpn_protocol = tls.selected_alpn_protocol()
            self._serve(tls, state)
        except Exception as exc:  # recorded for the test to inspect, never printed
            with self._lock:
                state.error = _describe(exc)
        finally:
            self._local.state = None
            with self._changed:
                state.closed = True
                self._changed.notify_all()

    def _send(self, tls: ssl.SSLSocket, state: _ConnState, data: bytes) -> None:
        tls.sendall(data)
        with self._lock:
            state.sent += len(data)

    def _serve(self, tls: ssl.SSLSocket, state: _ConnState) -> None:
        if self.mode == "http":
            self._serve_http(tls, state)
            return
        while data := tls.recv(_RECV_SIZE):
            self._count(state, len(data))
            if self.mode == "echo":
                self._send(tls, state, data)

    def _serve_http(self, tls: ssl.SSLSocket, state: _ConnState) -> None:
        reader = _Reader(tls, lambda n: self._count(state, n))
        while True:
            try:
                head = reader.until(b"\r\n\r\n", _MAX_HEAD)
            except ValueError:
                self._respond(tls, state, 431, b"request head too long\n", keep_alive=False)
                return
            if head is None:
                return
            with self._lock:
                self._requests.append(head)
            parsed = _parse_head(head)
            if parsed is None:
                self._respond(tls, state, 400, b"bad request\n", keep_alive=False)
                return
            method, version, headers = parsed
            if method == "CONNECT":
                self._respond(tls, state, 405, b"this is not a proxy\n", keep_alive=False)
                return
            if not _read_body(reader, headers):
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
                _close_notify(tls)
                return

    def _respond(
        self,
        tls: ssl.SSLSocket,
        state: _ConnState,
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


def _close_notify(tls: ssl.SSLSocket) -> None:
    """Send a TLS close_notify without waiting for the client's, so clients see a clean EOF."""
    with suppress(OSError, ValueError):
        tls.setblocking(False)
        tls.unwrap()


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]] | None:
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


def _read_body(reader: _Reader, headers: dict[str, str]) -> bool:
    """Consume the request body; False if its framing is malformed."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size_line = reader.until(b"\r\n", _MAX_HEAD)
            if size_line is None:
                raise _Closed("the client closed the connection mid-request")
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                return False
            if size == 0:
                # Trailer fields, if any, end with an empty line.
                while reader.until(b"\r\n", _MAX_HEAD) not in (b"\r\n", None):
                    pass
                return True
            reader.exactly(size + 2)
    length = headers.get("content-length", "0")
    if not length.isdigit():
        return False
    reader.exactly(int(length))
    return True
