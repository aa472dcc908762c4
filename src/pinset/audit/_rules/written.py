"""Audit rules over the pins as a file writes them, the same for every format.

``missing-backup-pin``, ``placeholder-pin``, ``non-canonical-pin`` and
``no-expiration`` are computed here and nowhere else: from each pinned rule of
:attr:`Imported.policy <pinset.formats.Imported.policy>` and the facts its
importer recorded beside it (:class:`~pinset.formats.WrittenPins`: the pins as
written with their lines, and what the platform makes of them). Whether a pin
is a placeholder is :attr:`Pin.is_placeholder <pinset.pins.Pin.is_placeholder>`
alone. ``pinset import`` reports these findings too (:func:`written_findings`),
so an import and an audit of one file say the same thing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from pinset.audit._rules.catalog import finding
from pinset.errors import PinFormatError
from pinset.formats import Finding, Imported, WrittenPins
from pinset.pins import Pin, is_canonical_pin_text
from pinset.policy import DomainRule

__all__ = [
    "WRITTEN_RULES",
    "missing_backup_pin",
    "no_expiration",
    "non_canonical_pin",
    "placeholder_pin",
    "written_findings",
    "written_groups",
]

WrittenRule = Callable[[DomainRule, WrittenPins, str | None], Iterable[Finding]]


def missing_backup_pin(
    rule: DomainRule, written: WrittenPins, source: str | None
) -> Iterator[Finding]:
    """Fewer than two real pins where the platform enforces them.

    An error unless the file says it accepts a single pin (pinset's
    ``allow-single-pin``, Android's ``tools:ignore="MissingBackupPin"``).
    """
    backup_needed = rule.enforce if written.backup_needed is None else written.backup_needed
    real = [p for p in rule.pins if not p.is_placeholder]
    if rule.placeholder_only or rule.ct_only or not backup_needed or len(real) >= 2:
        return
    accepted = written.single_pin_accepted
    yield finding(
        "missing-backup-pin",
        f"{rule.pattern}: {len(real)} real pin{'' if len(real) == 1 else 's'} where the pins "
        "are enforced; losing that key locks every installed app out"
        + (" (the file accepts a single pin)" if accepted else ""),
        severity="warning" if accepted else "error",
        domain=rule.pattern,
        source=source,
        line=written.line,
    )


def placeholder_pin(
    rule: DomainRule, written: WrittenPins, source: str | None
) -> Iterator[Finding]:
    """A warning per placeholder pin; one error when every pin is one (no key can match).

    Pins are quoted as the file writes them (a file's ``BBBB…BBB=`` is not
    re-encoded to the canonical ``BBBB…BBA=``).
    """
    spelled = _as_written(written)
    if rule.placeholder_only:
        quoted = [t.strip() for t in written.texts] or [str(p) for p in rule.pins]
        consequence = (
            "every connection to it is refused" if rule.enforce else "every connection is reported"
        )
        yield finding(
            "placeholder-pin",
            f"{rule.pattern}: every pin is a placeholder ({', '.join(quoted)}), so no server key "
            f"can match and {consequence}",
            severity="error",
            fix="pin the current key (pinset pin HOST) and an offline backup key (pinset keygen)",
            domain=rule.pattern,
            source=source,
            line=written.line,
        )
        return
    for pin in rule.pins:
        if pin.is_placeholder:
            text, line = spelled.get(pin, (str(pin), written.line))
            yield finding(
                "placeholder-pin",
                f"{rule.pattern} lists the placeholder pin {text}: it matches no real key",
                domain=rule.pattern,
                source=source,
                line=line,
            )


def non_canonical_pin(
    rule: DomainRule, written: WrittenPins, source: str | None
) -> Iterator[Finding]:
    """Pins written unpadded, with spaces, or without the format's own prefix."""
    prefix = written.prefix
    for text, line in _texts(written):
        if text == text.strip() and is_canonical_pin_text(text) and text.startswith(prefix):
            continue
        try:
            pin = Pin.parse(text)
        except PinFormatError:  # a spelling only the format reads: nothing to rewrite
            continue
        shape = f"{prefix!r} + padded standard base64" if prefix else "padded standard base64"
        yield finding(
            "non-canonical-pin",
            f"{rule.pattern}: pin {text!r} is not written as {shape}",
            fix=f"write it as {prefix}{pin.b64}",
            domain=rule.pattern,
            source=source,
            line=line,
        )


def no_expiration(rule: DomainRule, written: WrittenPins, source: str | None) -> Iterator[Finding]:
    """No expiration date, where nothing else (HPKP's ``max-age``) bounds the pins' life."""
    if rule.expiration is not None or written.lifetime is not None:
        return
    what = "its CT requirement is" if rule.ct_only else "the pins are"
    yield finding(
        "no-expiration",
        f"{rule.pattern} has no expiration: {what} enforced until the app is updated",
        fix=written.expiration_fix or "this format cannot expire pins; plan key rotation ahead",
        domain=rule.pattern,
        source=source,
        line=written.line,
    )


WRITTEN_RULES: tuple[WrittenRule, ...] = (
    missing_backup_pin,
    placeholder_pin,
    non_canonical_pin,
    no_expiration,
)


def written_findings(imported: Imported) -> list[Finding]:
    """The as-written rules over every pinned rule of ``imported``, rule by rule in file order."""
    return [f for _, group in written_groups(imported) for f in group]


def written_groups(imported: Imported) -> Iterator[tuple[int | None, list[Finding]]]:
    """The as-written findings of each pinned rule, with the line the rule is written on."""
    rules = {rule.pattern: rule for rule in imported.policy.rules if not rule.exclude}
    for written in imported.written:
        rule = rules.get(written.pattern)
        if rule is not None:
            yield (
                written.line,
                [f for check in WRITTEN_RULES for f in check(rule, written, imported.source)],
            )


def _texts(written: WrittenPins) -> Sequence[tuple[str, int | None]]:
    """Each pin text with its line (the rule's line where the importer gave none)."""
    lines = written.lines
    return [
        (text, lines[index] if index < len(lines) else written.line)
        for index, text in enumerate(written.texts)
    ]


def _as_written(written: WrittenPins) -> dict[Pin, tuple[str, int | None]]:
    """Each pin's first spelling in the file and its line."""
    spelled: dict[Pin, tuple[str, int | None]] = {}
    for text, line in _texts(written):
        try:
            pin = Pin.parse(text)
        except PinFormatError:  # a spelling only the format reads: keep the canonical form
            continue
        spelled.setdefault(pin, (text.strip(), line))
    return spelled
