"""TrustKit for iOS/macOS: ``TSKConfiguration`` in Info.plist, and a Swift dictionary.

What TrustKit itself refuses at start-up (it raises ``TrustKit configuration
invalid``) is an import error here too: no ``TSKSwizzleNetworkDelegates``, no
pinned domains, a pin that is not padded base64 of 32 bytes, fewer than two
distinct pins on an enforced domain, an exclusion with other keys or without a
parent that includes subdomains. The exclusion key is spelled
``kSKExcludeSubdomainFromParentPolicy`` in TrustKit's sources (sic), and that
string is what the plist must contain.

TrustKit sends reports to its vendor's default URI unless
``TSKDisableDefaultReportUri`` is true; import adds that URI to the rule's report
URIs (so the policy says where reports go) and export always disables it.

The legacy key ``TSKPublicKeyPins`` (hex SHA-256 pins, TrustKit's early 2015 format)
imports with a ``legacy-hex-pins`` warning: released TrustKit
reads only ``TSKConfiguration``, so an app relying on it is not pinned.

This module reads ``TSKConfiguration`` and writes the Info.plist; the key names are
in :mod:`~pinset.formats._apple._trustkit_keys`, the legacy import in
:mod:`~pinset.formats._apple._trustkit_legacy`, the exported dictionary in
:mod:`~pinset.formats._apple._trustkit_export` and the Swift writer in
:mod:`~pinset.formats._apple._trustkit_swift`.
"""

from __future__ import annotations

import re
from typing import Any

from pinset.formats._apple._plist import (
    DomainEntry,
    KeyPath,
    PlistText,
    dump_plist,
    entries_imported,
    is_plist,
)
from pinset.formats._apple._trustkit_export import trustkit_config
from pinset.formats._apple._trustkit_keys import (
    CONFIG,
    DEFAULT_REPORT_URI,
    DISABLE_DEFAULT,
    DOMAIN_KEYS,
    ENFORCE,
    EXCLUDE_KEY,
    EXPIRATION,
    FORMAT,
    GLOBAL_KEYS,
    HASHES,
    IGNORE_USER_ANCHORS,
    INCLUDE,
    LEGACY,
    PINNED,
    REPORT_URIS,
    SWIZZLE,
    domain_name,
    strings,
)
from pinset.formats._apple._trustkit_legacy import legacy_ignored, load_legacy
from pinset.formats._apple._trustkit_swift import dumps_swift
from pinset.formats._expiry import expiration_window
from pinset.formats._importing import import_rule, make_rule, parse_date
from pinset.formats._model import (
    Finding,
    Imported,
    PlatformDomain,
    TrustKitSettings,
    WrittenPins,
)
from pinset.pins import Pin
from pinset.policy import DomainRule, Policy

__all__ = ["DEFAULT_REPORT_URI", "EXCLUDE_KEY", "FORMAT", "dumps", "dumps_swift", "loads", "sniff"]

_PADDED_B64 = re.compile(r"[A-Za-z0-9+/]{43}=")


def sniff(data: bytes) -> bool:
    """True for a plist carrying ``TSKConfiguration`` (or the legacy ``TSKPublicKeyPins``)."""
    keys = (CONFIG.encode(), LEGACY.encode(), PINNED.encode())
    return is_plist(data) and any(k in data for k in keys)


def loads(data: str | bytes, *, source: str | None = None) -> Imported:
    """Read TrustKit's configuration from an Info.plist (or a plist whose root is the config)."""
    plist = PlistText(data, source=source)
    found = _find_config(plist)
    if found is None:
        return load_legacy(plist, plist.root[LEGACY])
    base, config = found
    swizzle, pinned = _check_config(plist, base, config)
    legacy = [legacy_ignored(plist)] if LEGACY in plist.root else []
    entries = _read_entries(plist, base, pinned)
    _check_exclusions(plist, base, [e.rule for e in entries])
    platform = {
        "swizzle_network_delegates": swizzle,
        "ignore_pinning_for_user_anchors": config.get(IGNORE_USER_ANCHORS),
        "default_report_uri": [
            e.facts.name
            for e in entries
            if not e.rule.exclude and DEFAULT_REPORT_URI in e.rule.report_uris
        ],
        "binary": plist.binary,
    }
    # plist.findings (keys TrustKit does not read) are complete only once every entry is read.
    findings = [*plist.findings, *legacy]
    return entries_imported(entries, FORMAT, source, findings=findings, platform=platform)


def _find_config(plist: PlistText) -> tuple[KeyPath, dict[str, Any]] | None:
    """Where the configuration is (``TSKConfiguration`` or the root); ``None``: legacy only."""
    root = plist.root
    if not isinstance(root, dict):
        raise plist.error("the plist root must be a dictionary", ())
    base: KeyPath
    if CONFIG in root:
        base, config = (CONFIG,), root[CONFIG]
    elif PINNED in root:
        base, config = (), root
    elif LEGACY in root:
        return None
    else:
        raise plist.error(
            f"no {CONFIG} in this plist",
            (),
            hint=f"TrustKit reads its pins from the {CONFIG} dictionary of Info.plist",
        )
    if not isinstance(config, dict):
        raise plist.error(f"{CONFIG} must be a dictionary", base)
    return base, config


def _check_config(
    plist: PlistText, base: KeyPath, config: dict[str, Any]
) -> tuple[bool, dict[str, Any]]:
    """What TrustKit refuses at start-up in the global keys; the swizzle flag and the domains."""
    plist.refuse_duplicates((*base, PINNED), "")
    plist.check_keys(config, base, GLOBAL_KEYS, CONFIG)
    swizzle = config.get(SWIZZLE)
    if not isinstance(swizzle, bool):
        raise plist.error(
            f"{SWIZZLE} must be set to <true/> or <false/> (TrustKit refuses to start without it)",
            (*base, SWIZZLE),
            hint=f"add <key>{SWIZZLE}</key><false/> if the app calls TSKPinningValidator itself",
        )
    pinned = config.get(PINNED)
    if not isinstance(pinned, dict) or not pinned:
        raise plist.error(
            f"{PINNED} must be a non-empty dictionary of domains",
            (*base, PINNED),
            hint=plist.typo_hint(config, (PINNED,), "add one entry per pinned domain"),
        )
    return swizzle, pinned


def _read_entries(plist: PlistText, base: KeyPath, pinned: dict[str, Any]) -> list[DomainEntry]:
    def name_of(path: KeyPath, raw: str) -> str:
        return domain_name(plist, path, raw)

    domains = plist.domains((*base, PINNED), pinned, name_of)
    return [_read_entry(plist, path, name, entry) for path, name, entry in domains]


def _read_entry(plist: PlistText, path: KeyPath, name: str, entry: Any) -> DomainEntry:
    line = plist.line(path)
    rule, texts, written = _read_domain(plist, path, name, entry)
    expiration_text = entry.get(EXPIRATION) if isinstance(entry, dict) else None
    facts = PlatformDomain(
        name,
        include_subdomains=rule.include_subdomains,
        pin_texts=texts,
        expiration_text=expiration_text if isinstance(expiration_text, str) else None,
        # TrustKit parses TSKExpirationDate in UTC, like pinset.
        expires_between=expiration_window(rule.expiration, "utc")
        if rule.expiration is not None
        else None,
        line=line,
        trustkit=None if rule.exclude else _settings(entry, line),
    )
    if rule.exclude or DEFAULT_REPORT_URI not in rule.report_uris:
        return DomainEntry(rule, facts, written)
    default_uri = Finding(
        "trustkit-default-report-uri",
        "warning",
        f"{name}: TrustKit sends pin failure reports to its vendor's default URI "
        f"{DEFAULT_REPORT_URI}",
        domain=name,
        fix=f"set {DISABLE_DEFAULT} to <true/> unless you mean to use that service",
        source=plist.source,
        line=line,
    )
    return DomainEntry(rule, facts, written, (default_uri,))


def _settings(entry: dict[str, Any], line: int | None) -> TrustKitSettings:
    """The TrustKit keys of a domain as written (``None``: absent, TrustKit's default)."""
    return TrustKitSettings(
        enforce_pinning=entry.get(ENFORCE),
        disable_default_report_uri=entry.get(DISABLE_DEFAULT),
        report_uris=tuple(entry.get(REPORT_URIS, ())),
        line=line,
    )


def _read_domain(
    plist: PlistText, path: KeyPath, name: str, entry: Any
) -> tuple[DomainRule, tuple[str, ...], WrittenPins | None]:
    if not isinstance(entry, dict):
        raise plist.error(f"the entry for {name} must be a dictionary", path)
    plist.check_keys(entry, path, DOMAIN_KEYS, f"the {PINNED} entry for {name}")
    line = plist.line(path)
    if _bool(plist, path, entry, EXCLUDE_KEY, False):
        return _excluded(plist, path, name, entry), (), None
    include = _bool(plist, path, entry, INCLUDE, False)
    enforce = _bool(plist, path, entry, ENFORCE, True)
    uris = _report_uris(plist, path, entry)
    expiration = None
    if entry.get(EXPIRATION) is not None:
        expiration = parse_date(
            entry[EXPIRATION],
            source=plist.source,
            line=plist.line((*path, EXPIRATION)),
            key=EXPIRATION,
        )
    texts = tuple(strings(plist, (*path, HASHES), entry.get(HASHES, [])))
    pins = tuple(
        _parse_pin(plist, (*path, HASHES, index), text) for index, text in enumerate(texts)
    )
    _check_pin_count(plist, path, name, pins, enforce)
    rule, written = import_rule(
        source=plist.source,
        line=line,
        pin_texts=texts,
        expiration_fix=f"add {EXPIRATION} (yyyy-MM-dd): TrustKit stops enforcing on that date",
        name=name,
        pins=pins,
        include_subdomains=include,
        enforce=enforce,
        expiration=expiration,
        report_uris=uris,
    )
    return rule, texts, written


def _excluded(plist: PlistText, path: KeyPath, name: str, entry: dict[str, Any]) -> DomainRule:
    others = sorted(k for k in entry if k != EXCLUDE_KEY)
    if others:
        raise plist.error(
            f"{name} is excluded from its parent's policy but also sets {', '.join(others)}",
            (*path, others[0]),
            hint=f"an {EXCLUDE_KEY} entry takes no other keys: remove them",
        )
    return make_rule(source=plist.source, line=plist.line(path), name=name, exclude=True)


def _report_uris(plist: PlistText, path: KeyPath, entry: dict[str, Any]) -> tuple[str, ...]:
    """The domain's report URIs, TrustKit's default one included unless it is disabled."""
    disabled = _bool(plist, path, entry, DISABLE_DEFAULT, False)
    uris = strings(plist, (*path, REPORT_URIS), entry.get(REPORT_URIS, []))
    if not disabled and DEFAULT_REPORT_URI not in uris:
        uris = [*uris, DEFAULT_REPORT_URI]
    return tuple(uris)


def _check_pin_count(
    plist: PlistText, path: KeyPath, name: str, pins: tuple[Pin, ...], enforce: bool
) -> None:
    """What TrustKit refuses at start-up: fewer distinct pins than it needs."""
    distinct = list(dict.fromkeys(pins))
    needed = 2 if enforce else 1
    if len(distinct) < needed:
        raise plist.error(
            f"TrustKit refuses {name}: {len(distinct)} distinct pin"
            f"{'' if len(distinct) == 1 else 's'}, it needs at least {needed}"
            + (" when pinning is enforced" if enforce else ""),
            (*path, HASHES),
            hint="add the pin of an offline backup key (pinset keygen)",
        )


def _bool(plist: PlistText, path: KeyPath, entry: dict[str, Any], key: str, default: bool) -> bool:
    value = entry.get(key, default)
    if not isinstance(value, bool):
        raise plist.error(f"{key} must be <true/> or <false/>, not {value!r}", (*path, key))
    return value


def _parse_pin(plist: PlistText, path: KeyPath, text: str) -> Pin:
    pin = plist.pin(path, text, HASHES)
    if not _PADDED_B64.fullmatch(text):
        # TrustKit decodes with NSData's strict base64 decoder, which rejects
        # missing padding, prefixes and whitespace, then refuses to start.
        raise plist.error(
            f"TrustKit cannot decode the pin {text!r}: it must be padded base64 only",
            path,
            hint=f"write {pin.b64}",
        )
    return pin


def _check_exclusions(plist: PlistText, base: KeyPath, rules: list[DomainRule]) -> None:
    for rule in rules:
        if rule.exclude and not any(
            p.include_subdomains and not p.exclude and rule.name.endswith("." + p.name)
            for p in rules
        ):
            raise plist.error(
                f"{rule.name} is excluded, but no parent domain in {PINNED} includes subdomains",
                (*base, PINNED, rule.name),
                hint="add TSKIncludeSubdomains to the parent domain, or remove the exclusion",
            )


def dumps(
    policy: Policy,
    *,
    binary: bool = False,
    swizzle_network_delegates: bool = True,
    swift: bool = False,
) -> str | bytes:
    """Write ``policy`` as an Info.plist holding ``TSKConfiguration``.

    ``swizzle_network_delegates`` sets ``TSKSwizzleNetworkDelegates`` (true:
    TrustKit hooks every NSURLSession delegate; false: the app calls
    TSKPinningValidator itself). ``TSKDisableDefaultReportUri`` is always true.
    ``swift=True`` returns :func:`dumps_swift` instead (for ``-O swift=true``).
    """
    if swift:
        return dumps_swift(policy, swizzle_network_delegates=swizzle_network_delegates)
    root = {CONFIG: trustkit_config(policy, swizzle_network_delegates)}
    return dump_plist(root, binary=binary)
