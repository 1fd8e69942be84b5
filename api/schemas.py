"""Request bodies. Unknown fields are refused; server-set fields (owner, status, fees,
balances) do not exist in a request body, so they can never be bound from a request.
Response bodies are in api.responses."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

__all__ = [
    "MAX_ADVANCE_SECONDS",
    "AccountIn",
    "AmendIn",
    "AmountIn",
    "BatchIn",
    "ClockIn",
    "DeliveryIn",
    "GpuClassIn",
    "HardwareIn",
    "OrderIn",
    "PoolIn",
    "SiteIn",
    "TierIn",
    "TierPatch",
]

#: A decimal travels as a JSON string: "12.5". Length-bounded before any parsing.
Dec = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Code = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9-]+$"
    ),
]
Symbol = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Precision = Literal["fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4"]
Region = Literal["north", "northeast", "east", "central", "northwest", "south", "southwest"]
# The wire's words, shared by request bodies and response bodies (api.responses).
Role = Literal["trader", "admin"]
Side = Literal["buy", "sell"]
OrderKind = Literal["limit", "market"]
TimeInForce = Literal["gtc", "gtd", "ioc", "fok"]
Stp = Literal["cancel_newest", "cancel_oldest", "cancel_both", "decrement"]
Quality = Literal["V", "S", "D", "U"]
GreenGrade = Literal["1A", "2A", "3A", "4A", "5A"]
TierStatus = Literal["active", "suspended", "retired"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AccountIn(_In):
    name: Name
    role: Role = "trader"


class AmountIn(_In):
    amount: Dec


class OrderIn(_In):
    instrument: Symbol
    side: Side
    type: OrderKind = "limit"
    price: Dec | None = None
    quantity: Dec
    time_in_force: TimeInForce | None = None
    expire_time: Annotated[str, StringConstraints(max_length=40)] | None = None
    post_only: bool = False
    client_order_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    stp: Stp = "cancel_newest"


class BatchIn(_In):
    orders: list[OrderIn] = Field(min_length=1, max_length=100)


class AmendIn(_In):
    price: Dec | None = None
    quantity: Dec | None = None


class SiteIn(_In):
    name: Name
    region: Region
    location: Annotated[str, StringConstraints(max_length=200)] | None = None
    pue: Dec
    green_share: Dec
    emission_factor: Dec | None = None


class PoolIn(_In):
    hardware_id: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    count: int = Field(ge=1, le=1_000_000)


class DeliveryIn(_In):
    pool_id: int = Field(ge=1, le=2**62)
    device_seconds: int = Field(ge=0, le=10**13)


class HardwareIn(_In):
    vendor: Name
    model: Name
    peak_tflops: dict[Precision, Dec] = Field(min_length=1)
    with_sparsity: list[Precision] = []
    fp16_accumulation: list[Precision] = []
    memory_gb: Dec | None = None
    memory_bandwidth_gbs: Dec | None = None
    tdp_w: Dec | None = None
    source: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    quality: Quality = "U"
    id: Annotated[str, StringConstraints(min_length=1, max_length=80)] | None = None
    confirmed: bool = False


class GpuClassIn(_In):
    code: Code
    name: Name
    precision: Precision
    min_dense_tflops: Dec
    min_memory_gb: Dec = "0"
    min_memory_bandwidth_gbs: Dec = "0"
    vendors: list[Name] | None = None
    models: list[Annotated[str, StringConstraints(min_length=1, max_length=80)]] | None = None


class TierIn(_In):
    code: Code
    precision: Precision
    gpu_class: Code
    min_green_grade: GreenGrade | None = None
    regions: list[Region] | None = None
    tick_size: Dec
    lot_size: Dec
    min_quantity: Dec
    max_quantity: Dec
    price_band_pct: Dec
    maker_fee_bps: int = Field(ge=0, le=1000)
    taker_fee_bps: int = Field(ge=0, le=1000)
    shortfall_penalty_pct: Dec
    reference_price: Dec
    arithmetic_intensity: int | None = Field(default=None, ge=1, le=100_000)
    window_hours: int = Field(default=1, ge=1, le=24)
    list_ahead_hours: int = Field(default=24, ge=0, le=24 * 366)
    gate_closure_minutes: int = Field(default=60, ge=0, le=24 * 60)


class TierPatch(_In):
    status: TierStatus | None = None
    maker_fee_bps: int | None = Field(default=None, ge=0, le=1000)
    taker_fee_bps: int | None = Field(default=None, ge=0, le=1000)
    price_band_pct: Dec | None = None
    shortfall_penalty_pct: Dec | None = None
    reference_price: Dec | None = None
    list_ahead_hours: int | None = Field(default=None, ge=0, le=24 * 366)


#: The longest single clock advance: every listing and settlement due runs in that call.
MAX_ADVANCE_SECONDS = 10 * 366 * 86_400


class ClockIn(_In):
    advance_seconds: int | None = Field(default=None, ge=0, le=MAX_ADVANCE_SECONDS)
    to: Annotated[str, StringConstraints(max_length=40)] | None = None

    @model_validator(mode="after")
    def _one(self) -> ClockIn:
        if (self.advance_seconds is None) == (self.to is None):
            raise ValueError("give exactly one of advance_seconds and to")
        return self
