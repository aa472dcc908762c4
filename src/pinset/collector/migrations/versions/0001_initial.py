"""The first schema: reports, chains and the hourly/minute roll-ups.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("dedup_key", sa.String(64), nullable=False),
        sa.Column("day", sa.Integer, nullable=False),
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
        sa.UniqueConstraint("dedup_key", "day", name="uq_reports_dedup_day"),
    )
    op.create_index("ix_reports_first_seen", "reports", ["first_seen"])
    op.create_index("ix_reports_hostname_first_seen", "reports", ["hostname", "first_seen"])
    op.create_index("ix_reports_served_chain", "reports", ["served_chain_key"])
    op.create_table(
        "chains",
        sa.Column("chain_key", sa.String(64), primary_key=True),
        sa.Column("pems", sa.JSON, nullable=False),
        sa.Column("pins", sa.JSON, nullable=False),
        sa.Column("subjects", sa.JSON, nullable=False),
        sa.Column("first_seen", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "failure_hours",
        sa.Column("dimension", sa.String(20), primary_key=True),
        sa.Column("hour", sa.BigInteger, primary_key=True),
        sa.Column("value", sa.String(400), primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "failure_minutes",
        sa.Column("minute", sa.BigInteger, primary_key=True),
        sa.Column("hostname", sa.String(255), primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("failure_minutes")
    op.drop_table("failure_hours")
    op.drop_table("chains")
    op.drop_table("reports")
