"""Exact rounding of Fractions onto integer grids (ticks, minor units)."""

from __future__ import annotations

import math
from fractions import Fraction

from exchange.refusals import Refusal
from pricing.errors import PricingError

__all__ = ["round_half_up_to_step"]


def round_half_up_to_step(value: Fraction, step: int) -> int:
    """Nearest multiple of ``step`` to a non-negative ``value``; exact halves round up."""
    if step <= 0:
        raise PricingError(Refusal.INVALID_STEP)
    if value < 0:
        raise PricingError(
            Refusal.NEGATIVE_VALUE, subject="a negative value", problem="is not rounded"
        )
    return math.floor(value / step + Fraction(1, 2)) * step
