"""Hostile reports and queries: nothing a client posts may break a read endpoint."""
# ruff: noqa: F811 - the fixtures imported from collector_fixtures are redefined as parameters

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from collector_fixtures import (  # noqa: F401 - fixtures
    AUTH,
    FakeClock,
    api,
    clock,
    db_url,
    make_client,
    make_report,
    report_leaf,
)
from pinset.collector._extra import MAX_EXTRA_DEPTH, MAX_EXTRA_FIELDS, MAX_EXTRA_TEXT, kept_extra
from pinset.collector._schema import reports

READ_ENDPOINTS = (
    "/v1/reports",
    "/v1/reports?hostname=api.example.com&limit=1",
    "/v1/summary",
    "/v1/summary?bucket=day",
    "/v1/chains",
    "/v1/alerts",
    "/metrics",
    "/healthz",
    "/",
)


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"x": value}
    return value


def _assert_every_read_endpoint_answers(api: TestClient) -> None:
    for path in READ_ENDPOINTS:
        response = api.get(path, headers=AUTH)
        assert response.status_code == 200, (path, response.text[:200])


def test_a_deeply_nested_unknown_field_never_breaks_a_read_endpoint(
    api: TestClient, make_report: Callable[..., dict[str, Any]]
) -> None:
    body = json.dumps(make_report(junk=_nested(300)))
    assert api.post("/v1/report", content=body).status_code == 202
    _assert_every_read_endpoint_answers(api)
    [item] = api.get("/v1/reports", headers=AUTH).json()["items"]
    kept = item["extra"]["junk"]
    assert isinstance(kept, str)
    assert kept.startswith('{"x": {"x":')
    assert len(kept) == MAX_EXTRA_TEXT


def test_a_deep_value_stored_before_the_bound_is_bounded_when_read(
    api: TestClient, make_report: Callable[..., dict[str, Any]]
) -> None:
    """Rows written by an older collector still hold the deep value: reading bounds it."""
    assert api.post("/v1/report", json=make_report()).status_code == 202
    engine: sa.Engine = api.app.state.collector.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(sa.update(reports).values(extra={"junk": _nested(300)}))
    _assert_every_read_endpoint_answers(api)
    [item] = api.get("/v1/reports", headers=AUTH).json()["items"]
    assert isinstance(item["extra"]["junk"], str)


def test_unknown_fields_are_kept_within_bounds() -> None:
    shallow = {"trustkit-version": "3.0.3", "nested": {"a": [1, {"b": None}]}}
    assert kept_extra(shallow) == shallow
    # _nested(n) is n + 1 containers deep, the innermost one empty.
    at_limit = _nested(MAX_EXTRA_DEPTH - 1)
    assert kept_extra({"deep": at_limit})["deep"] == at_limit
    assert isinstance(kept_extra({"deep": _nested(MAX_EXTRA_DEPTH)})["deep"], str)
    long = kept_extra({"long": "y" * 5000})["long"]
    assert isinstance(long, str)
    assert len(long) == MAX_EXTRA_TEXT
    many = kept_extra({f"f{i}": i for i in range(100)})
    assert list(many) == [f"f{i}" for i in range(MAX_EXTRA_FIELDS)]
    bounded = kept_extra({"deep": _nested(300), "big": list(range(2000))})
    assert kept_extra(bounded) == bounded


@pytest.mark.parametrize("value", ["²", "١٢٣", "12³"])
def test_a_non_ascii_digit_since_is_400_not_500(api: TestClient, value: str) -> None:
    """'²'.isdigit() is True but int('²') raises: such a value must take the date path."""
    for path in ("/v1/reports", "/v1/summary", "/v1/chains"):
        response = api.get(path, params={"since": value}, headers=AUTH)
        assert response.status_code == 400, (path, response.text)
        assert "RFC 3339" in response.json()["detail"]
