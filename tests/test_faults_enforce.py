"""Enforcement under faults (issue 13): key rotation, pooled connections, resumption, expiry.

Loopback servers and an injected clock only. Each test pins what a broken enforcement
would let through: a verdict kept from an earlier key, a pooled connection that carries
one host's (or one policy's) verdict to another, a TLS session resumed under a policy
that never judged it, a pin set that expires by a local calendar instead of the UTC
instant. Concurrency (policy swaps and memo churn during handshakes) is in
``test_faults_enforce_concurrency.py``; large certificates and report-endpoint faults
in ``test_faults_enforce_load.py``. docs/security.md ("Faults and load: enforcement")
lists each fault with its test.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import httpx
import pytest
import requests
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from _client_helpers import find_mismatch, no_proxy_from_environment  # noqa: F401 - a fixture
from _policies import OTHER, pinning
from pinset import PinMismatchError, Verdict, policyfile, spki_pin, ssl_context
from pinset.integrations.requests import PinnedAdapter
from pinset.testing import LeafCert, PrivateKey, TestPKI, TLSServer, generate_key

HOST = "localhost"


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def handshake(
    ctx: ssl.SSLContext, server: TLSServer, hostname: str = HOST, **kwargs: Any
) -> Verdict:
    """One connection: the verdict it was allowed with (after an echo), or the refusal's."""
    with socket.create_connection(server.address, timeout=5) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname=hostname, **kwargs) as tls:
                tls.sendall(b"ping")
                assert tls.recv(16) == b"ping"
                verdict: Verdict | None = tls.pinset_verdict  # type: ignore[attr-defined]
        except PinMismatchError as exc:
            verdict = exc.verdict
    assert verdict is not None
    return verdict


def twin_with_other_key(
    leaf: LeafCert, issuer_key: PrivateKey, key: PrivateKey
) -> tuple[x509.Certificate, PrivateKey]:
    """``leaf`` again, same serial, subject, issuer, validity and names, on another ``key``.

    What a memo keyed on anything but the whole certificate (the serial, the subject, the
    names) would take for the certificate it already judged.
    """
    cert = leaf.cert
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .serial_number(cert.serial_number)
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
        .public_key(key.public_key())
    )
    for ext in cert.extensions:
        if isinstance(ext.value, x509.SubjectKeyIdentifier):
            ext = x509.Extension(
                ext.oid,
                ext.critical,
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
            )
        builder = builder.add_extension(ext.value, ext.critical)
    return builder.sign(issuer_key, hashes.SHA256()), key


# -- server key rotation mid-run -------------------------------------------------------


def test_server_key_rotation_between_connections(pki: TestPKI, root_pem: str) -> None:
    current = pki.leaf()
    backup_key = generate_key()
    backup = pki.leaf(private_key=backup_key)
    impostor, impostor_key = twin_with_other_key(
        current, pki.intermediate.private_key, generate_key()
    )
    assert impostor.serial_number == current.cert.serial_number
    assert impostor.subject == current.cert.subject
    policy = pinning((HOST, (spki_pin(current.cert), spki_pin(backup_key))))
    ctx = ssl_context(policy, cadata=root_pem, observers=())

    impostor_chain = [impostor, pki.intermediate.cert]
    serve: dict[str, tuple[Any, PrivateKey | None]] = {
        "current": (current, None),
        "backup": (backup, None),
        "impostor": (impostor_chain, impostor_key),
    }
    leaf_der = {"current": current.cert, "backup": backup.cert, "impostor": impostor}
    # One context throughout: its memo has seen each key before the server swaps it.
    steps = ["current", "current", "impostor", "backup", "current", "impostor", "impostor"]
    steps += ["backup", "impostor", "current"]
    with TLSServer(current, mode="echo") as server:
        outcomes = []
        for step in steps:
            server.set_chain(*serve[step])
            verdict = handshake(ctx, server)
            assert verdict.chain[0] == _der(leaf_der[step])
            outcomes.append(verdict.reason)
        records = server.wait_for_connections(len(steps))
    assert outcomes == ["pin-mismatch" if s == "impostor" else "pinned" for s in steps]
    # Every handshake completed (TLS trusted each key); only the pinned keys got a byte.
    assert [r.handshake_completed for r in records] == [True] * len(steps)
    assert [r.received for r in records] == [0 if s == "impostor" else 4 for s in steps]


def test_a_kept_refusal_never_outlives_the_rotation_back(pki: TestPKI, root_pem: str) -> None:
    # More distinct chains than the memo keeps for one host (VerdictMemo.MAX_CHAINS = 4),
    # served round after round: every verdict is the chain's own, evicted or kept.
    pinned_leaves = [pki.leaf() for _ in range(3)]
    unpinned = [pki.leaf() for _ in range(3)]
    policy = pinning((HOST, tuple(spki_pin(leaf.cert) for leaf in pinned_leaves)))
    ctx = ssl_context(policy, cadata=root_pem, observers=())
    order = [leaf for pair in zip(pinned_leaves, unpinned, strict=True) for leaf in pair]
    with TLSServer(order[0], mode="echo") as server:
        for _ in range(3):
            for leaf in order:
                server.set_chain(leaf)
                verdict = handshake(ctx, server)
                assert verdict.chain[0] == _der(leaf.cert)
                assert verdict.allowed is (leaf in pinned_leaves)
                assert verdict.reason == ("pinned" if leaf in pinned_leaves else "pin-mismatch")


# -- pooled connections and a second host with other pins -------------------------------

A, B = "a.pinset.test", "b.pinset.test"  # RFC 6761 .test names, resolved to loopback below
PAIRS = [(A, B), ("localhost", "127.0.0.1")]


@pytest.fixture
def two_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """``a.pinset.test`` and ``b.pinset.test`` resolve to 127.0.0.1 (one loopback server)."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host  # anyio asks in bytes
        return real("127.0.0.1" if name in (A, B) else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def shared_server(pki: TestPKI) -> Iterator[TLSServer]:
    """One HTTP server whose certificate names both hosts of every pair (keep-alive)."""
    with TLSServer(pki.leaf(A, B, "localhost", "127.0.0.1")) as server:
        yield server


def _via_requests(ctx: ssl.SSLContext, urls: list[str]) -> list[object]:
    outcomes: list[object] = []
    with requests.Session() as session:
        session.mount("https://", PinnedAdapter(ctx))
        for url in urls:
            try:
                outcomes.append(session.get(url, timeout=5).status_code)
            except requests.exceptions.SSLError as exc:
                outcomes.append(find_mismatch(exc))
    return outcomes


def _close_pools(manager: urllib3.PoolManager) -> None:
    # urllib3 2's PoolManager.clear() forgets its pools without closing their connections.
    for key in manager.pools.keys():  # noqa: SIM118 - not a dict: no __iter__
        manager.pools[key].close()
    manager.clear()


def _via_urllib3(ctx: ssl.SSLContext, urls: list[str]) -> list[object]:
    outcomes: list[object] = []
    manager = urllib3.PoolManager(ssl_context=ctx)
    try:
        for url in urls:
            try:
                outcomes.append(manager.request("GET", url, retries=False, timeout=5).status)
            except urllib3.exceptions.SSLError as exc:
                outcomes.append(find_mismatch(exc))
    finally:
        _close_pools(manager)
    return outcomes


def _via_httpx(ctx: ssl.SSLContext, urls: list[str]) -> list[object]:
    outcomes: list[object] = []
    with httpx.Client(verify=ctx, trust_env=False, timeout=5) as client:
        for url in urls:
            try:
                outcomes.append(client.get(url).status_code)
            except httpx.ConnectError as exc:
                outcomes.append(find_mismatch(exc))
    return outcomes


def _via_httpx_async(ctx: ssl.SSLContext, urls: list[str]) -> list[object]:
    async def run() -> list[object]:
        outcomes: list[object] = []
        async with httpx.AsyncClient(verify=ctx, trust_env=False, timeout=5) as client:
            for url in urls:
                try:
                    outcomes.append((await client.get(url)).status_code)
                except httpx.ConnectError as exc:
                    outcomes.append(find_mismatch(exc))
        return outcomes

    return asyncio.run(run())


def _via_aiohttp(ctx: ssl.SSLContext, urls: list[str]) -> list[object]:
    async def run() -> list[object]:
        outcomes: list[object] = []
        # The threaded resolver asks socket.getaddrinfo, which the test points at loopback.
        connector = aiohttp.TCPConnector(resolver=aiohttp.ThreadedResolver())
        async with aiohttp.ClientSession(connector=connector) as session:
            for url in urls:
                try:
                    async with session.get(url, ssl=ctx) as response:
                        await response.read()
                        outcomes.append(response.status)
                except aiohttp.ClientConnectorCertificateError as exc:
                    outcomes.append(find_mismatch(exc))
        return outcomes

    return asyncio.run(run())


CLIENTS: dict[str, Callable[[ssl.SSLContext, list[str]], list[object]]] = {
    "requests": _via_requests,
    "urllib3": _via_urllib3,
    "httpx": _via_httpx,
    "httpx-async": _via_httpx_async,
    "aiohttp": _via_aiohttp,
}


@pytest.mark.usefixtures("two_names")
@pytest.mark.parametrize("pair", PAIRS, ids=["two-names", "name-and-ip"])
@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_a_pooled_connection_never_carries_one_hosts_verdict_to_another(
    pki: TestPKI, root_pem: str, shared_server: TLSServer, client: str, pair: tuple[str, str]
) -> None:
    first, second = pair
    # One server, one certificate valid for both names: only the pins tell them apart.
    policy = pinning((first, (spki_pin(pki.intermediate.cert),)), (second, (OTHER,)))
    ctx = ssl_context(policy, cadata=root_pem, observers=())
    port = shared_server.port
    url = {host: f"https://{host}:{port}/" for host in pair}
    outcomes = CLIENTS[client](ctx, [url[first], url[first], url[second], url[first]])
    assert outcomes[:2] == [200, 200]
    refusal = outcomes[2]
    assert isinstance(refusal, PinMismatchError), outcomes
    assert refusal.verdict is not None
    assert (refusal.verdict.host, refusal.verdict.reason) == (second, "pin-mismatch")
    assert outcomes[3] == 200
    records = shared_server.wait_for_connections(2)
    # Two connections: the first host's, pooled and reused for its three requests, and the
    # second host's own, judged and refused before a byte (asyncio clients drop it before
    # their Finished reaches the server). Nothing was reused across hosts.
    assert len(records) == 2
    assert len(shared_server.requests) == 3
    assert records[0].received > 0
    assert records[1].received == 0
    assert [r.sni for r in records] == [h if h[0].isalpha() else None for h in pair]


def _aiohttp_with_two_contexts(url: str, contexts: list[ssl.SSLContext]) -> list[object]:
    async def run() -> list[object]:
        outcomes: list[object] = []
        async with aiohttp.ClientSession() as session:
            for ctx in contexts:
                try:
                    async with session.get(url, ssl=ctx) as response:
                        await response.read()
                        outcomes.append(response.status)
                except aiohttp.ClientConnectorCertificateError as exc:
                    outcomes.append(find_mismatch(exc))
        return outcomes

    return asyncio.run(run())


def _urllib3_with_two_contexts(url: str, contexts: list[ssl.SSLContext]) -> list[object]:
    parts = urllib3.util.parse_url(url)
    outcomes: list[object] = []
    manager = urllib3.PoolManager(ssl_context=contexts[0])
    try:
        for ctx in contexts:
            pool = manager.connection_from_host(
                parts.host, parts.port, "https", pool_kwargs={"ssl_context": ctx}
            )
            try:
                outcomes.append(pool.request("GET", "/", retries=False, timeout=5).status)
            except urllib3.exceptions.SSLError as exc:
                outcomes.append(find_mismatch(exc))
    finally:
        _close_pools(manager)
    return outcomes


@pytest.mark.parametrize(
    "client", [_aiohttp_with_two_contexts, _urllib3_with_two_contexts], ids=["aiohttp", "urllib3"]
)
def test_the_pool_key_holds_the_context_so_a_new_policy_gets_a_new_connection(
    pki: TestPKI,
    root_pem: str,
    shared_server: TLSServer,
    client: Callable[[str, list[ssl.SSLContext]], list[object]],
) -> None:
    # One client, one host: a request under another context (another policy) must not
    # be sent over the connection the first context judged.
    right = ssl_context(pinning((HOST, (spki_pin(pki.intermediate.cert),))), cadata=root_pem)
    wrong = ssl_context(pinning((HOST, (OTHER,))), cadata=root_pem, observers=())
    outcomes = client(f"https://{HOST}:{shared_server.port}/", [right, right, wrong, right])
    assert outcomes[:2] == [200, 200]
    assert isinstance(outcomes[2], PinMismatchError), outcomes
    assert outcomes[3] == 200
    records = shared_server.wait_for_connections(2)
    assert len(records) == 2
    assert len(shared_server.requests) == 3
    assert records[1].received == 0


# -- session resumption after a pin change ----------------------------------------------


def _offer_to_wrap_socket(ctx: ssl.SSLContext, raw: socket.socket, session: Any) -> None:
    ctx.wrap_socket(raw, server_hostname=HOST, session=session).close()


def _offer_to_the_session_attribute(ctx: ssl.SSLContext, raw: socket.socket, session: Any) -> None:
    with ctx.wrap_socket(raw, server_hostname=HOST, do_handshake_on_connect=False) as tls:
        tls.session = session


def _offer_to_wrap_bio(ctx: ssl.SSLContext, raw: socket.socket, session: Any) -> None:
    ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname=HOST, session=session)


OFFER = {
    "wrap_socket": _offer_to_wrap_socket,
    "session-attribute": _offer_to_the_session_attribute,
    "wrap_bio": _offer_to_wrap_bio,
}


@pytest.mark.parametrize(
    "version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["TLSv1.2", "TLSv1.3"]
)
@pytest.mark.parametrize("how", ["wrap_socket", "session-attribute", "wrap_bio"])
def test_a_session_from_one_policy_is_never_resumed_under_another(
    pki: TestPKI, root_pem: str, echo_server: TLSServer, version: ssl.TLSVersion, how: str
) -> None:
    echo_server.ssl_context.maximum_version = version
    before = ssl_context(pinning((HOST, (spki_pin(pki.intermediate.cert),))), cadata=root_pem)
    after = ssl_context(pinning((HOST, (OTHER,))), cadata=root_pem, observers=())
    with (
        socket.create_connection(echo_server.address, timeout=5) as raw,
        before.wrap_socket(raw, server_hostname=HOST) as tls,
    ):
        tls.sendall(b"ping")
        assert tls.recv(16) == b"ping"  # reading takes in the TLS 1.3 ticket
        session = tls.session
    assert session is not None
    assert session.has_ticket or version == ssl.TLSVersion.TLSv1_2
    # The policy changed: the application builds a context for the new pins. The old
    # context's session is refused by ssl itself before a ClientHello leaves.
    with (
        socket.create_connection(echo_server.address, timeout=5) as raw,
        pytest.raises(ValueError, match="different SSLContext"),
    ):
        OFFER[how](after, raw, session)
    # Without the session the new policy judges a full handshake, and refuses.
    verdict = handshake(after, echo_server)
    assert (verdict.reason, verdict.allowed) == ("pin-mismatch", False)
    first, attempt, fresh = echo_server.wait_for_connections(3)
    assert first.received == 4
    assert (attempt.handshake_completed, attempt.received) == (False, 0)
    assert (fresh.handshake_completed, fresh.received) == (True, 0)


# -- expiration at the second, seen from three time zones --------------------------------

EXPIRES = dt.date(2031, 3, 1)
MIDNIGHT = dt.datetime(2031, 3, 1, tzinfo=dt.timezone.utc)
ZONES = {"UTC+14": 14, "UTC-12": -12, "UTC": 0}


def _expiring_policy(pin: str) -> Any:
    # From the policy file, as a user writes it: the date is a TOML local date.
    return policyfile.loads(
        f'[[domain]]\nname = "{HOST}"\nexpiration = {EXPIRES.isoformat()}\n'
        f'pins = ["{pin}", "{OTHER}"]\n'
    )


@pytest.mark.parametrize("zone", sorted(ZONES))
@pytest.mark.parametrize("pinned_right", [True, False], ids=["right-pins", "wrong-pins"])
def test_expiry_at_the_utc_second_whatever_the_clocks_zone(
    pki: TestPKI, root_pem: str, echo_server: TLSServer, zone: str, pinned_right: bool
) -> None:
    tz = dt.timezone(dt.timedelta(hours=ZONES[zone]))
    last_second = (MIDNIGHT - dt.timedelta(seconds=1)).astimezone(tz)  # 23:59:59 UTC
    midnight = MIDNIGHT.astimezone(tz)  # 00:00:00 UTC
    # The local calendars disagree with UTC here: a local-date bug flips a verdict.
    if zone == "UTC+14":
        assert (last_second.date(), last_second.hour) == (EXPIRES, 13)
    if zone == "UTC-12":
        assert (midnight.date(), midnight.hour) == (EXPIRES - dt.timedelta(days=1), 12)
    pin = spki_pin(pki.intermediate.cert) if pinned_right else spki_pin(pki.rogue.cert)
    moments = [last_second, last_second, midnight, midnight, last_second]
    clock = iter(moments)
    ctx = ssl_context(
        _expiring_policy(str(pin)), cadata=root_pem, clock=lambda: next(clock), observers=()
    )
    # One context: a verdict kept at 23:59:59 must not be served at 00:00:00, and an
    # expired one not after the clock is set back.
    verdicts = [handshake(ctx, echo_server) for _ in moments]
    enforced = "pinned" if pinned_right else "pin-mismatch"
    expired = "policy-expired"
    assert [v.reason for v in verdicts] == [enforced, enforced, expired, expired, enforced]
    assert [v.allowed for v in verdicts] == [pinned_right] * 2 + [True] * 2 + [pinned_right]
    assert [v.now for v in verdicts] == moments
    received = [r.received for r in echo_server.wait_for_connections(len(moments))]
    assert received == [4 if v.allowed else 0 for v in verdicts]
