"""The core moves an order's status and a contract's state only through the lifecycle
tables (exchange.lifecycle): a move the table lacks is an invariant violation, never a
silent overwrite."""

from __future__ import annotations

import pytest

from exchange.events import OrderCancelled
from exchange.ids import AccountId, OrderId, Symbol, Timestamp
from exchange.invariants import InvariantViolation
from exchange.orders import CancelReason, OrderStatus
from exchange.settlement import ContractState
from tests.core.helpers import make_market


def test_fills_move_orders_along_the_order_table() -> None:
    m = make_market()
    sell = m.sell(2_000_000, 200_000)
    m.buy(1_000_000, 200_000)
    assert m.core.orders[sell.id].status is OrderStatus.PARTIALLY_FILLED  # type: ignore[attr-defined]
    m.buy(1_000_000, 200_000)
    assert m.core.orders[sell.id].status is OrderStatus.FILLED  # type: ignore[attr-defined]
    m.core.check()


def test_a_finished_order_cannot_be_cancelled_again() -> None:
    m = make_market()
    sell = m.sell(1_000_000, 200_000)
    m.buy(1_000_000, 200_000)
    order = m.core.orders[sell.id]  # type: ignore[attr-defined]
    assert order.status is OrderStatus.FILLED
    late = OrderCancelled(
        Symbol(order.symbol), 0, Timestamp(m.core.now), OrderId(order.id),
        AccountId(order.account_id), 0, CancelReason.USER,
    )  # fmt: skip
    with pytest.raises(InvariantViolation, match="filled cannot take the event cancel"):
        m.core.parts.trading.on_cancelled(late)


def test_contracts_deliver_then_settle_and_go_no_further() -> None:
    m = make_market()
    m.sell(1_000_000, 200_000)
    m.buy(1_000_000, 200_000)
    (contract,) = m.core.contracts.values()
    with pytest.raises(InvariantViolation, match="open cannot take the event settle"):
        m.core.settle_contract(contract.id)  # settlement before delivery: not in the table
    assert contract.state is ContractState.OPEN
    m.to_delivery()
    assert contract.state is ContractState.DELIVERING
    m.to_settlement()
    assert contract.state is ContractState.SETTLED
    assert m.core.settle_contract(contract.id) is False  # exactly once
    assert contract.id not in m.core.contracts  # retired with its settled instrument
