"""What every importer shares: names, dates, build settings, and how a domain becomes a rule.

:func:`import_rule` is how every importer turns a platform's domain entry into
a rule and a record of its pins as written (:class:`WrittenPins`). What the
platform accepts but pinset's own rules do not (a single pin, a placeholder, an
unpadded pin, no expiration) is judged by the audit's rules from that record,
never here: never a refusal and never a silent drop. Plists with their line
positions are in :mod:`pinset.formats._apple._plist`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable, Sequence
from typing import Any

from pinset._dates import parse_iso_date
from pinset.errors import ConfigError, PinsetError
from pinset.formats._model import WrittenPins
from pinset.hosts import canonical_host
from pinset.pins import Pin
from pinset.policy import DebugOverrides, DomainRule, Policy

__all__ = [
    "did_you_mean",
    "host_name",
    "import_rule",
    "make_policy",
    "make_rule",
    "parse_date",
    "refuse_build_setting",
]

# Xcode build settings ($(NAME), ${NAME}) and Gradle/shell style substitutions.
_BUILD_SETTING = re.compile(r"\$\{[^}]*\}|\$\([^)]*\)")


def did_you_mean(key: str, known: Iterable[str], what: str = "keys") -> str:
    """A hint naming the closest known name (spelling, then hyphens and case), or them all."""
    known = tuple(known)
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if not close:
        loose = key.replace("-", "").lower()
        close = [k for k in known if k.replace("-", "").lower() == loose]
    if close:
        return f"did you mean {close[0]!r}?"
    return f"known {what}: {', '.join(known)}" if known else f"this element takes no {what}"


def refuse_build_setting(
    value: str, *, source: str | None, line: int | None, key: str | None
) -> None:
    """Raise :class:`ConfigError` if ``value`` holds an unresolved ``$(…)`` or ``${…}``."""
    match = _BUILD_SETTING.search(value)
    if match:
        raise ConfigError(
            f"unresolved build-setting placeholder {match.group(0)!r} in {value!r}",
            source=source,
            line=line,
            key=key,
            hint="import the processed file from the built app, or write the literal value",
        )


def host_name(raw: str, *, source: str | None, line: int | None, key: str) -> str:
    """``raw`` as a canonical host name; a placeholder or a bad name raises at ``source:line``."""
    refuse_build_setting(raw, source=source, line=line, key=key)
    try:
        return canonical_host(raw)
    except PinsetError as exc:
        raise exc.with_location(source=source, line=line) from None


def parse_date(value: Any, *, source: str | None, line: int | None, key: str) -> dt.date:
    """A ``yyyy-MM-dd`` string as a date, or :class:`ConfigError` naming the key."""
    if isinstance(value, str):
        refuse_build_setting(value, source=source, line=line, key=key)
        date = parse_iso_date(value)
        if date is not None:
            return date
    raise ConfigError(
        f"{key} must be a date written yyyy-MM-dd, not {value!r}",
        source=source,
        line=line,
        key=key,
        hint="write the date as a string such as 2027-06-30 (UTC)",
    )


def make_rule(*, source: str | None, line: int | None, **fields: Any) -> DomainRule:
    """Build a :class:`DomainRule`, locating any error it raises at ``source:line``."""
    try:
        return DomainRule(**fields)
    except PinsetError as exc:
        raise exc.with_location(source=source, line=line) from None


def import_rule(
    *,
    source: str | None,
    line: int | None,
    name: str,
    pins: Sequence[Pin],
    include_subdomains: bool = False,
    one_label: bool = False,
    expiration: dt.date | None = None,
    enforce: bool = True,
    report_uris: Sequence[str] = (),
    pin_texts: Sequence[str] = (),
    pin_lines: Sequence[int | None] = (),
    expiration_fix: str | None = None,
    lifetime: str | None = None,
    backup_needed: bool | None = None,
    single_pin_accepted: bool = False,
    require_ct: bool = False,
) -> tuple[DomainRule, WrittenPins]:
    """A platform's pinned domain as a :class:`DomainRule`, and its pins as written.

    Every importer calls this for each pinned domain, so every format builds the
    same entry the same way. The platform accepts what it accepts: an enforced
    rule with fewer than two real pins gets ``allow_single_pin`` (so does one
    whose file says a single pin is accepted, ``single_pin_accepted``). A domain
    whose every pin is a placeholder (:attr:`Pin.is_placeholder`) is kept, as the
    platform keeps it, with ``placeholder_only`` set: no key can match, so
    connections are refused. ``pin_texts`` are the pins as the file writes them
    (``pin_lines`` their lines); they and the remaining arguments become the
    :class:`WrittenPins` the audit's rules judge.
    """
    real = {p for p in pins if not p.is_placeholder}
    # With no real pin the backup question is moot: the rule matches no key at all.
    placeholder_only = bool(pins) and not real
    rule = make_rule(
        source=source,
        line=line,
        name=name,
        pins=tuple(pins),
        include_subdomains=include_subdomains,
        one_label=one_label,
        expiration=expiration,
        enforce=enforce,
        report_uris=tuple(report_uris),
        allow_single_pin=not placeholder_only
        and ((enforce and len(real) < 2) or single_pin_accepted),
        placeholder_only=placeholder_only,
        require_ct=require_ct,
    )
    written = WrittenPins(
        rule.pattern,
        line,
        tuple(pin_texts),
        tuple(pin_lines),
        backup_needed=backup_needed,
        single_pin_accepted=single_pin_accepted,
        expiration_fix=expiration_fix,
        lifetime=lifetime,
    )
    return rule, written


def make_policy(
    rules: Iterable[DomainRule],
    *,
    source: str | None,
    debug_overrides: DebugOverrides | None = None,
) -> Policy:
    """Build a :class:`Policy` of ``rules``, locating any error it raises in ``source``."""
    try:
        return Policy(rules=tuple(rules), source=source, debug_overrides=debug_overrides)
    except PinsetError as exc:
        raise exc.with_location(source=source) from None
