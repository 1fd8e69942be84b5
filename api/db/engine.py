"""Database engines for SQLite (the default, a file in the working directory) and PostgreSQL."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Engine, create_engine, event

__all__ = ["DEFAULT_DATABASE_URL", "database_url", "make_engine"]

DEFAULT_DATABASE_URL = "sqlite:///suanli.db"


def database_url(explicit: str | None = None) -> str:
    """The URL to use: explicit, else ``SUANLI_DATABASE_URL``, else ``suanli.db`` here."""
    url = explicit or os.environ.get("SUANLI_DATABASE_URL") or DEFAULT_DATABASE_URL
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(url: str) -> Engine:
    """An engine with durable settings: SQLite in WAL mode with a full fsync per commit."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")  # fsync the WAL at every commit
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)
