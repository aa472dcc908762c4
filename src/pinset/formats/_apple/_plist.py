"""Property lists with the line of each key, for errors and findings that point at it.

Plists come back from :mod:`plistlib` without positions, so :class:`PlistText`
re-reads an XML plist with expat to map each key path to its line. Binary plists
have no lines: errors there name the key path instead.
"""

from __future__ import annotations

import plistlib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from xml.parsers import expat

from pinset.errors import ConfigError, PinsetError
from pinset.formats._importing import did_you_mean, make_policy, refuse_build_setting
from pinset.formats._model import Finding, Imported, PlatformDomain, WrittenPins
from pinset.pins import Pin
from pinset.policy import DomainRule

__all__ = ["MAX_PLIST_DEPTH", "KeyPath", "PlistText", "dump_plist", "is_plist", "key_path"]

KeyPath = tuple[str | int, ...]

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


@dataclass(frozen=True, slots=True)
class DomainEntry:
    """One domain of a plist's pinned domains, imported: its rule, facts, pins, findings."""

    rule: DomainRule
    facts: PlatformDomain
    written: WrittenPins | None
    findings: tuple[Finding, ...] = ()


def entries_imported(
    entries: Sequence[DomainEntry],
    fmt: str,
    source: str | None,
    *,
    findings: Sequence[Finding],
    platform: dict[str, Any],
) -> Imported:
    """The :class:`Imported` of a plist's domain entries: ``findings`` first, then theirs."""
    return Imported(
        make_policy([e.rule for e in entries], source=source),
        fmt,
        source,
        (*findings, *(f for e in entries for f in e.findings)),
        tuple(e.facts for e in entries),
        platform,
        lines={e.rule.pattern: e.facts.line for e in entries if e.facts.line is not None},
        written=tuple(e.written for e in entries if e.written is not None),
    )


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
            self._refuse_key_types()
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

    def refuse_duplicates(self, domains: KeyPath, where: str, hint: str | None = None) -> None:
        """Refuse a key written twice in a domain entry of the ``domains`` dictionary, or a
        domain written twice in it (plistlib keeps only the last one, silently)."""
        depth = len(domains)
        for path, dup_line in self.duplicates:
            if path[:depth] == domains and len(path) in (depth + 1, depth + 2):
                raise self.error(
                    f"key {path[-1]!r} appears twice{where.format(key_path(path[:-1]))}",
                    path,
                    hint=hint,
                ).with_location(line=dup_line)

    def domains(
        self,
        domains: KeyPath,
        entries: dict[str, Any],
        name_of: Callable[[KeyPath, str], str],
        hint: str | None = None,
    ) -> Iterator[tuple[KeyPath, str, Any]]:
        """``(path, canonical name, entry)`` of each domain of a pinned-domains dictionary.

        ``name_of(path, written)`` canonicalises a name; two spellings of one host
        are refused.
        """
        seen: dict[str, str] = {}
        for raw_name, entry in entries.items():
            path = (*domains, raw_name)
            name = name_of(path, raw_name)
            if name in seen:
                raise self.error(
                    f"domain {raw_name!r} is the same host as {seen[name]!r}", path, hint=hint
                )
            seen[name] = raw_name
            yield path, name, entry

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
        refuse_build_setting(text, source=self.source, line=line, key=key)
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

    def _refuse_key_types(self) -> None:
        """Refuse a dictionary key that is not a string: only binary plists can hold one.

        plistlib reads any object as a key of a binary plist's dictionary; CoreFoundation
        and an XML plist's ``<key>`` only have strings, and every reader here assumes so.
        """
        seen: set[int] = set()  # objects can be shared: visit each once
        stack = [self.root]
        while stack:
            value = stack.pop()
            if id(value) in seen or not isinstance(value, dict | list):
                continue
            seen.add(id(value))
            if isinstance(value, dict):
                for key in value:
                    if not isinstance(key, str):
                        raise ConfigError(
                            f"not a valid binary property list: a dictionary key is "
                            f"{type(key).__name__} {key!r}, not a string",
                            source=self.source,
                            hint="check the file with plutil -lint, or convert it: "
                            "plutil -convert xml1",
                        )
                stack.extend(value.values())
            else:
                stack.extend(value)

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
