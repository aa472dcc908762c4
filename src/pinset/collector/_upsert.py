"""The writer's statements: multi-row inserts, updates and upserts, sent as plain driver SQL.

The writer's hot path: one statement per table per batch, with positional
parameters. SQLite (3.35+) and PostgreSQL share the syntax; only the placeholder
differs. Plain SQL here instead of SQLAlchemy constructs because compiling and
processing parameters per row cost more CPU than the database work itself
(measured by benchmarks/collector_ingest.py). Table and column names come from
:mod:`pinset.collector._schema`, never from input.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from pinset.collector import _schema as schema

__all__ = [
    "CHAIN_COLUMNS",
    "CHAIN_PIN_COLUMNS",
    "HOUR_COLUMNS",
    "MINUTE_COLUMNS",
    "REPORT_COLUMNS",
    "Upserts",
    "lock_id",
    "to_json",
]


def _names(table: sa.Table) -> tuple[str, ...]:
    return tuple(column.name for column in table.columns)


# Every column, in the schema's order; a report's id is the database's to choose.
REPORT_COLUMNS = tuple(name for name in _names(schema.reports) if name != "id")
CHAIN_COLUMNS = _names(schema.chains)
HOUR_COLUMNS = _names(schema.failure_hours)
MINUTE_COLUMNS = _names(schema.failure_minutes)
CHAIN_PIN_COLUMNS = _names(schema.chain_pins)


def to_json(value: Any) -> str:
    """A JSON column value (both drivers take JSON as text)."""
    return json.dumps(value, separators=(",", ":"))


def lock_id(dedup_key: str) -> int:
    """The PostgreSQL advisory lock (a signed 64-bit integer) that guards one ``dedup_key``.

    64 bits collide far less often than ``hashtext``'s 32 (a collision only makes
    two keys wait for each other); computed here, so the lock order is known too.
    """
    digest = hashlib.blake2b(dedup_key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Upserts:
    """The writes of a batch, for one dialect (``sqlite`` or ``postgresql``)."""

    def __init__(self, dialect: str) -> None:
        self._postgres = dialect == "postgresql"

    def _values(self, rows: int, width: int, cast: str = "") -> str:
        if self._postgres:
            # Numbered placeholders for psycopg's RawCursor: no client-side query parsing,
            # which for a statement of thousands of parameters costs more than the insert.
            return ", ".join(
                "(" + ", ".join(f"${r * width + i + 1}{cast}" for i in range(width)) + ")"
                for r in range(rows)
            )
        return ", ".join(["(" + ", ".join(["?"] * width) + ")"] * rows)

    @lru_cache(maxsize=64)  # noqa: B019 - one instance per app, a handful of batch sizes
    def _sql(self, kind: str, rows: int) -> str:
        if kind == "counts":
            # Add to rows found by newest_rows(); ids come from the database, not from input.
            values = self._values(rows, 3, "::bigint" if self._postgres else "")
            latest = "GREATEST" if self._postgres else "MAX"
            return (
                f"WITH v(id, n, seen) AS (VALUES {values}) UPDATE reports"  # noqa: S608
                f" SET count = reports.count + v.n, last_seen = {latest}(reports.last_seen, v.seen)"
                " FROM v WHERE reports.id = v.id"
            )
        table, columns, tail = _STATEMENTS[kind]
        values = self._values(rows, len(columns))
        # Only constant names and placeholders: the values travel as parameters.
        return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values} {tail}"  # noqa: S608

    def _run(self, conn: sa.Connection, kind: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:  # most batches add nothing to some tables, and "VALUES" needs a row
            self._execute(conn, self._sql(kind, len(rows)), [v for row in rows for v in row])

    def _execute(self, conn: sa.Connection, sql: str, params: list[Any]) -> list[Any]:
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

    def begin(self, conn: sa.Connection) -> None:
        """Make the transaction a writer's from its first statement (SQLite).

        pysqlite would begin the transaction only at the first INSERT, after the
        de-duplication lookup: ``BEGIN IMMEDIATE`` takes SQLite's one write lock
        first, so a second collector process on the same file waits (busy timeout)
        instead of inserting the same report beside ours.
        """
        if not self._postgres:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    def lock_keys(self, conn: sa.Connection, keys: Sequence[str]) -> None:
        """Hold a transaction-scoped advisory lock per dedup key (PostgreSQL).

        Taken in ascending order in every process, so two batches never wait on
        each other in a cycle. The locks end with the transaction.
        """
        if self._postgres and keys:
            ids = sorted({lock_id(k) for k in keys})
            self._execute(
                conn, "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k", [ids]
            )

    def newest_rows(
        self, conn: sa.Connection, keys: Sequence[str], *, after: int
    ) -> dict[str, tuple[int, int]]:
        """``{dedup_key: (id, first_seen)}``: per key, the newest row first seen after ``after``."""
        if not keys:
            return {}
        if self._postgres:
            where, params = "dedup_key = ANY($1) AND first_seen > $2", [list(keys), after]
        else:
            marks = ", ".join(["?"] * len(keys))
            where, params = f"dedup_key IN ({marks}) AND first_seen > ?", [*keys, after]
        rows = self._execute(
            conn,
            f"SELECT dedup_key, id, first_seen FROM reports WHERE {where}"  # noqa: S608
            " ORDER BY first_seen, id",
            params,
        )
        return {key: (int(row_id), int(first)) for key, row_id, first in rows}  # newest wins

    def insert_reports(self, conn: sa.Connection, rows: Sequence[Sequence[Any]]) -> None:
        """Insert new report rows (:data:`REPORT_COLUMNS`)."""
        self._run(conn, "reports", rows)

    def add_counts(self, conn: sa.Connection, rows: Sequence[tuple[int, int, int]]) -> None:
        """For each ``(id, n, seen)``: ``count += n``, ``last_seen`` at least ``seen``."""
        self._run(conn, "counts", rows)

    def chains(self, conn: sa.Connection, rows: Sequence[Sequence[Any]]) -> None:
        self._run(conn, "chains", rows)

    def hours(self, conn: sa.Connection, rows: Sequence[Sequence[Any]]) -> None:
        self._run(conn, "hours", rows)

    def minutes(self, conn: sa.Connection, rows: Sequence[Sequence[Any]]) -> None:
        self._run(conn, "minutes", rows)

    def chain_pins(self, conn: sa.Connection, rows: Sequence[Sequence[Any]]) -> None:
        self._run(conn, "chain_pins", rows)


_STATEMENTS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "reports": ("reports", REPORT_COLUMNS, ""),
    "chains": ("chains", CHAIN_COLUMNS, "ON CONFLICT (chain_key) DO NOTHING"),
    "chain_pins": (
        "chain_pins",
        CHAIN_PIN_COLUMNS,
        "ON CONFLICT (chain_key, hour, pin) DO NOTHING",
    ),
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
