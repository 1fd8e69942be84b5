"""SCU normalization: how many SCU one PF·h at a tier's precision is worth.

A PF·h at precision P takes ``1 / peak_P`` device-hours, which would have delivered
``peak_fp16 / peak_P`` SCU. That ratio differs by model (fp8 is 2x fp16 on Hopper, there
is no fp8 on an A100), so a tier uses one factor: the median, over the members of its GPU
class that have both figures, of ``peak_fp16 / peak_P`` (bf16 when a part has no fp16).
An admin may override it. Prices convert as ``price per SCU = price per PF·h / factor``
and quantities as ``SCU = PF·h x factor``.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

from exchange.products import Precision
from exchange.refusals import Refusal
from pricing.catalog import Catalog
from pricing.errors import PricingError
from pricing.metering import scu_peak_pf

__all__ = [
    "PRECISION_FAMILIES",
    "median",
    "precision_family",
    "scu_per_pf_hour",
]

#: Precisions whose PF·h are normalized into one SCU index.
PRECISION_FAMILIES: dict[str, frozenset[Precision]] = {
    "fp16": frozenset({Precision.FP16, Precision.BF16}),
    "fp8": frozenset({Precision.FP8, Precision.INT8}),
    "fp32": frozenset({Precision.FP32, Precision.TF32}),
    "fp64": frozenset({Precision.FP64}),
    "int4": frozenset({Precision.INT4}),
}


def precision_family(precision: Precision) -> str:
    for name, members in PRECISION_FAMILIES.items():
        if precision in members:
            return name
    raise PricingError(Refusal.UNKNOWN_PRECISION, precision=precision.value)


def median(values: Iterable[Fraction]) -> Fraction:
    """Exact median; the mean of the two middle values for an even count."""
    ordered = sorted(values)
    if not ordered:
        raise PricingError(Refusal.EMPTY_INPUT)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def scu_per_pf_hour(precision: Precision, members: Iterable[str], catalog: Catalog) -> Fraction:
    """Median over class members of dense fp16 peak / dense peak at ``precision``."""
    ratios: list[Fraction] = []
    for model_id in members:
        model = catalog[model_id]
        peak = model.peak_pf(precision)
        if peak is None:
            continue
        try:
            ratios.append(scu_peak_pf(model) / peak)
        except PricingError:
            continue  # no 16-bit figure: this member says nothing about the ratio
    if not ratios:
        raise PricingError(
            Refusal.NO_SCU_FACTOR,
            reason=f"no class member has both a 16-bit and a {precision.value} peak",
        )
    return median(ratios)
