"""What a WebSocket client can make the server hold, and what it gets for a message of the
wrong shape: made-up channels leave nothing behind, subscriptions and connections are
bounded, binary frames, deep nesting and every wrong shape of every message type are
answered with a stable code on a socket that stays usable, and a client too slow to read
stops being read and is then closed."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from api import ws as ws_module
from api.ws import Connection, Hub
from tests.api.conftest import Api, Trader
from tests.api.test_ws import drain

pytestmark = pytest.mark.timeout(120)  # a socket the server failed to close would hang


def hub_state(hub: Hub) -> dict[str, Any]:
    """Everything the hub keeps (its dicts, sets and counts), copied."""
    state: dict[str, Any] = {}
    for name, value in vars(hub).items():
        if isinstance(value, dict):
            state[name] = {k: set(v) if isinstance(v, set) else v for k, v in value.items()}
        elif isinstance(value, int | set):
            state[name] = value if isinstance(value, int) else set(value)
    return state


def the_hub(api: Api) -> Hub:
    hub: Hub = api.client.app.state.hub  # type: ignore[attr-defined]
    return hub


def codes(messages: list[dict[str, Any]]) -> list[str]:
    return [m["error"]["code"] for m in messages if "error" in m]


def closed_with(ws: Any) -> tuple[int, list[dict[str, Any]]]:
    """Read until the server closes the socket: (close code, messages before it)."""
    seen = []
    with pytest.raises(WebSocketDisconnect) as closed:
        while True:
            seen.append(ws.receive_json())
    return closed.value.code, seen


def test_made_up_channels_leave_the_hub_as_it_was(api: Api) -> None:
    """Thousands of subscribe and unsubscribe messages naming made-up channels (without a
    key, and with one) each get unknown_channel, and once the sockets close the hub holds
    exactly what it held before."""
    symbols = api.market()
    trader = api.trader("alice")
    hub = the_hub(api)
    before = hub_state(hub)
    made_up = 0
    with (
        api.client.websocket_connect("/v1/ws") as anon,
        api.client.websocket_connect("/v1/ws", headers=trader.headers) as keyed,
    ):
        for n in range(1_500):
            ws = anon if n % 2 else keyed
            names = [f"book:MADE-UP-{n}-{i}" for i in range(4)] + [f"x{n}", "", "\x00" * 9]
            names.append("trades:" + "Z" * 200)  # longer than any channel
            op = "unsubscribe" if n % 3 else "subscribe"
            ws.send_json({"op": op, "id": n, "channels": names})
            made_up += len(names)
            if n % 100 == 0:  # real channels come and go too
                ws.send_json({"op": "subscribe", "channels": [f"book:{symbols[0]}", "orders"]})
                ws.send_json({"op": "unsubscribe", "channels": [f"book:{symbols[0]}", "orders"]})
        got = drain(anon) + drain(keyed)
        assert codes(got).count("unknown_channel") == made_up
        assert set(codes(got)) <= {"unknown_channel", "unauthorized"}  # orders needs a key
        assert len(hub.subscribers) <= 1
    assert hub_state(hub) == before


def test_subscriptions_per_connection_are_bounded(make_api: Callable[..., Any]) -> None:
    with make_api(ws_subscriptions_max=3) as api:
        symbols = api.market()
        assert len(symbols) >= 2
        book = [f"book:{s}" for s in symbols]
        with api.client.websocket_connect("/v1/ws") as ws:
            ws.send_json({"op": "subscribe", "id": "s", "channels": book[:2]})
            ws.send_json({"op": "subscribe", "id": "t", "channels": [f"trades:{symbols[0]}"]})
            assert [m["type"] for m in drain(ws)] == ["snapshot"] * 3
            ws.send_json({"op": "subscribe", "id": "u", "channels": [f"trades:{symbols[1]}"]})
            got = drain(ws)
            assert codes(got) == ["too_many_subscriptions"] and got[0]["id"] == "u"
            # subscribing again to a held channel is a fresh snapshot, not a new channel
            ws.send_json({"op": "subscribe", "channels": [book[0]]})
            assert [m["type"] for m in drain(ws)] == ["snapshot"]
            # a message naming more channels than a connection may hold is refused whole
            ws.send_json({"op": "unsubscribe", "id": "v", "channels": [book[0]] * 4})
            assert codes(drain(ws)) == ["invalid_request"]
            # unsubscribing frees room
            ws.send_json({"op": "unsubscribe", "channels": [book[0]]})
            ws.send_json({"op": "subscribe", "channels": [f"trades:{symbols[1]}"]})
            assert [m["type"] for m in drain(ws)] == ["snapshot"]
            assert len(the_hub(api).subscribers) == 3


def test_a_binary_frame_gets_an_error_and_the_socket_stays_usable(api: Api) -> None:
    with api.client.websocket_connect("/v1/ws") as ws:
        for frame in (b"", b"\x00\xff", json.dumps({"op": "ping", "id": 1}).encode()):
            ws.send_bytes(frame)
            (err,) = drain(ws)
            assert err["type"] == "error" and err["error"]["code"] == "invalid_frame"


def test_deep_nesting_gets_an_error_and_the_socket_stays_usable(api: Api) -> None:
    trader = api.trader("alice")
    deep = "[" * 20_000 + "]" * 20_000
    deep_object = '{"a":' * 9_000 + "1" + "}" * 9_000
    frames = [
        deep,
        deep_object,
        '{"op": "place", "id": "p", "order": ' + deep + "}",
        '{"op": "place_batch", "id": "b", "orders": ' + deep + "}",
        '{"op": "amend", "id": "a", "order_id": 1, "price": ' + deep + "}",
        '{"op": "ping", "id": ' + deep + "}",
        '{"op": "subscribe", "channels": ' + deep + "}",
        '{"op": "auth", "key": ' + deep_object + "}",
        '{"zzz": ' + deep + ', "op": "ping"}',
    ]
    with api.client.websocket_connect("/v1/ws", headers=trader.headers) as ws:
        for frame in frames:
            assert len(frame) < 64 * 1024
            ws.send_text(frame)
            (answer,) = drain(ws)
            assert answer["type"] in ("error", "result") and "result" not in answer, answer
            assert answer["error"]["code"] in ("invalid_json", "invalid_request"), answer


#: Every message type with wrong shapes: (message, answer type, code). Order requests are
#: answered as results, the rest as errors; a wrong id is answered with a null id.
WRONG_SHAPES: list[tuple[Any, str, str]] = [
    ([], "error", "invalid_json"),
    ("ping", "error", "invalid_json"),
    (None, "error", "invalid_json"),
    ({}, "error", "unknown_op"),
    ({"op": 1}, "error", "unknown_op"),
    ({"op": ["ping"]}, "error", "unknown_op"),
    ({"op": "PING"}, "error", "unknown_op"),
    ({"op": "ping\x00"}, "error", "unknown_op"),
    ({"op": "ping", "id": {"a": 1}}, "error", "invalid_request"),
    ({"op": "ping", "id": [1]}, "error", "invalid_request"),
    ({"op": "ping", "id": 2**70}, "error", "invalid_request"),
    ({"op": "ping", "id": "x" * 129}, "error", "invalid_request"),
    ({"op": "ping", "extra": 1}, "error", "invalid_request"),
    ({"op": "auth"}, "error", "invalid_request"),
    ({"op": "auth", "key": 5}, "error", "invalid_request"),
    ({"op": "auth", "key": ["k"]}, "error", "invalid_request"),
    ({"op": "auth", "key": "x" * 500}, "error", "unauthorized"),
    ({"op": "auth", "key": "\x00"}, "error", "unauthorized"),
    ({"op": "subscribe"}, "error", "invalid_request"),
    ({"op": "subscribe", "channels": {"book:X": 1}}, "error", "invalid_request"),
    ({"op": "subscribe", "channels": "orders"}, "error", "invalid_request"),
    ({"op": "subscribe", "channels": [1, 2]}, "error", "invalid_request"),
    ({"op": "subscribe", "channels": ["a"] * 10_000}, "error", "invalid_request"),
    ({"op": "unsubscribe", "channels": [None]}, "error", "invalid_request"),
    ({"op": "unsubscribe", "channels": ["a"] * 10_000}, "error", "invalid_request"),
    ({"op": "place", "id": "p"}, "result", "invalid_request"),
    ({"op": "place", "id": "p", "order": [1]}, "result", "invalid_request"),
    ({"op": "place", "id": "p", "order": {"side": {"a": 1}}}, "result", "invalid_request"),
    ({"op": "place", "id": {"x": 1}, "order": {}}, "result", "invalid_request"),
    ({"op": "place_batch", "id": "b", "orders": {"a": 1}}, "result", "invalid_request"),
    ({"op": "place_batch", "id": "b", "orders": [[1]] * 5}, "result", "invalid_request"),
    ({"op": "place_batch", "id": "b", "orders": []}, "result", "invalid_request"),
    ({"op": "amend", "id": "a"}, "result", "invalid_request"),
    ({"op": "amend", "id": "a", "order_id": "7"}, "result", "invalid_request"),
    ({"op": "amend", "id": "a", "order_id": True}, "result", "invalid_request"),
    ({"op": "amend", "id": "a", "order_id": 7.5}, "result", "invalid_request"),
    ({"op": "amend", "id": "a", "order_id": 999, "price": [1]}, "result", "order_not_found"),
    ({"op": "cancel", "id": "c", "order_id": None}, "result", "invalid_request"),
    ({"op": "cancel", "id": "c", "order_id": 2**64}, "result", "invalid_request"),
    ({"op": "cancel", "id": "c", "order_id": -1}, "result", "order_not_found"),
    ({"op": "cancel", "id": "c", "order_id": 1, "owner": 2}, "result", "invalid_request"),
]


@pytest.mark.parametrize(("message", "kind", "code"), WRONG_SHAPES, ids=lambda v: str(v)[:40])
def test_every_message_type_with_a_wrong_shape_gets_a_stable_code(
    api: Api, message: Any, kind: str, code: str
) -> None:
    trader = api.trader("alice")
    ops = api.operations()
    with api.client.websocket_connect("/v1/ws", headers=trader.headers) as ws:
        ws.send_text(json.dumps(message))
        (answer,) = drain(ws)
        assert (answer["type"], answer["error"]["code"]) == (kind, code), answer
        assert re.fullmatch(r"[a-z][a-z0-9_]*", answer["error"]["code"])
        assert isinstance(answer["error"]["message"], str) and answer["error"]["message"]
        request_id = message.get("id") if isinstance(message, dict) else None
        expected_id = request_id if isinstance(request_id, str) and len(request_id) < 129 else None
        assert answer.get("id") == expected_id
        # the socket is still usable, for order entry too (a refused auth signed it out)
        ws.send_json({"op": "auth", "key": trader.key})
        ws.send_json({"op": "subscribe", "channels": ["orders"]})
        assert [m["type"] for m in drain(ws)] == ["authenticated", "subscribed"]
    assert api.operations() == ops


def test_connections_per_address_and_per_account_are_bounded(
    make_api: Callable[..., AbstractContextManager[Api]],
) -> None:
    """Without a key a connection counts against its address, with one against its
    account (from the moment it authenticates); over either bound the client gets
    too_many_connections and the socket closes with 1008. Over the bound on all
    connections, server_busy and 1013. Closed connections free their place."""
    limits = {
        "ws_connections_per_address_max": 2,
        "ws_connections_per_account_max": 2,
        "ws_connections_max": 5,
    }
    with make_api(**limits) as api:
        a, b = api.trader("alice"), api.trader("bob")
        connect = api.client.websocket_connect
        hub = the_hub(api)
        with connect("/v1/ws") as anon1, connect("/v1/ws") as anon2:
            with connect("/v1/ws") as anon3:
                code, seen = closed_with(anon3)
                assert (code, codes(seen)) == (1008, ["too_many_connections"])
            # a connection with a key does not count against the address
            with connect("/v1/ws", headers=a.headers) as a1:
                # authenticating moves a connection from its address to its account
                anon1.send_json({"op": "auth", "id": 1, "key": a.key})
                assert drain(anon1)[0]["type"] == "authenticated"
                assert hub.per_address == {"testclient": 1} and hub.per_account == {a.id: 2}
                with connect("/v1/ws") as anon4:  # the address has room again
                    assert drain(anon4) == []
                    with connect("/v1/ws", headers=a.headers) as a3:
                        code, seen = closed_with(a3)
                        assert (code, codes(seen)) == (1008, ["too_many_connections"])
                    # authenticating into a full account closes the connection
                    anon4.send_json({"op": "auth", "key": a.key})
                    code, seen = closed_with(anon4)
                    assert (code, codes(seen)) == (1008, ["too_many_connections"])
                with connect("/v1/ws", headers=b.headers) as b1:
                    with connect("/v1/ws", headers=b.headers):
                        assert hub.connections == 5
                        with connect("/v1/ws", headers=b.headers) as b3:
                            code, seen = closed_with(b3)
                            assert (code, codes(seen)) == (1013, ["server_busy"])
                    assert drain(b1) == []
                # a wrong key makes the connection anonymous again, counted by address
                a1.send_json({"op": "auth", "key": "sk_not-a-key-0000000000"})
                assert codes(drain(a1)) == ["unauthorized"]
                assert hub.per_address == {"testclient": 2} and hub.per_account == {a.id: 1}
                assert drain(anon2) == []
        assert hub.connections == 0 and hub.per_address == {} and hub.per_account == {}


class _StalledSocket:
    """A WebSocket whose client reads nothing: a send never returns."""

    def __init__(self) -> None:
        self.closed: int | None = None
        self.stalled = asyncio.Event()

    async def send_text(self, text: str) -> None:
        await self.stalled.wait()

    async def close(self, code: int = 1000) -> None:
        self.closed = code


def test_a_client_too_slow_to_read_stops_being_read_then_is_closed() -> None:
    """Unsent messages are bounded in characters: past half the bound the connection's
    requests stop being read; past the bound what is unsent is dropped, and the client
    gets one too_slow error before the socket closes with 1013."""

    async def scenario() -> None:
        socket = _StalledSocket()
        conn = Connection(socket, "203.0.113.9", limit=10_000)  # type: ignore[arg-type]
        sender = asyncio.create_task(ws_module._sender(conn))
        message = "x" * 1_000
        for _ in range(5):
            conn.send_text(message)
        assert conn.drained.is_set()
        conn.send_text(message)  # over half: the reader waits for the outbox to drain
        assert not conn.drained.is_set() and conn.close_code is None
        for _ in range(5):
            conn.send_text(message)
        assert conn.close_code == 1013
        assert conn.drained.is_set()  # a waiting reader wakes up and sees the close
        (last,) = conn.outbox
        assert json.loads(last)["error"]["code"] == "too_slow"
        assert conn.queued < 200
        conn.send_text(message)  # nothing more is queued on a closing connection
        assert len(conn.outbox) == 1
        socket.stalled.set()  # the client reads again: the error, then the close frame
        await asyncio.wait_for(sender, 10)
        assert socket.closed == 1013 and not conn.outbox

    asyncio.run(scenario())


def test_a_key_in_the_first_message_authenticates(api: Api) -> None:
    trader: Trader = api.trader("alice")
    with api.client.websocket_connect("/v1/ws") as ws:
        ws.send_json({"op": "auth", "id": "login", "key": trader.key})
        assert drain(ws) == [{"type": "authenticated", "id": "login", "account": trader.id}]
        ws.send_json({"op": "subscribe", "channels": ["orders"]})
        assert drain(ws)[0]["type"] == "subscribed"
