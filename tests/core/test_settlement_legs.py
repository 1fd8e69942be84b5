"""Settlement legs: how a contract's escrow and collateral are split by delivery."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from exchange.risk import fee, penalty
from exchange.settlement import Contract, Liquidity, settlement_legs

CNY = 10**10


def contract(
    quantity: int = 50_000_000,
    price: int = 200_000,
    buyer_bps: int = 10,
    seller_bps: int = 5,
    penalty_bps: int = 2_000,
) -> Contract:
    notional = price * quantity
    return Contract(
        id=1,
        trade_id=1,
        symbol="FP16-H-20261118T14",
        buyer=1,
        seller=2,
        buy_order_id=2,
        sell_order_id=1,
        quantity=quantity,
        price=price,
        buyer_liquidity=Liquidity.TAKER,
        buyer_fee_bps=buyer_bps,
        seller_fee_bps=seller_bps,
        penalty_bps=penalty_bps,
        escrow=notional + fee(notional, buyer_bps),
        collateral=penalty(notional, penalty_bps),
        created_at=0,
    )


def test_full_delivery_pays_the_seller_and_returns_the_collateral() -> None:
    c = contract()  # 50 PF·h at 20 CNY: 1,000 CNY notional
    legs = settlement_legs(c, c.quantity)
    assert legs.delivered == c.quantity
    assert legs.seller_payment == 1_000 * CNY - CNY // 2  # minus 5 bp = 0.50 CNY
    assert legs.seller_fee == CNY // 2
    assert legs.buyer_fee == CNY  # 10 bp of 1,000 CNY
    assert legs.refund == 0
    assert legs.penalty == 0
    assert legs.collateral_return == 200 * CNY


def test_zero_delivery_refunds_everything_and_pays_the_full_penalty() -> None:
    c = contract()
    legs = settlement_legs(c, 0)
    assert legs.delivered == 0
    assert legs.seller_payment == legs.seller_fee == legs.buyer_fee == 0
    assert legs.refund == c.escrow == 1_001 * CNY
    assert legs.penalty == 200 * CNY == c.collateral
    assert legs.collateral_return == 0


def test_partial_delivery_splits_both_pots() -> None:
    c = contract()
    legs = settlement_legs(c, 30_000_000)  # 30 of 50 PF·h delivered
    assert legs.seller_payment == 600 * CNY - 3 * CNY // 10  # 600 CNY less 0.30 CNY
    assert legs.seller_fee == 3 * CNY // 10
    assert legs.buyer_fee == 6 * CNY // 10
    assert legs.refund == 400 * CNY + 4 * CNY // 10  # 400 CNY + the unused 0.40 CNY of fee
    assert legs.penalty == 80 * CNY  # 20 % of the 400 CNY undelivered
    assert legs.collateral_return == 120 * CNY


def test_delivery_is_capped_at_the_contract_and_floored_at_zero() -> None:
    c = contract()
    assert settlement_legs(c, c.quantity * 3) == settlement_legs(c, c.quantity)
    assert settlement_legs(c, -5) == settlement_legs(c, 0)


def test_fees_and_penalties_round_down() -> None:
    # 3 units at price 7: notional 21; 10 bp of 21 and 20 % of 21 both have fractions.
    c = contract(quantity=3, price=7)
    legs = settlement_legs(c, 1)  # delivered notional 7, undelivered 14
    assert (legs.buyer_fee, legs.seller_fee) == (0, 0)
    assert legs.penalty == 2  # 2.8 -> 2
    assert legs.collateral_return == c.collateral - 2 == 2  # 4.2 -> 4 held
    assert legs.refund == 14


@given(
    quantity=st.integers(1, 10**12),
    price=st.integers(1, 10**9),
    buyer_bps=st.integers(0, 1_000),
    seller_bps=st.integers(0, 1_000),
    penalty_bps=st.integers(0, 10_000),
    delivered_fraction=st.fractions(min_value=0, max_value=1),
    over=st.integers(0, 3),
)
def test_legs_add_up_exactly_for_any_contract(
    quantity: int,
    price: int,
    buyer_bps: int,
    seller_bps: int,
    penalty_bps: int,
    delivered_fraction: object,
    over: int,
) -> None:
    c = contract(quantity, price, buyer_bps, seller_bps, penalty_bps)
    delivered = int(quantity * delivered_fraction) + over  # type: ignore[operator]
    legs = settlement_legs(c, delivered)
    d = min(delivered, quantity)
    assert legs.delivered == d
    # Each pot is split completely: nothing created, nothing lost.
    escrow_out = legs.seller_payment + legs.seller_fee + legs.buyer_fee + legs.refund
    assert escrow_out == c.escrow
    assert legs.penalty + legs.collateral_return == c.collateral
    assert min(legs.seller_payment, legs.refund, legs.penalty, legs.collateral_return) >= 0
    # What each side receives, independently of the implementation's formulas.
    assert legs.seller_payment + legs.seller_fee == price * d
    assert legs.buyer_fee == price * d * buyer_bps // 10_000
    assert legs.seller_fee == price * d * seller_bps // 10_000
    assert legs.penalty == price * (quantity - d) * penalty_bps // 10_000
    # The buyer gets back at least the undelivered notional, and pays fees only on D.
    assert legs.refund >= price * (quantity - d)
    assert legs.refund + price * d + legs.buyer_fee == c.escrow
