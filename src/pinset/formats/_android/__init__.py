"""Android Network Security Configuration XML (``res/xml/network_security_config.xml``).

Import follows what Android itself does (``XmlConfigSource``): one optional
``base-config``, ``domain-config`` elements (nested ones inherit the pin-set,
trust anchors and cleartext setting of their parent, the pin-set as a whole),
one optional ``debug-overrides``. What Android rejects, pinset rejects, with
the file, line and a fix. What Android skips (unknown elements with their
contents, unknown attributes, stray text) is skipped here too, with the
platform's effective values and a warning finding that names the file, line
and the closest known name (a ``<pinset>`` typo leaves the domain unpinned on
the device, and the import says so). Attributes in another namespace
(``tools:ignore``) and TrustKit's ``<trustkit-config>`` are read and recorded.

Each ``<domain>`` becomes a :class:`~pinset.policy.DomainRule`. A domain whose
effective pin-set is empty is an exclusion. A domain with no pin-set at all
that a pinned rule would otherwise cover is an exclusion too, because Android
picks the most specific domain-config and that one pins nothing. Plain Android
always enforces; report-only mode and report URIs exist only through TrustKit
(:mod:`pinset.formats._android.trustkit_android`).

Export is deterministic, and warns that Android reads ``expiration`` at the
device's local midnight (:mod:`pinset.formats._expiry`). One ``domain-config``
per rule in policy order; exclusions nest inside the domain-config of the rule
they carve out of, with an empty ``<pin-set />``. ``tools:ignore="MissingBackupPin"``
marks rules with ``allow_single_pin``.

The package holds the rest of Android: ``_nsc`` reads the XML into the tree of
``_nsc_tree``, ``_nsc_map`` turns that tree into rules and findings, and
:mod:`~pinset.formats._android.trustkit_android` is TrustKit-Android's config.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from pathlib import PurePosixPath
from xml.sax.saxutils import escape, quoteattr

from pinset.formats._android import _nsc
from pinset.formats._android._nsc import TOOLS_NS
from pinset.formats._expiry import device_midnight_warning
from pinset.formats._model import ExportError, ExportWarning, Imported
from pinset.hosts import parent_domains
from pinset.policy import DomainRule, Policy

__all__ = ["FORMAT", "dumps", "loads", "sniff"]

FORMAT = "android"
_INDENT = "    "


def loads(data: str | bytes, *, source: str | None = None) -> Imported:
    """Read a network security config; the policy is what Android enforces (TrustKit ignored)."""
    return _nsc.load(data, source=source, trustkit=False)


def sniff(data: bytes) -> bool:
    """True for XML whose content carries a ``<network-security-config>`` element."""
    return b"<network-security-config" in data[:200_000]


def dumps(policy: Policy, **options: object) -> str:
    """Write ``policy`` as a network security config.

    Raises :class:`ExportError` for report-only (``enforce = false``) rules and
    ``*.`` one-label rules, which Android cannot express; warns
    (:class:`ExportWarning`) that report URIs are not written.
    """
    _no_options(options)
    return write(policy, trustkit=False)


def write(policy: Policy, *, trustkit: bool) -> str:
    """The XML text for ``policy``; ``trustkit`` adds ``<trustkit-config>`` to each rule."""
    fmt = "trustkit-android" if trustkit else FORMAT
    _check_exportable(policy, trustkit=trustkit, fmt=fmt)
    children: dict[str, list[DomainRule]] = {}
    top: list[DomainRule] = []
    for rule in policy.rules:
        parent = _carve_parent(policy, rule) if rule.exclude else None
        if parent is None:
            top.append(rule)
        else:
            children.setdefault(parent.name, []).append(rule)
    tools = any(r.allow_single_pin for r in policy.rules if not r.exclude)
    head = "<network-security-config"
    if tools:
        head += f" xmlns:tools={quoteattr(TOOLS_NS)}"
    out = ['<?xml version="1.0" encoding="utf-8"?>', head + ">"]
    for rule in top:
        out.extend(_domain_config(rule, children, 1, trustkit=trustkit))
    out.extend(_debug_overrides(policy, fmt))
    out.append("</network-security-config>")
    return "\n".join(out) + "\n"


def raw_resource_name(path: str) -> str:
    """The Android raw resource name of a CA file: ``certs/Team-Proxy CA.pem``: ``team_proxy_ca``.

    Resource names are lower-case letters, digits and ``_``, not starting with a digit.
    """
    stem = PurePosixPath(path.replace("\\", "/")).name.partition(".")[0].lower()
    # A name that is already a resource name is kept as it is: import maps it back.
    name = re.sub(r"[^a-z0-9_]+", "_", stem) or "debug_ca"
    return f"ca_{name}" if name[0].isdigit() else name


def _debug_overrides(policy: Policy, fmt: str) -> Iterable[str]:
    """``<debug-overrides>``: one ``@raw/NAME`` per debug anchor, overridePins written out."""
    debug = policy.debug_overrides
    if debug is None or not debug.trust_anchors:
        return
    names: dict[str, str] = {}
    for path in debug.trust_anchors:
        name = raw_resource_name(path)
        if name in names:
            raise ExportError(
                f"debug trust anchors {names[name]!r} and {path!r} would both be the Android "
                f"resource @raw/{name}",
                key="debug-overrides",
                hint="rename one of the CA files",
            )
        names[name] = path
    warnings.warn(
        f"{fmt}: <debug-overrides> refers to "
        + ", ".join(f"@raw/{n} (copy {p} to res/raw/{n}.pem)" for n, p in names.items())
        + "; Android applies it only when the app is debuggable",
        ExportWarning,
        stacklevel=4,
    )
    override = "true" if debug.override_pins else "false"
    yield f"{_INDENT}<debug-overrides>"
    yield f"{_INDENT * 2}<trust-anchors>"
    for name in names:
        yield f'{_INDENT * 3}<certificates src="@raw/{name}" overridePins="{override}" />'
    yield f"{_INDENT * 2}</trust-anchors>"
    yield f"{_INDENT}</debug-overrides>"


def _no_options(options: dict[str, object]) -> None:
    if options:
        raise TypeError(f"unknown export options: {', '.join(sorted(options))}")


def _check_exportable(policy: Policy, *, trustkit: bool, fmt: str) -> None:
    for rule in policy.rules:
        if rule.one_label:
            raise ExportError(
                f"{fmt} cannot express the one-label wildcard {rule.pattern!r}",
                key=rule.pattern,
                hint=(
                    f"Android has no '*.' patterns: pin '{rule.name}' with include-subdomains "
                    "= true (also covers deeper names and the name itself), or list each host"
                ),
            )
        if rule.exclude:
            continue
        if not rule.enforce and not trustkit:
            raise ExportError(
                f"domain {rule.pattern!r} is report-only (enforce = false), and a plain "
                "Android pin-set is always enforced",
                key=rule.pattern,
                hint=(
                    "export with --format trustkit-android (TrustKit's enforcePinning), or set "
                    "enforce = true for this domain once its pins are verified"
                ),
            )
        if trustkit and len(rule.pins) < 2:
            raise ExportError(
                f"domain {rule.pattern!r} has one pin; TrustKit-Android refuses to start with "
                "fewer than two pins per domain",
                key=rule.pattern,
                hint="add an offline backup pin (pinset keygen), or export with --format android",
            )
    midnight = device_midnight_warning(policy.rules, "TrustKit-Android" if trustkit else "Android")
    if midnight:
        warnings.warn(midnight, ExportWarning, stacklevel=3)
    if trustkit:
        for rule in policy.rules:
            if not rule.exclude and not rule.enforce and rule.pins:
                warnings.warn(
                    f'{rule.pattern}: enforcePinning="false" makes TrustKit report-only on '
                    "Android 6 and older only; Android 7.0+ enforces the pin-set itself",
                    ExportWarning,
                    stacklevel=3,
                )
        return
    lost = sorted(
        {r.pattern for r in policy.rules if r.report_uris and not r.exclude}
        | ({"[defaults]"} if policy.report_uris else set())
    )
    if lost:
        warnings.warn(
            f"report URIs of {', '.join(lost)} are not written: plain Android has no "
            "pin-failure reporting (use --format trustkit-android to keep them)",
            ExportWarning,
            stacklevel=3,
        )


def _carve_parent(policy: Policy, rule: DomainRule) -> DomainRule | None:
    """The rule an exclusion carves out of: the nearest parent that includes subdomains."""
    for parent in parent_domains(rule.name):
        found = policy.match(parent)
        if found is not None and found.name == parent and found.include_subdomains:
            return found
    return None


def _domain_config(
    rule: DomainRule,
    children: dict[str, list[DomainRule]],
    depth: int,
    *,
    trustkit: bool,
    parent_ct: bool = False,
) -> Iterable[str]:
    pad = _INDENT * depth
    inner = _INDENT * (depth + 1)
    yield f"{pad}<domain-config>"
    include = "true" if rule.include_subdomains else "false"
    yield f'{inner}<domain includeSubdomains="{include}">{escape(rule.name)}</domain>'
    ct = rule.require_ct and not rule.exclude
    if not trustkit and ct:
        yield f'{inner}<certificateTransparency enabled="true" />'
    elif not trustkit and parent_ct:
        # A nested config inherits the parent's CT: an exclusion turns it off with the pins.
        yield f'{inner}<certificateTransparency enabled="false" />'
    if rule.ct_only:
        pass  # CT alone: no <pin-set>, which Android would read as "pin nothing" anyway
    elif rule.exclude:
        yield f"{inner}<pin-set />"
        if trustkit:
            # TrustKit-Android refuses an empty pin-set that it is told to enforce.
            yield (
                f'{inner}<trustkit-config enforcePinning="false" disableDefaultReportUri="true" />'
            )
    else:
        attrs = ""
        if rule.expiration is not None:
            attrs += f' expiration="{rule.expiration.isoformat()}"'
        if rule.allow_single_pin:
            attrs += ' tools:ignore="MissingBackupPin"'
        yield f"{inner}<pin-set{attrs}>"
        for pin in rule.pins:
            yield f'{inner}{_INDENT}<pin digest="SHA-256">{pin.b64}</pin>'
        yield f"{inner}</pin-set>"
        if trustkit:
            enforce = "true" if rule.enforce else "false"
            tag = (
                f'{inner}<trustkit-config enforcePinning="{enforce}" disableDefaultReportUri="true"'
            )
            if rule.report_uris:
                yield tag + ">"
                for uri in rule.report_uris:
                    yield f"{inner}{_INDENT}<report-uri>{escape(uri)}</report-uri>"
                yield f"{inner}</trustkit-config>"
            else:
                yield tag + " />"
    for child in children.get(rule.name, ()):
        yield from _domain_config(child, children, depth + 1, trustkit=trustkit, parent_ct=ct)
    yield f"{pad}</domain-config>"
