"""SPKI pins of certificates, keys and CSRs, checked against the real openssl pipeline."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from pinset import ChainError, Pin, spki_pin
from pinset._der import DerError, certificate_spki, csr_spki, public_key_spki, tbs_certificate_spki
from pinset.pins import spki_der
from pinset.testing import KEY_TYPES, KeyType, PrivateKey, TestPKI

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl binary is not installed")

KeyOf = Callable[[KeyType], PrivateKey]


def _spki(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _csr(key: PrivateKey) -> x509.CertificateSigningRequest:
    algorithm = (
        None
        if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
        else (hashes.SHA256())
    )
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csr.example")]))
        .sign(key, algorithm)
    )


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_every_key_type_and_every_form(key_type: KeyType, key_of: KeyOf, pki: TestPKI) -> None:
    key = key_of(key_type)
    expected = Pin(hashlib.sha256(_spki(key)).digest())
    cert = pki.leaf("keys.example", private_key=key).cert
    csr = _csr(key)
    public = key.public_key()
    forms: list[object] = [
        key,
        public,
        cert,
        csr,
        cert.public_bytes(serialization.Encoding.PEM),
        cert.public_bytes(serialization.Encoding.DER),
        cert.public_bytes(serialization.Encoding.PEM).decode(),
        csr.public_bytes(serialization.Encoding.PEM),
        csr.public_bytes(serialization.Encoding.DER),
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        _spki(key),
        bytearray(_spki(key)),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    ]
    for form in forms:
        assert spki_pin(form) == expected, type(form)
    assert spki_der(cert) == _spki(key)


def test_traditional_and_pkcs1_encodings(key_of: KeyOf) -> None:
    key = key_of("rsa-2048")
    assert isinstance(key, rsa.RSAPrivateKey)
    expected = spki_pin(key)
    traditional = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    pkcs1_public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
    )
    assert b"RSA PRIVATE KEY" in traditional
    assert b"RSA PUBLIC KEY" in pkcs1_public
    assert spki_pin(traditional) == expected
    assert spki_pin(pkcs1_public) == expected
    ec_key = key_of("ec-p384")
    sec1 = ec_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert b"EC PRIVATE KEY" in sec1
    assert spki_pin(sec1) == spki_pin(ec_key)


def test_first_pem_block_is_used(pki: TestPKI) -> None:
    leaf = pki.leaf("first.example")
    bundle = b"junk before\n" + leaf.cert_chain_pem.bytes()
    assert spki_pin(bundle) == spki_pin(leaf.cert)
    assert spki_pin(bundle) != spki_pin(leaf.chain[1])


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "not a certificate, CSR or key"),
        (b"\x30\x03\x02\x01", "not a certificate, CSR or key"),
        (b"hello world", "not a certificate, CSR or key"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n", "no END line"),
        (b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", "not valid base64"),
        (b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n", "cannot read"),
        (b"-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n", "malformed DER"),
        (b"-----BEGIN DH PARAMETERS-----\nMAA=\n-----END DH PARAMETERS-----\n", "neither"),
        (
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "encrypted",
        ),
        (
            b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nMAA=\n"
            b"-----END RSA PRIVATE KEY-----\n",
            "encrypted",
        ),
    ],
)
def test_garbage_is_a_chain_error(data: bytes, why: str) -> None:
    with pytest.raises(ChainError, match=why):
        spki_pin(data)


def test_unsupported_object_is_a_chain_error() -> None:
    with pytest.raises(ChainError, match="cannot compute a pin from int"):
        spki_pin(42)


def test_spki_with_trailing_bytes_is_refused(key_of: KeyOf) -> None:
    spki = _spki(key_of("ec-p256"))
    assert public_key_spki(spki) == spki
    with pytest.raises(DerError):
        public_key_spki(spki + b"\x00")
    with pytest.raises(ChainError):
        spki_pin(spki + b"\x00\x00")


def test_der_cutter_on_truncations(pki: TestPKI) -> None:
    der = pki.leaf("cut.example").cert.public_bytes(serialization.Encoding.DER)
    expected = certificate_spki(der)
    assert hashlib.sha256(expected).digest() == spki_pin(der).digest
    # Every prefix that cuts into the tbsCertificate is refused, never mis-cut.
    spki_end = der.index(expected) + len(expected)
    for length in range(0, spki_end, 7):
        with pytest.raises(DerError):
            certificate_spki(der[:length])
    with pytest.raises(DerError):
        csr_spki(b"\x02\x01\x00")
    with pytest.raises(DerError, match="multi-byte"):
        certificate_spki(b"\x1f\x01\x00")
    with pytest.raises(DerError, match="indefinite"):
        certificate_spki(b"\x30\x80\x00\x00")


def test_tbs_cutter_agrees_with_the_certificate_cutter(pki: TestPKI) -> None:
    # A certificate object is pinned from its signed part (tbs_certificate_bytes), the
    # same bytes the whole-certificate cutter finds; truncations are refused there too.
    cert = pki.leaf("tbs.example").cert
    tbs = cert.tbs_certificate_bytes
    expected = certificate_spki(cert.public_bytes(serialization.Encoding.DER))
    assert tbs_certificate_spki(tbs) == expected
    spki_end = tbs.index(expected) + len(expected)
    for length in range(0, spki_end, 7):
        with pytest.raises(DerError):
            tbs_certificate_spki(tbs[:length])


# -- openssl -------------------------------------------------------------------------


def openssl_pubkey(cert_pem: Path) -> bytes:
    """``openssl x509 -pubkey -noout``: the certificate's key as PUBLIC KEY PEM."""
    assert OPENSSL is not None
    return subprocess.run(
        [OPENSSL, "x509", "-in", str(cert_pem), "-pubkey", "-noout"],
        check=True,
        capture_output=True,
    ).stdout


def openssl_pin(cert_pem: Path) -> str:
    """``openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | dgst | base64``."""
    assert OPENSSL is not None
    pubkey = openssl_pubkey(cert_pem)
    der = subprocess.run(
        [OPENSSL, "pkey", "-pubin", "-outform", "der"],
        input=pubkey,
        check=True,
        capture_output=True,
    ).stdout
    digest = subprocess.run(
        [OPENSSL, "dgst", "-sha256", "-binary"], input=der, check=True, capture_output=True
    ).stdout
    encoded = subprocess.run(["base64"], input=digest, check=True, capture_output=True).stdout
    return encoded.decode().strip()


@needs_openssl
@pytest.mark.parametrize(
    "key_type", ["rsa-2048", "ec-p256", "ec-p384", "ec-p521", "ed25519", "ed448"]
)
def test_openssl_pipeline_agrees(
    key_type: KeyType, key_of: KeyOf, pki: TestPKI, tmp_path: Path
) -> None:
    cert = pki.leaf("openssl.example", private_key=key_of(key_type)).cert
    path = tmp_path / "cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    assert str(spki_pin(cert)) == "sha256/" + openssl_pin(path)
    assert spki_pin(path.read_bytes()).b64 == openssl_pin(path)


def openssl_self_signed(tmp_path: Path, name: str, keygen: list[list[str]]) -> Path | None:
    assert OPENSSL is not None
    key, cert = tmp_path / f"{name}.key", tmp_path / f"{name}.pem"
    try:
        for argv in keygen:
            subprocess.run([OPENSSL, *argv, "-out", str(key)], check=True, capture_output=True)
        subprocess.run(
            [
                OPENSSL,
                "req",
                "-x509",
                "-new",
                "-key",
                str(key),
                "-subj",
                f"/CN={name}",
                "-days",
                "2",
                "-out",
                str(cert),
            ],
            check=True,
            capture_output=True,
        )
    except subprocess.CalledProcessError:
        return None
    return cert


@needs_openssl
@pytest.mark.parametrize(
    ("name", "keygen"),
    [
        ("rsa-pss", [["genpkey", "-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048"]]),
        (
            "ec-explicit",
            [["ecparam", "-name", "prime256v1", "-param_enc", "explicit", "-genkey"]],
        ),
    ],
)
def test_spki_is_cut_not_reencoded(name: str, keygen: list[list[str]], tmp_path: Path) -> None:
    """Keys whose re-encoding differs from the certificate's bytes still pin like openssl."""
    cert_path = openssl_self_signed(tmp_path, name, keygen)
    if cert_path is None:
        pytest.skip(f"this openssl cannot make a {name} certificate")
    expected = openssl_pin(cert_path)
    pem = cert_path.read_bytes()
    cert = x509.load_pem_x509_certificate(pem)
    assert spki_pin(cert).b64 == expected
    assert spki_pin(pem).b64 == expected
    assert spki_pin(cert.public_bytes(serialization.Encoding.DER)).b64 == expected
    # The PUBLIC KEY PEM openssl prints is hashed as is, too.
    assert spki_pin(openssl_pubkey(cert_path)).b64 == expected
    # Proof that cutting matters: the parsed key re-encodes differently (when it parses at all).
    try:
        reencoded = spki_pin(cert.public_key())
    except (ValueError, TypeError):
        return
    assert reencoded.b64 != expected


def test_pin_of_ec_named_curve_matches_hand_computed(key_of: KeyOf) -> None:
    key = key_of("ec-p256")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    spki = _spki(key)
    assert spki_pin(key).b64 == base64.b64encode(hashlib.sha256(spki).digest()).decode()
