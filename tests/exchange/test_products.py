"""Tier validation, delivery windows and green grades."""

from __future__ import annotations

from typing import Any

import pytest

from exchange.ids import Timestamp
from exchange.products import HOUR_US, DeliveryWindow, GreenGrade, Tier, TierError

from .helpers import make_tier

VALID: dict[str, Any] = {
    "code": "FP16-H",
    "precision": "fp16",
    "gpu_class": "H",
    "tick": 5,
    "lot": 10,
    "min_quantity": 20,
    "max_quantity": 1_000,
    "price_band_bps": 1_000,
}


def test_a_consistent_tier_is_accepted() -> None:
    tier = Tier(**VALID, reference_price=100, maker_fee_bps=1_000, taker_fee_bps=0)
    assert tier.tick == 5 and tier.reference_price == 100
    assert make_tier().lot == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"code": ""}, "code must be"),
        ({"code": "X" * 33}, "code must be"),
        ({"tick": 0}, "tick must be positive"),
        ({"tick": -5}, "tick must be positive"),
        ({"tick": 0, "reference_price": 100}, "tick must be positive"),
        ({"lot": 0}, "lot must be positive"),
        ({"min_quantity": 0}, "min_quantity"),
        ({"min_quantity": 25}, "min_quantity"),
        ({"max_quantity": 10}, "max_quantity"),
        ({"max_quantity": 1_005}, "max_quantity"),
        ({"price_band_bps": 0}, "price_band_bps"),
        ({"price_band_bps": 10_001}, "price_band_bps"),
        ({"maker_fee_bps": -1}, "maker_fee_bps"),
        ({"taker_fee_bps": 1_001}, "taker_fee_bps"),
        ({"shortfall_penalty_bps": 10_001}, "shortfall_penalty_bps"),
        ({"arithmetic_intensity": 0}, "arithmetic_intensity"),
        ({"window_hours": 0}, "window_hours"),
        ({"window_hours": 25}, "window_hours"),
        ({"list_ahead_hours": -1}, "list_ahead_hours"),
        ({"gate_closure_minutes": 1_441}, "gate_closure_minutes"),
        ({"reference_price": 102}, "reference_price"),
        ({"reference_price": 0}, "reference_price"),
    ],
)
def test_inconsistent_tier_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(TierError, match=message):
        Tier(**{**VALID, **change})


def test_tier_error_lists_every_problem() -> None:
    with pytest.raises(TierError) as info:
        Tier(**{**VALID, "tick": 0, "price_band_bps": 0})
    assert "tick" in str(info.value) and "price_band_bps" in str(info.value)


def test_band_edges_are_allowed() -> None:
    assert Tier(**{**VALID, "price_band_bps": 10_000}).price_band_bps == 10_000
    assert Tier(**{**VALID, "max_quantity": 20}).max_quantity == 20


def test_delivery_window() -> None:
    start = Timestamp(10 * HOUR_US)
    assert DeliveryWindow(start, Timestamp(start + 4 * HOUR_US)).hours == 4
    with pytest.raises(ValueError):
        DeliveryWindow(start, start)


def test_green_grade_parse_and_order() -> None:
    assert GreenGrade.parse(" 4a ") is GreenGrade.A4
    assert GreenGrade.A5 > GreenGrade.A1
    assert GreenGrade.A3.label == "3A"
    with pytest.raises(ValueError):
        GreenGrade.parse("6A")
