"""Each HTTP client, sync or asyncio, with a pinned context: right pins pass, wrong pins leak none.

Every wrong-pin case checks two things: the client raises its own certificate error
(with the PinMismatchError somewhere in its cause chain), and the loopback server
received zero application bytes.
"""

from __future__ import annotations

import http.client
import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import certifi
import pytest
import requests
import urllib3
from requests.adapters import HTTPAdapter

from _client_helpers import BACKUP, HOSTS, OTHER, find_mismatch, no_proxy_from_environment, pinned  # noqa: F401 - an autouse fixture
from _clients import ASYNCIO, CLIENTS, PROXYLESS
from _policies import WRONG, pinning
from pinset import ConfigError, Policy, spki_pin
from pinset.integrations.requests import PinnedAdapter, pinned_session
from pinset.policy import DomainRule
from pinset.testing import LeafCert, TestPKI, TLSServer, TunnelProxy


@pytest.fixture
def proxy() -> Iterator[TunnelProxy]:
    with TunnelProxy() as tunnel:
        yield tunnel


def url(server: TLSServer, host: str) -> str:
    return f"https://{host}:{server.port}/"


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("name", sorted(CLIENTS))
def test_right_pins_pass(
    pki: TestPKI, root_pem: str, server: TLSServer, name: str, host: str
) -> None:
    client, _ = CLIENTS[name]
    assert client(url(server, host), pinned(pki, root_pem, host, right=True), None) == 200
    assert len(server.requests) == 1
    assert server.requests[0].startswith(b"GET / HTTP/1.1\r\n")


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("name", sorted(CLIENTS))
def test_wrong_pins_fail_with_the_clients_own_error_and_send_nothing(
    pki: TestPKI, root_pem: str, server: TLSServer, name: str, host: str
) -> None:
    client, error_type = CLIENTS[name]
    with pytest.raises(error_type) as info:
        client(url(server, host), pinned(pki, root_pem, host, right=False), None)
    mismatch = find_mismatch(info.value)
    assert mismatch is not None
    assert mismatch.hostname == host
    records = server.wait_for_connections(1)
    if name not in ASYNCIO:
        # A socket checks the pins once its handshake is done, so the server saw it
        # complete; the asyncio path refuses before the client's Finished goes out.
        assert all(r.handshake_completed for r in records)
    assert server.received_bytes == 0
    assert server.requests == []


@pytest.mark.parametrize("name", sorted(set(CLIENTS) - PROXYLESS))
def test_through_a_connect_proxy(
    pki: TestPKI, root_pem: str, server: TLSServer, proxy: TunnelProxy, name: str
) -> None:
    client, error_type = CLIENTS[name]
    target = url(server, "localhost")
    assert client(target, pinned(pki, root_pem, "localhost", right=True), proxy.url) == 200
    server.wait_for_connections(1)
    server.reset()
    with pytest.raises(error_type) as info:
        client(target, pinned(pki, root_pem, "localhost", right=False), proxy.url)
    assert find_mismatch(info.value) is not None
    server.wait_for_connections(1)
    assert server.received_bytes == 0
    assert proxy.connects == [f"localhost:{server.port}"] * 2


# -- requests specifics ----------------------------------------------------------------


def test_pinned_session_passes_and_refuses(pki: TestPKI, root_pem: str, server: TLSServer) -> None:
    good = Policy(rules=(DomainRule("localhost", pins=(spki_pin(pki.root.cert), BACKUP)),))
    with pinned_session(good, cadata=root_pem) as session:
        assert session.get(url(server, "localhost"), timeout=5).status_code == 200
    server.wait_for_connections(1)
    server.reset()
    bad = Policy(rules=(DomainRule("localhost", pins=(OTHER, BACKUP)),))
    session = pinned_session(bad, cadata=root_pem)
    with session, pytest.raises(requests.exceptions.SSLError) as info:
        session.get(url(server, "localhost"), timeout=5)
    assert find_mismatch(info.value) is not None
    server.wait_for_connections(1)
    assert server.received_bytes == 0


def test_requests_does_not_widen_the_pinned_trust(
    pki: TestPKI, root_pem: str, server: TLSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The environment of a CI box often points requests at the system bundle.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    ctx = pinned(pki, root_pem, "localhost", right=True)
    with requests.Session() as session:
        session.mount("https://", PinnedAdapter(ctx))
        assert session.get(url(server, "localhost"), timeout=5).status_code == 200
    assert ctx.cert_store_stats()["x509_ca"] == 1
    with pinned_session(ctx.pinset_policy, cadata=root_pem) as session:  # type: ignore[attr-defined]
        assert session.get(url(server, "localhost"), timeout=5).status_code == 200
        adapter = session.get_adapter("https://localhost/")
        assert isinstance(adapter, PinnedAdapter)
        assert adapter.ssl_context.cert_store_stats()["x509_ca"] == 1


def test_a_plain_adapter_would_widen_the_trust(
    pki: TestPKI, root_pem: str, server: TLSServer
) -> None:
    # The control for the test above: requests' own adapter loads certifi into the context.
    ctx = pinned(pki, root_pem, "localhost", right=True)

    class Plain(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, ssl_context=ctx, **kwargs)

    with requests.Session() as session:
        session.trust_env = False
        session.mount("https://", Plain())
        assert session.get(url(server, "localhost"), timeout=5).status_code == 200
    assert ctx.cert_store_stats()["x509_ca"] > 1


@pytest.mark.parametrize("verify", [False, "bundle.pem"])
def test_pinned_session_refuses_verify_overrides(
    root_pem: str, server: TLSServer, verify: Any, tmp_path: Path
) -> None:
    if isinstance(verify, str):
        (tmp_path / verify).write_text(root_pem, encoding="ascii")
        verify = str(tmp_path / verify)
    policy = Policy(rules=(DomainRule("localhost", pins=(OTHER, BACKUP)),))
    with pinned_session(policy, cadata=root_pem) as session:
        with pytest.raises(ConfigError) as info:
            session.get(url(server, "localhost"), timeout=5, verify=verify)
        assert "verify" in info.value.diagnostics()
        session.verify = verify
        with pytest.raises(ConfigError):
            session.get(url(server, "localhost"), timeout=5)
    assert server.connections == []


def test_pinned_session_refuses_plain_http_to_a_pinned_host(
    root_pem: str, server: TLSServer
) -> None:
    policy = Policy(rules=(DomainRule("localhost", pins=(OTHER, BACKUP)),))
    session = pinned_session(policy, cadata=root_pem)
    with session, pytest.raises(ConfigError) as info:
        session.get(f"http://localhost:{server.port}/", timeout=5)
    assert "https://" in (info.value.hint or "")
    assert server.connections == []


def test_pinned_adapter_needs_a_pinned_context() -> None:
    with pytest.raises(ConfigError):
        PinnedAdapter(ssl.create_default_context())


# -- urllib3 specifics -----------------------------------------------------------------


def test_urllib3_default_retries_refuse_every_attempt(
    pki: TestPKI, root_pem: str, server: TLSServer
) -> None:
    ctx = pinned(pki, root_pem, "localhost", right=False)
    manager = urllib3.PoolManager(ssl_context=ctx)
    with manager, pytest.raises(urllib3.exceptions.MaxRetryError) as info:
        manager.request("GET", url(server, "localhost"), timeout=5)
    assert isinstance(info.value.reason, urllib3.exceptions.SSLError)
    records = server.wait_for_connections(4)  # the first try and three retries
    assert all(r.received == 0 for r in records)


def test_urllib3_assert_hostname_false_is_refused(
    pki: TestPKI, root_pem: str, server: TLSServer
) -> None:
    ctx = pinned(pki, root_pem, "localhost", right=True)
    manager = urllib3.PoolManager(ssl_context=ctx, assert_hostname=False)
    with manager, pytest.raises(ConfigError, match="check_hostname"):
        manager.request("GET", url(server, "localhost"), retries=False, timeout=5)
    assert server.received_bytes == 0


# -- requests: plain http and redirects keep the pins ----------------------------------


def test_plain_http_to_a_pinned_ip_in_another_spelling_is_refused(root_pem: str) -> None:
    session = pinned_session(pinning(("127.0.0.1", (WRONG,))), cadata=root_pem, observers=())
    with session, pytest.raises(ConfigError, match="plain http"):
        session.get("http://127.000.000.001:9/", timeout=5)


class _Redirect(http.server.BaseHTTPRequestHandler):
    location = ""

    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", self.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_requests_redirect_through_an_unpinned_host_back_to_the_pinned_one(
    pki: TestPKI, leaf: LeafCert, root_pem: str
) -> None:
    # Pinned host (right pins) -> unpinned host -> pinned host served by a trusted
    # interception CA: the last hop must be refused by the pins.
    rogue_leaf = pki.rogue.issue_cert("localhost", "127.0.0.1")
    trust = root_pem + pki.rogue.cert_pem.bytes().decode("ascii")
    policy = pinning(("localhost", (spki_pin(pki.intermediate.cert),)))
    with TLSServer(rogue_leaf, mode="http") as intercepted:
        hops = []
        location = f"https://localhost:{intercepted.port}/final"
        for _ in range(2):
            handler = type("Hop", (_Redirect,), {"location": location})
            srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            leaf.configure_cert(ctx)
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
            threading.Thread(target=srv.serve_forever, daemon=True).start()
            hops.append(srv)
            # the hop before goes to the unpinned name 127.0.0.1, the first to localhost
            location = f"https://127.0.0.1:{srv.server_address[1]}/middle"
        first = f"https://localhost:{hops[1].server_address[1]}/start"
        try:
            with pinned_session(policy, cadata=trust, observers=()) as session:
                assert session.get_adapter(first) is session.get_adapter(location)
                assert isinstance(session.get_adapter(location), PinnedAdapter)
                with pytest.raises(requests.exceptions.SSLError) as info:
                    session.get(first, timeout=5)
        finally:
            for srv in hops:
                srv.shutdown()
                srv.server_close()
        mismatch = find_mismatch(info.value)
        assert mismatch is not None
        assert mismatch.verdict is not None
        assert mismatch.verdict.host == "localhost"
        intercepted.wait_for_connections(1)
        assert intercepted.received_bytes == 0
