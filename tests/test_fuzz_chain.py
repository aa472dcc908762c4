"""Property tests: pinset.chain.load_chain refuses damaged files with a ChainError.

Random bytes, and truncated or bit-flipped PEM, DER, PKCS#7 and PKCS#12 files
of real test certificates, PEM with garbage between blocks, and wrong
passwords of several types: only :class:`~pinset.errors.ChainError` (and its
:class:`~pinset.chain.PasswordError`) may escape, always naming the source.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinset.chain import LoadedChain, PasswordError, load_chain
from pinset.errors import ChainError, PinsetError
from pinset.testing import TestPKI

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
SOURCE = "fuzzed.pem"
PASSWORD = b"correct horse"

_PKI = TestPKI(key_type="ec-p256")
_LEAF = _PKI.leaf()
_KEY = _LEAF.private_key
_PEM = serialization.Encoding.PEM
_DER = serialization.Encoding.DER
_PKCS8 = serialization.PrivateFormat.PKCS8


def _files() -> dict[str, bytes]:
    chain = list(_LEAF.full_chain)
    pem_chain = b"".join(c.public_bytes(_PEM) for c in chain)
    encrypted = serialization.BestAvailableEncryption(PASSWORD)
    return {
        "pem-chain": pem_chain,
        "der-cert": _LEAF.cert.public_bytes(_DER),
        "pem-key": _KEY.private_bytes(_PEM, _PKCS8, serialization.NoEncryption()),
        "pem-key-encrypted": _KEY.private_bytes(_PEM, _PKCS8, encrypted),
        "der-key": _KEY.private_bytes(_DER, _PKCS8, serialization.NoEncryption()),
        "der-key-encrypted": _KEY.private_bytes(_DER, _PKCS8, encrypted),
        "der-public-key": _KEY.public_key().public_bytes(
            _DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "pkcs7-pem": pkcs7.serialize_certificates(chain, _PEM),
        "pkcs7-der": pkcs7.serialize_certificates(chain, _DER),
        "pkcs12": pkcs12.serialize_key_and_certificates(
            b"leaf", _KEY, _LEAF.cert, chain[1:], encrypted
        ),
        "pkcs12-open": pkcs12.serialize_key_and_certificates(
            b"leaf", _KEY, _LEAF.cert, chain[1:], serialization.NoEncryption()
        ),
        "pem-mixed": pem_chain
        + _KEY.private_bytes(_PEM, _PKCS8, serialization.NoEncryption())
        + _csr_pem(),
    }


def _csr_pem() -> bytes:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "backup.example.com")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(_KEY, hashes.SHA256())
    return csr.public_bytes(_PEM)


FILES = _files()


def _password_for(name: str) -> bytes | None:
    return PASSWORD if name in ("pkcs12", "pem-key-encrypted", "der-key-encrypted") else None


def _load(data: bytes, password: Any = None) -> LoadedChain | None:
    try:
        return load_chain(data, password=password, source=SOURCE)
    except PinsetError as exc:
        error = exc
    assert isinstance(error, ChainError), repr(error)
    assert error.source == SOURCE
    assert error.message
    assert error.hint
    return None


def test_every_seed_file_loads() -> None:
    for name, data in FILES.items():
        loaded = load_chain(data, password=_password_for(name), source=SOURCE)
        assert loaded.certificates or loaded.keys or loaded.csrs, name


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes_raise_only_chain_error(data: bytes) -> None:
    _load(data)


@FUZZ
@given(st.sampled_from(sorted(FILES)), st.data())
def test_truncated_files_raise_only_chain_error(name: str, draw: st.DataObject) -> None:
    data = FILES[name]
    cut = draw.draw(st.integers(0, len(data) - 1))
    _load(data[:cut], _password_for(name))


@settings(FUZZ, max_examples=300)
@given(st.sampled_from(sorted(FILES)), st.data())
def test_bit_flipped_files_raise_only_chain_error(name: str, draw: st.DataObject) -> None:
    data = bytearray(FILES[name])
    for _ in range(draw.draw(st.integers(1, 4))):
        pos = draw.draw(st.integers(0, len(data) - 1))
        data[pos] ^= 1 << draw.draw(st.integers(0, 7))
    _load(bytes(data), _password_for(name))


_GARBAGE = st.one_of(
    st.binary(max_size=40),
    st.sampled_from(
        [
            b"-----BEGIN ",
            b"-----END CERTIFICATE-----",
            b"-----BEGIN CERTIFICATE-----\n",
            b"-----BEGIN \xff\xfe-----",
            b"-----BEGIN PKCS7-----\nAAAA\n-----END PKCS7-----",
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----",
            b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----",
            b"Bag Attributes\n    friendlyName: leaf\n",
            b"\x00" * 10,
        ]
    ),
)


@settings(FUZZ, max_examples=200)
@given(st.lists(_GARBAGE, min_size=1, max_size=3), st.data())
def test_pem_with_garbage_between_blocks(junk: list[bytes], draw: st.DataObject) -> None:
    blocks = FILES["pem-mixed"].split(b"-----\n-----BEGIN")
    blocks = [blocks[0] + b"-----\n"] + [
        b"-----BEGIN" + b + (b"-----\n" if i < len(blocks) - 2 else b"")
        for i, b in enumerate(blocks[1:])
    ]
    out = list(blocks)
    for piece in junk:
        out.insert(draw.draw(st.integers(0, len(out))), piece)
    loaded = _load(b"".join(out))
    if loaded is not None:
        assert loaded.certificates or loaded.keys or loaded.csrs


_PASSWORDS: list[Any] = [
    None,
    b"",
    "",
    "wrong",
    b"wrong",
    "correct horse\n",
    "ünïcödé",
    b"\xff\xfe",
    "\x00",
    "x" * 10_000,
    bytearray(b"wrong"),
    memoryview(b"wrong"),
]


@pytest.mark.parametrize(
    "name", ["pkcs12", "pem-key-encrypted", "der-key-encrypted", "pkcs12-open", "pem-key"]
)
@pytest.mark.parametrize(
    "password", _PASSWORDS, ids=lambda p: f"{type(p).__name__}{len(p) if p is not None else 0}"
)
def test_wrong_passwords_of_every_type(name: str, password: Any) -> None:
    data = FILES[name]
    try:
        loaded = load_chain(data, password=password, source=SOURCE)
    except PasswordError as exc:
        error: PasswordError | None = exc
    else:
        error = None
        # Unencrypted files ignore a password; encrypted ones never open with a wrong one.
        assert _password_for(name) is None
        assert loaded.keys
    if error is not None:
        assert error.source == SOURCE
        assert error.hint
        assert error.missing is (not password)  # an empty password is none at all
        assert _password_for(name) is not None  # only encrypted files refuse a password


@pytest.mark.parametrize("password", [1234, 3.5, ["pw"], object()], ids=lambda p: type(p).__name__)
def test_password_of_a_wrong_type_is_a_chain_error(password: Any) -> None:
    with pytest.raises(ChainError) as caught:
        load_chain(FILES["pkcs12"], password=password, source=SOURCE)
    assert caught.value.source == SOURCE
    assert "password" in caught.value.message


def test_directory_and_missing_file_are_chain_errors(tmp_path: Any) -> None:
    with pytest.raises(ChainError, match="directory"):
        load_chain(tmp_path)
    with pytest.raises(ChainError) as caught:
        load_chain(tmp_path / "nope.pem")
    assert caught.value.source == str(tmp_path / "nope.pem")


# -- regressions: each input shape that once escaped as a foreign exception --------


def test_encrypted_der_key_without_password_asks_for_one() -> None:
    # Was: the PasswordError was swallowed and "unrecognised content" reported.
    with pytest.raises(PasswordError) as caught:
        load_chain(FILES["der-key-encrypted"], source=SOURCE)
    assert caught.value.missing


def test_encrypted_der_key_with_wrong_password_says_wrong_password() -> None:
    # Was: "unrecognised content (neither PEM nor a known DER structure)".
    with pytest.raises(PasswordError, match="wrong password"):
        load_chain(FILES["der-key-encrypted"], password=b"wrong", source=SOURCE)


def test_encrypted_pem_key_with_empty_password_asks_for_one() -> None:
    # Was: ChainError "does not parse: Password was not given but private key is encrypted".
    with pytest.raises(PasswordError) as caught:
        load_chain(FILES["pem-key-encrypted"], password="", source=SOURCE)
    assert caught.value.missing


def test_pkcs12_password_with_nul_byte_is_a_wrong_password() -> None:
    # Was: pyo3_runtime.PanicException (a BaseException) from cryptography's Rust code.
    with pytest.raises(PasswordError, match="wrong password"):
        load_chain(FILES["pkcs12"], password="pass\x00word", source=SOURCE)


def test_pkcs12_password_not_utf8_is_a_wrong_password() -> None:
    # Was: TypeError "function takes exactly 5 arguments (0 given)".
    with pytest.raises(PasswordError, match="wrong password"):
        load_chain(FILES["pkcs12"], password=b"\xff\xfe", source=SOURCE)


def test_unencrypted_pkcs12_given_a_password_still_loads() -> None:
    # Was: PasswordError "wrong password" although the file needs none.
    loaded = load_chain(FILES["pkcs12-open"], password="anything", source=SOURCE)
    assert loaded.keys
    assert loaded.certificates[0] == _LEAF.cert


def test_der_public_key_with_unknown_algorithm_oid() -> None:
    # Was: cryptography.exceptions.UnsupportedAlgorithm "Unknown key type".
    data = FILES["der-public-key"]
    ec_oid = bytes.fromhex("2a8648ce3d0201")
    assert ec_oid in data
    with pytest.raises(ChainError, match="unsupported key algorithm"):
        load_chain(data.replace(ec_oid, bytes.fromhex("2a8648ce3d0209")), source=SOURCE)


def test_pem_private_key_with_unknown_algorithm_oid() -> None:
    # Was: UnsupportedAlgorithm escaping from the PEM reader.
    der = FILES["der-key"]
    ec_oid = bytes.fromhex("2a8648ce3d0201")
    broken = der.replace(ec_oid, bytes.fromhex("2a8648ce3d0209"), 1)
    body = base64.encodebytes(broken)
    data = b"-----BEGIN PRIVATE KEY-----\n" + body + b"-----END PRIVATE KEY-----\n"
    with pytest.raises(ChainError, match="does not parse"):
        load_chain(data, source=SOURCE)


@pytest.mark.parametrize("shape", ["der-cert", "pem-chain", "pkcs7-der"])
def test_certificate_with_invalid_x509_version(shape: str) -> None:
    # Was: cryptography.x509.InvalidVersion (not a ValueError) escaping.
    version = bytes.fromhex("a003020102")  # [0] EXPLICIT INTEGER 2 (v3)
    if shape == "pem-chain":
        der = _LEAF.cert.public_bytes(_DER).replace(version, bytes.fromhex("a003020112"), 1)
        data = b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der)
        data += b"-----END CERTIFICATE-----\n"
    else:
        assert version in FILES[shape]
        data = FILES[shape].replace(version, bytes.fromhex("a003020112"), 1)
    with pytest.raises(ChainError) as caught:
        load_chain(data, source=SOURCE)
    assert caught.value.source == SOURCE
