"""What stays in memory per settled delivery window.

A settled instrument's orders, fills and contracts leave the core (Clock._retire); its
definition, state, last price and empty book stay. This drives the core alone (no
database) through --windows hourly windows, each with --trades trades and as many orders
left resting until the gate, a delivery report per contract, and settlement, and measures
the memory the core holds (tracemalloc, after a full collection) at a third of the way
and at the end: the growth between them, divided by the windows settled between them, is
the residue per settled window. It also prints the records left in the core and the
size of a snapshot of its state.

Not a test: it asserts nothing and prints figures.

    python benchmarks/bench_residue.py [--windows 150] [--trades 40]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core_market import CNY, H100, START, tier

from api import snapshot
from exchange.core import ExchangeCore
from exchange.genesis import genesis_operations
from exchange.lifecycle import InstrumentState
from exchange.limits import CoreLimits
from exchange.operations import (
    AddPool,
    AdvanceClock,
    CreateAccount,
    CreateGpuClass,
    Deposit,
    PlaceOrder,
    RegisterSite,
    ReportDelivery,
)
from exchange.orders import Side
from exchange.products import HOUR_US
from exchange.settlement import ContractState


class Workload:
    def __init__(self, trades: int) -> None:
        self.core = ExchangeCore(limits=CoreLimits.unbounded())
        self.trades = trades
        self.settled_windows = 0
        core = self.core
        for op in genesis_operations(START):
            core.apply(op)
        core.apply(CreateGpuClass("H", "Hopper", "fp16", "700"))
        core.apply(tier())
        self.buyer = core.apply(CreateAccount("lab", "trader")).id
        self.seller = core.apply(CreateAccount("dc", "trader")).id
        for account in (self.buyer, self.seller):
            core.apply(Deposit(account, 10**12 * CNY))
        site = core.apply(RegisterSite(self.seller, "dc", "east", "1.25", "0")).id
        self.pool = core.apply(AddPool(self.seller, site, H100, 100_000)).id
        core.take_changes()

    def window(self) -> None:
        """Trading in the nearest open window, the delivery reports due, an hour on."""
        core = self.core
        query = core.query
        symbol = min(
            (r.instrument.window.start, r.symbol)
            for r in query.instruments()
            if r.state is InstrumentState.OPEN
        )[1]
        for n in range(self.trades):
            price = 200_000 + 100 * (n % 7)
            core.apply(PlaceOrder(self.seller, symbol, Side.SELL, 10_000, price))
            core.apply(PlaceOrder(self.buyer, symbol, Side.BUY, 10_000, price))
            core.apply(PlaceOrder(self.buyer, symbol, Side.BUY, 10_000, 150_000))  # rests
        for c in query.contracts():
            if c.state is ContractState.DELIVERING and c.delivered_device_seconds == 0:
                core.apply(ReportDelivery(self.seller, c.id, self.pool, 50))
        core.apply(AdvanceClock(core.now + HOUR_US))
        core.take_changes()
        self.settled_windows = sum(r.state is InstrumentState.SETTLED for r in query.instruments())


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=150)
    parser.add_argument("--trades", type=int, default=40, help="trades per window")
    args = parser.parse_args()
    workload = Workload(args.trades)
    tracemalloc.start()
    started = time.perf_counter()
    first = max(3, args.windows // 3)
    for _ in range(first):
        workload.window()
    early = (_traced(), workload.settled_windows)
    for _ in range(args.windows - first):
        workload.window()
    late = (_traced(), workload.settled_windows)
    seconds = time.perf_counter() - started
    tracemalloc.stop()
    core = workload.core
    settled = late[1] - early[1]
    figures: dict[str, Any] = {
        "windows": args.windows,
        "trades_per_window": args.trades,
        "orders_per_window": 3 * args.trades,
        "settled_windows": late[1],
        "core_bytes_at_third": early[0],
        "core_bytes_at_end": late[0],
        "residue_bytes_per_settled_window": round((late[0] - early[0]) / max(1, settled)),
        "orders_in_core": len(core.query.orders_of(workload.buyer))
        + len(core.query.orders_of(workload.seller)),
        "contracts_in_core": len(core.query.contracts()),
        "instruments": len(core.query.instruments()),
        "snapshot_bytes": len(snapshot.dumps(core)),
        "seconds": round(seconds, 2),
    }
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
