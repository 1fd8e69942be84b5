"""The lifecycles of instruments, orders and contracts, each as one transition table.

Instruments: listed -> open -> (halted <-> open) -> closed (gate closure) -> delivering ->
settled. Any (state, event) pair not in ``TRANSITIONS`` is an invalid transition, answered
with ``None`` by :func:`next_state`, never by an exception deep in the engine.

Orders: open -> partially filled (a fill that leaves some) -> ... ; from open or partially
filled, a fill of the rest ends it filled, a cancel (by its owner, self-trade prevention,
a risk check or gate closure; the rest of a market or IOC order) ends it cancelled, and a
GTD expiry ends it expired. Contracts: open (traded) -> delivering (the window starts) ->
settled. Finished orders and settled contracts have no way out. The core moves a status
only through :func:`order_status_after` and :func:`contract_state_after`, which raise on
a pair the table lacks: that is a bug in the core, never something a request can cause.
"""

from __future__ import annotations

from enum import StrEnum

from exchange.invariants import InvariantViolation
from exchange.orders import OrderStatus
from exchange.settlement import ContractState

__all__ = [
    "CONTRACT_TRANSITIONS",
    "ORDER_TRANSITIONS",
    "TRANSITIONS",
    "ContractEvent",
    "InstrumentEvent",
    "InstrumentState",
    "OrderEvent",
    "contract_state_after",
    "next_state",
    "order_status_after",
]


class InstrumentState(StrEnum):
    LISTED = "listed"
    OPEN = "open"
    HALTED = "halted"
    CLOSED = "closed"
    DELIVERING = "delivering"
    SETTLED = "settled"


class InstrumentEvent(StrEnum):
    OPEN = "open"
    HALT = "halt"
    RESUME = "resume"
    CLOSE = "close"
    START_DELIVERY = "start_delivery"
    SETTLE = "settle"


_S, _E = InstrumentState, InstrumentEvent

TRANSITIONS: dict[tuple[InstrumentState, InstrumentEvent], InstrumentState] = {
    (_S.LISTED, _E.OPEN): _S.OPEN,
    (_S.LISTED, _E.CLOSE): _S.CLOSED,
    (_S.OPEN, _E.HALT): _S.HALTED,
    (_S.HALTED, _E.RESUME): _S.OPEN,
    (_S.OPEN, _E.CLOSE): _S.CLOSED,
    (_S.HALTED, _E.CLOSE): _S.CLOSED,
    (_S.CLOSED, _E.START_DELIVERY): _S.DELIVERING,
    (_S.DELIVERING, _E.SETTLE): _S.SETTLED,
}


def next_state(state: InstrumentState, event: InstrumentEvent) -> InstrumentState | None:
    """The state after ``event``, or ``None`` when the table has no such transition."""
    return TRANSITIONS.get((state, event))


class OrderEvent(StrEnum):
    PARTIAL_FILL = "partial_fill"  # a fill that leaves a remainder
    FILL = "fill"  # the last of the order's quantity filled
    CANCEL = "cancel"
    EXPIRE = "expire"


_O, _OE = OrderStatus, OrderEvent

ORDER_TRANSITIONS: dict[tuple[OrderStatus, OrderEvent], OrderStatus] = {
    (_O.OPEN, _OE.PARTIAL_FILL): _O.PARTIALLY_FILLED,
    (_O.PARTIALLY_FILLED, _OE.PARTIAL_FILL): _O.PARTIALLY_FILLED,
    (_O.OPEN, _OE.FILL): _O.FILLED,
    (_O.PARTIALLY_FILLED, _OE.FILL): _O.FILLED,
    (_O.OPEN, _OE.CANCEL): _O.CANCELLED,
    (_O.PARTIALLY_FILLED, _OE.CANCEL): _O.CANCELLED,
    (_O.OPEN, _OE.EXPIRE): _O.EXPIRED,
    (_O.PARTIALLY_FILLED, _OE.EXPIRE): _O.EXPIRED,
}


def order_status_after(status: OrderStatus, event: OrderEvent) -> OrderStatus:
    """An order's status after ``event``; :class:`InvariantViolation` for a pair the table
    does not have (a finished order moved again)."""
    after = ORDER_TRANSITIONS.get((status, event))
    if after is None:
        raise InvariantViolation(f"an order {status.value} cannot take the event {event.value}")
    return after


class ContractEvent(StrEnum):
    START_DELIVERY = "start_delivery"
    SETTLE = "settle"


_C, _CE = ContractState, ContractEvent

CONTRACT_TRANSITIONS: dict[tuple[ContractState, ContractEvent], ContractState] = {
    (_C.OPEN, _CE.START_DELIVERY): _C.DELIVERING,
    (_C.DELIVERING, _CE.SETTLE): _C.SETTLED,
}


def contract_state_after(state: ContractState, event: ContractEvent) -> ContractState:
    """A contract's state after ``event``; :class:`InvariantViolation` for a pair the table
    does not have."""
    after = CONTRACT_TRANSITIONS.get((state, event))
    if after is None:
        raise InvariantViolation(f"a contract {state.value} cannot take the event {event.value}")
    return after
