"""The exchange core: one deterministic state machine for everything that changes state.

:class:`ExchangeCore` is a thin facade over components (:mod:`exchange.components`), each
owning its state, its operations and its part of the state hash: accounts and the ledger,
the catalog and GPU classes, sites, pools and capacity, tiers and listing, trading (the
matching engine with pre-trade holds), clearing and settlement, and the clock. One
dispatch table routes each operation type to its component's handler, bound once; a
second (:class:`~exchange.components.context.Journal`) routes each engine event. Reads
go through :attr:`ExchangeCore.query` (:mod:`exchange.queries`).

* every operation is validated completely before anything changes; a refusal raises
  :class:`Rejected` with a stable code and leaves the core exactly as it was;
* time is an input (:class:`~exchange.operations.AdvanceClock`), ids are counters in the
  state, nothing reads a clock or a random source; the hardware catalog is an input too
  (:class:`~exchange.operations.InstallCatalog`, the first operation of an exchange: see
  :mod:`exchange.genesis`), so a core starts empty and reads no file;
* no string with a control character or a lone surrogate gets past :meth:`apply`, and
  every text kept fits the database column that keeps it;
* replaying the same operations on a fresh core rebuilds the same state and the same
  :meth:`ExchangeCore.state_hash` (a hash per part of the state, over every attribute),
  which is how the service recovers after a crash.

Money flows (see docs/settlement.md): an order reserves cash in a two-phase hold, fills
move it to escrow (buyer) and collateral (seller), and settlement after delivery splits
escrow and collateral between seller, buyer and the exchange's fee account.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from operator import attrgetter
from types import MappingProxyType
from typing import Any, get_args

from exchange.components.accounts import Accounts
from exchange.components.catalog import Catalog
from exchange.components.clearing import Clearing
from exchange.components.clock import Clock, Time
from exchange.components.context import Journal, Rules
from exchange.components.listing import Listing
from exchange.components.sites import Sites
from exchange.components.trading import Trading
from exchange.engine import MatchingEngine
from exchange.events import (
    InstrumentStateChanged,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    SelfTradePrevented,
    Trade,
)
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
from exchange.products import HOUR_US
from exchange.queries import Queries
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
from exchange.refusals import Refusal
from exchange.statehash import canonical, combine, digest
from exchange.text import text_fields, unclean_field

__all__ = [
    "DEFAULT_GRACE_US",
    "NOT_STATE",
    "STATE_COMPONENTS",
    "AccountRecord",
    "Changes",
    "Components",
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

#: Reporting grace after a window ends, before final settlement.
DEFAULT_GRACE_US = HOUR_US
#: What the changes of operations that retired nothing carry: one read-only empty map.
_NOTHING_RETIRED: Mapping[int, Any] = MappingProxyType({})

#: The components, by their name in :class:`Components`, in the order they are built
#: (each is built with references to some of those before it).
_COMPONENT_TYPES: dict[str, type] = {
    "time": Time,
    "accounts": Accounts,
    "catalog": Catalog,
    "sites": Sites,
    "listing": Listing,
    "clearing": Clearing,
    "trading": Trading,
    "clock": Clock,
}

#: The parts of the state hash, each with the component that owns it and the attributes
#: it covers (each component lists its parts in ``STATE``; every other attribute of a
#: component is in its ``REFERENCES``: a test holds every attribute to that).
STATE_OWNERS: dict[str, str] = {
    part: name
    for name, kind in _COMPONENT_TYPES.items()
    for part in kind.STATE  # type: ignore[attr-defined]
}
STATE_COMPONENTS: dict[str, tuple[str, ...]] = {
    part: attributes
    for kind in _COMPONENT_TYPES.values()
    for part, attributes in kind.STATE.items()  # type: ignore[attr-defined]
}

#: Attributes of a core that are not state, and why.
NOT_STATE: dict[str, str] = {
    "parts": "the components, whose state is hashed part by part (STATE_COMPONENTS)",
    "query": "read-only views over the components",
    "_rules": "settings the shell may replace between operations (limits, admitting)",
    "_pool_caps": "a cache of what pools, sites, tiers and the catalog give, filled by reads",
    "_journal": "what the last operations changed, until the shell takes it (take_changes)",
    "_handlers": "the dispatch table: operation type -> its component's bound handler",
}


class Components:
    """The components of one core (see :mod:`exchange.components`)."""

    __slots__ = tuple(_COMPONENT_TYPES)

    time: Time
    accounts: Accounts
    catalog: Catalog
    sites: Sites
    listing: Listing
    clearing: Clearing
    trading: Trading
    clock: Clock

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        for name in self.__slots__:
            yield name, getattr(self, name)


class ExchangeCore:
    """Accounts, products, books, risk, ledger, contracts and the clock of one exchange."""

    __slots__ = tuple(NOT_STATE)

    def __init__(
        self,
        *,
        currency: str = "CNY",
        grace_us: int = DEFAULT_GRACE_US,
        limits: CoreLimits | None = None,
    ) -> None:
        # Empty, the clock at 0: everything else comes from operations, the first of
        # which install the catalog and start the clock (exchange.genesis).
        rules = self._rules = Rules(CoreLimits() if limits is None else limits)
        journal = self._journal = Journal()
        caps: dict[tuple[int, str], int] = {}
        self._pool_caps = caps
        engine = MatchingEngine()
        time = Time(grace_us)
        accounts = Accounts(time, currency)
        catalog = Catalog(rules, caps.clear)
        sites = Sites(time, rules, accounts, catalog, caps)
        listing = Listing(time, rules, catalog, engine, journal.run)
        ledger, capacity = accounts.ledger, sites.capacity
        clearing = Clearing(time, rules, journal, ledger, sites, capacity, listing)
        trading = Trading(
            time, rules, journal, engine, accounts, ledger, sites, capacity, listing, clearing
        )
        clock = Clock(time, engine, journal, listing, clearing, trading)
        parts = self.parts = Components()
        for name, value in (
            ("time", time),
            ("accounts", accounts),
            ("catalog", catalog),
            ("sites", sites),
            ("listing", listing),
            ("clearing", clearing),
            ("trading", trading),
            ("clock", clock),
        ):
            setattr(parts, name, value)
        self.query = Queries(time, accounts, catalog, sites, listing, trading, clearing)
        # The dispatch tables, bound once: an operation type, and an engine event's type,
        # to the handler of the component that owns what it changes.
        self._handlers: dict[type, Callable[[Any], Any]] = {
            CreateAccount: accounts.create_account,
            IssueApiKey: accounts.issue_api_key,
            RevokeApiKey: accounts.revoke_api_key,
            Deposit: accounts.deposit,
            Withdraw: accounts.withdraw,
            InstallCatalog: catalog.install,
            AddHardware: catalog.add_hardware,
            ConfirmHardware: catalog.confirm_hardware,
            CreateGpuClass: catalog.create_gpu_class,
            RegisterSite: sites.register_site,
            AddPool: sites.add_pool,
            CreateTier: listing.create_tier,
            UpdateTier: listing.update_tier,
            HaltInstrument: listing.halt,
            ResumeInstrument: listing.resume,
            PlaceOrder: trading.place_order,
            CancelOrder: trading.cancel_order,
            CancelAll: trading.cancel_all,
            AmendOrder: trading.amend_order,
            ReportDelivery: clearing.report_delivery,
            AdvanceClock: clock.advance,
        }
        journal.handlers.update(
            {
                Trade: trading.on_trade,
                OrderCancelled: trading.on_cancelled,
                OrderExpired: trading.on_expired,
                SelfTradePrevented: trading.on_self_trade,
                OrderAmended: trading.on_amended,
                InstrumentStateChanged: listing.on_state_changed,
            }
        )

    # ================================================================== operations
    def apply(self, op: Operation) -> Any:
        """Apply one operation; return its result or raise :class:`Rejected` (no change).

        Before any handler runs, every string the operation carries is checked for
        control characters and lone surrogates (:mod:`exchange.text`), so none reaches
        the state or the log, whichever path the operation came by."""
        kind = type(op)
        handler = self._handlers.get(kind)
        if handler is None:
            raise Refusal.UNKNOWN_OPERATION.reject(operation=kind.__name__)
        for name in _TEXT_FIELDS[kind] if self._rules.admitting else ():
            value = getattr(op, name)
            if value is None or (value.__class__ is str and value.isprintable()):
                continue  # the common case, decided in C
            where = unclean_field(op, (name,))
            if where is not None:
                raise Refusal.INVALID_CHARACTERS.reject(
                    reason=f"{where} holds a control character or a lone surrogate"
                )
        return handler(op)

    def take_changes(self) -> Changes:
        """What changed since the last call: for the shell to persist and publish."""
        journal = self._journal
        retired_orders: Mapping[int, OrderState] = journal.retired_orders
        retired_contracts: Mapping[int, Any] = journal.retired_contracts
        if retired_orders or retired_contracts:  # rare: the journal starts new ones
            journal.retired_orders, journal.retired_contracts = {}, {}
        else:  # never hand out the journal's own dicts, which the next retirement fills
            retired_orders = retired_contracts = _NOTHING_RETIRED
        out = Changes(
            journal.events,
            journal.touched_orders,
            journal.touched_contracts,
            journal.settled_now,
            self.parts.accounts.ledger.drain(),
            retired_orders,
            retired_contracts,
        )
        journal.events, journal.touched_orders, journal.touched_contracts = [], set(), set()
        journal.settled_now = []
        return out

    # ================================================================== settings
    @property
    def limits(self) -> CoreLimits:
        """Bounds per account: a setting the shell may replace at any time, never state."""
        return self._rules.limits

    @limits.setter
    def limits(self, value: CoreLimits) -> None:
        self._rules.limits = value

    @property
    def admitting(self) -> bool:
        """Whether the rules that only refuse apply (off while a log is replayed)."""
        return self._rules.admitting

    @admitting.setter
    def admitting(self, value: bool) -> None:
        self._rules.admitting = value

    # ================================================================== snapshots
    def state(self) -> dict[str, dict[str, Any]]:
        """Every part of the state (:data:`STATE_COMPONENTS`): its attributes' values,
        by name, as :meth:`restore` takes them back (taken between operations)."""
        return {
            part: {name: getattr(owner, name) for name in attributes}
            for part, owner, attributes in self.state_parts()
        }

    def restore(self, state: dict[str, dict[str, Any]]) -> None:
        """Replace this core's state with ``state`` (from :meth:`state`, of a core built
        from the same code): every part's attributes are set, then every reference a
        component, the query layer or the core holds to a replaced object (the engine,
        the ledger, a dict, or a method bound to one of them) is pointed at its
        replacement. Settings and the change journal stay as they are."""
        if set(state) != set(STATE_COMPONENTS):
            raise ValueError("a core state names exactly the parts of STATE_COMPONENTS")
        # By the id of the object replaced, kept alive meanwhile so that no id is reused.
        replaced: dict[int, tuple[Any, Any]] = {}
        for part, owner, attributes in self.state_parts():
            values = state[part]
            if set(values) != set(attributes):
                raise ValueError(f"the part {part!r} has other attributes than {attributes}")
            for name in attributes:
                old = getattr(owner, name)
                replaced[id(old)] = (old, values[name])
                setattr(owner, name, values[name])
        holders = [owner for _, owner in self.parts]
        holders.append(self.query)
        for holder in holders:
            for name in _attribute_names(holder):
                value = getattr(holder, name)
                if id(value) in replaced:
                    setattr(holder, name, replaced[id(value)][1])
                elif id(getattr(value, "__self__", None)) in replaced:
                    bound_to = replaced[id(value.__self__)][1]
                    setattr(holder, name, getattr(bound_to, value.__name__))
        self._pool_caps.clear()

    # ================================================================== integrity
    def check(self) -> None:
        """Every invariant: each component's own, and what is conserved across them
        (escrow and collateral against contracts, holds, book and capacity against
        orders)."""
        parts = self.parts
        parts.accounts.check()
        parts.sites.check()
        parts.clearing.check(parts.accounts.ids())
        parts.trading.check()

    def check_totals(self) -> None:
        """The ledger's totals balance: O(1), cheap enough for every group."""
        self.parts.accounts.ledger.check_totals()

    def state_parts(self) -> Iterator[tuple[str, Any, tuple[str, ...]]]:
        """Each part of the state: its name, the component owning it, its attributes."""
        parts = self.parts
        for part, attributes in STATE_COMPONENTS.items():
            yield part, getattr(parts, STATE_OWNERS[part]), attributes

    def component_hashes(self) -> dict[str, str]:
        """A SHA-256 per part of the state (:data:`STATE_COMPONENTS`), each over a
        canonical encoding of every attribute of the part (exchange.statehash); the
        engine's is its own :meth:`MatchingEngine.state_hash`."""
        return {name: self.component_hash(name) for name in STATE_COMPONENTS}

    def component_hash(self, name: str) -> str:
        """The SHA-256 of one part of the state (a key of :data:`STATE_COMPONENTS`)."""
        owner = getattr(self.parts, STATE_OWNERS[name])
        if name == "engine":
            return owner.engine.state_hash()  # type: ignore[no-any-return]
        return digest([[a, canonical(getattr(owner, a))] for a in STATE_COMPONENTS[name]])

    def state_hash(self) -> str:
        """One SHA-256 over the component hashes: equal if and only if (up to SHA-256)
        every piece of state is equal."""
        return combine(self.component_hashes())


def _attribute_names(holder: Any) -> list[str]:
    """The names of an object's attributes, from its ``__slots__`` (along its classes)
    and its ``__dict__``."""
    names = [n for kind in type(holder).__mro__ for n in getattr(kind, "__slots__", ())]
    names.extend(getattr(holder, "__dict__", {}))
    return [n for n in names if hasattr(holder, n)]


#: Read-only names on the core for tests and tools that inspect one (the shell reads
#: through ``query``: tests/test_static.py holds ``api/`` to that): every public attribute
#: of the state, by its name, and these reads of the components.
_READS = {
    "account": "accounts.account",
    "balances": "accounts.balances",
    "pool_rated_pf": "sites.pool_rated_pf",
    "eligible_pools": "sites.eligible_pools",
    "instrument": "listing.instrument",
    "settle_contract": "clearing.settle_contract",
    "capacity_view": "query.capacity_view",
    "curve_inputs": "query.curve_inputs",
}
for _part, _attributes in STATE_COMPONENTS.items():
    for _name in _attributes:
        if not _name.startswith("_"):
            _READS[_name] = f"{STATE_OWNERS[_part]}.{_name}"
for _name, _path in _READS.items():
    _path = _path if _path.startswith("query.") else f"parts.{_path}"
    setattr(ExchangeCore, _name, property(attrgetter(_path)))

#: Per operation type (every member of the ``Operation`` union, each of which the dispatch
#: table routes), the fields that can hold text: what ``apply`` checks.
_TEXT_FIELDS = {kind: text_fields(kind) for kind in get_args(Operation)}


def replay(operations: Iterable[Operation], **core_options: Any) -> ExchangeCore:
    """A fresh core with ``operations`` applied; refused operations are skipped as before."""
    core = ExchangeCore(**core_options)
    for op in operations:
        with contextlib.suppress(Rejected):
            core.apply(op)
        core.take_changes()
    return core
