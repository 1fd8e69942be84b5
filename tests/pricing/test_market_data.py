"""Candles, forward curve and book quotes."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.ids import Symbol, Timestamp
from exchange.units import Price, Quantity
from pricing import (
    Candle,
    CurveInput,
    CurveSource,
    Interval,
    PricingError,
    QuoteSide,
    TradePrint,
    aggregate_candles,
    forward_curve,
    quote_book,
    update_candle,
)
from tests.pricing.helpers import trade

MINUTE = 60_000_000
HOUR = 60 * MINUTE


def test_one_minute_candles_carry_ohlcv() -> None:
    trades = [
        trade(100, 10, 0),
        trade(105, 5, 10 * 1_000_000),
        trade(95, 1, 59 * 1_000_000),
        trade(110, 2, MINUTE),  # opens the next candle
        trade(120, 3, 5 * MINUTE + 1),  # a gap: no empty candles in between
    ]
    candles = aggregate_candles(trades, Interval.M1)
    assert [
        (c.start, c.open, c.high, c.low, c.close, c.volume, c.trade_count) for c in candles
    ] == [
        (0, 100, 105, 95, 95, 16, 3),
        (MINUTE, 110, 110, 110, 110, 2, 1),
        (5 * MINUTE, 120, 120, 120, 120, 3, 1),
    ]
    assert candles[0].notional == 100 * 10 + 105 * 5 + 95 * 1
    assert candles[0].end == MINUTE


def test_candles_are_per_instrument_and_interval() -> None:
    trades = [trade(100, 1, 0, "A"), trade(200, 1, 1, "B"), trade(101, 1, 2 * HOUR, "A")]
    hourly = aggregate_candles(trades, Interval.H1)
    assert [(c.symbol, c.start) for c in hourly] == [("A", 0), ("A", 2 * HOUR), ("B", 0)]
    daily = aggregate_candles(trades, Interval.D1)
    assert [(c.symbol, c.open, c.close) for c in daily] == [("A", 100, 101), ("B", 200, 200)]
    assert Interval.parse("1h") is Interval.H1


def test_an_out_of_order_trade_is_refused() -> None:
    _, current = update_candle(None, trade(100, 1, 2 * MINUTE), Interval.M1)
    with pytest.raises(PricingError) as err:
        update_candle(current, trade(100, 1, MINUTE), Interval.M1)
    assert err.value.code == "out_of_order_trade"
    with pytest.raises(PricingError) as err:
        Interval.parse("5m")
    assert err.value.code == "invalid_interval"


trade_lists = st.lists(
    st.tuples(st.integers(1, 10**6), st.integers(1, 10**6), st.integers(0, 3 * HOUR)),
    min_size=1,
    max_size=60,
).map(lambda rows: [trade(p, q, ts) for p, q, ts in sorted(rows, key=lambda r: r[2])])


@given(trade_lists, st.sampled_from(list(Interval)))
def test_candles_conserve_volume_and_bound_prices(
    trades: list[TradePrint], interval: Interval
) -> None:
    candles = aggregate_candles(trades, interval)
    assert sum(c.volume for c in candles) == sum(t.quantity for t in trades)
    assert sum(c.trade_count for c in candles) == len(trades)
    for c in candles:
        assert c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high
        assert c.start % interval == 0
    # incremental fold equals the batch result
    current: Candle | None = None
    folded: list[Candle] = []
    for t in trades:
        done, current = update_candle(current, t, interval)
        if done is not None:
            folded.append(done)
    assert current is not None
    assert [*folded, current] == candles


def _window(i: int, **kw: int) -> CurveInput:
    prices = {k: Price(v) for k, v in kw.items()}
    return CurveInput(Symbol(f"S{i}"), Timestamp(i * HOUR), Timestamp((i + 1) * HOUR), **prices)


def test_forward_curve_prefers_mid_then_last_then_reference() -> None:
    curve = forward_curve(
        [
            _window(3),
            _window(2, reference_price=900),
            _window(1, last_price=1000, reference_price=900, best_bid=990),
            _window(0, best_bid=1000, best_ask=1011, last_price=1, reference_price=2),
        ]
    )
    assert [p.window_start for p in curve] == [0, HOUR, 2 * HOUR, 3 * HOUR]
    assert [(p.source, p.price) for p in curve] == [
        (CurveSource.MID, Fraction(2011, 2)),
        (CurveSource.LAST, 1000),
        (CurveSource.REFERENCE, 900),
        (CurveSource.NONE, None),
    ]
    assert curve[1].best_bid == 990


def test_forward_curve_refuses_duplicate_windows_and_crossed_books() -> None:
    with pytest.raises(PricingError) as err:
        forward_curve([_window(1), _window(1)])
    assert err.value.code == "duplicate_window"
    with pytest.raises(PricingError) as err:
        forward_curve([_window(1, best_bid=11, best_ask=10)])
    assert err.value.code == "crossed_book"


ASKS = [(Price(1_000_000), Quantity(2_000_000)), (Price(1_010_000), Quantity(3_000_000))]


def test_quote_walks_the_asks_for_a_buy() -> None:
    q = quote_book(ASKS, Quantity(4_000_000), "buy")
    assert q.filled == 4_000_000 and q.fully_fillable
    assert q.cost == 1_000_000 * 2_000_000 + 1_010_000 * 2_000_000
    assert q.average_price == 1_005_000
    assert (q.levels_used, q.worst_price) == (2, 1_010_000)


def test_quote_reports_a_partial_fill_when_the_book_is_thin() -> None:
    q = quote_book(ASKS, Quantity(9_000_000), QuoteSide.BUY)
    assert (q.filled, q.fully_fillable, q.levels_used) == (5_000_000, False, 2)
    empty = quote_book([], Quantity(1), "buy")
    assert (empty.filled, empty.average_price, empty.worst_price) == (0, None, None)


def test_quote_stops_at_the_protection_price() -> None:
    q = quote_book(ASKS, Quantity(4_000_000), "buy", limit_price=Price(1_005_000))
    assert (q.filled, q.levels_used, q.fully_fillable) == (2_000_000, 1, False)
    bids = [(Price(900), Quantity(5)), (Price(800), Quantity(5))]
    s = quote_book(bids, Quantity(8), "sell", limit_price=Price(850))
    assert (s.filled, s.cost) == (5, 4_500)


def test_quote_refuses_levels_out_of_order() -> None:
    with pytest.raises(PricingError) as err:
        quote_book(list(reversed(ASKS)), Quantity(1), "buy")
    assert err.value.code == "unsorted_levels"
    with pytest.raises(PricingError) as err:
        quote_book(ASKS, Quantity(1), "sell")
    assert err.value.code == "unsorted_levels"
    with pytest.raises(PricingError) as err:
        quote_book(ASKS, Quantity(0), "buy")
    assert err.value.code == "invalid_quantity"


books = st.dictionaries(st.integers(1, 10**6), st.integers(1, 10**6), max_size=10).map(
    lambda d: sorted((Price(p), Quantity(q)) for p, q in d.items())
)


@given(books, st.integers(1, 10**7))
def test_quote_fills_what_the_book_holds_at_prices_within_its_range(
    asks: list[tuple[Price, Quantity]], quantity: int
) -> None:
    q = quote_book(asks, Quantity(quantity), "buy")
    available = sum(size for _, size in asks)
    assert q.filled == min(quantity, available)
    assert q.fully_fillable == (available >= quantity)
    if q.filled:
        assert q.average_price is not None
        assert asks[0][0] <= q.average_price <= (q.worst_price or 0)
