"""The ``[debug-overrides]`` of a policy, read for ``ssl_context(policy, debug=True)`` only.

The policy names its debug trust anchors (PEM files, relative to the policy file);
they are read here, in the shell, never by the core and never without ``debug=True``.
Nothing else switches them on: no environment variable is read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pinset.errors import ConfigError
from pinset.pins import Pin, spki_pin
from pinset.policy import Policy

__all__ = ["DebugTrust", "debug_trust"]


@dataclass(frozen=True, slots=True)
class DebugTrust:
    """What a debug context adds: anchors to trust (PEM) and the pins of those that bypass pins."""

    cadata: str
    override_anchors: frozenset[Pin]


def debug_trust(policy: Policy) -> DebugTrust | None:
    """The policy's debug anchors, read from their files (``None``: the policy has none).

    Raises :class:`~pinset.errors.ConfigError` naming the policy file and the line of
    the anchor that is missing, unreadable, or holds no PEM certificate.
    """
    overrides = policy.debug_overrides
    if overrides is None or not overrides.trust_anchors:
        return None
    base = Path(policy.source).parent if policy.source else Path.cwd()
    pems: list[str] = []
    pins: set[Pin] = set()
    for number, written in enumerate(overrides.trust_anchors):
        line = overrides.lines[number] if number < len(overrides.lines) else None
        for cert in _certificates(base / os.path.expanduser(written), written, policy, line):
            pems.append(cert.public_bytes(serialization.Encoding.PEM).decode("ascii"))
            pins.add(spki_pin(cert))
    return DebugTrust("".join(pems), frozenset(pins) if overrides.override_pins else frozenset())


def _certificates(
    path: Path, written: str, policy: Policy, line: int | None
) -> list[x509.Certificate]:
    def error(message: str, hint: str) -> ConfigError:
        return ConfigError(message, source=policy.source, line=line, key="trust-anchors", hint=hint)

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(
            f"cannot read debug trust anchor {written!r} ({path}): {exc.strerror or exc}",
            "write the path of the CA's PEM file, relative to the policy file",
        ) from None
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        raise error(
            f"debug trust anchor {written!r} holds no PEM certificate",
            "give the CA certificate as PEM (-----BEGIN CERTIFICATE-----); "
            "convert DER with: openssl x509 -inform der -in ca.der -out ca.pem",
        )
    for cert in certs:
        try:
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            constraints = None
        if constraints is None or not constraints.ca:
            raise error(
                f"debug trust anchor {written!r} holds a certificate that is not a CA "
                f"({cert.subject.rfc4514_string()})",
                "give the proxy's CA certificate, not a server certificate",
            )
    return certs
