"""Group commit: many operations share a transaction, and none is answered before it is durable.

Durability is checked from outside the service: a second, independent connection pool
(another Store on the same database) must already see an operation's log row (its durable
record: replaying the log rebuilds everything) at the moment its caller's await returns,
and its projection rows once the service's flush() returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import SQLModel

import api.db.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from api.db.store import Batch, Store
from api.service import ExchangeService, Submission
from exchange.core import OrderState, Rejected
from exchange.operations import Deposit, PlaceOrder, Withdraw
from exchange.orders import Side

from .market import (
    CNY,
    LOT,
    REFERENCE_PRICE,
    assert_conserved,
    order_stream,
    setup_market,
    snapshot,
    start_service,
)

N = 200


def _order_row(reader: Store, order_id: int) -> dict[str, object] | None:
    table = SQLModel.metadata.tables["orders"]
    with reader.engine.connect() as conn:
        row = conn.execute(select(table).where(table.c.id == order_id)).mappings().first()
    return None if row is None else dict(row)


def _logged_seqs(reader: Store) -> list[int]:
    return [seq for seq, _ in reader.operations()]


def _spy_commits(service: ExchangeService) -> list[int]:
    """Record how many operations each commit carried."""
    sizes: list[int] = []
    write = service.store.write

    def counted(batch: object) -> None:
        write(batch)  # type: ignore[arg-type]
        sizes.append(len(batch.operations))  # type: ignore[attr-defined]

    service.store.write = counted  # type: ignore[method-assign]
    return sizes


def test_submit_many_is_durable_when_it_returns(open_store: Callable[..., Store]) -> None:
    service = start_service(open_store())
    market = setup_market(service.run)
    reader = open_store(migrate=False)
    base_seq = service.seq
    ops: list[PlaceOrder | Withdraw] = list(order_stream(market, N))
    ops.insert(N // 2, Withdraw(market.lab, 10**9 * CNY))  # refused: too much
    sizes = _spy_commits(service)

    async def main() -> list[Submission]:
        await service.start()
        try:
            items = await service.submit_many([Submission(op) for op in ops])
            # Right after the await, before anything else runs: durable.
            for item in items:
                if item.error is None:
                    assert reader.operation_at(item.seq) == item.op, f"{item.seq} not durable"
            # The projections follow the log; flush() waits for them.
            await service.flush()
            assert service.projected_seq == service.seq
            assert reader.projected_seq() == service.seq
            for item in items:
                if item.error is None:
                    row = _order_row(reader, item.outcome.id)
                    assert row is not None, f"order {item.outcome.id} not projected"
                    assert row["status"] == service.core.orders[item.outcome.id].status.value
            return items
        finally:
            await service.stop()

    items = asyncio.run(main())
    refused = [item for item in items if item.error is not None]
    assert [type(item.op).__name__ for item in refused] == ["Withdraw"]
    assert refused[0].error is not None and refused[0].error.code == "insufficient_funds"
    accepted = len(items) - 1
    assert _logged_seqs(reader) == list(range(1, base_seq + accepted + 1))
    assert reader.count("orders") == N
    assert reader.count("trades") > 0
    assert sum(sizes) == accepted
    # The refused operation took no sequence number: the log has no gap.
    restarted = start_service(open_store())
    assert snapshot(restarted.core) == snapshot(service.core)
    assert_conserved(restarted.core, reader.engine)


def test_concurrent_submits_are_durable_before_their_futures_resolve(
    open_store: Callable[..., Store],
) -> None:
    service = start_service(open_store())
    market = setup_market(service.run)
    reader = open_store(migrate=False)
    base_seq = service.seq
    ops = order_stream(market, N)
    sizes = _spy_commits(service)

    async def main() -> int:
        await service.start()
        try:
            tasks = [asyncio.create_task(service.submit(op)) for op in ops]
            tasks.append(asyncio.create_task(service.submit(Deposit(market.lab, CNY))))
            seen = 0
            for next_done in asyncio.as_completed(tasks):
                result = await next_done
                seen += 1
                if not isinstance(result, OrderState):
                    continue  # the deposit's transfer
                # Resolved: the log already holds the order (read independently).
                logged = {getattr(op, "client_order_id", None) for _, op in reader.operations()}
                assert result.client_order_id in logged, f"order {result.id} not durable"
            await service.flush()
            for order in service.core.orders.values():
                row = _order_row(reader, order.id)
                assert row is not None and row["client_order_id"] == order.client_order_id
            return seen
        finally:
            await service.stop()

    assert asyncio.run(main()) == N + 1
    assert _logged_seqs(reader) == list(range(1, base_seq + N + 2))
    assert reader.count("orders") == N
    assert sum(sizes) == N + 1
    assert max(sizes) <= service.batch_max
    restarted = start_service(open_store())
    assert snapshot(restarted.core) == snapshot(service.core)
    assert_conserved(restarted.core, reader.engine)


def test_a_refusal_inside_a_batch_changes_nothing(open_store: Callable[..., Store]) -> None:
    """One refused operation among accepted ones: the others commit, it leaves no trace."""
    service = start_service(open_store())
    market = setup_market(service.run)
    good = order_stream(market, 4)
    bad = PlaceOrder(market.lab, "NO-SUCH-SYMBOL", Side.BUY, quantity=LOT, price=REFERENCE_PRICE)
    items = service.execute([Submission(good[0]), Submission(bad), Submission(good[1])])
    assert items[1].error is not None and items[1].error.code == "instrument_not_found"
    assert items[0].error is None and items[2].error is None
    assert service.store.count("orders") == 2
    with pytest.raises(Rejected, match="no instrument"):
        service.run(bad)
    assert service.store.count("orders") == 2
    service.store.close()
    restarted = start_service(open_store())
    assert restarted.core.state_hash() == service.core.state_hash()


def test_postgresql_log_only_groups_commit_as_one_autocommit_statement(
    open_store: Callable[..., Store],
) -> None:
    """On PostgreSQL a group of log rows alone is one INSERT in autocommit mode (one
    round trip, atomic, durable on return); groups with other rows keep a transaction."""
    store = open_store()
    if store.dialect != "postgresql":
        pytest.skip("the autocommit log path is PostgreSQL's")
    service = start_service(store)
    market = setup_market(service.run)
    reader = open_store(migrate=False)
    statements: list[tuple[bool, str]] = []
    # The log's statement goes to the driver directly (binary parameters): seen there.
    send = store._arrays

    def _seen(conn: Any, sql: str, arrays: Any) -> None:
        statements.append((conn.connection.driver_connection.autocommit, sql))
        send(conn, sql, arrays)

    store._arrays = _seen  # type: ignore[method-assign]

    async def main() -> None:
        await service.start()
        try:
            for op in order_stream(market, 40):
                order = await service.submit(op)
                assert reader.operation_at(service.seq) == op, f"order {order.id} not durable"

            # A group with rows beyond the log (an idempotency record) takes a transaction.
            def extra(outcome: object, batch: Batch) -> None:
                batch.insert(
                    "idempotency_keys",
                    {
                        "account_id": market.lab,
                        "key": "k-1",
                        "request_digest": "0" * 64,
                        "status": 201,
                        "body": "{}",
                        "created_at": 0,
                    },
                )

            await service.submit(Deposit(market.lab, CNY), extra=extra)
        finally:
            await service.stop()

    asyncio.run(main())
    logged = [(auto, sql) for auto, sql in statements if "INTO operation_log" in sql]
    assert len(logged) >= 41
    assert all(auto for auto, _ in logged[:-1]), "a log-only group ran inside a transaction"
    assert logged[-1][0] is False, "a group with other rows must be one transaction"
    assert reader.count("idempotency_keys") == 1
