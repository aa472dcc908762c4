"""``pinset bundle sign | verify``: exit codes, --json, keys on disk, the store."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from tests._bundles import ED_KEY, EMBEDDED, OTHER_ED_KEY, P256_KEY, public_pem, updated

from pinset.cli import main
from pinset.pins import spki_pin
from pinset.policyfile import dumps
from pinset.updates import BundleStore

PASSWORD = b"correct horse battery staple"


def write_key(path: Path, key: Any, password: bytes | None) -> Path:
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "pass.txt").write_bytes(PASSWORD + b"\n")
    (tmp_path / "embedded.toml").write_text(dumps(EMBEDDED))
    (tmp_path / "new.toml").write_text(dumps(updated(enforce=False)))
    (tmp_path / "signing.pub").write_bytes(public_pem(ED_KEY))
    (tmp_path / "other.pub").write_bytes(public_pem(OTHER_ED_KEY))
    return {
        "dir": tmp_path,
        "key": write_key(tmp_path / "signing.key", ED_KEY, PASSWORD),
        "pass": tmp_path / "pass.txt",
        "embedded": tmp_path / "embedded.toml",
        "new": tmp_path / "new.toml",
        "pub": tmp_path / "signing.pub",
        "other": tmp_path / "other.pub",
        "bundle": tmp_path / "bundle.json",
    }


def sign(files: dict[str, Path], *extra: str, version: str = "2") -> int:
    return main(
        [
            "bundle",
            "sign",
            str(files["new"]),
            "--key",
            str(files["key"]),
            "--password-file",
            str(files["pass"]),
            "--version",
            version,
            "--expires-in",
            "30",
            "--now",
            "2026-12-06",
            "-o",
            str(files["bundle"]),
            *extra,
        ]
    )


def verify(files: dict[str, Path], *extra: str, key: str = "pub") -> int:
    return main(
        [
            "bundle",
            "verify",
            str(files["bundle"]),
            "--trusted-key",
            str(files[key]),
            "--policy",
            str(files["embedded"]),
            "--now",
            "2026-12-07",
            *extra,
        ]
    )


def test_sign_then_verify_json(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert sign(files, "--app-id", "com.example.app", "--disable", "cdn.example.com", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["key"] == str(spki_pin(ED_KEY))
    assert summary["expires"] == "2027-01-05T00:00:00Z"
    assert summary["disable"] == ["cdn.example.com"]
    assert verify(files, "--app-id", "com.example.app", "--json") == 0
    assert json.loads(capsys.readouterr().out) == {
        "valid": True,
        "reason": None,
        "detail": "",
        "version": 2,
        "app_id": "com.example.app",
        "expires": "2027-01-05T00:00:00Z",
        "changes": [
            {"domain": "api.example.com", "change": "report-only"},
            {"domain": "cdn.example.com", "change": "disable"},
        ],
        "signing_keys": None,  # the bundle leaves the trusted signing keys as they are
    }


def test_text_output(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert sign(files) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"wrote {files['bundle']}: version 2, 1 domain(s)")
    assert "warning" not in err  # the key is encrypted
    assert verify(files) == 0
    assert capsys.readouterr().out.splitlines() == [
        "valid: version 2, app any, expires 2027-01-05T00:00:00Z",
        "  api.example.com: report-only",
    ]


@pytest.mark.parametrize(
    ("extra", "key", "reason"),
    [
        ((), "other", "unknown-key"),
        (("--app-id", "com.example.other"), "pub", "wrong-app"),
        (("--now", "2027-01-05"), "pub", "expired"),
    ],
)
def test_refusals_exit_1(
    files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    extra: tuple[str, ...],
    key: str,
    reason: str,
) -> None:
    assert sign(files) == 0
    capsys.readouterr()
    assert verify(files, *extra, "--json", key=key) == 1
    result = json.loads(capsys.readouterr().out)
    assert (result["valid"], result["reason"]) == (False, reason)
    assert verify(files, *extra, key=key) == 1
    assert capsys.readouterr().out.startswith(f"refused ({reason}): ")


def test_not_allowed_against_the_embedded_policy(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    files["new"].write_text(dumps(updated(expiration=dt.date(2027, 1, 1))))  # earlier
    assert sign(files) == 0
    capsys.readouterr()
    assert verify(files) == 1
    assert "refused (not-allowed)" in capsys.readouterr().out


def test_store_save_then_rollback(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(files["dir"] / "state")
    assert sign(files, version="3") == 0
    assert verify(files, "--store", store, "--save") == 0
    assert BundleStore(store).version() == 3
    assert sign(files, version="3") == 0
    capsys.readouterr()
    assert verify(files, "--store", store, "--json") == 1
    assert json.loads(capsys.readouterr().out)["reason"] == "rollback"
    assert sign(files, version="4") == 0
    assert verify(files, "--store", store) == 0  # without --save, the store stays at 3
    assert BundleStore(store).version() == 3


def test_save_needs_store(files: dict[str, Path]) -> None:
    assert sign(files) == 0
    assert verify(files, "--save") == 2


def test_unencrypted_key_is_accepted_with_a_warning(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    write_key(files["key"], P256_KEY, None)
    files["pub"].write_bytes(public_pem(P256_KEY))
    assert sign(files) == 0
    assert "is not encrypted" in capsys.readouterr().err
    assert verify(files) == 0


def test_wrong_password_is_exit_2(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    files["pass"].write_text("wrong\n")
    assert sign(files) == 2
    assert "password is wrong" in capsys.readouterr().err
    assert not files["bundle"].exists()


@pytest.mark.parametrize(
    "key",
    [ec.generate_private_key(ec.SECP384R1()), rsa.generate_private_key(65537, 2048)],
    ids=["p384", "rsa"],
)
def test_other_signing_keys_are_exit_2(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], key: Any
) -> None:
    write_key(files["key"], key, PASSWORD)
    assert sign(files) == 2
    err = capsys.readouterr().err
    assert "Ed25519 or ECDSA P-256" in err
    assert str(files["key"]) in err


def test_bad_trusted_key_is_exit_2(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert sign(files) == 0
    files["pub"].write_text("not a key\n")
    assert verify(files) == 2
    assert "not a PEM public key" in capsys.readouterr().err


def test_sign_to_stdout(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bundle", "sign", str(files["new"]), "--key", str(files["key"])]
    args += ["--password-file", str(files["pass"]), "--version", "2", "--expires-in", "1"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "pinset-bundle/1"
