"""TrustKit-Android: the network security config read the way TrustKit reads it."""

from __future__ import annotations

import hashlib

import pytest

from pinset.errors import ConfigError
from pinset.formats import trustkit_android
from pinset.formats.model import ExportError, ExportWarning
from pinset.pins import Pin
from pinset.policy import DomainRule, Policy

P1, P2 = (Pin(hashlib.sha256(b"tk %d" % n).digest()) for n in (1, 2))
DEFAULT = trustkit_android.TRUSTKIT_DEFAULT_REPORT_URI


def config(trustkit: str, nested: str = "") -> str:
    return (
        "<network-security-config><domain-config>"
        '<domain includeSubdomains="true">example.com</domain>'
        f'<pin-set><pin digest="SHA-256">{P1.b64}</pin>'
        f'<pin digest="SHA-256">{P2.b64}</pin></pin-set>'
        f"{trustkit}{nested}</domain-config></network-security-config>"
    )


def test_enforce_and_report_uris_come_from_trustkit_config() -> None:
    text = config(
        '<trustkit-config enforcePinning="true" disableDefaultReportUri="true">'
        "<report-uri>https://r.example.net/a</report-uri><report-uri>https://r.example.net/b</report-uri>"
        "</trustkit-config>"
    )
    (rule,) = trustkit_android.loads(text).policy.rules
    assert rule.enforce is True
    assert rule.report_uris == ("https://r.example.net/a", "https://r.example.net/b")


def test_trustkit_defaults_report_only_and_default_report_uri() -> None:
    imported = trustkit_android.loads(config("<trustkit-config/>"), source="tk.xml")
    (rule,) = imported.policy.rules
    assert rule.enforce is False
    assert rule.report_uris == (DEFAULT,)
    ids = {f.id: f for f in imported.findings}
    assert ids["trustkit-default-report-uri"].severity == "info"
    assert ids["trustkit-report-only"].severity == "warning"
    assert "Android 7.0+" in ids["trustkit-report-only"].message


def test_nested_config_inherits_each_trustkit_setting() -> None:
    nested = (
        "<domain-config><domain>api.example.com</domain>"
        '<trustkit-config enforcePinning="false" /></domain-config>'
    )
    text = config(
        '<trustkit-config enforcePinning="true" disableDefaultReportUri="true">'
        "<report-uri>https://r.example.net/a</report-uri></trustkit-config>",
        nested,
    )
    rules = {r.name: r for r in trustkit_android.loads(text).policy.rules}
    assert rules["api.example.com"].enforce is False
    # The nested trustkit-config lists no URIs: TrustKit takes the nearest block's set.
    assert rules["api.example.com"].report_uris == ()


def test_trustkit_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown attribute 'enforcePining'") as info:
        trustkit_android.loads(config('<trustkit-config enforcePining="true"/>'))
    assert info.value.hint == "did you mean 'enforcePinning'?"
    with pytest.raises(ConfigError, match="<report-url> is not allowed"):
        trustkit_android.loads(
            config("<trustkit-config><report-url>x</report-url></trustkit-config>")
        )
    with pytest.raises(ConfigError, match="not an http"):
        trustkit_android.loads(
            config(
                '<trustkit-config disableDefaultReportUri="true">'
                "<report-uri>mailto:x</report-uri></trustkit-config>"
            )
        )


EXPECTED = f"""<?xml version="1.0" encoding="utf-8"?>
<network-security-config>
    <domain-config>
        <domain includeSubdomains="true">example.com</domain>
        <pin-set>
            <pin digest="SHA-256">{P1.b64}</pin>
            <pin digest="SHA-256">{P2.b64}</pin>
        </pin-set>
        <trustkit-config enforcePinning="false" disableDefaultReportUri="true">
            <report-uri>https://r.example.net/?a=1&amp;b=2</report-uri>
        </trustkit-config>
        <domain-config>
            <domain includeSubdomains="false">static.example.com</domain>
            <pin-set />
            <trustkit-config enforcePinning="false" disableDefaultReportUri="true" />
        </domain-config>
    </domain-config>
</network-security-config>
"""


def sample() -> Policy:
    return Policy(
        rules=(
            DomainRule(
                "example.com",
                pins=(P1, P2),
                include_subdomains=True,
                enforce=False,
                report_uris=("https://r.example.net/?a=1&b=2",),
            ),
            DomainRule("static.example.com", exclude=True),
        )
    )


def test_export_text_round_trip_and_report_only_warning() -> None:
    with pytest.warns(ExportWarning, match="Android 7.0\\+ enforces the pin-set itself"):
        text = trustkit_android.dumps(sample())
    assert text == EXPECTED
    assert trustkit_android.loads(text).policy == sample()


def test_export_refuses_a_single_pin_trustkit_would_reject() -> None:
    policy = Policy(rules=(DomainRule("a.example", pins=(P1,), allow_single_pin=True),))
    with pytest.raises(ExportError, match="fewer than two pins"):
        trustkit_android.dumps(policy)


def test_sniff_needs_a_trustkit_config() -> None:
    assert trustkit_android.sniff(EXPECTED.encode())
    assert not trustkit_android.sniff(b"<network-security-config/>")
