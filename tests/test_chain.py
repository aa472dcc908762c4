"""pinset.chain: fetching served and verified chains, loading every file shape, ordering."""

from __future__ import annotations

import asyncio
import socket
import typing
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import NameOID

from pinset.chain import (
    FetchedChain,
    PasswordError,
    async_fetch_chain,
    cert_role,
    fetch_chain,
    key_type,
    load_chain,
    order_chain,
    verifying_context,
)
from pinset.errors import ChainError, NetworkError
from pinset.pins import spki_pin
from pinset.testing import CertificateAuthority, LeafCert, TestPKI, TLSServer

PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER


def make_csr(leaf: LeafCert) -> x509.CertificateSigningRequest:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "backup.example.com")])
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name)
        .sign(leaf.private_key, hashes.SHA256())
    )


# -- fetching ---------------------------------------------------------------------


def test_fetch_returns_served_and_verified_chain(
    silent_server: TLSServer, leaf: LeafCert, root_pem: str
) -> None:
    fetched = fetch_chain("127.0.0.1", silent_server.port, cadata=root_pem, timeout=5)
    assert fetched.served == leaf.chain
    assert fetched.verified == leaf.full_chain  # the root comes from the trust store
    assert fetched.verify_error is None
    assert fetched.tls_version in {"TLSv1.2", "TLSv1.3"}
    assert fetched.cipher
    assert (fetched.host, fetched.port, fetched.server_name) == (
        "127.0.0.1",
        silent_server.port,
        None,
    )


def test_fetch_one_handshake_when_validation_succeeds(leaf: LeafCert, root_pem: str) -> None:
    with TLSServer(leaf, mode="silent") as srv:
        fetch_chain("127.0.0.1", srv.port, cadata=root_pem, timeout=5)
        assert len(srv.wait_for_connections(1)) == 1


def test_fetch_untrusted_still_captures_served_chain(
    silent_server: TLSServer, leaf: LeafCert
) -> None:
    other = CertificateAuthority.create("unrelated root")
    fetched = fetch_chain(
        "127.0.0.1", silent_server.port, cadata=other.cert_pem.bytes().decode(), timeout=5
    )
    assert fetched.served == leaf.chain
    assert fetched.verified is None
    assert fetched.verify_error is not None
    assert "issuer" in fetched.verify_error


def test_fetch_hostname_mismatch_is_a_verify_error(silent_server: TLSServer, root_pem: str) -> None:
    fetched = fetch_chain(
        "127.0.0.1", silent_server.port, server_name="wrong.example", cadata=root_pem, timeout=5
    )
    assert fetched.verified is None
    assert fetched.verify_error is not None
    assert "wrong.example" in fetched.verify_error
    assert fetched.server_name == "wrong.example"


def test_fetch_with_a_prepared_context(
    silent_server: TLSServer, leaf: LeafCert, root_pem: str
) -> None:
    fetched = fetch_chain(
        "127.0.0.1", silent_server.port, context=verifying_context(cadata=root_pem), timeout=5
    )
    assert fetched.verified == leaf.full_chain


def test_fetch_without_verification(silent_server: TLSServer, leaf: LeafCert) -> None:
    fetched = fetch_chain("127.0.0.1", silent_server.port, verify=False, timeout=5)
    assert fetched.served == leaf.chain
    assert fetched.verified is None
    assert fetched.verify_error is None


def test_fetch_closed_port_is_a_network_error(closed_port: int) -> None:
    port = closed_port
    with pytest.raises(NetworkError) as info:
        fetch_chain("127.0.0.1", port, timeout=5)
    assert f"127.0.0.1:{port}" in info.value.diagnostics()
    assert "refused" in info.value.message
    assert info.value.hint


def test_fetch_silent_port_times_out() -> None:
    # A listening socket that never accepts: TCP connects, the TLS handshake never answers.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with pytest.raises(NetworkError) as info:
            fetch_chain("127.0.0.1", port, timeout=0.3)
    assert "no answer" in info.value.message


def test_fetch_plain_tcp_is_a_handshake_failure() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]

        import threading

        def answer() -> None:
            for _ in range(2):  # the verifying and the capturing handshake
                conn, _ = listener.accept()
                with conn:
                    conn.recv(1024)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        with pytest.raises(NetworkError) as info:
            fetch_chain("127.0.0.1", port, timeout=5)
        thread.join(5)
    assert "handshake" in info.value.message


def test_fetch_unresolvable_name() -> None:
    with pytest.raises(NetworkError) as info:
        fetch_chain("no-such-host.invalid", 443, timeout=5)
    assert "resolve" in info.value.message


def test_async_fetch_many_hosts(silent_server: TLSServer, leaf: LeafCert, root_pem: str) -> None:
    ctx = verifying_context(cadata=root_pem)

    async def scan() -> list[FetchedChain]:
        return await asyncio.gather(
            *(
                async_fetch_chain("127.0.0.1", silent_server.port, context=ctx, timeout=5)
                for _ in range(8)
            )
        )

    results = asyncio.run(scan())
    assert all(r.served == leaf.chain and r.verified == leaf.full_chain for r in results)


def test_async_fetch_verify_false_and_untrusted(silent_server: TLSServer, leaf: LeafCert) -> None:
    fast = asyncio.run(async_fetch_chain("127.0.0.1", silent_server.port, verify=False, timeout=5))
    assert fast.served == leaf.chain
    assert fast.verified is None
    assert fast.verify_error is None
    other = CertificateAuthority.create("unrelated root").cert_pem.bytes().decode()
    slow = asyncio.run(async_fetch_chain("127.0.0.1", silent_server.port, cadata=other, timeout=5))
    assert slow.served == leaf.chain
    assert slow.verified is None
    assert slow.verify_error


def test_async_fetch_closed_port(closed_port: int) -> None:
    port = closed_port
    with pytest.raises(NetworkError, match=f"127.0.0.1:{port}"):
        asyncio.run(async_fetch_chain("127.0.0.1", port, timeout=5))


def test_bad_cafile_is_a_chain_error(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ChainError, match=r"ca\.pem"):
        verifying_context(cafile=bad)


# -- loading ----------------------------------------------------------------------


def test_pem_bundle_with_certs_keys_and_csr(tmp_path: Path, leaf: LeafCert) -> None:
    csr = make_csr(leaf)
    path = tmp_path / "bundle.pem"
    path.write_bytes(
        b"# a comment before the blocks\n"
        + leaf.cert_chain_pem.bytes()
        + leaf.private_key_pem.bytes()
        + csr.public_bytes(PEM)
        + leaf.cert.public_key().public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    loaded = load_chain(path)
    assert loaded.certificates == leaf.chain
    assert len(loaded.keys) == 2
    assert {spki_pin(k) for k in loaded.keys} == {spki_pin(leaf.cert)}
    assert loaded.csrs == (csr,)
    assert loaded.source == str(path)


def test_der_certificate(tmp_path: Path, leaf: LeafCert) -> None:
    path = tmp_path / "leaf.der"
    path.write_bytes(leaf.cert.public_bytes(DER))
    assert load_chain(path).certificates == (leaf.cert,)


def test_der_csr_and_keys(leaf: LeafCert) -> None:
    csr = make_csr(leaf)
    assert load_chain(csr.public_bytes(DER)).csrs == (csr,)
    public = leaf.cert.public_key().public_bytes(
        DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert spki_pin(load_chain(public).keys[0]) == spki_pin(leaf.cert)
    private = leaf.private_key.private_bytes(
        DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert spki_pin(load_chain(private).keys[0]) == spki_pin(leaf.cert)


@pytest.mark.parametrize("encoding", [PEM, DER])
def test_pkcs7(tmp_path: Path, leaf: LeafCert, encoding: serialization.Encoding) -> None:
    path = tmp_path / "chain.p7b"
    path.write_bytes(pkcs7.serialize_certificates(list(leaf.full_chain), encoding))
    assert set(load_chain(path).certificates) == set(leaf.full_chain)


def _p12(leaf: LeafCert, password: bytes | None) -> bytes:
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return pkcs12.serialize_key_and_certificates(
        b"server", leaf.private_key, leaf.cert, list(leaf.chain[1:]), encryption
    )


def test_pkcs12_with_password(tmp_path: Path, leaf: LeafCert) -> None:
    path = tmp_path / "server.p12"
    path.write_bytes(_p12(leaf, b"s3cret"))
    loaded = load_chain(path, password="s3cret")
    assert loaded.certificates == leaf.chain
    assert spki_pin(loaded.keys[0]) == spki_pin(leaf.cert)


def test_pkcs12_missing_and_wrong_password(tmp_path: Path, leaf: LeafCert) -> None:
    path = tmp_path / "server.pfx"
    path.write_bytes(_p12(leaf, b"s3cret"))
    with pytest.raises(PasswordError) as missing:
        load_chain(path)
    assert missing.value.missing
    assert str(path) in missing.value.diagnostics()
    with pytest.raises(PasswordError) as wrong:
        load_chain(path, password=b"guess")
    assert not wrong.value.missing
    assert "wrong password" in wrong.value.message


def test_pkcs12_without_password(leaf: LeafCert) -> None:
    assert load_chain(_p12(leaf, None)).certificates == leaf.chain


def test_encrypted_pem_key(leaf: LeafCert) -> None:
    data = leaf.private_key.private_bytes(
        PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
    )
    with pytest.raises(PasswordError) as missing:
        load_chain(data, source="backup.key")
    assert missing.value.missing
    assert missing.value.source == "backup.key"
    with pytest.raises(PasswordError) as wrong:
        load_chain(data, password=b"nope")
    assert not wrong.value.missing
    assert spki_pin(load_chain(data, password=b"pw").keys[0]) == spki_pin(leaf.cert)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"hello, this is not a certificate\n", "unrecognised"),
        (b"", "empty"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "does not parse"),
        (b"-----BEGIN CERTIFICATE-----\nMIIB\n", "no END line"),
        (b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n", "no "),
        (b"\x30\x82\x01\x00" + bytes(300), "unrecognised"),
    ],
)
def test_garbage_names_the_file(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "input.crt"
    path.write_bytes(content)
    with pytest.raises(ChainError) as info:
        load_chain(path)
    assert words in info.value.message
    assert str(path) in info.value.diagnostics()
    assert "expected a certificate" in (info.value.hint or "")


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ChainError, match="cannot read"):
        load_chain(tmp_path / "absent.pem")
    with pytest.raises(ChainError, match="directory"):
        load_chain(tmp_path)


# -- ordering and roles -------------------------------------------------------------


def test_order_chain_leaf_first(leaf: LeafCert) -> None:
    shuffled = [leaf.full_chain[2], leaf.full_chain[0], leaf.full_chain[1], leaf.full_chain[0]]
    assert order_chain(shuffled) == leaf.full_chain


def test_order_chain_keeps_unlinked_members_last(pki: TestPKI, leaf: LeafCert) -> None:
    stranger = pki.rogue.cert
    ordered = order_chain([stranger, leaf.chain[1], leaf.cert])
    assert ordered[:2] == leaf.chain
    assert ordered[2] == stranger
    assert order_chain([]) == ()


def test_roles(leaf: LeafCert) -> None:
    chain = leaf.full_chain
    roles = [cert_role(cert, i, chain) for i, cert in enumerate(chain)]
    assert roles == ["leaf", "intermediate", "root"]
    # A lone root in a file is a root, wherever it sits.
    assert cert_role(chain[2], 0, chain[2:]) == "root"
    # Root-first file order does not confuse the roles.
    backwards = tuple(reversed(chain))
    assert [cert_role(c, i, backwards) for i, c in enumerate(backwards)] == [
        "root",
        "intermediate",
        "leaf",
    ]


def test_self_signed_server_cert_is_a_leaf(leaf: LeafCert) -> None:
    import datetime as dt

    now = dt.datetime.now(dt.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "self.example")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(leaf.private_key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(leaf.private_key, hashes.SHA256())
    )
    assert cert_role(cert, 0, (cert,)) == "leaf"


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("ec-p256", "EC P-256"),
        ("ec-p384", "EC P-384"),
        ("rsa-2048", "RSA 2048"),
        ("ed25519", "Ed25519"),
        ("ed448", "Ed448"),
    ],
)
def test_key_type(key_of, kind, text) -> None:  # type: ignore[no-untyped-def]
    key = key_of(kind)
    assert key_type(key) == text
    assert key_type(key.public_key()) == text


def test_key_type_names_every_key_without_a_deprecation_warning() -> None:
    # key_type once named dsa.DSAPublicKey, which warns on every call that reaches it
    # (X25519, X448, ML-DSA and DH keys did); warnings are errors in this suite.
    from cryptography.hazmat.primitives.asymmetric import types, x448, x25519

    from pinset.chain import key_type

    assert key_type(x25519.X25519PrivateKey.generate().public_key()) == "X25519"
    assert key_type(x448.X448PrivateKey.generate()) == "X448"
    names = {
        cls.__name__.removesuffix("PublicKey") for cls in typing.get_args(types.PublicKeyTypes)
    }
    if "MLDSA65" in names:
        from cryptography.hazmat.primitives.asymmetric import mldsa

        assert key_type(mldsa.MLDSA65PrivateKey.generate().public_key()) == "ML-DSA-65"
