"""Interop with a real interception proxy: mitmproxy, in regular and in reverse mode.

In front of a loopback test server, for requests, httpx and aiohttp:

* an unpinned client that trusts only mitmproxy's CA gets its answer: mitmproxy
  decrypted the request and relayed it (the attack works);
* the pinned client, which trusts mitmproxy's CA too, fails with its library's
  certificate error (a PinMismatchError inside), mitmproxy decrypted no request
  from it and the server received zero application bytes;
* a client that pins mitmproxy's CA key gets through (the control).

mitmproxy's own addon log is the leak measure on the proxy side; the TLS server's
byte counter is the one behind it. mitmdump starts once per module and mode.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx
import pytest
import requests
from cryptography import x509

from _client_helpers import find_mismatch, no_proxy_from_environment  # noqa: F401 - an autouse fixture
from _mitmdump import ENV, ClientConn, Mitmdump, find_mitmdump
from _policies import BACKUP
from pinset import Policy, spki_pin, ssl_context
from pinset.integrations.requests import pinned_session
from pinset.policy import DomainRule
from pinset.testing import LeafCert, TestPKI, TLSServer

MITMDUMP = find_mitmdump()
HOST = "localhost"

pytestmark = [
    pytest.mark.mitmproxy,
    pytest.mark.skipif(
        MITMDUMP is None,
        reason=f"mitmdump not found: set {ENV} or create .venv-mitmproxy "
        "(python3 -m venv .venv-mitmproxy && .venv-mitmproxy/bin/pip install 'mitmproxy>=10'; "
        "`make test` does it)",
    ),
]


@pytest.fixture(scope="module")
def upstream(leaf: LeafCert) -> Iterator[TLSServer]:
    with TLSServer(leaf, mode="http") as srv:
        yield srv


@pytest.fixture(scope="module", params=["regular", "reverse"])
def mitm(
    request: pytest.FixtureRequest,
    pki: TestPKI,
    upstream: TLSServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Mitmdump]:
    assert MITMDUMP is not None
    work = tmp_path_factory.mktemp(f"mitmdump-{request.param}")
    upstream_ca = work / "upstream-root.pem"
    pki.root.cert_pem.write_to_path(upstream_ca)
    mode = "regular" if request.param == "regular" else f"reverse:{upstream.url.rstrip('/')}"
    # mitmproxy verifies the test server against the test root, as it would a public CA.
    with Mitmdump(MITMDUMP, work, mode, upstream_ca=upstream_ca) as proc:
        yield proc


@dataclass(frozen=True)
class Target:
    """Where a client sends its request: the URL, and the proxy in regular mode."""

    url: str
    proxy: str | None


@pytest.fixture
def target(mitm: Mitmdump, upstream: TLSServer) -> Target:
    if mitm.mode == "regular":
        return Target(f"https://{HOST}:{upstream.port}/", mitm.url)
    return Target(f"https://{HOST}:{mitm.port}/", None)


@dataclass(frozen=True)
class Trust:
    """A client's trust: a CA bundle file and, for a pinned client, the policy."""

    bundle: Path
    policy: Policy | None = None

    def context(self) -> ssl.SSLContext:
        if self.policy is None:
            return ssl.create_default_context(cafile=str(self.bundle))
        return ssl_context(self.policy, cafile=self.bundle)


# -- one call per client library: returns the HTTP status -----------------------------

CLOSE = {"Connection": "close"}  # so mitmproxy logs each client connection's end


def via_requests(target: Target, trust: Trust) -> int:
    proxies = {"https": target.proxy} if target.proxy else {}
    if trust.policy is None:
        session = requests.Session()
        session.trust_env = False
        with session:
            response = session.get(
                target.url, proxies=proxies, verify=str(trust.bundle), headers=CLOSE, timeout=10
            )
            return response.status_code
    with pinned_session(trust.policy, cafile=trust.bundle) as pinned:
        pinned.trust_env = False
        return pinned.get(target.url, proxies=proxies, headers=CLOSE, timeout=10).status_code


def via_httpx(target: Target, trust: Trust) -> int:
    with httpx.Client(
        verify=trust.context(), proxy=target.proxy, trust_env=False, timeout=10
    ) as client:
        return client.get(target.url, headers=CLOSE).status_code


def via_aiohttp(target: Target, trust: Trust) -> int:
    # Not CLOSE here: aiohttp starts the TLS close of a "Connection: close" connection
    # and forgets it, so asyncio.run() would close the loop before the close_notify
    # exchange ends and leak the socket. A kept-alive connection is closed by the
    # session on exit instead, which waits for it; mitmproxy logs the end all the same.
    async def get() -> int:
        async with aiohttp.ClientSession() as session:
            response = await session.get(target.url, ssl=trust.context(), proxy=target.proxy)
            async with response:
                await response.read()
                return response.status

    return asyncio.run(get())


CLIENTS: dict[str, tuple[Callable[[Target, Trust], int], type[BaseException]]] = {
    "requests": (via_requests, requests.exceptions.SSLError),
    "httpx": (via_httpx, httpx.ConnectError),
    "aiohttp": (via_aiohttp, aiohttp.ClientConnectorCertificateError),
}


def bundle(path: Path, *pems: str) -> Path:
    path.write_text("".join(pems), encoding="ascii")
    return path


def mitm_ca_pem(mitm: Mitmdump) -> str:
    return mitm.ca_cert_path.read_text(encoding="ascii")


def settle(mitm: Mitmdump, mark: int, upstream: TLSServer) -> list[ClientConn]:
    """Wait until mitmproxy and the server have closed this test's connections."""
    conns = mitm.wait_idle(mark)
    upstream.wait_for_connections(len(upstream.connections))
    return conns


# -- the tests ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CLIENTS))
def test_unpinned_client_trusting_mitmproxy_is_intercepted(
    name: str, mitm: Mitmdump, upstream: TLSServer, target: Target, tmp_path: Path
) -> None:
    call, _ = CLIENTS[name]
    # Only mitmproxy's CA: an answer means the client accepted a forged certificate.
    trust = Trust(bundle(tmp_path / "mitm-ca.pem", mitm_ca_pem(mitm)))
    upstream.reset()
    mark = mitm.mark()
    assert call(target, trust) == 200
    conns = settle(mitm, mark, upstream)
    assert sum(c.requests for c in conns) == 1, conns
    assert sum(c.request_bytes for c in conns) > 0
    # mitmproxy relayed what it read: the request reached the real server through it.
    assert len(upstream.requests) == 1
    assert upstream.requests[0].startswith(b"GET / HTTP/1.1\r\n")
    assert upstream.received_bytes > 0


@pytest.mark.parametrize("name", sorted(CLIENTS))
def test_pinned_client_is_refused_and_sends_nothing(
    name: str,
    pki: TestPKI,
    leaf: LeafCert,
    mitm: Mitmdump,
    upstream: TLSServer,
    target: Target,
    tmp_path: Path,
) -> None:
    call, error_type = CLIENTS[name]
    real_keys = (spki_pin(leaf.cert), spki_pin(pki.intermediate.cert))
    policy = Policy(rules=(DomainRule(HOST, pins=real_keys),))
    # The device trusts mitmproxy's CA as well as the real root: only the pins protect it.
    ca = bundle(tmp_path / "both.pem", pki.root.cert_pem.bytes().decode(), mitm_ca_pem(mitm))
    upstream.reset()
    mark = mitm.mark()
    with pytest.raises(error_type) as info:
        call(target, Trust(ca, policy))
    mismatch = find_mismatch(info.value)
    assert mismatch is not None, repr(info.value)
    assert mismatch.hostname == HOST
    assert mismatch.verdict is not None
    assert mismatch.verdict.reason == "pin-mismatch"
    conns = settle(mitm, mark, upstream)
    # The client did reach mitmproxy and got its forged certificate for HOST (whether
    # mitmproxy saw the handshake fail or finish depends on when the client's TLS 1.3
    # Finished left: pinset judges right after the client's side completes)...
    assert conns, "the client never connected to mitmproxy"
    assert any(c.sni == HOST and (c.tls_failed or c.tls_established) for c in conns), conns
    # ...before mitmproxy could read a single request from it.
    assert [c.requests for c in conns] == [0] * len(conns)
    assert sum(c.request_bytes for c in conns) == 0
    assert upstream.received_bytes == 0
    assert upstream.requests == []


@pytest.mark.parametrize("name", sorted(CLIENTS))
def test_client_pinned_to_mitmproxy_ca_key_passes(
    name: str, pki: TestPKI, mitm: Mitmdump, upstream: TLSServer, target: Target, tmp_path: Path
) -> None:
    call, _ = CLIENTS[name]
    ca_pem = mitm_ca_pem(mitm)
    mitm_ca = x509.load_pem_x509_certificate(ca_pem.encode("ascii"))
    policy = Policy(rules=(DomainRule(HOST, pins=(spki_pin(mitm_ca), BACKUP)),))
    ca = bundle(tmp_path / "both.pem", pki.root.cert_pem.bytes().decode(), ca_pem)
    upstream.reset()
    mark = mitm.mark()
    assert call(target, Trust(ca, policy)) == 200
    conns = settle(mitm, mark, upstream)
    assert sum(c.requests for c in conns) == 1, conns
    assert len(upstream.requests) == 1
