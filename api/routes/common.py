"""Helpers shared by the route modules: submitting operations and idempotent replies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from api import idempotency
from api.db.store import Batch
from api.deps import Context, body_digest, throttle_change
from api.errors import ApiError, FastJSONResponse
from api.idempotency import Stored
from exchange.core import AccountRecord
from exchange.operations import Operation
from exchange.refusals import Refusal

__all__ = ["submit_change", "submit_idempotent"]


async def submit_change(
    ctx: Context, account: AccountRecord, op: Operation, render: Callable[[Any], Any] | None
) -> Any:
    """Submit a change other than order entry: rate limited per key (its own bucket)."""
    throttle_change(ctx, account)
    return await ctx.service.submit(op, render)


async def submit_idempotent(
    ctx: Context,
    account: AccountRecord,
    key: str | None,
    payload: Any,
    op: Operation,
    render: Callable[[Any], Any],
    status: int = 201,
    redact: tuple[str, ...] = (),
) -> FastJSONResponse:
    """Submit ``op`` (rate limited like every change); with an Idempotency-Key, a repeat
    with the same body gets the stored response and a repeat with another body gets 422
    ``idempotency_key_reused``. Fields named in ``redact`` (secrets shown once) are not
    kept in the stored response.

    A key is decided here, before its operation reaches the writer (api.idempotency):
    concurrent requests with one key never both reach a group commit, and a repeat is
    answered only once the original is durable."""
    throttle_change(ctx, account)
    if key is None:
        return FastJSONResponse(await ctx.service.submit(op, render), status)
    if not 1 <= len(key) <= 100:
        raise ApiError(Refusal.INVALID_IDEMPOTENCY_KEY, limit=100)
    digest = body_digest({"path": type(op).__name__, "body": payload})
    records = ctx.idempotency
    while True:
        stored = records.get(account.id, key)
        if stored is not None:
            if stored.digest != digest:
                raise _reused()
            await ctx.service.wait_committed(stored.seq)
            return FastJSONResponse(stored.body, stored.status)
        pending = records.pending(account.id, key)
        if pending is None:
            break
        if pending.digest != digest:
            raise _reused()
        await asyncio.shield(pending.done)  # the original is decided: look again
    if records.full(account.id):
        raise ApiError(
            Refusal.TOO_MANY_IDEMPOTENCY_KEYS,
            limit=records.per_account_max,
            ttl_s=records.ttl_s,
        )
    records.begin(account.id, key, digest)
    service = ctx.service

    def remember(outcome: Any, batch: Batch) -> None:
        # At apply time, in the group that commits the operation: the record is
        # durable with it, and repeats wait for that commit (wait_committed above).
        kept = {**outcome, **dict.fromkeys(redact)} if redact else outcome
        stored = Stored(digest, status, kept, idempotency.now_us(), service.seq)
        records.record(account.id, key, stored)
        batch.upsert(
            "idempotency_keys",
            (account.id, key),
            {
                "account_id": account.id,
                "key": key,
                "request_digest": digest,
                "status": status,
                "body": json.dumps(kept),
                "created_at": stored.created_at,
            },
        )

    try:
        item = service.enqueue(op, render, remember)
    except BaseException:  # not queued (the service is unavailable): nobody waits on it
        records.settle(account.id, key)
        raise
    assert item.future is not None
    # Decided, whatever becomes of this request's own task (a client that goes away).
    item.future.add_done_callback(lambda _: records.settle(account.id, key))
    return FastJSONResponse(await service.answer(item), status)


def _reused() -> ApiError:
    return ApiError(Refusal.IDEMPOTENCY_KEY_REUSED)
