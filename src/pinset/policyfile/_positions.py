"""Find the line of a key or array item in policy text, so errors can name file and line.

``tomllib`` and ``json`` return values without positions. Both scanners here run
only on text that already parsed, so they can be small: they track strings,
comments and brackets well enough to tell a table header from an array line and
to count the items of a multi-line ``pins = [...]``.
"""

from __future__ import annotations

import json as _json
import re
from dataclasses import dataclass

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

    def named(self, table: str, key: str, position: int | None = None) -> int | None:
        """Line of ``key`` (or of its item ``position``) in the single table ``[table]``.

        Falls back to the key's line, then to the table header's.
        """
        if position is not None:
            line = self._values.get((table, key, position))
            if line is not None:
                return line
        line = self._keys.get((table, key))
        return line if line is not None else self._keys.get((table,))

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


class _TomlScan:
    """One pass over TOML text: statements (headers, ``key =``) and values, line by line.

    Records the line of each table header and key in ``keys`` and of each item
    of a top-level array value (``pins = [...]``) in ``values``.
    """

    def __init__(self, text: str, keys: dict[Path, int], values: dict[Path, int]) -> None:
        self.text = text
        self.keys = keys
        self.values = values
        self.table: Path = ()
        self.tables: dict[str, int] = {}  # [[name]] -> index of the last one
        self.stack: list[_Container] = []
        self.line = 1
        self.i = 0
        self.key_start: int | None = None
        self.key_path: Path | None = None

    def run(self) -> None:
        text, n = self.text, len(self.text)
        while self.i < n:
            c = text[self.i]
            if c == "\n":
                self.line += 1
                self.i += 1
            elif c in " \t\r":
                self.i += 1
            elif c == "#":
                self.i = _line_end(text, self.i)
            elif not self.stack and self.key_path is None:
                self.statement(c)
            else:
                self.value(c)

    def statement(self, c: str) -> None:
        """At statement position: a table header, or the key of ``key = value``."""
        if c == "[":
            self.header()
        elif self.key_start is None and c != "=":
            self.key_start = self.i
            self.statement_char(c)
        elif c == "=":
            start = self.i if self.key_start is None else self.key_start
            name = _unquote(self.text[start : self.i].strip())
            self.key_path = (*self.table, name)
            self.keys.setdefault(self.key_path, self.line)
            self.key_start = None
            self.i += 1
        else:
            self.statement_char(c)

    def statement_char(self, c: str) -> None:
        if c in "\"'":
            self.i, self.line = _skip_string(self.text, self.i, self.line)
        else:
            self.i += 1

    def header(self) -> None:
        """``[name]`` or ``[[name]]``: the table the following keys belong to."""
        end = _line_end(self.text, self.i)
        found = _HEADER.match(self.text, self.i, end)
        name = _unquote(found.group(1)) if found else ""
        if self.text.startswith("[[", self.i):
            number = self.tables.get(name, -1) + 1
            self.tables[name] = number
            self.table = (name, number)
            self.values.setdefault(self.table, self.line)
        else:
            self.table = (name,)
        self.keys.setdefault((name,), self.line)
        self.i = end

    def value(self, c: str) -> None:
        """Inside a value: count array items, skip strings, track brackets."""
        stack = self.stack
        top = stack[-1] if stack else None
        if top is not None and top.kind == "[" and top.expecting and c != "]":
            top.expecting = False
            if top.path is not None:
                self.values[(*top.path, top.count)] = self.line
            top.count += 1
        if c in "\"'":
            self.i, self.line = _skip_string(self.text, self.i, self.line)
        elif c in "[{":
            stack.append(_Container(c, self.key_path if (c == "[" and not stack) else None))
            self.i += 1
        else:
            if c in "]}" and stack:
                stack.pop()
            elif c == "," and top is not None and top.kind == "[":
                top.expecting = True
            self.i += 1
        if not stack and c in "]}\"'":
            self.key_path = None
        elif not stack and c not in "[{":
            # A bare scalar value ends at the end of its line.
            self.i = _line_end(self.text, self.i)
            self.key_path = None


def _toml_scan(text: str, keys: dict[Path, int], values: dict[Path, int]) -> None:
    _TomlScan(text, keys, values).run()


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
