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
from api.routes.orders import OrderBatch, existing_order, to_operation
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


#: What an order request answers once its operations are committed: (its result, or the
#: refusal of a refused one). Returned, not raised: a raised refusal would tie itself,
#: through its traceback, to the submission that holds it (a reference cycle).
Answer = Callable[[], tuple[Any, ExchangeError | None]]


def _order_request(ctx: Context, conn: Connection, msg: dict[str, Any], request_id: Any) -> None:
    """Order entry over the socket ("place", "place_batch", "amend", "cancel"), with the
    same validation and risk as the REST endpoints. A request is checked and queued to the
    writer as it is read, so requests reach the exchange in the order they arrive and a
    client pipelining many shares group commits; it is answered from a callback once its
    commit resolves (no task per request). It holds one of the connection's in-flight
    slots until answered."""
    try:
        future, answer = _queue(ctx, _signed_in(conn), msg)
    except (ApiError, Rejected, ServiceStopped) as exc:
        _reply(conn, request_id, error=exc)
        return
    except ValidationError as exc:
        message = str(exc.errors()[0].get("msg", "invalid"))[:200]
        _reply(conn, request_id, error=ApiError("invalid_request", message))
        return
    if future is None:  # nothing to commit: answered at once
        _committed(conn, request_id, None, answer)
    else:
        future.add_done_callback(lambda done: _committed(conn, request_id, done, answer))


def _queue(
    ctx: Context, account: AccountRecord, msg: dict[str, Any]
) -> tuple[asyncio.Future[Any] | None, Answer]:
    """Check an order request and queue its operations: (the future of their commit, or
    None when there is nothing to commit; what to answer once committed)."""
    op = msg.get("op")
    service = ctx.service
    if op == "place":
        body = to_order(msg.get("order"))
        existing = existing_order(ctx, account, body)
        if existing is not None:  # a resubmitted client_order_id: the original order
            view = order_view(existing)
            return None, lambda: (view, None)
        throttle(ctx, account)
        return _one(service.enqueue(to_operation(account, body), order_view))
    if op == "place_batch":
        orders = to_batch(msg.get("orders")).orders
        throttle(ctx, account)
        batch = OrderBatch(ctx, account, orders)
        return service.enqueue_many(batch.items), lambda: ({"results": batch.results()}, None)
    order_id = msg.get("order_id")
    if not isinstance(order_id, int) or isinstance(order_id, bool):
        raise ApiError("invalid_request", "order_id must be an integer")
    order = service.core.orders.get(order_id)
    if order is None or order.account_id != account.id:
        raise ApiError("order_not_found", f"no order {order_id}")
    if op == "cancel":
        return _one(service.enqueue(CancelOrder(account.id, order_id), order_view))
    amend = AmendIn.model_validate({k: msg[k] for k in ("price", "quantity") if k in msg})
    throttle(ctx, account)
    amend_op = AmendOrder(
        account.id,
        order_id,
        units(amend.price, PRICE_DECIMALS, "price"),
        units(amend.quantity, QUANTITY_DECIMALS, "quantity"),
    )
    return _one(service.enqueue(amend_op, order_view))


def _one(item: Submission) -> tuple[asyncio.Future[Any] | None, Answer]:
    """A single queued operation: its rendered outcome, or its refusal."""
    return item.future, lambda: (item.outcome, item.error)


def _committed(
    conn: Connection, request_id: Any, done: asyncio.Future[Any] | None, answer: Answer
) -> None:
    if done is not None and done.cancelled():  # the server is shutting down
        conn.in_flight.release()
        return
    failed = None if done is None else done.exception()  # ServiceStopped: writer stopped
    if failed is not None:
        _reply(conn, request_id, error=cast(ExchangeError, failed))
        return
    result, error = answer()
    _reply(conn, request_id, result, error)


def _reply(
    conn: Connection, request_id: Any, result: Any = None, error: ExchangeError | None = None
) -> None:
    """Answer an order request and free its in-flight slot."""
    conn.in_flight.release()
    if error is None:
        conn.send({"type": "result", "id": request_id, "result": result})
    else:
        conn.send({"type": "result", "id": request_id, **error_response(error)[1]})


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
    elif op in ("place", "place_batch", "amend", "cancel"):
        await conn.in_flight.acquire()
        _order_request(ctx, conn, msg, request_id)
    else:
        conn.send({"type": "error", "id": request_id, **error_body("unknown_op", str(op)[:40])})
