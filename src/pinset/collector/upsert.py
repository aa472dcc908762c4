"""Multi-row ``INSERT … ON CONFLICT`` statements, sent as plain driver SQL.

The writer's hot path: one statement per table per batch, with positional
parameters. SQLite (3.35+) and PostgreSQL share the syntax; only the placeholder
differs. Plain SQL here instead of SQLAlchemy constructs because compiling and
processing parameters per row cost more CPU than the database work itself
(measured by benchmarks/collector_ingest.py). Table and column names come from
:mod:`pinset.collector.schema`, never from input.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

__all__ = ["CHAIN_COLUMNS", "HOUR_COLUMNS", "MINUTE_COLUMNS", "REPORT_COLUMNS", "Upserts"]

REPORT_COLUMNS = (
    "dedup_key",
    "day",
    "first_seen",
    "last_seen",
    "count",
    "date_time",
    "hostname",
    "port",
    "noted_hostname",
    "include_subdomains",
    "effective_expiration_date",
    "known_pins_expiration_date",
    "app_bundle_id",
    "app_version",
    "app_platform",
    "enforce_pinning",
    "validation_result",
    "served_chain_key",
    "validated_chain_key",
    "known_pins",
    "variant",
    "extra",
)
CHAIN_COLUMNS = ("chain_key", "pems", "pins", "subjects", "first_seen")
HOUR_COLUMNS = ("dimension", "hour", "value", "count")
MINUTE_COLUMNS = ("minute", "hostname", "count")


def to_json(value: Any) -> str:
    """A JSON column value (both drivers take JSON as text)."""
    return json.dumps(value, separators=(",", ":"))


class Upserts:
    """The four writes of a batch, for one dialect (``sqlite`` or ``postgresql``)."""

    def __init__(self, dialect: str) -> None:
        self._postgres = dialect == "postgresql"

    @lru_cache(maxsize=64)  # noqa: B019 - one instance per app, a handful of batch sizes
    def _sql(self, kind: str, rows: int) -> str:
        table, columns, tail = _STATEMENTS[kind]
        width = len(columns)
        if self._postgres:
            # Numbered placeholders for psycopg's RawCursor: no client-side query parsing,
            # which for a statement of thousands of parameters costs more than the insert.
            values = ", ".join(
                "(" + ", ".join(f"${r * width + i + 1}" for i in range(width)) + ")"
                for r in range(rows)
            )
        else:
            values = ", ".join(["(" + ", ".join(["?"] * width) + ")"] * rows)
        # Only constant names and placeholders: the values travel as parameters.
        return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values} {tail}"  # noqa: S608

    def _run(self, conn: sa.Connection, kind: str, rows: Sequence[Sequence[Any]]) -> list[Any]:
        params = [v for row in rows for v in row]
        sql = self._sql(kind, len(rows))
        if not self._postgres:
            result = conn.exec_driver_sql(sql, tuple(params))
            return list(result) if result.returns_rows else []
        import psycopg

        # The same DBAPI connection, so the statement is part of SQLAlchemy's transaction.
        raw = conn.connection.dbapi_connection
        assert isinstance(raw, psycopg.Connection)
        with psycopg.RawCursor(raw) as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def reports(
        self, conn: sa.Connection, rows: Sequence[Sequence[Any]]
    ) -> dict[tuple[str, int], int]:
        """Upsert report rows; the count each (dedup_key, day) row has afterwards."""
        return {(k, int(d)): int(c) for k, d, c in self._run(conn, "reports", rows)}

    def chains(self, conn: sa.Connection, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._run(conn, "chains", rows)

    def hours(self, conn: sa.Connection, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._run(conn, "hours", rows)

    def minutes(self, conn: sa.Connection, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._run(conn, "minutes", rows)


_STATEMENTS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "reports": (
        "reports",
        REPORT_COLUMNS,
        "ON CONFLICT (dedup_key, day) DO UPDATE SET count = reports.count + excluded.count,"
        " last_seen = excluded.last_seen RETURNING dedup_key, day, count",
    ),
    "chains": ("chains", CHAIN_COLUMNS, "ON CONFLICT (chain_key) DO NOTHING"),
    "hours": (
        "failure_hours",
        HOUR_COLUMNS,
        "ON CONFLICT (dimension, hour, value)"
        " DO UPDATE SET count = failure_hours.count + excluded.count",
    ),
    "minutes": (
        "failure_minutes",
        MINUTE_COLUMNS,
        "ON CONFLICT (minute, hostname)"
        " DO UPDATE SET count = failure_minutes.count + excluded.count",
    ),
}
