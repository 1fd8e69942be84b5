"""Matching-engine benchmark against PyPI peers, on the shared peer workload.

Runs the peer workload (bench_peers.py: 200,000 limit orders around 10,000 ticks, 30 %
marketable, ~40,000 cancels) through suanli's full engine beside the peers installed in
the same interpreter (the bench's baseline book, limit-order-book 2.0.0), in one process,
and prints:

* messages per second (median of --runs), and suanli's ratio to each peer;
* whether each engine ended in the book state the reference computed;
* memory per resting order of suanli's engine (tracemalloc, allocations made by
  exchange/ and sortedcontainers only, divided by the orders resting at the end);
* p50 and p99 latency per command (submit or cancel) of suanli's engine;
* messages per second with 20,000 other instruments listed and populated, to show that
  the number of instruments does not slow matching in one of them.

Usage:
    python benchmarks/bench_engine.py --bench PATH/TO/bench_peers.py [--orders N] [--runs R]

PATH/TO/bench_peers.py is the shared peer benchmark script; SUANLI_PEER_BENCH may name
it instead. Nothing here asserts a timing: it prints figures.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peer_adapter import SuanliAdapter, bench_engine

from exchange.orders import Side


def load_bench(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_peers", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_peers"] = module
    spec.loader.exec_module(module)
    return module


def run_once(adapter: Any, ops: list[tuple[Any, ...]]) -> float:
    adapter.setup()
    submit, cancel = adapter.submit, adapter.cancel
    gc.collect()
    t0 = time.perf_counter()
    for op in ops:
        if op[0] == 0:
            submit(op[1], op[2], op[3], op[4])
        else:
            cancel(op[1])
    return len(ops) / (time.perf_counter() - t0)


def measure(adapter: Any, ops: list[tuple[Any, ...]], runs: int, expected: Any) -> dict[str, Any]:
    rates = [run_once(adapter, ops) for _ in range(runs)]
    snap = adapter.snapshot() if hasattr(adapter, "snapshot") else None
    state = (
        "n/a" if snap is None else ("OK" if tuple(snap) == tuple(expected) else f"MISMATCH {snap}")
    )
    if hasattr(adapter, "close"):
        adapter.close()
    return {"name": adapter.name, "median": statistics.median(rates), "runs": rates, "state": state}


def memory_per_resting_order(ops: list[tuple[Any, ...]]) -> tuple[float, int]:
    adapter = SuanliAdapter()
    gc.collect()
    tracemalloc.start()
    adapter.setup()
    for op in ops:
        if op[0] == 0:
            adapter.submit(op[1], op[2], op[3], op[4])
        else:
            adapter.cancel(op[1])
    gc.collect()
    snapshot = tracemalloc.take_snapshot()
    tracemalloc.stop()
    keep = [
        tracemalloc.Filter(True, f"*{os.sep}exchange{os.sep}*"),
        tracemalloc.Filter(True, "*sortedcontainers*"),
    ]
    engine_bytes = sum(s.size for s in snapshot.filter_traces(keep).statistics("filename"))
    resting = len(adapter.engine._orders)
    return engine_bytes / max(resting, 1), resting


def latencies(ops: list[tuple[Any, ...]]) -> tuple[float, float, float]:
    adapter = SuanliAdapter()
    adapter.setup()
    submit, cancel = adapter.submit, adapter.cancel
    clock = time.perf_counter_ns
    samples = []
    append = samples.append
    gc.collect()
    for op in ops:
        if op[0] == 0:
            t0 = clock()
            submit(op[1], op[2], op[3], op[4])
        else:
            t0 = clock()
            cancel(op[1])
        append(clock() - t0)
    samples.sort()
    n = len(samples)
    return samples[n // 2] / 1000, samples[int(n * 0.99)] / 1000, samples[int(n * 0.999)] / 1000


class CrowdedSuanliAdapter(SuanliAdapter):
    """The same workload on one instrument while 20,000 others are listed and populated."""

    name = "suanli, 20,000 instruments listed"
    others = 20_000

    def setup(self) -> None:
        if not hasattr(self, "_template"):
            engine, symbols = bench_engine(self.others + 1)
            oid = 10**9
            for sym in symbols[1:]:
                for side, price in ((Side.BUY, 9_990), (Side.SELL, 10_010)):
                    oid += 1
                    engine.place(oid, 7, sym, side, price, 5)
            self._template = engine
        super().setup()
        # Reuse the populated engine's instruments: swap the fresh single-instrument
        # engine for the crowded one, emptied of the benchmark instrument's orders.
        crowded = self._template
        crowded.cancel_all(1)
        crowded.cancel_all(2)
        self.engine = crowded
        place, cancel = crowded.place, crowded.cancel
        accounts: dict[int, int] = {}
        from peer_adapter import BUYER, SELLER, SYMBOL

        buy, sell = Side.BUY, Side.SELL

        def submit(side: str, price: int, qty: int, oid: int) -> Any:
            if side == "buy":
                accounts[oid] = BUYER
                return place(oid, BUYER, SYMBOL, buy, price, qty)
            accounts[oid] = SELLER
            return place(oid, SELLER, SYMBOL, sell, price, qty)

        def cancel_(oid: int) -> Any:
            return cancel(accounts.pop(oid), oid)

        self.submit = submit  # type: ignore[method-assign]
        self.cancel = cancel_  # type: ignore[method-assign]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bench",
        default=os.environ.get("SUANLI_PEER_BENCH"),
        help="path of the shared bench_peers.py",
    )
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-crowded", action="store_true")
    args = parser.parse_args()
    if not args.bench:
        parser.error("give --bench PATH/TO/bench_peers.py (or set SUANLI_PEER_BENCH)")
    bp = load_bench(args.bench)
    ops, stats = bp.generate(n_orders=args.orders)
    expected = stats["expected_snapshot"]
    print(
        f"# python {sys.version.split()[0]}; {len(ops):,} messages "
        f"({stats['limit_orders']:,} orders, {stats['cancels']:,} cancels, "
        f"{stats['trades']:,} trades, {stats['resting_at_end']:,} resting at the end)"
    )
    adapters: list[Any] = [bp.ReferenceAdapter(), bp.KautenjaAdapter(), SuanliAdapter()]
    results = {}
    for adapter in adapters:
        reason = adapter.available()
        if reason:
            print(f"{adapter.name:36s} unavailable: {reason}")
            continue
        r = measure(adapter, ops, args.runs, expected)
        results[r["name"]] = r
        runs = ", ".join(f"{x:,.0f}" for x in r["runs"])
        print(f"{r['name']:36s} {r['median']:>12,.0f} msgs/s   runs: {runs}   state {r['state']}")
    ours = results["suanli"]["median"]
    for name, r in results.items():
        if name != "suanli":
            print(f"ratio suanli / {name}: {ours / r['median']:.3f}")
    per_order, resting = memory_per_resting_order(ops)
    print(f"memory per resting order: {per_order:,.0f} bytes ({resting:,} orders resting)")
    p50, p99, p999 = latencies(ops)
    print(f"latency per command: p50 {p50:.2f} us, p99 {p99:.2f} us, p99.9 {p999:.2f} us")
    if not args.skip_crowded:
        crowded = measure(CrowdedSuanliAdapter(), ops, args.runs, expected)
        print(
            f"{crowded['name']:36s} {crowded['median']:>12,.0f} msgs/s   "
            f"state {crowded['state']}   ratio to one instrument: {crowded['median'] / ours:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
