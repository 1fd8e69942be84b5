"""Forward curve: one price per delivery window of a tier.

For each window the curve price is, in order of preference: the mid of a two-sided book
(the market's current view), else the last trade, else the reference price; a window with
none of them has no price. Every input is kept on the point so a chart can show all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from itertools import pairwise

from exchange.ids import Symbol, Timestamp
from exchange.refusals import Refusal
from exchange.units import Price
from pricing.errors import PricingError

__all__ = ["CurveInput", "CurvePoint", "CurveSource", "forward_curve"]


@dataclass(frozen=True, slots=True)
class CurveInput:
    symbol: Symbol
    window_start: Timestamp
    window_end: Timestamp
    best_bid: Price | None = None
    best_ask: Price | None = None
    last_price: Price | None = None
    reference_price: Price | None = None


class CurveSource(StrEnum):
    MID = "mid"
    LAST = "last"
    REFERENCE = "reference"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class CurvePoint:
    symbol: Symbol
    window_start: Timestamp
    window_end: Timestamp
    price: Fraction | None  # price units; a mid may fall between two units
    source: CurveSource
    best_bid: Price | None
    best_ask: Price | None
    last_price: Price | None
    reference_price: Price | None


def _point(item: CurveInput) -> CurvePoint:
    price: Fraction | None
    if item.best_bid is not None and item.best_ask is not None:
        if item.best_bid > item.best_ask:
            raise PricingError(Refusal.CROSSED_BOOK, symbol=item.symbol)
        price, source = Fraction(item.best_bid + item.best_ask, 2), CurveSource.MID
    elif item.last_price is not None:
        price, source = Fraction(item.last_price), CurveSource.LAST
    elif item.reference_price is not None:
        price, source = Fraction(item.reference_price), CurveSource.REFERENCE
    else:
        price, source = None, CurveSource.NONE
    return CurvePoint(
        item.symbol,
        item.window_start,
        item.window_end,
        price,
        source,
        item.best_bid,
        item.best_ask,
        item.last_price,
        item.reference_price,
    )


def forward_curve(items: Iterable[CurveInput]) -> list[CurvePoint]:
    """Points ordered by delivery window start; two instruments on one window are refused."""
    ordered = sorted(items, key=lambda i: i.window_start)
    for before, after in pairwise(ordered):
        if before.window_start == after.window_start:
            raise PricingError(Refusal.DUPLICATE_WINDOW, before=before.symbol, after=after.symbol)
    return [_point(item) for item in ordered]
