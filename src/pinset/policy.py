"""The pin policy: which hosts are pinned to which keys, until when, and how strictly.

Pure: no sockets, clocks or files (:meth:`Policy.load` is the one reader, a thin
shell over :meth:`Policy.loads`). Values are validated on construction and
immutable. Rules are indexed once, when the policy is built.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pinset._locate import Locator
from pinset.errors import ConfigError, PinsetError
from pinset.hosts import canonical_host, is_ip_literal, parent_domains
from pinset.pins import Pin

if TYPE_CHECKING:
    from pinset.evaluate import Verdict

__all__ = ["DomainRule", "Policy"]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_DEFAULT_KEYS = ("enforce", "include-subdomains", "report-uris")
_DOMAIN_KEYS = (
    "name",
    "include-subdomains",
    "expiration",
    "pins",
    "enforce",
    "report-uris",
    "exclude",
    "allow-single-pin",
)
_TOP_KEYS = ("defaults", "domain")
# Only the one spelling every platform format uses (3.11's fromisoformat takes more).
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True, slots=True)
class DomainRule:
    """One pinned (or excluded) domain.

    ``name`` is canonical. ``one_label`` marks an OkHttp-style ``*.name`` rule that
    covers exactly one extra label and not ``name`` itself; ``**.name`` is
    ``name`` with ``include_subdomains``. ``expiration`` is a UTC calendar date:
    the pins are enforced until 00:00:00 UTC of that date, not after.
    """

    name: str
    pins: tuple[Pin, ...] = ()
    include_subdomains: bool = False
    expiration: dt.date | None = None
    enforce: bool = True
    report_uris: tuple[str, ...] = ()
    exclude: bool = False
    allow_single_pin: bool = False
    one_label: bool = False

    def __post_init__(self) -> None:
        name = canonical_host(self.name)
        object.__setattr__(self, "name", name)
        pins = tuple(dict.fromkeys(self.pins))
        for pin in pins:
            if not isinstance(pin, Pin):
                raise ConfigError(f"domain {name!r}: pins must be Pin values, not {pin!r}")
        object.__setattr__(self, "pins", pins)
        object.__setattr__(self, "report_uris", tuple(self.report_uris))
        if isinstance(self.expiration, dt.datetime) or (
            self.expiration is not None and not isinstance(self.expiration, dt.date)
        ):
            raise ConfigError(
                f"domain {name!r}: expiration must be a calendar date",
                key="expiration",
                hint="write expiration = 2027-06-30 (a date, UTC, no time)",
            )
        if self.one_label and self.include_subdomains:
            raise ConfigError(
                f"domain '*.{name}': a one-label wildcard cannot also include subdomains",
                key="include-subdomains",
                hint=f"use '**.{name}' (or include-subdomains = true on {name!r}) for any depth",
            )
        if is_ip_literal(name) and (self.include_subdomains or self.one_label):
            raise ConfigError(
                f"domain {name!r} is an IP address; it has no subdomains",
                key="include-subdomains",
                hint="remove include-subdomains from this rule",
            )
        for uri in self.report_uris:
            _check_report_uri(uri, name)
        if self.exclude:
            if pins:
                raise ConfigError(
                    f"domain {self.pattern!r} is an exclusion but lists pins",
                    key="pins",
                    hint="an exclude = true rule carves the name out of a parent: remove its pins",
                )
            return
        if not pins:
            raise ConfigError(
                f"domain {self.pattern!r} has no pins",
                key="pins",
                hint="add the current key's pin and an offline backup pin (pinset pin HOST)",
            )
        real = [p for p in pins if not p.is_placeholder]
        if not real:
            raise ConfigError(
                f"domain {self.pattern!r} has only placeholder pins ({', '.join(map(str, pins))})",
                key="pins",
                hint="a placeholder matches no key; add the current key's pin (pinset pin HOST)",
            )
        if self.enforce and not self.allow_single_pin and len(real) < 2:
            placeholders = len(pins) - len(real)
            counted = "pins do" if placeholders > 1 else "pin does"
            why = f" ({placeholders} placeholder {counted} not count)" if placeholders else ""
            raise ConfigError(
                f"domain {self.pattern!r} is enforced with {len(real)} real pin"
                f"{'s' if len(real) != 1 else ''}{why}; it needs a backup pin",
                key="pins",
                hint=(
                    "add the pin of an offline backup key (pinset keygen --out backup.key), "
                    "or set allow-single-pin = true if you accept a lock-out on key loss"
                ),
            )

    @property
    def pattern(self) -> str:
        """The rule's name as written in OkHttp style: ``example.com``, ``*.example.com``."""
        return f"*.{self.name}" if self.one_label else self.name

    def expires_at(self) -> dt.datetime | None:
        """The instant the pins stop being enforced: 00:00:00 UTC of ``expiration``."""
        if self.expiration is None:
            return None
        return dt.datetime.combine(self.expiration, dt.time(0), tzinfo=dt.timezone.utc)

    def is_expired(self, now: dt.datetime) -> bool:
        """True at and after 00:00:00 UTC of the expiration date. ``now`` must be timezone-aware."""
        expires = self.expires_at()
        return expires is not None and now >= expires

    def covers(self, host: str) -> bool:
        """True when this rule's pattern matches the canonical ``host`` (ignoring other rules)."""
        if self.one_label:
            head, _, rest = host.partition(".")
            return bool(head) and rest == self.name
        if host == self.name:
            return True
        return self.include_subdomains and host.endswith("." + self.name)


@dataclass(frozen=True, slots=True)
class Policy:
    """A set of :class:`DomainRule` with policy-wide defaults.

    Build one with :meth:`load`, :meth:`loads`, :meth:`from_dict` or directly.
    Look a host up with :meth:`match` and judge a verified chain with
    :meth:`evaluate`. Equality ignores where the policy was read from.
    """

    rules: tuple[DomainRule, ...] = ()
    enforce: bool = True
    include_subdomains: bool = False
    report_uris: tuple[str, ...] = ()
    source: str | None = field(default=None, compare=False)
    _exact: dict[str, DomainRule] = field(init=False, repr=False, compare=False)
    _one_label: dict[str, DomainRule] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        exact: dict[str, DomainRule] = {}
        one_label: dict[str, DomainRule] = {}
        for rule in self.rules:
            if not isinstance(rule, DomainRule):
                raise ConfigError(f"policy rules must be DomainRule values, not {rule!r}")
            table = one_label if rule.one_label else exact
            if rule.name in table:
                raise ConfigError(
                    f"domain {rule.pattern!r} appears twice",
                    key="name",
                    hint="merge the two [[domain]] tables into one",
                )
            table[rule.name] = rule
        for uri in self.report_uris:
            _check_report_uri(uri, None)
        object.__setattr__(self, "rules", tuple(sorted(self.rules, key=_rule_order)))
        object.__setattr__(self, "report_uris", tuple(self.report_uris))
        object.__setattr__(self, "_exact", exact)
        object.__setattr__(self, "_one_label", one_label)

    # -- lookup -----------------------------------------------------------------

    def match(self, host: str) -> DomainRule | None:
        """The most specific rule for ``host``: exact name, then the nearest parent.

        A parent counts when it includes subdomains (or is a ``*.`` rule one label
        up). The result may be an exclusion rule; :meth:`rule_for` hides those.
        """
        name = canonical_host(host)
        rule = self._exact.get(name)
        if rule is not None:
            return rule
        for depth, parent in enumerate(parent_domains(name)):
            if depth == 0:
                wildcard = self._one_label.get(parent)
                if wildcard is not None:
                    return wildcard
            rule = self._exact.get(parent)
            if rule is not None and rule.include_subdomains:
                return rule
        return None

    def rule_for(self, host: str) -> DomainRule | None:
        """The rule that pins ``host``, or ``None`` when it is not pinned (or excluded)."""
        rule = self.match(host)
        return None if rule is None or rule.exclude else rule

    def evaluate(
        self, host: str, verified_chain: Sequence[Any], now: dt.datetime | None = None
    ) -> Verdict:
        """Judge ``verified_chain`` (leaf first; certificates or DER) for ``host`` at ``now``.

        ``now`` defaults to the current UTC time; pass it explicitly to keep the
        call free of the clock. See :func:`pinset.evaluate.evaluate`.
        """
        from pinset.evaluate import evaluate

        if now is None:
            now = dt.datetime.now(dt.timezone.utc)
        return evaluate(self, host, verified_chain, now=now)

    # -- construction -----------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        """Read a policy from a ``.toml`` or ``.json`` file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"not UTF-8 text: {exc.reason}", source=str(path)) from None
        except OSError as exc:
            raise ConfigError(
                f"cannot read policy: {exc.strerror or exc}",
                source=str(path),
                hint="check the path; 'pinset init' writes a policy from live hosts",
            ) from None
        fmt = "json" if path.suffix.lower() == ".json" or text.lstrip().startswith("{") else "toml"
        return cls.loads(text, format=fmt, source=str(path))

    @classmethod
    def loads(cls, text: str, *, format: str = "toml", source: str | None = None) -> Policy:
        """Parse policy text (``format`` is ``"toml"`` or ``"json"``)."""
        data: Any
        if format == "json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    f"invalid JSON: {exc.msg}", source=source, line=exc.lineno, column=exc.colno
                ) from None
            except (ValueError, RecursionError) as exc:  # huge numbers, absurd nesting
                raise ConfigError(f"invalid JSON: {exc}", source=source) from None
        elif format == "toml":
            try:
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError as exc:
                line, column = _toml_position(str(exc))
                raise ConfigError(
                    f"invalid TOML: {exc}", source=source, line=line, column=column
                ) from None
            except RecursionError:
                raise ConfigError("invalid TOML: nested too deeply", source=source) from None
        else:
            raise ConfigError(f"unknown policy format {format!r}", hint="use 'toml' or 'json'")
        return cls.from_dict(data, source=source, text=text, json_text=format == "json")

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        source: str | None = None,
        text: str | None = None,
        json_text: bool = False,
    ) -> Policy:
        """Build a policy from the parsed TOML/JSON mapping (keys as in the policy file)."""
        where = Locator(text, json=json_text)
        if not isinstance(data, Mapping):
            raise ConfigError("a policy is a table of [defaults] and [[domain]]", source=source)
        _reject_unknown(data, _TOP_KEYS, "the top level", source, where.top)
        defaults = data.get("defaults", {})
        if not isinstance(defaults, Mapping):
            raise ConfigError(
                "[defaults] must be a table",
                source=source,
                line=where.top("defaults"),
                key="defaults",
            )
        _reject_unknown(
            defaults, _DEFAULT_KEYS, "[defaults]", source, lambda key: where.key(None, key)
        )

        def default_value(key: str, kind: type, fallback: Any) -> Any:
            value = defaults.get(key, fallback)
            return _typed(value, kind, key, "[defaults]", source, where.key(None, key))

        enforce = default_value("enforce", bool, True)
        include = default_value("include-subdomains", bool, False)
        uris = _uri_list(defaults.get("report-uris", []), "[defaults]", source, where, None)
        domains = data.get("domain", [])
        if not isinstance(domains, list):
            raise ConfigError(
                "domains are written as [[domain]] tables (a list)",
                source=source,
                line=where.top("domain"),
                key="domain",
            )
        rules = []
        seen: dict[tuple[str, bool], int] = {}
        for index, entry in enumerate(domains):
            rule = _rule_from_dict(entry, index, enforce, include, uris, source, where)
            ident = (rule.name, rule.one_label)
            if ident in seen:
                raise ConfigError(
                    f"domain {rule.pattern!r} appears twice "
                    f"(also in [[domain]] #{seen[ident] + 1})",
                    source=source,
                    line=where.key(index, "name"),
                    key="name",
                    hint="merge the two [[domain]] tables into one",
                )
            seen[ident] = index
            rules.append(rule)
        try:
            return cls(
                rules=tuple(rules),
                enforce=enforce,
                include_subdomains=include,
                report_uris=uris,
                source=source,
            )
        except PinsetError as exc:
            raise exc.with_location(source=source) from None

    # -- output -----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The policy as a TOML/JSON-ready mapping (dates as ``datetime.date``)."""
        defaults: dict[str, Any] = {
            "enforce": self.enforce,
            "include-subdomains": self.include_subdomains,
        }
        if self.report_uris:
            defaults["report-uris"] = list(self.report_uris)
        domains = []
        for rule in self.rules:
            entry: dict[str, Any] = {"name": rule.pattern}
            # A "*." name already says which subdomains it covers.
            if not rule.one_label and rule.include_subdomains != self.include_subdomains:
                entry["include-subdomains"] = rule.include_subdomains
            if rule.exclude:
                entry["exclude"] = True
            if rule.expiration is not None:
                entry["expiration"] = rule.expiration
            if rule.enforce != self.enforce:
                entry["enforce"] = rule.enforce
            if rule.allow_single_pin:
                entry["allow-single-pin"] = True
            if rule.report_uris != self.report_uris:
                entry["report-uris"] = list(rule.report_uris)
            if rule.pins:
                entry["pins"] = [str(p) for p in rule.pins]
            domains.append(entry)
        return {"defaults": defaults, "domain": domains}

    def to_json(self) -> str:
        """The policy as JSON text with the same keys as the TOML file."""
        data = self.to_dict()
        for entry in data["domain"]:
            if "expiration" in entry:
                entry["expiration"] = entry["expiration"].isoformat()
        return json.dumps(data, indent=2) + "\n"

    def to_toml(self) -> str:
        """The policy as ``pinset.toml`` text: deterministic; :meth:`loads` reads it back equal."""
        data = self.to_dict()
        out = ["[defaults]"]
        for key, value in data["defaults"].items():
            out.append(f"{key} = {_toml_value(value)}")
        for entry in data["domain"]:
            out.append("")
            out.append("[[domain]]")
            for key, value in entry.items():
                if key == "pins":
                    out.append("pins = [")
                    out.extend(f"  {_toml_value(pin)}," for pin in value)
                    out.append("]")
                else:
                    out.append(f"{key} = {_toml_value(value)}")
        return "\n".join(out) + "\n"


def _rule_order(rule: DomainRule) -> tuple[str, bool]:
    return (rule.name, rule.one_label)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        # JSON string escapes are TOML basic-string escapes; TOML also forbids a raw DEL.
        return json.dumps(value).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _toml_position(message: str) -> tuple[int | None, int | None]:
    match = re.search(r"line (\d+), column (\d+)", message)
    if match:
        return int(match.group(1)), int(match.group(2))
    return None, None


def _reject_unknown(
    table: Mapping[str, Any],
    known: Iterable[str],
    where: str,
    source: str | None,
    line_of: Callable[[str], int | None],
) -> None:
    known = tuple(known)
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            raise ConfigError(
                f"unknown key {key!r} in {where}",
                source=source,
                line=line_of(str(key)),
                key=str(key),
                hint=hint,
            )


def _typed(
    value: Any, kind: type, key: str, where: str, source: str | None, line: int | None
) -> Any:
    if not isinstance(value, kind):
        raise ConfigError(
            f"{key} in {where} must be {'true or false' if kind is bool else kind.__name__}, "
            f"not {value!r}",
            source=source,
            line=line,
            key=key,
        )
    return value


def _check_report_uri(uri: Any, domain: str | None) -> None:
    where = f"domain {domain!r}" if domain else "[defaults]"
    if not isinstance(uri, str):
        raise ConfigError(f"report-uris in {where} must be strings, not {uri!r}", key="report-uris")
    try:
        parts = urlsplit(uri)
        hostname = parts.hostname
    except ValueError:
        parts, hostname = None, None
    if (
        parts is None
        or parts.scheme not in ("https", "http")
        or not hostname
        or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in uri)
    ):
        raise ConfigError(
            f"report URI {uri!r} in {where} is not an http(s) URL",
            key="report-uris",
            hint="write a full URL such as https://pin-reports.example.net/v1/report",
        )


def _uri_list(
    value: Any, where: str, source: str | None, locator: Locator, index: int | None
) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(
            f"report-uris in {where} must be a list of URLs",
            source=source,
            line=locator.key(index, "report-uris"),
            key="report-uris",
        )
    for position, uri in enumerate(value):
        try:
            _check_report_uri(uri, None)
        except ConfigError as exc:
            exc.message = exc.message.replace("[defaults]", where)
            raise exc.with_location(
                source=source, line=locator.item(index, "report-uris", position)
            ) from None
    return tuple(value)


def _parse_date(value: Any, where: str, source: str | None, line: int | None) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        raise ConfigError(
            f"expiration of {where} has a time of day; pins expire at the start of a UTC date",
            source=source,
            line=line,
            key="expiration",
            hint=f"write expiration = {value.date().isoformat()}",
        )
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ConfigError(
        f"expiration of {where} is not a date: {value!r}",
        source=source,
        line=line,
        key="expiration",
        hint="write a calendar date as YYYY-MM-DD, for example expiration = 2027-06-30",
    )


def _rule_from_dict(
    entry: Any,
    index: int,
    enforce: bool,
    include: bool,
    uris: tuple[str, ...],
    source: str | None,
    where: Locator,
) -> DomainRule:
    section_line = where.section(index)
    if not isinstance(entry, Mapping):
        raise ConfigError(
            f"[[domain]] #{index + 1} must be a table", source=source, line=section_line
        )
    raw_name = entry.get("name")
    label = f"[[domain]] #{index + 1}" if not isinstance(raw_name, str) else f"domain {raw_name!r}"

    def line(key: str) -> int | None:
        return where.key(index, key)

    _reject_unknown(entry, _DOMAIN_KEYS, label, source, line)
    if raw_name is None:
        raise ConfigError(
            f"{label} has no name",
            source=source,
            line=section_line,
            key="name",
            hint='add name = "api.example.com"',
        )
    if not isinstance(raw_name, str):
        raise ConfigError(
            f"name of {label} must be a string, not {raw_name!r}",
            source=source,
            line=line("name"),
            key="name",
            hint='write name = "api.example.com"',
        )
    one_label = False
    name = raw_name.strip()
    if name.startswith("**."):
        name, include_default = name[3:], True
    elif name.startswith("*."):
        name, one_label, include_default = name[2:], True, False
    else:
        include_default = include
    if "*" in name:
        raise ConfigError(
            f"{label}: '*' is only allowed as a leading '*.' or '**.'",
            source=source,
            line=line("name"),
            key="name",
        )
    try:
        canonical_host(name)
    except ConfigError as exc:
        raise exc.with_location(source=source, line=line("name")) from None
    sub_value = entry.get("include-subdomains", include_default)
    if raw_name.strip().startswith(("*.", "**.")) and "include-subdomains" in entry:
        raise ConfigError(
            f"{label}: a wildcard name already says which subdomains it covers",
            source=source,
            line=line("include-subdomains"),
            key="include-subdomains",
            hint="remove include-subdomains, or write the plain name",
        )
    include_subdomains = _typed(
        sub_value, bool, "include-subdomains", label, source, line("include-subdomains")
    )
    pins_value = entry.get("pins", [])
    if not isinstance(pins_value, list):
        raise ConfigError(
            f"pins of {label} must be a list of strings",
            source=source,
            line=line("pins"),
            key="pins",
        )
    pins = [
        Pin.parse(text, source=source, line=where.item(index, "pins", position))
        for position, text in enumerate(pins_value)
    ]
    rule_uris = (
        _uri_list(entry["report-uris"], label, source, where, index)
        if "report-uris" in entry
        else uris
    )
    try:
        return DomainRule(
            name=name,
            pins=tuple(pins),
            include_subdomains=include_subdomains,
            expiration=_parse_date(entry.get("expiration"), label, source, line("expiration")),
            enforce=_typed(
                entry.get("enforce", enforce), bool, "enforce", label, source, line("enforce")
            ),
            report_uris=rule_uris,
            exclude=_typed(
                entry.get("exclude", False), bool, "exclude", label, source, line("exclude")
            ),
            allow_single_pin=_typed(
                entry.get("allow-single-pin", False),
                bool,
                "allow-single-pin",
                label,
                source,
                line("allow-single-pin"),
            ),
            one_label=one_label,
        )
    except ConfigError as exc:
        # A problem with a key the table does not write comes from its name (or defaults).
        key_line = line(exc.key) if exc.key is not None and exc.key in entry else line("name")
        raise exc.with_location(source=source, line=key_line) from None
