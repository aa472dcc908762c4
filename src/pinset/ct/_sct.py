"""Verify the SCTs embedded in a leaf certificate (RFC 6962, sections 3.2 and 3.3).

Each SCT of the leaf's precertificate SCT list extension is checked against the
log that signed it: the signed data is rebuilt from the leaf's TBS certificate
without that extension (``cryptography``'s ``tbs_precertificate_bytes``) and the
SHA-256 of the *issuer's* SubjectPublicKeyInfo, then the signature is verified
with the log's key (ECDSA P-256 or RSA PKCS#1 v1.5, both with SHA-256). Pure: the
time is a parameter, the log list a value.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.certificate_transparency import (
    LogEntryType,
    SignatureAlgorithm,
    SignedCertificateTimestamp,
    Version,
)

from pinset._der import certificate_spki
from pinset.ct._loglist import Log, LogList

__all__ = [
    "SCTCheck",
    "Signature",
    "embedded_scts",
    "signed_data",
    "verify_embedded",
    "verify_sct",
]

Signature = Literal["valid", "invalid", "unknown-log"]

_EPOCH = dt.datetime(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class SCTCheck:
    """One embedded SCT and what its check found.

    ``signature`` is ``valid``, ``invalid`` or ``unknown-log`` (the log list does
    not know ``log_id``). ``counts`` says whether the SCT counts toward the CT
    policy; when it does not, ``note`` says why (a rejected log, a retired log
    after its retirement, a log with no state ...).
    """

    log_id: bytes
    timestamp: dt.datetime
    signature: Signature
    log: Log | None = None
    counts: bool = False
    note: str | None = None


def embedded_scts(leaf: x509.Certificate) -> tuple[SignedCertificateTimestamp, ...]:
    """The SCTs of the leaf's precertificate SCT list extension (``()`` when it has none)."""
    try:
        ext = leaf.extensions.get_extension_for_class(
            x509.PrecertificateSignedCertificateTimestamps
        )
    except x509.ExtensionNotFound:
        return ()
    return tuple(ext.value)


def _millis(when: dt.datetime) -> int:
    # cryptography gives a naive UTC datetime with millisecond precision; exact integer maths.
    return (when.replace(tzinfo=None) - _EPOCH) // dt.timedelta(milliseconds=1)


def signed_data(
    sct: SignedCertificateTimestamp, tbs_precert: bytes, issuer_key_hash: bytes
) -> bytes:
    """The bytes the log signed for a precertificate SCT (RFC 6962 section 3.2).

    ``sct_version`` (1 byte), ``signature_type`` = certificate_timestamp (1 byte,
    0), ``timestamp`` (8 bytes, ms), ``entry_type`` = precert_entry (2 bytes, 1),
    ``issuer_key_hash`` (32 bytes), the TBS certificate as ``opaque<1..2^24-1>``,
    then the SCT's extensions as ``opaque<0..2^16-1>``.
    """
    extensions = sct.extension_bytes
    return b"".join(
        (
            struct.pack(">BBQH", sct.version.value, 0, _millis(sct.timestamp), 1),
            issuer_key_hash,
            len(tbs_precert).to_bytes(3, "big"),
            tbs_precert,
            struct.pack(">H", len(extensions)),
            extensions,
        )
    )


@functools.lru_cache(maxsize=512)
def _log_key(log: Log) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    # Loading a key costs as much as a third of a verification: once per log.
    return log.public_key()


def _signature_ok(log: Log, sct: SignedCertificateTimestamp, data: bytes) -> bool:
    if sct.version != Version.v1 or sct.entry_type != LogEntryType.PRE_CERTIFICATE:
        return False
    if not isinstance(sct.signature_hash_algorithm, hashes.SHA256):
        return False
    key = _log_key(log)
    try:
        if sct.signature_algorithm == SignatureAlgorithm.ECDSA and isinstance(
            key, ec.EllipticCurvePublicKey
        ):
            key.verify(sct.signature, data, ec.ECDSA(hashes.SHA256()))
            return True
        if sct.signature_algorithm == SignatureAlgorithm.RSA and isinstance(key, rsa.RSAPublicKey):
            key.verify(sct.signature, data, padding.PKCS1v15(), hashes.SHA256())
            return True
    except InvalidSignature:
        return False
    return False  # the SCT names another algorithm than the log's key has


def verify_sct(
    sct: SignedCertificateTimestamp,
    leaf: x509.Certificate,
    issuer_key_hash: bytes,
    logs: LogList,
    now: dt.datetime,
    tbs_precert: bytes | None = None,
) -> SCTCheck:
    """Check one SCT of ``leaf``: signature, the log's state and temporal interval, the time.

    ``issuer_key_hash`` is the SHA-256 of the issuer's SubjectPublicKeyInfo;
    ``tbs_precert`` the leaf's ``tbs_precertificate_bytes`` (computed when ``None``).
    """
    when = sct.timestamp.replace(tzinfo=dt.timezone.utc)
    log = logs.find(sct.log_id)
    if log is None:
        return SCTCheck(sct.log_id, when, "unknown-log", note="log not in the log list")
    tbs = leaf.tbs_precertificate_bytes if tbs_precert is None else tbs_precert
    data = signed_data(sct, tbs, issuer_key_hash)
    if not _signature_ok(log, sct, data):
        return SCTCheck(sct.log_id, when, "invalid", log, note="signature does not verify")
    note = _why_not_counted(log, when, leaf, now)
    return SCTCheck(sct.log_id, when, "valid", log, counts=note is None, note=note)


def _why_not_counted(
    log: Log, when: dt.datetime, leaf: x509.Certificate, now: dt.datetime
) -> str | None:
    """Why a validly signed SCT does not count toward the policy, or ``None`` when it does."""
    if when > now:
        return "timestamp is in the future"
    if log.state is None:
        return "log has no state in the list"
    if log.state in ("pending", "rejected"):
        return f"log is {log.state}"
    if log.state == "retired":
        assert log.state_since is not None  # parse_log_list refuses a retired state without it
        if when >= log.state_since:
            return f"issued after the log retired ({log.state_since:%Y-%m-%d})"
    if log.interval is not None:
        start, end = log.interval
        if not start <= leaf.not_valid_after_utc < end:
            return "certificate expires outside the log's temporal interval"
    return None


def verify_embedded(
    chain: Sequence[x509.Certificate], logs: LogList, now: dt.datetime
) -> tuple[SCTCheck, ...]:
    """Check every SCT embedded in ``chain[0]``; ``chain[1]`` is its issuer (verified chain)."""
    leaf, issuer = chain[0], chain[1]
    scts = embedded_scts(leaf)
    if not scts:
        return ()
    key_hash = hashlib.sha256(certificate_spki(issuer.public_bytes(Encoding.DER))).digest()
    tbs = leaf.tbs_precertificate_bytes
    return tuple(verify_sct(sct, leaf, key_hash, logs, now, tbs) for sct in scts)
