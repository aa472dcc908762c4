"""iOS App Transport Security pinning: ``NSAppTransportSecurity/NSPinnedDomains`` in Info.plist.

Each pinned domain lists ``NSPinnedCAIdentities`` and/or ``NSPinnedLeafIdentities``,
arrays of ``{SPKI-SHA256-BASE64: <base64>}``, and may set ``NSIncludesSubdomains``.
Apple applies ``NSIncludesSubdomains`` to names *one* label below the domain only;
pinset's ``include-subdomains`` covers every depth, so export warns about it.

``NSExceptionDomains/<name>/NSRequiresCertificateTransparency = true`` is read as
``require-ct`` on the domain: its pinned rule, or a CT-only rule (no pins) when the
domain is not pinned. Apple calls the key obsolete (iOS enforces its CT policy on
every publicly trusted certificate since iOS 12.1.1) and says not to use it, so
export never writes it; a CT-only rule is left out of ``NSPinnedDomains`` with a
warning (:func:`pinset.formats.dumps`).

ATS has no expiration, no report-only mode, no report URIs and no exclusions.
Export writes pins without an expiration (with a warning: iOS keeps enforcing
them), drops report URIs (with a warning: nothing is reported), and refuses
report-only rules and exclusions (:class:`ExportError`): turning monitoring into
enforcement, or pinning a carved-out host, could lock users out.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Mapping
from typing import Any, Literal

from pinset.formats._apple._one_label import one_label_as_subdomains
from pinset.formats._apple._plist import (
    DomainEntry,
    KeyPath,
    PlistText,
    dump_plist,
    entries_imported,
    is_plist,
)
from pinset.formats._importing import host_name, import_rule
from pinset.formats._model import (
    ExportError,
    ExportWarning,
    Finding,
    Imported,
    PlatformDomain,
    WrittenPins,
)
from pinset.pins import Pin
from pinset.policy import DomainRule, Policy

__all__ = ["FORMAT", "dumps", "loads", "sniff"]

FORMAT = "ios-ats"
ATS = "NSAppTransportSecurity"
PINNED = "NSPinnedDomains"
INCLUDES = "NSIncludesSubdomains"
CA = "NSPinnedCAIdentities"
LEAF = "NSPinnedLeafIdentities"
SPKI = "SPKI-SHA256-BASE64"
EXCEPTIONS = "NSExceptionDomains"
REQUIRES_CT = "NSRequiresCertificateTransparency"
_DOMAIN_KEYS = (INCLUDES, CA, LEAF)
_DOMAINS: KeyPath = (ATS, PINNED)
_KINDS: dict[str, Literal["ca", "leaf"]] = {CA: "ca", LEAF: "leaf"}
_BARE_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")

Identities = Literal["ca", "leaf"] | Mapping[str, Mapping[str, str]]


def sniff(data: bytes) -> bool:
    """True for an XML or binary plist that carries ``NSPinnedDomains``."""
    return is_plist(data) and PINNED.encode() in data


def loads(data: str | bytes, *, source: str | None = None) -> Imported:
    """Read the ATS pins of an Info.plist (XML or binary) into a policy.

    Pins from both identity arrays join the rule's pins; which array each came
    from is kept in ``platform["identities"]`` (domain → pin text → ``"ca"`` or
    ``"leaf"``) so :func:`dumps` can write them back where they were.
    """
    plist = PlistText(data, source=source)
    pinned = _pinned_domains(plist)
    ct_domains = _ct_domains(plist)
    if pinned is None and not ct_domains:
        finding = Finding(
            "no-pinned-domains",
            "info",
            f"the plist has no {ATS}/{PINNED}: ATS pins nothing",
            source=source,
        )
        return Imported(Policy(source=source), FORMAT, source, findings=(finding,))
    plist.refuse_duplicates(
        _DOMAINS, " in {}", hint="merge the two entries; iOS keeps only the last one"
    )

    def name_of(path: KeyPath, raw: str) -> str:
        return host_name(raw, source=source, line=plist.line(path), key=PINNED)

    domains = plist.domains(_DOMAINS, pinned or {}, name_of, hint="merge the two entries into one")
    entries, identities = [], {}
    for path, name, entry in domains:
        read, identities[name] = _read_entry(plist, path, name, entry)
        entries.append(read)
    entries = _with_ct(plist, entries, ct_domains)
    platform = {"identities": identities, "binary": plist.binary}
    return entries_imported(entries, FORMAT, source, findings=plist.findings, platform=platform)


def _pinned_domains(plist: PlistText) -> dict[str, Any] | None:
    """The ``NSPinnedDomains`` dictionary; ``None`` when the plist has none."""
    root = plist.root
    if not isinstance(root, dict):
        raise plist.error("the plist root must be a dictionary (an Info.plist)", ())
    ats = root.get(ATS, {})
    if not isinstance(ats, dict):
        raise plist.error(f"{ATS} must be a dictionary", (ATS,))
    pinned = ats.get(PINNED)
    if pinned is not None and not isinstance(pinned, dict):
        raise plist.error(f"{PINNED} must be a dictionary of domain names", _DOMAINS)
    return pinned


def _ct_domains(plist: PlistText) -> dict[str, tuple[bool, int | None]]:
    """Domains of ``NSExceptionDomains`` with ``NSRequiresCertificateTransparency`` true.

    Name → (its ``NSIncludesSubdomains``, line). The other exception keys are not
    pinning and are not read.
    """
    root = plist.root
    ats = root.get(ATS, {}) if isinstance(root, dict) else {}
    exceptions = ats.get(EXCEPTIONS) if isinstance(ats, dict) else None
    if exceptions is None:
        return {}
    if not isinstance(exceptions, dict):
        raise plist.error(f"{EXCEPTIONS} must be a dictionary of domain names", (ATS, EXCEPTIONS))
    found: dict[str, tuple[bool, int | None]] = {}
    for raw, entry in exceptions.items():
        if not isinstance(entry, dict) or REQUIRES_CT not in entry:
            continue
        path: KeyPath = (ATS, EXCEPTIONS, raw)
        value = entry[REQUIRES_CT]
        if not isinstance(value, bool):
            raise plist.error(f"{REQUIRES_CT} must be <true/> or <false/>", (*path, REQUIRES_CT))
        include = entry.get(INCLUDES, False)
        if not isinstance(include, bool):
            raise plist.error(f"{INCLUDES} must be <true/> or <false/>", (*path, INCLUDES))
        if value:
            name = host_name(raw, source=plist.source, line=plist.line(path), key=EXCEPTIONS)
            found[name] = (include, plist.line((*path, REQUIRES_CT)))
    return found


def _with_ct(
    plist: PlistText, entries: list[DomainEntry], ct_domains: dict[str, tuple[bool, int | None]]
) -> list[DomainEntry]:
    """``entries`` with ``require_ct`` set from ``NSRequiresCertificateTransparency``.

    A pinned domain keeps its pins and requires CT too; a domain that is not pinned
    becomes a CT-only rule. Each gets an info finding: Apple calls the key obsolete.
    """
    out: list[DomainEntry] = []
    for entry in entries:
        if entry.rule.name in ct_domains:
            rule = dataclasses.replace(entry.rule, require_ct=True)
            entry = dataclasses.replace(entry, rule=rule)
        out.append(entry)
    pinned = {entry.rule.name for entry in entries}
    for name, (include, line) in sorted(ct_domains.items()):
        if name not in pinned:
            rule = DomainRule(name, include_subdomains=include, require_ct=True)
            facts = PlatformDomain(name, include_subdomains=include, line=line)
            out.append(DomainEntry(rule, facts, None))
        plist.findings.append(
            Finding(
                "ats-ct-key-obsolete",
                "info",
                f"{REQUIRES_CT} on {name} is read as require-ct"
                + ("" if name in pinned else " (a CT-only rule: the domain is not pinned)")
                + "; Apple calls the key obsolete: iOS enforces its CT policy on every "
                "publicly trusted certificate since iOS 12.1.1, so export does not write it",
                domain=name,
                fix=f"remove {REQUIRES_CT}; keep require-ct in the pinset policy",
                source=plist.source,
                line=line,
            )
        )
    return out


def _read_entry(
    plist: PlistText, path: KeyPath, name: str, entry: Any
) -> tuple[DomainEntry, dict[str, str]]:
    """One pinned domain: its rule, facts and pins, and which array each pin came from."""
    line = plist.line(path)
    rule, texts, kinds, written = _read_domain(plist, path, name, entry)
    facts = PlatformDomain(
        name, include_subdomains=rule.include_subdomains, pin_texts=texts, line=line
    )
    if not rule.include_subdomains:
        return DomainEntry(rule, facts, written), kinds
    depth = Finding(
        "ats-subdomain-depth",
        "info",
        f"iOS applies {name}'s pins to names one label below it only; "
        "pinset enforces them at every depth",
        domain=name,
        fix=f"add NSPinnedDomains entries for deeper names of {name} the app uses",
        source=plist.source,
        line=line,
    )
    return DomainEntry(rule, facts, written, (depth,)), kinds


def _read_domain(
    plist: PlistText, path: KeyPath, name: str, entry: Any
) -> tuple[DomainRule, tuple[str, ...], dict[str, str], WrittenPins]:
    if not isinstance(entry, dict):
        raise plist.error(f"the entry for {name} must be a dictionary", path)
    plist.check_keys(entry, path, _DOMAIN_KEYS, f"the {PINNED} entry for {name}")
    include = entry.get(INCLUDES, False)
    if not isinstance(include, bool):
        raise plist.error(f"{INCLUDES} must be <true/> or <false/>", (*path, INCLUDES))
    texts: list[str] = []
    pins: list[Pin] = []
    kinds: dict[str, str] = {}
    for array_key in (CA, LEAF):
        if array_key not in entry:
            continue
        items = entry[array_key]
        if not isinstance(items, list):
            raise plist.error(f"{array_key} must be an array of dictionaries", (*path, array_key))
        for index, item in enumerate(items):
            item_path = (*path, array_key, index)
            text = _identity_text(plist, item_path, item)
            pin = _parse_pin(plist, (*item_path, SPKI), text)
            texts.append(text)
            pins.append(pin)
            kinds.setdefault(str(pin), _KINDS[array_key])
    if not pins:
        raise plist.error(
            f"the {PINNED} entry for {name} lists no identities",
            path,
            hint=plist.typo_hint(
                entry, (CA, LEAF), f"add the SPKI pins of the server's keys under {CA} or {LEAF}"
            ),
        )
    rule, written = import_rule(
        source=plist.source,
        line=plist.line(path),
        pin_texts=tuple(texts),
        name=name,
        pins=tuple(pins),
        include_subdomains=include,
    )
    return rule, tuple(texts), kinds, written


def _identity_text(plist: PlistText, path: KeyPath, item: Any) -> str:
    if not isinstance(item, dict):
        raise plist.error(f"each identity must be a dictionary with {SPKI}", path)
    plist.check_keys(item, path, (SPKI,), "an identity")
    text = item.get(SPKI)
    if not isinstance(text, str):
        raise plist.error(
            f"the identity has no {SPKI} string",
            path,
            hint=plist.typo_hint(item, (SPKI,), f"write <key>{SPKI}</key><string>BASE64</string>"),
        )
    return text


def _parse_pin(plist: PlistText, path: KeyPath, text: str) -> Pin:
    pin = plist.pin(path, text, SPKI)
    bare = text.strip()
    if not _BARE_B64.fullmatch(bare) or len(bare.rstrip("=")) != 43:
        raise plist.error(
            f"{SPKI} must be bare base64, not {text!r}",
            path,
            hint=f"write only the base64 digest: {pin.b64}",
        )
    return pin


def dumps(policy: Policy, *, binary: bool = False, identities: Identities = "ca") -> str | bytes:
    """Write ``policy`` as an Info.plist with ``NSAppTransportSecurity/NSPinnedDomains``.

    Returns XML text, or bytes of a binary plist with ``binary=True``. Pins go
    into ``NSPinnedCAIdentities`` unless ``identities="leaf"``, or a mapping
    (``Imported.platform["identities"]``) names each pin's array per domain.
    Emits :class:`ExportWarning` for what ATS expresses differently and raises
    :class:`ExportError` for what it cannot express safely.
    """
    names = {r.name for r in policy.rules if not r.one_label}
    domains: dict[str, dict[str, Any]] = {}
    for rule in policy.rules:
        name, include = _scope(rule, names)
        _refuse_or_warn(rule)
        entry: dict[str, Any] = {}
        if include:
            entry[INCLUDES] = True
        for pin in rule.pins:
            array = LEAF if _kind(identities, rule.name, pin) == "leaf" else CA
            entry.setdefault(array, []).append({SPKI: pin.b64})
        domains[name] = entry
    return dump_plist({ATS: {PINNED: domains}}, binary=binary)


def _kind(identities: Identities, name: str, pin: Pin) -> str:
    if isinstance(identities, str):
        if identities not in ("ca", "leaf"):
            raise ExportError(
                f"identities must be 'ca' or 'leaf', not {identities!r}", key="identities"
            )
        return identities
    return identities.get(name, {}).get(str(pin), "ca")


def _scope(rule: DomainRule, exact_names: set[str]) -> tuple[str, bool]:
    if rule.exclude:
        raise ExportError(
            f"ATS cannot exclude {rule.name} from a parent domain's pins",
            key="exclude",
            hint="list the pinned hosts individually instead of excluding a subdomain, "
            "or export to trustkit, which has an exclusion key",
        )
    if rule.enforce is False:
        raise ExportError(
            f"{rule.pattern} is report-only, and ATS always enforces its pins",
            key="enforce",
            hint="set enforce = true once the pins are verified, or export to trustkit "
            "(TSKEnforcePinning = false)",
        )
    if rule.one_label:
        one_label_as_subdomains(
            rule,
            exact_names,
            "ATS",
            INCLUDES,
            f"iOS also pins {rule.name} itself, which the policy leaves unpinned",
        )
        return rule.name, True
    if rule.include_subdomains:
        warnings.warn(
            f"NSIncludesSubdomains on {rule.name} covers one extra label only "
            f"(a.{rule.name}, not b.a.{rule.name}); pinset covers every depth, "
            "so iOS leaves deeper names unpinned",
            ExportWarning,
            stacklevel=4,
        )
    return rule.name, rule.include_subdomains


def _refuse_or_warn(rule: DomainRule) -> None:
    if rule.expiration is not None:
        warnings.warn(
            f"ATS has no expiration: iOS keeps enforcing the pins of {rule.pattern} "
            f"after {rule.expiration.isoformat()}, where pinset stops",
            ExportWarning,
            stacklevel=4,
        )
    if rule.report_uris:
        warnings.warn(
            f"ATS sends no pin-failure reports: the report URIs of {rule.pattern} "
            f"({', '.join(rule.report_uris)}) are not written",
            ExportWarning,
            stacklevel=4,
        )
