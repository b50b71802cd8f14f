"""movement: one index on (country, created_at) in place of the one on country alone

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 22:00:00
"""

from __future__ import annotations

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Serves every lookup by country as the old index did, and finds a country's latest movement
    # in one seek (storage.digests.last_movement_at) instead of a pass over the ledger.
    op.create_index("ix_movement_country_created", "movement", ["country", "created_at"])
    op.drop_index("ix_movement_country", table_name="movement")


def downgrade() -> None:
    op.create_index("ix_movement_country", "movement", ["country"])
    op.drop_index("ix_movement_country_created", table_name="movement")
