"""The matching engine: many instruments, one writer, validate fully then mutate.

Every command returns an :class:`Outcome`: ``result`` is ``ResultCode.OK`` with the events
the command caused, or a rejection code with no events, in which case nothing changed.
The engine is pure: the clock advances only through :meth:`MatchingEngine.advance_time`,
order ids come from the caller, trade ids from a counter in the engine's own state.

Validation order for a new order (the first failing rule names the rejection):
instrument known, instrument open, order id not resting, quantity positive, on the lot,
within min and max, order type and time in force consistent, then for a limit order a
positive price on the tick inside the price band, a GTD expiry after now, and post-only
not crossing; a market order needs a reference price (its protection price is the edge
of the band). See docs/matching.md.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable
from operator import attrgetter
from typing import Any

import msgspec
from sortedcontainers import SortedList

from exchange.book import _PLAIN_TERMS, Level, OrderBook, RestingOrder, order_terms
from exchange.events import (
    BookChanged,
    Event,
    InstrumentListed,
    InstrumentStateChanged,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    ReferencePriceSet,
)
from exchange.ids import AccountId, OrderId, Symbol, Timestamp
from exchange.invariants import InvariantViolation, check
from exchange.lifecycle import InstrumentEvent, InstrumentState, next_state
from exchange.orders import (
    CancelReason,
    ExpireReason,
    OrderType,
    ResultCode,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from exchange.products import Instrument
from exchange.statehash import canonical, digest, encoded_as_is
from exchange.units import Price, Quantity

__all__ = ["Market", "MatchingEngine", "Outcome"]

_OK = ResultCode.OK
_new_order = RestingOrder.__new__
_OPEN = InstrumentState.OPEN
_LIMIT = OrderType.LIMIT
_MARKET = OrderType.MARKET
_GTC = TimeInForce.GTC
_GTD = TimeInForce.GTD
_IOC = TimeInForce.IOC
_FOK = TimeInForce.FOK
_BUY = Side.BUY
_CANCEL_NEWEST = SelfTradePrevention.CANCEL_NEWEST
#: No price can reach this: parsed prices have at most 18 integer digits.
_PRICE_CEILING = 10**40


class Outcome(msgspec.Struct, frozen=True, gc=False):
    result: ResultCode
    events: list[Event]

    @property
    def ok(self) -> bool:
        return self.result is ResultCode.OK


def _reject(code: ResultCode) -> Outcome:
    # A fresh list each time: callers may append to events they receive.
    return Outcome(code, [])


class Market:
    """One listed instrument: its definition, lifecycle state, price band and book."""

    __slots__ = (
        "band_bps",
        "band_high",
        "band_low",
        "book",
        "instrument",
        "lot",
        "max_quantity",
        "min_quantity",
        "reference_price",
        "state",
        "tick",
    )

    def __init__(self, instrument: Instrument, book: OrderBook) -> None:
        tier = instrument.tier
        self.instrument = instrument
        self.book = book
        self.state = InstrumentState.LISTED
        self.tick = tier.tick
        self.lot = tier.lot
        self.min_quantity = tier.min_quantity
        self.max_quantity = tier.max_quantity
        self.band_bps = tier.price_band_bps
        self.reference_price: Price | None = None
        self.band_low: int = tier.tick
        self.band_high: int = _PRICE_CEILING

    def set_reference(self, price: Price | None) -> None:
        """The band is [ref x (1 - band), ref x (1 + band)], rounded inwards to the tick."""
        self.reference_price = price
        if price is None:
            self.band_low, self.band_high = self.tick, _PRICE_CEILING
            return
        tick = self.tick
        low = -((-price * (10_000 - self.band_bps)) // 10_000)  # ceil
        high = (price * (10_000 + self.band_bps)) // 10_000  # floor
        low = -((-low) // tick) * tick  # up to the tick
        self.band_low = max(low, tick)
        self.band_high = (high // tick) * tick


class MatchingEngine:
    """Continuous double auction with price-time priority over many instruments."""

    def __init__(self) -> None:
        self._markets: dict[Symbol, Market] = {}
        self._orders: dict[OrderId, RestingOrder] = {}
        self._by_account: defaultdict[AccountId, dict[OrderId, RestingOrder]] = defaultdict(dict)
        self._trade_ids = [0]
        self._expiries: list[tuple[int, int]] = []  # (expire_time, order_id), lazy deletion
        self.now: Timestamp = Timestamp(0)

    # ================================================================== reading
    def market(self, symbol: Symbol) -> Market | None:
        return self._markets.get(symbol)

    def book(self, symbol: Symbol) -> OrderBook:
        return self._markets[symbol].book

    @property
    def symbols(self) -> list[Symbol]:
        return list(self._markets)

    def resting_order(self, order_id: OrderId) -> RestingOrder | None:
        return self._orders.get(order_id)

    @property
    def resting_count(self) -> int:
        return len(self._orders)

    def open_order_ids(self, account: AccountId) -> list[OrderId]:
        return list(self._by_account.get(account, ()))

    def open_order_count(self, account: AccountId) -> int:
        """Orders of ``account`` resting in any book: O(1)."""
        return len(self._by_account.get(account, ()))

    def next_expiry(self) -> Timestamp | None:
        """The earliest expire time of a resting GTD order, or None."""
        heap = self._expiries
        while heap:
            expire_time, order_id = heap[0]
            order = self._orders.get(OrderId(order_id))
            if order is not None and order.expire_time == expire_time:
                return Timestamp(expire_time)
            heapq.heappop(heap)  # stale entry: the order left the book
        return None

    @property
    def last_trade_id(self) -> int:
        return self._trade_ids[0]

    # ================================================================== lifecycle
    def list_instrument(
        self, instrument: Instrument, reference_price: Price | None = None
    ) -> Outcome:
        symbol = instrument.symbol
        if symbol in self._markets:
            return _reject(ResultCode.INSTRUMENT_EXISTS)
        tier = instrument.tier
        if reference_price is not None and (reference_price <= 0 or reference_price % tier.tick):
            return _reject(ResultCode.INVALID_TICK)
        book = OrderBook(symbol, self._orders, self._by_account, self._trade_ids)
        market = Market(instrument, book)
        self._markets[symbol] = market
        events: list[Event] = []
        book.seq += 1
        events.append(
            InstrumentListed(
                symbol,
                book.seq,
                self.now,
                tier.code,
                instrument.window.start,
                instrument.window.end,
                instrument.gate_closure,
            )
        )
        if reference_price is not None:
            self._set_reference(market, reference_price, events)
        return Outcome(ResultCode.OK, events)

    def transition(self, symbol: Symbol, event: InstrumentEvent) -> Outcome:
        """Move an instrument along the lifecycle table; closing cancels every resting order."""
        market = self._markets.get(symbol)
        if market is None:
            return _reject(ResultCode.INSTRUMENT_NOT_FOUND)
        new_state = next_state(market.state, event)
        if new_state is None:
            return _reject(ResultCode.INVALID_TRANSITION)
        events: list[Event] = []
        book = market.book
        if event is InstrumentEvent.CLOSE:
            for side in (Side.BUY, Side.SELL):
                for order in list(book.iter_orders(side)):
                    book.cancel_resting(self.now, order, CancelReason.GATE_CLOSURE, events)
        book.seq += 1
        events.append(InstrumentStateChanged(symbol, book.seq, self.now, market.state, new_state))
        market.state = new_state
        return Outcome(ResultCode.OK, events)

    def set_reference_price(self, symbol: Symbol, price: Price | None) -> Outcome:
        market = self._markets.get(symbol)
        if market is None:
            return _reject(ResultCode.INSTRUMENT_NOT_FOUND)
        if price is not None and (price <= 0 or price % market.tick):
            return _reject(ResultCode.INVALID_TICK)
        events: list[Event] = []
        self._set_reference(market, price, events)
        return Outcome(ResultCode.OK, events)

    def _set_reference(self, market: Market, price: Price | None, events: list[Event]) -> None:
        market.set_reference(price)
        book = market.book
        book.seq += 1
        events.append(
            ReferencePriceSet(
                book.symbol,
                book.seq,
                self.now,
                price,
                Price(market.band_low),
                Price(market.band_high),
            )
        )

    def advance_time(self, ts: Timestamp) -> Outcome:
        """Move the clock to ``ts`` and expire every GTD order due by then, oldest first."""
        if ts < self.now:
            return _reject(ResultCode.CLOCK_WENT_BACKWARDS)
        self.now = ts
        events: list[Event] = []
        heap = self._expiries
        while heap and heap[0][0] <= ts:
            expire_time, order_id = heapq.heappop(heap)
            order = self._orders.get(OrderId(order_id))
            if order is None or order.expire_time != expire_time:
                continue  # filled or cancelled since: lazy deletion
            self._markets[order.symbol].book.expire_resting(ts, order, ExpireReason.GTD, events)
        return Outcome(ResultCode.OK, events)

    # ================================================================== orders
    def place(
        self,
        order_id: OrderId,
        account: AccountId,
        symbol: Symbol,
        side: Side,
        price: Price | None,
        quantity: Quantity,
        order_type: OrderType = _LIMIT,
        time_in_force: TimeInForce = _GTC,
        expire_time: Timestamp | None = None,
        post_only: bool = False,
        stp: SelfTradePrevention = _CANCEL_NEWEST,
    ) -> Outcome:
        """Validate a new order completely, then match it and rest what is left.

        The body is the exchange's hot path, written out for the common case (a plain
        GTC limit order); every other order, and every rejection, takes a helper that
        applies the same rules in full.
        """
        market = self._markets.get(symbol)
        if (
            market is None
            or market.state is not _OPEN
            or order_id in self._orders
            or quantity % market.lot
            or quantity < market.min_quantity
            or quantity > market.max_quantity
            or order_type is not _LIMIT
            or time_in_force is not _GTC
            or post_only
            or stp is not _CANCEL_NEWEST
            or expire_time is not None
            or price is None
            or price % market.tick
            or price < market.band_low
            or price > market.band_high
        ):
            return self._place_general(
                order_id,
                account,
                symbol,
                side,
                price,
                quantity,
                order_type,
                time_in_force,
                expire_time,
                post_only,
                stp,
            )
        book = market.book
        now = self.now
        seq = book.seq + 1
        book.seq = seq
        events: list[Event] = [
            OrderAccepted(symbol, seq, now, order_id, account, side, _LIMIT, price, quantity)
        ]
        remaining: int = quantity
        filled: int = 0
        if side is _BUY:
            best = book.best_ask
            crosses = best is not None and price >= best
        else:
            best = book.best_bid
            crosses = best is not None and price <= best
        if crosses:
            remaining, filled, stopped = book.match(
                now, order_id, account, side, price, quantity, stp, events
            )
            if stopped or not remaining:
                if remaining:
                    self._finish_incoming(
                        market,
                        events,
                        order_id,
                        account,
                        side,
                        price,
                        quantity,
                        remaining,
                        filled,
                        _LIMIT,
                        _GTC,
                        None,
                        False,
                        stp,
                        stopped,
                    )
                return Outcome(_OK, events)
            seq = book.seq
        level = (book.bid_levels if side is _BUY else book.ask_levels).get(price)
        if level is None:
            level = book.new_level(side, price)
        # Rest the order at the back of its level (fields set here: no __init__ call).
        o = _new_order(RestingOrder)
        o.order_id = order_id
        o.account = account
        o.symbol = symbol
        o.side = side
        o.price = price
        o.quantity = quantity
        o.remaining = remaining
        o.filled = filled
        o.terms = _PLAIN_TERMS
        o.next = None
        tail = level.tail
        o.prev = tail
        if tail is None:
            level.head = o
        else:
            tail.next = o
        level.tail = o
        level.count += 1
        total = level.total + remaining
        level.total = total
        self._orders[order_id] = o
        self._by_account[account][order_id] = o
        seq += 1
        book.seq = seq
        events.append(BookChanged(symbol, seq, side, price, total))
        return Outcome(_OK, events)

    def validate_place(
        self,
        order_id: OrderId,
        symbol: Symbol,
        side: Side,
        price: Price | None,
        quantity: Quantity,
        order_type: OrderType = _LIMIT,
        time_in_force: TimeInForce = _GTC,
        expire_time: Timestamp | None = None,
        post_only: bool = False,
    ) -> tuple[ResultCode, Price]:
        """Would :meth:`place` accept this order? Returns (code, limit or protection price).

        Reads only. The risk layer calls it before reserving funds, so that an order the
        engine would refuse never touches a balance.
        """
        market = self._markets.get(symbol)
        if market is None:
            return ResultCode.INSTRUMENT_NOT_FOUND, Price(0)
        if market.state is not _OPEN:
            return ResultCode.INSTRUMENT_NOT_OPEN, Price(0)
        if order_id in self._orders:
            return ResultCode.DUPLICATE_ORDER_ID, Price(0)
        if quantity <= 0:
            return ResultCode.INVALID_QUANTITY, Price(0)
        if quantity % market.lot:
            return ResultCode.INVALID_LOT, Price(0)
        if quantity < market.min_quantity:
            return ResultCode.QUANTITY_BELOW_MINIMUM, Price(0)
        if quantity > market.max_quantity:
            return ResultCode.QUANTITY_ABOVE_MAXIMUM, Price(0)
        if order_type is _LIMIT:
            if post_only and time_in_force is not _GTC and time_in_force is not _GTD:
                return ResultCode.INVALID_ORDER_TYPE, Price(0)  # post-only must be able to rest
        elif order_type is _MARKET:
            if post_only:
                return ResultCode.INVALID_ORDER_TYPE, Price(0)
            if time_in_force is not _IOC and time_in_force is not _FOK:
                return ResultCode.INVALID_TIME_IN_FORCE, Price(0)
        else:
            return ResultCode.INVALID_ORDER_TYPE, Price(0)
        if order_type is _LIMIT:
            if price is None or price <= 0:
                return ResultCode.INVALID_PRICE, Price(0)
            if price % market.tick:
                return ResultCode.INVALID_TICK, Price(0)
            if price < market.band_low or price > market.band_high:
                return ResultCode.PRICE_OUT_OF_BAND, Price(0)
            if time_in_force is _GTD:
                if expire_time is None or expire_time <= self.now:
                    return ResultCode.INVALID_EXPIRE_TIME, Price(0)
            elif expire_time is not None:
                return ResultCode.INVALID_EXPIRE_TIME, Price(0)
            if post_only and market.book.crosses(side, price):
                return ResultCode.POST_ONLY_WOULD_CROSS, Price(0)
            return _OK, price
        if price is not None:
            return ResultCode.INVALID_PRICE, Price(0)
        if expire_time is not None:
            return ResultCode.INVALID_EXPIRE_TIME, Price(0)
        if market.reference_price is None:
            return ResultCode.NO_REFERENCE_PRICE, Price(0)
        return _OK, Price(market.band_high if side is _BUY else market.band_low)

    def _place_general(
        self,
        order_id: OrderId,
        account: AccountId,
        symbol: Symbol,
        side: Side,
        price: Price | None,
        quantity: Quantity,
        order_type: OrderType,
        time_in_force: TimeInForce,
        expire_time: Timestamp | None,
        post_only: bool,
        stp: SelfTradePrevention,
    ) -> Outcome:
        """Every order and every rejection that is not the plain GTC limit fast path."""
        code, limit = self.validate_place(
            order_id,
            symbol,
            side,
            price,
            quantity,
            order_type,
            time_in_force,
            expire_time,
            post_only,
        )
        if code is not _OK:
            return _reject(code)
        book = self._markets[symbol].book
        market = self._markets[symbol]

        # ---- accepted: from here on the command cannot fail.
        now = self.now
        book.seq += 1
        events: list[Event] = [
            OrderAccepted(
                symbol,
                book.seq,
                now,
                order_id,
                account,
                side,
                order_type,
                limit,
                quantity,
            )
        ]
        if time_in_force is _FOK and not book.fok_fillable(side, limit, quantity, account, stp):
            book.seq += 1
            events.append(
                OrderExpired(
                    symbol,
                    book.seq,
                    now,
                    order_id,
                    account,
                    quantity,
                    ExpireReason.FOK,
                )
            )
            return Outcome(_OK, events)
        remaining, filled, stopped = book.match(
            now, order_id, account, side, limit, quantity, stp, events
        )
        if remaining:
            self._finish_incoming(
                market,
                events,
                order_id,
                account,
                side,
                limit,
                quantity,
                remaining,
                filled,
                order_type,
                time_in_force,
                expire_time,
                post_only,
                stp,
                stopped,
            )
        return Outcome(_OK, events)

    def _finish_incoming(
        self,
        market: Market,
        events: list[Event],
        order_id: OrderId,
        account: AccountId,
        side: Side,
        price: Price,
        quantity: Quantity,
        remaining: Quantity,
        filled: Quantity,
        order_type: OrderType,
        time_in_force: TimeInForce,
        expire_time: Timestamp | None,
        post_only: bool,
        stp: SelfTradePrevention,
        stopped: bool,
    ) -> None:
        """Rest, cancel or expire what is left of an incoming order after matching."""
        book = market.book
        symbol = book.symbol
        if stopped:
            book.seq += 1
            events.append(
                OrderCancelled(
                    symbol,
                    book.seq,
                    self.now,
                    order_id,
                    account,
                    remaining,
                    CancelReason.SELF_TRADE,
                )
            )
        elif order_type is _MARKET or time_in_force is _IOC or time_in_force is _FOK:
            reason = (
                ExpireReason.MARKET
                if order_type is _MARKET
                else ExpireReason.IOC
                if time_in_force is _IOC
                else ExpireReason.FOK
            )
            book.seq += 1
            events.append(
                OrderExpired(symbol, book.seq, self.now, order_id, account, remaining, reason)
            )
        else:
            book.rest(
                RestingOrder(
                    order_id,
                    account,
                    symbol,
                    side,
                    price,
                    filled + remaining,  # self-trade decrements shrink the order itself
                    remaining,
                    filled,
                    order_terms(expire_time, post_only, stp),
                ),
                events,
            )
            if expire_time is not None:
                heapq.heappush(self._expiries, (expire_time, order_id))

    def cancel(
        self, account: AccountId, order_id: OrderId, reason: CancelReason = CancelReason.USER
    ) -> Outcome:
        """Cancel a resting order of ``account``; someone else's order is not found."""
        order = self._orders.get(order_id)
        if order is None or order.account != account:
            return _reject(ResultCode.ORDER_NOT_FOUND)
        # Written out (rather than OrderBook.cancel_resting) because cancels are a fifth of
        # all messages: same steps, fewer calls.
        book = self._markets[order.symbol].book
        price = order.price
        side = order.side
        level = (book.bid_levels if side is _BUY else book.ask_levels)[price]
        remaining = order.remaining
        prev, nxt = order.prev, order.next
        if prev is None:
            level.head = nxt
        else:
            prev.next = nxt
        if nxt is None:
            level.tail = prev
        else:
            nxt.prev = prev
        order.prev = order.next = None
        level.count -= 1
        total = level.total - remaining
        level.total = total
        del self._orders[order_id]
        del self._by_account[account][order_id]
        seq = book.seq + 1
        book.seq = seq + 1
        symbol = book.symbol
        events: list[Event] = [
            OrderCancelled(symbol, seq, self.now, order_id, account, remaining, reason),
            BookChanged(symbol, seq + 1, side, price, total),
        ]
        if not level.count:
            book.drop_level(side, price)
        return Outcome(_OK, events)

    def cancel_all(self, account: AccountId, symbol: Symbol | None = None) -> Outcome:
        """Cancel every resting order of ``account`` (in one instrument, or everywhere)."""
        if symbol is not None and symbol not in self._markets:
            return _reject(ResultCode.INSTRUMENT_NOT_FOUND)
        mine = self._by_account.get(account)
        events: list[Event] = []
        if mine:
            for order in list(mine.values()):
                if symbol is None or order.symbol == symbol:
                    self._markets[order.symbol].book.cancel_resting(
                        self.now, order, CancelReason.CANCEL_ALL, events
                    )
        return Outcome(ResultCode.OK, events)

    def validate_amend(
        self,
        account: AccountId,
        order_id: OrderId,
        price: Price | None = None,
        quantity: Quantity | None = None,
    ) -> ResultCode:
        """Would :meth:`amend` accept this change? Reads only."""
        order = self._orders.get(order_id)
        if order is None or order.account != account:
            return ResultCode.ORDER_NOT_FOUND
        market = self._markets[order.symbol]
        if market.state is not _OPEN:
            return ResultCode.INSTRUMENT_NOT_OPEN
        new_price = order.price if price is None else price
        new_quantity = Quantity(order.quantity if quantity is None else quantity)
        if new_price == order.price and new_quantity == order.quantity:
            return ResultCode.NOTHING_TO_AMEND
        if new_quantity <= 0:
            return ResultCode.INVALID_QUANTITY
        if new_quantity % market.lot:
            return ResultCode.INVALID_LOT
        if new_quantity < market.min_quantity:
            return ResultCode.QUANTITY_BELOW_MINIMUM
        if new_quantity > market.max_quantity:
            return ResultCode.QUANTITY_ABOVE_MAXIMUM
        if new_quantity <= order.filled:
            return ResultCode.AMEND_BELOW_FILLED
        if new_price <= 0:
            return ResultCode.INVALID_PRICE
        if new_price % market.tick:
            return ResultCode.INVALID_TICK
        if new_price != order.price and not market.band_low <= new_price <= market.band_high:
            return ResultCode.PRICE_OUT_OF_BAND
        if (
            order.post_only
            and new_price != order.price
            and market.book.crosses(order.side, new_price)
        ):
            return ResultCode.POST_ONLY_WOULD_CROSS

        return _OK

    def amend(
        self,
        account: AccountId,
        order_id: OrderId,
        price: Price | None = None,
        quantity: Quantity | None = None,
    ) -> Outcome:
        """Change a resting order's price and/or total quantity.

        Lowering the quantity at the same price keeps time priority. A new price or a higher
        quantity re-queues the order at the back of its (new) level, after matching it
        against the book like a new order would (a post-only order may not cross).
        """
        code = self.validate_amend(account, order_id, price, quantity)
        if code is not _OK:
            return _reject(code)
        order = self._orders[order_id]
        market = self._markets[order.symbol]
        book = market.book
        new_price = order.price if price is None else price
        new_quantity = Quantity(order.quantity if quantity is None else quantity)
        events: list[Event] = []
        now = self.now
        new_remaining = Quantity(new_quantity - order.filled)
        keeps_priority = new_price == order.price and new_quantity < order.quantity
        book.seq += 1
        events.append(
            OrderAmended(
                book.symbol,
                book.seq,
                now,
                order_id,
                account,
                new_price,
                new_quantity,
                new_remaining,
                keeps_priority,
            )
        )
        if keeps_priority:
            book.reduce(order, Quantity(order.quantity - new_quantity), events)
            return Outcome(ResultCode.OK, events)
        book.remove(order, events)
        remaining, filled, stopped = book.match(
            now, order_id, account, order.side, new_price, new_remaining, order.stp, events
        )
        if remaining:
            self._finish_incoming(
                market,
                events,
                order_id,
                account,
                order.side,
                new_price,
                new_quantity,
                remaining,
                Quantity(order.filled + filled),
                _LIMIT,
                _GTD if order.expire_time is not None else _GTC,
                order.expire_time,
                order.post_only,
                order.stp,
                stopped,
            )
        return Outcome(ResultCode.OK, events)

    # ================================================================== integrity
    def state_hash(self) -> str:
        """SHA-256 over every field of the engine: the clock, the trade-id counter, the
        expiry heap, the account index, each market (every slot, its instrument and tier
        whole, its book: levels, price indexes, best prices, sequence number) and each
        resting order (every slot; its neighbours in the queue, and a level's ends, by id).
        Slots are read from ``__slots__``, so a slot added later is hashed too."""
        fields = []
        for name, value in sorted(vars(self).items()):
            if name == "_orders":  # every resting order whole, once
                orders = [
                    [i, _slots(o) if type(o) is RestingOrder else _plain(o)]
                    for i, o in sorted(value.items())
                ]
                fields.append([name, orders])
            else:
                fields.append([name, _plain(value)])
        return digest(fields)

    def validate(self) -> None:
        """Check every internal invariant; raise :class:`InvariantViolation` on the first."""
        seen: dict[OrderId, RestingOrder] = {}
        for symbol, m in self._markets.items():
            b = m.book
            check(b.symbol == symbol, "book symbol mismatch")
            for side, levels, prices in (
                (Side.BUY, b.bid_levels, b.bid_prices),
                (Side.SELL, b.ask_levels, b.ask_prices),
            ):
                check(list(prices) == sorted(levels), f"{symbol} {side}: price index drift")
                for p, level in levels.items():
                    check(level.price == p, "level price mismatch")
                    check(level.count > 0 and level.head is not None, f"{symbol}: empty level {p}")
                    n, total, prev = 0, 0, None
                    for o in level:
                        check(o.prev is prev, f"{symbol}: broken queue link at {o.order_id}")
                        check(o.side is side and o.price == p, "order on the wrong level")
                        check(o.remaining > 0, f"order {o.order_id} rests with nothing left")
                        check(o.filled + o.remaining <= o.quantity, "order over-filled")
                        check(o.order_id not in seen, f"order {o.order_id} rests twice")
                        check(self._orders.get(o.order_id) is o, "order index drift")
                        check(
                            self._by_account.get(o.account, {}).get(o.order_id) is o,
                            "account index drift",
                        )
                        seen[o.order_id] = o
                        n += 1
                        total += o.remaining
                        prev = o
                    check(level.tail is prev, f"{symbol}: level tail drift at {p}")
                    check(n == level.count and total == level.total, f"{symbol}: level {p} totals")
            check(b.best_bid == (b.bid_prices[-1] if b.bid_prices else None), "best bid cache")
            check(b.best_ask == (b.ask_prices[0] if b.ask_prices else None), "best ask cache")
            if b.best_bid is not None and b.best_ask is not None:
                check(b.best_bid < b.best_ask, f"{symbol}: crossed book at rest")
            if m.state is not InstrumentState.OPEN and m.state is not InstrumentState.HALTED:
                check(not b.bid_levels and not b.ask_levels, f"{symbol}: orders rest while closed")
        check(len(seen) == len(self._orders), "order index holds orders not in any book")
        n_by_account = sum(len(d) for d in self._by_account.values())
        check(n_by_account == len(seen), "account index size drift")


#: Book slots that are the engine's own indexes and counter, shared by all its books and
#: hashed once, by the engine.
_SHARED_BOOK_SLOTS = frozenset({"orders", "by_account", "trade_ids"})


def _slot_getter(kind: type) -> Callable[[Any], tuple[Any, ...]]:
    """All slots of ``kind`` (along its bases, by name) read in one call."""
    getter = _SLOT_GETTERS.get(kind)
    if getter is None:
        every = {n for c in kind.__mro__ for n in getattr(c, "__slots__", ())}
        skip = _SHARED_BOOK_SLOTS if kind is OrderBook else frozenset()
        names = sorted(every - skip)
        read = attrgetter(*names)
        getter = _SLOT_GETTERS[kind] = (lambda o: (read(o),)) if len(names) == 1 else read
    return getter


_SLOT_GETTERS: dict[type, Callable[[Any], tuple[Any, ...]]] = {}


def _slots(obj: Any) -> list[Any]:
    """Every slot of ``obj``, by name, as plain data."""
    return [v if type(v) in _LEAVES else _plain(v) for v in _slot_getter(type(obj))(obj)]


#: Types of engine values hashed as they are (filled as they are met).
_LEAVES: set[type] = {int, str, bool, type(None)}


def _plain(value: Any) -> Any:
    """Engine state as data :func:`exchange.statehash.digest` encodes: an order reached
    through a link (a queue neighbour, a level's head or tail, an index) is its id."""
    kind = type(value)
    if kind in _LEAVES:
        return value
    if kind is RestingOrder:
        return ["order", value.order_id]
    if kind is Market or kind is OrderBook or kind is Level:
        return _slots(value)
    if kind is SortedList:
        return list(value)
    if isinstance(value, dict):
        return sorted([k, _plain(v)] for k, v in value.items())
    if encoded_as_is(kind):
        _LEAVES.add(kind)
    return canonical(value)


__all__ += ["InvariantViolation"]
