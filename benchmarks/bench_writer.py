"""Where an order's time goes inside the writer, stage by stage, without HTTP.

The workload of benchmarks/bench_http.py (one market maker alternating buys and sells
around 20 CNY, 0.1 PF·h each) is applied to an in-memory core, and each stage that the
service runs per order is timed on its own, in microseconds per order:

* apply: ExchangeCore.apply (risk, hold, capacity, matching, contracts) and take_changes;
* render: the order's JSON view (api.views.order_view) and its encoding;
* log row: the operation-log row (what the acknowledging transaction writes);
* log write: writing those rows in groups of --group, one transaction each (SQLite, WAL,
  synchronous=FULL, so each includes an fsync), as the acknowledgement does;
* projection rows / projection write: building and writing the projection rows (events,
  ledger transfers, orders...) in runs of --run operations, as the service does behind
  the log.

Figures are per order on this machine; they move with the machine's load, so compare
stages within one run. Not a test: it asserts nothing.

    python benchmarks/bench_writer.py [--orders 20000] [--group 16] [--run 256] [--cpu]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time

import msgspec
from core_market import market

from api.db.chain import GENESIS
from api.db.store import Batch, Store
from api.projection import Applied, applied, log_row, project
from api.views import order_view
from exchange.operations import (
    PlaceOrder,
)
from exchange.orders import Side

PRICES = [199_000, 201_000, 199_500, 200_500, 200_000, 198_500, 201_500]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--group", type=int, default=16, help="orders per log transaction")
    parser.add_argument("--run", type=int, default=256, help="operations per projection")
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="time CPU used (time.process_time) instead of wall time: without fsync waits",
    )
    args = parser.parse_args()
    n = args.orders
    core, mm, symbol = market()
    ops = [
        PlaceOrder(mm, symbol, Side.BUY if k % 2 == 0 else Side.SELL, 100_000, PRICES[k // 2 % 7])
        for k in range(n)
    ]
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    clock = time.process_time if args.cpu else time.perf_counter
    encode = msgspec.json.encode
    t_apply = t_render = t_log = 0.0
    run: list[Applied] = []
    logs: list[tuple[int, int, str, bytes, bytes]] = []
    previous = GENESIS  # the chain link of the row before
    for seq, op in enumerate(ops, start=1):
        t0 = clock()
        result = core.apply(op)
        changes = core.take_changes()
        t1 = clock()
        encode(order_view(result))
        t2 = clock()
        row = log_row(seq, core.now, op, previous)
        logs.append(row)
        previous = row[-1]
        t3 = clock()
        t_apply += t1 - t0
        t_render += t2 - t1
        t_log += t3 - t2
        run.append(applied(core, seq, op, result, changes))
    # Projection rows, built per run (the core is in its final state: like the service's
    # last run, upserted rows are read from it).
    t0 = clock()
    runs = []
    for start in range(0, n, args.run):
        batch = Batch()
        project(batch, core, run[start : start + args.run])
        runs.append(batch)
    t_rows = clock() - t0
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/bench.db")
        t0 = clock()
        for start in range(0, n, args.group):
            batch = Batch()
            batch.operations.extend(logs[start : start + args.group])
            store.write(batch)
        t_log_write = clock() - t0
        t0 = clock()
        for batch in runs:
            store.write(batch)
        t_proj_write = clock() - t0
        store.close()
    timed = "CPU" if args.cpu else "wall"
    print(f"{n:,} orders; log groups of {args.group}, projection runs of {args.run}; {timed} time")
    print("stage                     us/order")
    for name, seconds in (
        ("apply", t_apply),
        ("render", t_render),
        ("log row", t_log),
        ("log write (SQLite)", t_log_write),
        ("projection rows", t_rows),
        ("projection write (SQLite)", t_proj_write),
    ):
        print(f"{name:26s}{seconds / n * 1e6:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
