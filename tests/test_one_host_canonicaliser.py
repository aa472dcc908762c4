"""One host canonicaliser: the audit, the reporter and the collector use
:func:`pinset.hosts.canonical_host`, so ``Bücher.example`` has one name everywhere."""

# ruff: noqa: F811 - the fixtures imported from collector_fixtures are redefined as parameters
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from collector_fixtures import make_report, report_leaf  # noqa: F401 - fixtures
from pinset.audit import audit
from pinset.collector import Settings, create_app
from pinset.collector._normalize import ReportError, normalize
from pinset.reporting import is_loopback_host

NOW = dt.datetime(2026, 12, 6, tzinfo=dt.timezone.utc)
UNPADDED = "sha256/n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg"
PADDED = "sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


def _toml(name: str) -> bytes:
    # Expiring within the warning horizon (a rule finding placed by the rule's line)
    # and one unpadded pin (a finding placed by the pin as written).
    return (
        f'[[domain]]\nname = "{name}"\nexpiration = 2026-12-20\npins = ["{UNPADDED}", "{PADDED}"]\n'
    ).encode()


def _json(name: str) -> bytes:
    entry = {"name": name, "expiration": "2026-12-20", "pins": [UNPADDED, PADDED]}
    return json.dumps({"domain": [entry]}, indent=2).encode()


@pytest.mark.parametrize(
    ("written", "pattern"),
    [
        ("Bücher.example", "xn--bcher-kva.example"),
        ("BÜCHER.example.", "xn--bcher-kva.example"),
        ("**.bücher.example", "xn--bcher-kva.example"),
        ("*.Bücher.example", "*.xn--bcher-kva.example"),
    ],
)
@pytest.mark.parametrize("shape", ["toml", "json"])
def test_a_non_ascii_domain_is_reported_under_one_name_with_lines(
    written: str, pattern: str, shape: str
) -> None:
    name = f"pinset.{shape}"
    data = _toml(written) if shape == "toml" else _json(written)
    report = audit([(name, data)], now=NOW)
    found = {(f.id, f.domain) for f in report.findings}
    assert found == {("pin-set-expiring", pattern), ("non-canonical-pin", pattern)}
    assert all(f.line is not None for f in report.findings), report.findings
    assert report.domains == ((name, pattern),)


# -- reporting: which report URIs are this machine (reached without a proxy) ------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("LOCALHOST.", True),
        ("\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54", True),  # fullwidth
        ("api.localhost", True),
        ("127.000.000.001", True),  # OpenSSL and the resolver read it as 127.0.0.1
        ("[::1]", True),
        ("localhost.example.com", False),
        ("a..localhost", False),
        ("", False),
    ],
)
def test_loopback_hosts_are_judged_on_the_canonical_name(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


# -- collector: a report's host names ------------------------------------------------------


def test_collector_stores_report_hosts_in_canonical_form(
    make_report: Callable[..., dict[str, Any]],
) -> None:
    report = make_report(hostname="API.Bücher.example.", **{"noted-hostname": "Bücher.example"})
    got = normalize(report, received=1)
    assert (got.hostname, got.noted_hostname) == (
        "api.xn--bcher-kva.example",
        "xn--bcher-kva.example",
    )


@pytest.mark.parametrize("field", ["hostname", "noted-hostname"])
def test_collector_refuses_a_report_host_that_is_no_host_name(
    make_report: Callable[..., dict[str, Any]], field: str
) -> None:
    with pytest.raises(ReportError, match=f"field '{field}' is not a host name: .*empty label"):
        normalize(make_report(**{field: "api..example.com"}), received=1)


def test_collector_filter_by_a_non_ascii_host_finds_its_reports(
    tmp_path: Path, make_report: Callable[..., dict[str, Any]]
) -> None:
    settings = Settings(db_url=f"sqlite:///{tmp_path / 'c.db'}", token="t", rate_per_second=0)
    with TestClient(create_app(settings)) as client:
        posted = client.post("/v1/report", json=make_report(hostname="Bücher.example"))
        assert posted.status_code == 202, posted.text
        page = client.get(
            "/v1/reports",
            params={"hostname": "BÜCHER.example."},
            headers={"Authorization": "Bearer t"},
        )
    assert page.status_code == 200, page.text
    assert [item["hostname"] for item in page.json()["items"]] == ["xn--bcher-kva.example"]
