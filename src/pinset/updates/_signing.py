"""Signing keys, trusted keys, and the two signature primitives bundles use.

``ed25519`` is RFC 8032 Ed25519 over the payload bytes; ``ecdsa-p256-sha256`` is
ECDSA on P-256 with SHA-256, the signature written as the 64 bytes ``r || s``
(big-endian, 32 bytes each; the JWS ``ES256`` form), not DER. A key is named by its
SPKI pin (``sha256/...``), the same value pinset pins servers by.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TypeAlias

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from pinset.errors import ConfigError
from pinset.pins import Pin, spki_pin

__all__ = [
    "PrivateKey",
    "PublicKey",
    "TrustedKey",
    "algorithm_of",
    "key_der",
    "load_trusted_keys",
    "public_key_from_der",
    "sign",
    "verify_signature",
]

PrivateKey: TypeAlias = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey: TypeAlias = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
#: What ``trusted_keys`` may hold: a PEM file path, PEM bytes, or a public key object.
TrustedKey: TypeAlias = str | os.PathLike[str] | bytes | PublicKey

_P256_BYTES = 32


def algorithm_of(key: PrivateKey | PublicKey) -> str:
    """``ed25519`` or ``ecdsa-p256-sha256``; any other key is a :class:`ConfigError`."""
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "ed25519"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)) and isinstance(
        key.curve, ec.SECP256R1
    ):
        return "ecdsa-p256-sha256"
    raise ConfigError(
        f"a bundle key must be Ed25519 or ECDSA P-256, not {type(key).__name__}",
        hint="make one with: pinset keygen --type ed25519 --out signing.key",
    )


def sign(key: PrivateKey, message: bytes) -> tuple[str, bytes]:
    """The algorithm name and the signature of ``message`` by ``key``."""
    alg = algorithm_of(key)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return alg, key.sign(message)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
    return alg, r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")


def verify_signature(key: PublicKey, alg: str, signature: bytes, message: bytes) -> bool:
    """True when ``signature`` is ``key``'s signature of ``message`` under ``alg``.

    A key of another algorithm than ``alg``, or a signature of the wrong length, is
    simply not a valid signature.
    """
    try:
        if algorithm_of(key) != alg:
            return False
    except ConfigError:
        return False
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
            return True
        assert isinstance(key, ec.EllipticCurvePublicKey)
        if len(signature) != 2 * _P256_BYTES:
            return False
        r = int.from_bytes(signature[:_P256_BYTES], "big")
        s = int.from_bytes(signature[_P256_BYTES:], "big")
        key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
        return True
    except (InvalidSignature, ValueError):
        return False


def _public_key(item: TrustedKey) -> PublicKey:
    if isinstance(item, (ed25519.Ed25519PublicKey, ec.EllipticCurvePublicKey)):
        algorithm_of(item)
        return item
    source = None
    if isinstance(item, bytes):
        data = item
    else:
        source = os.fspath(item)
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the trusted key: {exc.strerror or exc}", source=source
            ) from None
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise ConfigError(
            "not a PEM public key (-----BEGIN PUBLIC KEY-----)",
            source=source,
            hint="give the signing key's public half (pinset keygen --public-out)",
        ) from None
    if not isinstance(key, (ed25519.Ed25519PublicKey, ec.EllipticCurvePublicKey)):
        raise ConfigError(
            f"a trusted key must be Ed25519 or ECDSA P-256, not {type(key).__name__}",
            source=source,
        )
    try:
        algorithm_of(key)
    except ConfigError as exc:
        raise exc.with_location(source=source) from None
    return key


def key_der(key: PublicKey) -> bytes:
    """The DER SubjectPublicKeyInfo of ``key`` (what its SPKI pin hashes)."""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_from_der(der: bytes) -> PublicKey:
    """The Ed25519 or P-256 public key of a DER SubjectPublicKeyInfo; else a ConfigError."""
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, TypeError):
        raise ConfigError("not a DER SubjectPublicKeyInfo") from None
    if not isinstance(key, (ed25519.Ed25519PublicKey, ec.EllipticCurvePublicKey)):
        raise ConfigError(f"a signing key must be Ed25519 or ECDSA P-256, not {type(key).__name__}")
    algorithm_of(key)
    return key


def load_trusted_keys(items: Iterable[TrustedKey]) -> dict[Pin, PublicKey]:
    """The trusted keys by their SPKI pin; an empty list is refused (it would trust nothing)."""
    keys = {}
    for item in items:
        key = _public_key(item)
        keys[spki_pin(key)] = key
    if not keys:
        raise ConfigError(
            "no trusted key: every bundle would be refused",
            hint="give the public key of the bundle signing key",
        )
    return keys
