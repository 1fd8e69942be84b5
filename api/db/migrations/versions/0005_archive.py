"""archive of retired records

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 14:00:00

The core now retires a settled instrument's orders, fills and contracts (memory stays
bounded); their final records are projected into ``archive``, where the API reads them.
A database written before this revision has settled instruments whose records are in no
archive yet: the marker row ``archive`` of ``projection_state`` is left out, and the next
start-up replays the whole log once to write them (api.service.ExchangeService).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "archive",
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("counterparty_id", sa.BigInteger(), nullable=True),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "id"),
    )
    op.create_index("ix_archive_account", "archive", ["kind", "account_id", "id"])
    op.create_index("ix_archive_counterparty", "archive", ["kind", "counterparty_id", "id"])
    op.create_index("ix_archive_symbol", "archive", ["kind", "symbol", "id"])


def downgrade() -> None:
    op.drop_table("archive")
