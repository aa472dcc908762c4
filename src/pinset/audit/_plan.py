"""The staged plan of a key rotation, with dates (``pinset rotate plan``).

Pure: the caller fetches the live chains, reads the policy, asks the collector and
gives the time. The plan follows the one order that never locks installed apps out:
pin the new key as a backup and ship it, wait until enough installs carry it, switch
the server, then retire the old pin, renew the expiration and pin the next offline
backup key in one more update. Each stage names the check that must pass before the
next one, as a command line built by the caller (:class:`Checks`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509

from pinset.errors import ConfigError
from pinset.pins import Pin, spki_pin
from pinset.policy import DomainRule

__all__ = [
    "RENEW_DAYS",
    "ROLLBACK_DAYS",
    "Adoption",
    "Checks",
    "Plan",
    "Stage",
    "adoption_from_json",
    "plan_rotation",
]

# The old key's pin stays a week after the switch, so the server can roll back to the
# old key without locking out the installs that already dropped it.
ROLLBACK_DAYS = 7
# The renewed expiration: a year after the update that ships it.
RENEW_DAYS = 365


@dataclass(frozen=True, slots=True)
class Stage:
    """One step of the plan: what to do from ``date`` on, and the check before the next.

    ``done`` is ``True`` or ``False`` when pinset can tell, ``None`` when it cannot.
    """

    number: int
    title: str
    date: dt.date
    check: str
    done: bool | None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Adoption:
    """What the collector says: the share of traffic from installs at ``version`` or later."""

    version: str
    share: float
    count: int
    total: int
    since: str


@dataclass(frozen=True, slots=True)
class Checks:
    """The command lines the stages name, built by the caller (it knows the paths)."""

    rotate_check: str  # exit 0 once the shipped pins accept the new key
    adoption: str  # says whether stage 2 is done
    audit_live: str  # the served chain passes the pins
    audit: str  # the policy's findings (expiration)
    next_backup: str  # exit 0 once the next backup key is pinned


@dataclass(frozen=True, slots=True)
class Plan:
    """The stages in order, the warnings, and the pins involved."""

    stages: tuple[Stage, ...]
    warnings: tuple[str, ...]
    new_pin: Pin
    old_pins: tuple[Pin, ...]
    domains: tuple[str, ...]


def _version_key(version: str) -> tuple[int, ...] | None:
    parts = version.strip().split(".")
    if not all(p.isascii() and p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


def _at_or_after(version: str, wanted: str) -> bool:
    """Numeric versions (``7``, ``2.10``) compare as numbers; any other only equals itself."""
    have, want = _version_key(version), _version_key(wanted)
    if have is None or want is None:
        return version == wanted
    return have >= want


def adoption_from_json(document: object, pin_set_version: str) -> Adoption:
    """Read ``GET /v1/adoption``: the share of pin-set versions at or after the wanted one.

    :class:`ValueError` names what is wrong when the document does not have that shape.
    """
    if not isinstance(document, dict):
        raise ValueError("the answer is not a JSON object")
    rows = document.get("pin_set_versions")
    since = document.get("since")
    if not isinstance(rows, list) or not isinstance(since, str):
        raise ValueError("the answer has no pin_set_versions list or no since")
    share, count, total = 0.0, 0, 0
    for row in rows:
        if not isinstance(row, dict):
            raise ValueError("a pin_set_versions entry is not an object")
        version, part, n = row.get("version"), row.get("share"), row.get("count")
        if (
            not isinstance(version, str)
            or isinstance(part, bool)
            or not isinstance(part, int | float)
            or not 0 <= part <= 1
            or isinstance(n, bool)
            or not isinstance(n, int)
            or n < 0
        ):
            raise ValueError(f"bad pin_set_versions entry {row!r}")
        total += n
        if _at_or_after(version, pin_set_version):
            share += float(part)
            count += n
    return Adoption(pin_set_version, min(share, 1.0), count, total, since)


def _refuse(
    rules: Sequence[DomainRule],
    live: Mapping[str, Sequence[x509.Certificate]],
    new_pin: Pin,
    now: dt.datetime,
) -> None:
    """The plans that cannot work: an expired policy, a new key that is the current one."""
    for host, chain in live.items():
        if chain and spki_pin(chain[0]) == new_pin:
            raise ConfigError(
                f"the new key is the key {host} already serves ({new_pin})",
                hint="give the key the server will switch to, not the one it uses",
            )
    for rule in rules:
        if rule.is_expired(now):
            raise ConfigError(
                f"the pins of {rule.pattern} expired on {rule.expiration}: nothing is "
                "enforced, so there is no rotation to plan",
                key="expiration",
                hint="renew the expiration first (pinset audit reports pin-set-expired)",
            )


def plan_rotation(
    rules: Sequence[DomainRule],
    live: Mapping[str, Sequence[x509.Certificate]],
    new_pin: Pin,
    checks: Checks,
    *,
    now: dt.datetime,
    start: dt.date | None = None,
    share: float = 0.9,
    update_days: int = 30,
    adoption: Adoption | None = None,
) -> Plan:
    """The plan for switching the servers in ``live`` (host -> served chain) to ``new_pin``.

    ``rules`` are the pinned rules covering those hosts. ``start`` is the day of the
    release that carries the new pin (default: the day of ``now``); stage 2 waits
    ``update_days`` after it, unless ``adoption`` (the collector's numbers) says that
    ``share`` of installs carry the new pins, or not yet.
    :class:`ConfigError` when the plan cannot work.
    """
    if not rules:
        raise ConfigError("no pinned rule covers the targets", hint="check the policy's names")
    _refuse(rules, live, new_pin, now)
    begin = start if start is not None else now.date()
    leaf_pins = {spki_pin(chain[0]) for chain in live.values() if chain}
    old = tuple(dict.fromkeys(p for r in rules for p in r.pins if p in leaf_pins))
    names = ", ".join(r.pattern for r in rules)
    stages = [
        _stage_pin(rules, new_pin, names, begin, checks),
        _stage_wait(begin, now.date(), share, update_days, adoption, checks),
    ]
    switch = stages[1].date
    retire = switch + dt.timedelta(days=ROLLBACK_DAYS)
    renew_to = retire + dt.timedelta(days=RENEW_DAYS)
    stages.append(
        Stage(3, f"switch the server to the new key ({new_pin})", switch, checks.audit_live, False)
    )
    stages.append(_stage_retire(rules, old, retire, checks))
    stages.append(_stage_renew(rules, retire, renew_to, checks))
    served = {spki_pin(cert) for chain in live.values() for cert in chain}
    stages.append(_stage_backup(rules, new_pin, served, retire, checks))
    warnings = tuple(_warnings(rules, retire))
    return Plan(tuple(stages), warnings, new_pin, old, tuple(r.pattern for r in rules))


def _stage_pin(
    rules: Sequence[DomainRule], new_pin: Pin, names: str, begin: dt.date, checks: Checks
) -> Stage:
    if all(new_pin in r.pins for r in rules):
        return Stage(
            1, f"the new key is already pinned as a backup ({names})", begin,
            checks.rotate_check, True,
            detail="the wait of stage 2 counts from the release that shipped it (--start)",
        )  # fmt: skip
    missing = ", ".join(r.pattern for r in rules if new_pin not in r.pins)
    return Stage(
        1, f"add {new_pin} to {missing} and ship an app/policy update", begin,
        checks.rotate_check, False,
        detail="keep the current pins: the server still uses the old key",
    )  # fmt: skip


def _stage_wait(
    begin: dt.date,
    today: dt.date,
    share: float,
    update_days: int,
    adoption: Adoption | None,
    checks: Checks,
) -> Stage:
    """Wait ``update_days`` after the release of stage 1; the collector can say more.

    The wait counts from the release that carries the new pin (``begin``) even when the
    pin is already in the policy or app: pinset cannot tell how long it has been shipped.
    """
    estimate = begin + dt.timedelta(days=update_days)
    title = f"wait until {share:.0%} of installs carry the new pins"
    if adoption is None:
        detail = f"estimate: {update_days} days after the release of stage 1"
        return Stage(2, title, estimate, checks.adoption, None, detail=detail)
    reached = adoption.share >= share
    # the measured share overrides the estimate: switch as soon as it is reached, not before
    date = min(estimate, max(begin, today)) if reached else max(estimate, today)
    detail = (
        f"collector: {adoption.share:.1%} of traffic ({adoption.count} of {adoption.total}) "
        f"from pin-set version {adoption.version} or later since {adoption.since}: "
        + ("reached" if reached else f"not reached (want {share:.0%})")
    )
    return Stage(2, title, date, checks.adoption, reached, detail=detail)


def _stage_retire(
    rules: Sequence[DomainRule], old: tuple[Pin, ...], date: dt.date, checks: Checks
) -> Stage:
    if not old:
        return Stage(
            4, "no pin of the old server key to retire (the rules pin other keys)", date,
            checks.audit_live, True,
        )  # fmt: skip
    pins = ", ".join(str(p) for p in old)
    return Stage(
        4, f"retire the old pin {pins}", date, checks.audit_live, False,
        detail=f"{ROLLBACK_DAYS} days after the switch (the rollback window), in one update "
        "with stages 5 and 6",
    )  # fmt: skip


def _stage_renew(
    rules: Sequence[DomainRule], date: dt.date, renew_to: dt.date, checks: Checks
) -> Stage:
    done = all(r.expiration is None or r.expiration >= renew_to for r in rules)
    return Stage(
        5, f"renew the expiration to {renew_to.isoformat()} or later", date, checks.audit, done,
    )  # fmt: skip


def _stage_backup(
    rules: Sequence[DomainRule],
    new_pin: Pin,
    served: set[Pin],
    date: dt.date,
    checks: Checks,
) -> Stage:
    """Done when every rule keeps a pin of a key no server uses, besides the new key's."""
    spare = [
        p
        for r in rules
        for p in r.pins
        if p != new_pin and p not in served and not p.is_placeholder
    ]
    if all(any(p in spare for p in r.pins) for r in rules):
        return Stage(
            6, f"the next offline backup key is already pinned ({spare[0]})", date,
            checks.audit_live, True,
            detail="keep it offline; make another one once it becomes the server's key",
        )  # fmt: skip
    return Stage(
        6, "make the next offline backup key and pin it (pinset keygen --out next-backup.key)",
        date, checks.next_backup, False,
    )  # fmt: skip


def _warnings(rules: Iterable[DomainRule], end: dt.date) -> list[str]:
    return [
        f"the pins of {r.pattern} expire on {r.expiration}, before the plan ends on "
        f"{end.isoformat()}: renew the expiration in the update of stage 1"
        for r in rules
        if r.expiration is not None and r.expiration <= end
    ]
