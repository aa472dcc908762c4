"""Enforcement under load (issue 13): huge certificates and a report endpoint that misbehaves.

A 10,000-name certificate, an RSA-8192 leaf and a 50-deep chain are judged right
(allowed with their pin, refused without) in bounded Python memory, measured with
:mod:`tracemalloc` (OpenSSL's own allocations are outside it; benchmarks/big_certs.py
records the process's peak RSS and the times). No test asserts a duration.

A report endpoint that refuses connections, hangs, answers 500, fails its own pin
check or presents an untrusted certificate changes no verdict and delays none: every
handshake is judged and answered while the sender is still stuck on the first
report, and the sender's queue stays at its bound, the rest dropped and counted.
"""

from __future__ import annotations

import gc
import http.server
import socket
import ssl
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from _certs import rsa_8192
from _policies import OTHER, pinning
from pinset import Pin, PinMismatchError, Policy, Verdict, spki_pin, ssl_context
from pinset.policy import DomainRule
from pinset.reporting import BackgroundReporter
from pinset.testing import CertificateAuthority, LeafCert, TestPKI, TLSServer

HOST = "localhost"
MiB = 1024 * 1024
# OpenSSL's default limit on a peer's certificate list (SSL_CTX_set_max_cert_list).
MAX_CERT_LIST = 100 * 1024


def handshake(ctx: ssl.SSLContext, server: TLSServer) -> Verdict:
    with socket.create_connection(server.address, timeout=10) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname=HOST) as tls:
                verdict: Verdict | None = tls.pinset_verdict  # type: ignore[attr-defined]
        except PinMismatchError as exc:
            verdict = exc.verdict
    assert verdict is not None
    return verdict


def python_memory(run: Callable[[], None]) -> tuple[int, int]:
    """(peak, retained) bytes of Python memory that ``run()`` allocated, by tracemalloc."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        run()
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base, current - base


def judged_in_bounded_memory(
    server: TLSServer, right: ssl.SSLContext, wrong: ssl.SSLContext, rounds: int = 10
) -> list[Verdict]:
    """Handshakes alternately allowed and refused; bounded peak, nothing kept per handshake."""
    verdicts = [handshake(right, server), handshake(wrong, server)]  # the memos are warm

    def run() -> None:
        for _ in range(rounds):
            verdicts.extend((handshake(right, server), handshake(wrong, server)))

    peak, retained = python_memory(run)
    assert peak < 8 * MiB, peak
    # Keeping one copy of the leaf per handshake would retain rounds x 2 x its size.
    assert retained < MiB // 4, retained
    assert [v.reason for v in verdicts] == ["pinned", "pin-mismatch"] * (rounds + 1)
    return verdicts


# -- 10,000 names, RSA-8192, 50 deep ---------------------------------------------------


def ten_thousand_names(length: int) -> list[str]:
    """10,000 DNS names of about ``length`` characters, ``localhost`` the last."""
    return [f"h{i:0{length - 3}d}.t" for i in range(9_999)] + [HOST]


@pytest.fixture(scope="module")
def san_leaf(pki: TestPKI) -> LeafCert:
    # Short names keep the certificate under OpenSSL's limit for a certificate list.
    return pki.intermediate.issue_cert(*ten_thousand_names(7), common_name="10,000 names")


def contexts(pin: Pin, root_pem: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    right = ssl_context(pinning((HOST, (pin,))), cadata=root_pem, observers=())
    wrong = ssl_context(pinning((HOST, (OTHER,))), cadata=root_pem, observers=())
    return right, wrong


def test_a_10000_name_certificate_is_judged_in_bounded_memory(
    pki: TestPKI, root_pem: str, san_leaf: LeafCert
) -> None:
    der = san_leaf.cert.public_bytes(Encoding.DER)
    assert (
        len(san_leaf.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
        == 10_000
    )
    assert len(der) < MAX_CERT_LIST
    right, wrong = contexts(spki_pin(pki.intermediate.cert), root_pem)
    with TLSServer(san_leaf, mode="silent") as server:
        verdicts = judged_in_bounded_memory(server, right, wrong)
        records = server.wait_for_connections(len(verdicts))
    assert all(v.chain[0] == der for v in verdicts)
    assert all(r.handshake_completed and r.received == 0 for r in records)


def test_a_certificate_list_over_openssls_limit_fails_closed(pki: TestPKI, root_pem: str) -> None:
    # 10,000 longer names: about 250 KB, over the 100 KiB OpenSSL accepts from a peer.
    leaf = pki.intermediate.issue_cert(*ten_thousand_names(22), common_name="too big")
    assert len(leaf.cert.public_bytes(Encoding.DER)) > 2 * MAX_CERT_LIST
    right, _ = contexts(spki_pin(pki.intermediate.cert), root_pem)
    with TLSServer(leaf, mode="silent") as server:
        with (
            socket.create_connection(server.address, timeout=10) as raw,
            pytest.raises(ssl.SSLError, match="excessive message size") as info,
        ):
            right.wrap_socket(raw, server_hostname=HOST)
        [record] = server.wait_for_connections(1)
    # Refused by TLS before any pin was looked at, even with the right pin; nothing sent.
    assert not isinstance(info.value, PinMismatchError)
    assert (record.handshake_completed, record.received) == (False, 0)


def test_an_rsa_8192_leaf_is_judged_in_bounded_memory(pki: TestPKI, root_pem: str) -> None:
    leaf = pki.intermediate.issue_cert(HOST, private_key=rsa_8192())
    assert leaf.cert.public_key().key_size == 8192  # type: ignore[union-attr]
    right, wrong = contexts(spki_pin(leaf.cert), root_pem)
    with TLSServer(leaf, mode="silent") as server:
        verdicts = judged_in_bounded_memory(server, right, wrong, rounds=4)
    assert all(v.served_pins[0] == spki_pin(rsa_8192()) for v in verdicts)
    assert {v.matched_pin for v in verdicts} == {spki_pin(leaf.cert), None}


@pytest.fixture(scope="module")
def deep_chain() -> tuple[CertificateAuthority, LeafCert]:
    root = CertificateAuthority.create("deep root")
    ca = root
    for level in range(50):
        ca = ca.create_child_ca(f"intermediate {level + 1} of 50")
    return root, ca.issue_cert(HOST)


@pytest.mark.parametrize("pinned", ["root", "intermediate 25", "intermediate 50", "leaf"])
def test_a_50_deep_chain_is_judged_in_bounded_memory(
    deep_chain: tuple[CertificateAuthority, LeafCert], pinned: str
) -> None:
    root, leaf = deep_chain
    assert len(leaf.chain) == 51  # the leaf and 50 intermediates are served
    member = {
        "root": root.cert,
        "intermediate 25": leaf.chain[26],
        "intermediate 50": leaf.chain[1],
        "leaf": leaf.cert,
    }[pinned]
    right, wrong = contexts(spki_pin(member), root.cert_pem.bytes().decode("ascii"))
    with TLSServer(leaf, mode="silent") as server:
        verdicts = judged_in_bounded_memory(server, right, wrong, rounds=3)
    assert all(len(v.chain) == 52 for v in verdicts)  # verified up to the root
    assert {v.matched_pin for v in verdicts} == {spki_pin(member), None}


# -- the report endpoint misbehaves ----------------------------------------------------

QUEUE = 3  # the reporter's bound
FAILURES = 8  # distinct failures (each on its own leaf), more than the queue holds


class Endpoint:
    """A loopback HTTP report endpoint that answers 500, 202, or holds the request."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.posts = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                endpoint.posts += 1
                endpoint.entered.set()
                if endpoint.mode == "hang":
                    endpoint.release.wait(60)
                    self.close_connection = True  # then hang up without an answer
                    return
                self.send_response(202 if endpoint.mode == "healthy" else 500)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/report"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def failing_leaves(pki: TestPKI) -> list[LeafCert]:
    """Leaves the policy does not pin; each failure report differs by its chain."""
    return [pki.leaf() for _ in range(FAILURES)]


FAULTS = ["healthy", "refusing", "hanging", "answering-500", "own-pin-check", "untrusted"]


@pytest.fixture
def endpoint(
    request: pytest.FixtureRequest, pki: TestPKI, root_pem: str, closed_port: int
) -> Iterator[tuple[str, ssl.SSLContext | None, Any]]:
    """(report URI, the reporter's context, the endpoint) for the fault named by the test."""
    fault: str = request.param
    if fault == "refusing":
        yield f"http://127.0.0.1:{closed_port}/v1/report", None, None
        return
    if fault in ("own-pin-check", "untrusted"):
        with TLSServer(pki.leaf("127.0.0.1")) as tls:
            uri = f"https://127.0.0.1:{tls.port}/v1/report"
            if fault == "untrusted":  # the reporter trusts the system store, not the test root
                yield uri, None, tls
                return
            # The application pins its collector too, wrongly, and reports about it to it.
            own = Policy(
                rules=(DomainRule("127.0.0.1", pins=(OTHER, spki_pin(pki.rogue.cert))),),
                report_uris=(uri,),
            )
            yield uri, ssl_context(own, cadata=root_pem), tls
        return
    http_endpoint = Endpoint({"hanging": "hang", "answering-500": "500"}.get(fault, fault))
    try:
        yield http_endpoint.url, None, http_endpoint
    finally:
        http_endpoint.close()


@pytest.mark.parametrize("endpoint", FAULTS, indirect=True)
def test_a_misbehaving_report_endpoint_neither_changes_nor_delays_a_verdict(
    request: pytest.FixtureRequest,
    pki: TestPKI,
    root_pem: str,
    failing_leaves: list[LeafCert],
    endpoint: tuple[str, ssl.SSLContext | None, Any],
) -> None:
    fault = request.node.callspec.params["endpoint"]
    uri, report_context, server_side = endpoint
    policy = Policy(
        rules=(DomainRule(HOST, pins=(OTHER, spki_pin(pki.rogue.cert))),), report_uris=(uri,)
    )
    # A clock that never moves: a failed delivery waits for a retry that never falls due,
    # holding its queue slot, so that the queue's bound is what the test sees.
    reporter = BackgroundReporter(
        policy, queue_size=QUEUE, clock=lambda: 0.0, timeout=60, context=report_context, proxies={}
    )
    ctx = ssl_context(policy, cadata=root_pem, observers=[reporter])
    hanging = fault == "hanging"
    verdicts: list[Verdict] = []
    with TLSServer(failing_leaves[0], mode="echo") as pinned_server:
        for n, leaf in enumerate(failing_leaves):
            pinned_server.set_chain(leaf)
            verdicts.append(handshake(ctx, pinned_server))
            if not hanging:
                assert reporter.flush(30)  # this report was tried (and failed) before the next
            elif n == 0:
                assert server_side.entered.wait(30)  # the sender is stuck on report 1
        records = pinned_server.wait_for_connections(FAILURES)
    stats = reporter.stats
    if hanging:
        # Every verdict was reached and delivered while report 1 is still held.
        assert (server_side.posts, server_side.release.is_set()) == (1, False)
        server_side.release.set()
    assert reporter.close(30)
    # The verdicts are the same whatever the endpoint does: refused, before any byte.
    assert [(v.reason, v.allowed) for v in verdicts] == [("pin-mismatch", False)] * FAILURES
    assert [(r.handshake_completed, r.received) for r in records] == [(True, 0)] * FAILURES
    if fault == "healthy":
        assert (stats.queued, stats.sent, stats.dropped) == (FAILURES, FAILURES, 0)
    elif hanging:
        # One report in the sender's hands, QUEUE waiting, the rest dropped and counted.
        assert (stats.queued, stats.dropped, stats.sent) == (QUEUE + 1, FAILURES - QUEUE - 1, 0)
    else:
        # QUEUE reports tried once and waiting for a retry; the rest dropped and counted.
        assert (stats.queued, stats.failed, stats.retrying) == (QUEUE, QUEUE, QUEUE)
        assert (stats.dropped, stats.sent) == (FAILURES - QUEUE, 0)
        assert reporter.stats.given_up == QUEUE  # closing gave the retries up
    if fault in ("own-pin-check", "untrusted"):
        # The report never crossed the link that failed its check.
        assert server_side.received_bytes == 0
    if fault == "own-pin-check":
        assert report_context is not None
        [nested] = report_context.pinset_observers  # type: ignore[attr-defined]
        # The report channel's own failure is not reported: no report loop.
        assert nested.stats.queued == 0
        nested.close()
