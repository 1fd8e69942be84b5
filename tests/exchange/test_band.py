"""The price band: edges rounded inwards to the tick, never below one tick."""

from __future__ import annotations

import pytest

from exchange.events import ReferencePriceSet
from exchange.orders import OrderType, Side, TimeInForce
from exchange.units import Price, Quantity

from .helpers import BUY, SELL, SYM, A, B, briefs, limit, make_tier, new_engine
from .reference_engine import ReferenceEngine


@pytest.mark.parametrize(
    ("tick", "bps", "reference", "low", "high"),
    [
        (5, 1_000, 10_000, 9_000, 11_000),  # the doc's example
        (7, 1_000, 1_001, 903, 1_099),  # [900.9, 1101.1] -> ceil 901 -> 903; 1101 -> 1099
        (5, 300, 105, 105, 105),  # [101.85, 108.15] -> [102, 108] -> inwards [105, 105]
        (1, 1_000, 95, 86, 104),  # [85.5, 104.5] -> [86, 104]
        (1, 10_000, 100, 1, 200),  # the lower edge would be 0: never below one tick
        (10, 10_000, 50, 10, 100),
        (1, 1, 10_000, 9_999, 10_001),
    ],
)
def test_band_edges(tick: int, bps: int, reference: int, low: int, high: int) -> None:
    engine = new_engine(reference=None, tier=make_tier(tick=tick, price_band_bps=bps))
    outcome = engine.set_reference_price(SYM, Price(reference))
    event = outcome.events[0]
    assert isinstance(event, ReferencePriceSet)
    assert (event.price, event.band_low, event.band_high) == (reference, low, high)
    assert ReferenceEngine().band(tick, bps, reference) == (low, high)
    # The edges are inclusive; one tick beyond is out of band.
    assert limit(engine, 1, A, BUY, low, 1).ok
    assert limit(engine, 2, A, SELL, high, 1).ok
    assert limit(engine, 3, A, BUY, high + tick, 1).result.code == "price_out_of_band"
    if low - tick > 0:
        assert limit(engine, 4, A, SELL, low - tick, 1).result.code == "price_out_of_band"


def test_without_reference_limits_are_not_band_checked_and_markets_refused() -> None:
    engine = new_engine(reference=None)
    assert limit(engine, 1, A, SELL, 10**9, 1).ok
    assert limit(engine, 2, A, BUY, 1, 1).ok
    market = engine.place(3, B, SYM, BUY, None, Quantity(1), OrderType.MARKET, TimeInForce.IOC)
    assert market.result.code == "no_reference_price"


def test_removing_the_reference_removes_the_band() -> None:
    engine = new_engine(reference=100)
    assert limit(engine, 1, A, SELL, 150, 1).result.code == "price_out_of_band"
    assert engine.set_reference_price(SYM, None).ok
    assert limit(engine, 1, A, SELL, 150, 1).ok


def test_market_orders_use_the_band_edge_as_protection_price() -> None:
    engine = new_engine(reference=100)  # band [90, 110]
    limit(engine, 1, B, SELL, 110, 1)
    limit(engine, 2, B, BUY, 90, 1)
    buy = engine.place(3, A, SYM, Side.BUY, None, Quantity(2), OrderType.MARKET,
                       TimeInForce.IOC)  # fmt: skip
    assert briefs(buy) == [
        ("accepted", 3, BUY, 110, 2),
        ("trade", 110, 1, 3, 1, 0),
        ("book", "sell", 110, 0),
        ("expired", 3, 1, "market"),
    ]
    sell = engine.place(4, A, SYM, Side.SELL, None, Quantity(2), OrderType.MARKET,
                        TimeInForce.IOC)  # fmt: skip
    assert briefs(sell)[0] == ("accepted", 4, SELL, 90, 2)
    assert briefs(sell)[1] == ("trade", 90, 1, 4, 2, 0)


def test_a_new_reference_does_not_touch_resting_orders() -> None:
    engine = new_engine(reference=100)
    limit(engine, 1, A, SELL, 110, 1)
    assert engine.set_reference_price(SYM, Price(50)).ok  # band [45, 55]
    assert engine.book(SYM).depth(SELL) == [(110, 1)]
    # A new quantity at the unchanged (now out-of-band) price is allowed: only a price
    # that changes must be inside the band.
    assert engine.amend(A, 1, None, 2).ok
    assert engine.book(SYM).depth(SELL) == [(110, 2)]
    assert engine.amend(A, 1, Price(105), None).result.code == "price_out_of_band"
    assert engine.amend(A, 1, Price(55), None).ok
