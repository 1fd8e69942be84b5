"""Run the demo market end to end through :class:`api.service.ExchangeService`.

Every state change is an :mod:`exchange.operations` record submitted to the service, which
applies it to the core and commits it to the database exactly as the HTTP API does. The
demo only *reads* the core between steps (books, orders, contracts), as the API's GET
routes do. The simulated clock starts at :data:`api.demo.scenario.START` and moves only by
``AdvanceClock``; randomness comes from ``random.Random`` seeded from the demo seed.

Timeline: tiers list hourly windows 12 hours ahead and close each one an hour before it
starts. The demo steps the clock (20 minutes by default); at each step traders place
orders in every open window, sellers report delivery of the windows that ended, and the
exchange settles each window an hour after it ends. After ``days`` days trading stops:
the forward curve of the windows still listed is recorded, the tiers are suspended, and
the clock runs on until every contract has settled. Traders then withdraw half their cash.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from api.db.store import Store
from api.demo.agents import (
    Role,
    buyer_role,
    maker_quotes,
    maker_role,
    pool_supply,
    seller_role,
    zi_order,
)
from api.demo.equilibrium import Equilibrium, equilibrium
from api.demo.scenario import (
    CLASSES,
    CONFIRMED_MODELS,
    LOT,
    START_US,
    TIERS,
    MakerSpec,
    Scenario,
    SellerSpec,
    build_scenario,
)
from api.service import ExchangeService, Submission
from exchange.core import ExchangeCore, OrderState, Rejected
from exchange.ids import AccountId, Symbol, Timestamp
from exchange.invariants import InvariantViolation
from exchange.ledger import EXCHANGE, AccountKind
from exchange.operations import (
    AddPool,
    AdvanceClock,
    ConfirmHardware,
    CreateAccount,
    Deposit,
    Operation,
    RegisterSite,
    ReportDelivery,
    UpdateTier,
    Withdraw,
)
from exchange.orders import Side
from exchange.products import HOUR_US
from exchange.settlement import Contract, ContractState
from exchange.units import Money, Price, Quantity
from pricing import (
    CurvePoint,
    IndexValue,
    PricingError,
    TradePrint,
    family_index,
    forward_curve,
    gco2_per_scu,
    pool_ineligibility,
    precision_family,
    scu_per_pf_hour,
    tier_index,
)

REFERENCE = {t.code: t.reference_price for t in TIERS}

__all__ = ["DemoError", "DemoResult", "Progress", "TradeRecord", "run_demo"]

MINUTE_US = 60_000_000
Progress = Callable[[int, int, str], None]


class DemoError(RuntimeError):
    """The demo cannot run (e.g. the database already holds an exchange)."""


@dataclass(frozen=True, slots=True)
class TradeRecord:
    contract_id: int
    symbol: str
    tier: str
    window_start: int
    time: int
    price: int
    quantity: int
    buyer: str
    seller: str
    buyer_value: int
    seller_cost: int
    buyer_fee_bps: int
    seller_fee_bps: int
    seller_site: str
    seller_grade: str
    seller_gco2_per_scu: Fraction | None
    delivered: int
    seller_paid: int
    refunded: int
    penalty: int
    fees: int


@dataclass(frozen=True, slots=True)
class WindowResult:
    symbol: str
    tier: str
    window_start: int
    complete: bool  # its trading session ended (gate closed) during the run
    equilibrium: Equilibrium


@dataclass(frozen=True, slots=True)
class DepthSnapshot:
    symbol: str
    time: int
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]
    reference: int | None
    band: tuple[int, int]


@dataclass(frozen=True, slots=True)
class EligibilityRow:
    site: str
    region: str
    hardware: str
    grade: str
    gco2_per_scu: Fraction | None
    tiers: dict[str, str]  # tier -> "rated PF" or the ineligibility code


@dataclass
class DemoResult:
    seed: int
    days: int
    traders: int
    step_minutes: int
    start: int
    end: int
    settled_at: int
    scenario: Scenario
    tier_info: list[dict[str, str]] = field(default_factory=list)
    scu_factor: dict[str, Fraction] = field(default_factory=dict)
    eligibility: list[EligibilityRow] = field(default_factory=list)
    trades: list[TradeRecord] = field(default_factory=list)
    windows: list[WindowResult] = field(default_factory=list)
    depth: DepthSnapshot | None = None
    curves: dict[str, list[CurvePoint]] = field(default_factory=dict)
    tier_indices: dict[str, IndexValue | None] = field(default_factory=dict)
    family_indices: dict[str, IndexValue | None] = field(default_factory=dict)
    rejections: Counter[str] = field(default_factory=Counter)
    orders_placed: int = 0
    operations: int = 0
    operations_logged: int = 0
    deliveries_reported: int = 0
    deposits: int = 0
    withdrawals: int = 0
    balances_total: int = 0
    fees_account: int = 0
    invariants_ok: bool = False
    invariants_message: str = ""
    open_contracts: int = 0
    state_hash: str = ""


class _Demo:
    def __init__(
        self,
        service: ExchangeService,
        scenario: Scenario,
        step_minutes: int,
        progress: Progress | None,
    ) -> None:
        self.service = service
        self.core: ExchangeCore = service.core
        self.scenario = scenario
        self.seed = scenario.seed
        self.step_us = step_minutes * MINUTE_US
        self.progress = progress
        self.rng = random.Random(f"suanli-demo:{scenario.seed}:flow")
        self.roles: dict[str, list[Role]] = {}  # symbol -> roles
        self.role_of: dict[tuple[int, str], Role] = {}  # (account, symbol) -> role
        self.open_orders: dict[tuple[int, str], list[int]] = {}
        self.seen_contracts = 0
        # Every contract made, by id: the core retires settled ones with their instrument.
        self.contracts: dict[int, Contract] = {}
        self.reported: set[int] = set()
        self.result = DemoResult(
            seed=scenario.seed,
            days=scenario.days,
            traders=len(scenario.buyers),
            step_minutes=step_minutes,
            start=START_US,
            end=START_US + scenario.days * 24 * HOUR_US,
            settled_at=0,
            scenario=scenario,
        )
        self.name_of: dict[int, str] = {}
        self.base_seq = service.seq  # the service's own genesis: its catalog and clock
        self.showcase: str | None = None
        self.showcase_at = 0

    # ------------------------------------------------------------------ plumbing
    def run(self, op: Operation) -> object:
        self.result.operations += 1
        return self.service.run(op)

    def submit(self, ops: list[Operation]) -> list[Submission]:
        if not ops:
            return []
        items = self.service.execute([Submission(op) for op in ops])
        self.result.operations += len(items)
        for item in items:
            if item.error is not None:
                self.result.rejections[item.error.code] += 1
        return items

    # ------------------------------------------------------------------ set-up
    def setup(self) -> None:
        run = self.run
        run(CreateAccount("exchange-admin", "admin"))
        for model_id in CONFIRMED_MODELS:
            run(ConfirmHardware(model_id))
        for rule in CLASSES:
            run(rule)
        for tier in TIERS:
            run(tier)
        core = self.core
        holders: list[SellerSpec | MakerSpec] = [*self.scenario.sellers, *self.scenario.makers]
        for holder in holders:
            # Sellers and market makers both own one site with one pool.
            holder.account_id = self._account(holder.name, holder.deposit)
            site = run(
                RegisterSite(
                    owner=AccountId(holder.account_id),
                    name=holder.site.name,
                    region=holder.site.region,
                    pue=holder.site.pue,
                    green_share=holder.site.green_share,
                    location=holder.site.location,
                )
            )
            holder.site_id = site.id  # type: ignore[attr-defined]
            pool = run(
                AddPool(
                    AccountId(holder.account_id),
                    holder.site_id,
                    holder.site.hardware_id,
                    holder.devices,
                )
            )
            holder.pool_id = pool.id  # type: ignore[attr-defined]
        # Buyers' demand: together about 1.25 x the sellers' offered capacity per window.
        supply: Counter[str] = Counter()
        for seller in self.scenario.sellers:
            model = core.query.models()[seller.site.hardware_id]
            for plan in seller.site.plans:
                supply[plan.tier] += pool_supply(model, seller.devices, plan.tier, plan.share_pct)[
                    1
                ]
        per_tier = Counter(b.tier for b in self.scenario.buyers)
        for buyer in self.scenario.buyers:
            share = supply[buyer.tier] * 125 // 100 // per_tier[buyer.tier]
            buyer.demand = max(LOT, share // LOT * LOT)
            # The budget: cash for some windows of full demand at the reference price.
            buyer.deposit *= buyer.demand * REFERENCE[buyer.tier]
            buyer.account_id = self._account(buyer.name, buyer.deposit)
        self._describe_products()

    def _account(self, name: str, deposit: int) -> int:
        account = self.run(CreateAccount(name, "trader"))
        account_id: int = account.id  # type: ignore[attr-defined]
        self.name_of[account_id] = name
        self.run(Deposit(AccountId(account_id), Money(deposit)))
        self.result.deposits += deposit
        return account_id

    def _describe_products(self) -> None:
        core = self.core
        for tier in TIERS:
            record = core.query.known_tier(tier.code)
            members = core.query.class_members(tier.gpu_class)
            factor = scu_per_pf_hour(record.tier.precision, members, core.query.models())
            self.result.scu_factor[tier.code] = factor
            self.result.tier_info.append(
                {
                    "tier": tier.code,
                    "precision": tier.precision,
                    "class": tier.gpu_class,
                    "min_grade": tier.min_green_grade or "-",
                    "roofline": f"{tier.arithmetic_intensity} op/B"
                    if tier.arithmetic_intensity
                    else "-",
                    "scu_per_pf_hour": str(Decimal(factor.numerator) / Decimal(factor.denominator)),
                    "members": ", ".join(members),
                }
            )
        seen: set[str] = set()
        for seller in self.scenario.sellers:
            if seller.site.key in seen:
                continue
            seen.add(seller.site.key)
            site = core.query.known_site(seller.site_id).site
            model = core.query.models()[seller.site.hardware_id]
            verdicts: dict[str, str] = {}
            for tier in TIERS:
                record = core.query.known_tier(tier.code)
                why = pool_ineligibility(
                    core.query.known_pool(seller.pool_id).as_pricing_pool(),
                    {str(seller.site_id): site},
                    core.query.models(),
                    record.tier,
                    core.query.class_members(tier.gpu_class),
                )
                if why is None:
                    rated = core.query.pool_rated_pf(
                        core.query.known_pool(seller.pool_id), record.tier
                    )
                    verdicts[tier.code] = f"{float(rated):.4f} PF"
                else:
                    verdicts[tier.code] = why
            self.result.eligibility.append(
                EligibilityRow(
                    seller.site.name,
                    site.region.value,
                    model.model,
                    site.green_grade.label,
                    _gco2(core, seller.site.hardware_id, site),
                    verdicts,
                )
            )

    # ------------------------------------------------------------------ roles
    def _roles(self, symbol: str) -> list[Role]:
        roles = self.roles.get(symbol)
        if roles is not None:
            return roles
        inst = self.core.query.instrument(symbol)
        tier = inst.instrument.tier.code
        hour = (inst.instrument.window.start // HOUR_US) % 24
        roles = []
        for seller in self.scenario.sellers:
            model = self.core.query.models()[seller.site.hardware_id]
            for plan in seller.site.plans:
                if plan.tier == tier:
                    roles.append(
                        seller_role(self.seed, seller, model, tier, plan.share_pct, symbol, hour)
                    )
        roles.extend(
            buyer_role(self.seed, b, symbol, hour) for b in self.scenario.buyers if b.tier == tier
        )
        roles.extend(
            maker_role(self.seed, m, symbol, hour) for m in self.scenario.makers if m.tier == tier
        )
        roles = [r for r in roles if r.limit > 0]
        self.roles[symbol] = roles
        for role in roles:
            self.role_of[(role.account_id, symbol)] = role
        return roles

    def _open_quantity(self, role: Role, side: Side) -> int:
        key = (role.account_id, role.symbol)
        ids = self.open_orders.get(key)
        if not ids:
            return 0
        order = self.core.query.known_order
        still = [oid for oid in ids if order(oid).is_open]
        self.open_orders[key] = still
        return sum(order(oid).remaining for oid in still if order(oid).side is side)

    def _absorb_contracts(self) -> None:
        query = self.core.query
        total = query.contract_count()
        for cid in range(self.seen_contracts + 1, total + 1):
            c = self.contracts[cid] = query.known_contract(cid)
            buyer = self.role_of[(c.buyer, c.symbol)]
            seller = self.role_of[(c.seller, c.symbol)]
            buyer.filled_buy += c.quantity
            seller.filled_sell += c.quantity
        self.seen_contracts = total

    # ------------------------------------------------------------------ a step
    def step(self, now: int, then: int, trading: bool) -> None:
        """Act at ``now`` (delivery reports, orders), then move the clock to ``then``: one
        commit, unless the book is to be photographed before the clock moves."""
        ops = self._report_deliveries(now)
        if trading:
            ops.extend(self._orders(now))
        showcase = self.showcase is not None and now == self.showcase_at
        if not showcase:
            ops.append(AdvanceClock(Timestamp(then)))
        for item in self.submit(ops):
            if isinstance(item.outcome, OrderState):
                self.result.orders_placed += 1
                order = item.outcome
                if order.is_open:
                    self.open_orders.setdefault((order.account_id, order.symbol), []).append(
                        order.id
                    )
        if showcase:
            self._snapshot_depth(now)
            self.submit([AdvanceClock(Timestamp(then))])
        self._absorb_contracts()

    def _orders(self, now: int) -> list[Operation]:
        core = self.core
        open_symbols = sorted(core.query.open_symbols())
        ops: list[Operation] = []
        for symbol in open_symbols:
            market = core.query.market(symbol)
            if market is None:
                continue
            band = (market.band_low, market.band_high)
            reference = (
                market.reference_price
                or core.query.known_tier(market.instrument.tier.code).reference
            )
            roles = self._roles(symbol)
            for role in roles:
                if role.side is None:
                    ops.extend(maker_quotes(role, reference, band, now, self.step_us))
            traders = [r for r in roles if r.side is not None]
            self.rng.shuffle(traders)
            for role in traders:  # each ZI trader draws a fresh limit every step
                assert role.side is not None
                order = zi_order(
                    self.rng, role, self._open_quantity(role, role.side), band, now, self.step_us
                )
                if order is not None:
                    ops.append(order)
        return ops

    def _report_deliveries(self, now: int) -> list[Operation]:
        core = self.core
        ops: list[Operation] = []
        for cid in range(1, self.seen_contracts + 1):
            if cid in self.reported:
                continue
            c = self.contracts[cid]
            if c.state is not ContractState.DELIVERING:
                if c.state is ContractState.SETTLED:
                    self.reported.add(cid)
                continue
            inst = core.query.instrument(c.symbol)
            if inst.instrument.window.end > now:
                continue
            self.reported.add(cid)
            role = self.role_of[(c.seller, c.symbol)]
            pct = self._delivery_pct(c.seller)
            if pct == 0:
                continue  # never reports: missing telemetry counts as no delivery
            pool = core.query.known_pool(role.pool_id)
            rated = core.query.pool_rated_pf(pool, inst.instrument.tier)
            needed = Fraction(c.quantity, 1_000_000) * 3600 / rated  # device-seconds
            seconds = math.ceil(needed) if pct == 100 else math.floor(needed * pct / 100)
            seconds = min(seconds, pool.count * 3600 * len(inst.hours))
            ops.append(ReportDelivery(AccountId(c.seller), cid, pool.id, seconds))
        self.result.deliveries_reported += len(ops)
        return ops

    def _delivery_pct(self, account_id: int) -> int:
        for seller in self.scenario.sellers:
            if seller.account_id == account_id:
                return seller.delivery_pct
        return 100  # market makers deliver in full

    def _snapshot_depth(self, now: int) -> None:
        assert self.showcase is not None
        market = self.core.query.market(self.showcase)
        if market is None:
            return
        book = market.book
        self.result.depth = DepthSnapshot(
            self.showcase,
            now,
            [(int(p), int(q)) for p, q in book.depth(Side.BUY)],
            [(int(p), int(q)) for p, q in book.depth(Side.SELL)],
            market.reference_price,
            (market.band_low, market.band_high),
        )

    # ------------------------------------------------------------------ the run
    def simulate(self) -> DemoResult:
        result = self.result
        self.setup()
        end = result.end
        # Book depth of the fp16 window at 14:00 on the last day, 3 hours before delivery.
        day = self.scenario.days - 1
        showcase_start = START_US + (day * 24 + 14) * HOUR_US
        from exchange.core import window_symbol

        self.showcase = window_symbol(TIERS[0].code, showcase_start)
        self.showcase_at = showcase_start - 3 * HOUR_US
        steps = (end - START_US) // self.step_us
        total = steps
        now = START_US
        for n in range(steps):
            self.step(now, now + self.step_us, trading=True)
            now += self.step_us
            if self.progress is not None:
                self.progress(n + 1, total, "trading")
        self._record_market_at_end(now)
        for tier in TIERS:
            self.run(UpdateTier(tier.code, status="suspended"))
        # Run the clock on until every contract has been delivered and settled.
        last_end = max(
            (
                self.core.query.instrument(c.symbol).instrument.window.end
                for c in self.contracts.values()
            ),
            default=now,
        )
        settle_by = last_end + self.core.query.grace_us()
        while now < settle_by:
            then = min(now + self.step_us, settle_by)
            self.step(now, then, trading=False)
            now = then
        self.step(now, now, trading=False)  # the last reports cannot be due any more
        result.settled_at = now
        self._withdraw()
        self._collect()
        return result

    def _record_market_at_end(self, now: int) -> None:
        core = self.core
        result = self.result
        for tier in TIERS:
            record = core.query.known_tier(tier.code)
            items = core.query.curve_inputs(tier.code, open_only=True)
            result.curves[tier.code] = forward_curve(items)
            result.tier_indices[tier.code] = tier_index(record.trades, now)  # type: ignore[arg-type]
        tier_of = {}
        trades: list[TradePrint] = []
        prints: dict[str, list[TradePrint]] = {}
        for c in self.contracts.values():  # in id order: each instrument's in trade order
            print_ = TradePrint(
                Symbol(c.symbol), Price(c.price), Quantity(c.quantity), Timestamp(c.created_at)
            )
            prints.setdefault(c.symbol, []).append(print_)
        for inst in core.query.instruments():
            tier_of[inst.symbol] = inst.instrument.tier.code
            trades.extend(prints.get(inst.symbol, ()))
        trades.sort(key=lambda t: (t.ts, t.symbol))
        families = sorted(
            {precision_family(core.query.known_tier(t.code).tier.precision) for t in TIERS}
        )
        for family in families:
            members = {
                s: code
                for s, code in tier_of.items()
                if precision_family(core.query.known_tier(code).tier.precision) == family
            }
            result.family_indices[family] = family_index(
                trades,
                members,
                result.scu_factor,
                Timestamp(now),
            )

    def _withdraw(self) -> None:
        balance = self.core.query.balance
        ops: list[Operation] = []
        for account_id in sorted(self.name_of):
            half = balance(account_id, AccountKind.AVAILABLE) // 2
            if half > 0:
                ops.append(Withdraw(AccountId(account_id), Money(half)))
        for item in self.submit(ops):
            if item.error is None:
                assert isinstance(item.op, Withdraw)
                self.result.withdrawals += item.op.amount

    def _collect(self) -> None:
        core = self.core
        result = self.result
        try:
            core.check()
            result.invariants_ok = True
            result.invariants_message = "ExchangeCore.check() passed"
        except InvariantViolation as exc:
            result.invariants_message = f"ExchangeCore.check() FAILED: {exc}"
        result.state_hash = core.state_hash()
        result.balances_total = sum(
            v for _, kind, v in core.query.ledger_balances() if kind is not AccountKind.EXTERNAL
        )
        result.fees_account = core.query.balance(EXCHANGE, AccountKind.FEES)
        result.operations_logged = self.service.store.last_seq() - self.base_seq
        result.open_contracts = sum(
            1 for c in self.contracts.values() if c.state is not ContractState.SETTLED
        )
        seller_site = {s.account_id: s for s in self.scenario.sellers}
        maker_site = {m.account_id: m for m in self.scenario.makers}
        for c in sorted(self.contracts.values(), key=lambda x: x.id):
            inst = core.query.instrument(c.symbol)
            buyer = self.role_of[(c.buyer, c.symbol)]
            seller = self.role_of[(c.seller, c.symbol)]
            spec = seller_site.get(c.seller) or maker_site[c.seller]
            site = core.query.known_site(spec.site_id).site
            result.trades.append(
                TradeRecord(
                    contract_id=c.id,
                    symbol=c.symbol,
                    tier=inst.instrument.tier.code,
                    window_start=inst.instrument.window.start,
                    time=c.created_at,
                    price=c.price,
                    quantity=c.quantity,
                    buyer=self.name_of[c.buyer],
                    seller=self.name_of[c.seller],
                    buyer_value=buyer.value,
                    seller_cost=seller.value,
                    buyer_fee_bps=c.buyer_fee_bps,
                    seller_fee_bps=c.seller_fee_bps,
                    seller_site=spec.site.name,
                    seller_grade=site.green_grade.label,
                    seller_gco2_per_scu=_gco2(core, spec.site.hardware_id, site),
                    delivered=c.delivered_quantity,
                    seller_paid=c.seller_paid,
                    refunded=c.refunded,
                    penalty=c.penalty_paid,
                    fees=c.fees,
                )
            )
        for symbol in sorted(self.roles):
            inst = core.query.instrument(symbol)
            roles = self.roles[symbol]
            demand = [(r.value, r.limit) for r in roles if r.side is not Side.SELL]
            supply = [(r.value, r.limit) for r in roles if r.side is not Side.BUY]
            result.windows.append(
                WindowResult(
                    symbol,
                    inst.instrument.tier.code,
                    inst.instrument.window.start,
                    inst.instrument.gate_closure <= result.end,
                    equilibrium(demand, supply),
                )
            )


def _gco2(core: ExchangeCore, hardware_id: str, site: object) -> Fraction | None:
    """gCO2 per SCU of a model at a site; 0 with fully green power even without a TDP."""
    from pricing import Site

    assert isinstance(site, Site)
    if site.carbon_kg_per_kwh == 0:
        return Fraction(0)
    try:
        return gco2_per_scu(
            core.query.models()[hardware_id], site.pue, site.emission_factor, site.green_share
        )
    except PricingError:
        return None


def run_demo(
    *,
    database_url: str,
    seed: int = 7,
    days: int = 3,
    traders: int = 12,
    step_minutes: int = 20,
    progress: Progress | None = None,
) -> DemoResult:
    """Run the whole demo on a fresh database; return everything the report shows."""
    if days < 1:
        raise DemoError("--days must be at least 1")
    if not 60 % step_minutes == 0:
        raise DemoError("the step must divide an hour")
    store = Store(database_url)
    try:
        if store.last_seq() > 0:
            raise DemoError("the database already holds an exchange; the demo needs a fresh one")
        service = ExchangeService(store, clock="simulated", start_us=START_US)
    except BaseException:
        store.close()
        raise
    try:
        scenario = build_scenario(seed, days, traders)
        return _Demo(service, scenario, step_minutes, progress).simulate()
    except Rejected as exc:  # a set-up operation refused: a bug in the scenario
        raise DemoError(f"the exchange refused a set-up operation: {exc.code}: {exc}") from exc
    finally:
        store.close()
