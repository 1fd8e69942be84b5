"""A second writer process for the single-writer test.

Usage: ``python -m tests.persistence.second_writer DATABASE_URL``

It tries to start an ExchangeService on the database and prints ``LOCKED`` if another
process is the writer, else ``STARTED <seq>`` and then, after one deposit to account 1,
``ACK <seq>``.
"""

from __future__ import annotations

import sys

from api.db.store import Store, WriterLocked
from exchange.operations import Deposit

from .market import start_service


def main(argv: list[str]) -> int:
    try:
        # The writer lock comes first, before migrating: no wait for it here.
        store = Store(argv[1], lock_wait_s=0)
    except WriterLocked:
        print("LOCKED", flush=True)
        return 0
    try:
        service = start_service(store)
        print(f"STARTED {service.seq}", flush=True)
        service.run(Deposit(1, 1))
        print(f"ACK {service.seq}", flush=True)
        return 0
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
