"""Scenarios written as data: command -> expected events -> expected book.

Each scenario starts from one open instrument (tier: tick 1, lot 1, band 10 %, reference
price 100, so the band is [90, 110]) and is a list of steps. A step is the command, its
expected result code, its expected events (projected by ``helpers.brief``: no symbol,
sequence number or timestamp) and the expected bids and asks depth afterwards.

The expected values were worked out by hand from docs/matching.md. Every scenario runs
against the real engine and against the naive reference engine; for the real engine the
sequence numbers of the events must also continue 1, 2, 3, ... without gaps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from exchange.engine import MatchingEngine
from exchange.ids import AccountId, OrderId, Timestamp
from exchange.lifecycle import InstrumentEvent
from exchange.orders import OrderType, ResultCode, SelfTradePrevention, Side, TimeInForce
from exchange.units import Price, Quantity
from tests.exchange.commands import (
    AdvanceTime,
    AmendOrder,
    CancelAll,
    CancelOrder,
    Command,
    PlaceOrder,
    SetReferencePrice,
    Transition,
)

from .helpers import SYM, apply, brief, depth, open_market, resting
from .reference_engine import ReferenceEngine

A, B, C, D = AccountId(1), AccountId(2), AccountId(3), AccountId(4)
BUY, SELL = Side.BUY, Side.SELL
OK = ResultCode.OK
NEWEST = SelfTradePrevention.CANCEL_NEWEST
OLDEST = SelfTradePrevention.CANCEL_OLDEST
BOTH = SelfTradePrevention.CANCEL_BOTH
DECREMENT = SelfTradePrevention.DECREMENT


def buy(oid: int, acct: AccountId, price: int | None, qty: int, **kw: Any) -> PlaceOrder:
    return PlaceOrder(
        OrderId(oid), acct, SYM, BUY, Quantity(qty), None if price is None else Price(price), **kw
    )


def sell(oid: int, acct: AccountId, price: int | None, qty: int, **kw: Any) -> PlaceOrder:
    return PlaceOrder(
        OrderId(oid), acct, SYM, SELL, Quantity(qty), None if price is None else Price(price), **kw
    )


def acc(oid: int, side: Side, price: int, qty: int) -> tuple[Any, ...]:
    return ("accepted", oid, side, price, qty)


def trade(price: int, qty: int, taker: int, maker: int, maker_left: int) -> tuple[Any, ...]:
    return ("trade", price, qty, taker, maker, maker_left)


def bk(side: Side, price: int, qty: int) -> tuple[Any, ...]:
    return ("book", side.value, price, qty)


def cxl(oid: int, qty: int, reason: str) -> tuple[Any, ...]:
    return ("cancelled", oid, qty, reason)


def exp(oid: int, qty: int, reason: str) -> tuple[Any, ...]:
    return ("expired", oid, qty, reason)


Depth = list[tuple[int, int]]


@dataclass(frozen=True)
class Step:
    command: Command
    events: list[tuple[Any, ...]]
    bids: Depth
    asks: Depth
    result: ResultCode = OK


def rest_sell(oid: int, acct: AccountId, price: int, qty: int, level_total: int, asks: Depth,
              bids: Depth | None = None) -> Step:  # fmt: skip
    """A sell that meets nothing and rests; ``level_total`` is its level's new total."""
    return Step(
        sell(oid, acct, price, qty),
        [acc(oid, SELL, price, qty), bk(SELL, price, level_total)],
        bids or [],
        asks,
    )


def rest_buy(oid: int, acct: AccountId, price: int, qty: int, level_total: int, bids: Depth,
             asks: Depth | None = None) -> Step:  # fmt: skip
    return Step(
        buy(oid, acct, price, qty),
        [acc(oid, BUY, price, qty), bk(BUY, price, level_total)],
        bids,
        asks or [],
    )


# Three asks used by the self-trade scenarios: B 99 x 2, then A 100 x 5, then B 100 x 5.
STP_BOOK = [
    rest_sell(1, B, 99, 2, 2, [(99, 2)]),
    rest_sell(2, A, 100, 5, 5, [(99, 2), (100, 5)]),
    rest_sell(3, B, 100, 5, 10, [(99, 2), (100, 10)]),
]

SCENARIOS: dict[str, list[Step]] = {
    "simple_cross": [
        rest_sell(1, A, 100, 5, 5, [(100, 5)]),
        Step(
            buy(2, B, 100, 3),
            [acc(2, BUY, 100, 3), trade(100, 3, 2, 1, 2), bk(SELL, 100, 2)],
            [],
            [(100, 2)],
        ),
    ],
    "doc_example_two_levels_nothing_rests": [
        rest_sell(1, A, 100, 5, 5, [(100, 5)]),
        rest_sell(2, A, 101, 5, 5, [(100, 5), (101, 5)]),
        Step(
            buy(3, B, 101, 8),
            [
                acc(3, BUY, 101, 8),
                trade(100, 5, 3, 1, 0),
                bk(SELL, 100, 0),
                trade(101, 3, 3, 2, 2),
                bk(SELL, 101, 2),
            ],
            [],
            [(101, 2)],
        ),
    ],
    "sweep_several_levels_partial_rests": [
        rest_sell(1, A, 100, 5, 5, [(100, 5)]),
        rest_sell(2, C, 101, 5, 5, [(100, 5), (101, 5)]),
        rest_sell(3, A, 102, 5, 5, [(100, 5), (101, 5), (102, 5)]),
        Step(
            buy(4, B, 101, 12),
            [
                acc(4, BUY, 101, 12),
                trade(100, 5, 4, 1, 0),
                bk(SELL, 100, 0),
                trade(101, 5, 4, 2, 0),
                bk(SELL, 101, 0),
                bk(BUY, 101, 2),
            ],
            [(101, 2)],
            [(102, 5)],
        ),
    ],
    "sell_sweeps_bids_best_first": [
        rest_buy(1, A, 98, 2, 2, [(98, 2)]),
        rest_buy(2, C, 99, 2, 2, [(99, 2), (98, 2)]),
        Step(
            sell(3, B, 98, 3),
            [
                acc(3, SELL, 98, 3),
                trade(99, 2, 3, 2, 0),
                bk(BUY, 99, 0),
                trade(98, 1, 3, 1, 1),
                bk(BUY, 98, 1),
            ],
            [(98, 1)],
            [],
        ),
    ],
    "price_time_priority_within_a_level": [
        rest_sell(1, A, 100, 3, 3, [(100, 3)]),
        rest_sell(2, B, 100, 3, 6, [(100, 6)]),
        rest_sell(3, C, 100, 3, 9, [(100, 9)]),
        rest_sell(4, B, 99, 2, 2, [(99, 2), (100, 9)]),
        Step(
            buy(5, D, 100, 7),
            [
                acc(5, BUY, 100, 7),
                trade(99, 2, 5, 4, 0),
                bk(SELL, 99, 0),
                trade(100, 3, 5, 1, 0),
                trade(100, 2, 5, 2, 1),
                bk(SELL, 100, 4),
            ],
            [],
            [(100, 4)],
        ),
    ],
    "stp_cancel_newest": [
        *STP_BOOK,
        Step(
            buy(4, A, 100, 8, stp=NEWEST),
            [
                acc(4, BUY, 100, 8),
                trade(99, 2, 4, 1, 0),
                bk(SELL, 99, 0),
                cxl(4, 6, "self_trade"),
            ],
            [],
            [(100, 10)],
        ),
    ],
    "stp_cancel_oldest": [
        *STP_BOOK,
        Step(
            buy(4, A, 100, 8, stp=OLDEST),
            [
                acc(4, BUY, 100, 8),
                trade(99, 2, 4, 1, 0),
                bk(SELL, 99, 0),
                cxl(2, 5, "self_trade"),
                trade(100, 5, 4, 3, 0),
                bk(SELL, 100, 0),
                bk(BUY, 100, 1),
            ],
            [(100, 1)],
            [],
        ),
    ],
    "stp_cancel_both": [
        *STP_BOOK,
        Step(
            buy(4, A, 100, 8, stp=BOTH),
            [
                acc(4, BUY, 100, 8),
                trade(99, 2, 4, 1, 0),
                bk(SELL, 99, 0),
                cxl(2, 5, "self_trade"),
                bk(SELL, 100, 5),
                cxl(4, 6, "self_trade"),
            ],
            [],
            [(100, 5)],
        ),
    ],
    "stp_decrement": [
        *STP_BOOK,
        Step(
            buy(4, A, 100, 8, stp=DECREMENT),
            [
                acc(4, BUY, 100, 8),
                trade(99, 2, 4, 1, 0),
                bk(SELL, 99, 0),
                ("stp", 4, 2, "decrement", 5),
                trade(100, 1, 4, 3, 4),
                bk(SELL, 100, 4),
            ],
            [],
            [(100, 4)],
        ),
    ],
    "stp_decrement_leaves_the_larger_resting_order": [
        rest_sell(1, A, 100, 5, 5, [(100, 5)]),
        Step(
            buy(2, A, 100, 3, stp=DECREMENT),
            [acc(2, BUY, 100, 3), ("stp", 2, 1, "decrement", 3), bk(SELL, 100, 2)],
            [],
            [(100, 2)],
        ),
    ],
    "fok_success": [
        rest_sell(1, B, 100, 3, 3, [(100, 3)]),
        rest_sell(2, C, 101, 3, 3, [(100, 3), (101, 3)]),
        Step(
            buy(3, A, 101, 5, time_in_force=TimeInForce.FOK),
            [
                acc(3, BUY, 101, 5),
                trade(100, 3, 3, 1, 0),
                bk(SELL, 100, 0),
                trade(101, 2, 3, 2, 1),
                bk(SELL, 101, 1),
            ],
            [],
            [(101, 1)],
        ),
    ],
    "fok_failure_changes_nothing": [
        rest_sell(1, B, 100, 3, 3, [(100, 3)]),
        rest_sell(2, C, 101, 3, 3, [(100, 3), (101, 3)]),
        Step(
            buy(3, A, 101, 7, time_in_force=TimeInForce.FOK),
            [acc(3, BUY, 101, 7), exp(3, 7, "fok")],
            [],
            [(100, 3), (101, 3)],
        ),
        Step(
            buy(4, A, 100, 4, time_in_force=TimeInForce.FOK),
            [acc(4, BUY, 100, 4), exp(4, 4, "fok")],
            [],
            [(100, 3), (101, 3)],
        ),
    ],
    "ioc_partial": [
        rest_sell(1, B, 100, 3, 3, [(100, 3)]),
        rest_sell(2, B, 102, 3, 3, [(100, 3), (102, 3)]),
        Step(
            buy(3, A, 101, 5, time_in_force=TimeInForce.IOC),
            [acc(3, BUY, 101, 5), trade(100, 3, 3, 1, 0), bk(SELL, 100, 0), exp(3, 2, "ioc")],
            [],
            [(102, 3)],
        ),
        Step(
            buy(4, A, 101, 5, time_in_force=TimeInForce.IOC),
            [acc(4, BUY, 101, 5), exp(4, 5, "ioc")],
            [],
            [(102, 3)],
        ),
    ],
    "market_buy_stops_at_protection_price": [
        rest_sell(1, B, 100, 2, 2, [(100, 2)]),
        rest_sell(2, B, 105, 2, 2, [(100, 2), (105, 2)]),
        # Reference 95 with a 10 % band: [85.5, 104.5] rounded inwards -> [86, 104].
        Step(
            SetReferencePrice(SYM, Price(95)),
            [("reference", 95, 86, 104)],
            [],
            [(100, 2), (105, 2)],
        ),
        Step(
            buy(3, A, None, 5, order_type=OrderType.MARKET, time_in_force=TimeInForce.IOC),
            [acc(3, BUY, 104, 5), trade(100, 2, 3, 1, 0), bk(SELL, 100, 0), exp(3, 3, "market")],
            [],
            [(105, 2)],
        ),
    ],
    "market_sell_beyond_liquidity_expires": [
        rest_buy(1, B, 100, 2, 2, [(100, 2)]),
        Step(
            sell(2, A, None, 3, order_type=OrderType.MARKET, time_in_force=TimeInForce.IOC),
            [acc(2, SELL, 90, 3), trade(100, 2, 2, 1, 0), bk(BUY, 100, 0), exp(2, 1, "market")],
            [],
            [],
        ),
    ],
    "amend_lower_quantity_keeps_priority": [
        rest_sell(1, B, 100, 5, 5, [(100, 5)]),
        rest_sell(2, C, 100, 5, 10, [(100, 10)]),
        Step(
            AmendOrder(B, OrderId(1), None, Quantity(3)),
            [("amended", 1, 100, 3, 3, True), bk(SELL, 100, 8)],
            [],
            [(100, 8)],
        ),
        Step(
            buy(3, A, 100, 4),
            [acc(3, BUY, 100, 4), trade(100, 3, 3, 1, 0), trade(100, 1, 3, 2, 4), bk(SELL, 100, 4)],
            [],
            [(100, 4)],
        ),
    ],
    "amend_higher_quantity_loses_priority": [
        rest_sell(1, B, 100, 5, 5, [(100, 5)]),
        rest_sell(2, C, 100, 5, 10, [(100, 10)]),
        Step(
            AmendOrder(B, OrderId(1), None, Quantity(6)),
            [("amended", 1, 100, 6, 6, False), bk(SELL, 100, 5), bk(SELL, 100, 11)],
            [],
            [(100, 11)],
        ),
        Step(
            buy(3, A, 100, 6),
            [acc(3, BUY, 100, 6), trade(100, 5, 3, 2, 0), trade(100, 1, 3, 1, 5), bk(SELL, 100, 5)],
            [],
            [(100, 5)],
        ),
    ],
    "amend_new_price_requeues_and_trades": [
        rest_sell(1, B, 100, 5, 5, [(100, 5)]),
        rest_buy(2, A, 98, 4, 4, [(98, 4)], [(100, 5)]),
        Step(
            AmendOrder(B, OrderId(1), Price(98), None),
            [
                ("amended", 1, 98, 5, 5, False),
                bk(SELL, 100, 0),
                trade(98, 4, 1, 2, 0),
                bk(BUY, 98, 0),
                bk(SELL, 98, 1),
            ],
            [],
            [(98, 1)],
        ),
    ],
    "gate_closure_cancels_bids_then_asks_best_first": [
        rest_buy(1, B, 99, 2, 2, [(99, 2)]),
        rest_buy(2, C, 98, 3, 3, [(99, 2), (98, 3)]),
        rest_buy(3, C, 99, 1, 3, [(99, 3), (98, 3)]),
        rest_sell(4, A, 102, 1, 1, [(102, 1)], [(99, 3), (98, 3)]),
        rest_sell(5, A, 101, 4, 4, [(101, 4), (102, 1)], [(99, 3), (98, 3)]),
        Step(
            Transition(SYM, InstrumentEvent.CLOSE),
            [
                cxl(1, 2, "gate_closure"),
                bk(BUY, 99, 1),
                cxl(3, 1, "gate_closure"),
                bk(BUY, 99, 0),
                cxl(2, 3, "gate_closure"),
                bk(BUY, 98, 0),
                cxl(5, 4, "gate_closure"),
                bk(SELL, 101, 0),
                cxl(4, 1, "gate_closure"),
                bk(SELL, 102, 0),
                ("state", "open", "closed"),
            ],
            [],
            [],
        ),
        Step(buy(6, A, 100, 1), [], [], [], ResultCode.INSTRUMENT_NOT_OPEN),
        Step(Transition(SYM, InstrumentEvent.RESUME), [], [], [], ResultCode.INVALID_TRANSITION),
    ],
    "halt_refuses_orders_but_takes_cancels": [
        rest_sell(1, B, 100, 5, 5, [(100, 5)]),
        Step(Transition(SYM, InstrumentEvent.HALT), [("state", "open", "halted")], [], [(100, 5)]),
        Step(buy(2, A, 100, 1), [], [], [(100, 5)], ResultCode.INSTRUMENT_NOT_OPEN),
        Step(
            AmendOrder(B, OrderId(1), None, Quantity(4)),
            [],
            [],
            [(100, 5)],
            ResultCode.INSTRUMENT_NOT_OPEN,
        ),
        Step(CancelOrder(B, OrderId(1)), [cxl(1, 5, "user"), bk(SELL, 100, 0)], [], []),
        Step(Transition(SYM, InstrumentEvent.RESUME), [("state", "halted", "open")], [], []),
        rest_buy(3, A, 100, 1, 1, [(100, 1)]),
    ],
    "gtd_expires_at_its_time_in_expire_time_then_id_order": [
        rest_sell(1, A, 103, 1, 1, [(103, 1)]),
        Step(
            sell(5, B, 101, 2, time_in_force=TimeInForce.GTD, expire_time=Timestamp(2_000)),
            [acc(5, SELL, 101, 2), bk(SELL, 101, 2)],
            [],
            [(101, 2), (103, 1)],
        ),
        Step(
            sell(4, B, 102, 3, time_in_force=TimeInForce.GTD, expire_time=Timestamp(2_000)),
            [acc(4, SELL, 102, 3), bk(SELL, 102, 3)],
            [],
            [(101, 2), (102, 3), (103, 1)],
        ),
        Step(
            sell(6, C, 102, 1, time_in_force=TimeInForce.GTD, expire_time=Timestamp(1_000)),
            [acc(6, SELL, 102, 1), bk(SELL, 102, 4)],
            [],
            [(101, 2), (102, 4), (103, 1)],
        ),
        Step(AdvanceTime(Timestamp(999)), [], [], [(101, 2), (102, 4), (103, 1)]),
        Step(
            AdvanceTime(Timestamp(5_000)),
            [
                exp(6, 1, "gtd"),
                bk(SELL, 102, 3),
                exp(4, 3, "gtd"),
                bk(SELL, 102, 0),
                exp(5, 2, "gtd"),
                bk(SELL, 101, 0),
            ],
            [],
            [(103, 1)],
        ),
        Step(AdvanceTime(Timestamp(4_999)), [], [], [(103, 1)], ResultCode.CLOCK_WENT_BACKWARDS),
    ],
    "cancel_all_in_placement_order_with_requeue": [
        rest_sell(1, A, 105, 1, 1, [(105, 1)]),
        rest_sell(2, A, 104, 1, 1, [(104, 1), (105, 1)]),
        rest_sell(3, B, 104, 1, 2, [(104, 2), (105, 1)]),
        Step(
            AmendOrder(A, OrderId(1), Price(106), None),
            [("amended", 1, 106, 1, 1, False), bk(SELL, 105, 0), bk(SELL, 106, 1)],
            [],
            [(104, 2), (106, 1)],
        ),
        Step(
            CancelAll(A),
            [cxl(2, 1, "cancel_all"), bk(SELL, 104, 1), cxl(1, 1, "cancel_all"), bk(SELL, 106, 0)],
            [],
            [(104, 1)],
        ),
    ],
}


def _new(impl: str) -> Any:
    engine: Any = MatchingEngine() if impl == "engine" else ReferenceEngine()
    open_market(engine)
    return engine


@pytest.mark.parametrize("impl", ["engine", "reference"])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario(name: str, impl: str) -> None:
    engine = _new(impl)
    last_seq = 3  # InstrumentListed 1, ReferencePriceSet 2, open 3
    for i, step in enumerate(SCENARIOS[name]):
        outcome = apply(engine, step.command)
        where = f"{name} step {i}: {step.command}"
        assert outcome.result == step.result, where
        assert [brief(e) for e in outcome.events] == step.events, where
        assert depth(engine, BUY) == step.bids, where
        assert depth(engine, SELL) == step.asks, where
        seqs = [e.seq for e in outcome.events]
        assert seqs == list(range(last_seq + 1, last_seq + 1 + len(seqs))), where
        last_seq += len(seqs)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_engine_and_reference_agree_exactly(name: str) -> None:
    """Full events (every field, including seq, ts and trade ids) are identical."""
    engine, reference = _new("engine"), _new("reference")
    for step in SCENARIOS[name]:
        got, want = apply(engine, step.command), apply(reference, step.command)
        assert got.result == want.result
        assert list(got.events) == list(want.events)
        for side in (BUY, SELL):
            assert resting(engine, side) == resting(reference, side)
    engine.validate()


def test_price_time_priority_leaves_later_orders_in_queue_order() -> None:
    engine = _new("engine")
    for step in SCENARIOS["price_time_priority_within_a_level"]:
        apply(engine, step.command)
    assert resting(engine, SELL) == [(2, B, 100, 1), (3, C, 100, 3)]
