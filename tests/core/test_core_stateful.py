"""A Hypothesis state machine over the whole ExchangeCore: money is never created or lost.

Several traders (buyers, sellers with sites and pools of different hardware, and one
trader who does both) deposit, withdraw, place limit / market / IOC / FOK / GTD /
post-only orders with every self-trade-prevention mode on a few instruments of two tiers
that share pools, cancel, amend, report (some short, some missing) deliveries, while the
clock moves through gate closure, delivery and settlement and the admin halts, resumes
and re-prices. After EVERY step:

* ``core.check()`` passes (ledger, holds vs orders, escrow/collateral vs contracts, book);
* the sum of every participant's balances plus the exchange's fees equals deposits minus
  withdrawals, tallied here from the operations that were accepted, not read from the
  ledger; no participant balance is negative;
* fees collected equal the fees of settled contracts; each settled contract split its
  escrow and collateral completely;
* the lifecycle is on time: no order is open past its instrument's gate closure, every
  contract whose window ended more than the grace ago is settled, none before its end;
* trading never moves money between accounts (only settlement does);
* a rejected operation leaves ``state_hash()`` (and balances, orders, contracts) as before.

At the end of each example the recorded operations are replayed on a fresh core
(``exchange.core.replay``), which must reach the same state hash.

Size: the ``core`` profile (see conftest.py) runs 125 examples of up to 100 steps;
``SUANLI_STATEFUL_STEPS=100000`` or ``SUANLI_HYPOTHESIS_PROFILE=ci|long`` run more.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from exchange.core import ExchangeCore, Rejected, replay
from exchange.genesis import genesis_operations
from exchange.ledger import EXCHANGE, AccountKind
from exchange.lifecycle import InstrumentState
from exchange.operations import (
    AddPool,
    AdvanceClock,
    AmendOrder,
    CancelAll,
    CancelOrder,
    CreateAccount,
    CreateGpuClass,
    Deposit,
    HaltInstrument,
    Operation,
    PlaceOrder,
    RegisterSite,
    ReportDelivery,
    ResumeInstrument,
    UpdateTier,
    Withdraw,
    decode_operation,
    encode_operation,
)
from exchange.orders import OrderType, SelfTradePrevention, Side, TimeInForce
from exchange.products import HOUR_US
from exchange.settlement import Contract, ContractState
from tests.core.conftest import stateful_settings
from tests.core.helpers import A100, CNY, H100, H800, START, create_tier

MINUTE = 60_000_000
LOT = 100_000  # 0.1 PF·h
REFERENCE = 200_000  # 20 CNY per PF·h
TICK = 100
PARTICIPANT_KINDS = (
    AccountKind.AVAILABLE,
    AccountKind.HELD,
    AccountKind.ESCROW,
    AccountKind.COLLATERAL,
)
STP_MODES = list(SelfTradePrevention)
#: Which trader acts: the one who both buys and sells (self-trade prevention) more often.
WHO = st.integers(0, 4) | st.just(4)

# name, role, pools [(hardware, count)], initial deposit (CNY)
TRADERS = [
    ("buyer-1", [], 5_000),
    ("buyer-2", [], 800),
    ("seller-h100", [(H100, 40), (A100, 60)], 1_000),
    ("seller-h800", [(H800, 30)], 300),
    ("both", [(A100, 40), (H100, 10)], 2_000),
]


PLACE_LIMIT = {
    "who": WHO,
    "pick": st.integers(0, 99),
    "side": st.sampled_from(Side),
    "lots": st.integers(1, 60) | st.integers(0, 500),
    "ticks": st.integers(-10, 10) | st.integers(-500, 500),
    "tif": st.sampled_from(
        [TimeInForce.GTC, TimeInForce.GTC, TimeInForce.GTD, TimeInForce.IOC, TimeInForce.FOK]
    ),
    "expire_minutes": st.integers(0, 240),
    "post_only": st.booleans(),
    "stp": st.sampled_from(STP_MODES),
    "client_order_id": st.none() | st.sampled_from(["a", "b", "c"]),
}

TAKE = {
    "pick": st.integers(0, 255),
    "share": st.integers(1, 150),
    "shift": st.integers(0, 4),
    "tif": st.sampled_from([TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK]),
    "stp": st.sampled_from(STP_MODES),
}


class ExchangeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.core = ExchangeCore()
        self.ops: list[Operation] = []
        self.deposited = 0
        self.withdrawn = 0
        self.steps = -1  # invariants run once before the first step
        self.rejections: dict[str, int] = {}
        self.accepted: dict[str, int] = {}
        self.traders: list[int] = []
        self.pools: dict[int, list[int]] = {}  # account -> its pool ids
        self.retired: dict[int, Contract] = {}  # contracts that left the core, settled
        self._setup()

    # ------------------------------------------------------------------ plumbing
    def _setup(self) -> None:
        for op in genesis_operations(START):
            self.apply(op)
        self.apply(CreateGpuClass("H", "Hopper-class", "fp16", "700"))
        self.apply(CreateGpuClass("A", "Ampere or better", "fp16", "300"))
        self.apply(
            create_tier(
                "FP16-H", lot=LOT, min_quantity=LOT, max_quantity=400 * LOT, tick=TICK,
                reference_price=REFERENCE, list_ahead_hours=6,
            )
        )  # fmt: skip
        self.apply(
            create_tier(
                "FP16-A", gpu_class="A", lot=LOT, min_quantity=LOT, max_quantity=400 * LOT,
                tick=TICK, reference_price=150_000, window_hours=2, list_ahead_hours=6,
                gate_closure_minutes=30, maker_fee_bps=0, taker_fee_bps=25,
                shortfall_penalty_bps=5_000,
            )
        )  # fmt: skip
        for i, (name, pools, cash) in enumerate(TRADERS):
            account = self.apply(CreateAccount(name, "trader")).id
            self.traders.append(account)
            self.apply(Deposit(account, cash * CNY))
            self.pools[account] = []
            if pools:
                site = self.apply(RegisterSite(account, f"site-{i}", "east", "1.2", "0")).id
                for hardware, count in pools:
                    self.pools[account].append(
                        self.apply(AddPool(account, site, hardware, count)).id
                    )

    def apply(self, op: Operation) -> Any:
        """Apply ``op``: record it, tally money, check that a refusal changed nothing."""
        core = self.core
        before = core.state_hash()
        snapshot = self._snapshot()
        totals_before = self._account_totals()
        self.ops.append(op)
        try:
            result = core.apply(op)
        except Rejected as exc:
            assert core.state_hash() == before, f"{op} was refused ({exc.code}) but changed state"
            assert self._snapshot() == snapshot, f"{op} was refused ({exc.code}) but changed state"
            self.rejections[exc.code] = self.rejections.get(exc.code, 0) + 1
            return None
        finally:
            self.retired.update(core.take_changes().retired_contracts)
        name = type(op).__name__
        self.accepted[name] = self.accepted.get(name, 0) + 1
        totals_after = self._account_totals()
        for account in totals_after:
            totals_before.setdefault(account, 0)  # a new account starts empty
        if isinstance(op, Deposit):
            self.deposited += op.amount
            totals_before[op.account_id] += op.amount
        elif isinstance(op, Withdraw):
            self.withdrawn += op.amount
            totals_before[op.account_id] -= op.amount
        if not isinstance(op, AdvanceClock):
            # Only settlement (driven by the clock) moves money between accounts.
            assert totals_after == totals_before, f"{op} moved money between accounts"
        return result

    def _account_totals(self) -> dict[int, int]:
        ledger = self.core.ledger
        return {
            a: sum(ledger.balance(a, kind) for kind in PARTICIPANT_KINDS)
            for a in self.core.accounts
        }

    def _contracts(self) -> list[Contract]:
        """Every contract made: those in the core, and the settled ones that left it with
        their instrument (Clock._retire), each in one place only."""
        contracts = [*self.core.contracts.values(), *self.retired.values()]
        assert len({c.id for c in contracts}) == len(contracts), "a contract in two places"
        assert len(contracts) == self.core.query.contract_count()
        return contracts

    def _snapshot(self) -> tuple[Any, ...]:
        core = self.core
        return (
            sorted(core.ledger.balances.items()),
            len(core.orders),
            len(core.contracts),
            len(core.client_ids),
            len(core.deliveries),
            len(core.accounts),
            len(core.ledger.holds),
            [(o.status, o.remaining, o.price, o.hold_id) for o in core.orders.values()],
            [(c.state, c.delivered_quantity) for c in core.contracts.values()],
        )

    def _symbols(self, open_only: bool) -> list[str]:
        insts = self.core.instruments.values()
        chosen = [i for i in insts if not open_only or i.state in (InstrumentState.OPEN,)]
        chosen.sort(key=lambda i: (i.instrument.window.start, i.symbol))
        return [i.symbol for i in chosen]

    def _pick_symbol(self, pick: int) -> str | None:
        """Mostly the nearest open windows; sometimes any instrument (closed ones too)."""
        if pick % 10 == 9:
            every = self._symbols(open_only=False)
            return every[pick % len(every)] if every else None
        live = self._symbols(open_only=True)[:3]
        return live[pick % len(live)] if live else None

    def _side(self, who: int, side: Side, pick: int) -> Side:
        """Buyers mostly buy and sellers mostly sell; the trader with both does both."""
        if pick % 10 == 0 or TRADERS[who][0] == "both":
            return side
        return Side.SELL if self.pools[self.traders[who]] else Side.BUY

    def _reference(self, symbol: str) -> int:
        market = self.core.engine.market(symbol)  # type: ignore[arg-type]
        ref = market.reference_price if market is not None else None
        return ref or REFERENCE

    # ------------------------------------------------------------------ money
    @rule(who=st.integers(0, len(TRADERS) - 1), cents=st.integers(-1, 300_000))
    def deposit(self, who: int, cents: int) -> None:
        self.apply(Deposit(self.traders[who], cents * CNY // 100))

    @rule(
        who=st.integers(0, len(TRADERS) - 1),
        share=st.integers(0, 120),
        extra=st.integers(-1, 1),
    )
    def withdraw(self, who: int, share: int, extra: int) -> None:
        account = self.traders[who]
        available = self.core.ledger.available(account)
        self.apply(Withdraw(account, available * share // 100 + extra))

    # ------------------------------------------------------------------ orders
    @rule(**PLACE_LIMIT)
    def place_limit(
        self,
        who: int,
        pick: int,
        side: Side,
        lots: int,
        ticks: int,
        tif: TimeInForce,
        expire_minutes: int,
        post_only: bool,
        stp: SelfTradePrevention,
        client_order_id: str | None,
    ) -> None:
        symbol = self._pick_symbol(pick)
        if symbol is None:
            return
        side = self._side(who, side, pick)
        price = self._reference(symbol) + ticks * TICK
        expire = self.core.now + expire_minutes * MINUTE if tif is TimeInForce.GTD else None
        self.apply(
            PlaceOrder(
                self.traders[who], symbol, side, lots * LOT, price,
                time_in_force=tif, expire_time=expire, post_only=post_only and pick % 3 == 0,
                stp=stp, client_order_id=client_order_id,
            )
        )  # fmt: skip

    @rule(
        who=st.integers(0, len(TRADERS) - 1),
        pick=st.integers(0, 99),
        side=st.sampled_from(Side),
        lots=st.integers(1, 200),
        tif=st.sampled_from([TimeInForce.IOC, TimeInForce.FOK]),
        stp=st.sampled_from(STP_MODES),
    )
    def place_market(
        self, who: int, pick: int, side: Side, lots: int, tif: TimeInForce, stp: SelfTradePrevention
    ) -> None:
        symbol = self._pick_symbol(pick)
        if symbol is None:
            return
        side = self._side(who, side, pick)
        self.apply(
            PlaceOrder(
                self.traders[who], symbol, side, lots * LOT, None,
                order_type=OrderType.MARKET, time_in_force=tif, stp=stp,
            )
        )  # fmt: skip

    @rule(**TAKE)
    def take_again(self, **kw: Any) -> None:
        self.take(**kw)

    @rule(**TAKE)
    def take(
        self, pick: int, share: int, shift: int, tif: TimeInForce, stp: SelfTradePrevention
    ) -> None:
        """Cross a resting order at its price, from another trader or (shift 0) its owner."""
        order = self._pick_order(pick)
        if order is None:
            return
        owner = self.traders.index(order.account_id)
        taker = self.traders[(owner + shift) % len(self.traders)]
        lots = max(1, order.remaining * share // 100 // LOT)
        self.apply(
            PlaceOrder(
                taker, order.symbol, order.side.opposite, lots * LOT, order.price,
                time_in_force=tif, stp=stp,
            )
        )  # fmt: skip

    def _pick_order(self, pick: int, open_only: bool = True) -> Any:
        orders = [o for o in self.core.orders.values() if o.is_open or not open_only]
        touched = [o for o in orders if o.filled or o.decremented]
        if touched and pick % 2:  # half the time an order that already traded or shrank
            orders = touched
        return orders[pick % len(orders)] if orders else None

    @rule(pick=st.integers(0, 255), wrong_owner=st.booleans(), finished=st.booleans())
    def cancel(self, pick: int, wrong_owner: bool, finished: bool) -> None:
        order = self._pick_order(pick, open_only=not finished)
        if order is None:
            return
        account = order.account_id
        if wrong_owner and pick % 4 == 0:
            account = self.traders[(self.traders.index(account) + 1) % len(self.traders)]
        self.apply(CancelOrder(account, order.id))

    @precondition(lambda self: len(self.ops) % 3 == 0)  # less often than single cancels
    @rule(who=st.integers(0, len(TRADERS) - 1), pick=st.integers(0, 99), everywhere=st.booleans())
    def cancel_all(self, who: int, pick: int, everywhere: bool) -> None:
        symbol = None if everywhere else self._pick_symbol(pick)
        self.apply(CancelAll(self.traders[who], symbol))

    @rule(
        pick=st.integers(0, 255),
        ticks=st.none() | st.integers(-300, 300),
        lots=st.none() | st.integers(-60, 120),
    )
    def amend(self, pick: int, ticks: int | None, lots: int | None) -> None:
        order = self._pick_order(pick)
        if order is None:
            return
        price = None if ticks is None else order.price + ticks * TICK
        quantity = None if lots is None else order.quantity + lots * LOT
        self.apply(AmendOrder(order.account_id, order.id, price=price, quantity=quantity))

    # ------------------------------------------------------------------ clock and delivery
    @rule(kind=st.integers(0, 3), minutes=st.integers(0, 240), pick=st.integers(0, 99))
    def advance_clock(self, kind: int, minutes: int, pick: int) -> None:
        core = self.core
        to = core.now + minutes * MINUTE
        if kind == 3:  # straight to a lifecycle edge of some instrument (or its next tick)
            edges = sorted(
                t
                for i in core.instruments.values()
                for t in (
                    i.instrument.gate_closure,
                    i.instrument.window.start,
                    i.instrument.window.end + core.grace_us,
                )
                if t >= core.now
            )
            if edges:
                to = edges[pick % len(edges)] + (pick % 2)
        if kind == 0 and pick % 20 == 0:
            to = core.now - 1  # refused
        self.apply(AdvanceClock(to))

    @rule(pick=st.integers(0, 255), minutes=st.integers(0, 90))
    def to_delivery(self, pick: int, minutes: int) -> None:
        """Move the clock into the delivery window of some contract not delivering yet."""
        starts = sorted(
            {
                self.core.instruments[c.symbol].instrument.window.start  # type: ignore[index]
                for c in self.core.contracts.values()
                if c.state is ContractState.OPEN
            }
        )
        if starts:
            self.apply(AdvanceClock(starts[pick % len(starts)] + minutes * MINUTE))

    @rule(
        pick=st.integers(0, 255),
        share=st.integers(0, 120),
        variant=st.integers(0, 9),
    )
    def report_delivery(self, pick: int, share: int, variant: int) -> None:
        wanted = {
            ContractState.DELIVERING: variant < 7,
            ContractState.OPEN: variant in (5, 6),  # too early: refused
            ContractState.SETTLED: variant == 9,  # too late: refused
        }
        contracts = [c for c in self.core.contracts.values() if wanted[c.state]]
        if not contracts:
            return
        contract = contracts[pick % len(contracts)]
        account = contract.seller
        pools = self.pools[account]
        if variant == 7:  # someone else's report
            account = contract.buyer
        if variant == 8:  # a foreign pool
            others = [p for a, ps in self.pools.items() if a != account for p in ps]
            pools = others or pools
        if not pools:
            return
        pool_id = pools[pick % len(pools)]
        pool = self.core.pools[pool_id]
        hours = len(self.core.instruments[contract.symbol].hours)  # type: ignore[index]
        device_seconds = pool.count * hours * 3_600 * share // 100
        self.apply(ReportDelivery(account, contract.id, pool_id, device_seconds))

    @precondition(lambda self: len(self.ops) % 3 == 0)
    @rule(pick=st.integers(0, 255))
    def settle_again(self, pick: int) -> None:
        settled = [c for c in self._contracts() if c.state is ContractState.SETTLED]
        if not settled:
            return
        before = self.core.state_hash()
        assert self.core.settle_contract(settled[pick % len(settled)].id) is False
        assert self.core.state_hash() == before

    # ------------------------------------------------------------------ admin
    @precondition(lambda self: len(self.ops) % 4 == 0)  # rarely
    @rule(pick=st.integers(0, 99), halt=st.booleans())
    def halt_or_resume(self, pick: int, halt: bool) -> None:
        symbols = self._symbols(open_only=False)
        if not symbols:
            return
        symbol = symbols[pick % len(symbols)]
        self.apply(HaltInstrument(symbol) if halt else ResumeInstrument(symbol))

    @rule(
        tier=st.sampled_from(["FP16-H", "FP16-A"]),
        maker=st.none() | st.integers(0, 20),
        taker=st.none() | st.integers(0, 40),
        penalty=st.none() | st.integers(0, 255),
        reference=st.none() | st.integers(1_500, 2_500),
        status=st.none() | st.none() | st.sampled_from(["active", "suspended"]),
    )
    @precondition(lambda self: len(self.ops) % 6 == 0)  # rarely
    def update_tier(
        self,
        tier: str,
        maker: int | None,
        taker: int | None,
        penalty: int | None,
        reference: int | None,
        status: str | None,
    ) -> None:
        self.apply(
            UpdateTier(
                tier, status=status, maker_fee_bps=maker, taker_fee_bps=taker,
                shortfall_penalty_bps=penalty,
                reference_price=None if reference is None else reference * TICK,
            )
        )  # fmt: skip

    # Trading and delivery are where money can go wrong: give them more of the steps
    # (Hypothesis picks among enabled rules uniformly, so a second rule doubles the odds).
    @rule(**PLACE_LIMIT)
    def place_limit_again(self, **kw: Any) -> None:
        self.place_limit(**kw)

    @rule(**PLACE_LIMIT)
    def place_limit_more(self, **kw: Any) -> None:
        self.place_limit(**kw)

    @rule(pick=st.integers(0, 255), ticks=st.none() | st.integers(-300, 300),
          lots=st.none() | st.integers(-60, 120))  # fmt: skip
    def amend_again(self, pick: int, ticks: int | None, lots: int | None) -> None:
        self.amend(pick, ticks, lots)

    @rule(pick=st.integers(0, 255), share=st.integers(0, 120), variant=st.integers(0, 9))
    def report_delivery_again(self, pick: int, share: int, variant: int) -> None:
        self.report_delivery(pick, share, variant)

    # ------------------------------------------------------------------ invariants
    @invariant()
    def core_invariants_hold(self) -> None:
        self.steps += 1
        self.core.check()

    @invariant()
    def money_is_conserved(self) -> None:
        ledger = self.core.ledger
        inside = 0
        for account in self.core.accounts:
            for kind in PARTICIPANT_KINDS:
                value = ledger.balance(account, kind)
                assert value >= 0, f"account {account} {kind} is negative: {value}"
                inside += value
        fees = ledger.balance(EXCHANGE, AccountKind.FEES)
        assert fees >= 0
        assert inside + fees == self.deposited - self.withdrawn
        settled = [c for c in self._contracts() if c.state is ContractState.SETTLED]
        assert fees == sum(c.fees for c in settled)
        for c in settled:
            assert c.seller_paid + c.fees + c.refunded == c.escrow
            assert c.penalty_paid <= c.collateral
            assert c.refunded >= c.price * (c.quantity - c.delivered_quantity)

    @invariant()
    def lifecycle_is_on_time(self) -> None:
        core = self.core
        for order in core.orders.values():
            if order.is_open:
                inst = core.instruments[order.symbol]  # type: ignore[index]
                assert core.now < inst.instrument.gate_closure, f"order {order.id} past gate"
                if order.expire_time is not None:
                    assert core.now < order.expire_time, f"order {order.id} past expiry"
        for c in core.contracts.values():
            window = core.instruments[c.symbol].instrument.window  # type: ignore[index]
            due = window.end + core.grace_us
            assert (c.state is ContractState.SETTLED) == (core.now >= due), f"contract {c.id}"
            if core.now < window.start:
                assert c.state is ContractState.OPEN

    def teardown(self) -> None:
        again = replay(self.ops)
        assert again.state_hash() == self.core.state_hash(), "replay reached another state"


ExchangeMachine.TestCase.settings = stateful_settings()
TestExchangeCore = ExchangeMachine.TestCase


def test_the_machine_reaches_settlement_and_trades() -> None:
    """The machine is only worth its steps if it trades, settles and gets refusals."""
    machine = ExchangeMachine()
    m = machine
    buyer, seller = m.traders[0], m.traders[2]
    symbol = next(s for s in m._symbols(open_only=True) if s.startswith("FP16-H-"))
    m.apply(PlaceOrder(seller, symbol, Side.SELL, 10 * LOT, REFERENCE))
    m.apply(PlaceOrder(buyer, symbol, Side.BUY, 10 * LOT, REFERENCE))
    (contract,) = m.core.contracts.values()
    m.advance_clock(kind=0, minutes=12 * 60, pick=1)
    assert contract.state is ContractState.SETTLED
    m.core_invariants_hold()
    m.money_is_conserved()
    m.lifecycle_is_on_time()
    m.deposit(0, -1)
    assert m.rejections == {"invalid_amount": 1}
    m.teardown()
    assert HOUR_US == 60 * MINUTE


@pytest.mark.parametrize("seed", range(4))
def test_replay_of_a_random_operation_stream_reaches_the_same_state(seed: int) -> None:
    """A random stream (refusals included) replayed on a fresh core, also after a JSON
    round trip of every operation, gives the same state hash; dropping one accepted
    operation does not."""
    rng = random.Random(seed)
    m = ExchangeMachine()
    for _ in range(150):
        kind = rng.randrange(10)
        if kind < 5:
            m.place_limit(
                who=rng.randrange(5), pick=rng.randrange(100), side=rng.choice(list(Side)),
                lots=rng.randrange(1, 60), ticks=rng.randrange(-10, 11),
                tif=rng.choice(list(TimeInForce)), expire_minutes=rng.randrange(1, 240),
                post_only=False, stp=rng.choice(STP_MODES), client_order_id=None,
            )  # fmt: skip
        elif kind == 5:
            m.amend(pick=rng.randrange(256), ticks=rng.randrange(-20, 21), lots=None)
        elif kind == 6:
            m.cancel(pick=rng.randrange(256), wrong_owner=False, finished=False)
        elif kind == 7:
            m.advance_clock(kind=0, minutes=rng.randrange(1, 180), pick=1)
        elif kind == 8:
            m.report_delivery(pick=rng.randrange(256), share=rng.randrange(121), variant=0)
        else:
            m.deposit(who=rng.randrange(5), cents=rng.randrange(-1, 100_000))
    assert len(m.core.contracts) > 0 and sum(m.rejections.values()) > 0
    expected = m.core.state_hash()
    assert replay(m.ops).state_hash() == expected
    decoded = [decode_operation(encode_operation(op)) for op in m.ops]
    assert decoded == m.ops
    assert replay(decoded).state_hash() == expected
    places = [i for i, op in enumerate(m.ops) if isinstance(op, PlaceOrder)]
    dropped = m.ops[: places[-1]] + m.ops[places[-1] + 1 :]
    assert replay(dropped).state_hash() != expected
