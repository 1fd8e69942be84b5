"""Clearing: a trade becomes a contract (the buyer's cash moves to escrow, the seller's to
collateral, the pool-hours are committed); the window starts and contracts deliver; the
seller reports delivery; after the window and its grace, final settlement splits escrow
and collateral between seller, buyer and the exchange's fees (docs/settlement.md)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from exchange.capacity import CapacityBook
from exchange.components.clock import Time
from exchange.components.context import Journal, Rules, keep_only
from exchange.components.listing import Listing
from exchange.components.sites import Sites
from exchange.deliveries import DeliveryBook
from exchange.events import Trade
from exchange.ids import Timestamp
from exchange.invariants import check
from exchange.ledger import EXCHANGE, AccountKind, Ledger, TransferCode
from exchange.lifecycle import ContractEvent, contract_state_after
from exchange.operations import ReportDelivery
from exchange.products import HOUR_US
from exchange.records import OrderState
from exchange.refusals import Refusal
from exchange.risk import fee, sell_collateral
from exchange.settlement import Contract, ContractState, Liquidity, settlement_legs
from exchange.units import Quantity
from pricing import delivered_quantity

__all__ = ["Clearing"]

DAY_US = 24 * HOUR_US


class Clearing:
    __slots__ = (
        "_capacity",
        "_journal",
        "_ledger",
        "_listing",
        "_rules",
        "_sites",
        "_time",
        "account_contracts",
        "contract_deliveries",
        "contracts",
        "deliveries",
        "delivery_book",
        "delivery_count",
    )
    #: The index by account (derived from the contracts) is hashed with them.
    STATE: ClassVar[dict[str, tuple[str, ...]]] = {
        "contracts": ("contracts", "account_contracts"),
        "deliveries": ("deliveries", "delivery_count", "contract_deliveries", "delivery_book"),
    }
    REFERENCES: ClassVar[tuple[str, ...]] = (
        "_capacity",
        "_journal",
        "_ledger",
        "_listing",
        "_rules",
        "_sites",
        "_time",
    )

    def __init__(
        self,
        time: Time,
        rules: Rules,
        journal: Journal,
        ledger: Ledger,
        sites: Sites,
        capacity: CapacityBook,
        listing: Listing,
    ) -> None:
        self._time = time
        self._rules = rules
        self._journal = journal
        self._ledger = ledger
        self._sites = sites
        self._capacity = capacity
        self._listing = listing
        self.contracts: dict[int, Contract] = {}
        self.account_contracts: dict[int, list[int]] = {}  # account -> its contract ids
        #: Delivery reports by number (from 1): contract, pool, device-seconds, time.
        self.deliveries: dict[int, tuple[int, int, int, int]] = {}
        self.delivery_count = 0  # reports accepted, retired ones included
        self.contract_deliveries: dict[int, list[tuple[int, int]]] = {}  # -> [(pool, ds)]
        self.delivery_book = DeliveryBook()

    # ------------------------------------------------------------------ trades
    def open_contract(
        self,
        t: Trade,
        buy: OrderState,
        sell: OrderState,
        buyer_liquidity: Liquidity,
        buyer_bps: int,
        seller_bps: int,
    ) -> int:
        """The contract of a trade between ``buy`` and ``sell``: escrow and collateral
        captured from their holds, the seller's pool-hours committed. Its id."""
        now = self._time.now
        notional = t.price * t.quantity
        contract_id = self._time.next_id("contract")
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
            created_at=now,
        )
        self.contracts[contract_id] = contract
        account_contracts = self.account_contracts
        account_contracts.setdefault(contract.buyer, []).append(contract_id)
        if contract.seller != contract.buyer:
            account_contracts.setdefault(contract.seller, []).append(contract_id)
        self._listing.record_trade(t.symbol, contract_id, t.price, t.quantity)
        ts = Timestamp(now)
        ref = f"contract:{contract_id}"
        ledger = self._ledger
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
        self._capacity.commit(sell.id, contract_id, t.quantity)
        self._journal.touched_contracts.add(contract_id)
        return contract_id

    # ------------------------------------------------------------------ delivery
    def start_delivery(self, contract_ids: Iterable[int]) -> None:
        """The window of these contracts started: they deliver."""
        touched = self._journal.touched_contracts
        for cid in contract_ids:
            contract = self.contracts[cid]
            contract.state = contract_state_after(contract.state, ContractEvent.START_DELIVERY)
            touched.add(cid)

    def report_delivery(self, op: ReportDelivery) -> Contract:
        contract = self.contracts.get(op.contract_id)
        if contract is None and self.retired(op.contract_id):
            raise Refusal.CONTRACT_SETTLED.reject(contract_id=op.contract_id)
        if contract is None or contract.seller != op.account_id:
            raise Refusal.CONTRACT_NOT_FOUND.reject(contract_id=op.contract_id)
        if contract.state is ContractState.OPEN:
            raise Refusal.DELIVERY_NOT_STARTED.reject(contract_id=contract.id)
        if contract.state is ContractState.SETTLED:
            raise Refusal.CONTRACT_SETTLED.reject(contract_id=contract.id)
        sites = self._sites
        pool = sites.owned_pool(op.account_id, op.pool_id)
        if pool is None:
            raise Refusal.POOL_NOT_FOUND.reject(pool_id=op.pool_id)
        inst = self._listing.instrument(contract.symbol)
        tier = inst.instrument.tier
        if sites.pool_cap(pool, tier) <= 0:
            raise Refusal.POOL_NOT_ELIGIBLE.reject(pool_id=pool.id, tier=tier.code)
        hours = len(inst.hours)
        window_seconds = hours * 3600
        most = pool.count * window_seconds
        if not 0 <= op.device_seconds <= most:
            raise Refusal.INVALID_DEVICE_SECONDS.reject(
                reason=f"device-seconds must be in [0, {most}] for pool {pool.id}"
            )
        # Reports add up: over all its contracts, a pool cannot have made more
        # device-seconds in any span of hours than its devices make (exchange.deliveries).
        first_hour = inst.hours[0] // HOUR_US
        room = self.delivery_book.room(pool.id, pool.count, first_hour, hours)
        if op.device_seconds > room and self._rules.admitting:
            raise Refusal.DELIVERY_EXCEEDS_POOL_CAPACITY.reject(pool_id=pool.id, room=room)
        self.delivery_book.record(pool.id, first_hour, hours, op.device_seconds)
        self.delivery_count += 1
        self.deliveries[self.delivery_count] = (
            contract.id,
            pool.id,
            op.device_seconds,
            self._time.now,
        )
        reports_of = self.contract_deliveries.setdefault(contract.id, [])
        reports_of.append((pool.id, op.device_seconds))
        contract.delivered_device_seconds += op.device_seconds
        reports = [(ds, sites.pool_rated_pf(sites.pools[pid], tier)) for pid, ds in reports_of]
        contract.delivered_quantity = delivered_quantity(reports, Quantity(contract.quantity))
        self._journal.touched_contracts.add(contract.id)
        return contract

    # ------------------------------------------------------------------ settlement
    def settle_all(self, contract_ids: Iterable[int]) -> None:
        for cid in contract_ids:
            self.settle_contract(cid)

    def settle_contract(self, contract_id: int) -> bool:
        """Final settlement of one contract, exactly once: False if it was already settled."""
        contract = self.contracts.get(contract_id)
        if contract is None:
            check(self.retired(contract_id), "contract %s was never made", contract_id)
            return False  # settled, and retired with its instrument
        if contract.state is ContractState.SETTLED:
            return False
        settled = contract_state_after(contract.state, ContractEvent.SETTLE)
        legs = settlement_legs(contract, contract.delivered_quantity)
        ts = self._time.now
        ref = f"contract:{contract_id}"
        escrow = (contract.buyer, AccountKind.ESCROW)
        collateral = (contract.seller, AccountKind.COLLATERAL)
        move = self._ledger.move
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
        contract.state = settled
        contract.settled_at = self._time.now
        self._journal.settled_now.append(contract_id)
        contract.seller_paid = legs.seller_payment
        contract.fees = legs.buyer_fee + legs.seller_fee
        contract.refunded = legs.refund
        contract.penalty_paid = legs.penalty
        self._capacity.finish(contract_id)
        self._journal.touched_contracts.add(contract_id)
        return True

    # ------------------------------------------------------------------ retirement
    def retired(self, contract_id: int) -> bool:
        """Was this contract made and retired (settled, with its instrument)? Ids are
        given in order, so one below the next id that is not here was retired."""
        return 0 < contract_id < self._time.peek_id("contract") and (
            contract_id not in self.contracts
        )

    def retire(self, contract_ids: Iterable[int]) -> list[Contract]:
        """A settled instrument's contracts leave the core, with their delivery reports:
        they are final, and in the log and the projections. Returns them, in order. The
        delivery book forgets the days no window still open to reports can reach."""
        contracts, by_account = self.contracts, self.account_contracts
        retired = [contracts.pop(cid) for cid in contract_ids]
        accounts: set[int] = set()
        reports = self.contract_deliveries
        for contract in retired:
            check(contract.state is ContractState.SETTLED, f"contract {contract.id} unsettled")
            accounts.update((contract.buyer, contract.seller))
            reports.pop(contract.id, None)
        keep_only(by_account, accounts, contracts)
        if retired:
            gone = {c.id for c in retired}
            deliveries = self.deliveries
            for number in [n for n, row in deliveries.items() if row[0] in gone]:
                del deliveries[number]
        # Windows never cross a midnight, and every window ending by now - grace has
        # settled (settlement runs in time order): a day ending before that is closed.
        self.delivery_book.forget_before((self._time.now - self._time.grace_us) // DAY_US)
        return retired

    # ------------------------------------------------------------------ integrity
    def check(self, account_ids: Iterable[int]) -> None:
        """The delivery book against the pools; and, across components, each account's
        escrow and collateral in the ledger against its contracts not yet settled."""
        self.delivery_book.check(self._sites.pool_counts())
        escrow: dict[int, int] = {}
        collateral: dict[int, int] = {}
        for c in self.contracts.values():
            if c.state is not ContractState.SETTLED:
                escrow[c.buyer] = escrow.get(c.buyer, 0) + c.escrow
                collateral[c.seller] = collateral.get(c.seller, 0) + c.collateral
        balance = self._ledger.balance
        for account_id in account_ids:
            check(
                balance(account_id, AccountKind.ESCROW) == escrow.get(account_id, 0),
                f"escrow of {account_id} differs from its open contracts",
            )
            check(
                balance(account_id, AccountKind.COLLATERAL) == collateral.get(account_id, 0),
                f"collateral of {account_id} differs from its open contracts",
            )
