"""Order-entry bodies decoded by msgspec, in C: the busiest requests skip pydantic.

These mirror :class:`api.schemas.OrderIn` and :class:`api.schemas.BatchIn` field for field
(the OpenAPI schema of the routes is taken from those), with the same refusals: unknown
fields, wrong types, out-of-range lengths and unknown enumeration values.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from api.errors import ApiError

__all__ = ["BatchWire", "OrderWire", "decode_batch", "decode_order", "to_batch", "to_order"]

_Dec = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]


class OrderWire(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    instrument: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    side: Literal["buy", "sell"]
    quantity: _Dec
    type: Literal["limit", "market"] = "limit"
    price: _Dec | None = None
    time_in_force: Literal["gtc", "gtd", "ioc", "fok"] | None = None
    expire_time: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    post_only: bool = False
    client_order_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    stp: Literal["cancel_newest", "cancel_oldest", "cancel_both", "decrement"] = "cancel_newest"


class BatchWire(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    orders: Annotated[list[OrderWire], msgspec.Meta(min_length=1, max_length=100)]


_order = msgspec.json.Decoder(OrderWire)
_batch = msgspec.json.Decoder(BatchWire)


def _invalid(exc: Exception) -> ApiError:
    message = str(exc)
    if isinstance(exc, msgspec.ValidationError) and "Object contains unknown field" in message:
        message = message.replace("Object contains unknown field", "unknown field")
    return ApiError("invalid_request", message[:300])


def _not_blank(order: OrderWire, where: str = "") -> OrderWire:
    """Decimal and symbol strings are stripped before use: blank ones are refused here."""
    for name in ("instrument", "quantity", "price"):
        value = getattr(order, name)
        if value is not None and not value.strip():
            raise ApiError("invalid_request", f"{where}{name}: must not be blank")
    return order


def _decode(decoder: msgspec.json.Decoder[Any], body: bytes) -> object:
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise _invalid(exc) from exc
    except msgspec.DecodeError as exc:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError("invalid_encoding", "the body is not UTF-8", 400) from exc
        raise _invalid(exc) from exc


def decode_order(body: bytes) -> OrderWire:
    order = _decode(_order, body)
    assert isinstance(order, OrderWire)  # for the type checker: the decoder's type
    return _not_blank(order)


def decode_batch(body: bytes) -> BatchWire:
    batch = _decode(_batch, body)
    assert isinstance(batch, BatchWire)  # for the type checker: the decoder's type
    for i, order in enumerate(batch.orders):
        _not_blank(order, f"orders.{i}.")
    return batch


def to_order(value: object) -> OrderWire:
    """An already-parsed JSON object (a WebSocket message) -> an order body."""
    try:
        return _not_blank(msgspec.convert(value, OrderWire))
    except msgspec.ValidationError as exc:
        raise _invalid(exc) from exc


def to_batch(value: object) -> BatchWire:
    """An already-parsed JSON list of orders (a WebSocket message) -> a batch body."""
    try:
        batch = msgspec.convert({"orders": value}, BatchWire)
    except msgspec.ValidationError as exc:
        raise _invalid(exc) from exc
    for i, order in enumerate(batch.orders):
        _not_blank(order, f"orders.{i}.")
    return batch
