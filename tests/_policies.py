"""Pins that match no test key, and a policy built from them, for tests of every layer.

``BACKUP`` stands for the offline backup key every rule needs next to its real pin;
``OTHER`` and ``WRONG`` are keys no test server has. They are SHA-256 digests of fixed
text, so a failure names the same pins on every run.
"""

from __future__ import annotations

import hashlib

from pinset import Pin, Policy
from pinset.policy import DomainRule

__all__ = ["BACKUP", "OTHER", "WRONG", "pinning"]

BACKUP = Pin(hashlib.sha256(b"offline backup key").digest())
OTHER = Pin(hashlib.sha256(b"somebody else's key").digest())
WRONG = Pin(hashlib.sha256(b"a key the server does not have").digest())


def pinning(*rules: tuple[str, tuple[Pin, ...]], enforce: bool = True) -> Policy:
    """A policy with one rule per ``(host, pins)``, each rule also pinning ``BACKUP``."""
    return Policy(
        rules=tuple(DomainRule(name, pins=(*pins, BACKUP), enforce=enforce) for name, pins in rules)
    )
