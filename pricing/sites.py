"""Sites, device pools, emission factors and a seller's capacity for a tier.

Emission factors are dated, versioned sets. A site records the version it was given its
factor from (or ``"site"`` for a factor the seller supplied), so publishing a newer set
never rewrites the history of an existing site.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from exchange.products import GreenGrade, Tier
from exchange.refusals import Refusal
from exchange.units import Quantity
from pricing.catalog import Catalog
from pricing.errors import PricingError
from pricing.green import carbon_kg_per_kwh, green_grade
from pricing.metering import Exact, pf_hours, rated_pf, to_quantity

__all__ = [
    "EMISSION_FACTOR_SETS",
    "MEE_NBS_2022",
    "PUE_MAX",
    "PUE_MIN",
    "SITE_FACTOR_VERSION",
    "EmissionFactorSet",
    "Pool",
    "Region",
    "Site",
    "capacity_pf_hours",
    "capacity_quantity",
    "factor_set_in_effect",
    "make_site",
    "pool_ineligibility",
]

PUE_MIN = Decimal("1.0")
PUE_MAX = Decimal("3.0")
#: ``emission_factor_version`` of a site whose factor the seller supplied.
SITE_FACTOR_VERSION = "site"


class Region(StrEnum):
    """Grid regions of the regional emission-factor tables."""

    NORTH = "north"
    NORTHEAST = "northeast"
    EAST = "east"
    CENTRAL = "central"
    NORTHWEST = "northwest"
    SOUTH = "south"
    SOUTHWEST = "southwest"


@dataclass(frozen=True, slots=True)
class EmissionFactorSet:
    """Grid emission factors in kgCO2 per kWh, by region, from ``effective_from`` on."""

    version: str
    effective_from: date
    source: str
    national: Decimal
    factors: Mapping[Region, Decimal]

    def __post_init__(self) -> None:
        missing = [r.value for r in Region if r not in self.factors]
        if missing:
            raise PricingError(Refusal.INCOMPLETE_FACTOR_SET, regions=", ".join(missing))


MEE_NBS_2022 = EmissionFactorSet(
    version="mee-nbs-2022",
    effective_from=date(2022, 1, 1),
    source="MEE/NBS 2022 regional grid emission factors",
    national=Decimal("0.5366"),
    factors={
        Region.NORTH: Decimal("0.6776"),
        Region.NORTHEAST: Decimal("0.5564"),
        Region.EAST: Decimal("0.5617"),
        Region.CENTRAL: Decimal("0.5395"),
        Region.NORTHWEST: Decimal("0.5857"),
        Region.SOUTH: Decimal("0.3869"),
        Region.SOUTHWEST: Decimal("0.2268"),
    },
)

#: Every published set, oldest first. Append newer sets; never edit a published one.
EMISSION_FACTOR_SETS: tuple[EmissionFactorSet, ...] = (MEE_NBS_2022,)


def factor_set_in_effect(
    on: date, sets: Iterable[EmissionFactorSet] = EMISSION_FACTOR_SETS
) -> EmissionFactorSet:
    """The newest set whose ``effective_from`` is on or before ``on``."""
    eligible = [s for s in sets if s.effective_from <= on]
    if not eligible:
        raise PricingError(Refusal.NO_EMISSION_FACTORS, on=on)
    return max(eligible, key=lambda s: s.effective_from)


@dataclass(frozen=True, slots=True)
class Site:
    id: str
    region: Region
    pue: Decimal
    green_share: Decimal
    emission_factor: Decimal
    emission_factor_version: str

    @property
    def carbon_kg_per_kwh(self) -> Fraction:
        return carbon_kg_per_kwh(self.pue, self.emission_factor, self.green_share)

    @property
    def green_grade(self) -> GreenGrade:
        return green_grade(self.pue, self.emission_factor, self.green_share)


def make_site(
    site_id: str,
    region: Region | str,
    pue: Decimal,
    green_share: Decimal,
    emission_factor: Decimal | None = None,
    *,
    factor_set: EmissionFactorSet = MEE_NBS_2022,
) -> Site:
    """Validate and build a site; the emission factor defaults from the region."""
    try:
        parsed_region = Region(region)
    except ValueError as exc:
        raise PricingError(
            Refusal.INVALID_REGION, region=repr(str(region)[:20]), problem="unknown"
        ) from exc
    for name, value in (("pue", pue), ("green_share", green_share)):
        if not isinstance(value, Decimal) or not value.is_finite():
            raise PricingError(Refusal.for_field(name), reason=f"{name} must be a finite decimal")
    if not PUE_MIN <= pue <= PUE_MAX:
        raise PricingError(
            Refusal.INVALID_PUE, reason=f"PUE must be in [{PUE_MIN}, {PUE_MAX}], got {pue}"
        )
    if not 0 <= green_share <= 1:
        raise PricingError(
            Refusal.INVALID_GREEN_SHARE, reason=f"green share must be in [0, 1], got {green_share}"
        )
    if emission_factor is None:
        factor, version = factor_set.factors[parsed_region], factor_set.version
    else:
        if not emission_factor.is_finite() or not 0 < emission_factor <= 2:
            raise PricingError(
                Refusal.INVALID_EMISSION_FACTOR,
                reason="emission factor must be in (0, 2] kgCO2/kWh",
            )
        factor, version = emission_factor, SITE_FACTOR_VERSION
    return Site(site_id, parsed_region, pue, green_share, factor, version)


@dataclass(frozen=True, slots=True)
class Pool:
    """``count`` devices of one catalog model at one site."""

    id: str
    site_id: str
    model_id: str
    count: int = field(default=1)

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count <= 0:
            raise PricingError(
                Refusal.INVALID_COUNT, reason="a pool holds a positive number of devices"
            )


def pool_ineligibility(
    pool: Pool,
    sites: Mapping[str, Site],
    catalog: Catalog,
    tier: Tier,
    class_members: Iterable[str],
) -> str | None:
    """Why ``pool`` cannot deliver ``tier`` (a stable code), or None when it can."""
    site = sites.get(pool.site_id)
    if site is None:
        return "unknown_site"
    model = catalog.get(pool.model_id)
    if model is None:
        return "unknown_model"
    if pool.model_id not in set(class_members):
        return "not_in_gpu_class"
    if model.peak(tier.precision) is None:
        return "unknown_figure"
    if not model.is_usable(tier.precision.value):
        return "unconfirmed_figure"
    if tier.arithmetic_intensity is not None and (
        model.memory_bandwidth_gbs is None or not model.is_usable("memory_bandwidth_gbs")
    ):
        return "unknown_figure"
    if tier.min_green_grade is not None and site.green_grade < tier.min_green_grade:
        return "green_grade_too_low"
    if tier.regions and site.region.value not in tier.regions:
        return "region_not_allowed"
    return None


def capacity_pf_hours(
    pools: Iterable[Pool],
    sites: Mapping[str, Site],
    catalog: Catalog,
    tier: Tier,
    class_members: Iterable[str],
    hours: Exact,
    efficiency: Mapping[str, Fraction] | None = None,
) -> Fraction:
    """Sum over eligible pools of count x rated PF x hours, exact.

    ``efficiency`` maps a model id to its measured efficiency factor in (0, 1].
    """
    members = frozenset(class_members)
    total = Fraction(0)
    for pool in pools:
        if pool_ineligibility(pool, sites, catalog, tier, members) is not None:
            continue
        rated = rated_pf(
            catalog[pool.model_id],
            tier.precision,
            arithmetic_intensity=tier.arithmetic_intensity,
            efficiency=(efficiency or {}).get(pool.model_id),
        )
        total += pf_hours(rated, pool.count, hours)
    return total


def capacity_quantity(
    pools: Iterable[Pool],
    sites: Mapping[str, Site],
    catalog: Catalog,
    tier: Tier,
    class_members: Iterable[str],
    hours: Exact,
    efficiency: Mapping[str, Fraction] | None = None,
) -> Quantity:
    """Capacity in exchange quantity units, rounded down once on the exact total."""
    return to_quantity(
        capacity_pf_hours(pools, sites, catalog, tier, class_members, hours, efficiency)
    )
