"""The engine tests' commands: each engine operation as an immutable record.

The model and scenario tests state their streams in these records and apply each through
:func:`tests.exchange.helpers.apply`, to the real engine and to the reference alike. The
exchange itself logs :mod:`exchange.operations`, never these.
"""

from __future__ import annotations

from dataclasses import dataclass

from exchange.ids import AccountId, OrderId, Symbol, Timestamp
from exchange.lifecycle import InstrumentEvent
from exchange.orders import OrderType, SelfTradePrevention, Side, TimeInForce
from exchange.products import Instrument
from exchange.units import Price, Quantity

__all__ = [
    "AdvanceTime",
    "AmendOrder",
    "CancelAll",
    "CancelOrder",
    "Command",
    "ListInstrument",
    "PlaceOrder",
    "SetReferencePrice",
    "Transition",
]


@dataclass(frozen=True, slots=True)
class ListInstrument:
    instrument: Instrument
    reference_price: Price | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """A lifecycle event for one instrument: open, halt, resume, close, delivery, settle."""

    symbol: Symbol
    event: InstrumentEvent


@dataclass(frozen=True, slots=True)
class SetReferencePrice:
    symbol: Symbol
    price: Price | None


@dataclass(frozen=True, slots=True)
class AdvanceTime:
    """Move the engine clock forward to ``ts``; GTD orders that fall due expire."""

    ts: Timestamp


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    order_id: OrderId
    account: AccountId
    symbol: Symbol
    side: Side
    quantity: Quantity
    price: Price | None = None  # None for market orders
    order_type: OrderType = OrderType.LIMIT
    time_in_force: TimeInForce = TimeInForce.GTC
    expire_time: Timestamp | None = None
    post_only: bool = False
    stp: SelfTradePrevention = SelfTradePrevention.CANCEL_NEWEST


@dataclass(frozen=True, slots=True)
class CancelOrder:
    account: AccountId
    order_id: OrderId


@dataclass(frozen=True, slots=True)
class AmendOrder:
    account: AccountId
    order_id: OrderId
    price: Price | None = None
    quantity: Quantity | None = None  # the new total quantity of the order


@dataclass(frozen=True, slots=True)
class CancelAll:
    account: AccountId
    symbol: Symbol | None = None


Command = (
    ListInstrument
    | Transition
    | SetReferencePrice
    | AdvanceTime
    | PlaceOrder
    | CancelOrder
    | AmendOrder
    | CancelAll
)
