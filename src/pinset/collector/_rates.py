"""The read side of verdict tallies: failure rates, rate alerts and adoption shares.

A rate is failures over all counted verdicts: ``(mismatch + report_only_mismatch) /
(pinned + mismatch + report_only_mismatch + expired)``. Report-only mismatches count as
failures (they are the connections enforcement would refuse); expired verdicts count in
the total only (nothing was checked). Intervals are selected by their start:
``since <= interval_start < until``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from pinset.collector._schema import verdict_tallies as t

__all__ = ["adoption", "failure_rates", "rate_alerts"]

_FAILURES = t.c.mismatch + t.c.report_only_mismatch
_TOTAL = t.c.pinned + t.c.mismatch + t.c.report_only_mismatch + t.c.expired


def _rate(failures: int, total: int) -> float:
    return failures / total if total else 0.0


def _window(since: int, until: int) -> Any:
    return sa.and_(t.c.interval_start >= since, t.c.interval_start < until)


def failure_rates(conn: sa.Connection, *, since: int, until: int) -> dict[str, Any]:
    """Failure rates per domain and per (domain, app version), worst rate first."""
    failures = sa.func.sum(_FAILURES).label("failures")
    total = sa.func.sum(_TOTAL).label("total")
    by_domain = [
        {"hostname": d, "failures": int(f), "total": int(n), "rate": _rate(int(f), int(n))}
        for d, f, n in conn.execute(
            sa.select(t.c.domain, failures, total).where(_window(since, until)).group_by(t.c.domain)
        )
    ]
    by_version = [
        {
            "hostname": d,
            "app_version": v or None,
            "failures": int(f),
            "total": int(n),
            "rate": _rate(int(f), int(n)),
        }
        for d, v, f, n in conn.execute(
            sa.select(t.c.domain, t.c.app_version, failures, total)
            .where(_window(since, until))
            .group_by(t.c.domain, t.c.app_version)
        )
    ]
    by_domain.sort(key=lambda r: (-r["rate"], -r["total"], r["hostname"]))
    by_version.sort(key=lambda r: (-r["rate"], -r["total"], r["hostname"], r["app_version"] or ""))
    return {"by_domain": by_domain, "by_domain_and_app_version": by_version}


def rate_alerts(
    conn: sa.Connection, *, now: int, rate: float, min_total: int
) -> list[dict[str, Any]]:
    """Domains whose failure rate over the last hour is at least ``rate``.

    The last hour is every interval that overlaps ``[now - 3600, now]``; a domain needs at
    least ``min_total`` counted verdicts there, so that two failures out of three
    connections do not page anyone.
    """
    failures = sa.func.sum(_FAILURES).label("failures")
    total = sa.func.sum(_TOTAL).label("total")
    rows = conn.execute(
        sa.select(t.c.domain, failures, total)
        .where(
            t.c.interval_start + t.c.interval_seconds > now - 3600,
            t.c.interval_start <= now,
        )
        .group_by(t.c.domain)
        .having(total >= max(min_total, 1))
    )
    out = [
        {"hostname": d, "failures": int(f), "total": int(n), "rate": _rate(int(f), int(n))}
        for d, f, n in rows
    ]
    alerts = [a for a in out if a["rate"] >= rate]
    alerts.sort(key=lambda a: (-a["rate"], a["hostname"]))
    return alerts


def _shares(rows: Any) -> list[dict[str, Any]]:
    counts = [(str(version), int(n)) for version, n in rows if int(n) > 0]
    whole = sum(n for _, n in counts)
    counts.sort(key=lambda vn: (-vn[1], vn[0]))
    return [{"version": v, "share": n / whole, "count": n} for v, n in counts]


def adoption(conn: sa.Connection, *, app_id: str | None, since: int, until: int) -> dict[str, Any]:
    """Share of counted verdicts per pin-set version and per app version.

    ``app_id=None`` counts every app. A version the clients did not send is ``""``.
    """
    where = [_window(since, until)]
    if app_id is not None:
        where.append(t.c.app_id == app_id)
    total = sa.func.sum(_TOTAL)

    def per(column: Any) -> list[dict[str, Any]]:
        return _shares(conn.execute(sa.select(column, total).where(*where).group_by(column)))

    return {
        "pin_set_versions": per(t.c.pin_set_version),
        "app_versions": per(t.c.app_version),
    }
