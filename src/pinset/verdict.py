"""The verdict on one connection: may it go on, given the host, its verified chain and the time?

Pure: the time is a parameter and nothing here touches sockets or files. Any
exception while judging becomes an ``internal-error`` verdict that refuses the
connection (fail closed).
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.utils import CryptographyDeprecationWarning

from pinset._der import certificate_spki
from pinset.hosts import canonical_host
from pinset.pins import Pin
from pinset.policy import DomainRule, Policy

__all__ = ["REASONS", "Connection", "Reason", "Verdict", "VerdictObserver", "chain_der", "evaluate"]

Reason = Literal[
    "pinned",
    "not-pinned",
    "policy-expired",
    "pin-mismatch",
    "report-only-mismatch",
    "debug-override",
    "kill-switch",
    "no-verified-chain",
    "internal-error",
    # Certificate Transparency (require-ct), judged after the pins by pinset.ct.
    "ct-compliant",
    "ct-missing",
    "ct-insufficient",
    "ct-invalid",
]
REASONS: tuple[Reason, ...] = get_args(Reason)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What pinning decided for one connection.

    ``allowed`` is the decision; ``reason`` says why (one of :data:`REASONS`).
    ``rule`` is the rule that applied (``None`` when the host is not pinned),
    ``matched_pin`` the pin that matched, ``served_pins`` the pins of the
    verified chain, leaf first, and ``chain`` that chain as DER. ``ct-compliant``
    is the pass of a CT-only rule (``require_ct`` and no pins): no pin was checked,
    and ``ssl_context`` found the leaf's SCTs to meet the CT policy; :func:`evaluate`
    alone checks no SCT (it is pure: :func:`pinset.ct.check_chain` does, after it).
    ``error`` is the
    exception of an ``internal-error``, or what the CT check found for a ``ct-*``
    reason (allowed: the rule is report-only).
    """

    host: str
    allowed: bool
    reason: Reason
    rule: DomainRule | None = None
    matched_pin: Pin | None = None
    served_pins: tuple[Pin, ...] = ()
    chain: tuple[bytes, ...] = ()
    now: dt.datetime | None = None
    error: str | None = None

    @property
    def has_rule(self) -> bool:
        """True when a (non-exclusion) rule applied to the host, whether its pins matched or not."""
        return self.rule is not None and not self.rule.exclude

    def describe(self) -> str:
        """A message a person can act on: the verdict, each chain member and the configured pins."""
        head = {
            "pinned": f"{self.host}: pinned key matched ({self.matched_pin})",
            "not-pinned": f"{self.host}: not pinned",
            "policy-expired": (
                f"{self.host}: pin set expired on "
                f"{self.rule.expiration if self.rule else '?'} (not enforced)"
            ),
            "pin-mismatch": f"Certificate pinning failure for {self.host}!",
            "report-only-mismatch": (
                f"{self.host}: no pin matched (report-only, connection allowed)"
            ),
            "debug-override": (
                f"{self.host}: no pin matched; allowed by a debug override (the chain ends at "
                f"a [debug-overrides] trust anchor, override-pins = true, debug=True)"
            ),
            "kill-switch": (
                f"{self.host}: pinning switched off by a signed bundle (kill switch); "
                + (
                    "the CT check of this CT-only rule is off"
                    if self.rule is not None and self.rule.ct_only
                    else f"the pinned key {self.matched_pin} would have matched"
                    if self.matched_pin
                    else "no pin would have matched"
                )
                + ", connection allowed"
            ),
            "ct-compliant": (
                f"{self.host}: CT-only rule (no pins): the certificate meets the "
                "Certificate Transparency policy"
            ),
            "no-verified-chain": (
                f"Certificate pinning failure for {self.host}: no verified chain to check "
                "(a resumed session or a validation that did not run)"
            ),
            "internal-error": (
                f"Certificate pinning failure for {self.host}: could not evaluate the chain "
                f"({self.error})"
            ),
        }.get(self.reason) or _ct_head(self)
        lines = [head]
        if self.chain:
            lines.append("  Verified chain (leaf first):")
            for der, pin in zip(self.chain, self.served_pins, strict=False):
                lines.append(f"    {pin}: {_subject(der)}")
        if self.rule is not None and self.rule.pins:
            lines.append(f"  Pinned keys for {self.rule.pattern}:")
            lines.extend(f"    {pin}" for pin in self.rule.pins)
        return "\n".join(lines)


_CT_HEADS = {
    "ct-missing": "the certificate embeds no SCT",
    "ct-insufficient": "not enough valid SCTs from public logs",
    "ct-invalid": "an SCT's signature does not verify",
}


def _ct_head(verdict: Verdict) -> str:
    """The first line for a ``ct-*`` verdict (the pins, if any, matched)."""
    what = _CT_HEADS[verdict.reason]
    tail = " (report-only, connection allowed)" if verdict.allowed else ""
    # The check's detail, unless it only says the head again ("the certificate embeds no SCT").
    found = f": {verdict.error}" if verdict.error and verdict.error != what else ""
    return f"Certificate Transparency failure for {verdict.host}{tail}: {what}{found}"


@dataclass(frozen=True, slots=True)
class Connection:
    """What the TLS layer knows about a judged connection, for observers and reporters.

    ``served_chain`` is what the server sent (DER, in its order), which may differ
    from the verified chain the verdict was computed on. It lives here, next to the
    verdict, because both the enforcement (which fills it in) and the reporting
    (which reads it) sit above this module.
    """

    hostname: str
    port: int | None
    served_chain: tuple[bytes, ...]


# Called with every verdict on a pinned host; it may log or report, never change the verdict.
VerdictObserver = Callable[[Verdict, Connection], None]


def _subject(der: bytes) -> str:
    try:
        try:
            certificate = x509.load_der_x509_certificate(der)
        except CryptographyDeprecationWarning:
            # Warnings are errors here (python -W error) and the certificate has something
            # cryptography deprecates, such as a serial number of zero that OpenSSL accepted:
            # the refusal is still described, not replaced by the warning. Only on this
            # path, because silencing warnings is process-wide.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                certificate = x509.load_der_x509_certificate(der)
    except ValueError:
        return "(unparsable certificate)"
    return certificate.subject.rfc4514_string() or "(empty subject)"


def chain_der(chain: Sequence[Any]) -> tuple[bytes, ...]:
    """DER bytes of each chain member.

    A member is an ``x509.Certificate``, DER bytes, or an object with ``public_bytes``.
    """
    out: list[bytes] = []
    for member in chain:
        if isinstance(member, bytes | bytearray | memoryview):
            out.append(bytes(member))
        elif isinstance(member, x509.Certificate):
            out.append(member.public_bytes(serialization.Encoding.DER))
        elif hasattr(member, "public_bytes"):
            # ssl's own certificate objects (3.10–3.12 get_verified_chain); 2 is ENCODING_DER.
            out.append(bytes(member.public_bytes(2)))
        else:
            raise TypeError(f"cannot read a chain member of type {type(member).__name__}")
    return tuple(out)


def evaluate(
    policy: Policy,
    host: str,
    verified_chain: Sequence[Any],
    *,
    now: dt.datetime,
    override_anchors: frozenset[Pin] = frozenset(),
) -> Verdict:
    """The verdict for ``host`` whose certificate validation built ``verified_chain`` (leaf first).

    ``now`` must be timezone-aware. Never raises for a bad chain: any exception
    gives ``internal-error`` with ``allowed=False``. ``override_anchors`` are the
    key pins of trust anchors that bypass the pins (a ``[debug-overrides]`` section
    with ``override-pins = true``, given only by ``ssl_context(policy, debug=True)``):
    a chain that matches no pin but ends at one of them is allowed with the reason
    ``debug-override``. Only pins are judged here: a CT-only rule (``require_ct``,
    no pins) gives ``ct-compliant`` without looking at the SCTs, which
    ``ssl_context`` checks next (as it does after ``pinned`` on a ``require_ct`` rule).
    """
    if not isinstance(now, dt.datetime):
        raise TypeError(f"now must be a datetime, not {type(now).__name__}")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime (use datetime.now(timezone.utc))")
    try:
        return _evaluate(policy, host, verified_chain, now, override_anchors)
    except Exception as exc:
        return Verdict(
            host=str(host),
            allowed=False,
            reason="internal-error",
            now=now,
            error=f"{type(exc).__name__}: {exc}",
        )


def _evaluate(
    policy: Policy,
    host: str,
    verified_chain: Sequence[Any],
    now: dt.datetime,
    override_anchors: frozenset[Pin],
) -> Verdict:
    name = canonical_host(host)
    rule = policy.match(name)
    if rule is None or rule.exclude:
        return Verdict(host=name, allowed=True, reason="not-pinned", rule=rule, now=now)
    ders = chain_der(verified_chain)
    pins = tuple(Pin.of_spki(certificate_spki(der)) for der in ders)

    def verdict(allowed: bool, reason: Reason, matched: Pin | None = None) -> Verdict:
        return Verdict(
            host=name,
            allowed=allowed,
            reason=reason,
            rule=rule,
            matched_pin=matched,
            served_pins=pins,
            chain=ders,
            now=now,
        )

    if rule.kill_switch:
        # Switched off by a signed bundle: allowed, whatever the chain, but with its own
        # reason so that reporters tell the operator the fallback is in use, and with
        # the pin that would have matched (None: none would) so they can tell when it
        # can be lifted.
        wanted = frozenset(rule.pins)
        return verdict(True, "kill-switch", next((p for p in pins if p in wanted), None))
    if rule.is_expired(now):
        return verdict(True, "policy-expired")
    if not ders:
        # Fail closed even in report-only mode: there is nothing to report on.
        return verdict(False, "no-verified-chain")
    # The verified chain ends at its trust anchor: only that member can bypass the pins.
    overridden = bool(override_anchors) and pins[-1] in override_anchors
    if rule.ct_only:
        # No pin to check: the CT check (ssl_context's, after this) alone decides.
        return verdict(True, "debug-override" if overridden else "ct-compliant")
    wanted = frozenset(rule.pins)
    for pin in pins:
        if pin in wanted:
            return verdict(True, "pinned", pin)
    if overridden:
        return verdict(True, "debug-override")
    if rule.enforce:
        return verdict(False, "pin-mismatch")
    return verdict(True, "report-only-mismatch")
