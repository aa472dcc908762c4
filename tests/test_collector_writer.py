"""The batching writer: commit before acknowledge, and one bad report never fails its batch."""
# ruff: noqa: F811 - the fixtures imported from collector_fixtures are redefined as parameters

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from collector_fixtures import (  # noqa: F401 - fixtures
    commit_in_one_batch,
    db_url,
    make_report,
    report_leaf,
)
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
    plug = normalize(make_report(port=3), received=1_795_000_000)
    results = commit_in_one_batch(BatchWriter(engine), plug, [good[0], bad, good[1]])
    assert results[0] == WriteResult(new=True)
    assert results[2] == WriteResult(new=True)
    assert isinstance(results[1], TypeError)
    with engine.connect() as conn:  # the plug and the two good ones
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM reports").scalar_one() == 3
    engine.dispose()


@pytest.mark.parametrize("text", ["a\x00b", "tab\there", "\ud800"])
def test_text_the_database_could_not_store_is_refused_up_front(
    make_report: Callable[..., dict[str, Any]], text: str
) -> None:
    from pinset.collector._normalize import ReportError

    with pytest.raises(ReportError, match=r"control character|not valid Unicode"):
        normalize(make_report(**{"app-version": text}), received=1)
