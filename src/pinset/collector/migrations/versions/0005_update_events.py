"""The ``update_events`` table: refused pin-set bundles and failed update checks, per hour.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "update_events",
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
    )
    op.create_index(
        "ux_update_events_key_hour", "update_events", ["dedup_key", "hour"], unique=True
    )
    op.create_index("ix_update_events_last_seen", "update_events", ["last_seen"])


def downgrade() -> None:
    op.drop_index("ix_update_events_last_seen", table_name="update_events")
    op.drop_index("ux_update_events_key_hour", table_name="update_events")
    op.drop_table("update_events")
