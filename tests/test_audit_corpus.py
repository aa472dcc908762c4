"""The auditor on every file of the real-world corpus, as of 2026-11-28.

Expectations come from reading each file and its line in ``corpus/README.md``:
single pins, placeholder backups, expired pin sets, user anchors, overridePins,
cleartext, and config errors for the files Android itself rejects.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pinset.audit import audit
from pinset.audit._model import AuditReport

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
NOW = dt.datetime(2026, 11, 28, tzinfo=dt.timezone.utc)
FILES = sorted(p for p in CORPUS.glob("*/*") if p.name != "README.md")

Expect = set[tuple[str, str, str | None]]

# file name -> findings (id, severity, domain) that must be among the report's.
EXPECTED: dict[str, Expect] = {
    "threema-ch__threema-android__network_security_config.xml": {
        ("user-trust-anchors", "error", None),  # base-config trusts user CAs
        ("no-expiration", "info", "threema.ch"),
        ("overlapping-rules", "info", "sfu.threema.ch"),
    },
    "ProtonMail__proton-mail-android__network_security_config.xml": {
        ("cleartext-permitted", "error", "api.protonmail.ch"),  # base-config cleartext="true"
        ("no-expiration", "info", "api.protonmail.ch"),
    },
    "ProtonVPN__android-app__network_security_config.xml": {
        ("non-canonical-pin", "warning", "api.protonvpn.ch"),  # unpadded IEwk…LS3M
        ("user-trust-anchors", "info", None),  # only inside debug-overrides
    },
    "httptoolkit__android-ssl-pinning-demo__network_security_config.xml": {
        ("placeholder-pin", "warning", "sha256.badssl.com"),  # ABCDEF… dud
        ("missing-backup-pin", "error", "sha256.badssl.com"),
    },
    "httptoolkit__android-ssl-pinning-demo__network_security_config_HEAD.xml": {
        ("placeholder-pin", "warning", "rsa4096--untrusted-root.testserver.host"),
    },
    "afterpay__sdk-android__example_network_security_config.xml": {
        ("pin-set-expired", "error", "portal.afterpay.com"),  # 2022-05-25
        ("pin-set-expired", "error", "portal.sandbox.afterpay.com"),  # 2021-07-05
        ("missing-backup-pin", "warning", "portal.afterpay.com"),  # tools:ignore accepts it
    },
    "corona-warn-app__cwa-app-android__network_security_config.xml": {
        ("pin-set-expired", "error", "coronawarn.app"),  # 2024-02-12
        ("missing-backup-pin", "warning", "coronawarn.app"),
    },
    "ukhsa-collaboration__COVID-19-app-Android-BETA__network_security_config.xml": {
        ("missing-backup-pin", "error", "nhs.uk"),
        ("no-expiration", "info", "nhs.uk"),
        ("user-trust-anchors", "info", None),
        ("include-subdomains-public-suffix", "error", "nhs.uk"),  # nhs.uk is on the PSL
    },
    "GrapheneOS__platform_packages_apps_Updater__network_security_config.xml": {
        ("pin-set-expired", "error", "releases.grapheneos.org"),  # 2023-11-01
    },
    "Mosaic-OS__Updater__network_security_config.xml": {
        ("pin-set-expired", "error", "releases.grapheneos.org"),  # 2026-10-01
    },
    "datatheorem__TrustKit-Android__app_network_security_config.xml": {
        ("pin-set-expired", "error", "www.datatheorem.com"),  # 2018-01-01
        ("placeholder-pin", "warning", "www.datatheorem.com"),
        ("placeholder-pin", "error", "www.google.com"),  # AAAA + BBBB only
    },
    "datatheorem__TrustKit-Android__androidTest_network_security_config.xml": {
        ("placeholder-pin", "warning", "www.datatheorem.com"),
        ("placeholder-pin", "error", "www.yahoo.com"),
    },
    "aosp-mirror__platform_frameworks_base__NetworkSecurityConfigTest_pins1.xml": {
        ("missing-backup-pin", "error", "android.com"),
    },
    "aosp-mirror__platform_frameworks_base__NetworkSecurityConfigTest_bad_pin.xml": {
        ("missing-backup-pin", "error", "android.com"),
    },
    "aosp-mirror__platform_frameworks_base__NetworkSecurityConfigTest_expired_pin.xml": {
        ("pin-set-expired", "error", "android.com"),  # 2015-01-01
    },
    "aosp-mirror__platform_frameworks_base__NetworkSecurityConfigTest_override_pins.xml": {
        ("override-pins", "error", "android.com"),
    },
    "aosp-mirror__platform_frameworks_base__NetworkSecurityConfigTest_nested_domains.xml": {
        ("missing-backup-pin", "error", "developer.android.com"),
    },
    "aosp-mirror__platform_frameworks_base__NetworkSecurityConfigTest_bad_config5.xml": {
        ("config-error", "error", None),  # pin-set inside base-config
    },
    "semgrep__semgrep-rules__best-practice_network-security-config_MULTIROOT.xml": {
        ("config-error", "error", None),  # eight root elements
    },
    "MetaMask__metamask-mobile__network_security_config.xml": {
        ("config-error", "error", None),  # ${isDebug} placeholder
    },
    "aosp-mirror__platform_frameworks_base__NetworkSecurityConfigTest_ct_domains.xml": {
        ("user-trust-anchors", "error", "subdomain_user.android.com"),
    },
    "guardian__coverdrop__reference_Info.plist": {
        ("missing-backup-pin", "error", "coverdrop-api.code.dev-gutools.co.uk"),
        ("missing-backup-pin", "error", "secure-messaging.code.dev-guardianapis.com"),
    },
    "guardian__coverdrop__referenceAudit-Info.plist": {
        ("missing-backup-pin", "error", "secure-messaging-api-audit.guardianapis.com"),
    },
    "datatheorem__TrustKit__TrustKitTests_Info.plist": {
        ("no-expiration", "info", "www.datatheorem.com"),
    },
}

# Well-kept configs: several real pins with backups; only the missing expiration is noted.
CLEAN_OF_ERRORS = {
    "GrapheneOS__Auditor__network_security_config.xml",
    "GrapheneOS__AppStore__network_security_config.xml",
    "DiamaneOS__platform_packages_apps_NetworkLocation__network_security_config.xml",
    "MuntashirAkon__AppManager__network_security_config.xml",
    "datatheorem__TrustKit__TrustKitTests_Info.plist",
}


@pytest.fixture(scope="module")
def reports() -> dict[str, AuditReport]:
    return {path.name: audit([path], now=NOW) for path in FILES}


def test_every_corpus_file_has_an_expectation() -> None:
    assert {p.name for p in FILES} == set(EXPECTED) | CLEAN_OF_ERRORS


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_expected_findings(name: str, reports: dict[str, AuditReport]) -> None:
    report = reports[name]
    got = {(f.id, f.severity, f.domain) for f in report.findings}
    missing = EXPECTED[name] - got
    assert not missing, f"{name}: missing {missing}; got {sorted(got)}"
    assert report.unreadable == ()


@pytest.mark.parametrize("name", sorted(CLEAN_OF_ERRORS))
def test_well_kept_configs_have_no_errors(name: str, reports: dict[str, AuditReport]) -> None:
    report = reports[name]
    assert report.count("error") == 0, [f for f in report.findings if f.severity == "error"]
    assert report.exit_code == 0
    assert report.domains


def test_exit_codes_follow_errors(reports: dict[str, AuditReport]) -> None:
    for name, report in reports.items():
        has_error = any(f.severity == "error" for f in report.findings)
        assert report.exit_code == (1 if has_error else 0), name


def test_config_errors_carry_the_line(reports: dict[str, AuditReport]) -> None:
    for name in (
        "aosp-mirror__platform_frameworks_base__NetworkSecurityConfigTest_bad_config5.xml",
        "semgrep__semgrep-rules__best-practice_network-security-config_MULTIROOT.xml",
        "MetaMask__metamask-mobile__network_security_config.xml",
    ):
        errors = [f for f in reports[name].findings if f.id == "config-error"]
        assert errors
        assert errors[0].line
        assert (errors[0].source or "").endswith(name)
