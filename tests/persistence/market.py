"""Shared set-up for the persistence tests: a small market, operation streams, snapshots.

The market: one tier (FP16-H, reference 20 CNY per PF·h), a buyer ``lab`` and a seller
``dc`` who owns one pool of 100 H100s. The service starts at an hour-aligned time
``START_US``; the first listed window starts two hours later and closes its gate one hour
before it starts.

Everything here is deterministic: a stream is a function of its seed (and, for the
adaptive stream, of the core it reads), so a failing seed can be replayed.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, TypeVar

import msgspec
from sqlalchemy import Engine, select, text
from sqlmodel import SQLModel

from api.db import tables as t
from api.db.store import Store
from api.projection import contract_row, order_row
from api.service import ExchangeService
from exchange.core import ExchangeCore, OrderState
from exchange.genesis import new_core
from exchange.ledger import AccountKind
from exchange.lifecycle import InstrumentState
from exchange.limits import CoreLimits
from exchange.operations import (
    AddPool,
    AdvanceClock,
    AmendOrder,
    CancelAll,
    CancelOrder,
    CreateAccount,
    CreateGpuClass,
    CreateTier,
    Deposit,
    Operation,
    PlaceOrder,
    RegisterSite,
    ReportDelivery,
    Withdraw,
)
from exchange.orders import Side
from exchange.products import HOUR_US
from exchange.settlement import Contract, ContractState
from exchange.units import MONEY_DECIMALS

#: An hour-aligned exchange start time (microseconds).
START_US = (1_795_000_000 * 10**6) // HOUR_US * HOUR_US
MINUTE_US = 60_000_000
#: Money units per CNY.
CNY = 10**10
H100 = "nvidia-h100-sxm5-80gb"
TIER = "FP16-H"
REFERENCE_PRICE = 200_000
TICK = 100
LOT = 1_000
#: The service's default; replays must build their core with the same options.
MAX_OPEN_ORDERS = 1_000
POOL_DEVICES = 100
#: One hour of the whole pool, in device-seconds.
FULL_HOUR_DEVICE_SECONDS = POOL_DEVICES * 3600


def core_options() -> dict[str, Any]:
    """The options ExchangeService builds its core with (see ``ExchangeService.__init__``)."""
    return {"limits": CoreLimits(open_orders_per_instrument=MAX_OPEN_ORDERS)}


def genesis_core() -> ExchangeCore:
    """An in-memory core as a new service at START_US has it: the genesis operations
    (the catalog, then the clock) applied, with the service's options."""
    return new_core(START_US, **core_options())


def create_tier() -> CreateTier:
    return CreateTier(
        code=TIER,
        precision="fp16",
        gpu_class="H",
        min_green_grade=None,
        tick=TICK,
        lot=LOT,
        min_quantity=LOT,
        max_quantity=10**9,
        price_band_bps=2000,
        maker_fee_bps=5,
        taker_fee_bps=10,
        shortfall_penalty_bps=2000,
        reference_price=REFERENCE_PRICE,
    )


def setup_operations(deposit: int = 10_000 * CNY) -> list[Operation]:
    """The market's set-up on a fresh exchange: ids are 1 (lab), 2 (dc), site 1, pool 1."""
    return [
        CreateAccount("lab", "trader"),
        CreateAccount("dc", "trader"),
        Deposit(1, deposit),
        Deposit(2, deposit),
        CreateGpuClass("H", "Hopper", "fp16", "700"),
        create_tier(),
        RegisterSite(2, "sh", "east", "1.25", "0"),
        AddPool(2, 1, H100, POOL_DEVICES),
    ]


@dataclass(frozen=True)
class Market:
    lab: int
    dc: int
    site: int
    pool: int
    symbols: tuple[str, ...]  # listed windows, earliest first

    @property
    def symbol(self) -> str:
        """The second listed window: three hours after START_US."""
        return self.symbols[1]


def setup_market(run: Callable[[Operation], Any], deposit: int = 10_000 * CNY) -> Market:
    """Run the set-up through ``run`` (``ExchangeService.run`` or ``ExchangeCore.apply``)."""
    results = [run(op) for op in setup_operations(deposit)]
    lab, dc, site, pool = results[0].id, results[1].id, results[6].id, results[7].id
    assert (lab, dc, site, pool) == (1, 2, 1, 1)
    core = genesis_core()
    for op in setup_operations(deposit):
        core.apply(op)
    return Market(lab, dc, site, pool, tuple(core.instruments))


def window_start(core: ExchangeCore, symbol: str) -> int:
    return int(core.instruments[symbol].instrument.window.start)


def window_end(core: ExchangeCore, symbol: str) -> int:
    return int(core.instruments[symbol].instrument.window.end)


# ---------------------------------------------------------------------- streams
def _price(rng: random.Random, side: Side) -> int:
    """A price within the band, leaning to cross: buys high, sells low, in ticks."""
    offset = rng.randint(-12, 12) * 10 * TICK
    lean = 5 * 10 * TICK if side is Side.BUY else -5 * 10 * TICK
    return max(TICK, REFERENCE_PRICE + offset + lean)


def _quantity(rng: random.Random) -> int:
    return rng.randint(1, 200) * LOT


def trading_operation(rng: random.Random, core: ExchangeCore, market: Market) -> Operation:
    """One realistic operation chosen from the current state: orders, cancels, amends."""
    open_orders = [o for o in core.orders.values() if o.is_open]
    tradable = [s for s in market.symbols[1:5] if core.instruments[s].state is InstrumentState.OPEN]
    roll = rng.random()
    if open_orders and roll < 0.15:
        order = rng.choice(open_orders)
        return CancelOrder(order.account_id, order.id)
    if open_orders and roll < 0.30:
        order = rng.choice(open_orders)
        if rng.random() < 0.5:
            return AmendOrder(order.account_id, order.id, quantity=order.filled + _quantity(rng))
        return AmendOrder(order.account_id, order.id, price=_price(rng, order.side))
    if roll < 0.32:
        return CancelAll(rng.choice((market.lab, market.dc)))
    side = Side.BUY if rng.random() < 0.5 else Side.SELL
    account = market.lab if side is Side.BUY else market.dc
    symbol = rng.choice(tradable) if tradable else market.symbols[-1]
    return PlaceOrder(
        account,
        symbol,
        side,
        quantity=_quantity(rng),
        price=_price(rng, side),
        client_order_id=f"c{rng.getrandbits(48):x}" if rng.random() < 0.3 else None,
    )


def realistic_stream(rng: random.Random, core: ExchangeCore, market: Market) -> Iterator[Operation]:
    """Trading, then delivery and settlement of the traded windows, then more trading.

    ``core`` is read (never changed) to choose cancels, amends and delivery reports; the
    caller applies each yielded operation before asking for the next one.
    """
    first = window_start(core, market.symbol)
    # Trading until shortly before the first traded window's gate closes (one hour before
    # it starts), with the clock moving a few minutes now and then.
    while core.now < first - HOUR_US - 10 * MINUTE_US:
        for _ in range(rng.randint(5, 15)):
            yield trading_operation(rng, core, market)
        yield AdvanceClock(core.now + rng.randint(1, 8) * MINUTE_US)
    yield Withdraw(market.lab, rng.randint(1, 100) * CNY)
    # Delivery of every traded window: report each contract, some in full, some short.
    for symbol in market.symbols[1:5]:
        start = window_start(core, symbol)
        if core.now < start + MINUTE_US:
            yield AdvanceClock(start + MINUTE_US)
        for contract_id in list(core.instruments[symbol].contract_ids):
            contract = core.contracts[contract_id]
            if contract.state is ContractState.DELIVERING:
                share = rng.choice((0, 50, 90, 100, 100, 100))
                yield ReportDelivery(
                    contract.seller,
                    contract_id,
                    market.pool,
                    contract_device_seconds(core, contract_id, market.pool) * share // 100,
                )
        for _ in range(rng.randint(2, 6)):
            yield trading_operation(rng, core, market)
    # Past the end of the last traded window plus the reporting grace: all settle.
    yield AdvanceClock(window_end(core, market.symbols[4]) + 2 * HOUR_US)
    for _ in range(20):
        yield trading_operation(rng, core, market)
    yield Deposit(market.dc, 5 * CNY)


def contract_device_seconds(core: ExchangeCore, contract_id: int, pool_id: int) -> int:
    """The device-seconds of ``pool_id`` that deliver a contract in full (rounded up):
    reports of this size for the contracts of one window add up to what the pool sold
    in it, which its devices can make."""
    contract = core.contracts[contract_id]
    tier = core.instruments[contract.symbol].instrument.tier  # type: ignore[index]
    rated = core.pool_rated_pf(core.pools[pool_id], tier)  # PF per device
    seconds = Fraction(contract.quantity * 3600, 10**6) / rated
    return -(-seconds.numerator // seconds.denominator)


def crash_operations(seed: int, count: int) -> list[Operation]:
    """A long stream for the crash test, a pure function of ``seed``: set-up, then orders.

    Cancels and amends name order ids blindly (the stream cannot read the state), so some
    are refused; refused operations are not logged and not acknowledged.
    """
    rng = random.Random(seed)
    core = genesis_core()
    ops = setup_operations(deposit=1_000_000 * CNY)
    for op in ops:
        core.apply(op)
    symbols = list(core.instruments)[1:6]
    now = START_US
    placed = 0
    while len(ops) < count:
        roll = rng.random()
        if placed and roll < 0.12:
            ops.append(CancelOrder(rng.choice((1, 2)), rng.randint(1, placed)))
        elif placed and roll < 0.20:
            ops.append(
                AmendOrder(rng.choice((1, 2)), rng.randint(1, placed), quantity=_quantity(rng))
            )
        elif roll < 0.21:
            now += rng.randint(1, 20) * 1_000_000
            ops.append(AdvanceClock(now))
        else:
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            ops.append(
                PlaceOrder(
                    1 if side is Side.BUY else 2,
                    rng.choice(symbols),
                    side,
                    quantity=_quantity(rng),
                    price=_price(rng, side),
                )
            )
            placed += 1
    return ops


# ---------------------------------------------------------------------- snapshots
def snapshot(core: ExchangeCore) -> dict[str, Any]:
    """What must survive a restart, in a form whose differences pytest can show."""
    books = {}
    for symbol in sorted(core.engine.symbols):
        book = core.engine.book(symbol)
        books[symbol] = {
            "seq": book.seq,
            "bids": [
                (o.order_id, o.account, o.price, o.remaining, o.filled)
                for o in book.iter_orders(Side.BUY)
            ],
            "asks": [
                (o.order_id, o.account, o.price, o.remaining, o.filled)
                for o in book.iter_orders(Side.SELL)
            ],
        }
    ledger = core.ledger
    return {
        "now": core.now,
        "books": books,
        "sequence_numbers": {s: b["seq"] for s, b in books.items()},
        "instruments": {s: r.state.value for s, r in sorted(core.instruments.items())},
        "balances": sorted((o, k.value, v) for (o, k), v in ledger.balances.items()),
        "holds": {h.id: msgspec.to_builtins(h) for h in ledger.holds.values()},
        "next_transfer_id": ledger.next_transfer_id,
        "deposited": ledger.deposited,
        "withdrawn": ledger.withdrawn,
        "orders": {i: msgspec.to_builtins(o) for i, o in core.orders.items()},
        "contracts": {i: msgspec.to_builtins(c) for i, c in core.contracts.items()},
        "capacity_reserved": {
            i: msgspec.to_builtins(a) for i, a in sorted(core.capacity.reserved.items())
        },
        "deliveries": list(core.deliveries),
        "state_hash": core.state_hash(),
    }


# ---------------------------------------------------------------------- projections
MONEY_TEXT = re.compile(r"^-?\d+\.\d{2,10}$")


def order_stream(market: Market, n: int) -> list[PlaceOrder]:
    """Buys and sells on two windows; every fifth crosses the book, so some trade."""
    ops = []
    for i in range(n):
        side = Side.BUY if i % 2 == 0 else Side.SELL
        account = market.lab if side is Side.BUY else market.dc
        step = (i % 7 + 1) * TICK * 10
        cross = i % 5 == 4
        price = REFERENCE_PRICE + (step if (side is Side.BUY) == cross else -step)
        ops.append(
            PlaceOrder(
                account,
                market.symbols[1 + (i // 2) % 2],
                side,
                quantity=(i % 9 + 1) * LOT,
                price=price,
                client_order_id=f"gc-{i}",
            )
        )
    return ops


def rows(store: Store, table: str, **where: Any) -> list[dict[str, Any]]:
    """Rows of a table as dicts, optionally filtered by column equality."""
    t_ = SQLModel.metadata.tables[table]
    query = select(t_).where(*(t_.c[k] == v for k, v in where.items()))
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


T = TypeVar("T")


def archived(store: Store, kind: str, record: type[T]) -> dict[int, T]:
    """The records of one kind in the archive (api.archive), by id."""
    return {
        row["id"]: msgspec.msgpack.decode(row["payload"], type=record)
        for row in rows(store, "archive", kind=kind)
    }


def assert_projections_agree(service: ExchangeService) -> None:
    """The projection tables say what the core says."""
    store, core = service.store, service.core
    # Settled instruments' orders and contracts left the core for the archive.
    orders, contracts = archived(store, "order", OrderState), archived(store, "contract", Contract)
    assert not orders.keys() & core.orders.keys() and not contracts.keys() & core.contracts.keys()
    assert all(core.instruments[o.symbol].state is InstrumentState.SETTLED for o in orders.values())
    orders.update(core.orders)
    contracts.update(core.contracts)
    assert {row["id"]: row for row in rows(store, "orders")} == {
        i: order_row(o) for i, o in orders.items()
    }
    assert {row["id"]: row for row in rows(store, "contracts")} == {
        i: contract_row(c) for i, c in contracts.items()
    }
    assert {row["symbol"]: row["state"] for row in rows(store, "instruments")} == {
        s: r.state.value for s, r in core.instruments.items()
    }
    assert {row["contract_id"] for row in rows(store, "settlements")} == {
        i for i, c in contracts.items() if c.settled_at is not None
    }
    assert store.count("trades") == core.engine.last_trade_id
    with store.engine.connect() as conn:
        sequences = {
            symbol: (count, low, high)
            for symbol, count, low, high in conn.execute(
                text("SELECT symbol, count(*), min(seq), max(seq) FROM events GROUP BY symbol")
            )
        }
    assert sequences == {
        s: (core.engine.book(s).seq, 1, core.engine.book(s).seq) for s in core.engine.symbols
    }, "the events of an instrument are not gapless from 1 to its sequence number"
    # Money: exact decimal strings, every transfer balanced, per account the core's balance.
    amounts = [row["amount"] for row in rows(store, "ledger_transfers")]
    assert amounts and all(MONEY_TEXT.match(a) for a in amounts)
    for table, columns in (
        ("contracts", ("escrow", "collateral")),
        ("settlements", ("seller_paid", "fees", "refunded", "penalty")),
    ):
        for row in rows(store, table):
            assert all(MONEY_TEXT.match(row[c]) for c in columns), row
    nets = transfer_nets(store.engine)
    assert sum(nets.values()) == 0
    assert_conserved(core, store.engine)


# ---------------------------------------------------------------------- conservation
def money(amount: str) -> int:
    """An exact decimal money string from the database -> integer minor units."""
    value = Decimal(amount) * 10**MONEY_DECIMALS
    assert value == value.to_integral_value(), f"{amount!r} has more than the money decimals"
    return int(value)


def transfer_nets(engine: Engine) -> dict[tuple[int, str], int]:
    """Credits minus debits per ledger account, summed from the ledger_transfers table."""
    table = t.TransferRow.__table__
    nets: dict[tuple[int, str], int] = {}
    with engine.connect() as conn:
        for row in conn.execute(select(table)).mappings():
            amount = money(row["amount"])
            assert amount > 0, f"transfer {row['id']} moves {row['amount']}"
            debit = (row["debit_owner"], row["debit_kind"])
            credit = (row["credit_owner"], row["credit_kind"])
            nets[debit] = nets.get(debit, 0) - amount
            nets[credit] = nets.get(credit, 0) + amount
    return nets


def assert_conserved(core: ExchangeCore, engine: Engine | None = None) -> None:
    """Every invariant of the core, money conserved, and the durable ledger agreeing."""
    core.check()
    ledger = core.ledger
    assert sum(ledger.balances.values()) == 0
    inside = sum(v for (_, kind), v in ledger.balances.items() if kind is not AccountKind.EXTERNAL)
    assert inside == ledger.deposited - ledger.withdrawn
    assert all(
        v >= 0 for (_, kind), v in ledger.balances.items() if kind is not AccountKind.EXTERNAL
    )
    if engine is not None:
        nets = transfer_nets(engine)
        assert sum(nets.values()) == 0, "the ledger_transfers table does not balance"
        expected = {(o, k.value): v for (o, k), v in ledger.balances.items() if v}
        assert {k: v for k, v in nets.items() if v} == expected


def start_service(store: Store, **options: Any) -> ExchangeService:
    """A service on ``store`` with a simulated clock starting at START_US."""
    settings: dict[str, Any] = {
        "clock": "simulated",
        "start_us": START_US,
        "max_open_orders": MAX_OPEN_ORDERS,
        "check_invariants": True,
    }
    settings.update(options)
    return ExchangeService(store, **settings)
