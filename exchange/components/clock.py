"""The clock of the exchange: the time, the id counters, the schedule of lifecycle
actions (listing, gate closure, delivery start, settlement), and the operation that
moves time forward, running every action and expiry due on the way, in time order."""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, ClassVar

from exchange.engine import MatchingEngine
from exchange.ids import Timestamp, format_timestamp
from exchange.operations import AdvanceClock
from exchange.refusals import Refusal

if TYPE_CHECKING:
    from exchange.components.clearing import Clearing
    from exchange.components.context import Journal
    from exchange.components.listing import Listing
    from exchange.components.trading import Trading

__all__ = ["CLOSE", "DELIVER", "LIST", "SETTLE", "Clock", "Time"]

# Lifecycle actions, in the order they run when due at the same instant.
CLOSE, DELIVER, SETTLE, LIST = 1, 2, 3, 4


class Time:
    """The time, the id counters and the schedule: the state every component reads."""

    __slots__ = ("_ids", "_schedule", "_schedule_seq", "grace_us", "now")
    #: Parts of the state hash, each the attributes it covers.
    STATE: ClassVar[dict[str, tuple[str, ...]]] = {
        "clock": ("now", "grace_us", "_ids"),
        "schedule": ("_schedule", "_schedule_seq"),
    }
    REFERENCES: ClassVar[tuple[str, ...]] = ()

    def __init__(self, grace_us: int) -> None:
        self.now = Timestamp(0)
        #: Reporting grace after a window ends, before final settlement.
        self.grace_us = grace_us
        self._ids = {"account": 1, "order": 1, "contract": 1, "site": 1, "pool": 1}
        self._schedule: list[tuple[int, int, int, str]] = []
        self._schedule_seq = 0

    def next_id(self, kind: str) -> int:
        """The next id of ``kind`` (account, order, contract, site, pool), taken."""
        value = self._ids[kind]
        self._ids[kind] = value + 1
        return value

    def peek_id(self, kind: str) -> int:
        """The id the next :meth:`next_id` of ``kind`` gives, not taken."""
        return self._ids[kind]

    def counters(self) -> dict[str, int]:
        """The id counters themselves, by kind: for a component that takes ids on the path
        of every order (read the next id, and store the one after once it is taken)."""
        return self._ids

    def at(self, ts: int, action: int, key: str) -> None:
        """Schedule ``action`` (:data:`LIST` for a tier code, else for a symbol) at ``ts``."""
        self._schedule_seq += 1
        heapq.heappush(self._schedule, (ts, action, self._schedule_seq, key))

    def next_due(self) -> int | None:
        return self._schedule[0][0] if self._schedule else None

    def pop_due(self, ts: int) -> tuple[int, str] | None:
        """The next (action, key) due by ``ts``, taken off the schedule; None if none is."""
        schedule = self._schedule
        if schedule and schedule[0][0] <= ts:
            _, action, _, key = heapq.heappop(schedule)
            return action, key
        return None


class Clock:
    """The :class:`~exchange.operations.AdvanceClock` operation."""

    __slots__ = ("_clearing", "_engine", "_journal", "_listing", "_run", "_time", "_trading")
    STATE: ClassVar[dict[str, tuple[str, ...]]] = {}
    REFERENCES: ClassVar[tuple[str, ...]] = __slots__

    def __init__(
        self,
        time: Time,
        engine: MatchingEngine,
        journal: Journal,
        listing: Listing,
        clearing: Clearing,
        trading: Trading,
    ) -> None:
        self._time = time
        self._engine = engine
        self._journal = journal
        self._run = journal.run
        self._trading = trading
        self._listing = listing
        self._clearing = clearing

    def advance(self, op: AdvanceClock) -> int:
        """Run every expiry, listing, gate closure, delivery start and settlement due by
        ``op.to``, in time order, then set the clock to ``op.to``."""
        time = self._time
        if op.to < time.now:
            raise Refusal.CLOCK_WENT_BACKWARDS.reject(
                to=format_timestamp(op.to), now=format_timestamp(time.now)
            )
        engine = self._engine
        run = self._run
        while True:
            due_action = time.next_due()
            due_expiry = engine.next_expiry()
            candidates = [t for t in (due_action, due_expiry) if t is not None and t <= op.to]
            if not candidates:
                break
            ts = Timestamp(max(min(candidates), time.now))
            time.now = ts
            run(engine.advance_time(ts))
            while (due := time.pop_due(ts)) is not None:
                self._act(*due)
        time.now = op.to
        run(engine.advance_time(op.to))
        self._listing.refresh_references()
        return time.now

    def _act(self, action: int, key: str) -> None:
        listing = self._listing
        if action == LIST:
            listing.list_due_of(key)
        elif action == CLOSE:
            listing.close(key)
        elif action == DELIVER:
            self._clearing.start_delivery(listing.start_delivery(key))
        elif action == SETTLE:
            self._clearing.settle_all(listing.contract_ids(key))
            listing.settle(key)
            self._retire(key)

    def _retire(self, symbol: str) -> None:
        """Memory stays bounded: a settled instrument's orders, fills and contracts leave
        the core, handed to the shell through the journal (they are final, and in the log
        and the projections); what stays is the instrument itself and its empty book."""
        journal, listing = self._journal, self._listing
        contracts = self._clearing.retire(listing.contract_ids(symbol))
        journal.retired_contracts.update((c.id, c) for c in contracts)
        journal.retired_orders.update((o.id, o) for o in self._trading.retire(symbol))
        listing.retire(symbol)
