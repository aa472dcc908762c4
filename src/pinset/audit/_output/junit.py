"""JUnit XML rendering: one test case per audited domain, a failure per error finding.

CI systems that show JUnit results then list every pinned domain as a passed or
failed test. Warnings and infos go into ``system-out`` of their test case;
findings that name no domain form a ``(whole config)`` case of their file.
"""

from __future__ import annotations

from collections import defaultdict
from xml.etree import ElementTree as ET

from pinset.audit._model import AuditReport, Finding

__all__ = ["to_junit"]


def _line(finding: Finding) -> str:
    where = f" (line {finding.line})" if finding.line else ""
    fix = f"\n  fix: {finding.fix}" if finding.fix else ""
    return f"{finding.severity} {finding.id}{where}: {finding.message}{fix}"


def to_junit(report: AuditReport) -> str:
    """The report as a JUnit XML document (text, with an XML declaration)."""
    cases: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for source, domain in report.domains:
        cases[(source, domain)]
    for finding in report.findings:
        cases[(finding.source or "", finding.domain or "(whole config)")].append(finding)
    suite = ET.Element(
        "testsuite",
        name="pinset audit",
        tests=str(len(cases) + len(report.unreadable)),
        failures=str(sum(1 for fs in cases.values() if any(f.severity == "error" for f in fs))),
        errors=str(len(report.unreadable)),
        skipped="0",
    )
    if report.now is not None:
        suite.set("timestamp", report.now.replace(tzinfo=None).isoformat(timespec="seconds"))
    for (source, domain), findings in sorted(cases.items()):
        case = ET.SubElement(suite, "testcase", classname=source or "pinset", name=domain)
        errors = [f for f in findings if f.severity == "error"]
        if errors:
            failure = ET.SubElement(
                case,
                "failure",
                message="; ".join(sorted({f.id for f in errors})),
                type="error",
            )
            failure.text = "\n".join(_line(f) for f in errors)
        others = [f for f in findings if f.severity != "error"]
        if others:
            ET.SubElement(case, "system-out").text = "\n".join(_line(f) for f in others)
    for item in report.unreadable:
        case = ET.SubElement(suite, "testcase", classname=item.target, name="(read)")
        ET.SubElement(case, "error", message=item.message, type="unreadable").text = (
            item.hint or item.message
        )
    ET.indent(suite)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
    )
