"""Trading: orders from acceptance to their end, with the pre-trade checks and holds
around the matching engine (risk -> match -> release: an order is checked and its cash,
collateral and pool-hours reserved before the engine sees it; what the engine answers
fills, decrements or ends orders, and what a hold keeps beyond the rest's need is
released), client order ids, and the open orders per account and instrument."""

from __future__ import annotations

from typing import ClassVar

from exchange.capacity import CapacityBook
from exchange.components.accounts import Accounts
from exchange.components.bounds import CLIENT_ORDER_ID_MAX
from exchange.components.clearing import Clearing
from exchange.components.clock import Time
from exchange.components.context import Journal, Rules, keep_only
from exchange.components.listing import Listing
from exchange.components.sites import Sites
from exchange.engine import Market, MatchingEngine
from exchange.events import OrderAmended, OrderCancelled, OrderExpired, SelfTradePrevented, Trade
from exchange.ids import OrderId, Symbol, Timestamp, format_timestamp
from exchange.invariants import InvariantViolation, check
from exchange.ledger import Ledger
from exchange.lifecycle import ORDER_TRANSITIONS, OrderEvent, order_status_after
from exchange.operations import AmendOrder, CancelAll, CancelOrder, PlaceOrder
from exchange.orders import (
    OrderStatus,
    OrderType,
    ResultCode,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from exchange.records import Fill, OrderState, Rejected, same_order
from exchange.refusals import Refusal
from exchange.risk import buy_hold, fee, sell_collateral
from exchange.settlement import Liquidity
from exchange.units import Quantity, format_money, format_price, format_quantity

__all__ = ["Trading"]

#: A self-trade prevention mode as the plain text an order records (an enumeration's
#: ``value`` is a property, slow on the busiest path).
_STP_TEXT = {mode: mode.value for mode in SelfTradePrevention}
_OPEN, _PARTIAL = OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED
#: The transition table, read directly on the path of every fill (a pair it lacks goes
#: through :func:`order_status_after`, which raises).
_AFTER = ORDER_TRANSITIONS
_FILL, _PARTIAL_FILL = OrderEvent.FILL, OrderEvent.PARTIAL_FILL


def _move(order: OrderState, event: OrderEvent) -> None:
    """Set ``order.status`` by the order lifecycle (exchange.lifecycle)."""
    after = _AFTER.get((order.status, event))
    order.status = after if after is not None else order_status_after(order.status, event)


def _no_capacity(quantity: int, available: int) -> Rejected:
    return Refusal.INSUFFICIENT_CAPACITY.reject(
        quantity=format_quantity(quantity), available=format_quantity(available)
    )


def _no_funds(available: int, what: str, amount: int) -> Rejected:
    return Refusal.INSUFFICIENT_FUNDS.reject(
        available=format_money(available), what=what, amount=format_money(amount)
    )


def _place_refused(
    code: ResultCode, engine: MatchingEngine, op: PlaceOrder, order_id: int, symbol: Symbol
) -> Rejected:
    """The refusal of an order the engine's :meth:`MatchingEngine.validate_place`
    refused, its message carrying the figures of the instrument that decided it."""
    market = engine.market(symbol)
    price, quantity = op.price, op.quantity
    order_type, time_in_force, expire_time = op.order_type, op.time_in_force, op.expire_time
    if code is ResultCode.INSTRUMENT_NOT_FOUND or market is None:
        return Refusal.INSTRUMENT_NOT_FOUND.reject(instrument=symbol)
    if code is ResultCode.DUPLICATE_ORDER_ID:
        return Refusal.DUPLICATE_ORDER_ID.reject(order_id=order_id)
    if code is ResultCode.INVALID_ORDER_TYPE:
        if order_type is OrderType.LIMIT:
            reason = (
                f"a post-only order rests: its time in force is gtc or gtd, not {time_in_force}"
            )
        elif order_type is OrderType.MARKET:
            reason = "a market order cannot be post-only"
        else:
            reason = "order_type is limit or market"
        return Refusal.INVALID_ORDER_TYPE.reject(reason=reason)
    if code is ResultCode.INVALID_TIME_IN_FORCE:
        return Refusal.INVALID_TIME_IN_FORCE.reject(
            order_type=order_type, allowed="ioc or fok", time_in_force=time_in_force
        )
    if code is ResultCode.INVALID_PRICE:
        if order_type is OrderType.MARKET:
            return Refusal.INVALID_PRICE.reject(subject="a market order", problem="has no price")
        if price is None:
            return Refusal.INVALID_PRICE.reject(subject="a limit order", problem="needs a price")
    if code is ResultCode.INVALID_EXPIRE_TIME:
        if time_in_force is not TimeInForce.GTD:
            reason = f"only a gtd order has one, not a {time_in_force} {order_type} order"
        elif expire_time is None:
            reason = "a gtd order needs one"
        else:
            reason = (
                f"{format_timestamp(expire_time)} is not after the clock's "
                f"{format_timestamp(engine.now)}"
            )
        return Refusal.INVALID_EXPIRE_TIME.reject(field="expire_time", reason=reason)
    if code is ResultCode.NO_REFERENCE_PRICE:
        return Refusal.NO_REFERENCE_PRICE.reject(instrument=symbol)
    return _order_refused(code, market, symbol, op.side, price, quantity)


def _amend_refused(
    code: ResultCode, engine: MatchingEngine, op: AmendOrder, order: OrderState
) -> Rejected:
    """The refusal of an amendment the engine's :meth:`MatchingEngine.validate_amend`
    refused (or that would leave the order no quantity), with the figures."""
    symbol = Symbol(order.symbol)
    market = engine.market(symbol)
    quantity = order.quantity if op.quantity is None else op.quantity
    if code is ResultCode.ORDER_NOT_FOUND or market is None:
        return Refusal.ORDER_NOT_FOUND.reject(order_id=op.order_id)
    if code is ResultCode.NOTHING_TO_AMEND:
        return Refusal.NOTHING_TO_AMEND.reject()
    if code is ResultCode.AMEND_BELOW_FILLED:
        # the engine counts what self-trade prevention removed as gone, like a fill
        return Refusal.AMEND_BELOW_FILLED.reject(
            quantity=format_quantity(quantity),
            filled=format_quantity(order.filled + order.decremented),
        )
    price = order.price if op.price is None else op.price
    return _order_refused(code, market, symbol, order.side, price, quantity)


def _order_refused(
    code: ResultCode,
    market: Market,
    symbol: Symbol,
    side: Side,
    price: int | None,
    quantity: int,
) -> Rejected:
    """The refusals an order and an amendment share: the instrument's state, the
    quantity against the lot and the limits, the price against the tick and the band."""
    if code is ResultCode.INSTRUMENT_NOT_OPEN:
        return Refusal.INSTRUMENT_NOT_OPEN.reject(instrument=symbol, state=market.state.value)
    if code is ResultCode.INVALID_QUANTITY:
        return Refusal.INVALID_QUANTITY.reject(subject=f"quantity {format_quantity(quantity)}")
    if code is ResultCode.INVALID_LOT:
        return Refusal.INVALID_LOT.reject(
            quantity=format_quantity(quantity), lot=format_quantity(market.lot)
        )
    if code is ResultCode.QUANTITY_BELOW_MINIMUM:
        return Refusal.QUANTITY_BELOW_MINIMUM.reject(
            quantity=format_quantity(quantity), minimum=format_quantity(market.min_quantity)
        )
    if code is ResultCode.QUANTITY_ABOVE_MAXIMUM:
        return Refusal.QUANTITY_ABOVE_MAXIMUM.reject(
            quantity=format_quantity(quantity), maximum=format_quantity(market.max_quantity)
        )
    if price is not None:
        if code is ResultCode.INVALID_PRICE:
            return Refusal.INVALID_PRICE.reject(
                subject=f"price {format_price(price)}", problem="must be positive"
            )
        if code is ResultCode.INVALID_TICK:
            return Refusal.INVALID_TICK.reject(
                price=format_price(price), tick=format_price(market.tick)
            )
        if code is ResultCode.PRICE_OUT_OF_BAND:
            return Refusal.PRICE_OUT_OF_BAND.reject(
                price=format_price(price),
                low=format_price(market.band_low),
                high=format_price(market.band_high),
            )
        if code is ResultCode.POST_ONLY_WOULD_CROSS:
            book = market.book
            best = book.best_ask if side is Side.BUY else book.best_bid
            return Refusal.POST_ONLY_WOULD_CROSS.reject(
                price=format_price(price),
                side="ask" if side is Side.BUY else "bid",
                best=format_price(best or 0),
            )
    raise InvariantViolation(f"the engine's validation answered {code.code} unexpectedly")


class Trading:
    __slots__ = (
        "_account_exists",
        "_accounts",
        "_capacity",
        "_clearing",
        "_find_instrument",
        "_ids",
        "_journal",
        "_ledger",
        "_listing",
        "_rules",
        "_sites",
        "_tier_record",
        "_time",
        "account_orders",
        "client_ids",
        "engine",
        "instrument_orders",
        "open_counts",
        "orders",
    )
    #: The index by account is hashed with the orders; the engine's part is its own
    #: :meth:`MatchingEngine.state_hash`.
    STATE: ClassVar[dict[str, tuple[str, ...]]] = {
        "orders": ("orders", "client_ids", "account_orders", "instrument_orders", "open_counts"),
        "engine": ("engine",),
    }
    REFERENCES: ClassVar[tuple[str, ...]] = (
        "_account_exists",
        "_accounts",
        "_capacity",
        "_clearing",
        "_find_instrument",
        "_ids",
        "_journal",
        "_ledger",
        "_listing",
        "_rules",
        "_sites",
        "_tier_record",
        "_time",
    )

    def __init__(
        self,
        time: Time,
        rules: Rules,
        journal: Journal,
        engine: MatchingEngine,
        accounts: Accounts,
        ledger: Ledger,
        sites: Sites,
        capacity: CapacityBook,
        listing: Listing,
        clearing: Clearing,
    ) -> None:
        self._time = time
        self._ids = time.counters()
        self._rules = rules
        self._journal = journal
        self._accounts = accounts
        self._ledger = ledger
        self._sites = sites
        self._capacity = capacity
        self._listing = listing
        self._clearing = clearing
        # The reads on the path of every order, bound once.
        self._account_exists = accounts.exists
        self._find_instrument = listing.find
        self._tier_record = listing.tier_record
        self.engine = engine
        self.orders: dict[int, OrderState] = {}
        self.client_ids: dict[tuple[int, str], int] = {}
        self.account_orders: dict[int, list[int]] = {}  # account -> its order ids, in order
        self.instrument_orders: dict[str, list[int]] = {}  # symbol -> its order ids, in order
        self.open_counts: dict[tuple[int, str], int] = {}

    # ------------------------------------------------------------------ operations
    def place_order(self, op: PlaceOrder) -> OrderState:
        # The busiest operation: attribute and method lookups are hoisted into locals.
        account_id = op.account_id
        if not self._account_exists(account_id):
            raise Refusal.ACCOUNT_NOT_FOUND.reject(account_id=account_id)
        client_order_id = op.client_order_id
        if client_order_id is not None:
            if not 1 <= len(client_order_id) <= CLIENT_ORDER_ID_MAX:
                raise Refusal.INVALID_CLIENT_ORDER_ID.reject(limit=CLIENT_ORDER_ID_MAX)
            existing = self.client_ids.get((account_id, client_order_id))
            if existing is not None:
                original = self.orders[existing]
                if not same_order(original, op):
                    raise Refusal.CLIENT_ORDER_ID_REUSED.reject()
                return original  # idempotent resubmission: no new order
        inst = self._find_instrument(op.symbol)
        if inst is None:
            raise Refusal.INSTRUMENT_NOT_FOUND.reject(instrument=op.symbol)
        symbol = inst.instrument.symbol
        engine = self.engine
        time = self._time
        ids = self._ids
        order_id = ids["order"]
        side = op.side
        quantity = op.quantity
        code, limit = engine.validate_place(
            order_id,  # type: ignore[arg-type]
            symbol,
            side,
            op.price,
            quantity,
            op.order_type,
            op.time_in_force,
            op.expire_time,
            op.post_only,
        )
        if code is not ResultCode.OK:
            raise _place_refused(code, engine, op, order_id, symbol)
        key = (account_id, symbol)
        open_count = self.open_counts.get(key, 0)
        limits = self._rules.limits
        if open_count >= limits.open_orders_per_instrument:
            raise Refusal.TOO_MANY_OPEN_ORDERS.reject(
                limit=limits.open_orders_per_instrument, scope="in one instrument"
            )
        if engine.open_order_count(account_id) >= limits.open_orders:
            raise Refusal.TOO_MANY_OPEN_ORDERS.reject(
                limit=limits.open_orders, scope="over all instruments"
            )
        tier = self._tier_record(inst.instrument.tier.code).tier
        maker_bps, taker_bps = tier.maker_fee_bps, tier.taker_fee_bps
        penalty_bps = tier.shortfall_penalty_bps
        ledger = self._ledger
        capacity = self._capacity
        pools: list[tuple[int, int]] = []
        if side is Side.BUY:
            risk_price = int(limit)
            need = buy_hold(risk_price, quantity, max(maker_bps, taker_bps))
        else:
            best_bid = engine.book(symbol).best_bid
            risk_price = max(int(limit), best_bid or 0)
            need = sell_collateral(risk_price, quantity, penalty_bps)
            pools = self._sites.eligible_pools(account_id, inst.instrument.tier)
            available = capacity.available_quantity(pools, inst.hours)
            if available < quantity:
                raise _no_capacity(quantity, available)
        if ledger.available(account_id) < need:
            raise _no_funds(ledger.available(account_id), "order's hold", need)
        if side is Side.SELL and not capacity.reserve(
            order_id, account_id, pools, inst.hours, quantity
        ):
            raise _no_capacity(quantity, capacity.available_quantity(pools, inst.hours))

        # ---- accepted: nothing below can refuse.
        ids["order"] = order_id + 1
        now = time.now
        order = OrderState(
            id=order_id,
            client_order_id=client_order_id,
            account_id=account_id,
            symbol=symbol,
            side=side,
            order_type=op.order_type,
            price=int(limit),
            quantity=quantity,
            time_in_force=op.time_in_force,
            expire_time=op.expire_time,
            post_only=op.post_only,
            stp=_STP_TEXT[op.stp],
            created_at=now,
            maker_fee_bps=maker_bps,
            taker_fee_bps=taker_bps,
            penalty_bps=penalty_bps,
            risk_price=risk_price,
            remaining=quantity,
            updated_at=now,
            fills=[],
        )
        hold = ledger.open_hold(now, account_id, need, f"order:{order_id}")
        order.hold_id = hold.id
        self.orders[order_id] = order
        account_orders = self.account_orders.get(account_id)
        if account_orders is None:
            self.account_orders[account_id] = [order_id]
        else:
            account_orders.append(order_id)
        of_instrument = self.instrument_orders.get(symbol)
        if of_instrument is None:
            self.instrument_orders[symbol] = [order_id]
        else:
            of_instrument.append(order_id)
        if client_order_id is not None:
            self.client_ids[(account_id, client_order_id)] = order_id
        self.open_counts[key] = open_count + 1
        journal = self._journal
        journal.touched_orders.add(order_id)
        outcome = engine.place(
            order_id,  # type: ignore[arg-type]
            account_id,
            symbol,
            side,
            op.price,
            quantity,
            op.order_type,
            op.time_in_force,
            op.expire_time,
            op.post_only,
            op.stp,
        )
        journal.run(outcome)
        if (
            side is Side.SELL
            and order.risk_price != order.price
            and order.status in (_OPEN, _PARTIAL)
        ):
            order.risk_price = order.price  # rests as a maker: trades only at its own price
            self._trim_hold(order)
        return order

    def _own_open_order(self, account_id: int, order_id: int) -> OrderState:
        order = self.orders.get(order_id)
        if order is None or order.account_id != account_id:
            raise Refusal.ORDER_NOT_FOUND.reject(order_id=order_id)
        if not order.is_open:
            raise Refusal.ORDER_NOT_OPEN.reject(order_id=order_id, status=order.status.value)
        return order

    def cancel_order(self, op: CancelOrder) -> OrderState:
        order = self._own_open_order(op.account_id, op.order_id)
        outcome = self.engine.cancel(op.account_id, op.order_id)
        check(outcome.result is ResultCode.OK, "open order %s not in the book", op.order_id)
        self._journal.run(outcome)
        return order

    def cancel_all(self, op: CancelAll) -> list[OrderState]:
        self._accounts.account(op.account_id)
        if op.symbol is not None:
            self._listing.instrument(op.symbol)
        outcome = self.engine.cancel_all(op.account_id, op.symbol)
        self._journal.run(outcome)
        return [self.orders[e.order_id] for e in outcome.events if isinstance(e, OrderCancelled)]

    def amend_order(self, op: AmendOrder) -> OrderState:
        order = self._own_open_order(op.account_id, op.order_id)
        engine = self.engine
        # The engine counts an order's quantity without what self-trade prevention removed
        # (decrement); the account sees the quantity it asked for.
        engine_quantity = (
            Quantity(op.quantity - order.decremented) if op.quantity is not None else None
        )
        if engine_quantity is not None and engine_quantity <= 0:
            raise _amend_refused(ResultCode.AMEND_BELOW_FILLED, engine, op, order)
        code = engine.validate_amend(
            op.account_id,
            op.order_id,
            op.price,
            engine_quantity,
        )
        if code is not ResultCode.OK:
            raise _amend_refused(code, engine, op, order)
        new_price = order.price if op.price is None else op.price
        new_quantity = order.quantity if op.quantity is None else op.quantity
        new_remaining = new_quantity - order.filled - order.decremented - order.closed
        inst = self._listing.instrument(order.symbol)
        ledger, capacity = self._ledger, self._capacity
        pools: list[tuple[int, int]] = []
        if order.side is Side.BUY:
            risk_price = new_price
            need = buy_hold(
                risk_price, new_remaining, max(order.maker_fee_bps, order.taker_fee_bps)
            )
        else:
            best_bid = engine.book(inst.symbol).best_bid
            risk_price = max(new_price, best_bid or 0) if new_price != order.price else new_price
            need = sell_collateral(risk_price, new_remaining, order.penalty_bps)
            extra = new_remaining - order.remaining
            if extra > 0:
                pools = self._sites.eligible_pools(order.account_id, inst.instrument.tier)
                available = capacity.available_quantity(pools, inst.hours)
                if available < extra:
                    raise _no_capacity(extra, available)
        hold_id = order.hold_id if order.hold_id is not None else 0
        pending = ledger.holds[hold_id].pending
        if need > pending and ledger.available(order.account_id) < need - pending:
            raise _no_funds(
                ledger.available(order.account_id), "amended hold's increase", need - pending
            )
        if (
            order.side is Side.SELL
            and new_remaining > order.remaining
            and not capacity.extend(order.id, pools, new_remaining - order.remaining)
        ):
            raise _no_capacity(
                new_remaining - order.remaining, capacity.available_quantity(pools, inst.hours)
            )

        # ---- accepted.
        if need > pending:
            ledger.increase_hold(self._time.now, hold_id, need - pending)
        if order.side is Side.SELL and new_remaining < order.remaining:
            capacity.release(order.id, order.remaining - new_remaining)
        order.risk_price = risk_price
        outcome = engine.amend(
            op.account_id,
            op.order_id,
            op.price,
            engine_quantity,
        )
        check(outcome.result is ResultCode.OK, "validated amendment refused by the engine")
        self._journal.run(outcome)
        if order.is_open:
            if order.side is Side.SELL:
                order.risk_price = order.price
            self._trim_hold(order)
        return order

    # ------------------------------------------------------------------ engine events
    def on_cancelled(self, event: OrderCancelled) -> None:
        self._end(event.order_id, event.quantity, OrderEvent.CANCEL)

    def on_expired(self, event: OrderExpired) -> None:
        self._end(event.order_id, event.quantity, OrderEvent.EXPIRE)

    def on_self_trade(self, event: SelfTradePrevented) -> None:
        self._decrement(event.taker_order_id, event.quantity)
        self._decrement(event.maker_order_id, event.quantity)

    def on_amended(self, event: OrderAmended) -> None:
        order = self.orders[event.order_id]
        order.price = event.price
        order.quantity = event.quantity + order.decremented
        order.remaining = event.remaining
        order.updated_at = self._time.now
        self._journal.touched_orders.add(order.id)

    def on_trade(self, t: Trade) -> None:
        """A fill: the contract is cleared (escrow and collateral out of the two holds),
        then each order counts the fill, and ends or keeps only what its rest needs."""
        orders = self.orders
        taker = orders[t.taker_order_id]
        maker = orders[t.maker_order_id]
        buy, sell = (taker, maker) if t.taker_side is Side.BUY else (maker, taker)
        if buy is taker:
            buyer_liquidity, buyer_bps = Liquidity.TAKER, buy.taker_fee_bps
            seller_liquidity, seller_bps = Liquidity.MAKER, sell.maker_fee_bps
        else:
            buyer_liquidity, buyer_bps = Liquidity.MAKER, buy.maker_fee_bps
            seller_liquidity, seller_bps = Liquidity.TAKER, sell.taker_fee_bps
        contract_id = self._clearing.open_contract(
            t, buy, sell, buyer_liquidity, buyer_bps, seller_bps
        )
        now = self._time.now
        quantity = t.quantity
        notional = t.price * quantity
        touched = self._journal.touched_orders
        for order, liquidity, bps in (
            (buy, buyer_liquidity, buyer_bps),
            (sell, seller_liquidity, seller_bps),
        ):
            order.filled += quantity
            order.remaining -= quantity
            order.notional += notional
            order.fills.append(
                Fill(t.trade_id, contract_id, t.price, quantity, fee(notional, bps), liquidity, now)
            )
            order.updated_at = now
            touched.add(order.id)
            # The order lifecycle's move (exchange.lifecycle), its table read in line.
            event = _FILL if order.remaining == 0 else _PARTIAL_FILL
            after = _AFTER.get((order.status, event))
            order.status = after if after is not None else order_status_after(order.status, event)
            if event is _FILL:
                self._finish(order)
            else:
                self._trim_hold(order)

    # ------------------------------------------------------------------ holds
    def required(self, order: OrderState) -> int:
        """What an open order's hold must keep for its remaining quantity."""
        if order.side is Side.BUY:
            return buy_hold(
                order.risk_price, order.remaining, max(order.maker_fee_bps, order.taker_fee_bps)
            )
        return sell_collateral(order.risk_price, order.remaining, order.penalty_bps)

    def _trim_hold(self, order: OrderState) -> None:
        """Release what the order's hold keeps beyond what its remaining quantity needs."""
        if order.hold_id is None:
            return
        hold = self._ledger.holds[order.hold_id]
        excess = hold.pending - self.required(order)
        check(excess >= 0, "order %s holds less than it needs", order.id)
        self._ledger.release(self._time.now, order.hold_id, excess)

    def _finish(self, order: OrderState) -> None:
        """An order ended (its status already moved): close its hold exactly once,
        release its capacity."""
        now = self._time.now
        order.updated_at = now
        if order.hold_id is not None:
            self._ledger.close_hold(Timestamp(now), order.hold_id)
            order.hold_id = None
        if order.side is Side.SELL:
            self._capacity.release(order.id)
        key = (order.account_id, order.symbol)
        left = self.open_counts[key] - 1
        if left:
            self.open_counts[key] = left
        else:
            del self.open_counts[key]
        self._journal.touched_orders.add(order.id)

    def _end(self, order_id: int, quantity: int, event: OrderEvent) -> None:
        order = self.orders[order_id]
        check(quantity == order.remaining, "order %s ended with quantity unaccounted", order_id)
        order.remaining = 0
        order.closed += quantity
        after = _AFTER.get((order.status, event))  # the order lifecycle, read in line
        order.status = after if after is not None else order_status_after(order.status, event)
        self._finish(order)

    def _decrement(self, order_id: int, quantity: int) -> None:
        order = self.orders[order_id]
        order.remaining -= quantity
        order.decremented += quantity
        check(order.remaining >= 0, "decrement below zero")
        if order.side is Side.SELL:
            self._capacity.release(order.id, quantity)
        if order.remaining == 0:
            # Self-trade prevention took the rest: cancelled (the order's quantity counts
            # what was decremented, so its fills never make the quantity).
            _move(order, OrderEvent.CANCEL)
            self._finish(order)
        else:
            self._trim_hold(order)
            self._journal.touched_orders.add(order.id)

    # ------------------------------------------------------------------ retirement
    def retire(self, symbol: str) -> list[OrderState]:
        """A settled instrument's orders leave the core: every one has ended, none can
        change again, and they are in the log and the projections. Returns them, oldest
        first, with their fills; their client_order_ids may be used again."""
        ids = self.instrument_orders.pop(symbol, [])
        orders, client_ids = self.orders, self.client_ids
        retired = [orders.pop(order_id) for order_id in ids]
        accounts: set[int] = set()
        for order in retired:
            check(not order.is_open and order.hold_id is None, f"order {order.id} still open")
            accounts.add(order.account_id)
            if order.client_order_id is not None:
                del client_ids[(order.account_id, order.client_order_id)]
        keep_only(self.account_orders, accounts, orders)
        return retired

    # ------------------------------------------------------------------ integrity
    def check(self) -> None:
        """The engine's own invariants; every order's quantity conserved; and, across
        components, every open order's hold, book entry and capacity reservation."""
        engine, ledger, capacity = self.engine, self._ledger, self._capacity
        engine.validate()
        open_ids = set()
        for order in self.orders.values():
            check(
                order.quantity == order.filled + order.remaining + order.decremented + order.closed,
                f"order {order.id} quantity is not conserved",
            )
            check(order.remaining >= 0 and order.filled >= 0, f"order {order.id} negative")
            if order.is_open:
                open_ids.add(order.id)
                check(order.hold_id is not None, f"open order {order.id} without a hold")
                hold = ledger.holds[order.hold_id or 0]
                check(hold.pending == self.required(order), f"order {order.id} hold drift")
                resting = engine.resting_order(OrderId(order.id))
                check(
                    resting is not None and resting.remaining == order.remaining,
                    f"order {order.id} differs from the book",
                )
                if order.side is Side.SELL:
                    alloc = capacity.reserved.get(order.id)
                    check(
                        alloc is not None and alloc.quantity == order.remaining,
                        f"order {order.id} capacity reservation drift",
                    )
            else:
                check(order.hold_id is None, f"finished order {order.id} still holds cash")
        check(len(open_ids) == engine.resting_count, "book holds orders the core ended")
        indexed = [i for ids in self.instrument_orders.values() for i in ids]
        check(
            len(indexed) == len(self.orders) and set(indexed) == set(self.orders),
            "the index by instrument differs from the orders",
        )
        check(set(capacity.reserved) <= open_ids, "capacity reserved for a finished order")
