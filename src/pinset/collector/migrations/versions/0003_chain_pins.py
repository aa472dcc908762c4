"""The ``chain_pins`` roll-up: known pins per served chain and hour, for ``/v1/chains``.

Filled from the stored reports (each report's pins under the hour of its ``last_seen``).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ELEMENTS = {
    "sqlite": "json_each(r.known_pins) AS j",
    "postgresql": "json_array_elements_text(r.known_pins) AS j(value)",
}


def upgrade() -> None:
    op.create_table(
        "chain_pins",
        sa.Column("chain_key", sa.String(64), primary_key=True),
        sa.Column("hour", sa.BigInteger, primary_key=True),
        sa.Column("pin", sa.String(64), primary_key=True),
    )
    elements = _ELEMENTS[op.get_bind().dialect.name]
    op.execute(
        "INSERT INTO chain_pins (chain_key, hour, pin)"  # noqa: S608 - constant SQL
        " SELECT DISTINCT r.served_chain_key, r.last_seen / 3600 * 3600, j.value"
        f" FROM reports AS r, {elements} WHERE r.served_chain_key IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_table("chain_pins")
