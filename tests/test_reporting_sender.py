"""pinset.reporting.BackgroundReporter: real pinned TLS on loopback, a loopback collector."""
# ruff: noqa: F811 - the fixtures imported from collector_fixtures are redefined as parameters

from __future__ import annotations

import datetime as dt
import http.server
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from collector_fixtures import FakeClock, ReportSink, sink  # noqa: F401 - a fixture
from pinset import DomainRule, Pin, PinMismatchError, Policy, evaluate, spki_pin, ssl_context
from pinset.enforce import Connection
from pinset.reporting import BackgroundReporter, FailureReport, urllib_transport
from pinset.testing import TestPKI, TLSServer

WRONG = (Pin(os.urandom(32)), Pin(os.urandom(32)))
NOW = dt.datetime(2026, 11, 18, 10, 0, tzinfo=dt.timezone.utc)


def _policy(*uris: str, enforce: bool = True, pins: tuple[Pin, ...] = WRONG) -> Policy:
    return Policy(rules=(DomainRule("localhost", pins=pins, enforce=enforce, report_uris=uris),))


def _connect(ctx: object, server: TLSServer) -> None:
    import ssl

    assert isinstance(ctx, ssl.SSLContext)
    with (
        socket.create_connection(server.address, timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        tls.recv(100)


def test_pin_failure_is_refused_and_reported(
    server: TLSServer, root_pem: str, sink: ReportSink
) -> None:
    reporter = BackgroundReporter(app_version="9.9")
    ctx = ssl_context(_policy(sink.url), cadata=root_pem, observers=[reporter])
    with pytest.raises(PinMismatchError):
        _connect(ctx, server)
    assert reporter.flush(10)
    assert reporter.stats.sent == 1
    [body] = sink.bodies
    assert body["hostname"] == "localhost"
    assert body["port"] == server.port
    assert body["validation-result"] == 1
    assert body["app-version"] == "9.9"
    assert body["known-pins"] == [f'pin-sha256="{p.b64}"' for p in WRONG]
    assert len(body["served-certificate-chain"]) == 2  # leaf + intermediate as sent
    assert len(body["validated-certificate-chain"]) == 3  # the path up to the root
    reporter.close()


def test_report_only_mismatch_connects_and_reports(
    server: TLSServer, root_pem: str, sink: ReportSink
) -> None:
    reporter = BackgroundReporter()
    ctx = ssl_context(_policy(sink.url, enforce=False), cadata=root_pem, observers=[reporter])
    _connect(ctx, server)  # no exception: report-only never blocks
    assert reporter.flush(10)
    assert [b["pinset-reason"] for b in sink.bodies] == ["report-only-mismatch"]
    assert sink.bodies[0]["enforce-pinning"] is False


def test_matching_pins_send_nothing(
    pki: TestPKI, server: TLSServer, root_pem: str, sink: ReportSink
) -> None:
    seen: list[str] = []
    reporter = BackgroundReporter(callback=lambda r: seen.append(r.reason))
    pins = (spki_pin(pki.intermediate.cert), WRONG[0])
    ctx = ssl_context(_policy(sink.url, pins=pins), cadata=root_pem, observers=[reporter])
    _connect(ctx, server)
    assert reporter.flush(10)
    assert (reporter.stats.queued, sink.bodies, seen) == (0, [], [])


def test_observer_does_not_wait_for_a_slow_collector(
    server: TLSServer, root_pem: str, sink: ReportSink
) -> None:
    sink.gate.clear()  # the collector takes the report and does not answer
    reporter = BackgroundReporter()
    ctx = ssl_context(_policy(sink.url), cadata=root_pem, observers=[reporter])
    with pytest.raises(PinMismatchError):
        _connect(ctx, server)
    assert sink.received.wait(10)  # the sender thread is now stuck inside the POST
    with pytest.raises(PinMismatchError):
        _connect(ctx, server)  # the next failure is refused all the same
    assert not sink.gate.is_set()
    assert reporter.stats.sent == 0  # proof that nothing was answered yet
    assert reporter.stats.deduplicated == 1
    sink.gate.set()
    assert reporter.flush(10)
    assert reporter.stats.sent == 1
    reporter.close()


def _verdict_and_connection(pki: TestPKI, port: int = 443) -> tuple[object, Connection]:
    chain = _chain(pki)
    verdict = evaluate(_policy("http://127.0.0.1:9/r"), "localhost", chain, now=NOW)
    return verdict, Connection("localhost", port, tuple(chain))


_CHAIN: list[bytes] = []


def _chain(pki: TestPKI) -> list[bytes]:
    if not _CHAIN:
        leaf = pki.leaf()
        _CHAIN.extend(c.public_bytes(Encoding.DER) for c in (leaf.cert, pki.intermediate.cert))
    return _CHAIN


class _Recorder:
    """A transport that records posts; ``hold`` keeps the first call waiting."""

    def __init__(self, status: int = 202) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.entered = threading.Event()
        self.hold = threading.Event()
        self.hold.set()
        self.status = status

    def __call__(self, uri: str, body: bytes) -> int:
        self.calls.append((uri, body))
        self.entered.set()
        assert self.hold.wait(10)
        return self.status


def test_identical_failures_are_sent_once_per_24_hours(pki: TestPKI) -> None:
    clock, transport = FakeClock(), _Recorder()
    reporter = BackgroundReporter(clock=clock, transport=transport)
    verdict, conn = _verdict_and_connection(pki)
    for _ in range(3):
        reporter(verdict, conn)  # type: ignore[arg-type]
    clock.now += 24 * 3600 - 1
    reporter(verdict, conn)  # type: ignore[arg-type]
    assert reporter.flush(10)
    assert (len(transport.calls), reporter.stats.deduplicated) == (1, 3)
    clock.now += 2  # the 24 hours are over
    reporter(verdict, conn)  # type: ignore[arg-type]
    _, other_port = _verdict_and_connection(pki, port=8443)
    reporter(verdict, other_port)  # type: ignore[arg-type]
    assert reporter.flush(10)
    assert len(transport.calls) == 3
    assert reporter.stats.sent == 3
    reporter.close()


def test_full_queue_drops_and_counts(pki: TestPKI) -> None:
    transport = _Recorder()
    transport.hold.clear()
    reporter = BackgroundReporter(queue_size=1, transport=transport)
    verdict, _ = _verdict_and_connection(pki)
    reporter(verdict, Connection("localhost", 1, ()))  # type: ignore[arg-type]
    assert transport.entered.wait(10)  # the sender holds report 1
    for port in (2, 3, 4):
        reporter(verdict, Connection("localhost", port, ()))  # type: ignore[arg-type]
    stats = reporter.stats
    assert (stats.queued, stats.dropped) == (2, 2)  # report 2 waits, 3 and 4 are dropped
    transport.hold.set()
    assert reporter.flush(10)
    assert reporter.stats.sent == 2
    # A dropped report is not remembered as sent: it goes out when it happens again.
    reporter(verdict, Connection("localhost", 3, ()))  # type: ignore[arg-type]
    assert reporter.flush(10)
    assert reporter.stats.sent == 3
    reporter.close()


def test_unreachable_collector_counts_failed_and_never_raises(
    pki: TestPKI, closed_port: int
) -> None:
    policy = _policy(f"http://127.0.0.1:{closed_port}/v1/report")
    chain = _chain(pki)
    verdict = evaluate(policy, "localhost", chain, now=NOW)
    reporter = BackgroundReporter(timeout=2)
    reporter(verdict, Connection("localhost", 443, tuple(chain)))
    assert reporter.flush(10)
    assert (reporter.stats.failed, reporter.stats.sent) == (1, 0)
    reporter.close()


def test_http_error_status_counts_failed(pki: TestPKI, sink: ReportSink) -> None:
    sink.status = 500
    chain = _chain(pki)
    verdict = evaluate(_policy(sink.url), "localhost", chain, now=NOW)
    reporter = BackgroundReporter()
    reporter(verdict, Connection("localhost", 443, tuple(chain)))
    assert reporter.flush(10)
    assert (reporter.stats.failed, reporter.stats.sent, len(sink.bodies)) == (1, 0, 1)
    reporter.close()


def test_uris_on_the_pinned_host_or_its_rule_are_skipped(pki: TestPKI) -> None:
    chain = _chain(pki)
    rule = DomainRule(
        "example.com",
        pins=WRONG,
        include_subdomains=True,
        report_uris=(
            "https://api.example.com/report",  # the failing host itself
            "https://reports.example.com/v1/report",  # covered by the failing rule
            "https://pins.example.org/v1/report",  # pinned by another rule of the policy
            "https://collector.example.net/v1/report",  # fine
        ),
    )
    other = DomainRule("pins.example.org", pins=WRONG)
    policy = Policy(rules=(rule, other))
    verdict = evaluate(policy, "api.example.com", chain, now=NOW)
    transport = _Recorder()
    reporter = BackgroundReporter(policy, transport=transport)
    reporter(verdict, Connection("api.example.com", 443, tuple(chain)))
    assert reporter.flush(10)
    assert [uri for uri, _ in transport.calls] == ["https://collector.example.net/v1/report"]
    assert reporter.stats.skipped == 3
    reporter.close()


def test_callback_sees_each_report_and_its_errors_are_contained(pki: TestPKI) -> None:
    seen: list[FailureReport] = []

    def callback(report: FailureReport) -> None:
        seen.append(report)
        raise RuntimeError("application bug")

    transport = _Recorder()
    reporter = BackgroundReporter(transport=transport, callback=callback)
    verdict, conn = _verdict_and_connection(pki)
    reporter(verdict, conn)  # type: ignore[arg-type]
    assert reporter.flush(10)
    assert [r.hostname for r in seen] == ["localhost"]
    assert len(transport.calls) == 1  # the callback's exception did not stop the send


def test_closed_reporter_drops(pki: TestPKI) -> None:
    transport = _Recorder()
    reporter = BackgroundReporter(transport=transport)
    reporter.close()
    verdict, conn = _verdict_and_connection(pki)
    reporter(verdict, conn)  # type: ignore[arg-type]
    assert (reporter.stats.dropped, transport.calls) == (1, [])


def test_a_5xx_is_not_remembered_as_sent(pki: TestPKI) -> None:
    # Regression: the de-duplication entry was written when the report was queued, so a
    # collector's 503 silenced this failure for 24 hours. Now the delivery is retried.
    clock, transport = FakeClock(), _Recorder(status=503)
    reporter = BackgroundReporter(clock=clock, transport=transport)
    verdict, conn = _verdict_and_connection(pki)
    reporter(verdict, conn)  # type: ignore[arg-type]
    assert reporter.flush(10)
    transport.status = 202  # the collector is back
    clock.now += 3600
    reporter(verdict, conn)  # type: ignore[arg-type]
    assert reporter.flush(10)
    assert (reporter.stats.failed, reporter.stats.sent) == (1, 1)
    assert len(transport.calls) == 2
    reporter.close()


# -- reporting never loops, never goes to the pinned host ------------------------------


class _Hits(http.server.BaseHTTPRequestHandler):
    hits: list[str]
    location: str

    def do_POST(self) -> None:
        type(self).hits.append(self.path)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.location:
            self.send_response(307)
            self.send_header("Location", self.location)
        else:
            self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[Any]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(location: str = "") -> tuple[str, list[str]]:
        handler = type("Handler", (_Hits,), {"hits": [], "location": location})
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}", handler.hits

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def test_a_redirecting_collector_is_not_followed(http_server: Any) -> None:
    pinned_url, pinned_hits = http_server()
    collector_url, collector_hits = http_server(location=pinned_url + "/stolen")
    send = urllib_transport(proxies={})
    assert send(collector_url + "/report", b"{}") == 307
    assert collector_hits == ["/report"]
    assert pinned_hits == []


def test_a_report_uri_naming_the_pinned_ip_in_another_spelling_is_skipped(pki: TestPKI) -> None:
    sent: list[str] = []
    rule = DomainRule("127.0.0.1", pins=WRONG, report_uris=("https://127.000.000.001/report",))
    reporter = BackgroundReporter(
        Policy(rules=(rule,)), transport=lambda uri, body: sent.append(uri) or 204
    )
    verdict = evaluate(Policy(rules=(rule,)), "127.0.0.1", [pki.leaf().cert], now=NOW)
    assert verdict.reason == "pin-mismatch"
    reporter(verdict, Connection("127.0.0.1", 443, ()))
    assert reporter.flush(5)
    reporter.close()
    assert sent == []
    assert reporter.stats.skipped == 1
