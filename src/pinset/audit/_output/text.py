"""Text rendering of an :class:`~pinset.audit._model.AuditReport`.

Findings are grouped by file, then by domain; colour comes from rich markup, so
a terminal gets it and a pipe or file gets plain text.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby

from rich.console import Console
from rich.markup import escape

from pinset.audit._model import AuditReport, Finding

__all__ = ["render_text"]

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
_NO_DOMAIN = "(whole config)"


def _where(finding: Finding) -> str:
    return f"line {finding.line}" if finding.line else ""


def _lines(report: AuditReport) -> Iterator[str]:
    for source, group in groupby(report.findings, key=lambda f: f.source or ""):
        yield f"[bold]{escape(source or '(no file)')}[/bold]"
        items = sorted(group, key=lambda f: f.domain or "")
        for domain, in_domain in groupby(items, key=lambda f: f.domain or ""):
            yield f"  [bold]{escape(domain or _NO_DOMAIN)}[/bold]"
            for finding in in_domain:
                style = _STYLE.get(finding.severity, "")
                where = _where(finding)
                head = f"    [{style}]{finding.severity:<7}[/{style}] {escape(finding.id)}" + (
                    f" ({where})" if where else ""
                )
                yield head
                yield f"      {escape(finding.message)}"
                if finding.fix:
                    yield f"      [dim]fix: {escape(finding.fix)}[/dim]"
    for item in report.unreadable:
        yield f"[bold red]cannot read {escape(item.target)}[/bold red]: {escape(item.message)}"
        if item.hint:
            yield f"  [dim]fix: {escape(item.hint)}[/dim]"
    clean = sorted(
        {d for d in report.domains} - {(f.source or "", f.domain or "") for f in report.findings}
    )
    if clean:
        yield ""
        yield (
            f"[green]no findings[/green] for {len(clean)} domain{'s' if len(clean) != 1 else ''}: "
            + escape(", ".join(domain for _source, domain in clean))
        )
    s = report.summary()
    yield ""
    verdict = (
        "[bold red]FAILED[/bold red]" if report.exit_code else "[bold green]passed[/bold green]"
    )
    yield (
        f"{verdict}: {s['errors']} error(s), {s['warnings']} warning(s), {s['infos']} info "
        f"in {s['targets']} target(s), {s['domains']} domain(s)"
    )


def render_text(report: AuditReport, console: Console) -> None:
    """Print the text report on ``console`` (colour only if the console is a terminal)."""
    for line in _lines(report):
        console.print(line, highlight=False, soft_wrap=True)
