"""Hardware models, GPU classes, tiers and instruments."""

from __future__ import annotations

from api.responses.common import (
    GreenGrade,
    InstrumentState,
    Precision,
    Quality,
    Region,
    ResponseModel,
    TierStatus,
)

__all__ = [
    "GpuClassOut",
    "HardwareOut",
    "InstrumentDetailOut",
    "InstrumentOut",
    "TierOut",
]


class HardwareOut(ResponseModel):
    id: str
    vendor: str
    model: str
    peak_tflops: dict[Precision, str]
    memory_gb: str | None
    memory_bandwidth_gbs: str | None
    tdp_w: str | None
    source: str
    quality: Quality
    figure_quality: dict[str, Quality]
    confirmed: bool


class GpuClassOut(ResponseModel):
    code: str
    name: str
    precision: Precision
    min_dense_tflops: str
    min_memory_gb: str
    min_memory_bandwidth_gbs: str
    vendors: list[str] | None
    models: list[str] | None
    members: list[str]


class TierOut(ResponseModel):
    code: str
    precision: Precision
    gpu_class: str
    min_green_grade: GreenGrade | None
    regions: list[Region] | None
    tick_size: str
    lot_size: str
    min_quantity: str
    max_quantity: str
    price_band_pct: str
    maker_fee_bps: int
    taker_fee_bps: int
    shortfall_penalty_pct: str
    reference_price: str
    admin_reference_price: str
    arithmetic_intensity: int | None
    window_hours: int
    list_ahead_hours: int
    gate_closure_minutes: int
    status: TierStatus


class InstrumentOut(ResponseModel):
    symbol: str
    tier: str
    delivery_start: str
    delivery_end: str
    gate_closure: str
    state: InstrumentState


class InstrumentDetailOut(InstrumentOut):
    """One instrument with its book's best prices, last trade and book sequence."""

    best_bid: str | None
    best_ask: str | None
    last_price: str | None
    reference_price: str | None
    sequence: int
