"""Identifier types. Each is its own ``NewType`` so an order id is never taken for an account id."""

from __future__ import annotations

from typing import NewType

__all__ = ["AccountId", "ClientOrderId", "OrderId", "Symbol", "Timestamp", "TradeId"]

OrderId = NewType("OrderId", int)
TradeId = NewType("TradeId", int)
AccountId = NewType("AccountId", int)
ClientOrderId = NewType("ClientOrderId", str)
#: An instrument's readable symbol, e.g. ``FP16-H-4A-20261122T10``; unique per exchange.
Symbol = NewType("Symbol", str)
#: Exchange time as integer microseconds since the Unix epoch, UTC. Passed in, never read.
Timestamp = NewType("Timestamp", int)
