"""The pytest plugin: fixtures for attacking your own client. Opt-in, never auto-loaded.

Enable it in the top-level ``conftest.py`` of a suite (``pytest_plugins =
["pinset.testing.plugin"]``) or for one run (``pytest -p pinset.testing.plugin``).
Installing pinset loads nothing into anyone's pytest run, and every fixture name starts
with ``pinset_``, so none can collide with a suite's own ``pki`` or ``tls_server``.

Fixtures: ``pinset_pki`` (a fresh :class:`~pinset.testing.TestPKI`), ``pinset_tls_server``
(a factory starting :class:`~pinset.testing.TLSServer` instances), ``pinset_mitm_proxy``
(a started :class:`~pinset.testing.MitmProxy`) and ``pinset_pinned_context`` (a factory of
pinned :class:`ssl.SSLContext`). Every server and proxy is stopped at teardown. The
``pinset_mitm`` marker documents a test as a "refuses interception" test.

A complete test::

    pytest_plugins = ["pinset.testing.plugin"]  # in the top-level conftest.py

    def test_client_refuses_forged_cert(
        pinset_pki, pinset_tls_server, pinset_mitm_proxy, pinset_pinned_context
    ):
        leaf = pinset_pki.leaf("localhost")
        server = pinset_tls_server(leaf)
        ctx = pinset_pinned_context(
            {"localhost": [leaf]}, trust=[pinset_pki.root, pinset_mitm_proxy.ca]
        )
        with pytest.raises(ssl.SSLCertVerificationError):
            my_client.get(
                f"https://localhost:{server.port}/", proxy=pinset_mitm_proxy.url, ssl=ctx
            )
        assert_refused(pinset_mitm_proxy, "localhost")
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import pytest
from cryptography import x509

from pinset.enforce import ssl_context
from pinset.pins import Pin, spki_pin
from pinset.policy import DomainRule, Policy
from pinset.testing._mitm import MitmProxy, assert_intercepted, assert_refused
from pinset.testing._pki import CertificateAuthority, LeafCert, TestPKI
from pinset.testing._pki import certificate_pem as _cert_pem
from pinset.testing._server import TLSServer

__all__ = [
    "PinSource",
    "assert_intercepted",
    "assert_refused",
    "make_policy",
    "pinset_mitm_proxy",
    "pinset_pinned_context",
    "pinset_pki",
    "pinset_tls_server",
]

# What a pin may be given as: a Pin, its text, a LeafCert or CA, or a certificate or key.
PinSource: TypeAlias = object
TrustSource: TypeAlias = CertificateAuthority | x509.Certificate | str | bytes


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "pinset_mitm: the test attacks a client with pinset's forging MITM proxy "
        "(documentation only; use the pinset_mitm_proxy fixture and assert_refused)",
    )


def _pin_of(source: PinSource) -> Pin:
    if isinstance(source, Pin):
        return source
    if isinstance(source, str):
        return Pin.parse(source)
    if isinstance(source, LeafCert | CertificateAuthority):
        return spki_pin(source.cert)
    return spki_pin(source)


def make_policy(pins_for_host: Mapping[str, Iterable[PinSource]]) -> Policy:
    """A policy pinning each host to the given pins (single pins allowed: this is a test)."""
    rules = tuple(
        DomainRule(host, tuple(_pin_of(p) for p in pins), allow_single_pin=True)
        for host, pins in pins_for_host.items()
    )
    return Policy(rules)


def certificate_pem(source: TrustSource) -> str:
    if isinstance(source, CertificateAuthority):
        return source.cert_pem.bytes().decode("ascii")
    if isinstance(source, x509.Certificate):
        return _cert_pem(source).decode("ascii")
    if isinstance(source, bytes):
        return source.decode("ascii")
    return source


@pytest.fixture
def pinset_pki() -> TestPKI:
    """A fresh test PKI: ``.root``, ``.intermediate``, ``.leaf(...)``, ``.rogue``.

    Its CAs are made on first use (EC P-256 keys, a few milliseconds each).
    """
    return TestPKI()


@pytest.fixture
def pinset_tls_server(pinset_pki: TestPKI) -> Iterator[Callable[..., TLSServer]]:
    """Factory: ``pinset_tls_server(chain=None, **kwargs)`` starts a loopback :class:`TLSServer`.

    *chain* (a :class:`LeafCert` or certificates, leaf first) defaults to ``pinset_pki.leaf()``
    (localhost and 127.0.0.1); *kwargs* go to :class:`TLSServer`. All servers are
    stopped at teardown.
    """
    started: list[TLSServer] = []

    def start(
        chain: LeafCert | Sequence[x509.Certificate] | None = None, **kwargs: Any
    ) -> TLSServer:
        chosen = chain if chain is not None else pinset_pki.leaf()
        server = TLSServer(chosen, **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()


@pytest.fixture
def pinset_mitm_proxy() -> Iterator[MitmProxy]:
    """A started forging CONNECT proxy with a fresh interception CA (``.ca``)."""
    with MitmProxy() as proxy:
        yield proxy


@pytest.fixture
def pinset_pinned_context(pinset_pki: TestPKI) -> Callable[..., ssl.SSLContext]:
    """Factory: ``pinset_pinned_context(policy_or_pins, *, trust=None)`` → a pinned context.

    *policy_or_pins* is a :class:`Policy`, a policy file path, or a mapping
    ``{host: [pins]}`` where a pin is a :class:`Pin`, pin text, a :class:`LeafCert`, a
    :class:`CertificateAuthority`, a certificate or a key. *trust* lists the CAs (or PEM)
    the client trusts, default ``[pinset_pki.root]``; add ``pinset_mitm_proxy.ca`` to model a
    device on which the attacker installed its CA.
    """

    def make(
        policy_or_pins: Policy | str | Path | Mapping[str, Iterable[PinSource]],
        *,
        trust: Iterable[TrustSource] | None = None,
        **kwargs: Any,
    ) -> ssl.SSLContext:
        if isinstance(policy_or_pins, Mapping):
            policy: Policy | str | Path = make_policy(policy_or_pins)
        else:
            policy = policy_or_pins
        anchors = list(trust) if trust is not None else [pinset_pki.root]
        cadata = "".join(certificate_pem(a) for a in anchors)
        return ssl_context(policy, cadata=cadata, **kwargs)

    return make
