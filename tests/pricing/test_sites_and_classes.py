from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.products import GreenGrade, Precision
from pricing import (
    MEE_NBS_2022,
    Catalog,
    EmissionFactorSet,
    GpuClass,
    Pool,
    PricingError,
    Region,
    capacity_pf_hours,
    capacity_quantity,
    class_members,
    confirm_model,
    factor_set_in_effect,
    is_member,
    load_builtin_catalog,
    make_site,
    pool_ineligibility,
)
from tests.pricing.helpers import make_tier

CATALOG = load_builtin_catalog()
H_CLASS = GpuClass(
    code="H",
    name="Hopper-class training",
    precision=Precision.FP16,
    min_dense_tflops=Decimal(700),
    min_memory_gb=Decimal(80),
    min_memory_bandwidth_gbs=Decimal(2000),
)


def test_class_members_follow_the_rule(catalog: Catalog) -> None:
    assert class_members(H_CLASS, catalog) == (
        "amd-instinct-mi300x",
        "nvidia-b200-hgx",
        "nvidia-gb200",
        "nvidia-h100-pcie-80gb",
        "nvidia-h100-sxm5-80gb",
        "nvidia-h800-sxm5-80gb",
    )
    nvidia_only = replace(H_CLASS, vendors=frozenset({"nvidia"}))
    assert "amd-instinct-mi300x" not in class_members(nvidia_only, catalog)
    listed = replace(H_CLASS, models=frozenset({"nvidia-h100-sxm5-80gb", "nvidia-a100-sxm4-80gb"}))
    assert class_members(listed, catalog) == ("nvidia-h100-sxm5-80gb",)


def test_unknown_memory_does_not_meet_a_positive_minimum(catalog: Catalog) -> None:
    rule = GpuClass("X", "x", Precision.FP16, Decimal(100), min_memory_bandwidth_gbs=Decimal(1))
    assert "huawei-ascend-910a" not in class_members(rule, catalog)  # bandwidth unknown
    assert "huawei-ascend-910a" in class_members(
        replace(rule, min_memory_bandwidth_gbs=Decimal(0)), catalog
    )


def test_membership_is_recomputed_when_the_catalog_changes(catalog: Catalog) -> None:
    smaller = {k: v for k, v in catalog.items() if k != "nvidia-gb200"}
    assert "nvidia-gb200" in class_members(H_CLASS, catalog)
    assert "nvidia-gb200" not in class_members(H_CLASS, smaller)


def test_invalid_class_rules_are_refused() -> None:
    with pytest.raises(PricingError) as err:
        GpuClass("X", "x", Precision.FP16, Decimal(-1))
    assert err.value.code == "invalid_class"


rules = st.builds(
    GpuClass,
    code=st.just("R"),
    name=st.just("rule"),
    precision=st.sampled_from(list(Precision)),
    min_dense_tflops=st.decimals(min_value=0, max_value=3000, places=1),
    min_memory_gb=st.decimals(min_value=0, max_value=200, places=0),
    min_memory_bandwidth_gbs=st.decimals(min_value=0, max_value=9000, places=0),
    vendors=st.none() | st.frozensets(st.sampled_from(["NVIDIA", "AMD", "Huawei"]), min_size=1),
    models=st.none() | st.frozensets(st.sampled_from(sorted(CATALOG)), min_size=1),
)


@given(rules)
def test_class_membership_is_consistent_with_its_rule(rule: GpuClass) -> None:
    members = class_members(rule, CATALOG)
    assert list(members) == sorted(members)
    for model_id, model in CATALOG.items():
        peak = model.peak(rule.precision)
        satisfies = (
            peak is not None
            and peak >= rule.min_dense_tflops
            and (rule.min_memory_gb == 0 or (model.memory_gb or 0) >= rule.min_memory_gb)
            and (
                rule.min_memory_bandwidth_gbs == 0
                or (model.memory_bandwidth_gbs or 0) >= rule.min_memory_bandwidth_gbs
            )
            and (rule.vendors is None or model.vendor in rule.vendors)
            and (rule.models is None or model_id in rule.models)
        )
        assert (model_id in members) == satisfies == is_member(rule, model)


def test_site_emission_factor_defaults_from_the_region_and_records_its_version() -> None:
    site = make_site("s1", "east", Decimal("1.25"), Decimal(0))
    assert site.emission_factor == Decimal("0.5617")
    assert site.emission_factor_version == "mee-nbs-2022"
    assert site.carbon_kg_per_kwh == Fraction("0.702125")
    own = make_site("s2", Region.EAST, Decimal("1.25"), Decimal(0), Decimal("0.4"))
    assert own.emission_factor_version == "site"


def test_2022_factors_match_the_published_table() -> None:
    assert MEE_NBS_2022.national == Decimal("0.5366")
    assert {r.value: str(f) for r, f in MEE_NBS_2022.factors.items()} == {
        "north": "0.6776",
        "east": "0.5617",
        "central": "0.5395",
        "northwest": "0.5857",
        "northeast": "0.5564",
        "south": "0.3869",
        "southwest": "0.2268",
    }


def test_a_newer_factor_set_applies_from_its_date_without_rewriting_old_sites() -> None:
    newer = EmissionFactorSet(
        "test-2030",
        date(2030, 1, 1),
        "test",
        Decimal("0.4"),
        {r: Decimal("0.3") for r in Region},
    )
    sets = (MEE_NBS_2022, newer)
    old_site = make_site("s1", "east", Decimal("1.2"), Decimal(0))
    assert factor_set_in_effect(date(2029, 12, 31), sets) is MEE_NBS_2022
    assert factor_set_in_effect(date(2030, 1, 1), sets) is newer
    new_site = make_site("s2", "east", Decimal("1.2"), Decimal(0), factor_set=newer)
    assert (old_site.emission_factor, old_site.emission_factor_version) == (
        Decimal("0.5617"),
        "mee-nbs-2022",
    )
    assert (new_site.emission_factor, new_site.emission_factor_version) == (
        Decimal("0.3"),
        "test-2030",
    )
    with pytest.raises(PricingError) as err:
        factor_set_in_effect(date(2000, 1, 1), sets)
    assert err.value.code == "no_emission_factors"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("mars", Decimal("1.2"), Decimal(0)), "invalid_region"),
        (("east", Decimal("0.99"), Decimal(0)), "invalid_pue"),
        (("east", Decimal("3.01"), Decimal(0)), "invalid_pue"),
        (("east", Decimal("1.2"), Decimal("1.01")), "invalid_green_share"),
        (("east", Decimal("1.2"), Decimal("-0.1")), "invalid_green_share"),
    ],
)
def test_invalid_sites_are_refused(args: tuple[str, Decimal, Decimal], code: str) -> None:
    with pytest.raises(PricingError) as err:
        make_site("s", *args)
    assert err.value.code == code


SITES = {
    "shanghai": make_site("shanghai", "east", Decimal("1.25"), Decimal(0)),  # 2A
    "ningxia": make_site("ningxia", "northwest", Decimal("1.15"), Decimal("0.8")),  # 5A
}
MEMBERS = class_members(H_CLASS, CATALOG)


def test_capacity_sums_eligible_pools_for_the_window() -> None:
    pools = [
        Pool("p1", "shanghai", "nvidia-h100-sxm5-80gb", 8),
        Pool("p2", "ningxia", "nvidia-h800-sxm5-80gb", 16),
        Pool("p3", "ningxia", "nvidia-a100-sxm4-80gb", 100),  # not in the class
    ]
    tier = make_tier()
    assert capacity_pf_hours(pools, SITES, CATALOG, tier, MEMBERS, 2) == Fraction("0.9894") * 48
    assert capacity_quantity(pools, SITES, CATALOG, tier, MEMBERS, 2) == 47_491_200
    green_tier = make_tier(min_green_grade=GreenGrade.A4)
    assert (
        capacity_pf_hours(pools, SITES, CATALOG, green_tier, MEMBERS, 1) == Fraction("0.9894") * 16
    )
    east_tier = make_tier(regions=("east",))
    assert capacity_pf_hours(pools, SITES, CATALOG, east_tier, MEMBERS, 1) == Fraction("0.9894") * 8


def test_capacity_uses_the_roofline_and_the_measured_efficiency() -> None:
    pools = [Pool("p1", "shanghai", "nvidia-h100-sxm5-80gb", 10)]
    tier = make_tier(arithmetic_intensity=100)  # 100 x 3350 GB/s = 0.335 PF
    assert capacity_pf_hours(pools, SITES, CATALOG, tier, MEMBERS, 1) == Fraction("3.35")
    efficiency = {"nvidia-h100-sxm5-80gb": Fraction(9, 10)}
    assert capacity_pf_hours(pools, SITES, CATALOG, tier, MEMBERS, 1, efficiency) == Fraction(
        "3.015"
    )


def test_a_pool_with_unconfirmed_figures_counts_only_after_confirmation() -> None:
    rule = GpuClass("A", "Ascend", Precision.FP16, Decimal(300))
    members = class_members(rule, CATALOG)
    pool = Pool("p", "shanghai", "huawei-ascend-910b3", 4)
    tier = make_tier(gpu_class="A")
    assert pool_ineligibility(pool, SITES, CATALOG, tier, members) == "unconfirmed_figure"
    assert capacity_pf_hours([pool], SITES, CATALOG, tier, members, 1) == 0
    confirmed = confirm_model(CATALOG, "huawei-ascend-910b3")
    assert pool_ineligibility(pool, SITES, confirmed, tier, members) is None
    assert capacity_pf_hours([pool], SITES, confirmed, tier, members, 1) == Fraction("1.252")


def test_pool_ineligibility_names_the_reason() -> None:
    tier = make_tier(min_green_grade=GreenGrade.A4, regions=("northwest",))
    assert (
        pool_ineligibility(
            Pool("p", "nowhere", "nvidia-h100-sxm5-80gb"), SITES, CATALOG, tier, MEMBERS
        )
        == "unknown_site"
    )
    assert (
        pool_ineligibility(
            Pool("p", "shanghai", "nvidia-h100-sxm5-80gb"), SITES, CATALOG, tier, MEMBERS
        )
        == "green_grade_too_low"
    )
    assert (
        pool_ineligibility(
            Pool("p", "ningxia", "nvidia-a100-sxm4-80gb"), SITES, CATALOG, tier, MEMBERS
        )
        == "not_in_gpu_class"
    )
    assert (
        pool_ineligibility(
            Pool("p", "ningxia", "nvidia-h100-sxm5-80gb"), SITES, CATALOG, tier, MEMBERS
        )
        is None
    )
    east = make_tier(regions=("east",))
    assert (
        pool_ineligibility(
            Pool("p", "ningxia", "nvidia-h100-sxm5-80gb"), SITES, CATALOG, east, MEMBERS
        )
        == "region_not_allowed"
    )


def test_a_pool_holds_a_positive_count() -> None:
    with pytest.raises(PricingError):
        Pool("p", "s", "m", 0)
