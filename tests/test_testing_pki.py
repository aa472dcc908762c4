"""pinset.testing._pki: certificates OpenSSL accepts exactly when a real PKI would."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from pinset.testing import (
    KEY_TYPES,
    Blob,
    CertificateAuthority,
    KeyType,
    LeafCert,
    TestPKI,
    generate_key,
)

NOW = dt.datetime.now(dt.timezone.utc)
FAST_KEY_TYPES = [k for k in KEY_TYPES if k not in ("rsa-1024", "rsa-8192")]


def server_context(leaf: LeafCert) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # serve weak keys too; the client decides
    leaf.configure_cert(ctx)
    return ctx


def _advance(tls: ssl.SSLObject) -> bool:
    """One step of ``tls``'s handshake: true once it is done."""
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        return False
    return True


def handshake(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, hostname: str = "localhost"
) -> ssl.SSLObject:
    """Run a full TLS handshake in memory; client errors (verification) propagate."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=hostname)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    client_done = server_done = False
    for _ in range(10):
        client_done = client_done or _advance(client)
        s_in.write(c_out.read())
        server_done = server_done or _advance(server)
        c_in.write(s_out.read())
        if client_done and server_done:
            return client
    raise AssertionError("handshake did not finish")


E = TypeVar("E", bound=x509.ExtensionType)


def ext(cert: x509.Certificate, kind: type[E]) -> x509.Extension[E]:
    return cert.extensions.get_extension_for_class(kind)


@pytest.mark.parametrize("key_type", FAST_KEY_TYPES)
def test_every_key_type_builds_a_chain_python_verifies(key_type: KeyType) -> None:
    root = CertificateAuthority.create(key_type=key_type)
    leaf = root.create_child_ca(key_type=key_type).issue_cert("localhost", key_type=key_type)
    client = handshake(server_context(leaf), root.client_context())
    assert client.version() in ("TLSv1.2", "TLSv1.3")
    peer = client.getpeercert()
    assert peer is not None
    assert peer["subject"] == (
        (("organizationName", "pinset testing"),),
        (("commonName", "localhost"),),
    )
    if key_type == "ed25519":
        assert isinstance(leaf.private_key, ed25519.Ed25519PrivateKey)
    if key_type == "ed448":
        assert isinstance(leaf.private_key, ed448.Ed448PrivateKey)
    if key_type.startswith("ec-"):
        assert isinstance(leaf.private_key, ec.EllipticCurvePrivateKey)
        assert (
            leaf.private_key.curve.key_size == {"p256": 256, "p384": 384, "p521": 521}[key_type[3:]]
        )
    if key_type.startswith("rsa-"):
        assert isinstance(leaf.private_key, rsa.RSAPrivateKey)
        assert leaf.private_key.key_size == int(key_type[4:])


@pytest.mark.slow
def test_rsa_8192_leaf_verifies(pki: TestPKI) -> None:
    leaf = pki.leaf(key_type="rsa-8192")
    assert isinstance(leaf.private_key, rsa.RSAPrivateKey)
    assert leaf.private_key.key_size == 8192
    handshake(server_context(leaf), pki.client_context())


def test_rsa_1024_leaf_is_refused_at_openssl_default_security_level(pki: TestPKI) -> None:
    leaf = pki.leaf(key_type="rsa-1024")
    with pytest.raises(ssl.SSLCertVerificationError, match="key too weak"):
        handshake(server_context(leaf), pki.client_context())
    lenient = pki.client_context()
    lenient.set_ciphers("DEFAULT:@SECLEVEL=1")
    handshake(server_context(leaf), lenient)


def test_generate_key_rejects_unknown_type() -> None:
    with pytest.raises(ValueError, match="unknown key type 'dsa-1024'"):
        generate_key("dsa-1024")  # type: ignore[arg-type]


def test_chain_shape(pki: TestPKI) -> None:
    leaf = pki.leaf()
    root, inter = pki.root, pki.intermediate
    assert root.parent is None
    assert inter.parent is root
    assert root.chain == (root.cert,)
    assert inter.chain == (inter.cert, root.cert)
    assert leaf.chain == (leaf.cert, inter.cert)
    assert leaf.full_chain == (leaf.cert, inter.cert, root.cert)
    for child, issuer in zip(leaf.full_chain, leaf.full_chain[1:], strict=False):
        assert child.issuer == issuer.subject
        child.verify_directly_issued_by(issuer)
    root.cert.verify_directly_issued_by(root.cert)
    assert root.cert.subject != pki.rogue.cert.subject


def test_ca_extensions(pki: TestPKI) -> None:
    grand = pki.intermediate.create_child_ca("deep CA", path_length=0)
    for ca in (pki.root, pki.intermediate, grand):
        bc = ext(ca.cert, x509.BasicConstraints)
        assert bc.critical
        assert bc.value.ca is True
        ku = ext(ca.cert, x509.KeyUsage)
        assert ku.critical
        assert ku.value.key_cert_sign
        assert ku.value.crl_sign
        ski = ext(ca.cert, x509.SubjectKeyIdentifier).value
        assert ski == x509.SubjectKeyIdentifier.from_public_key(ca.private_key.public_key())
    assert ext(grand.cert, x509.BasicConstraints).value.path_length == 0
    assert ext(pki.root.cert, x509.BasicConstraints).value.path_length is None
    aki = ext(grand.cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ext(pki.intermediate.cert, x509.SubjectKeyIdentifier).value.digest


@pytest.mark.parametrize(
    ("key_type", "encipherment"), [("ec-p256", False), ("rsa-2048", True), ("ed25519", False)]
)
def test_leaf_extensions(pki: TestPKI, key_type: KeyType, encipherment: bool) -> None:
    leaf = pki.leaf("www.example.test", "127.0.0.1", "::1", key_type=key_type)
    bc = ext(leaf.cert, x509.BasicConstraints)
    assert bc.critical
    assert bc.value.ca is False
    ku = ext(leaf.cert, x509.KeyUsage)
    assert ku.critical
    assert ku.value.digital_signature
    assert ku.value.key_encipherment is encipherment
    assert not ku.value.key_cert_sign
    assert list(ext(leaf.cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    san = ext(leaf.cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["www.example.test"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    aki = ext(leaf.cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ext(pki.intermediate.cert, x509.SubjectKeyIdentifier).value.digest
    assert isinstance(leaf.cert.signature_hash_algorithm, hashes.SHA256)
    assert leaf.cert.serial_number != pki.leaf().cert.serial_number
    assert leaf.cert.serial_number.bit_length() > 64


def test_edwards_ca_signs_without_a_hash() -> None:
    ca = CertificateAuthority.create(key_type="ed448")
    assert ca.cert.signature_hash_algorithm is None
    assert ca.issue_cert("localhost").cert.signature_hash_algorithm is None


def test_default_validity(pki: TestPKI) -> None:
    leaf = pki.leaf()
    start, end = leaf.cert.not_valid_before_utc, leaf.cert.not_valid_after_utc
    assert NOW - dt.timedelta(hours=2) < start < NOW
    assert NOW + dt.timedelta(days=89) < end < NOW + dt.timedelta(days=91)


def test_expired_leaf_fails_verification(pki: TestPKI) -> None:
    leaf = pki.leaf(not_before=NOW - dt.timedelta(days=30), not_after=NOW - dt.timedelta(days=1))
    assert leaf.cert.not_valid_after_utc < NOW
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate has expired"):
        handshake(server_context(leaf), pki.client_context())


def test_not_yet_valid_leaf_fails_verification(pki: TestPKI) -> None:
    leaf = pki.leaf(not_before=NOW + dt.timedelta(days=1))
    assert leaf.cert.not_valid_after_utc > NOW + dt.timedelta(days=90)
    with pytest.raises(ssl.SSLCertVerificationError, match="not yet valid"):
        handshake(server_context(leaf), pki.client_context())


def test_inverted_validity_is_an_error(pki: TestPKI) -> None:
    with pytest.raises(ValueError, match="must be later than not_before"):
        pki.leaf(not_before=NOW, not_after=NOW - dt.timedelta(seconds=1))


def test_path_length_is_enforced_by_openssl() -> None:
    root = CertificateAuthority.create(path_length=0)
    leaf = root.create_child_ca().issue_cert("localhost")
    with pytest.raises(ssl.SSLCertVerificationError, match="path length"):
        handshake(server_context(leaf), root.client_context())


def test_rogue_leaf_is_rejected_by_root_and_accepted_by_rogue(pki: TestPKI) -> None:
    forged = pki.rogue.issue_cert("localhost", "127.0.0.1")
    assert forged.chain == (forged.cert,)
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        handshake(server_context(forged), pki.client_context())
    handshake(server_context(forged), pki.rogue.client_context())
    genuine = pki.leaf()
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(server_context(genuine), pki.rogue.client_context())


def test_configure_trust_adds_to_an_existing_context(pki: TestPKI) -> None:
    ctx = pki.client_context()
    pki.rogue.configure_trust(ctx)
    handshake(server_context(pki.leaf()), ctx)
    handshake(server_context(pki.rogue.issue_cert("localhost")), ctx)
    assert len(ctx.get_ca_certs()) == 2


def test_child_ca_trusts_its_root(pki: TestPKI) -> None:
    handshake(server_context(pki.leaf()), pki.intermediate.client_context())


def test_hostname_and_ip_are_checked(pki: TestPKI) -> None:
    leaf = pki.leaf("api.example.test", "127.0.0.1")
    handshake(server_context(leaf), pki.client_context(), hostname="api.example.test")
    handshake(server_context(leaf), pki.client_context(), hostname="127.0.0.1")
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        handshake(server_context(leaf), pki.client_context(), hostname="localhost")
    with pytest.raises(ssl.SSLCertVerificationError, match="IP address mismatch"):
        handshake(server_context(leaf), pki.client_context(), hostname="127.0.0.2")


def test_common_name_only_leaf_has_no_san(pki: TestPKI) -> None:
    leaf = pki.intermediate.issue_cert(common_name="localhost")
    with pytest.raises(x509.ExtensionNotFound):
        leaf.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    # CPython still falls back to the subject CN when there is no SAN, unless told not to.
    handshake(server_context(leaf), pki.client_context())
    strict = pki.client_context()
    strict.hostname_checks_common_name = False
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        handshake(server_context(leaf), strict)
    with pytest.raises(ValueError, match="at least one name"):
        pki.intermediate.issue_cert()


def test_unicode_name_becomes_an_a_label(pki: TestPKI) -> None:
    leaf = pki.leaf("bücher.example")
    san = ext(leaf.cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["xn--bcher-kva.example"]


def test_long_name_is_kept_out_of_the_common_name(pki: TestPKI) -> None:
    name = ("a" * 60) + ".example.test"
    leaf = pki.leaf(name)
    assert leaf.cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME) == []
    handshake(server_context(leaf), pki.client_context(), hostname=name)


def test_private_key_reuse_and_fresh_keys(pki: TestPKI) -> None:
    key = generate_key()
    first = pki.leaf(private_key=key)
    renewed = pki.leaf(private_key=key)
    other = pki.leaf()
    assert first.private_key is key
    assert first.cert != renewed.cert
    assert first.cert.public_key() == renewed.cert.public_key() == key.public_key()
    assert other.cert.public_key() != key.public_key()
    keys = {
        ca.cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        for ca in (pki.root, pki.intermediate, pki.rogue)
    }
    assert len(keys) == 3
    handshake(server_context(renewed), pki.client_context())


def test_pem_blobs_round_trip(pki: TestPKI, tmp_path: Path) -> None:
    leaf = pki.leaf()
    assert x509.load_pem_x509_certificates(leaf.cert_chain_pem.bytes()) == list(leaf.chain)
    assert [x509.load_pem_x509_certificate(b.bytes()) for b in leaf.cert_chain_pems] == list(
        leaf.chain
    )
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    assert key.public_key() == leaf.cert.public_key()
    assert leaf.private_key_pem.bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert x509.load_pem_x509_certificate(pki.root.cert_pem.bytes()) == pki.root.cert
    ca_key = serialization.load_pem_private_key(pki.root.private_key_pem.bytes(), password=None)
    assert ca_key.public_key() == pki.root.cert.public_key()


def test_blob_write_and_tempfile(tmp_path: Path) -> None:
    blob = Blob(b"one\n")
    path = tmp_path / "out.pem"
    blob.write_to_path(path)
    blob.write_to_path(str(path), append=True)
    assert path.read_bytes() == b"one\none\n"
    blob.write_to_path(path)
    assert path.read_bytes() == b"one\n"
    with blob.tempfile(suffix=".crt") as name:
        assert name.endswith(".crt")
        assert Path(name).read_bytes() == b"one\n"
    assert not os.path.exists(name)
    assert blob == Blob(b"one\n")
    assert repr(blob) == "Blob(4 bytes)"


def test_configure_cert_leaves_no_temp_files(
    pki: TestPKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    server_context(pki.leaf())
    assert list(tmp_path.iterdir()) == []


def test_test_pki_is_lazy_cached_and_follows_key_type(monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[CertificateAuthority] = []
    create = CertificateAuthority.create

    def counted(*args: Any, **kwargs: Any) -> CertificateAuthority:
        created.append(create(*args, **kwargs))
        return created[-1]

    monkeypatch.setattr(CertificateAuthority, "create", counted)
    pki = TestPKI(key_type="ed25519")
    assert created == []  # nothing generated before first use
    assert pki.root is pki.root
    assert created == [pki.root]
    assert pki.intermediate is pki.intermediate
    assert pki.rogue is pki.rogue
    assert isinstance(pki.intermediate.private_key, ed25519.Ed25519PrivateKey)
    leaf = pki.leaf()
    assert isinstance(leaf.private_key, ed25519.Ed25519PrivateKey)
    san = ext(leaf.cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert isinstance(pki.leaf(key_type="ec-p384").private_key, ec.EllipticCurvePrivateKey)


def test_importing_pinset_testing_does_not_import_pytest() -> None:
    code = (
        "import sys, pinset.testing; sys.exit('pytest' in sys.modules or '_pytest' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
