"""``pinset import FILE [--format F] [-o pinset.toml] [--json]``: read a platform config.

The format is detected from the content unless ``--format`` names it. The
policy is printed (or written atomically with ``-o``) as ``pinset.toml``; what
the importer noticed (user CAs, ignored elements, …) and what the audit's rules
say of the pins as written (single pins, placeholders, …) goes to stderr as
``severity: file:line: message [id]``. ``--json`` prints
``{"format", "policy", "findings"}`` on stdout instead.
"""

from __future__ import annotations

import json

import click

from pinset import formats, policyfile
from pinset.audit import imported_findings
from pinset.cli._app import SectionedCommand
from pinset.cli._files import load_input, write_atomically
from pinset.cli._options import format_option, json_option, output_option
from pinset.cli._output import print_json
from pinset.formats._model import Finding
from pinset.status import ExitStatus

__all__ = ["command", "finding_dict", "finding_line"]


def finding_dict(finding: Finding) -> dict[str, object]:
    """A finding as JSON-ready data (``location`` is ``file:line`` when known)."""
    location = None
    if finding.source:
        location = finding.source + (f":{finding.line}" if finding.line is not None else "")
    return {
        "id": finding.id,
        "severity": finding.severity,
        "domain": finding.domain,
        "message": finding.message,
        "fix": finding.fix,
        "location": location,
        "line": finding.line,
    }


def finding_line(finding: Finding) -> str:
    """``warning: file:12: message [id]`` followed by the fix, for people."""
    where = finding.source or ""
    if finding.line is not None:
        where += f":{finding.line}"
    text = f"{finding.severity}: {where + ': ' if where else ''}{finding.message} [{finding.id}]"
    if finding.fix:
        text += f"\n  fix: {finding.fix}"
    return text


_EPILOG = """\b
Examples:
  pinset import res/xml/network_security_config.xml -o pinset.toml
  pinset import Info.plist --json
  pinset import CertificatePinner.kt --format okhttp
  curl -sI https://127.0.0.1:8443/ | pinset import - --host api.example.com

\b
Exit status: 0 imported (findings on stderr), 2 the file cannot be read or parsed."""


@click.command(
    "import",
    cls=SectionedCommand,
    epilog=_EPILOG,
    sections={
        "Input": ["fmt", "host"],
        "Output": ["output", "as_json"],
    },
)
@click.argument("file")
@format_option(
    required=False,
    help="Input format (detected from the content when omitted): "
    + ", ".join(formats.FORMATS)
    + ".",
)
@output_option(help="Write the policy TOML here (atomically) instead of stdout.")
@click.option(
    "--host",
    default=None,
    help="The host an HPKP header pins (when the file has no 'Host:' line).",
)
@json_option(help="Print format, policy and findings as JSON.")
def command(file: str, fmt: str | None, output: str | None, host: str | None, as_json: bool) -> int:
    """Read a platform pinning config into a pinset policy.

    FILE is an Android network security config, a TrustKit or ATS Info.plist,
    OkHttp CertificatePinner code, an HPKP header or a pinset policy; - reads
    standard input. What the importer noticed, and what the audit's rules say of
    the pins as written, goes to stderr as findings.
    """
    if fmt is not None:
        formats.get(fmt)  # an unknown --format fails (with a suggestion) before reading
    options = {"host": host} if host is not None else {}
    imported = load_input(file, fmt, **options)
    findings = imported_findings(imported)
    toml = policyfile.dumps(imported.policy)
    if output is not None:
        write_atomically(output, toml.encode("utf-8"))
    if as_json:
        print_json(
            {
                "format": imported.format,
                "policy": json.loads(policyfile.dumps(imported.policy, format="json")),
                "findings": [finding_dict(f) for f in findings],
            }
        )
        return int(ExitStatus.OK)
    for finding in findings:
        click.echo(finding_line(finding), err=True)
    if output is None:
        click.echo(toml, nl=False)
    return int(ExitStatus.OK)
