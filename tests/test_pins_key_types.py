"""spki_pin accepts every key type cryptography can write as SubjectPublicKeyInfo.

The expected SPKI is cryptography's own ``public_bytes(DER, SubjectPublicKeyInfo)``
(or OpenSSL's ``pkey -pubout`` for DH), never pinset's output.
"""

from __future__ import annotations

import hashlib
import importlib
import shutil
import subprocess
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x448, x25519
from cryptography.utils import CryptographyDeprecationWarning

from pinset import Pin, spki_pin

DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo


def _optional_module(name: str) -> Any:
    try:
        return importlib.import_module(f"cryptography.hazmat.primitives.asymmetric.{name}")
    except ImportError:
        pytest.skip(f"this cryptography has no {name}")


def _dsa() -> Any:
    # DSA is deprecated in cryptography 51, yet certificates with DSA keys still exist and
    # pinset must pin them: the test may name the deprecated API, pinset itself may not.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        dsa = _optional_module("dsa")
        return dsa.generate_private_key(key_size=1024)


def _dh() -> Any:
    # Finite-field DH parameter generation is deprecated and slow: OpenSSL makes the key
    # from the fixed RFC 7919 group instead.
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    pem = subprocess.run(
        [openssl, "genpkey", "-algorithm", "DH", "-pkeyopt", "group:ffdhe2048"],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    return serialization.load_pem_private_key(pem, password=None)


def _generate(module: str, cls: str) -> Callable[[], Any]:
    def make() -> Any:
        key_class = getattr(_optional_module(module), cls, None)
        if key_class is None:
            pytest.skip(f"this cryptography has no {module}.{cls}")
        try:
            return key_class.generate()
        except UnsupportedAlgorithm:
            pytest.skip(f"this cryptography's OpenSSL cannot make {cls}")

    return make


KEYS: dict[str, Callable[[], Any]] = {
    "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ec-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
    "ed448": ed448.Ed448PrivateKey.generate,
    "x25519": x25519.X25519PrivateKey.generate,
    "x448": x448.X448PrivateKey.generate,
    "dsa": _dsa,
    "dh": _dh,
    "ml-dsa-44": _generate("mldsa", "MLDSA44PrivateKey"),
    "ml-dsa-65": _generate("mldsa", "MLDSA65PrivateKey"),
    "ml-dsa-87": _generate("mldsa", "MLDSA87PrivateKey"),
    "ml-kem-768": _generate("mlkem", "MLKEM768PrivateKey"),
}


# cryptography itself warns when it loads a DSA or finite-field DH private key (the key is
# deprecated, not pinset's code), so those two cases accept exactly that warning.
DEPRECATED_KEYS = {"dsa", "dh"}


@pytest.mark.parametrize("kind", list(KEYS))
def test_every_spki_key_type_is_pinned(kind: str) -> None:
    with warnings.catch_warnings():
        if kind in DEPRECATED_KEYS:
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        _check_pins_agree(KEYS[kind]())


def _check_pins_agree(private: Any) -> None:
    public = private.public_key()
    expected = Pin(hashlib.sha256(public.public_bytes(DER, SPKI)).digest())
    private_pem = private.private_bytes(
        PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert spki_pin(public) == expected
    assert spki_pin(private) == expected
    assert spki_pin(public.public_bytes(PEM, SPKI)) == expected
    assert spki_pin(public.public_bytes(DER, SPKI)) == expected
    assert spki_pin(private_pem) == expected


def test_dh_pin_matches_openssl() -> None:
    # An independent witness for a key type pinset never handled before: OpenSSL's SPKI.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        private = _dh()
        pin = spki_pin(private)
    pem = private.private_bytes(
        PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    spki = subprocess.run(
        ["openssl", "pkey", "-pubout", "-outform", "DER"],
        input=pem,
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    assert pin == Pin(hashlib.sha256(spki).digest())
