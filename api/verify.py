"""Offline checks of a database: ``suanli db verify`` and the admin commands that read.

The log is read and replayed into a fresh core exactly as a start-up would, without
taking the writer lock or writing anything, so it is safe beside a running server.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError

from api.db.chain import GENESIS, LogDamaged
from api.db.store import DatabaseRefused, Store
from api.startup import StartupError, shown
from exchange.core import ExchangeCore, Rejected
from exchange.genesis import begin_replay, replaying_core
from exchange.invariants import InvariantViolation

__all__ = ["Replayed", "replay_database"]


@dataclass
class Replayed:
    core: ExchangeCore
    operations: int
    head: str  # the chain digest of the last row, hex
    state_hash: str
    projected: int


def replay_database(url: str) -> Replayed:
    """Replay the log at ``url`` and check it; raises LogDamaged, DatabaseRefused or
    StartupError (one line each) on the first problem."""
    store = Store(url, migrate=False)
    try:
        core = replaying_core()
        head, count = GENESIS, 0
        for entry in store.read_log():
            if entry.seq == 1:
                begin_replay(core, entry.op)
            try:
                core.apply(entry.op)
            except Rejected as exc:
                what = f"the operation is refused on replay ({exc.code})"
                raise LogDamaged(entry.seq, what) from exc
            core.take_changes()
            head, count = entry.chain, entry.seq
        try:
            core.check()
        except InvariantViolation as exc:
            raise StartupError(f"the state the log builds breaks an invariant: {exc}") from exc
        projected = store.projected_seq()
        if projected > count:
            raise DatabaseRefused(
                f"the operation log ends at seq {count} but the projections reach seq "
                f"{projected}: the log lost rows; restore the database from a backup"
            )
        return Replayed(core, count, head.hex(), core.state_hash(), projected)
    except DBAPIError as exc:
        raise StartupError(
            f"cannot read the database at {shown(url)} ({type(exc.orig).__name__}): is it a "
            "suanli database, migrated to this version (suanli db upgrade)?"
        ) from exc
    finally:
        store.close()
