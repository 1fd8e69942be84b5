"""Fixtures of the persistence tests: the same tests on SQLite and on PostgreSQL.

``db_url`` is parametrized over ``sqlite`` (a file in the test's tmp_path) and
``postgresql``. PostgreSQL comes from ``SUANLI_TEST_POSTGRES_URL`` (``.ci/run`` sets it,
e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``); when it is unset or the server
does not answer, the PostgreSQL variants skip and say why. Each PostgreSQL test gets a
database of its own (``suanli_t_<uuid>``; a schema of that name where the role may not
create databases), dropped afterwards, so tests never see each other's rows or locks.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy.exc
from sqlalchemy import create_engine, make_url, text

from api.db.store import Store
from tests.postgres import postgres_server


def _postgres_server() -> tuple[str | None, str]:
    return postgres_server("persistence")


@contextmanager
def postgres_database() -> Iterator[str]:
    """A URL of a fresh, empty PostgreSQL database, dropped afterwards.

    A database per test rather than a schema per test: the service's single-writer guard
    is a PostgreSQL advisory lock, and advisory locks are per database, so tests sharing
    one database (this run's, or another suite's running at the same time) would lock
    each other out. Where the role may not create databases, a fresh schema (selected
    with the ``search_path`` connection option) is used instead.
    """
    base, reason = _postgres_server()
    if base is None:
        pytest.skip(reason)
    name = f"suanli_t_{uuid.uuid4().hex}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    schema = False
    with admin.connect() as conn:
        try:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
        except sqlalchemy.exc.ProgrammingError:  # no CREATEDB privilege: a schema instead
            conn.rollback()
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
            schema = True
    url = make_url(base)
    if schema:
        url = url.update_query_dict({"options": f"-csearch_path={name}"})
    else:
        url = url.set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            if schema:
                conn.execute(text("SET lock_timeout = '20s'"))
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
            else:
                # FORCE: a killed test process may leave a backend behind for a moment.
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL for an empty database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'suanli.db'}"
        return
    with postgres_database() as url:
        yield url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """PostgreSQL only (a fresh database); skips when PostgreSQL is not available."""
    with postgres_database() as url:
        yield url


@pytest.fixture
def open_store(db_url: str) -> Iterator[Callable[..., Store]]:
    """Open stores on ``db_url``; every store still open is closed after the test."""
    opened: list[Store] = []

    def open_(url: str | None = None, **kwargs: object) -> Store:
        store = Store(url or db_url, **kwargs)  # type: ignore[arg-type]
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def open_pg_store(pg_url: str) -> Iterator[Callable[..., Store]]:
    opened: list[Store] = []

    def open_(**kwargs: object) -> Store:
        store = Store(pg_url, **kwargs)  # type: ignore[arg-type]
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()
