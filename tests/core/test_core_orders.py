"""ExchangeCore order behaviour: holds, rejections that change nothing, release exactly once."""

from __future__ import annotations

import pytest

from exchange.core import OrderState
from exchange.invariants import InvariantViolation
from exchange.ledger import HoldState
from exchange.operations import (
    AdvanceClock,
    AmendOrder,
    CancelAll,
    CancelOrder,
    Deposit,
    PlaceOrder,
    Withdraw,
)
from exchange.orders import OrderStatus, OrderType, SelfTradePrevention, Side, TimeInForce
from exchange.products import HOUR_US
from exchange.refusals import refusal_of
from tests.core.helpers import CNY, Market, make_market

Q = 50_000_000  # 50 PF·h
P = 200_000  # 20 CNY per PF·h
NOTIONAL = P * Q  # 1,000 CNY


def order(m: Market, result: object) -> OrderState:
    assert isinstance(result, OrderState)
    return result


def test_buy_holds_limit_times_quantity_plus_the_maximum_fee() -> None:
    m = make_market(buyer_cash=2_000 * CNY)
    o = order(m, m.buy(Q, P))
    assert o.status is OrderStatus.OPEN
    hold = 1_000 * CNY + 1 * CNY  # 1,000 CNY + 10 bp (the taker rate, the higher one)
    assert m.bal(m.buyer) == {"available": 2_000 * CNY - hold, "held": hold, "escrow": 0,
                              "collateral": 0}  # fmt: skip
    m.core.check()


def test_sell_holds_collateral_and_capacity() -> None:
    m = make_market(seller_cash=500 * CNY)
    o = order(m, m.sell(Q, P))
    collateral = 200 * CNY  # 20 % of the 1,000 CNY notional
    assert m.bal(m.seller)["held"] == collateral
    assert m.bal(m.seller)["available"] == 300 * CNY
    view = m.core.capacity_view(m.seller, m.symbol)
    assert view["held"] == Q
    assert view["available"] == view["total"] - Q
    assert m.core.capacity.reserved[o.id].quantity == Q
    m.core.check()


def test_trade_moves_holds_to_escrow_and_collateral_and_releases_price_improvement() -> None:
    m = make_market(buyer_cash=2_000 * CNY, seller_cash=500 * CNY)
    m.sell(Q, 190_000)  # rests at 19 CNY
    buy = order(m, m.buy(Q, P))  # limit 20 CNY, fills at 19 as the taker
    assert buy.status is OrderStatus.FILLED
    notional = 190_000 * Q  # 950 CNY
    escrow = notional + notional * 10 // 10_000  # + 0.95 CNY taker fee
    assert escrow == 950 * CNY + 95 * CNY // 100
    # The hold was 1,001 CNY; the 50.05 CNY not needed came back at once.
    assert m.bal(m.buyer) == {"available": 2_000 * CNY - escrow, "held": 0, "escrow": escrow,
                              "collateral": 0}  # fmt: skip
    assert m.bal(m.seller) == {"available": 310 * CNY, "held": 0, "escrow": 0,
                               "collateral": 190 * CNY}  # fmt: skip
    (contract,) = m.core.contracts.values()
    assert (contract.quantity, contract.price, contract.escrow) == (Q, 190_000, escrow)
    assert m.core.capacity.committed[contract.id].quantity == Q
    assert m.core.ledger.holds == {}
    m.core.check()


def test_partial_fill_keeps_exactly_what_the_rest_needs() -> None:
    m = make_market(buyer_cash=3_000 * CNY)
    m.sell(Q // 2, 190_000)
    buy = order(m, m.buy(Q, P))
    assert buy.status is OrderStatus.PARTIALLY_FILLED and buy.remaining == Q // 2
    rest_hold = P * (Q // 2) + P * (Q // 2) * 10 // 10_000  # 500 + 0.5 CNY
    assert m.bal(m.buyer)["held"] == rest_hold
    escrow = 190_000 * (Q // 2) * 10_010 // 10_000
    assert m.bal(m.buyer)["escrow"] == escrow
    assert m.bal(m.buyer)["available"] == 3_000 * CNY - rest_hold - escrow
    m.core.check()


@pytest.mark.parametrize("cash", [1_000 * CNY, 1_001 * CNY - 1])
def test_insufficient_funds_changes_nothing(cash: int) -> None:
    m = make_market(buyer_cash=cash)
    assert m.reject(PlaceOrder(m.buyer, m.symbol, Side.BUY, Q, P)) == "insufficient_funds"
    assert m.core.orders == {} and m.core.ledger.holds == {}
    m.apply(Deposit(m.buyer, 1_001 * CNY - cash))
    assert order(m, m.buy(Q, P)).status is OrderStatus.OPEN  # exactly enough


def test_seller_without_collateral_is_refused_and_keeps_its_capacity() -> None:
    m = make_market(seller_cash=200 * CNY - 1)
    assert m.reject(PlaceOrder(m.seller, m.symbol, Side.SELL, Q, P)) == "insufficient_funds"
    assert m.core.capacity.reserved == {}


def test_insufficient_capacity_changes_nothing() -> None:
    m = make_market(pool_count=10)  # 10 H100: 9.894 PF·h in a one-hour window
    cap = m.core.capacity_view(m.seller, m.symbol)["total"]
    assert cap == 9_894_000
    assert m.reject(PlaceOrder(m.seller, m.symbol, Side.SELL, 9_895_000, P)) == (
        "insufficient_capacity"
    )
    m.sell(9_894_000, P)
    assert m.reject(PlaceOrder(m.seller, m.symbol, Side.SELL, 1_000, P)) == "insufficient_capacity"


def test_a_buyer_without_pools_cannot_sell() -> None:
    m = make_market()
    assert m.reject(PlaceOrder(m.buyer, m.symbol, Side.SELL, Q, P)) == "insufficient_capacity"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"price": 200_050}, "invalid_tick"),
        ({"price": 250_000}, "price_out_of_band"),
        ({"quantity": 1_500}, "invalid_lot"),
        ({"symbol": "FP16-H-20000101T00"}, "instrument_not_found"),
        ({"order_type": OrderType.MARKET}, "invalid_time_in_force"),
        ({"order_type": OrderType.MARKET, "time_in_force": TimeInForce.IOC}, "invalid_price"),
        ({"time_in_force": TimeInForce.GTD}, "invalid_expire_time"),
    ],
)
def test_engine_refusals_change_nothing(change: dict[str, object], code: str) -> None:
    m = make_market()
    fields: dict[str, object] = {
        "account_id": m.buyer, "symbol": m.symbol, "side": Side.BUY, "quantity": Q, "price": P,
    }  # fmt: skip
    fields.update(change)
    assert m.reject(PlaceOrder(**fields)) == code  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        ({"price": 200_050}, "invalid_tick", "price 20.005 is not a multiple of the tick 0.01"),
        ({"price": 250_000}, "price_out_of_band", "price 25 is outside the band 16 to 24"),
        ({"quantity": 1_500}, "invalid_lot", "quantity 0.0015 is not a multiple of the lot 0.001"),
        ({"quantity": 0}, "invalid_quantity", "quantity 0 must be positive"),
        (
            {"quantity": 10**15},
            "quantity_above_maximum",
            "quantity 1000000000 is above the maximum 1000",
        ),
        ({"price": 0}, "invalid_price", "price 0 must be positive"),
        ({"price": None}, "invalid_price", "a limit order needs a price"),
        (
            {"order_type": OrderType.MARKET},
            "invalid_time_in_force",
            "a market order is ioc or fok, not gtc",
        ),
        (
            {"time_in_force": TimeInForce.GTD, "expire_time": 1},
            "invalid_expire_time",
            "expire_time: 1970-01-01T00:00:00.000001Z is not after the clock's "
            "2026-11-18T11:00:00Z",
        ),
        ({"account_id": 999}, "account_not_found", "no account 999"),
        (
            {"side": Side.SELL},
            "insufficient_capacity",
            "quantity 50 is above the 0 uncommitted in the eligible pools",
        ),
        (
            {"quantity": 600_000_000},
            "insufficient_funds",
            "available balance 10000.00 is below the order's hold 12012.00",
        ),
    ],
)
def test_a_refusal_carries_the_figures(change: dict[str, object], code: str, message: str) -> None:
    """The message is the refusal's template with the instrument's figures, written as the
    API writes decimals and times."""
    m = make_market()
    fields: dict[str, object] = {
        "account_id": m.buyer, "symbol": m.symbol, "side": Side.BUY, "quantity": Q, "price": P,
    }  # fmt: skip
    fields.update(change)
    rejected = m.rejected(PlaceOrder(**fields))  # type: ignore[arg-type]
    assert (rejected.code, rejected.message) == (code, message)
    assert rejected.code is refusal_of(code)


def test_an_amendment_refusal_carries_the_figures() -> None:
    m = make_market()
    o = order(m, m.buy(Q, P))
    for change, code, message in (
        ({"price": 200_050}, "invalid_tick", "price 20.005 is not a multiple of the tick 0.01"),
        ({"price": 250_000}, "price_out_of_band", "price 25 is outside the band 16 to 24"),
        ({"quantity": 0}, "amend_below_filled", "quantity 0 is not above the filled 0"),
        ({"quantity": Q}, "nothing_to_amend", "give a new price, a new quantity or both"),
    ):
        rejected = m.rejected(AmendOrder(m.buyer, o.id, **change))  # type: ignore[arg-type]
        assert (rejected.code, rejected.message) == (code, message)
    rejected = m.rejected(AdvanceClock(0))
    assert rejected.message == "1970-01-01T00:00:00Z is before the clock's 2026-11-18T11:00:00Z"
    m.apply(CancelOrder(m.buyer, o.id))
    rejected = m.rejected(CancelOrder(m.buyer, o.id))
    assert rejected.message == f"order {o.id} is cancelled"


def test_cancel_releases_the_hold_exactly_once() -> None:
    m = make_market(buyer_cash=2_000 * CNY)
    o = order(m, m.buy(Q, P))
    hold_id = o.hold_id
    assert hold_id is not None
    m.apply(CancelOrder(m.buyer, o.id))
    assert o.status is OrderStatus.CANCELLED and o.hold_id is None
    assert m.bal(m.buyer) == {"available": 2_000 * CNY, "held": 0, "escrow": 0, "collateral": 0}
    assert m.reject(CancelOrder(m.buyer, o.id)) == "order_not_open"
    m.apply(CancelAll(m.buyer))  # nothing left to cancel: no second release
    assert m.bal(m.buyer)["available"] == 2_000 * CNY
    with pytest.raises(InvariantViolation):
        m.core.ledger.close_hold(m.core.now, hold_id)  # the hold is gone for good
    m.core.check()


def test_cancel_of_a_sell_releases_collateral_and_capacity() -> None:
    m = make_market()
    o = order(m, m.sell(Q, P))
    m.apply(CancelAll(m.seller, m.symbol))
    assert o.status is OrderStatus.CANCELLED
    assert m.bal(m.seller)["available"] == 10_000 * CNY and m.bal(m.seller)["held"] == 0
    assert m.core.capacity.reserved == {} and m.core.capacity.used == {}
    m.core.check()


def test_someone_elses_order_is_not_found() -> None:
    m = make_market()
    o = order(m, m.buy(Q, P))
    assert m.reject(CancelOrder(m.seller, o.id)) == "order_not_found"
    assert m.reject(AmendOrder(m.seller, o.id, quantity=Q // 2)) == "order_not_found"


def test_gtd_expiry_releases_the_hold_once() -> None:
    m = make_market(buyer_cash=2_000 * CNY)
    expire = m.core.now + 10 * 60_000_000
    o = order(m, m.buy(Q, P, time_in_force=TimeInForce.GTD, expire_time=expire))
    m.advance(expire - 1)
    assert o.is_open
    m.advance(expire)
    assert o.status is OrderStatus.EXPIRED
    assert m.bal(m.buyer) == {"available": 2_000 * CNY, "held": 0, "escrow": 0, "collateral": 0}
    m.advance(expire + HOUR_US)
    assert m.bal(m.buyer)["available"] == 2_000 * CNY
    m.core.check()


def test_gate_closure_cancels_resting_orders_and_releases_everything() -> None:
    m = make_market()
    b = order(m, m.buy(Q, 180_000))
    s = order(m, m.sell(Q, P))
    gate = m.core.instruments[m.symbol].instrument.gate_closure  # type: ignore[index]
    m.advance(gate - 1)
    assert b.is_open and s.is_open
    m.advance(gate)
    assert b.status is OrderStatus.CANCELLED and s.status is OrderStatus.CANCELLED
    for account in (m.buyer, m.seller):
        assert m.bal(account) == {"available": 10_000 * CNY, "held": 0, "escrow": 0,
                                  "collateral": 0}  # fmt: skip
    assert m.core.capacity.reserved == {} and m.core.ledger.holds == {}
    assert m.reject(PlaceOrder(m.buyer, m.symbol, Side.BUY, Q, P)) == "instrument_not_open"
    m.core.check()


def test_ioc_and_fok_leave_nothing_held() -> None:
    m = make_market()
    m.sell(Q // 2, P)
    ioc = order(m, m.buy(Q, P, time_in_force=TimeInForce.IOC))
    assert ioc.status is OrderStatus.EXPIRED and ioc.filled == Q // 2
    fok = order(m, m.buy(Q, P, time_in_force=TimeInForce.FOK))
    assert fok.status is OrderStatus.EXPIRED and fok.filled == 0
    escrow = P * (Q // 2) * 10_010 // 10_000
    assert m.bal(m.buyer) == {"available": 10_000 * CNY - escrow, "held": 0, "escrow": escrow,
                              "collateral": 0}  # fmt: skip
    m.core.check()


def test_market_buy_holds_at_its_protection_price_and_refunds_the_rest() -> None:
    m = make_market()
    m.sell(Q, 190_000)
    o = order(m, m.buy(Q, None, order_type=OrderType.MARKET, time_in_force=TimeInForce.IOC))
    assert o.price == 240_000  # reference + 20 % band
    assert o.status is OrderStatus.FILLED
    escrow = 190_000 * Q * 10_010 // 10_000
    assert m.bal(m.buyer)["escrow"] == escrow
    assert m.bal(m.buyer)["available"] == 10_000 * CNY - escrow
    m.core.check()


def test_amend_up_needs_more_funds() -> None:
    m = make_market(buyer_cash=1_500 * CNY)
    o = order(m, m.buy(Q, P))  # holds 1,001 CNY
    assert m.reject(AmendOrder(m.buyer, o.id, quantity=Q * 2)) == "insufficient_funds"
    assert o.quantity == Q
    m.apply(Deposit(m.buyer, 600 * CNY))
    m.apply(AmendOrder(m.buyer, o.id, quantity=Q * 2))
    assert m.bal(m.buyer)["held"] == 2_002 * CNY
    m.apply(AmendOrder(m.buyer, o.id, price=180_000))
    assert m.bal(m.buyer)["held"] == 1_800 * CNY + 18 * CNY // 10
    assert m.bal(m.buyer)["available"] == 2_100 * CNY - 18_018 * CNY // 10
    m.core.check()


def test_amend_up_of_a_sell_needs_capacity() -> None:
    m = make_market(pool_count=10)
    o = order(m, m.sell(5_000_000, P))
    assert m.reject(AmendOrder(m.seller, o.id, quantity=9_895_000)) == "insufficient_capacity"
    m.apply(AmendOrder(m.seller, o.id, quantity=9_894_000))
    assert m.core.capacity.reserved[o.id].quantity == 9_894_000
    m.apply(AmendOrder(m.seller, o.id, quantity=1_000))
    assert m.core.capacity.reserved[o.id].quantity == 1_000
    assert m.bal(m.seller)["held"] == P * 1_000 * 2_000 // 10_000
    m.core.check()


def test_withdrawal_cannot_touch_held_money() -> None:
    m = make_market(buyer_cash=2_000 * CNY)
    m.buy(Q, P)
    assert m.reject(Withdraw(m.buyer, 999 * CNY + 1)) == "insufficient_funds"
    m.apply(Withdraw(m.buyer, 999 * CNY))
    assert m.bal(m.buyer)["available"] == 0
    m.core.check()


def test_client_order_id_resubmission_returns_the_same_order() -> None:
    m = make_market(buyer_cash=3_000 * CNY)
    first = order(m, m.buy(Q, P, client_order_id="abc-1"))
    state = m.core.state_hash()
    again = order(m, m.buy(Q, P, client_order_id="abc-1"))
    assert again is first
    assert m.core.state_hash() == state
    assert len(m.core.orders) == 1 and m.bal(m.buyer)["held"] == 1_001 * CNY
    # ... still after the order ended: the key stays taken
    m.apply(CancelOrder(m.buyer, first.id))
    assert order(m, m.buy(Q, P, client_order_id="abc-1")) is first
    assert len(m.core.orders) == 1
    # another account may use the same key
    other = order(m, m.sell(Q, P, client_order_id="abc-1"))
    assert other.id != first.id
    m.core.check()


def test_self_trade_decrement_then_amend_keeps_the_core_consistent() -> None:
    """Bug: the engine and the core disagree on an order's remaining after a decrement.

    A resting sell of 10 PF·h meets its own buy of 4 PF·h under STP ``decrement``: both
    shrink by 4, the sell keeps 6 PF·h remaining (quantity 10, filled 0). Amending the
    sell's quantity to 12 PF·h should leave 12 - 4 = 8 remaining in both the core (which
    sizes the hold and capacity on 8) and the book; the engine computes ``12 - filled``
    = 12, so the core's hold is 8's collateral while the book rests 12:
    ``InvariantViolation: order 1 holds less than it needs`` in the middle of applying an
    accepted operation (state half changed). Lowering the quantity fails the same way.
    """
    m = make_market()
    s = order(m, m.sell(10_000_000, P))
    b = order(m, m.apply(PlaceOrder(m.seller, m.symbol, Side.BUY, 4_000_000, P,
                                    stp=SelfTradePrevention.DECREMENT)))  # fmt: skip
    assert (s.remaining, s.decremented, b.status) == (6_000_000, 4_000_000, OrderStatus.CANCELLED)
    m.core.check()
    m.apply(AmendOrder(m.seller, s.id, quantity=12_000_000))
    assert s.remaining == 8_000_000
    resting = m.core.engine.resting_order(s.id)  # type: ignore[arg-type]
    assert resting is not None and resting.remaining == 8_000_000
    assert m.core.capacity.reserved[s.id].quantity == 8_000_000
    m.core.check()


def test_clock_cannot_go_backwards() -> None:
    m = make_market()
    assert m.reject(AdvanceClock(m.core.now - 1)) == "clock_went_backwards"


def test_closed_holds_are_posted_or_voided() -> None:
    m = make_market()
    journal_before = len(m.core.ledger.journal)
    o = order(m, m.buy(Q, P))
    hold = m.core.ledger.holds[o.hold_id]  # type: ignore[index]
    m.apply(CancelOrder(m.buyer, o.id))
    assert hold.state is HoldState.VOIDED
    assert len(m.core.ledger.journal) == journal_before + 2  # hold, release
