"""Metering: accelerator-hours -> PF·h, SCU, operations, energy; exact arithmetic only.

* 1 PF·h = 10**15 operations per second for one hour = 3.6 x 10**18 operations.
* 1 SCU = 1 PF·h of fp16 dense (bf16 where a part publishes no fp16 figure).
* Exchange quantities are integers of micro-PF·h (``exchange.units.Quantity``). Capacity
  and delivered amounts are rounded DOWN to a whole micro-PF·h: a seller is never credited
  with compute it did not provide.

All arithmetic is ``int`` and ``fractions.Fraction``; figures enter from ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from exchange.products import Precision
from exchange.refusals import Refusal
from exchange.units import QUANTITY_DECIMALS, Quantity
from pricing.catalog import AcceleratorModel
from pricing.errors import PricingError

__all__ = [
    "OPS_PER_PF_HOUR",
    "PF_HOURS_PER_PF_DAY",
    "QUANTITY_UNITS_PER_PF_HOUR",
    "Conversion",
    "Exact",
    "convert",
    "delivered_quantity",
    "energy_kwh",
    "pf_days_to_pf_hours",
    "pf_hours",
    "quantity_to_pf_hours",
    "rated_pf",
    "scu_peak_pf",
    "to_quantity",
]

#: Operations in one PF·h: 10**15 per second x 3600 seconds.
OPS_PER_PF_HOUR = 3_600 * 10**15
PF_HOURS_PER_PF_DAY = 24
#: Exchange quantity units (micro-PF·h) per PF·h.
QUANTITY_UNITS_PER_PF_HOUR = 10**QUANTITY_DECIMALS

#: Exact numbers accepted as inputs: never float.
Exact = int | Fraction | Decimal


def _exact(value: Exact, name: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | Fraction | Decimal):
        raise PricingError(
            Refusal.INVALID_NUMBER, name=name, expected="an int, Fraction or Decimal"
        )
    if isinstance(value, Decimal) and not value.is_finite():
        raise PricingError(Refusal.INVALID_NUMBER, name=name, expected="finite")
    return Fraction(value)


def _non_negative(value: Exact, name: str) -> Fraction:
    exact = _exact(value, name)
    if exact < 0:
        raise PricingError(
            Refusal.NEGATIVE_VALUE, subject=name, problem=f"must not be negative, got {value}"
        )
    return exact


def scu_peak_pf(model: AcceleratorModel, *, allow_unconfirmed: bool = True) -> Fraction:
    """Dense fp16 peak in PFLOPS (bf16 when no fp16 figure exists): PF·h per SCU-hour."""
    for precision in (Precision.FP16, Precision.BF16):
        peak = model.peak_pf(precision) if allow_unconfirmed else model.billable_peak_pf(precision)
        if peak is not None:
            return peak
    raise PricingError(
        Refusal.UNKNOWN_FIGURE, model_id=model.id, figure="usable fp16 or bf16 dense peak"
    )


def rated_pf(
    model: AcceleratorModel,
    precision: Precision,
    *,
    arithmetic_intensity: Exact | None = None,
    efficiency: Exact | None = None,
    allow_unconfirmed: bool = False,
) -> Fraction:
    """Rated PFLOPS of one device for a tier.

    Dense peak at ``precision``; with an arithmetic intensity I (FLOP per byte) the roofline
    ``min(peak, I x bandwidth)``; then scaled by a measured efficiency in (0, 1]. Unknown
    figures raise ``unknown_figure``; U-graded figures raise ``unconfirmed_figure`` unless
    the model is confirmed or ``allow_unconfirmed`` (estimates, never billing).
    """
    peak = model.peak_pf(precision)
    if peak is None:
        raise PricingError(
            Refusal.UNKNOWN_FIGURE, model_id=model.id, figure=f"dense {precision.value} peak"
        )
    if not allow_unconfirmed and not model.is_usable(precision.value):
        raise PricingError(
            Refusal.UNCONFIRMED_FIGURE, model_id=model.id, figure=f"{precision.value} peak"
        )
    rated = peak
    if arithmetic_intensity is not None:
        intensity = _exact(arithmetic_intensity, "arithmetic_intensity")
        if intensity <= 0:
            raise PricingError(Refusal.INVALID_INTENSITY)
        bandwidth = model.memory_bandwidth_gbs
        if bandwidth is None:
            raise PricingError(
                Refusal.UNKNOWN_FIGURE, model_id=model.id, figure="memory bandwidth figure"
            )
        if not allow_unconfirmed and not model.is_usable("memory_bandwidth_gbs"):
            raise PricingError(Refusal.UNCONFIRMED_FIGURE, model_id=model.id, figure="bandwidth")
        # I FLOP/byte x B GB/s = I x B x 10**9 FLOP/s = I x B / 10**6 PFLOPS
        rated = min(peak, intensity * Fraction(bandwidth) / 10**6)
    if efficiency is not None:
        factor = _exact(efficiency, "efficiency")
        if not 0 < factor <= 1:
            raise PricingError(Refusal.INVALID_EFFICIENCY)
        rated *= factor
    return rated


def pf_hours(rated_pf_per_device: Exact, count: int, hours: Exact) -> Fraction:
    """PF·h delivered by ``count`` devices of ``rated_pf_per_device`` over ``hours``."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise PricingError(Refusal.INVALID_COUNT, reason="count must be a non-negative integer")
    rated = _non_negative(rated_pf_per_device, "rated_pf")
    return rated * count * _non_negative(hours, "hours")


def energy_kwh(model: AcceleratorModel, count: int, hours: Exact) -> Fraction:
    """IT energy at TDP in kWh: TDP_W x count x hours / 1000."""
    if model.tdp_w is None:
        raise PricingError(Refusal.UNKNOWN_FIGURE, model_id=model.id, figure="TDP figure")
    return pf_hours(Fraction(model.tdp_w), count, hours) / 1000


def pf_days_to_pf_hours(pf_days: Exact) -> Fraction:
    return _exact(pf_days, "pf_days") * PF_HOURS_PER_PF_DAY


def to_quantity(pf_hours_value: Exact) -> Quantity:
    """PF·h -> exchange quantity units (micro-PF·h), rounded DOWN (toward zero)."""
    value = _non_negative(pf_hours_value, "pf_hours")
    return Quantity(int(value * QUANTITY_UNITS_PER_PF_HOUR))


def quantity_to_pf_hours(quantity: Quantity) -> Fraction:
    return Fraction(quantity, QUANTITY_UNITS_PER_PF_HOUR)


def delivered_quantity(
    reports: Iterable[tuple[int, Fraction]], contract_quantity: Quantity
) -> Quantity:
    """Delivered quantity from (device-seconds, rated PF per device) reports.

    The exact sum of device-seconds x rated PF / 3600 over all reports, rounded down to a
    micro-PF·h, capped at the contract quantity.
    """
    total = Fraction(0)
    for device_seconds, rated in reports:
        if isinstance(device_seconds, bool) or not isinstance(device_seconds, int):
            raise PricingError(
                Refusal.INVALID_DEVICE_SECONDS, reason="device-seconds must be an integer"
            )
        if device_seconds < 0:
            raise PricingError(
                Refusal.NEGATIVE_VALUE, subject="device-seconds", problem="must not be negative"
            )
        total += Fraction(device_seconds) * _non_negative(rated, "rated_pf") / 3600
    if contract_quantity < 0:
        raise PricingError(
            Refusal.NEGATIVE_VALUE, subject="contract quantity", problem="must not be negative"
        )
    return Quantity(min(to_quantity(total), contract_quantity))


@dataclass(frozen=True, slots=True)
class Conversion:
    """model x count x hours at a precision, in every unit the exchange reports."""

    model_id: str
    precision: Precision
    count: int
    hours: Fraction
    rated_pf: Fraction
    pf_hours: Fraction
    quantity: Quantity
    scu: Fraction | None
    operations: Fraction
    energy_kwh: Fraction | None

    @property
    def pf_days(self) -> Fraction:
        return self.pf_hours / PF_HOURS_PER_PF_DAY


def convert(
    model: AcceleratorModel,
    count: int,
    hours: Exact,
    precision: Precision = Precision.FP16,
    *,
    arithmetic_intensity: Exact | None = None,
    efficiency: Exact | None = None,
    allow_unconfirmed: bool = True,
) -> Conversion:
    """Exact conversion of model x count x hours. SCU counts the fp16 dense peak whatever
    the precision (None without a 16-bit figure); energy is at TDP (None when unknown)."""
    rated = rated_pf(
        model,
        precision,
        arithmetic_intensity=arithmetic_intensity,
        efficiency=efficiency,
        allow_unconfirmed=allow_unconfirmed,
    )
    amount = pf_hours(rated, count, hours)
    exact_hours = _non_negative(hours, "hours")
    try:
        scu: Fraction | None = pf_hours(
            scu_peak_pf(model, allow_unconfirmed=allow_unconfirmed), count, exact_hours
        )
    except PricingError:
        scu = None  # a part with no 16-bit figure has no SCU equivalent
    energy = energy_kwh(model, count, exact_hours) if model.tdp_w is not None else None
    return Conversion(
        model_id=model.id,
        precision=precision,
        count=count,
        hours=exact_hours,
        rated_pf=rated,
        pf_hours=amount,
        quantity=to_quantity(amount),
        scu=scu,
        operations=amount * OPS_PER_PF_HOUR,
        energy_kwh=energy,
    )
