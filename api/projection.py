"""Turn what operations changed in the core into rows of the durable store.

Two kinds of rows. The operation log row (:func:`log_row`) is written in the transaction
that acknowledges the operation: it alone makes the operation durable, since replaying the
log rebuilds everything. The projections (orders, trades, contracts, the ledger journal,
events, ...) are read models derived from the log: :func:`project` writes a run of
applied operations at once, after their log rows are committed, together with the
projection watermark (``projection_state``), the last operation they include. An order
touched by several operations of the run is written once, in its latest state.
Recovery re-projects whatever lies past the watermark (:class:`api.service.ExchangeService`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from api.archive import archive_rows
from api.db.chain import link
from api.db.store import Batch
from exchange.core import Changes, ExchangeCore, OrderState
from exchange.events import InstrumentListed, InstrumentStateChanged, Trade
from exchange.keys import ApiKeyRecord
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
    IssueApiKey,
    Operation,
    PlaceOrder,
    RegisterSite,
    ReportDelivery,
    RevokeApiKey,
    UpdateTier,
    encode_operation,
)
from exchange.settlement import Contract
from exchange.units import format_money

__all__ = [
    "Applied",
    "Retired",
    "applied",
    "contract_row",
    "db_text",
    "log_row",
    "order_row",
    "project",
]


class Applied(msgspec.Struct, gc=False):
    """One accepted operation waiting to be projected, with what it changed."""

    seq: int
    op: Operation
    result: Any
    changes: Changes
    # A delivery report's row, captured when applied (later reports append to the list).
    delivery: tuple[int, int, int, int, int] | None = None


def applied(core: ExchangeCore, seq: int, op: Operation, result: Any, changes: Changes) -> Applied:
    """Record an operation ``core`` has just applied, for projection later."""
    delivery = None
    if isinstance(op, ReportDelivery):
        number = core.query.delivery_count()
        delivery = (number, *core.query.delivery(number))
    return Applied(seq, op, result, changes, delivery)


def log_row(
    seq: int, applied_at: int, op: Operation, previous: bytes
) -> tuple[int, int, str, bytes, bytes]:
    """The operation log row of an accepted operation, its durable record, in the column
    order of :data:`api.db.store.LOG_COLUMNS`; ``previous`` is the chain link of the row
    before it, and the row's own link is its last column (api.db.chain)."""
    kind = type(op).__name__
    payload = encode_operation(op)
    return (seq, applied_at, kind, payload, link(previous, seq, applied_at, kind, payload))


_json = msgspec.json.Encoder()


def db_text(value: str | None, limit: int) -> str | None:
    """Text an outsider wrote, as a projection column can always hold it: NUL (which
    PostgreSQL's text refuses) as U+FFFD, at most ``limit`` characters (the column's).
    The edge and the core refuse both, but the log is the truth: a row of it written
    by an earlier version must still project, and never stop a start."""
    if value is None:
        return None
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    return value if len(value) <= limit else value[:limit]


# The busiest tables take tuple rows in these column orders (Batch.columns).
EVENT_COLUMNS = ("symbol", "seq", "type", "payload")
TRADE_COLUMNS = (
    "id",
    "symbol",
    "price",
    "quantity",
    "taker_side",
    "taker_order_id",
    "maker_order_id",
    "ts",
)
TRANSFER_COLUMNS = (
    "id",
    "ts",
    "debit_owner",
    "debit_kind",
    "credit_owner",
    "credit_kind",
    "amount",
    "code",
    "ref",
)
ORDER_COLUMNS = (
    "id",
    "client_order_id",
    "account_id",
    "symbol",
    "side",
    "order_type",
    "price",
    "quantity",
    "filled",
    "remaining",
    "status",
    "time_in_force",
    "created_at",
    "updated_at",
)


def order_values(o: OrderState) -> tuple[Any, ...]:
    """An order's row in :data:`ORDER_COLUMNS` order (str enums bind as their text)."""
    return (
        o.id,
        o.client_order_id if o.client_order_id is None else db_text(o.client_order_id, 64),
        o.account_id,
        o.symbol,
        o.side,
        o.order_type,
        o.price,
        o.quantity,
        o.filled,
        o.remaining,
        o.status,
        o.time_in_force,
        o.created_at,
        o.updated_at,
    )


def order_row(o: OrderState) -> dict[str, Any]:
    return dict(zip(ORDER_COLUMNS, order_values(o), strict=True))


def contract_row(c: Contract) -> dict[str, Any]:
    return {
        "id": c.id,
        "trade_id": c.trade_id,
        "symbol": c.symbol,
        "buyer": c.buyer,
        "seller": c.seller,
        "quantity": c.quantity,
        "price": c.price,
        "state": c.state.value,
        "delivered_quantity": c.delivered_quantity,
        "escrow": format_money(c.escrow),
        "collateral": format_money(c.collateral),
        "created_at": c.created_at,
        "settled_at": c.settled_at,
    }


def _tier_rows(batch: Batch, core: ExchangeCore) -> None:
    for record in core.query.tiers():
        code = record.tier.code
        tier = record.tier
        payload = {
            "tick": tier.tick,
            "lot": tier.lot,
            "min_quantity": tier.min_quantity,
            "max_quantity": tier.max_quantity,
            "price_band_bps": tier.price_band_bps,
            "maker_fee_bps": tier.maker_fee_bps,
            "taker_fee_bps": tier.taker_fee_bps,
            "shortfall_penalty_bps": tier.shortfall_penalty_bps,
            "min_green_grade": tier.min_green_grade.label if tier.min_green_grade else None,
            "regions": list(tier.regions),
            "arithmetic_intensity": tier.arithmetic_intensity,
            "window_hours": tier.window_hours,
            "list_ahead_hours": tier.list_ahead_hours,
            "gate_closure_minutes": tier.gate_closure_minutes,
            "admin_price": record.admin_price,
        }
        batch.upsert(
            "tiers",
            code,
            {
                "code": code,
                "precision": tier.precision.value,
                "gpu_class": tier.gpu_class,
                "status": record.status.value,
                "reference_price": record.reference,
                "payload": _json.encode(payload).decode(),
            },
        )


def _key_row(batch: Batch, key: ApiKeyRecord) -> None:
    """An API key's row: its prefix and digest, never the key."""
    batch.upsert(
        "api_keys",
        key.id,
        {
            "id": key.id,
            "account_id": key.account_id,
            "key_hash": key.digest,
            "prefix": key.prefix,
            "origin": key.origin,
            "created_at": key.created_at,
            "revoked_at": key.revoked_at,
        },
    )


class Retired(msgspec.Struct, gc=False):
    """Final records the core retired (with settled instruments), by id: where the rows
    of a changed order or contract come from once it is no longer in the core."""

    orders: dict[int, OrderState] = {}
    contracts: dict[int, Contract] = {}

    def add(self, changes: Changes) -> None:
        self.orders.update(changes.retired_orders)
        self.contracts.update(changes.retired_contracts)


def project(
    batch: Batch, core: ExchangeCore, run: list[Applied], retired: Retired | None = None
) -> None:
    """Add the projection rows of a run of applied operations, in order, to ``batch``.

    ``core`` must be in a state the run's last operation led to (upserted rows are taken
    from it; an order or contract it retired since is taken from ``retired``, which must
    hold every record retired by the run or after it, or from the run itself when
    ``retired`` is None); the watermarks are set to the last operation's seq.
    """
    if not run:
        return
    if retired is None:
        retired = Retired({}, {})
        for item in run:
            retired.add(item.changes)
    for table, columns in (
        ("events", EVENT_COLUMNS),
        ("trades", TRADE_COLUMNS),
        ("ledger_transfers", TRANSFER_COLUMNS),
        ("orders", ORDER_COLUMNS),
    ):
        batch.columns(table, columns)
    orders: set[int] = set()
    contracts: set[int] = set()
    tiers = False
    contract = _finder(core, retired)[1]
    for applied in run:
        tiers |= _project_one(batch, core, applied, orders, contracts, contract)
    rows = batch.upserts.setdefault("orders", {})
    order, contract = _finder(core, retired)
    for order_id in sorted(orders):
        rows[order_id] = order_values(order(order_id))
    for contract_id in sorted(contracts):
        batch.upsert("contracts", contract_id, contract_row(contract(contract_id)))
    for item in run:
        changes = item.changes
        if changes.retired_orders or changes.retired_contracts:
            for row in archive_rows(
                changes.retired_orders.values(), changes.retired_contracts.values()
            ):
                batch.upsert("archive", (row["kind"], row["id"]), row)
    if tiers:
        _tier_rows(batch, core)
    seq = run[-1].seq
    batch.upsert("projection_state", "tables", {"name": "tables", "seq": seq})
    batch.upsert("projection_state", "archive", {"name": "archive", "seq": seq})


def _finder(
    core: ExchangeCore, retired: Retired
) -> tuple[Callable[[int], OrderState], Callable[[int], Contract]]:
    """Look-ups of an order and a contract by id: the core's, else the retired record."""
    query = core.query

    def order(order_id: int) -> OrderState:
        found = query.order(order_id)
        return found if found is not None else retired.orders[order_id]

    def contract(contract_id: int) -> Contract:
        found = query.contract(contract_id)
        return found if found is not None else retired.contracts[contract_id]

    return order, contract


#: Events that write rows of their own besides their event row.
_ROW_EVENTS = frozenset({Trade, InstrumentListed, InstrumentStateChanged})
#: Operations whose rows are only events, transfers, orders and contracts.
_ORDER_OPERATIONS = frozenset({PlaceOrder, AmendOrder, CancelOrder, CancelAll})


def _project_one(
    batch: Batch,
    core: ExchangeCore,
    applied: Applied,
    orders: set[int],
    contracts: set[int],
    contract: Callable[[int], Contract],
) -> bool:
    """Rows of one operation; collects the orders and contracts to upsert. Returns whether
    the tiers' rows are to be rewritten."""
    op, result, changes = applied.op, applied.result, applied.changes
    encode = _json.encode
    events = batch.inserts.setdefault("events", [])
    for event in changes.events:
        kind = type(event)
        events.append((event.symbol, event.seq, kind.__name__, encode(event)))
        if kind not in _ROW_EVENTS:
            continue
        if isinstance(event, Trade):
            batch.insert(
                "trades",
                (
                    event.trade_id,
                    event.symbol,
                    event.price,
                    event.quantity,
                    event.taker_side,
                    event.taker_order_id,
                    event.maker_order_id,
                    event.ts,
                ),
            )
        elif isinstance(event, InstrumentListed | InstrumentStateChanged):
            inst = core.query.instrument(event.symbol)
            batch.upsert(
                "instruments",
                event.symbol,
                {
                    "symbol": event.symbol,
                    "tier": inst.instrument.tier.code,
                    "delivery_start": inst.instrument.window.start,
                    "delivery_end": inst.instrument.window.end,
                    "gate_closure": inst.instrument.gate_closure,
                    "state": inst.state.value,
                },
            )
    if changes.transfers:
        transfers = batch.inserts.setdefault("ledger_transfers", [])
        for t in changes.transfers:
            transfers.append(
                (
                    t.id,
                    t.ts,
                    t.debit_owner,
                    t.debit_kind,
                    t.credit_owner,
                    t.credit_kind,
                    format_money(t.amount),
                    t.code,
                    t.ref,
                )
            )
    orders.update(changes.orders)
    contracts.update(changes.contracts)
    for contract_id in changes.settled:
        c = contract(contract_id)
        batch.insert(
            "settlements",
            {
                "contract_id": c.id,
                "settled_at": c.settled_at,
                "delivered_quantity": c.delivered_quantity,
                "seller_paid": format_money(c.seller_paid),
                "fees": format_money(c.fees),
                "refunded": format_money(c.refunded),
                "penalty": format_money(c.penalty_paid),
            },
        )
    if type(op) in _ORDER_OPERATIONS:
        return False
    if isinstance(op, CreateAccount):
        batch.upsert(
            "accounts",
            result.id,
            {
                "id": result.id,
                "name": db_text(result.name, 100),
                "role": result.role,
                "created_at": result.created_at,
            },
        )
        for key in core.query.api_keys().of_account(result.id):
            _key_row(batch, key)
    elif isinstance(op, IssueApiKey | RevokeApiKey):
        _key_row(batch, result)
    elif isinstance(op, RegisterSite):
        site = result.site
        batch.upsert(
            "sites",
            result.id,
            {
                "id": result.id,
                "owner": result.owner,
                "name": db_text(result.name, 100),
                "region": site.region.value,
                "location": db_text(result.location, 200),
                "pue": str(site.pue),
                "green_share": str(site.green_share),
                "emission_factor": str(site.emission_factor),
                "emission_factor_version": site.emission_factor_version,
                "green_grade": site.green_grade.label,
            },
        )
    elif isinstance(op, AddPool):
        batch.upsert(
            "pools",
            result.id,
            {
                "id": result.id,
                "owner": result.owner,
                "site_id": result.site_id,
                "hardware_id": result.hardware_id,
                "count": result.count,
            },
        )
    elif isinstance(op, ReportDelivery):
        assert applied.delivery is not None, "a delivery report carries its row"
        delivery_id, contract_id, pool_id, device_seconds, ts = applied.delivery
        batch.insert(
            "deliveries",
            {
                "id": delivery_id,
                "contract_id": contract_id,
                "pool_id": pool_id,
                "device_seconds": device_seconds,
                "ts": ts,
            },
        )
    elif isinstance(op, CreateGpuClass):
        batch.upsert(
            "gpu_classes",
            result.code,
            {
                "code": result.code,
                "name": db_text(result.name, 100),
                "precision": result.precision.value,
                "payload": _json.encode(
                    {
                        "min_dense_tflops": str(result.min_dense_tflops),
                        "min_memory_gb": str(result.min_memory_gb),
                        "min_memory_bandwidth_gbs": str(result.min_memory_bandwidth_gbs),
                        "vendors": sorted(result.vendors) if result.vendors else None,
                        "models": sorted(result.models) if result.models else None,
                    }
                ).decode(),
            },
        )
    elif isinstance(op, AddHardware | ConfirmHardware):
        model = result
        batch.upsert(
            "hardware",
            model.id,
            {
                "id": model.id,
                "vendor": db_text(model.vendor, 60),
                "model": db_text(model.model, 120),
                "quality": model.quality.value,
                "confirmed": model.confirmed,
                "payload": _json.encode(
                    {
                        "peak_tflops": {p.value: str(v) for p, v in model.peak_tflops.items()},
                        "memory_gb": str(model.memory_gb) if model.memory_gb else None,
                        "memory_bandwidth_gbs": str(model.memory_bandwidth_gbs)
                        if model.memory_bandwidth_gbs
                        else None,
                        "tdp_w": str(model.tdp_w) if model.tdp_w else None,
                        "source": model.source,
                    }
                ).decode(),
            },
        )
    return isinstance(op, CreateTier | UpdateTier | AdvanceClock)
