"""OkHttp ``CertificatePinner.Builder()`` code in Kotlin or Java.

Import reads ``.add("pattern", "sha256/…", …)`` calls from source text: string
literals only (plain, escaped, Kotlin raw strings and Java text blocks), any
number of pins per call, chains over many lines, comments anywhere. A call it
cannot read (a constant, a string template, a concatenation, a spread) becomes
an ``okhttp-unreadable-call`` finding with its line, never a guess.

OkHttp checks a host against the pins of *every* pattern that matches it, where
pinset uses the most specific rule; import therefore gives each rule the pins of
the patterns that cover it, and export refuses a policy whose more specific rule
lacks pins of a covering rule (OkHttp would accept them).

OkHttp has no expiration, report-only mode, reporting or exclusions. Export
writes pins without expiration (warning: OkHttp enforces them until the app is
updated), drops report URIs (warning), and refuses report-only rules and
exclusions (:class:`ExportError`).
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from pinset.errors import ConfigError, PinsetError
from pinset.formats._importing import make_policy, make_rule, rule_findings
from pinset.formats.model import ExportError, ExportWarning, Finding, Imported, PlatformDomain
from pinset.hosts import canonical_host
from pinset.pins import Pin
from pinset.policy import DomainRule, Policy

__all__ = ["FORMAT", "dumps", "loads", "sniff"]

FORMAT = "okhttp"
_TOKEN = re.compile(
    r'(?P<raw>""".*?""")'  # Kotlin raw string / Java text block
    r'|(?P<str>"(?:[^"\\\n]|\\.)*")'
    r"|(?P<char>'(?:[^'\\\n]|\\.)+')"
    r"|(?P<line_comment>//[^\n]*)"
    r"|(?P<block_comment>/\*.*?\*/)"
    r"|(?P<ident>[A-Za-z_$][A-Za-z0-9_$]*)"
    r"|(?P<space>\s+)"
    r"|(?P<punct>.)",
    re.S,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "0": "\0"}  # others stand for themselves


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["str", "ident", "punct", "bad_str"]
    text: str
    line: int


def sniff(data: bytes) -> bool:
    """True for Kotlin or Java source that builds a ``CertificatePinner``."""
    return b"CertificatePinner" in data and b".add(" in data.replace(b" ", b"")


def loads(data: str | bytes, *, source: str | None = None) -> Imported:
    """Read the ``.add(...)`` calls of every ``CertificatePinner.Builder()`` in the source."""
    text = _text(data, source)
    tokens = list(_tokens(text))
    findings: list[Finding] = []
    calls: list[tuple[str, list[str], int]] = []
    for start, line in _add_calls(tokens):
        args, end_ok = _arguments(tokens, start)
        bad = [group for group in args if len(group) != 1 or group[0].kind != "str"]
        if not end_ok or not args or bad:
            # An empty group is a stray comma: `.add("host", , "sha256/…")`.
            what = " ".join(_written(t) for t in bad[0]) if bad else "the call"
            what = what or "an empty argument"
            if len(what) > 80:  # an unclosed call runs to the end of the file
                what = what[:77] + "..."
            where = next((group[0].line for group in bad if group), line)
            findings.append(
                Finding(
                    "okhttp-unreadable-call",
                    "warning",
                    f"cannot read {what!r} in .add(...): only string literals are imported; "
                    "the pins of this call are missing from the policy",
                    fix="write the host and pins as string literals, or add them to the "
                    "policy by hand",
                    source=source,
                    line=where,
                )
            )
            continue
        values = [group[0].text for group in args]
        calls.append((values[0], values[1:], line))
    if not calls and not findings:
        findings.append(
            Finding(
                "okhttp-no-calls",
                "warning",
                "found no .add(...) call on a CertificatePinner.Builder()",
                fix='chain .add("host", "sha256/...") on CertificatePinner.Builder()',
                source=source,
            )
        )
    return _build(calls, findings, source)


def _written(token: _Token) -> str:
    return json.dumps(token.text) if token.kind == "str" else token.text


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


def _tokens(text: str) -> Iterator[_Token]:
    line = 1
    for match in _TOKEN.finditer(text):
        kind, value = match.lastgroup, match.group()
        if kind == "raw":
            body = value[3:-3]
            if "$" in body:
                yield _Token("bad_str", value, line)
            else:
                yield _Token("str", body.strip() if "\n" in body else body, line)
        elif kind == "str":
            decoded = _unescape(value[1:-1])
            yield _Token("bad_str" if decoded is None else "str", decoded or value, line)
        elif kind in ("ident", "punct", "char"):
            yield _Token("punct" if kind == "char" else kind, value, line)  # type: ignore[arg-type]
        line += value.count("\n")


def _unescape(body: str) -> str | None:
    """The value of a string literal, or ``None`` for a Kotlin template (``$x``, ``${x}``)."""
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "$" and i + 1 < len(body) and (body[i + 1] == "{" or body[i + 1].isalpha()):
            return None
        if char == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2 : i + 6]):
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _add_calls(tokens: list[_Token]) -> Iterator[tuple[int, int]]:
    """Index of the ``(`` of each ``.add(`` on a pinner builder, and its line."""
    builders: set[str] = set()
    i = 0
    while i < len(tokens):
        if _is(tokens, i, "CertificatePinner", ".", "Builder", "(", ")"):
            # A builder kept in a variable: `val b = CertificatePinner.Builder()`.
            eq = i - 2 if _is(tokens, i - 1, "new") else i - 1
            if eq >= 1 and _is(tokens, eq, "=") and tokens[eq - 1].kind == "ident":
                builders.add(tokens[eq - 1].text)
            i += 5
            yield from _chain(tokens, i)
            continue
        token = tokens[i]
        if token.kind == "ident" and token.text in builders and _is(tokens, i + 1, ".", "add", "("):
            yield i + 3, tokens[i + 2].line
            yield from _chain(tokens, _skip_call(tokens, i + 3))
        i += 1


def _chain(tokens: list[_Token], i: int) -> Iterator[tuple[int, int]]:
    while _is(tokens, i, ".", "add", "("):
        yield i + 2, tokens[i + 1].line
        i = _skip_call(tokens, i + 2)


def _is(tokens: list[_Token], i: int, *texts: str) -> bool:
    return (
        i >= 0
        and i + len(texts) <= len(tokens)
        and all(
            tokens[i + k].kind in ("ident", "punct") and tokens[i + k].text == t
            for k, t in enumerate(texts)
        )
    )


def _skip_call(tokens: list[_Token], open_index: int) -> int:
    depth = 0
    for j in range(open_index, len(tokens)):
        if tokens[j].kind == "punct" and tokens[j].text in "([{":
            depth += 1
        elif tokens[j].kind == "punct" and tokens[j].text in ")]}":
            depth -= 1
            if depth == 0:
                return j + 1
    return len(tokens)


def _arguments(tokens: list[_Token], open_index: int) -> tuple[list[list[_Token]], bool]:
    args: list[list[_Token]] = [[]]
    depth = 0
    # Index, not a slice: a slice copies the rest of the file for every call (quadratic).
    for j in range(open_index + 1, len(tokens)):
        token = tokens[j]
        if token.kind == "punct" and token.text in "([{":
            depth += 1
        elif token.kind == "punct" and token.text in ")]}":
            if depth == 0:
                if not args[-1]:
                    args.pop()  # a trailing comma
                return args, True
            depth -= 1
        elif token.kind == "punct" and token.text == "," and depth == 0:
            args.append([])
            continue
        args[-1].append(token)
    return args, False


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


def _build(
    calls: list[tuple[str, list[str], int]], findings: list[Finding], source: str | None
) -> Imported:
    groups: dict[tuple[str, bool, bool], tuple[list[Pin], list[str], int]] = {}
    for raw_pattern, texts, line in calls:
        key = _pattern(raw_pattern, source, line)
        pins = [Pin.parse(t, source=source, line=line) for t in texts]
        if not pins:
            raise ConfigError(
                f"OkHttp rejects .add({raw_pattern!r}) without pins",
                source=source,
                line=line,
                hint="add the sha256/ pins of the host's keys",
            )
        own_pins, own_texts, _ = groups.setdefault(key, ([], [], line))
        own_pins.extend(pins)
        own_texts.extend(texts)
    rules: list[DomainRule] = []
    domains: list[PlatformDomain] = []
    lines: dict[str, int] = {}
    order = {key: index for index, key in enumerate(groups)}
    for key, (pins, texts, line) in groups.items():
        name, include, one = key
        if not one and not include and (name, True, False) in groups:
            continue  # OkHttp unions it into the **. pattern of the same name, below
        probe = f"x.{name}" if one else name
        merged = list(pins)
        covering = [k for k in _covering(probe) if k != key and k in groups]
        for other in sorted(covering, key=order.__getitem__):  # in file order
            merged.extend(groups[other][0])
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
        real = [p for p in dict.fromkeys(merged) if not p.is_placeholder]
        rule = make_rule(
            source=source,
            line=line,
            name=name,
            pins=tuple(merged),
            include_subdomains=include,
            one_label=one,
            allow_single_pin=len(real) < 2,
        )
        rules.append(rule)
        lines[rule.pattern] = line
        domains.append(
            PlatformDomain(
                rule.pattern, include_subdomains=include, pin_texts=tuple(texts), line=line
            )
        )
        findings.extend(rule_findings(rule, texts, source=source, line=line))
    policy = make_policy(rules, source=source)
    return Imported(policy, FORMAT, source, tuple(findings), tuple(domains), lines=lines)


# -- export ---------------------------------------------------------------------


def dumps(policy: Policy, *, language: str = "kotlin") -> str:
    """Kotlin (default) or Java (``language="java"``) code building the pinner."""
    if language not in ("kotlin", "java"):
        raise ExportError(
            f"unknown language {language!r}", key="language", hint="use 'kotlin' or 'java'"
        )
    calls: list[str] = []
    for rule in policy.rules:
        _check(policy, rule)
        pattern = _written_pattern(rule)
        args = [json.dumps(pattern), *(json.dumps(str(pin)) for pin in rule.pins)]
        calls.append("    .add(\n" + ",\n".join(f"        {a}" for a in args) + "\n    )")
    if language == "java":
        head = "CertificatePinner certificatePinner = new CertificatePinner.Builder()"
        tail = "    .build();"
        imports = "import okhttp3.CertificatePinner;"
    else:
        head = "val certificatePinner = CertificatePinner.Builder()"
        tail = "    .build()"
        imports = "import okhttp3.CertificatePinner"
    return "\n".join([imports, "", head, *calls, tail]) + "\n"


def _written_pattern(rule: DomainRule) -> str:
    return f"**.{rule.name}" if rule.include_subdomains else rule.pattern


def _check(policy: Policy, rule: DomainRule) -> None:
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
        if other is rule or other.exclude or not other.covers(probe):
            continue
        extra = [p for p in other.pins if p not in rule.pins]
        if extra:
            raise ExportError(
                f"OkHttp would accept the pins of {_written_pattern(other)} for "
                f"{_written_pattern(rule)} too ({len(extra)} pin{'s' if len(extra) > 1 else ''} "
                f"the policy does not allow for {rule.pattern})",
                key="pins",
                hint=f"add the pins of {other.pattern} to {rule.pattern}, or narrow "
                f"{other.pattern} so it no longer covers {rule.pattern}",
            )
