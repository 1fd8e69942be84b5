"""Memory stays bounded: a settled instrument's orders, fills and contracts leave the core,
each handed to the shell exactly once (Changes.retired_*), and what stays per settled
window does not grow with the trading in it."""

from __future__ import annotations

from exchange.core import replay
from exchange.lifecycle import InstrumentState
from exchange.operations import AdvanceClock, Operation, PlaceOrder, ReportDelivery
from exchange.orders import Side
from exchange.products import HOUR_US
from exchange.records import TIER_TRADES_KEPT
from exchange.settlement import ContractState

from .helpers import make_market

PRICE = 200_000


def _trade_windows(windows: int, trades_per_window: int) -> tuple[object, dict, dict, list]:
    """Trading in ``windows`` consecutive hourly windows, each delivered, then the clock
    past the last one's settlement. Returns the market, the retired orders and contracts
    gathered from every take_changes, and the operations applied."""
    m = make_market()
    core = m.core
    ops: list[Operation] = []
    retired_orders: dict = {}
    retired_contracts: dict = {}
    every: list = []

    def run(op: Operation) -> object:
        result = m.apply(op)
        changes = core.take_changes()
        every.append(changes)
        for key, found in (
            (retired_orders, changes.retired_orders),
            (retired_contracts, changes.retired_contracts),
        ):
            assert not key.keys() & found.keys(), "a record retired twice"
            key.update(found)
        return result

    start = m.window[0]
    for w in range(windows):
        open_now = sorted(
            (r.instrument.window.start, s)
            for s, r in core.instruments.items()
            if r.state is InstrumentState.OPEN
        )
        symbol = open_now[0][1]
        for _ in range(trades_per_window):
            run(PlaceOrder(m.seller, symbol, Side.SELL, 1_000_000, PRICE))
            run(PlaceOrder(m.buyer, symbol, Side.BUY, 1_000_000, PRICE))
        run(PlaceOrder(m.buyer, symbol, Side.BUY, 1_000_000, PRICE - 10_000))  # rests
        run(AdvanceClock(start + w * HOUR_US))
        for c in list(core.contracts.values()):
            if c.state is ContractState.DELIVERING and c.delivered_device_seconds == 0:
                run(ReportDelivery(m.seller, c.id, m.pool, 3_000))
    run(AdvanceClock(start + (windows + 3) * HOUR_US))
    # The changes taken earlier still say what they said: a later retirement adds to none.
    assert sum(len(c.retired_orders) for c in every) == len(retired_orders)
    assert sum(len(c.retired_contracts) for c in every) == len(retired_contracts)
    return m, retired_orders, retired_contracts, ops


def test_settled_windows_leave_the_core_each_record_once() -> None:
    m, orders, contracts, _ = _trade_windows(windows=6, trades_per_window=3)
    core = m.core
    assert core.query.contract_count() == 18 == len(contracts)
    assert all(c.state is ContractState.SETTLED for c in contracts.values())
    assert len(orders) == 6 * 7 and all(not o.is_open for o in orders.values())
    assert sum(len(o.fills) for o in orders.values()) == 2 * 18
    assert not core.contracts and not core.deliveries and not core.orders
    assert not core.client_ids and not core.parts.trading.instrument_orders
    assert not core.parts.clearing.account_contracts and not core.parts.trading.account_orders
    # The delivery book keeps only the days a report may still reach (today's).
    today = (core.now - core.grace_us) // (24 * HOUR_US)
    assert {day for _, day in core.parts.clearing.delivery_book.reported} <= {today}
    for symbol in {o.symbol for o in orders.values()}:
        inst = core.instruments[symbol]
        assert inst.state is InstrumentState.SETTLED
        assert not inst.trades and not inst.contract_ids and inst.last_price == PRICE
    core.check()
    # Replay retires the same way: the same state, the same hash.
    assert replay(m.ops).state_hash() == core.state_hash()


def test_what_stays_per_settled_window_does_not_grow_with_its_trading() -> None:
    quiet, *_ = _trade_windows(windows=4, trades_per_window=1)
    busy, *_ = _trade_windows(windows=4, trades_per_window=12)
    for m in (quiet, busy):
        assert not m.core.orders and not m.core.contracts
    sizes = []
    for m in (quiet, busy):
        # A tier keeps its last TIER_TRADES_KEPT prints for the reference price: bounded
        # per tier, not per window. Without them, only counters differ in size.
        (tier,) = m.core.query.tiers()
        assert len(tier.trades) <= TIER_TRADES_KEPT
        tier.trades.clear()
        sizes.append(len(repr(m.core.state())))
    assert abs(sizes[0] - sizes[1]) < 20, sizes
