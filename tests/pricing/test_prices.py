"""Reference prices, SCU factors and indices."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.ids import Symbol, Timestamp
from exchange.products import GreenGrade, Precision
from exchange.units import Price
from pricing import (
    AdminPricing,
    GpuClass,
    PricingError,
    ReferenceSource,
    admin_reference_price,
    class_members,
    family_index,
    load_builtin_catalog,
    median,
    precision_family,
    reference_price,
    round_to_tick,
    scu_per_pf_hour,
    tier_index,
    trimmed_vwap,
)
from tests.pricing.helpers import make_tier, trade

CATALOG = load_builtin_catalog()
H_CLASS = GpuClass("H", "Hopper", Precision.FP16, Decimal(700), Decimal(80), Decimal(2000))
HOUR = 3_600_000_000


def test_scu_factor_is_the_median_fp16_to_precision_ratio_of_the_class() -> None:
    members = class_members(H_CLASS, CATALOG)
    assert scu_per_pf_hour(Precision.FP16, members, CATALOG) == 1
    # fp8 is exactly 2x fp16 on every member with an fp8 figure except H100 SXM / H800,
    # where 1978.9 / 989.4 is a hair above 2.
    fp8 = scu_per_pf_hour(Precision.FP8, members, CATALOG)
    assert Fraction(989, 1979) < fp8 <= Fraction(1, 2)
    a100 = ("nvidia-a100-sxm4-80gb",)
    assert scu_per_pf_hour(Precision.INT8, a100, CATALOG) == Fraction(1, 2)
    with pytest.raises(PricingError) as err:
        scu_per_pf_hour(Precision.FP8, a100, CATALOG)
    assert err.value.code == "no_scu_factor"


def test_precision_families_group_interchangeable_precisions() -> None:
    assert precision_family(Precision.BF16) == precision_family(Precision.FP16) == "fp16"
    assert precision_family(Precision.INT8) == "fp8"


def test_median_is_exact() -> None:
    assert median([Fraction(1), Fraction(4)]) == Fraction(5, 2)
    assert median([Fraction(3), Fraction(1), Fraction(2)]) == 2


def test_admin_reference_price_is_base_times_multipliers_rounded_to_tick() -> None:
    admin = AdminPricing(
        base_scu_price=Decimal("12.50"),
        class_multipliers={"H": Decimal("1.2")},
        grade_multipliers={GreenGrade.A4: Decimal("1.05")},
        region_multipliers={"east": Decimal("1.10"), "northwest": Decimal("0.90")},
    )
    tier = make_tier(min_green_grade=GreenGrade.A4, regions=("east", "northwest"), tick=100)
    # 12.50 x 1 x 1.2 x 1.05 x 0.90 = 14.175 CNY -> 141,750 units -> tick 100 -> 141,800
    assert admin_reference_price(tier, admin, Fraction(1)) == 141_800
    # precision multiplier defaults to the SCU factor: fp8 PF·h at half an SCU
    fp8 = make_tier(precision=Precision.FP8, tick=100)
    assert admin_reference_price(fp8, admin, Fraction(1, 2)) == 75_000  # 12.5 x 1.2 / 2
    explicit = AdminPricing(Decimal("12.50"), precision_multipliers={Precision.FP8: Decimal("0.7")})
    assert admin_reference_price(fp8, explicit, Fraction(1, 2)) == 87_500  # 12.5 x 0.7


def test_round_to_tick_rounds_half_up_and_never_below_one_tick() -> None:
    assert round_to_tick(Fraction("0.0050"), Price(100)) == 100  # exact half: up
    assert round_to_tick(Fraction("0.0149"), Price(100)) == 100
    assert round_to_tick(Fraction("0.0150"), Price(100)) == 200
    assert round_to_tick(Fraction(0), Price(100)) == 100


def test_invalid_admin_inputs_are_refused() -> None:
    with pytest.raises(PricingError) as err:
        AdminPricing(Decimal(0))
    assert err.value.code == "invalid_base_price"
    with pytest.raises(PricingError) as err:
        AdminPricing(Decimal(1), class_multipliers={"H": Decimal(0)})
    assert err.value.code == "invalid_multiplier"


def test_reference_falls_back_to_the_admin_price_until_the_tier_trades() -> None:
    tier = make_tier(tick=100)
    now = Timestamp(100 * HOUR)
    ref = reference_price(tier, Price(120_000), [], now)
    assert (ref.price, ref.source, ref.trades_used) == (120_000, ReferenceSource.ADMIN, 0)
    stale = [trade(200_000, 1_000_000, 10 * HOUR)]  # older than the 24 h lookback
    assert reference_price(tier, Price(120_000), stale, now).source is ReferenceSource.ADMIN


def test_reference_is_the_trimmed_vwap_of_recent_trades_rounded_to_tick() -> None:
    tier = make_tier(tick=100)
    now = Timestamp(100 * HOUR)
    trades = [
        trade(130_000, 1_000_000, now - 3 * HOUR),
        trade(131_000, 3_000_000, now - 2 * HOUR),
        trade(990_000, 1_000, now - HOUR),  # fat finger, trimmed
    ]
    ref = reference_price(tier, Price(120_000), trades, now)
    # (130,000 x 1 + 131,000 x 3) / 4 = 130,750 -> 130,800 on a 100 tick
    assert (ref.price, ref.source, ref.trades_used) == (130_800, ReferenceSource.TRADES, 2)
    only_last = reference_price(tier, Price(120_000), trades[:2], now, max_trades=1)
    assert only_last.price == 131_000


def test_trimming_keeps_all_trades_of_a_one_price_market_within_the_floor() -> None:
    points = [(Fraction(100_000), Fraction(1))] * 5 + [(Fraction(101_000), Fraction(1))]
    index = trimmed_vwap(points)
    assert index is not None
    assert index.trades_dropped == 0  # 1 % away: within 3 x the 0.5 % floor


def test_tier_index_uses_the_trailing_window() -> None:
    now = Timestamp(50 * HOUR)
    trades = [trade(100_000, 1_000, 10 * HOUR), trade(110_000, 1_000, 40 * HOUR)]
    index = tier_index(trades, now)
    assert index is not None and index.value == 110_000
    assert tier_index([], now) is None


def test_family_index_normalizes_to_scu() -> None:
    # fp16 tier at 100,000 per PF·h (1 SCU per PF·h) and an fp8 tier at 52,000 per PF·h
    # (half an SCU per PF·h -> 104,000 per SCU), equal SCU volumes.
    now = Timestamp(10 * HOUR)
    trades = [
        trade(100_000, 2_000_000, now - 1, "FP16-A"),
        trade(52_000, 4_000_000, now - 1, "FP8-A"),
        trade(10, 4_000_000, now - 1, "FP64-A"),  # another family: ignored
    ]
    tier_of = {Symbol("FP16-A"): "fp16-tier", Symbol("FP8-A"): "fp8-tier"}
    factors = {"fp16-tier": Fraction(1), "fp8-tier": Fraction(1, 2)}
    index = family_index(trades, tier_of, factors, now)
    assert index is not None
    assert index.value == 102_000
    assert index.volume == 4_000_000  # micro-SCU


prices = st.integers(min_value=1, max_value=10**9)
quantities = st.integers(min_value=1, max_value=10**9)
points_strategy = st.lists(
    st.tuples(prices.map(Fraction), quantities.map(Fraction)), min_size=1, max_size=40
)


@given(points_strategy, st.integers(1, 5))
def test_index_is_within_the_range_of_the_trades_it_includes(
    points: list[tuple[Fraction, Fraction]], k: int
) -> None:
    index = trimmed_vwap(points, k)
    assert index is not None
    assert index.low <= index.value <= index.high
    all_prices = [p for p, _ in points]
    assert min(all_prices) <= index.low and index.high <= max(all_prices)
    assert index.trades_used + index.trades_dropped == len(points)
    assert index.trades_used >= 1


@given(
    st.lists(st.integers(95_000, 105_000), min_size=10, max_size=40),
    st.lists(st.integers(1_000_000, 10_000_000), min_size=1, max_size=3),
    st.lists(st.integers(1, 1_000), min_size=0, max_size=3),
)
def test_trimming_drops_planted_outliers(
    normal: list[int], high: list[int], low: list[int]
) -> None:
    points = [(Fraction(p), Fraction(1)) for p in normal]
    planted = [(Fraction(p), Fraction(10**6)) for p in high + low]
    index = trimmed_vwap(points + planted)
    assert index is not None
    assert index.trades_dropped >= len(planted)
    assert 95_000 <= index.low <= index.value <= index.high <= 105_000
