"""Home boards refreshed in the background: marks of board changes, the refresher's claim

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "home_board_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("changed_at", storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "home_refresh",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("refreshed_at", storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("home_refresh")
    op.drop_table("home_board_change")
