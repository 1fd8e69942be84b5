"""The WebSocket at /v1/ws: market data, private order events, and order entry.

Client messages (JSON):
  {"op": "subscribe", "channels": ["book:SYMBOL", "trades:SYMBOL", "orders"]}
  {"op": "unsubscribe", "channels": [...]}
  {"op": "auth", "key": "<api key>"}            (or ?key= / Authorization at connect)
  {"op": "place", "id": "<request id>", "order": {...same body as POST /v1/orders}}
  {"op": "place_batch", "id": "...", "orders": [...up to 100, as POST /v1/orders/batch]}
  {"op": "amend", "id": "...", "order_id": 7, "price"?: "...", "quantity"?: "..."}
  {"op": "cancel", "id": "...", "order_id": 7}
  {"op": "ping"}

Server messages carry ``channel``, ``type`` and ``sequence``. Book and trade messages use
the instrument's gapless event sequence and add ``prev_sequence``, the sequence of the
previous message on that channel: a client that holds sequence S applies a message when
``prev_sequence <= S < sequence`` and otherwise has missed one and resubscribes for a new
snapshot. The ``orders`` channel numbers its messages per account (1, 2, 3, ...).
Messages are sent only after the change they describe is durably committed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable
from typing import Any, cast

import msgspec
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from api.deps import Context, throttle, units
from api.errors import ApiError, ExchangeError, error_body, error_response
from api.routes.orders import existing_order, place_many, to_operation
from api.schemas import AmendIn
from api.service import Published, ServiceStopped, Submission
from api.views import iso, order_view
from api.wire import to_batch, to_order
from exchange.core import AccountRecord, Rejected
from exchange.events import BookChanged, Trade
from exchange.operations import AmendOrder, CancelOrder
from exchange.orders import Side
from exchange.units import PRICE_DECIMALS, QUANTITY_DECIMALS, format_price, format_quantity

__all__ = ["Hub", "router"]

router = APIRouter()
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
QUEUE_MAX = 10_000  # messages buffered per connection before it is dropped as too slow
CHANNELS_MAX = 100


IN_FLIGHT_MAX = 1_000  # order requests a connection may have awaiting their commit


class Connection:
    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.in_flight = asyncio.Semaphore(IN_FLIGHT_MAX)
        self.tasks: set[asyncio.Task[None]] = set()
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE_MAX)
        self.channels: set[str] = set()
        self.account: AccountRecord | None = None

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:  # too slow: close rather than buffer without bound
            self.channels.clear()
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(None)


def _delta(channel: str, event: BookChanged) -> dict[str, Any]:
    return {
        "channel": channel,
        "type": "delta",
        "sequence": event.seq,
        "side": event.side.value,
        "price": format_price(event.price),
        "quantity": format_quantity(event.quantity),
    }


def _trade(channel: str, event: Trade) -> dict[str, Any]:
    return {
        "channel": channel,
        "type": "trade",
        "sequence": event.seq,
        "id": event.trade_id,
        "price": format_price(event.price),
        "quantity": format_quantity(event.quantity),
        "taker_side": event.taker_side.value,
        "time": iso(event.ts),
    }


class Hub:
    """Fans committed events out to subscribed connections."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.subscribers: dict[str, set[Connection]] = defaultdict(set)
        self.last_seq: dict[str, int] = {}
        self.account_seq: dict[int, int] = defaultdict(int)
        ctx.service.listeners.append(self.publish)

    def subscribe(self, conn: Connection, channel: str) -> None:
        conn.channels.add(channel)
        self.subscribers[channel].add(conn)

    def unsubscribe(self, conn: Connection, channel: str) -> None:
        conn.channels.discard(channel)
        self.subscribers[channel].discard(conn)

    def drop(self, conn: Connection) -> None:
        for channel in list(conn.channels):
            self.unsubscribe(conn, channel)
        self.subscribers["orders"].discard(conn)

    def _emit(self, channel: str, event: Any, build: Callable[[str, Any], dict[str, Any]]) -> None:
        """Advance ``channel``'s sequence to ``event``'s; only where someone listens is
        its message built (``build``) and sent. Called after every commit."""
        prev = self.last_seq.get(channel, 0)
        self.last_seq[channel] = event.seq
        conns = self.subscribers.get(channel)
        if not conns:
            return
        message = build(channel, event)
        message["prev_sequence"] = prev
        for conn in list(conns):
            conn.send(message)

    def publish(self, published: Published) -> None:
        for event in published.events:
            if isinstance(event, BookChanged):
                self._emit("book:" + event.symbol, event, _delta)
            elif isinstance(event, Trade):
                self._emit("trades:" + event.symbol, event, _trade)
        watchers = self.subscribers.get("orders")
        if not watchers:
            return
        orders = self.ctx.service.core.orders
        for account_id, order_id in published.orders:
            listeners = [c for c in watchers if c.account and c.account.id == account_id]
            if not listeners:
                continue
            self.account_seq[account_id] += 1
            message = {
                "channel": "orders",
                "type": "order",
                "sequence": self.account_seq[account_id],
                "order": order_view(orders[order_id]),
            }
            for conn in listeners:
                conn.send(message)

    def snapshot(self, channel: str) -> dict[str, Any] | None:
        core = self.ctx.service.core
        kind, _, symbol = channel.partition(":")
        if kind not in ("book", "trades") or symbol not in core.instruments:
            return None
        book = core.engine.book(symbol)  # type: ignore[arg-type]
        if kind == "book":
            return {
                "channel": channel,
                "type": "snapshot",
                "sequence": book.seq,
                "bids": [
                    [format_price(p), format_quantity(q)] for p, q in book.depth(Side.BUY, 100)
                ],
                "asks": [
                    [format_price(p), format_quantity(q)] for p, q in book.depth(Side.SELL, 100)
                ],
            }
        inst = core.instruments[symbol]  # type: ignore[index]
        recent = [core.contracts[c] for c in inst.contract_ids[-50:]]
        return {
            "channel": channel,
            "type": "snapshot",
            "sequence": book.seq,
            "trades": [
                {
                    "id": c.trade_id,
                    "price": format_price(c.price),
                    "quantity": format_quantity(c.quantity),
                    "taker_side": "buy" if c.buyer_liquidity.value == "taker" else "sell",
                    "time": iso(c.created_at),
                }
                for c in recent
            ],
        }


async def _sender(conn: Connection) -> None:
    while True:
        message = await conn.queue.get()
        if message is None:
            await conn.ws.close(code=1013)
            return
        await conn.ws.send_text(_encode(message).decode())


def _authenticate(ctx: Context, key: str | None) -> AccountRecord | None:
    if not key:
        return None
    account_id = ctx.lookup(key)
    return None if account_id is None else ctx.service.core.accounts.get(account_id)


def _signed_in(conn: Connection) -> AccountRecord:
    if conn.account is None:
        raise ApiError("unauthorized", "authenticate first")
    return conn.account


def _place(ctx: Context, conn: Connection, msg: dict[str, Any], request_id: Any) -> None:
    """A "place" message: validated and queued to the writer at once, in arrival order,
    and answered from a callback once its commit resolves (no task per order, which is
    what a client pipelining single orders paid most for). Holds one of the connection's
    in-flight slots until answered."""
    try:
        account = _signed_in(conn)
        body = to_order(msg.get("order"))
        existing = existing_order(ctx, account, body)
        if existing is not None:
            _reply(conn, request_id, order_view(existing))
            return
        throttle(ctx, account)
        item = ctx.service.enqueue(to_operation(account, body), order_view)
    except (ApiError, Rejected, ServiceStopped) as exc:
        _reply(conn, request_id, error=exc)
        return
    assert item.future is not None
    item.future.add_done_callback(lambda done: _answer(conn, request_id, item, done))


def _answer(conn: Connection, request_id: Any, item: Submission, done: asyncio.Future[Any]) -> None:
    if done.cancelled():  # the server is shutting down: nothing to answer
        conn.in_flight.release()
        return
    failed = done.exception()  # ServiceStopped: the writer stopped
    error = item.error if failed is None else failed
    if error is None:
        _reply(conn, request_id, item.outcome)
    else:
        _reply(conn, request_id, error=cast(ExchangeError, error))


def _reply(
    conn: Connection, request_id: Any, result: Any = None, error: ExchangeError | None = None
) -> None:
    """Answer an order request and free its in-flight slot."""
    conn.in_flight.release()
    if error is None:
        conn.send({"type": "result", "id": request_id, "result": result})
    else:
        conn.send({"type": "result", "id": request_id, **error_response(error)[1]})


async def _request(ctx: Context, conn: Connection, msg: dict[str, Any]) -> dict[str, Any]:
    """Order entry over the socket: the same validation and risk as the REST endpoints."""
    account = _signed_in(conn)
    op = msg.get("op")
    if op == "place_batch":
        batch = to_batch(msg.get("orders"))
        throttle(ctx, account)
        return {"results": await place_many(ctx, account, batch.orders)}
    order_id = msg.get("order_id")
    if not isinstance(order_id, int) or isinstance(order_id, bool):
        raise ApiError("invalid_request", "order_id must be an integer")
    order = ctx.service.core.orders.get(order_id)
    if order is None or order.account_id != account.id:
        raise ApiError("order_not_found", f"no order {order_id}")
    result: dict[str, Any]
    if op == "cancel":
        result = await ctx.service.submit(CancelOrder(account.id, order_id), order_view)
        return result
    amend = AmendIn.model_validate({k: msg[k] for k in ("price", "quantity") if k in msg})
    throttle(ctx, account)
    op_amend = AmendOrder(
        account.id,
        order_id,
        units(amend.price, PRICE_DECIMALS, "price"),
        units(amend.quantity, QUANTITY_DECIMALS, "quantity"),
    )
    result = await ctx.service.submit(op_amend, order_view)
    return result


@router.websocket("/v1/ws")
async def websocket(ws: WebSocket) -> None:
    ctx: Context = ws.app.state.context
    hub: Hub = ws.app.state.hub
    await ws.accept()
    conn = Connection(ws)
    header = ws.headers.get("authorization", "")
    key = ws.query_params.get("key") or (header[7:] if header.startswith("Bearer ") else None)
    conn.account = _authenticate(ctx, key)
    sender = asyncio.create_task(_sender(conn))
    try:
        while True:
            text = await ws.receive_text()
            if len(text) > 64 * 1024:
                conn.send({"type": "error", **error_body("request_too_large", "message too large")})
                continue
            try:
                msg = _decode(text)
                if not isinstance(msg, dict):
                    raise ValueError("a message is a JSON object")
            except (ValueError, msgspec.DecodeError) as exc:
                conn.send({"type": "error", **error_body("invalid_json", str(exc)[:200])})
                continue
            await _handle(ctx, hub, conn, msg)
    except WebSocketDisconnect:
        pass
    finally:
        hub.drop(conn)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender


async def _handle(ctx: Context, hub: Hub, conn: Connection, msg: dict[str, Any]) -> None:
    op = msg.get("op")
    request_id = msg.get("id")
    if op == "ping":
        conn.send({"type": "pong", "id": request_id})
    elif op == "auth":
        conn.account = _authenticate(
            ctx, msg.get("key") if isinstance(msg.get("key"), str) else None
        )
        if conn.account is None:
            conn.send(
                {"type": "error", "id": request_id, **error_body("unauthorized", "invalid API key")}
            )
        else:
            conn.send({"type": "authenticated", "id": request_id, "account": conn.account.id})
    elif op in ("subscribe", "unsubscribe"):
        channels = msg.get("channels")
        if not isinstance(channels, list) or len(channels) > CHANNELS_MAX:
            conn.send(
                {
                    "type": "error",
                    "id": request_id,
                    **error_body("invalid_request", "channels must be a list"),
                }
            )
            return
        for channel in channels:
            if not isinstance(channel, str) or len(channel) > 80:
                continue
            if op == "unsubscribe":
                hub.unsubscribe(conn, channel)
                continue
            if channel == "orders":
                if conn.account is None:
                    conn.send(
                        {
                            "type": "error",
                            "id": request_id,
                            **error_body("unauthorized", "orders needs a key"),
                        }
                    )
                    continue
                hub.subscribe(conn, channel)
                conn.send(
                    {
                        "channel": "orders",
                        "type": "subscribed",
                        "sequence": hub.account_seq[conn.account.id],
                    }
                )
                continue
            snap = hub.snapshot(channel)
            if snap is None:
                conn.send(
                    {"type": "error", "id": request_id, **error_body("unknown_channel", channel)}
                )
                continue
            hub.subscribe(conn, channel)
            conn.send(snap)
    elif op == "place":
        await conn.in_flight.acquire()
        _place(ctx, conn, msg, request_id)
    elif op in ("place_batch", "amend", "cancel"):
        # Requests run concurrently so that a client pipelining many orders shares group
        # commits; they are queued to the writer in the order they arrived.
        await conn.in_flight.acquire()
        task = asyncio.create_task(_respond(ctx, conn, msg, request_id))
        conn.tasks.add(task)
        task.add_done_callback(conn.tasks.discard)
    else:
        conn.send({"type": "error", "id": request_id, **error_body("unknown_op", str(op)[:40])})


async def _respond(ctx: Context, conn: Connection, msg: dict[str, Any], request_id: Any) -> None:
    try:
        try:
            result = await _request(ctx, conn, msg)
            conn.send({"type": "result", "id": request_id, "result": result})
        except (ApiError, Rejected) as exc:
            conn.send({"type": "result", "id": request_id, **error_body(exc.code, exc.message)})
        except ValidationError as exc:
            message = str(exc.errors()[0].get("msg", "invalid"))[:200]
            conn.send(
                {"type": "result", "id": request_id, **error_body("invalid_request", message)}
            )
    finally:
        conn.in_flight.release()
