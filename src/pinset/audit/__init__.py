"""Audit pin policies, platform configs, APKs and IPAs, optionally against live chains.

::

    report = pinset.audit.audit(["pinset.toml", "app.apk"], now=now, live=True)
    report.exit_code   # 0 clean, 1 an error-level finding, 2 a target could not be read

Rule ids, severities and fixes are in :mod:`pinset.audit._rules.catalog`, the checks
in :mod:`pinset.audit._rules`; reporters in :mod:`pinset.audit._output` (text, JSON,
SARIF, JUnit). Time is a parameter: the auditor never reads the clock.

Key rotation: :func:`check_rotation` says whether shipped pins accept a new key or
chain (``pinset rotate check``); :func:`plan_rotation` gives the staged, dated plan
(``pinset rotate plan``), with the collector's adoption numbers read by
:func:`adoption_from_json`.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from cryptography import x509

from pinset.audit._live import Endpoint, fetch_chains
from pinset.audit._model import (
    AuditReport,
    Context,
    Finding,
    LiveChain,
    Subject,
    Unreadable,
    sort_key,
)
from pinset.audit._plan import Adoption, Checks, Plan, Stage, adoption_from_json, plan_rotation
from pinset.audit._rotation import RotationVerdict, check_rotation
from pinset.audit._rules import RULES, Rule, check, imported_findings
from pinset.audit._zip import ArchiveLimits
from pinset.chain import load_chain, order_chain
from pinset.ct import LogList, load_log_list
from pinset.errors import ChainError
from pinset.hosts import canonical_host

__all__ = [
    "RULES",
    "Adoption",
    "ArchiveLimits",
    "AuditReport",
    "Checks",
    "Endpoint",
    "Finding",
    "LiveChain",
    "Plan",
    "RotationVerdict",
    "Rule",
    "Stage",
    "Subject",
    "adoption_from_json",
    "audit",
    "chain_from_file",
    "check_rotation",
    "imported_findings",
    "live_endpoints",
    "plan_rotation",
    "read_subjects",
]

Target = str | os.PathLike[str] | tuple[str, bytes]


def chain_from_file(host: str, path: str | os.PathLike[str]) -> LiveChain:
    """A :class:`LiveChain` for ``host`` from a PEM/DER/PKCS#7 file (leaf first after ordering)."""
    loaded = load_chain(path)
    if not loaded.certificates:
        raise ChainError(
            "the file holds no certificate",
            source=os.fspath(path),
            hint="give the chain the server will send: leaf first, then intermediates",
        )
    return LiveChain(
        canonical_host(host), os.fspath(path), certificates=order_chain(loaded.certificates)
    )


def read_subjects(
    targets: Iterable[Target], *, archive_limits: ArchiveLimits | None = None
) -> tuple[list[Subject], list[Unreadable], list[str]]:
    """Read every target: the configs found, the unreadable targets, and the target names.

    ``archive_limits`` bound what reading each APK or IPA may inflate.
    """
    # Imported here: the APK, IPA and plist readers are not needed by pinset import, which
    # uses this package only for the rules over what it imported.
    from pinset.audit._targets import read_target

    subjects: list[Subject] = []
    unreadable: list[Unreadable] = []
    names: list[str] = []
    for target in targets:
        if isinstance(target, tuple):
            name, data = target
        else:
            name = os.fspath(target)
            try:
                data = Path(name).read_bytes()
            except OSError as exc:
                names.append(name)
                unreadable.append(Unreadable(name, str(exc.strerror or exc)))
                continue
        names.append(name)
        result = read_target(data, name, limits=archive_limits)
        if isinstance(result, Unreadable):
            unreadable.append(result)
        else:
            subjects.extend(result)
    return subjects, unreadable, names


def live_endpoints(
    subjects: Iterable[Subject],
    *,
    hosts: Iterable[tuple[str, int]] = (),
    connect: Mapping[str, tuple[str, int]] | None = None,
    port: int = 443,
    skip: Iterable[str] = (),
) -> list[Endpoint]:
    """Where to fetch chains: each pinned rule's name (the apex of include-subdomains rules)
    plus ``hosts``; ``connect`` maps a name to the address and port to dial instead.

    One-label ``*.name`` rules have no name of their own to fetch; give one with ``hosts``.
    """
    connect = {canonical_host(k): v for k, v in (connect or {}).items()}
    skipped = {canonical_host(h) for h in skip}
    wanted: dict[str, int] = {}
    for subject in subjects:
        if subject.imported is None:
            continue
        for rule in subject.imported.policy.rules:
            if not rule.exclude and not rule.one_label:
                wanted.setdefault(rule.name, port)
    for host, host_port in hosts:
        wanted[canonical_host(host)] = host_port
    endpoints = []
    for name, name_port in wanted.items():
        if name in skipped:
            continue
        address, dial = connect.get(name, (name, name_port))
        endpoints.append(Endpoint(name, address, dial))
    return endpoints


def audit(
    targets: Sequence[Target],
    *,
    now: dt.datetime,
    min_days: int = 30,
    chains: Mapping[str, LiveChain | Sequence[x509.Certificate]] | None = None,
    live: bool = False,
    hosts: Iterable[tuple[str, int]] = (),
    connect: Mapping[str, tuple[str, int]] | None = None,
    port: int = 443,
    timeout: float = 10.0,
    concurrency: int = 64,
    cafile: str | os.PathLike[str] | None = None,
    on_live: Callable[[int], Callable[[LiveChain], None] | None] | None = None,
    archive_limits: ArchiveLimits | None = None,
    ct_log_list: LogList | str | os.PathLike[str] | None = None,
) -> AuditReport:
    """Audit ``targets`` (paths, or ``(name, bytes)`` pairs) at ``now`` (timezone-aware).

    ``chains`` supplies chains offline, by host name (they take precedence over
    live fetching). With ``live`` the chain of every pinned name and of each of
    ``hosts`` is fetched concurrently (``connect`` redirects a name to another
    address and port; SNI and name checks still use the name). ``on_live(n)``
    may return a callback called once per fetched chain (a progress bar).
    ``archive_limits`` bound what reading each APK or IPA may inflate (default:
    :class:`ArchiveLimits`, 50 MB per entry, 256 MB per archive, 100 dex files).
    ``ct_log_list`` is the CT log list ``ct-insufficient`` checks the chains of
    ``require-ct`` domains against: a :class:`~pinset.ct.LogList`, a v3 JSON file
    or a shipped list's name (``None``: the default shipped list); a list that
    cannot be read raises :class:`~pinset.errors.ConfigError` before anything runs.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    ct_logs = None if ct_log_list is None else load_log_list(ct_log_list)
    subjects, unreadable, names = read_subjects(targets, archive_limits=archive_limits)
    known = _supplied_chains(chains or {})
    if live:
        endpoints = live_endpoints(subjects, hosts=hosts, connect=connect, port=port, skip=known)
        callback = on_live(len(endpoints)) if on_live is not None else None
        known.update(
            fetch_chains(
                endpoints,
                timeout=timeout,
                concurrency=concurrency,
                cafile=cafile,
                on_done=callback,
            )
        )
    context = Context(now=now, min_days=min_days, chains=known, ct_logs=ct_logs)
    findings = [f for subject in subjects for f in check(subject, context)]
    return AuditReport(
        findings=tuple(sorted(dict.fromkeys(findings), key=sort_key)),
        domains=_audited_domains(subjects, findings),
        targets=tuple(names),
        unreadable=tuple(unreadable),
        now=now,
    )


def _supplied_chains(
    chains: Mapping[str, LiveChain | Sequence[x509.Certificate]],
) -> dict[str, LiveChain]:
    """Chains given offline, by canonical host name."""
    known: dict[str, LiveChain] = {}
    for host, value in chains.items():
        name = canonical_host(host)
        known[name] = (
            value
            if isinstance(value, LiveChain)
            else LiveChain(name, "supplied chain", certificates=tuple(value))
        )
    return known


def _audited_domains(
    subjects: Iterable[Subject], findings: Iterable[Finding]
) -> tuple[tuple[str, str], ...]:
    """Every (source, domain) audited: each pinned rule, and each domain a finding names."""
    domains: dict[tuple[str, str], None] = {}
    for subject in subjects:
        if subject.imported is not None:
            for rule in subject.imported.policy.rules:
                if not rule.exclude:
                    domains[(subject.source, rule.pattern)] = None
    for finding in findings:
        if finding.domain:
            domains.setdefault((finding.source or "", finding.domain), None)
    return tuple(sorted(domains))
