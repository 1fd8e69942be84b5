"""What the components of the core share: the shell's settings, and the record of what
the operations applied since the shell last looked changed (with the table that routes
each engine event to the component that handles it)."""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable
from typing import Any

from exchange.engine import Outcome
from exchange.events import Event
from exchange.invariants import InvariantViolation
from exchange.limits import CoreLimits
from exchange.orders import ResultCode
from exchange.records import OrderState
from exchange.settlement import Contract

__all__ = ["Journal", "Rules", "keep_only"]


class Rules:
    """Settings the shell may change between operations, never state.

    ``limits`` are the bounds per account. ``admitting`` says whether the rules that only
    refuse (clean text, text and figure sizes, delivery within a pool's hours) apply. Off
    while a log is replayed: a row an earlier version accepted under its rules must
    replay, whatever rules were added since (what the rules refuse never changes the
    state they allow)."""

    __slots__ = ("admitting", "limits")

    def __init__(self, limits: CoreLimits) -> None:
        self.limits = limits
        self.admitting = True


class Journal:
    """What the last operations changed, until the shell takes it; and ``handlers``, the
    table from an engine event's type to the handler of the component it concerns."""

    __slots__ = (
        "events",
        "handlers",
        "retired_contracts",
        "retired_orders",
        "settled_now",
        "touched_contracts",
        "touched_orders",
    )

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.touched_orders: set[int] = set()
        self.touched_contracts: set[int] = set()
        self.settled_now: list[int] = []
        #: Final records of settled instruments that left the core, by id.
        self.retired_orders: dict[int, OrderState] = {}
        self.retired_contracts: dict[int, Contract] = {}
        self.handlers: dict[type, Callable[[Any], None]] = {}

    def run(self, outcome: Outcome) -> None:
        """Apply the consequences of an accepted engine command: each event is recorded,
        and handled by its entry in ``handlers`` if it has one (an order accepted, a book
        level changed... are only recorded)."""
        if outcome.result is not ResultCode.OK:
            raise InvariantViolation(f"engine refused a validated command: {outcome}")
        record = self.events.append
        handlers = self.handlers
        for event in outcome.events:
            record(event)
            handler = handlers.get(type(event))
            if handler is not None:
                handler(event)


def keep_only(index: dict[int, list[int]], keys: Iterable[int], live: Container[int]) -> None:
    """After a retirement: the lists of ``keys`` in ``index`` (an account's ids, in order)
    keep only the ids still ``live``; a list left empty goes."""
    for key in keys:
        left = [i for i in index[key] if i in live]
        if left:
            index[key] = left
        else:
            del index[key]
