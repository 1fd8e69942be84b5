"""projection watermark

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 01:10:00

Projections are now written after the operation log, in their own transactions; the
watermark records the last operation they include. A database written before this
revision projected every operation in the transaction of its log row, so its watermark
starts at the end of the log.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "projection_state",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.execute(
        "INSERT INTO projection_state (name, seq) "
        "SELECT 'tables', COALESCE(MAX(seq), 0) FROM operation_log"
    )


def downgrade() -> None:
    op.drop_table("projection_state")
