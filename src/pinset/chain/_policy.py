"""A first policy from the chains hosts serve plus backup pins (what ``pinset init`` writes).

Pure: the chains are already fetched, the backup pins already read and the expiration
date given by the caller. Re-exported by :mod:`pinset.chain`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pinset.chain import FetchedChain, Role, order_chain
from pinset.errors import ChainError, ConfigError
from pinset.hosts import canonical_host
from pinset.pins import Pin, spki_pin
from pinset.policy import DomainRule, Policy

__all__ = ["ChainPolicy", "PinSource", "check_backups", "pin_at_level", "policy_from_chains"]

_NO_BACKUP_HINT = (
    "make an offline backup key with 'pinset keygen --out backup.key' and pass "
    "--backup-key backup.key (or --backup-pin sha256/...)"
)


@dataclass(frozen=True, slots=True)
class PinSource:
    """A pin and where it came from (``"leaf: CN=api.example.com"``, ``"backup pin"``)."""

    pin: Pin
    source: str


@dataclass(frozen=True, slots=True)
class ChainPolicy:
    """What :func:`policy_from_chains` built.

    ``sources`` maps each domain of ``policy`` to its pins in policy order, each with
    where it came from; ``warnings`` are one line each (a chain that did not verify).
    """

    policy: Policy
    sources: Mapping[str, tuple[PinSource, ...]]
    warnings: tuple[str, ...]


def pin_at_level(fetched: FetchedChain, level: Role) -> tuple[Pin, str, list[str]]:
    """The pin of ``fetched`` at ``level``, a description of its certificate, and warnings.

    The verified chain is used when validation succeeded (so a root pin is the
    trust anchor clients build to, even if the server does not send it);
    otherwise the served chain, with a warning.
    """
    where = f"{fetched.host}:{fetched.port}"
    notes: list[str] = []
    chain = fetched.verified
    if chain is None:
        notes.append(
            f"{where}: the chain does not verify ({fetched.verify_error}); "
            "using the served chain, which clients with the same trust would refuse"
        )
        chain = order_chain(fetched.served)
    if not chain:
        raise ChainError("the server sent no certificate", source=where)
    if level == "leaf":
        cert = chain[0]
    elif level == "intermediate":
        if len(chain) < 2 or (fetched.verified is not None and len(chain) < 3):
            raise ChainError(
                "the chain has no intermediate certificate",
                source=where,
                hint="use --level leaf or --level root",
            )
        cert = chain[1]
    else:
        cert = chain[-1]
        if fetched.verified is None:
            notes.append(
                f"{where}: root level without a verified chain: pinning the last served "
                f"certificate ({cert.subject.rfc4514_string()}), which may not be the anchor "
                "your clients trust; pass --cafile to verify"
            )
    return spki_pin(cert), f"{level}: {cert.subject.rfc4514_string()}", notes


def check_backups(backups: Sequence[PinSource]) -> None:
    """Refuse no backup at all, and a placeholder given as one (before anything is fetched)."""
    for backup in backups:
        if backup.pin.is_placeholder:
            raise ConfigError(
                f"{backup.pin} is a placeholder, not a backup key", hint=_NO_BACKUP_HINT
            )
    if not backups:
        raise ConfigError("refusing to write a policy without a backup pin", hint=_NO_BACKUP_HINT)


def policy_from_chains(
    chains: Sequence[FetchedChain],
    backups: Sequence[PinSource],
    *,
    expiration: dt.date,
    level: Role = "leaf",
    include_subdomains: bool = False,
    report_uris: Sequence[str] = (),
) -> ChainPolicy:
    """A policy pinning each host's chain at ``level`` plus every backup, until ``expiration``.

    One rule per host (hosts are canonicalised; two chains of one host add both pins).
    A policy the servers could lock clients out of is refused with a
    :class:`~pinset.errors.ConfigError`: no backup, a placeholder as backup, or backups
    that a host's chain already uses (a backup must be a key not deployed yet).
    """
    check_backups(backups)
    current: dict[str, list[PinSource]] = {}
    notes: list[str] = []
    for fetched in chains:
        pin, what, warnings = pin_at_level(fetched, level)
        notes += warnings
        served = {spki_pin(cert) for cert in (*fetched.served, *(fetched.verified or ()))}
        if all(b.pin in served for b in backups):
            raise ConfigError(
                f"every backup pin is already used by {fetched.host}:{fetched.port}'s chain",
                hint="a backup must be a key the servers do not use yet; " + _NO_BACKUP_HINT,
            )
        current.setdefault(canonical_host(fetched.host), []).append(PinSource(pin, what))
    sources = {
        name: tuple({s.pin: s for s in (*pins, *backups)}.values())
        for name, pins in current.items()
    }
    uris = tuple(report_uris)
    rules = tuple(
        DomainRule(
            name=name,
            pins=tuple(s.pin for s in pins),
            include_subdomains=include_subdomains,
            expiration=expiration,
            report_uris=uris,
        )
        for name, pins in sources.items()
    )
    return ChainPolicy(Policy(rules=rules, report_uris=uris), sources, tuple(notes))
