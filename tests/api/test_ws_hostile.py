"""The WebSocket half of the hostile-input suite, on SQLite and PostgreSQL.

Hypothesis sends every message type (subscribe, unsubscribe, auth, place, place_batch,
amend, cancel, ping, and made-up ops) with hostile content: NUL, control and non-ASCII
characters, lone surrogates, very long strings, wrong types, deep nesting, unknown
fields, binary frames and text that is not JSON, over connections without a key, with
one in a header or the query, and after an auth message. Every answer must be a
well-formed message with a stable snake_case code; afterwards the server still serves,
the hub holds nothing of the closed connections, conservation holds, and the app opened
again on the same database rebuilds the same state.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.ws import Hub
from tests.api.conftest import Api, open_api
from tests.api.test_ws_limits import drain

pytestmark = pytest.mark.timeout(300)

OPS = ["subscribe", "unsubscribe", "auth", "place", "place_batch", "amend", "cancel", "ping"]
FIELDS = ["op", "id", "channels", "key", "order", "orders", "order_id", "price", "quantity"]
TYPES = {"error", "result", "pong", "snapshot", "subscribed", "authenticated", "order"}
TYPES |= {"delta", "trade"}
CODE = re.compile(r"[a-z][a-z0-9_]*")

SPECIAL = [
    "\x00",
    "\x00" * 64,
    "\x1b[31m\r\n\t\x7f",
    "\u202e\u200b\ufeff",
    "\ud800",
    "\udfff\ud800",
    "٣٤",
    "𝟙𝟚",
    "ﬀ",
    "sk_" + "A" * 43,
    "book:",
    "trades:",
    "orders",
    "Bearer x",
    "NaN",
    "1e400",
    "-0",
    "  19.5 ",
]
hostile_text = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=40),
    st.sampled_from(SPECIAL),
    st.builds(lambda c, n: c * n, st.sampled_from(["a", "\x00", "é", "["]), st.integers(1, 3000)),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=12,
)


def deep(n: int, value: str = "1") -> str:
    return "[" * n + value + "]" * n


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` three times in four, else ``bad``."""
    return st.integers(0, 3).flatmap(lambda n: bad if n == 0 else good)


@st.composite
def plausible_order(draw: st.DrawFn, symbols: list[str]) -> dict[str, Any]:
    """An order body close to valid, some of its fields hostile."""
    order: dict[str, Any] = {
        "instrument": draw(mostly(st.sampled_from(symbols), hostile_text)),
        "side": draw(mostly(st.sampled_from(["buy", "sell"]), json_values)),
        "price": draw(mostly(st.sampled_from(["19.5", "20.01", "19.9", "19.555"]), json_values)),
        "quantity": draw(mostly(st.sampled_from(["0.1", "1", "0.5"]), json_values)),
    }
    if draw(st.integers(0, 4)) == 0:
        field = draw(st.sampled_from(["type", "client_order_id", "stp", "owner", "post_only"]))
        order[field] = draw(json_values)
    return order


#: The fields each op takes.
OP_FIELDS = {
    "subscribe": ["channels"],
    "unsubscribe": ["channels"],
    "auth": ["key"],
    "place": ["order"],
    "place_batch": ["orders"],
    "amend": ["order_id", "price", "quantity"],
    "cancel": ["order_id"],
    "ping": [],
}


@st.composite
def message(draw: st.DrawFn, symbols: list[str], key: str) -> dict[str, Any]:
    """A message of one of the ops (or a made-up one) with its fields mostly plausible,
    sometimes of the wrong type, missing, or joined by unknown ones."""
    op = draw(mostly(st.sampled_from(OPS), hostile_text | json_values))
    channel_names = [f"{kind}:{s}" for kind in ("book", "trades") for s in symbols]
    good = {
        "channels": st.lists(mostly(st.sampled_from([*channel_names, "orders"]), hostile_text)),
        "key": mostly(st.sampled_from([key, key + "x", ""]), hostile_text),
        "order": plausible_order(symbols),
        "orders": st.lists(plausible_order(symbols), max_size=4),
        "order_id": mostly(st.integers(0, 20), json_values),
        "price": mostly(st.sampled_from(["19.6", "0.001", "19.45"]), json_values),
        "quantity": mostly(st.sampled_from(["0.2", "0.1"]), json_values),
        "id": mostly(st.integers(0, 10**6) | st.text(max_size=10), hostile_text | json_values),
    }
    msg: dict[str, Any] = {"op": op}
    fields = list(OP_FIELDS.get(op, [])) if isinstance(op, str) else []
    fields += ["id"] if draw(st.booleans()) else []
    if draw(st.integers(0, 5)) == 0:
        fields.append(draw(st.sampled_from(FIELDS[1:])))
    for field in fields:
        if draw(st.integers(0, 9)) == 0:
            continue  # a field left out
        msg[field] = draw(good[field])
    if draw(st.integers(0, 9)) == 0:
        msg[draw(hostile_text)] = draw(json_values)  # an unknown field
    return msg


@st.composite
def frame(draw: st.DrawFn, symbols: list[str], key: str) -> tuple[str, Any]:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return "bytes", draw(st.binary(max_size=200))
    if kind == 1:
        return "text", draw(hostile_text)  # mostly not JSON at all
    if kind == 2:  # deep nesting, at the top or inside a field of a real op
        n = draw(st.sampled_from([50, 1_000, 5_000, 30_000]))
        op = draw(st.sampled_from(OPS))
        field = draw(st.sampled_from(FIELDS[1:]))
        return "text", draw(st.sampled_from([deep(n), f'{{"op": "{op}", "{field}": {deep(n)}}}']))
    text = json.dumps(draw(message(symbols, key)), ensure_ascii=draw(st.booleans()))
    return "text", text


def check_answer(msg: Any) -> None:
    assert isinstance(msg, dict) and msg.get("type") in TYPES, msg
    if "error" in msg:
        assert CODE.fullmatch(msg["error"]["code"]), msg
        assert msg["error"]["code"] != "internal_error", msg
        assert isinstance(msg["error"]["message"], str)


def hub_of(api: Api) -> Hub:
    hub: Hub = api.client.app.state.hub  # type: ignore[attr-defined]
    return hub


def test_hostile_websocket_messages(db_url: str) -> None:
    with open_api(db_url) as api:
        symbols = api.market()
        trader = api.trader("alice")
        seller = api.trader("seller")
        api.seller(seller)
        api.order(seller, symbols[0], "sell", "20.5", "1")
        hub = hub_of(api)
        connect_as = [
            ("/v1/ws", {}, None),
            ("/v1/ws", trader.headers, None),
            (f"/v1/ws?key={trader.key}", {}, None),
            ("/v1/ws", {}, {"op": "auth", "key": trader.key}),
        ]

        @settings(
            max_examples=250,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(
            who=st.sampled_from(connect_as),
            frames=st.lists(frame(symbols, trader.key), min_size=1, max_size=6),
        )
        def hostile(who: tuple[str, dict[str, str], Any], frames: list[tuple[str, Any]]) -> None:
            url, headers, first = who
            with api.client.websocket_connect(url, headers=headers) as ws:
                if first is not None:
                    ws.send_json(first)
                for kind, payload in frames:
                    if kind == "bytes":
                        ws.send_bytes(payload)
                    else:
                        ws.send_text(payload)
                for msg in drain(ws):
                    check_answer(msg)
                # still usable after all that
                ws.send_json({"op": "subscribe", "channels": [f"book:{symbols[0]}"]})
                (snapshot,) = [m for m in drain(ws) if m.get("type") == "snapshot"]
                assert snapshot["channel"] == f"book:{symbols[0]}"

        hostile()
        # nothing of the closed connections is left in the hub
        assert hub.subscribers == {} and hub.watchers == {}
        assert hub.per_address == {} and hub.per_account == {} and hub.connections == 0
        channels = {f"{kind}:{s}" for kind in ("book", "trades") for s in symbols}
        assert set(hub.last_seq) <= channels
        # the server keeps serving
        with api.client.websocket_connect("/v1/ws", headers=trader.headers) as ws:
            ws.send_json({"op": "subscribe", "channels": ["orders", f"book:{symbols[0]}"]})
            assert {m["type"] for m in drain(ws)} == {"subscribed", "snapshot"}
        api.order(trader, symbols[0], "buy", "19.5", "1")
        ctx = api.client.app.state.context  # type: ignore[attr-defined]
    ctx.service.core.check()  # conservation and every hold, with the app stopped
    state = ctx.service.core.state_hash()
    with open_api(db_url) as again:
        again_ctx = again.client.app.state.context  # type: ignore[attr-defined]
        again_ctx.service.core.check()
        assert again_ctx.service.core.state_hash() == state
        assert again.ok(again.get("/v1/health"))["status"] == "ok"
