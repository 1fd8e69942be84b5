"""Offline checks of a database: ``suanli db verify`` and the admin commands that read.

The log is read and replayed into a fresh core exactly as a start-up would, without
taking the writer lock or writing anything, so it is safe beside a running server.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.exc import DBAPIError

from api import snapshot
from api.db.chain import GENESIS, LogDamaged
from api.db.store import DatabaseRefused, LogEntry, Store
from api.startup import StartupError, shown
from exchange.core import ExchangeCore, Rejected
from exchange.genesis import begin_replay, replaying_core
from exchange.invariants import InvariantViolation

__all__ = ["Replayed", "SnapshotCheck", "Taken", "replay_database", "take_snapshot"]


@dataclass
class SnapshotCheck:
    """One snapshot file against the full replay: ``matches``, ``differs`` or
    ``unreadable``, and why."""

    name: str
    seq: int | None
    status: str
    detail: str = ""


@dataclass
class Replayed:
    core: ExchangeCore
    operations: int
    head: str  # the chain digest of the last row, hex
    state_hash: str
    projected: int
    snapshots: list[SnapshotCheck] = field(default_factory=list)


def _replay_entry(core: ExchangeCore, entry: LogEntry) -> None:
    """Apply one log row on replay: a row the core refuses is a damaged log."""
    if entry.seq == 1:
        begin_replay(core, entry.op)
    try:
        core.apply(entry.op)
    except Rejected as exc:
        what = f"the operation is refused on replay ({exc.code})"
        raise LogDamaged(entry.seq, what) from exc
    core.take_changes()


def _check_snapshots(
    directory: Path, at: dict[int, tuple[bytes, str]], last: int
) -> list[SnapshotCheck]:
    """Each snapshot in ``directory`` against the replay's (chain link, state hash) at
    its operation (``at``): its header and the state its payload loads must match both."""
    checks = []
    for seq, path in sorted(snapshot.list_snapshots(directory)):
        try:
            header, core = snapshot.read(path)
        except snapshot.SnapshotUnreadable as exc:
            checks.append(SnapshotCheck(path.name, seq, "unreadable", str(exc)))
            continue
        if header.seq not in at:
            what = f"the log ends at operation {last}" if header.seq > last else "not replayed"
            checks.append(SnapshotCheck(path.name, seq, "differs", what))
            continue
        chain, state_hash = at[header.seq]
        loaded = core.state_hash()
        if header.chain != chain.hex():
            why = "the log's row at its operation is not the one it was taken at"
        elif header.state_hash != state_hash:
            why = f"its header's state hash is not the replay's ({state_hash})"
        elif loaded != state_hash:
            why = f"the state it loads hashes to {loaded}, the replay's to {state_hash}"
        else:
            checks.append(SnapshotCheck(path.name, seq, "matches", state_hash))
            continue
        checks.append(SnapshotCheck(path.name, seq, "differs", why))
    return checks


def replay_database(url: str, snapshot_dir: Path | None = None) -> Replayed:
    """Replay the whole log at ``url`` and check it (and, with ``snapshot_dir``, every
    snapshot in it against the replay); raises LogDamaged, DatabaseRefused or
    StartupError (one line each) on the first problem of the log."""
    store = Store(url, migrate=False)
    try:
        wanted = set()
        if snapshot_dir is not None:
            wanted = {seq for seq, _ in snapshot.list_snapshots(snapshot_dir)}
        at: dict[int, tuple[bytes, str]] = {}
        core = replaying_core()
        head, count = GENESIS, 0
        for entry in store.read_log():
            _replay_entry(core, entry)
            head, count = entry.chain, entry.seq
            if count in wanted:
                at[count] = (head, core.state_hash())
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
        checks = _check_snapshots(snapshot_dir, at, count) if snapshot_dir is not None else []
        return Replayed(core, count, head.hex(), core.state_hash(), projected, checks)
    except DBAPIError as exc:
        raise StartupError(
            f"cannot read the database at {shown(url)} ({type(exc.orig).__name__}): is it a "
            "suanli database, migrated to this version (suanli db upgrade)?"
        ) from exc
    finally:
        store.close()


@dataclass
class Taken:
    path: Path
    seq: int
    size: int
    seconds: float
    replayed: int  # log rows replayed to build it
    deleted: int  # older snapshots deleted (beyond keep)


def take_snapshot(url: str, directory: Path, keep: int) -> Taken:
    """Write a snapshot of the state at the end of the log at ``url`` into ``directory``,
    built like a start-up builds it (the newest usable snapshot and the log after it),
    then keep the newest ``keep``. Reads the database only: safe beside a running
    server, whose snapshot of the same operation would hold the same bytes."""
    started = time.perf_counter()
    store = Store(url, migrate=False)
    try:
        found = snapshot.newest_usable(store, directory)
        core, after, head = replaying_core(), 0, GENESIS
        if found is not None:
            header, core = found
            after, head = header.seq, bytes.fromhex(header.chain)
        seq = after
        for entry in store.read_log(after=after):
            _replay_entry(core, entry)
            seq, head = entry.seq, entry.chain
        if seq == 0:
            raise StartupError(f"the database at {shown(url)} holds no operation yet")
        try:
            core.check()
        except InvariantViolation as exc:
            raise StartupError(f"the state the log builds breaks an invariant: {exc}") from exc
        path = snapshot.write(directory, core, seq, head)
        deleted = snapshot.prune(directory, keep)
        seconds = time.perf_counter() - started
        return Taken(path, seq, path.stat().st_size, seconds, seq - after, len(deleted))
    except DBAPIError as exc:
        raise StartupError(
            f"cannot read the database at {shown(url)} ({type(exc.orig).__name__}): is it a "
            "suanli database, migrated to this version (suanli db upgrade)?"
        ) from exc
    finally:
        store.close()
