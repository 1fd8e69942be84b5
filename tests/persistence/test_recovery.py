"""Restart and replay: the operation log rebuilds the exchange exactly.

A realistic stream (orders that trade, cancels, amends, clock advances through gate
closure, delivery and settlement) runs on a service that is restarted several times on
the same database, while an in-memory twin core applies the same operations without ever
restarting. After every restart the rebuilt core equals the one before it (books, holds,
balances, per-instrument sequence numbers, state hash), and at the end it equals the twin.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any

import pytest

import api.db.store as store_module
from api.db.store import Store, WriterLocked
from api.service import ExchangeService, ProjectionsUnavailable
from exchange.core import ExchangeCore, Rejected, replay
from exchange.genesis import genesis_operations
from exchange.operations import Deposit, Operation, PlaceOrder
from exchange.orders import Side

from .market import (
    REFERENCE_PRICE,
    START_US,
    assert_conserved,
    assert_projections_agree,
    core_options,
    genesis_core,
    realistic_stream,
    setup_market,
    snapshot,
    start_service,
)

SEED = 7_2026


class Twin:
    """A service and an in-memory core fed the same operations; outcomes must agree."""

    def __init__(self, service: ExchangeService) -> None:
        self.service = service
        self.core = genesis_core()
        self.accepted = 0

    def run(self, op: Operation) -> Any:
        try:
            result = self.service.run(op)
        except Rejected as exc:
            try:
                self.core.apply(op)
            except Rejected as twin_exc:
                assert twin_exc.code == exc.code
            else:  # pragma: no cover - a failing test
                raise AssertionError(f"{op} refused by the service only: {exc.code}") from exc
            finally:
                self.core.take_changes()
            return None
        self.core.apply(op)
        self.core.take_changes()
        self.accepted += 1
        return result


def _restart(service: ExchangeService, open_store: Callable[..., Store]) -> ExchangeService:
    before = snapshot(service.core)
    seq = service.seq
    service.store.close()
    restarted = start_service(open_store())
    assert restarted.seq == seq
    assert snapshot(restarted.core) == before
    return restarted


def test_restart_rebuilds_exactly(open_store: Callable[..., Store]) -> None:
    rng = random.Random(SEED)
    twin = Twin(start_service(open_store(), check_invariants=False))
    market = setup_market(twin.run)
    restarts = 0
    # The stream reads the twin: the service is replaced at every restart.
    for index, op in enumerate(realistic_stream(rng, twin.core, market)):
        twin.run(op)
        if index % 150 == 149:  # mid-trading, mid-delivery, after settlement
            twin.service = _restart(twin.service, open_store)
            restarts += 1
    service = twin.service
    core = service.core
    assert restarts >= 3
    assert core.contracts and core.query.contract_count() > len(core.contracts), "none settled"
    assert any(o.is_open for o in core.orders.values()), "nothing resting to recover"
    assert any(h.pending for h in core.ledger.holds.values()), "no open hold to recover"
    assert snapshot(core) == snapshot(twin.core)
    assert_conserved(core, service.store.engine)

    service = _restart(service, open_store)
    # The restarted service continues where the other stopped: the next order's events
    # take the next sequence numbers of their instrument, and the twin agrees.
    symbol = market.symbols[-1]
    seq_before = service.core.engine.book(symbol).seq
    twin.service = service
    order = twin.run(
        PlaceOrder(market.lab, symbol, Side.BUY, quantity=5_000, price=REFERENCE_PRICE)
    )
    assert order is not None
    assert service.core.engine.book(symbol).seq > seq_before
    assert snapshot(service.core) == snapshot(twin.core)
    assert_conserved(service.core, service.store.engine)


def test_operation_log_replays_to_the_same_state(open_store: Callable[..., Store]) -> None:
    store = open_store()
    service = start_service(store, check_invariants=False)
    market = setup_market(service.run)
    rng = random.Random(SEED + 1)
    for op in realistic_stream(rng, service.core, market):
        with contextlib.suppress(Rejected):
            service.run(op)
    logged = list(store.operations())
    assert [seq for seq, _ in logged] == list(range(1, service.seq + 1)), "gaps in the log"
    assert [op for _, op in logged[:2]] == genesis_operations(START_US)
    ops = [op for _, op in logged]

    # Every logged operation is accepted again, in order, to the same state.
    strict = ExchangeCore(**core_options())
    for op in ops:
        strict.apply(op)
        strict.take_changes()
    assert strict.state_hash() == service.core.state_hash()
    assert replay(ops, **core_options()).state_hash() == service.core.state_hash()
    assert snapshot(strict) == snapshot(service.core)
    assert len(ops) > 300


def test_operations_past_the_projection_watermark_are_projected_on_restart(
    open_store: Callable[..., Store],
) -> None:
    """Acknowledged operations whose projections were never written (the process died
    first) are projected when the service starts again, before it serves."""
    service = start_service(open_store(), projection_delay=3600.0, projection_max=10**9)
    market = setup_market(service.run)
    projected = service.seq
    stream = realistic_stream(random.Random(SEED), service.core, market)

    async def crash_after_acks() -> None:
        await service.start()
        for op, _ in zip(stream, range(120), strict=False):
            with contextlib.suppress(Rejected):
                await service.submit(op)
        # Die without writing the projections: no flush, no stop.
        assert service._writer is not None
        service._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await service._writer

    asyncio.run(crash_after_acks())
    assert service.seq > projected + 50
    assert service.store.projected_seq() == projected, "projections were written early"
    assert service.projected_seq == projected
    service.store.close()

    restarted = start_service(open_store())
    assert restarted.seq == service.seq
    assert restarted.store.projected_seq() == restarted.seq == restarted.projected_seq
    assert snapshot(restarted.core) == snapshot(service.core)
    assert_projections_agree(restarted)
    assert_conserved(restarted.core, restarted.store.engine)


def test_a_failed_projection_write_keeps_trading_and_the_tables_catch_up(
    open_store: Callable[..., Store],
) -> None:
    """The log commits an order (acknowledged, durable); then its projection writes fail.
    Trading goes on (the log is intact); readers of the tables are told to retry
    (ProjectionsUnavailable, a 503); once the database takes them again the tables catch
    up by themselves. A start whose projection write fails still starts and serves."""
    service = start_service(open_store())
    market = setup_market(service.run)
    order = PlaceOrder(market.lab, market.symbol, Side.BUY, quantity=1_000, price=190_000)
    store = service.store
    working = store.write_projection

    def broken(batch: object) -> None:
        raise OSError("disk full while writing projections")

    async def caught_up() -> None:
        for _ in range(200):
            try:
                await service.flush()
                return
            except ProjectionsUnavailable:
                await asyncio.sleep(0.05)
        raise AssertionError("the projections never caught up")

    async def main() -> None:
        await service.start()
        try:
            store.write_projection = broken  # type: ignore[method-assign]
            placed = await service.submit(order)  # the log commit succeeds: acknowledged
            assert store.operation_at(service.seq) == order
            with pytest.raises(ProjectionsUnavailable):
                await service.flush()
            assert service.stopped is None and service.projection_error is not None
            await service.submit(Deposit(market.lab, 1))  # trading goes on
            assert placed.id in service.core.orders
            assert store.projected_seq() < service.seq
            store.write_projection = working  # type: ignore[method-assign]
            await caught_up()
            assert service.projection_error is None
            assert store.projected_seq() == service.seq
            assert_projections_agree(service)
            store.write_projection = broken  # type: ignore[method-assign]
            await service.submit(Deposit(market.lab, 1))
        finally:
            await service.stop()  # with one operation left unprojected

    asyncio.run(main())
    assert store.projected_seq() == service.seq - 1

    reopened = open_store()
    reopened.write_projection = broken  # type: ignore[method-assign]
    restarted = start_service(reopened)  # starts, its projections behind
    assert restarted.seq == service.seq
    assert restarted.projection_error is not None
    assert reopened.projected_seq() == restarted.seq - 1
    reopened.write_projection = Store.write_projection.__get__(reopened)  # type: ignore[method-assign]
    restarted.run(Deposit(market.lab, 1))  # its projection run writes the backlog too
    assert restarted.projection_error is None
    assert restarted.projected_seq == restarted.seq == reopened.projected_seq()
    assert_projections_agree(restarted)


def test_a_stopped_writer_says_why_at_error_with_the_operation_seq(
    open_store: Callable[..., Store], caplog: pytest.LogCaptureFixture
) -> None:
    service = start_service(open_store())
    market = setup_market(service.run)
    committed = service.seq

    def broken(batch: object) -> None:
        raise OSError("the disk is full")

    service.store.write = broken  # type: ignore[method-assign]
    caplog.set_level(logging.ERROR, "suanli.service")
    with pytest.raises(OSError):
        service.run(Deposit(market.lab, 1))
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    message = record.getMessage()
    assert f"operations up to {committed} were committed, {committed + 1} applied" in message
    assert "the disk is full" in message and "restart" in message
    assert record.exc_info is not None


def test_the_writer_lock_is_taken_before_migrating(
    open_store: Callable[..., Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second writer is turned away before it touches the schema."""
    open_store()  # the writer, holding its lock
    migrations: list[object] = []
    monkeypatch.setattr(store_module, "upgrade", migrations.append)
    with pytest.raises(WriterLocked):
        open_store(lock_wait_s=0)
    assert migrations == []


def test_writes_wait_once_the_projection_backlog_is_full(
    open_store: Callable[..., Store],
) -> None:
    """While the projection tables cannot be written, the operations they lack are held
    in memory up to a bound; past it, writes are refused (503) rather than grow memory
    without end, and accepted again once the tables catch up."""
    service = start_service(open_store(), projection_backlog_max=5)
    market = setup_market(service.run)
    store = service.store
    working = store.write_projection

    def broken(batch: object) -> None:
        raise OSError("the database is down")

    async def main() -> None:
        await service.start()
        try:
            store.write_projection = broken  # type: ignore[method-assign]
            accepted = 0
            with pytest.raises(ProjectionsUnavailable):
                for _ in range(100):
                    await service.submit(Deposit(market.lab, 1))
                    accepted += 1
            assert 0 < accepted <= 5
            assert len(service._unprojected) == 5
            store.write_projection = working  # type: ignore[method-assign]
            for _ in range(200):
                try:
                    await service.submit(Deposit(market.lab, 1))
                    break
                except ProjectionsUnavailable:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("writes were never accepted again")
            await service.flush()
            assert store.projected_seq() == service.seq
        finally:
            await service.stop()

    asyncio.run(main())
