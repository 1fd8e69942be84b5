"""suanli's matching engine behind the peer benchmark's adapter interface.

The peer benchmark (bench_peers.py, shipped with the shared peer benchmark) calls
``setup()``, then ``submit(side, price, qty, oid)`` and ``cancel(oid)`` for each message,
then ``snapshot()``. Everything goes through suanli's full engine: validation (state,
duplicate id, lot, min/max, tick, price band), self-trade prevention, events with gapless
sequence numbers, trade ids and the account index. Buys come from one account and sells
from another, so self-trade prevention is checked on every fill but never fires (the
workload assumes no self-trades).
"""

from __future__ import annotations

from typing import Any

from exchange.engine import MatchingEngine
from exchange.ids import AccountId, Symbol, Timestamp
from exchange.lifecycle import InstrumentEvent
from exchange.orders import Side
from exchange.products import DeliveryWindow, Instrument, Precision, Tier
from exchange.units import Price, Quantity

SYMBOL = Symbol("FP16-BENCH-20261122T10")
BUYER, SELLER = AccountId(1), AccountId(2)
HOUR_US = 3_600_000_000


def bench_tier() -> Tier:
    """Tick and lot of one minor unit, wide band: the workload's prices are raw ticks."""
    return Tier(
        code="FP16-BENCH",
        precision=Precision.FP16,
        gpu_class="H",
        tick=Price(1),
        lot=Quantity(1),
        min_quantity=Quantity(1),
        max_quantity=Quantity(10**9),
        price_band_bps=9_000,
    )


def bench_engine(n_instruments: int = 1) -> tuple[MatchingEngine, list[Symbol]]:
    """An engine with ``n_instruments`` open instruments (the first is ``SYMBOL``)."""
    engine = MatchingEngine()
    tier = bench_tier()
    symbols = [SYMBOL] + [Symbol(f"FP16-BENCH-{i:06d}") for i in range(1, n_instruments)]
    for i, symbol in enumerate(symbols):
        start = Timestamp(HOUR_US * (10 + i))
        inst = Instrument(symbol, tier, DeliveryWindow(start, Timestamp(start + HOUR_US)), start)
        engine.list_instrument(inst, Price(10_000))
        engine.transition(symbol, InstrumentEvent.OPEN)
    return engine, symbols


class SuanliAdapter:
    name = "suanli"
    note = "suanli MatchingEngine: validation, STP, events, per-instrument sequence numbers"

    def available(self) -> str | None:
        return None

    def setup(self) -> None:
        self.engine, _ = bench_engine()
        place = self.engine.place
        cancel = self.engine.cancel
        accounts: dict[int, AccountId] = {}
        self.accounts = accounts
        buy, sell = Side.BUY, Side.SELL
        sym = SYMBOL
        self.events = 0

        def submit(side: str, price: int, qty: int, oid: int) -> Any:
            if side == "buy":
                accounts[oid] = BUYER
                return place(oid, BUYER, sym, buy, price, qty)
            accounts[oid] = SELLER
            return place(oid, SELLER, sym, sell, price, qty)

        def cancel_(oid: int) -> Any:
            return cancel(accounts.pop(oid), oid)

        self.submit = submit  # type: ignore[method-assign]
        self.cancel = cancel_  # type: ignore[method-assign]

    def submit(self, side: str, price: int, qty: int, oid: int) -> Any:  # replaced in setup
        raise RuntimeError("call setup() first")

    def cancel(self, oid: int) -> Any:  # replaced in setup
        raise RuntimeError("call setup() first")

    def snapshot(self) -> tuple[int | None, int | None, int, int]:
        book = self.engine.book(SYMBOL)
        return (
            book.best_bid,
            book.best_ask,
            sum(q for _, q in book.depth(Side.BUY)),
            sum(q for _, q in book.depth(Side.SELL)),
        )

    def close(self) -> None:
        self.engine.validate()
