"""The WebSocket at /v1/ws: market data, private order events, and order entry.

Client messages (JSON text frames, at most ``SUANLI_WS_MESSAGE_BYTES_MAX`` each):
  {"op": "subscribe", "channels": ["book:SYMBOL", "trades:SYMBOL", "orders"]}
  {"op": "unsubscribe", "channels": [...]}
  {"op": "auth", "key": "<api key>"}         (or an Authorization header at connect)
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

Everything a client can make the server hold is bounded and lives only as long as its
connection: the channels it holds (``SUANLI_WS_SUBSCRIPTIONS_MAX``), its unsent messages
(``SUANLI_WS_SEND_BUFFER_BYTES``; reading stops at half, the connection closes at the
limit), its order requests awaiting their commit (``IN_FLIGHT_MAX``), and its
connections: per remote address without a key, per account once authenticated, and in
all. A message of the wrong shape is answered with an error and the connection stays
usable; breaking a bound on connections closes it (1008, or 1013 when the server as a
whole is full), as does falling too far behind (1013).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Annotated, Any, cast

import msgspec
from fastapi import APIRouter, WebSocket
from pydantic import ValidationError

from api.deps import Context, throttle, units
from api.errors import ApiError, ExchangeError, error_body, error_response
from api.routes.orders import OrderBatch, existing_order, to_operation
from api.schemas import AmendIn
from api.service import Published, ServiceStopped, Submission
from api.settings import Settings
from api.views import iso, order_view
from api.wire import to_batch, to_order
from exchange.core import AccountRecord, Rejected
from exchange.events import BookChanged, Trade
from exchange.ids import AccountId, OrderId
from exchange.operations import AmendOrder, CancelOrder
from exchange.orders import Side
from exchange.refusals import Refusal
from exchange.units import (
    PRICE_DECIMALS,
    QUANTITY_DECIMALS,
    Price,
    Quantity,
    format_price,
    format_quantity,
)

__all__ = ["Hub", "router"]

router = APIRouter()
_encode = msgspec.json.Encoder().encode

IN_FLIGHT_MAX = 1_000  # order requests a connection may have awaiting their commit
CHANNEL_CHARS_MAX = 80  # "trades:" and the longest symbol fit
KEY_CHARS_MAX = 200

#: Close codes (RFC 6455): a client over its own bound, and a server that cannot take more
#: now (all connections taken, or this client too slow to read what it is sent).
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013


# ---------------------------------------------------------------------- client messages
_Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
RequestId = Annotated[str, msgspec.Meta(max_length=128)] | _Int64 | None


class _Request(msgspec.Struct, tag_field="op", forbid_unknown_fields=True, kw_only=True, gc=False):
    id: RequestId = None


class Ping(_Request, tag="ping"):
    pass


class Auth(_Request, tag="auth"):
    key: str


class Subscribe(_Request, tag="subscribe"):
    channels: list[str]


class Unsubscribe(_Request, tag="unsubscribe"):
    channels: list[str]


class Place(_Request, tag="place"):
    order: Any  # checked by api.wire.to_order, as POST /v1/orders's body


class PlaceBatch(_Request, tag="place_batch"):
    orders: Any  # checked by api.wire.to_batch


class Amend(_Request, tag="amend"):
    order_id: _Int64
    price: Any = msgspec.UNSET  # checked by api.schemas.AmendIn
    quantity: Any = msgspec.UNSET


class Cancel(_Request, tag="cancel"):
    order_id: _Int64


Request = Ping | Auth | Subscribe | Unsubscribe | Place | PlaceBatch | Amend | Cancel
OrderRequest = Place | PlaceBatch | Amend | Cancel
_ORDER_REQUESTS = (Place, PlaceBatch, Amend, Cancel)
_ORDER_OPS = frozenset({"place", "place_batch", "amend", "cancel"})
_OPS = _ORDER_OPS | {"ping", "auth", "subscribe", "unsubscribe"}
_decode_request = msgspec.json.Decoder(Request)


class _Head(msgspec.Struct):
    """What a refused message is read for: its op and id, left undecoded."""

    op: msgspec.Raw = msgspec.Raw(b"null")
    id: msgspec.Raw = msgspec.Raw(b"null")


_decode_head = msgspec.json.Decoder(_Head)
_decode_op = msgspec.json.Decoder(str | None)
_decode_id = msgspec.json.Decoder(RequestId)


class RequestRefusal(msgspec.Struct, frozen=True):
    """A message that could not be read: what to answer, and to which request."""

    id: RequestId
    order_op: bool  # answered as a "result", as order requests are
    error: ApiError


def parse(text: str) -> Request | RequestRefusal:
    """A client message, or why it is refused. Nesting deeper than the decoder's bound
    (the interpreter's recursion limit, checked in C) is refused like any bad JSON."""
    try:
        return _decode_request.decode(text)
    except msgspec.ValidationError as exc:
        return _diagnose(text, str(exc))
    except (msgspec.DecodeError, RecursionError, UnicodeError) as exc:
        return RequestRefusal(None, False, _invalid_json(exc))


def _invalid_json(exc: BaseException) -> ApiError:
    if isinstance(exc, RecursionError):
        return ApiError(Refusal.INVALID_JSON, reason="the message is nested too deeply")
    if isinstance(exc, UnicodeError):  # a lone surrogate, which UTF-8 cannot carry
        return ApiError(Refusal.INVALID_JSON, reason="the message is not valid UTF-8")
    return ApiError(Refusal.INVALID_JSON, reason=str(exc)[:200])


def _diagnose(text: str, problem: str) -> RequestRefusal:
    """The refusal of a JSON message of the wrong shape: ``unknown_op`` when its op is
    missing or unknown, otherwise ``invalid_request`` with what was wrong."""
    try:
        head = _decode_head.decode(text)
    except msgspec.ValidationError:
        return RequestRefusal(
            None, False, ApiError(Refusal.INVALID_JSON, reason="a message is a JSON object")
        )
    except (msgspec.DecodeError, RecursionError, UnicodeError) as exc:
        return RequestRefusal(None, False, _invalid_json(exc))
    try:
        request_id = _decode_id.decode(head.id)
    except msgspec.ValidationError:
        request_id = None
        problem = "id: a string of at most 128 characters, an integer or null"
    try:
        op = _decode_op.decode(head.op)
    except msgspec.ValidationError:
        op = None
    if op not in _OPS:
        shown = "no op" if op is None else repr(op[:40])
        return RequestRefusal(
            request_id, False, ApiError(Refusal.UNKNOWN_OP, op=shown, ops=_OP_LIST)
        )
    problem = problem.replace("Object contains unknown field", "unknown field")  # as api.wire
    return RequestRefusal(
        request_id, op in _ORDER_OPS, ApiError(Refusal.INVALID_REQUEST, reason=problem[:300])
    )


_OP_LIST = ", ".join(sorted(_OPS))


# ---------------------------------------------------------------------- a connection
class Connection:
    """One client's socket: its identity, its channels, and its outbox of encoded
    messages, bounded in characters (``limit``)."""

    def __init__(self, ws: WebSocket, address: str, limit: int) -> None:
        self.ws = ws
        self.address = address
        self.limit = limit
        self.in_flight = asyncio.Semaphore(IN_FLIGHT_MAX)
        self.outbox: deque[str] = deque()
        self.queued = 0  # characters in the outbox
        self.ready = asyncio.Event()  # the outbox holds something, or the socket closes
        self.drained = asyncio.Event()  # the outbox is short enough to read more requests
        self.drained.set()
        self.channels: set[str] = set()
        self.account: AccountRecord | None = None
        self.slot: tuple[dict[Any, int], Any] | None = None  # the count it is held in
        self.admitted = False
        self.close_code: int | None = None

    def send(self, message: dict[str, Any]) -> None:
        self.send_text(_encode(message).decode())

    def send_text(self, text: str) -> None:
        if self.close_code is not None:
            return
        self.queued += len(text)
        if self.queued > self.limit:  # too slow: close rather than buffer without bound
            self.close(TRY_AGAIN_LATER, Refusal.TOO_SLOW, Refusal.TOO_SLOW.message())
            return
        self.outbox.append(text)
        if self.queued > self.limit // 2:
            self.drained.clear()
        self.ready.set()

    def error(self, request_id: RequestId, code: Refusal, message: str) -> None:
        self.send({"type": "error", "id": request_id, **error_body(code, message)})

    def close(self, code: int, error_code: Refusal, message: str) -> None:
        """Drop what is unsent, send one error message, then close with ``code``."""
        if self.close_code is not None:
            return
        last = _encode({"type": "error", **error_body(error_code, message)}).decode()
        self.outbox.clear()
        self.outbox.append(last)
        self.queued = len(last)
        self.close_code = code
        self.ready.set()
        self.drained.set()


async def _sender(conn: Connection) -> None:
    try:
        while True:
            await conn.ready.wait()
            while conn.outbox:
                text = conn.outbox.popleft()
                conn.queued -= len(text)
                if conn.queued <= conn.limit // 4:
                    conn.drained.set()
                await conn.ws.send_text(text)
            if conn.close_code is not None:
                await conn.ws.close(code=conn.close_code)
                return
            conn.ready.clear()
    finally:
        conn.drained.set()  # a reader waiting to go on must not wait for a dead sender


# ---------------------------------------------------------------------- the hub
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
    """Fans committed events out to subscribed connections, and counts connections.

    Every structure keyed by what a client sends (a channel it names, its address, its
    account) holds an entry only while a connection needs it: an empty set or a zero
    count is removed, so nothing of a closed connection stays behind."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.settings: Settings = ctx.settings
        self.subscribers: dict[str, set[Connection]] = {}  # book: and trades: channels
        self.watchers: dict[int, set[Connection]] = {}  # account id -> its "orders" sockets
        self.last_seq: dict[str, int] = {}  # channel -> sequence of its last event
        self.account_seq: dict[int, int] = {}  # account id -> its last "orders" message
        self.per_address: dict[str, int] = {}  # connections without a key
        self.per_account: dict[int, int] = {}  # authenticated connections
        self.connections = 0
        ctx.service.listeners.append(self.publish)

    # -- connections and identities
    def admit(
        self, conn: Connection, account: AccountRecord | None
    ) -> tuple[int, Refusal, str] | None:
        """Count a new connection in; (close code, error code, message) when a bound
        refuses it."""
        if self.connections >= self.settings.ws_connections_max:
            busy = Refusal.SERVER_BUSY
            return (
                TRY_AGAIN_LATER,
                busy,
                busy.message(reason="no room for another connection; try later"),
            )
        if not self._hold(conn, account):
            many = Refusal.TOO_MANY_CONNECTIONS
            return POLICY_VIOLATION, many, many.message(holder="client")
        conn.account = account
        conn.admitted = True
        self.connections += 1
        return None

    def identify(self, conn: Connection, account: AccountRecord | None) -> bool:
        """Make ``account`` (None: no key) the connection's identity, counted against its
        bound from now on; False when that bound is full (the connection must close)."""
        old = conn.account
        if (old.id if old else None) == (account.id if account else None):
            conn.account = account
            return True
        watching = "orders" in conn.channels
        if watching:
            self.unsubscribe(conn, "orders")
        self._release(conn)
        conn.account = None
        if not self._hold(conn, account):
            return False
        conn.account = account
        if watching and account is not None:
            self.subscribe(conn, "orders")
        return True

    def _hold(self, conn: Connection, account: AccountRecord | None) -> bool:
        table: dict[Any, int]
        key: Any
        if account is None:
            table, key, cap = (
                self.per_address,
                conn.address,
                self.settings.ws_connections_per_address_max,
            )
        else:
            table, key, cap = (
                self.per_account,
                account.id,
                self.settings.ws_connections_per_account_max,
            )
        held = table.get(key, 0)
        if held >= cap:
            return False
        table[key] = held + 1
        conn.slot = (table, key)
        return True

    def _release(self, conn: Connection) -> None:
        if conn.slot is None:
            return
        table, key = conn.slot
        conn.slot = None
        held = table[key] - 1
        if held:
            table[key] = held
        else:
            del table[key]

    def drop(self, conn: Connection) -> None:
        """Forget a closed connection: its channels, its place in the counts."""
        for channel in list(conn.channels):
            self.unsubscribe(conn, channel)
        self._release(conn)
        if conn.admitted:
            conn.admitted = False
            self.connections -= 1

    # -- channels
    def subscribe(self, conn: Connection, channel: str) -> None:
        conn.channels.add(channel)
        if channel == "orders":
            assert conn.account is not None  # for the type checker: checked by the caller
            self.watchers.setdefault(conn.account.id, set()).add(conn)
        else:
            self.subscribers.setdefault(channel, set()).add(conn)

    def unsubscribe(self, conn: Connection, channel: str) -> None:
        conn.channels.discard(channel)
        if channel == "orders":
            table: dict[Any, set[Connection]] = self.watchers
            key: Any = conn.account.id if conn.account else None
        else:
            table, key = self.subscribers, channel
        conns = table.get(key)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del table[key]

    def known(self, channel: str) -> bool:
        """Whether ``channel`` names something a client may subscribe to."""
        if channel == "orders":
            return True
        kind, _, symbol = channel.partition(":")
        return (
            kind in ("book", "trades")
            and self.ctx.service.core.query.find_instrument(symbol) is not None
        )

    # -- fan-out
    def _emit(self, channel: str, event: Any, build: Callable[[str, Any], dict[str, Any]]) -> None:
        """Advance ``channel``'s sequence to ``event``'s; only where someone listens is
        its message built (``build``), encoded once and sent. Called after every commit."""
        prev = self.last_seq.get(channel, 0)
        self.last_seq[channel] = event.seq
        conns = self.subscribers.get(channel)
        if not conns:
            return
        message = build(channel, event)
        message["prev_sequence"] = prev
        text = _encode(message).decode()
        for conn in conns:  # send_text never changes the hub's sets
            conn.send_text(text)

    def publish(self, published: Published) -> None:
        for event in published.events:
            if isinstance(event, BookChanged):
                self._emit("book:" + event.symbol, event, _delta)
            elif isinstance(event, Trade):
                self._emit("trades:" + event.symbol, event, _trade)
        if not self.watchers:
            return
        for order in published.orders:
            account_id = order.account_id
            listeners = self.watchers.get(account_id)
            if not listeners:
                continue
            sequence = self.account_seq.get(account_id, 0) + 1
            self.account_seq[account_id] = sequence
            text = _encode(
                {
                    "channel": "orders",
                    "type": "order",
                    "sequence": sequence,
                    "order": order_view(order),
                }
            ).decode()
            for conn in listeners:
                conn.send_text(text)

    def snapshot(self, channel: str) -> dict[str, Any] | None:
        core = self.ctx.service.core
        kind, _, symbol = channel.partition(":")
        if kind not in ("book", "trades") or core.query.find_instrument(symbol) is None:
            return None
        book = core.query.book(symbol)
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
        inst = core.query.instrument(symbol)
        recent = core.query.contracts_of_instrument(inst)[-50:]
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


# ---------------------------------------------------------------------- authentication
def _connect_key(ws: WebSocket) -> str | None:
    """The key given at connect: an ``Authorization: Bearer`` header, or (deprecated: it
    reaches proxies' logs) a ``?key=`` query parameter."""
    header = ws.headers.get("authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip()
    return ws.query_params.get("key")


def _authenticate(ctx: Context, key: str | None) -> AccountRecord | None:
    if not key or len(key) > KEY_CHARS_MAX:
        return None
    try:
        account_id = ctx.lookup(key)
    except UnicodeEncodeError:  # a lone surrogate: no key has one
        return None
    return None if account_id is None else ctx.service.core.query.find_account(account_id)


def _signed_in(conn: Connection) -> AccountRecord:
    if conn.account is None:
        raise ApiError(Refusal.UNAUTHORIZED, reason="authenticate first")
    return conn.account


# ---------------------------------------------------------------------- order entry
#: What an order request answers once its operations are committed: (its result, or the
#: refusal of a refused one). Returned, not raised: a raised refusal would tie itself,
#: through its traceback, to the submission that holds it (a reference cycle).
Answer = Callable[[], tuple[Any, ExchangeError | None]]


def _order_request(ctx: Context, conn: Connection, request: OrderRequest) -> None:
    """Order entry over the socket ("place", "place_batch", "amend", "cancel"), with the
    same validation and risk as the REST endpoints. A request is checked and queued to the
    writer as it is read, so requests reach the exchange in the order they arrive and a
    client pipelining many shares group commits; it is answered from a callback once its
    commit resolves (no task per request). It holds one of the connection's in-flight
    slots until answered."""
    request_id = request.id
    try:
        future, answer = _queue(ctx, _signed_in(conn), request)
    except (ApiError, Rejected, ServiceStopped) as exc:
        _reply(conn, request_id, error=exc)
        return
    except ValidationError as exc:
        message = str(exc.errors()[0].get("msg", "invalid"))[:200]
        _reply(conn, request_id, error=ApiError(Refusal.INVALID_REQUEST, reason=message))
        return
    if future is None:  # nothing to commit: answered at once
        _committed(conn, request_id, None, answer)
    else:
        future.add_done_callback(lambda done: _committed(conn, request_id, done, answer))


def _queue(
    ctx: Context, account: AccountRecord, request: OrderRequest
) -> tuple[asyncio.Future[Any] | None, Answer]:
    """Check an order request and queue its operations: (the future of their commit, or
    None when there is nothing to commit; what to answer once committed)."""
    service = ctx.service
    if isinstance(request, Place):
        body = to_order(request.order)
        existing = existing_order(ctx, account, body)
        if existing is not None:  # a resubmitted client_order_id: the original order,
            view = order_view(existing)  # answered once it is durable
            return asyncio.ensure_future(service.wait_committed()), lambda: (view, None)
        throttle(ctx, account)
        return _one(service.enqueue(to_operation(account, body), order_view))
    if isinstance(request, PlaceBatch):
        orders = to_batch(request.orders).orders
        throttle(ctx, account, len(orders))
        batch = OrderBatch(ctx, account, orders)
        future = service.enqueue_many(batch.items)
        if future is None and batch.repeats:  # only repeats: answered once they are durable
            future = asyncio.ensure_future(service.wait_committed())
        return future, lambda: ({"results": batch.results()}, None)
    order_id = request.order_id
    order = service.core.query.order(order_id)
    if order is None or order.account_id != account.id:
        raise ApiError(Refusal.ORDER_NOT_FOUND, order_id=order_id)
    if isinstance(request, Cancel):
        return _one(
            service.enqueue(CancelOrder(AccountId(account.id), OrderId(order_id)), order_view)
        )
    fields = {"price": request.price, "quantity": request.quantity}
    amend = AmendIn.model_validate({k: v for k, v in fields.items() if v is not msgspec.UNSET})
    throttle(ctx, account)
    price = units(amend.price, PRICE_DECIMALS, "price")
    quantity = units(amend.quantity, QUANTITY_DECIMALS, "quantity")
    amend_op = AmendOrder(
        AccountId(account.id),
        OrderId(order_id),
        Price(price) if price is not None else None,
        Quantity(quantity) if quantity is not None else None,
    )
    return _one(service.enqueue(amend_op, order_view))


def _one(item: Submission) -> tuple[asyncio.Future[Any] | None, Answer]:
    """A single queued operation: its rendered outcome, or its refusal."""
    return item.future, lambda: (item.outcome, item.error)


def _committed(
    conn: Connection, request_id: RequestId, done: asyncio.Future[Any] | None, answer: Answer
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
    conn: Connection,
    request_id: RequestId,
    result: Any = None,
    error: ExchangeError | None = None,
) -> None:
    """Answer an order request and free its in-flight slot."""
    conn.in_flight.release()
    if error is None:
        conn.send({"type": "result", "id": request_id, "result": result})
    else:
        conn.send({"type": "result", "id": request_id, **error_response(error)[1]})


# ---------------------------------------------------------------------- the socket
@router.websocket("/v1/ws")
async def websocket(ws: WebSocket) -> None:
    ctx: Context = ws.app.state.context
    hub: Hub = ws.app.state.hub
    settings = ctx.settings
    await ws.accept()
    address = ws.client.host if ws.client else ""
    conn = Connection(ws, address, settings.ws_send_buffer_bytes)
    refused = hub.admit(conn, _authenticate(ctx, _connect_key(ws)))
    if refused is not None:
        code, why, message = refused
        await ws.send_text(_encode({"type": "error", **error_body(why, message)}).decode())
        await ws.close(code=code)
        return
    sender = asyncio.create_task(_sender(conn))
    try:
        await _read(ctx, hub, conn, settings.ws_message_bytes_max)
    finally:
        hub.drop(conn)
        if conn.close_code is not None and not sender.done():
            # Closing on our side: let the sender send the last error and the close frame,
            # as long as the client reads them.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(sender), timeout=5)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender


async def _read(ctx: Context, hub: Hub, conn: Connection, message_max: int) -> None:
    """Read and answer the client's messages until it leaves or must be closed."""
    ws = conn.ws
    while conn.close_code is None:
        if not conn.drained.is_set():  # the client reads too slowly: stop reading it
            await conn.drained.wait()
            continue
        message = await ws.receive()
        if message["type"] != "websocket.receive" or conn.close_code is not None:
            return
        text = message.get("text")
        if text is None:
            conn.error(None, Refusal.INVALID_FRAME, Refusal.INVALID_FRAME.message())
            continue
        if len(text) > message_max:
            large = Refusal.REQUEST_TOO_LARGE
            conn.error(None, large, large.message(what="messages", limit=message_max))
            continue
        request = parse(text)
        if isinstance(request, RequestRefusal):
            if request.order_op:
                _reply_refused(conn, request)
            else:
                conn.error(request.id, request.error.code, request.error.message)
        elif isinstance(request, _ORDER_REQUESTS):
            await conn.in_flight.acquire()
            _order_request(ctx, conn, request)
        else:
            _control(ctx, hub, conn, request)


def _reply_refused(conn: Connection, refusal: RequestRefusal) -> None:
    conn.send({"type": "result", "id": refusal.id, **error_response(refusal.error)[1]})


def _control(
    ctx: Context, hub: Hub, conn: Connection, request: Ping | Auth | Subscribe | Unsubscribe
) -> None:
    if isinstance(request, Ping):
        conn.send({"type": "pong", "id": request.id})
    elif isinstance(request, Auth):
        account = _authenticate(ctx, request.key)
        if not hub.identify(conn, account):
            many = Refusal.TOO_MANY_CONNECTIONS
            conn.close(POLICY_VIOLATION, many, many.message(holder="key"))
        elif account is None:
            conn.error(request.id, Refusal.UNAUTHORIZED, "invalid API key")
        else:
            conn.send({"type": "authenticated", "id": request.id, "account": account.id})
    elif isinstance(request, Subscribe):
        _subscribe(hub, conn, request)
    else:
        _unsubscribe(hub, conn, request)


def _too_many(hub: Hub, conn: Connection, request: Subscribe | Unsubscribe) -> bool:
    most = hub.settings.ws_subscriptions_max
    if len(request.channels) <= most:
        return False
    conn.error(request.id, Refusal.INVALID_REQUEST, f"at most {most} channels a message")
    return True


def _shown(channel: str) -> str:
    return channel[:CHANNEL_CHARS_MAX]


def _subscribe(hub: Hub, conn: Connection, request: Subscribe) -> None:
    if _too_many(hub, conn, request):
        return
    most = hub.settings.ws_subscriptions_max
    for channel in request.channels:
        if len(channel) > CHANNEL_CHARS_MAX or not hub.known(channel):
            conn.error(request.id, Refusal.UNKNOWN_CHANNEL, _shown(channel))
            continue
        if channel not in conn.channels and len(conn.channels) >= most:
            many = Refusal.TOO_MANY_SUBSCRIPTIONS
            conn.error(request.id, many, many.message(limit=most))
            continue
        if channel == "orders":
            if conn.account is None:
                conn.error(request.id, Refusal.UNAUTHORIZED, "orders needs a key")
                continue
            hub.subscribe(conn, channel)
            sequence = hub.account_seq.get(conn.account.id, 0)
            conn.send({"channel": "orders", "type": "subscribed", "sequence": sequence})
            continue
        snap = hub.snapshot(channel)
        assert snap is not None  # for the type checker: the channel is known
        hub.subscribe(conn, channel)
        conn.send(snap)


def _unsubscribe(hub: Hub, conn: Connection, request: Unsubscribe) -> None:
    if _too_many(hub, conn, request):
        return
    for channel in request.channels:
        if channel in conn.channels:
            hub.unsubscribe(conn, channel)
        elif len(channel) > CHANNEL_CHARS_MAX or not hub.known(channel):
            conn.error(request.id, Refusal.UNKNOWN_CHANNEL, _shown(channel))
