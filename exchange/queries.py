"""Read-only views of the exchange core: what the API, the projections and tools read.

A :class:`Queries` is built by the core over its components (``core.query``); nothing
here changes state, and what it returns is the core's own records, to read and never to
change. The shell reads the core only through it (a test holds ``api/`` to that)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from fractions import Fraction
from typing import TYPE_CHECKING

from exchange.book import OrderBook
from exchange.engine import Market
from exchange.ids import Symbol
from exchange.keys import ApiKeyBook
from exchange.ledger import AccountKind
from exchange.lifecycle import InstrumentState
from exchange.products import Tier
from exchange.records import (
    AccountRecord,
    InstrumentRecord,
    OrderState,
    PoolRecord,
    SiteRecord,
    TierRecord,
)
from exchange.settlement import Contract
from pricing import AcceleratorModel, CurveInput, GpuClass

if TYPE_CHECKING:
    from exchange.components.accounts import Accounts
    from exchange.components.catalog import Catalog
    from exchange.components.clearing import Clearing
    from exchange.components.clock import Time
    from exchange.components.listing import Listing
    from exchange.components.sites import Sites
    from exchange.components.trading import Trading

__all__ = ["Queries"]


class Queries:
    __slots__ = ("_accounts", "_catalog", "_clearing", "_listing", "_sites", "_time", "_trading")

    def __init__(
        self,
        time: Time,
        accounts: Accounts,
        catalog: Catalog,
        sites: Sites,
        listing: Listing,
        trading: Trading,
        clearing: Clearing,
    ) -> None:
        self._time = time
        self._accounts = accounts
        self._catalog = catalog
        self._sites = sites
        self._listing = listing
        self._trading = trading
        self._clearing = clearing

    # ------------------------------------------------------------------ clock
    def now(self) -> int:
        """The exchange clock, in microseconds."""
        return self._time.now

    def grace_us(self) -> int:
        """The reporting grace after a window ends, before final settlement."""
        return self._time.grace_us

    # ------------------------------------------------------------------ accounts
    def account(self, account_id: int) -> AccountRecord:
        """The account, or the refusal ``account_not_found``."""
        return self._accounts.account(account_id)

    def find_account(self, account_id: int) -> AccountRecord | None:
        return self._accounts.accounts.get(account_id)

    def api_keys(self) -> ApiKeyBook:
        """The book of API keys (to read: authentication, listings)."""
        return self._accounts.api_keys

    def currency(self) -> str:
        return self._accounts.ledger.currency

    def balances(self, account_id: int) -> dict[str, int]:
        """Available, held, escrow and collateral of an account, in money units."""
        return self._accounts.balances(account_id)

    def balance(self, account_id: int, kind: AccountKind) -> int:
        return self._accounts.ledger.balance(account_id, kind)

    def ledger_balances(self) -> Iterator[tuple[int, AccountKind, int]]:
        """Every (account, kind, balance) of the ledger."""
        for (account_id, kind), value in self._accounts.ledger.balances.items():
            yield account_id, kind, value

    # ------------------------------------------------------------------ catalog
    def models(self) -> Mapping[str, AcceleratorModel]:
        """The hardware catalog by model id."""
        return self._catalog.models()

    def model(self, model_id: str) -> AcceleratorModel | None:
        return self._catalog.models().get(model_id)

    def gpu_classes(self) -> list[GpuClass]:
        """Every GPU class, by code."""
        return sorted(self._catalog.gpu_classes.values(), key=lambda r: r.code)

    def gpu_class(self, code: str) -> GpuClass | None:
        return self._catalog.gpu_classes.get(code)

    def class_members(self, code: str) -> tuple[str, ...]:
        """The model ids of a GPU class."""
        return self._catalog.members(code)

    # ------------------------------------------------------------------ sites and pools
    def site(self, site_id: int) -> SiteRecord | None:
        return self._sites.sites.get(site_id)

    def sites_of(self, owner: int) -> list[SiteRecord]:
        """An account's sites, in the order it registered them."""
        sites = self._sites.sites
        return [sites[i] for i in self._sites.owner_sites.get(owner, ())]

    def known_site(self, site_id: int) -> SiteRecord:
        """A site the core has reported (KeyError for an id it never gave)."""
        return self._sites.sites[site_id]

    def pool(self, pool_id: int) -> PoolRecord | None:
        return self._sites.pools.get(pool_id)

    def known_pool(self, pool_id: int) -> PoolRecord:
        """A pool the core has reported (KeyError for an id it never gave)."""
        return self._sites.pools[pool_id]

    def pools_of(self, owner: int) -> list[PoolRecord]:
        """An account's pools, in the order it added them."""
        pools = self._sites.pools
        return [pools[i] for i in self._sites.owner_pools.get(owner, ())]

    def pool_rated_pf(self, pool: PoolRecord, tier: Tier) -> Fraction:
        """What one device of the pool delivers of ``tier``, in PF."""
        return self._sites.pool_rated_pf(pool, tier)

    def capacity_view(self, owner: int, symbol: str) -> dict[str, int]:
        """Total, held, committed and available quantity of ``owner`` in one window."""
        inst = self._listing.instrument(symbol)
        tier = self._listing.tier_of(inst)
        sites = self._sites
        capacity = sites.capacity
        pools = sites.eligible_pools(owner, tier)
        hours = len(inst.hours)
        total = sum(cap * hours for _, cap in pools)
        orders = self._trading.orders
        held = sum(
            a.quantity
            for oid, a in capacity.reserved.items()
            if a.owner == owner and orders[oid].symbol == symbol
        )
        contracts = self._clearing.contracts
        committed = sum(
            contracts[cid].quantity
            for cid in inst.contract_ids
            if contracts[cid].seller == owner and cid in capacity.committed
        )
        available = capacity.available_quantity(pools, inst.hours)
        return {"total": total, "held": held, "committed": committed, "available": available}

    # ------------------------------------------------------------------ tiers and instruments
    def tiers(self) -> list[TierRecord]:
        """Every tier, in the order they were created."""
        return list(self._listing.tiers.values())

    def tier(self, code: str) -> TierRecord | None:
        return self._listing.tiers.get(code)

    def known_tier(self, code: str) -> TierRecord:
        """A tier the core has reported (KeyError for a code it does not know)."""
        return self._listing.tiers[code]

    def instrument(self, symbol: str) -> InstrumentRecord:
        """The instrument, or the refusal ``instrument_not_found``."""
        return self._listing.instrument(symbol)

    def find_instrument(self, symbol: str) -> InstrumentRecord | None:
        return self._listing.find(symbol)

    def instruments(self) -> list[InstrumentRecord]:
        """Every instrument, in the order they were listed."""
        return list(self._listing.instruments.values())

    def open_symbols(self) -> list[Symbol]:
        """The symbols of the instruments open for trading, in listing order."""
        return [
            s for s, inst in self._listing.instruments.items() if inst.state is InstrumentState.OPEN
        ]

    def book(self, symbol: str) -> OrderBook:
        """The order book of a listed instrument."""
        return self._trading.engine.book(Symbol(symbol))

    def market(self, symbol: str) -> Market | None:
        """The engine's market of an instrument (its book and reference price), if listed."""
        return self._trading.engine.market(Symbol(symbol))

    def curve_inputs(self, tier_code: str, *, open_only: bool = False) -> list[CurveInput]:
        """Each listed window of a tier with its best bid and ask, last and reference price:
        the inputs of :func:`pricing.forward_curve`."""
        record = self._listing.tiers[tier_code]
        engine = self._trading.engine
        items = []
        for inst in self._listing.instruments.values():
            if inst.instrument.tier.code != tier_code:
                continue
            if open_only and inst.state is not InstrumentState.OPEN:
                continue
            market = engine.market(inst.symbol)
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

    # ------------------------------------------------------------------ orders
    def issued(self, kind: str, number: int) -> bool:
        """Has the core given this id of ``kind`` (order, contract...)? An order or
        contract it gave that it no longer has was retired with its settled instrument."""
        return 0 < number < self._time.peek_id(kind)

    def order(self, order_id: int) -> OrderState | None:
        return self._trading.orders.get(order_id)

    def known_order(self, order_id: int) -> OrderState:
        """An order the core has reported (KeyError for an id it never gave)."""
        return self._trading.orders[order_id]

    def order_by_client_id(self, account_id: int, client_order_id: str) -> OrderState | None:
        order_id = self._trading.client_ids.get((account_id, client_order_id))
        return None if order_id is None else self._trading.orders[order_id]

    def orders_of(self, account_id: int) -> list[OrderState]:
        """An account's orders, oldest first."""
        orders = self._trading.orders
        return [orders[i] for i in self._trading.account_orders.get(account_id, ())]

    # ------------------------------------------------------------------ contracts
    def contract(self, contract_id: int) -> Contract | None:
        return self._clearing.contracts.get(contract_id)

    def known_contract(self, contract_id: int) -> Contract:
        """A contract the core has reported (KeyError for an id it never gave)."""
        return self._clearing.contracts[contract_id]

    def contract_count(self) -> int:
        """How many contracts were made, retired ones included (their ids are 1 to this
        count)."""
        return self._time.peek_id("contract") - 1

    def contracts(self) -> list[Contract]:
        """Every contract still in the core (not of a settled instrument), oldest first."""
        return list(self._clearing.contracts.values())

    def contracts_of(self, account_id: int) -> list[Contract]:
        """The contracts an account bought or sold, oldest first."""
        contracts = self._clearing.contracts
        return [contracts[i] for i in self._clearing.account_contracts.get(account_id, ())]

    def contracts_of_instrument(self, inst: InstrumentRecord) -> list[Contract]:
        """The contracts traded in an instrument, oldest first."""
        contracts = self._clearing.contracts
        return [contracts[i] for i in inst.contract_ids]

    def delivery_count(self) -> int:
        """How many delivery reports were accepted, retired ones included."""
        return self._clearing.delivery_count

    def delivery(self, number: int) -> tuple[int, int, int, int]:
        """The ``number``-th delivery report (from 1) of a contract still in the core:
        contract, pool, device-seconds, time."""
        return self._clearing.deliveries[number]
