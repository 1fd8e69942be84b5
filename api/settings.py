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
    max_open_orders_per_account: int = 10_000  # open orders per account, all instruments
    max_sites_per_account: int = 100
    max_pools_per_account: int = 1_000
    rate_limit_per_s: float = 50.0  # orders entered per second per key (a batch counts each)
    rate_limit_burst: int = 100
    # Every other change (sites, pools, deliveries, accounts, money, catalog, tiers, clock,
    # keys): requests per second per key; 0: off. Cancels are never limited.
    change_rate_per_s: float = 20.0
    change_rate_burst: int = 100
    idempotency_ttl_s: int = 86_400  # how long an Idempotency-Key's answer is kept
    idempotency_keys_max: int = 10_000  # Idempotency-Keys kept per account
    # Operations held in memory while the projection tables cannot be written; beyond it
    # writes are refused (503) until they are.
    projection_backlog_max: int = 1_000_000
    max_body_bytes: int = 256 * 1024
    page_limit_max: int = 500
    batch_max: int = 512  # operations per group commit
    check_invariants: bool = False  # run every invariant check after each commit (slow)
    tune_gc: bool = False  # server processes: freeze start-up objects, collect less often
