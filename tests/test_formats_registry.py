"""The format registry: names, detection, load and dump."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from pinset import formats, policyfile
from pinset.errors import ConfigError
from pinset.pins import Pin
from pinset.policy import DomainRule, Policy

P1, P2 = (Pin(hashlib.sha256(b"r %d" % n).digest()) for n in (1, 2))
POLICY = Policy(rules=(DomainRule("a.example", pins=(P1, P2)),))


def test_every_issue_format_has_a_name() -> None:
    assert set(formats.FORMATS) == {
        "android",
        "trustkit-android",
        "ios-ats",
        "trustkit",
        "okhttp",
        "hpkp",
        "pinset",
    }


@pytest.mark.parametrize("name", ["pinset", "android", "trustkit-android"])
def test_my_formats_follow_the_module_interface(name: str) -> None:
    module = formats.get(name)
    for attr in ("loads", "dumps", "sniff"):
        assert callable(getattr(module, attr))


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (policyfile.dumps(POLICY).encode(), "pinset"),
        (policyfile.dumps(POLICY, format="json").encode(), "pinset"),
        (b"<network-security-config><domain-config/></network-security-config>", "android"),
        (
            b"<network-security-config><trustkit-config/></network-security-config>",
            "trustkit-android",
        ),
    ],
)
def test_detect_from_content(data: bytes, name: str) -> None:
    assert formats.detect(data, "whatever.txt") == name


def test_detect_failure_names_the_file_and_the_formats() -> None:
    with pytest.raises(ConfigError, match="cannot tell") as info:
        formats.detect(b"hello", "notes.txt")
    assert info.value.source == "notes.txt"
    assert "android" in (info.value.hint or "")


def test_load_detects_and_locates_errors_in_the_source() -> None:
    imported = formats.loads(formats.dumps(POLICY, "android"), source="nsc.xml")
    assert imported.format == "android"
    assert imported.policy == POLICY
    with pytest.raises(ConfigError) as info:
        formats.loads(
            b"<network-security-config><base-config><pin-set/></base-config>"
            b"</network-security-config>",
            source="bad.xml",
        )
    assert info.value.source == "bad.xml"


def test_unknown_format_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match="unknown format 'andriod'") as info:
        formats.dumps(POLICY, "andriod")
    assert info.value.hint == "did you mean 'android'?"


def test_export_aliases_fix_writer_options() -> None:
    assert formats.dumps(POLICY, "pinset-json") == policyfile.dumps(POLICY, format="json")
    assert formats.dumps(POLICY, "pinset") == policyfile.dumps(POLICY)
    assert formats.dumps(POLICY, "trustkit-swift") == formats.dumps(POLICY, "trustkit", swift=True)


def test_a_missing_format_module_does_not_break_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(formats.FORMATS, "okhttp", "pinset.formats._no_such_module")
    monkeypatch.setitem(sys.modules, "pinset.formats._no_such_module", None)
    with pytest.raises(ConfigError, match="not available"):
        formats.get("okhttp")
    assert "okhttp" not in formats.available()
    assert formats.detect(policyfile.dumps(POLICY).encode()) == "pinset"
    assert formats.loads(formats.dumps(POLICY, "android")).policy == POLICY


def test_importing_formats_loads_no_format_module() -> None:
    # A fresh interpreter: popping modules here would split class identities for other tests.
    code = (
        "import sys, pinset.formats; "
        "print(sorted(m for m in sys.modules if m.startswith('pinset.formats.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['pinset.formats._model']"


def test_load_takes_a_path_and_loads_the_content(tmp_path: Path) -> None:
    path = tmp_path / "network_security_config.xml"
    path.write_bytes(_bytes(formats.dumps(POLICY, "android")))
    imported = formats.load(path)
    assert (imported.format, imported.source, imported.policy) == ("android", str(path), POLICY)
    assert formats.load(str(path), format="android") == formats.loads(
        path.read_bytes(), format="android", source=str(path)
    )
    with pytest.raises(ConfigError) as info:
        formats.load(tmp_path / "missing.xml")
    assert info.value.source == str(tmp_path / "missing.xml")


def _bytes(text: str | bytes) -> bytes:
    return text.encode() if isinstance(text, str) else text
