"""TrustKit for iOS: TSKConfiguration plist import/export and the Swift snippet."""

from __future__ import annotations

import datetime as dt
import hashlib
import plistlib
import warnings
from typing import Any

import pytest

from pinset.audit import imported_findings
from pinset.errors import ConfigError
from pinset.formats._apple import trustkit
from pinset.formats._model import ExportError, ExportWarning, TrustKitSettings
from pinset.pins import Pin
from pinset.policy import DomainRule, Policy

pytestmark = pytest.mark.filterwarnings("error::pinset.formats._model.ExportWarning")

A, B, C = (Pin(hashlib.sha256(f"key-{n}".encode()).digest()) for n in "abc")
PLACEHOLDER = Pin(b"\x01" * 32)
REPORT = "https://pin-reports.example.net/v1/report"


def config(domains: dict[str, Any], **top: Any) -> str:
    """An Info.plist (XML text) with TSKConfiguration holding ``domains``."""
    body: dict[str, Any] = {"TSKSwizzleNetworkDelegates": False, "TSKPinnedDomains": domains}
    body.update(top)
    return plistlib.dumps({"CFBundleName": "Demo", "TSKConfiguration": body}).decode()


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


FULL = config(
    {
        "api.example.com": {
            "TSKPublicKeyHashes": [A.b64, B.b64],
            "TSKIncludeSubdomains": True,
            "TSKEnforcePinning": False,
            "TSKReportUris": [REPORT],
            "TSKDisableDefaultReportUri": True,
            "TSKExpirationDate": "2027-06-30",
        },
        "static.api.example.com": {"kSKExcludeSubdomainFromParentPolicy": True},
        "pay.example.com": {"TSKPublicKeyHashes": [B.b64, C.b64]},
    }
)


def test_import_reads_every_domain_key() -> None:
    imported = trustkit.loads(FULL, source="Info.plist")
    assert imported.policy == Policy(
        rules=(
            DomainRule(
                "api.example.com",
                pins=(A, B),
                include_subdomains=True,
                enforce=False,
                report_uris=(REPORT,),
                expiration=dt.date(2027, 6, 30),
            ),
            DomainRule("static.api.example.com", exclude=True),
            DomainRule("pay.example.com", pins=(B, C), report_uris=(trustkit.DEFAULT_REPORT_URI,)),
        )
    )
    assert imported.lines == {
        name: line_of(FULL, f"<key>{name}</key>")
        for name in ("api.example.com", "static.api.example.com", "pay.example.com")
    }
    assert imported.platform["swizzle_network_delegates"] is False
    by_name = {d.name: d for d in imported.domains}
    assert by_name["api.example.com"].expiration_text == "2027-06-30"
    assert by_name["pay.example.com"].trustkit == TrustKitSettings(
        line=imported.lines["pay.example.com"]
    )
    assert by_name["api.example.com"].trustkit == TrustKitSettings(
        enforce_pinning=False,
        disable_default_report_uri=True,
        report_uris=(REPORT,),
        line=imported.lines["api.example.com"],
    )


def test_default_report_uri_is_made_explicit_with_a_finding() -> None:
    imported = trustkit.loads(FULL)
    ids = {(f.id, f.domain) for f in imported.findings}
    assert ("trustkit-default-report-uri", "pay.example.com") in ids
    assert ("trustkit-default-report-uri", "api.example.com") not in ids
    assert imported.platform["default_report_uri"] == ["pay.example.com"]


def test_export_writes_the_real_exclusion_key_and_disables_the_default_uri() -> None:
    policy = trustkit.loads(FULL).policy
    text = trustkit.dumps(policy)
    assert isinstance(text, str)
    data = plistlib.loads(text.encode())["TSKConfiguration"]
    assert data["TSKSwizzleNetworkDelegates"] is True
    domains = data["TSKPinnedDomains"]
    assert domains["static.api.example.com"] == {"kSKExcludeSubdomainFromParentPolicy": True}
    assert domains["api.example.com"] == {
        "TSKPublicKeyHashes": [A.b64, B.b64],
        "TSKIncludeSubdomains": True,
        "TSKEnforcePinning": False,
        "TSKDisableDefaultReportUri": True,
        "TSKReportUris": [REPORT],
        "TSKExpirationDate": "2027-06-30",
    }
    # The vendor URI is now listed explicitly, so reports still go where they went.
    assert domains["pay.example.com"]["TSKReportUris"] == [trustkit.DEFAULT_REPORT_URI]
    assert trustkit.loads(text).policy == policy
    assert trustkit.dumps(policy, swizzle_network_delegates=False) != text


def test_a_plist_whose_root_is_the_configuration_imports() -> None:
    root = plistlib.loads(FULL.encode())["TSKConfiguration"]
    assert trustkit.loads(plistlib.dumps(root)).policy == trustkit.loads(FULL).policy


def test_binary_round_trip() -> None:
    policy = trustkit.loads(FULL).policy
    data = trustkit.dumps(policy, binary=True)
    assert isinstance(data, bytes)
    assert trustkit.sniff(data)
    assert trustkit.loads(data).policy == policy


@pytest.mark.parametrize(
    ("domain", "key", "hint"),
    [
        ({"TSKIncludeSubdomain": True}, "TSKIncludeSubdomain", "TSKIncludeSubdomains"),
        ({"TSKExcludeSubdomainFromParentPolicy": True}, "TSKExcludeSubdomainFromParentPolicy",
         "kSKExcludeSubdomainFromParentPolicy"),
        ({"TSKReportUri": []}, "TSKReportUri", "TSKReportUris"),
    ],
)  # fmt: skip
def test_unknown_domain_keys_are_skipped_as_trustkit_skips_them(
    domain: dict[str, Any], key: str, hint: str
) -> None:
    # parse_configuration.m reads each key by name: another key leaves the default in place.
    text = config({"a.example.com": {"TSKPublicKeyHashes": [A.b64, B.b64], **domain}})
    imported = trustkit.loads(text, source="Info.plist")
    (rule,) = imported.policy.rules
    assert (rule.include_subdomains, rule.exclude) == (False, False)
    (found,) = [f for f in imported.findings if f.id == "ignored-key"]
    assert (found.severity, found.line) == ("warning", line_of(text, f"<key>{key}</key>"))
    assert f"TSKConfiguration/TSKPinnedDomains/a.example.com/{key}" in found.message
    assert found.fix == f"did you mean {hint!r}?"


def test_unknown_global_key_and_missing_required_keys_are_errors() -> None:
    domains = {"a.example.com": {"TSKPublicKeyHashes": [A.b64, B.b64]}}
    # TrustKit never reads TSKPinnedDomain, so it has no pinned domains and refuses to start.
    with pytest.raises(ConfigError, match="TSKPinnedDomains must be a non-empty") as caught:
        trustkit.loads(config({}, TSKPinnedDomain=domains))
    assert caught.value.hint == "'TSKPinnedDomain' is not read: did you mean 'TSKPinnedDomains'?"
    text = plistlib.dumps({"TSKConfiguration": {"TSKPinnedDomains": domains}}).decode()
    with pytest.raises(ConfigError, match="TSKSwizzleNetworkDelegates must be set"):
        trustkit.loads(text)
    with pytest.raises(ConfigError, match="non-empty"):
        trustkit.loads(config({}))
    with pytest.raises(ConfigError, match="no TSKConfiguration"):
        trustkit.loads(plistlib.dumps({"CFBundleName": "x"}))


@pytest.mark.parametrize("date", ["2027/06/30", "2027-02-30", "30-06-2027", "$(PIN_EXPIRY)"])
def test_bad_expiration_dates_are_errors_at_their_line(date: str) -> None:
    text = config(
        {"a.example.com": {"TSKPublicKeyHashes": [A.b64, B.b64], "TSKExpirationDate": date}}
    )
    with pytest.raises(ConfigError) as caught:
        trustkit.loads(text, source="Info.plist")
    assert caught.value.line == line_of(text, "<key>TSKExpirationDate</key>")
    assert caught.value.key == "TSKExpirationDate"


@pytest.mark.parametrize(
    ("pin", "message"),
    [
        (A.b64.rstrip("="), "padded base64"),
        ("sha256/" + A.b64, "padded base64"),
        (A.b64[:-4], "decodes to"),
        (A.hex, "hex certificate fingerprint"),
    ],
)
def test_pins_trustkit_cannot_decode_are_errors(pin: str, message: str) -> None:
    text = config({"a.example.com": {"TSKPublicKeyHashes": [B.b64, pin]}})
    with pytest.raises(ConfigError, match=message) as caught:
        trustkit.loads(text, source="Info.plist")
    assert caught.value.line == line_of(text, f"<string>{pin}</string>")


def test_pin_counts_follow_trustkit() -> None:
    with pytest.raises(ConfigError, match="1 distinct pin, it needs at least 2"):
        trustkit.loads(config({"a.example.com": {"TSKPublicKeyHashes": [A.b64, A.b64]}}))
    report_only = trustkit.loads(
        config({"a.example.com": {"TSKPublicKeyHashes": [A.b64], "TSKEnforcePinning": False}})
    )
    assert report_only.policy.rules[0].pins == (A,)
    assert not report_only.policy.rules[0].allow_single_pin
    dud = trustkit.loads(
        config({"a.example.com": {"TSKPublicKeyHashes": [A.b64, PLACEHOLDER.b64]}})
    )
    assert dud.policy.rules[0].allow_single_pin
    assert {"missing-backup-pin", "placeholder-pin"} <= {f.id for f in imported_findings(dud)}


def test_a_placeholder_only_domain_is_kept_with_an_error_as_trustkit_accepts_it() -> None:
    # TrustKit's parseTrustKitConfiguration only checks that each hash decodes to 32 bytes
    # and that an enforced domain has two of them: it starts with these and matches nothing.
    bbbb = "B" * 43 + "="
    text = config(
        {
            "a.example.com": {
                "TSKPublicKeyHashes": ["A" * 43 + "=", bbbb],
                "TSKExpirationDate": "2027-06-30",
                "TSKDisableDefaultReportUri": True,
            }
        }
    )
    imported = trustkit.loads(text, source="Info.plist")
    (rule,) = imported.policy.rules
    assert rule.placeholder_only
    assert rule.enforce
    assert rule.expiration == dt.date(2027, 6, 30)
    errors = [f for f in imported_findings(imported) if f.severity == "error"]
    assert [(f.id, f.line) for f in errors] == [
        ("placeholder-pin", line_of(text, "<key>a.example.com</key>"))
    ]
    assert bbbb in errors[0].message
    assert "B" * 42 + "A=" not in errors[0].message
    assert "missing-backup-pin" not in {f.id for f in imported_findings(imported)}


def test_trustkit_reads_the_expiration_date_at_utc_midnight() -> None:
    # parse_configuration.m: an NSDateFormatter with timeZoneForSecondsFromGMT:0.
    (facts, *_) = trustkit.loads(FULL).domains
    midnight = dt.datetime(2027, 6, 30, tzinfo=dt.timezone.utc)
    assert facts.expires_between == (midnight, midnight)


def test_exclusions_follow_trustkit() -> None:
    pinned = {"TSKPublicKeyHashes": [A.b64, B.b64], "TSKIncludeSubdomains": True}
    with pytest.raises(ConfigError, match="also sets TSKPublicKeyHashes"):
        trustkit.loads(
            config(
                {
                    "example.com": pinned,
                    "x.example.com": {
                        "kSKExcludeSubdomainFromParentPolicy": True,
                        "TSKPublicKeyHashes": [A.b64, B.b64],
                    },
                }
            )
        )
    orphan = config(
        {
            "example.com": {**pinned, "TSKIncludeSubdomains": False},
            "x.example.com": {"kSKExcludeSubdomainFromParentPolicy": True},
        }
    )
    with pytest.raises(ConfigError, match="no parent domain") as caught:
        trustkit.loads(orphan)
    assert caught.value.line == line_of(orphan, "<key>x.example.com</key>")


@pytest.mark.parametrize("name", ["10.0.2.2", "localhost", "$(API_HOST).example.com"])
def test_domains_trustkit_rejects_are_errors(name: str) -> None:
    with pytest.raises(ConfigError):
        trustkit.loads(config({name: {"TSKPublicKeyHashes": [A.b64, B.b64]}}))


def test_placeholder_in_a_report_uri_is_an_error() -> None:
    text = config(
        {"a.example.com": {"TSKPublicKeyHashes": [A.b64, B.b64], "TSKReportUris": ["${URL}"]}}
    )
    with pytest.raises(ConfigError, match="placeholder") as caught:
        trustkit.loads(text)
    assert caught.value.line == line_of(text, "${URL}")


def test_legacy_hex_pins_import_with_a_warning_finding() -> None:
    text = plistlib.dumps(
        {"TSKPublicKeyPins": {"www.example.com": [A.hex, B.hex.upper()]}}
    ).decode()
    imported = trustkit.loads(text, source="Info.plist")
    assert imported.policy.rules == (DomainRule("www.example.com", pins=(A, B)),)
    legacy = [f for f in imported.findings if f.id == "legacy-hex-pins"]
    assert len(legacy) == 1
    assert legacy[0].severity == "warning"
    assert legacy[0].line == line_of(text, "TSKPublicKeyPins")
    bad = plistlib.dumps({"TSKPublicKeyPins": {"www.example.com": [A.b64]}})
    with pytest.raises(ConfigError, match="64 hex digits"):
        trustkit.loads(bad)
    both = plistlib.loads(FULL.encode())
    both["TSKPublicKeyPins"] = {"www.example.com": [A.hex]}
    assert "legacy-hex-pins" in {f.id for f in trustkit.loads(plistlib.dumps(both)).findings}


# -- export ---------------------------------------------------------------------


def test_export_errors_for_what_trustkit_refuses() -> None:
    with pytest.raises(ExportError, match="one pin"):
        trustkit.dumps(
            Policy(rules=(DomainRule("a.example.com", pins=(A,), allow_single_pin=True),))
        )
    with pytest.raises(ExportError, match="public suffix"):
        trustkit.dumps(Policy(rules=(DomainRule("10.0.2.2", pins=(A, B)),)))
    orphan = Policy(
        rules=(DomainRule("example.com", pins=(A, B)), DomainRule("x.example.com", exclude=True))
    )
    with pytest.raises(ExportError, match="no parent rule includes subdomains"):
        trustkit.dumps(orphan)


def test_export_warns_where_it_writes_a_safer_equivalent() -> None:
    subtree = Policy(
        rules=(
            DomainRule("example.com", pins=(A, B), include_subdomains=True),
            DomainRule("x.example.com", exclude=True, include_subdomains=True),
        )
    )
    with pytest.warns(ExportWarning, match="excludes x.example.com only"):
        trustkit.dumps(subtree)
    wildcard = Policy(rules=(DomainRule("example.com", pins=(A, B), one_label=True),))
    with pytest.warns(ExportWarning, match="also pins example.com itself"):
        text = trustkit.dumps(wildcard)
    assert isinstance(text, str)
    entry = plistlib.loads(text.encode())["TSKConfiguration"]["TSKPinnedDomains"]["example.com"]
    assert entry["TSKIncludeSubdomains"] is True


def test_swift_snippet() -> None:
    policy = Policy(
        rules=(
            DomainRule(
                "example.com",
                pins=(A, B),
                include_subdomains=True,
                expiration=dt.date(2027, 6, 30),
                report_uris=('https://r.example.net/report?a="b"',),
            ),
            DomainRule("static.example.com", exclude=True),
        )
    )
    swift = trustkit.dumps_swift(policy)
    assert swift == trustkit.dumps_swift(policy)
    assert swift.splitlines() == [
        "let trustKitConfig: [String: Any] = [",
        "    kTSKSwizzleNetworkDelegates: true,",
        "    kTSKPinnedDomains: [",
        '        "example.com": [',
        "            kTSKDisableDefaultReportUri: true,",
        "            kTSKEnforcePinning: true,",
        '            kTSKExpirationDate: "2027-06-30",',
        "            kTSKIncludeSubdomains: true,",
        "            kTSKPublicKeyHashes: [",
        f'                "{A.b64}",',
        f'                "{B.b64}",',
        "            ],",
        "            kTSKReportUris: [",
        '                "https://r.example.net/report?a=\\"b\\"",',
        "            ],",
        "        ],",
        '        "static.example.com": [',
        "            kTSKExcludeSubdomainFromParentPolicy: true,",
        "        ],",
        "    ],",
        "]",
    ]
    with pytest.raises(ExportError):
        trustkit.dumps_swift(
            Policy(rules=(DomainRule("a.example.com", pins=(A,), allow_single_pin=True),))
        )


def test_sniff() -> None:
    assert trustkit.sniff(FULL.encode())
    assert trustkit.sniff(plistlib.dumps({"TSKPublicKeyPins": {}}, fmt=plistlib.FMT_BINARY))
    assert not trustkit.sniff(plistlib.dumps({"NSAppTransportSecurity": {}}))
    assert not trustkit.sniff(b"TSKConfiguration = [:]")


def test_export_is_deterministic() -> None:
    policy = trustkit.loads(FULL).policy
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert trustkit.dumps(policy) == trustkit.dumps(policy)


def test_swift_option_of_dumps() -> None:
    policy = trustkit.loads(FULL).policy
    assert trustkit.dumps(policy, swift=True) == trustkit.dumps_swift(policy)
    assert trustkit.dumps(policy, swift=True, swizzle_network_delegates=False) == (
        trustkit.dumps_swift(policy, swizzle_network_delegates=False)
    )
