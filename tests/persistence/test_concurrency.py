"""Concurrency on real PostgreSQL: at most one of two racing effects wins, money is conserved.

The service is the single writer: concurrent requests are queued and applied one at a
time, each validated against the state the previous one left. These tests race requests
through the async path (``submit`` from concurrent tasks, and ``submit_many``), race two
raw database connections on the settlements table's primary key, and start a second
writer process against a database that already has one.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.exc
from sqlmodel import SQLModel

import api.db.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from api.db.store import Store
from api.service import ExchangeService, Submission
from exchange.core import DEFAULT_GRACE_US, Rejected
from exchange.ledger import Transfer
from exchange.operations import (
    AdvanceClock,
    CancelOrder,
    Deposit,
    Operation,
    PlaceOrder,
    ReportDelivery,
    Withdraw,
)
from exchange.orders import Side

from .market import (
    CNY,
    FULL_HOUR_DEVICE_SECONDS,
    REFERENCE_PRICE,
    Market,
    assert_conserved,
    assert_projections_agree,
    rows,
    setup_market,
    snapshot,
    start_service,
    window_end,
    window_start,
)

ROOT = Path(__file__).resolve().parents[2]


class Running:
    """A started service on its own event loop, for the duration of a test."""

    def __init__(self, service: ExchangeService) -> None:
        self.service = service
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(service.start())

    def race(self, ops: list[Operation], *, batch: bool = False) -> list[Any]:
        """Submit ``ops`` at once: from concurrent tasks, or as one ``submit_many``.
        Each result is the operation's outcome or its Rejected. Returns once their
        projections are written too (the tests read the tables)."""

        async def main() -> list[Any]:
            if batch:
                items = await self.service.submit_many([Submission(op) for op in ops])
                out = [item.error if item.error is not None else item.outcome for item in items]
            else:
                tasks = [asyncio.create_task(self.service.submit(op)) for op in ops]
                out = list(await asyncio.gather(*tasks, return_exceptions=True))
            await self.service.flush()
            return out

        return self.loop.run_until_complete(main())

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        try:
            self.loop.run_until_complete(self.service.stop())
        finally:
            self.loop.close()


@pytest.fixture
def running(open_pg_store: Callable[..., Store]) -> Any:
    started: list[Running] = []

    def start() -> tuple[Running, Market]:
        service = start_service(open_pg_store())
        market = setup_market(service.run)
        run = Running(service)
        started.append(run)
        return run, market

    yield start
    for run in started:
        run.stop()


def _trade(service: ExchangeService, market: Market, symbol: str, quantity: int) -> int:
    """A resting sell taken by a buy: one contract; returns its id."""
    service.run(PlaceOrder(market.dc, symbol, Side.SELL, quantity=quantity, price=REFERENCE_PRICE))
    buy = service.run(
        PlaceOrder(market.lab, symbol, Side.BUY, quantity=quantity, price=REFERENCE_PRICE)
    )
    (fill,) = buy.fills
    return int(fill.contract_id)


# ---------------------------------------------------------------------- settlement
def test_double_settlement_has_exactly_one_winner(
    running: Any, open_pg_store: Callable[..., Store]
) -> None:
    run, market = running()
    service = run.service
    core = service.core
    first = _trade(service, market, market.symbol, 40_000)
    second = _trade(service, market, market.symbol, 30_000)
    later = _trade(service, market, market.symbols[3], 20_000)
    service.run(AdvanceClock(window_start(core, market.symbol) + 60_000_000))
    for contract_id, share in ((first, 50), (second, 30)):  # within the pool's hour
        service.run(
            ReportDelivery(
                market.dc, contract_id, market.pool, FULL_HOUR_DEVICE_SECONDS * share // 100
            )
        )
    settle_at = window_end(core, market.symbol) + DEFAULT_GRACE_US

    # Two clock advances racing to the settlement time: the first settles, the second
    # finds the contracts settled and does nothing to them.
    results = run.race([AdvanceClock(settle_at), AdvanceClock(settle_at + 1)])
    assert results == [settle_at, settle_at + 1]
    reader = open_pg_store(migrate=False)
    assert sorted(r["contract_id"] for r in rows(reader, "settlements")) == [first, second]
    for contract_id in (first, second):
        payments = rows(reader, "ledger_transfers", ref=f"contract:{contract_id}", code="payment")
        assert len(payments) == 1, f"contract {contract_id} paid {len(payments)} times"

    # The core path refuses a second settlement without changing anything.
    before = core.state_hash()
    assert core.settle_contract(first) is False
    changes = core.take_changes()
    assert (changes.transfers, changes.settled, changes.events) == ([], [], [])
    assert core.state_hash() == before
    assert_conserved(core, reader.engine)
    assert_projections_agree(service)

    # Two connections inserting the settlement row of one contract at the same moment:
    # the primary key lets exactly one commit.
    settlements = SQLModel.metadata.tables["settlements"]
    row = {
        "contract_id": later,
        "settled_at": settle_at,
        "delivered_quantity": 0,
        "seller_paid": "0.00",
        "fees": "0.00",
        "refunded": "0.00",
        "penalty": "0.00",
    }
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def insert() -> None:
        with reader.engine.connect() as conn:
            barrier.wait()
            try:
                with conn.begin():
                    conn.execute(settlements.insert(), row)
                    time.sleep(0.05)  # keep it uncommitted while the other one tries
                outcomes.append("committed")
            except sqlalchemy.exc.IntegrityError:
                outcomes.append("duplicate")

    threads = [threading.Thread(target=insert) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["committed", "duplicate"]

    # The writer cannot record that contract's settlement a second time either: the
    # projection's commit is refused. The operation was logged before its projection: it
    # is durable, the projections stop short of it and are retried, and trading goes on.
    seq = service.seq
    service.run(AdvanceClock(window_end(core, market.symbols[3]) + 2 * DEFAULT_GRACE_US))
    assert service.projection_error is not None
    service.run(Deposit(market.lab, 1))
    assert reader.count("operation_log") == seq + 2
    assert reader.projected_seq() == seq
    run.stop()
    # A restart replays the intact log and starts; it meets the same conflicting row and
    # keeps the tables behind their watermark rather than refuse to start or serve
    # tables that disagree with the log.
    restarted = start_service(open_pg_store())
    assert restarted.seq == seq + 2
    assert restarted.projection_error is not None
    assert reader.projected_seq() == seq


# ---------------------------------------------------------------------- withdrawals
@pytest.mark.parametrize("batch", [False, True], ids=["tasks", "submit_many"])
def test_racing_withdrawals_of_one_balance(
    running: Any, open_pg_store: Callable[..., Store], batch: bool
) -> None:
    run, market = running()
    service = run.service
    balance = service.core.ledger.available(market.lab)
    assert balance > 0
    reader = open_pg_store(migrate=False)

    results = run.race([Withdraw(market.lab, balance), Withdraw(market.lab, balance)], batch=batch)

    won = [r for r in results if isinstance(r, Transfer)]
    lost = [r for r in results if isinstance(r, Rejected)]
    assert len(won) == 1 and len(lost) == 1, results
    assert lost[0].code == "insufficient_funds"
    assert service.core.ledger.available(market.lab) == 0
    withdrawals = rows(reader, "ledger_transfers", code="withdrawal", debit_owner=market.lab)
    assert len(withdrawals) == 1
    assert_conserved(service.core, reader.engine)

    # Two partial withdrawals that together exceed the balance: again one wins.
    service.run(Deposit(market.lab, 10 * CNY))
    part = 6 * CNY
    results = run.race([Withdraw(market.lab, part), Withdraw(market.lab, part)], batch=batch)
    assert sorted(type(r).__name__ for r in results) == ["Rejected", "Transfer"]
    assert service.core.ledger.available(market.lab) == 4 * CNY
    assert_conserved(service.core, reader.engine)
    assert_projections_agree(service)


# ---------------------------------------------------------------------- cancel vs fill
def test_cancel_racing_a_fill_has_exactly_one_outcome(
    running: Any, open_pg_store: Callable[..., Store]
) -> None:
    run, market = running()
    service = run.service
    reader = open_pg_store(migrate=False)
    rng = random.Random(20261118)
    quantity = 25_000
    seen = set()
    for round_ in range(24):
        symbol = market.symbols[1 + round_ % 3]
        resting = service.run(
            PlaceOrder(market.dc, symbol, Side.SELL, quantity=quantity, price=REFERENCE_PRICE)
        )
        cancel = CancelOrder(market.dc, resting.id)
        take = PlaceOrder(market.lab, symbol, Side.BUY, quantity=quantity, price=REFERENCE_PRICE)
        ops: list[Operation] = [cancel, take]
        rng.shuffle(ops)
        results = dict(zip(map(id, ops), run.race(ops, batch=rng.random() < 0.5), strict=True))
        cancelled, taker = results[id(cancel)], results[id(take)]
        assert not isinstance(taker, BaseException), taker
        trades = rows(reader, "trades", maker_order_id=resting.id)
        row = rows(reader, "orders", id=resting.id)[0]
        if isinstance(cancelled, Rejected):
            # The fill won: one trade for the whole order; the cancel found nothing open.
            assert cancelled.code in ("order_not_open", "order_not_found")
            assert [t["quantity"] for t in trades] == [quantity]
            assert row["status"] == "filled" and taker.status.value == "filled"
            seen.add("fill")
        else:
            # The cancel won: no trade; the buy rests untouched.
            assert not isinstance(cancelled, BaseException), cancelled
            assert trades == []
            assert row["status"] == "cancelled" and taker.filled == 0
            service.run(CancelOrder(market.lab, taker.id))
            seen.add("cancel")
        assert_conserved(service.core, reader.engine)
    assert seen == {"fill", "cancel"}
    assert_projections_agree(service)


# ---------------------------------------------------------------------- second writer
def _second_writer(url: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.persistence.second_writer", url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()


def test_a_second_writer_process_is_locked_out(
    open_store: Callable[..., Store], db_url: str
) -> None:
    """While one service writes, another process cannot become a writer of the database;
    once the first is gone, it can, and it continues the same log."""
    store = open_store()
    service = start_service(store)
    setup_market(service.run)
    before = snapshot(service.core)
    seq = service.seq

    assert _second_writer(db_url) == ["LOCKED"]
    service.run(Deposit(1, 1))  # the first writer is unaffected
    assert store.count("operation_log") == seq + 1
    assert snapshot(service.core) != before

    store.close()
    deadline = time.monotonic() + 10
    while (out := _second_writer(db_url)) == ["LOCKED"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert out == ["STARTED", str(seq + 1), "ACK", str(seq + 2)]
    reopened = start_service(open_store())
    assert reopened.seq == seq + 2
    assert_conserved(reopened.core, reopened.store.engine)


@pytest.mark.parametrize("link", ["hard", "symbolic"])
def test_a_second_writer_through_a_link_to_the_file_is_locked_out(
    tmp_path: Path, link: str
) -> None:
    """The SQLite writer lock is the database file's own (its inode), not its path: a
    second writer opening the same file by a hard or symbolic link is locked out too, so
    two writers never acknowledge operations on one file."""
    path = tmp_path / "exchange.db"
    store = Store(f"sqlite:///{path}")
    try:
        service = start_service(store)
        setup_market(service.run)
        other = tmp_path / "elsewhere"
        other.mkdir()
        linked = other / "same.db"
        if link == "hard":
            os.link(path, linked)
        else:
            linked.symlink_to(path)

        assert _second_writer(f"sqlite:///{linked}") == ["LOCKED"]
        seq = service.seq
        service.run(Deposit(1, 1))  # the first writer is unaffected
        assert store.count("operation_log") == seq + 1
    finally:
        store.close()
