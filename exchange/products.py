"""Products: precision, green grade, tier and instrument (tier x delivery window)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from exchange.ids import Symbol, Timestamp
from exchange.units import MAX_PRICE, MAX_QUANTITY, Price, Quantity

__all__ = [
    "HOUR_US",
    "DeliveryWindow",
    "GreenGrade",
    "Instrument",
    "Precision",
    "Tier",
    "TierError",
    "TierStatus",
]

HOUR_US = 3_600_000_000


class Precision(StrEnum):
    """Numeric precision a PF·h is counted at (always dense, never with sparsity)."""

    FP64 = "fp64"
    FP32 = "fp32"
    TF32 = "tf32"
    BF16 = "bf16"
    FP16 = "fp16"
    FP8 = "fp8"
    INT8 = "int8"
    INT4 = "int4"


class GreenGrade(IntEnum):
    """Site carbon grade, 5A best. Comparisons read naturally: ``grade >= GreenGrade.A4``."""

    A1 = 1
    A2 = 2
    A3 = 3
    A4 = 4
    A5 = 5

    @property
    def label(self) -> str:
        return f"{self.value}A"

    @classmethod
    def parse(cls, text: str) -> GreenGrade:
        t = text.strip().upper()
        if len(t) == 2 and t[1] == "A" and t[0] in "12345":
            return cls(int(t[0]))
        raise ValueError(f"unknown green grade {text!r}; expected 1A to 5A")


class TierStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    RETIRED = "retired"


class TierError(ValueError):
    """A tier whose parameters contradict each other."""


@dataclass(frozen=True, slots=True)
class Tier:
    """A standard product: what one PF·h of it means and how it trades.

    Sizes are in the fixed minor units of ``exchange.units``: ``tick`` in price units,
    ``lot``, ``min_quantity`` and ``max_quantity`` in quantity units. Percentages are basis
    points (1 bp = 0.01 %), so no float enters.
    """

    code: str
    precision: Precision
    gpu_class: str
    tick: Price
    lot: Quantity
    min_quantity: Quantity
    max_quantity: Quantity
    price_band_bps: int
    maker_fee_bps: int = 0
    taker_fee_bps: int = 0
    min_green_grade: GreenGrade | None = None
    regions: tuple[str, ...] = ()
    shortfall_penalty_bps: int = 0
    arithmetic_intensity: int | None = None
    window_hours: int = 1
    list_ahead_hours: int = 24
    gate_closure_minutes: int = 60
    reference_price: Price | None = field(default=None)

    def __post_init__(self) -> None:
        problems = []
        if not self.code or len(self.code) > 32:
            problems.append("code must be 1 to 32 characters")
        if not 0 < self.tick <= MAX_PRICE:
            problems.append("tick must be positive and at most the largest price")
        if self.lot <= 0:
            problems.append("lot must be positive")
        lot_ok = self.lot > 0
        if self.min_quantity <= 0 or (lot_ok and self.min_quantity % self.lot):
            problems.append("min_quantity must be a positive multiple of the lot")
        if self.max_quantity < self.min_quantity or (lot_ok and self.max_quantity % self.lot):
            problems.append("max_quantity must be a multiple of the lot, >= min_quantity")
        if self.max_quantity > MAX_QUANTITY:
            problems.append("max_quantity is above the largest quantity")
        if not 0 < self.price_band_bps <= 10_000:
            problems.append("price_band_bps must be in (0, 10000]")
        for name in ("maker_fee_bps", "taker_fee_bps"):
            if not 0 <= getattr(self, name) <= 1_000:
                problems.append(f"{name} must be in [0, 1000]")
        if not 0 <= self.shortfall_penalty_bps <= 10_000:
            problems.append("shortfall_penalty_bps must be in [0, 10000]")
        if self.arithmetic_intensity is not None and self.arithmetic_intensity <= 0:
            problems.append("arithmetic_intensity must be positive")
        if not 1 <= self.window_hours <= 24:
            problems.append("window_hours must be in [1, 24]")
        if not 0 <= self.list_ahead_hours <= 24 * 366:
            problems.append("list_ahead_hours must be in [0, 8784]")
        if not 0 <= self.gate_closure_minutes <= 24 * 60:
            problems.append("gate_closure_minutes must be in [0, 1440]")
        if self.reference_price is not None and (
            self.reference_price <= 0 or (self.tick > 0 and self.reference_price % self.tick)
        ):
            problems.append("reference_price must be a positive multiple of the tick")
        if self.reference_price is not None and self.reference_price > MAX_PRICE:
            problems.append("reference_price is above the largest price")
        if problems:
            raise TierError("; ".join(problems))


@dataclass(frozen=True, slots=True)
class DeliveryWindow:
    """Half-open interval [start, end) of delivery, in exchange microseconds."""

    start: Timestamp
    end: Timestamp

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("a delivery window must end after it starts")

    @property
    def hours(self) -> int:
        return (self.end - self.start) // HOUR_US


@dataclass(frozen=True, slots=True)
class Instrument:
    """Tier x delivery window. Its mutable lifecycle state lives in the engine."""

    symbol: Symbol
    tier: Tier
    window: DeliveryWindow
    gate_closure: Timestamp
