"""Seller capacity: what each pool can still deliver, hour by hour, across every tier.

One pool of devices can qualify for several tiers (an H100 pool sells fp16 and fp8) and
for overlapping windows, so capacity is kept per (pool, hour), not per instrument, and a
PF·h sold in any tier uses up the pool's hour for all of them.

Unit of account: a pool-hour is ``SHARES_PER_POOL_HOUR`` (10**9) shares. Selling ``q``
quantity units of a tier over an ``h``-hour window from a pool whose capacity in that tier
is ``cap`` quantity units per hour uses ``ceil(q x 10**9 / (cap x h))`` shares in each
hour of the window (rounded up, so a pool is never oversold). All integers: no float, no
fraction on the order path.

A sell order *reserves* shares (held); each fill moves the filled part to a contract
(*committed*); cancel, expiry and gate closure release what is still held. Pools are
drawn in a fixed order (pool id), so the same commands give the same allocation.
"""

from __future__ import annotations

import msgspec

from exchange.invariants import check

__all__ = ["SHARES_PER_POOL_HOUR", "Allocation", "CapacityBook", "PoolLine"]

SHARES_PER_POOL_HOUR = 10**9


class PoolLine(msgspec.Struct):
    """Part of a reservation or commitment drawn from one pool."""

    pool_id: int
    quantity: int  # quantity units of the instrument's tier
    shares: int  # shares of each hour of the window


class Allocation(msgspec.Struct):
    """Capacity reserved for a sell order or committed to a contract."""

    owner: int
    hours: tuple[int, ...]  # hour start timestamps of the window
    lines: list[PoolLine]

    @property
    def quantity(self) -> int:
        return sum(line.quantity for line in self.lines)


def _shares(quantity: int, cap_per_hour: int, hours: int) -> int:
    return -((-quantity * SHARES_PER_POOL_HOUR) // (cap_per_hour * hours))


class CapacityBook:
    """Reservations (sell orders) and commitments (contracts) against pool-hours."""

    def __init__(self) -> None:
        self.used: dict[tuple[int, int], int] = {}  # (pool, hour) -> shares held + committed
        self.reserved: dict[int, Allocation] = {}  # order id -> allocation
        self.committed: dict[int, Allocation] = {}  # contract id -> allocation

    def free_shares(self, pool_id: int, hours: tuple[int, ...]) -> int:
        used = self.used
        return SHARES_PER_POOL_HOUR - max(used.get((pool_id, h), 0) for h in hours)

    def available_quantity(self, pools: list[tuple[int, int]], hours: tuple[int, ...]) -> int:
        """Quantity units still sellable from ``pools`` = [(pool id, cap per hour)]."""
        total = 0
        n = len(hours)
        for pool_id, cap in pools:
            free = self.free_shares(pool_id, hours)
            total += free * cap * n // SHARES_PER_POOL_HOUR
        return total

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
        check(order_id not in self.reserved, f"order {order_id} already reserved capacity")
        need = quantity
        n = len(hours)
        lines: list[PoolLine] = []
        for pool_id, cap in pools:
            if need == 0:
                break
            if cap <= 0:
                continue
            free = self.free_shares(pool_id, hours)
            if free <= 0:
                continue
            can = free * cap * n // SHARES_PER_POOL_HOUR
            take = min(need, can)
            if take <= 0:
                continue
            shares = _shares(take, cap, n)
            if shares > free:  # rounding up went past what is free: take one unit less
                take -= 1
                shares = _shares(take, cap, n) if take else 0
            if take <= 0:
                continue
            lines.append(PoolLine(pool_id, take, shares))
            need -= take
        if need:
            return False
        for line in lines:
            self._use(line.pool_id, hours, line.shares)
        self.reserved[order_id] = Allocation(owner, hours, lines)
        return True

    def extend(
        self,
        order_id: int,
        pools: list[tuple[int, int]],
        quantity: int,
    ) -> bool:
        """Reserve ``quantity`` more for an existing reservation (an amendment upwards)."""
        alloc = self.reserved[order_id]
        temp = -order_id - 1  # never a real order id
        if not self.reserve(temp, alloc.owner, pools, alloc.hours, quantity):
            return False
        extra = self.reserved.pop(temp)
        alloc.lines.extend(extra.lines)
        return True

    def _use(self, pool_id: int, hours: tuple[int, ...], shares: int) -> None:
        used = self.used
        for h in hours:
            value = used.get((pool_id, h), 0) + shares
            check(0 <= value <= SHARES_PER_POOL_HOUR, f"pool {pool_id} hour {h} oversold")
            if value:
                used[(pool_id, h)] = value
            else:
                del used[(pool_id, h)]

    @staticmethod
    def _peel(lines: list[PoolLine], quantity: int) -> list[PoolLine]:
        """Take ``quantity`` off the front of ``lines``; shares move in proportion."""
        out: list[PoolLine] = []
        need = quantity
        while need:
            check(bool(lines), "peeling more capacity than allocated")
            line = lines[0]
            if line.quantity <= need:
                out.append(lines.pop(0))
                need -= line.quantity
            else:
                shares = line.shares * need // line.quantity
                out.append(PoolLine(line.pool_id, need, shares))
                line.quantity -= need
                line.shares -= shares
                need = 0
        return out

    def commit(self, order_id: int, contract_id: int, quantity: int) -> None:
        """Move ``quantity`` of a sell order's reservation to a contract."""
        alloc = self.reserved[order_id]
        moved = self._peel(alloc.lines, quantity)
        existing = self.committed.get(contract_id)
        check(existing is None, f"contract {contract_id} already committed")
        self.committed[contract_id] = Allocation(alloc.owner, alloc.hours, moved)
        if not alloc.lines:
            del self.reserved[order_id]

    def release(self, order_id: int, quantity: int | None = None) -> None:
        """Release ``quantity`` (or all) of a sell order's reservation."""
        alloc = self.reserved.get(order_id)
        if alloc is None:
            check(not quantity, f"order {order_id} has no reservation to release")
            return
        if quantity is None or quantity >= alloc.quantity:
            check(quantity is None or quantity == alloc.quantity, "release beyond reservation")
            gone, alloc.lines = alloc.lines, []
        else:
            gone = self._peel(alloc.lines, quantity)
        for line in gone:
            self._use(line.pool_id, alloc.hours, -line.shares)
        if not alloc.lines:
            del self.reserved[order_id]

    def finish(self, contract_id: int) -> None:
        """Forget a settled contract's commitment: its hours are past, its shares go."""
        alloc = self.committed.pop(contract_id, None)
        if alloc is not None:
            for line in alloc.lines:
                self._use(line.pool_id, alloc.hours, -line.shares)

    def held_quantity(self, owner: int, hours: tuple[int, ...]) -> int:
        return sum(
            a.quantity for a in self.reserved.values() if a.owner == owner and a.hours == hours
        )

    def check(self) -> None:
        """Used shares equal the sum of reservations and commitments, hour by hour."""
        expect: dict[tuple[int, int], int] = {}
        for alloc in (*self.reserved.values(), *self.committed.values()):
            for line in alloc.lines:
                check(line.quantity > 0 and line.shares >= 0, "empty capacity line")
                for h in alloc.hours:
                    key = (line.pool_id, h)
                    expect[key] = expect.get(key, 0) + line.shares
        expect = {k: v for k, v in expect.items() if v}
        check(self.used == expect, "capacity usage drifted from its allocations")
        check(all(v <= SHARES_PER_POOL_HOUR for v in self.used.values()), "pool-hour oversold")
