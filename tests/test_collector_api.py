"""The collector's HTTP API on SQLite and on a real PostgreSQL (FastAPI TestClient)."""
# ruff: noqa: F811 - the fixtures imported from collector_fixtures are redefined as parameters

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from collector_fixtures import (  # noqa: F401 - fixtures
    AUTH,
    PIN_A,
    PIN_B,
    TOKEN,
    FakeClock,
    MakeClient,
    api,
    clock,
    db_url,
    make_client,
    make_report,
    pems_of,
    report_leaf,
    rogue_leaf,
)
from pinset import spki_pin
from pinset.collector import Settings, create_app
from pinset.testing import LeafCert

PIN_C = 'pin-sha256="ABLAqJIk3urpGsNkGlgoL8thTseIbwA0ZYAgSc8IyOM="'
PIN_OLD = 'pin-sha256="7rVtaR3WNFgRNQpUvqE5BDJHyhMlSo9IwS5e9/i3mlI="'


def _reports(api: TestClient, **params: Any) -> list[dict[str, Any]]:
    response = api.get("/v1/reports", params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_rfc7469_and_trustkit_variants_are_accepted(
    api: TestClient, make_report: Callable[..., dict[str, Any]]
) -> None:
    rfc = make_report(**{"app-platform": None, "validation-result": None})
    for key in ("app-bundle-id", "app-version", "app-platform", "enforce-pinning"):
        rfc.pop(key)
    ios = make_report(hostname="ios.example.com", **{"trustkit-version": "3.0.3"})
    ios.pop("served-certificate-chain")  # TrustKit iOS sends only the validated chain
    android = make_report(hostname="android.example.com", **{"app-platform": "ANDROID"})
    android["validation-result"] = 2
    for body in (rfc, ios, android):
        response = api.post("/v1/report", json=body)
        assert response.status_code == 202, response.text
        assert response.json() == {"status": "accepted", "new": True}
    by_host = {r["hostname"]: r for r in _reports(api)}
    assert by_host["api.example.com"]["variant"] == "rfc7469"
    assert by_host["ios.example.com"]["variant"] == "trustkit-ios"
    assert by_host["ios.example.com"]["extra"] == {"trustkit-version": "3.0.3"}
    assert by_host["ios.example.com"]["served_chain"] is not None  # from the validated chain
    assert by_host["android.example.com"]["variant"] == "trustkit-android"
    assert by_host["android.example.com"]["validation_result"] == "chain-not-trusted"
    assert by_host["api.example.com"]["known_pins"] == sorted(
        [PIN_A, make_report()["known-pins"][1]]
    )


def test_identical_reports_are_counted_not_stored_twice(
    api: TestClient, make_report: Callable[..., dict[str, Any]], clock: FakeClock
) -> None:
    for minute in range(3):  # only the time differs
        body = make_report(**{"date-time": f"2026-11-18T10:0{minute}:00Z"})
        assert api.post("/v1/report", json=body).json()["new"] is (minute == 0)
        clock.advance(60)
    [row] = _reports(api)
    assert row["count"] == 3
    assert row["last_seen"] > row["first_seen"]
    clock.advance(86400)  # the next day starts a new row
    assert api.post("/v1/report", json=make_report()).json()["new"] is True
    assert [r["count"] for r in _reports(api)] == [1, 3]
    metrics = api.get("/metrics", headers=AUTH).text
    assert "pinset_reports_stored_total 2" in metrics
    assert "pinset_reports_deduplicated_total 2" in metrics
    assert "pinset_reports_received_total 4" in metrics


def test_a_202_survives_the_process(
    make_client: MakeClient, make_report: Callable[..., dict[str, Any]]
) -> None:
    first = make_client()
    assert first.post("/v1/report", json=make_report()).status_code == 202
    first.__exit__(None, None, None)
    second = make_client()
    assert [r["count"] for r in _reports(second)] == [1]


def test_two_collectors_share_one_database(
    make_client: MakeClient, make_report: Callable[..., dict[str, Any]]
) -> None:
    one, two = make_client(), make_client(migrate=True)
    for i in range(6):
        assert (one if i % 2 else two).post("/v1/report", json=make_report()).status_code == 202
    assert [r["count"] for r in _reports(one)] == [6]
    summary = two.get("/v1/summary", headers=AUTH).json()
    assert summary["total"] == 6


@pytest.mark.parametrize(
    ("body", "reason", "needle"),
    [
        (b"{not json", "bad-json", "not JSON"),
        (b"[1, 2]", "not-an-object", "JSON object"),
        (b"\xff\xfe", "bad-json", "not JSON"),
        (b"[" * 100000 + b"]" * 100000, "too-large", "at most"),
    ],
)
def test_bodies_that_are_not_reports(
    api: TestClient, body: bytes, reason: str, needle: str
) -> None:
    response = api.post("/v1/report", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 413)
    assert response.json()["error"] == reason
    assert needle in response.json()["detail"]


@pytest.mark.parametrize(
    ("change", "reason", "needle"),
    [
        ({"port": "443"}, "invalid-field", "'port'"),
        ({"port": 70000}, "invalid-field", "not a TCP port"),
        ({"hostname": None}, "missing-field", "'hostname' is required"),
        ({"include-subdomains": "yes"}, "invalid-field", "true or false"),
        ({"known-pins": ["sha1/AAAA"]}, "bad-pin", "not SHA-256"),
        ({"known-pins": ['pin-sha256="d6qz-u9z"']}, "bad-pin", "not base64"),
        ({"known-pins": ['pin-sha256="AAAA"']}, "bad-pin", "32-byte"),
        (
            {
                "served-certificate-chain": [
                    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
                ]
            },
            "bad-certificate",
            "does not parse",
        ),
        ({"validated-certificate-chain": "pem"}, "invalid-field", "list of PEM"),
        ({"validation-result": 9}, "invalid-field", "TrustKit result"),
        ({"date-time": "yesterday"}, "invalid-field", "RFC 3339"),
        ({"port": -1}, "invalid-field", "not a TCP port"),
    ],
)
def test_invalid_fields_are_400_with_the_reason(
    api: TestClient,
    make_report: Callable[..., dict[str, Any]],
    change: dict[str, Any],
    reason: str,
    needle: str,
) -> None:
    body = make_report()
    body.update(change)
    response = api.post("/v1/report", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == reason
    assert needle in response.json()["detail"]
    assert (
        f'pinset_reports_rejected_total{{reason="{reason}"}} 1'
        in api.get("/metrics", headers=AUTH).text
    )


def test_body_over_64_kib_is_413_by_header_and_by_stream(
    api: TestClient, make_report: Callable[..., dict[str, Any]]
) -> None:
    big = json.dumps(make_report(padding="x" * 70_000)).encode()
    assert api.post("/v1/report", content=big).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the size is counted while reading
        for i in range(0, len(big), 4096):
            yield big[i : i + 4096]

    response = api.post("/v1/report", content=chunks())
    assert response.status_code == 413
    assert _reports(api) == []
    small = json.dumps(make_report()).encode()
    assert api.post("/v1/report", content=iter([small[:100], small[100:]])).status_code == 202


def test_rate_limit_per_client_address(
    make_client: MakeClient, make_report: Callable[..., dict[str, Any]]
) -> None:
    api = make_client(rate_per_second=0.001, rate_burst=2)
    codes = [api.post("/v1/report", json=make_report()).status_code for _ in range(4)]
    assert codes == [202, 202, 429, 429]
    assert "pinset_reports_rate_limited_total 2" in api.get("/metrics", headers=AUTH).text


@pytest.mark.parametrize(
    "path", ["/v1/summary", "/v1/reports", "/v1/chains", "/v1/alerts", "/metrics"]
)
def test_read_side_needs_the_token(api: TestClient, path: str) -> None:
    assert api.get(path).status_code == 401
    assert api.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert api.get(path, headers={"Authorization": TOKEN}).status_code == 401
    assert api.get(path, headers=AUTH).status_code == 200


def test_no_token_configured_means_no_reads(make_client: MakeClient) -> None:
    api = make_client(token=None)
    assert api.get("/v1/summary", headers={"Authorization": "Bearer "}).status_code == 401


def _seed(api: TestClient, make_report: Callable[..., dict[str, Any]], clock: FakeClock) -> None:
    plan = [
        ("api.example.com", "2.4.1", 1, 3),
        ("api.example.com", "2.5.0", 1, 2),
        ("login.example.com", "2.5.0", 2, 1),
        ("cdn.example.com", "2.5.0", 1, 1),
    ]
    for host, version, result, hours_ago in plan:
        clock.now -= hours_ago * 3600
        body = make_report(hostname=host, **{"app-version": version, "validation-result": result})
        assert api.post("/v1/report", json=body).status_code == 202
        clock.now += hours_ago * 3600


def test_summary_per_domain_version_result_and_hour(
    api: TestClient, make_report: Callable[..., dict[str, Any]], clock: FakeClock
) -> None:
    _seed(api, make_report, clock)
    s = api.get("/v1/summary", headers=AUTH).json()
    assert s["total"] == 4
    assert s["by_domain"][0] == {"hostname": "api.example.com", "count": 2}
    assert {d["app_version"]: d["count"] for d in s["by_app_version"]} == {"2.5.0": 3, "2.4.1": 1}
    assert {d["validation_result"]: d["count"] for d in s["by_validation_result"]} == {
        "pin-mismatch": 3,
        "chain-not-trusted": 1,
    }
    assert sum(b["count"] for b in s["by_time"]) == 4
    assert len(s["by_time"]) == 3  # 3 h, 2 h and 1 h ago
    api_series = next(x for x in s["series"] if x["hostname"] == "api.example.com")
    assert [p["count"] for p in api_series["points"]] == [1, 1]
    recent = api.get("/v1/summary", params={"since": str(int(clock.now) - 3600)}, headers=AUTH)
    assert recent.json()["total"] == 2  # the hour bucket of 1 h ago and the current one
    day = api.get("/v1/summary", params={"bucket": "day"}, headers=AUTH).json()
    assert sum(b["count"] for b in day["by_time"]) == 4
    assert api.get("/v1/summary", params={"since": "never"}, headers=AUTH).status_code == 400
    assert api.get("/v1/summary", params={"bucket": "week"}, headers=AUTH).status_code == 422


def test_reports_are_paged_and_filtered(
    api: TestClient, make_report: Callable[..., dict[str, Any]], clock: FakeClock
) -> None:
    _seed(api, make_report, clock)
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/v1/reports", params=params, headers=AUTH).json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 4
    assert seen == sorted(seen, reverse=True)
    assert {r["hostname"] for r in _reports(api, hostname="API.example.com")} == {"api.example.com"}
    assert len(_reports(api, app_version="2.5.0")) == 3
    assert [r["hostname"] for r in _reports(api, validation_result="chain-not-trusted")] == [
        "login.example.com"
    ]
    assert len(_reports(api, since=str(int(clock.now) - 2 * 3600 - 1))) == 3
    assert len(_reports(api, until=str(int(clock.now) - 2 * 3600))) == 1


def test_top_chains_name_the_pins(
    api: TestClient,
    make_report: Callable[..., dict[str, Any]],
    report_leaf: LeafCert,
    rogue_leaf: LeafCert,
    clock: FakeClock,
) -> None:
    forged = pems_of(rogue_leaf)
    # Before the window: its pins are not the window's.
    old = make_report(port=999, **{"served-certificate-chain": forged, "known-pins": [PIN_OLD]})
    assert api.post("/v1/report", json=old).status_code == 202
    clock.advance(3 * 86400)
    known = ([PIN_A, PIN_B], [PIN_A, PIN_C], [PIN_B])  # three app builds, three pin sets
    for i, pins in enumerate(known):
        body = make_report(
            port=1000 + i, **{"served-certificate-chain": forged, "known-pins": pins}
        )
        assert api.post("/v1/report", json=body).status_code == 202
    assert api.post("/v1/report", json=make_report()).status_code == 202
    since = str(int(clock.now) - 86400)
    items = api.get("/v1/chains", params={"since": since}, headers=AUTH).json()["items"]
    assert [i["count"] for i in items] == [3, 1]
    top = items[0]
    assert top["hostnames"] == ["api.example.com"]
    assert top["known_pins"] == sorted([PIN_A, PIN_B, PIN_C])  # the union, not PIN_OLD
    assert top["members"][0]["pin"] == str(spki_pin(rogue_leaf.cert))
    assert "api.example.com" in top["members"][0]["subject"]
    assert top["members"][0]["issuer"] == rogue_leaf.cert.issuer.rfc4514_string()
    assert "rogue interception CA" in top["members"][0]["issuer"]
    assert top["members"][0]["pem"].startswith("-----BEGIN CERTIFICATE-----")
    genuine = items[1]
    assert genuine["known_pins"] == sorted([PIN_A, PIN_B])
    assert genuine["members"][0]["pin"] == str(spki_pin(report_leaf.cert))
    assert [m["issuer"] for m in genuine["members"]] == [
        c.issuer.rfc4514_string() for c in report_leaf.chain
    ]
    everything = api.get("/v1/chains", params={"since": "0"}, headers=AUTH).json()["items"]
    assert PIN_OLD in everything[0]["known_pins"]


def test_alerts_when_a_domain_exceeds_the_threshold_in_the_last_hour(
    make_client: MakeClient, make_report: Callable[..., dict[str, Any]], clock: FakeClock
) -> None:
    api = make_client(alert_threshold=2)
    for port in (1, 2, 3):
        assert api.post("/v1/report", json=make_report(port=port)).status_code == 202
    assert api.post("/v1/report", json=make_report(hostname="quiet.example.com")).status_code == 202
    alerts = api.get("/v1/alerts", headers=AUTH).json()
    assert alerts["threshold"] == 2
    assert alerts["alerts"] == [{"hostname": "api.example.com", "count": 3}]
    clock.advance(3700)
    assert api.get("/v1/alerts", headers=AUTH).json()["alerts"] == []


def test_openapi_schema_describes_the_api(api: TestClient) -> None:
    schema = api.get("/openapi.json").json()
    assert {
        "/v1/report",
        "/v1/summary",
        "/v1/reports",
        "/v1/chains",
        "/v1/alerts",
        "/metrics",
    } <= set(schema["paths"])
    body = schema["paths"]["/v1/report"]["post"]["requestBody"]["content"]["application/json"]
    assert "hostname" in body["schema"]["properties"]
    assert any(
        s.get("scheme") == "bearer" for s in schema["components"]["securitySchemes"].values()
    )


def test_the_documented_route_answers_like_the_fast_path(
    db_url: str, make_report: Callable[..., dict[str, Any]]
) -> None:
    from fastapi import FastAPI

    from pinset.collector._routes import router

    full = create_app(Settings(db_url=db_url, token=TOKEN, rate_per_second=0))
    bare = FastAPI()  # the router alone, without the IngestFastPath middleware
    bare.state.collector = full.state.collector
    bare.include_router(router)
    try:
        with TestClient(bare) as client:
            assert client.post("/v1/report", json=make_report()).json() == {
                "status": "accepted",
                "new": True,
            }
            refused = client.post("/v1/report", content=b"{")
            assert (refused.status_code, refused.json()["error"]) == (400, "bad-json")
            assert client.post("/v1/report", content=b"x" * 70_000).status_code == 413
            assert [r["count"] for r in _reports(client)] == [1]
    finally:
        # `full`'s lifespan never runs (only `bare` is served): do its shutdown here,
        # or the engine's pooled psycopg connections are left open.
        full.state.collector.writer.stop()
        full.state.collector.engine.dispose()
