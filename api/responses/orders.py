"""Orders and fills. POST /v1/orders and /v1/orders/batch render their answers with
msgspec outside FastAPI's routing; ``OrderOut`` and ``BatchOut`` document them."""

from __future__ import annotations

from typing import Literal

from api.responses.common import (
    ErrorOut,
    Liquidity,
    OrderKind,
    ResponseModel,
    Side,
    Stp,
    TimeInForce,
)

__all__ = [
    "AccountFillOut",
    "BatchOut",
    "CancelAllOut",
    "FillOut",
    "OrderOut",
]


class FillOut(ResponseModel):
    """A fill of one order, inside the order."""

    trade_id: int
    contract_id: int
    price: str
    quantity: str
    fee: str
    liquidity: Liquidity
    time: str


class OrderOut(ResponseModel):
    """``price`` is a limit order's; a market order has a ``protection_price`` instead."""

    id: int
    client_order_id: str | None
    instrument: str
    side: Side
    type: OrderKind
    price: str | None
    protection_price: str | None
    quantity: str
    filled_quantity: str
    remaining_quantity: str
    average_price: str | None
    status: Literal["open", "partially_filled", "filled", "cancelled", "expired"]
    time_in_force: TimeInForce
    expire_time: str | None
    post_only: bool
    stp: Stp
    created_at: str
    updated_at: str
    fills: list[FillOut]


class BatchOut(ResponseModel):
    """One entry per order of the request, in its order: the order, or why it was refused."""

    results: list[OrderOut | ErrorOut]


class CancelAllOut(ResponseModel):
    cancelled: list[OrderOut]


class AccountFillOut(ResponseModel):
    """A fill of one of the caller's orders; a trade's two fills share its trade_id."""

    trade_id: int
    order_id: int
    contract_id: int
    instrument: str
    side: Side
    price: str
    quantity: str
    fee: str
    liquidity: Liquidity
    time: str
