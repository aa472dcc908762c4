"""Find the line of a key in policy text, so errors can name file and line.

``tomllib`` and ``json`` return values without positions; policy files are small
and regular, so a scan of the text for the section and key is enough.
"""

from __future__ import annotations

import re

__all__ = ["Locator"]


class Locator:
    """Line numbers (1-based) of ``[defaults]``, each ``[[domain]]`` and keys within them."""

    def __init__(self, text: str | None, *, json: bool = False) -> None:
        self._lines = text.splitlines() if text else []
        self._json = json
        self._domains: list[int] = []
        self._defaults: int | None = None
        if not self._lines:
            return
        if json:
            for number, line in enumerate(self._lines, 1):
                if re.search(r'"name"\s*:', line):
                    self._domains.append(number)
                if self._defaults is None and re.search(r'"defaults"\s*:', line):
                    self._defaults = number
            return
        for number, line in enumerate(self._lines, 1):
            stripped = line.strip()
            if re.fullmatch(r"\[\[\s*domain\s*\]\](\s*#.*)?", stripped):
                self._domains.append(number)
            elif re.fullmatch(r"\[\s*defaults\s*\](\s*#.*)?", stripped):
                self._defaults = number

    def section(self, index: int | None) -> int | None:
        """Line of domain table ``index`` (``None``: the defaults table)."""
        if index is None:
            return self._defaults
        if 0 <= index < len(self._domains):
            return self._domains[index]
        return None

    def key(self, index: int | None, key: str) -> int | None:
        """Line of ``key`` inside domain ``index`` (``None``: defaults), else the section's line."""
        start = self.section(index)
        if start is None:
            return None
        if self._json:
            # JSON domains are located by their "name" line; keys may come before it.
            lo = max(0, start - 12)
            pattern = re.compile(rf'"{re.escape(key)}"\s*:')
        else:
            lo = start
            pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
        following = [n for n in self._domains if n > start]
        hi = following[0] - 1 if following else len(self._lines)
        best: int | None = None
        for number in range(lo + 1 if not self._json else lo + 1, hi + 1):
            if pattern.search(self._lines[number - 1]):
                best = number
                if not self._json or number >= start:
                    break
        return best if best is not None else start
