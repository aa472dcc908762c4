"""De-duplication: identical reports within 24 h of the first stored one are one counted row.

The window slides from the row's first occurrence (not the UTC calendar day), on SQLite
and on PostgreSQL, and holds when several writers (collector processes) share a database.
"""
# ruff: noqa: F811 - the fixtures imported from collector_fixtures are redefined as parameters

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from collector_fixtures import (  # noqa: F401 - fixtures
    AUTH,
    FakeClock,
    HeldCommits,
    api,
    clock,
    commit_in_one_batch,
    db_url,
    make_client,
    make_report,
    report_leaf,
)
from pinset.collector._db import create_engine, migrate
from pinset.collector._normalize import normalize
from pinset.collector._writer import DEDUP_WINDOW, BatchWriter, WriteResult

MIDNIGHT = 1_795_046_400  # 2026-11-19T00:00:00Z


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


def test_one_batch_that_spans_the_end_of_a_window_splits_it(
    db_url: str, make_report: Callable[..., dict[str, Any]]
) -> None:
    engine = create_engine(db_url)
    migrate(engine)
    writer = BatchWriter(engine)
    body = make_report()
    times = (MIDNIGHT, MIDNIGHT + 10, MIDNIGHT + DEDUP_WINDOW, MIDNIGHT + DEDUP_WINDOW + 5)
    plug = normalize(make_report(port=1), received=MIDNIGHT)
    results = commit_in_one_batch(writer, plug, [normalize(body, received=t) for t in times])
    assert results == [WriteResult(new=n) for n in (True, False, True, False)]
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT first_seen, last_seen, count FROM reports WHERE port = 443 ORDER BY first_seen"
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
        b_results.append(asyncio.run(writer_b.write(report)))
        b_done.set()

    loop = asyncio.new_event_loop()
    a_result: asyncio.Future[WriteResult] = loop.create_future()
    with HeldCommits(engine_a) as held:
        writer_a.submit(report, (loop, a_result))
        assert held.reached.wait(30)  # A wrote its row and waits at COMMIT
        thread = threading.Thread(target=run_b)
        thread.start()
        # B cannot finish while A's transaction holds the key, however long we wait.
        assert not b_done.wait(0.5)
    loop.run_until_complete(asyncio.wait([a_result], timeout=30))
    loop.close()
    assert a_result.result() == WriteResult(new=True)  # A inserted the row
    thread.join(60)
    assert b_results == [WriteResult(new=False)]
    with engine_a.connect() as conn:
        rows = conn.execute(sa.text("SELECT count FROM reports")).scalars().all()
    assert rows == [2]
    writer_a.stop()
    writer_b.stop()
    engine_a.dispose()
    engine_b.dispose()
