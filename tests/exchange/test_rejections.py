"""Every ResultCode rejection, the first-failing-rule order, and that a rejection changes
nothing: not the state hash, not any sequence number, not the trade-id counter, no events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from exchange.engine import MatchingEngine
from exchange.ids import AccountId, OrderId, Symbol, Timestamp
from exchange.lifecycle import InstrumentEvent
from exchange.orders import OrderType, ResultCode, Side, TimeInForce
from exchange.units import Price, Quantity

from .helpers import SYM, SYM2, A, B, C, make_instrument, make_tier, open_market

BUY, SELL = Side.BUY, Side.SELL
GTC, GTD, IOC, FOK = TimeInForce.GTC, TimeInForce.GTD, TimeInForce.IOC, TimeInForce.FOK
MARKET, LIMIT = OrderType.MARKET, OrderType.LIMIT
R = ResultCode
# tick 5, lot 10, quantities 20..1000, band 10 %: reference 100 -> band [90, 110].
TIER = make_tier(tick=5, lot=10, min_quantity=20, max_quantity=1_000, price_band_bps=1_000)
NOW = Timestamp(1_000)


def engine_with_book() -> MatchingEngine:
    """SYM open with a book; SYM2 listed, not open; the clock at 1,000.

    Order 1: B sells 50 at 105, 20 of it filled by order 2 (C). Order 3: A buys 30 at 95.
    """
    e = MatchingEngine()
    open_market(e, SYM, 100, TIER)
    assert e.list_instrument(make_instrument(SYM2, TIER, hour=11)).ok
    assert e.advance_time(NOW).ok
    assert e.place(OrderId(1), B, SYM, SELL, Price(105), Quantity(50)).ok
    assert e.place(OrderId(2), C, SYM, BUY, Price(105), Quantity(20)).ok
    assert e.place(OrderId(3), A, SYM, BUY, Price(95), Quantity(30)).ok
    return e


def place(
    order_id: int = 9,
    side: Side = BUY,
    price: int | None = 100,
    qty: int = 20,
    *,
    symbol: Symbol = SYM,
    account: AccountId = A,
    order_type: OrderType = LIMIT,
    tif: TimeInForce = GTC,
    expire: int | None = None,
    post_only: bool = False,
) -> Callable[[MatchingEngine], Any]:
    def run(e: MatchingEngine) -> Any:
        return e.place(
            OrderId(order_id), account, symbol, side,
            None if price is None else Price(price), Quantity(qty), order_type, tif,
            None if expire is None else Timestamp(expire), post_only,
        )  # fmt: skip

    return run


def amend(order_id: int, price: int | None = None, qty: int | None = None,
          account: AccountId = B) -> Callable[[MatchingEngine], Any]:  # fmt: skip
    return lambda e: e.amend(
        account, OrderId(order_id), None if price is None else Price(price),
        None if qty is None else Quantity(qty),
    )  # fmt: skip


Step = Callable[[MatchingEngine], Any]


def halt(e: MatchingEngine) -> Any:
    return e.transition(SYM, InstrumentEvent.HALT)


def close(e: MatchingEngine) -> Any:
    return e.transition(SYM, InstrumentEvent.CLOSE)


def no_reference(e: MatchingEngine) -> Any:
    return e.set_reference_price(SYM, None)


def post_only_ask(e: MatchingEngine) -> Any:
    return e.place(OrderId(8), C, SYM, SELL, Price(110), Quantity(20), post_only=True)


#: (name, expected code, command, setup run first (must succeed), or None)
CASES: list[tuple[str, ResultCode, Step, Step | None]] = [
    ("place_unknown_instrument", R.INSTRUMENT_NOT_FOUND, place(symbol=Symbol("NOPE")), None),
    ("transition_unknown_instrument", R.INSTRUMENT_NOT_FOUND,
     lambda e: e.transition(Symbol("NOPE"), InstrumentEvent.OPEN), None),
    ("reference_unknown_instrument", R.INSTRUMENT_NOT_FOUND,
     lambda e: e.set_reference_price(Symbol("NOPE"), Price(100)), None),
    ("cancel_all_unknown_instrument", R.INSTRUMENT_NOT_FOUND,
     lambda e: e.cancel_all(A, Symbol("NOPE")), None),
    ("list_twice", R.INSTRUMENT_EXISTS,
     lambda e: e.list_instrument(make_instrument(SYM, TIER)), None),
    ("place_listed_not_open", R.INSTRUMENT_NOT_OPEN, place(symbol=SYM2), None),
    ("place_halted", R.INSTRUMENT_NOT_OPEN, place(), halt),
    ("amend_halted", R.INSTRUMENT_NOT_OPEN, amend(1, qty=40), halt),
    ("place_closed", R.INSTRUMENT_NOT_OPEN,
     place(), close),
    ("open_twice", R.INVALID_TRANSITION, lambda e: e.transition(SYM, InstrumentEvent.OPEN), None),
    ("settle_open", R.INVALID_TRANSITION,
     lambda e: e.transition(SYM, InstrumentEvent.SETTLE), None),
    ("duplicate_id", R.DUPLICATE_ORDER_ID, place(order_id=3), None),
    ("cancel_unknown", R.ORDER_NOT_FOUND, lambda e: e.cancel(A, OrderId(77)), None),
    ("cancel_filled", R.ORDER_NOT_FOUND, lambda e: e.cancel(C, OrderId(2)), None),
    ("cancel_someone_elses", R.ORDER_NOT_FOUND, lambda e: e.cancel(A, OrderId(1)), None),
    ("amend_someone_elses", R.ORDER_NOT_FOUND, amend(1, qty=40, account=A), None),
    ("quantity_zero", R.INVALID_QUANTITY, place(qty=0), None),
    ("quantity_negative", R.INVALID_QUANTITY, place(qty=-20), None),
    ("off_lot", R.INVALID_LOT, place(qty=25), None),
    ("below_minimum", R.QUANTITY_BELOW_MINIMUM, place(qty=10), None),
    ("above_maximum", R.QUANTITY_ABOVE_MAXIMUM, place(qty=1_010), None),
    ("limit_without_price", R.INVALID_PRICE, place(price=None), None),
    ("limit_price_zero", R.INVALID_PRICE, place(price=0), None),
    ("limit_price_negative", R.INVALID_PRICE, place(price=-5), None),
    ("market_with_price", R.INVALID_PRICE, place(price=100, order_type=MARKET, tif=IOC), None),
    ("off_tick", R.INVALID_TICK, place(price=101), None),
    ("reference_off_tick", R.INVALID_TICK, lambda e: e.set_reference_price(SYM, Price(101)), None),
    ("reference_zero", R.INVALID_TICK, lambda e: e.set_reference_price(SYM, Price(0)), None),
    ("list_reference_off_tick", R.INVALID_TICK,
     lambda e: e.list_instrument(make_instrument(Symbol("NEW"), TIER), Price(3)), None),
    ("above_band", R.PRICE_OUT_OF_BAND, place(price=115), None),
    ("below_band", R.PRICE_OUT_OF_BAND, place(side=SELL, price=85), None),
    ("market_without_reference", R.NO_REFERENCE_PRICE,
     place(price=None, order_type=MARKET, tif=IOC), no_reference),
    ("post_only_crossing", R.POST_ONLY_WOULD_CROSS, place(price=105, post_only=True), None),
    ("post_only_crossing_own", R.POST_ONLY_WOULD_CROSS,
     place(side=SELL, price=95, post_only=True, account=A), None),
    ("market_gtc", R.INVALID_TIME_IN_FORCE, place(price=None, order_type=MARKET, tif=GTC), None),
    ("market_gtd", R.INVALID_TIME_IN_FORCE,
     place(price=None, order_type=MARKET, tif=GTD, expire=5_000), None),
    ("gtd_without_expiry", R.INVALID_EXPIRE_TIME, place(tif=GTD), None),
    ("gtd_expiring_now", R.INVALID_EXPIRE_TIME, place(tif=GTD, expire=1_000), None),
    ("gtd_in_the_past", R.INVALID_EXPIRE_TIME, place(tif=GTD, expire=999), None),
    ("gtc_with_expiry", R.INVALID_EXPIRE_TIME, place(expire=5_000), None),
    ("ioc_with_expiry", R.INVALID_EXPIRE_TIME, place(tif=IOC, expire=5_000), None),
    ("market_with_expiry", R.INVALID_EXPIRE_TIME,
     place(price=None, order_type=MARKET, tif=IOC, expire=5_000), None),
    ("post_only_ioc", R.INVALID_ORDER_TYPE, place(tif=IOC, post_only=True), None),
    ("post_only_fok", R.INVALID_ORDER_TYPE, place(tif=FOK, post_only=True), None),
    ("market_post_only", R.INVALID_ORDER_TYPE,
     place(price=None, order_type=MARKET, tif=IOC, post_only=True), None),
    ("amend_nothing", R.NOTHING_TO_AMEND, amend(1), None),
    ("amend_same_values", R.NOTHING_TO_AMEND, amend(1, price=105, qty=50), None),
    ("amend_below_filled", R.AMEND_BELOW_FILLED, amend(1, qty=20), None),
    ("amend_quantity_zero", R.INVALID_QUANTITY, amend(1, qty=0), None),
    ("amend_off_lot", R.INVALID_LOT, amend(1, qty=45), None),
    ("amend_below_minimum", R.QUANTITY_BELOW_MINIMUM, amend(3, qty=10, account=A), None),
    ("amend_above_maximum", R.QUANTITY_ABOVE_MAXIMUM, amend(1, qty=2_000), None),
    ("amend_price_zero", R.INVALID_PRICE, amend(1, price=0), None),
    ("amend_off_tick", R.INVALID_TICK, amend(1, price=104), None),
    ("amend_out_of_band", R.PRICE_OUT_OF_BAND, amend(1, price=115), None),
    ("amend_post_only_to_crossing", R.POST_ONLY_WOULD_CROSS,
     amend(8, price=95, account=C), post_only_ask),
    ("clock_backwards", R.CLOCK_WENT_BACKWARDS, lambda e: e.advance_time(Timestamp(999)), None),
    # The first failing rule wins.
    ("halted_beats_duplicate", R.INSTRUMENT_NOT_OPEN, place(order_id=3), halt),
    ("duplicate_beats_quantity", R.DUPLICATE_ORDER_ID, place(order_id=3, qty=0), None),
    ("quantity_beats_order_type", R.INVALID_QUANTITY, place(qty=0, tif=IOC, post_only=True), None),
    ("lot_beats_minimum", R.INVALID_LOT, place(qty=15), None),
    ("maximum_beats_price", R.QUANTITY_ABOVE_MAXIMUM, place(qty=2_000, price=None), None),
    ("order_type_beats_price", R.INVALID_ORDER_TYPE, place(tif=FOK, post_only=True, price=3), None),
    ("time_in_force_beats_price", R.INVALID_TIME_IN_FORCE,
     place(price=100, order_type=MARKET, tif=GTC), None),
    ("tick_beats_band", R.INVALID_TICK, place(price=1_001), None),
    ("band_beats_expiry", R.PRICE_OUT_OF_BAND, place(price=200, tif=GTD), None),
    ("expiry_beats_post_only", R.INVALID_EXPIRE_TIME,
     place(price=105, post_only=True, tif=GTD), None),
    ("market_price_beats_reference", R.INVALID_PRICE,
     place(price=100, order_type=MARKET, tif=IOC), no_reference),
    ("amend_not_found_beats_halt", R.ORDER_NOT_FOUND, amend(1, qty=40, account=C), halt),
]  # fmt: skip


def fingerprint(e: MatchingEngine) -> tuple[Any, ...]:
    return (
        e.state_hash(),
        e.last_trade_id,
        e.now,
        tuple((s, e.book(s).seq) for s in e.symbols),
        tuple((s, e.book(s).depth(BUY), e.book(s).depth(SELL)) for s in e.symbols),
    )


@pytest.mark.parametrize(("name", "code", "command", "setup"), CASES, ids=[c[0] for c in CASES])
def test_rejection_changes_nothing(
    name: str, code: ResultCode, command: Step, setup: Step | None
) -> None:
    engine = engine_with_book()
    if setup is not None:
        assert setup(engine).ok
    before = fingerprint(engine)
    outcome = command(engine)
    assert outcome.result == code
    assert not outcome.ok
    assert outcome.events == []
    assert fingerprint(engine) == before
    engine.validate()


def test_every_rejection_code_is_covered() -> None:
    covered = {code for _, code, _, _ in CASES}
    assert covered == set(ResultCode) - {ResultCode.OK}


def test_the_book_fixture_is_what_the_cases_assume() -> None:
    engine = engine_with_book()
    assert engine.book(SYM).depth(BUY) == [(95, 30)]
    assert engine.book(SYM).depth(SELL) == [(105, 30)]
    order = engine.resting_order(OrderId(1))
    assert order is not None and order.filled == 20 and order.quantity == 50
