"""Contracts and their final settlement: who receives what, exactly once.

A trade creates a :class:`Contract`: quantity Q at price p between a buyer and a seller,
with the buyer's cash in escrow (``p x Q`` plus the buyer's fee on it) and the seller's
collateral (the shortfall penalty on ``p x Q``). After delivery and the reporting grace,
:func:`settlement_legs` splits both pots by the delivered quantity D (capped at Q):

* the seller is paid the delivered notional ``p x D`` less the seller's fee on it;
* the exchange receives both fees, each on the delivered notional only;
* the buyer is refunded the undelivered notional ``p x (Q - D)`` and the part of its
  fee that was held for it;
* the seller's collateral pays the penalty on ``p x (Q - D)`` to the buyer and the rest
  returns to the seller.

Each pot is split completely (the legs add up to it exactly), so settlement never
creates or destroys money. Fees and penalties round down (see :mod:`exchange.risk`).
"""

from __future__ import annotations

from enum import StrEnum

import msgspec

from exchange.invariants import check
from exchange.risk import fee, penalty

__all__ = ["Contract", "ContractState", "Liquidity", "SettlementLegs", "settlement_legs"]


class ContractState(StrEnum):
    OPEN = "open"  # traded, before delivery starts
    DELIVERING = "delivering"
    SETTLED = "settled"


class Liquidity(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


class Contract(msgspec.Struct):
    id: int
    trade_id: int
    symbol: str
    buyer: int
    seller: int
    buy_order_id: int
    sell_order_id: int
    quantity: int
    price: int
    buyer_liquidity: Liquidity
    buyer_fee_bps: int
    seller_fee_bps: int
    penalty_bps: int
    escrow: int  # held for the buyer: notional + buyer fee on it
    collateral: int  # held from the seller: penalty on the notional
    created_at: int
    state: ContractState = ContractState.OPEN
    delivered_device_seconds: int = 0
    delivered_quantity: int = 0
    settled_at: int | None = None
    seller_paid: int = 0
    fees: int = 0
    refunded: int = 0
    penalty_paid: int = 0

    @property
    def notional(self) -> int:
        return self.price * self.quantity

    @property
    def buyer_fee(self) -> int:
        return fee(self.notional, self.buyer_fee_bps)

    @property
    def seller_liquidity(self) -> Liquidity:
        return Liquidity.TAKER if self.buyer_liquidity is Liquidity.MAKER else Liquidity.MAKER


class SettlementLegs(msgspec.Struct, frozen=True):
    delivered: int
    seller_payment: int
    buyer_fee: int
    seller_fee: int
    refund: int
    penalty: int
    collateral_return: int


def settlement_legs(contract: Contract, delivered: int) -> SettlementLegs:
    """Split a contract's escrow and collateral for ``delivered`` quantity units."""
    d = max(0, min(delivered, contract.quantity))
    delivered_notional = contract.price * d
    undelivered_notional = contract.notional - delivered_notional
    buyer_fee = fee(delivered_notional, contract.buyer_fee_bps)
    seller_fee = fee(delivered_notional, contract.seller_fee_bps)
    seller_payment = delivered_notional - seller_fee
    refund = contract.escrow - delivered_notional - buyer_fee
    shortfall = penalty(undelivered_notional, contract.penalty_bps)
    legs = SettlementLegs(
        delivered=d,
        seller_payment=seller_payment,
        buyer_fee=buyer_fee,
        seller_fee=seller_fee,
        refund=refund,
        penalty=shortfall,
        collateral_return=contract.collateral - shortfall,
    )
    check(
        legs.seller_payment + legs.seller_fee + legs.buyer_fee + legs.refund == contract.escrow,
        "escrow legs do not add up",
    )
    check(legs.penalty + legs.collateral_return == contract.collateral, "collateral legs")
    check(
        min(legs.seller_payment, legs.refund, legs.penalty, legs.collateral_return) >= 0,
        "negative settlement leg",
    )
    return legs
