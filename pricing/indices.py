"""Indices: trailing volume-weighted price with median +- k x MAD outlier trimming.

Methodology (per tier, or per precision family in SCU):

1. Take the trades with ``now - lookback_us < ts <= now``.
2. Compute the median M of their prices (each trade one observation) and the median
   absolute deviation MAD = median(|p - M|).
3. Keep trades with ``|p - M| <= k x max(MAD, M x mad_floor_bps / 10000)``. The floor
   stops a market that mostly trades at one price (MAD = 0) from discarding every other
   trade.
4. The index is the volume-weighted average of the kept trades: sum(p x q) / sum(q).

The value is an exact Fraction (price units per PF·h, or per SCU for family indices),
hence always within the range of the trades it includes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from exchange.ids import Symbol, Timestamp
from exchange.refusals import Refusal
from pricing.errors import PricingError
from pricing.scu import median
from pricing.trades import TradePrint

__all__ = [
    "DEFAULT_K",
    "DEFAULT_LOOKBACK_US",
    "DEFAULT_MAD_FLOOR_BPS",
    "IndexValue",
    "family_index",
    "tier_index",
    "trailing",
    "trimmed_vwap",
]

DEFAULT_K = 3
DEFAULT_MAD_FLOOR_BPS = 50
DEFAULT_LOOKBACK_US = 24 * 3_600_000_000


@dataclass(frozen=True, slots=True)
class IndexValue:
    """An index fixing: ``value`` is the trimmed VWAP; ``low``/``high`` span kept trades."""

    value: Fraction
    volume: Fraction
    trades_used: int
    trades_dropped: int
    low: Fraction
    high: Fraction


def trimmed_vwap(
    points: Sequence[tuple[Fraction, Fraction]],
    k: int = DEFAULT_K,
    mad_floor_bps: int = DEFAULT_MAD_FLOOR_BPS,
) -> IndexValue | None:
    """Trimmed VWAP of (price, weight) points; None when there are none."""
    if k <= 0 or mad_floor_bps < 0:
        raise PricingError(Refusal.INVALID_INDEX_PARAMETERS)
    if not points:
        return None
    if any(price <= 0 or weight <= 0 for price, weight in points):
        raise PricingError(Refusal.INVALID_POINT)
    centre = median(price for price, _ in points)
    mad = median(abs(price - centre) for price, _ in points)
    band = k * max(mad, centre * mad_floor_bps / 10_000)
    kept = [(p, w) for p, w in points if abs(p - centre) <= band]
    # The median itself is always within the band, so ``kept`` is never empty.
    volume = sum((w for _, w in kept), Fraction(0))
    value = sum((p * w for p, w in kept), Fraction(0)) / volume
    return IndexValue(
        value=value,
        volume=volume,
        trades_used=len(kept),
        trades_dropped=len(points) - len(kept),
        low=min(p for p, _ in kept),
        high=max(p for p, _ in kept),
    )


def trailing(
    trades: Iterable[TradePrint], now: Timestamp, lookback_us: int = DEFAULT_LOOKBACK_US
) -> list[TradePrint]:
    """Trades in the window ``(now - lookback_us, now]``, input order kept."""
    if lookback_us <= 0:
        raise PricingError(Refusal.INVALID_LOOKBACK)
    return [t for t in trades if now - lookback_us < t.ts <= now]


def tier_index(
    trades: Iterable[TradePrint],
    now: Timestamp,
    lookback_us: int = DEFAULT_LOOKBACK_US,
    k: int = DEFAULT_K,
    mad_floor_bps: int = DEFAULT_MAD_FLOOR_BPS,
) -> IndexValue | None:
    """Index of one tier's trades (all its instruments), in price units per PF·h."""
    window = trailing(trades, now, lookback_us)
    points = [(Fraction(t.price), Fraction(t.quantity)) for t in window]
    return trimmed_vwap(points, k, mad_floor_bps)


def family_index(
    trades: Iterable[TradePrint],
    tier_of: Mapping[Symbol, str],
    scu_factor: Mapping[str, Fraction],
    now: Timestamp,
    lookback_us: int = DEFAULT_LOOKBACK_US,
    k: int = DEFAULT_K,
    mad_floor_bps: int = DEFAULT_MAD_FLOOR_BPS,
) -> IndexValue | None:
    """Index across tiers of one precision family, in price units per SCU.

    Each trade's price becomes ``price / factor`` and its weight ``quantity x factor`` (its
    volume in SCU), with ``factor`` the SCU per PF·h of the trade's tier. Trades of symbols
    not in ``tier_of`` are ignored (other families).
    """
    points: list[tuple[Fraction, Fraction]] = []
    for t in trailing(trades, now, lookback_us):
        tier = tier_of.get(t.symbol)
        if tier is None:
            continue
        factor = scu_factor.get(tier)
        if factor is None or factor <= 0:
            raise PricingError(
                Refusal.NO_SCU_FACTOR, reason=f"tier {tier} has no positive SCU factor"
            )
        points.append((Fraction(t.price) / factor, Fraction(t.quantity) * factor))
    return trimmed_vwap(points, k, mad_floor_bps)
