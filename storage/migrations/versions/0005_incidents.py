"""incidents and their timelines

Revision ID: 0005
Revises: 0002
Create Date: 2026-11-25 12:58:29.855264
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0005"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "incident",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=150), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=32), nullable=True),
        sa.Column("countries", sa.String(length=200), nullable=False),
        sa.Column("opened_by", sa.String(length=32), nullable=False),
        sa.Column("opened_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("resolved_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("card_message_id", sa.Integer(), nullable=True),
        sa.Column("card_permalink", sa.String(length=500), nullable=True),
        sa.Column("source_channel", sa.String(length=32), nullable=True),
        sa.Column("source_ts", sa.String(length=32), nullable=True),
        sa.Column("source_permalink", sa.String(length=500), nullable=True),
        sa.Column("owner_due_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("update_due_at", storage.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["card_message_id"],
            ["outbox.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incident_owner"), ["owner"], unique=False)
        batch_op.create_index(batch_op.f("ix_incident_owner_due_at"), ["owner_due_at"], unique=False)
        batch_op.create_index("ix_incident_status_severity", ["status", "severity"], unique=False)
        batch_op.create_index(batch_op.f("ix_incident_update_due_at"), ["update_due_at"], unique=False)

    op.create_table(
        "incident_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("actor", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incident.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("incident_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incident_event_incident_id"), ["incident_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("incident_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incident_event_incident_id"))

    op.drop_table("incident_event")
    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incident_update_due_at"))
        batch_op.drop_index("ix_incident_status_severity")
        batch_op.drop_index(batch_op.f("ix_incident_owner_due_at"))
        batch_op.drop_index(batch_op.f("ix_incident_owner"))

    op.drop_table("incident")
