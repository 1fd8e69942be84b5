"""The process the snapshot crash test kills: a service taking a snapshot every 100
operations while it applies a long stream.

Usage: ``python -m tests.persistence.snapshot_writer DATABASE_URL SNAPSHOT_DIR SEED COUNT``

After each operation that started a snapshot it prints ``SNAP <child pid> <seq>`` and
flushes stdout; the parent kills the child and this process with SIGKILL at a random
moment while the child writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from api.db.store import Store
from api.snapshot import SnapshotPolicy
from exchange.core import Rejected

from .market import crash_operations, start_service


def main(argv: list[str]) -> int:
    url, directory, seed, count = argv[1], Path(argv[2]), int(argv[3]), int(argv[4])
    policy = SnapshotPolicy(directory, every_operations=100, keep=2)
    service = start_service(Store(url), check_invariants=False, snapshots=policy)
    out = sys.stdout
    seen = None
    for op in crash_operations(seed, count):
        try:
            service.run(op)
        except Rejected:
            continue
        child = service.snapshot_child
        if child is not None and child != seen:
            seen = child
            out.write(f"SNAP {child} {service.seq}\n")
            out.flush()
    service.reap_snapshot(block=True)
    out.write("DONE\n")
    out.flush()
    service.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
