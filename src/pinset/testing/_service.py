"""The loopback service behind the test servers and proxies: accept loop, a thread a connection.

:class:`LoopbackService` listens on a loopback port only, runs each accepted
connection in its own daemon thread, and on :meth:`~LoopbackService.stop` cuts the
connections still open and joins their threads with a bounded wait. Subclasses
(:class:`~pinset.testing.TLSServer`, :class:`~pinset.testing.TunnelProxy`,
:class:`~pinset.testing.MitmProxy`) implement ``_handle``.
"""

from __future__ import annotations

import ipaddress
import selectors
import socket
import threading
import time
from contextlib import suppress
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from pinset.testing._server import ConnectionRecord

__all__ = ["Link", "LoopbackService", "Tracked", "describe"]

_JOIN_TIMEOUT = 2.0

_S = TypeVar("_S", bound="LoopbackService")
_R = TypeVar("_R", bound="DataclassInstance")


def _require_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"test servers listen on loopback only, not {host!r}")


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _shutdown(sock: socket.socket) -> None:
    # socket.socket.shutdown, not SSLSocket.shutdown: the latter drops the SSL object
    # under the feet of the thread reading from it. Shutting the TCP socket down makes
    # that thread's blocking recv return, which is all stop() needs.
    with suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class Tracked(Generic[_R]):
    """What one connection did so far: a frozen record, replaced (never changed) as it goes.

    The connection's thread updates it under its service's lock; readers take ``record``
    as it is. ``counted`` turns false once the service's ``reset()`` forgot the connection.
    """

    __slots__ = ("counted", "record")

    def __init__(self, record: _R) -> None:
        self.record = record
        self.counted = True

    def update(self, **changes: Any) -> None:
        """Replace the record with one whose fields ``changes`` names are changed."""
        self.record = replace(self.record, **changes)

    def add(self, **counts: int) -> None:
        """Replace the record with one whose counters ``counts`` names are raised."""
        self.update(**{name: getattr(self.record, name) + n for name, n in counts.items()})


class Link:
    """The sockets of one accepted connection, so that stop() can unblock its thread."""

    def __init__(self, sock: socket.socket) -> None:
        self.socks: list[socket.socket] = [sock]
        self.state: Tracked[ConnectionRecord] | None = None


class LoopbackService:
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
        self._links: set[Link] = set()
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
        link = Link(sock)
        thread = threading.Thread(
            target=self._run, args=(link, peer), name=f"{type(self).__name__}-conn", daemon=True
        )
        with self._lock:
            self._links.add(link)
            self._threads.add(thread)
        self._on_accept(link, peer)
        thread.start()

    def _run(self, link: Link, peer: tuple[str, int]) -> None:
        try:
            self._handle(link, peer)
        finally:
            for sock in link.socks:
                with suppress(OSError):
                    sock.close()
            with self._lock:
                self._links.discard(link)
                self._threads.discard(threading.current_thread())

    def _on_accept(self, link: Link, peer: tuple[str, int]) -> None:
        """Called in the accept thread before the connection's thread starts."""

    def _handle(self, link: Link, peer: tuple[str, int]) -> None:
        raise NotImplementedError

    @property
    def alive_threads(self) -> int:
        """Connection threads still running (0 after a clean :meth:`stop`)."""
        with self._lock:
            threads = list(self._threads)
        accept = self._accept_thread
        return sum(t.is_alive() for t in threads) + int(accept is not None and accept.is_alive())
