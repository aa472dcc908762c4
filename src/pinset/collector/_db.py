"""Engines and migrations: SQLite (WAL, busy timeout) or PostgreSQL through psycopg 3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from pinset.errors import ConfigError

__all__ = ["DEFAULT_DB_URL", "create_engine", "migrate"]

DEFAULT_DB_URL = "sqlite:///pinset-collector.db"
MIGRATIONS = Path(__file__).parent / "migrations"
# Any fixed number works: it only has to be the same in every collector process.
_MIGRATION_LOCK = 0x70696E736574
_CONNECT_TIMEOUT = 5  # seconds


def create_engine(url: str) -> sa.Engine:
    """An engine for ``url`` (``sqlite:///file.db`` or ``postgresql+psycopg://…``)."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise ConfigError(
            f"database URL {url!r} is not a URL",
            key="--db",
            hint="use sqlite:///pinset-collector.db or postgresql+psycopg://user:pass@host/db",
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = sa.create_engine(
            parsed, connect_args={"timeout": 30.0, "check_same_thread": False}
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            parsed = parsed.set(drivername="postgresql+psycopg")
        # pool_pre_ping: a connection that died with a database restart is replaced, not
        # used; connect_timeout: an unreachable server fails a batch (503) within seconds.
        return sa.create_engine(
            parsed,
            pool_size=8,
            max_overflow=8,
            pool_pre_ping=True,
            connect_args={"connect_timeout": _CONNECT_TIMEOUT},
        )
    raise ConfigError(
        f"database {backend!r} is not supported",
        key="--db",
        hint="use sqlite:///FILE or postgresql+psycopg://…",
    )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    # WAL lets the dashboard read while the writer commits; FULL makes a commit
    # durable before the 202 goes out (the writer batches, so fsyncs are few).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def migrate(engine: sa.Engine) -> None:
    """Bring the schema to the newest revision (``alembic upgrade head``), once across processes."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Several collectors may start at once on one database: one migrates, the others wait.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
