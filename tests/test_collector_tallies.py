"""POST /v1/tallies, failure rates, rate alerts and /v1/adoption on SQLite and PostgreSQL."""
# ruff: noqa: F811 - the fixtures imported from collector_fixtures are redefined as parameters

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from collector_fixtures import (  # noqa: F401 - fixtures
    AUTH,
    T0,
    FakeClock,
    MakeClient,
    api,
    clock,
    db_url,
    make_client,
)
from pinset.collector._db import create_engine

HOUR = int(T0) // 3600 * 3600  # the fake clock's current hour
SINCE = {"since": str(HOUR - 86400)}


def _tally(
    *domains: dict[str, Any],
    app_id: str | None = "com.example.app",
    app_version: str | None = "2.4.1",
    pin_set_version: str | None = "7",
    start: int = HOUR,
    seconds: int = 3600,
) -> dict[str, Any]:
    return {
        "app_id": app_id,
        "app_version": app_version,
        "pin_set_version": pin_set_version,
        "interval_start": start,
        "interval_seconds": seconds,
        "domains": list(domains) or [{"domain": "api.example.com", "pinned": 9, "mismatch": 1}],
    }


def _post(api: TestClient, body: Any) -> Any:
    return api.post("/v1/tallies", content=json.dumps(body).encode())


def _rows(db_url: str) -> int:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM verdict_tallies")).scalar_one())
    finally:
        engine.dispose()


def test_a_tally_is_stored_and_posts_of_one_key_add_up(api: TestClient, db_url: str) -> None:
    answer = _post(api, _tally())
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"status": "accepted", "domains": 1}
    assert _post(api, _tally()).status_code == 202  # a second install, same hour and versions
    assert _rows(db_url) == 1
    rates = api.get("/v1/summary", headers=AUTH, params=SINCE).json()["failure_rates"]
    assert rates["by_domain"] == [
        {"hostname": "api.example.com", "failures": 2, "total": 20, "rate": 0.1}
    ]


def test_failure_rates_per_domain_and_app_version(api: TestClient) -> None:
    # Rate = (mismatch + report-only mismatch) / (pinned + both mismatches + expired).
    _post(api, _tally({"domain": "api.example.com", "pinned": 90, "mismatch": 10}))
    _post(
        api,
        _tally(
            {"domain": "api.example.com", "pinned": 50, "report_only_mismatch": 25, "expired": 25},
            app_version="3.0",
        ),
    )
    _post(api, _tally({"domain": "cdn.example.com", "pinned": 40}))
    rates = api.get("/v1/summary", headers=AUTH, params=SINCE).json()["failure_rates"]
    assert rates["by_domain"] == [
        {"hostname": "api.example.com", "failures": 35, "total": 200, "rate": 0.175},
        {"hostname": "cdn.example.com", "failures": 0, "total": 40, "rate": 0.0},
    ]
    assert rates["by_domain_and_app_version"] == [
        {
            "hostname": "api.example.com",
            "app_version": "3.0",
            "failures": 25,
            "total": 100,
            "rate": 0.25,
        },
        {
            "hostname": "api.example.com",
            "app_version": "2.4.1",
            "failures": 10,
            "total": 100,
            "rate": 0.1,
        },
        {
            "hostname": "cdn.example.com",
            "app_version": "2.4.1",
            "failures": 0,
            "total": 40,
            "rate": 0.0,
        },
    ]


def test_adoption_shares_per_pin_set_and_app_version(api: TestClient) -> None:
    _post(
        api,
        _tally({"domain": "api.example.com", "pinned": 60}, pin_set_version="8", app_version="3.0"),
    )
    _post(
        api, _tally({"domain": "api.example.com", "pinned": 20, "mismatch": 5}, pin_set_version="7")
    )
    _post(api, _tally({"domain": "cdn.example.com", "pinned": 15}, pin_set_version=None))
    _post(api, _tally({"domain": "api.example.com", "pinned": 1000}, app_id="org.other"))
    answer = api.get("/v1/adoption", headers=AUTH, params={"app_id": "com.example.app"})
    assert answer.status_code == 200
    assert answer.json() == {
        "app_id": "com.example.app",
        "since": "2026-11-17T11:06:41Z",  # 24 hours before the end: now + 1 s
        "pin_set_versions": [
            {"version": "8", "share": 0.6, "count": 60},
            {"version": "7", "share": 0.25, "count": 25},
            {"version": "", "share": 0.15, "count": 15},  # the embedded policy
        ],
        "app_versions": [
            {"version": "3.0", "share": 0.6, "count": 60},
            {"version": "2.4.1", "share": 0.4, "count": 40},
        ],
    }
    every = api.get("/v1/adoption", headers=AUTH).json()
    assert every["app_id"] is None
    assert every["pin_set_versions"][0] == {"version": "7", "share": 1025 / 1100, "count": 1025}


def test_adoption_counts_intervals_from_since(api: TestClient) -> None:
    _post(api, _tally(pin_set_version="6", start=HOUR - 2 * 86400))
    _post(api, _tally(pin_set_version="7"))
    shares = api.get("/v1/adoption", headers=AUTH).json()["pin_set_versions"]
    assert [s["version"] for s in shares] == ["7"]
    old = api.get("/v1/adoption", headers=AUTH, params={"since": "2026-11-15T00:00:00Z"}).json()
    assert [s["version"] for s in old["pin_set_versions"]] == ["6", "7"]
    assert old["since"] == "2026-11-15T00:00:00Z"


def test_adoption_of_no_traffic_is_empty(api: TestClient) -> None:
    assert api.get("/v1/adoption", headers=AUTH, params={"app_id": "x"}).json() == {
        "app_id": "x",
        "since": "2026-11-17T11:06:41Z",
        "pin_set_versions": [],
        "app_versions": [],
    }


def test_adoption_needs_the_token(api: TestClient) -> None:
    assert api.get("/v1/adoption").status_code == 401


def test_an_alert_on_the_failure_rate_as_well_as_the_count(
    make_client: MakeClient, clock: FakeClock
) -> None:
    api = make_client(alert_rate=0.2, alert_min_total=50)
    _post(
        api,
        _tally(
            {"domain": "api.example.com", "pinned": 30, "mismatch": 10},
            {"domain": "cdn.example.com", "pinned": 70, "mismatch": 30},
            {"domain": "low.example.com", "pinned": 90, "mismatch": 10},
        ),
    )
    alerts = api.get("/v1/alerts", headers=AUTH).json()
    assert (alerts["rate_threshold"], alerts["rate_min_total"]) == (0.2, 50)
    # api: 25 % but only 40 verdicts; cdn: 30 % of 100; low: 10 %.
    assert alerts["rate_alerts"] == [
        {"hostname": "cdn.example.com", "failures": 30, "total": 100, "rate": 0.3}
    ]
    assert alerts["alerts"] == []  # no failure reports: the count alert is quiet
    clock.advance(2 * 3600 + 1)  # the interval ended more than an hour ago
    assert api.get("/v1/alerts", headers=AUTH).json()["rate_alerts"] == []


def test_a_rate_of_exactly_the_threshold_alerts(make_client: MakeClient) -> None:
    api = make_client(alert_rate=0.5, alert_min_total=2)
    _post(api, _tally({"domain": "api.example.com", "pinned": 1, "report_only_mismatch": 1}))
    assert [a["rate"] for a in api.get("/v1/alerts", headers=AUTH).json()["rate_alerts"]] == [0.5]


@pytest.mark.parametrize(
    ("body", "error", "detail"),
    [
        ([], "not-an-object", "JSON object"),
        (_tally() | {"domains": []}, "invalid-field", "non-empty list"),
        (_tally() | {"domains": "api.example.com"}, "invalid-field", "non-empty list"),
        (_tally({"domain": "api.example.com", "pinned": "3"}), "invalid-field", "JSON integer"),
        (_tally({"domain": "api.example.com", "pinned": "٣"}), "invalid-field", "JSON integer"),
        (_tally({"domain": "api.example.com", "pinned": True}), "invalid-field", "JSON integer"),
        (_tally({"domain": "api.example.com", "pinned": 1.0}), "invalid-field", "JSON integer"),
        (_tally({"domain": "api.example.com", "pinned": -1}), "invalid-field", "from 0"),
        (_tally({"domain": "api.example.com", "mismatch": 10**9 + 1}), "invalid-field", "from 0"),
        (_tally({"domain": "bad host!"}), "invalid-field", "not a host name"),
        (_tally({"domain": ""}), "invalid-field", "host name"),
        (_tally({"domain": "a.example"}, {"domain": "A.example."}), "invalid-field", "twice"),
        (_tally(pin_set_version="v7"), "invalid-field", "ASCII digits"),
        (_tally(pin_set_version="٧"), "invalid-field", "ASCII digits"),
        (_tally(pin_set_version="1" * 33), "invalid-field", "1 to 32"),
        (_tally(app_version="2\n4"), "invalid-field", "printable"),
        (_tally(app_id="x" * 256), "invalid-field", "1 to 255"),
        (_tally(app_id=7), "invalid-field", "string or null"),
        (_tally(seconds=59), "invalid-field", "interval_seconds"),
        (_tally(seconds=86401), "invalid-field", "interval_seconds"),
        (_tally(start=-1), "invalid-field", "interval_start"),
        (_tally(start=HOUR + 3 * 86400), "invalid-field", "interval_start"),
        (_tally() | {"interval_start": "1795000000"}, "invalid-field", "JSON integer"),
        (_tally() | {f"x{i}": 1 for i in range(33)}, "too-many-fields", "33 unknown"),
        (
            _tally({"domain": "a.example", **{f"x{i}": 1 for i in range(33)}}),
            "too-many-fields",
            "domains[0]",
        ),
        (_tally(*({"domain": f"h{i}.example"} for i in range(257))), "too-many-domains", "256"),
    ],
)
def test_a_bad_tally_is_refused_and_nothing_is_stored(
    api: TestClient, db_url: str, body: Any, error: str, detail: str
) -> None:
    answer = _post(api, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == error
    assert detail in answer.json()["detail"]
    assert _rows(db_url) == 0


def test_unknown_fields_within_the_bound_are_ignored(api: TestClient, db_url: str) -> None:
    body = _tally({"domain": "api.example.com", "pinned": 1, "note": "x"}) | {"sdk": "pinset"}
    assert _post(api, body).status_code == 202
    assert _rows(db_url) == 1


def test_not_json_and_too_large_are_refused(make_client: MakeClient, db_url: str) -> None:
    api = make_client(max_body=2048)
    assert api.post("/v1/tallies", content=b"{not json").json()["error"] == "bad-json"
    nested = b"[" * 100_000 + b"]" * 100_000
    assert api.post("/v1/tallies", content=nested).status_code in (400, 413)
    big = _tally(*({"domain": f"h{i}.example", "pinned": 1} for i in range(100)))
    answer = _post(api, big)
    assert (answer.status_code, answer.json()["error"]) == (413, "too-large")
    answer = api.post(
        "/v1/tallies", content=b"{}", headers={"Content-Length": "²".encode("latin-1")}
    )
    assert (answer.status_code, answer.json()["error"]) == (400, "bad-length")
    assert _rows(db_url) == 0


def test_the_tally_endpoint_is_rate_limited_like_reports(make_client: MakeClient) -> None:
    api = make_client(rate_per_second=0.001, rate_burst=1)
    assert _post(api, _tally()).status_code == 202
    answer = _post(api, _tally())
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "1"


def test_the_tally_schema_is_in_the_openapi_document(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    body = paths["/v1/tallies"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["interval_start", "interval_seconds", "domains"]
    assert "/v1/adoption" in paths
