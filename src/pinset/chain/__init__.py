"""Chains from the world: fetch what a host serves, read what a file holds.

:func:`fetch_chain` (and :func:`async_fetch_chain`) connect over TCP and TLS and
return the chain the server *served* and, when validation against the given trust
succeeds, the chain OpenSSL *verified* (code in :mod:`pinset.chain._fetch`).
:func:`load_chain` reads PEM bundles (with certificates, keys and CSRs mixed), DER,
PKCS#7 and PKCS#12 files (code in :mod:`pinset.chain._files`).
:func:`order_chain` and :func:`cert_role` arrange and label what was found;
:func:`policy_from_chains` builds a first policy from fetched chains plus backup
pins (code in :mod:`pinset.chain._policy`). :func:`generate_key` and its companions
make backup and bundle signing keys and their CSRs (:mod:`pinset.chain._keys`), and
:func:`recovery_kit` a whole disaster-recovery kit (:mod:`pinset.chain._kit`).

Fetching and policy building are imported on first use (PEP 562 ``__getattr__``):
``pinset pin FILE`` reads a file without loading asyncio, sockets or the verdict.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x448, x25519

from pinset._lazy import lazy_attributes
from pinset.chain._files import Key, LoadedChain, PasswordError, load_chain

if TYPE_CHECKING:
    from pinset.chain._fetch import (
        FetchedChain,
        async_fetch_chain,
        fetch_chain,
        network_error,
        peer_chain,
        verifying_context,
    )
    from pinset.chain._keys import (
        KEY_TYPES,
        SIGNING_KEY_TYPES,
        csr_names,
        generate_key,
        private_key_pem,
        public_key_pem,
        signing_request,
    )
    from pinset.chain._kit import KitFile, KitKey, RecoveryKit, recovery_kit
    from pinset.chain._policy import (
        ChainPolicy,
        PinSource,
        check_backups,
        pin_at_level,
        policy_from_chains,
    )

__all__ = [
    "KEY_TYPES",
    "SIGNING_KEY_TYPES",
    "ChainPolicy",
    "FetchedChain",
    "Key",
    "KitFile",
    "KitKey",
    "LoadedChain",
    "PasswordError",
    "PinSource",
    "RecoveryKit",
    "Role",
    "async_fetch_chain",
    "cert_role",
    "check_backups",
    "csr_names",
    "fetch_chain",
    "generate_key",
    "key_type",
    "load_chain",
    "network_error",
    "order_chain",
    "peer_chain",
    "pin_at_level",
    "policy_from_chains",
    "private_key_pem",
    "public_key_pem",
    "recovery_kit",
    "signing_request",
    "verifying_context",
]

Role = Literal["leaf", "intermediate", "root"]

# The private modules behind the names fetching, policy-building and key-making give this
# package, imported on first access (reading files needs neither asyncio nor the fetcher).
if not TYPE_CHECKING:  # type checkers read the imports above: no Any for a typo
    __getattr__, __dir__ = lazy_attributes(
        globals(),
        {
            "pinset.chain._fetch": (
                "FetchedChain",
                "async_fetch_chain",
                "fetch_chain",
                "network_error",
                "peer_chain",
                "verifying_context",
            ),
            "pinset.chain._keys": (
                "KEY_TYPES",
                "SIGNING_KEY_TYPES",
                "csr_names",
                "generate_key",
                "private_key_pem",
                "public_key_pem",
                "signing_request",
            ),
            "pinset.chain._kit": ("KitFile", "KitKey", "RecoveryKit", "recovery_kit"),
            "pinset.chain._policy": (
                "ChainPolicy",
                "PinSource",
                "check_backups",
                "pin_at_level",
                "policy_from_chains",
            ),
        },
    )


# -- arranging --------------------------------------------------------------------


def _self_issued(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    return cert.issuer == issuer.subject and cert is not issuer


def order_chain(certs: Sequence[x509.Certificate]) -> tuple[x509.Certificate, ...]:
    """``certs`` leaf first, following issuer/subject links; unlinked members follow in input order.

    The leaf is the first certificate that issued no other member (a non-CA
    first, a self-issued one last). Duplicates are kept once.
    """
    unique: list[x509.Certificate] = []
    for cert in certs:
        if cert not in unique:
            unique.append(cert)
    if not unique:
        return ()
    issuers = {id(c) for c in unique for other in unique if _issued_by(other, c)}
    # Prefer a non-CA, then anything not self-issued: a stray root issues nothing
    # either, but it is not where a chain starts.
    ends = [c for c in unique if id(c) not in issuers] or unique
    leaf = next(
        (c for c in ends if _is_ca(c) is False),
        next((c for c in ends if not _self_issued(c)), ends[0]),
    )
    ordered = [leaf]
    current = leaf
    while not _self_issued(current):
        parent = next((c for c in unique if c not in ordered and _issued_by(current, c)), None)
        if parent is None:
            break
        ordered.append(parent)
        current = parent
    ordered.extend(c for c in unique if c not in ordered)
    return tuple(ordered)


def _is_ca(cert: x509.Certificate) -> bool | None:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return None


def cert_role(cert: x509.Certificate, position: int, chain: Sequence[x509.Certificate]) -> Role:
    """The role of ``cert`` at ``position`` in ``chain``: leaf, intermediate or root.

    A self-issued CA is a root; position 0 or a non-CA is a leaf; the rest are
    intermediates.

    ``chain`` is the list ``cert`` sits in; a self-issued certificate that is not
    a CA (a self-signed server certificate) is a leaf.
    """
    is_ca = _is_ca(cert)
    if _self_issued(cert) and is_ca is not False:
        return "root"
    if position == 0 or is_ca is False:
        return "leaf"
    issues_member = any(_issued_by(other, cert) for other in chain)
    return "intermediate" if issues_member or is_ca else "leaf"


def key_type(obj: Any) -> str:
    """A short key description: ``"EC P-256"``, ``"RSA 2048"``, ``"Ed25519"``.

    ``obj`` is a certificate, a CSR, or a public or private key.
    """
    key = obj.public_key() if hasattr(obj, "public_key") else obj
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        names = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
        return f"EC {names.get(key.curve.name, key.curve.name)}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    if isinstance(key, x25519.X25519PublicKey):
        return "X25519"
    if isinstance(key, x448.X448PublicKey):
        return "X448"
    # DSA and DH by their class names: naming dsa.DSAPublicKey raises a deprecation warning.
    name = type(key).__name__.removesuffix("PublicKey")
    ml = re.fullmatch(r"ML(DSA|KEM)(\d+)", name)
    if ml:
        return f"ML-{ml.group(1)}-{ml.group(2)}"
    size = getattr(key, "key_size", None)
    return f"{name} {size}" if isinstance(size, int) else name
