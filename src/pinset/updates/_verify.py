"""``verify_bundle``: is this bundle authentic, current, for this app, and allowed?

Pure: the time is a parameter, and the only reads are of trusted-key files named by
path. Checks, in order, each with its stable reason id: the size (``too-large``), the
document's shape (``malformed``), the signatures (``unknown-key``, ``bad-signature``),
the payload's shape (``malformed``), the app (``wrong-app``), the time (``expired``),
the version (``rollback``) and the changes against the embedded policy (``not-allowed``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pinset.policy import Policy
from pinset.updates._changes import Change, apply_changes, changes_of
from pinset.updates._document import BundleError, format_time, parse_document, parse_payload
from pinset.updates._signing import TrustedKey, load_trusted_keys, verify_signature

__all__ = ["REASONS", "BundleResult", "apply_bundle", "verify_bundle"]

#: Every refusal reason, by its stable id.
REASONS = (
    "bad-signature",
    "unknown-key",
    "rollback",
    "expired",
    "wrong-app",
    "malformed",
    "too-large",
    "not-allowed",
)


@dataclass(frozen=True, slots=True)
class BundleResult:
    """The outcome of :func:`verify_bundle`.

    ``reason`` is ``None`` when ``valid``, else one of :data:`REASONS`; ``detail``
    says why in words. ``version``, ``app_id`` and ``expires`` are known once the
    signed payload could be read (``None`` before). ``changes`` is the frozen record of
    what applying the bundle changes; ``disabled`` names the kill-switched domains.
    """

    valid: bool
    reason: str | None
    version: int | None = None
    app_id: str | None = None
    expires: dt.datetime | None = None
    changes: tuple[Change, ...] = ()
    detail: str = ""

    @property
    def disabled(self) -> tuple[str, ...]:
        """The domains this bundle's kill switch turns off."""
        return tuple(c.domain for c in self.changes if c.kind == "disable")

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` shape of ``pinset bundle verify``."""
        return {
            "valid": self.valid,
            "reason": self.reason,
            "detail": self.detail,
            "version": self.version,
            "app_id": self.app_id,
            "expires": None if self.expires is None else format_time(self.expires),
            "changes": [change.to_json() for change in self.changes],
        }


def verify_bundle(
    data: bytes,
    *,
    trusted_keys: Iterable[TrustedKey],
    now: dt.datetime,
    embedded: Policy | None = None,
    stored_version: int | None = None,
    app_id: str | None = None,
) -> BundleResult:
    """Check ``data`` (the bundle's bytes as received); a refusal is a result, not an error.

    ``trusted_keys``: PEM paths, PEM bytes or cryptography public keys (a key that
    cannot be read is a :class:`~pinset.errors.ConfigError`: that is the caller's
    mistake, not the bundle's). ``embedded``: the policy shipped with the app, which
    bounds what a bundle may change. ``stored_version``: the version applied last;
    only a greater one is accepted. ``app_id``: when given, the bundle must name it.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    keys = load_trusted_keys(trusted_keys)
    version = bundle_app = expires = None
    try:
        document = parse_document(data)
        trusted = [s for s in document.signatures if s.key in keys]
        if not trusted:
            raise BundleError(
                "unknown-key",
                "no signature is by a trusted key (signed by "
                + ", ".join(str(s.key) for s in document.signatures)
                + ")",
            )
        if not any(verify_signature(keys[s.key], s.alg, s.sig, document.payload) for s in trusted):
            raise BundleError("bad-signature", "the signature does not match the payload")
        payload = parse_payload(document.payload)
        version, bundle_app, expires = payload.version, payload.app_id, payload.expires
        if app_id is not None and payload.app_id != app_id:
            raise BundleError(
                "wrong-app",
                (
                    f"the bundle is for app {payload.app_id!r}"
                    if payload.app_id is not None
                    else "the bundle names no app"
                )
                + f", not {app_id!r}",
            )
        if now >= payload.expires:
            raise BundleError("expired", f"the bundle expired at {format_time(payload.expires)}")
        if stored_version is not None and payload.version <= stored_version:
            raise BundleError(
                "rollback",
                f"version {payload.version} is not newer than the stored {stored_version}",
            )
        changes = changes_of(payload, embedded)
    except BundleError as exc:
        return BundleResult(False, exc.reason, version, bundle_app, expires, detail=exc.message)
    return BundleResult(True, None, version, bundle_app, expires, changes)


def apply_bundle(policy: Policy, result: BundleResult) -> Policy:
    """``policy`` with the changes of a valid bundle: more pins, later expirations,
    report-only and kill-switched domains (``enforce = false``). Pure.

    A refused result is a :class:`~pinset.updates.BundleError` (its reason); so is a
    change ``policy`` cannot take (``not-allowed``).
    """
    if not result.valid:
        raise BundleError(
            result.reason or "malformed",
            f"a refused bundle is never applied ({result.reason}: {result.detail})",
        )
    return apply_changes(policy, result.changes)
