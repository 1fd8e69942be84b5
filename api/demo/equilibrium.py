"""Competitive equilibrium of one delivery window from the traders' values and costs.

Demand is a step function (each buyer: up to ``q`` at value ``v``), supply likewise (each
seller: up to ``q`` at cost ``c``). Sorting values descending and costs ascending and
matching while ``v > c`` gives the largest total surplus any allocation can reach, the
equilibrium quantity, and the band of prices that clear the market: above the last
matched cost and the first unmatched value, below the last matched value and the first
unmatched cost.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Equilibrium", "equilibrium"]


@dataclass(frozen=True, slots=True)
class Equilibrium:
    surplus: int  # money units (price units x quantity units)
    quantity: int  # quantity units
    price_low: int | None  # price units; None when nothing would trade
    price_high: int | None


def equilibrium(
    demand: Iterable[tuple[int, int]], supply: Iterable[tuple[int, int]]
) -> Equilibrium:
    """Max surplus, quantity and clearing band of (price, quantity) demand and supply."""
    bids = sorted(((v, q) for v, q in demand if q > 0), key=lambda x: -x[0])
    asks = sorted(((c, q) for c, q in supply if q > 0), key=lambda x: x[0])
    i = j = 0
    bid_left = bids[0][1] if bids else 0
    ask_left = asks[0][1] if asks else 0
    surplus = quantity = 0
    last_v = last_c = None
    while i < len(bids) and j < len(asks) and bids[i][0] > asks[j][0]:
        take = min(bid_left, ask_left)
        surplus += take * (bids[i][0] - asks[j][0])
        quantity += take
        last_v, last_c = bids[i][0], asks[j][0]
        bid_left -= take
        ask_left -= take
        if bid_left == 0:
            i += 1
            bid_left = bids[i][1] if i < len(bids) else 0
        if ask_left == 0:
            j += 1
            ask_left = asks[j][1] if j < len(asks) else 0
    if last_v is None or last_c is None:
        return Equilibrium(0, 0, None, None)
    next_v = bids[i][0] if i < len(bids) else None
    next_c = asks[j][0] if j < len(asks) else None
    low = last_c if next_v is None else max(last_c, next_v)
    high = last_v if next_c is None else min(last_v, next_c)
    return Equilibrium(surplus, quantity, min(low, high), max(low, high))
