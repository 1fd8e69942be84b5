"""log hash chain; API keys in the operation log

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 14:00:00

Each operation-log row gains ``chain``, the hash chain over the log (api.db.chain),
computed here for the rows already written.

API keys are now recorded by the operation log, and ``api_keys`` is their projection:
a public prefix of at most 8 characters, the digest, where the key came from and when it
was revoked. Keys written before this revision are moved to ``api_keys_legacy`` (prefix
cut to 8 characters); the service records them in the log at its next start and drops
that table (api.keys.import_legacy_keys).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from api.db.chain import GENESIS, link

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _chain_existing_rows() -> None:
    bind = op.get_bind()
    log = sa.table(
        "operation_log",
        sa.column("seq", sa.BigInteger),
        sa.column("applied_at", sa.BigInteger),
        sa.column("kind", sa.String),
        sa.column("payload", sa.LargeBinary),
        sa.column("chain", sa.LargeBinary),
    )
    previous = GENESIS
    rows = bind.execute(
        sa.select(log.c.seq, log.c.applied_at, log.c.kind, log.c.payload).order_by(log.c.seq)
    ).all()
    for seq, applied_at, kind, payload in rows:
        previous = link(previous, seq, applied_at, kind, bytes(payload))
        bind.execute(sa.update(log).where(log.c.seq == seq).values(chain=previous))


def upgrade() -> None:
    op.add_column("operation_log", sa.Column("chain", sa.LargeBinary(), nullable=True))
    _chain_existing_rows()
    with op.batch_alter_table("operation_log") as batch:
        batch.alter_column("chain", existing_type=sa.LargeBinary(), nullable=False)

    op.create_table(
        "api_keys_legacy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute(
        "INSERT INTO api_keys_legacy (id, account_id, key_hash, prefix, created_at) "
        "SELECT id, account_id, key_hash, substr(prefix, 1, 8), created_at FROM api_keys"
    )
    op.execute("DELETE FROM api_keys")
    with op.batch_alter_table("api_keys") as batch:
        batch.alter_column(
            "key_hash", existing_type=sa.String(length=64), type_=sa.String(length=200)
        )
        batch.alter_column("prefix", existing_type=sa.String(length=16), type_=sa.String(length=8))
        batch.add_column(sa.Column("origin", sa.String(length=16), nullable=False))
        batch.add_column(sa.Column("revoked_at", sa.BigInteger(), nullable=True))
    if not op.get_bind().execute(sa.text("SELECT count(*) FROM api_keys_legacy")).scalar():
        op.drop_table("api_keys_legacy")


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("revoked_at")
        batch.drop_column("origin")
        batch.alter_column("prefix", existing_type=sa.String(length=8), type_=sa.String(16))
        batch.alter_column("key_hash", existing_type=sa.String(length=200), type_=sa.String(64))
    with op.batch_alter_table("operation_log") as batch:
        batch.drop_column("chain")
