"""The demo's narration on a rich console: step headings, facts, outcomes and the summary.

On a terminal the story is drawn: rules, panels, tables, coloured ✔ / ✘ marks. Into a
pipe, a file or a CI log it is told as plain lines instead, one outcome per line with
a word for its mark (``[ok]``, ``[FAIL]``, ``[attack]``), so a log shows every step's
outcome and ``grep FAIL`` finds the broken ones. Either way nothing is written that the
stream's encoding cannot hold (a CI runner on ASCII or cp1252 gets ``?`` for ``…``
instead of a crash after the first step). Text from certificates or errors is never
read as markup, so a ``[`` in it stays a ``[``.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

__all__ = ["Narrator"]

_GLYPHS = {"good": "✔", "bad": "✘", "attack": "⚠"}
_WORDS = {"good": "[ok]", "bad": "[FAIL]", "attack": "[attack]"}
_STYLES = {"good": "green", "bad": "red", "attack": "yellow"}


def _encodes(encoding: str, text: str) -> bool:
    try:
        codecs.encode(text, encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


class Narrator:
    """Tells the demo's story on *console*; every method prints and returns nothing.

    ``plain`` (default: the console is not a terminal) tells it as plain lines.
    """

    def __init__(self, console: Console, *, plain: bool | None = None) -> None:
        self.console = console
        self.plain = not console.is_terminal if plain is None else plain
        self._encoding = console.encoding
        self._glyphs = not self.plain and _encodes(self._encoding, "".join(_GLYPHS.values()))
        self._step = 0

    # -- output -----------------------------------------------------------------------

    def _safe(self, text: str) -> str:
        """*text* with what the stream cannot encode replaced by ``?``."""
        if _encodes(self._encoding, text):
            return text
        return text.encode(self._encoding, "replace").decode(self._encoding)

    def _line(self, text: str, style: str = "") -> None:
        self.console.print(Text(self._safe(text), style=style), soft_wrap=True)

    def _mark(self, kind: str, text: str) -> None:
        style = _STYLES[kind]
        if self._glyphs:
            line = Text(f"  {_GLYPHS[kind]} ", style=f"bold {style}")
            line.append(self._safe(text), style=style)
            self.console.print(line, soft_wrap=True)
        else:
            self._line(f"  {_WORDS[kind]} {text}", style)

    # -- the story --------------------------------------------------------------------

    def title(self, text: str, subtitle: str) -> None:
        """The opening banner."""
        if self.plain:
            self._line(f"{text}: {subtitle}", "bold")
            return
        self.console.print(
            Panel(
                Text(self._safe(subtitle)),
                title=Text(text, style="bold"),
                border_style="cyan",
                expand=False,
            )
        )

    def step(self, heading: str) -> None:
        """Start the next numbered step."""
        self._step += 1
        self.console.print()
        if self.plain:
            self._line(f"{self._step}. {heading}", "bold")
            return
        title = Text(self._safe(f"{self._step}. {heading}"), style="bold cyan")
        self.console.rule(title, align="left")

    def say(self, text: str) -> None:
        """A sentence of the story."""
        self._line(text)

    def fact(self, label: str, value: str) -> None:
        """A labelled value (a pin, a URL, an issuer)."""
        line = Text("  ")
        line.append(self._safe(f"{label}: "), style="dim")
        line.append(self._safe(value), style="bold")
        self.console.print(line, soft_wrap=True)

    def good(self, text: str) -> None:
        """An outcome the demo expected."""
        self._mark("good", text)

    def bad(self, text: str) -> None:
        """An outcome the demo did not expect."""
        self._mark("bad", text)

    def attack(self, text: str) -> None:
        """Something the attacker achieved (expected in the unpinned case, still alarming)."""
        self._mark("attack", text)

    def outcome(self, ok: bool, text: str) -> None:
        """:meth:`good` or :meth:`bad`, depending on *ok*."""
        (self.good if ok else self.bad)(text)

    def block(self, text: str, *, title: str, lexer: str | None = None) -> None:
        """A framed block of text: a file's contents, an error message."""
        body = self._safe(text.rstrip("\n"))
        if self.plain:
            self._line(f"--- {title}")
            for line in body.splitlines():
                self._line(line)
            self._line("---")
            return
        shown: Syntax | Text
        if lexer is not None:
            shown = Syntax(body, lexer, theme="ansi_dark", word_wrap=False)
        else:
            shown = Text(body)
        self.console.print(
            Panel(shown, title=Text(self._safe(title)), title_align="left", expand=False)
        )

    def error(self, exc: BaseException) -> None:
        """An exception a client raised, as its type and its (multi-line) message."""
        self._line(f"  {type(exc).__name__}:", "bold red")
        for line in str(exc).splitlines():
            self._line(f"    {line}", "red")

    def rows(self, headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
        """A small table (plain: columns aligned with spaces)."""
        if self.plain:
            self._columns([list(headers), *(list(row) for row in rows)])
            return
        table = Table(*headers)
        for row in rows:
            table.add_row(*(Text(self._safe(cell)) for cell in row))
        self.console.print(table)

    def _columns(self, lines: Sequence[Sequence[str]]) -> None:
        widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
        for line in lines:
            cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=True)]
            self._line("  " + "  ".join(cells).rstrip())

    def summary(self, rows: Iterable[tuple[str, str, str, bool]], seconds: float) -> None:
        """The closing table: step, expected, observed, ok; then the overall line.

        Plain: one line per step, ``[ok]`` or ``[FAIL]`` first.
        """
        rows = list(rows)
        all_ok = bool(rows) and all(ok for *_, ok in rows)
        self.console.print()
        if self.plain:
            self._line("Summary", "bold")
            for step, expected, observed, ok in rows:
                mark = _WORDS["good" if ok else "bad"]
                self._line(f"{mark} {step}: {observed} (expected: {expected})")
        else:
            table = Table(title=Text("Summary", style="bold"), show_lines=False)
            table.add_column("step", style="bold")
            table.add_column("expected")
            table.add_column("observed")
            table.add_column("ok", justify="center")
            for step, expected, observed, ok in rows:
                kind = "good" if ok else "bad"
                shown = _GLYPHS[kind] if self._glyphs else _WORDS[kind]
                cells = [Text(self._safe(cell)) for cell in (step, expected, observed)]
                table.add_row(*cells, Text(shown, style=f"bold {_STYLES[kind]}"))
            self.console.print(table)
        if all_ok:
            self._line(f"Every step behaved as expected ({seconds:.1f} s).", "bold green")
        else:
            self._line(f"Some steps did not behave as expected ({seconds:.1f} s).", "bold red")
