"""The WebSocket at /v1/ws: book snapshot then deltas whose sequence and prev_sequence
chain, trades, the private orders channel (own account only), order entry over the socket
with results carrying the request id, and gap detection (a client holding S applies a
message when prev_sequence <= S < sequence)."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest

from api import ws as ws_module
from tests.api.conftest import Api, Trader

_barrier = itertools.count()


def drain(ws: Any) -> list[dict[str, Any]]:
    """Every message queued for this socket so far: a ping is answered after them."""
    tag = f"barrier-{next(_barrier)}"
    ws.send_json({"op": "ping", "id": tag})
    out = []
    while True:
        msg = ws.receive_json()
        if msg.get("type") == "pong" and msg.get("id") == tag:
            return out
        out.append(msg)


def result_of(ws: Any, request_id: str, seen: list[dict[str, Any]]) -> dict[str, Any]:
    """Read until the result of ``request_id``; other messages are kept in ``seen``."""
    while True:
        msg = ws.receive_json()
        if msg.get("type") == "result" and msg.get("id") == request_id:
            return msg
        seen.append(msg)


def subscribe(ws: Any, *channels: str) -> list[dict[str, Any]]:
    ws.send_json({"op": "subscribe", "id": "sub", "channels": list(channels)})
    return drain(ws)


def applies(held: int, msg: dict[str, Any]) -> bool:
    return bool(msg["prev_sequence"] <= held < msg["sequence"])


def rebuild(snapshot: dict[str, Any], deltas: list[dict[str, Any]]) -> dict[str, Any]:
    book = {
        "buy": {Decimal(p): q for p, q in snapshot["bids"]},
        "sell": {Decimal(p): q for p, q in snapshot["asks"]},
    }
    for d in deltas:
        level = book[d["side"]]
        if Decimal(d["quantity"]) == 0:
            level.pop(Decimal(d["price"]), None)
        else:
            level[Decimal(d["price"])] = d["quantity"]
    bids = sorted(book["buy"].items(), reverse=True)
    asks = sorted(book["sell"].items())
    return {
        "bids": [[str(p.normalize()), q] for p, q in bids],
        "asks": [[str(p.normalize()), q] for p, q in asks],
    }


def norm(levels: list[list[str]]) -> list[list[str]]:
    return [[str(Decimal(p).normalize()), q] for p, q in levels]


def market(api: Api) -> tuple[str, Trader, Trader, Trader]:
    sym = api.market()[0]
    a, b, s = api.trader("alice"), api.trader("bob"), api.trader("seller")
    api.seller(s)
    return sym, a, b, s


def test_book_and_trades_snapshot_then_chained_deltas(api: Api) -> None:
    sym, a, b, s = market(api)
    api.order(s, sym, "sell", "20.5", "2")
    api.order(a, sym, "buy", "19.5", "1")
    with api.client.websocket_connect("/v1/ws") as ws:
        snaps = subscribe(ws, f"book:{sym}", f"trades:{sym}")
        book_snap = next(m for m in snaps if m["channel"] == f"book:{sym}")
        trade_snap = next(m for m in snaps if m["channel"] == f"trades:{sym}")
        assert book_snap["type"] == trade_snap["type"] == "snapshot"
        rest = api.ok(api.get(f"/v1/instruments/{sym}/book"))
        assert book_snap["sequence"] == rest["sequence"]
        assert (norm(book_snap["bids"]), norm(book_snap["asks"])) == (
            norm(rest["bids"]),
            norm(rest["asks"]),
        )
        assert trade_snap["trades"] == []

        # activity: new levels, a level growing, a trade eating a level, a cancel
        o = api.order(b, sym, "buy", "19.8", "1")
        api.order(a, sym, "buy", "19.5", "2")
        api.order(b, sym, "buy", "20.5", "1.5")  # takes 1.5 of the 2 offered
        api.ok(api.delete(f"/v1/orders/{o['id']}", headers=b.headers))
        api.order(s, sym, "sell", "19.5", "0.5")  # hits the 19.5 bids
        messages = drain(ws)

    deltas = [m for m in messages if m["channel"] == f"book:{sym}"]
    trades = [m for m in messages if m["channel"] == f"trades:{sym}"]
    assert deltas and all(d["type"] == "delta" for d in deltas)
    # the first delta applies on top of the snapshot; each next one chains on the previous
    held = book_snap["sequence"]
    for d in deltas:
        assert applies(held, d), (held, d)
        assert d["prev_sequence"] == held or held == book_snap["sequence"]
        held = d["sequence"]
    seqs = [d["sequence"] for d in deltas]
    assert seqs == sorted(set(seqs))
    # snapshot + deltas == the book over REST
    rest = api.ok(api.get(f"/v1/instruments/{sym}/book"))
    assert rest["sequence"] >= held
    rebuilt = rebuild(book_snap, deltas)
    assert rebuilt == {"bids": norm(rest["bids"]), "asks": norm(rest["asks"])}
    # the trades channel carries every trade over REST, in order, chained the same way
    rest_trades = api.walk(f"/v1/instruments/{sym}/trades")
    assert [(t["id"], t["price"], t["quantity"], t["taker_side"]) for t in trades] == [
        (t["id"], t["price"], t["quantity"], t["taker_side"]) for t in rest_trades
    ]
    assert len(trades) == 2
    held = trade_snap["sequence"]
    for t in trades:
        assert applies(held, t), (held, t)
        held = t["sequence"]


def test_gap_detection_and_resubscribe(api: Api) -> None:
    sym, a, _b, _s = market(api)
    with api.client.websocket_connect("/v1/ws") as early:
        snap = subscribe(early, f"book:{sym}")[0]
        for i in range(5):
            api.order(a, sym, "buy", f"19.{i}", "1")
        deltas = drain(early)
        assert len(deltas) == 5
        # a client that missed message k sees, in message k + 1, prev_sequence > what it holds
        for k in range(len(deltas) - 1):
            held = deltas[k - 1]["sequence"] if k else snap["sequence"]
            assert applies(held, deltas[k])
            assert not applies(held, deltas[k + 1]), "a skipped message went unnoticed"
        # a duplicate (already applied) message is not applied twice
        assert not applies(deltas[-1]["sequence"], deltas[-1])

        # a late subscriber: its snapshot is current and the next delta applies on it,
        # although the channel's previous message was sent before it subscribed
        with api.client.websocket_connect("/v1/ws") as late:
            late_snap = subscribe(late, f"book:{sym}")[0]
            assert late_snap["sequence"] == deltas[-1]["sequence"]
            api.order(a, sym, "buy", "18", "1")
            (late_delta,) = drain(late)
            (early_delta,) = drain(early)
            assert late_delta == early_delta
            assert applies(late_snap["sequence"], late_delta)
            assert applies(deltas[-1]["sequence"], early_delta)
        # unsubscribe stops the deltas; resubscribing gives a fresh snapshot
        early.send_json({"op": "unsubscribe", "channels": [f"book:{sym}"]})
        drain(early)
        api.order(a, sym, "buy", "18.5", "1")
        assert drain(early) == []
        fresh = subscribe(early, f"book:{sym}")[0]
        rest = api.ok(api.get(f"/v1/instruments/{sym}/book"))
        assert fresh["type"] == "snapshot" and fresh["sequence"] == rest["sequence"]
        assert norm(fresh["bids"]) == norm(rest["bids"])
        # unknown channels and malformed messages get errors, not a dropped socket
        (err,) = subscribe(early, "book:NOPE")
        assert err["type"] == "error" and err["error"]["code"] == "unknown_channel"
        early.send_text("not json")
        assert drain(early)[0]["error"]["code"] == "invalid_json"
        early.send_json({"op": "explode"})
        assert drain(early)[0]["error"]["code"] == "unknown_op"


def test_private_orders_channel_is_per_account(api: Api) -> None:
    sym, a, b, s = market(api)
    with api.client.websocket_connect("/v1/ws") as anon:
        (err,) = subscribe(anon, "orders")
        assert err["type"] == "error" and err["error"]["code"] == "unauthorized"
        anon.send_json({"op": "auth", "id": "x", "key": "sk_wrong-key-000000000000"})
        assert drain(anon)[0]["error"]["code"] == "unauthorized"
    with (
        api.client.websocket_connect("/v1/ws", headers=a.headers) as wa,
        api.client.websocket_connect(f"/v1/ws?key={b.key}") as wb,
    ):
        assert subscribe(wa, "orders")[0]["type"] == "subscribed"
        assert subscribe(wb, "orders")[0]["type"] == "subscribed"
        oa = api.order(a, sym, "buy", "19.5", "1")
        ob = api.order(b, sym, "buy", "19.6", "1")
        api.order(s, sym, "sell", "19.5", "2")  # fills both
        api.ok(api.delete("/v1/orders", headers=a.headers))
        got_a, got_b = drain(wa), drain(wb)
    assert {m["order"]["id"] for m in got_a} == {oa["id"]}
    assert {m["order"]["id"] for m in got_b} == {ob["id"]}
    for got in (got_a, got_b):
        assert [m["sequence"] for m in got] == list(range(1, len(got) + 1))
        assert got[-1]["order"]["status"] == "filled"
        assert all(m["channel"] == "orders" and m["type"] == "order" for m in got)


def test_order_entry_over_the_socket(api: Api) -> None:
    sym, a, b, _s = market(api)
    body = {"instrument": sym, "side": "buy", "price": "19.5", "quantity": "2"}
    with api.client.websocket_connect("/v1/ws") as ws:
        ws.send_json({"op": "place", "id": "early", "order": body})
        seen: list[dict[str, Any]] = []
        assert result_of(ws, "early", seen)["error"]["code"] == "unauthorized"
        ws.send_json({"op": "auth", "id": "login", "key": a.key})
        assert drain(ws)[0] == {"type": "authenticated", "id": "login", "account": a.id}
        subscribe(ws, "orders")

        ws.send_json({"op": "place", "id": "p1", "order": {**body, "client_order_id": "ws-1"}})
        placed = result_of(ws, "p1", seen)["result"]
        assert placed["status"] == "open" and placed["client_order_id"] == "ws-1"
        ws.send_json(
            {"op": "place", "id": "p1-again", "order": {**body, "client_order_id": "ws-1"}}
        )
        assert result_of(ws, "p1-again", seen)["result"] == placed  # idempotent
        ws.send_json({"op": "amend", "id": "a1", "order_id": placed["id"], "price": "19.7"})
        amended = result_of(ws, "a1", seen)["result"]
        assert (amended["id"], amended["price"]) == (placed["id"], "19.7")
        ws.send_json({"op": "amend", "id": "a2", "order_id": placed["id"], "quantity": "1"})
        assert result_of(ws, "a2", seen)["result"]["quantity"] == "1"
        ws.send_json({"op": "cancel", "id": "c1", "order_id": placed["id"]})
        assert result_of(ws, "c1", seen)["result"]["status"] == "cancelled"

        # refusals come back as results with the same id
        refusals = [
            ({"op": "place", "id": "r1", "order": {**body, "price": "19.555"}}, "invalid_tick"),
            ({"op": "place", "id": "r2", "order": {**body, "owner": b.id}}, "invalid_request"),
            ({"op": "place", "id": "r3", "order": "nope"}, "invalid_request"),
            ({"op": "cancel", "id": "r4", "order_id": placed["id"]}, "order_not_open"),
            ({"op": "cancel", "id": "r5", "order_id": "1"}, "invalid_request"),
            ({"op": "amend", "id": "r6", "order_id": placed["id"], "price": "NaN"}, None),
        ]
        ops = api.operations()
        for msg, code in refusals:
            ws.send_json(msg)
            result = result_of(ws, msg["id"], seen)
            assert "result" not in result, result
            if code is not None:
                assert result["error"]["code"] == code, (msg, result)
        assert api.operations() == ops

        # another trader's order is not found over the socket either, and is untouched
        theirs = api.order(b, sym, "buy", "19", "1")
        for op in ({"op": "cancel"}, {"op": "amend", "price": "18"}):
            ws.send_json({**op, "id": "x", "order_id": theirs["id"]})
            assert result_of(ws, "x", seen)["error"]["code"] == "order_not_found"
        assert api.ok(api.get(f"/v1/orders/{theirs['id']}", headers=b.headers)) == theirs
        seen += drain(ws)

    # the orders channel told A about each change of its order, and nothing about B's
    updates = [m for m in seen if m.get("channel") == "orders" and m.get("type") == "order"]
    assert {m["order"]["id"] for m in updates} == {placed["id"]}
    assert [m["order"]["status"] for m in updates][-1] == "cancelled"
    assert len(api.walk("/v1/orders", a.headers)) == 1


def test_batch_order_entry_over_the_socket(api: Api) -> None:
    """place_batch: each order accepted or refused on its own, in order, one commit."""
    sym, a, _b, _s = market(api)
    good = {"instrument": sym, "side": "buy", "price": "19.5", "quantity": "1"}
    with api.client.websocket_connect("/v1/ws", headers=a.headers) as ws:
        seen: list[dict[str, Any]] = []
        ops = api.operations()
        orders = [good, {**good, "price": "19.555"}, {**good, "price": "19.4"}]
        ws.send_json({"op": "place_batch", "id": "b1", "orders": orders})
        results = result_of(ws, "b1", seen)["result"]["results"]
        assert [r.get("status") for r in results] == ["open", None, "open"]
        assert results[1]["error"]["code"] == "invalid_tick"
        assert [r["price"] for r in (results[0], results[2])] == ["19.5", "19.4"]
        assert api.operations() == ops + 2
        # a malformed batch is refused whole, and changes nothing
        for bad in ([], "nope", [good] * 101, [{**good, "owner": 1}]):
            ws.send_json({"op": "place_batch", "id": "b2", "orders": bad})
            assert result_of(ws, "b2", seen)["error"]["code"] == "invalid_request"
        assert api.operations() == ops + 2
    mine = api.walk("/v1/orders", a.headers)
    assert sorted(o["price"] for o in mine) == ["19.4", "19.5"]


@pytest.mark.timeout(60)
def test_pipelined_orders_are_all_answered_and_free_their_slots(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Single orders pipelined over one socket, more of them than its in-flight slots:
    every one is answered once, with its own outcome, whether accepted, refused by the
    exchange, refused before it reached the exchange, or a resubmission; the ones that
    reached the exchange in the order sent. None keeps its slot: a leaked slot would stop
    the socket reading, and the test would time out."""
    monkeypatch.setattr(ws_module, "IN_FLIGHT_MAX", 2)
    sym, a, _b, _s = market(api)
    body = {"instrument": sym, "side": "buy", "price": "19.5", "quantity": "1"}
    kinds = [
        ({**body, "client_order_id": "same"}, "open"),
        ({**body, "price": "19.555"}, "invalid_tick"),  # refused by the exchange
        ({**body, "owner": 1}, "invalid_request"),  # refused before it
        ({**body, "client_order_id": "same"}, "open"),  # the same order again
        ({**body, "price": "19.4"}, "open"),
    ]
    ops = api.operations()
    sent: dict[str, str] = {}
    got: list[dict[str, Any]] = []
    with api.client.websocket_connect("/v1/ws", headers=a.headers) as ws:
        for n in range(4):
            for k, (order, expected) in enumerate(kinds):
                sent[f"{n}-{k}"] = expected
                ws.send_json({"op": "place", "id": f"{n}-{k}", "order": order})
        while len(got) < len(sent):
            msg = ws.receive_json()
            if msg.get("type") == "result":
                got.append(msg)
    assert sorted(m["id"] for m in got) == sorted(sent)
    for msg in got:
        outcome = msg["result"]["status"] if "result" in msg else msg["error"]["code"]
        assert outcome == sent[msg["id"]], msg
    # Refusals before the exchange and resubmissions are answered at once; the rest once
    # committed, in the order sent.
    queued = [i for i in sent if i == "0-0" or i[-1] in "14"]
    assert [m["id"] for m in got if m["id"] in queued] == queued
    same = [m["result"] for m in got if m["id"][-1] in "03"]
    assert all(order == same[0] for order in same)  # resubmissions: the original order
    assert api.operations() == ops + 1 + 4  # the order under "same" once, four at 19.4
