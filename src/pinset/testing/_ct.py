"""Test CT logs: a log key signs SCTs over a precertificate; the final certificate embeds them.

Written from RFC 6962 (sections 3.2 and 3.3) independently of :mod:`pinset.ct`: the
signed data, the SCT and the SCT list encodings are built byte by byte here, so a
test of ``require-ct`` compares pinset against the RFC, not against itself.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from pinset.testing._pki import CertificateAuthority, LeafCert

__all__ = ["CTLog", "issue_with_scts", "log_list"]

# (tbs, issuer_spki) -> (tbs, issuer_spki): what the logs sign instead.
Tamper = Callable[[bytes, bytes], tuple[bytes, bytes]]
# (index, sct) -> sct: the SCT the final certificate embeds instead.
ChangeSCT = Callable[[int, bytes], bytes]

UTC = dt.timezone.utc


@dataclass
class CTLog:
    """A CT log for tests: its key (ECDSA P-256, or RSA-2048), operator, state and interval.

    ``state`` is one of the v3 states (``None``: the list gives none), from
    ``state_since``. :meth:`entry` is its entry in a v3 list (:func:`log_list`).
    """

    description: str
    operator: str
    rsa_key: bool = False
    state: str | None = "usable"
    state_since: dt.datetime = dt.datetime(2020, 1, 1, tzinfo=UTC)
    interval: tuple[dt.datetime, dt.datetime] | None = None
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.key = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if self.rsa_key
            else ec.generate_private_key(ec.SECP256R1())
        )

    @property
    def spki(self) -> bytes:
        """The log's public key as DER SubjectPublicKeyInfo (the list's ``key``)."""
        return self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def log_id(self) -> bytes:
        """SHA-256 of :attr:`spki` (RFC 6962 3.2)."""
        return hashlib.sha256(self.spki).digest()

    def sign_sct(
        self, tbs: bytes, issuer_spki: bytes, timestamp: dt.datetime, extensions: bytes = b""
    ) -> bytes:
        """One SCT (RFC 6962 3.3 ``SignedCertificateTimestamp``) over a precertificate."""
        millis = int(
            (timestamp - dt.datetime(1970, 1, 1, tzinfo=UTC)) / dt.timedelta(milliseconds=1)
        )
        signed = (
            bytes([0, 0])  # v1, certificate_timestamp
            + millis.to_bytes(8, "big")
            + (1).to_bytes(2, "big")  # precert_entry
            + hashlib.sha256(issuer_spki).digest()
            + len(tbs).to_bytes(3, "big")
            + tbs
            + len(extensions).to_bytes(2, "big")
            + extensions
        )
        if isinstance(self.key, rsa.RSAPrivateKey):
            signature = self.key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
            algorithm = 1
        else:
            signature = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
            algorithm = 3
        return (
            bytes([0])
            + self.log_id
            + millis.to_bytes(8, "big")
            + len(extensions).to_bytes(2, "big")
            + extensions
            + bytes([4, algorithm])  # sha256, rsa | ecdsa
            + len(signature).to_bytes(2, "big")
            + signature
        )

    def entry(self) -> dict[str, Any]:
        """This log as an entry of a v3 log list."""
        entry: dict[str, Any] = {
            "description": self.description,
            "log_id": base64.b64encode(self.log_id).decode(),
            "key": base64.b64encode(self.spki).decode(),
            "url": f"https://{self.description.lower().replace(' ', '-')}.ct.test/",
            "mmd": 86400,
        }
        if self.state is not None:
            entry["state"] = {self.state: {"timestamp": _rfc3339(self.state_since)}}
        if self.interval is not None:
            entry["temporal_interval"] = {
                "start_inclusive": _rfc3339(self.interval[0]),
                "end_exclusive": _rfc3339(self.interval[1]),
            }
        return entry


def _rfc3339(when: dt.datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def log_list(logs: Sequence[CTLog], timestamp: dt.datetime | None) -> dict[str, Any]:
    """A v3 log list (Google's schema) of ``logs``, grouped by operator."""
    operators: dict[str, list[dict[str, Any]]] = {}
    for log in logs:
        operators.setdefault(log.operator, []).append(log.entry())
    data: dict[str, Any] = {
        "version": "1.0",
        "operators": [
            {"name": name, "email": [f"ct@{name.lower()}.test"], "logs": entries}
            for name, entries in operators.items()
        ],
    }
    if timestamp is not None:
        data["log_list_timestamp"] = _rfc3339(timestamp)
    return data


def _sct_list_extension(scts: Sequence[bytes]) -> x509.UnrecognizedExtension:
    body = b"".join(struct.pack(">H", len(s)) + s for s in scts)
    tls = struct.pack(">H", len(body)) + body
    # extnValue holds a DER OCTET STRING whose content is the TLS-encoded list (RFC 6962 3.3).
    length = len(tls)
    if length < 128:
        header = bytes([0x04, length])
    elif length < 256:
        header = bytes([0x04, 0x81, length])
    else:
        header = bytes([0x04, 0x82]) + length.to_bytes(2, "big")
    return x509.UnrecognizedExtension(
        ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS, header + tls
    )


def issue_with_scts(
    ca: CertificateAuthority,
    host: str,
    logs: Sequence[CTLog],
    *,
    issued: dt.datetime,
    lifetime: dt.timedelta = dt.timedelta(days=90),
    sct_time: dt.datetime | None = None,
    tamper: Tamper | None = None,
    change_sct: ChangeSCT | None = None,
) -> LeafCert:
    """A leaf for ``host`` issued by ``ca`` that embeds one SCT from each of ``logs``.

    ``tamper(tbs, scts, issuer_spki) -> (tbs, scts, issuer_spki)`` changes what the
    logs sign before they sign it; ``change_sct(index, sct) -> sct`` changes an SCT
    the log returned before the final certificate embeds it.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(issued)
        .not_valid_after(issued + lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
    )
    precert = builder.sign(ca.private_key, hashes.SHA256())
    issuer_spki = ca.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    tbs = precert.tbs_certificate_bytes
    when = sct_time if sct_time is not None else issued
    signed_tbs, signed_spki = tbs, issuer_spki
    if tamper is not None:
        signed_tbs, signed_spki = tamper(tbs, issuer_spki)
    scts = [log.sign_sct(signed_tbs, signed_spki, when) for log in logs]
    if change_sct is not None:
        scts = [change_sct(index, sct) for index, sct in enumerate(scts)]
    final = builder.add_extension(_sct_list_extension(scts), critical=False).sign(
        ca.private_key, hashes.SHA256()
    )
    if final.tbs_precertificate_bytes != tbs:  # cryptography removes exactly our extension
        raise AssertionError("the final certificate's precertificate TBS differs")
    return LeafCert(
        cert=final, private_key=key, chain=(final, *ca.chain[:-1]), full_chain=(final, *ca.chain)
    )
