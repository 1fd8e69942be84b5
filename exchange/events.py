"""Engine events. Each carries its instrument's symbol and a gapless per-instrument ``seq``.

Events are immutable named tuples: cheap to build on the hot path, hashable, and readable
by attribute. An accepted command returns its events in the order they happened; the
concatenation of all events is the exchange's market-data and audit log.
"""

from __future__ import annotations

from typing import NamedTuple

from exchange.ids import AccountId, OrderId, Symbol, Timestamp, TradeId
from exchange.lifecycle import InstrumentState
from exchange.orders import CancelReason, ExpireReason, OrderType, SelfTradePrevention, Side
from exchange.units import Price, Quantity

__all__ = [
    "BookChanged",
    "Event",
    "InstrumentListed",
    "InstrumentStateChanged",
    "OrderAccepted",
    "OrderAmended",
    "OrderCancelled",
    "OrderExpired",
    "ReferencePriceSet",
    "SelfTradePrevented",
    "Trade",
]


class InstrumentListed(NamedTuple):
    symbol: Symbol
    seq: int
    ts: Timestamp
    tier: str
    delivery_start: Timestamp
    delivery_end: Timestamp
    gate_closure: Timestamp


class InstrumentStateChanged(NamedTuple):
    symbol: Symbol
    seq: int
    ts: Timestamp
    old_state: InstrumentState
    new_state: InstrumentState


class ReferencePriceSet(NamedTuple):
    symbol: Symbol
    seq: int
    ts: Timestamp
    price: Price | None
    band_low: Price
    band_high: Price


class OrderAccepted(NamedTuple):
    symbol: Symbol
    seq: int
    ts: Timestamp
    order_id: OrderId
    account: AccountId
    side: Side
    order_type: OrderType
    price: Price  # a market order's protection price
    quantity: Quantity


class Trade(NamedTuple):
    """A fill between an incoming (taker) and a resting (maker) order at the maker's price."""

    symbol: Symbol
    seq: int
    ts: Timestamp
    trade_id: TradeId
    price: Price
    quantity: Quantity
    taker_side: Side
    taker_order_id: OrderId
    taker_account: AccountId
    maker_order_id: OrderId
    maker_account: AccountId
    maker_remaining: Quantity


class OrderCancelled(NamedTuple):
    symbol: Symbol
    seq: int
    ts: Timestamp
    order_id: OrderId
    account: AccountId
    quantity: Quantity  # the remaining quantity that was cancelled
    reason: CancelReason


class OrderExpired(NamedTuple):
    symbol: Symbol
    seq: int
    ts: Timestamp
    order_id: OrderId
    account: AccountId
    quantity: Quantity  # the remaining quantity that expired
    reason: ExpireReason


class OrderAmended(NamedTuple):
    symbol: Symbol
    seq: int
    ts: Timestamp
    order_id: OrderId
    account: AccountId
    price: Price
    quantity: Quantity  # new total quantity
    remaining: Quantity
    priority_kept: bool


class SelfTradePrevented(NamedTuple):
    """Two orders of one account met; ``quantity`` is how much each lost (decrement mode)."""

    symbol: Symbol
    seq: int
    ts: Timestamp
    taker_order_id: OrderId
    maker_order_id: OrderId
    account: AccountId
    mode: SelfTradePrevention
    quantity: Quantity


class BookChanged(NamedTuple):
    """Level-2 delta: the total resting quantity now at ``price`` on ``side`` (0: level gone)."""

    symbol: Symbol
    seq: int
    side: Side
    price: Price
    quantity: Quantity


Event = (
    InstrumentListed
    | InstrumentStateChanged
    | ReferencePriceSet
    | OrderAccepted
    | Trade
    | OrderCancelled
    | OrderExpired
    | OrderAmended
    | SelfTradePrevented
    | BookChanged
)
