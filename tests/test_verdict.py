"""Verdicts for (host, verified chain, time): every reason, every chain form, fail closed.

The verdict reads keys, never names, from the chain: the shared ``leaf`` (issued for
localhost) stands for the chain any host serves.
"""

from __future__ import annotations

import datetime as dt
import warnings

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pinset import DomainRule, Pin, Policy, Verdict, evaluate, spki_pin
from pinset.testing import LeafCert, TestPKI
from pinset.verdict import REASONS, chain_der

NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.timezone.utc)
BACKUP = Pin.parse("sha256/" + "Qk" * 21 + "A=")  # a real-looking offline backup pin


def _policy(*rules: DomainRule) -> Policy:
    return Policy(rules=rules)


def _ders(leaf: LeafCert) -> list[bytes]:
    return [c.public_bytes(serialization.Encoding.DER) for c in leaf.full_chain]


@pytest.mark.parametrize("position", [0, 1, 2], ids=["leaf", "intermediate", "root"])
@pytest.mark.parametrize("as_der", [False, True], ids=["certificate", "der"])
def test_pinned_on_any_chain_member(leaf: LeafCert, position: int, as_der: bool) -> None:
    pin = spki_pin(leaf.full_chain[position])
    policy = _policy(DomainRule("api.example.com", pins=(BACKUP, pin)))
    chain = _ders(leaf) if as_der else list(leaf.full_chain)
    verdict = evaluate(policy, "API.example.com.", chain, now=NOW)
    assert verdict.allowed
    assert verdict.reason == "pinned"
    assert verdict.matched_pin == pin
    assert verdict.served_pins == tuple(spki_pin(c) for c in leaf.full_chain)
    assert verdict.chain == tuple(_ders(leaf))
    assert verdict.host == "api.example.com"
    assert verdict.rule is policy.rule_for("api.example.com")
    assert verdict.has_rule
    assert verdict.now == NOW


def test_other_buffer_types_in_chain(leaf: LeafCert) -> None:
    pin = spki_pin(leaf.cert)
    policy = _policy(DomainRule("api.example.com", pins=(BACKUP, pin)))
    der = leaf.cert.public_bytes(serialization.Encoding.DER)
    for member in (bytearray(der), memoryview(der)):
        assert evaluate(policy, "api.example.com", [member], now=NOW).reason == "pinned"


def test_not_pinned(leaf: LeafCert) -> None:
    policy = _policy(DomainRule("api.example.com", pins=(BACKUP, spki_pin(leaf.cert))))
    verdict = evaluate(policy, "other.example.com", list(leaf.chain), now=NOW)
    assert verdict.allowed
    assert verdict.reason == "not-pinned"
    assert verdict.rule is None
    assert not verdict.has_rule
    assert verdict.describe() == "other.example.com: not pinned"
    # Not pinned means the chain is not even read: it cannot break an unpinned host.
    assert evaluate(policy, "other.example.com", [b"garbage"], now=NOW).allowed


def test_excluded_host_is_not_pinned(leaf: LeafCert) -> None:
    policy = _policy(
        DomainRule(
            "example.com", include_subdomains=True, pins=(BACKUP, Pin(b"\x01" * 31 + b"\x02"))
        ),
        DomainRule("api.example.com", exclude=True),
    )
    verdict = evaluate(policy, "api.example.com", list(leaf.chain), now=NOW)
    assert verdict.allowed
    assert verdict.reason == "not-pinned"
    assert verdict.rule is not None
    assert verdict.rule.exclude
    assert not verdict.has_rule
    assert evaluate(policy, "x.example.com", list(leaf.chain), now=NOW).reason == "pin-mismatch"


def test_pin_mismatch_and_describe(leaf: LeafCert, pki: TestPKI) -> None:
    other = spki_pin(pki.rogue.cert)
    policy = _policy(DomainRule("api.example.com", pins=(other, BACKUP)))
    verdict = evaluate(policy, "api.example.com", list(leaf.full_chain), now=NOW)
    assert not verdict.allowed
    assert verdict.reason == "pin-mismatch"
    assert verdict.matched_pin is None
    lines = verdict.describe().splitlines()
    assert lines[0] == "Certificate pinning failure for api.example.com!"
    assert lines[1] == "  Verified chain (leaf first):"
    for i, cert in enumerate(leaf.full_chain):
        assert lines[2 + i] == f"    {spki_pin(cert)}: {cert.subject.rfc4514_string()}"
    assert lines[5] == "  Pinned keys for api.example.com:"
    assert lines[6:] == [f"    {other}", f"    {BACKUP}"]


def test_report_only_mismatch_is_allowed(leaf: LeafCert) -> None:
    policy = _policy(DomainRule("api.example.com", pins=(BACKUP,), enforce=False))
    verdict = evaluate(policy, "api.example.com", list(leaf.chain), now=NOW)
    assert verdict.allowed
    assert verdict.reason == "report-only-mismatch"
    assert "report-only" in verdict.describe()
    # A match in report-only mode is simply pinned.
    matching = _policy(DomainRule("api.example.com", pins=(spki_pin(leaf.cert),), enforce=False))
    assert evaluate(matching, "api.example.com", list(leaf.chain), now=NOW).reason == "pinned"


def test_policy_expired_fails_open(leaf: LeafCert) -> None:
    rule = DomainRule(
        "api.example.com",
        pins=(BACKUP, Pin(b"\x03" * 31 + b"\x04")),
        expiration=dt.date(2026, 1, 15),
    )
    verdict = evaluate(_policy(rule), "api.example.com", list(leaf.chain), now=NOW)
    assert verdict.allowed
    assert verdict.reason == "policy-expired"
    assert "expired on 2026-01-15" in verdict.describe()
    before = NOW.replace(day=14)
    assert evaluate(_policy(rule), "api.example.com", list(leaf.chain), now=before).reason == (
        "pin-mismatch"
    )


@pytest.mark.parametrize("enforce", [True, False])
def test_empty_verified_chain_fails_closed(leaf: LeafCert, enforce: bool) -> None:
    rule = DomainRule("api.example.com", pins=(BACKUP, spki_pin(leaf.cert)), enforce=enforce)
    verdict = evaluate(_policy(rule), "api.example.com", [], now=NOW)
    assert not verdict.allowed
    assert verdict.reason == "no-verified-chain"
    assert "no verified chain" in verdict.describe()


@pytest.mark.parametrize(
    "bad_member",
    [b"not a certificate", b"\x30\x82\xff\xff", object(), None, 42],
    ids=["garbage-der", "truncated-der", "object", "none", "int"],
)
def test_any_exception_is_internal_error(leaf: LeafCert, bad_member: object) -> None:
    # The genuine leaf matches, but a member that cannot be read refuses the whole chain.
    rule = DomainRule("api.example.com", pins=(BACKUP, spki_pin(leaf.cert)))
    chain = [leaf.cert, bad_member]
    verdict = evaluate(_policy(rule), "api.example.com", chain, now=NOW)
    assert not verdict.allowed
    assert verdict.reason == "internal-error"
    assert verdict.error
    assert "could not evaluate" in verdict.describe()


def test_report_only_does_not_unblock_errors(leaf: LeafCert) -> None:
    rule = DomainRule("api.example.com", pins=(BACKUP,), enforce=False)
    verdict = evaluate(_policy(rule), "api.example.com", [b"junk"], now=NOW)
    assert not verdict.allowed
    assert verdict.reason == "internal-error"


def test_invalid_host_is_internal_error(leaf: LeafCert) -> None:
    policy = _policy(DomainRule("api.example.com", pins=(BACKUP, spki_pin(leaf.cert))))
    for host in ("", "api..example.com", None):
        verdict = evaluate(policy, host, list(leaf.chain), now=NOW)  # type: ignore[arg-type]
        assert not verdict.allowed
        assert verdict.reason == "internal-error"


def test_chain_iteration_error_is_internal_error(leaf: LeafCert) -> None:
    class Exploding:
        def __iter__(self) -> object:
            raise RuntimeError("boom")

        def __len__(self) -> int:
            return 1

    policy = _policy(DomainRule("api.example.com", pins=(BACKUP, spki_pin(leaf.cert))))
    verdict = evaluate(policy, "api.example.com", Exploding(), now=NOW)  # type: ignore[arg-type]
    assert not verdict.allowed
    assert verdict.reason == "internal-error"
    assert verdict.error == "RuntimeError: boom"


def test_naive_or_missing_time_is_rejected(leaf: LeafCert) -> None:
    policy = _policy(DomainRule("api.example.com", pins=(BACKUP, spki_pin(leaf.cert))))
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate(policy, "api.example.com", list(leaf.chain), now=dt.datetime(2026, 1, 1))
    with pytest.raises(TypeError, match="datetime"):
        evaluate(policy, "api.example.com", list(leaf.chain), now=dt.date(2026, 1, 1))  # type: ignore[arg-type]


def test_chain_der_and_ssl_style_members(leaf: LeafCert) -> None:
    class SslCertificate:  # what 3.10-3.12 get_verified_chain() returns
        def __init__(self, der: bytes) -> None:
            self._der = der

        def public_bytes(self, encoding: int) -> bytes:
            assert encoding == 2
            return self._der

    ders = _ders(leaf)
    assert chain_der([SslCertificate(d) for d in ders]) == tuple(ders)
    with pytest.raises(TypeError):
        chain_der(["text"])


def test_every_reason_is_reachable() -> None:
    assert set(REASONS) == {
        "pinned",
        "not-pinned",
        "policy-expired",
        "pin-mismatch",
        "report-only-mismatch",
        "debug-override",
        "kill-switch",
        "no-verified-chain",
        "internal-error",
        "ct-compliant",
        "ct-missing",
        "ct-insufficient",
        "ct-invalid",
    }
    assert Verdict(host="h", allowed=False, reason="internal-error", error="x").describe()


OTHER = Pin.parse("sha256/" + "Qz" * 21 + "A=")  # neither the chain nor the backup


def test_override_anchors_bypass_pins_only_at_the_chain_anchor(leaf: LeafCert) -> None:
    policy = _policy(DomainRule("api.example.com", pins=(BACKUP, OTHER)))
    chain = list(leaf.full_chain)  # leaf, intermediate, root: the root is the anchor
    root, intermediate = spki_pin(chain[-1]), spki_pin(chain[1])

    def judge(anchors: frozenset[Pin], rule_policy: Policy = policy) -> Verdict:
        return evaluate(rule_policy, "api.example.com", chain, now=NOW, override_anchors=anchors)

    verdict = judge(frozenset({root}))
    assert (verdict.allowed, verdict.reason, verdict.matched_pin) == (True, "debug-override", None)
    assert "allowed by a debug override" in verdict.describe()
    # Not the anchor: an intermediate's key in the set bypasses nothing.
    assert judge(frozenset({intermediate})).reason == "pin-mismatch"
    assert judge(frozenset()).reason == "pin-mismatch"
    # A pin match is still a pin match, and an expired rule still fails open first.
    pinned = _policy(DomainRule("api.example.com", pins=(BACKUP, root)))
    assert judge(frozenset({root}), pinned).reason == "pinned"
    expired = _policy(
        DomainRule("api.example.com", pins=(BACKUP, OTHER), expiration=dt.date(2026, 1, 1))
    )
    assert judge(frozenset({root}), expired).reason == "policy-expired"
    # No chain stays fail-closed.
    empty = evaluate(policy, "api.example.com", [], now=NOW, override_anchors=frozenset({root}))
    assert empty.reason == "no-verified-chain"


def test_a_refusal_is_described_when_a_certificate_has_a_zero_serial() -> None:
    # OpenSSL accepts a serial number of zero; cryptography warns when it loads one, and
    # the suite runs with warnings as errors (python -W error): the description must still
    # come out, naming the certificate, instead of the warning.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "zero serial")])
    der = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2020, 1, 1))
        .not_valid_after(dt.datetime(2030, 1, 1))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    version_and_serial = b"\xa0\x03\x02\x01\x02\x02\x01\x01"  # v3, then INTEGER 1
    assert der.count(version_and_serial) == 1
    zero = der.replace(version_and_serial, version_and_serial[:-1] + b"\x00")
    policy = Policy(rules=(DomainRule("example.com", pins=(Pin.of_spki(b"a"), Pin.of_spki(b"b"))),))
    verdict = evaluate(
        policy, "example.com", [zero], now=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    )
    assert verdict.reason == "pin-mismatch"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "CN=zero serial" in verdict.describe()


def test_a_ct_failure_says_its_cause_once() -> None:
    verdict = Verdict(
        host="example.com",
        allowed=False,
        reason="ct-missing",
        now=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
        error="the certificate embeds no SCT",
    )
    head = verdict.describe().splitlines()[0]
    assert head == "Certificate Transparency failure for example.com: the certificate embeds no SCT"
