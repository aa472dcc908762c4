"""The collector's tables (SQLAlchemy Core). Alembic migrations create them; this is the model.

Times are integer epoch seconds (UTC) so that SQLite and PostgreSQL compare and
bucket them the same way. Identical reports within 24 h of the first one are
one ``reports`` row with a ``count`` (the writer's sliding window; the index on
``(dedup_key, first_seen)`` finds the row). ``failure_hours``, ``failure_minutes``
and ``chain_pins`` are roll-ups the writer keeps in the same transaction, so that
summaries, alerts and chains read a few thousand rows instead of every report.
``verdict_tallies`` holds the opt-in verdict counts clients post to ``/v1/tallies``:
the denominators of failure rates and the traffic shares of ``/v1/adoption``.
``update_events`` holds the refused bundles and failed update checks apps post to
``/v1/update-events``: one row per distinct event and hour, with a ``count``.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "DIMENSIONS",
    "chain_pins",
    "chains",
    "failure_hours",
    "failure_minutes",
    "metadata",
    "reports",
    "update_events",
    "verdict_tallies",
]

DIMENSIONS = ("hostname", "app_version", "validation_result", "chain")

metadata = sa.MetaData()

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

reports = sa.Table(
    "reports",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("dedup_key", sa.String(64), nullable=False),
    sa.Column("first_seen", sa.BigInteger, nullable=False),
    sa.Column("last_seen", sa.BigInteger, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("date_time", sa.BigInteger),
    sa.Column("hostname", sa.String(255), nullable=False),
    sa.Column("port", sa.Integer),
    sa.Column("noted_hostname", sa.String(255)),
    sa.Column("include_subdomains", sa.Boolean),
    sa.Column("effective_expiration_date", sa.String(255)),
    sa.Column("known_pins_expiration_date", sa.String(255)),
    sa.Column("app_bundle_id", sa.String(255)),
    sa.Column("app_version", sa.String(255)),
    sa.Column("app_platform", sa.String(255)),
    sa.Column("enforce_pinning", sa.Boolean),
    sa.Column("validation_result", sa.String(32), nullable=False),
    sa.Column("served_chain_key", sa.String(64)),
    sa.Column("validated_chain_key", sa.String(64)),
    sa.Column("known_pins", sa.JSON, nullable=False),
    sa.Column("variant", sa.String(32), nullable=False),
    sa.Column("extra", sa.JSON, nullable=False),
    sa.Index("ix_reports_first_seen", "first_seen"),
    sa.Index("ix_reports_hostname_first_seen", "hostname", "first_seen"),
    sa.Index("ix_reports_served_chain", "served_chain_key"),
    sa.Index("ix_reports_dedup_first_seen", "dedup_key", "first_seen"),
)

chains = sa.Table(
    "chains",
    metadata,
    sa.Column("chain_key", sa.String(64), primary_key=True),
    sa.Column("pems", sa.JSON, nullable=False),
    sa.Column("pins", sa.JSON, nullable=False),
    sa.Column("subjects", sa.JSON, nullable=False),
    sa.Column("first_seen", sa.BigInteger, nullable=False),
)

failure_hours = sa.Table(
    "failure_hours",
    metadata,
    # One row per (dimension, hour, value): failures per hostname, app_version,
    # validation_result, and per "chain" (value: "<chain_key> <hostname>"). Marginals,
    # not their cross product, so a week of summary is a few thousand rows.
    sa.Column("dimension", sa.String(20), primary_key=True),
    sa.Column("hour", sa.BigInteger, primary_key=True),
    sa.Column("value", sa.String(400), primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
)

failure_minutes = sa.Table(
    "failure_minutes",
    metadata,
    sa.Column("minute", sa.BigInteger, primary_key=True),
    sa.Column("hostname", sa.String(255), primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
)

chain_pins = sa.Table(
    "chain_pins",
    metadata,
    # Which known pins the clients that were served a chain held, per hour: the
    # union over a window answers "is any of these keys pinned?" for /v1/chains
    # without reading every report of a busy chain.
    sa.Column("chain_key", sa.String(64), primary_key=True),
    sa.Column("hour", sa.BigInteger, primary_key=True),
    sa.Column("pin", sa.String(64), primary_key=True),
)

verdict_tallies = sa.Table(
    "verdict_tallies",
    metadata,
    # One row per (app, domain, app version, pin-set version, interval); clients posting
    # the same key add to it. "" stands for "not given" so that the key has no NULL.
    sa.Column("app_id", sa.String(255), primary_key=True),
    sa.Column("domain", sa.String(255), primary_key=True),
    sa.Column("app_version", sa.String(255), primary_key=True),
    sa.Column("pin_set_version", sa.String(32), primary_key=True),
    sa.Column("interval_start", sa.BigInteger, primary_key=True),
    sa.Column("interval_seconds", sa.Integer, nullable=False),
    sa.Column("pinned", sa.BigInteger, nullable=False),
    sa.Column("mismatch", sa.BigInteger, nullable=False),
    sa.Column("report_only_mismatch", sa.BigInteger, nullable=False),
    sa.Column("expired", sa.BigInteger, nullable=False),
    sa.Index("ix_verdict_tallies_interval_start", "interval_start"),
)

update_events = sa.Table(
    "update_events",
    metadata,
    # One row per (event, hour of receipt): posts of the same event (same kind, reason,
    # source, versions, app and refused bytes; dedup_key) in one hour add to ``count``.
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("dedup_key", sa.String(64), nullable=False),
    sa.Column("hour", sa.BigInteger, nullable=False),
    sa.Column("first_seen", sa.BigInteger, nullable=False),
    sa.Column("last_seen", sa.BigInteger, nullable=False),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("detail", sa.String(500), nullable=False),
    sa.Column("date_time", sa.BigInteger, nullable=False),
    sa.Column("source", sa.String(1024), nullable=False),
    sa.Column("app_id", sa.String(255)),
    sa.Column("version", sa.BigInteger),
    sa.Column("pin_set_version", sa.BigInteger),
    sa.Column("bundle_sha256", sa.String(64)),
    sa.Index("ux_update_events_key_hour", "dedup_key", "hour", unique=True),
    sa.Index("ix_update_events_last_seen", "last_seen"),
)
