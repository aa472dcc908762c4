"""Pins: SHA-256 digests of a DER SubjectPublicKeyInfo, and how to compute and parse them.

Pure: no I/O. Pins compare as 32 decoded bytes, never as strings, so padded,
unpadded and whitespace-laden spellings of one pin are the same :class:`Pin`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from pinset._der import DerError, certificate_spki, csr_spki, public_key_spki, tbs_certificate_spki
from pinset.errors import ChainError, PinFormatError

__all__ = ["PemBlock", "Pin", "is_canonical_pin_text", "pem_blocks", "spki_der", "spki_pin"]

_DIGEST_SIZE = 32
_EXAMPLE = "sha256/" + base64.b64encode(bytes(range(32))).decode()
_VALID_SHAPE = (
    f"a valid pin is 'sha256/' followed by the standard base64 of a 32-byte SHA-256 "
    f"digest, for example {_EXAMPLE}"
)
_B64_ALPHABET = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
_B64_VALUE = {
    c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
}
_HEX_FINGERPRINT = re.compile(r"(?:[0-9A-Fa-f]{2}[: ]?){20,64}")
_HPKP = re.compile(r"""pin-(?P<algo>[A-Za-z0-9-]+)\s*=\s*(?P<q>["']?)(?P<value>[^"']*)(?P=q)""")


@dataclass(frozen=True, slots=True, order=True)
class Pin:
    """A SHA-256 SPKI pin: the 32-byte digest of a DER SubjectPublicKeyInfo.

    ``str(pin)`` is ``sha256/<standard base64, padded>``; ``pin.b64`` is the bare
    base64. Construct one with :meth:`parse`, :meth:`of_spki` or :func:`spki_pin`.
    """

    digest: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.digest, bytes):
            raise TypeError(f"Pin digest must be bytes, not {type(self.digest).__name__}")
        if len(self.digest) != _DIGEST_SIZE:
            raise PinFormatError(
                f"a SHA-256 pin is 32 bytes, this digest is {len(self.digest)}",
                hint=_VALID_SHAPE,
            )

    @classmethod
    def of_spki(cls, spki: bytes) -> Pin:
        """The pin of DER SubjectPublicKeyInfo bytes."""
        return cls(hashlib.sha256(spki).digest())

    @classmethod
    def parse(cls, text: str, *, source: str | None = None, line: int | None = None) -> Pin:
        """Parse ``sha256/<b64>``, a bare ``<b64>`` or ``pin-sha256="<b64>"``.

        Padding is optional and whitespace is ignored. Anything else (the URL-safe
        alphabet, a digest that is not 32 bytes, ``sha1/``, ``md5/``, hex
        fingerprints) raises :class:`PinFormatError` saying why and what a valid
        pin looks like; ``source`` and ``line`` locate the error.
        """
        try:
            return cls(_decode_pin_text(text))
        except PinFormatError as exc:
            raise exc.with_location(source=source, line=line) from None

    @property
    def b64(self) -> str:
        """The digest in standard, padded base64 (44 characters)."""
        return base64.b64encode(self.digest).decode("ascii")

    @property
    def hex(self) -> str:
        """The digest as lower-case hex (64 characters)."""
        return self.digest.hex()

    @property
    def is_placeholder(self) -> bool:
        """True for typed-in dummy values: ``AAAA…=``, ``BBBB…=``, ``ABCDEFABCDEF…``.

        That is, a digest whose base64 repeats a unit of at most 8 characters for
        all of its 256 bits (one repeated byte is a 4-character unit). A SHA-256
        output has that shape with a chance below 2**-200.
        """
        text = self.b64
        for size in range(1, 9):
            unit = text[:size]
            # 43 characters carry 258 bits: only the top 4 bits of the 43rd one count.
            last = _B64_VALUE[unit[42 % size]] >> 2 == _B64_VALUE[text[42]] >> 2
            if last and text[:42] == (unit * (42 // size + 1))[:42]:
                return True
        return False

    def __str__(self) -> str:
        return "sha256/" + self.b64

    def __repr__(self) -> str:
        return f"Pin({str(self)!r})"


def is_canonical_pin_text(text: str) -> bool:
    """True when ``text`` is ``sha256/`` plus padded standard base64 (or that base64 alone)."""
    body = text[len("sha256/") :] if text.startswith("sha256/") else text
    return len(body) == 44 and bool(_B64_ALPHABET.fullmatch(body)) and body.endswith("=")


def _decode_pin_text(text: str) -> bytes:
    if not isinstance(text, str):
        raise PinFormatError(f"a pin must be text, not {type(text).__name__}", hint=_VALID_SHAPE)
    raw = text.strip()
    if not raw:
        raise PinFormatError("empty pin", hint=_VALID_SHAPE)
    hpkp = _HPKP.fullmatch(raw.rstrip(";").strip())
    if hpkp:
        algo = hpkp.group("algo").lower()
        if algo != "sha256":
            raise PinFormatError(
                f"pin-{algo} is not supported: only SHA-256 SPKI pins are safe and portable",
                hint=_VALID_SHAPE,
            )
        body = hpkp.group("value")
    else:
        lower = raw.lower()
        if lower.startswith("sha256:"):
            raise PinFormatError(
                "'sha256:' is not a pin prefix (OpenSSH writes key fingerprints that way)",
                hint=_VALID_SHAPE,
            )
        prefix, slash, _ = raw.partition("/")
        if slash and prefix.lower() in {"sha1", "md5", "sha384", "sha512", "sha-1", "sha-256"}:
            if prefix.lower() == "sha-256":
                raise PinFormatError(
                    "write the algorithm as 'sha256/', not 'sha-256/'", hint=_VALID_SHAPE
                )
            raise PinFormatError(
                f"{prefix}/ pins are not supported: only SHA-256 SPKI pins are safe and portable",
                hint=f"compute the key's SHA-256 pin instead (pinset pin FILE); {_VALID_SHAPE}",
            )
        body = raw[len("sha256/") :] if lower.startswith("sha256/") else raw
        # curl's --pinnedpubkey writes "sha256//<b64>"; but a real pin's base64 may itself
        # start with "/", so only a 44th character before the padding marks curl's slash.
        if body.startswith("/") and len("".join(body.split()).rstrip("=")) == 44:
            body = body[1:]
    body = "".join(body.split())
    if _HEX_FINGERPRINT.fullmatch(body) and (":" in body or len(body) in (40, 64)):
        raise PinFormatError(
            "this looks like a hex certificate fingerprint, not a base64 SPKI pin",
            hint=(
                "a fingerprint hashes the whole certificate and changes at every renewal; pin the "
                f"public key instead (pinset pin CERT.pem); {_VALID_SHAPE}"
            ),
        )
    if "-" in body or "_" in body:
        raise PinFormatError(
            "the pin uses the URL-safe base64 alphabet ('-' or '_')",
            hint=f"use the standard alphabet ('+' and '/'); {_VALID_SHAPE}",
        )
    if not body:
        raise PinFormatError("the pin has nothing after 'sha256/'", hint=_VALID_SHAPE)
    stripped = body.rstrip("=")
    padding = len(body) - len(stripped)
    if not _B64_CHARS.issuperset(body) or "=" in stripped:
        bad = sorted({c for c in stripped if c not in _B64_CHARS})
        what = f"characters {''.join(bad)!r}" if bad else "'=' is only allowed at the end"
        raise PinFormatError(f"the pin is not valid base64 ({what})", hint=_VALID_SHAPE)
    if padding and (padding > 2 or len(body) % 4):
        raise PinFormatError(
            f"the pin has the wrong '=' padding ({padding} after {len(stripped)} characters)",
            hint=f"a SHA-256 pin is 43 base64 characters and one '='; {_VALID_SHAPE}",
        )
    padded = stripped + "=" * (-len(stripped) % 4)
    try:
        digest = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise PinFormatError(
            f"the pin is not valid base64 ({len(stripped)} characters)", hint=_VALID_SHAPE
        ) from None
    if len(digest) != _DIGEST_SIZE:
        raise PinFormatError(
            f"the pin decodes to {len(digest)} bytes; a SHA-256 digest is 32 bytes",
            hint=_VALID_SHAPE,
        )
    return digest


# Every key type the installed cryptography can serialise as SubjectPublicKeyInfo (DSA, DH
# and ML-DSA included where it has them), taken from its own unions: naming dsa.DSAPublicKey
# here would raise a CryptographyDeprecationWarning at import, in every user's program.
_PUBLIC_KEY_TYPES: tuple[type, ...] = typing.get_args(PublicKeyTypes)
_PRIVATE_KEY_TYPES: tuple[type, ...] = typing.get_args(PrivateKeyTypes)


def _is_public_key(obj: object) -> typing.TypeGuard[PublicKeyTypes]:
    return isinstance(obj, _PUBLIC_KEY_TYPES)


def _is_private_key(obj: object) -> typing.TypeGuard[PrivateKeyTypes]:
    return isinstance(obj, _PRIVATE_KEY_TYPES)


@dataclass(frozen=True, slots=True)
class PemBlock:
    """One ``-----BEGIN KIND-----`` … ``-----END KIND-----`` block of PEM text."""

    number: int  # 1-based, in the order of the text
    kind: str  # "CERTIFICATE", "PRIVATE KEY", …
    text: bytes  # the whole block, its BEGIN and END lines included


def pem_blocks(data: bytes) -> Iterator[PemBlock]:
    """The PEM blocks of ``data`` in order; text around and between them is skipped.

    The one PEM splitter: pins, chain files and the MITM client's CA bundles all
    read PEM through it. A block without its END line raises :class:`ChainError`
    (after the blocks before it were yielded); a BEGIN line that never closes its
    ``-----`` ends the text.
    """
    start = 0
    number = 0
    while True:
        begin = data.find(b"-----BEGIN ", start)
        if begin < 0:
            return
        head_end = data.find(b"-----", begin + 11)
        if head_end < 0:
            return
        kind = data[begin + 11 : head_end].decode("ascii", "replace").strip()
        number += 1
        footer = b"-----END " + kind.encode("ascii", "replace") + b"-----"
        end = data.find(footer, head_end)
        if end < 0:
            raise ChainError(f"PEM block #{number} ({kind}) has no END line")
        start = end + len(footer)
        yield PemBlock(number, kind, data[begin:start])


_CERT_BLOCKS = {"CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"}
_CSR_BLOCKS = {"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"}


def spki_der(obj: Any) -> bytes:
    """The DER SubjectPublicKeyInfo of a certificate, CSR, key, or the PEM/DER bytes of one.

    For certificates, CSRs and ``PUBLIC KEY`` PEM/DER the bytes are cut from the
    encoding as issued, so the pin matches what ``openssl x509 -pubkey | openssl
    pkey -pubin -outform der`` hashes even for explicit EC parameters or RSA-PSS
    keys. Key objects (and private keys) can only be re-encoded. PEM input with
    several blocks uses the first one. Unreadable input raises :class:`ChainError`.
    """
    if isinstance(obj, x509.Certificate):
        # The signed part as issued (what the signature covers), without re-encoding.
        return _cut(tbs_certificate_spki, obj.tbs_certificate_bytes)
    # Imported here: serialization loads the SSH and cipher modules, which reading a
    # certificate never needs (pinset pin cert.pem starts faster).
    from cryptography.hazmat.primitives import serialization

    if isinstance(obj, x509.CertificateSigningRequest):
        return _cut(csr_spki, obj.public_bytes(serialization.Encoding.DER))
    if _is_private_key(obj):
        obj = obj.public_key()
    if _is_public_key(obj):
        return obj.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    if isinstance(obj, str):
        obj = obj.encode("utf-8", "surrogateescape")
    if isinstance(obj, bytearray | memoryview):
        obj = bytes(obj)
    if isinstance(obj, bytes):
        try:
            return _spki_of_bytes(obj)
        except (ValueError, TypeError, DerError, UnsupportedAlgorithm) as exc:
            if isinstance(exc, ChainError):
                raise
            raise ChainError(f"cannot read the input: {exc}") from None
    raise ChainError(
        f"cannot compute a pin from {type(obj).__name__}",
        hint="pass an x509.Certificate, a CSR, a key object, or PEM/DER bytes of one",
    )


def spki_pin(obj: Any) -> Pin:
    """The SHA-256 SPKI pin of a certificate, CSR, public or private key, or their PEM/DER bytes."""
    return Pin.of_spki(spki_der(obj))


def _cut(fn: Any, der: bytes) -> bytes:
    try:
        result: bytes = fn(der)
    except DerError as exc:
        raise ChainError(f"malformed DER: {exc}") from None
    return result


def _pem_body(block: bytes, kind: str) -> bytes:
    lines = block.splitlines()[1:-1]
    if any(b":" in line for line in lines):
        raise ChainError(
            f"PEM block {kind!r} is encrypted (it has Proc-Type/DEK-Info headers)",
            hint="pin the certificate or the public key instead, or decrypt the key first",
        )
    try:
        return base64.b64decode(b"".join(line.strip() for line in lines), validate=True)
    except (binascii.Error, ValueError):
        raise ChainError(f"PEM block {kind!r} is not valid base64") from None


def _spki_of_bytes(data: bytes) -> bytes:
    first = next(pem_blocks(data), None)
    if first is None:
        return _spki_of_der(data)
    kind, block = first.kind, first.text
    if kind == "ENCRYPTED PRIVATE KEY":
        raise ChainError(
            "the private key is encrypted",
            hint="pin the certificate or the public key instead, or decrypt the key first",
        )
    if kind in _CERT_BLOCKS:
        der = _pem_body(block, kind)
        if kind != "TRUSTED CERTIFICATE":  # OpenSSL's trusted form appends auxiliary data
            x509.load_der_x509_certificate(der)
        return _cut(certificate_spki, der)
    if kind in _CSR_BLOCKS:
        der = _pem_body(block, kind)
        x509.load_der_x509_csr(der)
        return _cut(csr_spki, der)
    if kind == "PUBLIC KEY":
        return _cut(public_key_spki, _pem_body(block, kind))
    from cryptography.hazmat.primitives import serialization  # keys only (see spki_der)

    if kind == "RSA PUBLIC KEY":  # PKCS#1 carries no SPKI; the standard one is rsaEncryption
        return spki_der(serialization.load_pem_public_key(block))
    if kind.endswith("PRIVATE KEY"):
        if b"Proc-Type:" in block:
            raise ChainError(
                f"PEM block {kind!r} is encrypted",
                hint="pin the certificate or the public key instead, or decrypt the key first",
            )
        # Only the public half is used, so OpenSSL's slow RSA consistency check is skipped.
        return spki_der(
            serialization.load_pem_private_key(
                block, password=None, unsafe_skip_rsa_key_validation=True
            )
        )
    raise ChainError(
        f"PEM block {kind!r} is neither a certificate, a CSR nor a key",
        hint="pass a certificate, CSR or key in PEM or DER",
    )


def _spki_of_der(data: bytes) -> bytes:
    try:
        x509.load_der_x509_certificate(data)
    except ValueError:
        pass
    else:
        return _cut(certificate_spki, data)
    try:
        x509.load_der_x509_csr(data)
    except ValueError:
        pass
    else:
        return _cut(csr_spki, data)
    try:
        return public_key_spki(data)
    except DerError:
        pass
    from cryptography.hazmat.primitives import serialization  # keys only (see spki_der)

    try:
        return spki_der(
            serialization.load_der_private_key(
                data, password=None, unsafe_skip_rsa_key_validation=True
            )
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        pass
    raise ChainError(
        "not a certificate, CSR or key in PEM or DER",
        hint="pass a certificate, CSR or key; PKCS#12 and PKCS#7 bundles go through pinset.chain",
    )
