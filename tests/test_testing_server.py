"""pinset.testing._server and .tunnel: real loopback TLS, byte accounting, clean shutdown."""

from __future__ import annotations

import contextlib
import socket
import ssl
import sys
import threading
import time
import urllib.request

import pytest
from cryptography import x509

from pinset.testing import LeafCert, TestPKI, TLSServer, TunnelProxy

REQUEST = b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n"


def served_chain(tls: ssl.SSLSocket) -> list[x509.Certificate]:
    """The certificates the server sent, in its order (not the verified path)."""
    if sys.version_info >= (3, 13):
        return [x509.load_der_x509_certificate(der) for der in tls.get_unverified_chain()]
    # 3.10-3.12: private, returns _ssl.Certificate objects whose public_bytes() is PEM text.
    chain = tls._sslobj.get_unverified_chain()  # type: ignore[attr-defined]
    return [x509.load_pem_x509_certificate(c.public_bytes().encode()) for c in chain]


def connect(
    address: tuple[str, int], ctx: ssl.SSLContext, hostname: str | None = "localhost"
) -> ssl.SSLSocket:
    sock = socket.create_connection(address, timeout=5)
    try:
        return ctx.wrap_socket(sock, server_hostname=hostname)
    except BaseException:
        sock.close()
        raise


def read_response(tls: ssl.SSLSocket) -> tuple[bytes, bytes]:
    """Read one Content-Length framed response: (head, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = tls.recv(4096)
        assert chunk, f"EOF before response head: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")).split(
            b":"
        )[1]
    )
    while len(body) < length:
        body += tls.recv(4096)
    return head, body


def test_serves_the_normal_chain_and_answers_http(
    server: TLSServer, pki: TestPKI, leaf: LeafCert
) -> None:
    with connect(server.address, pki.client_context()) as tls:
        assert served_chain(tls) == list(leaf.chain)
        tls.sendall(REQUEST)
        head, body = read_response(tls)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Type: text/plain" in head
    assert body == b"pinned hello\n"
    (record,) = server.wait_for_connections(1)
    assert record.handshake_completed
    assert record.received == len(REQUEST) == server.received_bytes
    assert record.sni == "localhost"
    assert record.error is None
    assert server.requests == [REQUEST]
    assert server.url == f"https://127.0.0.1:{server.port}/"


def test_serves_any_certificate_list_in_the_given_order(pki: TestPKI) -> None:
    forged = pki.rogue.issue_cert("localhost", "127.0.0.1")
    genuine = pki.leaf()
    # The classic pinning bypass: a forged leaf with the genuine certificates appended.
    sent = [forged.cert, genuine.cert, pki.intermediate.cert, pki.root.cert]
    with TLSServer(sent, forged.private_key) as srv:
        with connect(srv.address, pki.rogue.client_context()) as tls:
            assert served_chain(tls) == sent
        with pytest.raises(ssl.SSLCertVerificationError):
            connect(srv.address, pki.client_context())
    reordered = [genuine.cert, pki.root.cert, pki.intermediate.cert]
    with (
        TLSServer(reordered, genuine.private_key) as srv,
        connect(srv.address, pki.client_context()) as tls,
    ):
        assert served_chain(tls) == reordered


def test_keep_alive_bodies_and_connection_close(server: TLSServer, pki: TestPKI) -> None:
    post = b"POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello"
    chunked = (
        b"POST /y HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n"
    )
    close = b"GET /z HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    with connect(server.address, pki.client_context()) as tls:
        for request in (post, chunked):
            tls.sendall(request)
            head, body = read_response(tls)
            assert b"Connection: keep-alive" in head
            assert body == b"pinned hello\n"
        tls.sendall(close)
        head, _ = read_response(tls)
        assert b"Connection: close" in head
        assert tls.recv(100) == b""  # the server closed (with close_notify)
    (record,) = server.wait_for_connections(1)
    assert record.received == len(post) + len(chunked) + len(close) == server.received_bytes
    assert [r.split(b"\r\n")[0] for r in server.requests] == [
        b"POST /x HTTP/1.1",
        b"POST /y HTTP/1.1",
        b"GET /z HTTP/1.1",
    ]


def test_http_1_0_closes_and_connect_is_refused(server: TLSServer, pki: TestPKI) -> None:
    with connect(server.address, pki.client_context()) as tls:
        tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
        head, _ = read_response(tls)
        assert head.startswith(b"HTTP/1.1 200 OK")
        assert tls.recv(100) == b""
    with connect(server.address, pki.client_context()) as tls:
        tls.sendall(b"CONNECT example.com:443 HTTP/1.1\r\n\r\n")
        head, _ = read_response(tls)
        assert head.startswith(b"HTTP/1.1 405 ")


def test_urllib_gets_the_body(server: TLSServer, pki: TestPKI) -> None:
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=pki.client_context())
    )
    with opener.open(f"https://localhost:{server.port}/", timeout=5) as response:
        assert response.read() == b"pinned hello\n"


def test_echo_mode(leaf: LeafCert, pki: TestPKI) -> None:
    payload = bytes(range(256)) * 300
    with TLSServer(leaf, mode="echo") as srv:
        with connect(srv.address, pki.client_context()) as tls:
            tls.sendall(payload)
            echoed = b""
            while len(echoed) < len(payload):
                echoed += tls.recv(65536)
        (record,) = srv.wait_for_connections(1)
    assert echoed == payload
    assert record.received == record.sent == len(payload) == srv.received_bytes


def test_silent_mode_counts_and_never_writes(leaf: LeafCert, pki: TestPKI) -> None:
    with TLSServer(leaf, mode="silent") as srv:
        with connect(srv.address, pki.client_context()) as tls:
            tls.sendall(b"x" * 1000)
            tls.settimeout(0.2)
            with pytest.raises(TimeoutError):
                tls.recv(10)
        (record,) = srv.wait_for_connections(1)
    assert record.received == 1000 == srv.received_bytes
    assert record.sent == 0


def test_client_rejecting_the_certificate_is_recorded_quietly(
    server: TLSServer, pki: TestPKI, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(server.address, pki.rogue.client_context())
    (record,) = server.wait_for_connections(1)
    assert not record.handshake_completed
    assert record.received == 0 == server.received_bytes
    assert record.error is not None
    assert "unknown ca" in record.error.lower()
    assert capfd.readouterr().err == ""


def test_client_aborting_after_the_handshake_sends_nothing(server: TLSServer, pki: TestPKI) -> None:
    # What a pin refusal looks like from the server: a completed handshake, then a close.
    tls = connect(server.address, pki.client_context())
    tls.close()
    (record,) = server.wait_for_connections(1)
    assert record.handshake_completed
    assert record.received == 0 == server.received_bytes
    assert server.requests == []


def test_set_chain_rotates_for_new_connections(
    server: TLSServer, pki: TestPKI, leaf: LeafCert
) -> None:
    rotated = pki.leaf()
    old = connect(server.address, pki.client_context())
    try:
        server.set_chain(rotated)
        with connect(server.address, pki.client_context()) as tls:
            assert served_chain(tls)[0] == rotated.cert
        assert served_chain(old)[0] == leaf.cert
        old.sendall(REQUEST)
        assert read_response(old)[1] == b"pinned hello\n"
    finally:
        old.close()
    server.set_chain(list(leaf.chain), leaf.private_key)
    with connect(server.address, pki.client_context()) as tls:
        assert served_chain(tls) == list(leaf.chain)
    with pytest.raises(TypeError, match="private_key"):
        server.set_chain(list(leaf.chain))


def test_sni_alpn_and_ip_hostnames(leaf: LeafCert, pki: TestPKI) -> None:
    with TLSServer(leaf, alpn=["h2", "http/1.1"]) as srv:
        ctx = pki.client_context()
        ctx.set_alpn_protocols(["http/1.1"])
        with connect(srv.address, ctx) as tls:
            assert tls.selected_alpn_protocol() == "http/1.1"
        with connect(srv.address, ctx, hostname="127.0.0.1"):
            pass
        first, second = srv.wait_for_connections(2)
    assert (first.sni, first.alpn_protocol, first.tls_version) == (
        "localhost",
        "http/1.1",
        "TLSv1.3",
    )
    assert second.sni is None  # clients send no SNI for an IP address


def test_reset_clears_counters(server: TLSServer, pki: TestPKI) -> None:
    with connect(server.address, pki.client_context()) as tls:
        tls.sendall(REQUEST)
        read_response(tls)
    server.wait_for_connections(1)
    server.reset()
    assert (server.received_bytes, server.connections, server.requests) == (0, [], [])
    with connect(server.address, pki.client_context()) as tls:
        tls.sendall(REQUEST)
        read_response(tls)
    (record,) = server.wait_for_connections(1)
    assert record.received == len(REQUEST) == server.received_bytes


def test_stop_is_fast_with_idle_connections_and_leaves_no_threads(
    leaf: LeafCert, pki: TestPKI
) -> None:
    before = set(threading.enumerate())
    # Idle connections time out after an hour: if stop() waited for them instead of
    # cutting them, their threads would outlive its bounded join.
    srv = TLSServer(leaf, mode="silent", io_timeout=3600).start()
    address = srv.address
    handshaken = connect(address, pki.client_context())
    half_open = socket.create_connection(address, timeout=5)  # never starts TLS
    try:
        deadline = time.monotonic() + 5
        while len(srv.connections) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(srv.connections) == 2
        srv.stop()
        assert srv.alive_threads == 0  # while both clients are still connected and silent
        for sock in (handshaken, half_open):  # ... and they see the server end it
            with contextlib.suppress(ConnectionResetError, ssl.SSLError):
                assert sock.recv(1) == b""
    finally:
        handshaken.close()
        half_open.close()
    assert set(threading.enumerate()) <= before
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=1).close()
    srv.stop()  # a second stop is harmless


def test_wait_for_connections_times_out(server: TLSServer) -> None:
    with pytest.raises(TimeoutError, match="1 closed connections"):
        server.wait_for_connections(1, timeout=0.05)


def test_constructor_checks(leaf: LeafCert) -> None:
    with pytest.raises(ValueError, match="loopback only"):
        TLSServer(leaf, host="0.0.0.0")
    with pytest.raises(ValueError, match="unknown mode"):
        TLSServer(leaf, mode="chatty")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="private_key"):
        TLSServer([leaf.cert])
    with pytest.raises(RuntimeError, match="not started"):
        _ = TLSServer(leaf).port


def test_ipv6_loopback(leaf: LeafCert, pki: TestPKI) -> None:
    try:
        srv = TLSServer(leaf, host="::1").start()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        with connect(srv.address, pki.client_context()) as tls:
            assert served_chain(tls) == list(leaf.chain)
        assert srv.url == f"https://[::1]:{srv.port}/"
    finally:
        srv.stop()


# TunnelProxy


def open_tunnel(proxy: TunnelProxy, target: str) -> tuple[socket.socket, bytes]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(proxy.address)
    sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            break
        head += chunk
    return sock, head


def test_tunnel_relays_tls_to_the_server(server: TLSServer, pki: TestPKI, leaf: LeafCert) -> None:
    with TunnelProxy() as proxy:
        sock, head = open_tunnel(proxy, f"127.0.0.1:{server.port}")
        assert head.startswith(b"HTTP/1.1 200 ")
        with pki.client_context().wrap_socket(sock, server_hostname="localhost") as tls:
            assert served_chain(tls) == list(leaf.chain)
            tls.sendall(REQUEST)
            assert read_response(tls)[1] == b"pinned hello\n"
        server.wait_for_connections(1)
        assert proxy.connects == [f"127.0.0.1:{server.port}"]
        assert proxy.bytes_client_to_upstream > server.received_bytes == len(REQUEST)
        assert proxy.bytes_upstream_to_client > 0
        assert proxy.url == f"http://127.0.0.1:{proxy.port}"


def test_tunnel_works_for_urllib_with_localhost(server: TLSServer, pki: TestPKI) -> None:
    with TunnelProxy() as proxy:
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({"https": proxy.url}),
            urllib.request.HTTPSHandler(context=pki.client_context()),
        )
        with opener.open(f"https://localhost:{server.port}/", timeout=5) as response:
            assert response.read() == b"pinned hello\n"
        assert proxy.connects == [f"localhost:{server.port}"]


@pytest.mark.parametrize(
    "target", ["example.com:443", "10.0.0.1:443", "[2001:db8::1]:443", "localhost.example.com:443"]
)
def test_tunnel_refuses_non_loopback_targets_before_connecting(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> socket.socket:
        attempts.append(args)
        raise AssertionError("the proxy tried to connect or resolve")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    with TunnelProxy() as proxy:
        sock, head = open_tunnel(proxy, target)
        sock.close()
    assert head.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert attempts == []
    assert proxy.connects == [target]
    assert proxy.bytes_client_to_upstream == 0


def test_tunnel_answers_other_methods_and_closed_ports(closed_port: int) -> None:
    with TunnelProxy() as proxy:
        sock = socket.create_connection(proxy.address, timeout=5)
        sock.sendall(b"GET http://127.0.0.1/ HTTP/1.1\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 405 ")
        sock.close()
        sock, head = open_tunnel(proxy, f"127.0.0.1:{closed_port}")
        sock.close()
        assert head.startswith(b"HTTP/1.1 502 ")
        sock, head = open_tunnel(proxy, "127.0.0.1:http")
        sock.close()
        assert head.startswith(b"HTTP/1.1 400 ")


def test_tunnel_refuses_an_oversized_request_head() -> None:
    with TunnelProxy() as proxy:
        sock = socket.create_connection(proxy.address, timeout=5)
        sock.sendall(b"CONNECT 127.0.0.1:9 HTTP/1.1\r\nX: " + b"a" * 17_000)  # no end of head
        assert sock.recv(100).startswith(b"HTTP/1.1 431 ")
        sock.close()
    assert proxy.connects == []


def test_fixed_port_can_be_reused_right_away(leaf: LeafCert, pki: TestPKI) -> None:
    port = 0  # the first run takes a free port from the system, the second asks for it again
    for _ in range(2):  # the second bind meets the first run's TIME_WAIT sockets
        with TLSServer(leaf, port=port) as srv:
            assert srv.port == port or port == 0
            port = srv.port
            with connect(srv.address, pki.client_context()) as tls:
                tls.sendall(REQUEST)
                read_response(tls)
