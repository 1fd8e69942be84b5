"""Carbon intensity and the site green grade.

``carbon_kg_per_kwh = PUE x EF x (1 - green_share)``: kgCO2 per kWh of IT energy, the
single number a site is graded on. Per SCU (1 PF·h fp16 dense) of a given model:

    gCO2/SCU = 1000 x TDP_kW x PUE x EF x (1 - green_share) / dense_fp16_PF
             = TDP_W x carbon_kg_per_kwh / dense_fp16_PF

computed exactly and shown rounded to 0.1 g, half up (H100 SXM, PUE 1.25, East grid
0.5617, no green power: 496.7531... -> 496.8).
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

from exchange.products import GreenGrade
from exchange.refusals import Refusal
from pricing.catalog import AcceleratorModel
from pricing.errors import PricingError
from pricing.metering import Exact, scu_peak_pf

__all__ = [
    "GRADE_CUTOFFS_KG_PER_KWH",
    "carbon_kg",
    "carbon_kg_per_kwh",
    "gco2_per_scu",
    "green_grade",
    "round_gco2",
]

#: Upper bound (inclusive) of PUE x EF x (1 - green_share), in kgCO2 per kWh of IT energy,
#: for each grade, best first. Above the 2A bound a site is 1A.
GRADE_CUTOFFS_KG_PER_KWH: tuple[tuple[GreenGrade, Fraction], ...] = (
    (GreenGrade.A5, Fraction("0.20")),
    (GreenGrade.A4, Fraction("0.40")),
    (GreenGrade.A3, Fraction("0.55")),
    (GreenGrade.A2, Fraction("0.75")),
)


def _fraction(value: Exact, name: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | Fraction | Decimal):
        raise PricingError(
            Refusal.INVALID_NUMBER, name=name, expected="an int, Fraction or Decimal"
        )
    return Fraction(value)


def carbon_kg_per_kwh(pue: Exact, emission_factor: Exact, green_share: Exact) -> Fraction:
    """kgCO2 per kWh of IT energy: PUE x EF x (1 - green_share), exact."""
    p = _fraction(pue, "pue")
    ef = _fraction(emission_factor, "emission_factor")
    g = _fraction(green_share, "green_share")
    if p < 1:
        raise PricingError(Refusal.INVALID_PUE, reason="PUE must be at least 1")
    if ef < 0:
        raise PricingError(
            Refusal.INVALID_EMISSION_FACTOR, reason="emission factor must not be negative"
        )
    if not 0 <= g <= 1:
        raise PricingError(Refusal.INVALID_GREEN_SHARE, reason="green share must be in [0, 1]")
    return p * ef * (1 - g)


def carbon_kg(
    energy_kwh: Exact, pue: Exact, emission_factor: Exact, green_share: Exact
) -> Fraction:
    """kgCO2 for ``energy_kwh`` of IT energy at a site."""
    intensity = carbon_kg_per_kwh(pue, emission_factor, green_share)
    return _fraction(energy_kwh, "energy_kwh") * intensity


def gco2_per_scu(
    model: AcceleratorModel, pue: Exact, emission_factor: Exact, green_share: Exact
) -> Fraction:
    """Exact gCO2 per SCU for ``model`` at a site (TDP and a 16-bit figure required)."""
    if model.tdp_w is None:
        raise PricingError(Refusal.UNKNOWN_FIGURE, model_id=model.id, figure="TDP figure")
    intensity = carbon_kg_per_kwh(pue, emission_factor, green_share)
    # 1000 g/kg x (TDP_W / 1000) kW x kg/kWh / PF  =  TDP_W x kg/kWh / PF  (g per PF·h)
    return Fraction(model.tdp_w) * intensity / scu_peak_pf(model)


def round_gco2(value: Fraction) -> Decimal:
    """Display rounding for carbon intensity: 0.1 g, half up, decided on the exact value."""
    if value < 0:
        raise PricingError(
            Refusal.NEGATIVE_VALUE, subject="carbon intensity", problem="must not be negative"
        )
    tenths = math.floor(value * 10 + Fraction(1, 2))
    return Decimal(tenths).scaleb(-1)


def green_grade(pue: Exact, emission_factor: Exact, green_share: Exact) -> GreenGrade:
    """Site grade 5A (best) to 1A from PUE x EF x (1 - green_share); see the cut-offs."""
    intensity = carbon_kg_per_kwh(pue, emission_factor, green_share)
    for grade, bound in GRADE_CUTOFFS_KG_PER_KWH:
        if intensity <= bound:
            return grade
    return GreenGrade.A1
