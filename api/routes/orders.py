"""Order entry, amendment, cancellation, and own orders and fills."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.routing import Route

from api.archive import archived_fills, archived_order, archived_orders, merged
from api.deps import (
    Context,
    ContextDep,
    CurrentAccount,
    PageDep,
    authenticate,
    paginate,
    request_account,
    throttle,
)
from api.endpoint import Handler, Incoming, header, route
from api.errors import ApiError, FastJSONResponse, error_body
from api.responses import (
    BODY,
    REFUSALS,
    SECURITY,
    AccountFillOut,
    BatchOut,
    CancelAllOut,
    OrderOut,
    Page,
    answers,
)
from api.schemas import AmendIn, BatchIn, Id, OrderIn, OrderStatus, Symbol
from api.service import Submission
from api.views import iso, order_view, parse_time
from api.wire import OrderWire, decode_batch, decode_order, price_units, quantity_units
from exchange.core import AccountRecord, OrderState, same_order
from exchange.ids import AccountId, OrderId, Timestamp
from exchange.ids import Symbol as SymbolId
from exchange.operations import AmendOrder, CancelAll, CancelOrder, PlaceOrder
from exchange.orders import OrderType, SelfTradePrevention, Side, TimeInForce
from exchange.refusals import Refusal
from exchange.units import Quantity, format_money, format_price, format_quantity

router = APIRouter(prefix="/v1", tags=["orders"])
#: The instrument filter of the lists and of cancel-all.
InstrumentFilter = Annotated[Symbol | None, Query(description="one instrument's symbol")]


# The wire's literals -> enumeration members, by dictionary (no Enum.__call__).
_SIDES = {s.value: s for s in Side}
_TYPES = {t.value: t for t in OrderType}
_TIFS = {t.value: t for t in TimeInForce}
_STPS = {m.value: m for m in SelfTradePrevention}


def to_operation(account: AccountRecord, body: OrderWire) -> PlaceOrder:
    """A request body -> a PlaceOrder operation (decimals parsed exactly, or a 4xx)."""
    market = body.type == "market"
    tif = body.time_in_force or ("ioc" if market else "gtc")
    expire = None
    if body.expire_time is not None:
        try:
            expire = Timestamp(parse_time(body.expire_time))
        except ValueError as exc:
            raise ApiError(Refusal.INVALID_EXPIRE_TIME, field="expire_time", reason=exc) from exc
    return PlaceOrder(
        account_id=AccountId(account.id),
        symbol=SymbolId(body.instrument),
        side=_SIDES[body.side],
        quantity=quantity_units(body.quantity) or Quantity(0),
        price=price_units(body.price),
        order_type=_TYPES[body.type],
        time_in_force=_TIFS[tif],
        expire_time=expire,
        post_only=body.post_only,
        stp=_STPS[body.stp],
        client_order_id=body.client_order_id,
    )


def existing_order(ctx: Context, account: AccountRecord, body: OrderWire) -> OrderState | None:
    """The order a repeated client_order_id names; a different order under it is refused."""
    if body.client_order_id is None:
        return None
    original = ctx.service.core.query.order_by_client_id(account.id, body.client_order_id)
    if original is None:
        return None
    if not same_order(original, to_operation(account, body)):
        raise ApiError(Refusal.CLIENT_ORDER_ID_REUSED)
    return original


#: Bodies decoded by msgspec are documented by their pydantic twins, registered as
#: OpenAPI components in api.app.
BODY_MODELS = (OrderIn, BatchIn, OrderOut, BatchOut)


_REF = "#/components/schemas/"


def _json(ref: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": _REF + ref}}}}


def _refusal(status: int) -> dict[str, Any]:
    return {"description": REFUSALS[status], **_json("ErrorOut")}


async def place_order(request: Incoming) -> tuple[int, Any]:
    """Place an order; it is answered only once durably committed. A repeated
    client_order_id returns the original order (200) and places nothing."""
    ctx: Context = request.context
    account = authenticate(ctx, header(request.headers, b"authorization"))
    body = decode_order(request.body)
    existing = existing_order(ctx, account, body)
    if existing is not None:
        # Answered once the original is durable: it may still be in a group commit.
        await ctx.service.wait_committed()
        return 200, order_view(existing)
    throttle(ctx, account)
    return 201, await ctx.service.submit(to_operation(account, body), order_view)


async def place_batch(request: Incoming) -> tuple[int, Any]:
    """Up to 100 orders, each accepted or refused on its own, in one durable commit."""
    ctx: Context = request.context
    account = authenticate(ctx, header(request.headers, b"authorization"))
    body = decode_batch(request.body)
    throttle(ctx, account, len(body.orders))
    return 200, {"results": await place_many(ctx, account, body.orders)}


class OrderBatch:
    """Orders of one account, each accepted or refused on its own, committed together.

    Built, it has checked every order and holds the ones to submit (``items``); once they
    are committed, :meth:`results` gives an order view or an error body for each order,
    in the order given. Shared by ``POST /v1/orders/batch`` and the WebSocket's
    ``place_batch``."""

    def __init__(self, ctx: Context, account: AccountRecord, orders: Sequence[OrderWire]):
        self._results: list[Any] = [None] * len(orders)
        self.items: list[Submission] = []
        self._positions: list[int] = []
        #: Orders of the batch that resubmit an earlier client_order_id.
        self.repeats = 0
        for i, order in enumerate(orders):
            try:
                existing = existing_order(ctx, account, order)
                if existing is not None:
                    self._results[i] = order_view(existing)
                    self.repeats += 1
                    continue
                op = to_operation(account, order)
            except ApiError as exc:
                self._results[i] = error_body(exc.code, exc.message)
                continue
            self.items.append(Submission(op, order_view))
            self._positions.append(i)

    def results(self) -> list[Any]:
        """Each order's answer; call once ``items`` are committed."""
        results = self._results
        for i, item in zip(self._positions, self.items, strict=True):
            if item.error is not None:
                results[i] = error_body(item.error.code, item.error.message)
            else:
                results[i] = item.outcome
        return results


async def place_many(
    ctx: Context, account: AccountRecord, orders: Sequence[OrderWire]
) -> list[Any]:
    """Orders of one account, each accepted or refused on its own, committed together:
    the results in the same order, an order view or an error body each."""
    batch = OrderBatch(ctx, account, orders)
    await ctx.service.submit_many(batch.items)
    if batch.repeats:  # resubmitted client_order_ids: shown once their originals are durable
        await ctx.service.wait_committed()
    return batch.results()


def _entry(
    path: str,
    handler: Handler,
    body: str,
    success: dict[str, tuple[str, str]],
    refusals: tuple[int, ...],
) -> Route:
    """A lean order-entry route (POST, ``body`` in, a trader's key), documented as FastAPI
    would document it: ``success`` maps a 2xx status to (description, response model),
    ``refusals`` are the statuses it can refuse with."""
    name = handler.__name__
    responses: dict[str, Any] = {
        status: {"description": description, **_json(model)}
        for status, (description, model) in success.items()
    }
    responses.update({str(status): _refusal(status) for status in sorted(refusals)})
    return route(
        path,
        "POST",
        handler,
        {
            "tags": ["orders"],
            "summary": name.replace("_", " ").title(),
            "description": handler.__doc__,
            "operationId": f"{name}{path.replace('/', '_')}_post",
            "requestBody": {"required": True, **_json(body)},
            "responses": responses,
            "security": SECURITY["key"],
        },
    )


#: The order-entry routes, lean ASGI endpoints (api.endpoint) matched before all others.
ENTRY_ROUTES = [
    _entry(
        "/v1/orders",
        place_order,
        "OrderIn",
        {
            "201": ("accepted and durably committed", "OrderOut"),
            "200": ("the original order of a repeated client_order_id", "OrderOut"),
        },
        (*BODY, 401, 404, 429, 503),
    ),
    _entry(
        "/v1/orders/batch",
        place_batch,
        "BatchIn",
        {"200": ("one result per order, in order", "BatchOut")},
        (*BODY, 401, 429, 503),
    ),
]


async def _own_order(
    ctx: ContextDep, account: AccountRecord, order_id: int, *, to_change: bool = False
) -> OrderState:
    """The account's order, from the core or, once its instrument settled, the archive
    (``to_change``: an archived order has ended, and is refused as any ended order)."""
    query = ctx.service.core.query
    order = query.order(order_id)
    if order is None and query.issued("order", order_id):
        order = await archived_order(ctx.service, order_id)
        if to_change and order is not None and order.account_id == account.id:
            raise ApiError(Refusal.ORDER_NOT_OPEN, order_id=order_id, status=order.status)
    if order is None or order.account_id != account.id:
        raise ApiError(Refusal.ORDER_NOT_FOUND, order_id=order_id)
    return order


@router.get("/orders", response_model=Page[OrderOut], **answers(422, key="key"))
async def list_orders(
    ctx: ContextDep,
    account: CurrentAccount,
    page: PageDep,
    status: Annotated[OrderStatus | None, Query()] = None,
    instrument: InstrumentFilter = None,
) -> dict[str, Any]:
    core = ctx.service.core
    orders = [
        o
        for o in core.query.orders_of(account.id)
        if (status is None or o.status.value == status)
        and (instrument is None or o.symbol == instrument)
    ]
    archived = await archived_orders(
        ctx.service,
        account.id,
        after=page.cursor,
        limit=page.limit + 1,
        status=None if status is None else str(status),
        symbol=instrument,
    )
    return paginate(merged(orders, archived, _order_id), page, _order_id, order_view)


def _order_id(o: OrderState) -> int:
    return o.id


@router.get("/orders/{order_id}", response_model=OrderOut, **answers(404, 422, key="key"))
async def get_order(order_id: Id, ctx: ContextDep, account: CurrentAccount) -> dict[str, Any]:
    return order_view(await _own_order(ctx, account, order_id))


# Amend and cancel, a market maker's busiest routes after order entry, answer the order
# view as it is, like order entry: FastAPI then skips validating it against OrderOut
# (about 12 µs an order), which documents it; tests round-trip these bodies through it.
@router.patch(
    "/orders/{order_id}", response_model=OrderOut, **answers(*BODY, 404, 429, 503, key="key")
)
async def amend_order(
    order_id: Id, body: AmendIn, ctx: ContextDep, account: CurrentAccount
) -> FastJSONResponse:
    """Lowering the quantity keeps priority; a new price or a higher quantity re-queues."""
    await _own_order(ctx, account, order_id, to_change=True)
    if body.price is None and body.quantity is None:
        raise ApiError(Refusal.NOTHING_TO_AMEND)
    throttle(ctx, account)
    op = AmendOrder(
        AccountId(account.id),
        OrderId(order_id),
        price_units(body.price),
        quantity_units(body.quantity),
    )
    return FastJSONResponse(await ctx.service.submit(op, order_view))


@router.delete("/orders/{order_id}", response_model=OrderOut, **answers(404, 422, 503, key="key"))
async def cancel_order(order_id: Id, request: Request) -> FastJSONResponse:
    """Cancel; never rate limited, so a throttled client can still pull its orders."""
    ctx, account = request_account(request)
    await _own_order(ctx, account, order_id, to_change=True)
    return FastJSONResponse(
        await ctx.service.submit(CancelOrder(AccountId(account.id), OrderId(order_id)), order_view)
    )


@router.delete("/orders", response_model=CancelAllOut, **answers(404, 422, 503, key="key"))
async def cancel_all(
    ctx: ContextDep, account: CurrentAccount, instrument: InstrumentFilter = None
) -> dict[str, Any]:
    def render(orders: list[OrderState]) -> list[dict[str, Any]]:
        return [order_view(o) for o in orders]

    symbol = SymbolId(instrument) if instrument is not None else None
    cancelled = await ctx.service.submit(CancelAll(AccountId(account.id), symbol), render)
    return {"cancelled": cancelled}


@router.get("/fills", response_model=Page[AccountFillOut], **answers(422, key="key"))
async def list_fills(
    ctx: ContextDep, account: CurrentAccount, page: PageDep, instrument: InstrumentFilter = None
) -> dict[str, Any]:
    """Own fills, oldest first; a trade's two fills share its trade_id."""
    core = ctx.service.core
    fills = [
        (f, o.id, o.symbol, o.side)
        for o in core.query.orders_of(account.id)
        if instrument is None or o.symbol == instrument
        for f in o.fills
    ]
    archived = await archived_fills(
        ctx.service, account.id, after_trade=page.cursor, limit=page.limit + 1, symbol=instrument
    )
    fills.extend((a.fill, a.order_id, a.symbol, a.side) for a in archived)
    fills.sort(key=lambda x: x[0].trade_id)

    def render(x: Any) -> dict[str, Any]:
        f, order_id, symbol, side = x
        return {
            "trade_id": f.trade_id,
            "order_id": order_id,
            "contract_id": f.contract_id,
            "instrument": symbol,
            "side": side.value,
            "price": format_price(f.price),
            "quantity": format_quantity(f.quantity),
            "fee": format_money(f.fee),
            "liquidity": f.liquidity.value,
            "time": iso(f.ts),
        }

    return paginate(fills, page, lambda x: x[0].trade_id, render)
