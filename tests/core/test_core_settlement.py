"""ExchangeCore delivery and settlement: exactly once, missing reports, short delivery."""

from __future__ import annotations

import pytest

from exchange.core import OrderState
from exchange.ledger import EXCHANGE, AccountKind
from exchange.operations import (
    AddPool,
    CreateAccount,
    Deposit,
    PlaceOrder,
    RegisterSite,
    ReportDelivery,
)
from exchange.orders import Side
from exchange.settlement import Contract, ContractState
from tests.core.helpers import A100, CNY, Market, make_market

Q = 50_000_000  # 50 PF·h
P = 200_000  # 20 CNY per PF·h
H100_UNITS_PER_DEVICE_SECOND = 989_400 / 3_600  # 0.9894 PF per H100, in quantity units


def traded(**kw: object) -> tuple[Market, Contract]:
    """Seller rests 50 PF·h at 20 CNY (maker, 5 bp); the buyer lifts it (taker, 10 bp)."""
    m = make_market(**kw)  # type: ignore[arg-type]
    m.sell(Q, P)
    buy = m.buy(Q, P)
    assert isinstance(buy, OrderState) and buy.filled == Q
    (contract,) = m.core.contracts.values()
    return m, contract


def totals(m: Market) -> int:
    return sum(sum(m.bal(a).values()) for a in m.core.accounts) + m.fees()


def test_full_delivery_pays_the_seller() -> None:
    m, c = traded()
    m.to_delivery()
    m.apply(ReportDelivery(m.seller, c.id, m.pool, 100 * 3_600))  # 100 H100 for the hour
    assert c.delivered_quantity == Q  # 98.94 PF·h made available, capped at 50
    m.to_settlement()
    assert c.state is ContractState.SETTLED
    assert m.bal(m.buyer) == {"available": 9_000 * CNY - CNY, "held": 0, "escrow": 0,
                              "collateral": 0}  # fmt: skip
    assert m.bal(m.seller) == {"available": 11_000 * CNY - CNY // 2, "held": 0, "escrow": 0,
                               "collateral": 0}  # fmt: skip
    assert m.fees() == CNY + CNY // 2
    assert totals(m) == 20_000 * CNY
    assert m.core.capacity.committed == {} and m.core.capacity.used == {}
    m.core.check()


def test_missing_delivery_report_counts_as_no_delivery() -> None:
    m, c = traded()
    m.to_settlement()
    assert c.state is ContractState.SETTLED and c.delivered_quantity == 0
    # buyer: everything back plus the full 20 % penalty (200 CNY); seller: loses it.
    assert m.bal(m.buyer)["available"] == 10_200 * CNY
    assert m.bal(m.seller)["available"] == 9_800 * CNY
    assert m.fees() == 0
    assert (c.refunded, c.penalty_paid, c.seller_paid, c.fees) == (1_001 * CNY, 200 * CNY, 0, 0)
    m.core.check()


def test_short_delivery_pays_d_refunds_q_minus_d_and_the_penalty() -> None:
    m, c = traded()
    m.to_delivery()
    m.apply(ReportDelivery(m.seller, c.id, m.pool, 36_000))  # 10 device-hours of H100
    m.apply(ReportDelivery(m.seller, c.id, m.pool, 72_000))  # and 20 more, a later report
    d = 29_682_000  # 30 x 0.9894 PF·h
    assert c.delivered_quantity == d
    m.to_settlement()
    delivered, undelivered = P * d, P * (Q - d)  # 593.64 CNY, 406.36 CNY
    seller_fee = delivered * 5 // 10_000
    buyer_fee = delivered * 10 // 10_000
    pen = undelivered * 2_000 // 10_000
    refund = undelivered + (P * Q * 10 // 10_000 - buyer_fee)
    assert (c.seller_paid, c.refunded, c.penalty_paid, c.fees) == (
        delivered - seller_fee,
        refund,
        pen,
        seller_fee + buyer_fee,
    )
    assert m.bal(m.buyer)["available"] == 10_000 * CNY - delivered - buyer_fee + pen
    assert m.bal(m.seller)["available"] == 10_000 * CNY + delivered - seller_fee - pen
    assert m.fees() == seller_fee + buyer_fee
    assert totals(m) == 20_000 * CNY
    m.core.check()


def test_settlement_happens_exactly_once() -> None:
    m, c = traded()
    m.to_delivery()
    m.apply(ReportDelivery(m.seller, c.id, m.pool, 36_000))
    m.to_settlement()
    after = m.core.state_hash()
    balances = {a: m.bal(a) for a in m.core.accounts}
    fees = m.fees()
    assert m.core.settle_contract(c.id) is False
    assert m.core.settle_contract(c.id) is False
    m.advance(m.core.now + 5 * 3_600_000_000)  # later clock ticks settle nothing again
    assert {a: m.bal(a) for a in m.core.accounts} == balances and m.fees() == fees
    assert m.core.state_hash() != after  # only the clock moved ...
    assert c.settled_at == m.window[1] + m.core.grace_us
    assert c.id not in m.core.contracts  # retired with its settled instrument
    code = m.reject(ReportDelivery(m.seller, c.id, m.pool, 36_000))
    assert code == "contract_settled"
    m.core.check()


def test_settle_contract_called_directly_then_by_the_clock_settles_once() -> None:
    m, c = traded()
    m.to_delivery()
    assert m.core.settle_contract(c.id) is True  # an early manual call: no delivery yet
    money = {a: m.bal(a) for a in m.core.accounts}
    m.to_settlement()
    assert {a: m.bal(a) for a in m.core.accounts} == money
    assert m.bal(m.buyer)["available"] == 10_200 * CNY
    m.core.check()


def test_delivery_report_refused_before_the_window_starts() -> None:
    m, c = traded()
    code = m.reject(ReportDelivery(m.seller, c.id, m.pool, 3_600))
    assert code == "delivery_not_started"
    gate = m.core.instruments[m.symbol].instrument.gate_closure  # type: ignore[index]
    m.advance(gate)  # gate closed, delivery not started yet
    assert m.reject(ReportDelivery(m.seller, c.id, m.pool, 3_600)) == "delivery_not_started"


def test_delivery_report_refused_from_anyone_but_the_seller() -> None:
    m, c = traded()
    m.to_delivery()
    assert m.reject(ReportDelivery(m.buyer, c.id, m.pool, 3_600)) == "contract_not_found"
    assert m.reject(ReportDelivery(m.seller, c.id + 99, m.pool, 3_600)) == "contract_not_found"


def test_delivery_report_refused_for_a_foreign_or_ineligible_pool() -> None:
    m, c = traded()
    other = m.apply(CreateAccount("other seller", "trader")).id  # type: ignore[attr-defined]
    site = m.apply(RegisterSite(other, "nx", "northwest", "1.2", "0")).id  # type: ignore[attr-defined]
    foreign = m.apply(AddPool(other, site, "nvidia-h100-sxm5-80gb", 100)).id  # type: ignore[attr-defined]
    a100 = m.apply(AddPool(m.seller, m.site, A100, 100)).id  # type: ignore[attr-defined]
    m.to_delivery()
    assert m.reject(ReportDelivery(m.seller, c.id, foreign, 3_600)) == "pool_not_found"
    assert m.reject(ReportDelivery(m.seller, c.id, 999, 3_600)) == "pool_not_found"
    assert m.reject(ReportDelivery(m.seller, c.id, a100, 3_600)) == "pool_not_eligible"


@pytest.mark.parametrize("device_seconds", [-1, 100 * 3_600 + 1])
def test_delivery_report_refused_beyond_what_the_pool_can_do(device_seconds: int) -> None:
    m, c = traded()
    m.to_delivery()
    code = m.reject(ReportDelivery(m.seller, c.id, m.pool, device_seconds))
    assert code == "invalid_device_seconds"


def test_report_during_the_grace_counts_after_the_window() -> None:
    m, c = traded()
    m.advance(m.window[1] + 1)  # window over, grace running
    m.apply(ReportDelivery(m.seller, c.id, m.pool, 36_000))
    m.to_settlement()
    assert c.delivered_quantity == 9_894_000 and c.state is ContractState.SETTLED


def test_two_sellers_and_partial_fills_settle_each_contract_on_its_own() -> None:
    m = make_market()
    s2 = m.apply(CreateAccount("seller 2", "trader")).id  # type: ignore[attr-defined]
    m.apply(Deposit(s2, 1_000 * CNY))
    site = m.apply(RegisterSite(s2, "gz", "south", "1.2", "0")).id  # type: ignore[attr-defined]
    pool2 = m.apply(AddPool(s2, site, "nvidia-h800-sxm5-80gb", 50)).id  # type: ignore[attr-defined]
    m.sell(20_000_000, 190_000)
    m.apply(PlaceOrder(s2, m.symbol, Side.SELL, 30_000_000, 195_000))
    m.buy(Q, P)  # takes 20 at 19 and 30 at 19.5
    c1, c2 = m.core.contracts.values()
    assert (c1.seller, c1.price, c2.seller, c2.price) == (m.seller, 190_000, s2, 195_000)
    m.to_delivery()
    m.apply(ReportDelivery(s2, c2.id, pool2, 50 * 3_600))  # c2 delivered in full
    m.to_settlement()  # c1 not reported: full penalty
    assert c1.delivered_quantity == 0 and c2.delivered_quantity == 30_000_000
    buyer_fee2 = 195_000 * 30_000_000 * 10 // 10_000
    assert m.bal(m.buyer)["available"] == (
        10_000 * CNY - 195_000 * 30_000_000 - buyer_fee2 + 190_000 * 20_000_000 * 2_000 // 10_000
    )
    assert m.core.ledger.balance(EXCHANGE, AccountKind.FEES) == (
        buyer_fee2 + 195_000 * 30_000_000 * 5 // 10_000
    )
    assert totals(m) == 21_000 * CNY
    m.core.check()
