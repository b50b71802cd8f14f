"""running totals per country and capability, filled from the ledgers

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

# What the ledgers add up to so far: movements summed per kind, and the latest pledge of each
# (country, capability) — the same aggregate as storage.ledger.deployment_status.
BACKFILL = """
INSERT INTO deployment_total (country, capability, pledged, arrived, departed)
SELECT country, capability, SUM(pledged), SUM(arrived), SUM(departed) FROM (
    SELECT country, COALESCE(capability, '') AS capability, 0 AS pledged,
           SUM(CASE WHEN kind = 'arrival' THEN count ELSE 0 END) AS arrived,
           SUM(CASE WHEN kind = 'departure' THEN count ELSE 0 END) AS departed
    FROM movement GROUP BY country, COALESCE(capability, '')
    UNION ALL
    SELECT p.country, COALESCE(p.capability, ''), p.headcount, 0, 0
    FROM pledge p JOIN (SELECT MAX(id) AS id FROM pledge GROUP BY country, capability) latest
      ON p.id = latest.id
) AS parts
GROUP BY country, capability
"""


def upgrade() -> None:
    op.create_table(
        "deployment_total",
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("capability", sa.String(length=40), nullable=False),
        sa.Column("pledged", sa.Integer(), nullable=False),
        sa.Column("arrived", sa.Integer(), nullable=False),
        sa.Column("departed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("country", "capability"),
    )
    op.execute(BACKFILL)


def downgrade() -> None:
    op.drop_table("deployment_total")
