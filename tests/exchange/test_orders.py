"""Order types, time in force, self-trade prevention, amend and GTD expiry, one rule each.

Default instrument: tick 1, lot 1, band [90, 110] around reference 100.
"""

from __future__ import annotations

from typing import Any

import pytest

from exchange.engine import MatchingEngine
from exchange.ids import Timestamp
from exchange.orders import OrderType, SelfTradePrevention, TimeInForce
from exchange.units import Quantity

from .helpers import BUY, SELL, SYM, A, B, C, briefs, depth, limit, new_engine, resting

NEWEST = SelfTradePrevention.CANCEL_NEWEST
OLDEST = SelfTradePrevention.CANCEL_OLDEST
BOTH = SelfTradePrevention.CANCEL_BOTH
DECREMENT = SelfTradePrevention.DECREMENT
GTD, IOC, FOK = TimeInForce.GTD, TimeInForce.IOC, TimeInForce.FOK


def market(engine: MatchingEngine, oid: int, acct: Any, side: Any, qty: int,
           tif: TimeInForce = IOC, **kw: Any) -> Any:  # fmt: skip
    return engine.place(oid, acct, SYM, side, None, Quantity(qty), OrderType.MARKET, tif, **kw)


def asks_100_101() -> MatchingEngine:
    engine = new_engine()
    limit(engine, 1, B, SELL, 100, 3)
    limit(engine, 2, C, SELL, 101, 3)
    return engine


# ------------------------------------------------------------------ limit orders
def test_limit_that_does_not_cross_rests() -> None:
    engine = asks_100_101()
    assert briefs(limit(engine, 3, A, BUY, 99, 2)) == [
        ("accepted", 3, BUY, 99, 2),
        ("book", "buy", 99, 2),
    ]
    assert resting(engine, BUY) == [(3, A, 99, 2)]


def test_trade_price_is_the_resting_orders_price() -> None:
    engine = asks_100_101()
    assert briefs(limit(engine, 3, A, BUY, 108, 2))[1] == ("trade", 100, 2, 3, 1, 1)


def test_trade_ids_count_across_instruments() -> None:
    from .helpers import SYM2, open_market

    engine = asks_100_101()
    open_market(engine, SYM2)
    limit(engine, 3, A, BUY, 100, 1)
    limit(engine, 4, A, SELL, 100, 1, symbol=SYM2)
    last = limit(engine, 5, B, BUY, 100, 1, symbol=SYM2).events[1]
    assert last.trade_id == 2 and engine.last_trade_id == 2
    assert last.seq == 7  # listed, reference, open, order 4 accepted + book, order 5 + trade


# ------------------------------------------------------------------ market orders
def test_market_buy_stops_at_protection_price() -> None:
    engine = new_engine()
    limit(engine, 1, B, SELL, 109, 2)
    limit(engine, 2, B, SELL, 110, 2)
    engine.set_reference_price(SYM, 95)  # band [86, 104]
    limit(engine, 3, C, SELL, 104, 1)
    outcome = market(engine, 4, A, BUY, 5)
    assert briefs(outcome) == [
        ("accepted", 4, BUY, 104, 5),
        ("trade", 104, 1, 4, 3, 0),
        ("book", "sell", 104, 0),
        ("expired", 4, 4, "market"),
    ]
    assert depth(engine, SELL) == [(109, 2), (110, 2)]


def test_market_order_into_an_empty_book_expires_whole() -> None:
    engine = new_engine()
    assert briefs(market(engine, 1, A, SELL, 5)) == [
        ("accepted", 1, SELL, 90, 5),
        ("expired", 1, 5, "market"),
    ]


def test_market_fok_that_cannot_complete_expires_as_fok() -> None:
    engine = asks_100_101()
    assert briefs(market(engine, 3, A, BUY, 7, FOK)) == [
        ("accepted", 3, BUY, 110, 7),
        ("expired", 3, 7, "fok"),
    ]
    assert briefs(market(engine, 4, A, BUY, 6, FOK))[-1] == ("book", "sell", 101, 0)


# ------------------------------------------------------------------ IOC / FOK
def test_ioc_that_cannot_trade_is_accepted_and_expires() -> None:
    engine = asks_100_101()
    assert briefs(limit(engine, 3, A, BUY, 99, 2, time_in_force=IOC)) == [
        ("accepted", 3, BUY, 99, 2),
        ("expired", 3, 2, "ioc"),
    ]
    assert depth(engine, BUY) == []


def test_ioc_fully_filled_has_no_expiry() -> None:
    engine = asks_100_101()
    assert [b[0] for b in briefs(limit(engine, 3, A, BUY, 100, 3, time_in_force=IOC))] == [
        "accepted", "trade", "book",
    ]  # fmt: skip


def test_fok_that_cannot_fill_changes_nothing_and_expires() -> None:
    engine = asks_100_101()
    before = (resting(engine, SELL), engine.last_trade_id)
    assert briefs(limit(engine, 3, A, BUY, 101, 7, time_in_force=FOK)) == [
        ("accepted", 3, BUY, 101, 7),
        ("expired", 3, 7, "fok"),
    ]
    assert (resting(engine, SELL), engine.last_trade_id) == before


def test_fok_exactly_fillable_completes() -> None:
    engine = asks_100_101()
    outcome = limit(engine, 3, A, BUY, 101, 6, time_in_force=FOK)
    assert [b[0] for b in briefs(outcome)] == ["accepted", "trade", "book", "trade", "book"]
    assert depth(engine, SELL) == []


@pytest.mark.parametrize(
    ("stp", "fills"),
    [(NEWEST, False), (BOTH, False), (OLDEST, True), (DECREMENT, True)],
)
def test_fok_own_resting_order(stp: SelfTradePrevention, fills: bool) -> None:
    """Asks: A 100 x 2, B 100 x 3. A buys FOK 3: an own order stops the check under
    cancel-newest and cancel-both, is skipped under cancel-oldest (B's 3 suffice), and
    counts under decrement (2 decremented + 1 traded)."""
    engine = new_engine()
    limit(engine, 1, A, SELL, 100, 2)
    limit(engine, 2, B, SELL, 100, 3)
    outcome = limit(engine, 3, A, BUY, 100, 3, time_in_force=FOK, stp=stp)
    if not fills:
        assert briefs(outcome) == [("accepted", 3, BUY, 100, 3), ("expired", 3, 3, "fok")]
        assert resting(engine, SELL) == [(1, A, 100, 2), (2, B, 100, 3)]
    elif stp is OLDEST:
        assert briefs(outcome)[1:] == [
            ("cancelled", 1, 2, "self_trade"),
            ("trade", 100, 3, 3, 2, 0),
            ("book", "sell", 100, 0),
        ]
    else:
        assert briefs(outcome)[1:] == [
            ("stp", 3, 1, "decrement", 2),
            ("trade", 100, 1, 3, 2, 2),
            ("book", "sell", 100, 2),
        ]


def test_fok_does_not_count_beyond_its_limit() -> None:
    engine = asks_100_101()
    assert briefs(limit(engine, 3, A, BUY, 100, 4, time_in_force=FOK))[-1] == (
        "expired", 3, 4, "fok",
    )  # fmt: skip


# ------------------------------------------------------------------ post-only
def test_post_only_crossing_is_rejected() -> None:
    engine = asks_100_101()
    assert limit(engine, 3, A, BUY, 100, 1, post_only=True).result.code == (
        "post_only_would_cross"
    )
    assert limit(engine, 4, B, BUY, 100, 1, post_only=True).result.code == (
        "post_only_would_cross"  # B's own ask at 100 counts too
    )


def test_post_only_that_does_not_cross_rests_gtc_or_gtd() -> None:
    engine = asks_100_101()
    assert briefs(limit(engine, 3, A, BUY, 99, 1, post_only=True)) == [
        ("accepted", 3, BUY, 99, 1),
        ("book", "buy", 99, 1),
    ]
    assert limit(engine, 4, A, BUY, 99, 1, post_only=True, time_in_force=GTD,
                 expire_time=Timestamp(10)).ok  # fmt: skip


# ------------------------------------------------------------------ self-trade prevention
def test_stp_applies_only_to_the_same_account() -> None:
    engine = new_engine()
    limit(engine, 1, B, SELL, 100, 2)
    assert briefs(limit(engine, 2, A, BUY, 100, 2, stp=NEWEST))[1][0] == "trade"


def test_stp_cancel_newest_with_own_order_first_leaves_the_book_alone() -> None:
    engine = new_engine()
    limit(engine, 1, A, SELL, 100, 2)
    limit(engine, 2, B, SELL, 100, 2)
    assert briefs(limit(engine, 3, A, BUY, 100, 4)) == [
        ("accepted", 3, BUY, 100, 4),
        ("cancelled", 3, 4, "self_trade"),
    ]
    assert resting(engine, SELL) == [(1, A, 100, 2), (2, B, 100, 2)]


def test_stp_mode_is_the_incoming_orders() -> None:
    engine = new_engine()
    limit(engine, 1, A, SELL, 100, 2, stp=OLDEST)  # the resting order's mode is not used
    assert briefs(limit(engine, 2, A, BUY, 100, 2, stp=NEWEST))[1] == (
        "cancelled", 2, 2, "self_trade",
    )  # fmt: skip
    assert resting(engine, SELL) == [(1, A, 100, 2)]


def test_stp_decrement_of_equal_sizes_finishes_both() -> None:
    engine = new_engine()
    limit(engine, 1, A, SELL, 100, 2)
    assert briefs(limit(engine, 2, A, BUY, 100, 2, stp=DECREMENT)) == [
        ("accepted", 2, BUY, 100, 2),
        ("stp", 2, 1, "decrement", 2),
        ("book", "sell", 100, 0),
    ]
    assert engine.open_order_ids(A) == []


def test_stp_cancel_oldest_goes_on_to_the_next_level() -> None:
    engine = new_engine()
    limit(engine, 1, A, SELL, 100, 2)
    limit(engine, 2, B, SELL, 101, 2)
    assert briefs(limit(engine, 3, A, BUY, 101, 2, stp=OLDEST))[1:] == [
        ("cancelled", 1, 2, "self_trade"),
        ("book", "sell", 100, 0),
        ("trade", 101, 2, 3, 2, 0),
        ("book", "sell", 101, 0),
    ]


# ------------------------------------------------------------------ amend
def two_asks() -> MatchingEngine:
    engine = new_engine()
    limit(engine, 1, B, SELL, 100, 5)
    limit(engine, 2, C, SELL, 100, 5)
    return engine


def test_amend_lower_quantity_keeps_priority() -> None:
    engine = two_asks()
    assert briefs(engine.amend(B, 1, None, 2)) == [
        ("amended", 1, 100, 2, 2, True),
        ("book", "sell", 100, 7),
    ]
    assert resting(engine, SELL) == [(1, B, 100, 2), (2, C, 100, 5)]


def test_amend_new_price_requeues() -> None:
    engine = two_asks()
    limit(engine, 3, A, SELL, 101, 1)
    assert briefs(engine.amend(C, 2, 101, None)) == [
        ("amended", 2, 101, 5, 5, False),
        ("book", "sell", 100, 5),
        ("book", "sell", 101, 6),
    ]
    assert resting(engine, SELL) == [(1, B, 100, 5), (3, A, 101, 1), (2, C, 101, 5)]


def test_amend_back_to_the_old_price_still_goes_to_the_back() -> None:
    engine = two_asks()
    engine.amend(B, 1, 101, None)
    engine.amend(B, 1, 100, None)
    assert resting(engine, SELL) == [(2, C, 100, 5), (1, B, 100, 5)]


def test_amend_higher_quantity_requeues() -> None:
    engine = two_asks()
    assert briefs(engine.amend(B, 1, None, 6))[0] == ("amended", 1, 100, 6, 6, False)
    assert resting(engine, SELL) == [(2, C, 100, 5), (1, B, 100, 6)]


def test_amend_after_partial_fill_counts_the_filled_part() -> None:
    engine = two_asks()
    limit(engine, 3, A, BUY, 100, 3)  # order 1: 3 filled, 2 left
    assert engine.amend(B, 1, None, 3).result.code == "amend_below_filled"
    assert briefs(engine.amend(B, 1, None, 4)) == [
        ("amended", 1, 100, 4, 1, True),
        ("book", "sell", 100, 6),
    ]
    assert resting(engine, SELL) == [(1, B, 100, 1), (2, C, 100, 5)]


def test_amend_to_a_crossing_price_trades_with_its_own_stp_mode() -> None:
    engine = new_engine()
    limit(engine, 1, A, BUY, 99, 2)
    limit(engine, 2, C, BUY, 99, 2)
    limit(engine, 3, A, SELL, 101, 5, stp=OLDEST)
    assert briefs(engine.amend(A, 3, 99, None)) == [
        ("amended", 3, 99, 5, 5, False),
        ("book", "sell", 101, 0),
        ("cancelled", 1, 2, "self_trade"),
        ("trade", 99, 2, 3, 2, 0),
        ("book", "buy", 99, 0),
        ("book", "sell", 99, 3),
    ]
    assert resting(engine, SELL) == [(3, A, 99, 3)]
    engine.validate()


def test_amend_post_only_to_a_crossing_price_is_rejected_but_may_move_elsewhere() -> None:
    engine = new_engine()
    limit(engine, 1, B, BUY, 99, 1)
    limit(engine, 2, A, SELL, 102, 1, post_only=True)
    assert engine.amend(A, 2, 99, None).result.code == "post_only_would_cross"
    assert engine.amend(A, 2, 100, None).ok
    assert resting(engine, SELL) == [(2, A, 100, 1)]


# ------------------------------------------------------------------ GTD and the clock
def test_gtd_expires_when_the_clock_reaches_its_time() -> None:
    engine = new_engine()
    limit(engine, 1, A, SELL, 101, 2, time_in_force=GTD, expire_time=Timestamp(50))
    assert engine.advance_time(Timestamp(49)).events == []
    assert briefs(engine.advance_time(Timestamp(50))) == [
        ("expired", 1, 2, "gtd"),
        ("book", "sell", 101, 0),
    ]
    assert engine.advance_time(Timestamp(60)).events == []


def test_gtd_partially_filled_expires_what_is_left_and_a_cancelled_one_never() -> None:
    engine = new_engine()
    limit(engine, 1, A, SELL, 101, 5, time_in_force=GTD, expire_time=Timestamp(50))
    limit(engine, 2, A, SELL, 102, 5, time_in_force=GTD, expire_time=Timestamp(50))
    limit(engine, 3, B, BUY, 101, 2)
    engine.cancel(A, 2)
    assert briefs(engine.advance_time(Timestamp(100))) == [
        ("expired", 1, 3, "gtd"),
        ("book", "sell", 101, 0),
    ]


def test_gtd_amended_keeps_its_expiry() -> None:
    engine = new_engine()
    limit(engine, 1, A, SELL, 101, 5, time_in_force=GTD, expire_time=Timestamp(50))
    engine.amend(A, 1, 102, 6)
    order = engine.resting_order(1)
    assert order is not None and order.expire_time == 50
    assert briefs(engine.advance_time(Timestamp(50))) == [
        ("expired", 1, 6, "gtd"),
        ("book", "sell", 102, 0),
    ]


def test_gtd_expires_while_halted() -> None:
    from exchange.lifecycle import InstrumentEvent

    engine = new_engine()
    limit(engine, 1, A, SELL, 101, 5, time_in_force=GTD, expire_time=Timestamp(50))
    engine.transition(SYM, InstrumentEvent.HALT)
    assert briefs(engine.advance_time(Timestamp(50)))[0] == ("expired", 1, 5, "gtd")


def test_advance_time_to_now_is_accepted_and_backwards_is_not() -> None:
    engine = new_engine()
    assert engine.advance_time(Timestamp(10)).ok
    assert engine.advance_time(Timestamp(10)).ok
    assert engine.advance_time(Timestamp(9)).result.code == "clock_went_backwards"
    assert engine.now == 10


def test_events_carry_the_engine_time() -> None:
    engine = new_engine()
    engine.advance_time(Timestamp(1234))
    assert limit(engine, 1, A, SELL, 101, 5).events[0].ts == 1234


# ------------------------------------------------------------------ cancel / cancel_all
def test_cancel_all_only_touches_the_account_and_symbol() -> None:
    from .helpers import SYM2, open_market

    engine = new_engine()
    open_market(engine, SYM2)
    limit(engine, 1, A, SELL, 101, 1)
    limit(engine, 2, A, SELL, 101, 1, symbol=SYM2)
    limit(engine, 3, B, SELL, 101, 1)
    assert briefs(engine.cancel_all(A, SYM2)) == [
        ("cancelled", 2, 1, "cancel_all"),
        ("book", "sell", 101, 0),
    ]
    assert engine.open_order_ids(A) == [1]
    assert engine.cancel_all(C).events == []  # nothing to cancel is fine


def test_order_id_of_a_finished_order_may_be_used_again() -> None:
    """docs/matching.md: duplicate_order_id means an order with that id is resting."""
    engine = new_engine()
    limit(engine, 1, A, SELL, 101, 1)
    assert limit(engine, 1, B, SELL, 102, 1).result.code == "duplicate_order_id"
    limit(engine, 2, B, BUY, 101, 1)  # fills order 1
    assert limit(engine, 1, B, SELL, 102, 1).ok
