"""``verify_bundle``: is this bundle authentic, current, for this app, and allowed?

Pure: the time is a parameter, and the only reads are of trusted-key files named by
path. Checks, in order, each with its stable reason id: the size (``too-large``), the
document's shape (``malformed``), the signatures (``unknown-key``, ``bad-signature``),
the payload's shape (``malformed``), the app (``wrong-app``), the time (``expired``),
the version (``rollback``), the changes against the embedded policy and the signing
keys the bundle names for later bundles (``not-allowed``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pinset.pins import Pin
from pinset.policy import Policy
from pinset.updates._changes import Change, apply_changes, changes_of
from pinset.updates._document import (
    BundleError,
    Document,
    Payload,
    format_time,
    parse_document,
    parse_payload,
)
from pinset.updates._signing import (
    PublicKey,
    TrustedKey,
    load_trusted_keys,
    public_key_from_der,
    verify_signature,
)

__all__ = ["REASONS", "BundleResult", "apply_bundle", "check_signing_keys", "verify_bundle"]

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
    ``signing_keys`` (DER SubjectPublicKeyInfo) is the set of keys later bundles are
    checked against once this one is applied, ``None`` when the bundle leaves it as is.
    """

    valid: bool
    reason: str | None
    version: int | None = None
    app_id: str | None = None
    expires: dt.datetime | None = None
    changes: tuple[Change, ...] = ()
    detail: str = ""
    signing_keys: tuple[bytes, ...] | None = None

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
            "signing_keys": None
            if self.signing_keys is None
            else [str(Pin.of_spki(der)) for der in self.signing_keys],
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
        check_signing_keys(document, payload, keys, embedded)
    except BundleError as exc:
        return BundleResult(False, exc.reason, version, bundle_app, expires, detail=exc.message)
    return BundleResult(
        True, None, version, bundle_app, expires, changes, signing_keys=payload.signing_keys
    )


def check_signing_keys(
    document: Document, payload: Payload, trusted: dict[Pin, PublicKey], embedded: Policy | None
) -> None:
    """Refuse (``not-allowed``) a change of signing keys the app must not take.

    Adding a key is allowed when the bundle is also signed by that key: proof that it is
    held, so that no typo can leave the apps trusting only a key nobody has. Removing
    (or replacing) a trusted key needs ``allow_signing_key_rotation`` in the embedded policy.
    """
    if payload.signing_keys is None:
        return
    named = {Pin.of_spki(der): der for der in payload.signing_keys}
    removed = [pin for pin in trusted if pin not in named]
    if removed and (embedded is None or not embedded.allow_signing_key_rotation):
        raise BundleError(
            "not-allowed",
            f"the bundle stops trusting the signing key {removed[0]}, and the embedded "
            "policy does not allow signing-key rotation",
            hint="keep every trusted key in the bundle's signing keys, or ship "
            "allow-signing-key-rotation = true in the [updates] table of the app's policy",
        )
    for pin, der in named.items():
        if pin in trusted:
            continue
        key = public_key_from_der(der)
        if not any(
            s.key == pin and verify_signature(key, s.alg, s.sig, document.payload)
            for s in document.signatures
        ):
            raise BundleError(
                "not-allowed",
                f"the bundle adds the signing key {pin} but is not signed by it",
                hint="sign with the new key too (pinset bundle sign --key OLD --key NEW): "
                "apps only take a key whose holder proved to hold it",
            )


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
