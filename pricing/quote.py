"""Quote: the cost of a quantity walking one side of the current book.

A buy walks the asks (best = lowest first), a sell walks the bids (highest first). Each
level fills ``min(remaining, level quantity)`` at the level price; cost is exact Money
(price x quantity). An optional ``limit_price`` stops the walk at the protection price a
market order would respect (reference plus or minus the band).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

from exchange.refusals import Refusal
from exchange.units import Money, Price, Quantity, notional
from pricing.errors import PricingError

__all__ = ["Quote", "QuoteSide", "quote_book"]


class QuoteSide(StrEnum):
    BUY = "buy"
    SELL = "sell"


@dataclass(frozen=True, slots=True)
class Quote:
    side: QuoteSide
    requested: Quantity
    filled: Quantity
    cost: Money
    levels_used: int
    worst_price: Price | None

    @property
    def fully_fillable(self) -> bool:
        return self.filled == self.requested

    @property
    def average_price(self) -> Fraction | None:
        """Cost / filled in price units (exact); None when nothing fills."""
        return Fraction(self.cost, self.filled) if self.filled else None


def quote_book(
    levels: Sequence[tuple[Price, Quantity]],
    quantity: Quantity,
    side: QuoteSide | str,
    limit_price: Price | None = None,
) -> Quote:
    """Walk ``levels`` (the opposite side, best first) for ``quantity``."""
    try:
        parsed_side = QuoteSide(side)
    except ValueError as exc:
        raise PricingError(Refusal.INVALID_SIDE, side=repr(side)) from exc
    if quantity <= 0:
        raise PricingError(Refusal.INVALID_QUANTITY, subject="quote quantity")
    for index, (price, size) in enumerate(levels):
        if price <= 0 or size <= 0:
            raise PricingError(Refusal.INVALID_LEVEL)
        if index:
            previous = levels[index - 1][0]
            better_first = previous < price if parsed_side is QuoteSide.BUY else previous > price
            if not better_first:
                raise PricingError(Refusal.UNSORTED_LEVELS)
    remaining = quantity
    cost = 0
    used = 0
    worst: Price | None = None
    for price, size in levels:
        if remaining == 0:
            break
        if limit_price is not None and (
            price > limit_price if parsed_side is QuoteSide.BUY else price < limit_price
        ):
            break
        take = min(remaining, size)
        cost += notional(price, Quantity(take))
        remaining = Quantity(remaining - take)
        used += 1
        worst = price
    return Quote(
        side=parsed_side,
        requested=quantity,
        filled=Quantity(quantity - remaining),
        cost=Money(cost),
        levels_used=used,
        worst_price=worst,
    )
