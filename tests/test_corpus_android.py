"""Every Android config of the real-world corpus imports, or fails where Android itself would.

Expected values were read off each file by hand (see tests/fixtures/corpus/README.md),
not produced by running the importer.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pinset import formats, policyfile
from pinset.audit import imported_findings
from pinset.errors import ConfigError
from pinset.formats._model import Imported
from pinset.pins import Pin

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
NSC = CORPUS / "android-nsc"
NOPIN = CORPUS / "android-nsc-nopin"


@dataclass(frozen=True)
class Rule:
    name: str
    pins: int
    a_pin: str
    include: bool
    expiration: dt.date | None = None
    single: bool = False
    placeholder_only: bool = False  # every pin a placeholder: kept, refusing every connection


@dataclass(frozen=True)
class Case:
    file: str
    format: str  # what detection picks
    rules: tuple[Rule, ...]
    findings: frozenset[tuple[str, str | None, int]] = field(default_factory=frozenset)
    unpinned: tuple[str, ...] = ()  # domains configured without pins (no rule)


def F(*items: tuple[str, str | None, int]) -> frozenset[tuple[str, str | None, int]]:
    return frozenset(items)


CASES = [
    Case(
        "threema-ch__threema-android__network_security_config.xml",
        "android",
        (
            Rule("threema.ch", 6, "vGQZ8hm2h+km+q7rnJ7kF9S17BwSY0rbhwjz6nIupf0=", True),
            Rule("threema.com", 6, "j4n4RTr0MLfQ3gBmONIFreXDq5/Kkb2oquVTmq0n5pI=", True),
            Rule("sfu.threema.ch", 4, "Jo4Re5X+mksn/Ankgrnov07caZwkkT8NezJMQf1i8cI=", True),
            Rule("test.threema.ch", 3, "bmsGGaIGEs1HWAUIE082NSPYTURvChScDmE7PjL+5RQ=", True),
        ),
        F(
            ("user-trust-anchors", None, 9),
            ("no-expiration", "threema.ch", 18),
            ("no-expiration", "test.threema.ch", 53),
        ),
    ),
    Case(
        "ProtonMail__proton-mail-android__network_security_config.xml",
        "trustkit-android",
        (Rule("api.protonmail.ch", 4, "AfMENBVvOS8MnISprtvyPsjKlPooqh8nMB/pvCrpJpw=", True),),
        F(
            ("cleartext-permitted", "api.protonmail.ch", 22),
            ("ignored-attribute", "localhost", 45),
            ("no-expiration", "api.protonmail.ch", 32),
        ),
        unpinned=("localhost",),
    ),
    Case(
        "ProtonVPN__android-app__network_security_config.xml",
        "trustkit-android",
        (Rule("api.protonvpn.ch", 4, "IEwk65VSaxv3s1/88vF/rM8PauJoIun3rzVCX5mLS3M=", True),),
        F(
            ("non-canonical-pin", "api.protonvpn.ch", 33),
            ("user-trust-anchors", None, 54),
        ),
        unpinned=("localhost",),
    ),
    Case(
        "httptoolkit__android-ssl-pinning-demo__network_security_config.xml",
        "trustkit-android",
        (
            Rule(
                "sha256.badssl.com",
                2,
                "C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M=",
                False,
                single=True,
            ),
            # No trustkit-config: TrustKit does not enforce it, so no single-pin acceptance.
            Rule("rsa4096.badssl.com", 1, "C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M=", False),
        ),
        F(
            ("placeholder-pin", "sha256.badssl.com", 17),
            ("non-canonical-pin", "sha256.badssl.com", 17),
            ("missing-backup-pin", "sha256.badssl.com", 13),
            ("missing-backup-pin", "rsa4096.badssl.com", 30),
        ),
        unpinned=("amiusing.httptoolkit.tech",),
    ),
    Case(
        "httptoolkit__android-ssl-pinning-demo__network_security_config_HEAD.xml",
        "trustkit-android",
        (
            Rule(
                "rsa2048--untrusted-root.testserver.host",
                2,
                "SOCynZ/Y0dEFXgzk6JBT75LF3JhnwWGNJ4SMOmU8CIY=",
                False,
            ),
            Rule(
                "rsa4096--untrusted-root.testserver.host",
                2,
                "SOCynZ/Y0dEFXgzk6JBT75LF3JhnwWGNJ4SMOmU8CIY=",
                False,
                single=True,
            ),
        ),
        F(("placeholder-pin", "rsa2048--untrusted-root.testserver.host", 31)),
        unpinned=(
            "testserver.host",
            "rsa8192--untrusted-root.testserver.host",
            "tls-v1-3--tls-v1-2.testserver.host",
        ),
    ),
    Case(
        "afterpay__sdk-android__example_network_security_config.xml",
        "android",
        (
            Rule(
                "portal.afterpay.com",
                1,
                "nQ1Tu17lpJ/Hsr3545eCkig+X9ZPcxRQoe5WMSyyqJI=",
                False,
                dt.date(2022, 5, 25),
                single=True,
            ),
            Rule(
                "portal.sandbox.afterpay.com",
                1,
                "15mVY9KpcF6J/UzKCS2AfUjUWPVsIvxi9PW0XuFnvH4=",
                False,
                dt.date(2021, 7, 5),
                single=True,
            ),
        ),
        F(
            ("missing-backup-pin", "portal.afterpay.com", 13),
            ("missing-backup-pin", "portal.sandbox.afterpay.com", 25),
        ),
        unpinned=("10.0.2.2",),
    ),
    Case(
        "corona-warn-app__cwa-app-android__network_security_config.xml",
        "android",
        (
            Rule(
                "coronawarn.app",
                1,
                "c3jf+L8VIAFQnJJDM6Mfb4MtI1JnhVS8JwZHMwJj28M=",
                True,
                dt.date(2024, 2, 12),
                single=True,
            ),
            Rule(
                "main.px.t-online.de",
                1,
                "c3jf+L8VIAFQnJJDM6Mfb4MtI1JnhVS8JwZHMwJj28M=",
                True,
                dt.date(2024, 2, 12),
                single=True,
            ),
        ),
        F(("missing-backup-pin", "coronawarn.app", 7)),
    ),
    Case(
        "ukhsa-collaboration__COVID-19-app-Android-BETA__network_security_config.xml",
        "android",
        (Rule("nhs.uk", 1, "hETpgVvaLC0bvcGG3t0cuqiHvr4XyP2MTwCiqhgRWwU=", True, single=True),),
        F(("user-trust-anchors", None, 15), ("missing-backup-pin", "nhs.uk", 26)),
        unpinned=("localhost",),
    ),
    Case(
        "GrapheneOS__Auditor__network_security_config.xml",
        "android",
        (Rule("attestation.app", 9, "MHTuuvUtY/BsEx5eo4Jf0TL2F9dyfmN40pqhyIDnp7U=", True),),
        F(("no-expiration", "attestation.app", 7)),
    ),
    Case(
        "GrapheneOS__AppStore__network_security_config.xml",
        "android",
        (Rule("apps.grapheneos.org", 8, "vZNucrIS7293MQLGt304+UKXMi78JTlrwyeUIuDIknA=", True),),
        F(("no-expiration", "apps.grapheneos.org", 7)),
    ),
    Case(
        "GrapheneOS__platform_packages_apps_Updater__network_security_config.xml",
        "android",
        (
            Rule(
                "releases.grapheneos.org",
                4,
                "r5ZtzhR6jqa5GuGWMqABMUjTyeiln5w4CAcEtjsMrgw=",
                True,
                dt.date(2023, 11, 1),
            ),
        ),
    ),
    Case(
        "Mosaic-OS__Updater__network_security_config.xml",
        "android",
        (
            Rule(
                "releases.grapheneos.org",
                6,
                "fk6IOKit1ild5647BH06ujSIq5XbCgqlbYl6ANhhi88=",
                True,
                dt.date(2026, 10, 1),
            ),
        ),
    ),
    Case(
        "DiamaneOS__platform_packages_apps_NetworkLocation__network_security_config.xml",
        "android",
        (Rule("location.diamaneos.de", 6, "hnQhFg60r+Y/vcYrWful1ek2pPnMco1NGb561YaUjb0=", True),),
        F(("no-expiration", "location.diamaneos.de", 8)),
    ),
    Case(
        "MuntashirAkon__AppManager__network_security_config.xml",
        "android",
        (
            Rule(
                "www.virustotal.com",
                6,
                "CLOmM1/OXvSPjw5UOYbAf9GKOxImEp9hhku9W90fHMk=",
                True,
                dt.date(2028, 1, 27),
            ),
        ),
        unpinned=("127.0.0.1", "localhost"),
    ),
    Case(
        "datatheorem__TrustKit-Android__app_network_security_config.xml",
        "trustkit-android",
        (
            Rule(
                "www.datatheorem.com",
                2,
                "YLh1dUR9y6Kja30RrAn7JKnbQG/uEtLMkBgFF2Fuihg=",
                True,
                dt.date(2018, 1, 1),
                single=True,
            ),
            Rule(
                "www.google.com",
                2,
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                True,
                placeholder_only=True,
            ),
        ),
        F(
            ("placeholder-pin", "www.datatheorem.com", 7),
            ("placeholder-pin", "www.google.com", 16),  # all placeholders: an error
            ("ignored-attribute", "www.google.com", 14),
        ),
    ),
    Case(
        "datatheorem__TrustKit-Android__androidTest_network_security_config.xml",
        "trustkit-android",
        (
            Rule(
                "www.datatheorem.com",
                2,
                "u91x/rv9ivMrXO0du6N2ABI6BiiVfD0T99DTEzoqSv4=",
                False,
                single=True,
            ),
            Rule(
                "datatheorem.com",
                2,
                "hxqRlPTu1bMS/0DITB1SSu0vd4u/8l8TjPgfaAp63Gc=",
                False,
                single=True,
            ),
            # AAAA + BBBB only; enforcePinning="true" on yahoo, "false" on the others.
            Rule(
                "www.yahoo.com",
                2,
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                False,
                placeholder_only=True,
            ),
            Rule(
                "www.github.com",
                2,
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                False,
                placeholder_only=True,
            ),
            Rule(
                "www.microsoft.com",
                2,
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                False,
                dt.date(2015, 1, 1),
                placeholder_only=True,
            ),
            Rule(
                "expired.badssl.com",
                2,
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                False,
                placeholder_only=True,
            ),
            Rule(
                "untrusted-root.badssl.com",
                2,
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                False,
                placeholder_only=True,
            ),
            Rule(
                "wrong.host.badssl.com",
                2,
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                False,
                placeholder_only=True,
            ),
        ),
        F(
            ("placeholder-pin", "www.yahoo.com", 29),
            ("placeholder-pin", "www.github.com", 40),
            ("placeholder-pin", "www.microsoft.com", 51),
            ("placeholder-pin", "wrong.host.badssl.com", 84),
        ),
    ),
    Case(
        "aosp-mirror__platform_frameworks_base__NetworkSecurityConfigTest_pins1.xml",
        "android",
        (
            Rule(
                "android.com", 1, "zCTnfLwLKbS9S2sbp+uFz4KZOocFvXxkV06Ce9O5M2w=", False, single=True
            ),
        ),
        F(("missing-backup-pin", "android.com", 5)),
    ),
    Case(
        "aosp-mirror__platform_frameworks_base__NetworkSecurityConfigTest_bad_pin.xml",
        "android",
        (
            Rule(
                "android.com", 1, "1HIpactkIAq2Y49orFOOQKurWxmmSFZhBCoQYcRhJ3Y=", False, single=True
            ),
        ),
    ),
    Case(
        "aosp-mirror__platform_frameworks_base__NetworkSecurityConfigTest_expired_pin.xml",
        "android",
        (
            Rule(
                "android.com",
                1,
                "aaaaaaaaaaa2Y49orFOOQKurWxmmSFZhBCoQYcRhJ3Y=",
                False,
                dt.date(2015, 1, 1),
                single=True,
            ),
        ),
    ),
    Case(
        "aosp-mirror__platform_frameworks_base__NetworkSecurityConfigTest_override_pins.xml",
        "android",
        (
            Rule(
                "android.com", 1, "aaaaaaaaIAq2Y49orFOOQKurWxmmSFZhBCoQYcRhJ3Y=", False, single=True
            ),
        ),
        F(("override-pins", "android.com", 9)),
    ),
    Case(
        "aosp-mirror__platform_frameworks_base__NetworkSecurityConfigTest_nested_domains.xml",
        "android",
        (
            Rule(
                "developer.android.com",
                1,
                "zCTnfLwLKbS9S2sbp+uFz4KZOocFvXxkV06Ce9O5M2w=",
                False,
                single=True,
            ),
        ),
        unpinned=("android.com",),
    ),
    Case(
        "../android-nsc-nopin/aosp-mirror__platform_frameworks_base__NetworkSecurityConfigTest_ct_domains.xml",
        "android",
        (),
        F(
            ("user-trust-anchors", "subdomain_user.android.com", 15),
            ("user-trust-anchors", "subdomain_user_ct.android.com", 22),
        ),
        # The CT-only ones (test_aosp_ct_domains_import_as_ct_alone) are rules, not facts.
        unpinned=("subdomain_user.android.com", "subdomain_inline.android.com"),
    ),
]


def _import(case: Case) -> Imported:
    path = NSC / case.file
    data = path.read_bytes()
    assert formats.detect(data, path.name) == case.format
    return formats.loads(data, source=path.name)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.file.rsplit("/", 1)[-1][:50])
def test_corpus_file_imports_with_its_domains_pins_and_findings(case: Case) -> None:
    imported = _import(case)
    # CT-only rules (no pins) are checked by test_aosp_ct_domains_import_as_ct_alone.
    rules = {r.name: r for r in imported.policy.rules if not r.ct_only}
    assert set(rules) == {r.name for r in case.rules}
    for expected in case.rules:
        rule = rules[expected.name]
        assert len(rule.pins) == expected.pins
        assert Pin.parse(expected.a_pin) in rule.pins
        assert rule.include_subdomains is expected.include
        assert rule.expiration == expected.expiration
        assert rule.allow_single_pin is expected.single
        assert rule.placeholder_only is expected.placeholder_only
        assert not rule.exclude
    got = {(f.id, f.domain, f.line) for f in imported_findings(imported)}
    assert case.findings <= got, sorted(case.findings - got)
    assert all(f.source == Path(case.file).name for f in imported_findings(imported))
    facts = {d.name for d in imported.domains if d.scope == "domain"}
    assert set(case.unpinned) <= facts - set(rules)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.file.rsplit("/", 1)[-1][:50])
def test_corpus_policy_survives_export_and_reimport(case: Case) -> None:
    imported = _import(case)
    toml = policyfile.dumps(imported.policy)
    again = formats.loads(toml, format="pinset").policy
    assert again == imported.policy
    if all(r.enforce and not r.report_uris for r in imported.policy.rules):
        dated = any(r.expiration for r in imported.policy.rules)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            text = formats.dumps(imported.policy, "android")
        assert ["local midnight" in str(w.message) for w in caught] == [True] * dated
        assert formats.loads(text, format="android").policy == imported.policy


def test_aosp_ct_domains_import_as_ct_alone() -> None:
    # AOSP's own expectations for this file (platform_frameworks_base NetworkSecurityConfigTest,
    # testCertificateTransparencyDomainConfig: isCertificateTransparencyVerificationRequired):
    # true for android.com (from base-config), false under user or inline anchors, true where
    # the domain-config enables it itself. None of them has a pin-set: CT alone.
    name = "aosp-mirror__platform_frameworks_base__NetworkSecurityConfigTest_ct_domains.xml"
    path = NSC.parent / "android-nsc-nopin" / name
    imported = formats.loads(path.read_bytes(), source=path.name)
    assert {r.name: r.ct_only for r in imported.policy.rules} == {
        "android.com": True,
        "subdomain_user_ct.android.com": True,
        "subdomain_inline_ct.android.com": True,
    }
    facts = {d.name: d.certificate_transparency for d in imported.domains if d.scope == "domain"}
    assert facts["subdomain_user.android.com"] is False  # user anchors turn it off
    assert facts["android.com"] is True
    assert imported.policy.rule_for("subdomain_user.android.com") is None
    assert imported.policy.rule_for("subdomain_inline.android.com") is None


def test_trustkit_readings_of_proton_mail() -> None:
    data = (NSC / "ProtonMail__proton-mail-android__network_security_config.xml").read_bytes()
    as_trustkit = formats.loads(data, format="trustkit-android")
    (rule,) = as_trustkit.policy.rules
    assert rule.enforce is True
    assert rule.report_uris == ("https://reports.protonmail.ch/reports/tls",)
    as_android = formats.loads(data, format="android")
    assert as_android.policy.rules[0].report_uris == ()
    assert ("trustkit-config", "api.protonmail.ch") in {
        (f.id, f.domain) for f in as_android.findings
    }


def test_httptoolkit_domain_facts_keep_raw_anchors_and_ct() -> None:
    base = "httptoolkit__android-ssl-pinning-demo__network_security_config"
    old = formats.loads((NSC / f"{base}.xml").read_bytes(), format="android")
    facts = {d.name: d for d in old.domains}
    assert [a.src for a in facts["sha256.badssl.com"].trust_anchors] == [
        "@raw/lets_encrypt_isrg_root"
    ]
    assert facts["amiusing.httptoolkit.tech"].cleartext_permitted is True
    head = formats.loads((NSC / f"{base}_HEAD.xml").read_bytes(), format="android")
    facts = {d.name: d for d in head.domains}
    assert facts["tls-v1-3--tls-v1-2.testserver.host"].certificate_transparency is True
    assert [a.src for a in facts["rsa2048--untrusted-root.testserver.host"].trust_anchors] == [
        "@raw/testserver_root",
        "system",
    ]


def test_nested_domain_inherits_parent_trust_anchors() -> None:
    path = (
        NSC / "aosp-mirror__platform_frameworks_base__NetworkSecurityConfigTest_nested_domains.xml"
    )
    imported = formats.loads(path.read_bytes(), format="android")
    facts = {d.name: d for d in imported.domains if d.scope == "domain"}
    assert [a.src for a in facts["developer.android.com"].trust_anchors] == ["system"]
    assert facts["developer.android.com"].cleartext_permitted is False  # from base-config


def test_debug_override_anchors_override_pins_by_default() -> None:
    path = NOPIN / "MetaMask__metamask-mobile__network_security_config.xml"
    text = path.read_text().replace("${isDebug}", "false")
    imported = formats.loads(text, format="android")
    (debug,) = [d for d in imported.domains if d.scope == "debug"]
    assert [(a.src, a.override_pins) for a in debug.trust_anchors] == [
        ("user", True),
        ("system", True),
    ]


@pytest.mark.parametrize(
    ("path", "line", "column", "words"),
    [
        (
            NSC
            / "aosp-mirror__platform_frameworks_base__NetworkSecurityConfigTest_bad_config5.xml",
            5,
            5,
            "<pin-set> is not allowed in <base-config>",
        ),
        (
            NSC / "semgrep__semgrep-rules__best-practice_network-security-config_MULTIROOT.xml",
            18,
            1,
            "junk after document element",
        ),
        (
            NOPIN / "MetaMask__metamask-mobile__network_security_config.xml",
            9,
            16,
            "unresolved placeholder '${isDebug}'",
        ),
    ],
    ids=["bad_config5", "semgrep-multiroot", "metamask-placeholder"],
)
def test_corpus_file_invalid_for_android_fails_with_file_and_line(
    path: Path, line: int, column: int, words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        formats.loads(path.read_bytes(), source=path.name)
    err = info.value
    assert words in err.message
    assert (err.source, err.line, err.column) == (path.name, line, column)
    assert err.hint
