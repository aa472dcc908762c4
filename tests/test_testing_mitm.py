"""The forging MITM proxy against a real loopback TLS server and real clients."""

from __future__ import annotations

import gc
import socket
import ssl
import struct
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable

import pytest
from cryptography import x509

import pinset
from pinset.policy import DomainRule, Policy
from pinset.testing import LeafCert, TestPKI, TLSServer
from pinset.testing._mitm import MitmProxy, MitmRecord, assert_intercepted, assert_refused

REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def policy_for(host: str, *pins: pinset.Pin) -> Policy:
    return Policy((DomainRule(host, pins, allow_single_pin=True),))


def victim_context(pki: TestPKI, proxy: MitmProxy) -> ssl.SSLContext:
    """A plain client on a device where the attacker installed its CA."""
    ctx = pki.client_context()
    proxy.ca.configure_trust(ctx)
    return ctx


def pinned_victim(pki: TestPKI, proxy: MitmProxy, *pins: pinset.Pin) -> ssl.SSLContext:
    cadata = pki.root.cert_pem.bytes().decode() + proxy.ca_pem
    return pinset.ssl_context(policy_for("localhost", *pins), cadata=cadata)


def fetch(url: str, ctx: ssl.SSLContext, proxy: str | None = None) -> bytes:
    handlers: list[urllib.request.BaseHandler] = [urllib.request.HTTPSHandler(context=ctx)]
    handlers.append(urllib.request.ProxyHandler({"https": proxy} if proxy else {}))
    with urllib.request.build_opener(*handlers).open(url, timeout=10) as response:
        body: bytes = response.read()
    return body


def test_unpinned_client_is_intercepted_and_request_reaches_upstream(
    pki: TestPKI, server: TLSServer, proxy: MitmProxy
) -> None:
    body = fetch(f"https://localhost:{server.port}/", victim_context(pki, proxy), proxy.url)

    assert body == server.http_body
    (verdict,) = proxy.verdicts(["localhost"])
    assert verdict.outcome == "INTERCEPTED"
    (record,) = verdict.records
    assert record.sni == "localhost"
    assert record.target == f"localhost:{server.port}"
    assert record.handshake_completed
    assert record.client_bytes > 0
    server.wait_for_connections(1)
    assert server.requests[0].startswith(b"GET / HTTP/1.1")
    # Every decrypted byte was relayed, and the server counted exactly as many.
    assert record.bytes_to_upstream == record.client_bytes == server.received_bytes
    assert record.bytes_to_client > len(server.http_body)


def test_pinned_client_refuses_and_sends_nothing(
    pki: TestPKI, leaf: LeafCert, server: TLSServer, proxy: MitmProxy
) -> None:
    ctx = pinned_victim(pki, proxy, pinset.spki_pin(leaf.cert))
    # The same client without the proxy works: the pin is right.
    assert fetch(f"https://localhost:{server.port}/", ctx) == server.http_body
    server.reset()

    with pytest.raises(urllib.error.URLError) as info:
        fetch(f"https://localhost:{server.port}/", ctx, proxy.url)

    assert isinstance(info.value.reason, pinset.PinMismatchError)
    verdict = assert_refused(proxy, "localhost")
    assert verdict.leaked_bytes == 0
    assert verdict.connections == 1
    # TLS 1.3: the forging side finished its handshake before the client judged it.
    assert verdict.records[0].handshake_completed
    assert server.received_bytes == 0


def test_tls12_pinned_client_refuses_after_a_completed_handshake(
    pki: TestPKI, leaf: LeafCert, server: TLSServer, proxy: MitmProxy
) -> None:
    ctx = pinned_victim(pki, proxy, pinset.spki_pin(leaf.cert))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(urllib.error.URLError):
        fetch(f"https://localhost:{server.port}/", ctx, proxy.url)
    (record,) = assert_refused(proxy, "localhost").records
    assert record.tls_version == "TLSv1.2"
    assert record.handshake_completed  # the client sent Finished, then judged the pins
    assert record.client_bytes == 0


def test_client_not_trusting_the_ca_refuses_during_the_handshake(
    pki: TestPKI, server: TLSServer, proxy: MitmProxy
) -> None:
    with pytest.raises(urllib.error.URLError):
        fetch(f"https://localhost:{server.port}/", pki.client_context(), proxy.url)
    (record,) = assert_refused(proxy, "localhost").records
    assert not record.handshake_completed
    assert record.error is not None


def test_leak_counter_counts_bytes_sent_before_the_check(
    pki: TestPKI, leaf: LeafCert, server: TLSServer, proxy: MitmProxy
) -> None:
    """A client that writes first and checks the key afterwards has already leaked."""
    expected = pinset.spki_pin(leaf.cert)
    raw = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    raw.sendall(f"CONNECT localhost:{server.port} HTTP/1.1\r\n\r\n".encode())
    assert raw.recv(1024).startswith(b"HTTP/1.1 200")
    tls = victim_context(pki, proxy).wrap_socket(raw, server_hostname="localhost")
    tls.sendall(REQUEST)
    # Read the answer before closing: a close with the proxy's TLS 1.3 session tickets still
    # unread sends a RST, and a RST can discard the request from the proxy's receive buffer
    # before the proxy counts it (seen under load).
    assert tls.recv(65536).startswith(b"HTTP/1.")
    served = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True) or b"")
    assert pinset.spki_pin(served) != expected  # the check, too late
    tls.close()

    (verdict,) = proxy.verdicts(["localhost"])
    assert verdict.outcome == "INTERCEPTED"
    assert verdict.leaked_bytes == len(REQUEST)
    with pytest.raises(AssertionError, match=f"sent {len(REQUEST)} application bytes"):
        assert_refused(proxy, "localhost")


def test_reverse_mode_forges_for_sni_and_relays(
    pki: TestPKI, leaf: LeafCert, server: TLSServer
) -> None:
    with MitmProxy(upstream=f"127.0.0.1:{server.port}") as proxy:
        assert proxy.url == f"https://127.0.0.1:{proxy.port}/"
        url = f"https://localhost:{proxy.port}/"
        assert fetch(url, victim_context(pki, proxy)) == server.http_body
        assert_intercepted(proxy, "localhost")
        proxy.reset()

        with pytest.raises(urllib.error.URLError):
            fetch(url, pinned_victim(pki, proxy, pinset.spki_pin(leaf.cert)))
        verdict = assert_refused(proxy, "localhost")
        assert verdict.records[0].mode == "reverse"
        assert verdict.records[0].target == f"127.0.0.1:{server.port}"


def test_forges_ip_literal_without_sni(pki: TestPKI, server: TLSServer, proxy: MitmProxy) -> None:
    body = fetch(f"https://127.0.0.1:{server.port}/", victim_context(pki, proxy), proxy.url)
    assert body == server.http_body
    (record,) = proxy.records
    assert record.sni is None
    assert record.host == "127.0.0.1"
    assert_intercepted(proxy, "127.0.0.1")


def _forged_leaf(proxy: MitmProxy, host: str, port: int, ctx: ssl.SSLContext) -> x509.Certificate:
    raw = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    raw.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\n\r\n".encode())
    assert raw.recv(1024).startswith(b"HTTP/1.1 200")
    with ctx.wrap_socket(raw, server_hostname=host) as tls:
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True) or b"")


def test_forged_leaves_are_per_name_cached_and_share_one_key(
    pki: TestPKI, server: TLSServer, proxy: MitmProxy
) -> None:
    ctx = victim_context(pki, proxy)
    first = _forged_leaf(proxy, "localhost", server.port, ctx)
    again = _forged_leaf(proxy, "localhost", server.port, ctx)
    by_ip = _forged_leaf(proxy, "127.0.0.1", server.port, ctx)

    assert first == again
    assert first.issuer == proxy.ca.cert.subject
    san = first.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert by_ip != first
    assert pinset.spki_pin(first) == pinset.spki_pin(by_ip) == proxy.leaf_pin


def test_given_intermediate_ca_is_used(pki: TestPKI, server: TLSServer) -> None:
    intercept = pki.rogue.create_child_ca("corporate TLS inspection")
    with MitmProxy(ca=intercept) as proxy:
        ctx = pki.client_context()
        pki.rogue.configure_trust(ctx)  # only the root is installed on the device
        leaf = _forged_leaf(proxy, "localhost", server.port, ctx)
        assert leaf.issuer == intercept.cert.subject
        assert proxy.ca is intercept


@pytest.mark.parametrize(
    ("target", "status"),
    [
        ("example.com:443", b"403"),
        ("10.0.0.1:443", b"403"),
        ("[2001:db8::1]:443", b"403"),
        ("localhost", b"400"),
    ],
)
def test_non_loopback_connect_is_refused(proxy: MitmProxy, target: str, status: bytes) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as raw:
        raw.sendall(f"CONNECT {target} HTTP/1.1\r\n\r\n".encode())
        reply = raw.recv(1024)
    assert reply.split(b" ")[1] == status
    records = proxy.wait_closed()
    assert all(not r.upstream_connected and not r.attempted for r in records)
    assert [v.outcome for v in proxy.verdicts([target.rpartition(":")[0] or target])] == [
        "NOT SEEN"
    ]


@pytest.mark.parametrize(
    ("spelling", "host"),
    [
        ("LocalHost", "localhost"),
        ("localhost.", "localhost"),
        ("[127.0.0.1]", "127.0.0.1"),
        ("127.000.000.001", "127.0.0.1"),  # as OpenSSL and pinset.hosts read it
    ],
)
def test_connect_targets_are_named_by_the_one_canonicaliser(
    server: TLSServer, proxy: MitmProxy, spelling: str, host: str
) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as raw:
        raw.sendall(f"CONNECT {spelling}:{server.port} HTTP/1.1\r\n\r\n".encode())
        assert raw.recv(1024).startswith(b"HTTP/1.1 200")
    (record,) = proxy.wait_closed()
    assert (record.host, record.upstream_connected) == (host, True)
    (verdict,) = proxy.verdicts([spelling])
    assert (verdict.host, verdict.outcome) == (host, "NOT SEEN")  # no TLS was started


def test_non_loopback_upstream_is_refused() -> None:
    with pytest.raises(ValueError, match="not loopback"):
        MitmProxy(upstream="example.com:443")


def test_plain_http_is_answered_501_and_counted_as_leaked(proxy: MitmProxy) -> None:
    request = b"GET http://localhost:9/secret HTTP/1.1\r\nHost: localhost\r\n\r\n"
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as raw:
        raw.sendall(request)
        assert raw.recv(1024).startswith(b"HTTP/1.1 501")
    (verdict,) = proxy.verdicts(["localhost"])
    assert verdict.outcome == "INTERCEPTED"
    assert verdict.leaked_bytes == len(request)
    assert verdict.records[0].mode == "http"


@pytest.mark.parametrize(
    ("request_head", "status"),
    [
        (b"CONNECT localhost:443\r\n\r\n", b"400"),
        (b"CONNECT localhost:443 HTTP/1.1\r\nX: " + b"a" * 17_000, b"431"),  # no end yet
    ],
)
def test_malformed_or_oversized_request_is_answered_and_not_recorded(
    proxy: MitmProxy, request_head: bytes, status: bytes
) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as raw:
        raw.sendall(request_head)
        reply = raw.recv(1024)
    assert reply.split(b" ")[1] == status
    assert proxy.wait_closed() == []


def test_not_seen_and_reset(pki: TestPKI, server: TLSServer, proxy: MitmProxy) -> None:
    fetch(f"https://localhost:{server.port}/", victim_context(pki, proxy), proxy.url)
    assert [v.outcome for v in proxy.verdicts(["localhost", "api.example.com"])] == [
        "INTERCEPTED",
        "NOT SEEN",
    ]
    with pytest.raises(AssertionError, match="NOT SEEN"):
        assert_refused(proxy, "api.example.com")
    proxy.reset()
    assert proxy.records == []
    assert proxy.verdicts(["localhost"])[0].outcome == "NOT SEEN"


def test_control_pinning_the_attacker_key_passes(
    pki: TestPKI, server: TLSServer, proxy: MitmProxy
) -> None:
    """A client pinned to the forged leaf key, or to the interception CA, is fooled."""
    url = f"https://localhost:{server.port}/"
    assert fetch(url, pinned_victim(pki, proxy, proxy.leaf_pin), proxy.url) == server.http_body
    assert_intercepted(proxy, "localhost")
    proxy.reset()
    ca_pin = pinset.spki_pin(proxy.ca.cert)
    assert fetch(url, pinned_victim(pki, proxy, ca_pin), proxy.url) == server.http_body
    assert_intercepted(proxy, "localhost")


def test_verifying_upstream_failure_still_counts_client_bytes(
    pki: TestPKI, server: TLSServer
) -> None:
    strict = TestPKI().client_context()  # trusts an unrelated root: the upstream fails
    with MitmProxy(upstream_context=strict) as proxy:
        raw = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
        raw.sendall(f"CONNECT localhost:{server.port} HTTP/1.1\r\n\r\n".encode())
        raw.recv(1024)
        with victim_context(pki, proxy).wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(REQUEST)
            # Close only once the proxy has counted the request: a close with its session
            # tickets unread sends a RST, which can discard the request unread.
            _wait_until(lambda: bool(proxy.records) and proxy.records[0].client_bytes > 0)
        (record,) = proxy.wait_closed()
    assert record.error is not None
    assert record.error.startswith("upstream TLS failed")
    assert record.client_bytes == len(REQUEST)
    assert record.bytes_to_upstream == 0


def test_upstream_reset_before_its_handshake_leaves_no_socket_open(pki: TestPKI) -> None:
    # The upstream accepts, then resets the connection while the proxy is still in its
    # handshake with the client: wrapping the upstream socket fails before its own
    # handshake, and the SSLSocket made for it must be closed, not left to the GC.
    ctx = pki.client_context()
    with socket.create_server(("127.0.0.1", 0)) as upstream:
        port = upstream.getsockname()[1]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            with MitmProxy(upstream=f"127.0.0.1:{port}") as proxy:
                proxy.ca.configure_trust(ctx)
                with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as raw:
                    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
                    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
                    with pytest.raises(ssl.SSLWantReadError):
                        tls.do_handshake()
                    raw.sendall(outgoing.read())  # the ClientHello: the proxy dials upstream
                    accepted, _ = upstream.accept()
                    _wait_until(lambda: proxy.records[0].upstream_connected)
                    accepted.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
                    accepted.close()  # an RST, before the proxy finishes with the client
                    _finish_handshake(tls, raw, incoming, outgoing)
                (record,) = proxy.wait_closed()
            gc.collect()
    assert record.handshake_completed
    assert record.error is not None
    assert record.error.startswith("upstream TLS failed: ConnectionResetError")
    assert [str(w.message) for w in caught if w.category is ResourceWarning] == []


LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends an RST


def _wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    # The proxy's connect() has to have returned: an RST before that is a failed connect.
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def _finish_handshake(
    tls: ssl.SSLObject, raw: socket.socket, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO
) -> None:
    while True:
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            raw.sendall(outgoing.read())
            data = raw.recv(65536)
            assert data, "the proxy closed during the handshake"
            incoming.write(data)
            continue
        raw.sendall(outgoing.read())  # the client's Finished
        return


def test_on_record_sees_each_closed_connection(pki: TestPKI, server: TLSServer) -> None:
    seen: list[MitmRecord] = []
    with MitmProxy(on_record=seen.append) as proxy:
        fetch(f"https://localhost:{server.port}/", victim_context(pki, proxy), proxy.url)
        proxy.wait_closed()
    assert [(r.host, r.closed, r.leaked) for r in seen] == [("localhost", True, True)]


def test_stop_leaves_no_threads(pki: TestPKI, server: TLSServer) -> None:
    proxy = MitmProxy().start()
    raw = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    raw.sendall(f"CONNECT localhost:{server.port} HTTP/1.1\r\n\r\n".encode())
    raw.recv(1024)
    proxy.stop()  # with a tunnel open and idle
    raw.close()
    assert proxy.alive_threads == 0


def test_url_brackets_an_ipv6_listen_address() -> None:
    for upstream, scheme, tail in ((None, "http", ""), ("127.0.0.1:443", "https", "/")):
        proxy = MitmProxy(host="::1", upstream=upstream)
        try:
            proxy.start()
        except OSError as exc:
            pytest.skip(f"no IPv6 loopback here: {exc}")
        try:
            assert proxy.url == f"{scheme}://[::1]:{proxy.port}{tail}"
        finally:
            proxy.stop()
