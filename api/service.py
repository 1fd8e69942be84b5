"""The exchange service: the single writer around the pure core, with group commit.

Requests become :mod:`exchange.operations`. The writer takes every operation queued at
that moment (up to ``batch_max``), applies each to the in-memory
:class:`~exchange.core.ExchangeCore` in arrival order, renders each result at once, writes
the accepted operations' log rows in ONE transaction, and only after that commit answers
the callers and publishes the events. So an acknowledged operation is durable (the log
alone rebuilds the exchange), and many concurrent requests share one fsync (group commit).

The projection tables (orders, trades, contracts, the ledger journal, events...) are
written behind the log, in runs: ``projection_delay`` seconds after the oldest operation
they lack, once ``projection_max`` operations wait, or when :meth:`flush` is awaited
(read-your-writes for routes that read those tables); always at a moment when everything
applied is also committed, in a transaction of their own that moves the projection
watermark. Where the log waits for them (SQLite, one connection), a run is written in
chunks with the log's groups in between.

On start the service replays the operation log into a fresh core: books, holds,
balances, sequence numbers and the state hash come back exactly; operations past the
projection watermark are projected again. With a snapshot policy, start-up begins from the
newest usable snapshot (:mod:`api.snapshot`) and replays only the log after it, and the
writer takes a snapshot every so many operations or seconds, in a forked child that
serializes the copy-on-write image of the core while the writer goes on.

A failed commit leaves memory ahead of the disk; the service then stops accepting work
(fail-stop) and must be restarted, which replays the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import heapq
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from api import snapshot
from api.archive import archive_rows
from api.db.chain import GENESIS
from api.db.store import Batch, DatabaseRefused, Store
from api.projection import Applied, Retired, applied, log_row, project
from exchange.core import Changes, OrderState, Rejected
from exchange.events import Event
from exchange.genesis import begin_replay, genesis_operations, replaying_core
from exchange.ids import Timestamp
from exchange.invariants import InvariantViolation
from exchange.limits import CoreLimits
from exchange.operations import AdvanceClock, Operation

__all__ = [
    "ExchangeService",
    "ProjectionsUnavailable",
    "ServiceStopped",
    "Submission",
    "tune_gc",
    "wall_clock_us",
]

log = logging.getLogger("suanli.service")

Render = Callable[[Any], Any]


def tune_gc() -> None:
    """Garbage-collector settings for a long-running server process.

    The exchange keeps many long-lived objects (orders, contracts, books); with the default
    thresholds the collector rescans them every few thousand allocations, which shows up as
    100 ms latency spikes. Freeze what start-up built and collect less often: reference
    counting frees almost everything the writer allocates anyway.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


#: Queued by flush() to wake an idle writer; carries no operation.
_WAKE: Any = object()
#: How often an idle writer looks for a finished or a timed snapshot, seconds.
_SNAPSHOT_POLL_S = 1.0


def wall_clock_us() -> int:
    return time.time_ns() // 1_000


class ServiceStopped(RuntimeError):
    """The writer stopped after a failed commit; restart the service to recover."""


class ProjectionsUnavailable(ServiceStopped):
    """The projection tables cannot be written at the moment (the database refuses them):
    the log and trading go on, readers of those tables and, once the backlog is full,
    writers are asked to retry (503 with Retry-After). Unlike its base class it passes
    by itself, without a restart; it is one so that every handler of an unavailable
    service answers it."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass
class Submission:
    op: Operation
    render: Render | None = None
    # Extra rows for the same commit, given the rendered outcome (API keys, idempotency).
    extra: Callable[[Any, Batch], None] | None = None
    future: asyncio.Future[Any] | None = None
    outcome: Any = None
    error: Rejected | None = None
    seq: int = 0  # the operation log position, once accepted


@dataclass
class Published:
    """What one commit made public: engine events and rendered private updates."""

    events: list[Event] = field(default_factory=list)
    orders: list[OrderState] = field(default_factory=list)  # changed, in id order


#: A group being committed: its write, its items, what it publishes, its last seq.
InFlight = tuple["asyncio.Future[None]", list[Submission], Published, int]


class ExchangeService:
    """Owns the core and the store; the only code path that changes exchange state."""

    def __init__(
        self,
        store: Store,
        *,
        clock: str = "real",
        start_us: int | None = None,
        max_open_orders: int = 1_000,
        limits: CoreLimits | None = None,
        batch_max: int = 512,
        projection_max: int = 8_192,
        projection_delay: float = 0.05,
        projection_chunk: int | None = None,
        projection_backlog_max: int = 1_000_000,
        projection_retry_max_s: float = 30.0,
        check_invariants: bool = False,
        snapshots: snapshot.SnapshotPolicy | None = None,
    ) -> None:
        if clock not in ("real", "simulated"):
            raise ValueError("clock is 'real' or 'simulated'")
        self.store = store
        self.clock = clock
        self.batch_max = batch_max
        self.projection_max = projection_max
        self.projection_delay = projection_delay
        # Where the log waits for the projections (one connection, SQLite), a run is
        # written in chunks of this many operations, with the log's groups in between,
        # so that no order waits behind a whole run. Elsewhere a run is one transaction.
        if projection_chunk is None:
            projection_chunk = projection_max if store.concurrent_projections else 64
        self.projection_chunk = projection_chunk
        self.projection_backlog_max = projection_backlog_max
        self.projection_retry_max_s = projection_retry_max_s
        self.check_invariants = check_invariants
        # The log replays under no bounds and none of the refusals added since it was
        # written; the configured bounds and every rule hold from the end of the replay.
        self.core = replaying_core()
        limits = limits or CoreLimits(open_orders_per_instrument=max_open_orders)
        self.seq = 0
        #: The last operation whose log row is committed (acknowledged operations).
        self.committed_seq = 0
        #: The last operation the projection tables include (their watermark).
        self.projected_seq = 0
        self.stopped: BaseException | None = None
        #: Why the projection tables are behind, while the database refuses them.
        self.projection_error: BaseException | None = None
        self.listeners: list[Callable[[Published], None]] = []
        self._chain = GENESIS  # the chain link of the last log row
        self._queue: asyncio.Queue[Submission] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        # Applied and logged, not yet projected; and callers waiting for the projections.
        self._unprojected: list[Applied] = []
        # Records retired by operations not yet projected, and by which operation.
        self._retired = Retired({}, {})
        self._retired_at: deque[tuple[int, list[int], list[int]]] = deque()
        # Where projections commit on their own connection (PostgreSQL), their writes run
        # on this one thread, in order, while the log goes on being written.
        self._projector = (
            ThreadPoolExecutor(1, thread_name_prefix="suanli-projector")
            if store.concurrent_projections
            else None
        )
        self._projection_write: asyncio.Future[None] | None = None
        self._projection_backoff_s = 0.0
        self._projection_retry_at = 0.0
        self._last_group = 0  # operations in the last group written to the log
        # How many of the oldest unprojected operations a projection write in flight
        # holds: they stay pending (a failed write is retried) but are not waiting.
        self._projecting = 0
        self._unprojected_since = 0.0  # when the oldest operation waiting was applied
        self._flush_waiters: list[asyncio.Future[None]] = []
        # (seq, tiebreak, future): callers waiting for a log position to be committed.
        self._commit_waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        #: Where and when snapshots are taken (None: never, and start-up replays it all).
        self.snapshots = snapshots
        #: The operation of the newest snapshot written or recovered from (0: none).
        self.snapshot_seq = 0
        #: The operation start-up began its replay after (0: the whole log).
        self.recovered_from = 0
        self.recovery_seconds = (0.0, 0.0)
        #: How long the writer paused for each of the latest snapshots (the fork), seconds.
        self.snapshot_pauses: deque[float] = deque(maxlen=64)
        self._snapshot_at = time.monotonic()  # when the last snapshot was started
        self._snapshot_retry_at = 0.0  # after a failed snapshot, not before this
        self._snapshot_child: tuple[int, int, float] | None = None  # pid, seq, started
        store.lock_writer()
        try:
            self._recover()
        except BaseException:
            store.close()  # release the writer lock: this service will never run
            if self._projector is not None:
                self._projector.shutdown()
            raise
        self.core.limits = limits
        if self.seq == 0:  # a new exchange: its catalog, then the clock's start
            first = start_us if start_us is not None else wall_clock_us()
            self.execute([Submission(op) for op in genesis_operations(first)])

    # ------------------------------------------------------------------ recovery
    def _recover(self) -> None:
        """Replay the log (its hash chain checked row by row), then project what lies past
        the watermark. A database whose log lost rows that its projections still show is
        refused rather than served as a younger exchange."""
        store = self.store
        projected = store.projected_seq()
        # A database projected before there was an archive: the whole log is replayed
        # once (no snapshot), and what it retires up to the watermark is archived.
        backfill = Retired({}, {}) if store.projected_seq("archive") < projected else None
        started = time.perf_counter()
        if self.snapshots is not None and backfill is None:
            found = snapshot.newest_usable(
                store, self.snapshots.directory, projected=projected, clean=True
            )
            if found is not None:
                header, self.core = found
                self.seq = self.recovered_from = self.snapshot_seq = header.seq
                self._chain = bytes.fromhex(header.chain)
        loaded = time.perf_counter()
        core = self.core
        for entry in store.read_log(after=self.seq):
            seq, op = entry.seq, entry.op
            if seq == 1:
                begin_replay(core, op)  # a log older than the logged catalog: the packaged one
            try:
                result = core.apply(op)
            except Rejected as exc:  # the log holds accepted operations only
                raise InvariantViolation(
                    f"logged operation {seq} refused on replay: {exc.code}"
                ) from exc
            changes = core.take_changes()
            self.seq = seq
            self._chain = entry.chain
            if seq > projected:  # logged, but its projections were not written
                self._unprojected.append(applied(core, seq, op, result, changes))
                if changes.retired_orders or changes.retired_contracts:
                    self._retire(seq, changes)
            elif backfill is not None:
                backfill.add(changes)
        #: Seconds start-up took to load its snapshot and to replay the log after it.
        self.recovery_seconds = (loaded - started, time.perf_counter() - loaded)
        if self.recovered_from:
            log.info(
                "recovered from the snapshot at operation %d (loaded in %.1f s), then %d "
                "log rows replayed in %.1f s",
                self.recovered_from,
                self.recovery_seconds[0],
                self.seq - self.recovered_from,
                self.recovery_seconds[1],
            )
        if projected > self.seq:
            raise DatabaseRefused(
                f"the operation log ends at seq {self.seq} but the projections reach seq "
                f"{projected}: the log lost rows; restore the database from a backup"
            )
        if self.seq == 0 and store.count("accounts"):
            raise DatabaseRefused(
                "the operation log is empty but the database holds accounts: the log was "
                "lost; restore the database from a backup"
            )
        if backfill is not None:
            self._write_archive(backfill, projected)
        core.admitting = True
        self.committed_seq = self.seq
        if self.check_invariants:
            core.check()
        self.projected_seq = projected
        self._write_projections()

    def _projection_batch(self, limit: int | None = None) -> tuple[Batch, int]:
        """The projection rows of the oldest ``limit`` operations applied and not yet
        projected (all of them by default), and how many operations they cover. Call only
        when everything applied is committed to the log, before anything more is applied:
        an order's row is written in its current state, which must be a committed one.
        The operations stay pending until the write succeeds (:meth:`_projection_done`)."""
        batch = Batch()
        run = self._unprojected if limit is None else self._unprojected[:limit]
        project(batch, self.core, run, self._retired)
        return batch, len(run)

    # ------------------------------------------------------------------ retirement
    def _write_archive(self, retired: Retired, seq: int) -> None:
        """Archive rows of records retired up to ``seq``, and the archive's watermark."""
        batch = Batch()
        for row in archive_rows(retired.orders.values(), retired.contracts.values()):
            batch.upsert("archive", (row["kind"], row["id"]), row)
        batch.upsert("projection_state", "archive", {"name": "archive", "seq": seq})
        self.store.write_projection(batch)
        log.info(
            "archived %d orders and %d contracts of instruments settled before this version",
            len(retired.orders),
            len(retired.contracts),
        )

    def _retire(self, seq: int, changes: Changes) -> None:
        """Records the core retired at ``seq`` are kept here until their archive rows are
        written (:meth:`_projection_done`): until then no read finds them elsewhere."""
        self._retired.add(changes)
        self._retired_at.append(
            (seq, list(changes.retired_orders), list(changes.retired_contracts))
        )

    def _order_finder(self, order_id: int) -> OrderState:
        """An order the last operations changed: in the core, or retired by them."""
        found = self.core.query.order(order_id)
        return found if found is not None else self._retired.orders[order_id]

    @property
    def retired_pending(self) -> bool:
        """Did the core retire records whose archive rows are not written yet? A read of
        the archive then waits for the projections (:meth:`flush`)."""
        return bool(self._retired_at)

    def _projection_done(self, count: int) -> None:
        """``count`` pending operations are in the projection tables now."""
        self.projected_seq = self._unprojected[count - 1].seq
        del self._unprojected[:count]
        retired_at = self._retired_at
        while retired_at and retired_at[0][0] <= self.projected_seq:
            _, orders, contracts = retired_at.popleft()
            for order_id in orders:
                del self._retired.orders[order_id]
            for contract_id in contracts:
                del self._retired.contracts[contract_id]
        self._projecting = 0
        if self.projection_error is not None:
            log.warning("projections written again, up to operation %d", self.projected_seq)
        self.projection_error = None
        self._projection_backoff_s = 0.0

    def _projection_failed(self, error: BaseException) -> None:
        """A projection write failed: the log is intact, so trading goes on; the tables
        stay behind their watermark and the write is retried with a growing pause."""
        pending = self._unprojected
        self._projecting = 0  # pending again, the oldest first
        first = pending[0].seq if pending else self.projected_seq + 1
        self._projection_backoff_s = min(
            self.projection_retry_max_s, max(0.5, 2 * self._projection_backoff_s)
        )
        self._projection_retry_at = time.monotonic() + self._projection_backoff_s
        if self.projection_error is None:
            log.error(
                "projection of operations %d to %d failed; retrying in %.1f s: %r",
                first,
                self.seq,
                self._projection_backoff_s,
                error,
                exc_info=error,
            )
        self.projection_error = error
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # a loop that has closed
                self._loop.call_soon_threadsafe(
                    self._loop.call_later, self._projection_backoff_s, self._wake
                )
        for waiter in self._flush_waiters:
            if not waiter.done():
                waiter.set_exception(self._projections_unavailable())
        self._flush_waiters = []

    def _projections_unavailable(self) -> ProjectionsUnavailable:
        return ProjectionsUnavailable(
            f"the projection tables are behind the log from operation "
            f"{self.projected_seq + 1} ({type(self.projection_error).__name__}); "
            "they are written again shortly",
            max(1, int(self._projection_backoff_s + 0.999)),
        )

    def _write_projections(self) -> None:
        """Write the pending projections now, synchronously (start-up, execute()). A
        failure is retried later; it never stops the service nor its start."""
        if not self._unprojected:
            return
        batch, count = self._projection_batch()
        try:
            if self._projector is None:
                self.store.write_projection(batch)
            else:  # behind any projection write still running on the projector thread
                self._projector.submit(self.store.write_projection, batch).result()
        except Exception as exc:
            self._projection_failed(exc)
            return
        self._projection_done(count)

    # ------------------------------------------------------------------ applying
    def _apply(self, items: Iterable[Submission]) -> tuple[Batch, Published]:
        """Apply submissions in order to the core; collect rows and what to publish."""
        if self.stopped is not None:
            raise ServiceStopped(str(self.stopped))
        core = self.core
        batch = Batch()
        published = Published()
        items = list(items)
        if self.clock == "real":
            now = wall_clock_us()
            if now > core.query.now():
                items.insert(0, Submission(AdvanceClock(Timestamp(now))))
        unprojected = self._unprojected
        if len(unprojected) == self._projecting:  # none waiting: these are the oldest
            self._unprojected_since = time.monotonic()
            if self._loop is not None and self._loop_thread == threading.get_ident():
                self._loop.call_later(self.projection_delay, self._wake)
        log_rows = batch.operations
        chain = self._chain
        query = core.query
        for item in items:
            try:
                result = core.apply(item.op)
            except Rejected as exc:
                # Kept without its traceback, nor the exception it was raised from (whose
                # traceback's frames hold their callers): both lead back to this frame,
                # which holds the item, a reference cycle the collector would have to
                # break. The code and message are what a caller is answered with.
                exc.__cause__ = exc.__context__ = None
                item.error = exc.with_traceback(None)
                continue
            self.seq = item.seq = seq = self.seq + 1
            changes = core.take_changes()
            row = log_row(seq, query.now(), item.op, chain)
            chain = row[4]
            log_rows.append(row)
            unprojected.append(applied(core, seq, item.op, result, changes))
            item.outcome = item.render(result) if item.render is not None else result
            if item.extra is not None:
                item.extra(item.outcome, batch)
            published.events.extend(changes.events)
            if changes.retired_orders or changes.retired_contracts:
                self._retire(seq, changes)
            order = self._order_finder
            published.orders.extend(order(order_id) for order_id in sorted(changes.orders))
        self._chain = chain
        core.check_totals()  # O(1); the full check is opt-in (check_invariants)
        if self.check_invariants:
            core.check()
        return batch, published

    def execute(self, items: list[Submission]) -> list[Submission]:
        """Apply and durably commit ``items`` now, synchronously (CLI, demo, tests).

        While the asynchronous writer runs, the items go through its queue (from another
        thread), so there is only ever one path that changes the core.
        """
        loop = self._loop
        if (
            self._writer is not None
            and not self._writer.done()
            and loop is not None
            and loop.is_running()
        ):
            if threading.get_ident() == self._loop_thread:
                raise RuntimeError("on the event loop, use await submit_many()")
            return asyncio.run_coroutine_threadsafe(self.submit_many(items), loop).result()
        batch, published = self._apply(items)
        try:
            self.store.write(batch)
        except BaseException as exc:
            self._stop(exc)
            raise
        self.committed_seq = self.seq
        self._write_projections()
        self._publish(published)
        self._snapshot_if_due()
        return items

    def run(self, op: Operation, render: Render | None = None) -> Any:
        """Apply one operation durably; return its (rendered) result or raise Rejected."""
        item = self.execute([Submission(op, render)])[0]
        if item.error is not None:
            raise item.error
        return item.outcome

    def _publish(self, published: Published) -> None:
        for listener in list(self.listeners):
            listener(published)

    def _stop(self, exc: BaseException) -> None:
        """Fail-stop: memory is ahead of the disk. Says why, once, at ERROR."""
        if self.stopped is None:
            log.error(
                "the writer stopped: operations up to %d were committed, %d applied; "
                "restart the service to recover from the log: %r",
                self.committed_seq,
                self.seq,
                exc,
                exc_info=exc,
            )
        self.stopped = exc

    # ------------------------------------------------------------------ snapshots
    @property
    def chain_head(self) -> bytes:
        """The chain link of the last operation applied (of the log row it writes)."""
        return self._chain

    @property
    def snapshot_child(self) -> int | None:
        """The pid of the child writing a snapshot now, if one is."""
        return None if self._snapshot_child is None else self._snapshot_child[0]

    def _snapshot_due(self) -> bool:
        policy = self.snapshots
        if policy is None or self._snapshot_child is not None or self.stopped is not None:
            return False
        if self.seq <= self.snapshot_seq or self.committed_seq != self.seq:
            return False
        now = time.monotonic()
        if now < self._snapshot_retry_at:
            return False
        return (
            self.seq - self.snapshot_seq >= policy.every_operations
            or now - self._snapshot_at >= policy.every_seconds
        )

    def _snapshot_if_due(self) -> None:
        """Reap a finished snapshot child; start the next snapshot if one is due. A
        snapshot that cannot start (no directory, no memory to fork) never stops the
        writer: it is logged and retried later."""
        self.reap_snapshot()
        if not self._snapshot_due():
            return
        try:
            self.take_snapshot()
        except OSError as exc:
            assert self.snapshots is not None
            self._snapshot_retry_at = time.monotonic() + min(60.0, self.snapshots.every_seconds)
            log.warning("a snapshot at operation %d could not start: %r", self.seq, exc)

    def take_snapshot(self) -> int:
        """Start a snapshot of the core as it is now (everything applied is committed):
        a child process forked here serializes its copy-on-write image and writes it,
        while this process goes on. Returns the child's pid; :meth:`reap_snapshot` sees
        it end. The writer's pause is the fork, recorded in ``snapshot_pauses``."""
        policy = self.snapshots
        if policy is None:
            raise RuntimeError("no snapshot policy")
        if self._snapshot_child is not None:
            raise RuntimeError("a snapshot is being written")
        if self.committed_seq != self.seq:
            raise RuntimeError("a snapshot is taken when everything applied is committed")
        seq, chain, core = self.seq, self._chain, self.core
        policy.directory.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        pid = os.fork()
        if pid == 0:  # the child: serialize, write, leave
            snapshot.write_in_child(policy.directory, core, seq, chain)
        pause = time.perf_counter() - started
        self.snapshot_pauses.append(pause)
        self._snapshot_child = (pid, seq, time.monotonic())
        self._snapshot_at = time.monotonic()
        log.info("snapshot at operation %d started (the writer paused %.1f ms)", seq, pause * 1e3)
        return pid

    def reap_snapshot(self, *, block: bool = False) -> bool | None:
        """If the snapshot child has ended (or, with ``block``, once it has): True if its
        snapshot is durable (older ones beyond ``keep`` are then deleted), False if it
        failed; None while it runs or when there is none."""
        child = self._snapshot_child
        if child is None or self.snapshots is None:
            return None
        pid, seq, started = child
        try:
            done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere: whether it succeeded is unknown
            done, status = pid, 1 << 8
        if done == 0:
            return None
        self._snapshot_child = None
        code = os.waitstatus_to_exitcode(status)
        took = time.monotonic() - started
        if code != 0:
            # Retried after a pause, not at once: a full disk would fork again and again.
            self._snapshot_retry_at = time.monotonic() + min(60.0, self.snapshots.every_seconds)
            log.warning(
                "the snapshot at operation %d failed (exit status %d after %.1f s): "
                "start-up replays from the one before; retried shortly",
                seq,
                code,
                took,
            )
            return False
        self.snapshot_seq = seq
        deleted = snapshot.prune(self.snapshots.directory, self.snapshots.keep)
        log.info(
            "snapshot at operation %d written in %.1f s (%d older deleted)", seq, took, len(deleted)
        )
        return True

    def _snapshot_tick(self) -> None:
        """Timer: wake the writer to reap a finished snapshot or take a timed one."""
        if self._queue is None or self.stopped is not None:
            return
        if self._snapshot_child is not None or self._snapshot_due():
            self._queue.put_nowait(_WAKE)
        if self._loop is not None:
            self._loop.call_later(_SNAPSHOT_POLL_S, self._snapshot_tick)

    # ------------------------------------------------------------------ async writer
    async def start(self, tick_seconds: float = 1.0) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._queue = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_loop(), name="suanli-writer")
        if self.clock == "real":
            self._ticker = asyncio.create_task(self._tick_loop(tick_seconds), name="suanli-clock")
        if self.projection_error is not None:  # start-up could not project: retry
            self._loop.call_later(self._projection_backoff_s, self._wake)
        if self.snapshots is not None:  # an idle writer still takes its timed snapshots
            self._loop.call_later(_SNAPSHOT_POLL_S, self._snapshot_tick)

    async def stop(self) -> None:
        if (
            self.stopped is None
            and self.projection_error is None
            and self._writer is not None
            and not self._writer.done()
        ):
            with contextlib.suppress(Exception):
                await self.flush()
        for task in (self._ticker, self._writer):
            if task is not None:
                task.cancel()
        for task in (self._ticker, self._writer):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._projection_write is not None:
            with contextlib.suppress(Exception):
                await self._projection_write
        if self._projector is not None:
            self._projector.shutdown(wait=True)
        self.reap_snapshot(block=True)  # a snapshot being written is finished, not lost
        self.store.close()

    async def flush(self) -> None:
        """Return once every operation acknowledged so far is in the projection tables;
        raises :class:`ProjectionsUnavailable` while the database refuses them."""
        queue = self._open_queue()
        if self.projection_error is not None:
            raise self._projections_unavailable()
        if not self._unprojected and queue.empty() and self._projection_write is None:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._flush_waiters.append(waiter)
        queue.put_nowait(_WAKE)
        await waiter

    async def wait_committed(self, seq: int | None = None) -> None:
        """Return once the log is committed up to ``seq`` (default: everything applied
        so far). For answers that show state an earlier request created: a repeated
        client_order_id or Idempotency-Key is answered only once the original is durable."""
        target = self.seq if seq is None else seq
        if self.committed_seq >= target:
            return
        if self.stopped is not None:
            raise ServiceStopped(str(self.stopped))
        waiter = asyncio.get_running_loop().create_future()
        heapq.heappush(self._commit_waiters, (target, id(waiter), waiter))
        await waiter

    def _committed(self, seq: int) -> None:
        """The log is durable up to ``seq``: wake those who waited for it."""
        self.committed_seq = seq
        waiters = self._commit_waiters
        while waiters and waiters[0][0] <= seq:
            future = heapq.heappop(waiters)[2]
            if not future.done():
                future.set_result(None)

    def _open_queue(self) -> asyncio.Queue[Submission]:
        """The writer's queue, while it accepts work."""
        if self.stopped is not None:
            raise ServiceStopped(str(self.stopped))
        if self._queue is None:
            raise RuntimeError("service not started")
        if len(self._unprojected) >= self.projection_backlog_max:
            # The projections have been failing long enough that holding more of them in
            # memory would grow it without bound: writes wait until they are written.
            raise self._projections_unavailable()
        return self._queue

    def enqueue(
        self,
        op: Operation,
        render: Render | None = None,
        extra: Callable[[Any, Batch], None] | None = None,
    ) -> Submission:
        """Queue one operation without waiting for it (on the event loop's thread).

        The submission's future resolves with None once the operation is durable, its
        ``outcome`` or ``error`` set by then, or fails with :class:`ServiceStopped`. For
        callers that answer from a callback on that future instead of awaiting it (order
        entry over the WebSocket: no task per order); :meth:`submit` awaits it."""
        queue = self._open_queue()
        item = Submission(op, render, extra)
        item.future = asyncio.get_running_loop().create_future()
        queue.put_nowait(item)
        return item

    async def submit(
        self,
        op: Operation,
        render: Render | None = None,
        extra: Callable[[Any, Batch], None] | None = None,
    ) -> Any:
        """Queue one operation; resolve once it is durable. Raises Rejected on refusal."""
        return await self.answer(self.enqueue(op, render, extra))

    async def answer(self, item: Submission) -> Any:
        """Wait for a queued submission (:meth:`enqueue`): its outcome once durable, or
        its refusal raised."""
        assert item.future is not None
        await item.future
        error = item.error
        if error is None:
            return item.outcome
        # Raised, the error holds this frame in its traceback: neither the item nor the
        # frame may hold the error then, or each refusal leaves a reference cycle.
        item.error = None
        try:
            raise error
        finally:
            del error

    def enqueue_many(self, items: list[Submission]) -> asyncio.Future[Any] | None:
        """Queue several operations that commit together, each accepted or refused alone,
        without waiting; returns the future that resolves once all are durable (None for
        no items). See :meth:`enqueue`."""
        queue = self._open_queue()
        if not items:
            return None
        # Queued back to back, the items commit in order, in one group or in consecutive
        # groups: once the last one is committed, all are. Only the last needs a future.
        last = items[-1]
        future = last.future = asyncio.get_running_loop().create_future()
        put = queue.put_nowait
        for item in items:
            put(item)
        return future

    async def submit_many(self, items: list[Submission]) -> list[Submission]:
        """Queue several operations that commit together; each accepted or refused alone."""
        future = self.enqueue_many(items)
        if future is not None:
            await future
        return items

    async def _write_loop(self) -> None:
        """Group commit, pipelined one deep: while one group's log rows are being written
        (in a thread, where the database driver releases the GIL), the next group is
        applied in memory. Groups are written in order, and a group's callers are answered
        only once its own transaction has committed.

        Projections are written when nothing is in flight, so that the core's state is
        exactly what the log holds, once they are due (:meth:`_projection_due`)."""
        assert self._queue is not None
        queue = self._queue
        loop = asyncio.get_running_loop()
        in_flight: InFlight | None = None
        items: list[Submission] = []
        try:
            while True:
                if in_flight is None:
                    if self.snapshots is not None:
                        self._snapshot_if_due()
                    if self._unprojected and self._projection_due():
                        await self._start_projection(loop)
                        if self._unprojected and queue.empty() and self._projection_due():
                            continue  # the next chunk: nothing else is waiting
                    if self._flush_waiters and not self._unprojected:
                        await self._await_projection()
                        for waiter in self._flush_waiters:
                            if not waiter.done():
                                waiter.set_result(None)
                        self._flush_waiters = []
                    items = [await queue.get()] if queue.empty() else []
                elif queue.empty() or self._projection_due():
                    # Nothing new (or projections due): finish the group being written.
                    await self._complete(in_flight)
                    in_flight = None
                    continue
                else:
                    items = []
                while len(items) < self.batch_max and not queue.empty():
                    items.append(queue.get_nowait())
                items = [item for item in items if item is not _WAKE]
                if not items:
                    continue
                batch, published = self._apply(items)
                self._last_group = len(items)
                if in_flight is not None:
                    await self._complete(in_flight)
                    in_flight = None
                write = loop.run_in_executor(None, self.store.write, batch)
                in_flight = (write, items, published, self.seq)
        except BaseException as exc:  # a failed commit: memory is ahead of disk
            if isinstance(exc, asyncio.CancelledError):  # shutting down
                self.stopped = exc
            else:
                self._stop(exc)
            # Everyone waiting learns it: the group in flight, the items taken or still
            # queued, the callers of flush() and of wait_committed().
            queued = []
            while not queue.empty():
                queued.append(queue.get_nowait())
            waiting = list(items) + (in_flight[1] if in_flight is not None else []) + queued
            futures = [i.future for i in waiting if i is not _WAKE and i.future is not None]
            futures += self._flush_waiters + [w[2] for w in self._commit_waiters]
            for future in futures:
                if not future.done():
                    future.set_exception(ServiceStopped(repr(exc)))
            if isinstance(exc, asyncio.CancelledError):
                raise

    async def _await_projection(self) -> None:
        """Wait for the projection write in flight, if any, and handle its outcome now:
        a future that has ended may not have run its callback yet, and until it has, its
        operations look pending (a write started then would write them twice, and a loop
        that waits for the callback without yielding would never let it run)."""
        write = self._projection_write
        if write is None:
            return
        with contextlib.suppress(Exception):
            await write
        self._projected(write, self._projecting)  # nothing if its callback came first

    async def _start_projection(self, loop: asyncio.AbstractEventLoop) -> None:
        """Write the projections of the oldest operations applied (all of them committed to
        the log), a chunk of them where the log waits (see ``projection_chunk``). On the
        writer's connection, the log waits for them; on a connection of their own,
        they commit while the log goes on (one projection write at a time, in order)."""
        if self._projection_write is not None:
            await self._await_projection()
            if not self._unprojected or not self._projection_due():
                return  # it failed: retried once its pause has passed
        # A chunk twice the size of the last group: under load the backlog shrinks by a
        # group's worth per round, so chunks never fall behind the log.
        batch, count = self._projection_batch(max(self.projection_chunk, 2 * self._last_group))
        # The projector thread where projections have a connection of their own; else
        # the default pool, and the log waits for them (they share its connection).
        write = loop.run_in_executor(self._projector, self.store.write_projection, batch)
        write.add_done_callback(lambda done: self._projected(done, count))
        self._projection_write = write
        self._projecting = count
        if self._projector is None:
            await self._await_projection()

    def _projected(self, write: asyncio.Future[None], count: int) -> None:
        """A projection write ended: move the watermark, or, if it failed, keep its
        operations pending and retry later (the log, which is intact, goes on)."""
        if self._projection_write is not write:
            return  # handled already (by _await_projection or this callback)
        self._projection_write = None
        if write.cancelled():
            return
        error = write.exception()
        if error is None:
            self._projection_done(count)
        else:
            self._projection_failed(error)

    def _projection_due(self) -> bool:
        """Projections are written in runs: when ``projection_max`` operations wait, when
        the oldest has waited ``projection_delay`` seconds, or when a caller of
        :meth:`flush` waits. Under load that makes a few large transactions instead of
        one per group. After a failed write, not before its retry pause has passed."""
        now = time.monotonic()
        if self.projection_error is not None and now < self._projection_retry_at:
            return False
        # Those a write in flight holds are not waiting: counting them would make every
        # round due and the log wait on each projection write.
        waiting = len(self._unprojected) - self._projecting
        return bool(self._flush_waiters) or (
            waiting > 0
            and (
                waiting >= self.projection_max
                or now - self._unprojected_since >= self.projection_delay
            )
        )

    def _wake(self) -> None:
        """Timer: wake an idle writer when the projections it holds come due."""
        if self._queue is not None:
            self._queue.put_nowait(_WAKE)

    async def _complete(self, in_flight: InFlight) -> None:
        """Wait for a group's commit, then answer its callers and publish its events."""
        write, items, published, seq = in_flight
        await write
        self._committed(seq)
        for item in items:
            if item.future is not None and not item.future.done():
                item.future.set_result(None)  # not the item: that would be a cycle
        self._publish(published)

    async def _tick_loop(self, seconds: float) -> None:
        """Real clock: advance the exchange clock even when no request arrives."""
        while True:
            await asyncio.sleep(seconds)
            if self.stopped is not None:
                return
            await self.submit(AdvanceClock(Timestamp(max(wall_clock_us(), self.core.query.now()))))
