"""Operations: every state-changing request to the exchange, as an immutable record.

The operation log is the exchange's source of truth: applying the same operations in the
same order to a fresh :class:`exchange.core.ExchangeCore` rebuilds exactly the same
state (books, holds, balances, sequence numbers, state hash). Records are ``msgspec``
structs with a type tag, so the log is compact JSON that decodes back into these types.

Amounts are integers of minor units (:mod:`exchange.units`); times are exchange
microseconds. Decimal-string conversion happens in the API, before an operation exists.
Fields carry the typed values (``Price``, ``Quantity``, ``Money``, ``AccountId``,
``OrderId``, ``Symbol``, ``Timestamp``: ``NewType`` s, which msgspec encodes and decodes
as their base type, so the log's JSON is that of plain integers and strings). Contracts,
pools, sites and API keys are numbered by plain ``int``.
"""

from __future__ import annotations

import msgspec

from exchange.ids import AccountId, OrderId, Symbol, Timestamp
from exchange.orders import OrderType, SelfTradePrevention, Side, TimeInForce
from exchange.units import Money, Price, Quantity

__all__ = [
    "AddHardware",
    "AddPool",
    "AdvanceClock",
    "AmendOrder",
    "CancelAll",
    "CancelOrder",
    "CatalogModel",
    "ConfirmHardware",
    "CreateAccount",
    "CreateGpuClass",
    "CreateTier",
    "Deposit",
    "HaltInstrument",
    "InstallCatalog",
    "IssueApiKey",
    "Operation",
    "PlaceOrder",
    "RegisterSite",
    "ReportDelivery",
    "ResumeInstrument",
    "RevokeApiKey",
    "UpdateTier",
    "Withdraw",
    "decode_operation",
    "encode_operation",
]


class _Op(msgspec.Struct, frozen=True, tag=True, forbid_unknown_fields=True):
    pass


class CreateAccount(_Op, frozen=True):
    name: str
    role: str  # "trader" or "admin"
    # The account's first API key, as the shell derived it (exchange.keys): optional.
    key_prefix: str | None = None
    key_digest: str | None = None
    key_origin: str = "generated"


class IssueApiKey(_Op, frozen=True):
    """Another API key for an account (rotation: issue the new one, then revoke the old)."""

    account_id: AccountId
    prefix: str
    digest: str
    origin: str = "generated"


class RevokeApiKey(_Op, frozen=True):
    key_id: int


class Deposit(_Op, frozen=True):
    account_id: AccountId
    amount: Money


class Withdraw(_Op, frozen=True):
    account_id: AccountId
    amount: Money


class FigureIn(msgspec.Struct, frozen=True):
    tflops: str  # decimal string
    with_sparsity: bool = False
    accumulation: str | None = None


class AddHardware(_Op, frozen=True):
    vendor: str
    model: str
    figures: dict[str, FigureIn]  # precision -> figure
    memory_gb: str | None
    memory_bandwidth_gbs: str | None
    tdp_w: str | None
    quality: str
    source: str
    id: str | None = None
    confirmed: bool = False


class CatalogModel(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One catalog entry exactly as the core keeps it: figures are exact decimal strings
    (``str`` of the ``Decimal``, so the round trip keeps every digit and the exponent)."""

    id: str
    vendor: str
    model: str
    peak_tflops: dict[str, str]  # precision -> dense TFLOPS (TOPS for integers)
    memory_gb: str | None
    memory_bandwidth_gbs: str | None
    tdp_w: str | None
    quality: str
    figure_quality: dict[str, str] = {}  # figure name -> grade
    confirmed: bool = False
    fp64_vector_tflops: str | None = None
    source: str = ""
    note: str = ""


class InstallCatalog(_Op, frozen=True):
    """Models added to the catalog, or replacing the entry of the same id: the first
    operation of an exchange (its whole starting catalog), and later a newer packaged
    catalog. A model is never removed."""

    models: list[CatalogModel]


class ConfirmHardware(_Op, frozen=True):
    model_id: str


class CreateGpuClass(_Op, frozen=True):
    code: str
    name: str
    precision: str
    min_dense_tflops: str
    min_memory_gb: str = "0"
    min_memory_bandwidth_gbs: str = "0"
    vendors: list[str] | None = None
    models: list[str] | None = None


class CreateTier(_Op, frozen=True):
    code: str
    precision: str
    gpu_class: str
    min_green_grade: str | None
    tick: Price
    lot: Quantity
    min_quantity: Quantity
    max_quantity: Quantity
    price_band_bps: int
    maker_fee_bps: int
    taker_fee_bps: int
    shortfall_penalty_bps: int
    reference_price: Price
    regions: list[str] = []
    arithmetic_intensity: int | None = None
    window_hours: int = 1
    list_ahead_hours: int = 24
    gate_closure_minutes: int = 60


class UpdateTier(_Op, frozen=True):
    code: str
    status: str | None = None
    maker_fee_bps: int | None = None
    taker_fee_bps: int | None = None
    price_band_bps: int | None = None
    shortfall_penalty_bps: int | None = None
    reference_price: Price | None = None
    list_ahead_hours: int | None = None


class RegisterSite(_Op, frozen=True):
    owner: AccountId
    name: str
    region: str
    pue: str
    green_share: str
    emission_factor: str | None = None
    location: str | None = None


class AddPool(_Op, frozen=True):
    owner: AccountId
    site_id: int
    hardware_id: str
    count: int


class PlaceOrder(_Op, frozen=True):
    account_id: AccountId
    symbol: Symbol
    side: Side
    quantity: Quantity
    price: Price | None = None
    order_type: OrderType = OrderType.LIMIT
    time_in_force: TimeInForce = TimeInForce.GTC
    expire_time: Timestamp | None = None
    post_only: bool = False
    stp: SelfTradePrevention = SelfTradePrevention.CANCEL_NEWEST
    client_order_id: str | None = None


class CancelOrder(_Op, frozen=True):
    account_id: AccountId
    order_id: OrderId


class CancelAll(_Op, frozen=True):
    account_id: AccountId
    symbol: Symbol | None = None


class AmendOrder(_Op, frozen=True):
    account_id: AccountId
    order_id: OrderId
    price: Price | None = None
    quantity: Quantity | None = None


class ReportDelivery(_Op, frozen=True):
    account_id: AccountId
    contract_id: int
    pool_id: int
    device_seconds: int


class AdvanceClock(_Op, frozen=True):
    to: Timestamp


class HaltInstrument(_Op, frozen=True):
    symbol: Symbol


class ResumeInstrument(_Op, frozen=True):
    symbol: Symbol


Operation = (
    CreateAccount
    | Deposit
    | Withdraw
    | InstallCatalog
    | AddHardware
    | ConfirmHardware
    | CreateGpuClass
    | CreateTier
    | UpdateTier
    | RegisterSite
    | AddPool
    | PlaceOrder
    | CancelOrder
    | CancelAll
    | AmendOrder
    | ReportDelivery
    | AdvanceClock
    | HaltInstrument
    | ResumeInstrument
    | IssueApiKey
    | RevokeApiKey
)

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[Operation] = msgspec.json.Decoder(Operation)


def encode_operation(op: Operation) -> bytes:
    return _encoder.encode(op)


def decode_operation(data: bytes | str) -> Operation:
    return _decoder.decode(data)
