"""Instructions per order in the core, counted by valgrind (callgrind), not timed.

Instructions do not depend on what else the machine runs, so two trees (or two settings)
compare exactly in one figure, on a busy machine too. The core alone applies --large and
then --small orders of ``core_market.market()`` (one market maker alternating buys and
sells around 20 CNY, quantities of 1 to 5 lots: some trade, some rest, self-trade
prevention cancels others), each followed by ``take_changes``, in a fresh interpreter
under ``valgrind --tool=callgrind`` with PYTHONHASHSEED=0; the difference of the two totals
over the difference of the counts is the cost of one order, start-up cancelled out.
``--import MODULE`` imports a module first (``api.views`` brings FastAPI and pydantic) to
see whether what the process holds changes the core's cost; ``--tree DIR`` measures
another checkout of suanli with this same driver.

Needs valgrind. Not a test: it asserts nothing and prints figures.

    python benchmarks/bench_instructions.py [--small 500] [--large 2500] [--import api.views]
        [--tree DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: What runs under valgrind: argv is the tree, the module to import first ("" for none)
#: and the order count.
DRIVER = """
import sys
tree, module, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path[:0] = [tree, tree + "/benchmarks"]
if module:
    __import__(module)
from core_market import market
from exchange.operations import PlaceOrder
from exchange.orders import Side
core, mm, symbol = market()
for i in range(count):
    side = Side.BUY if i % 2 else Side.SELL
    price = 200_000 + (i % 20 - 10) * 100
    core.apply(PlaceOrder(mm, symbol, side, 1000 * (1 + i % 5), price))
    core.take_changes()
"""


def instructions(tree: Path, module: str, count: int) -> int:
    """The instructions valgrind counts for the driver placing ``count`` orders."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            # The interpreter itself, not a launcher script in front of it.
            os.path.realpath(sys.executable),
            "-c",
            DRIVER,
            str(tree),
            module,
            str(count),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"Collected : ([\d,]+)", done.stderr)
    if found is None:
        raise RuntimeError(done.stderr[-2000:])
    return int(found.group(1).replace(",", ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=500)
    parser.add_argument("--large", type=int, default=2500)
    parser.add_argument("--import", dest="module", default="", help="a module to import first")
    parser.add_argument("--tree", type=Path, default=ROOT, help="the suanli checkout to count")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: nothing to count", file=sys.stderr)
        return 1
    tree = args.tree.resolve()
    small = instructions(tree, args.module, args.small)
    large = instructions(tree, args.module, args.large)
    per_order = (large - small) / (args.large - args.small)
    print(f"tree {tree}" + (f", with {args.module} imported" if args.module else ""))
    print(f"instructions: {small:,} for {args.small} orders, {large:,} for {args.large}")
    print(f"per order: {per_order:,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
