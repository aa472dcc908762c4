"""Find the line of a key or array item in policy text, so errors can name file and line.

``tomllib`` and ``json`` return values without positions. Both scanners here run
only on text that already parsed, so they can be small: they track strings,
comments and brackets well enough to tell a table header from an array line and
to count the items of a multi-line ``pins = [...]``.
"""

from __future__ import annotations

import json as _json
import re
from dataclasses import dataclass, field

__all__ = ["Locator"]

Path = tuple[str | int, ...]


class Locator:
    """1-based line numbers of ``[defaults]``, each ``[[domain]]``, their keys and array items.

    ``index`` arguments select the n-th domain table; ``None`` selects ``[defaults]``.
    Every method returns ``None`` when the text is unknown or has no such thing.
    """

    def __init__(self, text: str | None, *, json: bool = False) -> None:
        self._keys: dict[Path, int] = {}
        self._values: dict[Path, int] = {}
        if not text:
            return
        try:
            if json:
                _JsonScan(text, self._keys, self._values).run()
            else:
                _toml_scan(text, self._keys, self._values)
        except (IndexError, ValueError):  # not the text that parsed; positions are a courtesy
            self._keys.clear()
            self._values.clear()

    def section(self, index: int | None) -> int | None:
        """Line of domain table ``index`` (``None``: the defaults table)."""
        if index is None:
            return self._keys.get(("defaults",))
        return self._values.get(("domain", index))

    def key(self, index: int | None, key: str) -> int | None:
        """Line of ``key`` inside domain ``index`` (``None``: defaults), else the section's line."""
        line = self._keys.get((*_table(index), key))
        return line if line is not None else self.section(index)

    def item(self, index: int | None, key: str, position: int) -> int | None:
        """Line of item ``position`` of the array ``key`` in that table, else the key's line."""
        line = self._values.get((*_table(index), key, position))
        return line if line is not None else self.key(index, key)

    def top(self, key: str) -> int | None:
        """Line of a top-level key or table ``key``."""
        return self._keys.get((key,))


def _table(index: int | None) -> Path:
    return ("defaults",) if index is None else ("domain", index)


# -- TOML -------------------------------------------------------------------------

_HEADER = re.compile(r"\[\[?\s*([A-Za-z0-9_.\-]+|\"[^\"]*\"|'[^']*')\s*\]\]?")


@dataclass(slots=True)
class _Container:
    kind: str  # "[" or "{"
    path: Path | None  # set for arrays whose items are counted
    count: int = 0
    expecting: bool = True


@dataclass(slots=True)
class _TomlState:
    table: Path = ()
    tables: dict[str, int] = field(default_factory=dict)


def _toml_scan(text: str, keys: dict[Path, int], values: dict[Path, int]) -> None:
    state = _TomlState()
    stack: list[_Container] = []
    line, i, n = 1, 0, len(text)
    key_start: int | None = None
    key_path: Path | None = None
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
            continue
        if c in " \t\r":
            i += 1
            continue
        if c == "#":
            i = _line_end(text, i)
            continue
        if not stack and key_path is None:
            # Statement position: a table header or the key of "key = value".
            if c == "[":
                end = _line_end(text, i)
                header = _HEADER.match(text, i, end)
                name = _unquote(header.group(1)) if header else ""
                if text.startswith("[[", i):
                    number = state.tables.get(name, -1) + 1
                    state.tables[name] = number
                    state.table = (name, number)
                    values.setdefault(state.table, line)
                else:
                    state.table = (name,)
                keys.setdefault((name,), line)
                i = end
                continue
            if key_start is None:
                key_start = i
            if c == "=":
                name = _unquote(text[key_start:i].strip())
                key_path = (*state.table, name)
                keys.setdefault(key_path, line)
                key_start = None
                i += 1
                continue
            if c in "\"'":
                i, line = _skip_string(text, i, line)
                continue
            i += 1
            continue
        # Inside a value.
        top = stack[-1] if stack else None
        if top is not None and top.kind == "[" and top.expecting and c != "]":
            top.expecting = False
            if top.path is not None:
                values[(*top.path, top.count)] = line
            top.count += 1
        if c in "\"'":
            i, line = _skip_string(text, i, line)
        elif c in "[{":
            path = key_path if (c == "[" and not stack) else None
            stack.append(_Container(c, path))
            i += 1
        elif c in "]}":
            if stack:
                stack.pop()
            i += 1
        elif c == ",":
            if top is not None and top.kind == "[":
                top.expecting = True
            i += 1
        else:
            i += 1
        if not stack and c in "]}\"'":
            key_path = None
        elif not stack and c not in "[{":
            # A bare scalar value ends at the end of its line.
            i = _line_end(text, i)
            key_path = None


def _line_end(text: str, i: int) -> int:
    end = text.find("\n", i)
    return len(text) if end < 0 else end


def _unquote(key: str) -> str:
    if len(key) >= 2 and key[0] == key[-1] and key[0] in "\"'":
        return key[1:-1]
    return key


def _skip_string(text: str, i: int, line: int) -> tuple[int, int]:
    """Index just past the string starting at ``i``, and the line it ends on."""
    quote = text[i]
    triple = text.startswith(quote * 3, i)
    j = i + (3 if triple else 1)
    closing = quote * 3 if triple else quote
    while j < len(text):
        if quote == '"' and text[j] == "\\":
            j += 2
            continue
        if text.startswith(closing, j):
            j += len(closing)
            # TOML allows one or two quotes right before a closing triple quote.
            extra = 0
            while triple and extra < 2 and j < len(text) and text[j] == quote:
                j += 1
                extra += 1
            break
        if not triple and text[j] == "\n":
            break
        j += 1
    return j, line + text.count("\n", i, j)


# -- JSON -------------------------------------------------------------------------

_JSON_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<punct>[{}\[\]:,])|(?P<scalar>[^\s{}\[\]:,"]+))',
    re.DOTALL,
)


class _JsonScan:
    """A recursive-descent walk over JSON tokens that records where keys and values start."""

    def __init__(self, text: str, keys: dict[Path, int], values: dict[Path, int]) -> None:
        self._keys = keys
        self._values = values
        self._tokens: list[tuple[str, str, int]] = []
        line, pos = 1, 0
        for match in _JSON_TOKEN.finditer(text):
            kind = match.lastgroup or ""
            start = match.start(kind)
            line += text.count("\n", pos, start)
            pos = start
            self._tokens.append((kind, match.group(kind), line))
        self._at = 0

    def run(self) -> None:
        self._value(())

    def _next(self) -> tuple[str, str, int]:
        token = self._tokens[self._at]
        self._at += 1
        return token

    def _value(self, path: Path) -> None:
        kind, text, line = self._next()
        self._values[path] = line
        if text == "{":
            while True:
                kind, text, line = self._next()
                if text == "}":
                    return
                if text == ",":
                    continue
                if kind != "string":
                    raise ValueError("expected a key")
                key = _json_key(text)
                self._keys[(*path, key)] = line
                if self._next()[1] != ":":
                    raise ValueError("expected ':'")
                self._value((*path, key))
        elif text == "[":
            position = 0
            while True:
                if self._tokens[self._at][1] == "]":
                    self._at += 1
                    return
                if self._tokens[self._at][1] == ",":
                    self._at += 1
                    continue
                self._value((*path, position))
                position += 1


def _json_key(token: str) -> str:
    key: str = _json.loads(token)
    return key
