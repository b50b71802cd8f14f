"""acknowledgements given on behalf of a country (by ops or an admin who is not its liaison)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("acknowledgement", schema=None) as batch_op:
        batch_op.add_column(sa.Column("on_behalf", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("acknowledgement", schema=None) as batch_op:
        batch_op.drop_column("on_behalf")
