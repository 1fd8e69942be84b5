"""Recovery with snapshots: a long operation log, a full replay, a snapshot, and a start-up
from it.

It builds a SQLite database whose log holds --operations operations (1,000,000 by
default) of a market over many hourly delivery windows: orders from several buyers and
sellers (many of them trading), cancels, clock steps, delivery reports of every contract
(some short) and the settlements they lead to, written through ``ExchangeService`` as a
server writes them (log and projections). Then, each in a fresh process:

* full replay: the time a start-up without snapshots takes, and the resident memory of
  the process holding the state of the whole log;
* snapshot: its size, and the time to serialize, hash and write it (in process);
* the writer's pause while a snapshot is taken: order latency (submit to durable
  acknowledgement, --clients concurrent clients, no HTTP; the garbage collector tuned as
  a server's, ``tune_gc``) for --seconds without a snapshot, then while the writer's
  forked child writes one (the fork is the writer's pause: its duration is printed),
  p50, p99 and max of each;
* recovery: the time a start-up from the newest snapshot takes (it loads the snapshot,
  replays the log after it), and that its state hash is the full replay's.

Not a test: it asserts nothing and prints figures, which move with the machine's load.

    python benchmarks/bench_recovery.py [--operations 1000000] [--seconds 5] [--clients 8]
        [--directory DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core_market import CNY, H100, START, tier

from api import snapshot
from api.db.store import Store
from api.service import ExchangeService, Submission, tune_gc
from api.snapshot import SnapshotPolicy
from exchange.core import ExchangeCore
from exchange.lifecycle import InstrumentState
from exchange.limits import CoreLimits
from exchange.operations import (
    AddPool,
    AdvanceClock,
    CancelOrder,
    CreateAccount,
    CreateGpuClass,
    Deposit,
    Operation,
    PlaceOrder,
    RegisterSite,
    ReportDelivery,
)
from exchange.orders import Side
from exchange.products import HOUR_US
from exchange.records import OrderState
from exchange.settlement import ContractState

BUYERS, SELLERS = 6, 4
OPS_PER_HOUR = 2_000  # operations of each simulated hour
TRADED_WINDOWS = 6  # the nearest open windows take the orders
NEVER = 10**15  # a snapshot interval never reached in a run


def _service(url: str, snapshots: SnapshotPolicy | None) -> ExchangeService:
    return ExchangeService(
        Store(url),
        clock="simulated",
        start_us=START,
        limits=CoreLimits.unbounded(),
        batch_max=512,
        snapshots=snapshots,
    )


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# ---------------------------------------------------------------------- the workload
class Market:
    """Chooses each simulated hour's operations from the state the service holds."""

    def __init__(self, service: ExchangeService, seed: int) -> None:
        self.service = service
        self.rng = random.Random(seed)
        self.buyers: list[int] = []
        self.sellers: list[tuple[int, int]] = []  # (account, pool)
        self.resting: list[tuple[int, int]] = []  # (account, order id) perhaps open
        self.reported: set[int] = set()

    def set_up(self) -> None:
        run = self.service.run
        for n in range(BUYERS):
            account = run(CreateAccount(f"lab {n}", "trader")).id
            run(Deposit(account, 10**9 * CNY))
            self.buyers.append(account)
        run(CreateGpuClass("H", "Hopper", "fp16", "700"))
        run(tier())
        for n in range(SELLERS):
            account = run(CreateAccount(f"dc {n}", "trader")).id
            run(Deposit(account, 10**9 * CNY))
            site = run(RegisterSite(account, f"site {n}", "east", "1.25", "0")).id
            pool = run(AddPool(account, site, H100, 100_000)).id
            self.sellers.append((account, pool))

    def _order(self, symbols: list[str]) -> PlaceOrder:
        rng = self.rng
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        # Prices around 20 CNY per PF·h, each side leaning a little across: about a third
        # of the orders trade at once, the rest rest until cancelled or met.
        offset = rng.randint(-20, 12) * 100
        price = 200_000 + offset if side is Side.BUY else 200_000 - offset
        account = rng.choice(self.buyers) if side is Side.BUY else rng.choice(self.sellers)[0]
        return PlaceOrder(account, rng.choice(symbols), side, rng.randint(1, 200) * 1_000, price)

    def _deliveries(self, core: ExchangeCore) -> list[Operation]:
        """A report for every contract delivering now and not reported yet, some short."""
        ops: list[Operation] = []
        pools = dict(self.sellers)
        for record in core.instruments.values():
            if record.state is not InstrumentState.DELIVERING:
                continue
            tier = record.instrument.tier
            for contract_id in record.contract_ids:
                contract = core.contracts[contract_id]
                if contract_id in self.reported or contract.state is not ContractState.DELIVERING:
                    continue
                self.reported.add(contract_id)
                pool = pools[contract.seller]
                rated = core.pool_rated_pf(core.pools[pool], tier)  # PF per device
                seconds = contract.quantity * 3600 / rated / 10**6  # a Fraction
                full = -(-seconds.numerator // seconds.denominator)
                share = self.rng.choice((100, 100, 100, 90, 50))
                ops.append(ReportDelivery(contract.seller, contract_id, pool, full * share // 100))
        return ops

    def hour(self) -> list[Operation]:
        """One simulated hour: orders and cancels on the nearest open windows, the
        delivery reports due, then the clock one hour on."""
        core = self.service.core
        rng = self.rng
        open_windows = sorted(
            (int(r.instrument.window.start), s)
            for s, r in core.instruments.items()
            if r.state is InstrumentState.OPEN
        )
        symbols = [s for _, s in open_windows[:TRADED_WINDOWS]]
        ops: list[Operation] = self._deliveries(core)
        resting = self.resting
        while len(ops) < OPS_PER_HOUR - 1:
            if resting and rng.random() < 0.3:
                k = rng.randrange(len(resting))
                resting[k], resting[-1] = resting[-1], resting[k]
                ops.append(CancelOrder(*resting.pop()))
            else:
                ops.append(self._order(symbols))
        ops.append(AdvanceClock(core.now + HOUR_US))
        return ops

    def run(self, total: int) -> None:
        service = self.service
        while service.seq < total:
            ops = self.hour()[: max(1, total - service.seq)]
            for item in service.execute([Submission(op) for op in ops]):
                outcome = item.outcome
                if isinstance(outcome, OrderState) and outcome.is_open:
                    self.resting.append((outcome.account_id, outcome.id))


# ---------------------------------------------------------------------- the phases
def build(url: str, operations: int) -> dict[str, Any]:
    started = time.perf_counter()
    service = _service(url, None)
    market = Market(service, seed=1)
    market.set_up()
    market.run(operations)
    seconds = time.perf_counter() - started
    core = service.core
    figures = {
        "operations": service.seq,
        "build_s": seconds,
        "orders": core.parts.time.peek_id("order") - 1,
        "contracts": core.query.contract_count(),
        # Settled contracts left the core with their instrument (Clock._retire).
        "settled": core.query.contract_count() - len(core.contracts),
        "windows": len(core.instruments),
        "deliveries": core.query.delivery_count(),
        "orders_in_memory": len(core.orders),
        "contracts_in_memory": len(core.contracts),
    }
    service.store.close()
    return figures


async def _latencies(service: ExchangeService, clients: int, until: Any) -> list[float]:
    """Order latency (submit to durable acknowledgement) of ``clients`` closed-loop
    clients until ``until()`` is true, in seconds."""
    account = 1
    core = service.core
    open_windows = sorted(
        (int(r.instrument.window.start), s)
        for s, r in core.instruments.items()
        if r.state is InstrumentState.OPEN
    )
    symbol = open_windows[0][1]
    out: list[float] = []

    async def client() -> None:
        while not until():
            # Buys below the market that rest, then are cancelled: the book stays as it is.
            started = time.perf_counter()
            order = await service.submit(PlaceOrder(account, symbol, Side.BUY, 1_000, 150_000))
            out.append(time.perf_counter() - started)
            started = time.perf_counter()
            await service.submit(CancelOrder(account, order.id))
            out.append(time.perf_counter() - started)

    await asyncio.gather(*(client() for _ in range(clients)))
    return out


def _quantiles(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        return {"n": len(values), "p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": 0.0}
    cuts = statistics.quantiles(values, n=100)
    return {
        "n": len(values),
        "p50_ms": cuts[49] * 1e3,
        "p99_ms": cuts[98] * 1e3,
        "max_ms": max(values) * 1e3,
    }


def replay(url: str, directory: Path, seconds: float, clients: int) -> dict[str, Any]:
    """Full replay, a snapshot written in process, then order latency without and
    during a snapshot the writer takes (forked)."""
    started = time.perf_counter()
    policy = SnapshotPolicy(directory, every_operations=NEVER, every_seconds=NEVER, keep=2)
    service = _service(url, None)
    full_s = time.perf_counter() - started
    rss = _rss_mib()
    core = service.core
    t0 = time.perf_counter()
    payload = snapshot.dumps(core)
    t1 = time.perf_counter()
    state_hash = core.state_hash()
    t2 = time.perf_counter()
    data = snapshot.encode(core, service.seq, service.chain_head, state_hash)
    t3 = time.perf_counter()
    path = snapshot.write_file(directory, service.seq, data)
    t4 = time.perf_counter()
    figures: dict[str, Any] = {
        "full_replay_s": full_s,
        "replayed": service.seq,
        "rss_mib": rss,
        "state_hash": state_hash,
        "snapshot_bytes": path.stat().st_size,
        "pickle_s": t1 - t0,
        "hash_s": t2 - t1,
        "encode_s": t3 - t2,  # pickle again, and the checksums
        "write_s": t4 - t3,
    }
    del payload
    service.snapshots = policy
    service.snapshot_seq = replayed = service.seq
    tune_gc()  # as a server does (SUANLI_TUNE_GC): no full collections over the state

    async def measure() -> None:
        await service.start()
        try:
            deadline = time.monotonic() + seconds
            baseline = await _latencies(service, clients, lambda: time.monotonic() >= deadline)
            # The next operation makes a snapshot due; the writer forks at its next round.
            service.snapshots = dataclasses.replace(
                policy, every_operations=service.seq + 1 - service.snapshot_seq
            )
            began = time.perf_counter()

            def snapshot_written() -> bool:
                if service.snapshot_child is not None:  # started: one is enough
                    service.snapshots = policy
                return service.snapshot_seq > replayed and service.snapshot_child is None

            during = await _latencies(service, clients, snapshot_written)
            figures["child_s"] = time.perf_counter() - began
            figures["baseline"] = _quantiles(baseline)
            figures["during"] = _quantiles(during)
            figures["fork_ms"] = [p * 1e3 for p in service.snapshot_pauses]
            figures["rss_after_mib"] = _rss_mib()
        finally:
            await service.stop()

    asyncio.run(measure())
    figures["final_hash"] = service.core.state_hash()
    figures["final_seq"] = service.seq
    return figures


def recover(url: str, directory: Path) -> dict[str, Any]:
    started = time.perf_counter()
    service = _service(url, SnapshotPolicy(directory, NEVER, NEVER, 2))
    seconds = time.perf_counter() - started
    figures = {
        "recovery_s": seconds,
        "recovered_from": service.recovered_from,
        "load_s": service.recovery_seconds[0],
        "tail_s": service.recovery_seconds[1],
        "seq": service.seq,
        "state_hash": service.core.state_hash(),
        "rss_mib": _rss_mib(),
    }
    service.store.close()
    return figures


def _phase(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"phase {args[0]} failed")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--operations", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=5.0, help="latency baseline length")
    parser.add_argument("--clients", type=int, default=8, help="concurrent order clients")
    parser.add_argument("--directory", help="keep the database and snapshots here")
    parser.add_argument("phase", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    if args.phase:  # a phase, in a process of its own: prints its figures as JSON
        name, url, *rest = args.phase
        if name == "build":
            result = build(url, args.operations)
        elif name == "replay":
            result = replay(url, Path(rest[0]), args.seconds, args.clients)
        else:
            result = recover(url, Path(rest[0]))
        print(json.dumps(result))
        return 0
    with contextlib.ExitStack() as stack:
        if args.directory:
            base = Path(args.directory)
            base.mkdir(parents=True, exist_ok=True)
        else:
            base = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        db = base / "recovery.db"
        for old in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            with contextlib.suppress(FileNotFoundError):
                old.unlink()
        snapshots = base / "snapshots"
        for _, old_snapshot in snapshot.list_snapshots(snapshots):
            old_snapshot.unlink()
        url = f"sqlite:///{db}"
        common = ["--operations", str(args.operations), "--seconds", str(args.seconds)]
        common += ["--clients", str(args.clients)]
        built = _phase("build", url, *common)
        replayed = _phase("replay", url, str(snapshots), *common)
        recovered = _phase("recover", url, str(snapshots), *common)
        size = db.stat().st_size
    print(
        f"log: {built['operations']:,} operations ({built['orders']:,} orders, "
        f"{built['contracts']:,} contracts of which {built['settled']:,} settled, "
        f"{built['deliveries']:,} delivery reports, {built['windows']:,} windows), "
        f"built in {built['build_s']:.0f} s; SQLite file {size / 2**20:,.0f} MiB; in memory at "
        f"the end {built['orders_in_memory']:,} orders, {built['contracts_in_memory']:,} "
        "contracts (the settled windows' left it)"
    )
    print(f"full replay               {replayed['full_replay_s']:8.2f} s")
    print(f"resident memory after     {replayed['rss_mib']:8.0f} MiB")
    print(
        f"snapshot                  {replayed['snapshot_bytes'] / 2**20:8.1f} MiB; pickle "
        f"{replayed['pickle_s']:.2f} s (again, with checksums: {replayed['encode_s']:.2f} s), "
        f"state hash {replayed['hash_s']:.2f} s, write and fsync {replayed['write_s']:.2f} s"
    )
    fork = replayed["fork_ms"]
    print(
        f"writer's pause (fork)     {max(fork) if fork else float('nan'):8.1f} ms; the child "
        f"wrote for {replayed['child_s']:.1f} s"
    )
    for name in ("baseline", "during"):
        q = replayed[name]
        label = "order latency, none" if name == "baseline" else "order latency, snapshot"
        print(
            f"{label:26s}p50 {q['p50_ms']:6.2f} ms, p99 {q['p99_ms']:6.2f} ms, "
            f"max {q['max_ms']:7.2f} ms ({q['n']:,} orders and cancels, "
            f"{args.clients} clients)"
        )
    ratio = replayed["during"]["p99_ms"] / replayed["baseline"]["p99_ms"]
    print(f"p99 during / without      {ratio:8.2f}x")
    same = recovered["state_hash"] == replayed["final_hash"]
    print(
        f"recovery from snapshot    {recovered['recovery_s']:8.2f} s (the snapshot at operation "
        f"{recovered['recovered_from']:,} loaded in {recovered['load_s']:.2f} s, the "
        f"{recovered['seq'] - recovered['recovered_from']:,} log rows after it replayed in "
        f"{recovered['tail_s']:.2f} s; state hash {'equals' if same else 'DIFFERS FROM'} the "
        f"full replay's; {recovered['rss_mib']:,.0f} MiB resident)"
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
