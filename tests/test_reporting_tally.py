"""pinset.reporting.VerdictTally: counting per interval with a fake clock, the body, retries."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import pytest

from collector_fixtures import T0, FakeClock
from pinset import DomainRule, Pin, Policy
from pinset.errors import ConfigError
from pinset.reporting import CollectorStatus, RetryPolicy, VerdictTally, tally_url
from pinset.verdict import Connection, Reason, Verdict

PINS = (Pin(os.urandom(32)), Pin(os.urandom(32)))
API = DomainRule("api.example.com", pins=PINS, include_subdomains=True)
CDN = DomainRule("cdn.example.com", pins=PINS)
URL = "https://collector.example.net/v1/tallies"
START = int(T0) // 3600 * 3600  # the hour the fake clock starts in


class Recorder:
    """A Transport that records (url, JSON body) and answers the statuses it is given."""

    def __init__(self, *answers: int) -> None:
        self.answers = list(answers)
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def __call__(self, url: str, body: bytes) -> int:
        with self.lock:
            self.posts.append((url, json.loads(body)))
            return self.answers.pop(0) if self.answers else 202


def _verdict(
    reason: Reason, rule: DomainRule | None = API, host: str = "a.api.example.com"
) -> Verdict:
    return Verdict(host=host, allowed=True, reason=reason, rule=rule, chain=(b"\x30",))


CONN = Connection("a.api.example.com", 443, (b"\x30",))


def _tally(clock: FakeClock, transport: Recorder, **kwargs: Any) -> VerdictTally:
    kwargs.setdefault("jitter", lambda: 0.0)
    return VerdictTally(
        url=URL,
        clock=clock,
        transport=transport,
        app_id="com.example.app",
        app_version="2.4.1",
        **kwargs,
    )


def test_counts_each_reason_per_domain_and_sends_the_interval_once_it_ends() -> None:
    clock, sent = FakeClock(), Recorder()
    tally = _tally(clock, sent, pin_set_version=7)
    for reason in ("pinned", "pinned", "pin-mismatch", "report-only-mismatch", "policy-expired"):
        tally(_verdict(reason), CONN)
    tally(_verdict("pinned", CDN, "cdn.example.com"), CONN)
    # Not counted: no pinning traffic, or a failure of the check itself.
    tally(_verdict("not-pinned", None), CONN)
    tally(_verdict("internal-error"), CONN)
    tally(_verdict("no-verified-chain"), CONN)
    assert tally.flush(10)
    assert sent.posts == []  # the hour has not ended
    clock.now = START + 3600
    assert tally.flush(10)
    [(url, body)] = sent.posts
    assert url == URL
    assert body == {
        "app_id": "com.example.app",
        "app_version": "2.4.1",
        "pin_set_version": "7",
        "interval_start": START,
        "interval_seconds": 3600,
        "domains": [
            # The rule's name, never the connected host: a.api.example.com is not sent.
            {
                "domain": "api.example.com",
                "pinned": 2,
                "mismatch": 1,
                "report_only_mismatch": 1,
                "expired": 1,
            },
            {
                "domain": "cdn.example.com",
                "pinned": 1,
                "mismatch": 0,
                "report_only_mismatch": 0,
                "expired": 0,
            },
        ],
    }
    assert "a.api.example.com" not in json.dumps(sent.posts)
    stats = tally.stats
    assert (stats.counted, stats.sent, stats.pending) == (6, 1, 0)
    assert tally.close(10)
    assert len(sent.posts) == 1  # nothing left to send


def test_a_verdict_in_a_later_interval_sends_the_earlier_one() -> None:
    clock, sent = FakeClock(), Recorder()
    tally = _tally(clock, sent, interval=600)
    start = int(T0) // 600 * 600
    tally(_verdict("pinned"), CONN)
    clock.now = start + 600 + 1
    tally(_verdict("pin-mismatch"), CONN)
    assert tally.flush(10)
    assert [b["interval_start"] for _, b in sent.posts] == [start]
    assert sent.posts[0][1]["domains"][0]["pinned"] == 1
    assert tally.close(10)  # close sends the open interval too
    assert [b["interval_start"] for _, b in sent.posts] == [start, start + 600]
    assert sent.posts[1][1]["domains"][0]["mismatch"] == 1
    assert sent.posts[1][1]["interval_seconds"] == 600


def test_each_pin_set_version_is_its_own_batch() -> None:
    clock, sent = FakeClock(), Recorder()
    versions = iter(["3", "3", "4"])
    tally = _tally(clock, sent, pin_set_version=lambda: next(versions))
    for _ in range(3):
        tally(_verdict("pinned"), CONN)
    assert tally.close(10)
    counts = {b["pin_set_version"]: b["domains"][0]["pinned"] for _, b in sent.posts}
    assert counts == {"3": 2, "4": 1}


def test_no_version_is_null_and_a_failing_version_source_counts_as_none() -> None:
    clock, sent = FakeClock(), Recorder()

    def broken() -> str:
        raise RuntimeError("store unreadable")

    tally = _tally(clock, sent, pin_set_version=broken)
    tally(_verdict("pinned"), CONN)
    assert tally.close(10)
    assert sent.posts[0][1]["pin_set_version"] is None


def test_a_503_is_retried_after_its_retry_after_on_the_tally_clock() -> None:
    clock, sent = FakeClock(), Recorder(CollectorStatus(503, retry_after=30.0))
    tally = _tally(clock, sent)
    tally(_verdict("pinned"), CONN)
    clock.now = START + 3600
    assert tally.flush(10)
    assert (tally.stats.failed, tally.stats.pending, len(sent.posts)) == (1, 1, 1)
    clock.advance(29)
    assert tally.flush(10)
    assert len(sent.posts) == 1  # Retry-After not over yet
    clock.advance(2)
    assert tally.flush(10)
    assert len(sent.posts) == 2
    assert sent.posts[0][1] == sent.posts[1][1]  # the same batch, not a new count
    stats = tally.stats
    assert (stats.sent, stats.retried, stats.pending) == (1, 1, 0)
    tally.close(10)


@pytest.mark.parametrize("status", [400, 401, 413])
def test_a_refusal_is_not_retried(status: int) -> None:
    clock, sent = FakeClock(), Recorder(status)
    tally = _tally(clock, sent)
    tally(_verdict("pinned"), CONN)
    assert tally.close(10)
    assert (tally.stats.failed, tally.stats.given_up, len(sent.posts)) == (1, 1, 1)


def test_an_unreachable_collector_is_retried_then_given_up() -> None:
    clock = FakeClock()
    calls: list[str] = []

    def down(url: str, body: bytes) -> int:
        calls.append(url)
        raise OSError("connection refused")

    tally = VerdictTally(
        url=URL,
        clock=clock,
        transport=down,
        jitter=lambda: 0.0,
        retry=RetryPolicy(attempts=2, base_delay=5, max_delay=5),
    )
    tally(_verdict("pinned"), CONN)
    clock.now = START + 3600
    assert tally.flush(10)
    clock.advance(5)
    assert tally.flush(10)
    assert len(calls) == 2
    assert (tally.stats.failed, tally.stats.given_up, tally.stats.pending) == (2, 1, 0)
    tally.close(10)


def test_closing_gives_up_waiting_retries_and_drops_later_verdicts() -> None:
    clock, sent = FakeClock(), Recorder(503)
    tally = _tally(clock, sent)
    tally(_verdict("pinned"), CONN)
    assert tally.close(10)
    tally(_verdict("pinned"), CONN)
    stats = tally.stats
    assert (stats.given_up, stats.dropped, stats.pending) == (1, 1, 0)


def test_domains_over_the_bound_are_dropped_and_counted() -> None:
    clock, sent = FakeClock(), Recorder()
    tally = _tally(clock, sent, max_domains=1)
    tally(_verdict("pinned"), CONN)
    tally(_verdict("pinned", CDN, "cdn.example.com"), CONN)
    tally(_verdict("pinned"), CONN)  # a domain already counted still counts
    assert (tally.stats.counted, tally.stats.dropped) == (2, 1)
    tally.close(10)
    assert [d["domain"] for d in sent.posts[0][1]["domains"]] == ["api.example.com"]


def test_the_observer_never_blocks_on_a_slow_collector() -> None:
    clock, release = FakeClock(), threading.Event()

    def slow(url: str, body: bytes) -> int:
        release.wait(10)
        return 202

    tally = VerdictTally(url=URL, clock=clock, transport=slow)
    tally(_verdict("pinned"), CONN)
    clock.now = START + 3600
    tally(_verdict("pinned"), CONN)  # hands the first hour to the sender, which now waits
    tally(_verdict("pinned"), CONN)  # returns although the sender is stuck
    assert tally.stats.counted == 3
    release.set()
    assert tally.close(10)
    assert tally.stats.sent == 2


def test_the_tally_url_comes_from_the_report_uri() -> None:
    policy = Policy(rules=(API,), report_uris=("https://c.example.net/pins/v1/report",))
    assert tally_url(policy) == "https://c.example.net/pins/v1/tallies"
    assert VerdictTally(policy).url == "https://c.example.net/pins/v1/tallies"
    ruled = Policy(
        rules=(DomainRule("a.example", pins=PINS, report_uris=("http://127.0.0.1:9/v1/report",)),)
    )
    assert tally_url(ruled) == "http://127.0.0.1:9/v1/tallies"


@pytest.mark.parametrize(
    "uris", [(), ("https://report-uri.example/r/d/hpkp/enforce",), ("https://c.example/reports",)]
)
def test_no_collector_report_uri_asks_for_the_url(uris: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError, match="tally URL"):
        VerdictTally(Policy(rules=(API,), report_uris=uris))


@pytest.mark.parametrize("interval", [0, 59, 86401, 90.5])
def test_the_interval_is_whole_seconds_in_range(interval: float) -> None:
    with pytest.raises(ValueError, match="interval"):
        VerdictTally(url=URL, interval=interval)
