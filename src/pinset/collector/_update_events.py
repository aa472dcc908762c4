"""Update events: strict validation of a ``POST /v1/update-events`` body, an upsert, the reads.

An app's :class:`pinset.updates.UpdateSource` posts one event when it refuses a signed
pin-set bundle (``bundle-refused``) or when an update check fetches nothing
(``fetch-failed``); see :class:`pinset.reporting.UpdateEvent`. The body comes from an
unauthenticated POST, so every field is checked against the stable ids and bounds the
client uses, and nothing unknown is stored. Posts of the same event within one hour are
one row with a ``count``: a thousand installs refusing the same bytes are one line.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from pinset.collector._extra import MAX_EXTRA_FIELDS
from pinset.collector._normalize import MAX_TEXT, ReportError
from pinset.collector._schema import update_events
from pinset.reporting import EVENT_KEY, EVENT_KINDS, MAX_DETAIL
from pinset.updates import FETCH_REASONS, REASONS

__all__ = [
    "MAX_SOURCE",
    "UPDATE_EVENTS_PATH",
    "EventRow",
    "event_summary",
    "list_events",
    "parse_event",
    "store_event",
]

UPDATE_EVENTS_PATH = "/v1/update-events"
MAX_SOURCE = 1024
_REASONS: dict[str, tuple[str, ...]] = {
    "bundle-refused": tuple(REASONS),
    "fetch-failed": tuple(FETCH_REASONS),
}
_FIELDS = frozenset(
    {
        EVENT_KEY,
        "reason",
        "detail",
        "version",
        "app-id",
        "source",
        "date-time",
        "pin-set-version",
        "bundle-sha256",
    }
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MAX_VERSION = 2**63 - 1
_FUTURE = 86400  # an event may be dated at most a day after the collector's clock


@dataclass(frozen=True, slots=True)
class EventRow:
    """One valid event, as stored (times in epoch seconds)."""

    kind: str
    reason: str
    detail: str
    date_time: int
    source: str
    app_id: str | None
    version: int | None
    pin_set_version: int | None
    bundle_sha256: str | None

    def dedup_key(self) -> str:
        fields = asdict(self)
        del fields["detail"], fields["date_time"]
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def _text(data: dict[str, Any], key: str, limit: int, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise ReportError(f"field {key!r} is required")
        return None
    if not isinstance(value, str):
        raise ReportError(f"field {key!r} must be a string, not {type(value).__name__}")
    if len(value) > limit:
        raise ReportError(f"field {key!r} is longer than {limit} characters")
    if _CONTROL.search(value):
        raise ReportError(f"field {key!r} contains a control character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ReportError(f"field {key!r} is not valid Unicode") from None
    return value


def _version(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if type(value) is not int or not 0 < value <= _MAX_VERSION:
        raise ReportError(f"field {key!r} must be an integer from 1 to 2**63-1, or null")
    return value


def _when(value: Any, now: int) -> int:
    if not isinstance(value, str) or len(value) > 40:
        raise ReportError("field 'date-time' must be an RFC 3339 date-time string")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(f"field 'date-time' is not an RFC 3339 date-time: {value!r}") from None
    if parsed.tzinfo is None:
        raise ReportError("field 'date-time' must carry a UTC offset (Z)")
    epoch = int(parsed.timestamp())
    if not 0 <= epoch <= now + _FUTURE:
        raise ReportError("field 'date-time' is before 1970 or more than a day ahead")
    return epoch


def parse_event(data: Any, *, now: int) -> EventRow:
    """The event in ``data`` (parsed JSON), or :class:`ReportError` naming the first problem."""
    if not isinstance(data, dict):
        raise ReportError("an update event is a JSON object", "not-an-object")
    if EVENT_KEY not in data:
        raise ReportError(f"an update event has the key {EVENT_KEY!r}", "not-an-event")
    unknown = len(data.keys() - _FIELDS)
    if unknown > MAX_EXTRA_FIELDS:
        raise ReportError(
            f"the event has {unknown} unknown fields; at most {MAX_EXTRA_FIELDS} are accepted",
            "too-many-fields",
        )
    kind = data[EVENT_KEY]
    if kind not in EVENT_KINDS:
        raise ReportError(
            f"{EVENT_KEY!r} must be one of {', '.join(EVENT_KINDS)}, not {kind!r}", "unknown-kind"
        )
    reason = data.get("reason")
    if reason not in _REASONS[kind]:
        raise ReportError(
            f"'reason' of a {kind} event must be one of {', '.join(_REASONS[kind])}, "
            f"not {reason!r}",
            "unknown-reason",
        )
    source = _text(data, "source", MAX_SOURCE, required=True)
    assert source is not None
    if source != "file" and not source.startswith("https://"):
        raise ReportError("field 'source' must be an https:// URL or \"file\"")
    digest = _text(data, "bundle-sha256", 64)
    if digest is not None and not _SHA256.fullmatch(digest):
        raise ReportError("field 'bundle-sha256' must be 64 lowercase hex digits")
    if kind == "bundle-refused" and digest is None:
        raise ReportError("a bundle-refused event names the refused bytes: 'bundle-sha256'")
    if kind == "fetch-failed" and (digest is not None or data.get("version") is not None):
        raise ReportError("a fetch-failed event has no bundle: no 'version', no 'bundle-sha256'")
    app_id = _text(data, "app-id", MAX_TEXT)
    return EventRow(
        kind=kind,
        reason=reason,
        detail=_text(data, "detail", MAX_DETAIL) or "",
        date_time=_when(data.get("date-time"), now),
        source=source,
        app_id=app_id or None,
        version=_version(data, "version"),
        pin_set_version=_version(data, "pin-set-version"),
        bundle_sha256=digest,
    )


def store_event(engine: sa.Engine, event: EventRow, *, received: int) -> bool:
    """Add ``event`` (one transaction); True when it is the first of its kind this hour."""
    row = {
        **asdict(event),
        "dedup_key": event.dedup_key(),
        "hour": received // 3600 * 3600,
        "first_seen": received,
        "last_seen": received,
        "count": 1,
    }
    insert = (postgresql if engine.dialect.name == "postgresql" else sqlite).insert
    statement = insert(update_events).values(row)
    statement = statement.on_conflict_do_update(
        index_elements=[update_events.c.dedup_key, update_events.c.hour],
        set_={
            "count": update_events.c.count + 1,
            "last_seen": sa.func.max(update_events.c.last_seen, statement.excluded.last_seen)
            if engine.dialect.name == "sqlite"
            else sa.func.greatest(update_events.c.last_seen, statement.excluded.last_seen),
            "detail": statement.excluded.detail,
            "date_time": statement.excluded.date_time,
        },
    ).returning(update_events.c.count)
    with engine.begin() as conn:
        count = conn.execute(statement).scalar_one()
    return int(count) == 1


def _iso(epoch: int | None) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _conditions(
    *, since: int, until: int, app_id: str | None, kind: str | None, reason: str | None
) -> list[Any]:
    conds: list[Any] = [update_events.c.last_seen >= since, update_events.c.first_seen < until]
    if app_id is not None:
        conds.append(update_events.c.app_id == app_id)
    if kind is not None:
        conds.append(update_events.c.kind == kind)
    if reason is not None:
        conds.append(update_events.c.reason == reason)
    return conds


def event_summary(
    conn: sa.Connection,
    *,
    since: int,
    until: int,
    app_id: str | None = None,
    kind: str | None = None,
    reason: str | None = None,
) -> list[dict[str, Any]]:
    """Events per app, kind and reason in the window: how many, and the last one's time."""
    t = update_events.c
    total = sa.func.sum(t.count).label("n")
    last = sa.func.max(t.last_seen).label("last")
    rows = conn.execute(
        sa.select(t.app_id, t.kind, t.reason, total, last)
        .where(*_conditions(since=since, until=until, app_id=app_id, kind=kind, reason=reason))
        .group_by(t.app_id, t.kind, t.reason)
        .order_by(total.desc(), t.kind, t.reason, t.app_id)
        .limit(200)
    )
    return [
        {"app_id": a, "kind": k, "reason": r, "count": int(n), "last_seen": _iso(int(ls))}
        for a, k, r, n, ls in rows
    ]


def list_events(
    conn: sa.Connection,
    *,
    since: int,
    until: int,
    app_id: str | None = None,
    kind: str | None = None,
    reason: str | None = None,
    limit: int = 50,
    cursor: int | None = None,
) -> dict[str, Any]:
    """One page of event rows, newest first; ``next_cursor`` continues after the last one."""
    t = update_events.c
    conds = _conditions(since=since, until=until, app_id=app_id, kind=kind, reason=reason)
    if cursor is not None:
        conds.append(t.id < cursor)
    rows = conn.execute(
        sa.select(update_events).where(*conds).order_by(t.id.desc()).limit(limit)
    ).mappings()
    items = [
        {
            "id": int(m["id"]),
            "kind": m["kind"],
            "reason": m["reason"],
            "detail": m["detail"],
            "app_id": m["app_id"],
            "source": m["source"],
            "version": m["version"],
            "pin_set_version": m["pin_set_version"],
            "bundle_sha256": m["bundle_sha256"],
            "date_time": _iso(m["date_time"]),
            "first_seen": _iso(m["first_seen"]),
            "last_seen": _iso(m["last_seen"]),
            "count": int(m["count"]),
        }
        for m in rows
    ]
    return {"items": items, "next_cursor": items[-1]["id"] if len(items) == limit else None}
