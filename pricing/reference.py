"""Reference price per tier, per PF·h.

Until a tier trades, admins set it: ``base SCU price x precision x class x grade x region``
multipliers, exact, rounded to the nearest tick (halves up, never below one tick). The
precision multiplier defaults to the tier's SCU factor (``pricing.scu``), so a PF·h worth
half an SCU is priced at half the SCU price. The region multiplier of a tier that lists
regions is the lowest of theirs (a buyer gets the cheapest region a seller delivers from);
a tier open to all regions takes 1.

Once the tier has trades in the lookback window the reference is derived from them: the
trimmed VWAP (``pricing.indices``) of the most recent ``max_trades`` trades within the
lookback, rounded to the tick. With none it falls back to the admin price.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from exchange.ids import Timestamp
from exchange.products import GreenGrade, Precision, Tier
from exchange.refusals import Refusal
from exchange.units import PRICE_DECIMALS, Price
from pricing.errors import PricingError
from pricing.indices import DEFAULT_K, DEFAULT_LOOKBACK_US, trailing, trimmed_vwap
from pricing.rounding import round_half_up_to_step
from pricing.trades import TradePrint

__all__ = [
    "DEFAULT_MAX_TRADES",
    "AdminPricing",
    "ReferencePrice",
    "ReferenceSource",
    "admin_reference_price",
    "reference_price",
    "round_to_tick",
]

DEFAULT_MAX_TRADES = 50


def round_to_tick(value_per_pf_hour: Fraction, tick: Price) -> Price:
    """Currency per PF·h -> price units on the tick grid, halves up, at least one tick."""
    units = value_per_pf_hour * 10**PRICE_DECIMALS
    return Price(max(round_half_up_to_step(units, tick), tick))


@dataclass(frozen=True, slots=True)
class AdminPricing:
    """Admin inputs. ``base_scu_price`` is in currency per SCU; missing multipliers are 1,
    except precision, which defaults to the tier's SCU factor."""

    base_scu_price: Decimal
    precision_multipliers: Mapping[Precision, Decimal] = field(default_factory=dict)
    class_multipliers: Mapping[str, Decimal] = field(default_factory=dict)
    grade_multipliers: Mapping[GreenGrade, Decimal] = field(default_factory=dict)
    region_multipliers: Mapping[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.base_scu_price.is_finite() or self.base_scu_price <= 0:
            raise PricingError(Refusal.INVALID_BASE_PRICE)
        for table in (
            self.precision_multipliers,
            self.class_multipliers,
            self.grade_multipliers,
            self.region_multipliers,
        ):
            for key, value in table.items():
                if not value.is_finite() or value <= 0:
                    raise PricingError(Refusal.INVALID_MULTIPLIER, key=key)


def admin_reference_price(tier: Tier, admin: AdminPricing, scu_factor: Fraction) -> Price:
    """The admin-set reference price of ``tier`` in price units per PF·h."""
    precision = admin.precision_multipliers.get(tier.precision)
    value = Fraction(admin.base_scu_price)
    value *= Fraction(precision) if precision is not None else scu_factor
    value *= Fraction(admin.class_multipliers.get(tier.gpu_class, Decimal(1)))
    if tier.min_green_grade is not None:
        value *= Fraction(admin.grade_multipliers.get(tier.min_green_grade, Decimal(1)))
    if tier.regions:
        value *= min(
            Fraction(admin.region_multipliers.get(region, Decimal(1))) for region in tier.regions
        )
    return round_to_tick(value, tier.tick)


class ReferenceSource(StrEnum):
    ADMIN = "admin"
    TRADES = "trades"


@dataclass(frozen=True, slots=True)
class ReferencePrice:
    price: Price
    source: ReferenceSource
    trades_used: int


def reference_price(
    tier: Tier,
    admin_price: Price,
    trades: Iterable[TradePrint],
    now: Timestamp,
    *,
    lookback_us: int = DEFAULT_LOOKBACK_US,
    max_trades: int = DEFAULT_MAX_TRADES,
    k: int = DEFAULT_K,
) -> ReferencePrice:
    """Trade-derived reference for ``tier`` (its instruments' trades), else the admin's."""
    if max_trades <= 0:
        raise PricingError(Refusal.INVALID_MAX_TRADES)
    recent = sorted(trailing(trades, now, lookback_us), key=lambda t: t.ts)[-max_trades:]
    index = trimmed_vwap([(Fraction(t.price), Fraction(t.quantity)) for t in recent], k)
    if index is None:
        return ReferencePrice(admin_price, ReferenceSource.ADMIN, 0)
    price = round_to_tick(index.value / 10**PRICE_DECIMALS, tier.tick)
    return ReferencePrice(price, ReferenceSource.TRADES, index.trades_used)
