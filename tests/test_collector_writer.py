"""The batching writer: commit before acknowledge, and one bad report never fails its batch."""
# ruff: noqa: F811 - the fixtures imported from collector_fixtures are redefined as parameters

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from collector_fixtures import db_url, make_report, report_leaf  # noqa: F401 - fixtures
from pinset.collector._db import create_engine, migrate
from pinset.collector._normalize import normalize
from pinset.collector._writer import BatchWriter, WriteResult


def test_a_report_the_database_refuses_fails_alone(
    db_url: str, make_report: Callable[..., dict[str, Any]]
) -> None:
    engine = create_engine(db_url)
    migrate(engine)
    good = [normalize(make_report(port=p), received=1_795_000_000) for p in (1, 2)]
    bad = dataclasses.replace(good[0], dedup_key="x" * 64, extra={"unstorable": object()})
    loop = asyncio.new_event_loop()
    try:
        futures = [loop.create_future() for _ in range(3)]
        writer = BatchWriter(engine)
        writer._commit(  # one batch, as the writer thread would take it
            [(r, (loop, f)) for r, f in zip((good[0], bad, good[1]), futures, strict=True)]
        )
        loop.run_until_complete(asyncio.wait(futures, timeout=10))
        assert futures[0].result() == WriteResult(new=True)
        assert futures[2].result() == WriteResult(new=True)
        with pytest.raises(TypeError):
            futures[1].result()
    finally:
        loop.close()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM reports").scalar_one() == 2
    engine.dispose()


@pytest.mark.parametrize("text", ["a\x00b", "tab\there", "\ud800"])
def test_text_the_database_could_not_store_is_refused_up_front(
    make_report: Callable[..., dict[str, Any]], text: str
) -> None:
    from pinset.collector._normalize import ReportError

    with pytest.raises(ReportError, match=r"control character|not valid Unicode"):
        normalize(make_report(**{"app-version": text}), received=1)
