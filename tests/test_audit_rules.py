"""Every audit rule id fires on a config with the problem and stays quiet on one without it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography import x509

from pinset import formats
from pinset.audit import audit, imported_findings
from pinset.audit._model import Finding, LiveChain
from pinset.audit._rules import AS_WRITTEN, RULES
from pinset.pins import spki_pin
from pinset.testing import TestPKI, generate_key

NOW = dt.datetime(2026, 11, 28, tzinfo=dt.timezone.utc)
APK = Path(__file__).parent / "fixtures" / "apk"
# SHA-256 digests of fixed strings: pins of no real key.
P1 = "sha256/kYYgDApU0eMPFGwHsLBIN0rf5c1kMzSVfli/vKiX+I4="
P2 = "sha256/l8JdxVDkl1UMPlCRhIK2OychjartZsndSA2okFQOFko="
P3 = "sha256/2JMNa6V/u3j/mnGudyBEDf8+cOZNZf+k2My5F8hETBA="
PLACEHOLDER = "sha256/" + "A" * 43 + "="


def toml(*domains: str, defaults: str = "") -> bytes:
    head = f"[defaults]\n{defaults}\n" if defaults else ""
    return (head + "\n".join(f"[[domain]]\n{d}\n" for d in domains)).encode()


def domain(name: str, *pins: str, extra: str = "", expiration: str | None = "2027-06-30") -> str:
    pin_list = ", ".join(f'"{p}"' for p in pins)
    out = f'name = "{name}"\npins = [{pin_list}]\n'
    if expiration:
        out += f"expiration = {expiration}\n"
    return out + extra


def run(
    data: bytes,
    name: str = "pinset.toml",
    *,
    now: dt.datetime = NOW,
    min_days: int = 30,
    chains: dict[str, LiveChain | Sequence[x509.Certificate]] | None = None,
) -> list[Finding]:
    return list(audit([(name, data)], now=now, min_days=min_days, chains=chains).findings)


def ids(findings: list[Finding], rule_id: str) -> list[Finding]:
    return [f for f in findings if f.id == rule_id]


def nsc(body: str, head: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f"<network-security-config{head}>\n{body}\n</network-security-config>\n"
    ).encode()


def pinned_config(
    name: str = "api.example.com", pins: Sequence[str] = (P1, P2), attrs: str = ""
) -> str:
    rows = "\n".join(f'<pin digest="SHA-256">{p.removeprefix("sha256/")}</pin>' for p in pins)
    return (
        f'<domain-config{attrs}>\n<domain includeSubdomains="true">{name}</domain>\n'
        f'<pin-set expiration="2027-06-30">\n{rows}\n</pin-set>\n</domain-config>'
    )


def test_every_rule_of_the_issue_table_exists_with_its_severity() -> None:
    table = {
        "invalid-pin": "error",
        "missing-backup-pin": "error",
        "placeholder-pin": "warning",
        "non-canonical-pin": "warning",
        "no-live-match": "error",
        "no-offline-backup": "warning",
        "pin-set-expired": "error",
        "pin-set-expiring": "warning",
        "no-expiration": "info",
        "leaf-pin-cert-expiring": "warning",
        "root-only-pins": "warning",
        "include-subdomains-public-suffix": "error",
        "overlapping-rules": "info",
        "user-trust-anchors": "error",
        "override-pins": "error",
        "debuggable-release": "warning",
        "cleartext-permitted": "error",
        "report-uri-on-pinned-host": "warning",
        "report-uri-cleartext": "warning",
        "pins-in-code-differ": "warning",
        "config-error": "error",
    }
    severities = {k: RULES[k].severity for k in table}
    assert severities == table
    assert all(RULES[k].fix for k in RULES)
    assert set(RULES) >= AS_WRITTEN


def test_clean_policy_has_no_findings() -> None:
    assert run(toml(domain("api.example.com", P1, P2))) == []


# -- as-written rules on native policies ---------------------------------------------


def test_missing_backup_pin_is_a_warning_when_allow_single_pin() -> None:
    found = ids(
        run(toml(domain("a.example.com", P1, extra="allow-single-pin = true"))),
        "missing-backup-pin",
    )
    assert [(f.severity, f.domain, f.line) for f in found] == [("warning", "a.example.com", 2)]
    assert ids(run(toml(domain("a.example.com", P1, P2))), "missing-backup-pin") == []


def test_missing_backup_pin_is_an_error_in_android_without_tools_ignore() -> None:
    single = run(nsc(pinned_config(pins=(P1,))), "nsc.xml")
    assert [f.severity for f in ids(single, "missing-backup-pin")] == ["error"]
    ignored = nsc(
        pinned_config(pins=(P1,)).replace("<pin-set ", '<pin-set tools:ignore="MissingBackupPin" '),
        head=' xmlns:tools="http://schemas.android.com/tools"',
    )
    assert [f.severity for f in ids(run(ignored, "nsc.xml"), "missing-backup-pin")] == ["warning"]
    assert ids(run(nsc(pinned_config()), "nsc.xml"), "missing-backup-pin") == []


def test_placeholder_pin() -> None:
    found = ids(run(toml(domain("a.example.com", P1, P2, PLACEHOLDER))), "placeholder-pin")
    assert [(f.severity, f.domain) for f in found] == [("warning", "a.example.com")]
    assert ids(run(toml(domain("a.example.com", P1, P2, P3))), "placeholder-pin") == []


def test_a_placeholder_only_domain_is_one_error_in_every_format_with_its_expiration() -> None:
    bbbb = "B" * 43 + "="  # as written; its canonical re-encoding ends "BA="
    native = toml(
        domain("a.example.com", PLACEHOLDER, "sha256/" + bbbb, extra="placeholder-only = true")
    )
    android_xml = nsc(
        '<domain-config><domain includeSubdomains="true">a.example.com</domain>'
        f'<pin-set expiration="2027-06-30"><pin digest="SHA-256">{"A" * 43}=</pin>'
        f'<pin digest="SHA-256">{bbbb}</pin></pin-set></domain-config>'
    )
    for data, name in ((native, "pinset.toml"), (android_xml, "nsc.xml")):
        found = run(data, name)
        placeholder = ids(found, "placeholder-pin")
        assert [(f.severity, f.domain) for f in placeholder] == [("error", "a.example.com")]
        assert bbbb in placeholder[0].message
        assert ids(found, "missing-backup-pin") == []
        soon = run(data, name, now=dt.datetime(2027, 6, 1, tzinfo=dt.timezone.utc))
        assert [f.domain for f in ids(soon, "pin-set-expiring")] == ["a.example.com"]


def test_a_placeholder_backup_is_quoted_as_the_policy_writes_it() -> None:
    bbbb = "sha256/" + "B" * 43 + "="
    (found,) = ids(run(toml(domain("a.example.com", P1, P2, bbbb))), "placeholder-pin")
    assert bbbb in found.message
    assert "B" * 42 + "A=" not in found.message


def test_placeholder_does_not_count_as_backup() -> None:
    data = toml(domain("a.example.com", P1, PLACEHOLDER, extra="allow-single-pin = true"))
    assert ids(run(data), "missing-backup-pin")


def test_non_canonical_pin_names_the_line_of_the_pin() -> None:
    data = toml(
        'name = "a.example.com"\nexpiration = 2027-06-30\npins = [\n'
        f'  "{P1}",\n  "{P2.rstrip("=")}",\n]'
    )
    found = ids(run(data), "non-canonical-pin")
    assert [(f.severity, f.line) for f in found] == [("warning", 6)]
    assert P2 in (found[0].fix or "")
    assert ids(run(toml(domain("a.example.com", P1, P2))), "non-canonical-pin") == []


def test_no_expiration() -> None:
    found = ids(run(toml(domain("a.example.com", P1, P2, expiration=None))), "no-expiration")
    assert [f.severity for f in found] == ["info"]
    assert ids(run(toml(domain("a.example.com", P1, P2))), "no-expiration") == []


# -- dates ----------------------------------------------------------------------------


def test_pin_set_expired_from_midnight_utc_of_the_date() -> None:
    data = toml(domain("a.example.com", P1, P2, expiration="2026-11-28"))
    assert [f.severity for f in ids(run(data), "pin-set-expired")] == ["error"]
    before = NOW - dt.timedelta(seconds=1)
    assert ids(run(data, now=before), "pin-set-expired") == []
    assert ids(run(data, now=before), "pin-set-expiring")


def test_android_pin_set_expires_at_the_earliest_device_midnight() -> None:
    # XmlConfigSource parses expiration with SimpleDateFormat in the device's time zone, so
    # on a UTC+14 device 2026-11-28 begins at 2026-11-27 10:00 UTC.
    data = nsc(
        '<domain-config><domain includeSubdomains="true">a.example.com</domain>'
        f'<pin-set expiration="2026-11-28"><pin digest="SHA-256">{P1[7:]}</pin>'
        f'<pin digest="SHA-256">{P2[7:]}</pin></pin-set></domain-config>'
    )
    native = toml(domain("a.example.com", P1, P2, expiration="2026-11-28"))
    late_evening = NOW - dt.timedelta(seconds=1)  # 2026-11-27 23:59:59 UTC
    expired = ids(run(data, "nsc.xml", now=late_evening), "pin-set-expired")
    assert [(f.severity, f.line) for f in expired] == [("error", 3)]
    assert "local midnight (from 2026-11-27 10:00 UTC)" in expired[0].message
    assert ids(run(native, now=late_evening), "pin-set-expired") == []  # pinset: UTC
    morning = dt.datetime(2026, 11, 27, 9, 59, 59, tzinfo=dt.timezone.utc)
    assert ids(run(data, "nsc.xml", now=morning), "pin-set-expired") == []
    assert ids(run(data, "nsc.xml", now=morning), "pin-set-expiring")


def test_pin_set_expiring_within_min_days() -> None:
    data = toml(domain("a.example.com", P1, P2, expiration="2026-12-10"))
    found = ids(run(data), "pin-set-expiring")
    assert [f.severity for f in found] == ["warning"]
    assert "12 days" in found[0].message
    assert ids(run(data, min_days=10), "pin-set-expiring") == []
    assert ids(run(data), "pin-set-expired") == []


# -- rule shapes and report URIs -------------------------------------------------------


@pytest.mark.parametrize("suffix", ["co.uk", "com", "github.io", "appspot.com"])
def test_include_subdomains_on_a_public_suffix(suffix: str) -> None:
    data = toml(domain(suffix, P1, P2, extra="include-subdomains = true"))
    assert [f.severity for f in ids(run(data), "include-subdomains-public-suffix")] == ["error"]


def test_include_subdomains_below_a_public_suffix_is_fine() -> None:
    for name in ("example.co.uk", "example.com"):
        data = toml(domain(name, P1, P2, extra="include-subdomains = true"))
        assert ids(run(data), "include-subdomains-public-suffix") == []
    data = toml(domain("co.uk", P1, P2))  # exact name only: covers nobody else
    assert ids(run(data), "include-subdomains-public-suffix") == []


def test_overlapping_rules() -> None:
    parent = domain("example.com", P1, P2, extra="include-subdomains = true")
    child = domain("api.example.com", P2, P3)
    found = ids(run(toml(parent, child)), "overlapping-rules")
    assert [(f.severity, f.domain) for f in found] == [("info", "api.example.com")]
    flat = domain("example.com", P1, P2)
    assert ids(run(toml(flat, child)), "overlapping-rules") == []


def test_overlapping_exclusion_is_reported() -> None:
    parent = domain("example.com", P1, P2, extra="include-subdomains = true")
    carve = 'name = "static.example.com"\nexclude = true\n'
    found = ids(run(toml(parent, carve)), "overlapping-rules")
    assert [f.domain for f in found] == ["static.example.com"]


def test_report_uri_cleartext() -> None:
    data = toml(
        domain("a.example.com", P1, P2), defaults='report-uris = ["http://r.example.net/x"]'
    )
    assert [f.severity for f in ids(run(data), "report-uri-cleartext")] == ["warning"]
    data = toml(
        domain("a.example.com", P1, P2), defaults='report-uris = ["https://r.example.net/x"]'
    )
    assert ids(run(data), "report-uri-cleartext") == []


def test_report_uri_on_pinned_host() -> None:
    extra = 'report-uris = ["https://reports.example.com/pin"]\ninclude-subdomains = true\n'
    data = toml(domain("example.com", P1, P2, extra=extra))
    found = ids(run(data), "report-uri-on-pinned-host")
    assert [(f.severity, f.domain) for f in found] == [("warning", "example.com")]
    extra = 'report-uris = ["https://reports.example.net/pin"]\ninclude-subdomains = true\n'
    assert (
        ids(run(toml(domain("example.com", P1, P2, extra=extra))), "report-uri-on-pinned-host")
        == []
    )


def test_config_error_carries_file_and_line() -> None:
    found = run(b'[[domain]]\nname = "a.example.com"\npins = ["sha1/abc"]\n', "bad.toml")
    assert [(f.id, f.severity, f.source) for f in found] == [("config-error", "error", "bad.toml")]
    assert found[0].line == 3
    assert "sha1" in found[0].message


# -- Android platform facts (importer-owned ids, merged without duplicates) ----------------


def test_user_trust_anchors_error_in_base_info_in_debug() -> None:
    base = '<base-config><trust-anchors><certificates src="user" /></trust-anchors></base-config>'
    debug = base.replace("base-config", "debug-overrides")
    assert [
        f.severity for f in ids(run(nsc(base + pinned_config()), "n.xml"), "user-trust-anchors")
    ] == ["error"]
    assert [
        f.severity for f in ids(run(nsc(debug + pinned_config()), "n.xml"), "user-trust-anchors")
    ] == ["info"]
    system = base.replace('"user"', '"system"')
    assert ids(run(nsc(system + pinned_config()), "n.xml"), "user-trust-anchors") == []


def test_override_pins_outside_debug_overrides() -> None:
    anchors = '<trust-anchors><certificates src="system" overridePins="true" /></trust-anchors>'
    config = pinned_config().replace("</pin-set>", "</pin-set>" + anchors)
    assert [f.severity for f in ids(run(nsc(config), "n.xml"), "override-pins")] == ["error"]
    debug = f"<debug-overrides>{anchors}</debug-overrides>"
    assert ids(run(nsc(debug + pinned_config()), "n.xml"), "override-pins") == []


def test_cleartext_permitted_in_the_config_is_reported_once() -> None:
    config = pinned_config(attrs=' cleartextTrafficPermitted="true"')
    found = ids(run(nsc(config), "n.xml"), "cleartext-permitted")
    assert [(f.severity, f.domain) for f in found] == [("error", "api.example.com")]
    assert ids(run(nsc(pinned_config()), "n.xml"), "cleartext-permitted") == []


def test_importer_findings_are_not_duplicated() -> None:
    findings = run(nsc(pinned_config(pins=(P1,))), "n.xml")
    keys = [(f.id, f.domain, f.line) for f in findings]
    assert len(keys) == len(set(keys))
    assert len(ids(findings, "no-expiration")) == 0  # the pin-set has an expiration


# -- APK rules on the committed fixtures ----------------------------------------------------


def apk(name: str) -> list[Finding]:
    return list(audit([APK / name], now=NOW).findings)


def test_debuggable_release() -> None:
    found = ids(apk("debuggable.apk"), "debuggable-release")
    assert [f.severity for f in found] == ["warning"]
    assert ids(apk("release.apk"), "debuggable-release") == []


def test_debug_overrides_in_a_debuggable_apk_are_live() -> None:
    # debuggable.apk: android:debuggable="true" and <debug-overrides> trusting user CAs
    # with overridePins="true" (scripts/make_fixture_apks.py, DEBUG_NSC).
    (live,) = ids(apk("debuggable.apk"), "debug-overrides-live")
    assert live.severity == "error"
    assert 'src="user"' in live.message
    assert "pins bypassed" in live.message
    assert (live.source or "").endswith("!/res/xml/network_security_config.xml")
    assert live.line == 9
    assert ids(apk("debuggable.apk"), "debug-overrides") == []


def test_debug_overrides_in_a_non_debuggable_apk_are_an_info() -> None:
    # cleartext.apk carries the same config, without android:debuggable.
    (inactive,) = ids(apk("cleartext.apk"), "debug-overrides")
    assert inactive.severity == "info"
    assert "inactive" in inactive.message
    assert ids(apk("cleartext.apk"), "debug-overrides-live") == []
    assert ids(apk("release.apk"), "debug-overrides") == []  # no <debug-overrides>


def test_debug_overrides_in_a_policy_say_they_need_debug_true() -> None:
    policy = toml(domain("api.example.com", P1, P2)) + (
        b'\n[debug-overrides]\ntrust-anchors = ["team-proxy-ca.pem"]\noverride-pins = true\n'
    )
    (found,) = ids(run(policy, "pinset.toml"), "debug-overrides")
    assert (found.severity, found.source, found.line) == ("info", "pinset.toml", 8)
    assert "ssl_context(policy, debug=True)" in found.message
    assert ids(run(toml(domain("api.example.com", P1, P2)), "p.toml"), "debug-overrides") == []


def test_debug_overrides_in_an_android_config_point_at_the_apk_audit() -> None:
    debug = (
        "<debug-overrides><trust-anchors>"
        '<certificates src="@raw/team_proxy_ca" />'
        "</trust-anchors></debug-overrides>"
    )
    (found,) = ids(run(nsc(pinned_config() + debug), "n.xml"), "debug-overrides")
    assert found.severity == "info"
    assert 'src="@raw/team_proxy_ca" with overridePins' in found.message  # Android's default
    assert "pinset audit app.apk" in found.message


def test_cleartext_from_the_manifest_for_a_pinned_domain() -> None:
    found = ids(apk("cleartext.apk"), "cleartext-permitted")
    assert [(f.severity, f.domain) for f in found] == [("error", "api.example.com")]
    assert (found[0].source or "").endswith("!/AndroidManifest.xml")
    assert ids(apk("release.apk"), "cleartext-permitted") == []
    assert ids(apk("no-config.apk"), "cleartext-permitted") == []  # nothing pinned


def test_pins_in_code_differ_both_ways() -> None:
    found = ids(apk("code-differs.apk"), "pins-in-code-differ")
    messages = " ".join(f.message for f in found)
    assert P3 in messages  # in code only
    assert P2 in messages  # in the config only
    assert P1 not in messages
    assert all(f.severity == "warning" for f in found)
    assert ids(apk("release.apk"), "pins-in-code-differ") == []
    assert [P3 in f.message for f in ids(apk("no-config.apk"), "pins-in-code-differ")] == [True]


def test_invalid_pin_in_code() -> None:
    found = ids(apk("code-differs.apk"), "invalid-pin")
    assert [f.severity for f in found] == ["error"]
    assert "notAValidPinButLooksLikeOne" in found[0].message
    assert ids(apk("release.apk"), "invalid-pin") == []


# -- chain rules (supplied chains; live fetching is in test_audit_live.py) ------------------


@pytest.fixture(scope="module")
def chain_pki() -> TestPKI:
    return TestPKI()


def chain_run(
    pki: TestPKI, pins: Sequence[str], chain: Sequence[x509.Certificate], **kw: object
) -> list[Finding]:
    data = toml(domain("api.example.com", *pins))
    return run(
        data, chains={"api.example.com": LiveChain("api.example.com", "test", tuple(chain))}, **kw
    )  # type: ignore[arg-type]


def test_no_live_match(chain_pki: TestPKI) -> None:
    leaf = chain_pki.leaf("api.example.com")
    found = ids(chain_run(chain_pki, (P1, P2), leaf.chain), "no-live-match")
    assert [f.severity for f in found] == ["error"]
    assert str(spki_pin(leaf.cert)) in found[0].message
    ok = chain_run(chain_pki, (str(spki_pin(leaf.cert)), P2), leaf.chain)
    assert ids(ok, "no-live-match") == []


def test_no_offline_backup(chain_pki: TestPKI) -> None:
    leaf = chain_pki.leaf("api.example.com")
    both = (str(spki_pin(leaf.cert)), str(spki_pin(chain_pki.intermediate.cert)))
    assert [
        f.severity for f in ids(chain_run(chain_pki, both, leaf.chain), "no-offline-backup")
    ] == ["warning"]
    with_backup = (*both, str(spki_pin(generate_key())))
    assert ids(chain_run(chain_pki, with_backup, leaf.chain), "no-offline-backup") == []


def test_leaf_pin_cert_expiring(chain_pki: TestPKI) -> None:
    soon = chain_pki.leaf("api.example.com", not_after=NOW + dt.timedelta(days=10))
    pins = (str(spki_pin(soon.cert)), P2)
    found = ids(chain_run(chain_pki, pins, soon.chain), "leaf-pin-cert-expiring")
    assert [f.severity for f in found] == ["warning"]
    later = chain_pki.leaf("api.example.com", not_after=NOW + dt.timedelta(days=90))
    assert (
        ids(
            chain_run(chain_pki, (str(spki_pin(later.cert)), P2), later.chain),
            "leaf-pin-cert-expiring",
        )
        == []
    )
    # Pinning the intermediate as well: a leaf renewal with a new key still passes.
    pins = (str(spki_pin(soon.cert)), str(spki_pin(chain_pki.intermediate.cert)), P2)
    assert ids(chain_run(chain_pki, pins, soon.chain), "leaf-pin-cert-expiring") == []


def test_root_only_pins(chain_pki: TestPKI) -> None:
    leaf = chain_pki.leaf("api.example.com")
    root_pin = str(spki_pin(chain_pki.root.cert))
    found = ids(chain_run(chain_pki, (root_pin, P2), leaf.full_chain), "root-only-pins")
    assert [f.severity for f in found] == ["warning"]
    inter = str(spki_pin(chain_pki.intermediate.cert))
    assert ids(chain_run(chain_pki, (inter, P2), leaf.full_chain), "root-only-pins") == []


def test_extra_hosts_are_judged_by_the_rule_that_covers_them(chain_pki: TestPKI) -> None:
    leaf = chain_pki.leaf("www.example.com")
    data = toml(domain("example.com", P1, P2, extra="include-subdomains = true"))
    found = run(data, chains={"www.example.com": leaf.chain})
    hits = ids(found, "no-live-match")
    assert [f.domain for f in hits] == ["example.com"]
    assert "www.example.com" in hits[0].message


SINGLE = domain("a.example.com", P1, PLACEHOLDER, extra="allow-single-pin = true", expiration=None)


@pytest.mark.parametrize(
    ("name", "data"),
    [("pinset.toml", toml(SINGLE)), ("nsc.xml", nsc(pinned_config(pins=(P1, PLACEHOLDER))))],
)
def test_import_and_audit_say_the_same_of_the_pins_as_written(name: str, data: bytes) -> None:
    # One owner per rule: pinset import prints what the audit's rules compute.
    imported = formats.loads(data, source=name)
    written = {f for f in imported_findings(imported) if f.id in AS_WRITTEN}
    audited = {f for f in run(data, name) if f.id in AS_WRITTEN}
    assert written == audited
    assert {f.id for f in written} >= {"missing-backup-pin", "placeholder-pin"}
    assert not {f.id for f in imported.findings} & AS_WRITTEN  # the importer judges none
