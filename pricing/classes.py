"""GPU classes: admin rules over the catalog; membership is derived, never stored.

A model belongs to a class when every stated condition holds:

* its dense peak at the class precision is known and at least ``min_dense_tflops``;
* ``min_memory_gb`` / ``min_memory_bandwidth_gbs``, when above zero, are met by a known
  figure (an unknown figure does not meet a positive minimum);
* when ``vendors`` is set, the model's vendor is listed (case-insensitive);
* when ``models`` is set, the model id is listed.

Membership ignores source quality: whether a member's figures may be billed on is
decided when capacity is computed (see ``pricing.sites``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from exchange.products import Precision
from exchange.refusals import Refusal
from pricing.catalog import AcceleratorModel, Catalog
from pricing.errors import PricingError

__all__ = ["GpuClass", "class_members", "is_member"]


@dataclass(frozen=True, slots=True)
class GpuClass:
    code: str
    name: str
    precision: Precision
    min_dense_tflops: Decimal
    min_memory_gb: Decimal = Decimal(0)
    min_memory_bandwidth_gbs: Decimal = Decimal(0)
    vendors: frozenset[str] | None = None
    models: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if not self.code:
            raise PricingError(Refusal.INVALID_CLASS, reason="a GPU class needs a code")
        for name in ("min_dense_tflops", "min_memory_gb", "min_memory_bandwidth_gbs"):
            value: Decimal = getattr(self, name)
            if not value.is_finite() or value < 0:
                raise PricingError(
                    Refusal.INVALID_CLASS, reason=f"{name} must be a non-negative decimal"
                )
        if self.vendors is not None and not self.vendors:
            raise PricingError(
                Refusal.INVALID_CLASS, reason="vendors, when given, must not be empty"
            )
        if self.models is not None and not self.models:
            raise PricingError(
                Refusal.INVALID_CLASS, reason="models, when given, must not be empty"
            )


def _meets(value: Decimal | None, minimum: Decimal) -> bool:
    return minimum <= 0 or (value is not None and value >= minimum)


def is_member(rule: GpuClass, model: AcceleratorModel) -> bool:
    peak = model.peak(rule.precision)
    if peak is None or peak < rule.min_dense_tflops:
        return False
    if not _meets(model.memory_gb, rule.min_memory_gb):
        return False
    if not _meets(model.memory_bandwidth_gbs, rule.min_memory_bandwidth_gbs):
        return False
    if rule.vendors is not None and model.vendor.casefold() not in {
        v.casefold() for v in rule.vendors
    }:
        return False
    return rule.models is None or model.id in rule.models


def class_members(rule: GpuClass, catalog: Catalog) -> tuple[str, ...]:
    """Ids of the catalog models in the class, sorted: a pure function of rule and catalog."""
    return tuple(sorted(mid for mid, model in catalog.items() if is_member(rule, model)))
