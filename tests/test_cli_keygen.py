"""``pinset keygen``: encrypted, private, never overwriting, with the right pin and CSR."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pinset.cli import main
from pinset.pins import spki_pin


@pytest.fixture
def passfile(tmp_path: Path) -> Path:
    path = tmp_path / "pass.txt"
    path.write_text("correct horse battery staple\n")
    return path


def keygen(*args: str) -> int:
    return main(["keygen", *args])


@pytest.mark.parametrize(
    ("kind", "key_type"),
    [
        ("ec-p256", "EC P-256"),
        ("ec-p384", "EC P-384"),
        ("rsa-2048", "RSA 2048"),
        ("ed25519", "Ed25519"),
    ],
)
def test_key_is_encrypted_private_and_pinned(
    tmp_path: Path, passfile: Path, capsys: pytest.CaptureFixture[str], kind: str, key_type: str
) -> None:
    out = tmp_path / "backup.key"
    code = keygen("--type", kind, "--out", str(out), "--password-file", str(passfile), "--json")
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    pem = out.read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in pem
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(pem, password=None)
    key = serialization.load_pem_private_key(pem, password=b"correct horse battery staple")
    assert data["pin"] == str(spki_pin(key))
    assert data["key_type"] == key_type
    assert data["key"] == str(out)
    assert data["csr"] is None


def test_text_output_prints_the_pin(
    tmp_path: Path, passfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "k.pem"
    assert keygen("--out", str(out), "--password-file", str(passfile)) == 0
    key = serialization.load_pem_private_key(
        out.read_bytes(), password=b"correct horse battery staple"
    )
    assert f"pin: {spki_pin(key)}" in capsys.readouterr().out


def test_refuses_to_overwrite(
    tmp_path: Path, passfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "precious.key"
    out.write_text("the only copy of an old backup key")
    assert keygen("--out", str(out), "--password-file", str(passfile)) == 2
    assert out.read_text() == "the only copy of an old backup key"
    err = capsys.readouterr().err
    assert "refusing to overwrite" in err
    assert str(out) in err


def test_refuses_to_overwrite_the_csr_before_making_a_key(tmp_path: Path, passfile: Path) -> None:
    out, csr = tmp_path / "new.key", tmp_path / "old.csr"
    csr.write_text("old")
    code = keygen(
        "--out",
        str(out),
        "--csr-subject",
        "CN=a.example",
        "--csr-out",
        str(csr),
        "--password-file",
        str(passfile),
    )
    assert code == 2
    assert not out.exists()
    assert csr.read_text() == "old"


def test_csr_is_signed_by_the_key(
    tmp_path: Path, passfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, csr_path = tmp_path / "b.key", tmp_path / "b.csr"
    code = keygen(
        "--out",
        str(out),
        "--csr-subject",
        "CN=api.example.com,O=Example",
        "--csr-out",
        str(csr_path),
        "--password-file",
        str(passfile),
        "--json",
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    csr = x509.load_pem_x509_csr(csr_path.read_bytes())
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == "CN=api.example.com,O=Example"
    assert str(spki_pin(csr)) == data["pin"]
    assert data["csr"] == str(csr_path)


@pytest.mark.parametrize("subject", ["garbage", "CN", "=x", ""])
def test_bad_dn_is_a_clear_error(
    tmp_path: Path, passfile: Path, capsys: pytest.CaptureFixture[str], subject: str
) -> None:
    out = tmp_path / "c.key"
    code = keygen(
        "--out",
        str(out),
        "--csr-subject",
        subject,
        "--csr-out",
        str(tmp_path / "c.csr"),
        "--password-file",
        str(passfile),
    )
    assert code == 2
    assert not out.exists()
    err = capsys.readouterr().err
    assert "--csr-subject" in err
    assert "Traceback" not in err


def test_csr_options_go_together(tmp_path: Path, passfile: Path) -> None:
    out = tmp_path / "d.key"
    assert keygen("--out", str(out), "--csr-subject", "CN=x", "--password-file", str(passfile)) == 2
    assert not out.exists()


def test_empty_password_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    out = tmp_path / "e.key"
    assert keygen("--out", str(out), "--password-file", str(empty)) == 2
    assert not out.exists()
    assert "password" in capsys.readouterr().err


def test_password_from_the_prompt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, bool]] = []

    def fake_prompt(text: str, **kwargs: object) -> str:
        asked.append((text, bool(kwargs.get("hide_input") and kwargs.get("confirmation_prompt"))))
        return "typed secret"

    monkeypatch.setattr("click.prompt", fake_prompt)
    out = tmp_path / "f.key"
    assert keygen("--out", str(out)) == 0
    assert len(asked) == 1
    assert asked[0][1]  # hidden and confirmed
    serialization.load_pem_private_key(out.read_bytes(), password=b"typed secret")


def test_umask_does_not_widen_the_mode(tmp_path: Path, passfile: Path) -> None:
    old = os.umask(0)
    try:
        out = tmp_path / "g.key"
        assert keygen("--out", str(out), "--password-file", str(passfile)) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
