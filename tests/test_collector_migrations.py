"""Migrations keep what a collector stored under an older schema, on SQLite and PostgreSQL."""
# ruff: noqa: F811 - the fixtures imported from collector_fixtures are redefined as parameters

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from collector_fixtures import PIN_A, PIN_B, db_url  # noqa: F401 - fixtures
from pinset.collector import _db as collector_db
from pinset.collector._db import create_engine, migrate

KEY = "k" * 64
CHAIN = "c" * 64
T = 1_795_046_340  # 2026-11-18T23:59:00Z


def _upgrade(engine: sa.Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(collector_db.MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def test_reports_of_the_day_based_schema_survive_the_upgrade(db_url: str) -> None:
    engine = create_engine(db_url)
    _upgrade(engine, "0001")
    with engine.begin() as conn:
        for day, seen, count in ((T // 86400, T, 3), (T // 86400 + 1, T + 120, 1)):
            conn.execute(
                sa.text(
                    "INSERT INTO reports (dedup_key, day, first_seen, last_seen, count, hostname,"
                    " validation_result, served_chain_key, known_pins, variant, extra)"
                    " VALUES (:k, :day, :seen, :seen, :n, 'api.example.com', 'pin-mismatch',"
                    " :chain, :pins, 'rfc7469', '{}')"
                ),
                {
                    "k": KEY,
                    "day": day,
                    "seen": seen,
                    "n": count,
                    "chain": CHAIN,
                    "pins": json.dumps([PIN_A, PIN_B]),
                },
            )
    migrate(engine)  # to head
    inspector = sa.inspect(engine)
    assert "day" not in {c["name"] for c in inspector.get_columns("reports")}
    assert inspector.get_unique_constraints("reports") == []
    assert "ix_reports_dedup_first_seen" in {i["name"] for i in inspector.get_indexes("reports")}
    with engine.connect() as conn:
        counts = conn.execute(sa.text("SELECT count FROM reports ORDER BY first_seen")).scalars()
        assert list(counts) == [3, 1]
        pins = conn.execute(sa.text("SELECT chain_key, hour, pin FROM chain_pins"))
        hours = (T // 3600 * 3600, (T + 120) // 3600 * 3600)  # each row under its last_seen
        assert sorted(tuple(r) for r in pins) == sorted(
            (CHAIN, hour, pin) for hour in hours for pin in (PIN_A, PIN_B)
        )
    engine.dispose()


def test_downgrade_to_the_first_revision_and_back(db_url: str) -> None:
    engine = create_engine(db_url)
    migrate(engine)
    config = Config()
    config.set_main_option("script_location", str(collector_db.MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")
    assert "day" in {c["name"] for c in sa.inspect(engine).get_columns("reports")}
    migrate(engine)
    assert "chain_pins" in sa.inspect(engine).get_table_names()
    engine.dispose()


def test_0004_adds_the_tally_table_and_its_downgrade_drops_it(db_url: str) -> None:
    engine = create_engine(db_url)
    _upgrade(engine, "0003")
    assert "verdict_tallies" not in sa.inspect(engine).get_table_names()
    migrate(engine)
    inspector = sa.inspect(engine)
    assert inspector.get_pk_constraint("verdict_tallies")["constrained_columns"] == [
        "app_id",
        "domain",
        "app_version",
        "pin_set_version",
        "interval_start",
    ]
    assert "ix_verdict_tallies_interval_start" in {
        i["name"] for i in inspector.get_indexes("verdict_tallies")
    }
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO verdict_tallies VALUES ('a', 'api.example.com', '1', '7', :t,"
                " 3600, 5, 1, 0, 0)"
            ),
            {"t": T},
        )
    config = Config()
    config.set_main_option("script_location", str(collector_db.MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0003")
    assert "verdict_tallies" not in sa.inspect(engine).get_table_names()
    assert "chain_pins" in sa.inspect(engine).get_table_names()
    engine.dispose()
