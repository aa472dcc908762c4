"""The demo's narration on a rich console: step headings, facts, verdicts and the summary.

Colour is rich's business: on a terminal the story is coloured, into a pipe or a file
(or with ``NO_COLOR``) the same words come out as plain text. Text that comes from
certificates or errors is printed with markup off, so a ``[`` in it stays a ``[``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

__all__ = ["Narrator"]


class Narrator:
    """Tells the demo's story on *console*; every method prints and returns nothing."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._step = 0

    def title(self, text: str, subtitle: str) -> None:
        """The opening banner."""
        self.console.print(
            Panel(Text(subtitle), title=Text(text, style="bold"), border_style="cyan", expand=False)
        )

    def step(self, heading: str) -> None:
        """Start the next numbered step."""
        self._step += 1
        self.console.print()
        self.console.rule(Text(f"{self._step}. {heading}", style="bold cyan"), align="left")

    def say(self, text: str) -> None:
        """A sentence of the story."""
        self.console.print(Text(text))

    def fact(self, label: str, value: str) -> None:
        """A labelled value (a pin, a URL, an issuer)."""
        line = Text("  ")
        line.append(f"{label}: ", style="dim")
        line.append(value, style="bold")
        self.console.print(line, soft_wrap=True)

    def good(self, text: str) -> None:
        """An outcome the demo expected."""
        self.console.print(Text("  ✔ ", style="bold green") + Text(text, style="green"))

    def bad(self, text: str) -> None:
        """An outcome the demo did not expect."""
        self.console.print(Text("  ✘ ", style="bold red") + Text(text, style="red"))

    def attack(self, text: str) -> None:
        """Something the attacker achieved (expected in the unpinned case, still alarming)."""
        self.console.print(Text("  ⚠ ", style="bold yellow") + Text(text, style="yellow"))

    def outcome(self, ok: bool, text: str) -> None:
        """:meth:`good` or :meth:`bad`, depending on *ok*."""
        (self.good if ok else self.bad)(text)

    def block(self, text: str, *, title: str, lexer: str | None = None) -> None:
        """A framed block of text: a file's contents, an error message."""
        body: Syntax | Text
        if lexer is not None:
            body = Syntax(text.rstrip("\n"), lexer, theme="ansi_dark", word_wrap=False)
        else:
            body = Text(text.rstrip("\n"))
        self.console.print(Panel(body, title=Text(title), title_align="left", expand=False))

    def error(self, exc: BaseException) -> None:
        """An exception a client raised, as its type and its (multi-line) message."""
        self.console.print(Text(f"  {type(exc).__name__}:", style="bold red"))
        for line in str(exc).splitlines():
            self.console.print(Text(f"    {line}", style="red"), soft_wrap=True)

    def rows(self, headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
        """A small table."""
        table = Table(*headers)
        for row in rows:
            table.add_row(*(Text(cell) for cell in row))
        self.console.print(table)

    def summary(self, rows: Iterable[tuple[str, str, str, bool]], seconds: float) -> None:
        """The closing table: step, expected, observed, ok; then the overall line."""
        table = Table(title=Text("Summary", style="bold"), show_lines=False)
        table.add_column("step", style="bold")
        table.add_column("expected")
        table.add_column("observed")
        table.add_column("ok", justify="center")
        all_ok = True
        for step, expected, observed, ok in rows:
            all_ok &= ok
            mark = Text("✔", style="bold green") if ok else Text("✘", style="bold red")
            table.add_row(Text(step), Text(expected), Text(observed), mark)
        self.console.print()
        self.console.print(table)
        if all_ok:
            self.console.print(
                Text(f"Every step behaved as expected ({seconds:.1f} s).", style="bold green")
            )
        else:
            self.console.print(
                Text(f"Some steps did not behave as expected ({seconds:.1f} s).", style="bold red")
            )
