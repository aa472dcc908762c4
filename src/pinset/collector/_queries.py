"""The read side: summaries, report pages, top chains and alerts, as JSON-ready dicts.

Summaries, chains and alerts read the roll-up tables the writer keeps, so their
cost grows with (hours × domains × versions × results), not with the number of
reports. Report pages use the ``id`` as cursor, newest first.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from pinset.collector._extra import kept_extra
from pinset.collector._normalize import ReportError, certificate_issuer
from pinset.collector._schema import chain_pins, chains, failure_hours, failure_minutes, reports
from pinset.errors import ConfigError
from pinset.hosts import canonical_host

__all__ = ["ReportFilter", "alerts", "iso", "list_reports", "summary", "top_chains"]

_BUCKETS = {"hour": 3600, "day": 86400}


def iso(epoch: int | None) -> str | None:
    """Epoch seconds as ``2026-11-28T08:00:00Z``."""
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _window(dimension: str, since: int, until: int) -> Any:
    start = since // 3600 * 3600
    return sa.and_(
        failure_hours.c.dimension == dimension,
        failure_hours.c.hour >= start,
        failure_hours.c.hour < until,
    )


_TOTAL = sa.func.sum(failure_hours.c.count).label("n")


def _grouped(
    conn: sa.Connection, dimension: str, since: int, until: int, limit: int
) -> list[tuple[str, int]]:
    value = failure_hours.c.value
    rows = conn.execute(
        sa.select(value, _TOTAL)
        .where(_window(dimension, since, until))
        .group_by(value)
        .order_by(_TOTAL.desc(), value)
        .limit(limit)
    )
    return [(key, int(n)) for key, n in rows]


def summary(
    conn: sa.Connection, *, since: int, until: int, bucket: str = "hour", top: int = 10
) -> dict[str, Any]:
    """Failures in ``[since, until)`` per domain, app version, result and time bucket.

    ``series`` holds one time series per top domain (for charts). Buckets are
    aligned to the hour (or UTC day); the first bucket may start before ``since``.
    """
    size = _BUCKETS[bucket]
    by_domain = _grouped(conn, "hostname", since, until, 100)
    start = (failure_hours.c.hour // size * size).label("start")
    by_time = conn.execute(
        sa.select(start, _TOTAL)
        .where(_window("hostname", since, until))
        .group_by(start)
        .order_by(start)
    )
    top_hosts = [host for host, _ in by_domain[:top]]
    series: dict[str, list[dict[str, Any]]] = {host: [] for host in top_hosts}
    if top_hosts:
        rows = conn.execute(
            sa.select(failure_hours.c.value, start, _TOTAL)
            .where(_window("hostname", since, until), failure_hours.c.value.in_(top_hosts))
            .group_by(failure_hours.c.value, start)
            .order_by(start)
        )
        for host, begin, n in rows:
            series[host].append({"start": iso(int(begin)), "count": int(n)})
    return {
        "since": iso(since),
        "until": iso(until),
        "bucket": bucket,
        "total": sum(n for _, n in by_domain),
        "by_domain": [{"hostname": h, "count": n} for h, n in by_domain],
        "by_app_version": [
            {"app_version": v or None, "count": n}
            for v, n in _grouped(conn, "app_version", since, until, 100)
        ],
        "by_validation_result": [
            {"validation_result": v, "count": n}
            for v, n in _grouped(conn, "validation_result", since, until, 100)
        ],
        "by_time": [{"start": iso(int(b)), "count": int(n)} for b, n in by_time],
        "series": [{"hostname": h, "points": series[h]} for h in top_hosts],
    }


@dataclass(frozen=True, slots=True)
class ReportFilter:
    """Which reports a page holds: all given conditions must hold."""

    hostname: str | None = None
    app_version: str | None = None
    validation_result: str | None = None
    since: int | None = None
    until: int | None = None


def _host(text: str) -> str:
    # Stored host names are canonical (normalize); a filter that is no host name matches none.
    try:
        return canonical_host(text)
    except ConfigError:
        return text


def list_reports(
    conn: sa.Connection, flt: ReportFilter, *, limit: int, cursor: int | None
) -> dict[str, Any]:
    """One page of reports, newest first; ``next_cursor`` continues after the last one."""
    conds: list[Any] = []
    if flt.hostname:
        conds.append(reports.c.hostname == _host(flt.hostname))
    if flt.app_version:
        conds.append(reports.c.app_version == flt.app_version)
    if flt.validation_result:
        conds.append(reports.c.validation_result == flt.validation_result)
    if flt.since is not None:
        conds.append(reports.c.last_seen >= flt.since)
    if flt.until is not None:
        conds.append(reports.c.first_seen < flt.until)
    if cursor is not None:
        conds.append(reports.c.id < cursor)
    served = chains.alias("served")
    validated = chains.alias("validated")
    query = (
        sa.select(
            reports,
            served.c.pins.label("served_pins"),
            served.c.subjects.label("served_subjects"),
            validated.c.pins.label("validated_pins"),
            validated.c.subjects.label("validated_subjects"),
        )
        .outerjoin(served, served.c.chain_key == reports.c.served_chain_key)
        .outerjoin(validated, validated.c.chain_key == reports.c.validated_chain_key)
        .where(*conds)
        .order_by(reports.c.id.desc())
        .limit(limit)
    )
    items = [_report_item(row._mapping) for row in conn.execute(query)]
    next_cursor = items[-1]["id"] if len(items) == limit else None
    return {"items": items, "next_cursor": next_cursor}


def _report_item(m: Any) -> dict[str, Any]:
    return {
        "id": int(m["id"]),
        "hostname": m["hostname"],
        "port": m["port"],
        "noted_hostname": m["noted_hostname"],
        "include_subdomains": m["include_subdomains"],
        "date_time": iso(m["date_time"]),
        "first_seen": iso(m["first_seen"]),
        "last_seen": iso(m["last_seen"]),
        "count": int(m["count"]),
        "app_bundle_id": m["app_bundle_id"],
        "app_version": m["app_version"],
        "app_platform": m["app_platform"],
        "enforce_pinning": m["enforce_pinning"],
        "validation_result": m["validation_result"],
        "effective_expiration_date": m["effective_expiration_date"],
        "known_pins_expiration_date": m["known_pins_expiration_date"],
        "known_pins": m["known_pins"],
        "served_chain": _chain_view(m["served_chain_key"], m["served_pins"], m["served_subjects"]),
        "validated_chain": _chain_view(
            m["validated_chain_key"], m["validated_pins"], m["validated_subjects"]
        ),
        "variant": m["variant"],
        # Bounded again on the way out: rows stored before ingest bounded them must
        # not break the page (a deep value made every page that held it answer 500).
        "extra": kept_extra(m["extra"]) if isinstance(m["extra"], dict) else {},
    }


def _chain_view(key: str | None, pins: Any, subjects: Any) -> dict[str, Any] | None:
    if key is None:
        return None
    members = [{"pin": p, "subject": s} for p, s in zip(pins or [], subjects or [], strict=False)]
    return {"key": key, "members": members}


def _issuer(pem: str) -> str | None:
    try:
        return certificate_issuer(pem)
    except ReportError:  # only a database edited by hand holds a PEM that does not parse
        return None


def _known_pins(
    conn: sa.Connection, keys: list[str], since: int, until: int
) -> dict[str, list[str]]:
    rows = conn.execute(
        sa.select(chain_pins.c.chain_key, chain_pins.c.pin)
        .where(
            chain_pins.c.chain_key.in_(keys),
            chain_pins.c.hour >= since // 3600 * 3600,
            chain_pins.c.hour < until,
        )
        .distinct()
    )
    pins: dict[str, set[str]] = {}
    for key, pin in rows:
        pins.setdefault(key, set()).add(pin)
    return {key: sorted(found) for key, found in pins.items()}


def top_chains(conn: sa.Connection, *, since: int, until: int, limit: int = 10) -> dict[str, Any]:
    """The served chains seen most in ``[since, until)``, with pins, subjects, PEMs and hosts.

    Each item's ``known_pins`` is the union of the known pins of the reports that
    were served that chain in the window; each member names its ``issuer`` (RFC 4514).
    The window is aligned to the hour, like :func:`summary`.
    """
    counts: dict[str, int] = {}
    hosts: dict[str, list[str]] = {}
    for value, n in _grouped(conn, "chain", since, until, 10_000):
        key, _, host = value.partition(" ")
        counts[key] = counts.get(key, 0) + n
        hosts.setdefault(key, []).append(host)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    keys = [k for k, _ in ranked]
    info = (
        {
            row.chain_key: row
            for row in conn.execute(sa.select(chains).where(chains.c.chain_key.in_(keys)))
        }
        if keys
        else {}
    )
    known = _known_pins(conn, keys, since, until) if keys else {}
    items = []
    for key, n in ranked:
        row = info.get(key)
        members = []
        if row is not None:
            for pin, subject, pem in zip(row.pins, row.subjects, row.pems, strict=False):
                members.append({"pin": pin, "subject": subject, "issuer": _issuer(pem), "pem": pem})
        items.append(
            {
                "key": key,
                "count": n,
                "hostnames": sorted(hosts[key]),
                "known_pins": known.get(key, []),
                "members": members,
            }
        )
    return {"since": iso(since), "until": iso(until), "items": items}


def alerts(conn: sa.Connection, *, now: int, threshold: int) -> dict[str, Any]:
    """Domains with more than ``threshold`` failures in the hour before ``now``."""
    since = now - 3600
    total = sa.func.sum(failure_minutes.c.count).label("n")
    rows = conn.execute(
        sa.select(failure_minutes.c.hostname, total)
        .where(failure_minutes.c.minute >= since // 60 * 60, failure_minutes.c.minute <= now)
        .group_by(failure_minutes.c.hostname)
        .having(total > threshold)
        .order_by(total.desc())
    )
    return {
        "threshold": threshold,
        "since": iso(since),
        "until": iso(now),
        "alerts": [{"hostname": h, "count": int(n)} for h, n in rows],
    }
