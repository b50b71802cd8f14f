"""PostgreSQL: liaison_reconsider(), the error a command's own statements raise when the server finds
that the command must be checked again step by step (storage.gates)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 19:00:00
"""

from __future__ import annotations

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None

# VOLATILE (the default): the planner never evaluates it ahead of the row that calls it.
CREATE = """
CREATE OR REPLACE FUNCTION liaison_reconsider() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION 'liaison: check this command again, step by step' USING ERRCODE = 'LI001';
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":  # SQLite runs every command step by step
        op.execute(CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS liaison_reconsider()")
