"""Seller capacity: what each pool can still deliver, hour by hour, across every tier.

One pool of devices can qualify for several tiers (an H100 pool sells fp16 and fp8) and
for overlapping windows, so capacity is kept per (pool, hour), not per instrument, and a
PF·h sold in any tier uses up the pool's hour for all of them.

Exact accounting, no rounding: a pool delivers ``cap`` quantity units per hour in a given
tier, so ``q`` units sold over an ``n``-hour window use the fraction ``q / (cap x n)`` of
each hour of the window. Each (pool, hour) keeps, per denominator ``d = cap x n``, the
quantity sold on it; the pool-hour is full when ``sum(q_d / d) == 1``. Quantities only
ever move between reservations and contracts as integers, so splitting a reservation
across many partial fills never loses or invents a fraction of a pool.

A sell order *reserves* capacity (held); each fill moves the filled part to a contract
(*committed*); cancel, expiry and gate closure release what is still held. Pools are
drawn in a fixed order (the order given, by pool id), so the same commands give the same
allocation.
"""

from __future__ import annotations

from fractions import Fraction

import msgspec

from exchange.invariants import check

__all__ = ["Allocation", "CapacityBook", "PoolLine"]


class PoolLine(msgspec.Struct):
    """Part of a reservation or commitment drawn from one pool."""

    pool_id: int
    quantity: int  # quantity units of the instrument's tier
    denominator: int  # what the whole pool delivers over the window in that tier


class Allocation(msgspec.Struct):
    """Capacity reserved for a sell order or committed to a contract."""

    owner: int
    hours: tuple[int, ...]  # hour start timestamps of the window
    lines: list[PoolLine]

    @property
    def quantity(self) -> int:
        return sum(line.quantity for line in self.lines)


class CapacityBook:
    """Reservations (sell orders) and commitments (contracts) against pool-hours."""

    def __init__(self) -> None:
        # (pool, hour) -> {denominator: quantity sold on it}
        self.used: dict[tuple[int, int], dict[int, int]] = {}
        self.reserved: dict[int, Allocation] = {}  # order id -> allocation
        self.committed: dict[int, Allocation] = {}  # contract id -> allocation

    def used_fraction(self, pool_id: int, hour: int) -> Fraction:
        parts = self.used.get((pool_id, hour))
        if not parts:
            return Fraction(0)
        return sum((Fraction(q, d) for d, q in parts.items()), Fraction(0))

    def free_quantity(self, pool_id: int, cap: int, hours: tuple[int, ...]) -> int:
        """Units of a tier delivering ``cap`` per hour still free in every hour of a window."""
        if cap <= 0:
            return 0
        d = cap * len(hours)
        free = d
        used = self.used
        for h in hours:
            parts = used.get((pool_id, h))
            if not parts:
                continue
            if len(parts) == 1 and d in parts:
                left = d - parts[d]  # sold in this tier only: exact in integers
            else:
                rest = (1 - self.used_fraction(pool_id, h)) * d
                left = rest.numerator // rest.denominator
            free = min(free, left)
        return max(0, free)

    def available_quantity(self, pools: list[tuple[int, int]], hours: tuple[int, ...]) -> int:
        """Quantity units still sellable from ``pools`` = [(pool id, cap per hour)]."""
        return sum(self.free_quantity(pool_id, cap, hours) for pool_id, cap in pools)

    def reserve(
        self,
        order_id: int,
        owner: int,
        pools: list[tuple[int, int]],
        hours: tuple[int, ...],
        quantity: int,
    ) -> bool:
        """Reserve ``quantity`` for a sell order from ``pools`` in the order given.

        Returns False, changing nothing, when the pools cannot supply it all.
        """
        check(order_id not in self.reserved, "order %s already reserved capacity", order_id)
        need = quantity
        lines: list[PoolLine] = []
        for pool_id, cap in pools:
            if need == 0:
                break
            take = min(need, self.free_quantity(pool_id, cap, hours))
            if take > 0:
                lines.append(PoolLine(pool_id, take, cap * len(hours)))
                need -= take
        if need:
            return False
        for line in lines:
            self._use(line, hours, line.quantity)
        self.reserved[order_id] = Allocation(owner, hours, lines)
        return True

    def extend(self, order_id: int, pools: list[tuple[int, int]], quantity: int) -> bool:
        """Reserve ``quantity`` more for an existing reservation (an amendment upwards)."""
        alloc = self.reserved[order_id]
        temp = -order_id - 1  # never a real order id
        if not self.reserve(temp, alloc.owner, pools, alloc.hours, quantity):
            return False
        extra = self.reserved.pop(temp)
        alloc.lines.extend(extra.lines)
        return True

    def _use(self, line: PoolLine, hours: tuple[int, ...], quantity: int) -> None:
        used = self.used
        for h in hours:
            key = (line.pool_id, h)
            parts = used.setdefault(key, {})
            value = parts.get(line.denominator, 0) + quantity
            check(value >= 0, "pool %s hour %s released more than it held", line.pool_id, h)
            if value:
                parts[line.denominator] = value
            else:
                del parts[line.denominator]
                if not parts:
                    del used[key]
            if quantity > 0:
                full = (
                    value <= line.denominator
                    if len(parts) == 1
                    else self.used_fraction(line.pool_id, h) <= 1
                )
                check(full, "pool %s oversold", line.pool_id)

    @staticmethod
    def _peel(lines: list[PoolLine], quantity: int) -> list[PoolLine]:
        """Take ``quantity`` off the front of ``lines``."""
        out: list[PoolLine] = []
        need = quantity
        while need:
            check(bool(lines), "peeling more capacity than allocated")
            line = lines[0]
            if line.quantity <= need:
                out.append(lines.pop(0))
                need -= line.quantity
            else:
                out.append(PoolLine(line.pool_id, need, line.denominator))
                line.quantity -= need
                need = 0
        return out

    def commit(self, order_id: int, contract_id: int, quantity: int) -> None:
        """Move ``quantity`` of a sell order's reservation to a contract."""
        alloc = self.reserved[order_id]
        check(contract_id not in self.committed, "contract %s already committed", contract_id)
        moved = self._peel(alloc.lines, quantity)
        self.committed[contract_id] = Allocation(alloc.owner, alloc.hours, moved)
        if not alloc.lines:
            del self.reserved[order_id]

    def release(self, order_id: int, quantity: int | None = None) -> None:
        """Release ``quantity`` (or all) of a sell order's reservation."""
        alloc = self.reserved.get(order_id)
        if alloc is None:
            check(not quantity, "order %s has no reservation to release", order_id)
            return
        if quantity is None or quantity >= alloc.quantity:
            check(quantity is None or quantity == alloc.quantity, "release beyond reservation")
            gone, alloc.lines = alloc.lines, []
        else:
            gone = self._peel(alloc.lines, quantity)
        for line in gone:
            self._use(line, alloc.hours, -line.quantity)
        if not alloc.lines:
            del self.reserved[order_id]

    def finish(self, contract_id: int) -> None:
        """Forget a settled contract's commitment: its hours are past."""
        alloc = self.committed.pop(contract_id, None)
        if alloc is not None:
            for line in alloc.lines:
                self._use(line, alloc.hours, -line.quantity)

    def held_quantity(self, owner: int, hours: tuple[int, ...]) -> int:
        return sum(
            a.quantity for a in self.reserved.values() if a.owner == owner and a.hours == hours
        )

    def check(self) -> None:
        """Usage equals the sum of reservations and commitments; no pool-hour is oversold."""
        expect: dict[tuple[int, int], dict[int, int]] = {}
        for alloc in (*self.reserved.values(), *self.committed.values()):
            for line in alloc.lines:
                check(line.quantity > 0 and line.denominator > 0, "empty capacity line")
                for h in alloc.hours:
                    parts = expect.setdefault((line.pool_id, h), {})
                    parts[line.denominator] = parts.get(line.denominator, 0) + line.quantity
        check(self.used == expect, "capacity usage drifted from its allocations")
        for pool_id, hour in self.used:
            check(self.used_fraction(pool_id, hour) <= 1, f"pool {pool_id} hour {hour} oversold")
