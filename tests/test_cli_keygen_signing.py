"""``pinset keygen --type ed25519|ecdsa-p256``: bundle signing keys and their public keys.

The pins are checked against RFC 7469 section 2.4 (base64 of the SHA-256 of the DER
SubjectPublicKeyInfo), computed here with hashlib, and against ``pinset pin`` of the
public key file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from pinset.cli import main

PASSWORD = b"correct horse battery staple"


@pytest.fixture
def passfile(tmp_path: Path) -> Path:
    path = tmp_path / "pass.txt"
    path.write_bytes(PASSWORD + b"\n")
    return path


def rfc7469_pin(public_key: Any) -> str:
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256/" + base64.b64encode(hashlib.sha256(spki).digest()).decode()


def encrypted_ed25519_key(tmp_path: Path, passfile: Path) -> Path:
    """``pinset keygen --type ed25519`` to ``tmp_path/signing.key``, encrypted; its path."""
    out = tmp_path / "signing.key"
    argv = ["keygen", "--type", "ed25519", "--out", str(out), "--password-file", str(passfile)]
    assert main(argv) == 0
    return out


def sign_and_verify(private: Any, public: Any) -> None:
    """The pair signs and verifies; a changed message does not verify."""
    message = b'{"version": 7}'
    if isinstance(private, ed25519.Ed25519PrivateKey):
        signature = private.sign(message)
        public.verify(signature, message)
        with pytest.raises(InvalidSignature):
            public.verify(signature, message + b" ")
    else:
        algorithm = ec.ECDSA(hashes.SHA256())
        signature = private.sign(message, algorithm)
        public.verify(signature, message, algorithm)
        with pytest.raises(InvalidSignature):
            public.verify(signature, message + b" ", algorithm)


@pytest.mark.parametrize(
    ("kind", "key_class", "key_type"),
    [
        ("ed25519", ed25519.Ed25519PrivateKey, "Ed25519"),
        ("ecdsa-p256", ec.EllipticCurvePrivateKey, "EC P-256"),
    ],
)
def test_signing_key_pair_is_encrypted_usable_and_pinned(
    tmp_path: Path,
    passfile: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    key_class: type,
    key_type: str,
) -> None:
    out, pub = tmp_path / "signing.key", tmp_path / "signing.pub"
    argv = ["keygen", "--type", kind, "--out", str(out), "--public-out", str(pub)]
    assert main([*argv, "--password-file", str(passfile), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)

    pem = out.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")  # PKCS#8, encrypted
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(pem, password=None)
    with pytest.raises(ValueError, match="Incorrect password"):
        serialization.load_pem_private_key(pem, password=b"wrong password")
    private = serialization.load_pem_private_key(pem, password=PASSWORD)
    assert isinstance(private, key_class)
    if isinstance(private, ec.EllipticCurvePrivateKey):
        assert isinstance(private.curve, ec.SECP256R1)

    public_pem = pub.read_bytes()
    assert public_pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")  # SubjectPublicKeyInfo
    public = serialization.load_pem_public_key(public_pem)
    sign_and_verify(private, public)

    assert data["pin"] == rfc7469_pin(public) == rfc7469_pin(private.public_key())
    assert data["public_key"] == public_pem.decode()
    assert data["public_out"] == str(pub)
    assert data["key_type"] == key_type
    assert data["type"] == kind
    assert data["encrypted"] is True

    assert main(["pin", str(pub), "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert [row["pin"] for row in entry["certificates"]] == [data["pin"]]


def test_text_output_prints_the_public_key_and_its_pin(
    tmp_path: Path, passfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = encrypted_ed25519_key(tmp_path, passfile)
    text = capsys.readouterr().out
    private = serialization.load_pem_private_key(out.read_bytes(), password=PASSWORD)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert public_pem.decode() in text
    assert f"pin: {rfc7469_pin(private.public_key())}" in text


def test_a_backup_key_prints_no_public_key(
    tmp_path: Path, passfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Backup keys keep their output: the pin, no PEM.
    out = tmp_path / "backup.key"
    assert main(["keygen", "--out", str(out), "--password-file", str(passfile)]) == 0
    text = capsys.readouterr().out
    assert "BEGIN PUBLIC KEY" not in text
    assert "pin: sha256/" in text


def test_a_wrong_password_is_refused_when_the_key_is_used(
    tmp_path: Path, passfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = encrypted_ed25519_key(tmp_path, passfile)
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("Tr0ub4dor&3\n")
    capsys.readouterr()
    assert main(["pin", str(out), "--password-file", str(wrong)]) != 0
    captured = capsys.readouterr()
    assert "password" in captured.err.lower()
    assert "sha256/" not in captured.out


def test_unencrypted_only_on_request_and_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_prompt(*args: object, **kwargs: object) -> str:
        raise AssertionError("an unencrypted key needs no password")

    monkeypatch.setattr("click.prompt", no_prompt)
    out = tmp_path / "ci-signing.key"
    assert main(["keygen", "--type", "ed25519", "--out", str(out), "--unencrypted", "--json"]) == 0
    captured = capsys.readouterr()
    pem = out.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    private = serialization.load_pem_private_key(pem, password=None)
    assert json.loads(captured.out)["encrypted"] is False
    assert json.loads(captured.out)["pin"] == rfc7469_pin(private.public_key())
    assert "warning:" in captured.err
    assert "NOT encrypted" in captured.err
    assert str(out) in captured.err


def test_unencrypted_contradicts_a_password_file(
    tmp_path: Path, passfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "k.key"
    argv = ["keygen", "--out", str(out), "--unencrypted", "--password-file", str(passfile)]
    assert main(argv) == 2
    assert not out.exists()
    assert "--unencrypted" in capsys.readouterr().err


def test_an_existing_public_out_is_refused_before_the_key_is_made(
    tmp_path: Path, passfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, pub = tmp_path / "signing.key", tmp_path / "signing.pub"
    pub.write_text("the public key apps already trust")
    argv = ["keygen", "--type", "ed25519", "--out", str(out), "--public-out", str(pub)]
    assert main([*argv, "--password-file", str(passfile)]) == 2
    assert not out.exists()
    assert pub.read_text() == "the public key apps already trust"
    assert "refusing to overwrite" in capsys.readouterr().err


def test_public_out_cannot_be_the_key_itself(tmp_path: Path, passfile: Path) -> None:
    out = tmp_path / "signing.key"
    argv = ["keygen", "--type", "ed25519", "--out", str(out), "--public-out", str(out)]
    assert main([*argv, "--password-file", str(passfile)]) == 2
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "--out FILE"),
        (["--out", "k.key", "--kit", "kit"], "--out FILE"),
        (["--out", "k.key", "--cn", "api.example.com"], "--cn go with --kit"),
        (["--out", "k.key", "--backups", "3"], "--backups go with --kit"),
        (["--kit", "kit", "--cn", "a.example", "--public-out", "k.pub"], "not with --kit"),
        (["--kit", "kit", "--cn", "a.example", "--unencrypted"], "not with --kit"),
        (["--kit", "kit"], "--kit needs --cn"),
    ],
)
def test_key_and_kit_options_do_not_mix(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["keygen", *argv]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
