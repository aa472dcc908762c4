"""A forging man-in-the-middle proxy on loopback, to prove that a client fails closed.

:class:`MitmProxy` is an HTTP CONNECT proxy (or, with *upstream*, a TLS reverse proxy)
that answers every TLS connection with a leaf forged on the fly for the name the client
asked for, signed by an interception CA, and relays what the client sends to the real
upstream. For every connection it records how many application bytes it decrypted from
the client: a pinned client must refuse the forged chain and send **zero** bytes.

It only ever connects to loopback targets; anything else is refused before a connection
is attempted. Plain-HTTP proxy requests are answered ``501`` and never relayed, but the
request bytes the client sent in clear count as leaked.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from urllib.parse import urlsplit

from pinset.pins import Pin, spki_pin
from pinset.testing._connect import (
    RECV_SIZE,
    Refused,
    bracket,
    canonical_or_raw,
    connect_any,
    loopback_addresses,
    parse_target,
    read_request,
    relay,
    reply,
)
from pinset.testing._mitm_verdicts import (
    HostVerdict,
    MitmRecord,
    Mode,
    Outcome,
    assert_intercepted,
    assert_refused,
    host_verdict,
)
from pinset.testing._pki import CertificateAuthority, KeyType, configure_cert_chain, generate_key
from pinset.testing._service import Link, LoopbackService, Tracked, describe

__all__ = [
    "HostVerdict",
    "MitmProxy",
    "MitmRecord",
    "Outcome",
    "assert_intercepted",
    "assert_refused",
    "host_verdict",
]

_PEEK_TIMEOUT = 5.0


class MitmProxy(LoopbackService):
    """A forging TLS interception proxy on 127.0.0.1 (context manager, background threads).

    *ca* signs the forged leaves (default: a fresh ``pinset interception CA``); all
    forged leaves share one key, so :attr:`leaf_pin` is stable. With *upstream*
    (``"host:port"`` on loopback) it is a reverse proxy: clients connect with TLS
    directly and are relayed there; otherwise it is a CONNECT proxy. The upstream TLS
    connection is not verified unless *upstream_context* says so. *on_record* is called
    (in a proxy thread) with each connection's record once it is closed.
    """

    def __init__(
        self,
        *,
        ca: CertificateAuthority | None = None,
        upstream: str | None = None,
        upstream_context: ssl.SSLContext | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        key_type: KeyType = "ec-p256",
        on_record: Callable[[MitmRecord], None] | None = None,
        io_timeout: float = 10.0,
    ) -> None:
        super().__init__(host, io_timeout, port)
        self.ca = ca if ca is not None else CertificateAuthority.create("pinset interception CA")
        self.upstream: tuple[str, int] | None = None
        if upstream is not None:
            try:
                up_host, up_port = parse_target(upstream)
                loopback_addresses(up_host, up_port)
            except Refused as exc:
                raise ValueError(f"upstream {upstream!r}: {exc}") from None
            self.upstream = (up_host, up_port)
        self._leaf_key = generate_key(key_type)
        self._upstream_context = upstream_context or _unverified_client_context()
        self._on_record = on_record
        self._forged: dict[str, ssl.SSLContext] = {}
        self._states: list[Tracked[MitmRecord]] = []
        self._next_id = 1
        self._changed = threading.Condition(self._lock)
        self._local = threading.local()

    # -- public view ----------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (CONNECT mode) or ``https://127.0.0.1:PORT/`` (reverse)."""
        host = bracket(self.host)
        if self.upstream is not None:
            return f"https://{host}:{self.port}/"
        return f"http://{host}:{self.port}"

    @property
    def ca_pem(self) -> str:
        """The interception CA certificate (PEM) a victim device would have to trust."""
        return self.ca.cert_pem.bytes().decode("ascii")

    @property
    def leaf_pin(self) -> Pin:
        """The pin of the key every forged leaf carries."""
        return spki_pin(self._leaf_key.public_key())

    @property
    def records(self) -> list[MitmRecord]:
        """A snapshot of every connection since start or :meth:`reset`, oldest first."""
        with self._lock:
            return [s.record for s in self._states]

    def reset(self) -> None:
        """Forget the connections seen so far (forged certificates stay cached)."""
        with self._lock:
            for state in self._states:
                state.counted = False
            self._states.clear()

    def wait_closed(self, timeout: float = 5.0) -> list[MitmRecord]:
        """Wait until every connection seen so far is closed; return the records.

        A client call returns before the proxy thread has counted the last bytes: call
        this before asserting on counters. Raises :class:`TimeoutError`.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while not all(s.record.closed for s in self._states):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    open_ = [s.record for s in self._states if not s.record.closed]
                    raise TimeoutError(f"connections still open after {timeout}s: {open_}")
                self._changed.wait(remaining)
            return [s.record for s in self._states]

    def verdicts(self, pinned_hosts: Iterable[str], *, wait: float = 5.0) -> list[HostVerdict]:
        """One :class:`HostVerdict` per pinned host, in the order given.

        Waits up to *wait* seconds for open connections to close first (a connection
        still open then is judged on what it sent so far).
        """
        with suppress(TimeoutError):
            self.wait_closed(wait)
        records = self.records
        out: list[HostVerdict] = []
        for name in dict.fromkeys(canonical_or_raw(h) for h in pinned_hosts):
            out.append(host_verdict(name, (r for r in records if r.host == name)))
        return out

    def __repr__(self) -> str:
        where = self.url if self._listener is not None else "not started"
        return f"<MitmProxy {where}>"

    # -- forging ----------------------------------------------------------------------

    def _forged_context(self, name: str) -> ssl.SSLContext:
        with self._lock:
            ctx = self._forged.get(name)
        if ctx is not None:
            return ctx
        leaf = self.ca.issue_cert(name, private_key=self._leaf_key)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        configure_cert_chain(ctx, leaf.chain, leaf.private_key)
        ctx.sni_callback = self._on_sni
        with self._lock:
            return self._forged.setdefault(name, ctx)

    def _on_sni(self, sslobj: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        # Runs inside the handshake on the connection's own thread: switch to a leaf
        # forged for exactly the name the client asked for.
        state: Tracked[MitmRecord] | None = getattr(self._local, "state", None)
        if server_name is None:
            return
        name = canonical_or_raw(server_name)
        if state is not None:
            with self._lock:
                state.update(sni=server_name, host=name)
        sslobj.context = self._forged_context(name)

    # -- connections ------------------------------------------------------------------

    def _new_state(self, mode: Mode, target: str, host: str) -> Tracked[MitmRecord]:
        with self._changed:
            state = Tracked(MitmRecord(self._next_id, mode, target, canonical_or_raw(host)))
            self._next_id += 1
            self._states.append(state)
            self._changed.notify_all()
        self._local.state = state
        return state

    def _handle(self, link: Link, peer: tuple[str, int]) -> None:
        # _new_state() puts the connection's state in self._local.state (this thread).
        self._local.state = None
        try:
            if self.upstream is not None:
                host, port = self.upstream
                state = self._new_state("reverse", f"{host}:{port}", host)
                self._intercept(link, state, host, port)
                return
            state_or_none = self._accept_request(link, link.socks[0])
            if state_or_none is not None and state_or_none.record.mode == "connect":
                host, port = parse_target(state_or_none.record.target)
                self._intercept(link, state_or_none, host, port)
        except Exception as exc:  # recorded for the test to inspect, never printed
            failed: Tracked[MitmRecord] | None = self._local.state
            if failed is not None:
                with self._lock:
                    failed.update(error=failed.record.error or describe(exc))
        finally:
            self._finish(self._local.state)
            self._local.state = None

    def _finish(self, state: Tracked[MitmRecord] | None) -> None:
        if state is None:
            return
        with self._changed:
            state.update(closed=True)
            self._changed.notify_all()
        if self._on_record is not None and state.counted:
            with suppress(Exception):  # an observer never breaks the proxy
                self._on_record(state.record)

    def _accept_request(self, link: Link, client: socket.socket) -> Tracked[MitmRecord] | None:
        try:
            request = read_request(client)
            if request is None:
                return None
            parts, early, received = request
            if len(parts) != 3:
                raise Refused(400, "Bad Request", "malformed request line")
            method, target = parts[0], parts[1]
            if method != "CONNECT":
                return self._plain_http(client, target, received)
            host, port = parse_target(target)
        except Refused as refused:
            reply(client, refused.status, refused.reason, str(refused))
            return None
        state = self._new_state("connect", f"{bracket(host)}:{port}", host)
        try:
            addresses = loopback_addresses(host, port)
        except Refused as refused:
            state.update(error=str(refused))
            reply(client, refused.status, refused.reason, str(refused))
            return None
        try:
            upstream = connect_any(addresses, port, self._io_timeout)
        except OSError:
            message = f"cannot connect to {state.record.target}"
            state.update(error=message)
            reply(client, 502, "Bad Gateway", message)
            return None
        link.socks.append(upstream)
        with self._lock:
            state.update(upstream_connected=True)
        if early:
            # Python's ssl cannot replay bytes already read from the socket; clients
            # wait for the 200 before their ClientHello, so this is a broken client.
            message = "the client sent data before the proxy's 200 reply"
            state.update(error=message)
            reply(client, 400, "Bad Request", message)
            return None
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        return state

    def _plain_http(self, client: socket.socket, target: str, received: int) -> Tracked[MitmRecord]:
        # Plain HTTP through the proxy is already a leak: count it, never relay it.
        try:
            host = urlsplit(target).hostname or target
        except ValueError:
            host = target
        state = self._new_state("http", target, host)
        with self._lock:
            state.update(client_bytes=received, error="plain HTTP request (not relayed)")
        reply(client, 501, "Not Implemented", "pinset mitm relays HTTPS (CONNECT) only")
        return state

    def _intercept(self, link: Link, state: Tracked[MitmRecord], host: str, port: int) -> None:
        client = link.socks[0]
        client.settimeout(_PEEK_TIMEOUT)
        if not client.recv(1, socket.MSG_PEEK):
            state.update(error="client closed before starting TLS")
            return
        client.settimeout(self._io_timeout)
        with self._lock:
            state.update(tls_started=True)
        if self.upstream is not None:
            addresses = loopback_addresses(host, port)
            try:
                upstream_sock = connect_any(addresses, port, self._io_timeout)
            except OSError:
                state.update(error=f"cannot connect to upstream {state.record.target}")
                return
            link.socks.append(upstream_sock)
            with self._lock:
                state.update(upstream_connected=True)
        tls = self._forged_context(state.record.host).wrap_socket(
            client, server_side=True, do_handshake_on_connect=False
        )
        link.socks[0] = tls
        tls.do_handshake()
        with self._lock:
            state.update(handshake_completed=True, tls_version=tls.version())
        try:
            up = _wrap_upstream(self._upstream_context, link.socks[-1], state.record.sni or host)
        except (OSError, ValueError) as exc:
            with self._lock:
                state.update(error=f"upstream TLS failed: {describe(exc)}")
            self._count_only(tls, state)
            return
        link.socks[-1] = up
        self._relay(tls, up, state)

    def _count_only(self, client: ssl.SSLSocket, state: Tracked[MitmRecord]) -> None:
        # Without an upstream the client's bytes still have to be measured.
        with suppress(OSError, ValueError):
            while data := client.recv(RECV_SIZE):
                with self._lock:
                    state.add(client_bytes=len(data))

    def _relay(
        self, client: ssl.SSLSocket, upstream: ssl.SSLSocket, state: Tracked[MitmRecord]
    ) -> None:
        def read(src: ssl.SSLSocket) -> tuple[list[bytes], bool]:
            try:
                return _drain(src, self._io_timeout)
            except (OSError, ValueError) as exc:
                with self._lock:
                    if src is client or state.record.error is None:
                        state.update(error=describe(exc))
                return [], True

        def received(src: ssl.SSLSocket, data: bytes) -> None:
            with self._lock:
                if src is client:
                    state.add(client_bytes=len(data))
                else:
                    state.add(bytes_to_client=len(data))

        def sent(src: ssl.SSLSocket, data: bytes) -> None:
            if src is client:
                with self._lock:
                    state.add(bytes_to_upstream=len(data))

        relay(
            client,
            upstream,
            self._io_timeout,
            read=read,
            half_close=False,
            received=received,
            sent=sent,
        )


def _drain(sock: ssl.SSLSocket, io_timeout: float) -> tuple[list[bytes], bool]:
    """Read what is available without blocking: (chunks, reached EOF)."""
    chunks: list[bytes] = []
    sock.setblocking(False)
    try:
        while True:
            try:
                data = sock.recv(RECV_SIZE)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                return chunks, False
            if not data:
                return chunks, True
            chunks.append(data)
    finally:
        sock.settimeout(io_timeout)


def _wrap_upstream(context: ssl.SSLContext, sock: socket.socket, hostname: str) -> ssl.SSLSocket:
    """``context.wrap_socket(sock)``; on failure, the descriptor it took from *sock* is closed."""
    try:
        return context.wrap_socket(sock, server_hostname=hostname)
    except BaseException as exc:
        # wrap_socket moves sock's descriptor to a new SSLSocket, then checks that it is
        # connected. In CPython releases without the gh-113280 fix (3.11.7 among them),
        # an error there (the upstream reset the connection before the handshake)
        # escapes without closing that SSLSocket, which only the traceback still refers
        # to; left alone, the GC closes it later with a ResourceWarning. Close it now.
        _close_wrapping_sockets(exc)
        raise


def _close_wrapping_sockets(exc: BaseException) -> None:
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_globals.get("__name__") == "ssl":
            made = frame.f_locals.get("self")
            if isinstance(made, ssl.SSLSocket):
                with suppress(OSError):
                    made.close()
        tb = tb.tb_next


def _unverified_client_context() -> ssl.SSLContext:
    # The attacker does not care who the upstream is; pass upstream_context to verify.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
