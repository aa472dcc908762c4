"""De-duplicate over a sliding 24 h window instead of the UTC calendar day.

Drops ``reports.day`` and its unique constraint with ``dedup_key`` (a sliding
window cannot be a unique key: the writer serialises per key with a lock
instead) and adds the index the writer's lookup uses.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_reports_dedup_first_seen", "reports", ["dedup_key", "first_seen"])
    # Batch mode: SQLite cannot drop a constraint or column in place (it copies the table).
    with op.batch_alter_table("reports") as batch:
        batch.drop_constraint("uq_reports_dedup_day", type_="unique")
        batch.drop_column("day")


def downgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("day", sa.Integer, nullable=True))
    op.execute("UPDATE reports SET day = first_seen / 86400")
    with op.batch_alter_table("reports") as batch:
        batch.alter_column("day", existing_type=sa.Integer, nullable=False)
        batch.create_unique_constraint("uq_reports_dedup_day", ["dedup_key", "day"])
    op.drop_index("ix_reports_dedup_first_seen", table_name="reports")
