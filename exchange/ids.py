"""Identifier types. Each is its own ``NewType`` so an order id is never taken for an account id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NewType

__all__ = [
    "AccountId",
    "ClientOrderId",
    "OrderId",
    "Symbol",
    "Timestamp",
    "TradeId",
    "format_timestamp",
]

OrderId = NewType("OrderId", int)
TradeId = NewType("TradeId", int)
AccountId = NewType("AccountId", int)
ClientOrderId = NewType("ClientOrderId", str)
#: An instrument's readable symbol, e.g. ``FP16-H-4A-20261122T10``; unique per exchange.
Symbol = NewType("Symbol", str)
#: Exchange time as integer microseconds since the Unix epoch, UTC. Passed in, never read.
Timestamp = NewType("Timestamp", int)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_timestamp(us: int) -> str:
    """Exchange microseconds as the API writes them: ``2026-11-22T10:00:00Z``, with the
    microseconds when they are not zero."""
    when = _EPOCH + timedelta(microseconds=us)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if when.microsecond:
        text += f".{when.microsecond:06d}"
    return text + "Z"
