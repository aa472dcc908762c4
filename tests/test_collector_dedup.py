"""De-duplication: identical reports within 24 h of the first stored one are one counted row.

The window slides from the row's first occurrence (not the UTC calendar day), on SQLite
and on PostgreSQL, and holds when several writers (collector processes) share a database.
"""
# ruff: noqa: F811 - the fixtures imported from collector_fixtures are redefined as parameters

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from collector_fixtures import FakeClock, clock, db_url, make_report, report_leaf  # noqa: F401
from pinset.collector import Settings, create_app
from pinset.collector._db import create_engine, migrate
from pinset.collector._normalize import NormalizedReport, normalize
from pinset.collector._writer import DEDUP_WINDOW, BatchWriter, WriteResult

TOKEN = "dedup-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MIDNIGHT = 1_795_046_400  # 2026-11-19T00:00:00Z


@pytest.fixture
def api(db_url: str, clock: FakeClock) -> Iterator[TestClient]:
    app = create_app(Settings(db_url=db_url, token=TOKEN, rate_per_second=0), clock=clock)
    with TestClient(app) as client:
        yield client


def _counts(api: TestClient) -> list[int]:
    items = api.get("/v1/reports", headers=AUTH).json()["items"]
    return [int(r["count"]) for r in items]


def test_a_duplicate_across_midnight_is_counted_not_stored(
    api: TestClient, make_report: Callable[..., dict[str, Any]], clock: FakeClock
) -> None:
    clock.now = MIDNIGHT - 60  # 23:59 UTC
    assert api.post("/v1/report", json=make_report()).json()["new"] is True
    clock.now = MIDNIGHT + 60  # 00:01 UTC, the next calendar day
    assert api.post("/v1/report", json=make_report()).json()["new"] is False
    assert _counts(api) == [2]


def test_the_window_is_24_hours_from_the_first_stored_report(
    api: TestClient, make_report: Callable[..., dict[str, Any]], clock: FakeClock
) -> None:
    start = MIDNIGHT - 3600
    clock.now = start
    assert api.post("/v1/report", json=make_report()).json()["new"] is True
    clock.now = start + DEDUP_WINDOW - 1  # the last second of the window
    assert api.post("/v1/report", json=make_report()).json()["new"] is False
    clock.now = start + DEDUP_WINDOW  # 24 h after the first: a new row, a new window
    assert api.post("/v1/report", json=make_report()).json()["new"] is True
    clock.now = start + DEDUP_WINDOW + 3600  # a repeat counts on the newest row
    assert api.post("/v1/report", json=make_report()).json()["new"] is False
    assert _counts(api) == [2, 2]
    metrics = api.get("/metrics", headers=AUTH).text
    assert "pinset_reports_stored_total 2" in metrics
    assert "pinset_reports_deduplicated_total 2" in metrics


def _settle(writer: BatchWriter, batch: list[NormalizedReport]) -> list[WriteResult]:
    """Commit ``batch`` as one writer-thread batch and return each report's result."""
    loop = asyncio.new_event_loop()
    try:
        futures = [loop.create_future() for _ in batch]
        writer._commit([(r, (loop, f)) for r, f in zip(batch, futures, strict=True)])
        loop.run_until_complete(asyncio.wait(futures, timeout=30))
        return [f.result() for f in futures]
    finally:
        loop.close()


def test_one_batch_that_spans_the_end_of_a_window_splits_it(
    db_url: str, make_report: Callable[..., dict[str, Any]]
) -> None:
    engine = create_engine(db_url)
    migrate(engine)
    writer = BatchWriter(engine)
    body = make_report()
    times = (MIDNIGHT, MIDNIGHT + 10, MIDNIGHT + DEDUP_WINDOW, MIDNIGHT + DEDUP_WINDOW + 5)
    results = _settle(writer, [normalize(body, received=t) for t in times])
    assert [r.new for r in results] == [True, False, True, False]
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT first_seen, last_seen, count FROM reports ORDER BY first_seen"
        ).all()
    assert [tuple(r) for r in rows] == [
        (MIDNIGHT, MIDNIGHT + 10, 2),
        (MIDNIGHT + DEDUP_WINDOW, MIDNIGHT + DEDUP_WINDOW + 5, 2),
    ]
    engine.dispose()


def test_two_writers_on_one_database_store_one_row(
    db_url: str, make_report: Callable[..., dict[str, Any]]
) -> None:
    """Writer A holds its transaction open; writer B's identical report must wait for it.

    Without a per-key lock (PostgreSQL) or an immediate write transaction (SQLite), B
    would not see A's uncommitted row and would insert a second one.
    """
    engine_a, engine_b = create_engine(db_url), create_engine(db_url)
    migrate(engine_a)
    writer_a, writer_b = BatchWriter(engine_a), BatchWriter(engine_b)
    report = normalize(make_report(), received=MIDNIGHT)
    b_results: list[WriteResult] = []
    b_done = threading.Event()

    def run_b() -> None:
        b_results.extend(_settle(writer_b, [report]))
        b_done.set()

    with engine_a.begin() as conn:
        writer_a._sql.begin(conn)
        groups = writer_a._write(conn, writer_a._by_key([(report, _NO_WAITER)])).groups
        assert [g.row_id for g in groups] == [None]  # A inserts the row
        thread = threading.Thread(target=run_b)
        thread.start()
        # B cannot finish while A's transaction holds the key, however long we wait.
        assert not b_done.wait(0.5)
    thread.join(60)
    assert b_results == [WriteResult(new=False)]
    with engine_a.connect() as conn:
        rows = conn.execute(sa.text("SELECT count FROM reports")).scalars().all()
    assert rows == [2]
    engine_a.dispose()
    engine_b.dispose()


_NO_WAITER: Any = (None, None)
