"""Exact rounding of Fractions onto integer grids (ticks, minor units)."""

from __future__ import annotations

import math
from fractions import Fraction

from pricing.errors import PricingError

__all__ = ["round_half_up_to_step"]


def round_half_up_to_step(value: Fraction, step: int) -> int:
    """Nearest multiple of ``step`` to a non-negative ``value``; exact halves round up."""
    if step <= 0:
        raise PricingError("invalid_step", "a rounding step must be positive")
    if value < 0:
        raise PricingError("negative_value", "only non-negative values are rounded")
    return math.floor(value / step + Fraction(1, 2)) * step
