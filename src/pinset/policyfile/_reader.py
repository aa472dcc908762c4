"""Read the policy file (``pinset.toml`` or JSON) into a :class:`~pinset.policy.Policy`.

The shell around the pure core in :mod:`pinset.policy`: reading the file, parsing
TOML and JSON, and the checks of the file format that name the key and line at
fault. ``policyfile.load``, ``policyfile.loads`` and ``policyfile.from_dict``
delegate here; :mod:`pinset.policyfile._writer` writes the same format.

:func:`read_policy` also returns where each rule is written (:class:`ReadPolicy`:
the line of each rule and of each pin as written), so that the audit and the
importer quote the file without parsing it again.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pinset._dates import parse_iso_date
from pinset.errors import ConfigError, PinsetError
from pinset.hosts import canonical_host
from pinset.pins import Pin
from pinset.policy import DebugOverrides, DomainRule, Policy, check_report_uri
from pinset.policyfile._positions import Locator

__all__ = ["ReadPolicy", "RulePosition", "from_dict", "load", "loads", "read_policy"]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_DEFAULT_KEYS = ("enforce", "include-subdomains", "report-uris", "require-ct")
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
    "require-ct",
)
_DEBUG_KEYS = ("trust-anchors", "override-pins")
_UPDATES_KEYS = ("allow-signing-key-rotation",)
_TOP_KEYS = ("defaults", "domain", "debug-overrides", "updates")


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


@dataclass(frozen=True, slots=True)
class RulePosition:
    """Where one ``[[domain]]`` table is written: its ``name`` line and each pin as written.

    ``pins`` are (text as written, line) in file order; lines are ``None`` when
    the text is unknown.
    """

    line: int | None
    pins: tuple[tuple[str, int | None], ...] = ()


@dataclass(frozen=True, slots=True)
class ReadPolicy:
    """A policy read from text, and where each of its rules is written (by rule pattern)."""

    policy: Policy
    positions: Mapping[str, RulePosition] = field(default_factory=dict)


def read_policy(text: str, *, format: str = "toml", source: str | None = None) -> ReadPolicy:
    """Parse policy text (``"toml"`` or ``"json"``): the policy and the positions of its rules."""
    data = _parse(text, format, source)
    policy, positions = _build(Policy, data, source, Locator(text, json=format == "json"))
    return ReadPolicy(policy, positions)


def loads(
    cls: type[Policy], text: str, *, format: str = "toml", source: str | None = None
) -> Policy:
    """:func:`pinset.policyfile.loads`: parse TOML or JSON text."""
    data = _parse(text, format, source)
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
    return _build(cls, data, source, Locator(text, json=json_text))[0]


# -- parse: text -> mapping ---------------------------------------------------------


def _parse(text: str, format: str, source: str | None) -> Any:
    if format == "json":
        return _parse_json(text, source)
    if format == "toml":
        return _parse_toml(text, source)
    raise ConfigError(f"unknown policy format {format!r}", hint="use 'toml' or 'json'")


def _parse_json(text: str, source: str | None) -> Any:
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
    try:
        # JSON's \\uD800-\\uDFFF escapes decode alone, to no character: such a string could
        # be neither written to TOML nor encoded as UTF-8.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(
            "invalid JSON: a \\u escape is half of a surrogate pair (U+D800 to U+DFFF) "
            "without its other half, which is no character",
            source=source,
            hint="write the character itself, or both halves of its pair",
        ) from None
    return data


def _parse_toml(text: str, source: str | None) -> Any:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line, column = _toml_position(str(exc))
        raise ConfigError(f"invalid TOML: {exc}", source=source, line=line, column=column) from None
    except RecursionError:
        raise ConfigError("invalid TOML: nested too deeply", source=source) from None


# -- build: mapping -> Policy, with positions ----------------------------------------


@dataclass(frozen=True, slots=True)
class _Defaults:
    enforce: bool
    include: bool
    uris: tuple[str, ...]
    require_ct: bool = False


def _build(
    cls: type[Policy], data: Any, source: str | None, where: Locator
) -> tuple[Policy, dict[str, RulePosition]]:
    defaults = _read_defaults(data, source, where)
    message = "domains are written as [[domain]] tables (a list)"
    domains = _top(data, "domain", list, message, source, where)
    rules = []
    positions: dict[str, RulePosition] = {}
    seen: dict[tuple[str, bool], int] = {}
    for index, entry in enumerate(domains):
        table = _DomainTable.of(entry, index, source, where)
        rule = _rule_from_table(table, defaults)
        ident = (rule.name, rule.one_label)
        if ident in seen:
            raise table.error(
                f"domain {rule.pattern!r} appears twice (also in [[domain]] #{seen[ident] + 1})",
                "name",
                hint="merge the two [[domain]] tables into one",
            )
        seen[ident] = index
        rules.append(rule)
        positions[rule.pattern] = table.position()
    debug = _read_debug_overrides(data, source, where)
    rotation = _read_updates(data, source, where)
    try:
        policy = cls(
            rules=tuple(rules),
            enforce=defaults.enforce,
            include_subdomains=defaults.include,
            report_uris=defaults.uris,
            require_ct=defaults.require_ct,
            source=source,
            debug_overrides=debug,
            allow_signing_key_rotation=rotation,
        )
    except PinsetError as exc:
        raise exc.with_location(source=source) from None
    return policy, positions


def _top(
    data: Mapping[str, Any], key: str, kind: type, message: str, source: str | None, where: Locator
) -> Any:
    """Top-level table or list ``key`` of the policy (absent: empty), which must be a ``kind``."""
    value = data.get(key, [] if kind is list else {})
    if not isinstance(value, kind):
        raise ConfigError(message, source=source, line=where.top(key), key=key)
    return value


def _read_defaults(data: Any, source: str | None, where: Locator) -> _Defaults:
    if not isinstance(data, Mapping):
        raise ConfigError("a policy is a table of [defaults] and [[domain]]", source=source)
    _reject_unknown(data, _TOP_KEYS, "the top level", source, where.top)
    defaults = _top(data, "defaults", Mapping, "[defaults] must be a table", source, where)
    _reject_unknown(defaults, _DEFAULT_KEYS, "[defaults]", source, lambda key: where.key(None, key))

    def value(key: str, kind: type, fallback: Any) -> Any:
        return _typed(
            defaults.get(key, fallback), kind, key, "[defaults]", source, where.key(None, key)
        )

    return _Defaults(
        enforce=value("enforce", bool, True),
        include=value("include-subdomains", bool, False),
        uris=_uri_list(defaults.get("report-uris", []), "[defaults]", source, where, None),
        require_ct=value("require-ct", bool, False),
    )


def _read_debug_overrides(data: Any, source: str | None, where: Locator) -> DebugOverrides | None:
    """The ``[debug-overrides]`` table: anchor paths as written (not read here), override-pins."""
    if "debug-overrides" not in data:
        return None
    table = _top(
        data, "debug-overrides", Mapping, "[debug-overrides] must be a table", source, where
    )
    name = "debug-overrides"
    _reject_unknown(
        table, _DEBUG_KEYS, "[debug-overrides]", source, lambda key: where.named(name, key)
    )
    anchors = table.get("trust-anchors", [])
    if not isinstance(anchors, list):
        raise ConfigError(
            "trust-anchors of [debug-overrides] must be a list of PEM file paths",
            source=source,
            line=where.named(name, "trust-anchors"),
            key="trust-anchors",
            hint='write trust-anchors = ["team-proxy-ca.pem"]',
        )
    lines = tuple(where.named(name, "trust-anchors", n) for n in range(len(anchors)))
    override = _typed(
        table.get("override-pins", False),
        bool,
        "override-pins",
        "[debug-overrides]",
        source,
        where.named(name, "override-pins"),
    )
    try:
        return DebugOverrides(tuple(anchors), override, lines)
    except ConfigError as exc:
        line = where.named(name, exc.key or "trust-anchors")
        bad = [n for n, a in enumerate(anchors) if not isinstance(a, str) or not a.strip()]
        if bad and exc.key == "trust-anchors":
            line = lines[bad[0]]
        raise exc.with_location(source=source, line=line) from None


def _read_updates(data: Any, source: str | None, where: Locator) -> bool:
    """The ``[updates]`` table: whether a signed bundle may remove or replace signing keys."""
    table = _top(data, "updates", Mapping, "[updates] must be a table", source, where)
    _reject_unknown(
        table, _UPDATES_KEYS, "[updates]", source, lambda key: where.named("updates", key)
    )
    allowed: bool = _typed(
        table.get("allow-signing-key-rotation", False),
        bool,
        "allow-signing-key-rotation",
        "[updates]",
        source,
        where.named("updates", "allow-signing-key-rotation"),
    )
    return allowed


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
            hint=(
                f"write {key} = true or {key} = false (no quotes)"
                if kind is bool
                else f"write {key} as a TOML {kind.__name__}"
            ),
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
    if isinstance(value, str):
        date = parse_iso_date(value)
        if date is not None:
            return date
    raise ConfigError(
        f"expiration of {where} is not a date: {value!r}",
        source=source,
        line=line,
        key="expiration",
        hint="write a calendar date as YYYY-MM-DD, for example expiration = 2027-06-30",
    )


@dataclass(frozen=True, slots=True)
class _DomainTable:
    """One ``[[domain]]`` table being read: its keys, its label in messages, its lines."""

    entry: Mapping[str, Any]
    index: int
    label: str
    source: str | None
    where: Locator

    @classmethod
    def of(cls, entry: Any, index: int, source: str | None, where: Locator) -> _DomainTable:
        """Check the table's shape (a table, known keys, a string name) and wrap it."""
        if not isinstance(entry, Mapping):
            raise ConfigError(
                f"[[domain]] #{index + 1} must be a table", source=source, line=where.section(index)
            )
        raw_name = entry.get("name")
        label = f"domain {raw_name!r}" if isinstance(raw_name, str) else f"[[domain]] #{index + 1}"
        table = cls(entry, index, label, source, where)
        _reject_unknown(entry, _DOMAIN_KEYS, label, source, table.line)
        if raw_name is None:
            raise table.error(
                f"{label} has no name",
                "name",
                line=where.section(index),
                hint='add name = "api.example.com"',
            )
        if not isinstance(raw_name, str):
            raise table.error(
                f"name of {label} must be a string, not {raw_name!r}",
                "name",
                hint='write name = "api.example.com"',
            )
        return table

    @property
    def raw_name(self) -> str:
        name: str = self.entry["name"]
        return name

    def line(self, key: str) -> int | None:
        return self.where.key(self.index, key)

    def error(
        self, message: str, key: str, *, line: int | None = None, hint: str | None = None
    ) -> ConfigError:
        """A :class:`ConfigError` at ``key`` of this table (or at ``line``)."""
        at = self.line(key) if line is None else line
        return ConfigError(message, source=self.source, line=at, key=key, hint=hint)

    def typed(self, key: str, kind: type, fallback: Any) -> Any:
        """The value of ``key`` (``fallback`` when absent), which must be a ``kind``."""
        return _typed(
            self.entry.get(key, fallback), kind, key, self.label, self.source, self.line(key)
        )

    def position(self) -> RulePosition:
        """Where the table and each of its pins are written."""
        pins = self.entry.get("pins", [])
        return RulePosition(
            self.line("name"),
            tuple(
                (text, self.where.item(self.index, "pins", number))
                for number, text in enumerate(pins if isinstance(pins, list) else [])
                if isinstance(text, str)
            ),
        )


def _rule_from_table(table: _DomainTable, defaults: _Defaults) -> DomainRule:
    # Read in file-format order: the first bad key is the one reported.
    name, one_label, include_subdomains = _rule_name(table, defaults.include)
    pins = _rule_pins(table)
    uris = defaults.uris
    if "report-uris" in table.entry:
        uris = _uri_list(
            table.entry["report-uris"], table.label, table.source, table.where, table.index
        )
    expiration = _parse_date(
        table.entry.get("expiration"), table.label, table.source, table.line("expiration")
    )
    try:
        return DomainRule(
            name=name,
            pins=pins,
            include_subdomains=include_subdomains,
            expiration=expiration,
            enforce=table.typed("enforce", bool, defaults.enforce),
            report_uris=uris,
            exclude=table.typed("exclude", bool, False),
            allow_single_pin=table.typed("allow-single-pin", bool, False),
            placeholder_only=table.typed("placeholder-only", bool, False),
            one_label=one_label,
            require_ct=table.typed("require-ct", bool, defaults.require_ct),
        )
    except ConfigError as exc:
        # A problem with a key the table does not write comes from its name (or defaults).
        key = exc.key if exc.key is not None and exc.key in table.entry else "name"
        raise exc.with_location(source=table.source, line=table.line(key)) from None


def _rule_name(table: _DomainTable, include: bool) -> tuple[str, bool, bool]:
    """The rule's name, whether it is a one-label ``*.`` rule, and its include-subdomains."""
    written = table.raw_name.strip()
    one_label = False
    if written.startswith("**."):
        name, include_default = written[3:], True
    elif written.startswith("*."):
        name, one_label, include_default = written[2:], True, False
    else:
        name, include_default = written, include
    if "*" in name:
        raise table.error(f"{table.label}: '*' is only allowed as a leading '*.' or '**.'", "name")
    try:
        canonical_host(name)
    except ConfigError as exc:
        raise exc.with_location(source=table.source, line=table.line("name")) from None
    if written.startswith(("*.", "**.")) and "include-subdomains" in table.entry:
        raise table.error(
            f"{table.label}: a wildcard name already says which subdomains it covers",
            "include-subdomains",
            hint="remove include-subdomains, or write the plain name",
        )
    return name, one_label, table.typed("include-subdomains", bool, include_default)


def _rule_pins(table: _DomainTable) -> tuple[Pin, ...]:
    value = table.entry.get("pins", [])
    if not isinstance(value, list):
        raise table.error(f"pins of {table.label} must be a list of strings", "pins")
    return tuple(
        Pin.parse(text, source=table.source, line=table.where.item(table.index, "pins", number))
        for number, text in enumerate(value)
    )
