from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.products import GreenGrade
from pricing import (
    GRADE_CUTOFFS_KG_PER_KWH,
    Catalog,
    PricingError,
    carbon_kg,
    carbon_kg_per_kwh,
    gco2_per_scu,
    green_grade,
    load_builtin_catalog,
    round_gco2,
)

H100 = load_builtin_catalog()["nvidia-h100-sxm5-80gb"]
EAST = Decimal("0.5617")


def test_h100_on_the_east_grid_at_pue_1_25_emits_496_8_g_per_scu() -> None:
    exact = gco2_per_scu(H100, Decimal("1.25"), EAST, 0)
    assert exact == Fraction(700) * Fraction("1.25") * Fraction("0.5617") / Fraction("0.9894")
    assert Fraction("496.75") < exact < Fraction("496.76")  # 496.7530...
    assert round_gco2(exact) == Decimal("496.8")


def test_round_gco2_rounds_half_up_on_the_exact_value() -> None:
    assert round_gco2(Fraction("496.75")) == Decimal("496.8")
    assert round_gco2(Fraction("496.7499999999999999999999999999999")) == Decimal("496.7")


def test_green_share_scales_carbon_down_linearly() -> None:
    assert gco2_per_scu(H100, Decimal("1.25"), EAST, Decimal("0.5")) * 2 == gco2_per_scu(
        H100, Decimal("1.25"), EAST, 0
    )
    assert gco2_per_scu(H100, Decimal("1.25"), EAST, 1) == 0


def test_carbon_kg_for_energy() -> None:
    # 0.7 kWh at PUE 1.25 on the East grid: 0.7 x 0.702125
    assert carbon_kg(Fraction("0.7"), Decimal("1.25"), EAST, 0) == Fraction("0.4914875")


def test_carbon_of_a_model_without_tdp_is_refused(catalog: Catalog) -> None:
    with pytest.raises(PricingError) as err:
        gco2_per_scu(catalog["nvidia-l20-48gb"], 1, EAST, 0)
    assert err.value.code == "unknown_figure"


def test_east_grid_site_at_pue_1_25_without_green_power_is_not_5a() -> None:
    assert carbon_kg_per_kwh(Decimal("1.25"), EAST, 0) == Fraction("0.702125")
    grade = green_grade(Decimal("1.25"), EAST, 0)
    assert grade < GreenGrade.A4
    assert grade is GreenGrade.A2


def test_ningxia_site_with_high_green_share_is_5a() -> None:
    assert green_grade(Decimal("1.15"), Decimal("0.5857"), Decimal("0.8")) is GreenGrade.A5


def test_policy_grade_4a_needs_green_power_or_a_clean_grid() -> None:
    assert green_grade(Decimal("1.25"), EAST, Decimal("0.45")) is GreenGrade.A4
    assert green_grade(Decimal("1.3"), Decimal("0.2268"), 0) is GreenGrade.A4  # southwest
    assert green_grade(Decimal("1.5"), Decimal("0.6776"), 0) is GreenGrade.A1  # north


def test_grade_boundaries_are_inclusive_and_ordered() -> None:
    bounds = [bound for _, bound in GRADE_CUTOFFS_KG_PER_KWH]
    assert bounds == sorted(bounds)
    for grade, bound in GRADE_CUTOFFS_KG_PER_KWH:
        assert green_grade(1, bound, 0) is grade
        assert green_grade(1, bound + Fraction(1, 10**6), 0) is GreenGrade(grade - 1)


def test_invalid_site_figures_are_refused() -> None:
    for args, code in (
        ((Decimal("0.9"), EAST, 0), "invalid_pue"),
        ((1, Decimal(-1), 0), "invalid_emission_factor"),
        ((1, EAST, Decimal("1.1")), "invalid_green_share"),
    ):
        with pytest.raises(PricingError) as err:
            carbon_kg_per_kwh(*args)
        assert err.value.code == code


pues = st.decimals(min_value=1, max_value=3, places=2)
factors = st.decimals(min_value=0, max_value=2, places=4)
shares = st.decimals(min_value=0, max_value=1, places=2)


@given(pues, pues, factors, shares)
def test_carbon_is_monotone_in_pue(p1: Decimal, p2: Decimal, ef: Decimal, g: Decimal) -> None:
    lo, hi = sorted((p1, p2))
    assert gco2_per_scu(H100, lo, ef, g) <= gco2_per_scu(H100, hi, ef, g)
    assert green_grade(lo, ef, g) >= green_grade(hi, ef, g)


@given(pues, factors, factors, shares)
def test_carbon_is_monotone_in_emission_factor(
    p: Decimal, e1: Decimal, e2: Decimal, g: Decimal
) -> None:
    lo, hi = sorted((e1, e2))
    assert gco2_per_scu(H100, p, lo, g) <= gco2_per_scu(H100, p, hi, g)
    assert green_grade(p, lo, g) >= green_grade(p, hi, g)
