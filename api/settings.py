"""Server settings, read once at start from the environment (prefix ``SUANLI_``)."""

from __future__ import annotations

from pydantic import Field, PositiveFloat, PositiveInt
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.db.engine import DEFAULT_DATABASE_URL

__all__ = ["Settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUANLI_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    clock: str = "real"  # "real" or "simulated"
    start: str | None = None  # ISO 8601 start time of a new simulated exchange
    # registered (idempotently) as an admin key at start; kept out of the settings' repr
    admin_key: str | None = Field(default=None, repr=False)
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
    # Snapshots of the core (api/snapshot.py): start-up loads the newest valid one and
    # replays only the log after it. The directory defaults to "<database file>.snapshots"
    # beside a SQLite file; on PostgreSQL snapshots are taken only where it is set.
    snapshot_enabled: bool = True
    snapshot_dir: str | None = None
    snapshot_every_operations: PositiveInt = 100_000  # operations since the last one
    snapshot_every_seconds: PositiveFloat = 3_600.0  # or this long, if anything changed
    snapshot_keep: PositiveInt = 3  # the newest this many are kept
    max_body_bytes: int = 256 * 1024
    page_limit_max: int = 500
    batch_max: int = 512  # operations per group commit
    check_invariants: bool = False  # run every invariant check after each commit (slow)
    tune_gc: bool = False  # server processes: freeze start-up objects, collect less often

    # The server and the WebSocket (api/server.py, api/ws.py): what clients can make it hold.
    # Open connections (HTTP and WebSocket) and running requests; one more is answered 503.
    http_connections_max: PositiveInt = 1_000
    # A request's line, headers and body must arrive within this of its first byte: 408.
    http_request_timeout_s: PositiveFloat = 10.0
    http_header_bytes_max: PositiveInt = 32 * 1024  # a request's line and headers: 431
    http_keep_alive_s: PositiveInt = 5  # an idle keep-alive connection is closed after this
    http_backlog: PositiveInt = 1_024  # connections the kernel queues before they are accepted
    forwarded_allow_ips: str = "127.0.0.1"  # proxies whose X-Forwarded-For is believed
    ws_message_bytes_max: PositiveInt = 64 * 1024  # a client message; larger frames: 1009
    ws_subscriptions_max: PositiveInt = 256  # channels one connection may hold
    ws_connections_per_address_max: PositiveInt = 32  # connections without a key, per address
    ws_connections_per_account_max: PositiveInt = 32  # connections with one account's key
    ws_connections_max: PositiveInt = 500  # WebSocket connections in all
    # Messages sent to a connection but not yet taken by its client: from half of this its
    # requests stop being read; at the limit it is closed (1013).
    ws_send_buffer_bytes: PositiveInt = 4 * 1024 * 1024
