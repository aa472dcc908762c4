"""What every importer shares: names, dates, placeholders, and how a domain becomes a rule.

:func:`import_rule` is how every importer turns a platform's domain entry into
a rule: what the platform accepts but pinset's own rules do not becomes a
finding (:func:`rule_findings`), never a refusal and never a silent drop. Plists
with their line positions are in :mod:`pinset.formats._apple._plist`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable, Sequence
from typing import Any

from pinset._dates import parse_iso_date
from pinset.errors import ConfigError, PinsetError
from pinset.formats._model import Finding
from pinset.hosts import canonical_host
from pinset.pins import Pin, is_canonical_pin_text
from pinset.policy import DomainRule, Policy

__all__ = [
    "check_placeholder",
    "did_you_mean",
    "host_name",
    "import_rule",
    "make_policy",
    "make_rule",
    "parse_date",
    "placeholder_only_finding",
    "rule_findings",
]

# Xcode build settings ($(NAME), ${NAME}) and Gradle/shell style placeholders.
_PLACEHOLDER = re.compile(r"\$\{[^}]*\}|\$\([^)]*\)")


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


def check_placeholder(value: str, *, source: str | None, line: int | None, key: str | None) -> None:
    """Raise :class:`ConfigError` if ``value`` holds an unresolved ``$(…)`` or ``${…}``."""
    match = _PLACEHOLDER.search(value)
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
    check_placeholder(raw, source=source, line=line, key=key)
    try:
        return canonical_host(raw)
    except PinsetError as exc:
        raise exc.with_location(source=source, line=line) from None


def parse_date(value: Any, *, source: str | None, line: int | None, key: str) -> dt.date:
    """A ``yyyy-MM-dd`` string as a date, or :class:`ConfigError` naming the key."""
    if isinstance(value, str):
        check_placeholder(value, source=source, line=line, key=key)
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
    pin_texts: Sequence[str] = (),
    pin_lines: Sequence[int | None] = (),
    expiration_fix: str | None = None,
    backup_needed: bool | None = None,
    single_pin_accepted: bool | None = None,
    **fields: Any,
) -> tuple[DomainRule, list[Finding]]:
    """A platform's domain entry as a :class:`DomainRule`, with what pinset's rules say of it.

    Every importer calls this for each pinned domain (``fields`` are
    :class:`DomainRule` fields), so every format treats the same entry the same
    way. A domain whose every pin is a placeholder is kept, as the platform
    keeps it: ``placeholder_only`` is set (no key can match, so connections are
    refused) and :func:`placeholder_only_finding` flags it at error level, its
    expiration still visible to the audit. ``pin_texts`` are the pins as the
    file writes them (``pin_lines`` their lines), for messages; the other
    arguments go to :func:`rule_findings`.
    """
    pins = tuple(fields.get("pins", ()))
    if pins and not fields.get("exclude") and all(p.is_placeholder for p in pins):
        # With no real pin the backup question is moot: the rule matches no key at all.
        fields.update(placeholder_only=True, allow_single_pin=False)
    rule = make_rule(source=source, line=line, **fields)
    findings = rule_findings(
        rule,
        pin_texts,
        source=source,
        line=line,
        pin_lines=pin_lines,
        expiration_fix=expiration_fix,
        backup_needed=backup_needed,
        single_pin_accepted=single_pin_accepted,
    )
    return rule, findings


def placeholder_only_finding(
    rule: DomainRule, pin_texts: Sequence[str], *, source: str | None, line: int | None
) -> Finding:
    """The error-level ``placeholder-pin`` finding of a domain whose every pin is a placeholder.

    Pins are quoted as ``pin_texts`` writes them (a file's ``BBBB…BBB=`` is not
    rewritten to the canonical ``BBBB…BBA=``); without texts, canonical forms.
    """
    written = [t.strip() for t in pin_texts] or [str(p) for p in rule.pins]
    consequence = (
        "every connection to it is refused" if rule.enforce else "every connection is reported"
    )
    return Finding(
        "placeholder-pin",
        "error",
        f"{rule.pattern}: every pin is a placeholder ({', '.join(written)}), so no server key "
        f"can match and {consequence}",
        domain=rule.pattern,
        fix="pin the current key (pinset pin HOST) and an offline backup key (pinset keygen)",
        source=source,
        line=line,
    )


def make_policy(rules: Iterable[DomainRule], *, source: str | None) -> Policy:
    """Build a :class:`Policy` of ``rules``, locating any error it raises in ``source``."""
    try:
        return Policy(rules=tuple(rules), source=source)
    except PinsetError as exc:
        raise exc.with_location(source=source) from None


def rule_findings(
    rule: DomainRule,
    pin_texts: Sequence[str],
    *,
    source: str | None,
    line: int | None,
    pin_lines: Sequence[int | None] = (),
    expiration_fix: str | None = None,
    backup_needed: bool | None = None,
    single_pin_accepted: bool | None = None,
) -> list[Finding]:
    """What pinset's rules say about an imported rule its platform accepts.

    ``missing-backup-pin`` (fewer than two real pins where the platform enforces
    them: ``backup_needed``, by default ``rule.enforce``; an error when the file
    does not accept a single pin, ``single_pin_accepted=False``, a warning
    otherwise, which the audit raises for formats that cannot accept one),
    ``placeholder-pin`` (a warning per placeholder, or one error when every pin
    is one), ``non-canonical-pin`` (unpadded, prefixed or spaced spellings) and
    ``no-expiration`` (``expiration_fix`` says how to add one; ``None`` when the
    format has no expiration, which then yields an info finding saying so).
    Per-pin findings sit on ``pin_lines`` (aligned with ``pin_texts``) when given.
    """
    if rule.exclude:
        return []
    out: list[Finding] = []
    where: dict[str, Any] = {"domain": rule.pattern, "source": source, "line": line}
    written = _as_written(pin_texts, pin_lines, line)
    real = [p for p in rule.pins if not p.is_placeholder]
    if rule.placeholder_only:
        out.append(placeholder_only_finding(rule, pin_texts, source=source, line=line))
    elif (rule.enforce if backup_needed is None else backup_needed) and len(real) < 2:
        accepted = single_pin_accepted is not False
        out.append(
            Finding(
                "missing-backup-pin",
                "warning" if accepted else "error",
                f"{rule.pattern}: {len(real)} real pin{'' if len(real) == 1 else 's'} where "
                "the pins are enforced; losing that key locks every installed app out"
                + (" (the file accepts a single pin)" if single_pin_accepted else ""),
                fix="add the pin of an offline backup key (pinset keygen)",
                **where,
            )
        )
    for pin in rule.pins:
        text, pin_line = written.get(pin, (str(pin), line))
        if pin.is_placeholder and not rule.placeholder_only:
            out.append(
                Finding(
                    "placeholder-pin",
                    "warning",
                    f"{rule.pattern} lists the placeholder pin {text}: it matches no real key",
                    fix="replace it with the pin of a real offline backup key (pinset keygen)",
                    **{**where, "line": pin_line},
                )
            )
    for index, text in enumerate(pin_texts):
        if not is_canonical_pin_text(text.strip()) or text != text.strip():
            pin_line = pin_lines[index] if index < len(pin_lines) else line
            out.append(
                Finding(
                    "non-canonical-pin",
                    "warning",
                    f"{rule.pattern}: pin {text!r} is not written as padded standard base64",
                    fix=f"write it as {Pin.parse(text).b64}",
                    **{**where, "line": pin_line},
                )
            )
    if rule.expiration is None:
        out.append(
            Finding(
                "no-expiration",
                "info",
                f"{rule.pattern} has no expiration: the pins are enforced until the app is updated",
                fix=expiration_fix or "this format cannot expire pins; plan key rotation ahead",
                **where,
            )
        )
    return out


def _as_written(
    pin_texts: Sequence[str], pin_lines: Sequence[int | None], line: int | None
) -> dict[Pin, tuple[str, int | None]]:
    """Each pin's first spelling in ``pin_texts`` and its line (``line`` when not given)."""
    spelled: dict[Pin, tuple[str, int | None]] = {}
    for index, text in enumerate(pin_texts):
        try:
            pin = Pin.parse(text)
        except PinsetError:  # a spelling only the format reads (hex): keep the canonical form
            continue
        spelled.setdefault(
            pin, (text.strip(), pin_lines[index] if index < len(pin_lines) else line)
        )
    return spelled
