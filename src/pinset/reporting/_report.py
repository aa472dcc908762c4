"""The pin-failure report: the RFC 7469 section 3 shape plus the fields TrustKit adds.

Pure: a :class:`FailureReport` is built from a verdict and the connection facts
the TLS layer saw; nothing here reads the clock, the network or files.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pinset.verdict import Connection, Reason, Verdict

__all__ = ["REPORTED_REASONS", "TRUSTKIT_RESULTS", "FailureReport", "der_to_pem", "known_pin_text"]

# Verdicts that mean "the pins did not hold" for a pinned host. ``policy-expired``
# is not among them: after expiration nothing is checked, so nothing failed
# (TrustKit likewise reports pin validation failures only).
# Each has TrustKit's numeric validation result (TSKTrustEvaluationResult /
# PinningValidationResult); the reported reasons are the keys of that table.
TRUSTKIT_RESULTS: dict[Reason, int] = {
    "pin-mismatch": 1,
    "report-only-mismatch": 1,
    "no-verified-chain": 2,
    "internal-error": 5,
    # Allowed, but only because the chain anchors at a [debug-overrides] CA with
    # override-pins: reported so the operator sees a bypass in use. TrustKit's 4 is
    # "failed: user-defined trust anchor", a chain that ends at a CA the user added.
    "debug-override": 4,
    # Allowed because a signed bundle switched the domain's pinning off: reported so
    # the operator sees the fallback in use. The kill switch leaves the domain not
    # enforced, so the report reads as TrustKit's report-only failure (1 with
    # enforce-pinning false) when no pin would have matched, and as 0 (success) when
    # one would: then the kill switch can be lifted. pinset-reason says kill-switch.
    "kill-switch": 1,
    # require-ct failed after the pins held: TrustKit has no CT result, and its 2
    # ("invalid certificate chain") is the nearest; pinset-reason says which.
    "ct-missing": 2,
    "ct-insufficient": 2,
    "ct-invalid": 2,
}
REPORTED_REASONS: frozenset[Reason] = frozenset(TRUSTKIT_RESULTS)


def der_to_pem(der: bytes) -> str:
    """A DER certificate as a PEM block (64-column base64 lines, final newline)."""
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode("ascii"), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


def known_pin_text(b64: str) -> str:
    """A pin in the RFC 7469 ``known-pins`` notation: ``pin-sha256="<base64>"``."""
    return f'pin-sha256="{b64}"'


def _iso_instant(value: dt.datetime) -> str:
    utc = value.astimezone(dt.timezone.utc).replace(microsecond=0, tzinfo=None)
    return utc.isoformat() + "Z"


@dataclass(frozen=True, slots=True)
class FailureReport:
    """One pin validation failure, ready to be sent as JSON.

    Field names follow RFC 7469 section 3 (``date-time``, ``hostname`` …) and
    TrustKit (``app-bundle-id`` … ``validation-result``, an integer). ``reason``
    is pinset's own verdict reason, sent as ``pinset-reason``.
    """

    date_time: str
    hostname: str
    port: int
    noted_hostname: str
    include_subdomains: bool
    effective_expiration_date: str | None
    served_certificate_chain: tuple[str, ...]
    validated_certificate_chain: tuple[str, ...]
    known_pins: tuple[str, ...]
    enforce_pinning: bool
    validation_result: int
    reason: str
    known_pins_expiration_date: str | None = None
    app_bundle_id: str | None = None
    app_version: str | None = None
    app_platform: str | None = "PYTHON"
    extra: tuple[tuple[str, Any], ...] = field(default=(), compare=False)

    @classmethod
    def from_verdict(
        cls,
        verdict: Verdict,
        connection: Connection,
        *,
        app_bundle_id: str | None = None,
        app_version: str | None = None,
        app_platform: str | None = "PYTHON",
        now: dt.datetime | None = None,
    ) -> FailureReport:
        """The report for a failed ``verdict`` on ``connection``.

        The time is the verdict's own (``now`` when the verdict carries none).
        Raises :class:`ValueError` for a verdict without a rule (nothing was pinned)
        or one that is not a failure (see :data:`REPORTED_REASONS`).
        """
        rule = verdict.rule
        if rule is None or rule.exclude:
            raise ValueError(f"{verdict.host}: no pin rule applied, there is nothing to report")
        if verdict.reason not in REPORTED_REASONS:
            raise ValueError(f"{verdict.host}: verdict {verdict.reason!r} is not a pin failure")
        when = verdict.now or now
        if when is None:
            raise ValueError("the verdict carries no time; pass now=")
        expires = rule.expires_at()
        reason: Reason = verdict.reason
        result = TRUSTKIT_RESULTS[reason]
        if reason == "kill-switch" and verdict.matched_pin is not None:
            result = 0
        return cls(
            date_time=_iso_instant(when),
            hostname=connection.hostname,
            port=connection.port if connection.port is not None else 443,
            noted_hostname=rule.pattern,
            include_subdomains=rule.include_subdomains,
            effective_expiration_date=_iso_instant(expires) if expires else None,
            served_certificate_chain=tuple(der_to_pem(d) for d in connection.served_chain),
            validated_certificate_chain=tuple(der_to_pem(d) for d in verdict.chain),
            known_pins=tuple(known_pin_text(p.b64) for p in rule.pins),
            enforce_pinning=rule.enforce,
            validation_result=result,
            reason=reason,
            known_pins_expiration_date=rule.expiration.isoformat() if rule.expiration else None,
            app_bundle_id=app_bundle_id,
            app_version=app_version,
            app_platform=app_platform,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, with RFC 7469 / TrustKit field names."""
        out: dict[str, Any] = {
            "date-time": self.date_time,
            "hostname": self.hostname,
            "port": self.port,
            "effective-expiration-date": self.effective_expiration_date,
            "include-subdomains": self.include_subdomains,
            "noted-hostname": self.noted_hostname,
            "served-certificate-chain": list(self.served_certificate_chain),
            "validated-certificate-chain": list(self.validated_certificate_chain),
            "known-pins": list(self.known_pins),
            "app-bundle-id": self.app_bundle_id,
            "app-version": self.app_version,
            "app-platform": self.app_platform,
            "enforce-pinning": self.enforce_pinning,
            "validation-result": self.validation_result,
            "known-pins-expiration-date": self.known_pins_expiration_date,
            "pinset-reason": self.reason,
        }
        out.update(self.extra)
        return out

    def to_json(self) -> str:
        """The report as compact JSON text."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def dedup_key(self) -> str:
        """SHA-256 hex of what makes two reports "the same" (everything but the time)."""
        material = [
            self.hostname,
            self.port,
            self.noted_hostname,
            list(self.served_certificate_chain),
            list(self.validated_certificate_chain),
            sorted(self.known_pins),
            self.reason,
        ]
        return hashlib.sha256(json.dumps(material).encode()).hexdigest()
