"""``pinset init`` writes a policy from live chains; ``pinset check`` enforces it for real."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from pinset import policyfile
from pinset.cli import main
from pinset.pins import Pin, spki_pin
from pinset.policy import DomainRule, Policy
from pinset.testing import CertificateAuthority, LeafCert, TLSServer, generate_key


@pytest.fixture(scope="module")
def backup_key() -> Any:
    return generate_key("ec-p256")


@pytest.fixture
def backup_pub(tmp_path: Path, backup_key: Any) -> Path:
    path = tmp_path / "backup.pub"
    path.write_bytes(
        backup_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


@pytest.fixture
def encrypted_backup_key(tmp_path: Path, backup_key: Any) -> Path:
    """``backup_key`` in a PKCS#8 PEM file encrypted with the password ``hunter22``."""
    path = tmp_path / "backup.key"
    path.write_bytes(
        backup_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"hunter22"),
        )
    )
    return path


def target(silent_server: TLSServer) -> str:
    return f"127.0.0.1:{silent_server.port}"


def write_policy(path: Path, pins: list[Pin], name: str = "127.0.0.1") -> str:
    policy = Policy(rules=(DomainRule(name=name, pins=tuple(pins)),))
    path.write_text(policyfile.dumps(policy))
    return str(path)


# -- init -------------------------------------------------------------------------


@pytest.mark.parametrize(("level", "index"), [("leaf", 0), ("intermediate", 1), ("root", 2)])
def test_init_writes_a_loadable_policy_with_the_right_pins(
    tmp_path: Path,
    silent_server: TLSServer,
    leaf: LeafCert,
    cafile: str,
    backup_pub: Path,
    backup_key: Any,
    capsys: pytest.CaptureFixture[str],
    level: str,
    index: int,
) -> None:
    out = tmp_path / "pinset.toml"
    args = ["init", target(silent_server), "--level", level, "--cafile", cafile]
    args += ["--backup-key", str(backup_pub), "--expires-in", "30", "-o", str(out)]
    assert main(args) == 0
    policy = policyfile.load(out)
    rule = policy.rule_for("127.0.0.1")
    assert rule is not None
    assert rule.pins == (spki_pin(leaf.full_chain[index]), spki_pin(backup_key))
    assert rule.expiration == dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=30)
    assert rule.enforce
    assert str(out) in capsys.readouterr().out


def test_init_root_from_the_trust_store_not_the_served_chain(
    tmp_path: Path, silent_server: TLSServer, leaf: LeafCert, cafile: str, backup_pub: Path
) -> None:
    # The server sends leaf + intermediate; the root pin must be the anchor, which it never sent.
    out = tmp_path / "p.toml"
    args = ["init", target(silent_server), "--level", "root", "--cafile", cafile]
    assert main([*args, "--backup-key", str(backup_pub), "--expires-in", "9", "-o", str(out)]) == 0
    rule = policyfile.load(out).rule_for("127.0.0.1")
    assert rule is not None
    assert rule.pins[0] == spki_pin(leaf.full_chain[-1])
    assert leaf.full_chain[-1] not in leaf.chain


def test_init_root_without_verification_warns(
    tmp_path: Path,
    silent_server: TLSServer,
    leaf: LeafCert,
    backup_pub: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "p.toml"
    args = ["init", target(silent_server), "--level", "root", "--backup-key", str(backup_pub)]
    assert main([*args, "--expires-in", "9", "-o", str(out)]) == 0
    rule = policyfile.load(out).rule_for("127.0.0.1")
    assert rule is not None
    assert rule.pins[0] == spki_pin(leaf.chain[-1])  # the last served certificate
    err = capsys.readouterr().err
    assert "warning" in err
    assert "may not be the anchor" in err


def test_init_refuses_without_backup(
    tmp_path: Path, silent_server: TLSServer, cafile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "p.toml"
    code = main(
        ["init", target(silent_server), "--cafile", cafile, "--expires-in", "30", "-o", str(out)]
    )
    assert code == 2
    assert not out.exists()
    assert "pinset keygen" in capsys.readouterr().err


def test_init_refuses_a_backup_the_server_already_uses(
    tmp_path: Path,
    silent_server: TLSServer,
    leaf: LeafCert,
    cafile: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "p.toml"
    args = ["init", target(silent_server), "--cafile", cafile, "--expires-in", "30", "-o", str(out)]
    assert main([*args, "--backup-pin", str(spki_pin(leaf.chain[1]))]) == 2
    assert not out.exists()
    assert "already used" in capsys.readouterr().err


def test_init_refuses_placeholder_backup(
    tmp_path: Path, silent_server: TLSServer, cafile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "p.toml"
    args = ["init", target(silent_server), "--cafile", cafile, "--expires-in", "30", "-o", str(out)]
    assert main([*args, "--backup-pin", "sha256/" + "A" * 43 + "="]) == 2
    assert not out.exists()
    assert "placeholder" in capsys.readouterr().err


def test_init_refuses_to_overwrite_without_force(
    tmp_path: Path, silent_server: TLSServer, cafile: str, backup_pub: Path, backup_key: Any
) -> None:
    out = tmp_path / "p.toml"
    out.write_text("# hand-written, keep me\n")
    args = ["init", target(silent_server), "--cafile", cafile, "--backup-key", str(backup_pub)]
    args += ["--expires-in", "30", "-o", str(out)]
    assert main(args) == 2
    assert out.read_text() == "# hand-written, keep me\n"
    out.chmod(0o640)
    assert main([*args, "--force"]) == 0
    rule = policyfile.load(out).rule_for("127.0.0.1")
    assert rule is not None
    assert spki_pin(backup_key) in rule.pins
    # Replaced in one step: the file keeps its mode and no temporary file stays behind.
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".p.toml")]


def test_init_force_creates_a_new_file_honoring_the_umask(
    tmp_path: Path, silent_server: TLSServer, cafile: str, backup_pub: Path
) -> None:
    out = tmp_path / "p.toml"
    args = ["init", target(silent_server), "--cafile", cafile, "--backup-key", str(backup_pub)]
    old = os.umask(0o027)
    try:
        assert main([*args, "--expires-in", "30", "-o", str(out), "--force"]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o640


def test_init_encrypted_backup_key_and_options(
    tmp_path: Path,
    silent_server: TLSServer,
    cafile: str,
    backup_key: Any,
    encrypted_backup_key: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = encrypted_backup_key
    passfile = tmp_path / "pass"
    passfile.write_text("hunter22\n")
    second = Pin(os.urandom(32))
    out = tmp_path / "p.toml"
    # include-subdomains needs a name: an IP literal has no subdomains.
    args = ["init", f"localhost:{silent_server.port}", "--cafile", cafile, "--backup-key", str(key)]
    args += ["--password-file", str(passfile), "--backup-pin", str(second)]
    args += ["--include-subdomains", "--report-uri", "https://reports.example.net/r"]
    assert main([*args, "--expires-in", "7", "-o", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["output"] == str(out)
    policy = policyfile.load(out)
    rule = policy.rule_for("api.localhost")
    assert rule is not None
    assert rule.include_subdomains
    assert set(rule.pins[1:]) == {spki_pin(backup_key), second}
    assert policy.report_uris == ("https://reports.example.net/r",)
    assert [p["pin"] for p in data["domains"][0]["pins"]] == [str(p) for p in rule.pins]


def test_init_wrong_password_for_backup_key(
    tmp_path: Path, silent_server: TLSServer, cafile: str, encrypted_backup_key: Path
) -> None:
    key = encrypted_backup_key
    passfile = tmp_path / "pass"
    passfile.write_text("not it\n")
    out = tmp_path / "p.toml"
    args = ["init", target(silent_server), "--cafile", cafile, "--backup-key", str(key)]
    args += ["--password-file", str(passfile), "--expires-in", "7", "-o", str(out)]
    assert main(args) == 2
    assert not out.exists()


def test_init_unreachable_host_exits_3(
    tmp_path: Path, backup_pub: Path, capsys: pytest.CaptureFixture[str], closed_port: int
) -> None:
    out = tmp_path / "p.toml"
    args = ["init", f"127.0.0.1:{closed_port}", "--backup-key", str(backup_pub)]
    assert main([*args, "--expires-in", "7", "-o", str(out)]) == 3
    assert not out.exists()


# -- check ------------------------------------------------------------------------


def test_check_passes_with_the_right_pins(
    tmp_path: Path,
    silent_server: TLSServer,
    leaf: LeafCert,
    cafile: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    policy = write_policy(tmp_path / "p.toml", [spki_pin(leaf.chain[1]), Pin(os.urandom(32))])
    assert (
        main(["check", target(silent_server), "--policy", policy, "--cafile", cafile, "--json"])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["allowed"] is True
    assert data["verdict"] == "pinned"
    assert data["matched_pin"] == str(spki_pin(leaf.chain[1]))
    assert [row["pin"] for row in data["chain"]] == [str(spki_pin(c)) for c in leaf.full_chain]
    assert main(["check", target(silent_server), "--policy", policy, "--cafile", cafile]) == 0
    out = capsys.readouterr().out
    assert "pinned" in out
    assert "✓" in out


def test_check_fails_with_wrong_pins(
    tmp_path: Path,
    silent_server: TLSServer,
    leaf: LeafCert,
    cafile: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = [Pin(os.urandom(32)), Pin(os.urandom(32))]
    policy = write_policy(tmp_path / "p.toml", wrong)
    assert main(["check", target(silent_server), "--policy", policy, "--cafile", cafile]) == 1
    out = capsys.readouterr().out
    assert "pin-mismatch" in out
    for pin in wrong:  # expected pins
        assert str(pin) in out
    for cert in leaf.full_chain:  # served (verified) pins
        assert str(spki_pin(cert)) in out
    assert (
        main(["check", target(silent_server), "--policy", policy, "--cafile", cafile, "--json"])
        == 1
    )
    data = json.loads(capsys.readouterr().out)
    assert data["allowed"] is False
    assert data["matched_pin"] is None
    assert data["expected_pins"] == [str(p) for p in wrong]


def test_check_untrusted_chain_fails_even_with_matching_pins(
    tmp_path: Path, silent_server: TLSServer, leaf: LeafCert, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = write_policy(tmp_path / "p.toml", [spki_pin(leaf.cert), Pin(os.urandom(32))])
    other = tmp_path / "other.pem"
    CertificateAuthority.create("unrelated").cert_pem.write_to_path(other)
    assert main(["check", target(silent_server), "--policy", policy, "--cafile", str(other)]) == 1
    out = capsys.readouterr().out
    assert "verification failed" in out
    assert str(spki_pin(leaf.cert)) in out  # the served chain is still shown


def test_check_host_not_in_policy_is_allowed(
    tmp_path: Path, silent_server: TLSServer, cafile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = write_policy(
        tmp_path / "p.toml", [Pin(os.urandom(32)), Pin(os.urandom(32))], name="other.example"
    )
    assert (
        main(["check", target(silent_server), "--policy", policy, "--cafile", cafile, "--json"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["verdict"] == "not-pinned"


def test_check_closed_port_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], closed_port: int
) -> None:
    policy = write_policy(tmp_path / "p.toml", [Pin(os.urandom(32)), Pin(os.urandom(32))])
    port = closed_port
    assert main(["check", f"127.0.0.1:{port}", "--policy", policy]) == 3
    assert f"127.0.0.1:{port}" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text",
    [
        "[[domain]]\nname = 'a.example'\npins = []\n",
        "this is = not [toml\n",
        "[[domain]]\nname = 'a.example'\npinz = ['x']\n",
    ],
)
def test_check_bad_policy_exits_2(
    tmp_path: Path, silent_server: TLSServer, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["check", target(silent_server), "--policy", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err
    assert "Traceback" not in err


def test_init_then_check_round_trip(
    tmp_path: Path, silent_server: TLSServer, cafile: str, backup_pub: Path
) -> None:
    out = tmp_path / "pinset.toml"
    args = ["init", target(silent_server), "--level", "intermediate", "--cafile", cafile]
    assert main([*args, "--backup-key", str(backup_pub), "--expires-in", "30", "-o", str(out)]) == 0
    assert main(["check", target(silent_server), "--policy", str(out), "--cafile", cafile]) == 0
