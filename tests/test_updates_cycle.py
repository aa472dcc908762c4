"""Signed pin updates on loopback TLS: the pinned fetch, its failures, the background
refresh, concurrent handshakes during updates, and the full rotation cycle.

The app server is ``app.localhost`` (reached by address, named by SNI); the update
server is ``localhost``, pinned by the embedded policy like any other host; reports go
to ``127.0.0.1``, which no rule pins (a reporter never posts to a pinned host). Nothing
is timed: the tests wait on events.
"""

from __future__ import annotations

import datetime as dt
import http.server
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests._bundles import BACKUP, ED_KEY, public_pem

from collector_fixtures import ReportSink, sink  # noqa: F401 - a fixture
from pinset import PinMismatchError, Policy, spki_pin, ssl_context
from pinset.enforce import PinnedSSLContext
from pinset.policy import DomainRule
from pinset.testing import LeafCert, TestPKI, TLSServer
from pinset.updates import BundleResult, FetchFailure, UpdateSource, sign_bundle
from pinset.verdict import Verdict

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)  # the TLS layer's clock
EXPIRES = NOW + dt.timedelta(days=30)
APP = "app.localhost"


class BundleServer:
    """HTTPS on 127.0.0.1 (named localhost): every GET gets ``status`` and ``body`` (settable)."""

    def __init__(self, leaf: LeafCert) -> None:
        self.status, self.body = 200, b""
        self.served = threading.Event()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = owner.status, owner.body
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                owner.served.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        leaf.configure_cert(context)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"https://localhost:{self.server.server_address[1]}/v1/pins/com.example.app"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture(scope="module")
def update_leaf(pki: TestPKI) -> LeafCert:
    return pki.leaf("localhost")


@pytest.fixture(scope="module")
def old_leaf(pki: TestPKI) -> LeafCert:
    return pki.leaf(APP)


@pytest.fixture(scope="module")
def new_leaf(pki: TestPKI) -> LeafCert:
    return pki.leaf(APP)  # a new key pair


@pytest.fixture
def updates(update_leaf: LeafCert) -> Iterator[BundleServer]:
    server = BundleServer(update_leaf)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def app_server(old_leaf: LeafCert) -> Iterator[TLSServer]:
    with TLSServer(old_leaf, mode="echo") as srv:
        yield srv


def pin_of(leaf: LeafCert) -> Any:
    return spki_pin(leaf.chain[0])


def embedded(old_leaf: LeafCert, update_leaf: LeafCert, report_uri: str | None = None) -> Policy:
    uris = (report_uri,) if report_uri else ()
    return Policy(
        rules=(
            DomainRule(APP, pins=(pin_of(old_leaf), BACKUP), report_uris=uris),
            DomainRule("localhost", pins=(pin_of(update_leaf), BACKUP)),
        )
    )


def announcing(policy: Policy, leaf: LeafCert) -> Policy:
    """``policy`` with the pin of ``leaf`` added to the app host (what the operator signs)."""
    rules = tuple(
        DomainRule(r.name, pins=(*r.pins, pin_of(leaf)), report_uris=r.report_uris)
        if r.name == APP
        else r
        for r in policy.rules
    )
    return Policy(rules=rules)


def signed(policy: Policy, version: int, **options: Any) -> bytes:
    return sign_bundle(policy, ED_KEY, version=version, issued=NOW, expires=EXPIRES, **options)


def make_source(url: str, tmp_path: Path, name: str, root_pem: str, **options: Any) -> UpdateSource:
    options.setdefault("refresh", None)
    options.setdefault("timeout", 5)
    return UpdateSource(
        url,
        trusted_keys=[public_pem(ED_KEY)],
        store=tmp_path / name,
        app_id="com.example.app",
        cadata=root_pem,
        **options,
    )


def handshake(ctx: ssl.SSLContext, server: TLSServer) -> Verdict:
    sock = socket.create_connection(server.address, timeout=5)
    with ctx.wrap_socket(sock, server_hostname=APP) as tls:
        tls.sendall(b"ping")
        assert tls.recv(16) == b"ping"
        verdict = tls.pinset_verdict  # type: ignore[attr-defined]
        assert verdict is not None
        return verdict  # type: ignore[no-any-return]


# -- the pinned fetch and its failures ----------------------------------------------


def test_pinned_fetch_applies_the_bundle(
    updates: BundleServer, tmp_path: Path, root_pem: str, old_leaf: LeafCert, update_leaf: LeafCert
) -> None:
    policy = embedded(old_leaf, update_leaf)
    updates.body = signed(announcing(policy, update_leaf), 2, app_id="com.example.app")
    with make_source(updates.url, tmp_path, "s", root_pem) as source:
        ctx = ssl_context(policy, cadata=root_pem, updates=source, observers=())
        assert source.status.version == 2
        assert pin_of(update_leaf) in ctx.pinset_policy.rule_for(APP).pins  # type: ignore[union-attr]


def keep_last_good_state(
    source: UpdateSource, policy: Policy, updates: BundleServer, update_leaf: LeafCert
) -> Policy:
    """Let ``source`` take bundle 2 from ``updates``; return the policy it makes."""
    updates.status, updates.body = (
        200,
        signed(announcing(policy, update_leaf), 2, app_id="com.example.app"),
    )
    result = source.refresh()
    assert result.valid, result
    return source.policy


@pytest.mark.parametrize("status", [404, 500, 302])
def test_http_errors_keep_the_last_good_state(
    updates: BundleServer,
    tmp_path: Path,
    root_pem: str,
    old_leaf: LeafCert,
    update_leaf: LeafCert,
    status: int,
) -> None:
    policy = embedded(old_leaf, update_leaf)
    with make_source(updates.url, tmp_path, "s", root_pem, policy=policy) as source:
        good = keep_last_good_state(source, policy, updates, update_leaf)
        updates.status, updates.body = status, b"not a bundle"
        failure = source.refresh()
        assert isinstance(failure, FetchFailure)
        assert failure.reason == "http-status"
        assert str(status) in failure.detail
        assert source.policy == good
        assert source.status.version == 2


def test_garbage_body_is_refused_and_keeps_the_last_good_state(
    updates: BundleServer, tmp_path: Path, root_pem: str, old_leaf: LeafCert, update_leaf: LeafCert
) -> None:
    policy = embedded(old_leaf, update_leaf)
    with make_source(updates.url, tmp_path, "s", root_pem, policy=policy) as source:
        good = keep_last_good_state(source, policy, updates, update_leaf)
        updates.body = b"\x00\xff garbage"
        result = source.refresh()
        assert isinstance(result, BundleResult)
        assert result.reason == "malformed"
        assert source.policy == good


def test_connection_refused_keeps_the_last_good_state(
    tmp_path: Path,
    root_pem: str,
    old_leaf: LeafCert,
    update_leaf: LeafCert,
    closed_port: int,
    updates: BundleServer,
) -> None:
    policy = embedded(old_leaf, update_leaf)
    with make_source(updates.url, tmp_path, "s", root_pem, policy=policy) as source:
        good = keep_last_good_state(source, policy, updates, update_leaf)
    url = f"https://localhost:{closed_port}/v1/pins/com.example.app"
    with make_source(url, tmp_path, "s", root_pem, policy=policy) as source:
        assert source.status.last is None  # the stored bundle applies without a fetch
        failure = source.refresh()
        assert isinstance(failure, FetchFailure)
        assert failure.reason == "unreachable"
        assert source.policy == good


def test_timeout_keeps_the_last_good_state(
    tmp_path: Path, root_pem: str, old_leaf: LeafCert, update_leaf: LeafCert, updates: BundleServer
) -> None:
    policy = embedded(old_leaf, update_leaf)
    with make_source(updates.url, tmp_path, "s", root_pem, policy=policy) as source:
        good = keep_last_good_state(source, policy, updates, update_leaf)
    # A server that completes the handshake, then never answers.
    with TLSServer(update_leaf, mode="silent") as silent:
        url = f"https://localhost:{silent.port}/v1/pins/com.example.app"
        with make_source(url, tmp_path, "s", root_pem, policy=policy, timeout=0.2) as source:
            failure = source.refresh()
            assert isinstance(failure, FetchFailure)
            assert failure.reason == "timeout", failure
            assert source.policy == good


def test_pinned_fetch_refuses_an_update_server_with_a_forged_certificate(
    pki: TestPKI, tmp_path: Path, root_pem: str, old_leaf: LeafCert, update_leaf: LeafCert
) -> None:
    # The interceptor's CA is trusted (installed on the device): validation passes,
    # the embedded pins do not.
    forged = pki.rogue.issue_cert("localhost")
    trusted = root_pem + pki.rogue.cert_pem.bytes().decode("ascii")
    policy = embedded(old_leaf, update_leaf)
    server = BundleServer(forged)
    try:
        server.body = signed(policy, 2, app_id="com.example.app", disable=[APP])
        source = make_source(server.url, tmp_path, "s", trusted, policy=policy)
        with source:
            failure = source.status.last
            assert isinstance(failure, FetchFailure)
            assert failure.reason == "pin-mismatch"
            assert "localhost" in failure.detail
            assert source.policy == policy
            assert source.status.version is None
            assert not server.served.is_set()  # refused before the request was sent
        # Untrusted, it fails ordinary validation first.
        with make_source(server.url, tmp_path, "t", root_pem, policy=policy) as source:
            failure = source.status.last
            assert isinstance(failure, FetchFailure)
            assert failure.reason == "tls-error"
    finally:
        server.close()


# -- the context follows the source -------------------------------------------------


def test_background_refresh_picks_up_a_new_bundle_and_stops_cleanly(
    updates: BundleServer, tmp_path: Path, root_pem: str, old_leaf: LeafCert, update_leaf: LeafCert
) -> None:
    policy = embedded(old_leaf, update_leaf)
    updates.status = 404  # nothing published yet
    source = make_source(updates.url, tmp_path, "s", root_pem, refresh=0.01)
    ctx = ssl_context(policy, cadata=root_pem, updates=source, observers=())
    assert ctx.pinset_policy == policy
    changed = threading.Event()
    source.follow(policy, lambda new: changed.set() is None)
    changed.clear()  # follow() tells the current policy at once
    updates.status, updates.body = (
        200,
        signed(announcing(policy, update_leaf), 2, app_id="com.example.app"),
    )
    assert changed.wait(10)
    assert ctx.pinset_policy == source.policy != policy
    threads = [t for t in threading.enumerate() if t.name == "pinset-updates"]
    assert len(threads) == 1
    source.close()
    assert not threads[0].is_alive()


def test_a_context_that_is_gone_is_dropped(
    tmp_path: Path, root_pem: str, old_leaf: LeafCert, update_leaf: LeafCert, updates: BundleServer
) -> None:
    policy = embedded(old_leaf, update_leaf)
    with make_source(updates.url, tmp_path, "s", root_pem) as source:
        ctx: PinnedSSLContext | None = ssl_context(policy, updates=source, observers=())
        del ctx
        keep_last_good_state(source, policy, updates, update_leaf)  # tells nobody, raises nothing


def test_each_handshake_sees_one_consistent_policy(
    updates: BundleServer,
    app_server: TLSServer,
    tmp_path: Path,
    root_pem: str,
    old_leaf: LeafCert,
    update_leaf: LeafCert,
    pki: TestPKI,
) -> None:
    policy = embedded(old_leaf, update_leaf)
    updates.status = 404
    published = [policy.rule_for(APP)]
    seen: list[Verdict] = []
    with make_source(updates.url, tmp_path, "s", root_pem) as source:
        ctx = ssl_context(
            policy, cadata=root_pem, updates=source, observers=[lambda v, c: seen.append(v)]
        )
        done = threading.Event()
        errors: list[BaseException] = []

        def client() -> None:
            while not done.is_set():
                try:
                    handshake(ctx, app_server)
                except BaseException as exc:
                    errors.append(exc)
                    return

        threads = [threading.Thread(target=client) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            current = policy
            for version in range(2, 12):
                # Each version adds one pin (never the served key's): a different rule.
                current = announcing(current, pki.leaf(APP))
                updates.status, updates.body = (
                    200,
                    signed(current, version, app_id="com.example.app"),
                )
                assert source.refresh().valid
                published.append(ctx.pinset_policy.rule_for(APP))
        finally:
            done.set()
            for thread in threads:
                thread.join()
    assert errors == []
    assert seen
    for verdict in seen:
        # The rule a verdict names is one published rule as a whole, and it matched.
        assert verdict.rule in published
        assert verdict.reason == "pinned"
        assert verdict.matched_pin == pin_of(old_leaf)


# -- the full cycle -----------------------------------------------------------------


def test_rotation_by_bundle_then_kill_switch(
    updates: BundleServer,
    app_server: TLSServer,
    sink: ReportSink,  # noqa: F811 - the imported fixture
    tmp_path: Path,
    root_pem: str,
    old_leaf: LeafCert,
    new_leaf: LeafCert,
    update_leaf: LeafCert,
) -> None:
    policy = embedded(old_leaf, update_leaf, report_uri=sink.url)
    # An app whose update check failed while the new key was announced.
    updates.status = 503
    stale_source = make_source(updates.url, tmp_path, "stale", root_pem)
    stale = ssl_context(policy, cadata=root_pem, updates=stale_source)
    assert isinstance(stale_source.status.last, FetchFailure)
    # The operator announces the new key in bundle 2; an app that checks now takes it.
    updates.status, updates.body = (
        200,
        signed(announcing(policy, new_leaf), 2, app_id="com.example.app"),
    )
    fresh_source = make_source(updates.url, tmp_path, "fresh", root_pem)
    fresh = ssl_context(policy, cadata=root_pem, updates=fresh_source)
    assert fresh_source.status.version == 2
    # Before the switch both work.
    assert handshake(fresh, app_server).reason == "pinned"
    assert handshake(stale, app_server).reason == "pinned"
    # The server switches to the key only the bundle announced.
    app_server.set_chain(new_leaf)
    updated = handshake(fresh, app_server)
    assert (updated.reason, updated.matched_pin) == ("pinned", pin_of(new_leaf))
    with pytest.raises(PinMismatchError) as refused:
        handshake(stale, app_server)
    assert refused.value.verdict.reason == "pin-mismatch"  # fails closed
    assert sink.received.wait(10)
    # Bundle 3 is the kill switch for the app host: the stale app takes it and works again.
    updates.body = signed(policy, 3, app_id="com.example.app", disable=[APP])
    assert stale_source.refresh().valid
    assert stale_source.status.disabled == (APP,)
    sink.received.clear()
    killed = handshake(stale, app_server)
    assert (killed.allowed, killed.reason, killed.matched_pin) == (True, "kill-switch", None)
    # ... and the operator sees the fallback in use.
    assert sink.received.wait(10)
    reporter = stale.pinset_observers[0]
    reporter.flush(10)  # type: ignore[attr-defined]
    # The stale app's failed check went to the same collector as an update event.
    assert stale_source.observers[0].flush(10)  # type: ignore[attr-defined]
    events = [b for b in sink.bodies if "pinset-update-event" in b]
    assert [(e["pinset-update-event"], e["reason"]) for e in events] == [
        ("fetch-failed", "http-status")
    ]
    reports = [b for b in sink.bodies if "pinset-update-event" not in b]
    reasons = [(b["pinset-reason"], b["validation-result"]) for b in reports]
    assert reasons == [("pin-mismatch", 1), ("kill-switch", 1)]
    report = reports[-1]
    assert report["hostname"] == APP
    assert report["enforce-pinning"] is False
    for ctx, source in ((stale, stale_source), (fresh, fresh_source)):
        source.close()
        ctx.pinset_observers[0].close()  # type: ignore[attr-defined]
