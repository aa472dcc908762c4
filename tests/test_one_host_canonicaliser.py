"""The auditor names a domain once, in the form :func:`pinset.hosts.canonical_host` gives it."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from pinset.audit import audit

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
