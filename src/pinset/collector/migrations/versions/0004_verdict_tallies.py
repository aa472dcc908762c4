"""The ``verdict_tallies`` table: opt-in verdict counts per app, domain, versions and interval.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "verdict_tallies",
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
    )
    op.create_index("ix_verdict_tallies_interval_start", "verdict_tallies", ["interval_start"])


def downgrade() -> None:
    op.drop_index("ix_verdict_tallies_interval_start", table_name="verdict_tallies")
    op.drop_table("verdict_tallies")
