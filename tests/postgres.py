"""The PostgreSQL server the persistence and API tests run against, when there is one."""

from __future__ import annotations

import os
from functools import cache

from sqlalchemy import create_engine, make_url, text

from api.db.engine import database_url

POSTGRES_URL_ENV = "SUANLI_TEST_POSTGRES_URL"
CONNECT_TIMEOUT_S = 3


@cache
def postgres_server(what: str) -> tuple[str | None, str]:
    """(base URL, "") when PostgreSQL answers, else (None, why ``what`` tests skip)."""
    raw = os.environ.get(POSTGRES_URL_ENV)
    if not raw:
        return None, f"{POSTGRES_URL_ENV} is not set: PostgreSQL {what} tests skipped"
    url = database_url(raw)
    shown = make_url(url).render_as_string(hide_password=True)
    engine = create_engine(url, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return None, f"PostgreSQL at {shown} is unreachable ({type(exc).__name__}): skipped"
    finally:
        engine.dispose()
    return url, ""
