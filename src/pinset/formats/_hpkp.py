"""HTTP Public Key Pinning headers (RFC 7469): ``Public-Key-Pins`` and ``…-Report-Only``.

A header pins the one host that serves it, so :func:`loads` needs that host:
the ``host=`` option or a ``Host: name`` line in the text. The text may hold
the header line (``Public-Key-Pins: pin-sha256="…"; max-age=N``) or the bare
header value. ``max-age`` is a duration, not a date: it is kept in
``Imported.platform["max_age"]`` and the rule has no expiration.

Import reads a header as RFC 7469 tells a browser to. A directive it does not
know is skipped (§2.1, rule 5: "the UA MUST ignore those directives"), and so is
a pin whose hash algorithm it does not know, such as ``pin-sha1`` (§2.1.1:
UAs ignore pin-directives naming hash algorithms they do not recognise): each
gets a warning finding with its line and, for a typo, a did-you-mean. What makes
a browser ignore the whole header stays an import error: a malformed or repeated
directive (§2.1, rules 2 and 4), no ``max-age`` on an enforced header (§2.1.2
makes it required), and fewer than two pins, as a Valid Pinning Header must
carry a backup pin (§2.5, see §4.3).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

from pinset.errors import ConfigError
from pinset.formats._importing import (
    did_you_mean,
    host_name,
    import_rule,
    refuse_build_setting,
)
from pinset.formats._model import ExportError, ExportWarning, Finding, Imported, PlatformDomain
from pinset.hosts import canonical_host
from pinset.pins import Pin
from pinset.policy import DomainRule, Policy

__all__ = ["DEFAULT_MAX_AGE", "FORMAT", "dumps", "loads", "sniff"]

FORMAT = "hpkp"
ENFORCED = "Public-Key-Pins"
REPORT_ONLY = "Public-Key-Pins-Report-Only"
DEFAULT_MAX_AGE = 60 * 24 * 3600  # 60 days, RFC 7469 §4.1's suggested order of magnitude
_DIRECTIVES = ("pin-sha256", "max-age", "includeSubDomains", "report-uri")
# Hash algorithms a pin-<name> directive may name that pinset does not compare.
_OTHER_ALGORITHMS = frozenset({"md5", "sha1", "sha224", "sha384", "sha512"})
_DIRECTIVE = re.compile(
    r"""\s*(?P<name>[^=;\s]+)\s*(?:=\s*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<token>[^;\s"]*)))?\s*(?:;|$)"""
)
_HEADER = re.compile(r"\s*(?P<name>Public-Key-Pins(?:-Report-Only)?)\s*:(?P<value>.*)", re.I)
_NEWLINE = re.compile(r"\r\n|\r|\n")
_HOST = re.compile(r"\s*Host\s*:\s*(?P<host>\S+)\s*$", re.I)


def sniff(data: bytes) -> bool:
    """True for text holding a ``Public-Key-Pins`` header or a ``pin-sha256=`` value."""
    head = data[:4096].lower()
    return b"public-key-pins" in head or (b"pin-sha256" in head and b"max-age" in head)


@dataclass(frozen=True, slots=True)
class _Header:
    """The header a browser reads: its name, value and line; where the others and Host are."""

    name: str
    value: str
    line: int
    ignored: tuple[tuple[str, int], ...] = ()
    host: tuple[str, int] | None = None

    @property
    def report_only(self) -> bool:
        return self.name.lower() == REPORT_ONLY.lower()


def loads(data: str | bytes, *, source: str | None = None, host: str | None = None) -> Imported:
    """Read one HPKP header into a one-rule policy for ``host`` (or the ``Host:`` line)."""
    text = data.decode("utf-8-sig", errors="replace") if isinstance(data, bytes) else data
    header = _find_header(text, source)
    canonical = _host(header, host, source)
    number = header.line
    directives, skipped = _directives(header.value, source, number)
    texts = [v or "" for k, v in directives if k == "pin-sha256"]
    single = {k: v for k, v in directives if k != "pin-sha256"}
    max_age = _max_age(single.get("max-age"), header.report_only, skipped, source, number)
    include = "includeSubDomains" in single
    report_uri = single.get("report-uri")
    uris = (report_uri,) if report_uri else ()
    pins = tuple(Pin.parse(f'pin-sha256="{t}"', source=source, line=number) for t in texts)
    findings = _header_findings(header, canonical, single, skipped, max_age, source)
    _check_pins(pins, header, skipped, source)
    rule, written = import_rule(
        source=source,
        line=number,
        pin_texts=texts,
        # HPKP bounds the pins with max-age instead of an expiration date.
        lifetime="max-age",
        name=canonical,
        pins=pins,
        include_subdomains=include,
        enforce=not header.report_only,
        report_uris=uris,
    )
    domain = PlatformDomain(
        canonical, include_subdomains=include, pin_texts=tuple(texts), line=number
    )
    return Imported(
        Policy(rules=(rule,), source=source),
        FORMAT,
        source,
        tuple(findings),
        (domain,),
        {"max_age": max_age, "header": REPORT_ONLY if header.report_only else ENFORCED},
        lines={rule.pattern: number},
        written=(written,),
    )


def _find_header(text: str, source: str | None) -> _Header:
    """The first header line (later ones are ignored, as browsers do) and the ``Host:`` line."""
    header: tuple[str, str, int] | None = None
    ignored: list[tuple[str, int]] = []
    host_line: tuple[str, int] | None = None
    # Universal newlines only: str.splitlines() also breaks at \v, \f and \x1c-\x1e,
    # which would make every later line number disagree with the user's editor.
    for number, line in enumerate(_NEWLINE.split(text), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        found_host = _HOST.fullmatch(line)
        if found_host:
            host_line = (found_host.group("host"), number)
            continue
        found = _HEADER.fullmatch(line)
        name, value = (found.group("name"), found.group("value")) if found else (ENFORCED, line)
        if not found and "pin-" not in line.lower():
            raise ConfigError(
                f"not an HPKP header line: {line.strip()[:60]!r}",
                source=source,
                line=number,
                hint="write 'Public-Key-Pins: pin-sha256=\"…\"; max-age=N' (and 'Host: name')",
            )
        if header is None:
            header = (name, value, number)
        else:
            ignored.append((name, number))
    if header is None:
        raise ConfigError("no Public-Key-Pins header in the text", source=source)
    return _Header(*header, ignored=tuple(ignored), host=host_line)


def _host(header: _Header, host: str | None, source: str | None) -> str:
    """The canonical host the header pins: ``host`` if given, else the ``Host:`` line."""
    where = header.host[1] if header.host and host is None else header.line
    raw_host = host if host is not None else header.host[0] if header.host else None
    if raw_host is None:
        raise ConfigError(
            "an HPKP header pins the host that serves it, and no host is given",
            source=source,
            line=header.line,
            hint=(
                "add a line 'Host: api.example.com' before the header "
                "(or pinset import --host NAME; host=… in Python)"
            ),
        )
    return host_name(raw_host, source=source, line=where, key="Host")


def _header_findings(
    header: _Header,
    canonical: str,
    single: dict[str, str | None],
    skipped: list[str],
    max_age: int | None,
    source: str | None,
) -> list[Finding]:
    """What a browser ignores (later headers, unknown directives) and a max-age of 0."""
    findings: list[Finding] = [
        Finding(
            "hpkp-extra-header",
            "warning",
            f"browsers process only the first {ENFORCED} header; this {kind} is ignored",
            source=source,
            line=line,
        )
        for kind, line in header.ignored
    ]
    findings.extend(_skipped(name, canonical, single, source, header.line) for name in skipped)
    if max_age == 0:
        findings.append(
            Finding(
                "hpkp-max-age-zero",
                "info",
                f"max-age=0 tells browsers to forget the pins of {canonical}",
                domain=canonical,
                source=source,
                line=header.line,
            )
        )
    return findings


def _check_pins(
    pins: tuple[Pin, ...], header: _Header, skipped: list[str], source: str | None
) -> None:
    """What makes browsers ignore the header: no pin, or no backup pin."""
    other_pins = [name for name in skipped if name.lower().startswith("pin-")]
    besides = f" (skipped: {', '.join(other_pins)})" if other_pins else ""
    if not pins:
        raise ConfigError(
            f"the header lists no pin-sha256 directive{besides}",
            source=source,
            line=header.line,
            key="pin-sha256",
            hint="pin the keys with pin-sha256 (pinset pin HOST prints them)",
        )
    distinct = list(dict.fromkeys(pins))
    if not header.report_only and len(distinct) < 2:
        raise ConfigError(
            f"browsers ignore a {ENFORCED} header without a backup pin{besides}: a valid "
            "header also pins a key outside the served chain (RFC 7469 §2.5, §4.3)",
            source=source,
            line=header.line,
            key="pin-sha256",
            hint="add the pin-sha256 of an offline backup key (pinset keygen)",
        )


def _skipped(
    raw_name: str, host: str, single: dict[str, str | None], source: str | None, line: int
) -> Finding:
    """The warning for a directive a browser skips, and what skipping it costs."""
    if raw_name.lower().startswith("pin-"):
        # Chromium's parser (net/http/http_security_headers.cc) also read pin-sha1 as a SHA-1
        # pin; Firefox's (nsSiteSecurityService.cpp) collected pin-sha256 only. pinset compares
        # SHA-256 digests only, so its rule accepts no key that either browser refused.
        typo = raw_name[4:].lower() not in _OTHER_ALGORITHMS and _meant(raw_name) is not None
        return Finding(
            "hpkp-unknown-pin-algorithm",
            "warning",
            f"{raw_name} is skipped: RFC 7469 §2.1.1 has browsers ignore a pin whose hash "
            "algorithm they do not recognise, and pinset compares SHA-256 pins only",
            domain=host,
            fix="did you mean 'pin-sha256'?"
            if typo
            else "pin the key with pin-sha256 (pinset pin HOST prints it)",
            source=source,
            line=line,
        )
    meant = _meant(raw_name)
    costs = {
        "includeSubDomains": f", so the names below {host} are not pinned",
        "report-uri": ", so no failure reports are sent",
    }
    cost = costs.get(meant, "") if meant is not None and meant not in single else ""
    return Finding(
        "hpkp-unknown-directive",
        "warning",
        f"browsers skip the unknown directive {raw_name!r} (RFC 7469 §2.1, rule 5){cost}",
        domain=host,
        fix=did_you_mean(raw_name, _DIRECTIVES, "directives"),
        source=source,
        line=line,
    )


def _meant(raw_name: str) -> str | None:
    """The directive a typo ``raw_name`` was meant to be, if it is close to one."""
    hint = did_you_mean(raw_name, _DIRECTIVES)
    return next((d for d in _DIRECTIVES if hint == f"did you mean {d!r}?"), None)


def _directives(
    value: str, source: str | None, line: int
) -> tuple[list[tuple[str, str | None]], list[str]]:
    """The directives pinset reads, and the names of those a browser skips."""
    out: list[tuple[str, str | None]] = []
    skipped: list[str] = []
    seen: set[str] = set()
    canonical = {d.lower(): d for d in _DIRECTIVES}
    position = 0
    value = value.strip()
    while position < len(value):
        match = _DIRECTIVE.match(value, position)
        if not match or match.end() == position:
            raise ConfigError(
                f"cannot read the directive at {value[position : position + 30]!r}",
                source=source,
                line=line,
                hint='directives are name or name=value, separated by ";" (pin-sha256="…")',
            )
        position = match.end()
        raw_name = match.group("name")
        name = canonical.get(raw_name.lower())
        quoted, token = match.group("quoted"), match.group("token")
        argument = quoted.replace('\\"', '"') if quoted is not None else token
        if argument is not None:
            # An unfilled template fails loudly even in a directive browsers skip.
            refuse_build_setting(argument, source=source, line=line, key=name or raw_name)
        if name is None:
            skipped.append(raw_name)
            continue
        if name != "pin-sha256":
            if name in seen:
                raise ConfigError(
                    f"the directive {name} appears twice; browsers then ignore the whole header",
                    source=source,
                    line=line,
                    key=name,
                )
            seen.add(name)
        if (name == "includeSubDomains") != (argument is None):
            what = "takes no value" if name == "includeSubDomains" else "needs a value"
            raise ConfigError(f"{name} {what}", source=source, line=line, key=name)
        out.append((name, argument))
    return out, skipped


def _max_age(
    value: str | None, report_only: bool, skipped: list[str], source: str | None, line: int
) -> int | None:
    if value is None:
        if report_only:
            return None
        typos = [name for name in skipped if _meant(name) == "max-age"]
        raise ConfigError(
            f"{ENFORCED} needs max-age; browsers ignore the header without it (RFC 7469 §2.1.2)",
            source=source,
            line=line,
            key="max-age",
            hint=f"{typos[0]!r} is not max-age: write max-age=…"
            if typos
            else "add max-age=5184000 (60 days)",
        )
    if not (value.isascii() and value.isdigit()):
        raise ConfigError(
            f"max-age must be a number of seconds, not {value!r}",
            source=source,
            line=line,
            key="max-age",
        )
    return int(value)


def dumps(
    policy: Policy,
    *,
    host: str | None = None,
    max_age: int | str = DEFAULT_MAX_AGE,
    host_line: bool = False,
) -> str:
    """The HPKP header line for ``host``'s rule (the only rule when ``host`` is omitted).

    A report-only rule gives ``Public-Key-Pins-Report-Only``. ``host_line=True``
    puts a ``Host:`` line first so :func:`loads` can read the file back alone.
    """
    rule = _rule(policy, host)
    if isinstance(max_age, str) and max_age.strip().isascii() and max_age.strip().isdigit():
        max_age = int(max_age)  # from the command line: -O max_age=86400
    if not isinstance(max_age, int) or isinstance(max_age, bool) or max_age < 0:
        raise ExportError(
            f"max-age must be a whole number of seconds, not {max_age!r}", key="max_age"
        )
    if rule.enforce and len(rule.pins) < 2:
        raise ExportError(
            f"browsers ignore a {ENFORCED} header with one pin ({rule.name})",
            key="pins",
            hint="add the pin of an offline backup key (pinset keygen)",
        )
    if rule.expiration is not None:
        warnings.warn(
            f"HPKP has no expiration date: browsers enforce the pins of {rule.name} for "
            f"max-age={max_age}s after each response, also after {rule.expiration.isoformat()}; "
            "stop serving the header before that date",
            ExportWarning,
            stacklevel=2,
        )
    parts = [f'pin-sha256="{pin.b64}"' for pin in rule.pins]
    parts.append(f"max-age={max_age}")
    if rule.include_subdomains:
        parts.append("includeSubDomains")
    if rule.report_uris:
        if len(rule.report_uris) > 1:
            warnings.warn(
                f"HPKP takes one report-uri: {', '.join(rule.report_uris[1:])} not written",
                ExportWarning,
                stacklevel=2,
            )
        parts.append(f'report-uri="{rule.report_uris[0]}"')
    name = ENFORCED if rule.enforce else REPORT_ONLY
    head = f"Host: {rule.name}\n" if host_line else ""
    return f"{head}{name}: {'; '.join(parts)}\n"


def _rule(policy: Policy, host: str | None) -> DomainRule:
    candidates = [r for r in policy.rules if not r.exclude]
    if host is not None:
        name = canonical_host(host)
        candidates = [r for r in candidates if r.name == name and not r.one_label]
        if not candidates:
            raise ExportError(
                f"the policy has no rule for {name}",
                key="host",
                hint=f"pick one of: {', '.join(r.pattern for r in policy.rules)}",
            )
    elif len(candidates) != 1:
        raise ExportError(
            f"an HPKP header pins one host; the policy has {len(candidates)} pinned rules",
            key="host",
            hint="pass host=NAME (pinset export --format hpkp -O host=NAME)",
        )
    rule = candidates[0]
    if rule.one_label:
        raise ExportError(
            f"HPKP cannot express {rule.pattern}: a header pins the host that serves it",
            key="name",
            hint=f"serve the header from each host under {rule.name}",
        )
    return rule
