"""The records the exchange core keeps: accounts, tiers, instruments, sites, pools, orders
and fills, the refusal every operation may raise, and what one operation changed."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction

import msgspec

from exchange.events import Event
from exchange.ids import Symbol
from exchange.ledger import Transfer
from exchange.lifecycle import InstrumentState
from exchange.operations import PlaceOrder
from exchange.orders import OrderStatus, OrderType, Side, TimeInForce
from exchange.products import Instrument, Tier, TierStatus
from exchange.refusals import Refusal
from exchange.settlement import Contract, Liquidity
from exchange.units import Price
from pricing import Pool, Site, TradePrint

__all__ = [
    "AccountRecord",
    "Changes",
    "Fill",
    "InstrumentRecord",
    "OrderState",
    "PoolRecord",
    "Rejected",
    "SiteRecord",
    "TierRecord",
    "same_order",
    "window_symbol",
]

#: Trades kept per tier for the trade-derived reference price.
TIER_TRADES_KEPT = 500


class Rejected(Exception):
    """An operation refused before it changed anything. ``code`` is the stable API code.

    ``Rejected(Refusal.X, **fields)`` renders the refusal's message from its template;
    the older ``Rejected(code, message)`` (free text) is still accepted, and a code
    alone reads as its words ("invalid tick")."""

    def __init__(self, code: str, message: str = "", /, **fields: object) -> None:
        if fields:
            if not isinstance(code, Refusal) or message:
                raise TypeError("fields render the template of a Refusal, not a message")
            message = code.message(**fields)
        elif not message and isinstance(code, Refusal) and not code.fields:
            message = code.template
        super().__init__(message or code)
        self.code = code
        self.message = message or code.replace("_", " ")


@dataclass(slots=True)
class AccountRecord:
    id: int
    name: str
    role: str
    created_at: int


@dataclass(slots=True)
class TierRecord:
    tier: Tier
    admin_price: Price
    status: TierStatus
    created_at: int
    next_start: int  # start of the next window to list
    reference: Price
    trades: deque[TradePrint] = field(default_factory=lambda: deque(maxlen=TIER_TRADES_KEPT))
    dirty: bool = False  # trades since the reference price was last derived


@dataclass(slots=True)
class InstrumentRecord:
    instrument: Instrument
    hours: tuple[int, ...]
    state: InstrumentState = InstrumentState.LISTED
    contract_ids: list[int] = field(default_factory=list)
    trades: list[TradePrint] = field(default_factory=list)
    last_price: Price | None = None

    @property
    def symbol(self) -> Symbol:
        return self.instrument.symbol


@dataclass(slots=True)
class SiteRecord:
    id: int
    owner: int
    name: str
    location: str | None
    site: Site


@dataclass(slots=True)
class PoolRecord:
    id: int
    owner: int
    site_id: int
    hardware_id: str
    count: int

    def as_pricing_pool(self) -> Pool:
        return Pool(str(self.id), str(self.site_id), self.hardware_id, self.count)


@dataclass(slots=True)
class Changes:
    """Everything one or more operations changed, in order.

    ``retired_orders`` and ``retired_contracts`` are the final records of settled
    instruments that left the core (by id): a changed order or contract not in the core
    any more is there."""

    events: list[Event]
    orders: set[int]
    contracts: set[int]
    settled: list[int]
    transfers: list[Transfer]
    retired_orders: Mapping[int, OrderState] = field(default_factory=dict)
    retired_contracts: Mapping[int, Contract] = field(default_factory=dict)


class Fill(msgspec.Struct, frozen=True):
    trade_id: int
    contract_id: int
    price: int
    quantity: int
    fee: int
    liquidity: Liquidity
    ts: int


class OrderState(msgspec.Struct):
    """The exchange's view of one order, from acceptance to its end."""

    id: int
    client_order_id: str | None
    account_id: int
    symbol: str
    side: Side
    order_type: OrderType
    price: int  # limit, or a market order's protection price
    quantity: int
    time_in_force: TimeInForce
    expire_time: int | None
    post_only: bool
    stp: str
    created_at: int
    maker_fee_bps: int
    taker_fee_bps: int
    penalty_bps: int
    risk_price: int  # the price the hold is sized on
    hold_id: int | None = None
    filled: int = 0
    remaining: int = 0
    decremented: int = 0  # lost to self-trade prevention (decrement mode)
    closed: int = 0  # cancelled or expired
    notional: int = 0  # sum of price x quantity over fills
    status: OrderStatus = OrderStatus.OPEN
    updated_at: int = 0
    fills: list[Fill] = []

    @property
    def average_price(self) -> Fraction | None:
        return Fraction(self.notional, self.filled) if self.filled else None

    @property
    def is_open(self) -> bool:
        return self.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)


def same_order(order: OrderState, op: PlaceOrder) -> bool:
    """Does ``op`` ask for the same order as ``order`` (a resubmission, not a new order)?"""
    return (
        order.symbol == op.symbol
        and order.side is op.side
        and order.order_type is op.order_type
        and (op.order_type is OrderType.MARKET or order.price == op.price)
        and order.quantity == op.quantity
        and order.time_in_force is op.time_in_force
        and order.expire_time == op.expire_time
        and order.post_only == op.post_only
        and order.stp == op.stp.value
    )


def window_symbol(tier_code: str, start: int) -> Symbol:
    """``FP16-H-4A-20261122T10``: the tier code and the window's UTC start hour."""
    when = datetime.fromtimestamp(start / 1_000_000, tz=UTC)
    return Symbol(f"{tier_code}-{when:%Y%m%dT%H}")
