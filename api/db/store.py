"""The durable store: the operation log, its projections, replay on start.

:meth:`Store.write` writes one batch in one transaction: either a group of operations'
log rows (with the idempotency records committed with them), which is what makes them
durable, or a run of projection rows with the projection watermark. A batch is either
wholly there or wholly absent after a crash. :meth:`Store.read_log` reads the log back
for replay and checks its hash chain (api.db.chain) row by row;
:meth:`Store.projected_seq` tells where the projections stopped.

A store opened to migrate (the default) is the database's writer: it takes the writer
lock first, then migrates, so two processes never migrate or write one database at once.
"""

from __future__ import annotations

import operator
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy import (
    BigInteger,
    Boolean,
    Engine,
    Integer,
    LargeBinary,
    String,
    Table,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from api.db import tables as t
from api.db.chain import GENESIS, LogDamaged, link
from api.db.engine import make_engine
from api.db.migrate import upgrade
from exchange.operations import Operation, decode_operation

__all__ = [
    "LOG_COLUMNS",
    "Batch",
    "DatabaseRefused",
    "LogEntry",
    "Row",
    "Store",
    "WriterLocked",
]

#: First half of the single writer's advisory lock on PostgreSQL ("suan" in ASCII); the
#: second half is the hash of the schema, so exchanges in separate schemas do not collide.
_PG_WRITER_LOCK = 0x7375616E


class WriterLocked(RuntimeError):
    """Another process is already the writer of this database."""


class DatabaseRefused(RuntimeError):
    """The database is not one suanli may open as it is (an empty file in place of a
    database, a log that lost rows its projections still show): the message says why
    and what to do, in one line."""


class LogEntry(msgspec.Struct, frozen=True, gc=False):
    """One verified row of the operation log."""

    seq: int
    applied_at: int
    op: Operation
    chain: bytes


Row = dict[str, Any] | tuple[Any, ...]


@dataclass
class Batch:
    """Rows of one transaction. ``upserts`` replace rows by primary key.

    A row is a dict of its columns, or, for the busiest tables, a tuple in the column
    order that :meth:`columns` declares for that table (no dict built per row).
    """

    operations: list[Row] = field(default_factory=list)
    inserts: dict[str, list[Row]] = field(default_factory=dict)
    upserts: dict[str, dict[Any, Row]] = field(default_factory=dict)
    declared: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def insert(self, table: str, row: Row) -> None:
        self.inserts.setdefault(table, []).append(row)

    def upsert(self, table: str, key: Any, row: Row) -> None:
        self.upserts.setdefault(table, {})[key] = row

    def columns(self, table: str, columns: tuple[str, ...]) -> None:
        """Declare the column order of ``table``'s tuple rows in this batch."""
        self.declared[table] = columns

    def __bool__(self) -> bool:
        return bool(self.operations or self.inserts or self.upserts)


_TABLES: dict[str, Table] = {
    name: model.__table__  # type: ignore[union-attr]
    for name, model in (
        ("operation_log", t.OperationRow),
        ("accounts", t.AccountRow),
        ("api_keys", t.ApiKeyRow),
        ("idempotency_keys", t.IdempotencyRow),
        ("hardware", t.HardwareRow),
        ("gpu_classes", t.GpuClassRow),
        ("tiers", t.TierRow),
        ("instruments", t.InstrumentRow),
        ("sites", t.SiteRow),
        ("pools", t.PoolRow),
        ("orders", t.OrderRow),
        ("trades", t.TradeRow),
        ("contracts", t.ContractRow),
        ("settlements", t.SettlementRow),
        ("ledger_transfers", t.TransferRow),
        ("deliveries", t.DeliveryRow),
        ("events", t.EventRow),
        ("archive", t.ArchiveRow),
        ("projection_state", t.ProjectionStateRow),
    )
}
#: Parameters per multi-row INSERT (the limits: PostgreSQL 65,535; SQLite 32,766).
_PARAMETERS_PER_STATEMENT = 4_000
#: The column order of operation-log rows given as tuples.
LOG_COLUMNS = ("seq", "applied_at", "kind", "payload", "chain")
# Insert order respects what a reader expects to find together (log first).
_INSERT_ORDER = list(_TABLES)


def _on_conflict_update(table: Table, columns: tuple[str, ...]) -> str:
    """The clause that turns an INSERT of ``columns`` into ``table`` into an upsert."""
    keys = [c.name for c in table.primary_key.columns]
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys)
    return f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"


def _pg_type(column_type: Any) -> str:
    """The PostgreSQL type of an array parameter for a column of ``column_type``."""
    if isinstance(column_type, BigInteger):
        return "bigint"
    if isinstance(column_type, Integer):
        return "integer"
    if isinstance(column_type, Boolean):
        return "boolean"
    if isinstance(column_type, LargeBinary):
        return "bytea"
    if isinstance(column_type, String):  # Text, VARCHAR and SQLModel's AutoString
        return "text"
    raise TypeError(f"no PostgreSQL array type for {column_type!r}")


class Store:
    """The operation log and its projections in one SQL database."""

    def __init__(self, url: str, *, migrate: bool = True, lock_wait_s: float = 10.0) -> None:
        """Open the database at ``url``. With ``migrate`` (the writer's way) the writer
        lock is taken first (waiting up to ``lock_wait_s`` for one a killed writer left),
        then the schema is migrated; without it the store only reads."""
        self.url = url
        self.engine: Engine = make_engine(url)
        self.dialect = self.engine.dialect.name
        self._lock: Any = None
        self._statements: dict[tuple[str, tuple[str, ...], bool, int | None], str] = {}
        self._writer: Connection | None = None
        self._log: Connection | None = None  # PostgreSQL: log-only groups, autocommit
        self._projector: Connection | None = None
        if migrate:
            try:
                self.lock_writer(lock_wait_s)
                upgrade(self.engine)
            except BaseException:
                self.close()
                raise

    def lock_writer(self, wait_seconds: float = 10.0) -> None:
        """Become the only writer of this database, or raise :class:`WriterLocked`.

        The lock belongs to the database itself, however it is reached: PostgreSQL's
        session advisory lock (per database and schema), held on a dedicated connection;
        on SQLite an exclusive ``flock`` on the database file's own inode, so a hard link
        or a symbolic link to the same file meets the same lock. Both vanish with the
        process, so a crash never leaves a stale lock behind.
        """
        if self._lock is not None:
            return
        # A writer killed a moment ago may still hold its lock until the server notices:
        # retry for a while before refusing, so an immediate restart succeeds.
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                self._try_lock()
                return
            except WriterLocked:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)

    def sqlite_path(self) -> str | None:
        """The SQLite database file, or None (PostgreSQL, or SQLite in memory)."""
        database = self.engine.url.database
        if self.dialect != "sqlite" or not database or database == ":memory:":
            return None
        return database

    def _try_lock(self) -> None:
        if self.dialect == "postgresql":
            conn = self.engine.connect()
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(:k, hashtext(current_schema()))"),
                {"k": _PG_WRITER_LOCK},
            )
            if not got.scalar():
                conn.close()
                raise WriterLocked(
                    "another suanli process is the writer of this database: stop it first"
                )
            conn.commit()
            self._lock = conn
            return
        path = self.sqlite_path()
        if path is None:
            return
        import fcntl

        if os.path.exists(path) and os.path.getsize(path) == 0:
            raise DatabaseRefused(
                f"{path} is an empty file, not a suanli database: restore the database "
                "from a backup, or delete the empty file to start a new exchange"
            )
        # The database file itself (created empty if new; SQLite takes an empty file as
        # a new database). flock locks are independent of SQLite's own POSIX locks, but
        # closing ANY descriptor of the file drops this process's POSIX locks on it:
        # the descriptor is only closed once the engine's connections are (close()).
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise WriterLocked(
                f"another suanli process is the writer of {path} (or of a link to the "
                "same file): stop it first"
            ) from exc
        self._lock = fd

    def close(self) -> None:
        for slot in ("_writer", "_log", "_projector"):
            conn = getattr(self, slot)
            if conn is not None:
                conn.close()
                setattr(self, slot, None)
        lock, self._lock = self._lock, None
        if isinstance(lock, Connection):
            # Closed outright, not returned to the pool: the advisory lock is the
            # session's, and ends with it.
            lock.invalidate()
            lock.close()
        # Every SQLite connection closed before the lock's descriptor is: see _try_lock.
        self.engine.dispose()
        if isinstance(lock, int):
            os.close(lock)

    # ------------------------------------------------------------------ reading
    def read_log(self, after: int = 0) -> Iterator[LogEntry]:
        """The operation log after seq ``after``, in order, each row's chain link and
        decoding checked; raises :class:`~api.db.chain.LogDamaged` at the first gap,
        edited row or row that does not decode."""
        table = _TABLES["operation_log"]
        columns = (table.c.seq, table.c.applied_at, table.c.kind, table.c.payload, table.c.chain)
        with self.engine.connect() as conn:
            previous = GENESIS
            if after:
                row = conn.execute(select(table.c.chain).where(table.c.seq == after)).first()
                if row is None:
                    raise LogDamaged(after, "the row is missing")
                previous = bytes(row[0])
            result = conn.execution_options(stream_results=True, yield_per=5_000).execute(
                select(*columns).where(table.c.seq > after).order_by(table.c.seq)
            )
            try:
                yield from self._verified(result, after, previous)
            finally:
                result.close()  # a server-side cursor on PostgreSQL: closed if we stop early

    @staticmethod
    def _verified(rows: Any, after: int, previous: bytes) -> Iterator[LogEntry]:
        expected = after + 1
        for seq, applied_at, kind, payload, chain in rows:
            if seq != expected:
                raise LogDamaged(expected, f"the row is missing (the next row is {seq})")
            payload = bytes(payload)
            previous = link(previous, seq, applied_at, kind, payload)
            if previous != bytes(chain):
                raise LogDamaged(seq, "the row differs from what was written")
            try:
                op = decode_operation(payload)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise LogDamaged(seq, f"the operation does not decode ({exc})") from exc
            if type(op).__name__ != kind:
                raise LogDamaged(seq, f"the row says {kind} but holds {type(op).__name__}")
            yield LogEntry(seq, applied_at, op, previous)
            expected += 1

    def operations(self, after: int = 0) -> Iterator[tuple[int, Operation]]:
        """The operation log in order, decoded and checked (:meth:`read_log`)."""
        for entry in self.read_log(after):
            yield entry.seq, entry.op

    def operation_at(self, seq: int) -> Operation | None:
        """The logged operation ``seq``, decoded (None when the log does not hold it)."""
        table = _TABLES["operation_log"]
        with self.engine.connect() as conn:
            payload = conn.execute(select(table.c.payload).where(table.c.seq == seq)).scalar()
        return None if payload is None else decode_operation(bytes(payload))

    def chain_at(self, seq: int) -> bytes | None:
        """The chain link stored with log row ``seq`` (None when the log does not hold it)."""
        table = _TABLES["operation_log"]
        with self.engine.connect() as conn:
            value = conn.execute(select(table.c.chain).where(table.c.seq == seq)).scalar()
        return None if value is None else bytes(value)

    def last_seq(self) -> int:
        table = _TABLES["operation_log"]
        with self.engine.connect() as conn:
            value = conn.execute(select(table.c.seq).order_by(table.c.seq.desc()).limit(1)).scalar()
        return int(value or 0)

    def projected_seq(self, name: str = "tables") -> int:
        """The last operation the projection tables include (0 when none); with ``name``
        ``archive``, the last one the archive of retired records includes (0 also for a
        database written before there was one: api.service.ExchangeService fills it)."""
        table = _TABLES["projection_state"]
        with self.engine.connect() as conn:
            value = conn.execute(select(table.c.seq).where(table.c.name == name)).scalar()
        return int(value or 0)

    def all_rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of a small table (idempotency records) for start-up."""
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(_TABLES[table]))]

    def count(self, table: str) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(text(f"SELECT count(*) FROM {_TABLES[table].name}")).scalar() or 0
            )

    def legacy_api_keys(self) -> list[dict[str, Any]]:
        """API keys written before keys were logged (migration 0004), oldest first."""
        if not inspect(self.engine).has_table("api_keys_legacy"):
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT * FROM api_keys_legacy ORDER BY id"))
            return [dict(r._mapping) for r in rows]

    def drop_legacy_api_keys(self) -> None:
        """Drop the legacy key table once its keys are in the log."""
        with self.engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS api_keys_legacy"))

    def delete_idempotency_before(self, created_before: int) -> int:
        """Delete the idempotency records created before ``created_before`` (expired)."""
        table = _TABLES["idempotency_keys"]
        with self.engine.begin() as conn:
            result = conn.execute(table.delete().where(table.c.created_at < created_before))
            return int(result.rowcount or 0)

    # ------------------------------------------------------------------ writing
    @property
    def concurrent_projections(self) -> bool:
        """Whether projections can commit on a connection of their own while the log is
        being written: on PostgreSQL (row locks, disjoint tables); not on SQLite, which
        has one writer at a time, so there they share the writer's connection."""
        return self.dialect == "postgresql"

    def write(self, batch: Batch) -> None:
        """Write one batch in one transaction; returns only once it is durable.

        On PostgreSQL a group of log rows alone (almost every group: the rest carry API
        keys or idempotency records too) is one ``INSERT`` on a connection in autocommit
        mode: a single statement is its own transaction, atomic and durable when it
        returns, and costs one round trip instead of several (``BEGIN``, the rows,
        ``COMMIT``)."""
        if self.dialect == "postgresql" and not batch.inserts and not batch.upserts:
            self._write_on("_log", batch)
        else:
            self._write_on("_writer", batch)

    def write_projection(self, batch: Batch) -> None:
        """Write a batch of projection rows: on their own connection where
        :attr:`concurrent_projections`, else like :meth:`write` but without an fsync of
        its own on SQLite (``synchronous=NORMAL`` for this commit). Projections are
        rebuilt from the log, and the next log commit's fsync of the write-ahead log
        makes them durable too; a crash before it loses both them and their watermark."""
        if self.concurrent_projections:
            self._write_on("_projector", batch)
        else:
            self._write_on("_writer", batch, fsync=False)

    def _write_on(self, slot: str, batch: Batch, fsync: bool = True) -> None:
        if not batch:
            return
        # A writer keeps one connection: no pool checkout (nor, on PostgreSQL, a
        # pre-ping round trip) per group commit. A broken connection fails the write,
        # which stops the service; a restart reconnects.
        conn: Connection | None = getattr(self, slot)
        if conn is None:
            conn = self.engine.connect()
            if slot == "_log":  # one statement per batch: see write()
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            setattr(self, slot, conn)
        try:
            if fsync:
                with conn.begin():
                    self._write(conn, batch)
            else:
                raw = conn.connection.driver_connection
                assert raw is not None  # an open connection
                raw.execute("PRAGMA synchronous=NORMAL")
                try:
                    with conn.begin():
                        self._write(conn, batch)
                finally:
                    raw.execute("PRAGMA synchronous=FULL")
        except BaseException:
            setattr(self, slot, None)
            conn.close()
            raise

    def _write(self, conn: Connection, batch: Batch) -> None:
        # Plain DB-API statements built once per table, column set and row count (or COPY):
        # SQLAlchemy's per-row parameter processing costs more than the database here.
        declared = batch.declared
        if batch.operations:
            self._execute(
                conn, "operation_log", batch.operations, upsert=False, declared=LOG_COLUMNS
            )
        for name in _INSERT_ORDER:
            rows = batch.inserts.get(name)
            if rows:
                self._execute(conn, name, rows, upsert=False, declared=declared.get(name))
            keyed = batch.upserts.get(name)
            if keyed:
                self._execute(
                    conn, name, list(keyed.values()), upsert=True, declared=declared.get(name)
                )

    def _statement(
        self, name: str, columns: tuple[str, ...], upsert: bool, rows: int | None
    ) -> str:
        """INSERT (or upsert) into ``name``, built once and cached: of ``rows`` rows in one
        VALUES list (SQLite), or, with ``rows`` None, of one array parameter per column
        unnested by the server (PostgreSQL: one short statement whatever the row count,
        which the driver parses once and prepares, where a VALUES list of thousands of
        placeholders is parsed anew each time)."""
        key = (name, columns, upsert, rows)
        sql = self._statements.get(key)
        if sql is None:
            table = _TABLES[name]
            sql = f"INSERT INTO {table.name} ({', '.join(columns)}) "
            if rows is None:
                arrays = ", ".join(f"%s::{_pg_type(table.c[c].type)}[]" for c in columns)
                sql += f"SELECT * FROM unnest({arrays})"
            else:
                row = f"({', '.join('?' for _ in columns)})"
                sql += "VALUES " + ", ".join([row] * rows)
            if upsert:
                sql += _on_conflict_update(table, columns)
            self._statements[key] = sql
        return sql

    def _execute(
        self,
        conn: Connection,
        name: str,
        rows: Sequence[Row],
        *,
        upsert: bool,
        declared: tuple[str, ...] | None = None,
    ) -> None:
        first = rows[0]
        params: list[tuple[Any, ...]]
        if isinstance(first, tuple):
            assert declared is not None, f"tuple rows of {name} without declared columns"
            columns = declared
            params = list(rows)  # type: ignore[arg-type]
        else:
            columns = tuple(first)
            getter = operator.itemgetter(*columns)
            params = (
                [getter(row) for row in rows]
                if len(columns) > 1
                else [(r[columns[0]],) for r in rows]  # type: ignore[call-overload]
            )
        if self.dialect == "postgresql":
            # Upserts, and the log (a group's rows in one statement: see write()), as
            # arrays; other appended rows, projection runs of thousands, by COPY.
            if upsert or name == "operation_log":
                arrays = tuple(list(column) for column in zip(*params, strict=True))
                self._arrays(conn, self._statement(name, columns, upsert, None), arrays)
            else:
                self._copy(conn, name, columns, params)
            return
        # SQLite: many rows per statement, in chunks of a bounded size (statements are
        # cached per row count): one statement step, around which the driver gives up the
        # interpreter lock, instead of one per row (each a chance for the event loop's
        # thread to take it away).
        rows_per = max(1, _PARAMETERS_PER_STATEMENT // len(columns))
        for start in range(0, len(params), rows_per):
            chunk = params[start : start + rows_per]
            flat = tuple(value for row in chunk for value in row)
            conn.exec_driver_sql(self._statement(name, columns, upsert, len(chunk)), flat)

    def _arrays(self, conn: Connection, sql: str, arrays: tuple[list[Any], ...]) -> None:
        """PostgreSQL: one statement of one array parameter per column, sent in the binary
        format (no text escaping of every value, bytea above all, in the driver)."""
        raw = conn.connection.dbapi_connection
        assert raw is not None
        dbapi_error = self.engine.dialect.loaded_dbapi.Error
        try:
            with raw.cursor() as cursor:  # type: ignore[attr-defined]
                cursor.execute(sql, arrays, binary=True)
        except dbapi_error as exc:  # as SQLAlchemy reports it for statements
            raise DBAPIError.instance(sql, arrays, exc, dbapi_error) from exc

    def _copy(
        self,
        conn: Connection,
        name: str,
        columns: tuple[str, ...],
        params: list[tuple[Any, ...]],
    ) -> None:
        """PostgreSQL, appended rows: COPY, the server's bulk path (one round trip, no
        statement to parse or plan per row)."""
        raw = conn.connection.dbapi_connection
        assert raw is not None
        sql = f"COPY {_TABLES[name].name} ({', '.join(columns)}) FROM STDIN"
        dbapi_error = self.engine.dialect.loaded_dbapi.Error
        try:
            with raw.cursor() as cursor, cursor.copy(sql) as copy:  # type: ignore[attr-defined]
                for row in params:
                    copy.write_row(row)
        except dbapi_error as exc:  # as SQLAlchemy reports it for statements
            raise DBAPIError.instance(sql, None, exc, dbapi_error) from exc
