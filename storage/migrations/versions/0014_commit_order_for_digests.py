"""digests on PostgreSQL follow commit order: each ledger row keeps its transaction's id, each digest
run the snapshot it read

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | None = None
depends_on: str | None = None

# See storage.models.SERVER_KEPT_COLUMNS and storage.digests.Window.
TIMED_TABLES = ("movement", "pledge")


def upgrade() -> None:
    with op.batch_alter_table("digest_run") as batch:
        batch.add_column(sa.Column("snapshot", sa.Text(), nullable=True))
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TIMED_TABLES:
        # Added empty (instant), then defaulted: rows already there stay NULL, "committed before any
        # snapshot a digest stored", which they are (this ALTER waits for every open transaction).
        op.execute(f"ALTER TABLE {table} ADD COLUMN txid xid8")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN txid SET DEFAULT pg_current_xact_id()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TIMED_TABLES:
            op.execute(f"ALTER TABLE {table} DROP COLUMN txid")
    with op.batch_alter_table("digest_run") as batch:
        batch.drop_column("snapshot")
