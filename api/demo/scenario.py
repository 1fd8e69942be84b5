"""The demo market's cast: GPU classes, tiers, seller sites, buyers and market makers.

Everything here is data plus a deterministic builder (:func:`build_scenario`): the same
``seed`` and ``traders`` give the same participants, pools and private values.

Prices are integers of :mod:`exchange.units` price units (0.0001 CNY per PF·h) and
quantities integers of quantity units (0.000001 PF·h), as everywhere in the exchange.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

from exchange.operations import CreateGpuClass, CreateTier
from exchange.units import Price, Quantity

__all__ = [
    "CLASSES",
    "LOT",
    "START",
    "START_US",
    "TIERS",
    "BuyerSpec",
    "MakerSpec",
    "Scenario",
    "SellerSpec",
    "SiteTemplate",
    "TierPlan",
    "build_scenario",
    "cny",
]

#: The demo's fixed start: the simulated clock never reads the wall clock.
START = datetime(2026, 11, 22, tzinfo=UTC)
START_US = int(START.timestamp()) * 1_000_000

PRICE_UNITS = 10_000  # price units per CNY
QTY_UNITS = 1_000_000  # quantity units per PF·h
#: Lot of every demo tier: 0.1 PF·h.
LOT = QTY_UNITS // 10
TICK = 100  # 0.01 CNY


def cny(value: str) -> int:
    """'12.5' CNY per PF·h -> price units (exact, for constants written as decimals)."""
    whole, _, frac = value.partition(".")
    return int(whole) * PRICE_UNITS + int(frac.ljust(4, "0")[:4] or 0)


# ---------------------------------------------------------------------- products
CLASSES: tuple[CreateGpuClass, ...] = (
    CreateGpuClass(
        code="TRAIN16",
        name="fp16 training class: >= 300 dense fp16 TFLOPS, >= 64 GB",
        precision="fp16",
        min_dense_tflops="300",
        min_memory_gb="64",
    ),
    CreateGpuClass(
        code="FP8",
        name="fp8 class: >= 250 dense fp8 TFLOPS, >= 80 GB",
        precision="fp8",
        min_dense_tflops="250",
        min_memory_gb="80",
    ),
    CreateGpuClass(
        code="INFER8",
        name="int8 inference class: >= 200 dense TOPS, >= 24 GB, >= 900 GB/s",
        precision="int8",
        min_dense_tflops="200",
        min_memory_gb="24",
        min_memory_bandwidth_gbs="900",
    ),
)


def _tier(
    code: str,
    precision: str,
    gpu_class: str,
    grade: str | None,
    ref: str,
    arithmetic_intensity: int | None = None,
) -> CreateTier:
    return CreateTier(
        code=code,
        precision=precision,
        gpu_class=gpu_class,
        min_green_grade=grade,
        tick=Price(TICK),
        lot=Quantity(LOT),
        min_quantity=Quantity(LOT),
        max_quantity=Quantity(100 * QTY_UNITS),
        price_band_bps=4_000,
        maker_fee_bps=5,
        taker_fee_bps=10,
        shortfall_penalty_bps=2_000,
        reference_price=Price(cny(ref)),
        list_ahead_hours=12,
        gate_closure_minutes=60,
        arithmetic_intensity=arithmetic_intensity,
    )


#: fp16 training capacity from 3A-or-better sites; fp8; bandwidth-bound int8 inference
#: rated by the roofline at 80 operations per byte.
TIERS: tuple[CreateTier, ...] = (
    _tier("FP16-TRN-3A", "fp16", "TRAIN16", "3A", "14"),
    _tier("FP8-TRN", "fp8", "FP8", None, "8"),
    _tier("INT8-INF-AI80", "int8", "INFER8", None, "18", arithmetic_intensity=80),
)
TIER_CODES = tuple(t.code for t in TIERS)


# ---------------------------------------------------------------------- sites
@dataclass(frozen=True, slots=True)
class TierPlan:
    """Share of a pool's hours its operator offers in one tier, and how many it owns."""

    tier: str
    share_pct: int


@dataclass(frozen=True, slots=True)
class SiteTemplate:
    key: str
    name: str
    region: str
    location: str
    pue: str
    green_share: str
    hardware_id: str
    devices: tuple[int, int]  # pool size range
    #: All-in marginal cost of running one device for one hour (power, depreciation,
    #: operations), CNY; the seller's cost per PF·h is this over the device's rated PF.
    device_hour_cost: str
    plans: tuple[TierPlan, ...]


SITES: tuple[SiteTemplate, ...] = (
    SiteTemplate(
        "sh-h100",
        "Shanghai Lingang",
        "east",
        "Shanghai",
        "1.25",
        "0",
        "nvidia-h100-sxm5-80gb",
        (24, 40),
        "9.0",
        (TierPlan("FP8-TRN", 60), TierPlan("INT8-INF-AI80", 40)),
    ),
    SiteTemplate(
        "nx-910b",
        "Ningxia Zhongwei",
        "northwest",
        "Zhongwei, Ningxia",
        "1.15",
        "1",
        "huawei-ascend-910b3",
        (48, 80),
        "4.2",
        (TierPlan("FP16-TRN-3A", 100),),
    ),
    SiteTemplate(
        "gz-a100",
        "Guizhou Gui'an",
        "southwest",
        "Gui'an, Guizhou",
        "1.30",
        "0.1",
        "nvidia-a100-sxm4-80gb",
        (48, 80),
        "3.0",
        (TierPlan("FP16-TRN-3A", 70), TierPlan("INT8-INF-AI80", 30)),
    ),
    SiteTemplate(
        "nm-h20",
        "Inner Mongolia Ulanqab",
        "north",
        "Ulanqab, Inner Mongolia",
        "1.20",
        "0.3",
        "nvidia-h20-96gb",
        (48, 80),
        "3.6",
        (TierPlan("INT8-INF-AI80", 70), TierPlan("FP8-TRN", 30)),
    ),
    SiteTemplate(
        "sz-4090",
        "Shenzhen Qianhai",
        "south",
        "Shenzhen",
        "1.40",
        "0",
        "nvidia-geforce-rtx-4090",
        (96, 160),
        "1.1",
        (TierPlan("INT8-INF-AI80", 100),),
    ),
)
#: Models an admin confirms before trading (U-graded catalog figures, checked on site).
CONFIRMED_MODELS = ("huawei-ascend-910b3",)


# ---------------------------------------------------------------------- participants
@dataclass(slots=True)
class SellerSpec:
    name: str
    site: SiteTemplate
    devices: int
    #: Fraction of device-seconds it reports (1 = full delivery, 0 = never reports).
    delivery_pct: int
    deposit: int  # money units (collateral for its sell orders)
    account_id: int = 0
    site_id: int = 0
    pool_id: int = 0


@dataclass(slots=True)
class BuyerSpec:
    name: str
    tier: str
    #: Mean demand per window (PF·h in quantity units) and value scale (price units).
    demand: int
    value_low_pct: int
    value_high_pct: int
    deposit: int  # money units; from build_scenario: how many windows of demand it can fund
    account_id: int = 0


@dataclass(slots=True)
class MakerSpec:
    """A market maker: an operator with its own pool and internal workloads, so a PF·h is
    worth the same to it bought or sold (its private value = its private cost)."""

    name: str
    tier: str
    site: SiteTemplate
    devices: int
    quote_lots: int
    max_position_lots: int
    half_spread_bps: int
    deposit: int
    account_id: int = 0
    site_id: int = 0
    pool_id: int = 0


@dataclass(slots=True)
class Scenario:
    seed: int
    days: int
    sellers: list[SellerSpec] = field(default_factory=list)
    buyers: list[BuyerSpec] = field(default_factory=list)
    makers: list[MakerSpec] = field(default_factory=list)


_MONEY_PER_CNY = 10**10


def build_scenario(seed: int, days: int, traders: int) -> Scenario:
    """``traders`` buyers and ``traders`` sellers (site templates in turn), three makers."""
    if traders < 1:
        raise ValueError("at least one buyer and one seller")
    rng = random.Random(f"suanli-demo:{seed}:cast")
    scenario = Scenario(seed, days)
    for i in range(traders):
        site = SITES[i % len(SITES)]
        lo, hi = site.devices
        # Every 4th seller under-delivers, every 6th never reports: they pay penalties.
        if i % 6 == 5:
            delivery = 0
        elif i % 4 == 3:
            delivery = rng.randint(60, 90)
        else:
            delivery = 100
        scenario.sellers.append(
            SellerSpec(
                name=f"seller-{i + 1:02d}-{site.key}",
                site=site,
                devices=rng.randint(lo, hi),
                delivery_pct=delivery,
                deposit=2_000_000 * _MONEY_PER_CNY,
            )
        )
    for i in range(traders):
        tier = TIER_CODES[i % len(TIER_CODES)]
        scenario.buyers.append(
            BuyerSpec(
                name=f"buyer-{i + 1:02d}-{tier.lower()}",
                tier=tier,
                demand=0,  # sized in agents.size_demand once supply is known
                value_low_pct=rng.randint(50, 70),
                value_high_pct=rng.randint(130, 165),
                deposit=rng.randint(24, 48),  # windows of full demand at the reference
            )
        )
    maker_sites = {"FP16-TRN-3A": SITES[2], "FP8-TRN": SITES[0], "INT8-INF-AI80": SITES[3]}
    for n, tier in enumerate(TIER_CODES, start=1):
        scenario.makers.append(
            MakerSpec(
                name=f"maker-{n}-{tier.lower()}",
                tier=tier,
                site=maker_sites[tier],
                devices=32,
                quote_lots=20,
                max_position_lots=90,
                half_spread_bps=300,
                deposit=1_000_000 * _MONEY_PER_CNY,
            )
        )
    return scenario
