"""``pinset rotate check``: is switching the server to a new certificate or key safe?"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from pinset.audit import check_rotation, read_subjects
from pinset.cli import main
from pinset.pins import spki_pin
from pinset.testing import LeafCert, TestPKI, generate_key

NOW = dt.datetime(2026, 11, 28, tzinfo=dt.timezone.utc)
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def rot_pki() -> TestPKI:
    return TestPKI()


def rule(name: str, *pins: object, expiration: str = "2027-06-30", extra: str = "") -> str:
    pin_list = ", ".join(f'"{p}"' for p in pins)
    return f'[[domain]]\nname = "{name}"\nexpiration = {expiration}\n{extra}pins = [{pin_list}]\n'


def key_pin() -> str:
    return str(spki_pin(generate_key()))


def write_policy(path: Path, *pins: str, name: str = "api.example.com", extra: str = "") -> Path:
    pin_list = ", ".join(f'"{p}"' for p in pins)
    path.write_text(
        f'[[domain]]\nname = "{name}"\nexpiration = 2027-06-30\npins = [{pin_list}]\n{extra}',
        encoding="utf-8",
    )
    return path


def cert_files(tmp_path: Path, leaf: LeafCert) -> tuple[str, str]:
    cert, chain = tmp_path / "new.pem", tmp_path / "chain.pem"
    leaf.cert_chain_pems[0].write_to_path(cert)
    chain.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems[1:]))
    return str(cert), str(chain)


def test_new_cert_under_the_pinned_intermediate_is_safe(
    tmp_path: Path, rot_pki: TestPKI, capsys: pytest.CaptureFixture[str]
) -> None:
    inter = spki_pin(rot_pki.intermediate.cert)
    policy = write_policy(tmp_path / "pinset.toml", str(inter), str(spki_pin(generate_key())))
    cert, chain = cert_files(tmp_path, rot_pki.leaf("api.example.com"))
    code = main(
        [
            "rotate",
            "check",
            str(policy),
            "--new-cert",
            cert,
            "--chain-file",
            chain,
            "--now",
            "2026-11-28",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "safe" in out
    assert str(inter) in out
    assert "intermediate" in out


def test_new_cert_without_its_chain_is_unsafe_when_only_the_intermediate_is_pinned(
    tmp_path: Path, rot_pki: TestPKI, capsys: pytest.CaptureFixture[str]
) -> None:
    inter = spki_pin(rot_pki.intermediate.cert)
    policy = write_policy(tmp_path / "pinset.toml", str(inter), str(spki_pin(generate_key())))
    cert, _chain = cert_files(tmp_path, rot_pki.leaf("api.example.com"))
    code = main(["rotate", "check", str(policy), "--new-cert", cert, "--now", "2026-11-28"])
    out = capsys.readouterr().out
    assert code == 1
    assert "UNSAFE" in out
    assert "ship it in an app release" in out


def test_new_key_that_is_the_backup_is_safe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    current, backup = generate_key(), generate_key()
    policy = write_policy(tmp_path / "p.toml", str(spki_pin(current)), str(spki_pin(backup)))
    key = tmp_path / "backup.key"
    key.write_bytes(
        backup.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    assert (
        main(
            ["rotate", "check", str(policy), "--new-key", str(key), "--json", "--now", "2026-11-28"]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["safe"] is True
    assert data["verdicts"][0]["matched_pin"] == str(spki_pin(backup))
    assert data["verdicts"][0]["matched_by"] == "key"


def test_new_unpinned_key_is_unsafe_with_next_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = write_policy(
        tmp_path / "p.toml", str(spki_pin(generate_key())), str(spki_pin(generate_key()))
    )
    new = generate_key()
    key = tmp_path / "new.pub"
    key.write_bytes(
        new.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    assert main(["rotate", "check", str(policy), "--new-key", str(key), "--json"]) == 1
    verdict = json.loads(capsys.readouterr().out)["verdicts"][0]
    assert verdict["safe"] is False
    assert str(spki_pin(new)) in verdict["next_step"]
    assert "wait" in verdict["next_step"]


def test_only_rules_for_the_certificate_names_are_judged(rot_pki: TestPKI, tmp_path: Path) -> None:
    leaf = rot_pki.leaf("api.example.com")
    policy = tmp_path / "p.toml"
    policy.write_text(
        rule("api.example.com", spki_pin(leaf.cert), key_pin())
        + rule("other.example.net", key_pin(), key_pin()),
        encoding="utf-8",
    )
    subjects, _, _ = read_subjects([policy])
    verdicts = check_rotation(subjects, now=NOW, new_chain=leaf.chain)
    assert [(v.domain, v.safe, v.matched_by) for v in verdicts] == [
        ("api.example.com", True, "leaf")
    ]


def test_expired_pins_cannot_lock_anyone_out(rot_pki: TestPKI, tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text(
        rule("api.example.com", key_pin(), key_pin(), expiration="2026-01-01"),
        encoding="utf-8",
    )
    subjects, _, _ = read_subjects([policy])
    verdicts = check_rotation(subjects, now=NOW, new_chain=rot_pki.leaf("api.example.com").chain)
    assert [v.safe for v in verdicts] == [True]
    assert "expired" in verdicts[0].reason


def test_rotation_against_a_shipped_apk(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "k.pem"
    key.write_bytes(
        generate_key().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    code = main(
        [
            "rotate",
            "check",
            str(FIXTURES / "apk" / "release.apk"),
            "--new-key",
            str(key),
            "--now",
            "2026-11-28",
        ]
    )
    assert code == 1
    assert "api.example.com" in capsys.readouterr().out


def test_exactly_one_of_cert_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = write_policy(
        tmp_path / "p.toml", str(spki_pin(generate_key())), str(spki_pin(generate_key()))
    )
    assert main(["rotate", "check", str(policy)]) == 2
    assert "exactly one" in capsys.readouterr().err


def test_domain_is_judged_by_its_most_specific_rule(tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    new = generate_key()
    policy.write_text(
        rule("example.com", key_pin(), key_pin(), extra="include-subdomains = true\n")
        + rule("pay.example.com", spki_pin(new), key_pin()),
        encoding="utf-8",
    )
    subjects, _, _ = read_subjects([policy])
    verdicts = check_rotation(
        subjects, now=NOW, new_key_pin=spki_pin(new), domains=["pay.example.com"]
    )
    assert [(v.domain, v.safe) for v in verdicts] == [("pay.example.com", True)]
    verdicts = check_rotation(
        subjects, now=NOW, new_key_pin=spki_pin(new), domains=["www.example.com"]
    )
    assert [(v.domain, v.safe) for v in verdicts] == [("example.com", False)]
