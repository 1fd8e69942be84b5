"""Saved failing examples: each was found by the model test or by review of the rules.

They fail on the engine as it is at the time of writing (see the suite's report) and are
kept failing on purpose: they are the reproduction of a genuine bug, not an expectation
to relax.
"""

from __future__ import annotations

from exchange.orders import SelfTradePrevention

from .helpers import BUY, SELL, SYM, A, B, briefs, limit, new_engine, open_market, resting
from .reference_engine import ReferenceEngine

DECREMENT = SelfTradePrevention.DECREMENT


def test_amend_down_after_a_decrement_keeps_the_order_consistent() -> None:
    """Found by the model test (shrunk).

    A buys 1 at 95; A sells 3 at 95 with decrement: both shrink by 1, the buy is gone and
    the sell rests with 2 (its total quantity, filled plus remaining, is now 2). Amending
    the sell to a total of 1 lowers it at the same price: it keeps priority and 1 rests.
    The engine still counts the decremented 1 in the order's quantity (3), "reduces" by
    3 - 1 = 2 and leaves an order resting with 0 remaining on a level of total 0, while
    its OrderAmended event says remaining=1.
    """
    engine = new_engine()
    limit(engine, 1, A, BUY, 95, 1)
    placed = limit(engine, 2, A, SELL, 95, 3, stp=DECREMENT)
    assert briefs(placed)[1:] == [("stp", 2, 1, "decrement", 1), ("book", "buy", 95, 0),
                                  ("book", "sell", 95, 2)]  # fmt: skip
    amended = engine.amend(A, 2, None, 1)
    assert amended.ok
    assert briefs(amended) == [("amended", 2, 95, 1, 1, True), ("book", "sell", 95, 1)]
    assert resting(engine, SELL) == [(2, A, 95, 1)]
    engine.validate()


def test_amend_price_only_after_a_decrement_does_not_restore_lost_quantity() -> None:
    """A rests a sell of 10 at 100; A's own buy of 4 with decrement shrinks it to 6.

    Moving it to 101 (quantity unchanged) must keep 6. The engine re-creates the order
    with remaining = 10 - filled = 10: the 4 units the decrement took come back.
    """
    engine = new_engine()
    limit(engine, 1, A, SELL, 100, 10)
    limit(engine, 2, A, BUY, 100, 4, stp=DECREMENT)
    assert resting(engine, SELL) == [(1, A, 100, 6)]
    amended = engine.amend(A, 1, 101, None)
    assert briefs(amended) == [
        ("amended", 1, 101, 6, 6, False),
        ("book", "sell", 100, 0),
        ("book", "sell", 101, 6),
    ]
    assert resting(engine, SELL) == [(1, A, 101, 6)]


def test_amend_up_after_a_decrement_requeues() -> None:
    """After a decrement to 6 of an order of 10, a new total of 8 is an increase (6 -> 8):
    the order re-queues behind later orders. The engine compares 8 with the stale 10,
    keeps the order's priority and leaves remaining 4 while the event says 8."""
    engine = new_engine()
    limit(engine, 1, A, SELL, 100, 10)
    limit(engine, 2, A, BUY, 100, 4, stp=DECREMENT)
    limit(engine, 3, B, SELL, 100, 1)
    amended = engine.amend(A, 1, None, 8)
    assert briefs(amended) == [
        ("amended", 1, 100, 8, 8, False),
        ("book", "sell", 100, 1),
        ("book", "sell", 100, 9),
    ]
    assert resting(engine, SELL) == [(3, B, 100, 1), (1, A, 100, 8)]


def test_reference_engine_agrees_with_the_documented_amend_after_decrement() -> None:
    """The reference implements the documented behaviour of the two cases above."""
    ref = ReferenceEngine()


    open_market(ref)
    limit(ref, 1, A, SELL, 100, 10)
    limit(ref, 2, A, BUY, 100, 4, stp=DECREMENT)
    limit(ref, 3, B, SELL, 100, 1)
    assert briefs(ref.amend(A, 1, None, 5)) == [
        ("amended", 1, 100, 5, 5, True),
        ("book", "sell", 100, 6),
    ]
    assert ref.resting(SYM, SELL) == [(1, A, 100, 5), (3, B, 100, 1)]


def test_a_resting_gtc_limit_order_keeps_its_stp_mode_for_an_amendment() -> None:
    """Found by test_orders (amend to a crossing price).

    A plain GTC limit order placed with stp=cancel_oldest rests through the engine's
    fast path, which stores the default terms: the order's mode becomes cancel_newest.
    When an amendment re-enters it "as if new ... with its own self-trade mode", it meets
    A's own bid and cancels itself instead of cancelling the resting own order and
    trading on with C's bid.
    """
    engine = new_engine()
    limit(engine, 1, A, BUY, 99, 2)
    limit(engine, 2, B, BUY, 99, 2)
    limit(engine, 3, A, SELL, 101, 5, stp=SelfTradePrevention.CANCEL_OLDEST)
    order = engine.resting_order(3)
    assert order is not None and order.stp is SelfTradePrevention.CANCEL_OLDEST
    assert briefs(engine.amend(A, 3, 99, None))[2:4] == [
        ("cancelled", 1, 2, "self_trade"),
        ("trade", 99, 2, 3, 2, 0),
    ]
