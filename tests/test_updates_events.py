"""Update events end to end: a refused bundle or a failed check reaches the collector, once.

The client side (:class:`pinset.reporting.UpdateEventReporter`, made by
:class:`pinset.updates.UpdateSource`) with a fake transport and clock; then a real
collector under uvicorn on loopback; then the collector's ``POST /v1/update-events``
refusals and ``GET /v1/update-events`` on SQLite and PostgreSQL.
"""
# ruff: noqa: F811 - the fixtures imported from collector_fixtures are redefined as parameters

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import uvicorn
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from tests._bundles import (
    BACKUP,
    CURRENT,
    ED_KEY,
    EMBEDDED,
    NEW,
    NOW,
    OTHER_ED_KEY,
    bundle,
    public_pem,
    updated,
)

from collector_fixtures import (  # noqa: F401 - fixtures
    AUTH,
    T0,
    FakeClock,
    ReportSink,
    api,
    clock,
    db_url,
    make_client,
    sink,
)
from pinset.collector import Settings, create_app
from pinset.collector import _db as collector_db
from pinset.collector._db import create_engine, migrate
from pinset.errors import ConfigError
from pinset.policy import Policy
from pinset.reporting import (
    EVENT_KEY,
    MAX_DETAIL,
    RetryPolicy,
    UpdateEvent,
    UpdateEventReporter,
    update_events_url,
)
from pinset.updates import REASONS, BundleResult, FetchFailure, UpdateSource

APP = "com.example.app"
ANNOUNCE_PINS = (CURRENT, BACKUP, NEW)
TOKEN = "test-token"


# -- the event ------------------------------------------------------------------------


def refused_event(**fields: Any) -> UpdateEvent:
    values: dict[str, Any] = {
        "kind": "bundle-refused",
        "reason": "rollback",
        "detail": "version 1 is not newer than the stored 2",
        "date_time": NOW,
        "source": "https://pins.example.net/v1/pins/com.example.app",
        "version": 1,
        "app_id": APP,
        "pin_set_version": 2,
        "bundle_sha256": "ab" * 32,
    }
    values.update(fields)
    return UpdateEvent(**values)


def test_the_event_is_a_small_json_object_without_user_data() -> None:
    body = json.loads(refused_event(detail="a\nb\x00c").to_json())
    assert body == {
        EVENT_KEY: "bundle-refused",
        "reason": "rollback",
        "detail": "a b c",  # the collector refuses control characters: the client never sends one
        "version": 1,
        "app-id": APP,
        "source": "https://pins.example.net/v1/pins/com.example.app",
        "date-time": "2026-12-06T12:00:00Z",
        "pin-set-version": 2,
        "bundle-sha256": "ab" * 32,
    }
    long = json.loads(refused_event(detail="x" * 2000).to_json())["detail"]
    assert len(long) == MAX_DETAIL
    assert long.endswith("…")


@pytest.mark.parametrize(
    ("uris", "expected"),
    [
        (("https://c.example.net/v1/report",), "https://c.example.net/v1/update-events"),
        (("http://127.0.0.1:8766/report",), "http://127.0.0.1:8766/update-events"),
        (("https://report-uri.example/r/d/hpkp/enforce",), None),  # not a pinset collector
        (("https://c.example.net/v1/report?x=1",), "https://c.example.net/v1/update-events"),
        ((), None),
    ],
)
def test_the_event_url_follows_the_report_uri(uris: tuple[str, ...], expected: str | None) -> None:
    assert update_events_url(dataclasses.replace(EMBEDDED, report_uris=uris)) == expected


def test_a_reporter_needs_an_http_url() -> None:
    with pytest.raises(ConfigError):
        UpdateEventReporter("file:///tmp/events")


# -- the reporter: dedupe, retry, bound ---------------------------------------------


class Transport:
    """Records each post; answers ``status`` (a list is consumed one answer a post)."""

    def __init__(self, *answers: int) -> None:
        self.answers = list(answers)
        self.posts: list[dict[str, Any]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, uri: str, body: bytes) -> int:
        self.entered.set()
        assert self.gate.wait(30)
        self.posts.append(json.loads(body))
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def reporter(transport: Transport, clock: Monotonic, **options: Any) -> UpdateEventReporter:
    return UpdateEventReporter(
        "http://127.0.0.1:9/v1/update-events",
        transport=transport,
        clock=clock,
        jitter=lambda: 0.0,
        **options,
    )


def test_the_same_event_is_sent_once_a_day() -> None:
    transport, now = Transport(202), Monotonic()
    with reporter(transport, now) as events:
        for _ in range(24):  # the same refusal of the same bytes, hourly
            events(refused_event())
            assert events.flush(10)
            now.now += 3600 - 1
        assert len(transport.posts) == 1
        assert events.stats.deduplicated == 23
        events(refused_event(bundle_sha256="cd" * 32))  # other bytes: another event
        now.now += 60
        events(refused_event())  # a day after the first delivery: sent again
        assert events.flush(10)
        assert [p["bundle-sha256"] for p in transport.posts] == ["ab" * 32, "cd" * 32, "ab" * 32]
        assert events.stats.sent == 3


def test_a_failed_delivery_is_retried_and_its_twins_wait() -> None:
    transport, now = Transport(503, 202), Monotonic()
    with reporter(transport, now, retry=RetryPolicy(base_delay=10, max_delay=10)) as events:
        events(refused_event())
        assert events.flush(10)
        assert events.stats.retrying == 1
        events(refused_event())  # on its way already: not queued twice
        assert events.stats.deduplicated == 1
        now.now += 10
        assert events.flush(10)
        assert (events.stats.sent, events.stats.failed, events.stats.retried) == (1, 1, 1)
        assert len(transport.posts) == 2  # the one event, twice


def test_a_refused_event_is_given_up_not_retried() -> None:
    transport, now = Transport(400), Monotonic()
    with reporter(transport, now) as events:
        events(refused_event())
        assert events.flush(10)
        assert (events.stats.given_up, events.stats.retrying) == (1, 0)
        events(refused_event())  # not delivered: tried again when it happens again
        assert events.flush(10)
        assert len(transport.posts) == 2


def test_the_queue_is_bounded_and_the_call_never_waits_for_the_collector() -> None:
    transport, now = Transport(202), Monotonic()
    transport.gate.clear()  # the collector hangs
    events = reporter(transport, now, queue_size=2)
    try:
        events(refused_event(version=1))
        assert transport.entered.wait(10)  # the sender thread is stuck in the post
        for version in range(2, 6):
            events(refused_event(version=version))  # returns: queue or drop, never wait
        assert events.stats.queued == 3  # the one being sent and two waiting
        assert events.stats.dropped == 2
    finally:
        transport.gate.set()
        assert events.close(10)
    assert [p["version"] for p in transport.posts] == [1, 2, 3]


# -- UpdateSource: which events, to whom ----------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now


def make_source(feed: Path, tmp_path: Path, policy: Policy = EMBEDDED, **options: Any) -> Any:
    options.setdefault("trusted_keys", [public_pem(ED_KEY)])
    options.setdefault("refresh", None)
    options.setdefault("app_id", APP)
    return UpdateSource(feed, store=tmp_path / "state", policy=policy, clock=Clock(), **options)


def with_reports_to(url: str) -> Policy:
    return dataclasses.replace(EMBEDDED, report_uris=(url,))


def test_the_source_makes_the_event_reporter_as_ssl_context_makes_the_report_one(
    tmp_path: Path,
) -> None:
    feed = tmp_path / "bundle.json"
    feed.write_bytes(bundle(updated(pins=ANNOUNCE_PINS), version=2, app_id=APP))
    policy = with_reports_to("http://127.0.0.1:9/v1/report")
    with make_source(feed, tmp_path / "a", policy) as src:
        (default,) = src.observers
        assert isinstance(default, UpdateEventReporter)
        assert default.url == "http://127.0.0.1:9/v1/update-events"
    with make_source(feed, tmp_path / "b", policy, observers=()) as src:
        assert src.observers == ()  # opted out
    with make_source(feed, tmp_path / "c") as src:
        assert src.observers == ()  # no report URI: nowhere to send
    with make_source(
        feed, tmp_path / "d", with_reports_to("https://report-uri.example/r/d/hpkp/enforce")
    ) as src:
        assert src.observers == ()  # not a pinset collector: it would answer 400


def test_observers_see_refusals_and_failures_not_successes(tmp_path: Path) -> None:
    feed = tmp_path / "bundle.json"
    good = bundle(updated(pins=ANNOUNCE_PINS), version=2, app_id=APP)
    feed.write_bytes(good)
    seen: list[UpdateEvent] = []

    def broken(event: UpdateEvent) -> None:
        raise RuntimeError("an observer that fails changes nothing")

    with make_source(feed, tmp_path, observers=[broken, seen.append]) as src:
        assert src.status.version == 2
        assert src.refresh().valid
        assert seen == []
        stale = bundle(updated(pins=ANNOUNCE_PINS), version=1, app_id=APP)
        feed.write_bytes(stale)
        assert src.refresh().reason == "rollback"  # type: ignore[union-attr]
        feed.unlink()
        assert isinstance(src.refresh(), FetchFailure)
        assert src.status.version == 2
    refused, failed = seen
    assert (refused.kind, refused.reason, refused.version, refused.app_id) == (
        "bundle-refused",
        "rollback",
        1,
        APP,
    )
    assert refused.bundle_sha256 == hashlib.sha256(stale).hexdigest()
    assert (refused.source, refused.pin_set_version, refused.date_time) == ("file", 2, NOW)
    assert (failed.kind, failed.reason, failed.version, failed.bundle_sha256) == (
        "fetch-failed",
        "unreadable",
        None,
        None,
    )
    assert failed.detail == "<file>: No such file or directory"  # the path stays on the device
    assert str(tmp_path) not in failed.to_json()


# -- a real collector on loopback ---------------------------------------------------


class LiveCollector:
    """The collector app under uvicorn in a thread, its clock at the bundles' NOW."""

    def __init__(self, db: Path) -> None:
        settings = Settings(db_url=f"sqlite:///{db}", token=TOKEN, rate_per_second=0)
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        app = create_app(settings, clock=lambda: NOW.timestamp())
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn stopped before it started"
            assert time.monotonic() < deadline, "uvicorn did not start in 30 s"
            time.sleep(0.05)

    def events(self) -> Any:
        request = urllib.request.Request(  # noqa: S310 - a loopback http URL
            self.url + "/v1/update-events?since=0", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read())

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.socket.close()


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[LiveCollector]:
    live = LiveCollector(tmp_path / "collector.db")
    try:
        yield live
    finally:
        live.close()


def tampered() -> bytes:
    document = json.loads(bundle(updated(pins=ANNOUNCE_PINS), version=3, app_id=APP))
    payload = bytearray(document["payload"].encode())
    payload[10] ^= 0x01  # one byte of the signed payload
    document["payload"] = payload.decode()
    return json.dumps(document).encode()


REFUSED = {
    "bad-signature": (tampered, None),  # an unverified payload's version is not believed
    "rollback": (lambda: bundle(updated(pins=ANNOUNCE_PINS), version=1, app_id=APP), 1),
    "unknown-key": (
        lambda: bundle(updated(pins=ANNOUNCE_PINS), version=3, key=OTHER_ED_KEY, app_id=APP),
        None,
    ),
}


@pytest.mark.parametrize("reason", list(REFUSED))
def test_a_refused_bundle_reaches_the_collector_once(
    reason: str, tmp_path: Path, collector: LiveCollector
) -> None:
    feed = tmp_path / "bundle.json"
    feed.write_bytes(bundle(updated(pins=ANNOUNCE_PINS), version=2, app_id=APP))
    make, version = REFUSED[reason]
    data = make()
    with make_source(feed, tmp_path, with_reports_to(collector.url + "/v1/report")) as src:
        before = src.policy
        feed.write_bytes(data)
        for _ in range(3):  # the same bytes at every check
            result = src.refresh()
            assert isinstance(result, BundleResult)
            assert result.reason == reason
        assert src.policy == before  # nothing changed
        (events,) = src.observers
        assert events.flush(10)  # type: ignore[attr-defined]
        assert events.stats.sent == 1  # type: ignore[attr-defined]
    answer = collector.events()
    assert answer["total"] == 1
    assert answer["by_app_and_reason"] == [
        {
            "app_id": APP,
            "kind": "bundle-refused",
            "reason": reason,
            "count": 1,
            "last_seen": "2026-12-06T12:00:00Z",
        }
    ]
    (row,) = answer["items"]
    assert row["version"] == version
    assert row["pin_set_version"] == 2
    assert row["bundle_sha256"] == hashlib.sha256(data).hexdigest()
    assert row["source"] == "file"
    assert row["detail"] == result.detail


def test_a_failed_check_reaches_the_collector_once(
    tmp_path: Path, collector: LiveCollector
) -> None:
    feed = tmp_path / "bundle.json"  # never written: every check fails
    with make_source(feed, tmp_path, with_reports_to(collector.url + "/v1/report")) as src:
        for _ in range(3):
            assert isinstance(src.refresh(), FetchFailure)
        assert src.observers[0].flush(10)  # type: ignore[attr-defined]
    (row,) = collector.events()["items"]
    assert (row["kind"], row["reason"], row["version"], row["pin_set_version"]) == (
        "fetch-failed",
        "unreadable",
        None,
        None,
    )
    assert row["app_id"] == APP
    assert row["count"] == 1


def test_a_hanging_collector_does_not_hold_the_check(
    tmp_path: Path,
    sink: ReportSink,
) -> None:
    sink.gate.clear()  # the collector takes the post and never answers
    feed = tmp_path / "bundle.json"
    with make_source(feed, tmp_path, with_reports_to(sink.url)) as src:
        assert sink.received.wait(10)  # the first check's failure is being posted
        feed.write_bytes(bundle(updated(pins=ANNOUNCE_PINS), version=2, app_id=APP))
        assert src.refresh().valid  # while the post hangs, the check goes on
        feed.write_bytes(b"not a bundle")
        assert src.refresh().reason == "malformed"  # type: ignore[union-attr]
        assert not sink.gate.is_set()  # the collector has not answered yet
        assert src.status.version == 2
        sink.gate.set()
        assert src.observers[0].flush(10)  # type: ignore[attr-defined]
    assert [(b[EVENT_KEY], b["reason"]) for b in sink.bodies] == [
        ("fetch-failed", "unreadable"),
        ("bundle-refused", "malformed"),
    ]


# -- the collector's side --------------------------------------------------------------


def event_body(**fields: Any) -> dict[str, Any]:
    body = json.loads(
        refused_event(date_time=dt.datetime.fromtimestamp(T0, dt.timezone.utc)).to_json()
    )
    body.update(fields)
    return body


BAD_BODIES: list[tuple[Any, str]] = [
    ([], "an update event is a JSON object"),
    ({"hostname": "api.example.com"}, "an update event has the key 'pinset-update-event'"),
    (event_body(**{EVENT_KEY: "pin-changed"}), "must be one of bundle-refused, fetch-failed"),
    (event_body(reason="timeout"), "'reason' of a bundle-refused event must be one of"),
    (event_body(reason=None), "'reason' of a bundle-refused event must be one of"),
    (
        event_body(**{EVENT_KEY: "fetch-failed", "reason": "rollback"}),
        "'reason' of a fetch-failed event must be one of",
    ),
    (
        event_body(**{EVENT_KEY: "fetch-failed", "reason": "timeout"}),
        "a fetch-failed event has no bundle",
    ),
    (event_body(**{"bundle-sha256": None}), "names the refused bytes"),
    (event_body(**{"bundle-sha256": "AB" * 32}), "64 lowercase hex digits"),
    (event_body(source="http://pins.example.net/"), "must be an https:// URL or"),
    (event_body(source=None), "field 'source' is required"),
    (event_body(detail="x" * (MAX_DETAIL + 1)), "longer than 500 characters"),
    (event_body(detail="a\u0000b"), "contains a control character"),
    (event_body(version=True), "must be an integer from 1 to 2**63-1"),
    (event_body(version=0), "must be an integer from 1 to 2**63-1"),
    (event_body(**{"pin-set-version": 1.5}), "must be an integer from 1 to 2**63-1"),
    (event_body(**{"app-id": 7}), "field 'app-id' must be a string"),
    (event_body(**{"date-time": "yesterday"}), "is not an RFC 3339 date-time"),
    (event_body(**{"date-time": "2026-11-18T10:00:00"}), "must carry a UTC offset"),
    (event_body(**{"date-time": "2027-11-18T10:00:00Z"}), "more than a day ahead"),
    ({**event_body(), **{f"x{i}": i for i in range(40)}}, "unknown fields"),
]


@pytest.mark.parametrize(("body", "message"), BAD_BODIES, ids=[m for _, m in BAD_BODIES])
def test_a_malformed_event_is_refused_with_400(api: TestClient, body: Any, message: str) -> None:
    answer = api.post("/v1/update-events", json=body)
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["detail"]
    rows = api.get("/v1/update-events", headers=AUTH, params={"since": "0"}).json()
    assert rows["items"] == []


def test_not_json_and_too_large_are_refused(api: TestClient) -> None:
    assert api.post("/v1/update-events", content=b"{").json()["error"] == "bad-json"
    big = api.post("/v1/update-events", content=b" " * 70_000)
    assert (big.status_code, big.json()["error"]) == (413, "too-large")


def test_events_are_counted_per_hour_and_read_with_the_token(
    api: TestClient, clock: FakeClock
) -> None:
    assert api.post("/v1/update-events", json=event_body()).json() == {
        "status": "accepted",
        "new": True,
    }
    assert api.post("/v1/update-events", json=event_body(detail="again")).json()["new"] is False
    failed = event_body(
        **{EVENT_KEY: "fetch-failed", "reason": "timeout", "version": None, "bundle-sha256": None}
    )
    assert api.post("/v1/update-events", json=failed).status_code == 202
    clock.advance(3600)
    assert api.post("/v1/update-events", json=event_body()).json()["new"] is True
    assert api.get("/v1/update-events").status_code == 401
    answer = api.get("/v1/update-events", headers=AUTH, params={"since": "0"}).json()
    assert answer["total"] == 4
    assert [(r["kind"], r["reason"], r["count"]) for r in answer["by_app_and_reason"]] == [
        ("bundle-refused", "rollback", 3),
        ("fetch-failed", "timeout", 1),
    ]
    assert [(r["reason"], r["count"], r["detail"]) for r in answer["items"]] == [
        ("rollback", 1, "version 1 is not newer than the stored 2"),
        ("timeout", 1, "version 1 is not newer than the stored 2"),
        ("rollback", 2, "again"),
    ]
    page = api.get(
        "/v1/update-events",
        headers=AUTH,
        params={"since": "0", "limit": 1, "kind": "bundle-refused"},
    ).json()
    assert [r["reason"] for r in page["items"]] == ["rollback"]
    more = api.get(
        "/v1/update-events",
        headers=AUTH,
        params={"since": "0", "limit": 1, "kind": "bundle-refused", "cursor": page["next_cursor"]},
    ).json()
    assert [r["count"] for r in more["items"]] == [2]
    assert set(REASONS) >= {r["reason"] for r in answer["items"] if r["kind"] == "bundle-refused"}


def test_0005_adds_the_event_table_and_its_downgrade_drops_it(db_url: str) -> None:
    engine = create_engine(db_url)
    config = Config()
    config.set_main_option("script_location", str(collector_db.MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0004")
    assert "update_events" not in sa.inspect(engine).get_table_names()
    migrate(engine)
    inspector = sa.inspect(engine)
    indexes = {i["name"]: i for i in inspector.get_indexes("update_events")}
    assert indexes["ux_update_events_key_hour"]["unique"]
    assert indexes["ux_update_events_key_hour"]["column_names"] == ["dedup_key", "hour"]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO update_events (dedup_key, hour, first_seen, last_seen, count, kind,"
                " reason, detail, date_time, source) VALUES ('k', 0, 1, 1, 1, 'fetch-failed',"
                " 'timeout', '', 1, 'file')"
            )
        )
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0004")
    assert "update_events" not in sa.inspect(engine).get_table_names()
    assert "verdict_tallies" in sa.inspect(engine).get_table_names()
    engine.dispose()
