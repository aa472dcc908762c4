"""New keys: backup keys for TLS servers, signing keys for pin-set bundles, and their CSRs.

:func:`generate_key` makes a key of one of :data:`KEY_TYPES`; :func:`private_key_pem`
writes it as PKCS#8 PEM, encrypted unless the caller passes ``password=None`` on
purpose; :func:`public_key_pem` writes its SubjectPublicKeyInfo, which is what a pin
hashes and what an app is given to trust bundles; :func:`signing_request` makes the
CSR a CA certifies a backup key from. Nothing here touches the file system.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from pinset.errors import ConfigError
from pinset.hosts import canonical_host, is_ip_literal

__all__ = [
    "KEY_TYPES",
    "SIGNING_KEY_TYPES",
    "csr_names",
    "generate_key",
    "private_key_pem",
    "public_key_pem",
    "signing_request",
]

# Names of the keys `pinset keygen --type` makes. ``ecdsa-p256`` is the key ``ec-p256``
# makes, under the name bundle signing uses (ECDSA with SHA-256 over P-256).
KEY_TYPES = ("ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096", "ed25519", "ecdsa-p256")
# Keys a pin-set bundle can be signed with: Ed25519, and ECDSA P-256 for platforms whose
# own crypto library has no Ed25519 (Android's before API level 33).
SIGNING_KEY_TYPES = ("ed25519", "ecdsa-p256")
# RFC 5280's ub-common-name.
_MAX_COMMON_NAME = 64


def generate_key(kind: str) -> Any:
    """A new private key of ``kind`` (one of :data:`KEY_TYPES`)."""
    if kind in ("ec-p256", "ecdsa-p256"):
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind in ("rsa-2048", "rsa-3072", "rsa-4096"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[4:]))
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ConfigError(
        f"unknown key type {kind!r}", key="--type", hint=f"use one of {', '.join(KEY_TYPES)}"
    )


def private_key_pem(key: Any, password: bytes | None) -> bytes:
    """``key`` as PKCS#8 PEM, encrypted with ``password`` (the best cryptography offers).

    ``password=None`` writes the key in the clear: the caller asked for that on
    purpose and warns. An empty password is refused, as it protects nothing.
    """
    if password is None:
        encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
    elif not password:
        raise ConfigError(
            "refusing to encrypt a key with an empty password",
            key="--password-file",
            hint="type a non-empty password, or put one on the first line of --password-file",
        )
    else:
        encryption = serialization.BestAvailableEncryption(password)
    pem: bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    return pem


def public_key_pem(key: Any) -> bytes:
    """The public half of ``key`` (a private or public key) as SubjectPublicKeyInfo PEM."""
    public = key.public_key() if hasattr(key, "public_key") else key
    pem: bytes = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem


def csr_names(names: Sequence[str]) -> tuple[str, ...]:
    """``names`` canonical (one owner: :func:`pinset.hosts.canonical_host`), ``*.`` kept.

    A :class:`ConfigError` names the bad one; duplicates are kept once, in order. The
    first becomes a CSR's common name, so it may be at most 64 characters (RFC 5280).
    """
    if not names:
        raise ConfigError(
            "a CSR needs at least one name", key="--cn", hint="e.g. --cn api.example.com"
        )
    canonical: list[str] = []
    for name in names:
        stripped = name.strip()
        wildcard = stripped.startswith("*.")
        try:
            host = canonical_host(stripped[2:] if wildcard else stripped)
        except ConfigError as exc:
            raise ConfigError(exc.message, key="--cn", hint=exc.hint) from None
        if wildcard and is_ip_literal(host):
            raise ConfigError(f"{name!r}: an IP address has no wildcard form", key="--cn")
        full = f"*.{host}" if wildcard else host
        if full not in canonical:
            canonical.append(full)
    if len(canonical[0]) > _MAX_COMMON_NAME:
        raise ConfigError(
            f"{canonical[0]!r} is longer than a common name may be ({_MAX_COMMON_NAME} characters)",
            key="--cn",
            hint="put a shorter name first: it becomes the CN, all names go into the SAN",
        )
    return tuple(canonical)


def signing_request(
    key: Any, names: Sequence[str] = (), *, subject: x509.Name | None = None
) -> x509.CertificateSigningRequest:
    """A CSR signed by ``key``.

    With ``names`` (made canonical by :func:`csr_names`): the first is the subject's common name and
    all of them are in the subjectAltName (DNS names, IP addresses), which is what a
    CA issues a server certificate from. ``subject`` replaces the common-name subject.
    """
    names = csr_names(names) if names else ()
    if subject is None:
        if not names:
            raise ConfigError("a CSR needs a subject or at least one name", key="--cn")
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if names:
        general: list[x509.GeneralName] = [
            x509.IPAddress(ipaddress.ip_address(name))
            if is_ip_literal(name)
            else x509.DNSName(name)
            for name in names
        ]
        builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    # Ed25519 signs the message itself: no separate hash.
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm)
