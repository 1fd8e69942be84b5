"""Hold, fee and penalty arithmetic: rounding down makes every hold sufficient."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from exchange.risk import buy_hold, fee, penalty, sell_collateral


def test_fee_and_penalty_round_down_to_the_minor_unit() -> None:
    assert fee(10_000, 10) == 10
    assert fee(9_999, 10) == 9  # 9.999 -> 9
    assert fee(999, 10) == 0
    assert penalty(12_345, 2_000) == 2_469  # 2,469.0
    assert penalty(12_346, 2_000) == 2_469  # 2,469.2 -> 2,469
    assert fee(0, 1_000) == 0 and penalty(5, 0) == 0


def test_buy_hold_is_notional_plus_fee_at_the_higher_rate() -> None:
    # 20 CNY/PF·h x 50 PF·h = 1,000 CNY; 10 bp fee = 1 CNY.
    assert buy_hold(200_000, 50_000_000, 10) == 10**13 + 10**10
    assert buy_hold(3, 7, 10) == 21  # fee on 21 rounds down to 0


def test_sell_collateral_is_the_penalty_on_the_worst_notional() -> None:
    assert sell_collateral(200_000, 50_000_000, 2_000) == 2 * 10**12  # 200 CNY


prices = st.integers(min_value=1, max_value=10**8)
bps = st.integers(min_value=0, max_value=10_000)


@st.composite
def order_and_fills(draw: st.DrawFn) -> tuple[int, int, list[tuple[int, int]]]:
    """An order (limit, quantity) and fills that split the quantity at prices <= limit."""
    limit = draw(prices)
    parts = draw(st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=12))
    fills = [(draw(st.integers(min_value=1, max_value=limit)), q) for q in parts]
    return limit, sum(parts), fills


@given(order_and_fills(), bps, bps)
def test_any_split_of_a_buy_costs_no_more_than_its_hold(
    case: tuple[int, int, list[tuple[int, int]]], maker_bps: int, taker_bps: int
) -> None:
    limit, quantity, fills = case
    hold = buy_hold(limit, quantity, max(maker_bps, taker_bps))
    # Each fill, maker or taker, moves its notional plus its own fee to escrow.
    cost = sum(
        p * q + fee(p * q, maker_bps if i % 2 else taker_bps) for i, (p, q) in enumerate(fills)
    )
    assert cost <= hold


@given(order_and_fills(), bps)
def test_any_split_of_a_sell_needs_no_more_collateral_than_it_holds(
    case: tuple[int, int, list[tuple[int, int]]], penalty_bps: int
) -> None:
    limit, quantity, fills = case  # for a sell, ``limit`` is the worst price it can trade at
    held = sell_collateral(limit, quantity, penalty_bps)
    assert sum(penalty(p * q, penalty_bps) for p, q in fills) <= held


@given(prices, st.integers(min_value=0, max_value=10**9), st.integers(0, 10**9), bps)
def test_floor_is_super_additive(price: int, q1: int, q2: int, rate: int) -> None:
    whole = fee(price * (q1 + q2), rate)
    assert fee(price * q1, rate) + fee(price * q2, rate) <= whole
    # ... and loses less than one minor unit per part, so rounding never gives much away.
    assert whole - fee(price * q1, rate) - fee(price * q2, rate) <= 1
