"""The tree :mod:`pinset.formats._android._nsc` reads a network security config into.

One :class:`Config` per ``base-config``, ``domain-config`` or ``debug-overrides``
with what it sets itself (``None``: inherited), in a :class:`Document`;
:mod:`pinset.formats._android._nsc_map` resolves inheritance along :func:`ancestors`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from pinset.formats._model import Finding, TrustAnchor, TrustKitSettings
from pinset.pins import Pin

__all__ = ["Config", "Document", "Kind", "PinSet", "ancestors"]

Kind = Literal["base", "domain", "debug"]


@dataclass(frozen=True, slots=True)
class PinSet:
    """A ``<pin-set>`` as written: pins, their texts and lines, expiration."""

    pins: tuple[Pin, ...]
    texts: tuple[str, ...]
    lines: tuple[int, ...]
    expiration: dt.date | None
    expiration_text: str | None
    ignore_missing_backup: bool
    line: int


@dataclass(slots=True, eq=False)
class Config:
    """One ``base-config``, ``domain-config`` or ``debug-overrides`` with what it sets itself."""

    kind: Kind
    line: int
    parent: Config | None = None
    domains: list[tuple[str, bool, int]] = field(default_factory=list)
    pin_set: PinSet | None = None
    anchors: tuple[TrustAnchor, ...] | None = None
    anchors_line: int | None = None
    cleartext: bool | None = None
    certificate_transparency: bool | None = None
    trustkit: TrustKitSettings | None = None
    enforce_attr_line: int | None = None  # TrustKit's attribute misplaced on <domain-config>
    children: list[Config] = field(default_factory=list)


@dataclass(slots=True)
class Document:
    """A parsed config: base, domain configs (document order, depth first), debug overrides."""

    source: str | None
    base: Config | None = None
    debug: Config | None = None
    domains: list[Config] = field(default_factory=list)
    trustkit_seen: bool = False
    findings: list[Finding] = field(default_factory=list)  # what the platform skips


def ancestors(config: Config | None) -> Iterator[Config]:
    """``config``, then its parent domain-configs up to the top-level one."""
    while config is not None:
        yield config
        config = config.parent
