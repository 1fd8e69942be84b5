"""Order-entry bodies decoded by msgspec, in C: the busiest requests skip pydantic.

These mirror :class:`api.schemas.OrderIn` and :class:`api.schemas.BatchIn` field for field
(the OpenAPI schema of the routes is taken from those), with the same refusals: unknown
fields, wrong types, out-of-range lengths, unknown enumeration values, text that breaks
the text rule of :mod:`api.rules`, decimals outside their rules (the twins' own), times
that are not RFC 3339, and a key given twice.

A duplicate key cannot be seen once msgspec has decoded a body (the last one wins), and
parsing every order twice would cost the hottest path a second parse. Counting quotes
finds them instead. Without a backslash, a quote in JSON only opens or closes a string,
and an order's strings are its keys (field names: any other key is refused) and its
string values; so a body whose keys each appear once and which leaves every defaulted
field out holds exactly :func:`_quotes` of them, computed from the decoded order. A key
given twice adds at least the two quotes of its name, so a body with as many quotes as
that has no repeated key; one with more (a repeat, a default or a null written out) is
looked at closer: a single order by counting each field's quoted name, and when one
appears twice, or for a batch, by parsing it again exactly
(:func:`api.endpoint.check_json`). A backslash (an escaped key such as ``"\u0073ide"``
defeats counting) always takes the exact parse.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Annotated, Any, Literal

import msgspec

from api.endpoint import check_json
from api.errors import ApiError
from api.rules import Refused, text_refusal
from api.schemas import PRICE, QUANTITY, SYMBOL_PATTERN
from api.views import parse_time
from exchange.refusals import Refusal
from exchange.units import Price, Quantity

__all__ = [
    "BatchWire",
    "OrderWire",
    "decode_batch",
    "decode_order",
    "price_units",
    "quantity_units",
    "to_batch",
    "to_order",
]

_Dec = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]


class OrderWire(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    instrument: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    side: Literal["buy", "sell"]
    quantity: _Dec
    type: Literal["limit", "market"] = "limit"
    price: _Dec | None = None
    time_in_force: Literal["gtc", "gtd", "ioc", "fok"] | None = None
    expire_time: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None
    post_only: bool = False
    client_order_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    stp: Literal["cancel_newest", "cancel_oldest", "cancel_both", "decrement"] = "cancel_newest"


class BatchWire(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    orders: Annotated[list[OrderWire], msgspec.Meta(min_length=1, max_length=100)]


#: A \u escape of a UTF-16 surrogate (half of a pair, or a lone one).
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")

_LONE = re.compile("[\ud800-\udfff]")
_SYMBOL = re.compile(SYMBOL_PATTERN)

_order = msgspec.json.Decoder(OrderWire)
_batch = msgspec.json.Decoder(BatchWire)
#: The quoted field names: the only keys an order may hold, so the only ones it can repeat.
_LITERALS = tuple(f'"{name}"'.encode() for name in OrderWire.__struct_fields__)


def _invalid(exc: Exception) -> ApiError:
    message = str(exc)
    if isinstance(exc, msgspec.ValidationError) and "Object contains unknown field" in message:
        message = message.replace("Object contains unknown field", "unknown field")
    return ApiError(Refusal.INVALID_REQUEST, reason=message[:300])


@functools.lru_cache(maxsize=4096)
def price_units(text: str | None) -> Price | None:
    """A price in minor units. Cached (an ApiError is raised, not cached): prices and
    sizes repeat."""
    value = PRICE.parse(text, "price")
    return None if value is None else Price(value)


@functools.lru_cache(maxsize=4096)
def quantity_units(text: str | None) -> Quantity | None:
    """A quantity in minor units, cached like :func:`price_units`."""
    value = QUANTITY.parse(text, "quantity")
    return None if value is None else Quantity(value)


def _text_checked(order: OrderWire, where: str = "") -> OrderWire:
    """The order, if its text keeps the text rule and its symbol the symbol pattern. (Its
    decimals and time are checked as they are converted: :func:`api.routes.orders.
    to_operation`, with the same codes.)"""
    if _SYMBOL.fullmatch(order.instrument) is None:
        refusal = text_refusal(order.instrument) or Refused(
            Refusal.INVALID_REQUEST, "letters, digits and dashes"
        )
        raise refusal.api(where + "instrument")
    for name, value in (
        ("client_order_id", order.client_order_id),
        ("expire_time", order.expire_time),
    ):
        if value is not None:
            refused = text_refusal(value)
            if refused is not None:
                raise refused.api(where + name)
    return order


def _checked(order: OrderWire, where: str) -> OrderWire:
    """The order of a batch, if it keeps every rule the schema states: a batch that breaks
    one is refused whole, while what the exchange refuses (a price off the tick, say)
    refuses one order of it."""
    _text_checked(order, where)
    try:
        price_units(order.price)
        quantity_units(order.quantity)
    except ApiError as exc:
        raise ApiError(exc.code, where + exc.message) from None
    if order.expire_time is not None:
        try:
            parse_time(order.expire_time)
        except ValueError as exc:
            raise ApiError(
                Refusal.INVALID_EXPIRE_TIME, field=f"{where}expire_time", reason=exc
            ) from None
    return order


def _quotes(order: OrderWire) -> int:
    """The quotes in the JSON of ``order`` when it gives each of its fields once and
    leaves out those that hold their default: two for a key, two more for a string."""
    count = 12  # instrument, side and quantity: a key and a string each
    if order.price is not None:
        count += 4
    if order.type != "limit":
        count += 4
    if order.time_in_force is not None:
        count += 4
    if order.expire_time is not None:
        count += 4
    if order.post_only:
        count += 2
    if order.client_order_id is not None:
        count += 4
    if order.stp != "cancel_newest":
        count += 4
    return count


def _decode(decoder: msgspec.json.Decoder[Any], body: bytes) -> Any:
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise _invalid(exc) from exc
    except msgspec.DecodeError as exc:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(Refusal.INVALID_ENCODING) from exc
        where = _surrogate_at(body) if _SURROGATE.search(body) else None
        if where is not None:
            # msgspec refuses a lone surrogate (``"\ud800"``) as malformed JSON; it is
            # JSON, and refused like any other forbidden character.
            raise ApiError(
                Refusal.INVALID_CHARACTERS,
                reason=f"{where}: a lone UTF-16 surrogate is not allowed",
            ) from exc
        raise _invalid(exc) from exc
    except RecursionError as exc:
        raise ApiError(Refusal.INVALID_REQUEST, reason="the body is nested too deeply") from exc


def _surrogate_at(body: bytes) -> str | None:
    """Where (``orders.0.client_order_id``) the JSON ``body`` holds a string with a lone
    surrogate, if it is JSON that Python reads and it does."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None

    def find(node: Any, path: str) -> str | None:
        if isinstance(node, str):
            return path if _LONE.search(node) else None
        if isinstance(node, dict | list):
            for key, child in node.items() if isinstance(node, dict) else enumerate(node):
                found = find(child, f"{path}.{key}" if path else str(key))
                if found is not None:
                    return found
        return None

    return find(value, "")


def decode_order(body: bytes) -> OrderWire:
    order: OrderWire = _decode(_order, body)
    if b"\\" in body:
        check_json(body)
    elif body.count(b'"') != _quotes(order):
        for literal in _LITERALS:  # a field named twice, or a default written out?
            if body.count(literal) > 1:
                check_json(body)
                break
    return _text_checked(order)


def decode_batch(body: bytes) -> BatchWire:
    batch: BatchWire = _decode(_batch, body)
    if b"\\" in body or body.count(b'"') != 2 + sum(map(_quotes, batch.orders)):
        check_json(body)
    for i, order in enumerate(batch.orders):
        _checked(order, f"orders.{i}.")
    return batch


def to_order(value: object) -> OrderWire:
    """An already-parsed JSON object (a WebSocket message) -> an order body."""
    try:
        order = msgspec.convert(value, OrderWire)
    except msgspec.ValidationError as exc:
        raise _invalid(exc) from exc
    return _text_checked(order)


def to_batch(value: object) -> BatchWire:
    """An already-parsed JSON list of orders (a WebSocket message) -> a batch body."""
    try:
        batch = msgspec.convert({"orders": value}, BatchWire)
    except msgspec.ValidationError as exc:
        raise _invalid(exc) from exc
    for i, order in enumerate(batch.orders):
        _checked(order, f"orders.{i}.")
    return batch
