"""JSON rendering of an :class:`~pinset.audit._model.AuditReport`, and where a finding is.

The document is
``{"findings": [{"id", "severity", "domain", "message", "fix", "location"}], "summary": {...}}``;
:func:`location` and :func:`split_source` are shared with the SARIF output.
"""

from __future__ import annotations

import json
from typing import Any

from pinset.audit._model import AuditReport, Finding

__all__ = ["location", "split_source", "to_json", "to_json_dict"]


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
