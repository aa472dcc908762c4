"""Shared fixtures: one test PKI and a cache of private keys for the whole session.

Key generation is the slow part of most tests, so each key type is generated at
most once per session; RSA-8192 (seconds to generate) is a fixed key from _certs.
Every connection and name lookup beyond loopback is refused (see _loopback_only).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

import _loopback_only
from _certs import rsa_8192
from pinset.testing import KeyType, LeafCert, PrivateKey, TestPKI, generate_key

_loopback_only.install()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name every destination beyond loopback that a test tried, so none goes unnoticed."""
    if _loopback_only.BLOCKED:
        names = sorted(set(_loopback_only.BLOCKED))
        terminalreporter.write_line(
            f"pinset: refused {len(_loopback_only.BLOCKED)} attempts to leave loopback: "
            + ", ".join(names[:20])
        )


@pytest.fixture(scope="session")
def pki() -> TestPKI:
    """Root → intermediate → leaves, plus a rogue root (EC P-256)."""
    return TestPKI()


@pytest.fixture(scope="module")
def leaf(pki: TestPKI) -> LeafCert:
    """A leaf for ``localhost`` and ``127.0.0.1`` issued by the intermediate."""
    return pki.leaf("localhost", "127.0.0.1")


@pytest.fixture(scope="module")
def root_pem(pki: TestPKI) -> str:
    """The test root in PEM, for ``ssl_context(cadata=...)``."""
    return pki.root.cert_pem.bytes().decode("ascii")


@pytest.fixture(scope="session")
def key_of() -> Callable[[KeyType], PrivateKey]:
    """``key_of("rsa-2048")``: one private key per type, generated on first use."""
    cache: dict[KeyType, PrivateKey] = {}

    def get(key_type: KeyType) -> PrivateKey:
        if key_type not in cache:
            cache[key_type] = rsa_8192() if key_type == "rsa-8192" else generate_key(key_type)
        return cache[key_type]

    return get
