"""Server settings, read once at start from the environment (prefix ``SUANLI_``)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from api.db.engine import DEFAULT_DATABASE_URL

__all__ = ["Settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUANLI_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    clock: str = "real"  # "real" or "simulated"
    start: str | None = None  # ISO 8601 start time of a new simulated exchange
    admin_key: str | None = None  # registered (idempotently) as an admin key at start
    max_open_orders: int = 1_000  # open orders per account and instrument
    rate_limit_per_s: float = 50.0  # order-entry requests per second per key; 0: off
    rate_limit_burst: int = 100
    max_body_bytes: int = 256 * 1024
    page_limit_max: int = 500
    batch_max: int = 512  # operations per group commit
    check_invariants: bool = False  # run every invariant check after each commit (slow)
    tune_gc: bool = False  # server processes: freeze start-up objects, collect less often
