from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.products import Precision
from exchange.units import Quantity
from pricing import (
    OPS_PER_PF_HOUR,
    Catalog,
    PricingError,
    convert,
    delivered_quantity,
    load_builtin_catalog,
    pf_days_to_pf_hours,
    pf_hours,
    quantity_to_pf_hours,
    rated_pf,
    to_quantity,
)

CATALOG = load_builtin_catalog()
H100 = CATALOG["nvidia-h100-sxm5-80gb"]
A100 = CATALOG["nvidia-a100-sxm4-80gb"]
H20 = CATALOG["nvidia-h20-96gb"]

# Models with a known bandwidth and fp16 peak, for roofline properties.
ROOFLINE_MODELS = sorted(
    m.id
    for m in CATALOG.values()
    if m.peak(Precision.FP16) is not None and m.memory_bandwidth_gbs is not None
)


def test_one_h100_sxm_for_one_hour_is_0_9894_pf_hours_fp16() -> None:
    result = convert(H100, 1, 1)
    assert result.pf_hours == Fraction("0.9894")
    assert result.scu == Fraction("0.9894")
    assert result.quantity == 989_400
    assert result.operations == Fraction("0.9894") * 36 * 10**17
    assert result.energy_kwh == Fraction("0.7")


def test_one_a100_for_one_hour_is_0_312_pf_hours() -> None:
    assert convert(A100, 1, 1).pf_hours == Fraction("0.312")


def test_gpt3_3640_pf_days_are_87360_pf_hours() -> None:
    assert pf_days_to_pf_hours(3640) == 87_360
    assert pf_days_to_pf_hours(3640) * OPS_PER_PF_HOUR == 3640 * 86400 * 10**15


def test_a_pf_hour_is_3_6e18_operations() -> None:
    assert OPS_PER_PF_HOUR == 3_600_000_000_000_000_000


def test_conversion_at_fp8_counts_the_fp8_peak_and_scu_stays_fp16() -> None:
    result = convert(H100, 8, 10, Precision.FP8)
    assert result.pf_hours == Fraction("1.9789") * 80
    assert result.scu == Fraction("0.9894") * 80
    assert result.pf_days == result.pf_hours / 24


def test_a_part_without_a_16_bit_figure_has_no_scu() -> None:
    assert convert(CATALOG["moore-threads-mtt-s80"], 1, 1, Precision.FP32).scu is None


def test_to_quantity_rounds_down_to_a_micro_pf_hour() -> None:
    assert to_quantity(Fraction(1, 3)) == 333_333
    assert to_quantity(Fraction(2, 3)) == 666_666
    assert to_quantity(Fraction("0.9894")) == 989_400
    assert quantity_to_pf_hours(Quantity(989_400)) == Fraction("0.9894")


def test_floats_are_refused() -> None:
    with pytest.raises(PricingError) as err:
        pf_hours(0.5, 1, 1)  # type: ignore[arg-type]
    assert err.value.code == "invalid_number"


def test_roofline_caps_a_bandwidth_bound_tier() -> None:
    # I = 30 FLOP/byte x 4000 GB/s = 120 TFLOPS < 148 dense fp16
    assert rated_pf(H20, Precision.FP16, arithmetic_intensity=30) == Fraction("0.12")
    # I = 100 x 3350 GB/s = 335 TFLOPS < 989.4; the H20 then earns 0.148 (its peak)
    assert rated_pf(H100, Precision.FP16, arithmetic_intensity=100) == Fraction("0.335")
    assert rated_pf(H20, Precision.FP16, arithmetic_intensity=100) == Fraction("0.148")


def test_efficiency_scales_the_rated_figure() -> None:
    assert rated_pf(H100, Precision.FP16, efficiency=Fraction(1, 2)) == Fraction("0.4947")
    with pytest.raises(PricingError) as err:
        rated_pf(H100, Precision.FP16, efficiency=Decimal("1.1"))
    assert err.value.code == "invalid_efficiency"


def test_unknown_figure_is_not_rated() -> None:
    with pytest.raises(PricingError) as err:
        rated_pf(A100, Precision.FP8)
    assert err.value.code == "unknown_figure"


def test_unverified_figure_is_not_rated_for_billing_until_confirmed(catalog: Catalog) -> None:
    ascend = catalog["huawei-ascend-910b3"]
    with pytest.raises(PricingError) as err:
        rated_pf(ascend, Precision.FP16)
    assert err.value.code == "unconfirmed_figure"
    assert rated_pf(ascend, Precision.FP16, allow_unconfirmed=True) == Fraction("0.313")


def test_delivered_quantity_from_device_seconds_is_capped_at_the_contract() -> None:
    rated = Fraction("0.9894")
    # 8 devices x 1 h = 28,800 device-seconds -> 7.9152 PF·h
    assert delivered_quantity([(28_800, rated)], Quantity(10_000_000)) == 7_915_200
    assert delivered_quantity([(28_800, rated)], Quantity(5_000_000)) == 5_000_000
    assert delivered_quantity([], Quantity(5_000_000)) == 0
    # two pools, summed exactly before rounding down
    assert delivered_quantity([(1, Fraction(1)), (2, Fraction(1))], Quantity(10**9)) == 833


exact_hours = st.fractions(min_value=0, max_value=10_000, max_denominator=3600)
counts = st.integers(min_value=0, max_value=100_000)
model_ids = st.sampled_from(ROOFLINE_MODELS)


@given(model_ids, counts, exact_hours)
def test_conversion_is_exact_and_reversible(model_id: str, count: int, hours: Fraction) -> None:
    model = CATALOG[model_id]
    result = convert(model, count, hours)
    peak = Fraction(model.peak_tflops[Precision.FP16]) / 1000
    assert result.pf_hours == peak * count * hours
    if count:
        assert result.pf_hours / count / (hours or 1) == (peak if hours else 0)
    assert result.quantity <= result.pf_hours * 10**6 < result.quantity + 1


@given(model_ids, counts, counts, exact_hours, exact_hours)
def test_pf_hours_are_monotone_in_count_and_hours(
    model_id: str, c1: int, c2: int, h1: Fraction, h2: Fraction
) -> None:
    rated = rated_pf(CATALOG[model_id], Precision.FP16, allow_unconfirmed=True)
    lo_c, hi_c = sorted((c1, c2))
    lo_h, hi_h = sorted((h1, h2))
    assert pf_hours(rated, lo_c, lo_h) <= pf_hours(rated, hi_c, lo_h) <= pf_hours(rated, hi_c, hi_h)
    assert to_quantity(pf_hours(rated, lo_c, lo_h)) <= to_quantity(pf_hours(rated, hi_c, hi_h))


@given(model_ids, st.integers(min_value=1, max_value=10_000), st.sampled_from(list(Precision)))
def test_roofline_is_never_above_the_dense_peak(
    model_id: str, intensity: int, precision: Precision
) -> None:
    model = CATALOG[model_id]
    peak = model.peak_pf(precision)
    if peak is None:
        return
    rated = rated_pf(model, precision, arithmetic_intensity=intensity, allow_unconfirmed=True)
    assert 0 < rated <= peak
    bandwidth = model.memory_bandwidth_gbs
    assert bandwidth is not None
    assert rated <= intensity * Fraction(bandwidth) / 10**6


@given(
    st.lists(
        st.tuples(st.integers(0, 10**7), st.fractions(0, 10, max_denominator=10**4)), max_size=8
    ),
    st.integers(0, 10**12),
)
def test_delivered_never_exceeds_contract_or_metered_amount(
    reports: list[tuple[int, Fraction]], contract: int
) -> None:
    delivered = delivered_quantity(reports, Quantity(contract))
    metered = sum((Fraction(s) * r / 3600 for s, r in reports), Fraction(0))
    assert 0 <= delivered <= contract
    assert delivered <= metered * 10**6
