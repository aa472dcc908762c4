"""Signing-key rotation: a bundle names the keys later bundles are checked against.

Adding a key is allowed when the new key co-signs the bundle (proof it is held);
removing or replacing a trusted key is ``not-allowed`` unless the embedded policy says
``allow_signing_key_rotation``. ``BundleStore`` keeps the effective set, so a caller
that keeps passing the keys the app shipped with inherits the rotation.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from _bundles import (
    ED_KEY,
    EMBEDDED,
    NOW,
    OTHER_ED_KEY,
    P256_KEY,
    bundle,
    payload_of,
    public_pem,
    signed_json,
)
from pinset.cli import main
from pinset.errors import ConfigError
from pinset.pins import spki_pin
from pinset.policy import Policy
from pinset.policyfile import dumps, loads
from pinset.updates import BundleResult, BundleStore, unverified_payload, verify_bundle
from pinset.updates._signing import PrivateKey, key_der

OLD, NEW = ED_KEY, OTHER_ED_KEY
ROTATABLE = dataclasses.replace(EMBEDDED, allow_signing_key_rotation=True)


def der(key: PrivateKey) -> bytes:
    return key_der(key.public_key())


def b64(key: PrivateKey) -> str:
    return base64.b64encode(der(key)).decode()


def check(
    data: bytes, embedded: Policy | None = EMBEDDED, keys: tuple[PrivateKey, ...] = (OLD,)
) -> BundleResult:
    return verify_bundle(
        data, trusted_keys=[k.public_key() for k in keys], now=NOW, embedded=embedded
    )


# ---------------------------------------------------------------- the payload field


def test_without_next_keys_the_payload_has_no_signing_keys_field() -> None:
    # Bundles that do not rotate keep the exact shape older verifiers read.
    payload = unverified_payload(bundle())
    assert payload.signing_keys is None
    decoded = json.loads(base64.urlsafe_b64decode(json.loads(bundle())["payload"] + "=="))
    assert "signing_keys" not in decoded


def test_signing_keys_are_the_pem_body_of_each_key() -> None:
    data = bundle(key=[OLD, NEW], next_signing_keys=[public_pem(OLD), NEW.public_key()])
    decoded = json.loads(base64.urlsafe_b64decode(json.loads(data)["payload"] + "=="))
    body = "".join(public_pem(NEW).decode().splitlines()[1:-1])
    assert decoded["signing_keys"] == [b64(OLD), body]
    assert [s["key"] for s in json.loads(data)["signatures"]] == [
        str(spki_pin(OLD)),
        str(spki_pin(NEW)),
    ]


RSA_DER = (
    rsa.generate_private_key(public_exponent=65537, key_size=2048)
    .public_key()
    .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
)


@pytest.mark.parametrize(
    "value",
    [
        [],
        "not-a-list",
        [1],
        ["!!!"],
        [b64(OLD).rstrip("=") + "A"],  # not base64 of whole bytes
        [base64.urlsafe_b64encode(der(P256_KEY)).decode()],  # url-safe alphabet
        [b64(OLD), b64(OLD)],
        [base64.b64encode(b"\x30\x03\x02\x01\x01").decode()],  # DER, not an SPKI
        [base64.b64encode(RSA_DER).decode()],
    ],
)
def test_bad_signing_keys_are_malformed(value: object) -> None:
    data = signed_json(payload_of(signing_keys=value))
    result = check(data)
    assert result.reason == "malformed", result.detail


# ---------------------------------------------------------------- adding, removing, replacing


def test_adding_a_key_that_cosigns_is_allowed() -> None:
    data = bundle(key=[OLD, NEW], next_signing_keys=[OLD.public_key(), NEW.public_key()])
    result = check(data)
    assert result.valid, result.detail
    assert result.signing_keys == (der(OLD), der(NEW))
    assert result.to_json()["signing_keys"] == [
        str(spki_pin(OLD)),
        str(spki_pin(NEW)),
    ]


def test_adding_a_key_that_did_not_sign_is_not_allowed() -> None:
    data = bundle(key=OLD, next_signing_keys=[OLD.public_key(), NEW.public_key()])
    result = check(data)
    assert result.reason == "not-allowed"
    assert "not signed by it" in result.detail


def test_replacing_a_key_without_the_policy_switch_is_not_allowed() -> None:
    data = bundle(key=[OLD, NEW], next_signing_keys=[NEW.public_key()])
    for embedded in (EMBEDDED, None):
        result = check(data, embedded)
        assert result.reason == "not-allowed"
        assert str(spki_pin(OLD)) in result.detail


def test_removing_one_of_two_keys_without_the_switch_is_not_allowed() -> None:
    data = bundle(key=OLD, next_signing_keys=[OLD.public_key()])
    result = check(data, keys=(OLD, NEW))
    assert result.reason == "not-allowed"
    assert str(spki_pin(NEW)) in result.detail


def test_replacing_a_key_with_the_switch_is_allowed() -> None:
    data = bundle(key=[OLD, NEW], next_signing_keys=[NEW.public_key()])
    result = check(data, ROTATABLE)
    assert result.valid, result.detail
    assert result.signing_keys == (der(NEW),)


def test_the_switch_does_not_waive_proof_of_possession() -> None:
    data = bundle(key=OLD, next_signing_keys=[NEW.public_key()])
    assert check(data, ROTATABLE).reason == "not-allowed"


def test_a_forged_cosignature_by_the_new_key_is_not_proof() -> None:
    data = json.loads(
        bundle(key=[OLD, NEW], next_signing_keys=[OLD.public_key(), NEW.public_key()])
    )
    sig = bytearray(base64.urlsafe_b64decode(data["signatures"][1]["sig"] + "=="))
    sig[0] ^= 1
    data["signatures"][1]["sig"] = base64.urlsafe_b64encode(bytes(sig)).decode().rstrip("=")
    result = check(json.dumps(data).encode())
    assert result.reason == "not-allowed"


# ---------------------------------------------------------------- the store


def test_the_store_checks_later_bundles_against_the_rotated_keys(tmp_path: Path) -> None:
    store = BundleStore(tmp_path)
    shipped = [public_pem(OLD)]  # what the app ships; the caller never changes it
    rotate = bundle(version=2, key=[OLD, NEW], next_signing_keys=[NEW.public_key()])
    assert store.offer(rotate, trusted_keys=shipped, now=NOW, embedded=ROTATABLE).valid

    by_new = bundle(version=3, key=NEW)
    # Checked against the shipped key alone, the bundle is by an unknown key ...
    assert check(by_new, ROTATABLE).reason == "unknown-key"
    # ... the store knows the rotation.
    assert store.offer(by_new, trusted_keys=shipped, now=NOW, embedded=ROTATABLE).valid
    # The compromised old key is no longer trusted.
    by_old = bundle(version=4, key=OLD, disable=["api.example.com"])
    refused = store.offer(by_old, trusted_keys=shipped, now=NOW, embedded=ROTATABLE)
    assert refused.reason == "unknown-key"
    assert store.version() == 3
    # A bundle that names no keys keeps the set as it is.
    stored = store.current()
    assert stored is not None
    assert stored.signing_keys == (der(NEW),)
    assert [spki_pin(k) for k in store.trusted_keys(shipped)] == [spki_pin(NEW)]


def test_a_refused_rotation_changes_nothing_in_the_store(tmp_path: Path) -> None:
    store = BundleStore(tmp_path)
    shipped = [public_pem(OLD)]
    assert store.offer(bundle(version=2), trusted_keys=shipped, now=NOW).valid
    before = store.path.read_bytes()
    rotate = bundle(version=3, key=[OLD, NEW], next_signing_keys=[NEW.public_key()])
    result = store.offer(rotate, trusted_keys=shipped, now=NOW, embedded=EMBEDDED)
    assert result.reason == "not-allowed"
    assert store.path.read_bytes() == before
    assert store.trusted_keys(shipped) == shipped


def test_an_app_release_shipping_other_keys_starts_from_them(tmp_path: Path) -> None:
    store = BundleStore(tmp_path)
    rotate = bundle(version=2, key=[OLD, NEW], next_signing_keys=[NEW.public_key()])
    assert store.offer(rotate, trusted_keys=[public_pem(OLD)], now=NOW, embedded=ROTATABLE).valid
    release = [public_pem(P256_KEY)]  # the next app version ships another key
    assert store.trusted_keys(release) == release
    assert store.offer(bundle(version=3, key=P256_KEY), trusted_keys=release, now=NOW).valid


def test_a_damaged_signing_key_set_in_the_store_is_reported(tmp_path: Path) -> None:
    store = BundleStore(tmp_path)
    store.path.write_text(json.dumps({"version": 2, "bundle": "{}", "signing_keys": ["!!"]}))
    with pytest.raises(ConfigError, match="damaged"):
        store.trusted_keys([public_pem(OLD)])


# ---------------------------------------------------------------- the policy switch and the CLI


def test_the_updates_table_of_the_policy_file() -> None:
    domain = '[[domain]]\nname = "a.example"\nexclude = true\n'
    policy = loads("[updates]\nallow-signing-key-rotation = true\n\n" + domain)
    assert policy.allow_signing_key_rotation is True
    assert "[updates]\nallow-signing-key-rotation = true" in dumps(policy)
    assert loads(dumps(policy)) == policy
    assert loads(domain).allow_signing_key_rotation is False
    assert "[updates]" not in dumps(loads(domain))


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("[updates]\nallow-signing-key-rotation = 1\n", "true or false", 2),
        ("[updates]\nallow-key-rotation = true\n", "allow-key-rotation", 2),
        ("updates = 3\n", "[updates] must be a table", 1),
    ],
)
def test_a_bad_updates_table_names_the_line(text: str, message: str, line: int) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")) as info:
        loads(text, source="p.toml")
    assert info.value.line == line


def _write_key(path: Path, key: PrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def test_cli_signs_a_rotation_and_verify_shows_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "pinset.toml"
    policy.write_text(dumps(ROTATABLE))
    old_key, new_key = _write_key(tmp_path / "old.key", OLD), _write_key(tmp_path / "new.key", NEW)
    old_pub, new_pub = tmp_path / "old.pub", tmp_path / "new.pub"
    old_pub.write_bytes(public_pem(OLD))
    new_pub.write_bytes(public_pem(NEW))
    out = tmp_path / "rotate.json"
    argv = ["bundle", "sign", str(policy), "--key", str(old_key), "--key", str(new_key)]
    argv += ["--next-signing-key", str(new_pub), "--version", "2", "--expires-in", "7"]
    assert main([*argv, "--now", "2026-12-06", "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["keys"] == [str(spki_pin(OLD)), str(spki_pin(NEW))]
    assert summary["next_signing_keys"] == [str(spki_pin(NEW))]

    verify = ["bundle", "verify", str(out), "--trusted-key", str(old_pub), "--now", "2026-12-07"]
    assert main([*verify, "--policy", str(policy)]) == 0
    assert f"later bundles: signed by {spki_pin(NEW)}" in capsys.readouterr().out
    # The same bundle against a policy without the switch: refused, exit 1.
    strict = tmp_path / "strict.toml"
    strict.write_text(dumps(EMBEDDED))
    assert main([*verify, "--policy", str(strict), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["reason"] == "not-allowed"

    # With --store, verify checks against the keys the store trusts now.
    store = tmp_path / "state"
    assert main([*verify, "--policy", str(policy), "--store", str(store), "--save"]) == 0
    later = tmp_path / "later.json"
    sign_new = ["bundle", "sign", str(policy), "--key", str(new_key), "--version", "3"]
    assert main([*sign_new, "--expires-in", "7", "--now", "2026-12-06", "-o", str(later)]) == 0
    capsys.readouterr()
    verify_later = [*verify[:2], str(later), *verify[3:]]
    assert main([*verify_later, "--policy", str(policy), "--store", str(store)]) == 0
    assert main([*verify_later, "--policy", str(policy)]) == 1  # without the store: unknown-key
    assert "unknown-key" in capsys.readouterr().out


def test_a_flag_that_is_not_a_boolean_says_how_to_write_it() -> None:
    with pytest.raises(ConfigError) as info:
        loads('[updates]\nallow-signing-key-rotation = "yes"\n', source="p.toml")
    assert info.value.hint == (
        "write allow-signing-key-rotation = true or allow-signing-key-rotation = false (no quotes)"
    )
    assert "fix: write allow-signing-key-rotation = true" in info.value.diagnostics()
