"""SARIF 2.1.0 rendering of an audit report, for code-scanning tools.

Each finding is a result whose physical location is the config file and line,
so a code-scanning UI annotates the line. A config inside an APK or IPA has no
file in the repository: the artifact is the ``.apk`` / ``.ipa`` itself and the
entry inside it (``res/xml/network_security_config.xml``) is a logical location.
"""

from __future__ import annotations

import json
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import PurePath, PureWindowsPath
from typing import Any
from urllib.parse import quote

from pinset.audit._model import AuditReport, Finding
from pinset.audit._output.json import split_source
from pinset.audit._rules import RULES

__all__ = ["to_sarif", "to_sarif_dict"]

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
_DOCS = "docs/audit.md"


def _version() -> str:
    try:
        return version("pinset")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


def _uri(path: str) -> str:
    """A relative path as a URI reference with '/' separators; absolute paths as file: URIs."""
    if PureWindowsPath(path).drive or os.path.isabs(path):
        return PurePath(os.path.abspath(path)).as_uri()
    return quote(path.replace(os.sep, "/"), safe="/:@-._~!$&'()*+,;=")


def _location(finding: Finding) -> dict[str, Any] | None:
    outer, inner = split_source(finding.source)
    if outer is None:
        return None
    physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(outer)}}
    if finding.line and inner is None:
        region: dict[str, Any] = {"startLine": finding.line}
        if finding.column:
            region["startColumn"] = finding.column
        physical["region"] = region
    out: dict[str, Any] = {"physicalLocation": physical}
    logical = []
    if inner is not None:
        name = inner + (f":{finding.line}" if finding.line else "")
        logical.append({"name": inner, "fullyQualifiedName": name, "kind": "resource"})
    if finding.domain:
        logical.append({"name": finding.domain, "kind": "value"})
    if logical:
        out["logicalLocations"] = logical
    return out


def _rules(report: AuditReport) -> list[dict[str, Any]]:
    ids = sorted({f.id for f in report.findings} | set(RULES))
    out = []
    for rule_id in ids:
        rule = RULES.get(rule_id)
        summary = rule.summary if rule else f"{rule_id} (reported by the format importer)"
        level = _LEVEL[rule.severity] if rule else "warning"
        descriptor: dict[str, Any] = {
            "id": rule_id,
            "name": "".join(part.title() for part in rule_id.split("-")),
            "shortDescription": {"text": summary},
            "defaultConfiguration": {"level": level},
        }
        if rule:
            descriptor["help"] = {
                "text": f"{summary}. Fix: {rule.fix}",
                "markdown": f"**{rule_id}**: {summary}.\n\nFix: {rule.fix}\n\nSee {_DOCS}.",
            }
        out.append(descriptor)
    return out


def to_sarif_dict(report: AuditReport) -> dict[str, Any]:
    """The SARIF log as a mapping."""
    rules = _rules(report)
    index = {rule["id"]: i for i, rule in enumerate(rules)}
    results = []
    for finding in report.findings:
        text = finding.message + (f" Fix: {finding.fix}" if finding.fix else "")
        result: dict[str, Any] = {
            "ruleId": finding.id,
            "ruleIndex": index[finding.id],
            "level": _LEVEL.get(finding.severity, "warning"),
            "message": {"text": text},
        }
        where = _location(finding)
        if where is not None:
            result["locations"] = [where]
        fingerprint = "|".join(
            (finding.id, finding.source or "", finding.domain or "", finding.message)
        )
        result["partialFingerprints"] = {"pinsetFinding/v1": fingerprint}
        results.append(result)
    for item in report.unreadable:
        results.append(
            {
                "ruleId": "config-error",
                "ruleIndex": index["config-error"],
                "level": "error",
                "message": {"text": f"cannot read {item.target}: {item.message}"},
                "locations": [
                    {"physicalLocation": {"artifactLocation": {"uri": _uri(item.target)}}}
                ],
            }
        )
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "pinset audit",
                        "version": _version(),
                        "rules": rules,
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def to_sarif(report: AuditReport) -> str:
    """The SARIF log as indented JSON text."""
    return json.dumps(to_sarif_dict(report), indent=2) + "\n"
