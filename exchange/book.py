"""The order book of one instrument, and the matching of an incoming order against it.

Structure (the fast path of the exchange):

* each side keeps ``dict[price, Level]`` for O(1) level lookup and a ``SortedList`` of its
  prices, touched only when a level appears or disappears;
* the best bid and ask are cached, so reading them is O(1);
* a level is a FIFO queue written as an intrusive doubly linked list through the orders
  themselves, so cancelling any order is O(1) given its id, and a deep level is never
  scanned;
* ``orders`` (order id -> order) and ``by_account`` (account -> {order id: order}, a
  ``defaultdict`` whose per-account dicts stay once created: accounts are few) are shared
  with the engine: the book keeps them exact as orders rest, fill and leave.

Everything here trusts its caller (:mod:`exchange.engine`) to have validated the command;
the book only decides the matching. It never reads a clock: ``ts`` is passed in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any, NamedTuple

from sortedcontainers import SortedList

from exchange.events import (
    BookChanged,
    Event,
    OrderCancelled,
    OrderExpired,
    SelfTradePrevented,
    Trade,
)
from exchange.ids import AccountId, OrderId, Symbol, Timestamp
from exchange.orders import CancelReason, ExpireReason, SelfTradePrevention, Side
from exchange.units import Price, Quantity

__all__ = ["Level", "OrderBook", "OrderTerms", "RestingOrder", "order_terms"]

BUY = Side.BUY
SELL = Side.SELL
_CANCEL_NEWEST = SelfTradePrevention.CANCEL_NEWEST
_CANCEL_OLDEST = SelfTradePrevention.CANCEL_OLDEST
_CANCEL_BOTH = SelfTradePrevention.CANCEL_BOTH
_DECREMENT = SelfTradePrevention.DECREMENT
_SELF_TRADE = CancelReason.SELF_TRADE


class OrderTerms(NamedTuple):
    """The rarely read terms of a resting order, shared by every plain GTC order."""

    expire_time: Timestamp | None
    post_only: bool
    stp: SelfTradePrevention


_PLAIN_TERMS = OrderTerms(None, False, _CANCEL_NEWEST)


def order_terms(
    expire_time: Timestamp | None, post_only: bool, stp: SelfTradePrevention
) -> OrderTerms:
    if expire_time is None and not post_only and stp is _CANCEL_NEWEST:
        return _PLAIN_TERMS
    return OrderTerms(expire_time, post_only, stp)


class RestingOrder:
    """An order at rest in a book. Mutable, owned by the book; never handed out.

    Kept small (eleven slots, about 120 bytes) because tens of thousands rest per book.
    """

    __slots__ = (
        "account",
        "filled",
        "next",
        "order_id",
        "prev",
        "price",
        "quantity",
        "remaining",
        "side",
        "symbol",
        "terms",
    )

    def __init__(
        self,
        order_id: OrderId,
        account: AccountId,
        symbol: Symbol,
        side: Side,
        price: Price,
        quantity: int,
        remaining: int,
        filled: int,
        terms: OrderTerms = _PLAIN_TERMS,
    ) -> None:
        self.order_id = order_id
        self.account = account
        self.symbol = symbol
        self.side = side
        self.price = price
        self.quantity = quantity  # total ordered, after amendments
        self.remaining = remaining
        self.filled = filled
        self.terms = terms
        self.prev: RestingOrder | None = None
        self.next: RestingOrder | None = None

    @property
    def expire_time(self) -> Timestamp | None:
        return self.terms.expire_time

    @property
    def post_only(self) -> bool:
        return self.terms.post_only

    @property
    def stp(self) -> SelfTradePrevention:
        return self.terms.stp


class Level:
    """All resting orders at one price on one side, oldest first."""

    __slots__ = ("count", "head", "price", "tail", "total")

    def __init__(self, price: Price) -> None:
        self.price = price
        self.head: RestingOrder | None = None
        self.tail: RestingOrder | None = None
        self.total: int = 0
        self.count: int = 0

    def __iter__(self) -> Iterator[RestingOrder]:
        o = self.head
        while o is not None:
            yield o
            o = o.next


class OrderBook:
    """Bids and asks of one instrument, with its gapless event sequence."""

    __slots__ = (
        "ask_levels",
        "ask_prices",
        "best_ask",
        "best_bid",
        "bid_levels",
        "bid_prices",
        "by_account",
        "orders",
        "seq",
        "symbol",
        "trade_ids",
    )

    def __init__(
        self,
        symbol: Symbol,
        orders: dict[OrderId, RestingOrder],
        by_account: defaultdict[AccountId, dict[OrderId, RestingOrder]],
        trade_ids: list[int],
    ) -> None:
        self.symbol = symbol
        self.bid_levels: dict[int, Level] = {}
        self.ask_levels: dict[int, Level] = {}
        self.bid_prices: Any = SortedList()
        self.ask_prices: Any = SortedList()
        self.best_bid: Price | None = None
        self.best_ask: Price | None = None
        self.seq = 0
        self.orders = orders
        self.by_account = by_account
        # One shared cell so trade ids are unique across all books of an engine.
        self.trade_ids = trade_ids

    # ------------------------------------------------------------------ reading
    def depth(self, side: Side, levels: int | None = None) -> list[tuple[Price, Quantity]]:
        """(price, total quantity) per level, best first."""
        if side is BUY:
            prices = reversed(self.bid_prices)
            book = self.bid_levels
        else:
            prices = iter(self.ask_prices)
            book = self.ask_levels
        out: list[tuple[Price, Quantity]] = []
        for p in prices:
            if levels is not None and len(out) >= levels:
                break
            out.append((Price(p), Quantity(book[p].total)))
        return out

    def iter_orders(self, side: Side) -> Iterator[RestingOrder]:
        """Resting orders of one side in priority order (best price, then oldest)."""
        if side is BUY:
            for p in reversed(self.bid_prices):
                yield from self.bid_levels[p]
        else:
            for p in self.ask_prices:
                yield from self.ask_levels[p]

    def crosses(self, side: Side, price: Price) -> bool:
        """Would a limit order at ``price`` on ``side`` take liquidity now?"""
        if side is BUY:
            return self.best_ask is not None and price >= self.best_ask
        return self.best_bid is not None and price <= self.best_bid

    def fok_fillable(
        self,
        side: Side,
        limit: Price,
        quantity: Quantity,
        account: AccountId,
        stp: SelfTradePrevention,
    ) -> bool:
        """Could an incoming order complete at once? Reads only; changes nothing.

        Walks the opposite side as matching would: other accounts' orders count; an own
        order stops the walk under cancel-newest or cancel-both, is skipped under
        cancel-oldest, and counts under decrement (both orders shrink by the overlap).
        """
        need: int = quantity
        if side is BUY:
            prices: Any = self.ask_prices
            levels = self.ask_levels
            in_limit = limit.__ge__
        else:
            prices = reversed(self.bid_prices)
            levels = self.bid_levels
            in_limit = limit.__le__
        for p in prices:
            if not in_limit(p):
                return False
            for o in levels[p]:
                if o.account == account:
                    if stp is _CANCEL_OLDEST:
                        continue
                    if stp is not _DECREMENT:
                        return False
                need -= o.remaining
                if need <= 0:
                    return True
        return False

    # ------------------------------------------------------------------ matching
    def match(
        self,
        ts: Timestamp,
        taker_id: OrderId,
        account: AccountId,
        side: Side,
        limit: Price,
        quantity: Quantity,
        stp: SelfTradePrevention,
        events: list[Event],
    ) -> tuple[Quantity, Quantity, bool]:
        """Match an incoming order; append its events; return (remaining, filled, stopped).

        ``stopped`` is true when self-trade prevention cancelled the incoming remainder
        (cancel-newest or cancel-both); the caller emits that cancellation.
        """
        symbol = self.symbol
        orders = self.orders
        by_account = self.by_account
        trade_ids = self.trade_ids
        seq = self.seq
        remaining: int = quantity
        filled = 0
        stopped = False
        if side is BUY:
            levels = self.ask_levels
            prices = self.ask_prices
            book_side = SELL
        else:
            levels = self.bid_levels
            prices = self.bid_prices
            book_side = BUY
        while remaining:
            best = self.best_ask if side is BUY else self.best_bid
            if best is None or (best > limit if side is BUY else best < limit):
                break
            level = levels[best]
            total_before = level.total
            o = level.head
            while o is not None and remaining:
                if o.account == account:
                    if stp is _CANCEL_NEWEST:
                        stopped = True
                        break
                    if stp is _DECREMENT:
                        d = o.remaining if o.remaining < remaining else remaining
                        remaining -= d
                        o.remaining -= d
                        o.quantity -= d  # a decrement shrinks the order itself
                        level.total -= d
                        seq += 1
                        events.append(
                            SelfTradePrevented(
                                symbol,
                                seq,
                                ts,
                                taker_id,
                                o.order_id,
                                account,
                                stp,
                                d,
                            )
                        )
                        nxt = o.next
                        if o.remaining == 0:
                            self._unlink(level, o)
                        o = nxt
                        continue
                    # cancel-oldest or cancel-both: the resting order goes.
                    nxt = o.next
                    level.total -= o.remaining
                    self._unlink(level, o)
                    seq += 1
                    events.append(
                        OrderCancelled(
                            symbol,
                            seq,
                            ts,
                            o.order_id,
                            account,
                            o.remaining,
                            _SELF_TRADE,
                        )
                    )
                    o = nxt
                    if stp is _CANCEL_BOTH:
                        stopped = True
                        break
                    continue
                rest = o.remaining
                fill = rest if rest < remaining else remaining
                remaining -= fill
                filled += fill
                rest -= fill
                o.remaining = rest
                o.filled += fill
                level.total -= fill
                trade_ids[0] += 1
                seq += 1
                events.append(
                    Trade(
                        symbol,
                        seq,
                        ts,
                        trade_ids[0],
                        best,
                        fill,
                        side,
                        taker_id,
                        account,
                        o.order_id,
                        o.account,
                        rest,
                    )
                )
                if rest == 0:
                    # Inline unlink of the head: the hottest path of the exchange.
                    nxt = o.next
                    level.head = nxt
                    if nxt is None:
                        level.tail = None
                    else:
                        nxt.prev = None
                    level.count -= 1
                    oid = o.order_id
                    del orders[oid]
                    del by_account[o.account][oid]
                    o = nxt
                else:
                    break
            if level.total != total_before:
                seq += 1
                events.append(BookChanged(symbol, seq, book_side, best, level.total))
            if level.count == 0:
                del levels[best]
                prices.remove(best)
                if side is BUY:
                    self.best_ask = prices[0] if prices else None
                else:
                    self.best_bid = prices[-1] if prices else None
            if stopped:
                break
        self.seq = seq
        return Quantity(remaining), Quantity(filled), stopped

    # ------------------------------------------------------------------ resting
    def new_level(self, side: Side, price: Price) -> Level:
        """Open an empty level at ``price`` on ``side`` and keep the best price exact."""
        level = Level(price)
        if side is BUY:
            self.bid_levels[price] = level
            self.bid_prices.add(price)
            if self.best_bid is None or price > self.best_bid:
                self.best_bid = price
        else:
            self.ask_levels[price] = level
            self.ask_prices.add(price)
            if self.best_ask is None or price < self.best_ask:
                self.best_ask = price
        return level

    def rest(self, order: RestingOrder, events: list[Event]) -> None:
        """Queue ``order`` at the back of its price level and index it."""
        price = order.price
        level = (self.bid_levels if order.side is BUY else self.ask_levels).get(price)
        if level is None:
            level = self.new_level(order.side, price)
        tail = level.tail
        if tail is None:
            level.head = order
        else:
            tail.next = order
            order.prev = tail
        level.tail = order
        level.count += 1
        level.total += order.remaining
        oid = order.order_id
        self.orders[oid] = order
        self.by_account[order.account][oid] = order
        self.seq += 1
        events.append(BookChanged(self.symbol, self.seq, order.side, price, level.total))

    def remove(self, order: RestingOrder, events: list[Event]) -> None:
        """Take a resting order out of the book (cancel, expiry, amend-requeue)."""
        level = (self.bid_levels if order.side is BUY else self.ask_levels)[order.price]
        level.total -= order.remaining
        self._unlink(level, order)
        self.seq += 1
        events.append(BookChanged(self.symbol, self.seq, order.side, order.price, level.total))
        if level.count == 0:
            self.drop_level(order.side, order.price)

    def reduce(self, order: RestingOrder, by: Quantity, events: list[Event]) -> None:
        """Lower a resting order's remaining quantity in place: it keeps its priority."""
        level = (self.bid_levels if order.side is BUY else self.ask_levels)[order.price]
        order.remaining -= by
        order.quantity -= by
        level.total -= by
        self.seq += 1
        events.append(BookChanged(self.symbol, self.seq, order.side, order.price, level.total))

    def cancel_resting(
        self, ts: Timestamp, order: RestingOrder, reason: CancelReason, events: list[Event]
    ) -> None:
        self._end_resting(OrderCancelled, ts, order, reason, events)

    def expire_resting(
        self, ts: Timestamp, order: RestingOrder, reason: ExpireReason, events: list[Event]
    ) -> None:
        self._end_resting(OrderExpired, ts, order, reason, events)

    def _end_resting(
        self,
        kind: type[OrderCancelled] | type[OrderExpired],
        ts: Timestamp,
        order: RestingOrder,
        reason: Any,
        events: list[Event],
    ) -> None:
        """Emit the order's end (cancelled or expired, with its reason), then take it out."""
        self.seq += 1
        events.append(
            kind(self.symbol, self.seq, ts, order.order_id, order.account, order.remaining, reason)
        )
        self.remove(order, events)

    # ------------------------------------------------------------------ internals
    def _unlink(self, level: Level, o: RestingOrder) -> None:
        """O(1) removal from the level's queue and from both indexes."""
        prev, nxt = o.prev, o.next
        if prev is None:
            level.head = nxt
        else:
            prev.next = nxt
        if nxt is None:
            level.tail = prev
        else:
            nxt.prev = prev
        o.prev = o.next = None
        level.count -= 1
        oid = o.order_id
        del self.orders[oid]
        del self.by_account[o.account][oid]

    def drop_level(self, side: Side, price: Price) -> None:
        if side is BUY:
            del self.bid_levels[price]
            self.bid_prices.remove(price)
            self.best_bid = self.bid_prices[-1] if self.bid_prices else None
        else:
            del self.ask_levels[price]
            self.ask_prices.remove(price)
            self.best_ask = self.ask_prices[0] if self.ask_prices else None
