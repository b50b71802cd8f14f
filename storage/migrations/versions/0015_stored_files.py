"""stored_file and file_part: large upload content (exports) kept in parts, out of the outbox row

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "stored_file",
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("upload_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["upload_id"], ["outbox.id"]),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_stored_file_upload_id", "stored_file", ["upload_id"])
    op.create_table(
        "file_part",
        sa.Column("file_key", sa.String(length=32), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["file_key"], ["stored_file.key"]),
        sa.PrimaryKeyConstraint("file_key", "part"),
    )


def downgrade() -> None:
    op.drop_table("file_part")
    op.drop_index("ix_stored_file_upload_id", table_name="stored_file")
    op.drop_table("stored_file")
