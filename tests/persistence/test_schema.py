"""The schema comes from Alembic migrations, from an empty database, and upgrading is idempotent."""

from __future__ import annotations

from collections.abc import Callable

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

import api.db.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from api.db.migrate import alembic_config, upgrade
from api.db.store import Store
from exchange.genesis import genesis_operations

from .market import START_US, setup_market, start_service

EXPECTED_TABLES = {
    "operation_log",
    "accounts",
    "api_keys",
    "hardware",
    "gpu_classes",
    "tiers",
    "instruments",
    "sites",
    "pools",
    "orders",
    "trades",
    "contracts",
    "settlements",
    "ledger_transfers",
    "deliveries",
    "events",
}


def _head(url: str) -> str:
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert head is not None
    return head


def _tables(store: Store) -> set[str]:
    return set(inspect(store.engine).get_table_names())


def _version(store: Store) -> str | None:
    with store.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def test_migrates_an_empty_database_to_head(open_store: Callable[..., Store], db_url: str) -> None:
    store = open_store(migrate=False)
    assert _tables(store) == set(), "the database should start empty"
    assert _version(store) is None

    upgrade(store.engine)

    tables = _tables(store)
    assert tables >= EXPECTED_TABLES | {"alembic_version"}
    assert tables == set(SQLModel.metadata.tables) | {"alembic_version"}
    assert _version(store) == _head(db_url)


def test_migrated_schema_matches_the_models(open_store: Callable[..., Store]) -> None:
    """Autogenerate finds nothing to do: the migrations build exactly the SQLModel tables."""
    store = open_store()
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_upgrading_twice_is_a_no_op(open_store: Callable[..., Store], db_url: str) -> None:
    store = open_store()
    service = start_service(store)
    setup_market(service.run)
    before_hash = service.core.state_hash()
    counts = {name: store.count(name) for name in ("operation_log", "accounts", "events")}
    columns = {name: inspect(store.engine).get_columns(name) for name in EXPECTED_TABLES}

    upgrade(store.engine)
    upgrade(store.engine)
    store.close()
    again = open_store()  # Store() upgrades on open too (its writer: the lock is free now)

    assert _version(again) == _head(db_url)
    inspector = inspect(again.engine)
    for name in EXPECTED_TABLES:
        assert [c["name"] for c in inspector.get_columns(name)] == [
            c["name"] for c in columns[name]
        ]
    assert {name: again.count(name) for name in counts} == counts
    with again.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    assert start_service(again).core.state_hash() == before_hash


def test_a_fresh_service_logs_its_catalog_then_its_start_time(
    open_store: Callable[..., Store],
) -> None:
    store = open_store()
    start_service(store)
    ops = list(store.operations())
    assert [seq for seq, _ in ops] == [1, 2]
    assert [op for _, op in ops] == genesis_operations(START_US)
    assert [type(op).__name__ for _, op in ops] == ["InstallCatalog", "AdvanceClock"]


def test_every_column_has_a_postgresql_array_type() -> None:
    """PostgreSQL upserts and log rows bind one typed array per column (Store._statement): a
    column of a type without one would fail only when first upserted."""
    from api.db.store import _TABLES, _pg_type

    types = {(name, c.name): _pg_type(c.type) for name, table in _TABLES.items() for c in table.c}
    assert types[("orders", "id")] == "bigint"
    assert types[("hardware", "confirmed")] == "boolean"
    assert types[("events", "payload")] == "bytea"
    assert set(types.values()) <= {"bigint", "integer", "boolean", "bytea", "text"}
