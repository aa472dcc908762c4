"""Reading real APKs (aapt-built binary XML + resources.arsc) and IPAs (binary plists)."""

from __future__ import annotations

import datetime as dt
import itertools
import plistlib
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinset.audit import audit
from pinset.audit._apk import read_apk, scan_dex
from pinset.audit._ipa import read_ipa
from pinset.errors import ConfigError

NOW = dt.datetime(2026, 11, 28, tzinfo=dt.timezone.utc)
FIXTURES = Path(__file__).parent / "fixtures"
P1 = "kYYgDApU0eMPFGwHsLBIN0rf5c1kMzSVfli/vKiX+I4="
P2 = "l8JdxVDkl1UMPlCRhIK2OychjartZsndSA2okFQOFko="


def test_fixture_apks_are_small_real_apks() -> None:
    for path in sorted((FIXTURES / "apk").glob("*.apk")):
        assert path.stat().st_size < 50_000
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            assert {"AndroidManifest.xml", "classes.dex"} <= names
            manifest = archive.read("AndroidManifest.xml")
            assert manifest[:2] == b"\x03\x00"  # binary XML chunk type, not text
            assert archive.read("classes.dex").startswith(b"dex\n035\0")


def test_release_apk_config_is_found_through_the_resource_table() -> None:
    contents = read_apk((FIXTURES / "apk" / "release.apk").read_bytes(), name="release.apk")
    assert contents.facts.package == "net.example.release"
    assert contents.facts.config_path == "res/xml/network_security_config.xml"
    assert contents.facts.debuggable is False
    assert contents.facts.uses_cleartext is False
    assert contents.config_xml is not None
    assert P1 in contents.config_xml
    assert [pin for pin, _where in contents.facts.code_pins] == [f"sha256/{P1}", f"sha256/{P2}"]


def test_shortened_resource_path_is_resolved_not_guessed() -> None:
    data = (FIXTURES / "apk" / "shortened.apk").read_bytes()
    with zipfile.ZipFile(FIXTURES / "apk" / "shortened.apk") as archive:
        assert "res/xml/network_security_config.xml" not in archive.namelist()
    contents = read_apk(data, name="app.apk")
    assert contents.facts.config_path == "res/a1.xml"
    report = audit([("app.apk", data)], now=NOW)
    assert report.exit_code == 0
    assert report.domains == (("app.apk!/res/a1.xml", "api.example.com"),)


def test_apk_without_config_has_no_domains() -> None:
    report = audit([FIXTURES / "apk" / "no-config.apk"], now=NOW)
    assert report.domains == ()
    assert {f.id for f in report.findings} == {"pins-in-code-differ"}


def test_findings_in_an_apk_name_the_file_inside_it() -> None:
    report = audit([FIXTURES / "apk" / "debuggable.apk"], now=NOW)
    sources = {f.source for f in report.findings}
    assert any(
        s and s.endswith("debuggable.apk!/res/xml/network_security_config.xml") for s in sources
    )


def test_scan_dex_finds_pin_strings_only() -> None:
    data = b"\0\x2csha256/" + P1.encode() + b"\0other\0sha256/short\0sha256/" + P2.encode()
    assert scan_dex(data) == [f"sha256/{P1}", f"sha256/{P2}"]


DEX_WITH_PINS = (
    b"dex\n035\0" + b"\0\x2csha256/" + P1.encode() + b"\0sha256/short\0"
    b"sha256/" + P2.encode() + b"\0sha256/" + P1.encode() + b"\0sha256/" + b"A" * 80
)


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(0, len(DEX_WITH_PINS)), max_size=12))
def test_scan_dex_reads_a_stream_as_it_reads_the_whole_file(cuts: list[int]) -> None:
    # The dex files are scanned chunk by chunk; a pin split by a chunk boundary counts.
    bounds = [0, *sorted(cuts), len(DEX_WITH_PINS)]
    chunks = [DEX_WITH_PINS[a:b] for a, b in itertools.pairwise(bounds)]
    assert scan_dex(iter(chunks)) == scan_dex(DEX_WITH_PINS)
    assert scan_dex(DEX_WITH_PINS) == [f"sha256/{P1}", f"sha256/{P2}", "sha256/" + "A" * 64]


def test_not_an_apk_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "broken.apk"
    path.write_bytes(b"not a zip at all")
    report = audit([path], now=NOW)
    assert report.exit_code == 2
    assert report.unreadable[0].target == str(path)
    with pytest.raises(ConfigError):
        read_apk(b"PK\x03\x04junk", name="x.apk")


def ipa(
    tmp_path: Path, info: Mapping[str, object], *, binary: bool = True, name: str = "App"
) -> Path:
    path = tmp_path / f"{name}.ipa"
    fmt = plistlib.FMT_BINARY if binary else plistlib.FMT_XML
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"Payload/{name}.app/Info.plist", plistlib.dumps(dict(info), fmt=fmt))
        archive.writestr(f"Payload/{name}.app/{name}", b"\xcf\xfa\xed\xfe")
    return path


ATS = {
    "NSAppTransportSecurity": {
        "NSPinnedDomains": {
            "api.example.com": {
                "NSPinnedLeafIdentities": [{"SPKI-SHA256-BASE64": P1}, {"SPKI-SHA256-BASE64": P2}]
            }
        }
    }
}


@pytest.mark.parametrize("binary", [True, False])
def test_ipa_with_ats_pins(tmp_path: Path, binary: bool) -> None:
    path = ipa(tmp_path, ATS, binary=binary)
    contents = read_ipa(path.read_bytes(), name="App.ipa")
    assert contents.plist_path == "Payload/App.app/Info.plist"
    assert contents.has_ats_pins
    assert not contents.has_trustkit
    report = audit([path], now=NOW)
    assert report.domains == ((f"{path}!/Payload/App.app/Info.plist", "api.example.com"),)
    assert report.exit_code == 0
    assert "missing-backup-pin" not in {f.id for f in report.findings}


def test_ipa_single_ats_pin_is_an_error(tmp_path: Path) -> None:
    info = {
        "NSAppTransportSecurity": {
            "NSPinnedDomains": {
                "api.example.com": {"NSPinnedCAIdentities": [{"SPKI-SHA256-BASE64": P1}]}
            }
        }
    }
    report = audit([ipa(tmp_path, info)], now=NOW)
    assert [(f.id, f.severity) for f in report.findings if f.id == "missing-backup-pin"] == [
        ("missing-backup-pin", "error")
    ]


def test_committed_ipa_carries_ats_and_trustkit() -> None:
    report = audit([FIXTURES / "ipa" / "pinned.ipa"], now=NOW)
    domains = {d for _source, d in report.domains}
    assert domains == {"api.example.com", "pay.example.com"}
    found = {(f.id, f.domain) for f in report.findings}
    assert ("missing-backup-pin", "api.example.com") in found  # ATS: one pin
    assert ("report-uri-cleartext", "pay.example.com") in found  # TrustKit: http:// report URI


def test_ipa_without_pins_is_readable_and_clean(tmp_path: Path) -> None:
    report = audit([ipa(tmp_path, {"CFBundleName": "App"})], now=NOW)
    assert report.exit_code == 0
    assert report.findings == ()


def test_zip_without_payload_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "App.ipa"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("README", b"hello")
    report = audit([path], now=NOW)
    assert report.exit_code == 2
    assert "Info.plist" in report.unreadable[0].message
