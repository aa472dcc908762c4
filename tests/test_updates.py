"""Signed pin-set bundles: round trips, every refusal reason, and what a bundle may change."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from tests._bundles import (
    BACKUP,
    CURRENT,
    ED_KEY,
    EMBEDDED,
    LATER,
    NEW,
    NOW,
    OTHER_ED_KEY,
    P256_KEY,
    bundle,
    payload_of,
    public_pem,
    signed,
    signed_json,
    updated,
)

from pinset.errors import ConfigError
from pinset.updates import (
    MAX_BUNDLE_BYTES,
    REASONS,
    BundleError,
    BundleResult,
    Change,
    apply_bundle,
    verify_bundle,
    verify_signature,
)
from pinset.updates._document import b64url


def verify(data: bytes, **options: Any) -> BundleResult:
    options.setdefault("trusted_keys", [ED_KEY.public_key()])
    options.setdefault("now", NOW)
    return verify_bundle(data, **options)


def decoded(data: bytes) -> tuple[dict[str, Any], bytes]:
    doc = json.loads(data)
    payload = base64.urlsafe_b64decode(doc["payload"] + "=" * (-len(doc["payload"]) % 4))
    return doc, payload


# -- the primitive against RFC 8032 ---------------------------------------------------------


def test_ed25519_primitive_accepts_rfc8032_test_vector_1() -> None:
    # RFC 8032, section 7.1, TEST 1: the empty message.
    public = ed25519.Ed25519PublicKey.from_public_bytes(
        bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    )
    signature = bytes.fromhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    assert verify_signature(public, "ed25519", signature, b"")
    assert not verify_signature(public, "ed25519", signature, b"\x00")
    assert not verify_signature(public, "ed25519", signature[:-1] + b"\x0a", b"")
    assert not verify_signature(public, "ecdsa-p256-sha256", signature, b"")


def test_rfc8032_secret_key_1_derives_its_public_key() -> None:
    secret = ed25519.Ed25519PrivateKey.from_private_bytes(
        bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    )
    assert secret.public_key().public_bytes_raw().hex() == (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    )


def test_p256_signature_is_64_bytes_r_s() -> None:
    from pinset.updates._signing import sign

    alg, sig = sign(P256_KEY, b"message")
    assert (alg, len(sig)) == ("ecdsa-p256-sha256", 64)
    assert verify_signature(P256_KEY.public_key(), alg, sig, b"message")
    assert not verify_signature(P256_KEY.public_key(), alg, sig[:-1], b"message")
    assert not verify_signature(P256_KEY.public_key(), alg, sig, b"massage")


# -- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [ED_KEY, P256_KEY], ids=["ed25519", "p256"])
def test_round_trip(key: Any) -> None:
    policy = updated(pins=(CURRENT, BACKUP, NEW), expiration=dt.date(2027, 12, 31))
    data = bundle(policy, key, version=7, app_id="com.example.app")
    result = verify(
        data, trusted_keys=[public_pem(key)], embedded=EMBEDDED, app_id="com.example.app"
    )
    assert result.valid
    assert result.reason is None
    assert (result.version, result.app_id, result.expires) == (7, "com.example.app", LATER)
    assert result.changes == (
        Change("api.example.com", "add-pins", pins=(NEW,)),
        Change("api.example.com", "expiration", expiration=dt.date(2027, 12, 31)),
    )
    applied = apply_bundle(EMBEDDED, result)
    rule = applied.rule_for("x.api.example.com")
    assert rule is not None
    assert rule.pins == (CURRENT, BACKUP, NEW)
    assert rule.expiration == dt.date(2027, 12, 31)
    assert applied.rule_for("static.api.example.com") is None  # the exclusion stays


def test_document_is_canonical_and_signed_over_the_exact_payload() -> None:
    data = bundle()
    assert data == bundle()  # Ed25519 and canonical JSON: the same bytes every time
    doc, payload = decoded(data)
    assert list(doc) == ["format", "payload", "signatures"]
    assert doc["format"] == "pinset-bundle/1"
    assert "=" not in doc["payload"]
    assert (
        payload
        == json.dumps(
            json.loads(payload), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    )
    (entry,) = doc["signatures"]
    sig = base64.urlsafe_b64decode(entry["sig"] + "==")
    assert verify_signature(ED_KEY.public_key(), "ed25519", sig, payload)


def test_non_canonical_but_signed_payload_is_accepted_as_signed() -> None:
    # The signature covers the bytes as sent; they are never re-serialised first.
    payload = json.dumps(payload_of(), indent=2).encode()
    result = verify(signed(payload))
    assert result.valid, result.detail


def test_trusted_key_from_path_and_any_of_several(tmp_path: Path) -> None:
    path = tmp_path / "signing.pub"
    path.write_bytes(public_pem(ED_KEY))
    result = verify(bundle(), trusted_keys=[P256_KEY.public_key(), str(path)])
    assert result.valid


def test_kill_switch_and_report_only_are_recorded_and_applied() -> None:
    policy = updated(enforce=False)
    result = verify(bundle(policy, disable=["CDN.example.com."]), embedded=EMBEDDED)
    assert result.valid, result.detail
    assert result.disabled == ("cdn.example.com",)
    assert Change("api.example.com", "report-only") in result.changes
    applied = apply_bundle(EMBEDDED, result)
    assert applied.rule_for("cdn.example.com").enforce is False  # type: ignore[union-attr]
    assert applied.rule_for("api.example.com").enforce is False  # type: ignore[union-attr]
    assert result.to_json()["changes"] == [
        {"domain": "api.example.com", "change": "report-only"},
        {"domain": "cdn.example.com", "change": "disable"},
    ]


def test_refused_result_is_never_applied() -> None:
    result = verify(bundle(), now=LATER)
    with pytest.raises(BundleError) as caught:
        apply_bundle(EMBEDDED, result)
    assert caught.value.reason == "expired"


def test_apply_refuses_changes_to_a_domain_the_policy_does_not_pin() -> None:
    result = verify(bundle(updated(pins=(CURRENT, BACKUP, NEW))))  # no embedded: unchecked
    assert result.valid
    with pytest.raises(BundleError) as caught:
        apply_bundle(dataclasses.replace(EMBEDDED, rules=EMBEDDED.rules[1:]), result)
    assert caught.value.reason == "not-allowed"


# -- refusals ---------------------------------------------------------------------------------


def test_reasons_are_the_documented_ids() -> None:
    """REASONS is exactly the ids docs/updates.md names in its order of checks."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "updates.md").read_text("utf-8")
    start = text.index("The checks run in this order")
    paragraph = text[start : text.index("\n\n", start)]
    documented = set(re.findall(r"`([a-z-]+)`", paragraph))
    assert len(REASONS) == len(set(REASONS))
    assert set(REASONS) == documented


def test_tampered_payload_byte_is_bad_signature() -> None:
    doc, payload = decoded(bundle())
    tampered = payload.replace(b'"version":2', b'"version":9')
    assert tampered != payload
    doc["payload"] = b64url(tampered)
    result = verify(json.dumps(doc).encode())
    assert (result.valid, result.reason, result.version) == (False, "bad-signature", None)


@pytest.mark.parametrize("index", [0, 31, 32, 63])
def test_tampered_signature_byte_is_bad_signature(index: int) -> None:
    doc, _payload = decoded(bundle())
    sig = bytearray(base64.urlsafe_b64decode(doc["signatures"][0]["sig"] + "=="))
    sig[index] ^= 0x01
    doc["signatures"][0]["sig"] = b64url(bytes(sig))
    assert verify(json.dumps(doc).encode()).reason == "bad-signature"


def test_every_single_byte_change_is_refused() -> None:
    data = bundle()
    for position in range(len(data) - 1):  # the last byte is the newline
        for flip in (0x01, 0x20):
            changed = bytearray(data)
            changed[position] ^= flip
            result = verify(bytes(changed))
            assert not result.valid, (position, flip)
            assert result.reason in ("malformed", "bad-signature", "unknown-key")


def test_signature_by_another_key_under_a_trusted_name_is_bad_signature() -> None:
    doc, _payload = decoded(bundle(key=OTHER_ED_KEY))
    from pinset.pins import spki_pin

    doc["signatures"][0]["key"] = str(spki_pin(ED_KEY))
    assert verify(json.dumps(doc).encode()).reason == "bad-signature"


def test_algorithm_that_does_not_fit_the_key_is_bad_signature() -> None:
    doc, _payload = decoded(bundle())
    doc["signatures"][0]["alg"] = "ecdsa-p256-sha256"
    assert verify(json.dumps(doc).encode()).reason == "bad-signature"


def test_unknown_key() -> None:
    result = verify(bundle(key=OTHER_ED_KEY))
    assert result.reason == "unknown-key"
    assert "sha256/" in result.detail


def test_one_good_trusted_signature_is_enough() -> None:
    doc, _payload = decoded(bundle())
    extra = json.loads(bundle(key=P256_KEY))["signatures"][0]
    doc["signatures"].insert(0, extra)  # a P-256 signature by a key nobody trusts here
    assert verify(json.dumps(doc).encode()).valid


@pytest.mark.parametrize(("stored", "valid"), [(None, True), (1, True), (2, False), (5, False)])
def test_rollback(stored: int | None, valid: bool) -> None:
    result = verify(bundle(version=2), stored_version=stored)
    assert result.valid is valid
    if not valid:
        assert result.reason == "rollback"
        assert result.version == 2


@pytest.mark.parametrize(
    ("now", "valid"),
    [
        (LATER - dt.timedelta(seconds=1), True),
        (LATER, False),  # expires is the first instant it is no longer valid
        (LATER + dt.timedelta(days=400), False),
    ],
)
def test_expired(now: dt.datetime, valid: bool) -> None:
    result = verify(bundle(), now=now)
    assert result.valid is valid
    assert result.reason == (None if valid else "expired")


@pytest.mark.parametrize(
    ("bundle_app", "expected_app", "reason", "detail"),
    [
        ("com.example.app", "com.example.app", None, ""),
        ("com.example.app", None, None, ""),
        (
            "com.example.other",
            "com.example.app",
            "wrong-app",
            "the bundle is for app 'com.example.other', not 'com.example.app'",
        ),
        (None, "com.example.app", "wrong-app", "the bundle names no app, not 'com.example.app'"),
    ],
)
def test_wrong_app(
    bundle_app: str | None, expected_app: str | None, reason: str | None, detail: str
) -> None:
    result = verify(bundle(app_id=bundle_app), app_id=expected_app)
    assert result.reason == reason
    assert result.detail == detail


def test_too_large_is_refused_before_parsing() -> None:
    assert verify(b" " * (MAX_BUNDLE_BYTES + 1)).reason == "too-large"
    padded = bundle().rstrip(b"\n") + b" " * (MAX_BUNDLE_BYTES - len(bundle()) + 1)
    assert len(padded) == MAX_BUNDLE_BYTES
    assert verify(padded).valid
    assert verify(padded + b" ").reason == "too-large"


_GOOD = json.loads(bundle())
_SIG = _GOOD["signatures"][0]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'"pinset-bundle/1"',
        json.dumps({**_GOOD, "format": "pinset-bundle/2"}).encode(),
        json.dumps({k: v for k, v in _GOOD.items() if k != "payload"}).encode(),
        json.dumps({**_GOOD, "extra": 1}).encode(),
        json.dumps({**_GOOD, "payload": _GOOD["payload"] + "="}).encode(),
        json.dumps({**_GOOD, "payload": _GOOD["payload"] + "/"}).encode(),
        json.dumps({**_GOOD, "payload": 5}).encode(),
        json.dumps({**_GOOD, "signatures": []}).encode(),
        json.dumps({**_GOOD, "signatures": _SIG}).encode(),
        json.dumps({**_GOOD, "signatures": [{**_SIG, "alg": "rsa"}]}).encode(),
        json.dumps({**_GOOD, "signatures": [{**_SIG, "key": "sha1/abc"}]}).encode(),
        json.dumps({**_GOOD, "signatures": [{**_SIG, "key": 7}]}).encode(),
        json.dumps({**_GOOD, "signatures": [{**_SIG, "sig": _SIG["sig"] + "=="}]}).encode(),
        json.dumps({**_GOOD, "signatures": [{**_SIG, "extra": True}]}).encode(),
        json.dumps({**_GOOD, "signatures": ["sig"]}).encode(),
        b'{"format": "pinset-bundle/1", "format": "pinset-bundle/1", "payload": "", '
        b'"signatures": []}',
        b"[" * 60000,  # nesting deeper than the parser goes, under the size limit
    ],
)
def test_malformed_document(data: bytes) -> None:
    result = verify(data)
    assert (result.valid, result.reason) == (False, "malformed")


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[]",
        json.dumps(payload_of(version=0)).encode(),
        json.dumps(payload_of(version=-1)).encode(),
        json.dumps(payload_of(version="2")).encode(),
        json.dumps(payload_of(version=2.0)).encode(),
        json.dumps(payload_of(version=True)).encode(),
        json.dumps(payload_of(version=2**63)).encode(),
        json.dumps(payload_of(issued="2026-12-06")).encode(),
        json.dumps(payload_of(issued="2026-12-06T12:00:00+00:00")).encode(),
        json.dumps(payload_of(expires="2026-02-30T12:00:00Z")).encode(),
        json.dumps(payload_of(expires="2026-12-06T12:00:00Z")).encode(),  # not after issued
        json.dumps(payload_of(app_id="")).encode(),
        json.dumps(payload_of(app_id=5)).encode(),
        json.dumps(payload_of(domains={})).encode(),
        json.dumps(payload_of(domains=[{"pins": []}])).encode(),
        json.dumps(payload_of(domains=[{"name": "a.example", "weight": 1}])).encode(),
        json.dumps(payload_of(domains=[{"name": "A.example"}])).encode(),
        json.dumps(payload_of(domains=[{"name": "a..example"}])).encode(),
        json.dumps(payload_of(domains=[{"name": 5}])).encode(),
        json.dumps(payload_of(domains=[{"name": "a.example", "pins": "sha256/x"}])).encode(),
        json.dumps(payload_of(domains=[{"name": "a.example", "pins": ["sha256/x"]}])).encode(),
        json.dumps(payload_of(domains=[{"name": "a.example", "enforce": "no"}])).encode(),
        json.dumps(payload_of(domains=[{"name": "a.example", "expiration": "2027"}])).encode(),
        json.dumps(payload_of(domains=[{"name": "a.example"}, {"name": "a.example"}])).encode(),
        json.dumps(payload_of(disable="a.example")).encode(),
        json.dumps(payload_of(disable=["a.example", "a.example"])).encode(),
        json.dumps({k: v for k, v in payload_of().items() if k != "disable"}).encode(),
        json.dumps({**payload_of(), "extra": 1}).encode(),
        b'{"version": NaN}',
        b'{"version": 2, "version": 3}',
        '{"app_id": "caf\u00e9"}'.encode("latin-1"),
    ],
)
def test_malformed_payload_even_when_signed(payload: bytes) -> None:
    result = verify(signed(payload))
    assert (result.valid, result.reason) == (False, "malformed"), result.detail


# -- not-allowed: what the embedded policy bounds ---------------------------------------------


@pytest.mark.parametrize(
    "domains",
    [
        pytest.param(
            [{"name": "new.example.com", "pins": [str(CURRENT), str(BACKUP)]}], id="new-domain"
        ),
        pytest.param([{"name": "static.api.example.com", "enforce": False}], id="excluded-domain"),
        pytest.param([{"name": "*.example.com", "enforce": False}], id="other-pattern"),
        pytest.param(
            [{"name": "api.example.com", "pins": [str(CURRENT), str(NEW)]}], id="drops-a-pin"
        ),
        pytest.param([{"name": "api.example.com", "pins": [str(NEW)]}], id="replaces-pins"),
        pytest.param(
            [{"name": "api.example.com", "expiration": "2027-06-29"}], id="earlier-expiration"
        ),
        pytest.param(
            [{"name": "cdn.example.com", "expiration": "2030-01-01"}], id="expiration-where-none"
        ),
        pytest.param([{"name": "api.example.com", "include_subdomains": False}], id="narrower"),
        pytest.param([{"name": "cdn.example.com", "include_subdomains": True}], id="wider"),
        pytest.param([{"name": "beta.example.com", "enforce": True}], id="enforcement-on"),
    ],
)
def test_not_allowed(domains: list[dict[str, Any]]) -> None:
    result = verify(signed_json(payload_of(domains=domains)), embedded=EMBEDDED)
    assert (result.valid, result.reason) == (False, "not-allowed"), result.detail
    assert result.changes == ()
    assert result.version == 2


@pytest.mark.parametrize("name", ["new.example.com", "static.api.example.com"])
def test_kill_switch_for_a_domain_the_app_does_not_pin_is_not_allowed(name: str) -> None:
    result = verify(signed_json(payload_of(disable=[name])), embedded=EMBEDDED)
    assert result.reason == "not-allowed"


def test_allowed_changes_pass_against_the_embedded_policy() -> None:
    domains = [
        {"name": "api.example.com", "pins": [str(BACKUP), str(NEW), str(CURRENT)]},
        {"name": "cdn.example.com", "enforce": False},
    ]
    result = verify(signed_json(payload_of(domains=domains)), embedded=EMBEDDED)
    assert result.valid, result.detail
    same = verify(bundle(EMBEDDED), embedded=EMBEDDED)  # the unchanged policy: no change
    assert same.valid
    assert same.changes == ()


def test_placeholder_only_rule_cannot_take_real_pins() -> None:
    from pinset.pins import Pin
    from pinset.policy import DomainRule, Policy

    placeholder = Pin.parse("sha256/" + "A" * 43 + "=")
    embedded = Policy(rules=(DomainRule("a.example", pins=(placeholder,), placeholder_only=True),))
    domains = [{"name": "a.example", "pins": [str(placeholder), str(NEW)]}]
    result = verify(signed_json(payload_of(domains=domains)), embedded=embedded)
    assert result.reason == "not-allowed"


# -- the caller's mistakes are errors, not refusals -------------------------------------------


def test_no_trusted_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no trusted key"):
        verify(bundle(), trusted_keys=[])


@pytest.mark.parametrize(
    "key",
    [
        b"not a key",
        ec.generate_private_key(ec.SECP384R1()).public_key(),
    ],
    ids=["not-pem", "p384"],
)
def test_unusable_trusted_key_is_a_config_error(key: Any) -> None:
    with pytest.raises(ConfigError):
        verify(bundle(), trusted_keys=[key])


def test_missing_trusted_key_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        verify(bundle(), trusted_keys=[tmp_path / "missing.pub"])
    assert caught.value.source == str(tmp_path / "missing.pub")


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify(bundle(), now=NOW.replace(tzinfo=None))


@pytest.mark.parametrize(
    "options",
    [
        {"version": 0},
        {"app_id": ""},
        {"expires": NOW},
        {"issued": NOW.replace(tzinfo=None)},
    ],
)
def test_sign_refuses_bad_options(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        bundle(**options)


def test_sign_refuses_a_p384_key() -> None:
    with pytest.raises(ConfigError, match="Ed25519 or ECDSA P-256"):
        bundle(key=ec.generate_private_key(ec.SECP384R1()))
