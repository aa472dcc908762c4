"""Read the policy file (``pinset.toml`` or JSON) into a :class:`~pinset.policy.Policy`.

The shell around the pure core in :mod:`pinset.policy`: reading the file, parsing
TOML and JSON, and the checks of the file format that name the key and line at
fault. ``policyfile.load``, ``policyfile.loads`` and ``policyfile.from_dict``
delegate here; :mod:`pinset.policyfile._writer` writes the same format.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from pinset.errors import ConfigError, PinsetError
from pinset.hosts import canonical_host
from pinset.pins import Pin
from pinset.policy import DomainRule, Policy, check_report_uri
from pinset.policyfile._positions import Locator

__all__ = ["from_dict", "load", "loads"]

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
    "placeholder-only",
)
_TOP_KEYS = ("defaults", "domain")
# Only the one spelling every platform format uses (3.11's fromisoformat takes more).
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def load(cls: type[Policy], path: str | Path) -> Policy:
    """:func:`pinset.policyfile.load`: read a ``.toml`` or ``.json`` file."""
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
    return loads(cls, text, format=fmt, source=str(path))


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads silently keeps the last of repeated keys; a policy must not.
    table: dict[str, Any] = {}
    for key, value in pairs:
        if key in table:
            raise _DuplicateKey(key)
        table[key] = value
    return table


def loads(
    cls: type[Policy], text: str, *, format: str = "toml", source: str | None = None
) -> Policy:
    """:func:`pinset.policyfile.loads`: parse TOML or JSON text."""
    data: Any
    if format == "json":
        try:
            data = json.loads(text, object_pairs_hook=_refuse_duplicate_keys)
        except _DuplicateKey as exc:
            raise ConfigError(
                f"key {exc.key!r} appears twice in one JSON object",
                source=source,
                key=exc.key,
                hint="JSON keeps only the last value of a repeated key; remove one of them",
            ) from None
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
    return from_dict(cls, data, source=source, text=text, json_text=format == "json")


def from_dict(
    cls: type[Policy],
    data: Mapping[str, Any],
    *,
    source: str | None = None,
    text: str | None = None,
    json_text: bool = False,
) -> Policy:
    """:func:`pinset.policyfile.from_dict`: build from the parsed mapping."""
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
    _reject_unknown(defaults, _DEFAULT_KEYS, "[defaults]", source, lambda key: where.key(None, key))

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
                f"domain {rule.pattern!r} appears twice (also in [[domain]] #{seen[ident] + 1})",
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
            check_report_uri(uri, None)
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
            placeholder_only=_typed(
                entry.get("placeholder-only", False),
                bool,
                "placeholder-only",
                label,
                source,
                line("placeholder-only"),
            ),
            one_label=one_label,
        )
    except ConfigError as exc:
        # A problem with a key the table does not write comes from its name (or defaults).
        key_line = line(exc.key) if exc.key is not None and exc.key in entry else line("name")
        raise exc.with_location(source=source, line=key_line) from None
