"""Order entry finds a repeated key without parsing every body twice (api.wire counts
quotes, then field names): whatever the keys, values and escapes, a body is refused with
``duplicate_key`` exactly when one of its objects names a key twice."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.errors import ApiError
from api.wire import OrderWire, decode_batch, decode_order

#: Values of the right type for each field, defaults, nulls and field names included.
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "instrument": st.sampled_from(["FP16-H-20261122T02", "side", "price"]),
    "side": st.sampled_from(["buy", "sell"]),
    "quantity": st.sampled_from(["1", "0.1", "007.50"]),
    "type": st.sampled_from(["limit", "market"]),
    "price": st.sampled_from([None, "20", "19.95"]),
    "time_in_force": st.sampled_from([None, "gtc", "ioc"]),
    "expire_time": st.sampled_from([None, "2026-11-22T05:00:00Z"]),
    "post_only": st.booleans(),
    "client_order_id": st.sampled_from([None, "side", 'a"b', "type", "orders", "\u00e9"]),
    "stp": st.sampled_from(["cancel_newest", "decrement"]),
}
REQUIRED = ("instrument", "side", "quantity")


def test_every_field_has_values() -> None:
    assert set(VALUES) == set(OrderWire.__struct_fields__)


def _key(name: str, escape: bool) -> str:
    if escape:  # "\u0073ide": the same key, which a literal count would miss
        return '"\\u' + f"{ord(name[0]):04x}" + name[1:] + '"'
    return json.dumps(name)


@st.composite
def order_objects(draw: st.DrawFn) -> tuple[str, bool]:
    """(an order object's JSON text, whether it names a key twice)."""
    optional = draw(st.lists(st.sampled_from(sorted(set(VALUES) - set(REQUIRED))), unique=True))
    repeated = draw(st.lists(st.sampled_from(sorted(VALUES)), max_size=2))
    names = [*REQUIRED, *optional, *repeated]
    names = draw(st.permutations(names))
    members = [
        f"{_key(n, draw(st.booleans()) and draw(st.booleans()))}: {json.dumps(draw(VALUES[n]))}"
        for n in names
    ]
    spacing = draw(st.sampled_from([", ", ",", " ,\n "]))
    return "{" + spacing.join(members) + "}", len(set(names)) < len(names)


def _refused_for_a_repeat(decode: Any, body: bytes) -> bool:
    try:
        decode(body)
    except ApiError as exc:
        return exc.code == "duplicate_key"
    return False


@given(order_objects())
def test_a_single_order_is_refused_exactly_when_a_key_repeats(order: tuple[str, bool]) -> None:
    text, repeats = order
    assert _refused_for_a_repeat(decode_order, text.encode()) == repeats, text


@given(st.lists(order_objects(), min_size=1, max_size=5), st.booleans())
def test_a_batch_is_refused_exactly_when_a_key_repeats(
    orders: list[tuple[str, bool]], orders_twice: bool
) -> None:
    items = "[" + ", ".join(text for text, _ in orders) + "]"
    body = '{"orders": ' + items + (', "orders": ' + items if orders_twice else "") + "}"
    repeats = orders_twice or any(r for _, r in orders)
    assert _refused_for_a_repeat(decode_batch, body.encode()) == repeats, body


@pytest.mark.parametrize(
    "body",
    [
        b'{"instrument": "X", "side": "buy", "side": "buy", "quantity": "1"}',
        b'{"instrument": "X", "side": "buy", "quantity": "1", "price": null, "price": "2"}',
        b'{"instrument": "X", "side": "buy", "quantity": "1", '
        b'"post_only": false, "post_only": true}',
    ],
)
def test_a_repeat_of_a_default_or_a_null_is_found_too(body: bytes) -> None:
    assert _refused_for_a_repeat(decode_order, body)
