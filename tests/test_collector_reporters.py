"""Every report a known reporter really sends is accepted, stored and readable.

The fixtures in tests/fixtures/reports/ are the bytes TrustKit iOS (each shape it
has had), TrustKit-Android, RFC 7469 section 3 and Chromium POST, built from their
published source (tests/fixtures/README). pinset's own reporter is exercised live.
"""
# ruff: noqa: F811 - the fixtures imported from collector_fixtures are redefined as parameters

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient

from collector_fixtures import AUTH, FakeClock, api, clock, db_url, make_client  # noqa: F401 - fixtures
from pinset import DomainRule, Pin, Policy, evaluate
from pinset.enforce import Connection
from pinset.reporting import FailureReport
from pinset.testing import TestPKI

REPORTS = Path(__file__).parent / "fixtures" / "reports"


# name: (Content-Type the reporter sends, variant, result, port as stored,
#        members of the served chain and of the validated chain as listed)
EXPECTED: dict[str, tuple[str, str, str, int | None, int, int]] = {
    "trustkit-ios-1-first": ("application/json", "trustkit", "pin-mismatch", None, 2, 2),
    "trustkit-ios-1-validation-result": (
        "application/json",
        "trustkit",
        "pin-mismatch",
        None,
        2,
        2,
    ),
    "trustkit-ios-1-vendor-id": ("application/json", "trustkit", "pin-mismatch", None, 2, 2),
    "trustkit-ios-1.3-platform": ("application/json", "trustkit-ios", "pin-mismatch", None, 2, 2),
    "trustkit-ios-3-current": ("application/json", "trustkit-ios", "pin-mismatch", None, 2, 2),
    "trustkit-tvos-3-report-only": (
        "application/json",
        "trustkit-tvos",
        "report-only-mismatch",
        None,
        2,
        2,
    ),
    "trustkit-macos-3-user-anchor": (
        "application/json",
        "trustkit-macos",
        "user-defined-trust-anchor",
        8443,
        2,
        2,
    ),
    "trustkit-android-1-pin-mismatch": (
        "application/json",
        "trustkit-android",
        "pin-mismatch",
        None,
        1,
        2,
    ),
    "trustkit-android-1-chain-not-trusted": (
        "application/json",
        "trustkit-android",
        "chain-not-trusted",
        None,
        1,
        1,
    ),
    "trustkit-android-1-arabic-locale": (
        "application/json",
        "trustkit-android",
        "pin-mismatch",
        None,
        1,
        2,
    ),
    "rfc7469-section-3.1-example": ("application/json", "rfc7469", "pin-mismatch", 443, 1, 2),
    "chromium-hpkp": ("application/json; charset=utf-8", "rfc7469", "pin-mismatch", 443, 1, 2),
}

# BackgroundReporterTask.java: setChunkedStreamingMode(0), so no Content-Length.
CHUNKED = frozenset(name for name in EXPECTED if name.startswith("trustkit-android"))


def _only_report(api: TestClient) -> dict[str, Any]:
    response = api.get("/v1/reports", headers=AUTH)
    assert response.status_code == 200, response.text
    [item] = response.json()["items"]
    assert isinstance(item, dict)
    return item


def test_every_fixture_has_an_expectation() -> None:
    assert {p.stem for p in REPORTS.glob("*.json")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_real_reporters_report_is_accepted_as_sent(api: TestClient, name: str) -> None:
    content_type, variant, result, port, served, validated = EXPECTED[name]
    body = (REPORTS / f"{name}.json").read_bytes()
    # An iterator is sent chunked: in 1 KiB pieces, as a streaming client writes it.
    content = iter([body[i : i + 1024] for i in range(0, len(body), 1024)])
    response = api.post(
        "/v1/report",
        content=content if name in CHUNKED else body,
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 202, response.text
    item = _only_report(api)
    assert (item["hostname"], item["variant"]) == ("api.example.com", variant)
    assert (item["validation_result"], item["port"]) == (result, port)
    # TrustKit iOS sends only the validated chain; the collector shows it as the served one.
    assert len(item["served_chain"]["members"]) == served
    assert len(item["validated_chain"]["members"]) == validated
    assert len(item["known_pins"]) == 2


def test_an_android_date_in_native_digits_is_read_as_the_same_instant(api: TestClient) -> None:
    """A device in an Arabic locale writes the local time with Arabic-Indic digits."""
    body = (REPORTS / "trustkit-android-1-arabic-locale.json").read_bytes()
    assert api.post("/v1/report", content=body).status_code == 202
    # 12:00 at UTC+2 written as Z (TrustKit-Android's local time): stored as written.
    assert _only_report(api)["date_time"] == "2026-11-18T12:00:00Z"


@pytest.mark.parametrize("date", ["2026-11-18T10:00:00Z²", "²⁰²⁶-11-18T10:00:00Z", "yesterday"])
def test_a_date_that_is_not_one_in_any_digits_is_still_refused(api: TestClient, date: str) -> None:
    body = json.loads((REPORTS / "trustkit-ios-3-current.json").read_bytes())
    body["date-time"] = date
    response = api.post("/v1/report", json=body)
    assert response.status_code == 400
    assert "RFC 3339" in response.json()["detail"]


def test_trustkit_port_0_is_stored_as_unknown_and_counted_once(api: TestClient) -> None:
    """Port 0 is "unknown": two reports that differ only by 0 and no port are one report."""
    body = (REPORTS / "trustkit-ios-3-current.json").read_bytes()
    assert api.post("/v1/report", content=body).status_code == 202
    without_port = body.replace(b'"port":0,', b"")
    assert without_port != body
    response = api.post("/v1/report", content=without_port)
    assert response.json() == {"status": "accepted", "new": False}
    assert _only_report(api)["count"] == 2


@pytest.mark.parametrize("port", [-1, 65536])
def test_a_port_outside_0_to_65535_is_still_refused(api: TestClient, port: int) -> None:
    body = (REPORTS / "trustkit-ios-3-current.json").read_bytes()
    response = api.post("/v1/report", content=body.replace(b'"port":0', f'"port":{port}'.encode()))
    assert response.status_code == 400
    assert "not a TCP port" in response.json()["detail"]


def test_a_report_with_both_chains_empty_is_kept(api: TestClient) -> None:
    """TrustKit's result 3 (invalid parameters) may come with no certificate at all."""
    body = (REPORTS / "trustkit-ios-3-current.json").read_text()
    start = body.index('"validated-certificate-chain":[')
    end = body.index("]", start)
    emptied = body[:start] + '"validated-certificate-chain":[' + body[end:]
    emptied = emptied.replace('"validation-result":1', '"validation-result":3')
    response = api.post("/v1/report", content=emptied)
    assert response.status_code == 202, response.text
    item = _only_report(api)
    assert (item["served_chain"], item["validated_chain"]) == (None, None)
    assert item["validation_result"] == "invalid-parameters"


def _pinset_report(pki: TestPKI, *, enforce: bool, verified: bool) -> dict[str, Any]:
    leaf = pki.leaf("api.example.com")
    ders = [c.public_bytes(Encoding.DER) for c in (leaf.cert, pki.intermediate.cert)]
    pins = (Pin(os.urandom(32)), Pin(os.urandom(32)))
    policy = Policy(rules=(DomainRule("api.example.com", pins=pins, enforce=enforce),))
    now = dt.datetime(2026, 11, 18, 10, 0, tzinfo=dt.timezone.utc)
    verdict = evaluate(policy, "api.example.com", ders if verified else [], now=now)
    sent = FailureReport.from_verdict(verdict, Connection("api.example.com", 443, tuple(ders)))
    return sent.to_dict()


@pytest.mark.parametrize(
    ("enforce", "verified", "result", "validated"),
    [
        (True, True, "pin-mismatch", 2),
        (False, True, "report-only-mismatch", 2),
        (True, False, "no-verified-chain", None),
    ],
)
def test_pinsets_own_reporter_is_accepted(
    api: TestClient,
    pki: TestPKI,
    enforce: bool,
    verified: bool,
    result: str,
    validated: int | None,
) -> None:
    body = _pinset_report(pki, enforce=enforce, verified=verified)
    response = api.post("/v1/report", json=body)
    assert response.status_code == 202, response.text
    item = _only_report(api)
    assert (item["variant"], item["validation_result"]) == ("pinset", result)
    chain = item["validated_chain"]
    assert (len(chain["members"]) if chain else None) == validated
