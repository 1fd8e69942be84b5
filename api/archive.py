"""The archive: final records the core retired with a settled instrument, read back.

A settled instrument's orders, fills and contracts leave the core
(:meth:`exchange.components.clock.Clock._retire`) so that its memory stays bounded; the
projection writes each into the ``archive`` table (:func:`archive_rows`) in the
transaction of the operation that retired it. The API reads a record from the core while
it is there and from here after: :func:`merged` joins the two for the lists, which page on
one ascending key, so a page is whole whichever side its records come from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from sqlalchemy import and_, or_, select

from api.db.tables import ArchiveRow, TradeRow
from exchange.core import Fill, OrderState
from exchange.orders import Side
from exchange.settlement import Contract

if TYPE_CHECKING:
    from api.service import ExchangeService

__all__ = [
    "ArchivedFill",
    "archive_rows",
    "archived_contract",
    "archived_contracts",
    "archived_fills",
    "archived_order",
    "archived_orders",
    "archived_trades",
    "merged",
]

ORDER, CONTRACT, FILL = "order", "contract", "fill"
#: Fills are archived under twice their trade id (a BIGINT): trade ids stay below this.
_LAST_TRADE_ID = 2**62

_table = ArchiveRow.__table__  # type: ignore[attr-defined]
_encode = msgspec.msgpack.Encoder().encode
_orders = msgspec.msgpack.Decoder(OrderState)
_contracts = msgspec.msgpack.Decoder(Contract)


class ArchivedFill(msgspec.Struct, frozen=True):
    """One side of a trade, as the fills list shows it: the order it filled and the fill."""

    order_id: int
    symbol: str
    side: Side
    fill: Fill


_fills = msgspec.msgpack.Decoder(ArchivedFill)


def fill_key(trade_id: int, side: Side) -> int:
    """A fill's archive id: its trade's id twice, plus one for the sell side (a trade has
    two fills; the list pages on the trade id, ``key // 2``)."""
    return 2 * trade_id + (side is Side.SELL)


def archive_rows(
    orders: Iterable[OrderState], contracts: Iterable[Contract]
) -> list[dict[str, Any]]:
    """The archive rows of retired orders (with one row per fill) and contracts."""
    rows: list[dict[str, Any]] = []
    for o in orders:
        rows.append(_row(ORDER, o.id, o.account_id, None, o.symbol, o.status, _encode(o)))
        for f in o.fills:
            archived = ArchivedFill(o.id, o.symbol, o.side, f)
            key = fill_key(f.trade_id, o.side)
            rows.append(_row(FILL, key, o.account_id, None, o.symbol, "", _encode(archived)))
    for c in contracts:
        rows.append(_row(CONTRACT, c.id, c.buyer, c.seller, c.symbol, c.state, _encode(c)))
    return rows


def _row(
    kind: str,
    key: int,
    account: int,
    counterparty: int | None,
    symbol: str,
    status: str,
    payload: bytes,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "id": key,
        "account_id": account,
        "counterparty_id": counterparty,
        "symbol": symbol,
        "status": str(status),
        "payload": payload,
    }


# ---------------------------------------------------------------------- reads
async def _read(service: ExchangeService, query: Any) -> list[Any]:
    """Rows of ``query``, once every record retired so far is in the archive."""
    if service.retired_pending:
        await service.flush()

    def read() -> list[Any]:
        with service.store.engine.connect() as conn:
            return list(conn.execute(query))

    return await asyncio.get_running_loop().run_in_executor(None, read)


def _page(
    kind: str, where: Any, after: int | None, limit: int, status: str | None, symbol: str | None
) -> Any:
    """Payloads of ``kind`` matching ``where`` (and the status and instrument, when given),
    with ids after ``after``, ascending, at most ``limit``."""
    if status is not None:
        where = and_(where, _table.c.status == status)
    if symbol is not None:
        where = and_(where, _table.c.symbol == symbol)
    query = select(_table.c.payload).where(_table.c.kind == kind, where)
    if after is not None:
        query = query.where(_table.c.id > after)
    return query.order_by(_table.c.id).limit(limit)


async def _one(service: ExchangeService, kind: str, key: int) -> bytes | None:
    query = select(_table.c.payload).where(_table.c.kind == kind, _table.c.id == key)
    rows = await _read(service, query)
    return rows[0].payload if rows else None


async def archived_order(service: ExchangeService, order_id: int) -> OrderState | None:
    payload = await _one(service, ORDER, order_id)
    return None if payload is None else _orders.decode(payload)


async def archived_orders(
    service: ExchangeService,
    account_id: int,
    *,
    after: int | None,
    limit: int,
    status: str | None = None,
    symbol: str | None = None,
) -> list[OrderState]:
    """An account's retired orders after ``after``, oldest first, at most ``limit``."""
    where = _table.c.account_id == account_id
    rows = await _read(service, _page(ORDER, where, after, limit, status, symbol))
    return [_orders.decode(r.payload) for r in rows]


async def archived_contract(service: ExchangeService, contract_id: int) -> Contract | None:
    payload = await _one(service, CONTRACT, contract_id)
    return None if payload is None else _contracts.decode(payload)


async def archived_contracts(
    service: ExchangeService,
    account_id: int,
    *,
    after: int | None,
    limit: int,
    state: str | None = None,
    symbol: str | None = None,
) -> list[Contract]:
    """The retired contracts an account bought or sold, oldest first, at most ``limit``."""
    where = or_(_table.c.account_id == account_id, _table.c.counterparty_id == account_id)
    rows = await _read(service, _page(CONTRACT, where, after, limit, state, symbol))
    return [_contracts.decode(r.payload) for r in rows]


async def archived_fills(
    service: ExchangeService,
    account_id: int,
    *,
    after_trade: int | None,
    limit: int,
    symbol: str | None = None,
) -> list[ArchivedFill]:
    """An account's fills of retired orders with a trade id after ``after_trade``, in
    trade order; at most ``limit`` trades' worth (a self-trade has two fills)."""
    if after_trade is not None and after_trade >= _LAST_TRADE_ID:
        return []  # past any trade id an archive key can hold (a cursor is any int64)
    where = _table.c.account_id == account_id
    after = None if after_trade is None else fill_key(after_trade, Side.SELL)
    rows = await _read(service, _page(FILL, where, after, 2 * limit, None, symbol))
    return [_fills.decode(r.payload) for r in rows]


async def archived_trades(
    service: ExchangeService, symbol: str, *, after: int | None, limit: int | None
) -> list[Any]:
    """Trades of a settled instrument (whose contracts left the core) from the trades
    projection, oldest first: rows with ``id`` (the trade id), ``price``, ``quantity``,
    ``taker_side`` and ``ts``; all of them when ``limit`` is None."""
    trades = TradeRow.__table__  # type: ignore[attr-defined]
    query = select(
        trades.c.id, trades.c.price, trades.c.quantity, trades.c.taker_side, trades.c.ts
    ).where(trades.c.symbol == symbol)
    if after is not None:
        query = query.where(trades.c.id > after)
    query = query.order_by(trades.c.id)
    if limit is not None:
        query = query.limit(limit)
    return await _read(service, query)


T = TypeVar("T")


def merged(live: Sequence[T], archived: Sequence[T], key: Callable[[T], int]) -> list[T]:
    """Records from the core and from the archive in one ascending order of ``key``; a
    record is in one of them only (retired means gone from the core)."""
    if not archived:
        return list(live)
    return sorted((*live, *archived), key=key)
