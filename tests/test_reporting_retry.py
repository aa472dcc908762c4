"""Delivery of failure reports: sent only on 2xx, retried with backoff, jitter and Retry-After.

A loopback collector follows a script (fail, fail, recover); the reporter's clock and
jitter are injected, so no test waits for a backoff to pass. The bug these pin down:
the 24-hour de-duplication entry used to be written when a report was queued, so one
failed delivery (5xx, 429, timeout, refused) silenced that failure for a day.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import http.server
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from collector_fixtures import FakeClock, LoopbackCollector
from pinset import DomainRule, Pin, PinMismatchError, Policy, evaluate, ssl_context
from pinset.enforce import Connection
from pinset.reporting import BackgroundReporter, urllib_transport
from pinset.reporting._retry import (
    CollectorStatus,
    RetryPolicy,
    is_retryable_status,
    retry_after_seconds,
)
from pinset.testing import TestPKI, TLSServer
from pinset.verdict import Verdict

WRONG = (Pin(os.urandom(32)), Pin(os.urandom(32)))
NOW = dt.datetime(2026, 11, 18, 10, 0, tzinfo=dt.timezone.utc)
DAY = 24 * 3600.0
START = 1000.0  # small enough that clock.now += 4.9, then += 0.1, is exactly 5 s later

# One scripted answer: an HTTP status with headers, "drop" (close without answering),
# or "stall" (answer nothing until the test lets go: the client times out).
Answer = tuple[int, dict[str, str]] | str


class ScriptedCollector(LoopbackCollector):
    """A loopback collector that answers each POST with the next step of ``script``.

    When the script runs out it answers 202. ``bodies`` holds every report received.
    """

    def __init__(self, *script: Answer) -> None:
        self.script = list(script)
        self.release = threading.Event()
        super().__init__()

    def answer(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        step = self.script.pop(0) if self.script else (202, {})
        if step == "drop":
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if step == "stall":
            self.release.wait(10)
            return
        assert isinstance(step, tuple)
        status, headers = step
        # send_response() would add a Date of its own; a scripted one replaces it.
        handler.send_response_only(status)
        handler.send_header("Date", headers.get("Date", handler.date_time_string()))
        for name, value in headers.items():
            if name == "Date":
                continue
            handler.send_header(name, value)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def let_go(self) -> None:
        self.release.set()


@pytest.fixture
def collector() -> Iterator[list[ScriptedCollector]]:
    made: list[ScriptedCollector] = []
    yield made
    for one in made:
        one.close()


def _collector(made: list[ScriptedCollector], *script: Answer) -> ScriptedCollector:
    made.append(ScriptedCollector(*script))
    return made[-1]


def _policy(*uris: str, enforce: bool = True) -> Policy:
    return Policy(rules=(DomainRule("localhost", pins=WRONG, enforce=enforce, report_uris=uris),))


def _failure(pki: TestPKI, policy: Policy, port: int = 443) -> tuple[Verdict, Connection]:
    chain = [c.public_bytes(Encoding.DER) for c in (pki.leaf().cert, pki.intermediate.cert)]
    verdict = evaluate(policy, "localhost", chain, now=NOW)
    assert verdict.reason == "pin-mismatch"
    return verdict, Connection("localhost", port, tuple(chain))


def _reporter(clock: FakeClock, **kwargs: Any) -> BackgroundReporter:
    kwargs.setdefault("retry", RetryPolicy(attempts=4, base_delay=10, max_delay=60))
    return BackgroundReporter(clock=clock, jitter=lambda: 0.0, timeout=5, **kwargs)


def _resent_only_after(
    reporter: BackgroundReporter,
    clock: FakeClock,
    sink: ScriptedCollector,
    wait: float,
    rest: float,
) -> None:
    """Nothing is sent again ``wait`` seconds on; ``rest`` seconds later the report is."""
    sent = len(sink.bodies)
    clock.now += wait
    assert reporter.flush(10)
    assert len(sink.bodies) == sent
    clock.now += rest
    assert reporter.flush(10)
    assert len(sink.bodies) == sent + 1


# -- the reporter against a collector that fails, then recovers ----------------------------


def test_failed_delivery_is_retried_until_the_collector_recovers(
    pki: TestPKI, collector: list[ScriptedCollector]
) -> None:
    sink = _collector(collector, (500, {}), "drop")
    clock = FakeClock(START)
    verdict, conn = _failure(pki, _policy(sink.url))
    with _reporter(clock) as reporter:
        reporter(verdict, conn)
        assert reporter.flush(10)
        stats = reporter.stats
        assert (stats.sent, stats.failed, stats.retrying) == (0, 1, 1)
        # Jitter 0 waits half the first backoff (10 s): not a moment sooner.
        _resent_only_after(reporter, clock, sink, 4.9, 0.1)
        # The connection is dropped: the backoff doubles to 20 s, half is 10.
        assert reporter.stats.retrying == 1
        clock.now += 10
        assert reporter.flush(10)
        stats = reporter.stats
        assert (stats.sent, stats.failed, stats.retried, stats.retrying) == (1, 2, 2, 0)
    assert len(sink.bodies) == 3
    assert sink.bodies[0] == sink.bodies[2]  # the same report, built once


def test_a_failed_delivery_does_not_silence_the_failure(
    pki: TestPKI, collector: list[ScriptedCollector]
) -> None:
    # The old reporter wrote the 24-hour de-duplication entry when it queued the report:
    # after this 503 the same failure would not have been reported again for a day.
    sink = _collector(collector, (503, {}))
    clock = FakeClock(START)
    verdict, conn = _failure(pki, _policy(sink.url))
    with _reporter(clock, retry=RetryPolicy(attempts=1)) as reporter:
        reporter(verdict, conn)
        assert reporter.flush(10)
        assert (reporter.stats.sent, reporter.stats.given_up) == (0, 1)
        clock.now += 60
        reporter(verdict, conn)  # the same failure, a minute later
        assert reporter.flush(10)
        assert (reporter.stats.sent, reporter.stats.deduplicated) == (1, 0)
        reporter(verdict, conn)  # delivered now: quiet for 24 hours
        assert reporter.flush(10)
        assert (reporter.stats.sent, reporter.stats.deduplicated) == (1, 1)
        clock.now += DAY
        reporter(verdict, conn)
        assert reporter.flush(10)
        assert reporter.stats.sent == 2
    assert len(sink.bodies) == 3


def test_twins_of_a_report_waiting_for_a_retry_are_not_queued(
    pki: TestPKI, collector: list[ScriptedCollector]
) -> None:
    sink = _collector(collector, (502, {}))
    clock = FakeClock(START)
    verdict, conn = _failure(pki, _policy(sink.url))
    with _reporter(clock) as reporter:
        reporter(verdict, conn)
        assert reporter.flush(10)
        for _ in range(5):
            reporter(verdict, conn)
        assert (reporter.stats.queued, reporter.stats.deduplicated) == (1, 5)
        clock.now += 10
        assert reporter.flush(10)
        assert reporter.stats.sent == 1
    assert len(sink.bodies) == 2


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(
    pki: TestPKI, collector: list[ScriptedCollector], status: int
) -> None:
    sink = _collector(collector, (status, {"Retry-After": "120"}))
    clock = FakeClock(START)
    verdict, conn = _failure(pki, _policy(sink.url))
    with _reporter(clock) as reporter:
        reporter(verdict, conn)
        assert reporter.flush(10)
        # The backoff alone (5 s) would have retried long ago.
        _resent_only_after(reporter, clock, sink, 119, 1)
        assert reporter.stats.sent == 1
    assert len(sink.bodies) == 2


def test_retry_after_as_an_http_date_is_read_against_the_collectors_date(
    pki: TestPKI, collector: list[ScriptedCollector]
) -> None:
    # The collector's clock is years off this machine's: only the difference counts.
    served = dt.datetime(2001, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
    headers = {
        "Date": email.utils.format_datetime(served, usegmt=True),
        "Retry-After": email.utils.format_datetime(served + dt.timedelta(seconds=90), usegmt=True),
    }
    sink = _collector(collector, (503, headers))
    clock = FakeClock(START)
    verdict, conn = _failure(pki, _policy(sink.url))
    with _reporter(clock) as reporter:
        reporter(verdict, conn)
        assert reporter.flush(10)
        _resent_only_after(reporter, clock, sink, 89, 1)
        assert reporter.stats.sent == 1


def test_retry_after_beyond_the_cap_gives_up(
    pki: TestPKI, collector: list[ScriptedCollector]
) -> None:
    sink = _collector(collector, (429, {"Retry-After": "86400"}))
    verdict, conn = _failure(pki, _policy(sink.url))
    with _reporter(FakeClock(START)) as reporter:
        reporter(verdict, conn)
        assert reporter.flush(10)
        stats = reporter.stats
        assert (stats.failed, stats.given_up, stats.retrying) == (1, 1, 0)


def test_a_refusal_is_not_retried_but_the_next_failure_is_reported(
    pki: TestPKI, collector: list[ScriptedCollector]
) -> None:
    sink = _collector(collector, (400, {}))
    clock = FakeClock(START)
    verdict, conn = _failure(pki, _policy(sink.url))
    with _reporter(clock) as reporter:
        reporter(verdict, conn)
        assert reporter.flush(10)
        assert (reporter.stats.given_up, reporter.stats.retrying) == (1, 0)
        reporter(verdict, conn)
        assert reporter.flush(10)
        assert reporter.stats.sent == 1
    assert len(sink.bodies) == 2


def test_refused_connection_is_retried(
    pki: TestPKI, collector: list[ScriptedCollector], closed_port: int
) -> None:
    sink = _collector(collector)
    dead = f"http://127.0.0.1:{closed_port}/v1/report"
    clock = FakeClock(START)
    verdict, conn = _failure(pki, _policy(dead))
    urls = iter([dead, sink.url])  # the collector comes back on another address

    def transport(uri: str, body: bytes) -> int:
        return send(next(urls), body)

    send = urllib_transport(timeout=5, proxies={})
    with _reporter(clock, transport=transport) as reporter:
        reporter(verdict, conn)
        assert reporter.flush(10)
        assert (reporter.stats.failed, reporter.stats.retrying) == (1, 1)
        clock.now += 5
        assert reporter.flush(10)
        assert reporter.stats.sent == 1
    assert len(sink.bodies) == 1


def test_timeout_is_retried(pki: TestPKI, collector: list[ScriptedCollector]) -> None:
    sink = _collector(collector, "stall")
    clock = FakeClock(START)
    verdict, conn = _failure(pki, _policy(sink.url))
    reporter = BackgroundReporter(
        clock=clock, jitter=lambda: 0.0, timeout=0.3, retry=RetryPolicy(base_delay=10)
    )
    with reporter:
        reporter(verdict, conn)
        assert reporter.flush(10)
        assert (reporter.stats.failed, reporter.stats.retrying) == (1, 1)
        sink.release.set()
        clock.now += 5
        assert reporter.flush(10)
        assert reporter.stats.sent == 1


def test_jitter_spreads_the_retry(pki: TestPKI, collector: list[ScriptedCollector]) -> None:
    sink = _collector(collector, (503, {}))
    clock = FakeClock(START)
    verdict, conn = _failure(pki, _policy(sink.url))
    reporter = BackgroundReporter(
        clock=clock, jitter=lambda: 0.5, retry=RetryPolicy(base_delay=8, max_delay=8)
    )
    with reporter:
        reporter(verdict, conn)
        assert reporter.flush(10)
        _resent_only_after(reporter, clock, sink, 5.9, 0.1)  # 8/2 + 0.5 * 8/2 = 6 s
        assert reporter.stats.sent == 1


def test_reports_waiting_for_a_retry_count_against_the_queue(
    pki: TestPKI, collector: list[ScriptedCollector]
) -> None:
    sink = _collector(collector, (503, {}), (503, {}))
    verdict, _ = _failure(pki, _policy(sink.url))
    with _reporter(FakeClock(START), queue_size=2) as reporter:
        for port in (1, 2):
            reporter(verdict, Connection("localhost", port, ()))
            assert reporter.flush(10)
        assert reporter.stats.retrying == 2
        reporter(verdict, Connection("localhost", 3, ()))  # returns at once, dropped
        assert (reporter.stats.queued, reporter.stats.dropped) == (2, 1)


def test_close_gives_up_what_waits_for_a_retry(
    pki: TestPKI, collector: list[ScriptedCollector]
) -> None:
    sink = _collector(collector, (503, {}))
    verdict, conn = _failure(pki, _policy(sink.url))
    reporter = _reporter(FakeClock(START))
    reporter(verdict, conn)
    assert reporter.flush(10)
    assert reporter.close(5)
    stats = reporter.stats
    assert (stats.given_up, stats.retrying, stats.sent) == (1, 0, 0)
    reporter(verdict, conn)
    assert reporter.stats.dropped == 1


def test_a_failing_collector_changes_no_verdict(
    pki: TestPKI, root_pem: str, collector: list[ScriptedCollector]
) -> None:
    sink = _collector(collector, *[(503, {"Retry-After": "1"})] * 3)
    with TLSServer(pki.leaf()) as server, _reporter(FakeClock(START)) as reporter:
        enforced = ssl_context(_policy(sink.url), cadata=root_pem, observers=[reporter])
        report_only = ssl_context(
            _policy(sink.url, enforce=False), cadata=root_pem, observers=[reporter]
        )
        for _ in range(2):
            with (
                pytest.raises(PinMismatchError),
                socket.create_connection(server.address, timeout=5) as raw,
                enforced.wrap_socket(raw, server_hostname="localhost"),
            ):
                pass
            with (
                socket.create_connection(server.address, timeout=5) as raw,
                report_only.wrap_socket(raw, server_hostname="localhost") as tls,
            ):
                assert tls.version() is not None  # report-only connects
        assert reporter.flush(10)
        assert reporter.stats.retrying == 2


# -- the pure parts: which answers are retried, and when -----------------------------------


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        *[(status, True) for status in (408, 429, 500, 502, 503, 504)],
        *[(status, False) for status in (307, 400, 401, 404, 413, 501)],
    ],
)
def test_retryable_statuses(status: int, retryable: bool) -> None:
    assert is_retryable_status(status) is retryable


def test_backoff_doubles_up_to_the_cap_and_jitter_stays_in_its_band() -> None:
    policy = RetryPolicy(attempts=10, base_delay=2, max_delay=16)
    low = [policy.delay(n, status=500, retry_after=None, jitter=0.0) for n in range(1, 7)]
    high = [policy.delay(n, status=None, retry_after=None, jitter=0.999999) for n in range(1, 7)]
    assert low == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert high == pytest.approx([2.0, 4.0, 8.0, 16.0, 16.0, 16.0], rel=1e-5)


def test_last_attempt_and_refusals_give_up() -> None:
    policy = RetryPolicy(attempts=3)
    assert policy.delay(2, status=503, retry_after=None, jitter=0.0) is not None
    assert policy.delay(3, status=503, retry_after=None, jitter=0.0) is None
    assert policy.delay(1, status=400, retry_after=None, jitter=0.0) is None


def test_retry_after_is_a_floor_only_for_429_and_503() -> None:
    policy = RetryPolicy(base_delay=2, max_retry_after=600)
    assert policy.delay(1, status=429, retry_after=300, jitter=0.0) == 300
    assert policy.delay(1, status=503, retry_after=300, jitter=0.5) == 300.5
    assert policy.delay(1, status=500, retry_after=300, jitter=0.0) == 1.0
    assert policy.delay(1, status=503, retry_after=601, jitter=0.0) is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Wed, 18 Nov 2026 10:01:30 GMT", 90.0),
        ("Wednesday, 18-Nov-26 10:01:30 GMT", 90.0),  # RFC 850, obsolete but allowed
        ("Wed, 18 Nov 2026 09:00:00 GMT", 0.0),  # already past
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_values(value: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value, now=NOW) == seconds


def test_urllib_transport_reads_retry_after(collector: list[ScriptedCollector]) -> None:
    sink = _collector(collector, (429, {"Retry-After": "7"}), (503, {}))
    send = urllib_transport(timeout=5, proxies={})
    limited = send(sink.url, b"{}")
    assert isinstance(limited, CollectorStatus)
    assert (limited, limited.retry_after) == (429, 7.0)
    unavailable = send(sink.url, b"{}")
    assert (unavailable, getattr(unavailable, "retry_after", "missing")) == (503, None)
    assert send(sink.url, b"{}") == 202
