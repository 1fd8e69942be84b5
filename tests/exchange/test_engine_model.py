"""Model-based tests: the real engine and the naive reference, driven side by side.

A Hypothesis ``RuleBasedStateMachine`` sends the same random commands (limit, market,
IOC, FOK, GTD, post-only, self-trade with three accounts and random STP modes, amend,
cancel, cancel-all, clock, halt/resume/close, reference price) to both on one or two
instruments with small price grids, and after every step checks:

* identical outcomes (result code and full event lists, sequence numbers included);
* identical books (depth, and the resting orders in priority order with what is left);
* ``engine.validate()``; never crossed at rest; no empty or non-positive level;
* a rejected command changes neither ``state_hash()`` nor any sequence number nor the
  trade-id counter;
* every trade at or better than the taker's limit and at the maker's price;
* price-time priority: the resting orders an incoming order touches (trades, self-trade
  decrements and cancels) are exactly the first ones of the opposite side, in order;
* quantity conservation per order: its quantity (as accepted, or as last amended) equals
  filled + cancelled + expired + self-trade-decremented + still resting;
* gapless per-instrument sequences: each instrument's seqs so far are exactly 1..n.

The determinism tests replay a seeded stream of about 2,000 commands on fresh engines.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from exchange.engine import MatchingEngine
from exchange.events import (
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    SelfTradePrevented,
    Trade,
)
from exchange.ids import AccountId, OrderId, Symbol, Timestamp
from exchange.lifecycle import InstrumentEvent
from exchange.orders import (
    CancelReason,
    OrderType,
    ResultCode,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from exchange.units import Price, Quantity
from tests.exchange.commands import (
    AdvanceTime,
    AmendOrder,
    CancelAll,
    CancelOrder,
    Command,
    ListInstrument,
    PlaceOrder,
    SetReferencePrice,
    Transition,
)

from .helpers import apply, depth, make_instrument, make_tier, resting
from .reference_engine import ReferenceEngine

SYMBOLS = [Symbol("FP16-H-M1-20260101T10"), Symbol("FP16-H-M2-20260101T11")]
# Instrument 0: tick 1, lot 1, quantities 1..20, reference 100, band 5 % -> [95, 105].
# Instrument 1: tick 5, lot 2, quantities 2..20, reference 100, band 20 % -> [80, 120].
TIERS = [
    make_tier(tick=1, lot=1, min_quantity=1, max_quantity=20, price_band_bps=500, code="M1"),
    make_tier(tick=5, lot=2, min_quantity=2, max_quantity=20, price_band_bps=2_000, code="M2"),
]
# Price grids: mostly on the tick inside the band, a few outside it or off the tick.
GRIDS = [
    [93, 94, 95, 96, 97, 98, 99, 100, 100, 101, 102, 103, 104, 105, 106, 107],
    [75, 80, 85, 90, 95, 95, 100, 100, 100, 105, 105, 110, 115, 120, 125, 101],
]
REFERENCES = [[None, 97, 100, 103, 98], [None, 90, 100, 110, 103]]
ACCOUNTS = [AccountId(1), AccountId(2), AccountId(3)]
# Quantities are drawn as a number of lots 1..10; 0, 11 and 12 stand for a zero quantity,
# one off the lot (valid when the lot is 1) and one above the maximum.
QUANTITIES = st.integers(0, 12)


def quantity(s: int, lots: int) -> Quantity:
    lot = TIERS[s].lot
    if lots == 11:
        return Quantity(3 * lot + 1)
    if lots == 12:
        return Quantity(TIERS[s].max_quantity + lot)
    return Quantity(lots * lot)

STP_MODES = list(SelfTradePrevention)
TIFS = [TimeInForce.GTC, TimeInForce.GTC, TimeInForce.GTD, TimeInForce.IOC, TimeInForce.FOK]
# Closing ends an instrument for the rest of a run: keep it rare. Resume outweighs halt.
LIFECYCLE = [
    *[InstrumentEvent.HALT] * 4,
    *[InstrumentEvent.RESUME] * 8,
    InstrumentEvent.OPEN,
    InstrumentEvent.START_DELIVERY,
    InstrumentEvent.SETTLE,
    InstrumentEvent.CLOSE,
]


@dataclass
class Track:
    """Per-order quantity accounting, from the events alone."""

    quantity: int
    filled: int = 0
    lost: int = 0  # cancelled + expired + decremented since accepted or last amended


class Checker:
    """Cross-step checks on the real engine's event stream and state."""

    def __init__(self) -> None:
        self.seqs: dict[str, list[int]] = defaultdict(list)
        self.tracks: dict[int, Track] = {}
        self.events: list[Any] = []
        self.decremented: set[int] = set()  # orders that lost quantity to a decrement

    def before(self, engine: MatchingEngine) -> dict[str, Any]:
        snap: dict[str, Any] = {"hash": engine.state_hash(), "trade": engine.last_trade_id}
        for symbol in engine.symbols:
            snap[symbol] = {
                "seq": engine.book(symbol).seq,
                Side.BUY: resting(engine, Side.BUY, symbol),
                Side.SELL: resting(engine, Side.SELL, symbol),
            }
        return snap

    def after(
        self,
        engine: MatchingEngine,
        command: Command,
        outcome: Any,
        snap: dict[str, Any],
    ) -> None:
        if outcome.result != ResultCode.OK:
            assert outcome.events == []
            assert engine.state_hash() == snap["hash"], f"rejected {command} changed state"
            assert engine.last_trade_id == snap["trade"]
            for symbol in engine.symbols:
                if symbol in snap:
                    assert engine.book(symbol).seq == snap[symbol]["seq"]
            return
        events = list(outcome.events)
        self.events.extend(events)
        for e in events:
            self.seqs[e.symbol].append(e.seq)
        self._check_incoming(command, events, snap)
        self._account(events)

    def _check_incoming(self, command: Command, events: list[Any], snap: dict[str, Any]) -> None:
        """Limits, maker prices and price-time priority for a new or re-queued order."""
        taker_id: int | None = None
        side: Side | None = None
        limit: int | None = None
        for e in events:
            if isinstance(e, OrderAccepted):
                taker_id, side, limit = e.order_id, e.side, e.price
            elif isinstance(e, OrderAmended) and not e.priority_kept:
                taker_id, limit = e.order_id, e.price
                for s in (Side.BUY, Side.SELL):
                    if any(r[0] == e.order_id for r in snap[e.symbol][s]):
                        side = s
        if taker_id is None or side is None or limit is None:
            return
        symbol = events[0].symbol
        opposite = snap[symbol][side.opposite]
        maker_price = {r[0]: r[2] for r in opposite}
        touched: list[int] = []
        for e in events:
            maker: int | None = None
            if isinstance(e, Trade):
                assert e.taker_order_id == taker_id and e.taker_side is side
                if side is Side.BUY:
                    assert e.price <= limit, f"buy traded above its limit: {e}"
                else:
                    assert e.price >= limit, f"sell traded below its limit: {e}"
                assert e.price == maker_price[e.maker_order_id], f"not at the maker's price: {e}"
                maker = e.maker_order_id
            elif isinstance(e, SelfTradePrevented):
                maker = e.maker_order_id
            elif (
                isinstance(e, OrderCancelled)
                and e.reason is CancelReason.SELF_TRADE
                and e.order_id != taker_id
            ):
                maker = e.order_id
            if maker is not None:
                assert maker not in touched, f"maker {maker} met twice"
                touched.append(maker)
        assert touched == [r[0] for r in opposite[: len(touched)]], (
            f"price-time priority broken: touched {touched}, book was {opposite}"
        )

    def _account(self, events: list[Any]) -> None:
        t = self.tracks
        for e in events:
            if isinstance(e, OrderAccepted):
                t[e.order_id] = Track(e.quantity)
            elif isinstance(e, Trade):
                t[e.taker_order_id].filled += e.quantity
                t[e.maker_order_id].filled += e.quantity
            elif isinstance(e, SelfTradePrevented):
                t[e.taker_order_id].lost += e.quantity
                t[e.maker_order_id].lost += e.quantity
                self.decremented.update((e.taker_order_id, e.maker_order_id))
            elif isinstance(e, (OrderCancelled, OrderExpired)):
                t[e.order_id].lost += e.quantity
            elif isinstance(e, OrderAmended):
                track = t[e.order_id]
                assert e.quantity - e.remaining == track.filled, f"amend event: {e}"
                track.quantity, track.lost = e.quantity, 0

    def check_state(self, engine: MatchingEngine) -> None:
        engine.validate()
        live: dict[int, int] = {}
        for symbol in engine.symbols:
            bids, asks = depth(engine, Side.BUY, symbol), depth(engine, Side.SELL, symbol)
            assert all(q > 0 for _, q in bids + asks), f"empty level in {bids} {asks}"
            assert [p for p, _ in bids] == sorted({p for p, _ in bids}, reverse=True)
            assert [p for p, _ in asks] == sorted({p for p, _ in asks})
            if bids and asks:
                assert bids[0][0] < asks[0][0], f"crossed at rest: {bids[0]} / {asks[0]}"
            for side in (Side.BUY, Side.SELL):
                for order_id, _, _, remaining in resting(engine, side, symbol):
                    assert remaining > 0
                    live[order_id] = remaining
            n = len(self.seqs[symbol])
            assert self.seqs[symbol] == list(range(1, n + 1)), f"{symbol}: seq gap"
            assert engine.book(symbol).seq == n
        for order_id, track in self.tracks.items():
            left = live.get(order_id, 0)
            assert track.quantity == track.filled + track.lost + left, (
                f"order {order_id}: quantity {track.quantity} != filled {track.filled}"
                f" + lost {track.lost} + resting {left}"
            )


LIMIT_ARGS = st.fixed_dictionaries(
    {
        "s": st.integers(0, 1),
        "account": st.sampled_from(ACCOUNTS),
        "side": st.sampled_from([Side.BUY, Side.SELL]),
        "price": st.integers(0, 15),
        "qty": QUANTITIES,
        "tif": st.sampled_from(TIFS),
        "expire": st.integers(-1, 6),
        "post_only": st.sampled_from([False, False, False, True]),
        "stp": st.sampled_from(STP_MODES),
        "reuse": st.integers(0, 24),
    }
)
AMEND_ARGS = st.fixed_dictionaries(
    {
        "pick": st.integers(0, 1000),
        "live": st.sampled_from([True, True, True, False]),
        "wrong": st.sampled_from([False, False, False, False, True]),
        "price": st.one_of(st.none(), st.integers(0, 15)),
        "qty": st.one_of(st.none(), QUANTITIES),
    }
)


class EngineVersusReference(RuleBasedStateMachine):
    #: Skip amending an order that lost quantity to a self-trade decrement (a known engine
    #: bug, see test_regressions.py::test_amend_*_after_a_decrement*); only the machine
    #: below sets it.
    avoid_amend_after_decrement = False

    def __init__(self) -> None:
        super().__init__()
        self.engine = MatchingEngine()
        self.ref = ReferenceEngine()
        self.checker = Checker()
        self.next_id = 1
        self.ids: list[int] = []
        self.n_symbols = 1

    # ------------------------------------------------------------ driving
    def run(self, command: Command) -> None:
        snap = self.checker.before(self.engine)
        got = apply(self.engine, command)
        want = apply(self.ref, command)
        assert got.result == want.result, f"{command}: engine {got.result!r}, ref {want.result!r}"
        assert list(got.events) == list(want.events), (
            f"{command}:\nengine    {list(got.events)}\nreference {list(want.events)}"
        )
        self.checker.after(self.engine, command, got, snap)

    def fresh_id(self) -> OrderId:
        oid = self.next_id
        self.next_id += 1
        self.ids.append(oid)
        return OrderId(oid)

    def pick_order(self, pick: int, live: bool) -> OrderId:
        if live:
            ids = [
                r[0]
                for s in SYMBOLS[: self.n_symbols]
                for side in (Side.BUY, Side.SELL)
                for r in self.ref.resting(s, side)
            ]
            if ids:
                return OrderId(ids[pick % len(ids)])
        if self.ids and pick % 7:
            return OrderId(self.ids[pick % len(self.ids)])
        return OrderId(10**6 + pick)

    def owner(self, order_id: int, wrong: bool) -> AccountId:
        for s in SYMBOLS[: self.n_symbols]:
            for side in (Side.BUY, Side.SELL):
                for r in self.ref.resting(s, side):
                    if r[0] == order_id:
                        acct = r[1]
                        return AccountId(acct % 3 + 1) if wrong else AccountId(acct)
        return ACCOUNTS[order_id % 3]

    # ------------------------------------------------------------ rules
    @initialize(n=st.integers(1, 2), ref=st.sampled_from([100, 100, 100, None]))
    def list_instruments(self, n: int, ref: int | None) -> None:
        self.n_symbols = n
        for i in range(n):
            inst = make_instrument(SYMBOLS[i], TIERS[i], hour=10 + i)
            self.run(ListInstrument(inst, None if ref is None else Price(ref)))
            self.run(Transition(SYMBOLS[i], InstrumentEvent.OPEN))

    @rule(args=LIMIT_ARGS)
    def place_limit_rule(self, args: dict[str, Any]) -> None:
        self.place_limit(**args)

    def place_limit(
        self,
        s: int,
        account: AccountId,
        side: Side,
        price: int,
        qty: int,
        tif: TimeInForce,
        expire: int,
        post_only: bool,
        stp: SelfTradePrevention,
        reuse: int,
    ) -> None:
        """A limit order; one in 25 reuses the id of a resting order (duplicate_order_id)."""
        s %= self.n_symbols
        order_id = self.pick_order(price, live=True) if reuse == 0 else self.fresh_id()
        expire_time = None
        if tif is TimeInForce.GTD or expire == -1:
            expire_time = Timestamp(self.ref.now + max(expire, 0))
        self.run(
            PlaceOrder(
                order_id, account, SYMBOLS[s], side, quantity(s, qty),
                Price(GRIDS[s][price]), OrderType.LIMIT, tif, expire_time, post_only, stp,
            )
        )  # fmt: skip

    @rule(
        s=st.integers(0, 1),
        account=st.sampled_from(ACCOUNTS),
        side=st.sampled_from([Side.BUY, Side.SELL]),
        qty=QUANTITIES,
        tif=st.sampled_from([TimeInForce.IOC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTC]),
        stp=st.sampled_from(STP_MODES),
    )
    def place_market(
        self,
        s: int,
        account: AccountId,
        side: Side,
        qty: int,
        tif: TimeInForce,
        stp: SelfTradePrevention,
    ) -> None:
        s %= self.n_symbols
        self.run(
            PlaceOrder(
                self.fresh_id(), account, SYMBOLS[s], side, quantity(s, qty), None,
                OrderType.MARKET, tif, None, False, stp,
            )
        )  # fmt: skip

    @rule(args=AMEND_ARGS)
    def amend_rule(self, args: dict[str, Any]) -> None:
        self.amend(**args)

    def amend(
        self, pick: int, live: bool, wrong: bool, price: int | None, qty: int | None
    ) -> None:
        order_id = self.pick_order(pick, live)
        if self.avoid_amend_after_decrement and order_id in self.checker.decremented:
            return
        account = self.owner(order_id, wrong)
        o = self.ref._find(order_id)
        s = SYMBOLS.index(Symbol(o.symbol)) if o is not None else 0
        self.run(
            AmendOrder(
                account,
                order_id,
                None if price is None else Price(GRIDS[s][price]),
                None if qty is None else quantity(s, qty),
            )
        )

    @rule(
        pick=st.integers(0, 1000),
        live=st.sampled_from([True, True, True, False]),
        wrong=st.sampled_from([False, False, False, True]),
    )
    def cancel(self, pick: int, live: bool, wrong: bool) -> None:
        order_id = self.pick_order(pick, live)
        self.run(CancelOrder(self.owner(order_id, wrong), order_id))

    @rule(account=st.sampled_from(ACCOUNTS), s=st.sampled_from([None, 0, 1, 2]))
    def cancel_all(self, account: AccountId, s: int | None) -> None:
        symbol = None if s is None else Symbol("NOPE") if s == 2 else SYMBOLS[s % self.n_symbols]
        self.run(CancelAll(account, symbol))

    @rule(delta=st.integers(-1, 4))
    def advance_time(self, delta: int) -> None:
        self.run(AdvanceTime(Timestamp(self.ref.now + delta)))

    @rule(s=st.integers(0, 1), event=st.sampled_from(LIFECYCLE))
    def lifecycle(self, s: int, event: InstrumentEvent) -> None:
        self.run(Transition(SYMBOLS[s % self.n_symbols], event))

    @rule(s=st.integers(0, 1), k=st.integers(0, 4), off_tick=st.booleans())
    def set_reference(self, s: int, k: int, off_tick: bool) -> None:
        s %= self.n_symbols
        ref = REFERENCES[s][k]
        if ref is not None and off_tick and TIERS[s].tick > 1:
            ref += 1
        self.run(SetReferencePrice(SYMBOLS[s], None if ref is None else Price(ref)))

    # Limit orders and amendments are what the book is about: give them more weight.
    @rule(args=LIMIT_ARGS)
    def place_limit_more(self, args: dict[str, Any]) -> None:
        self.place_limit(**args)

    @rule(args=AMEND_ARGS)
    def amend_more(self, args: dict[str, Any]) -> None:
        self.amend(**args)

    # ------------------------------------------------------------ invariants
    @invariant()
    def books_match_and_hold(self) -> None:
        for symbol in SYMBOLS[: self.n_symbols]:
            if symbol not in self.ref.markets:
                continue  # before initialisation
            for side in (Side.BUY, Side.SELL):
                assert depth(self.engine, side, symbol) == self.ref.depth(symbol, side)
                assert resting(self.engine, side, symbol) == self.ref.resting(symbol, side)
            assert self.engine.market(symbol).state == self.ref.state(symbol)  # type: ignore[union-attr]
        self.checker.check_state(self.engine)


class EngineVersusReferenceNoAmendAfterDecrement(EngineVersusReference):
    """The same machine, never amending an order a decrement has shrunk.

    While the amend-after-decrement bug stands, the full machine above fails on it
    quickly; this one keeps guarding everything else (matching, STP, FOK, GTD, lifecycle,
    invariants). It is a second test, not a replacement: both must pass.
    """

    avoid_amend_after_decrement = True


_PROFILE = settings.get_profile(
    {"ci": "exchange-ci", "long": "exchange-long"}.get(
        os.environ.get("SUANLI_HYPOTHESIS_PROFILE", ""), "exchange"
    )
)
EngineVersusReference.TestCase.settings = _PROFILE
EngineVersusReferenceNoAmendAfterDecrement.TestCase.settings = _PROFILE
TestEngineVersusReference = EngineVersusReference.TestCase
TestEngineVersusReferenceNoAmendAfterDecrement = EngineVersusReferenceNoAmendAfterDecrement.TestCase


# ====================================================================== determinism
def command_stream(seed: int, n: int = 2_000) -> list[Command]:
    """A seeded random stream of engine commands over two instruments."""
    rng = random.Random(seed)
    cmds: list[Command] = []
    for i, symbol in enumerate(SYMBOLS):
        cmds.append(ListInstrument(make_instrument(symbol, TIERS[i], hour=10 + i), Price(100)))
        cmds.append(Transition(symbol, InstrumentEvent.OPEN))
    now, next_id, placed = 0, 1, [0]
    while len(cmds) < n:
        s = rng.randrange(2)
        symbol = SYMBOLS[s]
        roll = rng.random()
        account = rng.choice(ACCOUNTS)
        if roll < 0.55:
            tif = rng.choice(TIFS)
            expire = Timestamp(now + rng.randint(1, 30)) if tif is TimeInForce.GTD else None
            cmds.append(
                PlaceOrder(
                    OrderId(next_id), account, symbol, rng.choice([Side.BUY, Side.SELL]),
                    Quantity(rng.randint(1, 10) * TIERS[s].lot), Price(rng.choice(GRIDS[s])),
                    OrderType.LIMIT, tif, expire, rng.random() < 0.1, rng.choice(STP_MODES),
                )
            )  # fmt: skip
            placed.append(next_id)
            next_id += 1
        elif roll < 0.62:
            cmds.append(
                PlaceOrder(
                    OrderId(next_id), account, symbol, rng.choice([Side.BUY, Side.SELL]),
                    Quantity(rng.randint(1, 10) * TIERS[s].lot), None, OrderType.MARKET,
                    rng.choice([TimeInForce.IOC, TimeInForce.FOK]), None, False,
                    rng.choice(STP_MODES),
                )
            )  # fmt: skip
            placed.append(next_id)
            next_id += 1
        elif roll < 0.75:
            cmds.append(CancelOrder(rng.choice(ACCOUNTS), OrderId(rng.choice(placed))))
        elif roll < 0.87:
            cmds.append(
                AmendOrder(
                    rng.choice(ACCOUNTS),
                    OrderId(rng.choice(placed)),
                    rng.choice([None, Price(rng.choice(GRIDS[s]))]),
                    rng.choice([None, Quantity(rng.randint(1, 12) * TIERS[s].lot)]),
                )
            )
        elif roll < 0.92:
            now += rng.randint(0, 5)
            cmds.append(AdvanceTime(Timestamp(now)))
        elif roll < 0.95:
            cmds.append(CancelAll(account, rng.choice([None, symbol])))
        elif roll < 0.98:
            event = rng.choice([InstrumentEvent.HALT, InstrumentEvent.RESUME])
            cmds.append(Transition(symbol, event))
        else:
            cmds.append(SetReferencePrice(symbol, Price(rng.choice(REFERENCES[s][1:]))))
    return cmds


def replay(commands: list[Command]) -> tuple[MatchingEngine, list[Any]]:
    engine = MatchingEngine()
    events: list[Any] = []
    for command in commands:
        events.extend(apply(engine, command).events)
    return engine, events


def digest(events: list[Any]) -> str:
    """A digest of an event stream: the type and MessagePack of each event."""
    h = hashlib.sha256()
    for e in events:
        h.update(type(e).__name__.encode())
        h.update(msgspec.msgpack.encode(e))
    return h.hexdigest()


@pytest.mark.parametrize("seed", [7, 20260101])
def test_same_seed_same_events_and_state_hash(seed: int) -> None:
    commands = command_stream(seed=seed)
    first, events1 = replay(commands)
    second, events2 = replay(commands)
    assert sum(isinstance(e, Trade) for e in events1) > 50  # the stream does trade
    assert events1 == events2
    assert digest(events1) == digest(events2)
    assert first.state_hash() == second.state_hash()
    other, events3 = replay(command_stream(seed=seed + 1))
    assert digest(events3) != digest(events1)
    assert other.state_hash() != first.state_hash()


def test_seeded_stream_engine_matches_reference() -> None:
    """The long seeded stream, replayed on the reference too: same outcomes, same books."""
    engine, ref = MatchingEngine(), ReferenceEngine()
    checker = Checker()
    for command in command_stream(seed=99):
        snap = checker.before(engine)
        got, want = apply(engine, command), apply(ref, command)
        assert got.result == want.result, command
        assert list(got.events) == list(want.events), command
        checker.after(engine, command, got, snap)
    for symbol in SYMBOLS:
        for side in (Side.BUY, Side.SELL):
            assert resting(engine, side, symbol) == ref.resting(symbol, side)
    checker.check_state(engine)
