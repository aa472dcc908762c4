"""pinset.reporting._report: the RFC 7469 / TrustKit report built from a verdict."""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from pinset import DomainRule, Pin, Policy, evaluate
from pinset.enforce import Connection
from pinset.reporting import FailureReport, default_reporter, der_to_pem
from pinset.testing import TestPKI

NOW = dt.datetime(2026, 11, 18, 10, 30, 5, 123456, tzinfo=dt.timezone.utc)
WRONG = (Pin(os.urandom(32)), Pin(os.urandom(32)))


def _ders(pki: TestPKI) -> list[bytes]:
    leaf = pki.leaf("api.example.com")
    return [c.public_bytes(Encoding.DER) for c in (leaf.cert, pki.intermediate.cert)]


def _rule(**kw: object) -> DomainRule:
    base: dict[str, object] = {
        "name": "example.com",
        "pins": WRONG,
        "include_subdomains": True,
        "expiration": dt.date(2027, 6, 30),
        "report_uris": ("https://reports.example.net/v1/report",),
    }
    base.update(kw)
    return DomainRule(**base)  # type: ignore[arg-type]


def test_report_has_the_rfc_7469_and_trustkit_fields(pki: TestPKI) -> None:
    ders = _ders(pki)
    verdict = evaluate(Policy(rules=(_rule(),)), "api.example.com", ders, now=NOW)
    assert verdict.reason == "pin-mismatch"
    served = (ders[0],)
    report = FailureReport.from_verdict(
        verdict,
        Connection("api.example.com", 8443, served),
        app_bundle_id="com.example.app",
        app_version="2.4.1",
    )
    data = json.loads(report.to_json())
    assert data["date-time"] == "2026-11-18T10:30:05Z"
    assert data["hostname"] == "api.example.com"
    assert data["port"] == 8443
    assert data["noted-hostname"] == "example.com"
    assert data["include-subdomains"] is True
    assert data["effective-expiration-date"] == "2027-06-30T00:00:00Z"
    assert data["known-pins-expiration-date"] == "2027-06-30"
    assert data["known-pins"] == [f'pin-sha256="{p.b64}"' for p in WRONG]
    assert data["enforce-pinning"] is True
    assert data["validation-result"] == 1
    assert data["pinset-reason"] == "pin-mismatch"
    assert (data["app-bundle-id"], data["app-version"]) == ("com.example.app", "2.4.1")
    # PEM chains read back to the exact DER: the served list and the verified path differ.
    assert len(data["served-certificate-chain"]) == 1
    back = [
        x509.load_pem_x509_certificate(p.encode()).public_bytes(Encoding.DER)
        for p in data["validated-certificate-chain"]
    ]
    assert back == ders


def test_report_only_mismatch_reports_enforce_false(pki: TestPKI) -> None:
    policy = Policy(rules=(_rule(enforce=False),))
    verdict = evaluate(policy, "api.example.com", _ders(pki), now=NOW)
    report = FailureReport.from_verdict(verdict, Connection("api.example.com", None, ()))
    assert verdict.allowed
    assert report.enforce_pinning is False
    assert report.reason == "report-only-mismatch"
    assert report.port == 443


@pytest.mark.parametrize("when", [dt.date(2026, 11, 18), None])
def test_non_failures_are_not_reports(pki: TestPKI, when: dt.date | None) -> None:
    ders = _ders(pki)
    if when is None:  # not pinned
        policy = Policy(rules=(_rule(name="other.example.org", include_subdomains=False),))
    else:  # expired at 00:00 UTC of that date
        policy = Policy(rules=(_rule(expiration=when),))
    verdict = evaluate(policy, "api.example.com", ders, now=NOW)
    assert verdict.reason in ("not-pinned", "policy-expired")
    with pytest.raises(ValueError, match=r"nothing to report|not a pin failure"):
        FailureReport.from_verdict(verdict, Connection("api.example.com", 443, ()))


def test_dedup_key_ignores_the_time_only(pki: TestPKI) -> None:
    ders = _ders(pki)
    policy = Policy(rules=(_rule(),))
    conn = Connection("api.example.com", 443, tuple(ders))
    first = FailureReport.from_verdict(evaluate(policy, "api.example.com", ders, now=NOW), conn)
    later = NOW + dt.timedelta(hours=3)
    again = FailureReport.from_verdict(evaluate(policy, "api.example.com", ders, now=later), conn)
    other_port = FailureReport.from_verdict(
        evaluate(policy, "api.example.com", ders, now=NOW), Connection("api.example.com", 8443, ())
    )
    assert first.date_time != again.date_time
    assert first.dedup_key() == again.dedup_key()
    assert first.dedup_key() != other_port.dedup_key()


def test_der_to_pem_is_standard_pem(pki: TestPKI) -> None:
    der = _ders(pki)[0]
    pem = der_to_pem(der)
    assert all(len(line) <= 64 for line in pem.splitlines())
    assert x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER) == der


def test_default_reporter_needs_report_uris() -> None:
    assert default_reporter(Policy(rules=(_rule(report_uris=()),))) is None
    reporter = default_reporter(Policy(rules=(_rule(),)))
    assert reporter is not None
    reporter.close()
