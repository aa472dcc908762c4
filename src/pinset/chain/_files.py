"""Read certificates, keys and CSRs from a file: PEM, DER, PKCS#7 and PKCS#12.

:func:`load_chain` takes a path or bytes and returns a :class:`LoadedChain`; a
missing or wrong password raises :class:`PasswordError` (a caller may prompt and
retry). All of it is re-exported by :mod:`pinset.chain`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeAlias

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from pinset.errors import ChainError
from pinset.pins import pem_blocks

__all__ = ["Key", "LoadedChain", "PasswordError", "load_chain"]

Key: TypeAlias = Any  # a cryptography public or private key object

_EXPECTED = (
    "expected a certificate, chain, key or CSR in PEM or DER, a PKCS#7 bundle or a PKCS#12 file"
)


@dataclass(frozen=True, slots=True)
class LoadedChain:
    """What a file held: certificates (in file order), keys and CSRs."""

    certificates: tuple[x509.Certificate, ...]
    keys: tuple[Key, ...]
    csrs: tuple[x509.CertificateSigningRequest, ...]
    source: str | None


class PasswordError(ChainError):
    """An encrypted key or PKCS#12 file without the right password.

    ``missing`` is true when no password was given (a caller may prompt and retry).
    """

    def __init__(self, message: str, *, missing: bool, source: str | None, hint: str) -> None:
        self.missing = missing
        super().__init__(message, source=source, hint=hint)


_CERT_BLOCKS = {"CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"}
_CSR_BLOCKS = {"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"}
_PUBLIC_BLOCKS = {"PUBLIC KEY", "RSA PUBLIC KEY"}
_PKCS7_BLOCKS = {"PKCS7", "PKCS #7 SIGNED DATA", "CMS"}
_PASSWORD_HINT = "give the password (pinset pin --password-file FILE)"  # noqa: S105
# PKCS#12: SEQUENCE { INTEGER 3, ContentInfo { OID pkcs7-data ...
_PKCS12_VERSION = b"\x02\x01\x03\x30"


def load_chain(
    path_or_bytes: str | os.PathLike[str] | bytes,
    *,
    password: bytes | str | None = None,
    source: str | None = None,
) -> LoadedChain:
    """Read certificates, keys and CSRs from a file (path) or its bytes.

    Understands PEM bundles (blocks of any of those kinds, mixed), DER certificates,
    keys and CSRs, PKCS#7 (PEM or DER) and PKCS#12 (with ``password``). Anything
    else raises :class:`ChainError` naming ``source`` (default: the path); a
    missing or wrong password raises :class:`PasswordError`.
    """
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        data = bytes(path_or_bytes)
    else:
        source = source or os.fspath(path_or_bytes)
        try:
            data = Path(path_or_bytes).read_bytes()
        except IsADirectoryError:
            raise ChainError("is a directory", source=source, hint=_EXPECTED) from None
        except OSError as exc:
            raise ChainError(
                f"cannot read: {exc.strerror or exc}", source=source, hint=_EXPECTED
            ) from None
    if isinstance(password, str):
        password = password.encode("utf-8", "surrogatepass")
    elif isinstance(password, bytearray | memoryview):
        password = bytes(password)
    elif password is not None and not isinstance(password, bytes):
        raise ChainError(
            f"the password must be text or bytes, not {type(password).__name__}",
            source=source,
            key="password",
            hint=_PASSWORD_HINT,
        )
    if not data.strip():
        raise ChainError("the file is empty", source=source, hint=_EXPECTED)
    if b"-----BEGIN " in data:
        return _load_pem(data, password, source)
    return _load_der(data, password, source)


def _serialization() -> ModuleType:
    """cryptography's key (de)serialization, imported for keys only: it loads the SSH and
    cipher modules, which reading certificates never needs (a faster ``pinset pin``)."""
    from cryptography.hazmat.primitives import serialization

    return serialization


def _load_pem(data: bytes, password: bytes | None, source: str | None) -> LoadedChain:
    certs: list[x509.Certificate] = []
    keys: list[Key] = []
    csrs: list[x509.CertificateSigningRequest] = []
    try:
        blocks = list(pem_blocks(data))
    except ChainError as exc:
        raise ChainError(exc.message, source=source, hint=_EXPECTED) from None
    for pem in blocks:
        kind, block = pem.kind, pem.text
        try:
            if kind in _CERT_BLOCKS:
                certs.append(x509.load_pem_x509_certificate(block.replace(b"TRUSTED ", b"")))
            elif kind in _CSR_BLOCKS:
                csrs.append(x509.load_pem_x509_csr(block))
            elif kind in _PUBLIC_BLOCKS:
                keys.append(_serialization().load_pem_public_key(block))
            elif kind in _PKCS7_BLOCKS:
                certs.extend(_pkcs7_certificates(block, pem=True))
            elif kind.endswith("PRIVATE KEY"):
                keys.append(_private_key(block, password, source, pem=True))
            # Other blocks (EC PARAMETERS, DH PARAMETERS, ...) carry no public key.
        except PasswordError:
            raise
        except (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion) as exc:
            raise ChainError(
                f"PEM block #{pem.number} ({kind}) does not parse: {exc}",
                source=source,
                hint=_EXPECTED,
            ) from None
    if not (certs or keys or csrs):
        raise ChainError(
            "no certificate, key or CSR among the PEM blocks", source=source, hint=_EXPECTED
        )
    return LoadedChain(tuple(certs), tuple(keys), tuple(csrs), source)


def _private_key(data: bytes, password: bytes | None, source: str | None, *, pem: bool) -> Key:
    serialization = _serialization()
    load = serialization.load_pem_private_key if pem else serialization.load_der_private_key
    try:
        return load(data, password=password)
    except TypeError as exc:
        # cryptography: "Password was not given but private key is encrypted", or the reverse.
        # An empty password counts as none given (cryptography treats it so).
        if "not encrypted" in str(exc):
            return load(data, password=None)
        if not password:
            raise PasswordError(
                "the private key is encrypted and no password was given",
                missing=True,
                source=source,
                hint=_PASSWORD_HINT,
            ) from None
        raise
    except ValueError:
        if password is not None and _is_encrypted_key(load, data):
            raise PasswordError(
                "wrong password for the encrypted private key",
                missing=False,
                source=source,
                hint=_PASSWORD_HINT,
            ) from None
        raise


def _is_encrypted_key(load: Any, data: bytes) -> bool:
    """True if ``data`` is an encrypted key: loading it without a password asks for one."""
    try:
        load(data, password=None)
    except TypeError:  # "Password was not given but private key is encrypted"
        return True
    except ValueError:
        return False
    return False


def _usable_pkcs12_password(password: bytes) -> bool:
    """Whether OpenSSL can take ``password`` for PKCS#12 at all.

    cryptography passes it on as a C string of UTF-8 text: a NUL byte makes it panic
    (a BaseException) and other non-UTF-8 bytes make it raise a bare TypeError. Such a
    password cannot be the right one, so it is treated as a wrong password.
    """
    if b"\x00" in password:
        return False
    try:
        password.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _looks_like_pkcs12(data: bytes) -> bool:
    if len(data) < 8 or data[0] != 0x30:
        return False
    length_octets = data[1] & 0x7F if data[1] & 0x80 else 0
    offset = 2 + length_octets
    return data[offset : offset + 4] == _PKCS12_VERSION


def _pkcs7_certificates(data: bytes, *, pem: bool) -> list[x509.Certificate]:
    # Imported here: cryptography's pkcs7 module loads the email package, and a
    # certificate file (`pinset pin cert.pem`) should not wait for it.
    from cryptography.hazmat.primitives.serialization import pkcs7

    if pem:
        return pkcs7.load_pem_pkcs7_certificates(data)
    return pkcs7.load_der_pkcs7_certificates(data)


def _load_der(data: bytes, password: bytes | None, source: str | None) -> LoadedChain:
    if _looks_like_pkcs12(data):
        return _load_pkcs12(data, password, source)
    readers: tuple[Callable[[], LoadedChain], ...] = (
        lambda: LoadedChain((x509.load_der_x509_certificate(data),), (), (), source),
        lambda: LoadedChain(tuple(_pkcs7_certificates(data, pem=False)), (), (), source),
        lambda: LoadedChain((), (), (x509.load_der_x509_csr(data),), source),
        lambda: LoadedChain((), (_serialization().load_der_public_key(data),), (), source),
        lambda: LoadedChain((), (_private_key(data, password, source, pem=False),), (), source),
    )
    unsupported: UnsupportedAlgorithm | None = None
    for read in readers:
        try:
            return read()
        except PasswordError:  # a ChainError, so a ValueError: let it through
            raise
        except UnsupportedAlgorithm as exc:  # a key structure with an unknown algorithm
            unsupported = unsupported or exc
        except (ValueError, TypeError, x509.InvalidVersion):
            pass
    if unsupported is not None:
        raise ChainError(
            f"unsupported key algorithm: {unsupported}", source=source, hint=_EXPECTED
        ) from None
    raise ChainError(
        "unrecognised content (neither PEM nor a known DER structure)",
        source=source,
        hint=_EXPECTED,
    )


def _load_pkcs12(data: bytes, password: bytes | None, source: str | None) -> LoadedChain:
    from cryptography.hazmat.primitives.serialization.pkcs12 import load_key_and_certificates

    # A file without a password opens with none (or an empty one) whatever was given.
    attempts = [None, b""] if password is None else [password, None, b""]
    for attempt in attempts:
        if attempt and not _usable_pkcs12_password(attempt):
            continue
        try:
            key, cert, extra = load_key_and_certificates(data, attempt)
        except ValueError:
            continue
        certs = ([cert] if cert is not None else []) + list(extra)
        keys = [key] if key is not None else []
        if not (certs or keys):
            raise ChainError(
                "the PKCS#12 file holds no certificate or key", source=source, hint=_EXPECTED
            )
        return LoadedChain(tuple(certs), tuple(keys), (), source)
    if not password:
        raise PasswordError(
            "the PKCS#12 file is password-protected and no password was given",
            missing=True,
            source=source,
            hint=_PASSWORD_HINT,
        )
    raise PasswordError(
        "wrong password for the PKCS#12 file (or the file is damaged)",
        missing=False,
        source=source,
        hint=_PASSWORD_HINT,
    )
