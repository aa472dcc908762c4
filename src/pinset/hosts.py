"""Host name canonicalisation, shared by policy rules and connections.

Pure. One function decides what a host name *is*, so a rule and a connection
can never disagree about it: lower case, one trailing dot removed, IDNA
A-labels, empty labels rejected, IP literals in their compressed form.
"""

from __future__ import annotations

import ipaddress
import re

from pinset.errors import ConfigError

__all__ = ["canonical_host", "is_ip_literal", "parent_domains"]

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


def is_ip_literal(host: str) -> bool:
    """True when ``host`` is an IPv4 or IPv6 address (brackets allowed)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def canonical_host(name: str) -> str:
    """The canonical form of a host name, or :class:`ConfigError` saying why there is none.

    ``EXAMPLE.com.`` → ``example.com``; ``bücher.example`` → ``xn--bcher-kva.example``;
    ``[::1]`` → ``::1``; four numbers are the IPv4 address OpenSSL verifies
    (``127.000.000.001`` → ``127.0.0.1``; above 255 refused). Empty labels
    (``a..b``, ``.a``), labels longer than 63 characters and characters outside
    letters, digits, ``-`` and ``_`` are rejected.
    """
    if not isinstance(name, str):
        raise ConfigError(f"a host name must be text, not {type(name).__name__}")
    raw = name.strip()
    if not raw:
        raise ConfigError("empty host name", hint="write a name such as api.example.com")
    bare = raw[1:-1] if raw.startswith("[") and raw.endswith("]") else raw
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    host = raw[:-1] if raw.endswith(".") else raw
    if not host or host.startswith(".") or ".." in host or host.endswith("."):
        raise ConfigError(
            f"host name {name!r} has an empty label",
            hint="remove the extra dots; only one trailing dot is allowed",
        )
    if host.isascii():
        ascii_host = host.lower()
    else:
        try:
            ascii_host = host.encode("idna").decode("ascii").lower()
        except UnicodeError as exc:
            raise ConfigError(
                f"host name {name!r} is not a valid internationalised name: {exc}",
                hint="write the name in its xn-- (A-label) form",
            ) from None
    if len(ascii_host) > 253:
        raise ConfigError(f"host name {name!r} is longer than 253 characters")
    labels = ascii_host.split(".")
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise ConfigError(
                f"host name {name!r} has an invalid label {label!r}",
                hint=(
                    "labels are 1–63 letters, digits, '-' or '_'; "
                    "wildcards only as '*.' or '**.' prefixes"
                ),
            )
    if len(labels) == 4 and all(label.isascii() and label.isdigit() for label in labels):
        return _four_numbers(name, labels)
    return ascii_host


def parent_domains(host: str) -> list[str]:
    """The proper parents of a canonical host, nearest first: ``a.b.c`` → ``['b.c', 'c']``."""
    if is_ip_literal(host):
        return []
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(1, len(labels))]


def _four_numbers(name: str, labels: list[str]) -> str:
    # OpenSSL verifies a server_hostname of four numbers as an IPv4 address, leading
    # zeros read as decimal ("127.000.000.001" is checked as 127.0.0.1), so the rule
    # lookup must read it the same way or such a spelling would skip the pins.
    # Numbers above 255 wrap around in its C parsing: no single reading, refused.
    octets = [int(label) for label in labels]
    if max(octets) > 255:
        raise ConfigError(
            f"host name {name!r} is four numbers but not an IPv4 address",
            hint="write an IPv4 address as four decimal numbers from 0 to 255 (127.0.0.1)",
        )
    return str(ipaddress.IPv4Address(bytes(octets)))
