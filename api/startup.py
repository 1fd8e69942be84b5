"""Opening an exchange: the store, the replayed service, its keys and idempotency records.

Everything that can go wrong at start-up and that an operator can fix becomes a
:class:`StartupError`, whose message is one line that says what is wrong and what to do
(the ``suanli`` command prints it, without a traceback).
"""

from __future__ import annotations

import json
import logging

from sqlalchemy import make_url
from sqlalchemy.exc import DBAPIError

from api.db.chain import LogDamaged
from api.db.store import DatabaseRefused, Store, WriterLocked
from api.deps import Context, RateLimiter
from api.idempotency import IdempotencyStore
from api.keys import OPERATOR_KEY_MIN, key_prefix, operator_digest
from api.service import ExchangeService, Submission
from api.settings import Settings
from api.snapshot import SnapshotPolicy, default_directory
from api.views import iso, parse_iso
from exchange.ids import AccountId
from exchange.limits import CoreLimits
from exchange.operations import CreateAccount, IssueApiKey, Operation, RevokeApiKey

__all__ = [
    "StartupError",
    "bootstrap_admin_key",
    "build_context",
    "open_store",
    "snapshot_policy",
]

log = logging.getLogger("suanli.startup")


class StartupError(RuntimeError):
    """The exchange cannot start as configured; the message says why and what to do."""


def shown(url: str) -> str:
    """A database URL as it may be printed: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "the configured database"


def open_store(url: str, *, lock_wait_s: float = 10.0) -> Store:
    """The store at ``url`` as its writer (locked, migrated), or a StartupError."""
    try:
        return Store(url, lock_wait_s=lock_wait_s)
    except (WriterLocked, DatabaseRefused) as exc:
        raise StartupError(str(exc)) from exc
    except DBAPIError as exc:
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise StartupError(
            f"cannot open the database at {shown(url)}: {first}; check --database-url "
            "(or SUANLI_DATABASE_URL) and that the database server is running"
        ) from exc


def snapshot_policy(settings: Settings, store: Store) -> SnapshotPolicy | None:
    """The snapshot policy the settings give for ``store`` (None: no snapshots)."""
    if not settings.snapshot_enabled:
        return None
    directory = default_directory(settings.snapshot_dir, store.sqlite_path())
    if directory is None:
        log.info(
            "no snapshots: set SUANLI_SNAPSHOT_DIR to take them (start-up replays the whole log)"
        )
        return None
    return SnapshotPolicy(
        directory,
        every_operations=settings.snapshot_every_operations,
        every_seconds=settings.snapshot_every_seconds,
        keep=settings.snapshot_keep,
    )


def build_context(settings: Settings) -> Context:
    """Open the store (locked, then migrated), replay the log, load idempotency records
    and register the operator's admin key. Raises :class:`StartupError`."""
    start = None
    if settings.start:
        try:
            start = parse_iso(settings.start)
        except ValueError as exc:
            raise StartupError(
                f"--start {settings.start!r} is not an ISO 8601 time: give one such as "
                "2026-11-22T00:00:00Z"
            ) from exc
    if settings.admin_key is not None and len(settings.admin_key) < OPERATOR_KEY_MIN:
        raise StartupError(
            f"SUANLI_ADMIN_KEY must be at least {OPERATOR_KEY_MIN} characters: generate one "
            "with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    store = open_store(settings.database_url)
    try:
        existed = store.last_seq() > 0
        service = ExchangeService(
            store,
            clock=settings.clock,
            start_us=start,
            limits=CoreLimits(
                sites=settings.max_sites_per_account,
                pools=settings.max_pools_per_account,
                open_orders_per_instrument=settings.max_open_orders,
                open_orders=settings.max_open_orders_per_account,
            ),
            batch_max=settings.batch_max,
            projection_backlog_max=settings.projection_backlog_max,
            check_invariants=settings.check_invariants,
            snapshots=snapshot_policy(settings, store),
        )
    except LogDamaged as exc:
        store.close()
        raise StartupError(str(exc)) from exc
    except BaseException:
        store.close()
        raise
    if existed and start is not None and start != service.core.query.now():
        log.warning(
            "--start ignored: the exchange at %s already exists (its clock is at %s)",
            shown(settings.database_url),
            iso(service.core.query.now()),
        )
    ctx = Context(
        service,
        settings,
        limiter=RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst),
        mutations=RateLimiter(settings.change_rate_per_s, settings.change_rate_burst),
        idempotency=IdempotencyStore(settings.idempotency_ttl_s, settings.idempotency_keys_max),
    )
    try:
        import_legacy_keys(service)
        expired = store.delete_idempotency_before(ctx.idempotency.cutoff())
        if expired:
            log.info("%d expired idempotency records deleted", expired)
        ctx.idempotency.load(store.all_rows("idempotency_keys"), json.loads)
        if settings.admin_key:
            bootstrap_admin_key(ctx, settings.admin_key)
    except BaseException:
        store.close()
        raise
    return ctx


def _execute(service: ExchangeService, ops: list[Operation]) -> list[Submission]:
    return service.execute([Submission(op) for op in ops])


def import_legacy_keys(service: ExchangeService) -> None:
    """Record in the log the API keys of a database written before keys were logged
    (migration 0004 set them aside), then drop their table. A key already imported (a
    crash between the two steps) is refused as existing, and skipped."""
    rows = service.store.legacy_api_keys()
    if not rows:
        return
    ops: list[Operation] = [
        IssueApiKey(
            AccountId(int(r["account_id"])), r["prefix"], "sha256$" + r["key_hash"], "legacy"
        )
        for r in rows
    ]
    done = _execute(service, ops)
    refused = [i.error.code for i in done if i.error is not None]
    if any(code != "api_key_exists" for code in refused):
        raise StartupError(f"the API keys of the previous version could not be kept: {refused}")
    service.store.drop_legacy_api_keys()
    log.warning(
        "%d API keys of the previous version recorded (their digests are unsalted SHA-256: "
        "rotate them, see docs/operations.md)",
        len(rows),
    )


def bootstrap_admin_key(ctx: Context, key: str, name: str = "admin") -> int:
    """Make ``key`` (the operator's ``SUANLI_ADMIN_KEY``) an active admin key; returns its
    account id. A new key replaces the operator key registered before: that one is
    revoked, not kept valid beside it. A key of the previous version is stored again
    with a salted digest."""
    core = ctx.service.core
    if len(key) < OPERATOR_KEY_MIN:
        raise StartupError(f"SUANLI_ADMIN_KEY must be at least {OPERATOR_KEY_MIN} characters")
    record = ctx.auth.lookup(key)
    if record is not None:
        account = core.query.account(record.account_id)
        if account.role != "admin":
            raise StartupError(
                f"SUANLI_ADMIN_KEY is the key of trader account {account.id}, not an admin's: "
                "set an admin key"
            )
        if record.origin == "legacy":  # an unsalted digest: store it salted
            _replace(ctx, account.id, key, [record.id])
        return account.id
    keys = core.query.api_keys()
    previous = [r for r in keys.records.values() if r.origin == "operator" and r.active]
    if previous:
        account_id = previous[0].account_id
        _replace(ctx, account_id, key, [r.id for r in previous])
        log.warning(
            "SUANLI_ADMIN_KEY changed: the previous operator key (prefix %s) is revoked",
            ", ".join(r.prefix for r in previous),
        )
        return account_id
    op = CreateAccount(name, "admin", key_prefix(key), operator_digest(key), "operator")
    (item,) = _execute(ctx.service, [op])
    if item.error is not None:
        raise StartupError(f"the admin key could not be registered: {item.error.message}")
    account_id = int(item.outcome.id)
    (record,) = core.query.api_keys().of_account(account_id)
    ctx.auth.remember(key, record.id)
    return account_id


def _replace(ctx: Context, account_id: int, key: str, revoked: list[int]) -> None:
    """Issue ``key`` as the account's operator key and revoke ``revoked``, in one commit."""
    ops: list[Operation] = [
        IssueApiKey(AccountId(account_id), key_prefix(key), operator_digest(key), "operator")
    ]
    ops += [RevokeApiKey(key_id) for key_id in revoked]
    done = _execute(ctx.service, ops)
    for item in done:
        if item.error is not None:
            raise StartupError(f"the admin key could not be registered: {item.error.message}")
    ctx.auth.remember(key, done[0].outcome.id)
