"""outbox: per-message leases, reconciliation of uncertain posts, priorities; rate-limit pauses,
service issues and the rotating token

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("purpose", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("idem_key", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("unknown_errors", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("claim_token", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("uncertain_since", storage.types.UTCDateTime(), nullable=True))
        batch_op.create_index("ix_outbox_refers_to", ["refers_to_id"], unique=False)

    op.create_table(
        "slack_method_pause",
        sa.Column("method", sa.String(length=40), nullable=False),
        sa.Column("until", storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("method"),
    )
    op.create_table(
        "service_issue",
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.Column("since", storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "slack_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("access_token", sa.Text(), nullable=False),
        sa.Column("refresh_token", sa.Text(), nullable=False),
        sa.Column("expires_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("slack_token")
    op.drop_table("service_issue")
    op.drop_table("slack_method_pause")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_refers_to")
        batch_op.drop_column("uncertain_since")
        batch_op.drop_column("claim_token")
        batch_op.drop_column("unknown_errors")
        batch_op.drop_column("idem_key")
        batch_op.drop_column("purpose")
        batch_op.drop_column("priority")
