"""The exchange core: one deterministic state machine for everything that changes state.

It composes the matching engine, the ledger, the capacity book, contracts, the hardware
catalog and the product schedule, and applies :mod:`exchange.operations` one at a time:

* every operation is validated completely before anything changes; a refusal raises
  :class:`Rejected` with a stable code and leaves the core exactly as it was;
* time is an input (:class:`~exchange.operations.AdvanceClock`), ids are counters in the
  state, nothing reads a clock or a random source; the hardware catalog is an input too
  (:class:`~exchange.operations.InstallCatalog`, the first operation of an exchange: see
  :mod:`exchange.genesis`), so a core starts empty and reads no file;
* no string with a control character or a lone surrogate gets past :meth:`apply`, and
  every text kept fits the database column that keeps it;
* replaying the same operations on a fresh core rebuilds the same state and the same
  :meth:`ExchangeCore.state_hash` (a hash per component, over every attribute), which is
  how the service recovers after a crash.

Money flows (see docs/settlement.md): an order reserves cash in a two-phase hold, fills
move it to escrow (buyer) and collateral (seller), and settlement after delivery splits
escrow and collateral between seller, buyer and the exchange's fee account.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Any, ClassVar

from exchange.capacity import CapacityBook
from exchange.catalog_log import entry_model
from exchange.decimals import optional_decimal, parse_decimal
from exchange.deliveries import DeliveryBook
from exchange.engine import MatchingEngine, Outcome
from exchange.events import (
    Event,
    InstrumentStateChanged,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    SelfTradePrevented,
    Trade,
)
from exchange.ids import AccountId, OrderId, Symbol, Timestamp
from exchange.invariants import InvariantViolation, check
from exchange.keys import ApiKeyBook, ApiKeyRecord
from exchange.ledger import (
    EXCHANGE,
    AccountKind,
    Ledger,
    LedgerError,
    TransferCode,
)
from exchange.lifecycle import InstrumentEvent, InstrumentState
from exchange.limits import CoreLimits
from exchange.operations import (
    AddHardware,
    AddPool,
    AdvanceClock,
    AmendOrder,
    CancelAll,
    CancelOrder,
    ConfirmHardware,
    CreateAccount,
    CreateGpuClass,
    CreateTier,
    Deposit,
    HaltInstrument,
    InstallCatalog,
    IssueApiKey,
    Operation,
    PlaceOrder,
    RegisterSite,
    ReportDelivery,
    ResumeInstrument,
    RevokeApiKey,
    UpdateTier,
    Withdraw,
)
from exchange.orders import OrderStatus, ResultCode, SelfTradePrevention, Side
from exchange.products import (
    HOUR_US,
    DeliveryWindow,
    GreenGrade,
    Instrument,
    Precision,
    Tier,
    TierError,
    TierStatus,
)
from exchange.records import (
    AccountRecord,
    Changes,
    Fill,
    InstrumentRecord,
    OrderState,
    PoolRecord,
    Rejected,
    SiteRecord,
    TierRecord,
    same_order,
    window_symbol,
)
from exchange.risk import buy_hold, fee, sell_collateral
from exchange.settlement import Contract, ContractState, Liquidity, settlement_legs
from exchange.statehash import canonical, combine, digest
from exchange.text import text_fields, unclean_field
from exchange.units import Price, Quantity
from pricing import (
    MODEL_ID_MAX,
    VENDOR_MAX,
    AcceleratorModel,
    CurveInput,
    FigureSubmission,
    GpuClass,
    ModelSubmission,
    PricingError,
    Quality,
    TradePrint,
    build_model,
    class_members,
    confirm_model,
    delivered_quantity,
    make_site,
    pool_ineligibility,
    rated_pf,
    reference_price,
    to_quantity,
    with_model,
    with_models,
)

__all__ = [
    "DEFAULT_GRACE_US",
    "NOT_STATE",
    "STATE_COMPONENTS",
    "AccountRecord",
    "Changes",
    "ExchangeCore",
    "Fill",
    "InstrumentRecord",
    "OrderState",
    "PoolRecord",
    "Rejected",
    "SiteRecord",
    "TierRecord",
    "replay",
    "same_order",
    "window_symbol",
]

#: A self-trade prevention mode as the plain text an order records (an enumeration's
#: ``value`` is a property, slow on the busiest path).
_STP_TEXT = {mode: mode.value for mode in SelfTradePrevention}

#: Most models one InstallCatalog carries (the packaged catalog has a few dozen).
CATALOG_INSTALL_MAX = 1_000
#: Longest texts the core keeps, each the length of the database column that keeps it
#: (api/db/tables.py), so that no accepted operation can fail to be written.
NAME_MAX = 100  # account, site and GPU class names
LOCATION_MAX = 200
CODE_MAX = 32  # tier and GPU class codes
CLIENT_ORDER_ID_MAX = 64
SITE_DECIMAL_MAX = 20  # a site's PUE, green share and emission factor, as text
#: Vendors or models a GPU class may list.
CLASS_LIST_MAX = 256

#: Reporting grace after a window ends, before final settlement.
DEFAULT_GRACE_US = HOUR_US
MINUTE_US = 60_000_000

# Lifecycle actions, in the order they run when due at the same instant.
_CLOSE, _DELIVER, _SETTLE, _LIST = 1, 2, 3, 4


def _precision(text: str) -> Precision:
    try:
        return Precision(text)
    except ValueError as exc:
        raise Rejected("invalid_precision", f"unknown precision {text[:20]!r}") from exc


#: The state of the core, by component: every attribute of a core is in exactly one
#: component or in :data:`NOT_STATE` (a test holds every attribute to that).
#: ``class_members`` (derived from the classes and the catalog) and the indexes by owner
#: and account (derived from the records they index) are hashed with what they derive
#: from: deterministic, and hashing them also catches an index that drifted.
STATE_COMPONENTS: dict[str, tuple[str, ...]] = {
    "clock": ("now", "grace_us", "_ids"),
    "accounts": ("accounts", "api_keys"),
    "ledger": ("ledger",),
    "catalog": ("catalog",),
    "gpu_classes": ("gpu_classes", "class_members"),
    "tiers": ("tiers",),
    "instruments": ("instruments",),
    "sites": ("sites", "owner_sites"),
    "pools": ("pools", "owner_pools"),
    "orders": ("orders", "client_ids", "account_orders", "open_counts"),
    "contracts": ("contracts", "account_contracts"),
    "deliveries": ("deliveries", "contract_deliveries", "delivery_book"),
    "capacity": ("capacity",),
    "schedule": ("_schedule", "_schedule_seq"),
    "engine": ("engine",),
}

#: Attributes of a core that are not state, and why.
NOT_STATE: dict[str, str] = {
    "limits": "a setting the shell may replace between operations, never state",
    "admitting": "whether refusals added since a log was written apply: off in replay",
    "_pool_caps": "a cache of what pools, sites, tiers and the catalog give, filled by reads",
    "events": "what the last operations changed, until the shell takes it (take_changes)",
    "touched_orders": "what the last operations changed, until the shell takes it",
    "touched_contracts": "what the last operations changed, until the shell takes it",
    "settled_now": "what the last operations changed, until the shell takes it",
}


class ExchangeCore:
    """Accounts, products, books, risk, ledger, contracts and the clock of one exchange."""

    def __init__(
        self,
        *,
        currency: str = "CNY",
        grace_us: int = DEFAULT_GRACE_US,
        limits: CoreLimits | None = None,
    ) -> None:
        # Empty, the clock at 0: everything else comes from operations, the first of
        # which install the catalog and start the clock (exchange.genesis).
        self.now = 0
        self.grace_us = grace_us
        #: Bounds per account: a setting the shell may replace at any time, never state.
        self.limits = CoreLimits() if limits is None else limits
        #: Whether the rules that only refuse (clean text, text and figure sizes,
        #: delivery within a pool's hours) are applied. Off while a log is replayed: a
        #: row an earlier version accepted under its rules must replay, whatever rules
        #: were added since (what the rules refuse never changes the state they allow).
        self.admitting = True
        self.engine = MatchingEngine()
        self.ledger = Ledger(currency)
        self.capacity = CapacityBook()
        self.accounts: dict[int, AccountRecord] = {}
        self.api_keys = ApiKeyBook()
        self.catalog: dict[str, AcceleratorModel] = {}
        self.gpu_classes: dict[str, GpuClass] = {}
        self.class_members: dict[str, tuple[str, ...]] = {}
        self.tiers: dict[str, TierRecord] = {}
        self.instruments: dict[Symbol, InstrumentRecord] = {}
        self.sites: dict[int, SiteRecord] = {}
        self.owner_sites: dict[int, list[int]] = {}  # owner -> its site ids, in order
        self.pools: dict[int, PoolRecord] = {}
        self.owner_pools: dict[int, list[int]] = {}  # owner -> its pool ids, in order
        self.orders: dict[int, OrderState] = {}
        self.client_ids: dict[tuple[int, str], int] = {}
        self.account_orders: dict[int, list[int]] = {}  # account -> its order ids, in order
        self.account_contracts: dict[int, list[int]] = {}  # account -> contract ids
        self.open_counts: dict[tuple[int, str], int] = {}
        self.contracts: dict[int, Contract] = {}
        self.deliveries: list[tuple[int, int, int, int, int]] = []  # contract, pool, ds, qty, ts
        self.contract_deliveries: dict[int, list[tuple[int, int]]] = {}  # -> [(pool, ds)]
        self.delivery_book = DeliveryBook()
        self._schedule: list[tuple[int, int, int, str]] = []
        self._schedule_seq = 0
        self._ids = {"account": 1, "order": 1, "contract": 1, "site": 1, "pool": 1}
        self._pool_caps: dict[tuple[int, str], int] = {}
        # What the last operation changed, for the shell to persist and publish.
        self.events: list[Event] = []
        self.touched_orders: set[int] = set()
        self.touched_contracts: set[int] = set()
        self.settled_now: list[int] = []

    # ================================================================== dispatch
    def apply(self, op: Operation) -> Any:
        """Apply one operation; return its result or raise :class:`Rejected` (no change).

        Before any handler runs, every string the operation carries is checked for
        control characters and lone surrogates (:mod:`exchange.text`), so none reaches
        the state or the log, whichever path the operation came by."""
        kind = type(op)
        handler = self._handlers.get(kind)
        if handler is None:
            raise Rejected("unknown_operation", kind.__name__)
        for name in _TEXT_FIELDS[kind] if self.admitting else ():
            value = getattr(op, name)
            if value is None or (value.__class__ is str and value.isprintable()):
                continue  # the common case, decided in C
            where = unclean_field(op, (name,))
            if where is not None:
                raise Rejected(
                    "invalid_characters",
                    f"{where} holds a control character or a lone surrogate",
                )
        return handler(self, op)

    def take_changes(self) -> Changes:
        """What changed since the last call: for the shell to persist and publish."""
        out = Changes(
            self.events,
            self.touched_orders,
            self.touched_contracts,
            self.settled_now,
            self.ledger.drain(),
        )
        self.events, self.touched_orders, self.touched_contracts = [], set(), set()
        self.settled_now = []
        return out

    def _next_id(self, kind: str) -> int:
        value = self._ids[kind]
        self._ids[kind] = value + 1
        return value

    # ================================================================== accounts
    def _create_account(self, op: CreateAccount) -> AccountRecord:
        name = op.name.strip()
        if not name or len(name) > NAME_MAX:
            raise Rejected("invalid_name", f"an account name is 1 to {NAME_MAX} characters")
        if op.role not in ("trader", "admin"):
            raise Rejected("invalid_role", "role is trader or admin")
        keyed = op.key_prefix is not None or op.key_digest is not None
        if keyed:
            self.api_keys.check_new(op.key_prefix or "", op.key_digest or "", op.key_origin)
        record = AccountRecord(self._next_id("account"), name, op.role, self.now)
        self.accounts[record.id] = record
        if keyed:
            self.api_keys.add(
                record.id, op.key_prefix or "", op.key_digest or "", op.key_origin, self.now
            )
        return record

    def _issue_api_key(self, op: IssueApiKey) -> ApiKeyRecord:
        self.account(op.account_id)
        self.api_keys.check_new(op.prefix, op.digest, op.origin)
        return self.api_keys.add(op.account_id, op.prefix, op.digest, op.origin, self.now)

    def _revoke_api_key(self, op: RevokeApiKey) -> ApiKeyRecord:
        return self.api_keys.revoke(op.key_id, self.now)

    def account(self, account_id: int) -> AccountRecord:
        record = self.accounts.get(account_id)
        if record is None:
            raise Rejected("account_not_found", f"no account {account_id}")
        return record

    def _deposit(self, op: Deposit) -> Any:
        self.account(op.account_id)
        if op.amount <= 0:
            raise Rejected("invalid_amount", "a deposit must be positive")
        return self.ledger.deposit(Timestamp(self.now), op.account_id, op.amount, "deposit")

    def _withdraw(self, op: Withdraw) -> Any:
        self.account(op.account_id)
        if op.amount <= 0:
            raise Rejected("invalid_amount", "a withdrawal must be positive")
        try:
            return self.ledger.withdraw(Timestamp(self.now), op.account_id, op.amount, "withdrawal")
        except LedgerError as exc:
            raise Rejected(exc.code, str(exc)) from exc

    def balances(self, account_id: int) -> dict[str, int]:
        ledger = self.ledger
        return {
            kind.value: ledger.balance(account_id, kind)
            for kind in (
                AccountKind.AVAILABLE,
                AccountKind.HELD,
                AccountKind.ESCROW,
                AccountKind.COLLATERAL,
            )
        }

    # ================================================================== catalog
    def _install_catalog(self, op: InstallCatalog) -> list[AcceleratorModel]:
        """Add the models, or replace the entries of their ids (figures exactly as given;
        an admin's confirmation stays). Every model is checked before any is installed."""
        if not op.models:
            raise Rejected("invalid_catalog", "a catalog installs at least one model")
        if len(op.models) > CATALOG_INSTALL_MAX:
            raise Rejected("invalid_catalog", f"at most {CATALOG_INSTALL_MAX} models at once")
        models = [entry_model(entry) for entry in op.models]
        if len({m.id for m in models}) != len(models):
            raise Rejected("duplicate_model_id", "a model appears twice")
        self.catalog = with_models(self.catalog, models)
        self._catalog_changed()
        return [self.catalog[m.id] for m in models]

    def _add_hardware(self, op: AddHardware) -> AcceleratorModel:
        strict = self.admitting
        figures: dict[Precision, FigureSubmission] = {}
        for key, fig in op.figures.items():
            tflops = parse_decimal(fig.tflops, f"figures.{key}", strict=strict)
            accumulation = _precision(fig.accumulation) if fig.accumulation else None
            figures[_precision(key)] = FigureSubmission(tflops, fig.with_sparsity, accumulation)
        try:
            quality = Quality(op.quality)
        except ValueError as exc:
            raise Rejected("invalid_quality", "quality is V, S, D or U") from exc
        submission = ModelSubmission(
            vendor=op.vendor,
            model=op.model,
            figures=figures,
            memory_gb=optional_decimal(op.memory_gb, "memory_gb", strict=strict),
            memory_bandwidth_gbs=optional_decimal(
                op.memory_bandwidth_gbs, "memory_bandwidth_gbs", strict=strict
            ),
            tdp_w=optional_decimal(op.tdp_w, "tdp_w", strict=strict),
            quality=quality,
            source=op.source,
            id=op.id,
            confirmed=op.confirmed,
        )
        try:
            model = build_model(submission, self.catalog, strict=strict)
        except PricingError as exc:
            raise Rejected(exc.code, str(exc)) from exc
        self.catalog = with_model(self.catalog, model)
        self._catalog_changed()
        return model

    def _confirm_hardware(self, op: ConfirmHardware) -> AcceleratorModel:
        if op.model_id not in self.catalog:
            raise Rejected("hardware_not_found", f"no model {op.model_id}")
        self.catalog = confirm_model(self.catalog, op.model_id)
        self._catalog_changed()
        return self.catalog[op.model_id]

    def _catalog_changed(self) -> None:
        self.class_members = {
            code: class_members(rule, self.catalog) for code, rule in self.gpu_classes.items()
        }
        self._pool_caps.clear()

    def _create_gpu_class(self, op: CreateGpuClass) -> GpuClass:
        if op.code in self.gpu_classes:
            raise Rejected("gpu_class_exists", f"GPU class {op.code} exists")
        if not op.code or len(op.code) > CODE_MAX:
            raise Rejected("invalid_code", f"a class code is 1 to {CODE_MAX} characters")
        if self.admitting and (not op.name.strip() or len(op.name) > NAME_MAX):
            raise Rejected("invalid_name", f"a class name is 1 to {NAME_MAX} characters")
        for names, longest in ((op.vendors, VENDOR_MAX), (op.models, MODEL_ID_MAX)):
            if (
                self.admitting
                and names is not None
                and (len(names) > CLASS_LIST_MAX or any(len(n) > longest for n in names))
            ):
                raise Rejected(
                    "invalid_class",
                    f"at most {CLASS_LIST_MAX} vendors and models, "
                    f"each at most {VENDOR_MAX} and {MODEL_ID_MAX} characters",
                )
        unknown = [m for m in op.models or () if m not in self.catalog]
        if unknown:
            raise Rejected("hardware_not_found", f"unknown models {unknown[:5]}")
        try:
            rule = GpuClass(
                code=op.code,
                name=op.name,
                precision=_precision(op.precision),
                min_dense_tflops=parse_decimal(
                    op.min_dense_tflops, "min_dense_tflops", strict=self.admitting
                ),
                min_memory_gb=parse_decimal(
                    op.min_memory_gb, "min_memory_gb", strict=self.admitting
                ),
                min_memory_bandwidth_gbs=parse_decimal(
                    op.min_memory_bandwidth_gbs, "min_memory_bandwidth_gbs"
                ),
                vendors=frozenset(op.vendors) if op.vendors is not None else None,
                models=frozenset(op.models) if op.models is not None else None,
            )
        except PricingError as exc:
            raise Rejected(exc.code, str(exc)) from exc
        self.gpu_classes[rule.code] = rule
        self.class_members[rule.code] = class_members(rule, self.catalog)
        return rule

    # ================================================================== tiers
    def _create_tier(self, op: CreateTier) -> TierRecord:
        if op.code in self.tiers:
            raise Rejected("tier_exists", f"tier {op.code} exists")
        if op.gpu_class not in self.gpu_classes:
            raise Rejected("gpu_class_not_found", f"no GPU class {op.gpu_class}")
        try:
            if op.min_green_grade is not None and len(op.min_green_grade) > 8:
                raise ValueError("a green grade is 1A to 5A")
            grade = GreenGrade.parse(op.min_green_grade) if op.min_green_grade else None
        except ValueError as exc:
            raise Rejected("invalid_green_grade", str(exc)) from exc
        regions = tuple(op.regions)
        valid_regions = {"north", "northeast", "east", "central", "northwest", "south", "southwest"}
        repeated = self.admitting and len(set(regions)) != len(regions)
        if any(r not in valid_regions for r in regions) or repeated:
            raise Rejected("invalid_region", f"regions are distinct, among {sorted(valid_regions)}")
        if op.window_hours not in (1, 2, 3, 4, 6, 8, 12, 24):
            raise Rejected("invalid_tier", "window_hours must divide 24")
        try:
            tier = Tier(
                code=op.code,
                precision=_precision(op.precision),
                gpu_class=op.gpu_class,
                tick=Price(op.tick),
                lot=Quantity(op.lot),
                min_quantity=Quantity(op.min_quantity),
                max_quantity=Quantity(op.max_quantity),
                price_band_bps=op.price_band_bps,
                maker_fee_bps=op.maker_fee_bps,
                taker_fee_bps=op.taker_fee_bps,
                min_green_grade=grade,
                regions=regions,
                shortfall_penalty_bps=op.shortfall_penalty_bps,
                arithmetic_intensity=op.arithmetic_intensity,
                window_hours=op.window_hours,
                list_ahead_hours=op.list_ahead_hours,
                gate_closure_minutes=op.gate_closure_minutes,
                reference_price=Price(op.reference_price),
            )
        except TierError as exc:
            raise Rejected("invalid_tier", str(exc)) from exc
        if op.code.count("-") > 8 or not all(c.isalnum() or c == "-" for c in op.code):
            raise Rejected("invalid_code", "a tier code is letters, digits and dashes")
        window_us = tier.window_hours * HOUR_US
        gate_us = tier.gate_closure_minutes * MINUTE_US
        # First window whose gate is still ahead.
        start = -(-(self.now + gate_us + 1) // window_us) * window_us
        record = TierRecord(
            tier,
            Price(op.reference_price),
            TierStatus.ACTIVE,
            self.now,
            start,
            Price(op.reference_price),
        )
        self.tiers[tier.code] = record
        self._list_due(record)
        return record

    def _list_due(self, record: TierRecord) -> None:
        """List every window of an active tier whose listing time has come."""
        tier = record.tier
        window_us = tier.window_hours * HOUR_US
        ahead_us = tier.list_ahead_hours * HOUR_US
        gate_us = tier.gate_closure_minutes * MINUTE_US
        while record.status is TierStatus.ACTIVE and record.next_start - ahead_us <= self.now:
            start = record.next_start
            record.next_start += window_us
            if start - gate_us <= self.now:
                continue  # its gate already closed: never listed
            self._list_window(record, start, start + window_us, start - gate_us)
        if record.status is TierStatus.ACTIVE:
            self._at(record.next_start - ahead_us, _LIST, tier.code)

    def _list_window(self, record: TierRecord, start: int, end: int, gate: int) -> None:
        symbol = window_symbol(record.tier.code, start)
        if symbol in self.instruments:
            return
        instrument = Instrument(
            symbol, record.tier, DeliveryWindow(Timestamp(start), Timestamp(end)), Timestamp(gate)
        )
        hours = tuple(range(start, end, HOUR_US))
        self.instruments[symbol] = InstrumentRecord(instrument, hours)
        self._engine(self.engine.list_instrument(instrument, record.reference))
        self._engine(self.engine.transition(symbol, InstrumentEvent.OPEN))
        self._at(gate, _CLOSE, symbol)
        self._at(start, _DELIVER, symbol)
        self._at(end + self.grace_us, _SETTLE, symbol)

    def _update_tier(self, op: UpdateTier) -> TierRecord:
        record = self.tiers.get(op.code)
        if record is None:
            raise Rejected("tier_not_found", f"no tier {op.code}")
        status = record.status
        if op.status is not None:
            try:
                status = TierStatus(op.status)
            except ValueError as exc:
                raise Rejected("invalid_status", "status is active, suspended or retired") from exc
            if record.status is TierStatus.RETIRED and status is not TierStatus.RETIRED:
                raise Rejected("tier_retired", "a retired tier stays retired")
        changes: dict[str, Any] = {}
        for name in (
            "maker_fee_bps",
            "taker_fee_bps",
            "price_band_bps",
            "shortfall_penalty_bps",
            "list_ahead_hours",
        ):
            value = getattr(op, name)
            if value is not None:
                changes[name] = value
        if op.reference_price is not None:
            changes["reference_price"] = Price(op.reference_price)
        tier = record.tier
        if changes:
            try:
                tier = dataclasses.replace(tier, **changes)
            except TierError as exc:
                raise Rejected("invalid_tier", str(exc)) from exc
        # Validated: apply.
        old_status = record.status
        record.tier = tier
        if op.reference_price is not None:
            record.admin_price = Price(op.reference_price)
            if not record.trades:
                record.reference = record.admin_price
            record.dirty = True
        record.status = status
        open_like = (InstrumentState.OPEN, InstrumentState.HALTED)
        for inst in self.instruments.values():
            if inst.instrument.tier.code != tier.code or inst.state not in open_like:
                continue
            if status is TierStatus.SUSPENDED and inst.state is InstrumentState.OPEN:
                self._engine(self.engine.transition(inst.symbol, InstrumentEvent.HALT))
            elif (
                status is TierStatus.ACTIVE
                and old_status is TierStatus.SUSPENDED
                and inst.state is InstrumentState.HALTED
            ):
                self._engine(self.engine.transition(inst.symbol, InstrumentEvent.RESUME))
        if status is TierStatus.ACTIVE and old_status is not TierStatus.ACTIVE:
            self._list_due(record)
        self._refresh_reference(record, force=True)
        return record

    def _halt(self, op: HaltInstrument) -> InstrumentRecord:
        return self._move_instrument(op.symbol, InstrumentState.OPEN, InstrumentEvent.HALT)

    def _resume(self, op: ResumeInstrument) -> InstrumentRecord:
        return self._move_instrument(op.symbol, InstrumentState.HALTED, InstrumentEvent.RESUME)

    def _move_instrument(
        self, symbol: str, required: InstrumentState, event: InstrumentEvent
    ) -> InstrumentRecord:
        inst = self.instrument(symbol)
        if inst.state is not required:
            raise Rejected("invalid_transition", f"{symbol} is {inst.state.value}")
        self._engine(self.engine.transition(inst.symbol, event))
        return inst

    def curve_inputs(self, tier_code: str, *, open_only: bool = False) -> list[CurveInput]:
        """Each listed window of a tier with its best bid and ask, last and reference price:
        the inputs of :func:`pricing.forward_curve`."""
        record = self.tiers[tier_code]
        items = []
        for inst in self.instruments.values():
            if inst.instrument.tier.code != tier_code:
                continue
            if open_only and inst.state is not InstrumentState.OPEN:
                continue
            market = self.engine.market(inst.symbol)
            book = market.book if market else None
            items.append(
                CurveInput(
                    inst.symbol,
                    inst.instrument.window.start,
                    inst.instrument.window.end,
                    book.best_bid if book else None,
                    book.best_ask if book else None,
                    inst.last_price,
                    market.reference_price if market else record.reference,
                )
            )
        return items

    def instrument(self, symbol: str) -> InstrumentRecord:
        inst = self.instruments.get(Symbol(symbol))
        if inst is None:
            raise Rejected("instrument_not_found", f"no instrument {symbol}")
        return inst

    # ================================================================== sites and pools
    def _register_site(self, op: RegisterSite) -> SiteRecord:
        self.account(op.owner)
        name = op.name.strip()
        if not name or len(name) > NAME_MAX:
            raise Rejected("invalid_name", f"a site name is 1 to {NAME_MAX} characters")
        if op.location is not None and len(op.location) > LOCATION_MAX:
            raise Rejected("invalid_location", f"a location is at most {LOCATION_MAX} characters")
        column = SITE_DECIMAL_MAX
        strict = self.admitting
        pue = parse_decimal(op.pue, "pue", column=column, strict=strict)
        green = parse_decimal(op.green_share, "green_share", column=column, strict=strict)
        factor = optional_decimal(
            op.emission_factor, "emission_factor", column=column, strict=strict
        )
        site_id = self._ids["site"]
        try:
            site = make_site(str(site_id), op.region, pue, green, factor)
        except PricingError as exc:
            raise Rejected(exc.code, str(exc)) from exc
        if len(self.owner_sites.get(op.owner, ())) >= self.limits.sites:
            raise Rejected("too_many_sites", f"an account keeps at most {self.limits.sites} sites")
        self._next_id("site")
        record = SiteRecord(site_id, op.owner, name, op.location, site)
        self.sites[site_id] = record
        self.owner_sites.setdefault(op.owner, []).append(site_id)
        return record

    def _add_pool(self, op: AddPool) -> PoolRecord:
        site = self.sites.get(op.site_id)
        if site is None or site.owner != op.owner:
            raise Rejected("site_not_found", f"no site {op.site_id}")
        if op.hardware_id not in self.catalog:
            raise Rejected("hardware_not_found", f"no hardware {op.hardware_id}")
        if not 1 <= op.count <= 1_000_000:
            raise Rejected("invalid_count", "a pool holds 1 to 1,000,000 devices")
        if len(self.owner_pools.get(op.owner, ())) >= self.limits.pools:
            raise Rejected("too_many_pools", f"an account keeps at most {self.limits.pools} pools")
        record = PoolRecord(self._next_id("pool"), op.owner, op.site_id, op.hardware_id, op.count)
        self.pools[record.id] = record
        self.owner_pools.setdefault(op.owner, []).append(record.id)
        return record

    def pool_rated_pf(self, pool: PoolRecord, tier: Tier) -> Fraction:
        return rated_pf(
            self.catalog[pool.hardware_id],
            tier.precision,
            arithmetic_intensity=tier.arithmetic_intensity,
        )

    def _pool_cap(self, pool: PoolRecord, tier: Tier) -> int:
        """Quantity units of ``tier`` the pool delivers per hour; 0 when not eligible."""
        key = (pool.id, tier.code)
        cap = self._pool_caps.get(key)
        if cap is None:
            reason = pool_ineligibility(
                pool.as_pricing_pool(),
                {str(s.id): s.site for s in (self.sites[pool.site_id],)},
                self.catalog,
                tier,
                self.class_members.get(tier.gpu_class, ()),
            )
            cap = 0 if reason else to_quantity(self.pool_rated_pf(pool, tier) * pool.count)
            self._pool_caps[key] = cap
        return cap

    def eligible_pools(self, owner: int, tier: Tier) -> list[tuple[int, int]]:
        """[(pool id, quantity units per hour)] of ``owner``'s pools that deliver ``tier``."""
        out = []
        for pool_id in self.owner_pools.get(owner, ()):
            cap = self._pool_cap(self.pools[pool_id], tier)
            if cap > 0:
                out.append((pool_id, cap))
        return out

    def capacity_view(self, owner: int, symbol: str) -> dict[str, int]:
        """Total, held, committed and available quantity of ``owner`` in one window."""
        inst = self.instrument(symbol)
        tier = self.tiers[inst.instrument.tier.code].tier
        pools = self.eligible_pools(owner, tier)
        hours = len(inst.hours)
        total = sum(cap * hours for _, cap in pools)
        held = sum(
            a.quantity
            for oid, a in self.capacity.reserved.items()
            if a.owner == owner and self.orders[oid].symbol == symbol
        )
        committed = sum(
            self.contracts[cid].quantity
            for cid in inst.contract_ids
            if self.contracts[cid].seller == owner and cid in self.capacity.committed
        )
        available = self.capacity.available_quantity(pools, inst.hours)
        return {"total": total, "held": held, "committed": committed, "available": available}

    # ================================================================== orders
    def _place_order(self, op: PlaceOrder) -> OrderState:
        # The busiest operation: attribute and method lookups are hoisted into locals.
        account_id = op.account_id
        if account_id not in self.accounts:
            raise Rejected("account_not_found", f"no account {account_id}")
        client_order_id = op.client_order_id
        if client_order_id is not None:
            if not 1 <= len(client_order_id) <= CLIENT_ORDER_ID_MAX:
                raise Rejected(
                    "invalid_client_order_id",
                    f"client_order_id is 1 to {CLIENT_ORDER_ID_MAX} characters",
                )
            existing = self.client_ids.get((account_id, client_order_id))
            if existing is not None:
                original = self.orders[existing]
                if not same_order(original, op):
                    raise Rejected(
                        "client_order_id_reused",
                        "this client_order_id was used for a different order",
                    )
                return original  # idempotent resubmission: no new order
        inst = self.instruments.get(op.symbol)  # type: ignore[call-overload]
        if inst is None:
            raise Rejected("instrument_not_found", f"no instrument {op.symbol}")
        symbol = inst.instrument.symbol
        engine = self.engine
        order_id = self._ids["order"]
        side = op.side
        quantity = op.quantity
        code, limit = engine.validate_place(
            order_id,  # type: ignore[arg-type]
            symbol,
            side,
            op.price,  # type: ignore[arg-type]
            quantity,  # type: ignore[arg-type]
            op.order_type,
            op.time_in_force,
            op.expire_time,  # type: ignore[arg-type]
            op.post_only,
        )
        if code is not ResultCode.OK:
            raise Rejected(code.code)
        key = (account_id, symbol)
        open_count = self.open_counts.get(key, 0)
        limits = self.limits
        if open_count >= limits.open_orders_per_instrument:
            raise Rejected(
                "too_many_open_orders",
                f"at most {limits.open_orders_per_instrument} open orders in one instrument",
            )
        if engine.open_order_count(account_id) >= limits.open_orders:  # type: ignore[arg-type]
            raise Rejected("too_many_open_orders", f"at most {limits.open_orders} open orders")
        tier = self.tiers[inst.instrument.tier.code].tier
        maker_bps, taker_bps = tier.maker_fee_bps, tier.taker_fee_bps
        penalty_bps = tier.shortfall_penalty_bps
        ledger = self.ledger
        pools: list[tuple[int, int]] = []
        if side is Side.BUY:
            risk_price = int(limit)
            need = buy_hold(risk_price, quantity, max(maker_bps, taker_bps))
        else:
            best_bid = engine.book(symbol).best_bid
            risk_price = max(int(limit), best_bid or 0)
            need = sell_collateral(risk_price, quantity, penalty_bps)
            pools = self.eligible_pools(account_id, inst.instrument.tier)
            if self.capacity.available_quantity(pools, inst.hours) < quantity:
                raise Rejected("insufficient_capacity", "not enough uncommitted capacity")
        if ledger.available(account_id) < need:
            raise Rejected("insufficient_funds", "available balance is below the order's hold")
        if side is Side.SELL and not self.capacity.reserve(
            order_id, account_id, pools, inst.hours, quantity
        ):
            raise Rejected("insufficient_capacity", "not enough uncommitted capacity")

        # ---- accepted: nothing below can refuse.
        self._ids["order"] = order_id + 1
        now = self.now
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
        hold = ledger.open_hold(now, account_id, need, f"order:{order_id}")  # type: ignore[arg-type]
        order.hold_id = hold.id
        self.orders[order_id] = order
        account_orders = self.account_orders.get(account_id)
        if account_orders is None:
            self.account_orders[account_id] = [order_id]
        else:
            account_orders.append(order_id)
        if client_order_id is not None:
            self.client_ids[(account_id, client_order_id)] = order_id
        self.open_counts[key] = open_count + 1
        self.touched_orders.add(order_id)
        outcome = engine.place(
            order_id,  # type: ignore[arg-type]
            account_id,  # type: ignore[arg-type]
            symbol,
            side,
            op.price,  # type: ignore[arg-type]
            quantity,  # type: ignore[arg-type]
            op.order_type,
            op.time_in_force,
            op.expire_time,  # type: ignore[arg-type]
            op.post_only,
            op.stp,
        )
        self._engine(outcome)
        if (
            side is Side.SELL
            and order.risk_price != order.price
            and order.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)
        ):
            order.risk_price = order.price  # rests as a maker: trades only at its own price
            self._trim_hold(order)
        return order

    def _own_open_order(self, account_id: int, order_id: int) -> OrderState:
        order = self.orders.get(order_id)
        if order is None or order.account_id != account_id:
            raise Rejected("order_not_found", f"no order {order_id}")
        if not order.is_open:
            raise Rejected("order_not_open", f"order {order_id} is {order.status.value}")
        return order

    def _cancel_order(self, op: CancelOrder) -> OrderState:
        order = self._own_open_order(op.account_id, op.order_id)
        outcome = self.engine.cancel(AccountId(op.account_id), OrderId(op.order_id))
        check(outcome.result is ResultCode.OK, "open order %s not in the book", op.order_id)
        self._engine(outcome)
        return order

    def _cancel_all(self, op: CancelAll) -> list[OrderState]:
        self.account(op.account_id)
        if op.symbol is not None:
            self.instrument(op.symbol)
        outcome = self.engine.cancel_all(
            AccountId(op.account_id), Symbol(op.symbol) if op.symbol else None
        )
        self._engine(outcome)
        return [self.orders[e.order_id] for e in outcome.events if isinstance(e, OrderCancelled)]

    def _amend_order(self, op: AmendOrder) -> OrderState:
        order = self._own_open_order(op.account_id, op.order_id)
        engine = self.engine
        # The engine counts an order's quantity without what self-trade prevention removed
        # (decrement); the account sees the quantity it asked for.
        engine_quantity = (
            Quantity(op.quantity - order.decremented) if op.quantity is not None else None
        )
        if engine_quantity is not None and engine_quantity <= 0:
            raise Rejected("amend_below_filled")
        code = engine.validate_amend(
            AccountId(op.account_id),
            OrderId(op.order_id),
            Price(op.price) if op.price is not None else None,
            engine_quantity,
        )
        if code is not ResultCode.OK:
            raise Rejected(code.code)
        new_price = order.price if op.price is None else op.price
        new_quantity = order.quantity if op.quantity is None else op.quantity
        new_remaining = new_quantity - order.filled - order.decremented - order.closed
        inst = self.instruments[Symbol(order.symbol)]
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
                pools = self.eligible_pools(order.account_id, inst.instrument.tier)
                if self.capacity.available_quantity(pools, inst.hours) < extra:
                    raise Rejected("insufficient_capacity", "not enough uncommitted capacity")
        hold_id = order.hold_id if order.hold_id is not None else 0
        pending = self.ledger.holds[hold_id].pending
        if need > pending and self.ledger.available(order.account_id) < need - pending:
            raise Rejected("insufficient_funds", "available balance is below the amended hold")
        if (
            order.side is Side.SELL
            and new_remaining > order.remaining
            and not self.capacity.extend(order.id, pools, new_remaining - order.remaining)
        ):
            raise Rejected("insufficient_capacity", "not enough uncommitted capacity")

        # ---- accepted.
        if need > pending:
            self.ledger.increase_hold(Timestamp(self.now), hold_id, need - pending)
        if order.side is Side.SELL and new_remaining < order.remaining:
            self.capacity.release(order.id, order.remaining - new_remaining)
        order.risk_price = risk_price
        outcome = engine.amend(
            AccountId(op.account_id),
            OrderId(op.order_id),
            Price(op.price) if op.price is not None else None,
            engine_quantity,
        )
        check(outcome.result is ResultCode.OK, "validated amendment refused by the engine")
        self._engine(outcome)
        if order.is_open:
            if order.side is Side.SELL:
                order.risk_price = order.price
            self._trim_hold(order)
        return order

    # ================================================================== engine events
    def _engine(self, outcome: Outcome) -> None:
        """Apply the consequences of an accepted engine command to orders and money: each
        event type that has any is handled by its entry in ``_event_handlers``; the rest
        (an order accepted, a book level changed...) are only recorded."""
        if outcome.result is not ResultCode.OK:
            raise InvariantViolation(f"engine refused a validated command: {outcome}")
        record = self.events.append
        handlers = self._event_handlers
        for event in outcome.events:
            record(event)
            handler = handlers.get(type(event))
            if handler is not None:
                handler(self, event)

    def _on_cancelled(self, event: OrderCancelled) -> None:
        self._on_finished(event.order_id, event.quantity, OrderStatus.CANCELLED)

    def _on_expired(self, event: OrderExpired) -> None:
        self._on_finished(event.order_id, event.quantity, OrderStatus.EXPIRED)

    def _on_self_trade(self, event: SelfTradePrevented) -> None:
        self._on_decrement(event.taker_order_id, event.quantity)
        self._on_decrement(event.maker_order_id, event.quantity)

    def _on_amended(self, event: OrderAmended) -> None:
        order = self.orders[event.order_id]
        order.price = event.price
        order.quantity = event.quantity + order.decremented
        order.remaining = event.remaining
        order.updated_at = self.now
        self.touched_orders.add(order.id)

    def _on_state_changed(self, event: InstrumentStateChanged) -> None:
        self.instruments[event.symbol].state = event.new_state

    def _required(self, order: OrderState) -> int:
        if order.side is Side.BUY:
            return buy_hold(
                order.risk_price, order.remaining, max(order.maker_fee_bps, order.taker_fee_bps)
            )
        return sell_collateral(order.risk_price, order.remaining, order.penalty_bps)

    def _trim_hold(self, order: OrderState) -> None:
        """Release what the order's hold keeps beyond what its remaining quantity needs."""
        if order.hold_id is None:
            return
        hold = self.ledger.holds[order.hold_id]
        excess = hold.pending - self._required(order)
        check(excess >= 0, "order %s holds less than it needs", order.id)
        self.ledger.release(Timestamp(self.now), order.hold_id, excess)

    def _finish(self, order: OrderState, status: OrderStatus) -> None:
        """An order ended: close its hold exactly once, release its capacity."""
        order.status = status
        order.updated_at = self.now
        if order.hold_id is not None:
            self.ledger.close_hold(Timestamp(self.now), order.hold_id)
            order.hold_id = None
        if order.side is Side.SELL:
            self.capacity.release(order.id)
        key = (order.account_id, order.symbol)
        left = self.open_counts[key] - 1
        if left:
            self.open_counts[key] = left
        else:
            del self.open_counts[key]
        self.touched_orders.add(order.id)

    def _on_finished(self, order_id: int, quantity: int, status: OrderStatus) -> None:
        order = self.orders[order_id]
        check(quantity == order.remaining, "order %s ended with quantity unaccounted", order_id)
        order.remaining = 0
        order.closed += quantity
        self._finish(order, status)

    def _on_decrement(self, order_id: int, quantity: int) -> None:
        order = self.orders[order_id]
        order.remaining -= quantity
        order.decremented += quantity
        check(order.remaining >= 0, "decrement below zero")
        if order.side is Side.SELL:
            self.capacity.release(order.id, quantity)
        if order.remaining == 0:
            self._finish(
                order,
                OrderStatus.FILLED if order.filled == order.quantity else OrderStatus.CANCELLED,
            )
        else:
            self._trim_hold(order)
            self.touched_orders.add(order.id)

    def _on_trade(self, t: Trade) -> None:
        taker = self.orders[t.taker_order_id]
        maker = self.orders[t.maker_order_id]
        buy, sell = (taker, maker) if t.taker_side is Side.BUY else (maker, taker)
        buyer_liquidity = Liquidity.TAKER if buy is taker else Liquidity.MAKER
        buyer_bps = buy.taker_fee_bps if buy is taker else buy.maker_fee_bps
        seller_bps = sell.taker_fee_bps if sell is taker else sell.maker_fee_bps
        notional = t.price * t.quantity
        contract_id = self._next_id("contract")
        contract = Contract(
            id=contract_id,
            trade_id=t.trade_id,
            symbol=t.symbol,
            buyer=buy.account_id,
            seller=sell.account_id,
            buy_order_id=buy.id,
            sell_order_id=sell.id,
            quantity=t.quantity,
            price=t.price,
            buyer_liquidity=buyer_liquidity,
            buyer_fee_bps=buyer_bps,
            seller_fee_bps=seller_bps,
            penalty_bps=sell.penalty_bps,
            escrow=notional + fee(notional, buyer_bps),
            collateral=sell_collateral(t.price, t.quantity, sell.penalty_bps),
            created_at=self.now,
        )
        self.contracts[contract_id] = contract
        self.account_contracts.setdefault(contract.buyer, []).append(contract_id)
        if contract.seller != contract.buyer:
            self.account_contracts.setdefault(contract.seller, []).append(contract_id)
        inst = self.instruments[t.symbol]
        inst.contract_ids.append(contract_id)
        inst.last_price = Price(t.price)
        ts = Timestamp(self.now)
        ref = f"contract:{contract_id}"
        ledger = self.ledger
        check(buy.hold_id is not None and sell.hold_id is not None, "fill without a hold")
        ledger.capture(
            ts, buy.hold_id or 0, contract.escrow, (buy.account_id, AccountKind.ESCROW), ref=ref
        )
        ledger.capture(
            ts,
            sell.hold_id or 0,
            contract.collateral,
            (sell.account_id, AccountKind.COLLATERAL),
            ref=ref,
        )
        self.capacity.commit(sell.id, contract_id, t.quantity)
        for order, liquidity, bps in (
            (buy, buyer_liquidity, buyer_bps),
            (sell, contract.seller_liquidity, seller_bps),
        ):
            order.filled += t.quantity
            order.remaining -= t.quantity
            order.notional += notional
            order.fills.append(
                Fill(
                    t.trade_id,
                    contract_id,
                    t.price,
                    t.quantity,
                    fee(notional, bps),
                    liquidity,
                    self.now,
                )
            )
            order.updated_at = self.now
            self.touched_orders.add(order.id)
            if order.remaining == 0:
                self._finish(order, OrderStatus.FILLED)
            else:
                order.status = OrderStatus.PARTIALLY_FILLED
                self._trim_hold(order)
        self.touched_contracts.add(contract_id)
        tier_record = self.tiers[inst.instrument.tier.code]
        print_ = TradePrint(t.symbol, Price(t.price), Quantity(t.quantity), Timestamp(self.now))
        inst.trades.append(print_)
        tier_record.trades.append(print_)
        tier_record.dirty = True

    # ================================================================== delivery
    def _report_delivery(self, op: ReportDelivery) -> Contract:
        contract = self.contracts.get(op.contract_id)
        if contract is None or contract.seller != op.account_id:
            raise Rejected("contract_not_found", f"no contract {op.contract_id}")
        if contract.state is ContractState.OPEN:
            raise Rejected("delivery_not_started", "delivery reports open when the window starts")
        if contract.state is ContractState.SETTLED:
            raise Rejected("contract_settled", "the contract is already settled")
        pool = self.pools.get(op.pool_id)
        if pool is None or pool.owner != op.account_id:
            raise Rejected("pool_not_found", f"no pool {op.pool_id}")
        inst = self.instruments[Symbol(contract.symbol)]
        tier = inst.instrument.tier
        if self._pool_cap(pool, tier) <= 0:
            raise Rejected("pool_not_eligible", "the pool does not deliver this tier")
        hours = len(inst.hours)
        window_seconds = hours * 3600
        if not 0 <= op.device_seconds <= pool.count * window_seconds:
            raise Rejected(
                "invalid_device_seconds",
                f"device-seconds must be in [0, {pool.count * window_seconds}] for this pool",
            )
        # Reports add up: over all its contracts, a pool cannot have made more
        # device-seconds in any span of hours than its devices make (exchange.deliveries).
        first_hour = inst.hours[0] // HOUR_US
        room = self.delivery_book.room(pool.id, pool.count, first_hour, hours)
        if op.device_seconds > room and self.admitting:
            raise Rejected(
                "delivery_exceeds_pool_capacity",
                f"pool {pool.id} has {room} device-seconds left in this window over all the "
                "reports of its contracts",
            )
        self.delivery_book.record(pool.id, first_hour, hours, op.device_seconds)
        self.deliveries.append((contract.id, pool.id, op.device_seconds, 0, self.now))
        self.contract_deliveries.setdefault(contract.id, []).append((pool.id, op.device_seconds))
        contract.delivered_device_seconds += op.device_seconds
        reports = [
            (ds, self.pool_rated_pf(self.pools[pid], tier))
            for pid, ds in self.contract_deliveries[contract.id]
        ]
        contract.delivered_quantity = delivered_quantity(reports, Quantity(contract.quantity))
        self.touched_contracts.add(contract.id)
        return contract

    def settle_contract(self, contract_id: int) -> bool:
        """Final settlement of one contract, exactly once: False if it was already settled."""
        contract = self.contracts[contract_id]
        if contract.state is ContractState.SETTLED:
            return False
        legs = settlement_legs(contract, contract.delivered_quantity)
        ts = Timestamp(self.now)
        ref = f"contract:{contract_id}"
        escrow = (contract.buyer, AccountKind.ESCROW)
        collateral = (contract.seller, AccountKind.COLLATERAL)
        move = self.ledger.move
        move(
            ts,
            escrow,
            (contract.seller, AccountKind.AVAILABLE),
            legs.seller_payment,
            TransferCode.PAYMENT,
            ref,
        )
        move(ts, escrow, (EXCHANGE, AccountKind.FEES), legs.buyer_fee, TransferCode.FEE, ref)
        move(ts, escrow, (EXCHANGE, AccountKind.FEES), legs.seller_fee, TransferCode.FEE, ref)
        move(
            ts,
            escrow,
            (contract.buyer, AccountKind.AVAILABLE),
            legs.refund,
            TransferCode.REFUND,
            ref,
        )
        move(
            ts,
            collateral,
            (contract.buyer, AccountKind.AVAILABLE),
            legs.penalty,
            TransferCode.PENALTY,
            ref,
        )
        move(
            ts,
            collateral,
            (contract.seller, AccountKind.AVAILABLE),
            legs.collateral_return,
            TransferCode.COLLATERAL_RELEASE,
            ref,
        )
        contract.state = ContractState.SETTLED
        contract.settled_at = self.now
        self.settled_now.append(contract_id)
        contract.seller_paid = legs.seller_payment
        contract.fees = legs.buyer_fee + legs.seller_fee
        contract.refunded = legs.refund
        contract.penalty_paid = legs.penalty
        self.capacity.finish(contract_id)
        self.touched_contracts.add(contract_id)
        return True

    # ================================================================== clock
    def _at(self, ts: int, action: int, key: str) -> None:
        self._schedule_seq += 1
        heapq.heappush(self._schedule, (ts, action, self._schedule_seq, key))

    def _advance_clock(self, op: AdvanceClock) -> int:
        """Run every expiry, listing, gate closure, delivery start and settlement due by
        ``op.to``, in time order, then set the clock to ``op.to``."""
        if op.to < self.now:
            raise Rejected("clock_went_backwards", "the exchange clock only moves forward")
        engine = self.engine
        schedule = self._schedule
        while True:
            due_action = schedule[0][0] if schedule else None
            due_expiry = engine.next_expiry()
            candidates = [t for t in (due_action, due_expiry) if t is not None and t <= op.to]
            if not candidates:
                break
            ts = max(min(candidates), self.now)
            self.now = ts
            self._engine(engine.advance_time(Timestamp(ts)))
            while schedule and schedule[0][0] <= ts:
                _, action, _, key = heapq.heappop(schedule)
                self._run(action, key)
        self.now = op.to
        self._engine(engine.advance_time(Timestamp(op.to)))
        for record in self.tiers.values():
            self._refresh_reference(record)
        return self.now

    def _run(self, action: int, key: str) -> None:
        if action == _LIST:
            self._list_due(self.tiers[key])
            return
        inst = self.instruments[Symbol(key)]
        engine = self.engine
        if action == _CLOSE:
            if inst.state in (InstrumentState.OPEN, InstrumentState.HALTED, InstrumentState.LISTED):
                self._engine(engine.transition(inst.symbol, InstrumentEvent.CLOSE))
        elif action == _DELIVER:
            self._engine(engine.transition(inst.symbol, InstrumentEvent.START_DELIVERY))
            for cid in inst.contract_ids:
                self.contracts[cid].state = ContractState.DELIVERING
                self.touched_contracts.add(cid)
        elif action == _SETTLE:
            for cid in inst.contract_ids:
                self.settle_contract(cid)
            self._engine(engine.transition(inst.symbol, InstrumentEvent.SETTLE))

    def _refresh_reference(self, record: TierRecord, *, force: bool = False) -> None:
        """Derive the tier's reference price from its trades; move the bands of its books."""
        if not (record.dirty or force):
            return
        record.dirty = False
        new = reference_price(record.tier, record.admin_price, record.trades, Timestamp(self.now))
        if new.price == record.reference and not force:
            return
        record.reference = new.price
        for inst in self.instruments.values():
            if inst.instrument.tier.code == record.tier.code and inst.state in (
                InstrumentState.OPEN,
                InstrumentState.HALTED,
            ):
                market = self.engine.market(inst.symbol)
                if market is not None and market.reference_price != new.price:
                    self._engine(self.engine.set_reference_price(inst.symbol, new.price))

    # ================================================================== integrity
    def check(self) -> None:
        """Every invariant across engine, ledger, capacity, orders and contracts."""
        self.engine.validate()
        self.ledger.check()
        self.capacity.check()
        self.delivery_book.check({pool.id: pool.count for pool in self.pools.values()})
        escrow: dict[int, int] = {}
        collateral: dict[int, int] = {}
        for c in self.contracts.values():
            if c.state is not ContractState.SETTLED:
                escrow[c.buyer] = escrow.get(c.buyer, 0) + c.escrow
                collateral[c.seller] = collateral.get(c.seller, 0) + c.collateral
        for account_id in self.accounts:
            check(
                self.ledger.balance(account_id, AccountKind.ESCROW) == escrow.get(account_id, 0),
                f"escrow of {account_id} differs from its open contracts",
            )
            check(
                self.ledger.balance(account_id, AccountKind.COLLATERAL)
                == collateral.get(account_id, 0),
                f"collateral of {account_id} differs from its open contracts",
            )
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
                hold = self.ledger.holds[order.hold_id or 0]
                check(hold.pending == self._required(order), f"order {order.id} hold drift")
                resting = self.engine.resting_order(OrderId(order.id))
                check(
                    resting is not None and resting.remaining == order.remaining,
                    f"order {order.id} differs from the book",
                )
                if order.side is Side.SELL:
                    alloc = self.capacity.reserved.get(order.id)
                    check(
                        alloc is not None and alloc.quantity == order.remaining,
                        f"order {order.id} capacity reservation drift",
                    )
            else:
                check(order.hold_id is None, f"finished order {order.id} still holds cash")
        check(len(open_ids) == self.engine.resting_count, "book holds orders the core ended")
        check(set(self.capacity.reserved) <= open_ids, "capacity reserved for a finished order")

    def component_hashes(self) -> dict[str, str]:
        """A SHA-256 per component of the state (:data:`STATE_COMPONENTS`), each over a
        canonical encoding of every attribute of the component (exchange.statehash);
        the engine's is its own :meth:`MatchingEngine.state_hash`."""
        return {name: self.component_hash(name) for name in STATE_COMPONENTS}

    def component_hash(self, name: str) -> str:
        """The SHA-256 of one component of the state (a key of :data:`STATE_COMPONENTS`)."""
        if name == "engine":
            return self.engine.state_hash()
        return digest([[a, canonical(getattr(self, a))] for a in STATE_COMPONENTS[name]])

    def state_hash(self) -> str:
        """One SHA-256 over the component hashes: equal if and only if (up to SHA-256)
        every piece of state is equal."""
        return combine(self.component_hashes())

    _handlers: ClassVar[dict[type, Callable[[ExchangeCore, Any], Any]]] = {
        CreateAccount: _create_account,
        Deposit: _deposit,
        Withdraw: _withdraw,
        InstallCatalog: _install_catalog,
        AddHardware: _add_hardware,
        ConfirmHardware: _confirm_hardware,
        CreateGpuClass: _create_gpu_class,
        CreateTier: _create_tier,
        UpdateTier: _update_tier,
        RegisterSite: _register_site,
        AddPool: _add_pool,
        PlaceOrder: _place_order,
        CancelOrder: _cancel_order,
        CancelAll: _cancel_all,
        AmendOrder: _amend_order,
        ReportDelivery: _report_delivery,
        AdvanceClock: _advance_clock,
        HaltInstrument: _halt,
        ResumeInstrument: _resume,
        IssueApiKey: _issue_api_key,
        RevokeApiKey: _revoke_api_key,
    }

    _event_handlers: ClassVar[dict[type, Callable[[ExchangeCore, Any], None]]] = {
        Trade: _on_trade,
        OrderCancelled: _on_cancelled,
        OrderExpired: _on_expired,
        SelfTradePrevented: _on_self_trade,
        OrderAmended: _on_amended,
        InstrumentStateChanged: _on_state_changed,
    }


#: Per operation type, the fields that can hold text: what ``apply`` checks.
_TEXT_FIELDS = {kind: text_fields(kind) for kind in ExchangeCore._handlers}


def replay(operations: Iterable[Operation], **core_options: Any) -> ExchangeCore:
    """A fresh core with ``operations`` applied; refused operations are skipped as before."""
    core = ExchangeCore(**core_options)
    for op in operations:
        with contextlib.suppress(Rejected):
            core.apply(op)
        core.take_changes()
    return core
