"""Every iOS plist of the real-world corpus imports, with the domains and pins it carries.

The expected values were read off the files by hand (see tests/fixtures/corpus/README.md).
"""

from __future__ import annotations

import plistlib
from pathlib import Path

import pytest

import pinset.formats
from pinset.audit import imported_findings
from pinset.formats._apple import ios_ats, trustkit
from pinset.pins import Pin

CORPUS = Path(__file__).parent / "fixtures" / "corpus" / "ios-plist"
GUARDIAN_CA = Pin.parse("cGuxAXyFXFkWm61cF4HPWX8S0srS9j0aSqN0k4AP+4A=")
GUTOOLS_CA = Pin.parse("++MBgDH5WGvL9Bcn5Be30cRcL0f5O+NyoXuWtQdX1aI=")


def read(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def test_every_file_is_covered_here() -> None:
    assert sorted(p.name for p in CORPUS.iterdir()) == sorted(EXPECTED)


EXPECTED = {
    "guardian__coverdrop__reference_Info.plist": (
        "ios-ats",
        {
            "coverdrop-api.code.dev-gutools.co.uk": ((GUTOOLS_CA,), 23),
            "secure-messaging.code.dev-guardianapis.com": ((GUARDIAN_CA,), 33),
        },
    ),
    "guardian__coverdrop__referenceAudit-Info.plist": (
        "ios-ats",
        {
            "secure-messaging-api-audit.guardianapis.com": ((GUARDIAN_CA,), 23),
            "secure-messaging-msg-audit.guardianapis.com": ((GUARDIAN_CA,), 33),
        },
    ),
    "datatheorem__TrustKit__TrustKitTests_Info.plist": (
        "trustkit",
        {
            "www.datatheorem.com": (
                tuple(
                    Pin(bytes.fromhex(h))
                    for h in (
                        "d120dfddc453a3264968cb284b5ee817bd9531abcbc63fcded604d6ac36e891f",
                        "2741caeb7dc87a45083200b10037145d697723ec2bd5721b1e4af4dfcc48c919",
                        "1d75d0831b9e0885394d32c7a1bfdb3dbc1c28e2b0e8391fb135981dbc5ba936",
                    )
                ),
                7,
            )
        },
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file_yields_its_domains_and_pins(name: str) -> None:
    fmt, domains = EXPECTED[name]
    imported = pinset.formats.loads(read(name), source=name)
    assert imported.format == fmt
    got = {r.name: (r.pins, imported.lines[r.pattern]) for r in imported.policy.rules}
    assert got == domains
    for rule in imported.policy.rules:
        assert not rule.include_subdomains
        assert rule.enforce
        assert rule.expiration is None
        assert rule.allow_single_pin == (len(rule.pins) < 2)


def test_guardian_reference_needs_its_leading_spaces_stripped() -> None:
    data = read("guardian__coverdrop__reference_Info.plist")
    assert data.startswith(b" " * 12 + b"<?xml")
    with pytest.raises(plistlib.InvalidFileException):
        plistlib.loads(data)  # what a naive reader hits
    imported = ios_ats.loads(data)
    assert imported.platform["identities"] == {
        "coverdrop-api.code.dev-gutools.co.uk": {str(GUTOOLS_CA): "ca"},
        "secure-messaging.code.dev-guardianapis.com": {str(GUARDIAN_CA): "ca"},
    }


@pytest.mark.parametrize(
    "name",
    ["guardian__coverdrop__reference_Info.plist", "guardian__coverdrop__referenceAudit-Info.plist"],
)
def test_guardian_single_ca_pins_are_flagged(name: str) -> None:
    imported = ios_ats.loads(read(name), source=name)
    flagged = {f.domain for f in imported_findings(imported) if f.id == "missing-backup-pin"}
    assert flagged == {r.name for r in imported.policy.rules}
    assert all(f.source == name and f.line in (23, 33) for f in imported_findings(imported))


def test_legacy_trustkit_file_is_flagged_and_its_build_settings_are_not_read() -> None:
    # CFBundleExecutable holds $(EXECUTABLE_NAME): not a pinning key, so not an error.
    name = "datatheorem__TrustKit__TrustKitTests_Info.plist"
    imported = trustkit.loads(read(name), source=name)
    legacy = [f for f in imported.findings if f.id == "legacy-hex-pins"]
    assert [(f.severity, f.line) for f in legacy] == [("warning", 5)]
    assert imported.platform == {"legacy": True}
