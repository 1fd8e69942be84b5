"""SQLModel tables: the operation log (source of truth) and its projections.

The operation log holds every accepted operation in order; replaying it through
:class:`exchange.core.ExchangeCore` rebuilds the exchange exactly. The other tables are
projections written in the same transaction as the operations that produced them, for
auditors, integrators and SQL queries. Money columns hold exact decimal strings (SQLite
has no exact decimal type); prices and quantities hold integers of minor units.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, LargeBinary, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = [
    "AccountRow",
    "ApiKeyRow",
    "ArchiveRow",
    "ContractRow",
    "DeliveryRow",
    "EventRow",
    "GpuClassRow",
    "HardwareRow",
    "IdempotencyRow",
    "InstrumentRow",
    "OperationRow",
    "OrderRow",
    "PoolRow",
    "ProjectionStateRow",
    "SettlementRow",
    "SiteRow",
    "TierRow",
    "TradeRow",
    "TransferRow",
]


class OperationRow(SQLModel, table=True):
    __tablename__ = "operation_log"
    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    applied_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    kind: str = Field(sa_column=Column(String(32), nullable=False))
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # SHA-256 over the previous row's chain and this row (api.db.chain).
    chain: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class AccountRow(SQLModel, table=True):
    __tablename__ = "accounts"
    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    name: str = Field(sa_column=Column(String(100), nullable=False))
    role: str = Field(sa_column=Column(String(16), nullable=False))
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class ApiKeyRow(SQLModel, table=True):
    """API keys as the operation log records them (a projection): a public prefix of at
    most 8 characters and a digest, never the key (api.keys says which digest)."""

    __tablename__ = "api_keys"
    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    key_hash: str = Field(sa_column=Column(String(200), nullable=False, unique=True))
    prefix: str = Field(sa_column=Column(String(8), nullable=False))
    origin: str = Field(sa_column=Column(String(16), nullable=False))
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    revoked_at: int | None = Field(default=None, sa_column=Column(BigInteger))


class IdempotencyRow(SQLModel, table=True):
    """The stored response of a mutating request sent with an Idempotency-Key header."""

    __tablename__ = "idempotency_keys"
    account_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    key: str = Field(sa_column=Column(String(100), primary_key=True))
    request_digest: str = Field(sa_column=Column(String(64), nullable=False))
    status: int = Field(sa_column=Column(BigInteger, nullable=False))
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class HardwareRow(SQLModel, table=True):
    """Models added or confirmed by admins (the built-in catalog ships with the package)."""

    __tablename__ = "hardware"
    id: str = Field(sa_column=Column(String(80), primary_key=True))
    vendor: str = Field(sa_column=Column(String(60), nullable=False))
    model: str = Field(sa_column=Column(String(120), nullable=False))
    quality: str = Field(sa_column=Column(String(2), nullable=False))
    confirmed: bool = False
    payload: str = Field(sa_column=Column(Text, nullable=False))


class GpuClassRow(SQLModel, table=True):
    __tablename__ = "gpu_classes"
    code: str = Field(sa_column=Column(String(32), primary_key=True))
    name: str = Field(sa_column=Column(String(100), nullable=False))
    precision: str = Field(sa_column=Column(String(8), nullable=False))
    payload: str = Field(sa_column=Column(Text, nullable=False))


class TierRow(SQLModel, table=True):
    __tablename__ = "tiers"
    code: str = Field(sa_column=Column(String(32), primary_key=True))
    precision: str = Field(sa_column=Column(String(8), nullable=False))
    gpu_class: str = Field(sa_column=Column(String(32), nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False))
    reference_price: int = Field(sa_column=Column(BigInteger, nullable=False))
    payload: str = Field(sa_column=Column(Text, nullable=False))


class InstrumentRow(SQLModel, table=True):
    __tablename__ = "instruments"
    symbol: str = Field(sa_column=Column(String(64), primary_key=True))
    tier: str = Field(sa_column=Column(String(32), nullable=False, index=True))
    delivery_start: int = Field(sa_column=Column(BigInteger, nullable=False))
    delivery_end: int = Field(sa_column=Column(BigInteger, nullable=False))
    gate_closure: int = Field(sa_column=Column(BigInteger, nullable=False))
    state: str = Field(sa_column=Column(String(16), nullable=False))


class SiteRow(SQLModel, table=True):
    __tablename__ = "sites"
    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    owner: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    name: str = Field(sa_column=Column(String(100), nullable=False))
    region: str = Field(sa_column=Column(String(16), nullable=False))
    location: str | None = Field(default=None, sa_column=Column(String(200)))
    pue: str = Field(sa_column=Column(String(20), nullable=False))
    green_share: str = Field(sa_column=Column(String(20), nullable=False))
    emission_factor: str = Field(sa_column=Column(String(20), nullable=False))
    emission_factor_version: str = Field(sa_column=Column(String(40), nullable=False))
    green_grade: str = Field(sa_column=Column(String(2), nullable=False))


class PoolRow(SQLModel, table=True):
    __tablename__ = "pools"
    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    owner: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    site_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    hardware_id: str = Field(sa_column=Column(String(80), nullable=False))
    count: int = Field(sa_column=Column(BigInteger, nullable=False))


class OrderRow(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("account_id", "client_order_id"),)
    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    client_order_id: str | None = Field(default=None, sa_column=Column(String(64)))
    account_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    symbol: str = Field(sa_column=Column(String(64), nullable=False))
    side: str = Field(sa_column=Column(String(4), nullable=False))
    order_type: str = Field(sa_column=Column(String(8), nullable=False))
    price: int = Field(sa_column=Column(BigInteger, nullable=False))
    quantity: int = Field(sa_column=Column(BigInteger, nullable=False))
    filled: int = Field(sa_column=Column(BigInteger, nullable=False))
    remaining: int = Field(sa_column=Column(BigInteger, nullable=False))
    status: str = Field(sa_column=Column(String(20), nullable=False))
    time_in_force: str = Field(sa_column=Column(String(4), nullable=False))
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class TradeRow(SQLModel, table=True):
    __tablename__ = "trades"
    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    symbol: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    price: int = Field(sa_column=Column(BigInteger, nullable=False))
    quantity: int = Field(sa_column=Column(BigInteger, nullable=False))
    taker_side: str = Field(sa_column=Column(String(4), nullable=False))
    taker_order_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    maker_order_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    ts: int = Field(sa_column=Column(BigInteger, nullable=False))


class ContractRow(SQLModel, table=True):
    __tablename__ = "contracts"
    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    trade_id: int = Field(sa_column=Column(BigInteger, nullable=False, unique=True))
    symbol: str = Field(sa_column=Column(String(64), nullable=False))
    buyer: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    seller: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    quantity: int = Field(sa_column=Column(BigInteger, nullable=False))
    price: int = Field(sa_column=Column(BigInteger, nullable=False))
    state: str = Field(sa_column=Column(String(16), nullable=False))
    delivered_quantity: int = Field(sa_column=Column(BigInteger, nullable=False))
    escrow: str = Field(sa_column=Column(String(40), nullable=False))
    collateral: str = Field(sa_column=Column(String(40), nullable=False))
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    settled_at: int | None = Field(default=None, sa_column=Column(BigInteger))


class SettlementRow(SQLModel, table=True):
    """One row per settled contract: the primary key makes a second settlement impossible."""

    __tablename__ = "settlements"
    contract_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    settled_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    delivered_quantity: int = Field(sa_column=Column(BigInteger, nullable=False))
    seller_paid: str = Field(sa_column=Column(String(40), nullable=False))
    fees: str = Field(sa_column=Column(String(40), nullable=False))
    refunded: str = Field(sa_column=Column(String(40), nullable=False))
    penalty: str = Field(sa_column=Column(String(40), nullable=False))


class TransferRow(SQLModel, table=True):
    __tablename__ = "ledger_transfers"
    __table_args__ = (
        Index("ix_transfer_debit", "debit_owner"),
        Index("ix_transfer_credit", "credit_owner"),
    )
    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    ts: int = Field(sa_column=Column(BigInteger, nullable=False))
    debit_owner: int = Field(sa_column=Column(BigInteger, nullable=False))
    debit_kind: str = Field(sa_column=Column(String(16), nullable=False))
    credit_owner: int = Field(sa_column=Column(BigInteger, nullable=False))
    credit_kind: str = Field(sa_column=Column(String(16), nullable=False))
    amount: str = Field(sa_column=Column(String(40), nullable=False))
    code: str = Field(sa_column=Column(String(24), nullable=False))
    ref: str = Field(sa_column=Column(String(64), nullable=False))


class DeliveryRow(SQLModel, table=True):
    __tablename__ = "deliveries"
    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    contract_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    pool_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    device_seconds: int = Field(sa_column=Column(BigInteger, nullable=False))
    ts: int = Field(sa_column=Column(BigInteger, nullable=False))


class EventRow(SQLModel, table=True):
    """The engine's event log: (symbol, seq) is gapless per instrument."""

    __tablename__ = "events"
    symbol: str = Field(sa_column=Column(String(64), primary_key=True))
    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    type: str = Field(sa_column=Column(String(32), nullable=False))
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class ProjectionStateRow(SQLModel, table=True):
    """How far the projections have been written: the last operation they include.

    The operation log is written when an operation is acknowledged; the other tables are
    written after it, in their own transactions, which also move this watermark. After a
    crash, whatever lies past it is projected again from the log before serving.
    """

    __tablename__ = "projection_state"
    name: str = Field(sa_column=Column(String(32), primary_key=True))
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))


class ArchiveRow(SQLModel, table=True):
    """The final records the core retired with a settled instrument (Clock._retire):
    its orders (kind ``order``, by order id), contracts (``contract``, by contract id)
    and fills (``fill``, by trade id x 2, + 1 for the sell side). ``payload`` is the
    record itself, msgpack-encoded (api.archive); the other columns are what reads
    filter on: ``account_id`` (an order's or a fill's account, a contract's buyer),
    ``counterparty_id`` (a contract's seller), the instrument and the final status."""

    __tablename__ = "archive"
    __table_args__ = (
        Index("ix_archive_account", "kind", "account_id", "id"),
        Index("ix_archive_counterparty", "kind", "counterparty_id", "id"),
        Index("ix_archive_symbol", "kind", "symbol", "id"),
    )
    kind: str = Field(sa_column=Column(String(8), primary_key=True))
    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    account_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    counterparty_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    symbol: str = Field(sa_column=Column(String(64), nullable=False))
    status: str = Field(sa_column=Column(String(20), nullable=False))
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
