"""TrustKit's legacy ``TSKPublicKeyPins`` (hex SHA-256 pins, its early 2015 format).

It imports with a ``legacy-hex-pins`` warning: released TrustKit reads only
``TSKConfiguration``, so an app relying on it is not pinned. Export never writes it.
"""

from __future__ import annotations

import re
from typing import Any

from pinset.formats._apple._plist import PlistText
from pinset.formats._apple._trustkit_keys import (
    CONFIG,
    FORMAT,
    HASHES,
    LEGACY,
    PINNED,
    domain_name,
    strings,
)
from pinset.formats._importing import import_rule, make_policy
from pinset.formats._model import Finding, Imported, PlatformDomain, WrittenPins
from pinset.pins import Pin
from pinset.policy import DomainRule

__all__ = ["legacy_ignored", "load_legacy"]

_HEX64 = re.compile(r"[0-9A-Fa-f]{64}")


def load_legacy(plist: PlistText, pins_by_host: Any) -> Imported:
    source = plist.source
    if not isinstance(pins_by_host, dict) or not pins_by_host:
        raise plist.error(f"{LEGACY} must be a dictionary of domains", (LEGACY,))
    rules: list[DomainRule] = []
    domains: list[PlatformDomain] = []
    written: list[WrittenPins] = []
    lines: dict[str, int] = {}
    for raw_name, hexes in pins_by_host.items():
        path = (LEGACY, raw_name)
        line = plist.line(path)
        name = domain_name(plist, path, raw_name)
        texts = tuple(strings(plist, path, hexes))
        pins = []
        for index, text in enumerate(texts):
            if not _HEX64.fullmatch(text.strip()):
                raise plist.error(
                    f"{LEGACY} pins are 64 hex digits of a SHA-256 digest, not {text!r}",
                    (*path, index),
                    hint=f"move the domain to {CONFIG}/{PINNED} with base64 {HASHES}",
                )
            pins.append(Pin(bytes.fromhex(text.strip())))
        # The hex texts are no spelling of a pin's base64: the pins are quoted canonically.
        rule, pins_written = import_rule(source=source, line=line, name=name, pins=tuple(pins))
        rules.append(rule)
        if line is not None:
            lines[rule.pattern] = line
        domains.append(PlatformDomain(name, pin_texts=texts, line=line))
        written.append(pins_written)
    policy = make_policy(rules, source=source)
    return Imported(
        policy,
        FORMAT,
        source,
        (legacy_ignored(plist),),
        tuple(domains),
        {"legacy": True},
        lines=lines,
        written=tuple(written),
    )


def legacy_ignored(plist: PlistText) -> Finding:
    return Finding(
        "legacy-hex-pins",
        "warning",
        f"{LEGACY} (hex SHA-256 pins) is the early (2015) TrustKit format; released TrustKit "
        f"reads only {CONFIG}, so these pins are not enforced",
        fix=f"export the policy again (pinset export --format trustkit) to get {CONFIG}",
        source=plist.source,
        line=plist.line((LEGACY,)),
    )
