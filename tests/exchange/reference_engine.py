"""A naive reference implementation of the matching rules in docs/matching.md.

Written from the document, not from ``exchange.engine``: plain lists, linear scans and
sorting, no caches, no linked lists, no ``sortedcontainers``. It is slow on purpose and
meant to be obviously right, so that the real engine can be checked against it event by
event (same event classes, same field values, same sequence numbers, same result codes).

Where docs/matching.md leaves a detail open, the reference follows what the engine does
when that is reasonable; each such choice is marked ``ASSUMPTION`` below.

State model: every resting order of an instrument sits in one flat list ``market.orders``;
an order's queue position is its ``arrival`` number (taken when it starts resting, again
when an amendment re-queues it). Priority is computed each time by sorting. An order's
``quantity`` is always ``filled + remaining`` (the doc's "total quantity"), so a
self-trade decrement shrinks the total quantity too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from exchange.events import (
    BookChanged,
    InstrumentListed,
    InstrumentStateChanged,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    ReferencePriceSet,
    SelfTradePrevented,
    Trade,
)
from exchange.ids import AccountId, OrderId, Symbol, Timestamp
from exchange.lifecycle import InstrumentEvent, InstrumentState
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
from exchange.units import Price, Quantity

__all__ = ["RefMarket", "RefOrder", "RefOutcome", "ReferenceEngine", "allowed_transition"]

# ASSUMPTION: without a reference price the band is reported as [tick, 10**40]: the doc
# says only that limit orders are then not band-checked; the engine's ReferencePriceSet
# carries these values, and no parsed price (at most 18 integer digits) can reach 10**40.
NO_BAND_HIGH = 10**40

# The lifecycle written out again from the doc's prose (not imported from the engine).
_ALLOWED: list[tuple[InstrumentState, InstrumentEvent, InstrumentState]] = [
    (InstrumentState.LISTED, InstrumentEvent.OPEN, InstrumentState.OPEN),
    (InstrumentState.LISTED, InstrumentEvent.CLOSE, InstrumentState.CLOSED),
    (InstrumentState.OPEN, InstrumentEvent.HALT, InstrumentState.HALTED),
    (InstrumentState.HALTED, InstrumentEvent.RESUME, InstrumentState.OPEN),
    (InstrumentState.OPEN, InstrumentEvent.CLOSE, InstrumentState.CLOSED),
    (InstrumentState.HALTED, InstrumentEvent.CLOSE, InstrumentState.CLOSED),
    (InstrumentState.CLOSED, InstrumentEvent.START_DELIVERY, InstrumentState.DELIVERING),
    (InstrumentState.DELIVERING, InstrumentEvent.SETTLE, InstrumentState.SETTLED),
]


def allowed_transition(state: InstrumentState, event: InstrumentEvent) -> InstrumentState | None:
    for old, ev, new in _ALLOWED:
        if old == state and ev == event:
            return new
    return None


@dataclass
class RefOrder:
    order_id: int
    account: int
    symbol: str
    side: Side
    price: int
    quantity: int  # filled + remaining
    remaining: int
    filled: int
    expire_time: int | None
    post_only: bool
    stp: SelfTradePrevention
    arrival: int


@dataclass
class RefMarket:
    instrument: Instrument
    state: InstrumentState = InstrumentState.LISTED
    reference_price: int | None = None
    band_low: int = 0
    band_high: int = NO_BAND_HIGH
    seq: int = 0
    orders: list[RefOrder] = field(default_factory=list)


@dataclass
class RefOutcome:
    result: ResultCode
    events: list[object]

    @property
    def ok(self) -> bool:
        return self.result == ResultCode.OK


def _reject(code: ResultCode) -> RefOutcome:
    return RefOutcome(code, [])


def _ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


class ReferenceEngine:
    def __init__(self) -> None:
        self.markets: dict[str, RefMarket] = {}
        self.now = 0
        self.trade_id = 0
        self.arrivals = 0

    # ------------------------------------------------------------ reading
    def orders_in_priority(self, symbol: str, side: Side) -> list[RefOrder]:
        """Resting orders of one side: best price first, then oldest first."""
        mine = [o for o in self.markets[symbol].orders if o.side == side]
        if side == Side.BUY:
            return sorted(mine, key=lambda o: (-o.price, o.arrival))
        return sorted(mine, key=lambda o: (o.price, o.arrival))

    def resting(self, symbol: str, side: Side) -> list[tuple[int, int, int, int]]:
        """(order id, account, price, remaining) in priority order."""
        return [
            (o.order_id, o.account, o.price, o.remaining)
            for o in self.orders_in_priority(symbol, side)
        ]

    def depth(self, symbol: str, side: Side) -> list[tuple[int, int]]:
        """(price, total remaining) per level, best first."""
        out: list[tuple[int, int]] = []
        for o in self.orders_in_priority(symbol, side):
            if out and out[-1][0] == o.price:
                out[-1] = (o.price, out[-1][1] + o.remaining)
            else:
                out.append((o.price, o.remaining))
        return out

    def state(self, symbol: str) -> InstrumentState:
        return self.markets[symbol].state

    def _find(self, order_id: int) -> RefOrder | None:
        for m in self.markets.values():
            for o in m.orders:
                if o.order_id == order_id:
                    return o
        return None

    def _level_total(self, m: RefMarket, side: Side, price: int) -> int:
        return sum(o.remaining for o in m.orders if o.side == side and o.price == price)

    # ------------------------------------------------------------ event helpers
    def _next_seq(self, m: RefMarket) -> int:
        m.seq += 1
        return m.seq

    def _book_changed(self, m: RefMarket, side: Side, price: int, events: list[object]) -> None:
        total = self._level_total(m, side, price)
        events.append(
            BookChanged(
                Symbol(m.instrument.symbol), self._next_seq(m), side, Price(price), total
            )
        )

    def _remove_with_event(
        self, m: RefMarket, o: RefOrder, event: object, events: list[object]
    ) -> None:
        """Append ``event`` (a cancel or expiry), take ``o`` out, report its level."""
        events.append(event)
        m.orders.remove(o)
        self._book_changed(m, o.side, o.price, events)

    def _cancel_event(self, m: RefMarket, o: RefOrder, reason: CancelReason) -> OrderCancelled:
        return OrderCancelled(
            Symbol(o.symbol),
            self._next_seq(m),
            Timestamp(self.now),
            OrderId(o.order_id),
            AccountId(o.account),
            o.remaining,
            reason,
        )

    # ------------------------------------------------------------ lifecycle
    def list_instrument(
        self, instrument: Instrument, reference_price: Price | None = None
    ) -> RefOutcome:
        if instrument.symbol in self.markets:
            return _reject(ResultCode.INSTRUMENT_EXISTS)
        tick = instrument.tier.tick
        # ASSUMPTION: a reference price must be positive and on the tick (invalid_tick).
        if reference_price is not None and (reference_price <= 0 or reference_price % tick):
            return _reject(ResultCode.INVALID_TICK)
        m = RefMarket(instrument, band_low=tick)
        self.markets[instrument.symbol] = m
        events: list[object] = [
            InstrumentListed(
                instrument.symbol,
                self._next_seq(m),
                Timestamp(self.now),
                instrument.tier.code,
                instrument.window.start,
                instrument.window.end,
                instrument.gate_closure,
            )
        ]
        if reference_price is not None:
            self._apply_reference(m, reference_price, events)
        return RefOutcome(ResultCode.OK, events)

    def transition(self, symbol: Symbol, event: InstrumentEvent) -> RefOutcome:
        m = self.markets.get(symbol)
        if m is None:
            return _reject(ResultCode.INSTRUMENT_NOT_FOUND)
        new = allowed_transition(m.state, event)
        if new is None:
            return _reject(ResultCode.INVALID_TRANSITION)
        events: list[object] = []
        if event == InstrumentEvent.CLOSE:
            for side in (Side.BUY, Side.SELL):
                for o in self.orders_in_priority(symbol, side):
                    ev = self._cancel_event(m, o, CancelReason.GATE_CLOSURE)
                    self._remove_with_event(m, o, ev, events)
        events.append(
            InstrumentStateChanged(symbol, self._next_seq(m), Timestamp(self.now), m.state, new)
        )
        m.state = new
        return RefOutcome(ResultCode.OK, events)

    def band(self, tick: int, bps: int, reference: int) -> tuple[int, int]:
        """[ceil(R(1-b)), floor(R(1+b))], each edge rounded inwards to the tick, >= 1 tick."""
        low = _ceil_div(reference * (10_000 - bps), 10_000)
        high = reference * (10_000 + bps) // 10_000
        low = _ceil_div(low, tick) * tick
        high = high // tick * tick
        return max(low, tick), high

    def _apply_reference(self, m: RefMarket, price: int | None, events: list[object]) -> None:
        tier = m.instrument.tier
        m.reference_price = price
        if price is None:
            m.band_low, m.band_high = tier.tick, NO_BAND_HIGH
        else:
            m.band_low, m.band_high = self.band(tier.tick, tier.price_band_bps, price)
        events.append(
            ReferencePriceSet(
                Symbol(m.instrument.symbol),
                self._next_seq(m),
                Timestamp(self.now),
                None if price is None else Price(price),
                Price(m.band_low),
                Price(m.band_high),
            )
        )

    def set_reference_price(self, symbol: Symbol, price: Price | None) -> RefOutcome:
        m = self.markets.get(symbol)
        if m is None:
            return _reject(ResultCode.INSTRUMENT_NOT_FOUND)
        if price is not None and (price <= 0 or price % m.instrument.tier.tick):
            return _reject(ResultCode.INVALID_TICK)
        events: list[object] = []
        self._apply_reference(m, price, events)
        return RefOutcome(ResultCode.OK, events)

    def advance_time(self, ts: Timestamp) -> RefOutcome:
        if ts < self.now:
            return _reject(ResultCode.CLOCK_WENT_BACKWARDS)
        self.now = ts
        due: list[tuple[int, int, RefMarket, RefOrder]] = []
        for m in self.markets.values():
            for o in m.orders:
                if o.expire_time is not None and o.expire_time <= ts:
                    due.append((o.expire_time, o.order_id, m, o))
        due.sort(key=lambda d: (d[0], d[1]))
        events: list[object] = []
        for _, _, m, o in due:
            ev = OrderExpired(
                Symbol(o.symbol),
                self._next_seq(m),
                Timestamp(ts),
                OrderId(o.order_id),
                AccountId(o.account),
                o.remaining,
                ExpireReason.GTD,
            )
            self._remove_with_event(m, o, ev, events)
        return RefOutcome(ResultCode.OK, events)

    # ------------------------------------------------------------ orders
    def place(
        self,
        order_id: OrderId,
        account: AccountId,
        symbol: Symbol,
        side: Side,
        price: Price | None,
        quantity: Quantity,
        order_type: OrderType = OrderType.LIMIT,
        time_in_force: TimeInForce = TimeInForce.GTC,
        expire_time: Timestamp | None = None,
        post_only: bool = False,
        stp: SelfTradePrevention = SelfTradePrevention.CANCEL_NEWEST,
    ) -> RefOutcome:
        m = self.markets.get(symbol)
        if m is None:
            return _reject(ResultCode.INSTRUMENT_NOT_FOUND)
        if m.state != InstrumentState.OPEN:
            return _reject(ResultCode.INSTRUMENT_NOT_OPEN)
        # The doc: duplicate means "an order with that id is resting".
        if self._find(order_id) is not None:
            return _reject(ResultCode.DUPLICATE_ORDER_ID)
        tier = m.instrument.tier
        if quantity <= 0:
            return _reject(ResultCode.INVALID_QUANTITY)
        if quantity % tier.lot != 0:
            return _reject(ResultCode.INVALID_LOT)
        if quantity < tier.min_quantity:
            return _reject(ResultCode.QUANTITY_BELOW_MINIMUM)
        if quantity > tier.max_quantity:
            return _reject(ResultCode.QUANTITY_ABOVE_MAXIMUM)
        # ASSUMPTION: a market order that is post-only answers invalid_order_type even when
        # its time in force is also wrong (post-only is checked before time in force).
        if post_only and (
            order_type == OrderType.MARKET
            or time_in_force not in (TimeInForce.GTC, TimeInForce.GTD)
        ):
            return _reject(ResultCode.INVALID_ORDER_TYPE)
        if order_type == OrderType.MARKET and time_in_force not in (
            TimeInForce.IOC,
            TimeInForce.FOK,
        ):
            return _reject(ResultCode.INVALID_TIME_IN_FORCE)
        if order_type == OrderType.LIMIT:
            if price is None or price <= 0:
                return _reject(ResultCode.INVALID_PRICE)
            if price % tier.tick != 0:
                return _reject(ResultCode.INVALID_TICK)
            if m.reference_price is not None and not (m.band_low <= price <= m.band_high):
                return _reject(ResultCode.PRICE_OUT_OF_BAND)
            if time_in_force == TimeInForce.GTD:
                if expire_time is None or expire_time <= self.now:
                    return _reject(ResultCode.INVALID_EXPIRE_TIME)
            elif expire_time is not None:
                return _reject(ResultCode.INVALID_EXPIRE_TIME)
            if post_only and self._would_take(m, side, price):
                return _reject(ResultCode.POST_ONLY_WOULD_CROSS)
            limit = price
        elif order_type == OrderType.MARKET:
            if price is not None:
                return _reject(ResultCode.INVALID_PRICE)
            if expire_time is not None:
                return _reject(ResultCode.INVALID_EXPIRE_TIME)
            if m.reference_price is None:
                return _reject(ResultCode.NO_REFERENCE_PRICE)
            limit = m.band_high if side == Side.BUY else m.band_low
        else:
            return _reject(ResultCode.INVALID_ORDER_TYPE)

        events: list[object] = [
            OrderAccepted(
                symbol,
                self._next_seq(m),
                Timestamp(self.now),
                order_id,
                account,
                side,
                order_type,
                Price(limit),
                quantity,
            )
        ]
        if time_in_force == TimeInForce.FOK and not self._can_complete(
            m, side, limit, quantity, account, stp
        ):
            events.append(
                OrderExpired(
                    symbol,
                    self._next_seq(m),
                    Timestamp(self.now),
                    order_id,
                    account,
                    quantity,
                    ExpireReason.FOK,
                )
            )
            return RefOutcome(ResultCode.OK, events)
        incoming = RefOrder(
            order_id, account, symbol, side, limit, quantity, quantity, 0,
            expire_time, post_only, stp, arrival=-1,
        )  # fmt: skip
        self._match_and_finish(m, incoming, order_type, time_in_force, events)
        return RefOutcome(ResultCode.OK, events)

    @staticmethod
    def _reaches(side: Side, limit: int, resting_price: int) -> bool:
        return resting_price <= limit if side == Side.BUY else resting_price >= limit

    def _would_take(self, m: RefMarket, side: Side, price: int) -> bool:
        return any(
            self._reaches(side, price, o.price) for o in m.orders if o.side == side.opposite
        )

    def _can_complete(
        self,
        m: RefMarket,
        side: Side,
        limit: int,
        quantity: int,
        account: int,
        stp: SelfTradePrevention,
    ) -> bool:
        need = quantity
        for o in self.orders_in_priority(m.instrument.symbol, side.opposite):
            if not self._reaches(side, limit, o.price):
                return False
            if o.account == account:
                if stp in (SelfTradePrevention.CANCEL_NEWEST, SelfTradePrevention.CANCEL_BOTH):
                    return False
                if stp == SelfTradePrevention.CANCEL_OLDEST:
                    continue
            need -= o.remaining
            if need <= 0:
                return True
        return False

    def _match_and_finish(
        self,
        m: RefMarket,
        inc: RefOrder,
        order_type: OrderType,
        time_in_force: TimeInForce,
        events: list[object],
    ) -> None:
        """Match ``inc`` (remaining, filled, quantity set), then cancel, expire or rest it."""
        stopped = self._match(m, inc, events)
        if inc.remaining == 0:
            return
        if stopped:
            events.append(self._cancel_event(m, inc, CancelReason.SELF_TRADE))
            return
        if order_type == OrderType.MARKET or time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
            if order_type == OrderType.MARKET:
                reason = ExpireReason.MARKET
            elif time_in_force == TimeInForce.IOC:
                reason = ExpireReason.IOC
            else:
                reason = ExpireReason.FOK
            events.append(
                OrderExpired(
                    Symbol(inc.symbol),
                    self._next_seq(m),
                    Timestamp(self.now),
                    OrderId(inc.order_id),
                    AccountId(inc.account),
                    inc.remaining,
                    reason,
                )
            )
            return
        self.arrivals += 1
        inc.arrival = self.arrivals
        m.orders.append(inc)
        self._book_changed(m, inc.side, inc.price, events)

    def _match(self, m: RefMarket, inc: RefOrder, events: list[object]) -> bool:
        """Meet the opposite side level by level; return True if STP stopped the order."""
        symbol = Symbol(m.instrument.symbol)
        now = Timestamp(self.now)
        opposite = inc.side.opposite
        while inc.remaining > 0:
            book = self.orders_in_priority(symbol, opposite)
            if not book or not self._reaches(inc.side, inc.price, book[0].price):
                return False
            level_price = book[0].price
            level = [o for o in book if o.price == level_price]  # oldest first
            before = self._level_total(m, opposite, level_price)
            stopped = False
            for o in level:
                if inc.remaining == 0:
                    break
                if o.account == inc.account:
                    mode = inc.stp
                    if mode == SelfTradePrevention.CANCEL_NEWEST:
                        stopped = True
                        break
                    if mode == SelfTradePrevention.DECREMENT:
                        d = min(o.remaining, inc.remaining)
                        events.append(
                            SelfTradePrevented(
                                symbol, self._next_seq(m), now, OrderId(inc.order_id),
                                OrderId(o.order_id), AccountId(inc.account), mode, d,
                            )
                        )  # fmt: skip
                        o.remaining -= d
                        o.quantity -= d
                        inc.remaining -= d
                        inc.quantity -= d
                        if o.remaining == 0:
                            m.orders.remove(o)
                        continue
                    # cancel_oldest and cancel_both: the resting order goes first.
                    events.append(self._cancel_event(m, o, CancelReason.SELF_TRADE))
                    m.orders.remove(o)
                    if mode == SelfTradePrevention.CANCEL_BOTH:
                        stopped = True
                        break
                    continue
                fill = min(o.remaining, inc.remaining)
                o.remaining -= fill
                o.filled += fill
                inc.remaining -= fill
                inc.filled += fill
                self.trade_id += 1
                events.append(
                    Trade(
                        symbol, self._next_seq(m), now, self.trade_id, Price(level_price), fill,
                        inc.side, OrderId(inc.order_id), AccountId(inc.account),
                        OrderId(o.order_id), AccountId(o.account), o.remaining,
                    )
                )  # fmt: skip
                if o.remaining == 0:
                    m.orders.remove(o)
            if self._level_total(m, opposite, level_price) != before:
                self._book_changed(m, opposite, level_price, events)
            if stopped:
                return True
        return False

    def cancel(self, account: AccountId, order_id: OrderId) -> RefOutcome:
        o = self._find(order_id)
        if o is None or o.account != account:
            return _reject(ResultCode.ORDER_NOT_FOUND)
        m = self.markets[o.symbol]
        events: list[object] = []
        self._remove_with_event(m, o, self._cancel_event(m, o, CancelReason.USER), events)
        return RefOutcome(ResultCode.OK, events)

    def cancel_all(self, account: AccountId, symbol: Symbol | None = None) -> RefOutcome:
        # ASSUMPTION: an unknown symbol answers instrument_not_found.
        if symbol is not None and symbol not in self.markets:
            return _reject(ResultCode.INSTRUMENT_NOT_FOUND)
        mine = [
            o
            for m in self.markets.values()
            for o in m.orders
            if o.account == account and (symbol is None or o.symbol == symbol)
        ]
        mine.sort(key=lambda o: o.arrival)
        events: list[object] = []
        for o in mine:
            m = self.markets[o.symbol]
            self._remove_with_event(m, o, self._cancel_event(m, o, CancelReason.CANCEL_ALL), events)
        return RefOutcome(ResultCode.OK, events)

    def amend(
        self,
        account: AccountId,
        order_id: OrderId,
        price: Price | None = None,
        quantity: Quantity | None = None,
    ) -> RefOutcome:
        o = self._find(order_id)
        if o is None or o.account != account:
            return _reject(ResultCode.ORDER_NOT_FOUND)
        m = self.markets[o.symbol]
        if m.state != InstrumentState.OPEN:
            return _reject(ResultCode.INSTRUMENT_NOT_OPEN)
        tier = m.instrument.tier
        new_price = o.price if price is None else price
        new_quantity = o.quantity if quantity is None else quantity
        # ASSUMPTION (order of the amend checks, not fixed by the doc): nothing to amend,
        # then the quantity checks, then the price checks, then post-only.
        if new_price == o.price and new_quantity == o.quantity:
            return _reject(ResultCode.NOTHING_TO_AMEND)
        if new_quantity <= 0:
            return _reject(ResultCode.INVALID_QUANTITY)
        if new_quantity % tier.lot != 0:
            return _reject(ResultCode.INVALID_LOT)
        if new_quantity < tier.min_quantity:
            return _reject(ResultCode.QUANTITY_BELOW_MINIMUM)
        if new_quantity > tier.max_quantity:
            return _reject(ResultCode.QUANTITY_ABOVE_MAXIMUM)
        if new_quantity <= o.filled:
            return _reject(ResultCode.AMEND_BELOW_FILLED)
        if new_price <= 0:
            return _reject(ResultCode.INVALID_PRICE)
        if new_price % tier.tick != 0:
            return _reject(ResultCode.INVALID_TICK)
        if (
            new_price != o.price
            and m.reference_price is not None
            and not (m.band_low <= new_price <= m.band_high)
        ):
            return _reject(ResultCode.PRICE_OUT_OF_BAND)
        if o.post_only and new_price != o.price and self._would_take(m, o.side, new_price):
            return _reject(ResultCode.POST_ONLY_WOULD_CROSS)

        keep = new_price == o.price and new_quantity < o.quantity
        events: list[object] = [
            OrderAmended(
                Symbol(o.symbol),
                self._next_seq(m),
                Timestamp(self.now),
                order_id,
                account,
                Price(new_price),
                new_quantity,
                new_quantity - o.filled,
                keep,
            )
        ]
        if keep:
            o.quantity = new_quantity
            o.remaining = new_quantity - o.filled
            self._book_changed(m, o.side, o.price, events)
            return RefOutcome(ResultCode.OK, events)
        # Leave the level, then enter again as if new (with the order's own STP mode).
        m.orders.remove(o)
        self._book_changed(m, o.side, o.price, events)
        o.price = new_price
        o.quantity = new_quantity
        o.remaining = new_quantity - o.filled
        tif = TimeInForce.GTC if o.expire_time is None else TimeInForce.GTD
        self._match_and_finish(m, o, OrderType.LIMIT, tif, events)
        return RefOutcome(ResultCode.OK, events)
