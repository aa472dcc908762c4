"""``sign_bundle``: a policy's domains as a canonical, signed bundle document. Pure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from pinset.errors import ConfigError
from pinset.hosts import canonical_host
from pinset.pins import spki_pin
from pinset.policy import Policy
from pinset.updates._document import FORMAT, DomainState, Payload, b64url, canonical_json
from pinset.updates._signing import PrivateKey, sign

__all__ = ["sign_bundle"]


def sign_bundle(
    policy: Policy,
    signing_key: PrivateKey,
    *,
    version: int,
    expires: dt.datetime,
    issued: dt.datetime,
    app_id: str | None = None,
    disable: Iterable[str] = (),
) -> bytes:
    """The bundle document (UTF-8 JSON bytes) carrying every pinned domain of ``policy``.

    Each domain's pins, include-subdomains, expiration and enforce are written as the
    new state; ``disable`` names the domains whose pinning the bundle switches off.
    ``signing_key``: an Ed25519 or ECDSA P-256 private key.
    """
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
    )
    data = payload.to_json()
    alg, signature = sign(signing_key, data)
    document = {
        "format": FORMAT,
        "payload": b64url(data),
        "signatures": [{"key": str(spki_pin(signing_key)), "alg": alg, "sig": b64url(signature)}],
    }
    return canonical_json(document) + b"\n"
