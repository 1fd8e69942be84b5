"""Builders and event projections shared by the trading-core tests.

Prices and quantities are raw integer units of ``exchange.units`` throughout. The default
tier has tick 1, lot 1, quantities 1..1000 and a 10 % band, so that with reference price
100 the band is [90, 110] and the numbers in a test read like the examples of the doc.
"""

from __future__ import annotations

from typing import Any

from exchange.engine import MatchingEngine
from exchange.events import (
    BookChanged,
    InstrumentListed,
    InstrumentStateChanged,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    ReferencePriceSet,
    SelfTradePrevented,
    Trade,
)
from exchange.ids import AccountId, OrderId, Symbol, Timestamp
from exchange.lifecycle import InstrumentEvent
from exchange.orders import Side
from exchange.products import HOUR_US, DeliveryWindow, Instrument, Precision, Tier
from exchange.units import Price, Quantity
from tests.exchange.commands import (
    AdvanceTime,
    AmendOrder,
    CancelAll,
    CancelOrder,
    Command,
    ListInstrument,
    PlaceOrder,
    SetReferencePrice,
    Transition,
)

SYM = Symbol("FP16-H-T1-20260101T10")
SYM2 = Symbol("FP16-H-T1-20260101T11")
A, B, C = AccountId(1), AccountId(2), AccountId(3)
BUY, SELL = Side.BUY, Side.SELL


def make_tier(
    *,
    tick: int = 1,
    lot: int = 1,
    min_quantity: int = 1,
    max_quantity: int = 1_000,
    price_band_bps: int = 1_000,
    code: str = "FP16-H-T1",
) -> Tier:
    return Tier(
        code=code,
        precision=Precision.FP16,
        gpu_class="H",
        tick=Price(tick),
        lot=Quantity(lot),
        min_quantity=Quantity(min_quantity),
        max_quantity=Quantity(max_quantity),
        price_band_bps=price_band_bps,
    )


def make_instrument(symbol: Symbol = SYM, tier: Tier | None = None, hour: int = 10) -> Instrument:
    start = Timestamp(1_767_225_600_000_000 + hour * HOUR_US)
    return Instrument(
        symbol=symbol,
        tier=tier if tier is not None else make_tier(),
        window=DeliveryWindow(start, Timestamp(start + HOUR_US)),
        gate_closure=Timestamp(start - HOUR_US),
    )


def open_market(
    engine: Any,
    symbol: Symbol = SYM,
    reference: int | None = 100,
    tier: Tier | None = None,
) -> None:
    """List and open an instrument on ``engine`` (the real one or the reference)."""
    hour = 10 if symbol == SYM else 11
    listed = engine.list_instrument(
        make_instrument(symbol, tier, hour), None if reference is None else Price(reference)
    )
    assert listed.ok, listed
    opened = engine.transition(symbol, InstrumentEvent.OPEN)
    assert opened.ok, opened


def new_engine(reference: int | None = 100, tier: Tier | None = None) -> MatchingEngine:
    engine = MatchingEngine()
    open_market(engine, SYM, reference, tier)
    return engine


def limit(
    engine: Any,
    order_id: int,
    account: AccountId,
    side: Side,
    price: int,
    quantity: int,
    **kwargs: Any,
) -> Any:
    """Place a limit order (GTC unless ``time_in_force`` says otherwise) on ``SYM``."""
    symbol = kwargs.pop("symbol", SYM)
    return engine.place(
        OrderId(order_id), account, symbol, side, Price(price), Quantity(quantity), **kwargs
    )


def depth(engine: Any, side: Side, symbol: Symbol = SYM) -> list[tuple[int, int]]:
    if isinstance(engine, MatchingEngine):
        return [(int(p), int(q)) for p, q in engine.book(symbol).depth(side)]
    return list(engine.depth(symbol, side))


def resting(engine: Any, side: Side, symbol: Symbol = SYM) -> list[tuple[int, int, int, int]]:
    """(order id, account, price, remaining) in priority order, for either implementation."""
    if isinstance(engine, MatchingEngine):
        return [
            (o.order_id, o.account, o.price, o.remaining)
            for o in engine.book(symbol).iter_orders(side)
        ]
    return list(engine.resting(symbol, side))


def seqs(engine: MatchingEngine, symbol: Symbol = SYM) -> int:
    return engine.book(symbol).seq


def brief(event: Any) -> tuple[Any, ...]:
    """A compact, readable projection of one event (no symbol, seq or timestamp)."""
    if isinstance(event, OrderAccepted):
        return ("accepted", event.order_id, event.side, event.price, event.quantity)
    if isinstance(event, Trade):
        return (
            "trade",
            event.price,
            event.quantity,
            event.taker_order_id,
            event.maker_order_id,
            event.maker_remaining,
        )
    if isinstance(event, OrderCancelled):
        return ("cancelled", event.order_id, event.quantity, event.reason.value)
    if isinstance(event, OrderExpired):
        return ("expired", event.order_id, event.quantity, event.reason.value)
    if isinstance(event, OrderAmended):
        return (
            "amended",
            event.order_id,
            event.price,
            event.quantity,
            event.remaining,
            event.priority_kept,
        )
    if isinstance(event, SelfTradePrevented):
        return ("stp", event.taker_order_id, event.maker_order_id, event.mode.value, event.quantity)
    if isinstance(event, BookChanged):
        return ("book", event.side.value, event.price, event.quantity)
    if isinstance(event, InstrumentStateChanged):
        return ("state", event.old_state.value, event.new_state.value)
    if isinstance(event, ReferencePriceSet):
        return ("reference", event.price, event.band_low, event.band_high)
    if isinstance(event, InstrumentListed):
        return ("listed", event.tier)
    raise AssertionError(f"unknown event {event!r}")


def briefs(outcome: Any) -> list[tuple[Any, ...]]:
    return [brief(e) for e in outcome.events]


def apply(engine: Any, command: Command) -> Any:
    """Apply a command record to the real engine or to the reference (which has no process)."""
    if isinstance(command, PlaceOrder):
        return engine.place(
            command.order_id,
            command.account,
            command.symbol,
            command.side,
            command.price,
            command.quantity,
            command.order_type,
            command.time_in_force,
            command.expire_time,
            command.post_only,
            command.stp,
        )
    if isinstance(command, CancelOrder):
        return engine.cancel(command.account, command.order_id)
    if isinstance(command, AmendOrder):
        return engine.amend(command.account, command.order_id, command.price, command.quantity)
    if isinstance(command, CancelAll):
        return engine.cancel_all(command.account, command.symbol)
    if isinstance(command, AdvanceTime):
        return engine.advance_time(command.ts)
    if isinstance(command, Transition):
        return engine.transition(command.symbol, command.event)
    if isinstance(command, SetReferencePrice):
        return engine.set_reference_price(command.symbol, command.price)
    if isinstance(command, ListInstrument):
        return engine.list_instrument(command.instrument, command.reference_price)
    raise TypeError(command)
