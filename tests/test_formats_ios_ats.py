"""iOS App Transport Security: Info.plist NSPinnedDomains import and export."""

from __future__ import annotations

import datetime as dt
import hashlib
import plistlib
import warnings

import pytest

from pinset.audit import imported_findings
from pinset.errors import ConfigError
from pinset.formats._apple import ios_ats
from pinset.formats._model import ExportError, ExportWarning
from pinset.pins import Pin
from pinset.policy import DomainRule, Policy

pytestmark = pytest.mark.filterwarnings("error::pinset.formats._model.ExportWarning")

A, B, C = (Pin(hashlib.sha256(f"key-{n}".encode()).digest()) for n in "abc")
PLACEHOLDER = Pin(bytes(32))


def identity(pin: Pin | str) -> str:
    text = pin.b64 if isinstance(pin, Pin) else pin
    return f"<dict><key>SPKI-SHA256-BASE64</key><string>{text}</string></dict>"


def plist(domains: str) -> str:
    """An Info.plist whose NSPinnedDomains dictionary body is ``domains`` (one key per line)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
        '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
        '<plist version="1.0">\n'
        "<dict>\n"
        "<key>NSAppTransportSecurity</key>\n"
        "<dict>\n"
        "<key>NSPinnedDomains</key>\n"
        "<dict>\n"
        f"{domains}"
        "</dict>\n"
        "</dict>\n"
        "</dict>\n"
        "</plist>\n"
    )


TWO_DOMAINS = plist(
    "<key>api.example.com</key>\n"  # line 9
    "<dict>\n"
    "<key>NSIncludesSubdomains</key>\n"
    "<true/>\n"
    "<key>NSPinnedCAIdentities</key>\n"
    f"<array>{identity(A)}</array>\n"
    "<key>NSPinnedLeafIdentities</key>\n"
    f"<array>{identity(B)}</array>\n"
    "</dict>\n"
    "<key>Static.Example.com</key>\n"  # line 18
    "<dict>\n"
    "<key>NSPinnedLeafIdentities</key>\n"
    f"<array>\n{identity(C)}\n{identity(A)}\n</array>\n"
    "</dict>\n"
)


def test_import_merges_ca_and_leaf_identities_into_the_rule() -> None:
    imported = ios_ats.loads(TWO_DOMAINS, source="Info.plist")
    assert imported.format == "ios-ats"
    assert imported.policy == Policy(
        rules=(
            DomainRule("api.example.com", pins=(A, B), include_subdomains=True),
            DomainRule("static.example.com", pins=(C, A)),
        )
    )
    assert imported.platform["identities"] == {
        "api.example.com": {str(A): "ca", str(B): "leaf"},
        "static.example.com": {str(C): "leaf", str(A): "leaf"},
    }
    assert imported.lines == {"api.example.com": 9, "static.example.com": 18}
    assert [d.pin_texts for d in imported.domains] == [(A.b64, B.b64), (C.b64, A.b64)]


def test_export_puts_each_pin_back_into_the_array_it_came_from() -> None:
    imported = ios_ats.loads(TWO_DOMAINS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExportWarning)
        text = ios_ats.dumps(imported.policy, identities=imported.platform["identities"])
    again = ios_ats.loads(text)
    assert again.platform["identities"] == imported.platform["identities"]
    assert again.policy == imported.policy


def test_export_defaults_to_ca_identities_and_leaf_on_request() -> None:
    policy = Policy(rules=(DomainRule("api.example.com", pins=(A, B)),))
    ca = plistlib.loads(ios_ats.dumps(policy).encode())  # type: ignore[union-attr]
    leaf = plistlib.loads(ios_ats.dumps(policy, identities="leaf").encode())  # type: ignore[union-attr]
    entry = ca["NSAppTransportSecurity"]["NSPinnedDomains"]["api.example.com"]
    assert entry == {"NSPinnedCAIdentities": [{"SPKI-SHA256-BASE64": p.b64} for p in (A, B)]}
    entry = leaf["NSAppTransportSecurity"]["NSPinnedDomains"]["api.example.com"]
    assert entry == {"NSPinnedLeafIdentities": [{"SPKI-SHA256-BASE64": p.b64} for p in (A, B)]}
    with pytest.raises(ExportError, match="identities"):
        ios_ats.dumps(policy, identities="root")  # type: ignore[arg-type]


def test_binary_plists_import_and_errors_name_the_key_path() -> None:
    data = plistlib.dumps(plistlib.loads(TWO_DOMAINS.encode()), fmt=plistlib.FMT_BINARY)
    assert ios_ats.sniff(data)
    assert ios_ats.loads(data).policy == ios_ats.loads(TWO_DOMAINS).policy
    bad = {
        "NSAppTransportSecurity": {"NSPinnedDomains": {"a.example": {"NSIncludeSubdomains": True}}}
    }
    # A binary plist has no lines: the key path names the ignored key.
    bad["NSAppTransportSecurity"]["NSPinnedDomains"]["a.example"]["NSPinnedLeafIdentities"] = [
        {"SPKI-SHA256-BASE64": A.b64}
    ]
    skipped = ios_ats.loads(plistlib.dumps(bad, fmt=plistlib.FMT_BINARY), source="Info.plist")
    (found,) = [f for f in skipped.findings if f.id == "ignored-key"]
    assert found.line is None
    assert "NSAppTransportSecurity/NSPinnedDomains/a.example/NSIncludeSubdomains" in found.message
    assert found.fix == "did you mean 'NSIncludesSubdomains'?"
    with pytest.warns(ExportWarning, match="one extra label"):
        binary = ios_ats.dumps(ios_ats.loads(data).policy, binary=True)
    assert isinstance(binary, bytes)
    assert ios_ats.loads(binary).policy == ios_ats.loads(TWO_DOMAINS).policy


def test_leading_whitespace_before_the_declaration_is_accepted_and_lines_stay_true() -> None:
    text = "\n\n    " + TWO_DOMAINS
    imported = ios_ats.loads(text)
    assert imported.lines == {"api.example.com": 11, "static.example.com": 20}
    broken = "\n  " + TWO_DOMAINS.replace("Subdomains</key>", "Subdomains</kye>")
    with pytest.raises(ConfigError, match="well-formed") as caught:
        ios_ats.loads(broken, source="Info.plist")
    assert caught.value.line == 12  # the mismatched end tag: line 11 of the plist, +1
    misplaced = "\n  " + TWO_DOMAINS.replace("<true/>", "<true>")
    with pytest.raises(ConfigError, match="not a valid XML property list") as caught:
        ios_ats.loads(misplaced, source="Info.plist")
    assert caught.value.line == 14  # plistlib notices at the next <key>, line 13, +1


def test_unknown_keys_are_skipped_as_ios_skips_them_with_did_you_mean() -> None:
    text = plist(
        f"<key>a.example.com</key>\n<dict>\n<key>NSIncludesSubdomain</key><true/>\n"
        f"<key>NSPinnedCAIdentities</key><array>{identity(A)}{identity(B)}</array>\n</dict>\n"
    )
    imported = ios_ats.loads(text, source="Info.plist")
    assert imported.policy.rules[0].include_subdomains is False  # iOS never read the typo
    (found,) = [f for f in imported.findings if f.id == "ignored-key"]
    assert (found.severity, found.source, found.line) == ("warning", "Info.plist", 11)
    assert found.fix == "did you mean 'NSIncludesSubdomains'?"


@pytest.mark.parametrize(
    ("entry", "key", "hint"),
    [
        ("<key>NSPinnedCAIdentity</key><array/>", "NSPinnedCAIdentity", "NSPinnedCAIdentities"),
        (
            "<key>NSPinnedCAIdentities</key><array><dict><key>SPKI-SHA256-BASE46</key>"
            "<string>x</string></dict></array>",
            "SPKI-SHA256-BASE46",
            "SPKI-SHA256-BASE64",
        ),
    ],
)
def test_a_typo_that_leaves_no_identity_is_an_error_naming_it(
    entry: str, key: str, hint: str
) -> None:
    text = plist(f"<key>a.example.com</key>\n<dict>\n{entry}\n</dict>\n")
    with pytest.raises(ConfigError) as caught:
        ios_ats.loads(text, source="Info.plist")
    assert caught.value.source == "Info.plist"
    assert caught.value.hint == f"{key!r} is not read: did you mean {hint!r}?"


@pytest.mark.parametrize(
    ("spki", "message"),
    [
        ("AAAA", "decodes to 3 bytes"),
        ("r_mIkG3eEpVdm-u_ko_cwxzOMo1bk4TyHIlByibiA5E=", "URL-safe"),
        ("sha256/" + A.b64, "bare base64"),
        (A.hex, "hex certificate fingerprint"),
        ("$(PIN_PRIMARY)", "placeholder"),
    ],
)
def test_bad_pins_are_errors_at_their_line(spki: str, message: str) -> None:
    text = plist(
        "<key>a.example.com</key>\n<dict>\n<key>NSPinnedCAIdentities</key>\n<array>\n"
        f"{identity(A)}\n{identity(spki)}\n</array>\n</dict>\n"
    )
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as caught:
        ios_ats.loads(text, source="Info.plist")
    assert caught.value.line == 14
    assert caught.value.source == "Info.plist"


def test_build_setting_placeholder_in_a_domain_name_is_an_error() -> None:
    text = plist(
        f"<key>$(API_HOST)</key>\n<dict><key>NSPinnedCAIdentities</key><array>{identity(A)}"
        f"{identity(B)}</array></dict>\n"
    )
    with pytest.raises(ConfigError, match=r"placeholder '\$\(API_HOST\)'") as caught:
        ios_ats.loads(text)
    assert caught.value.line == 9


@pytest.mark.parametrize("second", ["a.example.com", "A.Example.COM."])
def test_duplicate_domains_are_errors(second: str) -> None:
    entry = f"<dict><key>NSPinnedCAIdentities</key><array>{identity(A)}</array></dict>\n"
    text = plist(f"<key>a.example.com</key>\n{entry}<key>{second}</key>\n{entry}")
    with pytest.raises(ConfigError, match=r"(twice|same host)") as caught:
        ios_ats.loads(text)
    assert caught.value.line in (9, 11)


def test_wrong_types_and_empty_entries_are_errors() -> None:
    with pytest.raises(ConfigError, match="NSIncludesSubdomains must be"):
        ios_ats.loads(plist("<key>a.example</key><dict><key>NSIncludesSubdomains</key>"
                            "<string>YES</string></dict>"))  # fmt: skip
    with pytest.raises(ConfigError, match="lists no identities"):
        ios_ats.loads(plist("<key>a.example</key><dict><key>NSPinnedCAIdentities</key>"
                            "<array/></dict>"))  # fmt: skip
    with pytest.raises(ConfigError, match="must be a dictionary"):
        ios_ats.loads(plist("<key>a.example</key><array/>"))
    with pytest.raises(ConfigError, match="no SPKI-SHA256-BASE64"):
        ios_ats.loads(plist("<key>a.example</key><dict><key>NSPinnedCAIdentities</key>"
                            "<array><dict/></array></dict>"))  # fmt: skip
    with pytest.raises(ConfigError, match="root must be a dictionary"):
        ios_ats.loads(plistlib.dumps([1, 2]))


def test_platform_valid_configs_import_with_findings() -> None:
    unpadded = B.b64.rstrip("=")
    text = plist(
        "<key>one.example.com</key>\n"
        f"<dict><key>NSPinnedCAIdentities</key><array>{identity(A)}</array></dict>\n"
        "<key>dud.example.com</key>\n"
        "<dict><key>NSIncludesSubdomains</key><true/><key>NSPinnedLeafIdentities</key>"
        f"<array>{identity(unpadded)}{identity(PLACEHOLDER)}</array></dict>\n"
    )
    imported = ios_ats.loads(text, source="Info.plist")
    assert imported.policy.rules == (
        DomainRule(
            "dud.example.com",
            pins=(B, PLACEHOLDER),
            include_subdomains=True,
            allow_single_pin=True,
        ),
        DomainRule("one.example.com", pins=(A,), allow_single_pin=True),
    )
    found = {(f.id, f.domain, f.line) for f in imported_findings(imported)}
    assert found == {
        ("missing-backup-pin", "one.example.com", 9),
        ("no-expiration", "one.example.com", 9),
        ("missing-backup-pin", "dud.example.com", 11),
        ("placeholder-pin", "dud.example.com", 11),
        ("non-canonical-pin", "dud.example.com", 11),
        ("no-expiration", "dud.example.com", 11),
        ("ats-subdomain-depth", "dud.example.com", 11),
    }
    assert all(f.source == "Info.plist" for f in imported_findings(imported))


def test_a_placeholder_only_domain_is_kept_with_one_error_quoting_the_pin_as_written() -> None:
    # ATS takes any SPKI-SHA256-BASE64 that decodes to 32 bytes (NSPinnedDomains docs).
    bbbb = "B" * 43 + "="
    text = plist(
        "<key>dud.example.com</key>\n"
        f"<dict><key>NSPinnedLeafIdentities</key><array>{identity(bbbb)}</array></dict>\n"
    )
    imported = ios_ats.loads(text, source="Info.plist")
    (rule,) = imported.policy.rules
    assert rule.placeholder_only
    found = [(f.id, f.severity) for f in imported_findings(imported) if f.id != "no-expiration"]
    assert found == [("placeholder-pin", "error")]
    assert bbbb in imported_findings(imported)[0].message


def test_a_plist_without_pins_imports_as_an_empty_policy_with_a_finding() -> None:
    text = plistlib.dumps({"CFBundleName": "Demo", "NSAppTransportSecurity": {}}).decode()
    imported = ios_ats.loads(text)
    assert imported.policy.rules == ()
    assert [f.id for f in imported.findings] == ["no-pinned-domains"]
    assert not ios_ats.sniff(text.encode())


def test_sniff() -> None:
    assert ios_ats.sniff(TWO_DOMAINS.encode())
    assert ios_ats.sniff(b"\n   " + TWO_DOMAINS.encode())
    assert not ios_ats.sniff(b"<network-security-config/>")
    assert not ios_ats.sniff(b'{"NSPinnedDomains": {}}')


# -- export: what ATS cannot say -----------------------------------------------


def exported(policy: Policy) -> tuple[dict[str, dict[str, object]], list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        text = ios_ats.dumps(policy)
    assert isinstance(text, str)
    domains = plistlib.loads(text.encode())["NSAppTransportSecurity"]["NSPinnedDomains"]
    messages = [str(w.message) for w in caught if issubclass(w.category, ExportWarning)]
    return domains, messages


def test_include_subdomains_exports_with_a_one_label_warning() -> None:
    domains, messages = exported(
        Policy(rules=(DomainRule("example.com", pins=(A, B), include_subdomains=True),))
    )
    assert domains["example.com"]["NSIncludesSubdomains"] is True
    assert len(messages) == 1
    assert "one extra label only" in messages[0]
    assert "b.a.example.com" in messages[0]


def test_exact_rules_export_without_warnings() -> None:
    domains, messages = exported(Policy(rules=(DomainRule("example.com", pins=(A, B)),)))
    assert messages == []
    assert "NSIncludesSubdomains" not in domains["example.com"]


def test_expiration_and_report_uris_are_left_out_with_warnings() -> None:
    rule = DomainRule(
        "example.com",
        pins=(A, B),
        expiration=dt.date(2027, 6, 30),
        report_uris=("https://r.example.net/report",),
    )
    domains, messages = exported(Policy(rules=(rule,)))
    assert set(domains["example.com"]) == {"NSPinnedCAIdentities"}
    assert any("after 2027-06-30" in m for m in messages)
    assert any("https://r.example.net/report" in m for m in messages)


def test_one_label_wildcards_widen_to_the_name_itself_with_a_warning() -> None:
    domains, messages = exported(
        Policy(rules=(DomainRule("example.com", pins=(A, B), one_label=True),))
    )
    assert domains["example.com"]["NSIncludesSubdomains"] is True
    assert any("also pins example.com itself" in m for m in messages)
    both = Policy(
        rules=(
            DomainRule("example.com", pins=(A, B), one_label=True),
            DomainRule("example.com", pins=(A, C)),
        )
    )
    with pytest.raises(ExportError, match=r"\*\.example\.com next to"):
        ios_ats.dumps(both)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (DomainRule("example.com", pins=(A,), enforce=False), "report-only"),
        (DomainRule("static.example.com", exclude=True), "cannot exclude"),
    ],
)
def test_what_ats_cannot_express_safely_is_an_export_error(rule: DomainRule, message: str) -> None:
    parent = DomainRule("example.com", pins=(B, C), include_subdomains=True)
    rules = (rule,) if rule.name == parent.name else (parent, rule)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExportWarning)  # the parent's one-label warning
        with pytest.raises(ExportError, match=message) as caught:
            ios_ats.dumps(Policy(rules=rules))
    assert caught.value.hint


def test_export_is_deterministic_and_sorted() -> None:
    policy = Policy(
        rules=(DomainRule("b.example.com", pins=(A, B)), DomainRule("a.example.com", pins=(C, A)))
    )
    first = ios_ats.dumps(policy)
    assert first == ios_ats.dumps(policy)
    assert isinstance(first, str)
    assert first.index("a.example.com") < first.index("b.example.com")


def test_entity_declarations_are_refused() -> None:
    text = TWO_DOMAINS.replace(
        '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
        '"http://www.apple.com/DTDs/PropertyList-1.0.dtd" [<!ENTITY x "api.example.com">]>',
    ).replace("<key>api.example.com</key>", "<key>&x;</key>")
    with pytest.raises(ConfigError, match="entity"):
        ios_ats.loads(text, source="Info.plist")


@pytest.mark.parametrize("module", ["ios-ats", "trustkit"])
def test_a_binary_plist_key_that_is_not_a_string_is_refused(module: str) -> None:
    """Found by fuzzing (tests/fixtures/fuzz/plist/): plistlib reads any object as a key.

    A binary plist's dictionary keys are object references, so one can point at an
    integer; neither CoreFoundation nor an XML ``<key>`` can say that. It was a TypeError
    from deep inside the importer.
    """
    from pinset import formats

    data = plistlib.dumps(
        {"NSAppTransportSecurity": {"NSPinnedDomains": {"KEY": {}}}}, fmt=plistlib.FMT_BINARY
    )
    # The 3-character string object b"\x53KEY" becomes the 2-byte integer 7 (and a pad byte).
    data = data.replace(b"\x53KEY", b"\x11\x00\x07X")
    assert plistlib.loads(data) == {"NSAppTransportSecurity": {"NSPinnedDomains": {7: {}}}}
    with pytest.raises(ConfigError, match=r"a dictionary key is int 7, not a string") as caught:
        formats.loads(data, format=module, source="Info.plist")
    assert caught.value.source == "Info.plist"


# -- NSRequiresCertificateTransparency (NSExceptionDomains) ---------------------------------
# Apple's NSRequiresCertificateTransparency documentation: a Boolean per NSExceptionDomains
# entry, "obsolete": the system now requires CT in all cases, and Apple says not to use it.


def ats_with_exceptions(pinned: str, exceptions: str) -> str:
    """An Info.plist with NSPinnedDomains ``pinned`` and NSExceptionDomains ``exceptions``."""
    return plist(pinned).replace(
        "<key>NSPinnedDomains</key>\n",
        f"<key>NSExceptionDomains</key>\n<dict>\n{exceptions}</dict>\n<key>NSPinnedDomains</key>\n",
    )


CT_EXCEPTIONS = (
    "<key>api.example.com</key>\n"  # line 9
    "<dict><key>NSRequiresCertificateTransparency</key><true/></dict>\n"  # line 10
    "<key>ct.example.com</key>\n"  # line 11
    "<dict>\n"
    "<key>NSIncludesSubdomains</key><true/>\n"
    "<key>NSRequiresCertificateTransparency</key><true/>\n"  # line 14
    "</dict>\n"
    "<key>off.example.com</key>\n"
    "<dict><key>NSRequiresCertificateTransparency</key><false/></dict>\n"
    "<key>http.example.com</key>\n"
    "<dict><key>NSExceptionAllowsInsecureHTTPLoads</key><true/></dict>\n"
)
CT_PINNED = (
    "<key>api.example.com</key>\n<dict><key>NSPinnedCAIdentities</key>"
    f"<array>{identity(A)}{identity(B)}</array></dict>\n"
)


def test_requires_certificate_transparency_imports_as_require_ct() -> None:
    imported = ios_ats.loads(ats_with_exceptions(CT_PINNED, CT_EXCEPTIONS), source="Info.plist")
    rules = {r.name: r for r in imported.policy.rules}
    assert set(rules) == {"api.example.com", "ct.example.com"}
    api, ct_only = rules["api.example.com"], rules["ct.example.com"]
    assert (api.pins, api.require_ct, api.ct_only) == ((A, B), True, False)
    assert (ct_only.pins, ct_only.require_ct, ct_only.include_subdomains) == ((), True, True)
    assert ct_only.ct_only
    obsolete = [f for f in imported.findings if f.id == "ats-ct-key-obsolete"]
    assert [(f.domain, f.severity, f.line) for f in obsolete] == [
        ("api.example.com", "info", 10),
        ("ct.example.com", "info", 14),
    ]
    assert "a CT-only rule" in obsolete[1].message
    assert "export does not write it" in obsolete[0].message


def test_requires_certificate_transparency_alone_imports_without_pinned_domains() -> None:
    text = ats_with_exceptions("", CT_EXCEPTIONS).replace(
        "<key>NSPinnedDomains</key>\n<dict>\n</dict>\n", ""
    )
    imported = ios_ats.loads(text)
    assert [(r.name, r.ct_only) for r in imported.policy.rules] == [
        ("api.example.com", True),
        ("ct.example.com", True),
    ]
    assert "no-pinned-domains" not in [f.id for f in imported.findings]


def test_requires_certificate_transparency_must_be_a_boolean() -> None:
    bad = (
        "<key>api.example.com</key>\n"
        "<dict><key>NSRequiresCertificateTransparency</key><string>YES</string></dict>\n"
    )
    with pytest.raises(ConfigError, match="must be <true/> or <false/>") as info:
        ios_ats.loads(ats_with_exceptions(CT_PINNED, bad))
    assert info.value.key == (
        "NSAppTransportSecurity/NSExceptionDomains/api.example.com/"
        "NSRequiresCertificateTransparency"
    )


def test_require_ct_on_a_pinned_domain_exports_the_pins_without_the_obsolete_key() -> None:
    rule = DomainRule("api.example.com", pins=(A, B), require_ct=True)
    text = ios_ats.dumps(Policy(rules=(rule,)))
    assert isinstance(text, str)
    assert "NSRequiresCertificateTransparency" not in text
    assert "NSExceptionDomains" not in text
    assert ios_ats.loads(text).policy.rules[0].pins == (A, B)
