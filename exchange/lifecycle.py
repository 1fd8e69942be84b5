"""The instrument lifecycle as one transition table.

listed -> open -> (halted <-> open) -> closed (gate closure) -> delivering -> settled.
Any (state, event) pair not in ``TRANSITIONS`` is an invalid transition, answered with
``None`` by :func:`next_state`, never by an exception deep in the engine.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["TRANSITIONS", "InstrumentEvent", "InstrumentState", "next_state"]


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
