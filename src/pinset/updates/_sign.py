"""``sign_bundle``: a policy's domains as a canonical, signed bundle document. Pure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from pinset.errors import ConfigError
from pinset.hosts import canonical_host
from pinset.pins import spki_pin
from pinset.policy import Policy
from pinset.updates._document import FORMAT, DomainState, Payload, b64url, canonical_json
from pinset.updates._signing import PrivateKey, TrustedKey, key_der, load_trusted_keys, sign

__all__ = ["sign_bundle"]


def sign_bundle(
    policy: Policy,
    signing_key: PrivateKey | Sequence[PrivateKey],
    *,
    version: int,
    expires: dt.datetime,
    issued: dt.datetime,
    app_id: str | None = None,
    disable: Iterable[str] = (),
    next_signing_keys: Iterable[TrustedKey] | None = None,
) -> bytes:
    """The bundle document (UTF-8 JSON bytes) carrying every pinned domain of ``policy``.

    Each domain's pins, include-subdomains, expiration and enforce are written as the
    new state; ``disable`` names the domains whose pinning the bundle switches off.
    ``signing_key``: an Ed25519 or ECDSA P-256 private key, or several (each signs).
    ``next_signing_keys`` (PEM paths, PEM bytes or public keys): the whole set of keys
    the apps check later bundles against once they apply this one. A key the apps do not
    trust yet is only taken when this bundle is signed by it too; dropping a trusted one
    needs the embedded policy's ``allow_signing_key_rotation``.
    """
    signers = list(signing_key) if isinstance(signing_key, Sequence) else [signing_key]
    if not signers:
        raise ConfigError("no signing key", hint="give at least one private key")
    if type(version) is not int or version < 1:
        raise ConfigError(f"version {version!r} is not a positive integer", key="version")
    if app_id is not None and (not isinstance(app_id, str) or not app_id):
        raise ConfigError(f"app id {app_id!r} is not a non-empty string", key="app_id")
    if expires.tzinfo is None or issued.tzinfo is None:
        raise ConfigError("issued and expires must be timezone-aware (UTC)")
    if expires <= issued:
        raise ConfigError("the bundle would expire before it is issued", key="expires")
    payload = Payload(
        version=version,
        issued=issued.replace(microsecond=0),
        expires=expires.replace(microsecond=0),
        app_id=app_id,
        domains=tuple(
            DomainState(
                rule.pattern, rule.pins, rule.include_subdomains, rule.expiration, rule.enforce
            )
            for rule in policy.rules
            if not rule.exclude
        ),
        disable=tuple(sorted({canonical_host(name) for name in disable})),
        signing_keys=None
        if next_signing_keys is None
        else tuple(key_der(key) for key in load_trusted_keys(next_signing_keys).values()),
    )
    data = payload.to_json()
    signatures = []
    signed_by = set()
    for key in signers:
        if spki_pin(key) in signed_by:
            continue  # one signature per key
        signed_by.add(spki_pin(key))
        alg, signature = sign(key, data)
        signatures.append({"key": str(spki_pin(key)), "alg": alg, "sig": b64url(signature)})
    document = {"format": FORMAT, "payload": b64url(data), "signatures": signatures}
    return canonical_json(document) + b"\n"
