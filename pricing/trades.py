"""The trade record the pricing engine consumes: what the matching engine prints."""

from __future__ import annotations

from dataclasses import dataclass

from exchange.ids import Symbol, Timestamp
from exchange.refusals import Refusal
from exchange.units import Price, Quantity
from pricing.errors import PricingError

__all__ = ["TradePrint"]


@dataclass(frozen=True, slots=True)
class TradePrint:
    """One trade: ``price`` in price units, ``quantity`` in quantity units, ``ts`` in
    exchange microseconds. Inputs are taken in the order the engine printed them."""

    symbol: Symbol
    price: Price
    quantity: Quantity
    ts: Timestamp

    def __post_init__(self) -> None:
        if self.price <= 0:
            raise PricingError(
                Refusal.INVALID_PRICE, subject="a trade price", problem="must be positive"
            )
        if self.quantity <= 0:
            raise PricingError(Refusal.INVALID_QUANTITY, subject="a trade quantity")
