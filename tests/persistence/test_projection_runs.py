"""How the projections are written behind the log while orders keep arriving.

Where the log waits for them (SQLite: one connection), a run of projections is written in
chunks with the log's groups in between, each chunk a transaction of its own that moves the
watermark, and without an fsync of its own. Everywhere, a chunk never runs ahead of the
committed log, and once flushed the tables say exactly what the core says.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable

import pytest

from api.db.store import Batch, Store
from api.service import ExchangeService, Submission
from exchange.core import Rejected
from exchange.operations import PlaceOrder, Withdraw

from .market import CNY, assert_projections_agree, order_stream, setup_market, start_service

N = 300


def _watermarks(service: ExchangeService, reader: Store) -> list[tuple[int, int]]:
    """Record, for each projection write, its watermark and the log's committed end
    (read through an independent connection) right after it."""
    seen: list[tuple[int, int]] = []
    write = service.store.write_projection

    def spied(batch: Batch) -> None:
        write(batch)
        mark = batch.upserts["projection_state"]["tables"]["seq"]
        seen.append((mark, reader.last_seq()))

    service.store.write_projection = spied  # type: ignore[method-assign]
    return seen


def test_chunked_projection_runs_follow_the_log(open_store: Callable[..., Store]) -> None:
    # Due only when flushed: the backlog (12 waves of 25) is then written in chunks
    # (the larger of 4 and twice the last group, so about 50 operations each).
    service = start_service(open_store(), projection_delay=3600.0, projection_chunk=4)
    market = setup_market(service.run)
    reader = open_store(migrate=False)
    ops = order_stream(market, N)
    marks = _watermarks(service, reader)

    async def main() -> None:
        await service.start()
        try:
            waves = [ops[i : i + 25] for i in range(0, N, 25)]
            for wave in waves:
                await asyncio.gather(*(service.submit(op) for op in wave))
            assert service.projected_seq < service.seq
            await service.flush()
        finally:
            await service.stop()

    asyncio.run(main())
    assert len(marks) > 1, "the projections were written in one run"
    watermarks = [mark for mark, _ in marks]
    assert watermarks == sorted(set(watermarks)), "watermarks must only move forward"
    assert all(mark <= logged for mark, logged in marks), "a projection ran ahead of the log"
    # Some run stopped short of the committed log: it was split into chunks.
    assert any(mark < logged for mark, logged in marks), "no run was written in chunks"
    assert watermarks[-1] == service.seq == reader.projected_seq()
    assert_projections_agree(service)


def test_sqlite_projection_commits_skip_their_fsync_log_commits_keep_it(
    open_store: Callable[..., Store],
) -> None:
    store = open_store()
    if store.dialect != "sqlite":
        pytest.skip("PostgreSQL projections commit on their own connection, durably")
    service = start_service(store, projection_delay=0.0)
    market = setup_market(service.run)
    levels: dict[str, set[int]] = {"log": set(), "projection": set()}
    inner = store._write

    def spied(conn, batch: Batch) -> None:  # type: ignore[no-untyped-def]
        level = conn.exec_driver_sql("PRAGMA synchronous").scalar()
        levels["log" if batch.operations else "projection"].add(level)
        inner(conn, batch)

    store._write = spied  # type: ignore[method-assign]

    async def main() -> None:
        await service.start()
        try:
            await asyncio.gather(*(service.submit(op) for op in order_stream(market, 40)))
            await service.flush()
        finally:
            await service.stop()

    asyncio.run(main())
    # FULL (2) fsyncs the write-ahead log at each commit; NORMAL (1) leaves it to the
    # next FULL commit.
    assert levels == {"log": {2}, "projection": {1}}
    assert_projections_agree(service)


def test_orders_leave_no_reference_cycles(open_store: Callable[..., Store]) -> None:
    """Accepted and refused orders are freed by reference counting: no garbage cycles
    for the collector, whose pauses would show as latency spikes under load."""
    service = start_service(open_store())
    market = setup_market(service.run)
    ops: list[PlaceOrder | Withdraw] = list(order_stream(market, 100))
    ops += [Withdraw(market.lab, 10**9 * CNY) for _ in range(20)]  # refused
    answered: list[tuple[object, str | None]] = []

    async def main() -> None:
        await service.start()
        try:
            await service.submit(ops[0])  # warm up: first-use caches
            gc.collect()
            gc.disable()
            gc.set_debug(gc.DEBUG_SAVEALL)
            for op in ops[1:]:
                with contextlib.suppress(Rejected):
                    await service.submit(op)
            await service.submit_many([Submission(op) for op in ops[1:50]])

            # Answered from callbacks that hold their submission (the WebSocket's way).
            def answer(item: Submission) -> Callable[[object], None]:
                # The code only: holding the refusal would keep alive whatever it holds.
                return lambda _: answered.append((item.outcome, item.error and item.error.code))

            for op in ops[1:50] + ops[-5:]:
                item = service.enqueue(op)
                assert item.future is not None
                item.future.add_done_callback(answer(item))
            await service.flush()
            await asyncio.sleep(0)
            # Last, so that the writer's last group (which its stopped task still holds)
            # is not the one under test.
            await service.submit(ops[1])
        finally:
            await service.stop()

    try:
        asyncio.run(main())
        gc.collect()
        cycles = [o for o in gc.garbage if isinstance(o, (Submission, PlaceOrder, Withdraw))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert cycles == []
    assert len(answered) == 54 and sum(error is not None for _, error in answered) >= 5
