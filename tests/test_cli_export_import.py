"""``pinset export`` and ``pinset import`` end to end through ``pinset.cli.main``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pinset import policyfile
from pinset.cli import main
from pinset.pins import Pin
from pinset.policy import DomainRule, Policy

P1, P2 = (Pin(hashlib.sha256(b"cli %d" % n).digest()) for n in (1, 2))
CORPUS = Path(__file__).parent / "fixtures" / "corpus" / "android-nsc"


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "pinset.toml"
    policy = Policy(
        rules=(
            DomainRule("api.example.com", pins=(P1, P2), include_subdomains=True),
            DomainRule("static.api.example.com", exclude=True),
        )
    )
    path.write_text(policyfile.dumps(policy))
    return path


def test_export_prints_the_file_on_stdout(
    policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(policy_file), "--format", "android"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith('<?xml version="1.0" encoding="utf-8"?>\n<network-security-config>')
    assert '<domain includeSubdomains="false">static.api.example.com</domain>' in out
    assert err == ""


def test_export_writes_atomically_and_reimports_equal(
    policy_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "res" / "network_security_config.xml"
    out_file.parent.mkdir()
    out_file.write_text("old")
    assert main(["export", str(policy_file), "-f", "android", "-o", str(out_file)]) == 0
    assert capsys.readouterr().out == ""
    assert [p.name for p in out_file.parent.iterdir()] == [out_file.name]  # no temp file left
    assert main(["import", str(out_file), "-o", str(tmp_path / "back.toml")]) == 0
    assert policyfile.load(tmp_path / "back.toml") == policyfile.load(policy_file)


def test_export_warning_goes_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        policyfile.dumps(
            Policy(
                rules=(
                    DomainRule("a.example", pins=(P1, P2), report_uris=("https://r.example.net/",)),
                )
            )
        )
    )
    assert main(["export", str(path), "--format", "android"]) == 0
    out, err = capsys.readouterr()
    assert err.startswith("warning: report URIs of a.example are not written")
    assert "<pin-set>" in out


def test_export_error_exits_2_with_diagnostics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        policyfile.dumps(Policy(rules=(DomainRule("a.example", pins=(P1, P2), enforce=False),)))
    )
    assert main(["export", str(path), "--format", "android", "-o", str(tmp_path / "x.xml")]) == 2
    err = capsys.readouterr().err
    assert "error: domain 'a.example' is report-only" in err
    assert "fix: export with --format trustkit-android" in err
    assert not (tmp_path / "x.xml").exists()


def test_export_unknown_format_exits_2(
    policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(policy_file), "--format", "andriod"]) == 2
    assert "did you mean 'android'?" in capsys.readouterr().err


def test_export_json_summary(policy_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(policy_file), "--format", "trustkit-android", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == "trustkit-android"
    assert data["warnings"] == []
    assert "<trustkit-config" in data["content"]


def test_import_detects_prints_toml_and_findings(capsys: pytest.CaptureFixture[str]) -> None:
    path = CORPUS / "afterpay__sdk-android__example_network_security_config.xml"
    assert main(["import", str(path)]) == 0
    out, err = capsys.readouterr()
    assert policyfile.loads(out).rules[0].name == "portal.afterpay.com"
    assert f"warning: {path}:13: portal.afterpay.com: 1 real pin" in err
    assert "[missing-backup-pin]" in err


def test_import_json(capsys: pytest.CaptureFixture[str]) -> None:
    path = CORPUS / "ProtonVPN__android-app__network_security_config.xml"
    assert main(["import", str(path), "--json"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert data["format"] == "trustkit-android"
    assert data["policy"]["domain"][0]["name"] == "api.protonvpn.ch"
    finding = next(f for f in data["findings"] if f["id"] == "non-canonical-pin")
    assert finding["location"] == f"{path}:33"
    assert finding["severity"] == "warning"
    assert err == ""


def test_import_with_format_override(capsys: pytest.CaptureFixture[str]) -> None:
    path = CORPUS / "ProtonVPN__android-app__network_security_config.xml"
    assert main(["import", str(path), "--format", "android", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "android"


def test_import_invalid_file_exits_2_with_file_and_line(capsys: pytest.CaptureFixture[str]) -> None:
    path = (
        CORPUS / "aosp-mirror__platform_frameworks_base__NetworkSecurityConfigTest_bad_config5.xml"
    )
    assert main(["import", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"--> {path}:5:5" in err
    assert "Traceback" not in err


def test_import_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", str(tmp_path / "nope.xml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_import_hpkp_header_takes_host_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = tmp_path / "hpkp.txt"
    first = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    second = "AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    header.write_text(
        f'Public-Key-Pins: pin-sha256="{first}"; pin-sha256="{second}"; max-age=600\n'
    )
    assert main(["import", str(header)]) == 2
    assert "no host is given" in capsys.readouterr().err
    assert main(["import", str(header), "--host", "api.example.com"]) == 0
    policy = policyfile.loads(capsys.readouterr().out)
    rule = policy.rule_for("api.example.com")
    assert rule is not None
    assert [p.b64 for p in rule.pins] == [first, second]
