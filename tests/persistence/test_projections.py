"""Every operation kind writes its log row and its projection rows (the log row first).

The rows are then compared with the core they were rendered from: orders, contracts,
instruments, settlements, the per-instrument event sequence, and the ledger (the
ledger_transfers table balances, and per account it adds up to the core's balance).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from sqlalchemy import func, select
from sqlmodel import SQLModel

import api.db.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from api.db.store import Store
from api.service import ExchangeService
from exchange.core import OrderState, Rejected
from exchange.genesis import packaged_catalog
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
    Deposit,
    HaltInstrument,
    IssueApiKey,
    Operation,
    PlaceOrder,
    RegisterSite,
    ReportDelivery,
    ResumeInstrument,
    RevokeApiKey,
    UpdateTier,
    Withdraw,
    decode_operation,
    encode_operation,
)
from exchange.operations import FigureIn as Figure
from exchange.orders import Side
from exchange.products import HOUR_US
from exchange.settlement import Contract
from exchange.units import format_money

from .market import (
    CNY,
    FULL_HOUR_DEVICE_SECONDS,
    H100,
    REFERENCE_PRICE,
    START_US,
    TIER,
    archived,
    assert_projections_agree,
    create_tier,
    realistic_stream,
    rows,
    setup_market,
    start_service,
    window_end,
    window_start,
)


def _counts(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {
            name: int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)
            for name, table in SQLModel.metadata.tables.items()
        }


def _one(store: Store, table: str, **where: Any) -> dict[str, Any]:
    found = rows(store, table, **where)
    assert len(found) == 1, f"{table} {where}: {found}"
    return found[0]


class Recorder:
    """Runs operations through the service and checks what each one added to each table."""

    def __init__(self, service: ExchangeService) -> None:
        self.service = service
        self.store = service.store
        self.counts = _counts(self.store)
        self.kinds: set[str] = set()

    def run(self, op: Operation, exact: dict[str, int], grows: tuple[str, ...] = ()) -> Any:
        """Apply ``op``; ``exact`` tables grow by exactly that, ``grows`` by at least one,
        every other table not at all. The operation log grows by one row holding ``op``."""
        seq_before = self.service.seq
        result = self.service.run(op)
        counts = _counts(self.store)
        delta = {k: counts[k] - self.counts[k] for k in counts if counts[k] != self.counts[k]}
        self.counts = counts
        assert delta.pop("operation_log") == 1
        for name in grows:
            assert delta.pop(name, 0) > 0, f"{type(op).__name__} wrote no {name} rows"
        assert delta == exact, type(op).__name__
        logged = _one(self.store, "operation_log", seq=seq_before + 1)
        assert logged["kind"] == type(op).__name__
        assert decode_operation(bytes(logged["payload"])) == op
        assert bytes(logged["payload"]) == encode_operation(op)
        assert logged["applied_at"] == self.service.core.now
        self.kinds.add(type(op).__name__)
        return result

    def rejected(self, op: Operation, code: str) -> None:
        with pytest.raises(Rejected) as info:
            self.service.run(op)
        assert info.value.code == code
        assert _counts(self.store) == self.counts, "a refused operation wrote rows"


def test_every_operation_kind_writes_itsrows(open_store: Callable[..., Store]) -> None:
    store = open_store()
    service = start_service(store)
    core = service.core
    r = Recorder(service)

    # ---- accounts and money
    lab = r.run(CreateAccount("lab", "trader"), {"accounts": 1})
    dc = r.run(CreateAccount("dc", "trader"), {"accounts": 1})
    assert _one(store, "accounts", id=lab.id) == {
        "id": lab.id,
        "name": "lab",
        "role": "trader",
        "created_at": START_US,
    }
    r.run(Deposit(lab.id, 1_000 * CNY), {"ledger_transfers": 1})
    r.run(Deposit(dc.id, 1_000 * CNY), {"ledger_transfers": 1})

    # ---- API keys: a prefix and a digest, never the key
    digest = "sha256$" + "ab" * 32
    keyed = r.run(CreateAccount("ops", "admin", "sk_AbCdE", digest), {"accounts": 1, "api_keys": 1})
    key_row = _one(store, "api_keys", account_id=keyed.id)
    assert (key_row["prefix"], key_row["key_hash"], key_row["revoked_at"]) == (
        "sk_AbCdE",
        digest,
        None,
    )
    spare = r.run(IssueApiKey(keyed.id, "sk_FgHiJ", "sha256$" + "cd" * 32), {"api_keys": 1})
    r.rejected(IssueApiKey(keyed.id, "sk_FgHiJ", "sha256$" + "cd" * 32), "api_key_exists")
    r.run(RevokeApiKey(spare.id), {})
    assert _one(store, "api_keys", id=spare.id)["revoked_at"] == START_US
    r.rejected(RevokeApiKey(spare.id), "api_key_revoked")
    r.run(Withdraw(lab.id, 1 * CNY + 1), {"ledger_transfers": 1})
    withdrawal = _one(store, "ledger_transfers", code="withdrawal")
    assert withdrawal["amount"] == "1.0000000001"  # exact to the last minor unit
    assert (withdrawal["debit_owner"], withdrawal["debit_kind"]) == (lab.id, "available")
    assert (withdrawal["credit_owner"], withdrawal["credit_kind"]) == (0, "external")
    r.rejected(Withdraw(lab.id, 10_000 * CNY), "insufficient_funds")

    # ---- catalog, classes, tiers
    model = r.run(
        AddHardware(
            vendor="Acme",
            model="X1",
            figures={"fp16": Figure("800")},
            memory_gb="96",
            memory_bandwidth_gbs="3000",
            tdp_w="700",
            quality="U",
            source="vendor datasheet",
            id="acme-x1",
        ),
        {"hardware": 1},
    )
    assert _one(store, "hardware", id=model.id)["confirmed"] is False
    r.run(ConfirmHardware(model.id), {})
    assert _one(store, "hardware", id=model.id)["confirmed"] is True
    r.run(packaged_catalog(), {})  # the packaged catalog again: it lives in the log alone
    r.run(CreateGpuClass("H", "Hopper", "fp16", "700"), {"gpu_classes": 1})
    assert _one(store, "gpu_classes", code="H")["precision"] == "fp16"
    r.run(create_tier(), {"tiers": 1}, grows=("instruments", "events"))
    listed = rows(store, "instruments")
    assert {row["symbol"] for row in listed} == set(core.instruments)
    assert {row["state"] for row in listed} == {"open"}
    r.run(UpdateTier(TIER, maker_fee_bps=4), {})
    assert msgspec.json.decode(_one(store, "tiers", code=TIER)["payload"])["maker_fee_bps"] == 4

    # ---- sites and pools
    site = r.run(RegisterSite(dc.id, "sh", "east", "1.25", "0"), {"sites": 1})
    assert _one(store, "sites", id=site.id)["owner"] == dc.id
    pool = r.run(AddPool(dc.id, site.id, H100, 100), {"pools": 1})
    assert _one(store, "pools", id=pool.id)["hardware_id"] == H100

    # ---- orders, trades, contracts
    symbol = list(core.instruments)[1]
    other = list(core.instruments)[2]
    sell = r.run(
        PlaceOrder(dc.id, symbol, Side.SELL, quantity=100_000, price=REFERENCE_PRICE),
        {"orders": 1, "ledger_transfers": 1},
        grows=("events",),
    )
    assert _one(store, "orders", id=sell.id)["status"] == "open"
    buy = r.run(
        PlaceOrder(lab.id, symbol, Side.BUY, quantity=40_000, price=REFERENCE_PRICE),
        {"orders": 1, "trades": 1, "contracts": 1},
        grows=("events", "ledger_transfers"),
    )
    assert _one(store, "orders", id=buy.id)["status"] == "filled"
    assert _one(store, "orders", id=sell.id)["status"] == "partially_filled"
    trade = _one(store, "trades", taker_order_id=buy.id)
    assert (trade["maker_order_id"], trade["quantity"], trade["price"]) == (
        sell.id,
        40_000,
        REFERENCE_PRICE,
    )
    (contract_id,) = core.contracts
    assert _one(store, "contracts", id=contract_id)["state"] == "open"
    # A higher ask needs more collateral: the hold grows by one transfer.
    r.run(
        AmendOrder(dc.id, sell.id, price=REFERENCE_PRICE + 1_000),
        {"ledger_transfers": 1},
        grows=("events",),
    )
    assert _one(store, "orders", id=sell.id)["price"] == REFERENCE_PRICE + 1_000
    bid = r.run(
        PlaceOrder(lab.id, other, Side.BUY, quantity=10_000, price=REFERENCE_PRICE - 5_000),
        {"orders": 1, "ledger_transfers": 1},
        grows=("events",),
    )
    r.run(CancelOrder(lab.id, bid.id), {"ledger_transfers": 1}, grows=("events",))
    assert _one(store, "orders", id=bid.id)["status"] == "cancelled"
    r.rejected(CancelOrder(lab.id, bid.id), "order_not_open")
    r.run(CancelAll(dc.id), {}, grows=("events", "ledger_transfers"))
    assert _one(store, "orders", id=sell.id)["status"] == "cancelled"

    # ---- instrument lifecycle
    r.run(HaltInstrument(other), {}, grows=("events",))
    assert _one(store, "instruments", symbol=other)["state"] == "halted"
    r.run(ResumeInstrument(other), {}, grows=("events",))
    assert _one(store, "instruments", symbol=other)["state"] == "open"

    # ---- delivery and settlement
    r.rejected(
        ReportDelivery(dc.id, contract_id, pool.id, FULL_HOUR_DEVICE_SECONDS),
        "delivery_not_started",
    )
    r.run(
        AdvanceClock(window_start(core, symbol) + 60_000_000),
        {},
        grows=("events", "instruments"),
    )
    assert _one(store, "contracts", id=contract_id)["state"] == "delivering"
    assert _one(store, "instruments", symbol=symbol)["state"] == "delivering"
    r.run(
        ReportDelivery(dc.id, contract_id, pool.id, FULL_HOUR_DEVICE_SECONDS // 2),
        {"deliveries": 1},
    )
    delivery = _one(store, "deliveries", contract_id=contract_id)
    assert (delivery["pool_id"], delivery["device_seconds"]) == (pool.id, 180_000)
    delivered = _one(store, "contracts", id=contract_id)["delivered_quantity"]
    assert delivered == core.contracts[contract_id].delivered_quantity > 0
    orders = [o for o in core.orders.values() if o.symbol == symbol]
    r.run(
        AdvanceClock(window_end(core, symbol) + 2 * HOUR_US),
        {"settlements": 1},
        grows=("events", "instruments", "ledger_transfers", "archive"),
    )
    # Settled, the instrument's orders and contract left the core for the archive.
    assert contract_id not in core.contracts
    assert not any(o.symbol == symbol for o in core.orders.values())
    contract = msgspec.msgpack.decode(
        _one(store, "archive", kind="contract", id=contract_id)["payload"], type=Contract
    )
    for order in orders:
        archived = _one(store, "archive", kind="order", id=order.id)
        assert msgspec.msgpack.decode(archived["payload"], type=OrderState) == order
        assert (archived["account_id"], archived["status"]) == (order.account_id, order.status)
    fills = rows(store, "archive", kind="fill")
    assert len(fills) == sum(len(o.fills) for o in orders) > 0
    settled = _one(store, "settlements", contract_id=contract_id)
    assert settled == {
        "contract_id": contract_id,
        "settled_at": contract.settled_at,
        "delivered_quantity": contract.delivered_quantity,
        "seller_paid": format_money(contract.seller_paid),
        "fees": format_money(contract.fees),
        "refunded": format_money(contract.refunded),
        "penalty": format_money(contract.penalty_paid),
    }
    assert _one(store, "contracts", id=contract_id)["state"] == "settled"

    operation_kinds = {cls.__name__ for cls in Operation.__args__}  # type: ignore[attr-defined]
    assert r.kinds == operation_kinds, "an operation kind is not covered"
    assert_projections_agree(service)


def test_projections_agree_after_a_stream(open_store: Callable[..., Store]) -> None:
    """A realistic stream (trades, cancels, amends, delivery, settlement) keeps every
    projection equal to the core after each group of commits."""
    store = open_store()
    service = start_service(store, check_invariants=False)
    market = setup_market(service.run)
    rng = random.Random(20261118)
    for index, op in enumerate(realistic_stream(rng, service.core, market)):
        with contextlib.suppress(Rejected):
            service.run(op)
        if index % 97 == 0:
            assert_projections_agree(service)
    assert service.core.contracts, "the stream made no trades"
    traded = set(market.symbols[1:5])
    assert not any(c.symbol in traded for c in service.core.contracts.values())  # retired
    settled = [c for c in archived(store, "contract", Contract).values() if c.symbol in traded]
    assert settled and all(c.settled_at is not None for c in settled)
    assert any(c.penalty_paid for c in settled), "no short delivery in the stream"
    assert_projections_agree(service)
