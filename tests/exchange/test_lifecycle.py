"""The lifecycle transition table, on its own and through the engine."""

from __future__ import annotations

import itertools

import pytest

from exchange.engine import MatchingEngine
from exchange.events import InstrumentStateChanged
from exchange.invariants import InvariantViolation
from exchange.lifecycle import (
    CONTRACT_TRANSITIONS,
    ORDER_TRANSITIONS,
    TRANSITIONS,
    ContractEvent,
    InstrumentEvent,
    InstrumentState,
    OrderEvent,
    contract_state_after,
    next_state,
    order_status_after,
)
from exchange.orders import OrderStatus
from exchange.settlement import ContractState

from .helpers import BUY, SELL, SYM, A, B, briefs, limit, make_instrument, new_engine

S, E = InstrumentState, InstrumentEvent
#: Written out from docs/matching.md, independently of exchange.lifecycle.
EXPECTED = {
    (S.LISTED, E.OPEN): S.OPEN,
    (S.LISTED, E.CLOSE): S.CLOSED,
    (S.OPEN, E.HALT): S.HALTED,
    (S.HALTED, E.RESUME): S.OPEN,
    (S.OPEN, E.CLOSE): S.CLOSED,
    (S.HALTED, E.CLOSE): S.CLOSED,
    (S.CLOSED, E.START_DELIVERY): S.DELIVERING,
    (S.DELIVERING, E.SETTLE): S.SETTLED,
}
#: How to reach each state from a freshly listed instrument.
PATH = {
    S.LISTED: [],
    S.OPEN: [E.OPEN],
    S.HALTED: [E.OPEN, E.HALT],
    S.CLOSED: [E.OPEN, E.CLOSE],
    S.DELIVERING: [E.CLOSE, E.START_DELIVERY],
    S.SETTLED: [E.CLOSE, E.START_DELIVERY, E.SETTLE],
}
PAIRS = list(itertools.product(S, E))


def test_table_is_exactly_the_documented_one() -> None:
    assert TRANSITIONS == EXPECTED


@pytest.mark.parametrize(("state", "event"), PAIRS, ids=[f"{s}-{e}" for s, e in PAIRS])
def test_next_state(state: InstrumentState, event: InstrumentEvent) -> None:
    assert next_state(state, event) == EXPECTED.get((state, event))


@pytest.mark.parametrize(("state", "event"), PAIRS, ids=[f"{s}-{e}" for s, e in PAIRS])
def test_engine_transition(state: InstrumentState, event: InstrumentEvent) -> None:
    engine = MatchingEngine()
    assert engine.list_instrument(make_instrument(SYM)).ok
    for step in PATH[state]:
        assert engine.transition(SYM, step).ok
    market = engine.market(SYM)
    assert market is not None and market.state is state
    seq, digest = engine.book(SYM).seq, engine.state_hash()
    outcome = engine.transition(SYM, event)
    target = EXPECTED.get((state, event))
    if target is None:
        assert outcome.result.code == "invalid_transition"
        assert outcome.events == []
        assert engine.state_hash() == digest and engine.book(SYM).seq == seq
        assert market.state is state
    else:
        assert outcome.ok
        assert outcome.events == [InstrumentStateChanged(SYM, seq + 1, engine.now, state, target)]
        assert market.state is target
    engine.validate()


def test_halt_refuses_orders_and_resume_accepts_them_again() -> None:
    engine = new_engine()
    limit(engine, 1, B, SELL, 101, 4)
    assert engine.transition(SYM, E.HALT).ok
    assert limit(engine, 2, A, BUY, 101, 4).result.code == "instrument_not_open"
    assert engine.book(SYM).depth(SELL) == [(101, 4)]  # resting orders stay while halted
    assert engine.transition(SYM, E.RESUME).ok
    outcome = limit(engine, 2, A, BUY, 101, 4)
    assert briefs(outcome)[1:] == [("trade", 101, 4, 2, 1, 0), ("book", "sell", 101, 0)]


def test_cancel_and_cancel_all_are_accepted_while_halted() -> None:
    engine = new_engine()
    limit(engine, 1, B, SELL, 101, 4)
    limit(engine, 2, B, SELL, 102, 4)
    limit(engine, 3, B, BUY, 99, 4)
    assert engine.transition(SYM, E.HALT).ok
    assert briefs(engine.cancel(B, 2)) == [
        ("cancelled", 2, 4, "user"),
        ("book", "sell", 102, 0),
    ]
    assert briefs(engine.cancel_all(B)) == [
        ("cancelled", 1, 4, "cancel_all"),
        ("book", "sell", 101, 0),
        ("cancelled", 3, 4, "cancel_all"),
        ("book", "buy", 99, 0),
    ]
    engine.validate()


def test_close_at_gate_closure_cancels_resting_orders_and_refuses_new_ones() -> None:
    engine = new_engine()
    limit(engine, 1, B, SELL, 101, 4)
    limit(engine, 2, A, BUY, 99, 3)
    assert engine.transition(SYM, E.HALT).ok  # closing from halted works the same
    outcome = engine.transition(SYM, E.CLOSE)
    assert briefs(outcome) == [
        ("cancelled", 2, 3, "gate_closure"),
        ("book", "buy", 99, 0),
        ("cancelled", 1, 4, "gate_closure"),
        ("book", "sell", 101, 0),
        ("state", "halted", "closed"),
    ]
    assert engine.book(SYM).depth(BUY) == [] and engine.book(SYM).depth(SELL) == []
    assert engine.open_order_ids(A) == [] and engine.open_order_ids(B) == []
    assert limit(engine, 3, A, BUY, 99, 3).result.code == "instrument_not_open"
    assert engine.cancel(B, 1).result.code == "order_not_found"
    engine.validate()


# ---------------------------------------------------------------- orders and contracts
ST, OE = OrderStatus, OrderEvent
#: Written out from docs/matching.md (order statuses), independently of the module.
ORDER_EXPECTED = {
    (ST.OPEN, OE.PARTIAL_FILL): ST.PARTIALLY_FILLED,
    (ST.PARTIALLY_FILLED, OE.PARTIAL_FILL): ST.PARTIALLY_FILLED,
    (ST.OPEN, OE.FILL): ST.FILLED,
    (ST.PARTIALLY_FILLED, OE.FILL): ST.FILLED,
    (ST.OPEN, OE.CANCEL): ST.CANCELLED,
    (ST.PARTIALLY_FILLED, OE.CANCEL): ST.CANCELLED,
    (ST.OPEN, OE.EXPIRE): ST.EXPIRED,
    (ST.PARTIALLY_FILLED, OE.EXPIRE): ST.EXPIRED,
}
ORDER_PAIRS = list(itertools.product(ST, OE))


@pytest.mark.parametrize(("status", "event"), ORDER_PAIRS, ids=[f"{s}-{e}" for s, e in ORDER_PAIRS])
def test_order_status_after(status: OrderStatus, event: OrderEvent) -> None:
    assert ORDER_TRANSITIONS == ORDER_EXPECTED
    want = ORDER_EXPECTED.get((status, event))
    if want is None:
        with pytest.raises(InvariantViolation):
            order_status_after(status, event)
    else:
        assert order_status_after(status, event) is want


def test_finished_orders_have_no_way_out() -> None:
    finished = {ST.FILLED, ST.CANCELLED, ST.EXPIRED}
    assert {after for after in ORDER_TRANSITIONS.values()} - {ST.PARTIALLY_FILLED} == finished
    assert not [pair for pair in ORDER_TRANSITIONS if pair[0] in finished]


C, CE = ContractState, ContractEvent
CONTRACT_PAIRS = list(itertools.product(C, CE))


@pytest.mark.parametrize(
    ("state", "event"), CONTRACT_PAIRS, ids=[f"{s}-{e}" for s, e in CONTRACT_PAIRS]
)
def test_contract_state_after(state: ContractState, event: ContractEvent) -> None:
    expected = {(C.OPEN, CE.START_DELIVERY): C.DELIVERING, (C.DELIVERING, CE.SETTLE): C.SETTLED}
    assert expected == CONTRACT_TRANSITIONS
    want = expected.get((state, event))
    if want is None:
        with pytest.raises(InvariantViolation):
            contract_state_after(state, event)
    else:
        assert contract_state_after(state, event) is want
