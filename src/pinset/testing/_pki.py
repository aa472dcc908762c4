"""A throw-away PKI for tests: roots, intermediates, leaves and a rogue CA.

The certificates are shaped like real ones (critical BasicConstraints and KeyUsage,
serverAuth, subject and authority key identifiers, random serials, SHA-256) so that
OpenSSL 3 verifies them through Python's :mod:`ssl` exactly as it would a public chain.
The verbs follow trustme: :meth:`CertificateAuthority.issue_cert`,
:meth:`CertificateAuthority.create_child_ca`, :meth:`CertificateAuthority.configure_trust`;
PEM comes out as a :class:`Blob` the caller keeps in memory or writes to disk.
"""

from __future__ import annotations

import builtins
import datetime as _dt
import ipaddress
import os
import secrets
import ssl
import tempfile as _tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Literal, TypeAlias, get_args

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "KEY_TYPES",
    "Blob",
    "CertificateAuthority",
    "KeyType",
    "LeafCert",
    "PrivateKey",
    "TestPKI",
    "configure_cert_chain",
    "generate_key",
]

KeyType = Literal[
    "ec-p256",
    "ec-p384",
    "ec-p521",
    "rsa-1024",
    "rsa-2048",
    "rsa-3072",
    "rsa-4096",
    "rsa-8192",
    "ed25519",
    "ed448",
]
KEY_TYPES: tuple[KeyType, ...] = get_args(KeyType)

PrivateKey: TypeAlias = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)

_CURVES: dict[str, ec.EllipticCurve] = {
    "ec-p256": ec.SECP256R1(),
    "ec-p384": ec.SECP384R1(),
    "ec-p521": ec.SECP521R1(),
}
_ORGANIZATION = "pinset testing"
_CA_LIFETIME = _dt.timedelta(days=3650)
_LEAF_LIFETIME = _dt.timedelta(days=90)
# Backdating absorbs clock skew between the test process and whatever verifies later.
_BACKDATE = _dt.timedelta(hours=1)


def generate_key(key_type: KeyType = "ec-p256") -> PrivateKey:
    """Return a fresh private key of *key_type* (RSA keys use e = 65537)."""
    if key_type in _CURVES:
        return ec.generate_private_key(_CURVES[key_type])
    if key_type.startswith("rsa-"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if key_type == "ed448":
        return ed448.Ed448PrivateKey.generate()
    raise ValueError(f"unknown key type {key_type!r}; expected one of {', '.join(KEY_TYPES)}")


@dataclass(frozen=True, slots=True)
class Blob:
    """Bytes (usually PEM) that the caller may keep in memory or write to a file."""

    data: builtins.bytes

    def bytes(self) -> builtins.bytes:
        """Return the content."""
        return self.data

    def write_to_path(self, path: str | os.PathLike[str], append: bool = False) -> None:
        """Write the content to *path*, replacing the file unless *append* is true."""
        with open(path, "ab" if append else "wb") as f:
            f.write(self.data)

    @contextmanager
    def tempfile(self, suffix: str = ".pem", dir: str | None = None) -> Iterator[str]:
        """Write the content to a temporary file, yield its path, delete it afterwards."""
        fd, path = _tempfile.mkstemp(suffix=suffix, dir=dir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(self.data)
            yield path
        finally:
            with suppress(FileNotFoundError):
                os.unlink(path)

    def __repr__(self) -> str:
        return f"Blob({len(self.data)} bytes)"


def certificate_pem(cert: x509.Certificate) -> builtins.bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: PrivateKey) -> Blob:
    return Blob(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def configure_cert_chain(
    ctx: ssl.SSLContext, certificates: Sequence[x509.Certificate], private_key: PrivateKey
) -> None:
    """Load *certificates* (served in this order, leaf first) and *private_key* into *ctx*.

    The certificates need not form a valid chain: a test may serve a forged leaf followed
    by the genuine pinned certificate. The temporary PEM file is deleted right after loading.
    """
    if not certificates:
        raise ValueError("a certificate chain needs at least one certificate")
    pem = b"".join(certificate_pem(c) for c in certificates) + _key_pem(private_key).data
    with Blob(pem).tempfile() as path:
        ctx.load_cert_chain(path)


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _name(common_name: str | None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION)]
    if common_name is not None:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _san_entry(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        pass
    return x509.DNSName(name if name.isascii() else name.encode("idna").decode("ascii"))


def _default_cn(names: Sequence[str]) -> str | None:
    # X.509 caps a common name at 64 characters; a longer DNS name lives in the SAN only.
    return names[0] if names and len(names[0]) <= 64 else None


def _signature_hash(key: PrivateKey) -> hashes.SHA256 | None:
    # Ed25519 and Ed448 sign the message itself; passing a hash is an error.
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return None
    return hashes.SHA256()


def _key_usage(*, ca: bool, key_encipherment: bool) -> x509.KeyUsage:
    # A leaf signs handshakes, a CA certificates and CRLs; only an RSA leaf also
    # enciphers (the TLS 1.2 RSA key exchange).
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _sign(
    builder: x509.CertificateBuilder,
    *,
    subject_key: PrivateKey,
    issuer_cert: x509.Certificate | None,
    issuer_key: PrivateKey,
) -> x509.Certificate:
    ski = x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key())
    if issuer_cert is None:
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    else:
        issuer_ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski.value)
    builder = (
        builder.public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(ski, critical=False)
        .add_extension(aki, critical=False)
    )
    return builder.sign(issuer_key, _signature_hash(issuer_key))


def _validity(
    not_before: _dt.datetime | None, not_after: _dt.datetime | None, lifetime: _dt.timedelta
) -> tuple[_dt.datetime, _dt.datetime]:
    now = _now()
    start = not_before if not_before is not None else now - _BACKDATE
    end = not_after if not_after is not None else max(now, start) + lifetime
    if end <= start:
        raise ValueError(f"not_after ({end}) must be later than not_before ({start})")
    return start, end


class CertificateAuthority:
    """A CA that issues leaves and child CAs. Create a root with :meth:`create`."""

    __slots__ = ("_chain", "cert", "parent", "private_key")

    cert: x509.Certificate
    private_key: PrivateKey
    parent: CertificateAuthority | None

    def __init__(
        self,
        cert: x509.Certificate,
        private_key: PrivateKey,
        parent: CertificateAuthority | None = None,
    ) -> None:
        self.cert = cert
        self.private_key = private_key
        self.parent = parent
        self._chain: tuple[x509.Certificate, ...] = (cert, *(parent.chain if parent else ()))

    @classmethod
    def create(
        cls,
        name: str = "pinset test root CA",
        *,
        key_type: KeyType = "ec-p256",
        not_before: _dt.datetime | None = None,
        not_after: _dt.datetime | None = None,
        path_length: int | None = None,
    ) -> CertificateAuthority:
        """Create a self-signed root CA named *name* (the subject's common name)."""
        key = generate_key(key_type)
        cert = _ca_cert(name, key, None, None, not_before, not_after, path_length)
        return cls(cert, key)

    def create_child_ca(
        self,
        name: str = "pinset test intermediate CA",
        *,
        key_type: KeyType = "ec-p256",
        not_before: _dt.datetime | None = None,
        not_after: _dt.datetime | None = None,
        path_length: int | None = None,
    ) -> CertificateAuthority:
        """Create an intermediate CA signed by this one."""
        key = generate_key(key_type)
        cert = _ca_cert(name, key, self.cert, self.private_key, not_before, not_after, path_length)
        return CertificateAuthority(cert, key, parent=self)

    def issue_cert(
        self,
        *names: str,
        key_type: KeyType = "ec-p256",
        common_name: str | None = None,
        not_before: _dt.datetime | None = None,
        not_after: _dt.datetime | None = None,
        private_key: PrivateKey | None = None,
    ) -> LeafCert:
        """Issue a TLS server certificate for *names* (DNS names and IP literals).

        The names become the subjectAltName; the common name defaults to the first one.
        Validity defaults to one hour ago until 90 days from now. *private_key* reuses an
        existing key (a renewal with the same key, or a pre-made backup key) instead of
        generating one of *key_type*.
        """
        if not names and common_name is None:
            raise ValueError("issue_cert needs at least one name or a common_name")
        key = private_key if private_key is not None else generate_key(key_type)
        start, end = _validity(not_before, not_after, _LEAF_LIFETIME)
        is_rsa = isinstance(key, rsa.RSAPrivateKey)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name if common_name is not None else _default_cn(names)))
            .issuer_name(self.cert.subject)
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False, key_encipherment=is_rsa), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        )
        if names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_san_entry(n) for n in names]), critical=False
            )
        cert = _sign(builder, subject_key=key, issuer_cert=self.cert, issuer_key=self.private_key)
        return LeafCert(
            cert=cert,
            private_key=key,
            chain=(cert, *self._chain[:-1]),
            full_chain=(cert, *self._chain),
        )

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """This CA's certificate, then its issuers, up to and including the root."""
        return self._chain

    @property
    def root(self) -> x509.Certificate:
        """The self-signed root at the top of this CA's chain."""
        return self._chain[-1]

    @property
    def cert_pem(self) -> Blob:
        """This CA's certificate as PEM."""
        return Blob(certificate_pem(self.cert))

    @property
    def private_key_pem(self) -> Blob:
        """This CA's private key as unencrypted PKCS#8 PEM."""
        return _key_pem(self.private_key)

    def configure_trust(self, ctx: ssl.SSLContext) -> None:
        """Make *ctx* trust this CA's root (in addition to what it already trusts)."""
        ctx.load_verify_locations(cadata=certificate_pem(self.root).decode("ascii"))

    def client_context(self) -> ssl.SSLContext:
        """A ``PROTOCOL_TLS_CLIENT`` context (hostname checks on) trusting only this root."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.configure_trust(ctx)
        return ctx

    def __repr__(self) -> str:
        return f"<CertificateAuthority {self.cert.subject.rfc4514_string()!r}>"


def _ca_cert(
    name: str,
    key: PrivateKey,
    issuer_cert: x509.Certificate | None,
    issuer_key: PrivateKey | None,
    not_before: _dt.datetime | None,
    not_after: _dt.datetime | None,
    path_length: int | None,
) -> x509.Certificate:
    # A random OU keeps two CAs created with the same name from sharing a subject, which
    # would let OpenSSL pick the wrong issuer while building a path.
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, secrets.token_hex(6)),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    start, end = _validity(not_before, not_after, _CA_LIFETIME)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert is not None else subject)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_key_usage(ca=True, key_encipherment=False), critical=True)
    )
    return _sign(
        builder,
        subject_key=key,
        issuer_cert=issuer_cert,
        issuer_key=issuer_key if issuer_key is not None else key,
    )


@dataclass(frozen=True, slots=True)
class LeafCert:
    """A server certificate with its key and issuers.

    ``chain`` is what a server normally sends (leaf, intermediates, no root);
    ``full_chain`` goes on to the root.
    """

    cert: x509.Certificate
    private_key: PrivateKey
    chain: tuple[x509.Certificate, ...]
    full_chain: tuple[x509.Certificate, ...]

    @property
    def cert_chain_pems(self) -> list[Blob]:
        """One PEM blob per member of ``chain``, leaf first."""
        return [Blob(certificate_pem(c)) for c in self.chain]

    @property
    def cert_chain_pem(self) -> Blob:
        """``chain`` as one concatenated PEM blob, leaf first."""
        return Blob(b"".join(certificate_pem(c) for c in self.chain))

    @property
    def private_key_pem(self) -> Blob:
        """The private key as unencrypted PKCS#8 PEM."""
        return _key_pem(self.private_key)

    def configure_cert(self, ctx: ssl.SSLContext) -> None:
        """Make *ctx* (a server context) present this certificate and ``chain``."""
        configure_cert_chain(ctx, self.chain, self.private_key)

    def __repr__(self) -> str:
        return f"<LeafCert {self.cert.subject.rfc4514_string()!r}, {len(self.chain)} in chain>"


class TestPKI:
    """The usual test shape: root → intermediate → leaves, plus an unrelated rogue root.

    Each CA is created on first use and then reused (key generation is the slow part).
    """

    __test__ = False  # a class named Test* is not a pytest test class

    def __init__(self, *, key_type: KeyType = "ec-p256") -> None:
        self.key_type: KeyType = key_type
        self._lock = threading.Lock()
        self._root: CertificateAuthority | None = None
        self._intermediate: CertificateAuthority | None = None
        self._rogue: CertificateAuthority | None = None

    @property
    def root(self) -> CertificateAuthority:
        """The trusted root CA."""
        with self._lock:
            if self._root is None:
                self._root = CertificateAuthority.create(key_type=self.key_type)
            return self._root

    @property
    def intermediate(self) -> CertificateAuthority:
        """An intermediate CA issued by :attr:`root`; it issues :meth:`leaf` certificates."""
        root = self.root
        with self._lock:
            if self._intermediate is None:
                self._intermediate = root.create_child_ca(key_type=self.key_type)
            return self._intermediate

    @property
    def rogue(self) -> CertificateAuthority:
        """An unrelated root, like an interception CA: it issues for any name."""
        with self._lock:
            if self._rogue is None:
                self._rogue = CertificateAuthority.create(
                    "pinset rogue interception CA", key_type=self.key_type
                )
            return self._rogue

    def leaf(
        self,
        *names: str,
        key_type: KeyType | None = None,
        common_name: str | None = None,
        not_before: _dt.datetime | None = None,
        not_after: _dt.datetime | None = None,
        private_key: PrivateKey | None = None,
    ) -> LeafCert:
        """Issue a new leaf from :attr:`intermediate` (default names: localhost, 127.0.0.1)."""
        return self.intermediate.issue_cert(
            *(names or ("localhost", "127.0.0.1")),
            key_type=key_type if key_type is not None else self.key_type,
            common_name=common_name,
            not_before=not_before,
            not_after=not_after,
            private_key=private_key,
        )

    def client_context(self) -> ssl.SSLContext:
        """A ``PROTOCOL_TLS_CLIENT`` context trusting only :attr:`root`."""
        return self.root.client_context()

    def __repr__(self) -> str:
        return f"<TestPKI key_type={self.key_type!r}>"
