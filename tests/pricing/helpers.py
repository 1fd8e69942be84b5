"""Builders shared by the pricing tests."""

from __future__ import annotations

from exchange.ids import Symbol, Timestamp
from exchange.products import GreenGrade, Precision, Tier
from exchange.units import Price, Quantity
from pricing import TradePrint


def make_tier(
    *,
    precision: Precision = Precision.FP16,
    gpu_class: str = "H",
    tick: int = 100,
    min_green_grade: GreenGrade | None = None,
    regions: tuple[str, ...] = (),
    arithmetic_intensity: int | None = None,
) -> Tier:
    return Tier(
        code="FP16-H",
        precision=precision,
        gpu_class=gpu_class,
        tick=Price(tick),
        lot=Quantity(1_000),
        min_quantity=Quantity(1_000),
        max_quantity=Quantity(10**12),
        price_band_bps=1_000,
        min_green_grade=min_green_grade,
        regions=regions,
        arithmetic_intensity=arithmetic_intensity,
    )


def trade(price: int, quantity: int, ts: int, symbol: str = "FP16-H-4A-20261122T10") -> TradePrint:
    return TradePrint(Symbol(symbol), Price(price), Quantity(quantity), Timestamp(ts))
