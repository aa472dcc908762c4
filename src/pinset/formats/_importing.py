"""Helpers the Apple, OkHttp and HPKP importers share.

Plists come back from :mod:`plistlib` without positions, so :class:`PlistText`
re-reads an XML plist with expat to map each key path to its line. Binary plists
have no lines: errors there name the key path instead. :func:`import_rule`
is how every importer turns a platform's domain entry into a rule: what the
platform accepts but pinset's own rules do not becomes a finding
(:func:`rule_findings`), never a refusal and never a silent drop.
"""

from __future__ import annotations

import datetime as dt
import difflib
import plistlib
import re
from collections.abc import Iterable, Sequence
from typing import Any
from xml.parsers import expat

from pinset.errors import ConfigError, PinsetError
from pinset.formats.model import Finding
from pinset.hosts import canonical_host
from pinset.pins import Pin, is_canonical_pin_text
from pinset.policy import DomainRule, Policy

__all__ = [
    "MAX_PLIST_DEPTH",
    "PlistText",
    "check_placeholder",
    "did_you_mean",
    "dump_plist",
    "host_name",
    "import_rule",
    "is_plist",
    "key_path",
    "make_policy",
    "make_rule",
    "parse_date",
    "placeholder_only_finding",
    "rule_findings",
]

KeyPath = tuple[str | int, ...]

# Xcode build settings ($(NAME), ${NAME}) and Gradle/shell style placeholders.
_PLACEHOLDER = re.compile(r"\$\{[^}]*\}|\$\([^)]*\)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Real Info.plists nest a handful of levels; this is far beyond any of them.
MAX_PLIST_DEPTH = 64


def key_path(path: KeyPath) -> str:
    """``('A', 'B', 0, 'C')`` → ``A/B[0]/C``, how errors name a key in a plist."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f"/{part}" if out else str(part))
    return out


def is_plist(data: bytes) -> bool:
    """True when ``data`` starts like a binary or an XML property list."""
    head = data.lstrip()[:512]
    return head.startswith(b"bplist") or b"<plist" in head or b"<!DOCTYPE plist" in head


def dump_plist(root: dict[str, Any], *, binary: bool) -> str | bytes:
    """``root`` as XML plist text, or as binary plist bytes with ``binary=True`` (keys sorted)."""
    if binary:
        return plistlib.dumps(root, fmt=plistlib.FMT_BINARY, sort_keys=True)
    return plistlib.dumps(root, fmt=plistlib.FMT_XML, sort_keys=True).decode("utf-8")


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
        if _DATE.fullmatch(value.strip()):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                pass
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


def _expat_line(exc: BaseException, offset: int) -> int | None:
    """The line expat was on when a plistlib handler raised ``exc``, if it can be found.

    plistlib's XML reader raises plain IndexError or AttributeError from inside
    expat callbacks, without a position; the callback's ``self`` still holds the
    expat parser, whose current line is where the structure broke. Best effort:
    ``None`` when the traceback does not have that shape.
    """
    tb = exc.__traceback__
    line: int | None = None
    while tb is not None:
        parser = getattr(tb.tb_frame.f_locals.get("self"), "parser", None)
        current = getattr(parser, "CurrentLineNumber", None)
        if isinstance(current, int) and current > 0:
            line = current + offset
        tb = tb.tb_next
    return line


class PlistText:
    """A plist read with :mod:`plistlib`, plus the line of each key path (XML only)."""

    def __init__(self, data: str | bytes, *, source: str | None) -> None:
        self.source = source
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        self.binary = raw.startswith(b"bplist")
        self._lines: dict[KeyPath, int] = {}
        self.duplicates: list[tuple[KeyPath, int]] = []
        self.findings: list[Finding] = []  # keys the platform does not read
        if self.binary:
            self.root = self._load(raw, plistlib.FMT_BINARY, 0)
            return
        # Hand-edited Info.plists sometimes indent the XML declaration, which
        # expat (and so plistlib) rejects; what precedes it is only whitespace.
        stripped = raw.lstrip()
        offset = raw[: len(raw) - len(stripped)].count(b"\n")
        self.root = self._load(stripped, plistlib.FMT_XML, offset)
        self._index(stripped, offset)

    def line(self, path: KeyPath) -> int | None:
        """Line of the key (or array element) at ``path``; ``None`` in binary plists."""
        while True:
            found = self._lines.get(path)
            if found is not None or not path:
                return found
            path = path[:-1]

    def error(self, message: str, path: KeyPath, hint: str | None = None) -> ConfigError:
        """A :class:`ConfigError` at ``path``: the line for XML, the key path always."""
        return ConfigError(
            message, source=self.source, line=self.line(path), key=key_path(path), hint=hint
        )

    def check_keys(
        self, entry: dict[Any, Any], path: KeyPath, known: Sequence[str], where: str
    ) -> None:
        """Note each key of ``entry`` (at ``path``) not in ``known`` as an ``ignored-key`` warning.

        TrustKit and iOS read their keys by name and skip any other one, so a typo
        takes the platform's default; the import does the same and says so.
        """
        for key in entry:
            if key not in known:
                self.findings.append(
                    Finding(
                        "ignored-key",
                        "warning",
                        f"unknown key {key_path((*path, key))} in {where} is ignored",
                        fix=did_you_mean(str(key), known),
                        source=self.source,
                        line=self.line((*path, key)),
                    )
                )

    def typo_hint(self, entry: dict[Any, Any], wanted: Sequence[str], default: str) -> str:
        """A did-you-mean for a key of ``entry`` close to a ``wanted`` one, else ``default``."""
        for key in entry:
            if key not in wanted:
                hint = did_you_mean(str(key), wanted)
                if hint.startswith("did you mean"):
                    return f"{key!r} is not read: {hint}"
        return default

    def pin(self, path: KeyPath, text: str, key: str) -> Pin:
        """``text`` at ``path`` as a :class:`Pin`; its errors name ``key`` if they name none."""
        line = self.line(path)
        check_placeholder(text, source=self.source, line=line, key=key)
        try:
            return Pin.parse(text, source=self.source, line=line)
        except PinsetError as exc:
            exc.key = exc.key or key
            raise

    def _load(self, raw: bytes, fmt: Any, offset: int) -> Any:
        try:
            return plistlib.loads(raw, fmt=fmt)
        except expat.ExpatError as exc:
            raise ConfigError(
                f"not a well-formed XML plist: {expat.errors.messages[exc.code]}",
                source=self.source,
                line=(exc.lineno or 0) + offset or None,
                column=None if exc.offset is None else exc.offset + 1,
                hint="fix the XML (plutil -lint Info.plist shows the same error)",
            ) from None
        except RecursionError:
            raise ConfigError(
                "the property list nests too deeply to read",
                source=self.source,
                hint="no Info.plist nests containers hundreds of levels deep; rebuild the file",
            ) from None
        except Exception as exc:
            # Besides its own InvalidFileException, plistlib lets ValueError, TypeError,
            # KeyError, IndexError, AttributeError, OverflowError... out of damaged files.
            kind = "binary" if fmt == plistlib.FMT_BINARY else "XML"
            where = re.search(r"at line (\d+)", str(exc))
            line = int(where.group(1)) + offset if where else _expat_line(exc, offset)
            hint = "check the file with plutil -lint, or convert it: plutil -convert xml1"
            if b"<!ENTITY" in raw and "entity" in str(exc).lower():
                # plistlib refuses entity declarations before expanding any of them.
                line = raw[: raw.index(b"<!ENTITY")].count(b"\n") + 1 + offset
                hint = "remove the <!ENTITY …> declarations: an Info.plist never needs them"
            detail = str(exc) if isinstance(exc, plistlib.InvalidFileException | ValueError) else ""
            raise ConfigError(
                f"not a valid {kind} property list: "
                + (detail or "its <dict>, <array> and <key> elements do not nest correctly"),
                source=self.source,
                line=line,
                hint=hint,
            ) from None

    def _index(self, raw: bytes, offset: int) -> None:
        parser = expat.ParserCreate()
        # Each open container: [path, is_dict, pending key, next array index, keys seen].
        stack: list[list[Any]] = []
        key_text: list[str] | None = None
        key_line = 0

        def start(name: str, _attrs: dict[str, str]) -> None:
            nonlocal key_text, key_line
            line = parser.CurrentLineNumber + offset
            if name == "plist":
                return
            if name == "key":
                key_text, key_line = [], line
                return
            path = self._child_path(stack, line)
            if name in ("dict", "array"):
                if len(stack) >= MAX_PLIST_DEPTH:
                    # Key paths grow with depth, so indexing a deep file costs depth².
                    raise ConfigError(
                        f"the property list nests containers more than {MAX_PLIST_DEPTH} deep",
                        source=self.source,
                        line=line,
                        hint="no Info.plist nests that deeply; rebuild the file",
                    )
                stack.append([path, name == "dict", None, 0, set()])

        def end(name: str) -> None:
            nonlocal key_text
            if name == "key" and key_text is not None and stack:
                key = "".join(key_text)
                frame = stack[-1]
                frame[2] = key
                path = (*frame[0], key)
                if key in frame[4]:
                    self.duplicates.append((path, key_line))
                frame[4].add(key)
                self._lines[path] = key_line
                key_text = None
            elif name in ("dict", "array") and stack:
                stack.pop()

        def text(data: str) -> None:
            if key_text is not None:
                key_text.append(data)

        parser.StartElementHandler = start
        parser.EndElementHandler = end
        parser.CharacterDataHandler = text
        try:
            parser.Parse(raw, True)
        except expat.ExpatError:  # plistlib accepted it; positions are a courtesy
            return

    def _child_path(self, stack: list[list[Any]], line: int) -> KeyPath:
        if not stack:
            # The root value: errors about a missing top-level key point here.
            self._lines.setdefault((), line)
            return ()
        frame = stack[-1]
        if frame[1]:
            path: KeyPath = (*frame[0], frame[2] if frame[2] is not None else "")
            self._lines.setdefault(path, line)
            return path
        path = (*frame[0], frame[3])
        frame[3] += 1
        self._lines[path] = line
        return path
