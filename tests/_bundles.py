"""Shared material of the bundle tests: fixed keys, an embedded policy, hand-made documents."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from pinset.pins import Pin, spki_pin
from pinset.policy import DomainRule, Policy
from pinset.updates import sign_bundle
from pinset.updates._document import b64url, canonical_json
from pinset.updates._signing import PrivateKey, sign

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.timezone.utc)
LATER = NOW + dt.timedelta(days=30)

# Fixed keys, so that every run signs the same bytes (Ed25519 is deterministic).
ED_KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_ED_KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
P256_KEY = ec.derive_private_key(0x1234567890ABCDEF, ec.SECP256R1())


def pin(label: str) -> Pin:
    return Pin.of_spki(label.encode())


CURRENT, BACKUP, NEW = pin("current"), pin("backup"), pin("new")

EMBEDDED = Policy(
    rules=(
        DomainRule(
            "api.example.com",
            pins=(CURRENT, BACKUP),
            include_subdomains=True,
            expiration=dt.date(2027, 6, 30),
        ),
        DomainRule("static.api.example.com", exclude=True),
        DomainRule("cdn.example.com", pins=(CURRENT, BACKUP)),  # no expiration
        DomainRule("beta.example.com", pins=(CURRENT,), enforce=False),
    )
)


def updated(**changes: Any) -> Policy:
    """EMBEDDED with api.example.com replaced by a rule with ``changes``."""
    api = EMBEDDED.rules[0]
    assert api.name == "api.example.com"
    fields = {
        "pins": api.pins,
        "include_subdomains": api.include_subdomains,
        "expiration": api.expiration,
        **changes,
    }
    return Policy(rules=(DomainRule("api.example.com", **fields),))


def public_pem(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def bundle(
    policy: Policy = EMBEDDED, key: PrivateKey | list[PrivateKey] = ED_KEY, **options: Any
) -> bytes:
    options.setdefault("version", 2)
    options.setdefault("issued", NOW)
    options.setdefault("expires", LATER)
    return sign_bundle(policy, key, **options)


def payload_of(version: int = 2, **fields: Any) -> dict[str, Any]:
    """A well-formed payload mapping; ``fields`` override its keys."""
    base: dict[str, Any] = {
        "version": version,
        "issued": "2026-12-06T12:00:00Z",
        "expires": "2027-01-05T12:00:00Z",
        "app_id": None,
        "domains": [],
        "disable": [],
    }
    base.update(fields)
    return base


def signed(payload: bytes, key: PrivateKey = ED_KEY, **entry: Any) -> bytes:
    """A document over the exact ``payload`` bytes, signed by ``key``; ``entry`` overrides."""
    alg, sig = sign(key, payload)
    signature = {"key": str(spki_pin(key)), "alg": alg, "sig": b64url(sig), **entry}
    return canonical_json(
        {"format": "pinset-bundle/1", "payload": b64url(payload), "signatures": [signature]}
    )


def signed_json(mapping: dict[str, Any], key: PrivateKey = ED_KEY) -> bytes:
    return signed(json.dumps(mapping).encode(), key)
