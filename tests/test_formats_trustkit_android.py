"""TrustKit-Android: the network security config read the way TrustKit reads it."""

from __future__ import annotations

import hashlib

import pytest

from pinset.errors import ConfigError
from pinset.formats._android import trustkit_android
from pinset.formats._model import ExportError, ExportWarning
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


def test_nested_trustkit_config_follows_trustkit_android_s_parser() -> None:
    # TrustKitConfigurationParser: each <trustkit-config> gets enforcePinning = false unless
    # it says otherwise and its own report-uri set; DomainPinningPolicy.Builder inherits a
    # setting from the parent only where the child left it null (disableDefaultReportUri,
    # or everything when the child has no <trustkit-config> at all).
    nested = (
        "<domain-config><domain>api.example.com</domain><trustkit-config /></domain-config>"
        "<domain-config><domain>cdn.example.com</domain></domain-config>"
    )
    text = config(
        '<trustkit-config enforcePinning="true" disableDefaultReportUri="true">'
        "<report-uri>https://r.example.net/a</report-uri></trustkit-config>",
        nested,
    )
    rules = {r.name: r for r in trustkit_android.loads(text).policy.rules}
    assert rules["api.example.com"].enforce is False  # not inherited: no enforcePinning
    assert rules["api.example.com"].report_uris == ()  # not inherited; default still off
    assert rules["cdn.example.com"].enforce is True  # no trustkit-config: all inherited
    assert rules["cdn.example.com"].report_uris == ("https://r.example.net/a",)


def test_a_typo_trustkit_skips_imports_its_effective_value_with_a_did_you_mean() -> None:
    # TrustKit reads enforcePinning by name, so enforcePinnign leaves it false; the six
    # pinned domains still load.
    domains = "".join(
        f'<domain-config><domain includeSubdomains="true">d{n}.example.com</domain>'
        f'<pin-set><pin digest="SHA-256">{P1.b64}</pin><pin digest="SHA-256">{P2.b64}</pin>'
        '</pin-set>\n<trustkit-config enforcePinnign="true" disableDefaultReportUri="true" />'
        "</domain-config>"
        for n in range(6)
    )
    text = f"<network-security-config>{domains}</network-security-config>"
    imported = trustkit_android.loads(text, source="tk.xml")
    assert len(imported.policy.rules) == 6
    assert all(r.enforce is False for r in imported.policy.rules)
    typos = [f for f in imported.findings if f.id == "ignored-attribute"]
    assert [(f.severity, f.line) for f in typos] == [("warning", n + 2) for n in range(6)]
    assert typos[0].fix == "did you mean 'enforcePinning'?"
    assert "'enforcePinnign'" in typos[0].message


def test_trustkit_reads_booleans_with_java_s_parse_boolean() -> None:
    imported = trustkit_android.loads(config('<trustkit-config enforcePinning="True" />'))
    assert imported.policy.rules[0].enforce is True
    (found,) = [f for f in imported.findings if f.id == "ignored-attribute"]
    assert "as true" in found.message


def test_trustkit_config_errors() -> None:
    skipped = trustkit_android.loads(
        config("<trustkit-config><report-url>x</report-url></trustkit-config>")
    )
    assert "ignored-element" in {f.id for f in skipped.findings}
    with pytest.raises(ConfigError, match="is empty"):
        trustkit_android.loads(
            config("<trustkit-config><report-uri> </report-uri></trustkit-config>")
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
