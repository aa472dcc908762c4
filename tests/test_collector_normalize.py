"""pinset.collector._normalize: one model for RFC 7469, TrustKit and pinset reports (pure)."""
# ruff: noqa: F811 - the fixtures imported from collector_fixtures are redefined as parameters

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from collector_fixtures import make_report, report_leaf  # noqa: F401 - fixtures
from pinset import DomainRule, Pin, Policy, evaluate
from pinset.collector._normalize import (
    ReportError,
    certificate_facts,
    normalize,
    parse_known_pin,
    validation_result_name,
)
from pinset.enforce import Connection
from pinset.reporting import FailureReport
from pinset.testing import TestPKI
from test_der import openssl_pin, openssl_self_signed


def test_a_pinset_client_report_round_trips(pki: TestPKI) -> None:
    leaf = pki.leaf("api.example.com")
    ders = [c.public_bytes(Encoding.DER) for c in (leaf.cert, pki.intermediate.cert)]
    pins = (Pin(os.urandom(32)), Pin(os.urandom(32)))
    policy = Policy(rules=(DomainRule("api.example.com", pins=pins, enforce=False),))
    now = dt.datetime(2026, 11, 18, 10, 0, tzinfo=dt.timezone.utc)
    verdict = evaluate(policy, "api.example.com", ders, now=now)
    sent = FailureReport.from_verdict(verdict, Connection("api.example.com", 443, tuple(ders)))
    got = normalize(sent.to_dict(), received=1)
    assert got.validation_result == "report-only-mismatch"
    assert got.variant == "pinset"
    assert got.date_time == int(now.timestamp())
    assert got.enforce_pinning is False
    assert got.known_pins == tuple(sorted(f'pin-sha256="{p.b64}"' for p in pins))
    assert got.served_chain == sent.served_certificate_chain
    assert got.extra == {}


def test_dedup_key_ignores_time_and_pin_spelling(
    make_report: Callable[..., dict[str, Any]],
) -> None:
    one = make_report()
    two = make_report(**{"date-time": "2026-11-18T23:59:59Z"})
    unpadded = [p.rstrip('"').rstrip("=") + '"' for p in two["known-pins"]]
    two["known-pins"] = unpadded[::-1]  # order and padding do not matter
    assert two["known-pins"] != one["known-pins"]
    assert normalize(one, received=1).dedup_key == normalize(two, received=2).dedup_key
    three = make_report(**{"app-version": "3.0"})
    assert normalize(one, received=1).dedup_key != normalize(three, received=1).dedup_key


@pytest.mark.parametrize(
    ("value", "reason", "name"),
    [
        (0, None, "success"),
        (1, None, "pin-mismatch"),
        (2, None, "chain-not-trusted"),
        (5, None, "spki-hash-error"),
        (None, None, "pin-mismatch"),
        (1, "report-only-mismatch", "report-only-mismatch"),
        ("chain-not-trusted", None, "chain-not-trusted"),
    ],
)
def test_validation_result_names(value: object, reason: object, name: str) -> None:
    assert validation_result_name(value, reason) == name


@pytest.mark.parametrize("value", [True, 6, -1, "bogus", 1.0, [1]])
def test_bad_validation_results(value: object) -> None:
    with pytest.raises(ReportError):
        validation_result_name(value)


@pytest.mark.parametrize(
    ("fields", "stored"),
    [
        # RFC 7469 client in report-only mode: no validation-result at all.
        ({"enforce-pinning": False}, "report-only-mismatch"),
        # TrustKit iOS and Android in report-only mode send 1 (no matching pin)
        # with enforce-pinning false, and let the connection through.
        ({"enforce-pinning": False, "validation-result": 1}, "report-only-mismatch"),
        (
            {"enforce-pinning": False, "validation-result": 1, "app-platform": "ANDROID"},
            "report-only-mismatch",
        ),
        # TrustKit blocks an untrusted chain even in report-only mode: no relabelling.
        ({"enforce-pinning": False, "validation-result": 2}, "chain-not-trusted"),
        ({"enforce-pinning": True}, "pin-mismatch"),
        ({}, "pin-mismatch"),  # enforce-pinning absent: RFC 7469 reports are enforced ones
        ({"enforce-pinning": True, "validation-result": 1}, "pin-mismatch"),
    ],
)
def test_report_only_mismatches_are_told_apart(
    make_report: Callable[..., dict[str, Any]], fields: dict[str, Any], stored: str
) -> None:
    body = make_report()
    for key in ("validation-result", "enforce-pinning", "app-platform"):
        body.pop(key)
    body.update(fields)
    assert normalize(body, received=1).validation_result == stored


def test_known_pin_spellings() -> None:
    b64 = "d6qzRu9zOECb90Uez27xWltNsj0e1Md7GkYYkVoZWmM="
    canonical = f'pin-sha256="{b64}"'
    for text in (canonical, f"sha256/{b64}", f'pin-sha256="{b64.rstrip("=")}"', f" {canonical} "):
        assert parse_known_pin(text) == canonical
    for bad in ('pin-sha256="d6qz-u9z"', "md5/AAAA", ""):
        with pytest.raises(ReportError):
            parse_known_pin(bad)


def test_hostnames_are_lower_case_without_the_trailing_dot(
    make_report: Callable[..., dict[str, Any]],
) -> None:
    got = normalize(make_report(hostname="API.Example.COM."), received=1)
    assert got.hostname == "api.example.com"


@pytest.mark.parametrize(
    ("name", "keygen"),
    [
        ("rsa-pss", [["genpkey", "-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048"]]),
        ("ec-explicit", [["ecparam", "-name", "prime256v1", "-param_enc", "explicit", "-genkey"]]),
    ],
)
def test_chain_pins_are_cut_from_the_certificate_like_every_pinset_pin(
    name: str, keygen: list[list[str]], tmp_path: Path
) -> None:
    """A served chain's pins must be the ones clients pin, also where re-encoding differs."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl binary")
    cert_path = openssl_self_signed(tmp_path, name, keygen)
    if cert_path is None:
        pytest.skip(f"this openssl cannot make a {name} certificate")
    pin, _subject = certificate_facts(cert_path.read_text())
    assert pin == "sha256/" + openssl_pin(cert_path)
