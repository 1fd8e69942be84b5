"""Helpers shared by the route modules: submitting operations and idempotent replies."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from api.db.store import Batch
from api.deps import Context, body_digest
from api.errors import ApiError, FastJSONResponse
from exchange.core import AccountRecord
from exchange.operations import Operation

__all__ = ["submit_idempotent"]


async def submit_idempotent(
    ctx: Context,
    account: AccountRecord,
    key: str | None,
    payload: Any,
    op: Operation,
    render: Callable[[Any], Any],
    status: int = 201,
    extra: Callable[[Any, Batch], None] | None = None,
    redact: tuple[str, ...] = (),
) -> FastJSONResponse:
    """Submit ``op``; with an Idempotency-Key, a repeat with the same body gets the stored
    response and a repeat with another body gets 422 ``idempotency_key_reused``. Fields named
    in ``redact`` (secrets shown once) are not kept in the stored response."""
    if key is not None:
        if not 1 <= len(key) <= 100:
            raise ApiError("invalid_idempotency_key", "Idempotency-Key is 1 to 100 characters")
        digest = body_digest({"path": type(op).__name__, "body": payload})
        stored = ctx.idempotency.get((account.id, key))
        if stored is not None:
            if stored[0] != digest:
                raise ApiError(
                    "idempotency_key_reused", "this Idempotency-Key was used with another request"
                )
            return FastJSONResponse(stored[2], stored[1])

        def remember(outcome: Any, batch: Batch) -> None:
            if extra is not None:
                extra(outcome, batch)
            kept = {**outcome, **dict.fromkeys(redact)} if redact else outcome
            ctx.idempotency[(account.id, key)] = (digest, status, kept)
            batch.insert(
                "idempotency_keys",
                {
                    "account_id": account.id,
                    "key": key,
                    "request_digest": digest,
                    "status": status,
                    "body": json.dumps(kept),
                    "created_at": ctx.service.core.now,
                },
            )

        outcome = await ctx.service.submit(op, render, remember)
    else:
        outcome = await ctx.service.submit(op, render, extra)
    return FastJSONResponse(outcome, status)
