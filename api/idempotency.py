"""Idempotency-Key records: the stored answer of a mutating request, by account and key.

A key is decided before its request reaches a group commit, so that one request's key
can never fail the commit of the others (a duplicate primary key would):

* a request whose key is in flight (queued, not yet committed) waits for that request,
  then answers as a repeat; with another body it is refused at once;
* the record is made when its operation is applied, with the operation's log position,
  and a repeat is answered only once that position is committed: nobody gets a 2xx for
  what is not durable;
* records expire after ``ttl_s`` (as at Stripe, a day by default) and each account holds
  at most ``per_account_max``: beyond that a new key is refused (429) until old ones
  expire, so memory and the table stay bounded.

Times are wall-clock microseconds: retries happen in real time, whatever the exchange's
clock (which may be simulated) says.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

__all__ = ["IdempotencyStore", "Pending", "Stored", "now_us"]


@dataclass(slots=True)
class Stored:
    digest: str
    status: int
    body: Any
    created_at: int  # wall clock, microseconds
    seq: int = 0  # the operation's log position (0: committed before this process)


@dataclass(slots=True)
class Pending:
    digest: str
    done: asyncio.Future[None]


def now_us() -> int:
    """The wall clock in microseconds."""
    return time.time_ns() // 1_000


@dataclass
class IdempotencyStore:
    ttl_s: int = 86_400
    per_account_max: int = 10_000
    _done: dict[int, OrderedDict[str, Stored]] = field(default_factory=dict)
    _pending: dict[tuple[int, str], Pending] = field(default_factory=dict)
    _pending_counts: dict[int, int] = field(default_factory=dict)

    def cutoff(self, at_us: int | None = None) -> int:
        """Records created before this moment have expired."""
        return (at_us if at_us is not None else now_us()) - self.ttl_s * 1_000_000

    def load(self, rows: list[dict[str, Any]], body: Any) -> None:
        """Start-up: the unexpired records of the table, oldest first; ``body`` decodes
        a stored body."""
        cutoff = self.cutoff()
        for row in sorted(rows, key=lambda r: int(r["created_at"])):
            if int(row["created_at"]) >= cutoff:
                records = self._done.setdefault(int(row["account_id"]), OrderedDict())
                records[row["key"]] = Stored(
                    row["request_digest"],
                    int(row["status"]),
                    body(row["body"]),
                    int(row["created_at"]),
                )

    def get(self, account_id: int, key: str) -> Stored | None:
        records = self._done.get(account_id)
        if not records:
            return None
        self._expire(account_id, records)
        return records.get(key)

    def pending(self, account_id: int, key: str) -> Pending | None:
        return self._pending.get((account_id, key))

    def full(self, account_id: int) -> bool:
        records = self._done.get(account_id)
        if records:
            self._expire(account_id, records)
        held = len(records or ()) + self._pending_counts.get(account_id, 0)
        return held >= self.per_account_max

    def begin(self, account_id: int, key: str, digest: str) -> Pending:
        """The request with ``key`` is on its way (see :meth:`settle`)."""
        pending = Pending(digest, asyncio.get_running_loop().create_future())
        self._pending[(account_id, key)] = pending
        self._pending_counts[account_id] = self._pending_counts.get(account_id, 0) + 1
        return pending

    def record(self, account_id: int, key: str, stored: Stored) -> None:
        """The operation of ``key`` was applied (not necessarily committed yet)."""
        records = self._done.setdefault(account_id, OrderedDict())
        records[key] = stored
        records.move_to_end(key)

    def settle(self, account_id: int, key: str) -> None:
        """The request with ``key`` is decided (committed, refused or failed): those
        who waited for it look again."""
        pending = self._pending.pop((account_id, key), None)
        if pending is None:
            return
        left = self._pending_counts[account_id] - 1
        if left:
            self._pending_counts[account_id] = left
        else:
            del self._pending_counts[account_id]
        if not pending.done.done():
            pending.done.set_result(None)

    def _expire(self, account_id: int, records: OrderedDict[str, Stored]) -> None:
        cutoff = self.cutoff()
        while records:
            key, oldest = next(iter(records.items()))
            if oldest.created_at >= cutoff:
                return
            del records[key]
        del self._done[account_id]
