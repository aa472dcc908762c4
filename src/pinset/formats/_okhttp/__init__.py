"""OkHttp ``CertificatePinner.Builder()`` code in Kotlin or Java.

Import reads the ``add("pattern", "sha256/…", …)`` calls of each pinner builder
in one source file (:mod:`pinset.formats._okhttp._source` finds them): chained on
the builder, on a variable holding it, or in its Kotlin ``apply { }`` block; any
number of pins per call, comments anywhere. Hosts and pins are string literals
or string constants of the same file (``val``, ``const val``, Java ``String``
fields and locals, Kotlin templates over them). A call it cannot read (a
parameter, an expression, a name imported from another file) becomes an
``okhttp-unreadable-call`` finding with its line and the reason, never a guess.

OkHttp checks a host against the pins of *every* pattern that matches it, where
pinset uses the most specific rule; import therefore gives each rule the pins of
the patterns that cover it, and export refuses a policy whose more specific rule
lacks pins of a covering rule (OkHttp would accept them). A pattern whose every
pin is a placeholder (``sha256/AAAA…=``, as OkHttp's own documentation starts
with) is kept, as OkHttp keeps it, and flagged at error level: no key matches it.

OkHttp has no expiration, report-only mode, reporting or exclusions. Export
writes pins without expiration (warning: OkHttp enforces them until the app is
updated), drops report URIs (warning), and refuses report-only rules and
exclusions (:class:`ExportError`). An include-subdomains rule is ``**.name``,
which only OkHttp 4.3+ reads (older versions take it for a literal host and pin
nothing: always a warning); ``okhttp="3"`` writes ``name`` and ``*.name``
instead, the apex and one label below, and warns that deeper names are unpinned.

The package also holds the source reader: ``_lex`` tokenises Kotlin and Java,
``_source`` finds the pinner builders and their ``add`` calls in the tokens.
"""

from __future__ import annotations

import json
import re
import warnings

from pinset.errors import ConfigError, PinsetError
from pinset.formats._importing import import_rule, make_policy
from pinset.formats._model import (
    ExportError,
    ExportWarning,
    Finding,
    Imported,
    PlatformDomain,
    WrittenPins,
)
from pinset.formats._okhttp._source import PinnerSource, read_source
from pinset.hosts import canonical_host
from pinset.pins import Pin
from pinset.policy import DomainRule, Policy

__all__ = ["FORMAT", "dumps", "loads", "sniff"]

FORMAT = "okhttp"
_BUILDER = re.compile(rb"CertificatePinner\s*\.\s*Builder\s*\(")


def sniff(data: bytes) -> bool:
    """True for Kotlin or Java source that builds a ``CertificatePinner``."""
    return _BUILDER.search(data) is not None


def loads(data: str | bytes, *, source: str | None = None) -> Imported:
    """Read the ``add(...)`` calls of every ``CertificatePinner.Builder()`` in the source."""
    found = read_source(_text(data, source))
    findings: list[Finding] = []
    calls: list[tuple[str, list[str], int]] = []
    for call in found.calls:
        if call.unreadable is not None:
            written, why, line = call.unreadable
            what = "the call" if written is None else repr(written)
            findings.append(
                Finding(
                    "okhttp-unreadable-call",
                    "warning",
                    f"cannot read {what} in the add(...) call on line {call.line}: {why}; "
                    "the pins of this call are missing from the policy",
                    fix="write the host and pins as string literals or as string constants of "
                    "this file, or add them to the policy by hand",
                    source=source,
                    line=line,
                )
            )
        elif len(call.values) == 1:
            # OkHttp adds one Pin per pin argument: with none, the call pins nothing.
            findings.append(
                Finding(
                    "okhttp-add-without-pins",
                    "warning",
                    f"add({json.dumps(call.values[0])}) has no pins: OkHttp pins nothing for it",
                    fix='give the call its pins: add("host", "sha256/...", "sha256/...")',
                    source=source,
                    line=call.line,
                )
            )
        else:
            calls.append((call.values[0], list(call.values[1:]), call.line))
    if not found.calls:
        findings.append(_no_calls(found, source))
    return _build(calls, findings, source)


def _no_calls(found: PinnerSource, source: str | None) -> Finding:
    if found.stray_lines:
        lines = ", ".join(str(n) for n in found.stray_lines)
        return Finding(
            "okhttp-no-calls",
            "warning",
            f"the add(...) calls with pins on line(s) {lines} are on no "
            "CertificatePinner.Builder() pinset can follow",
            fix="chain the calls on CertificatePinner.Builder(), on a variable holding it, or "
            "in its apply { } block",
            source=source,
            line=found.stray_lines[0],
        )
    where = found.builder_lines[0] if found.builder_lines else None
    return Finding(
        "okhttp-no-calls",
        "warning",
        "found no add(...) call on a CertificatePinner.Builder()",
        fix='chain .add("host", "sha256/...") on CertificatePinner.Builder()',
        source=source,
        line=where,
    )


def _text(data: str | bytes, source: str | None) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"source is not UTF-8 text: {exc.reason}",
            source=source,
            line=data[: exc.start].count(b"\n") + 1,
            hint="save the file as UTF-8",
        ) from None


def _pattern(text: str, source: str | None, line: int) -> tuple[str, bool, bool]:
    """``(canonical name, include_subdomains, one_label)`` of an OkHttp host pattern."""
    if text.startswith("**."):
        name, include, one = text[3:], True, False
    elif text.startswith("*."):
        name, include, one = text[2:], False, True
    else:
        name, include, one = text, False, False
    try:
        return canonical_host(name), include, one
    except PinsetError as exc:
        exc.hint = "OkHttp patterns are host, *.host (one label) or **.host (any depth)"
        raise exc.with_location(source=source, line=line) from None


def _covering(host: str) -> list[tuple[str, bool, bool]]:
    """Every ``(name, include_subdomains, one_label)`` key whose pattern covers ``host``.

    Enumerating them keeps the import linear; testing every pair of patterns
    is quadratic in the number of ``.add`` calls.
    """
    labels = host.split(".")
    keys = [(host, False, False)]
    keys += [(".".join(labels[i:]), True, False) for i in range(len(labels))]
    if len(labels) > 1 and labels[0]:
        keys.append((".".join(labels[1:]), False, True))
    return keys


_Key = tuple[str, bool, bool]  # (name, include_subdomains, one_label)
_Group = tuple[list[Pin], list[str], int]  # pins, their texts, the first call's line


def _build(
    calls: list[tuple[str, list[str], int]], findings: list[Finding], source: str | None
) -> Imported:
    groups = _group(calls, source)
    order = {key: index for index, key in enumerate(groups)}
    rules: list[DomainRule] = []
    domains: list[PlatformDomain] = []
    written: list[WrittenPins] = []
    for key, (pins, texts, line) in groups.items():
        name, include, one = key
        if not one and not include and (name, True, False) in groups:
            continue  # OkHttp unions it into the **. pattern of the same name, below
        merged = _accepted_pins(key, groups, order)
        if len(dict.fromkeys(merged)) > len(dict.fromkeys(pins)):
            findings.append(
                Finding(
                    "okhttp-overlapping-patterns",
                    "info",
                    f"OkHttp also accepts the pins of other patterns covering {name}; "
                    "the imported rule lists them all",
                    domain=name,
                    source=source,
                    line=line,
                )
            )
        rule, pins_written = import_rule(
            source=source,
            line=line,
            pin_texts=tuple(texts),
            name=name,
            pins=tuple(merged),
            include_subdomains=include,
            one_label=one,
        )
        rules.append(rule)
        domains.append(
            PlatformDomain(
                rule.pattern, include_subdomains=include, pin_texts=tuple(texts), line=line
            )
        )
        written.append(pins_written)
    return Imported(
        make_policy(rules, source=source),
        FORMAT,
        source,
        tuple(findings),
        tuple(domains),
        lines={d.name: d.line for d in domains if d.name is not None and d.line is not None},
        written=tuple(written),
    )


def _group(calls: list[tuple[str, list[str], int]], source: str | None) -> dict[_Key, _Group]:
    """The pins of every ``.add`` call, grouped by pattern in file order."""
    groups: dict[_Key, _Group] = {}
    for raw_pattern, texts, line in calls:
        key = _pattern(raw_pattern, source, line)
        pins = [Pin.parse(t, source=source, line=line) for t in texts]
        own_pins, own_texts, _ = groups.setdefault(key, ([], [], line))
        own_pins.extend(pins)
        own_texts.extend(texts)
    return groups


def _accepted_pins(key: _Key, groups: dict[_Key, _Group], order: dict[_Key, int]) -> list[Pin]:
    """What OkHttp accepts for ``key``'s names: its pins, then those of every covering pattern."""
    name, _, one = key
    merged = list(groups[key][0])
    covering = [k for k in _covering(f"x.{name}" if one else name) if k != key and k in groups]
    for other in sorted(covering, key=order.__getitem__):  # in file order
        merged.extend(groups[other][0])
    return merged


# -- export ---------------------------------------------------------------------

# OkHttp learned `**.` in 4.3.0 (CHANGELOG 4.3.0, 2019-12-31: "Match any number of
# subdomains with two asterisks in `CertificatePinner`"). Before it, Pin only treats
# a leading `*.` as special (CertificatePinner.java on the 3.x branch: WILDCARD = "*."),
# so `**.name` is taken for a literal host name that no connection ever matches.
_DOUBLE_STAR_SINCE = (4, 3)
_VERSION = re.compile(r"(\d+)(?:\.(\d+))?(?:\.\d+)*")


def dumps(policy: Policy, *, language: str = "kotlin", okhttp: str | int = "4.3") -> str:
    """Kotlin (default) or Java (``language="java"``) code building the pinner.

    ``okhttp`` is the oldest OkHttp version the app runs with. From 4.3 (the
    default) an include-subdomains rule is written ``**.name``, with an
    :class:`ExportWarning` that older OkHttp pins nothing for it; below 4.3
    (``okhttp="3"``) it is written as ``name`` and ``*.name``, the deepest
    OkHttp 3 can express, with a warning that deeper names are not pinned.
    """
    if language not in ("kotlin", "java"):
        raise ExportError(
            f"unknown language {language!r}", key="language", hint="use 'kotlin' or 'java'"
        )
    double_star = _version(okhttp) >= _DOUBLE_STAR_SINCE
    calls: list[str] = []
    for rule in policy.rules:
        _check(policy, rule, double_star)
        for pattern in _written_patterns(rule, double_star):
            args = [json.dumps(pattern), *(json.dumps(str(pin)) for pin in rule.pins)]
            calls.append("    .add(\n" + ",\n".join(f"        {a}" for a in args) + "\n    )")
    _warn_subdomains(policy, double_star)
    if language == "java":
        head = "CertificatePinner certificatePinner = new CertificatePinner.Builder()"
        tail = "    .build();"
        imports = "import okhttp3.CertificatePinner;"
    else:
        head = "val certificatePinner = CertificatePinner.Builder()"
        tail = "    .build()"
        imports = "import okhttp3.CertificatePinner"
    return "\n".join([imports, "", head, *calls, tail]) + "\n"


def _version(value: str | int) -> tuple[int, int]:
    found = _VERSION.fullmatch(str(value).strip())
    if found is None:
        raise ExportError(
            f"okhttp={value!r} is not a version",
            key="okhttp",
            hint="give the oldest OkHttp the app ships with: -O okhttp=3 or -O okhttp=4.3",
        )
    return int(found.group(1)), int(found.group(2) or 0)


def _written_patterns(rule: DomainRule, double_star: bool) -> tuple[str, ...]:
    if not rule.include_subdomains:
        return (rule.pattern,)
    return (f"**.{rule.name}",) if double_star else (rule.name, f"*.{rule.name}")


def _warn_subdomains(policy: Policy, double_star: bool) -> None:
    names = [rule.name for rule in policy.rules if rule.include_subdomains and not rule.exclude]
    if not names:
        return
    if double_star:
        patterns = ", ".join(f"**.{name}" for name in names)
        message = (
            f"OkHttp before 4.3 reads {patterns} as a literal host name and pins nothing "
            "for it, neither the name nor its subdomains; if the app ships OkHttp 3, "
            "export with -O okhttp=3"
        )
    else:
        covered = "; ".join(f"{name} is written as {name} and *.{name}" for name in names)
        message = (
            f"OkHttp before 4.3 has no pattern for subdomains at any depth: {covered} "
            "(the name and one label below), so names two or more labels below are not "
            "pinned; OkHttp 4.3+ reads **.name (-O okhttp=4.3)"
        )
    warnings.warn(message, ExportWarning, stacklevel=3)


def _covers(rule: DomainRule, host: str, double_star: bool) -> bool:
    """Does ``rule``, as written for this OkHttp, apply to ``host``?"""
    if double_star or not rule.include_subdomains:
        return rule.covers(host)
    return host == rule.name or host.partition(".")[2] == rule.name


def _check(policy: Policy, rule: DomainRule, double_star: bool) -> None:
    if rule.exclude:
        raise ExportError(
            f"OkHttp cannot exclude {rule.name} from a parent pattern's pins",
            key="exclude",
            hint="list the pinned hosts individually instead of using **. and an exclusion",
        )
    if not rule.enforce:
        raise ExportError(
            f"{rule.pattern} is report-only, and OkHttp always enforces its pins",
            key="enforce",
            hint="set enforce = true once the pins are verified",
        )
    if rule.expiration is not None:
        warnings.warn(
            f"OkHttp has no expiration: it keeps enforcing the pins of {rule.pattern} "
            f"after {rule.expiration.isoformat()}, where pinset stops",
            ExportWarning,
            stacklevel=4,
        )
    if rule.report_uris:
        warnings.warn(
            f"OkHttp sends no pin-failure reports: the report URIs of {rule.pattern} "
            "are not written",
            ExportWarning,
            stacklevel=4,
        )
    probe = f"x.{rule.name}" if rule.one_label else rule.name
    for other in policy.rules:
        if other is rule or other.exclude or not _covers(other, probe, double_star):
            continue
        extra = [p for p in other.pins if p not in rule.pins]
        if extra:
            theirs = " and ".join(_written_patterns(other, double_star))
            ours = " and ".join(_written_patterns(rule, double_star))
            raise ExportError(
                f"OkHttp would accept the pins of {theirs} for {ours} too "
                f"({len(extra)} pin{'s' if len(extra) > 1 else ''} "
                f"the policy does not allow for {rule.pattern})",
                key="pins",
                hint=f"add the pins of {other.pattern} to {rule.pattern}, or narrow "
                f"{other.pattern} so it no longer covers {rule.pattern}",
            )
