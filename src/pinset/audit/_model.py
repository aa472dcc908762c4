"""Values the auditor passes around: what a target held, the context of a run, the report.

A :class:`Subject` is one config the rules look at (a policy file, a platform
config, or the network security config inside an APK); an artefact with two
configs (an IPA with ATS and TrustKit settings) yields two subjects. Findings
are :class:`pinset.formats._model.Finding` values, shared with the importers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from pinset.ct import LogList
from pinset.formats._model import Finding, Imported, Severity
from pinset.policy import DomainRule
from pinset.status import ExitStatus

__all__ = [
    "ApkFacts",
    "AuditReport",
    "Context",
    "Finding",
    "LiveChain",
    "Severity",
    "Subject",
    "Unreadable",
]

SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True, slots=True)
class ApkFacts:
    """What the manifest and code of an APK say, beside its network security config.

    ``code_pins`` are the ``sha256/…`` strings found in ``classes*.dex``, as written
    (valid or not), with the dex file each came from.
    """

    path: str
    package: str | None = None
    debuggable: bool = False
    uses_cleartext: bool | None = None
    config_path: str | None = None
    code_pins: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Subject:
    """One config to audit: where it came from and what the importer made of it.

    ``imported`` is ``None`` when the config did not load (``error`` says why)
    or when an APK has no network security config. Where each rule and pin is
    written comes from the importer (``imported.lines``, ``imported.written``):
    the auditor never reads a config's text again.
    """

    target: str
    source: str
    imported: Imported | None = None
    error: Finding | None = None
    apk: ApkFacts | None = None

    @property
    def format(self) -> str | None:
        """The importer's format name (``"pinset"``, ``"android"``, …), if the config loaded."""
        return self.imported.format if self.imported is not None else None

    @property
    def lines(self) -> Mapping[str, int]:
        """The line of each rule (by pattern, and by name), as the importer found it."""
        return self.imported.lines if self.imported is not None else {}

    def where(self, rule: DomainRule | None) -> dict[str, Any]:
        """``domain``, ``source`` and ``line`` of ``rule`` (``None``: the whole config).

        The keyword arguments that place a :class:`Finding` (or a rotation verdict)
        on the rule; its line is looked up by pattern, then by name.
        """
        if rule is None:
            return {"domain": None, "source": self.source, "line": None}
        line = self.lines.get(rule.pattern, self.lines.get(rule.name))
        return {"domain": rule.pattern, "source": self.source, "line": line}


@dataclass(frozen=True, slots=True)
class LiveChain:
    """The chain a host served (or a file supplied) for one audited name.

    ``certificates`` are leaf first; ``error`` is set (and the chain empty) when
    the host could not be reached. ``origin`` says where it came from:
    ``host:port`` or the file name.
    """

    host: str
    origin: str
    certificates: tuple[x509.Certificate, ...] = ()
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Context:
    """The fixed inputs of one audit run: the time, the warning horizon, the chains.

    ``ct_logs`` is the CT log list ``ct-insufficient`` checks against (``None``: the
    default shipped list).
    """

    now: dt.datetime
    min_days: int = 30
    chains: Mapping[str, LiveChain] = field(default_factory=dict)
    ct_logs: LogList | None = None

    @property
    def horizon(self) -> dt.datetime:
        """``now`` plus ``min_days``: things ending before it are 'expiring'."""
        return self.now + dt.timedelta(days=self.min_days)


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A target the auditor could not read at all (missing file, not a zip, unknown format)."""

    target: str
    message: str
    hint: str | None = None


@dataclass(frozen=True, slots=True)
class AuditReport:
    """The outcome of :func:`pinset.audit.audit`.

    ``findings`` are sorted by source, domain, severity and id; ``domains`` lists
    every audited (source, domain) pair, also those without findings, so that
    reporters can show what passed. ``unreadable`` targets make the exit code 2.
    """

    findings: tuple[Finding, ...]
    domains: tuple[tuple[str, str], ...] = ()
    targets: tuple[str, ...] = ()
    unreadable: tuple[Unreadable, ...] = ()
    now: dt.datetime | None = None

    def count(self, severity: Severity) -> int:
        """How many findings have ``severity``."""
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def exit_code(self) -> int:
        """2 when a target could not be read, 1 when any finding is an error, else 0."""
        if self.unreadable:
            return int(ExitStatus.USAGE)
        return int(ExitStatus.CHECK_FAILED if self.count("error") else ExitStatus.OK)

    def summary(self) -> dict[str, object]:
        """Counts for the JSON and text reports."""
        return {
            "targets": len(self.targets),
            "domains": len(self.domains),
            "errors": self.count("error"),
            "warnings": self.count("warning"),
            "infos": self.count("info"),
            "unreadable": [u.target for u in self.unreadable],
            "exit_code": self.exit_code,
        }


def sort_key(finding: Finding) -> tuple[str, str, int, int, str, str]:
    """Order findings by file, domain, severity, line, id, message."""
    return (
        finding.source or "",
        finding.domain or "",
        SEVERITY_ORDER.get(finding.severity, 3),
        finding.line or 0,
        finding.id,
        finding.message,
    )
