"""Android network security config: import rules, errors, findings and export."""

from __future__ import annotations

import datetime as dt
import hashlib
import warnings

import pytest

from pinset.audit import imported_findings
from pinset.errors import ConfigError
from pinset.formats import _android as android
from pinset.formats._model import ExportError, ExportWarning
from pinset.pins import Pin
from pinset.policy import DomainRule, Policy
from pinset.testing import TestPKI
from pinset.verdict import evaluate

# Every export of a dated pin-set says that Android reads the date at the device's local
# midnight; test_formats_android asserts that warning, the other tests leave it aside.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Android stops enforcing:pinset.formats._model.ExportWarning"
)


def pin(n: int) -> Pin:
    return Pin(hashlib.sha256(b"key %d" % n).digest())


P1, P2, P3 = pin(1), pin(2), pin(3)
NOW = dt.datetime(2026, 12, 6, tzinfo=dt.timezone.utc)


def nsc(body: str, *, root_attrs: str = "") -> str:
    head = '<?xml version="1.0" encoding="utf-8"?>'
    return f"{head}\n<network-security-config{root_attrs}>\n{body}\n</network-security-config>\n"


def pinned(
    name: str = "example.com",
    pins: tuple[Pin, ...] = (P1, P2),
    extra: str = "",
    pin_set_attrs: str = "",
    include: str = "true",
) -> str:
    rows = "".join(f'<pin digest="SHA-256">{p.b64}</pin>' for p in pins)
    return (
        f'<domain-config><domain includeSubdomains="{include}">{name}</domain>'
        f"<pin-set{pin_set_attrs}>{rows}</pin-set>{extra}</domain-config>"
    )


def load_error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        android.loads(text, source="nsc.xml")
    assert info.value.source == "nsc.xml"
    assert info.value.hint
    return info.value


# -- what imports -------------------------------------------------------------------


def test_domain_becomes_a_rule_with_pins_expiration_and_subdomains() -> None:
    text = nsc(pinned(pin_set_attrs=' expiration="2027-06-30"'))
    imported = android.loads(text, source="nsc.xml")
    (rule,) = imported.policy.rules
    assert rule == DomainRule(
        "example.com", pins=(P1, P2), include_subdomains=True, expiration=dt.date(2027, 6, 30)
    )
    assert imported.format == "android"
    assert imported.lines == {"example.com": 3}
    (facts,) = imported.domains
    assert facts.expiration_text == "2027-06-30"
    assert facts.pin_texts == (P1.b64, P2.b64)


def test_every_domain_of_a_config_is_a_rule_with_its_own_subdomain_flag() -> None:
    body = (
        '<domain-config><domain includeSubdomains="true">a.example</domain>'
        "<domain>B.Example.</domain>"
        f'<pin-set><pin digest="SHA-256">{P1.b64}</pin><pin digest="SHA-256">{P2.b64}</pin>'
        "</pin-set></domain-config>"
    )
    rules = {r.name: r for r in android.loads(nsc(body)).policy.rules}
    assert rules["a.example"].include_subdomains is True
    assert rules["b.example"].include_subdomains is False
    assert rules["a.example"].pins == rules["b.example"].pins == (P1, P2)


def test_nested_config_inherits_the_parent_pin_set_as_a_block() -> None:
    inner = "<domain-config><domain>api.example.com</domain></domain-config>"
    text = nsc(pinned(pin_set_attrs=' expiration="2030-01-01"', extra=inner))
    rules = {r.name: r for r in android.loads(text).policy.rules}
    assert rules["api.example.com"].pins == (P1, P2)
    assert rules["api.example.com"].expiration == dt.date(2030, 1, 1)
    assert rules["api.example.com"].include_subdomains is False


def test_nested_pin_set_replaces_the_parent_one_entirely() -> None:
    inner = (
        f"<domain-config><domain>api.example.com</domain><pin-set>"
        f'<pin digest="SHA-256">{P3.b64}</pin><pin digest="SHA-256">{P2.b64}</pin>'
        "</pin-set></domain-config>"
    )
    text = nsc(pinned(pin_set_attrs=' expiration="2030-01-01"', extra=inner))
    rules = {r.name: r for r in android.loads(text).policy.rules}
    assert rules["api.example.com"].pins == (P3, P2)
    assert rules["api.example.com"].expiration is None


def test_empty_nested_pin_set_is_an_exclusion() -> None:
    inner = (
        '<domain-config><domain includeSubdomains="true">cdn.example.com</domain>'
        "<pin-set /></domain-config>"
    )
    policy = android.loads(nsc(pinned(extra=inner))).policy
    assert policy.rule_for("cdn.example.com") is None
    assert policy.rule_for("img.cdn.example.com") is None
    assert policy.rule_for("api.example.com") is not None
    assert policy.match("cdn.example.com") == DomainRule(
        "cdn.example.com", include_subdomains=True, exclude=True
    )


def test_unpinned_config_below_a_pinned_parent_is_carved_out() -> None:
    # Android picks the most specific domain-config, which pins nothing.
    other = (
        '<domain-config cleartextTrafficPermitted="true">'
        "<domain>dev.example.com</domain></domain-config>"
    )
    imported = android.loads(nsc(pinned() + other), source="nsc.xml")
    assert imported.policy.rule_for("dev.example.com") is None
    assert imported.policy.rule_for("x.dev.example.com") is not None  # not includeSubdomains
    assert ("overlapping-rules", "dev.example.com") in {(f.id, f.domain) for f in imported.findings}


def test_unpinned_config_elsewhere_is_only_a_platform_fact() -> None:
    other = (
        '<domain-config cleartextTrafficPermitted="true"><domain>localhost</domain></domain-config>'
    )
    imported = android.loads(nsc(pinned() + other))
    assert [r.name for r in imported.policy.rules] == ["example.com"]
    facts = {d.name: d for d in imported.domains}
    assert facts["localhost"].cleartext_permitted is True
    assert facts["localhost"].pin_texts == ()


def test_single_pin_imports_with_allow_single_pin_and_an_error_finding() -> None:
    imported = android.loads(nsc(pinned(pins=(P1,))), source="nsc.xml")
    assert imported.policy.rules[0].allow_single_pin is True
    (finding,) = [f for f in imported_findings(imported) if f.id == "missing-backup-pin"]
    assert (finding.severity, finding.domain, finding.source, finding.line) == (
        "error",
        "example.com",
        "nsc.xml",
        3,
    )


def test_tools_ignore_missing_backup_pin_is_kept_and_lowers_the_severity() -> None:
    tools = ' xmlns:tools="http://schemas.android.com/tools"'
    text = nsc(
        pinned(pins=(P1,), pin_set_attrs=' tools:ignore="MissingBackupPin"'), root_attrs=tools
    )
    imported = android.loads(text)
    assert imported.policy.rules[0].allow_single_pin is True
    assert [f.severity for f in imported_findings(imported) if f.id == "missing-backup-pin"] == [
        "warning"
    ]
    # With two real pins the marker still round-trips as allow-single-pin.
    text2 = nsc(pinned(pin_set_attrs=' tools:ignore="MissingBackupPin"'), root_attrs=tools)
    assert android.loads(text2).policy.rules[0].allow_single_pin is True


def test_placeholder_backup_pin_is_a_finding_and_not_a_backup() -> None:
    dud = "A" * 43 + "="
    text = nsc(pinned().replace(P2.b64, dud))
    imported = android.loads(text)
    ids = [f.id for f in imported_findings(imported)]
    assert "placeholder-pin" in ids
    assert "missing-backup-pin" in ids
    assert imported.policy.rules[0].allow_single_pin is True


def test_only_placeholder_pins_keep_the_domain_refusing_every_connection_with_an_error(
    pki: TestPKI,
) -> None:
    # Android's PinSet takes any 32-byte digests: such a domain is pinned to nothing.
    body = pinned(pins=(), pin_set_attrs=' expiration="2027-06-30"').replace(
        "</pin-set>",
        '<pin digest="SHA-256">'
        + "B" * 43
        + '=</pin><pin digest="SHA-256">'
        + "A" * 43
        + "=</pin></pin-set>",
    )
    imported = android.loads(nsc(body))
    (rule,) = imported.policy.rules
    assert rule.placeholder_only
    assert rule.enforce
    assert rule.expiration == dt.date(2027, 6, 30)  # still visible to the audit
    (finding,) = imported_findings(imported)
    assert (finding.id, finding.severity) == ("placeholder-pin", "error")
    # Quoted as the file writes it, not re-encoded (BBBB…BBA=).
    assert "B" * 43 + "=" in finding.message
    assert "B" * 42 + "A=" not in finding.message
    leaf = pki.leaf("api.example.com")
    verdict = evaluate(imported.policy, "api.example.com", leaf.full_chain, now=NOW)
    assert verdict.allowed is False


def test_unpadded_and_spaced_pins_are_equal_but_flagged_non_canonical() -> None:
    body = (
        pinned()
        .replace(P1.b64, P1.b64.rstrip("="))
        .replace(P2.b64, " " + P2.b64[:20] + "\n " + P2.b64[20:])
    )
    imported = android.loads(nsc(body))
    assert imported.policy.rules[0].pins == (P1, P2)
    assert [f.id for f in imported_findings(imported)].count("non-canonical-pin") == 2


def test_expired_pin_set_imports_without_reading_the_clock() -> None:
    imported = android.loads(nsc(pinned(pin_set_attrs=' expiration="2015-01-01"')))
    assert imported.policy.rules[0].expiration == dt.date(2015, 1, 1)
    assert "pin-set-expired" not in {f.id for f in imported.findings}  # the auditor's call


def test_the_expiration_window_is_the_device_s_local_midnight_anywhere() -> None:
    imported = android.loads(nsc(pinned(pin_set_attrs=' expiration="2027-06-30"')))
    utc = dt.timezone.utc
    assert imported.domains[0].expires_between == (
        dt.datetime(2027, 6, 29, 10, tzinfo=utc),  # UTC+14
        dt.datetime(2027, 6, 30, 12, tzinfo=utc),  # UTC-12
    )
    assert imported.policy.rules[0].expires_at() == dt.datetime(2027, 6, 30, tzinfo=utc)


def test_no_expiration_is_an_info_finding() -> None:
    findings = imported_findings(android.loads(nsc(pinned())))
    assert [(f.id, f.severity) for f in findings] == [("no-expiration", "info")]


def test_trust_anchor_findings_follow_the_audit_severities() -> None:
    body = (
        '<base-config cleartextTrafficPermitted="true"><trust-anchors>'
        '<certificates src="system"/><certificates src="user"/></trust-anchors></base-config>'
        + pinned(
            extra='<trust-anchors><certificates src="@raw/ca" overridePins="true"/></trust-anchors>'
        )
        + '<debug-overrides><trust-anchors><certificates src="user"/></trust-anchors>'
        + "</debug-overrides>"
    )
    imported = android.loads(nsc(body))
    got = {(f.id, f.severity, f.line) for f in imported.findings}
    assert ("user-trust-anchors", "error", 3) in got
    assert ("user-trust-anchors", "info", 3) in got
    assert ("override-pins", "error", 3) in got
    assert ("cleartext-permitted", "error", 3) in got  # inherited from base-config
    facts = {d.scope: d for d in imported.domains}
    assert facts["debug"].trust_anchors[0].override_pins is True  # Android's debug default
    assert facts["domain"].trust_anchors[0].src == "@raw/ca"


def test_attributes_in_other_namespaces_are_allowed() -> None:
    tools = (
        ' xmlns:tools="http://schemas.android.com/tools" tools:ignore="InsecureBaseConfiguration"'
    )
    assert android.loads(nsc(pinned(), root_attrs=tools)).policy.rules


def test_trustkit_elements_are_accepted_and_recorded() -> None:
    extra = '<trustkit-config enforcePinning="false"><report-uri>https://r.example.net/</report-uri></trustkit-config>'
    body = pinned(extra=extra).replace(
        "<domain-config>", '<domain-config enforcePinning="true">', 1
    )
    imported = android.loads(nsc(body))
    (rule,) = imported.policy.rules
    assert rule.enforce is True  # Android ignores TrustKit
    assert rule.report_uris == ()
    assert {"trustkit-config", "ignored-attribute"} <= {f.id for f in imported.findings}
    assert imported.platform["trustkit-config"] is True
    assert imported.domains[0].trustkit is not None
    assert imported.domains[0].trustkit.report_uris == ("https://r.example.net/",)


def test_certificate_transparency_is_a_platform_fact() -> None:
    body = pinned(extra='<certificateTransparency enabled="true"/>')
    assert android.loads(nsc(body)).domains[0].certificate_transparency is True


def test_no_xml_declaration_comments_and_bom_are_fine() -> None:
    text = (
        "\ufeff<!-- c --><network-security-config><!-- x -->"
        + pinned()
        + "</network-security-config>"
    )
    assert android.loads(text.encode("utf-8")).policy.rules[0].name == "example.com"


# -- what fails, with where and how to fix it ----------------------------------------

ERRORS = [
    ("no-digest", pinned().replace(' digest="SHA-256"', "", 1), "without a digest", "SHA-256", 3),
    (
        "sha1-digest",
        pinned().replace("SHA-256", "SHA-1", 1),
        "unsupported pin digest 'SHA-1'",
        "SHA-256",
        3,
    ),
    ("bad-base64", pinned().replace(P1.b64, "not*base64!"), "is not base64", "base64", 3),
    ("prefixed", pinned().replace(P1.b64, "sha256/" + P1.b64), "prefix", "sha256/", 3),
    ("short", pinned().replace(P1.b64, "AAAAAAAA"), "decodes to 6 bytes", "32-byte", 3),
    ("empty-pin", pinned().replace(P1.b64, ""), "<pin> is empty", "base64", 3),
    (
        "bad-date",
        pinned(pin_set_attrs=' expiration="2027-13-01"'),
        "not a date",
        "year-month-day",
        3,
    ),
    (
        "slash-date",
        pinned(pin_set_attrs=' expiration="2027/06/30"'),
        "not a date",
        "year-month-day",
        3,
    ),
    ("two-pin-sets", pinned(extra="<pin-set/>"), "more than one <pin-set>", "merge", 3),
    (
        "two-anchors",
        pinned(extra="<trust-anchors/><trust-anchors/>"),
        "more than one <trust-anchors>",
        "merge",
        3,
    ),
    (
        "domain-in-base",
        "<base-config><domain>a.com</domain></base-config>",
        "<domain> is not allowed in <base-config>",
        "domain-config",
        3,
    ),
    (
        "pins-in-debug",
        "<debug-overrides><pin-set/></debug-overrides>",
        "<pin-set> is not allowed in <debug-overrides>",
        "domain-config",
        3,
    ),
    (
        "nested-in-base",
        "<base-config><domain-config/></base-config>",
        "<domain-config> is not allowed in <base-config>",
        "domain-config",
        3,
    ),
    (
        "no-domain",
        "<domain-config><pin-set/></domain-config>",
        "without a <domain>",
        "includeSubdomains",
        3,
    ),
    (
        "duplicate",
        pinned() + pinned(name="EXAMPLE.com."),
        "already configured on line 3",
        "merge",
        3,
    ),
    ("placeholder-domain", pinned(name="${host}"), "unresolved placeholder '${host}'", "Gradle", 3),
    (
        "placeholder-attr",
        '<base-config cleartextTrafficPermitted="${isDebug}"/>',
        "unresolved placeholder",
        "Gradle",
        3,
    ),
    ("not-boolean", pinned(include="yes"), "must be true or false", 'includeSubdomains="true"', 3),
    ("two-bases", "<base-config/><base-config/>", "only one <base-config>", "merge", 3),
    (
        "bad-src",
        pinned(extra='<trust-anchors><certificates src="ca.pem"/></trust-anchors>'),
        "unknown certificates src",
        "@raw",
        3,
    ),
    (
        "no-src",
        pinned(extra="<trust-anchors><certificates/></trust-anchors>"),
        "without a src",
        "system",
        3,
    ),
    ("bad-host", pinned(name="a..b"), "empty label", "dots", 3),
]


@pytest.mark.parametrize(
    ("body", "words", "hint", "line"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_invalid_config_is_a_config_error_with_line_and_fix(
    body: str, words: str, hint: str, line: int
) -> None:
    err = load_error(nsc(body))
    assert words in err.message
    assert hint in (err.hint or "")
    assert err.line == line
    assert err.column is not None


# What XmlConfigSource skips (XmlUtils.skipCurrentTag, attributes read by name, text between
# elements) imports with the platform's effective values and a warning, never a refusal.
SKIPPED = [
    (
        "pinset-typo",
        pinned().replace("pin-set", "pinset"),
        "ignored-element",
        "<pinset> is not read in <domain-config>",
        "did you mean 'pin-set'?",
    ),
    (
        "include-typo",
        pinned().replace("includeSubdomains", "includeSubdomain"),
        "ignored-attribute",
        "unknown attribute 'includeSubdomain'",
        "did you mean 'includeSubdomains'?",
    ),
    (
        "bare-certificates",
        '<base-config><certificates src="user"/></base-config>',
        "ignored-element",
        "<certificates> is not read in <base-config>",
        "trust-anchors",
    ),
    (
        "text-in-config",
        "<domain-config>oops<domain>a.com</domain></domain-config>",
        "ignored-text",
        "contains text 'oops'",
        "remove",
    ),
    (
        "unknown-root-child",
        "<domain-configs><domain>a.com</domain></domain-configs>" + pinned(),
        "ignored-element",
        "<domain-configs> is not read in <network-security-config>",
        "did you mean 'domain-config'?",
    ),
    (
        "unknown-pin-set-child",
        pinned().replace("</pin-set>", "<pins/></pin-set>"),
        "ignored-element",
        "<pins> is not read in <pin-set>",
        "did you mean 'pin'?",
    ),
]


@pytest.mark.parametrize(
    ("body", "id", "words", "hint"), [e[1:] for e in SKIPPED], ids=[e[0] for e in SKIPPED]
)
def test_what_android_skips_is_a_warning_with_line_and_did_you_mean(
    body: str, id: str, words: str, hint: str
) -> None:
    imported = android.loads(nsc(body), source="nsc.xml")
    (found,) = [f for f in imported.findings if f.id == id]
    assert found.severity == "warning"
    assert words in found.message
    assert hint in (found.fix or "")
    assert (found.source, found.line) == ("nsc.xml", 3)
    assert found.column is not None


def test_a_typo_that_android_skips_takes_the_platform_s_effective_value() -> None:
    # <pinset> is skipped, so the domain is not pinned at all on the device.
    skipped = android.loads(nsc(pinned().replace("pin-set", "pinset")))
    assert skipped.policy.rules == ()
    assert [d.name for d in skipped.domains] == ["example.com"]
    # includeSubdomain= is skipped, so includeSubdomains keeps Android's default, false.
    typo = android.loads(nsc(pinned().replace("includeSubdomains", "includeSubdomain")))
    assert typo.policy.rules[0].include_subdomains is False


def test_skipped_attributes_point_at_the_attribute() -> None:
    text = nsc(
        "<domain-config>\n  <domain\n      "
        'includeSubdomain="true">a.com</domain><pin-set/></domain-config>'
    )
    (found,) = [f for f in android.loads(text).findings if f.id == "ignored-attribute"]
    assert (found.line, found.column) == (5, 7)


def test_wfa_trust_anchors_are_accepted() -> None:
    # Android 14 added src="wfa" (the Wi-Fi Alliance CAs) to XmlConfigSource.
    body = '<base-config><trust-anchors><certificates src="wfa"/></trust-anchors></base-config>'
    imported = android.loads(nsc(body + pinned()))
    assert [a.src for a in imported.domains[0].trust_anchors] == ["wfa"]
    (found,) = [f for f in imported.findings if f.id == "wfa-trust-anchors"]
    assert (found.severity, found.line) == ("warning", 3)


def test_wrong_root_element() -> None:
    err = load_error("<network-security-configs/>")
    assert "not <network-security-config>" in err.message


@pytest.mark.parametrize(
    "text",
    [
        '<?xml version="1.0"?><!DOCTYPE n [<!ENTITY a "aaaa">]>'
        "<network-security-config>&a;</network-security-config>",
        '<?xml version="1.0"?><!DOCTYPE n SYSTEM "http://127.0.0.1:9/x.dtd"><network-security-config/>',
        '<?xml version="1.0"?><!DOCTYPE n [<!ENTITY x SYSTEM "file:///etc/passwd">]><network-security-config>&x;</network-security-config>',
    ],
    ids=["entity", "external-dtd", "external-entity"],
)
def test_dtds_and_entities_are_refused(text: str) -> None:
    err = load_error(text)
    assert "refuses" in err.message
    assert err.line == 1


def test_not_well_formed_xml_has_line_and_column() -> None:
    err = load_error("<network-security-config>\n  <domain-config>\n</network-security-config>")
    assert "not well-formed" in err.message
    assert err.line == 3


# -- export ---------------------------------------------------------------------------

EXPECTED = f"""<?xml version="1.0" encoding="utf-8"?>
<network-security-config xmlns:tools="http://schemas.android.com/tools">
    <domain-config>
        <domain includeSubdomains="true">example.com</domain>
        <pin-set expiration="2027-06-30">
            <pin digest="SHA-256">{P1.b64}</pin>
            <pin digest="SHA-256">{P2.b64}</pin>
        </pin-set>
        <domain-config>
            <domain includeSubdomains="true">static.example.com</domain>
            <pin-set />
        </domain-config>
    </domain-config>
    <domain-config>
        <domain includeSubdomains="false">legacy.example.org</domain>
        <pin-set tools:ignore="MissingBackupPin">
            <pin digest="SHA-256">{P3.b64}</pin>
        </pin-set>
    </domain-config>
    <domain-config>
        <domain includeSubdomains="false">orphan.example.net</domain>
        <pin-set />
    </domain-config>
</network-security-config>
"""


def sample_policy() -> Policy:
    return Policy(
        rules=(
            DomainRule("orphan.example.net", exclude=True),
            DomainRule("legacy.example.org", pins=(P3,), allow_single_pin=True),
            DomainRule("static.example.com", include_subdomains=True, exclude=True),
            DomainRule(
                "example.com",
                pins=(P1, P2),
                include_subdomains=True,
                expiration=dt.date(2027, 6, 30),
            ),
        )
    )


def test_export_is_the_expected_text() -> None:
    assert android.dumps(sample_policy()) == EXPECTED


def test_export_round_trips_and_is_byte_stable() -> None:
    policy = sample_policy()
    back = android.loads(EXPECTED).policy
    assert back == policy
    assert android.dumps(back) == EXPECTED


def test_export_without_single_pins_has_no_tools_namespace() -> None:
    text = android.dumps(Policy(rules=(DomainRule("a.example", pins=(P1, P2)),)))
    assert "xmlns:tools" not in text
    assert "tools:ignore" not in text


def test_report_only_rule_cannot_be_exported_to_plain_android() -> None:
    policy = Policy(rules=(DomainRule("a.example", pins=(P1, P2), enforce=False),))
    with pytest.raises(ExportError) as info:
        android.dumps(policy)
    assert "report-only" in info.value.message
    assert "trustkit-android" in (info.value.hint or "")


def test_one_label_wildcard_cannot_be_exported() -> None:
    policy = Policy(rules=(DomainRule("example.com", pins=(P1, P2), one_label=True),))
    with pytest.raises(ExportError, match=r"\*\.example\.com"):
        android.dumps(policy)


def test_report_uris_are_dropped_with_a_warning_naming_the_domains() -> None:
    policy = Policy(
        rules=(DomainRule("a.example", pins=(P1, P2), report_uris=("https://r.example.net/",)),),
        report_uris=("https://r.example.net/",),
    )
    with pytest.warns(
        ExportWarning, match=r"a\.example.*not written|not written.*a\.example"
    ) as record:
        text = android.dumps(policy)
    assert len(record) == 1
    assert "r.example.net" not in text


def test_export_warns_only_that_android_expires_pins_at_the_device_s_local_midnight() -> None:
    with pytest.warns(ExportWarning) as caught:
        android.dumps(sample_policy())
    (warning,) = caught
    message = str(warning.message)
    assert "local midnight" in message
    # XmlConfigSource parses the date with SimpleDateFormat in the device's time zone.
    assert "from 2027-06-29 10:00 to 2027-06-30 12:00 UTC" in message
    undated = Policy(rules=tuple(r for r in sample_policy().rules if r.expiration is None))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        android.dumps(undated)


def test_unknown_export_option_is_refused() -> None:
    with pytest.raises(TypeError):
        android.dumps(sample_policy(), indent=2)


def test_sniff() -> None:
    assert android.sniff(EXPECTED.encode())
    assert not android.sniff(b"[defaults]\n")


# -- configs fail loudly ---------------------------------------------------------------


def test_android_config_with_a_bare_doctype_is_refused_with_its_line() -> None:
    xml = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        "<!DOCTYPE network-security-config>\n"
        "<network-security-config/>\n"
    )
    with pytest.raises(ConfigError, match="DOCTYPE") as info:
        android.loads(xml, source="nsc.xml")
    assert info.value.source == "nsc.xml"
    assert info.value.line == 2


# -- <certificateTransparency> (Android 16+; developer.android.com security-config) ---------

CT_ON = '<certificateTransparency enabled="true" />'


def test_certificate_transparency_imports_as_require_ct_and_ct_alone() -> None:
    ct_only = (
        f'<domain-config><domain includeSubdomains="false">ct.example.org</domain>{CT_ON}'
        "</domain-config>"
    )
    imported = android.loads(nsc(pinned(extra=CT_ON) + ct_only))
    rules = {r.name: r for r in imported.policy.rules}
    assert (rules["example.com"].require_ct, rules["example.com"].pins) == (True, (P1, P2))
    assert rules["ct.example.org"] == DomainRule("ct.example.org", require_ct=True)
    # Nothing written: off (Android 16's default).
    assert android.loads(nsc(pinned())).policy.rules[0].require_ct is False


def test_certificate_transparency_is_inherited_and_user_anchors_turn_it_off() -> None:
    base = f"<base-config>{CT_ON}</base-config>"
    user = (
        '<domain-config><domain includeSubdomains="false">lab.example.net</domain>'
        '<trust-anchors><certificates src="user" /></trust-anchors>'
        f'<pin-set><pin digest="SHA-256">{P1.b64}</pin><pin digest="SHA-256">{P2.b64}</pin>'
        "</pin-set></domain-config>"
    )
    forced = user.replace("lab.example.net", "lab2.example.net").replace(
        "<trust-anchors>", f"{CT_ON}<trust-anchors>"
    )
    off = pinned(name="off.example.com", extra='<certificateTransparency enabled="false" />')
    imported = android.loads(nsc(base + pinned() + user + forced + off))
    assert {r.name: r.require_ct for r in imported.policy.rules} == {
        "example.com": True,  # from base-config
        "lab.example.net": False,  # user anchors: Android turns CT off
        "lab2.example.net": True,  # unless the config enables it itself
        "off.example.com": False,
    }


def test_require_ct_exports_the_element_and_ct_alone_without_a_pin_set() -> None:
    policy = Policy(
        rules=(
            DomainRule("example.com", pins=(P1, P2), include_subdomains=True, require_ct=True),
            DomainRule("cdn.example.com", include_subdomains=True, exclude=True),
            DomainRule("ct.example.org", require_ct=True),
            DomainRule("plain.example.net", pins=(P1, P2)),
        )
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text = android.dumps(policy)
    assert text.count(CT_ON) == 2
    # The exclusion nested in the CT parent turns the inherited CT off with the pins.
    assert '<certificateTransparency enabled="false" />' in text
    ct_block = text[text.index("ct.example.org") :].split("</domain-config>")[0]
    assert "<pin-set" not in ct_block
    plain = text[text.index("plain.example.net") :].split("</domain-config>")[0]
    assert "certificateTransparency" not in plain
    assert android.loads(text).policy == policy
