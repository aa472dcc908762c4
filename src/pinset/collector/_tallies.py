"""Taking verdict tallies in: strict validation of a ``POST /v1/tallies`` body, then an upsert.

A tally carries counts only (see :class:`pinset.reporting.VerdictTally`): per domain, how
many connections were pinned, mismatched, mismatched in report-only mode, or judged
after their pin set expired, in one interval of one app and pin-set version. The body
comes from an unauthenticated POST, so every size is bounded and every number is a JSON
integer in range (a string of digits, a bool or a float is refused). Unknown fields are
ignored, at most :data:`~pinset.collector._extra.MAX_EXTRA_FIELDS` of them per object:
nothing unknown is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from pinset.collector._extra import MAX_EXTRA_FIELDS
from pinset.collector._normalize import MAX_TEXT, ReportError
from pinset.collector._schema import verdict_tallies
from pinset.errors import ConfigError
from pinset.hosts import canonical_host

__all__ = [
    "COUNT_FIELDS",
    "MAX_COUNT",
    "MAX_DOMAINS",
    "TALLY_PATH",
    "TallyBatch",
    "parse_tallies",
    "store_tallies",
]

TALLY_PATH = "/v1/tallies"
COUNT_FIELDS = ("pinned", "mismatch", "report_only_mismatch", "expired")
MAX_DOMAINS = 256
MAX_COUNT = 10**9  # per field, domain and interval: a billion handshakes an hour per client
MAX_VERSION = 32
_MIN_INTERVAL, _MAX_INTERVAL = 60, 86400
_TOP = frozenset(
    {"app_id", "app_version", "pin_set_version", "interval_start", "interval_seconds", "domains"}
)
_ENTRY = frozenset({"domain", *COUNT_FIELDS})
_FUTURE = 86400  # an interval may start at most a day after the collector's clock


@dataclass(frozen=True, slots=True)
class TallyBatch:
    """One valid body: "" stands for an absent app id, app version or pin-set version."""

    app_id: str
    app_version: str
    pin_set_version: str
    interval_start: int
    interval_seconds: int
    domains: tuple[tuple[str, tuple[int, int, int, int]], ...]


def _bounded_unknown(data: dict[str, Any], known: frozenset[str], where: str) -> None:
    unknown = len(data.keys() - known)
    if unknown > MAX_EXTRA_FIELDS:
        raise ReportError(
            f"{where} has {unknown} unknown fields; at most {MAX_EXTRA_FIELDS} are accepted",
            "too-many-fields",
        )


def _integer(value: Any, name: str, low: int, high: int) -> int:
    # bool is an int in Python, and "12" or 12.0 is not what a tally sends: JSON integers only.
    if type(value) is not int:
        raise ReportError(f"{name} must be a JSON integer, not {type(value).__name__}")
    if not low <= value <= high:
        raise ReportError(f"{name} must be from {low} to {high}, not {value}")
    return value


def _text(data: dict[str, Any], key: str, limit: int) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ReportError(f"field {key!r} must be a string or null, not {type(value).__name__}")
    if not value or len(value) > limit:
        raise ReportError(f"field {key!r} must be 1 to {limit} characters")
    if not value.isprintable():  # no control characters, no lone surrogates
        raise ReportError(f"field {key!r} must be printable text")
    return value


def parse_tallies(data: Any, *, now: int) -> TallyBatch:
    """The batch in ``data`` (parsed JSON), or :class:`ReportError` naming the first problem."""
    if not isinstance(data, dict):
        raise ReportError("a tally body is a JSON object", "not-an-object")
    _bounded_unknown(data, _TOP, "the body")
    version = _text(data, "pin_set_version", MAX_VERSION)
    if version and not (version.isascii() and version.isdigit()):
        raise ReportError("field 'pin_set_version' must be ASCII digits (the bundle version)")
    seconds = _integer(
        data.get("interval_seconds"), "interval_seconds", _MIN_INTERVAL, _MAX_INTERVAL
    )
    start = _integer(data.get("interval_start"), "interval_start", 0, now + _FUTURE)
    domains = data.get("domains")
    if not isinstance(domains, list) or not domains:
        raise ReportError("field 'domains' must be a non-empty list")
    if len(domains) > MAX_DOMAINS:
        raise ReportError(f"at most {MAX_DOMAINS} domains per tally", "too-many-domains")
    seen: dict[str, tuple[int, int, int, int]] = {}
    for index, entry in enumerate(domains):
        where = f"domains[{index}]"
        if not isinstance(entry, dict):
            raise ReportError(f"{where} must be an object")
        _bounded_unknown(entry, _ENTRY, where)
        name = entry.get("domain")
        if not isinstance(name, str) or not name or len(name) > MAX_TEXT:
            raise ReportError(f"{where}.domain must be a host name of 1 to {MAX_TEXT} characters")
        try:
            domain = canonical_host(name)
        except ConfigError as exc:
            raise ReportError(f"{where}.domain is not a host name: {exc.message}") from None
        if domain in seen:
            raise ReportError(f"{where}.domain {domain!r} appears twice")
        counts = tuple(
            _integer(entry.get(field, 0), f"{where}.{field}", 0, MAX_COUNT)
            for field in COUNT_FIELDS
        )
        seen[domain] = (counts[0], counts[1], counts[2], counts[3])
    return TallyBatch(
        app_id=_text(data, "app_id", MAX_TEXT),
        app_version=_text(data, "app_version", MAX_TEXT),
        pin_set_version=version,
        interval_start=start,
        interval_seconds=seconds,
        domains=tuple(sorted(seen.items())),
    )


def store_tallies(engine: sa.Engine, batch: TallyBatch) -> None:
    """Add ``batch`` to the stored counts, in one transaction (rows with the same key add up)."""
    rows = [
        {
            "app_id": batch.app_id,
            "domain": domain,
            "app_version": batch.app_version,
            "pin_set_version": batch.pin_set_version,
            "interval_start": batch.interval_start,
            "interval_seconds": batch.interval_seconds,
            **dict(zip(COUNT_FIELDS, counts, strict=True)),
        }
        for domain, counts in batch.domains
    ]
    insert = (postgresql if engine.dialect.name == "postgresql" else sqlite).insert
    statement = insert(verdict_tallies)
    statement = statement.on_conflict_do_update(
        index_elements=[c.name for c in verdict_tallies.primary_key.columns],
        set_={
            field: getattr(verdict_tallies.c, field) + getattr(statement.excluded, field)
            for field in COUNT_FIELDS
        },
    )
    with engine.begin() as conn:
        conn.execute(statement, rows)
