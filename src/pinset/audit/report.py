"""Text and JSON renderings of an :class:`~pinset.audit.model.AuditReport`.

Text groups findings by file, then by domain; colour comes from rich markup, so
a terminal gets it and a pipe or file gets plain text. JSON is
``{"findings": [{"id", "severity", "domain", "message", "fix", "location"}], "summary": {...}}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import groupby
from typing import Any

from rich.console import Console
from rich.markup import escape

from pinset.audit.model import AuditReport, Finding

__all__ = ["location", "render_text", "split_source", "to_json", "to_json_dict"]

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
_NO_DOMAIN = "(whole config)"


def split_source(source: str | None) -> tuple[str | None, str | None]:
    """``app.apk!/res/xml/a.xml`` → (``app.apk``, ``res/xml/a.xml``); plain files → (file, None)."""
    if source is None:
        return None, None
    outer, sep, inner = source.partition("!/")
    return (outer, inner) if sep else (source, None)


def location(finding: Finding) -> dict[str, Any] | None:
    """Where ``finding`` is: ``{"uri", "line", "column", "entry"}`` (entry: inside an APK/IPA)."""
    if finding.source is None:
        return None
    outer, inner = split_source(finding.source)
    out: dict[str, Any] = {"uri": outer, "line": finding.line, "column": finding.column}
    if inner is not None:
        out["entry"] = inner
    return out


def to_json_dict(report: AuditReport) -> dict[str, Any]:
    """The JSON document as a mapping."""
    return {
        "findings": [
            {
                "id": f.id,
                "severity": f.severity,
                "domain": f.domain,
                "message": f.message,
                "fix": f.fix,
                "location": location(f),
            }
            for f in report.findings
        ],
        "summary": report.summary(),
    }


def to_json(report: AuditReport) -> str:
    """The JSON document as text (indented, trailing newline)."""
    return json.dumps(to_json_dict(report), indent=2) + "\n"


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
