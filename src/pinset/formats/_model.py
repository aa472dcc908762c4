"""The one intermediate every format converts through.

A format module is pure, like :mod:`plistlib`::

    loads(data: str | bytes, *, source: str | None = None) -> Imported
    dumps(policy: Policy, **options) -> str | bytes
    sniff(data: bytes) -> bool          # does this look like my format?

``Imported.policy`` is what pinset enforces. What only the platform knows (trust
anchors, cleartext, debug overrides) travels beside it in ``Imported.domains`` /
``Imported.platform`` for the auditor; the pins as they were written, with their
lines and what the platform makes of them, in ``Imported.written``
(:class:`WrittenPins`); what only the platform rejects or ignores travels in
``Imported.findings``. Importers judge nothing else: the audit's rules
(:mod:`pinset.audit`) compute ``missing-backup-pin``, ``placeholder-pin``,
``non-canonical-pin`` and ``no-expiration`` from ``written``, once for every format.
Export never drops something silently: it raises :class:`ExportError`, or writes
the nearest safer equivalent and emits an :class:`ExportWarning` saying exactly
what differs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pinset.errors import ConfigError
from pinset.policy import Policy

__all__ = [
    "ExportError",
    "ExportWarning",
    "Finding",
    "Imported",
    "PlatformDomain",
    "Severity",
    "TrustAnchor",
    "TrustKitSettings",
    "WrittenPins",
]

Severity = Literal["error", "warning", "info"]


class ExportError(ConfigError):
    """The policy uses something the target format cannot express, with no safer equivalent."""


class ExportWarning(UserWarning):
    """The export wrote the nearest safer equivalent of something the format cannot express."""


@dataclass(frozen=True, slots=True)
class Finding:
    """Something an importer or auditor noticed. ``id`` is a stable audit rule id."""

    id: str
    severity: Severity
    message: str
    domain: str | None = None
    fix: str | None = None
    source: str | None = None
    line: int | None = None
    column: int | None = None


@dataclass(frozen=True, slots=True)
class TrustAnchor:
    """One trust anchor of a platform config: ``system``, ``user`` or ``@raw/name``."""

    src: str
    override_pins: bool = False
    line: int | None = None


@dataclass(frozen=True, slots=True)
class TrustKitSettings:
    """A TrustKit ``trustkit-config`` block (Android XML) or ``TSK*`` keys (Apple), as written.

    ``None`` means the attribute or key was absent and TrustKit's default applies:
    the default report URI is on, and enforcement is off on Android but on on iOS.
    """

    enforce_pinning: bool | None = None
    disable_default_report_uri: bool | None = None
    report_uris: tuple[str, ...] = ()
    line: int | None = None


@dataclass(frozen=True, slots=True)
class PlatformDomain:
    """Per-domain facts of a platform config that a :class:`Policy` does not carry.

    ``scope`` is where the facts apply: ``"domain"`` (a domain config),
    ``"base"`` (base-config) or ``"debug"`` (debug-overrides). ``pin_texts`` are
    the pins exactly as written (for the non-canonical-pin rule).
    Values are the *effective* ones, after inheritance from parent configs:
    ``cleartext_permitted`` is ``None`` when neither the config nor a parent
    sets it (the platform default depends on the app's target SDK).
    ``certificate_transparency`` is Android's ``<certificateTransparency enabled>``
    as Android applies it (``user`` or inline trust anchors turn an inherited one off;
    ``None``: not set); ``trustkit`` the TrustKit settings in effect, if any.
    ``expires_between`` is the platform's real expiry window for the pin-set's
    date: the earliest and latest UTC instants at which the platform stops
    enforcing it (see :func:`pinset.formats._expiry.expiration_window`).
    """

    name: str | None
    scope: Literal["domain", "base", "debug"] = "domain"
    include_subdomains: bool = False
    trust_anchors: tuple[TrustAnchor, ...] = ()
    cleartext_permitted: bool | None = None
    pin_texts: tuple[str, ...] = ()
    expiration_text: str | None = None
    line: int | None = None
    certificate_transparency: bool | None = None
    trustkit: TrustKitSettings | None = None
    expires_between: tuple[dt.datetime, dt.datetime] | None = None


@dataclass(frozen=True, slots=True)
class WrittenPins:
    """One pinned rule's pins as its file writes them, and what the platform makes of them.

    Facts, not judgements: the audit's as-written rules read them. ``pattern`` is
    the rule's pattern in :attr:`Imported.policy`, ``line`` where the rule is
    written; ``texts`` are the pins as written and ``lines`` the line of each
    (the rule's line when not given). ``prefix`` is what the format's canonical
    spelling writes before the padded base64 (``"sha256/"`` in pinset's own file).
    ``backup_needed`` says the platform enforces the pins whatever ``enforce``
    says (``None``: when the rule enforces); ``single_pin_accepted`` that the file
    says a single pin is accepted (``allow-single-pin``, Android's
    ``tools:ignore="MissingBackupPin"``). ``expiration_fix`` says how the format
    writes an expiration date (``None``: it has none), and ``lifetime`` what else
    bounds the pins' life (HPKP's ``max-age``), which makes a missing date no finding.
    """

    pattern: str
    line: int | None = None
    texts: tuple[str, ...] = ()
    lines: tuple[int | None, ...] = ()
    prefix: str = ""
    backup_needed: bool | None = None
    single_pin_accepted: bool = False
    expiration_fix: str | None = None
    lifetime: str | None = None


@dataclass(frozen=True, slots=True)
class Imported:
    """The result of reading a platform config: a policy plus what only the platform knows."""

    policy: Policy
    format: str
    source: str | None = None
    findings: tuple[Finding, ...] = ()
    domains: tuple[PlatformDomain, ...] = ()
    platform: Mapping[str, Any] = field(default_factory=dict)
    lines: Mapping[str, int] = field(default_factory=dict)  # rule pattern -> line in source
    written: tuple[WrittenPins, ...] = ()
