"""running totals split over shards, so concurrent movements of one country do not queue on one row

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None

COPY_UP = (
    "INSERT INTO deployment_total_sharded (country, capability, pledged, arrived, departed, shard) "
    "SELECT country, capability, pledged, arrived, departed, 0 FROM deployment_total"
)
COPY_DOWN = (
    "INSERT INTO deployment_total_single (country, capability, pledged, arrived, departed) "
    "SELECT country, capability, SUM(pledged), SUM(arrived), SUM(departed) FROM deployment_total "
    "GROUP BY country, capability"
)


def upgrade() -> None:
    # Rebuilt rather than altered: SQLite cannot change a primary key in place. The rows so far
    # become shard 0.
    op.create_table(
        "deployment_total_sharded",
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("capability", sa.String(length=40), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("pledged", sa.Integer(), nullable=False),
        sa.Column("arrived", sa.Integer(), nullable=False),
        sa.Column("departed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("country", "capability", "shard"),
    )
    op.execute(COPY_UP)
    op.drop_table("deployment_total")
    op.rename_table("deployment_total_sharded", "deployment_total")


def downgrade() -> None:
    op.create_table(
        "deployment_total_single",
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("capability", sa.String(length=40), nullable=False),
        sa.Column("pledged", sa.Integer(), nullable=False),
        sa.Column("arrived", sa.Integer(), nullable=False),
        sa.Column("departed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("country", "capability"),
    )
    op.execute(COPY_DOWN)
    op.drop_table("deployment_total")
    op.rename_table("deployment_total_single", "deployment_total")
