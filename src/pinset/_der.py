"""Just enough DER to cut the SubjectPublicKeyInfo out of a certificate or CSR.

Pins hash the SPKI exactly as the certificate carries it. Re-encoding a parsed key
can differ from the original bytes (explicit EC parameters, RSA-PSS parameters,
key types the parser does not know), so the bytes are sliced out of the DER instead.
"""

from __future__ import annotations

__all__ = ["DerError", "certificate_spki", "csr_spki", "public_key_spki"]


class DerError(ValueError):
    """The bytes are not the DER structure that was expected."""


def _header(data: bytes, offset: int) -> tuple[int, int, int]:
    """Return (tag, header length, content length) of the element at ``offset``."""
    if offset + 2 > len(data):
        raise DerError("truncated DER element")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DerError("multi-byte DER tags are not used in certificates")
    first = data[offset + 1]
    if first < 0x80:
        return tag, 2, first
    count = first & 0x7F
    if count == 0 or count > 4:
        raise DerError("indefinite or oversized DER length")
    end = offset + 2 + count
    if end > len(data):
        raise DerError("truncated DER length")
    return tag, 2 + count, int.from_bytes(data[offset + 2 : end], "big")


def _element(data: bytes, offset: int, limit: int) -> tuple[int, int, int]:
    """Return (tag, start of content, end of element) and check it fits in ``limit``."""
    tag, head, length = _header(data, offset)
    end = offset + head + length
    if end > limit:
        raise DerError("DER element runs past its container")
    return tag, offset + head, end


_SEQUENCE = 0x30


def _nth_child(data: bytes, skip: int, *, optional_context_zero: bool) -> bytes:
    tag, start, end = _element(data, 0, len(data))
    if tag != _SEQUENCE:
        raise DerError("not a DER SEQUENCE")
    return _nth_field(data, start, end, skip, optional_context_zero=optional_context_zero)


def _nth_field(
    data: bytes, offset: int, limit: int, skip: int, *, optional_context_zero: bool
) -> bytes:
    """The SubjectPublicKeyInfo after ``skip`` fields of the info SEQUENCE at ``offset``."""
    tag, inner, inner_end = _element(data, offset, limit)  # tbsCertificate / ...RequestInfo
    if tag != _SEQUENCE:
        raise DerError("first member is not a SEQUENCE")
    offset = inner
    tag, _, after = _element(data, offset, inner_end)
    if optional_context_zero and tag == 0xA0:  # [0] EXPLICIT version
        offset = after
    for _ in range(skip):
        _, _, offset = _element(data, offset, inner_end)
    tag, _, end_spki = _element(data, offset, inner_end)
    if tag != _SEQUENCE:
        raise DerError("SubjectPublicKeyInfo is not a SEQUENCE")
    return data[offset:end_spki]


def certificate_spki(der: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo of a DER X.509 certificate."""
    # tbsCertificate: [0] version, serialNumber, signature, issuer, validity, subject, SPKI
    return _nth_child(der, 5, optional_context_zero=True)


def tbs_certificate_spki(tbs: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo of a DER TBSCertificate (a certificate's signed part)."""
    return _nth_field(tbs, 0, len(tbs), 5, optional_context_zero=True)


def csr_spki(der: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo of a DER PKCS#10 certification request."""
    # CertificationRequestInfo: version, subject, subjectPKInfo
    return _nth_child(der, 2, optional_context_zero=False)


_BIT_STRING = 0x03


def public_key_spki(der: bytes) -> bytes:
    """``der`` itself when it is exactly one SubjectPublicKeyInfo (a PEM ``PUBLIC KEY`` body).

    Checks the shape (a SEQUENCE of an AlgorithmIdentifier SEQUENCE and a BIT
    STRING, nothing after it) so that trailing bytes never end up in a pin.
    """
    tag, start, end = _element(der, 0, len(der))
    if tag != _SEQUENCE or end != len(der):
        raise DerError("not exactly one DER SEQUENCE")
    tag, _, after_algorithm = _element(der, start, end)
    if tag != _SEQUENCE:
        raise DerError("SubjectPublicKeyInfo has no AlgorithmIdentifier")
    tag, _, after_key = _element(der, after_algorithm, end)
    if tag != _BIT_STRING or after_key != end:
        raise DerError("SubjectPublicKeyInfo does not end with its public key BIT STRING")
    return der
