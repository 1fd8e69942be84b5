"""The process the crash test kills: a service applying a long stream, one commit at a time.

Usage: ``python -m tests.persistence.crash_writer DATABASE_URL SEED COUNT``

It applies ``crash_operations(SEED, COUNT)`` in order through ``ExchangeService.run`` (one
operation, one durable commit) and, after each operation the service acknowledged, prints
``ACK <seq> <op_index>`` and flushes stdout. A refused operation prints ``REJ <op_index>
<code>``. The parent kills it with SIGKILL at a random moment.
"""

from __future__ import annotations

import sys

from api.db.store import Store
from exchange.core import Rejected

from .market import crash_operations, start_service


def main(argv: list[str]) -> int:
    url, seed, count = argv[1], int(argv[2]), int(argv[3])
    ops = crash_operations(seed, count)
    store = Store(url)
    # Invariant checks stay off here to keep commits frequent; the parent checks after.
    service = start_service(store, check_invariants=False)
    out = sys.stdout
    out.write(f"READY {service.seq}\n")
    out.flush()
    for index, op in enumerate(ops):
        try:
            service.run(op)
        except Rejected as exc:
            out.write(f"REJ {index} {exc.code}\n")
            continue
        out.write(f"ACK {service.seq} {index}\n")
        out.flush()
    out.write("DONE\n")
    out.flush()
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
