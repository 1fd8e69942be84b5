"""Request dependencies: the app context, authentication, roles, rate limits, pagination,
decimal parsing and idempotency keys."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request

from api.db.store import Batch, hash_key
from api.errors import ApiError
from api.rules import DecimalRule, Refused, text_refusal
from api.schemas import MAX_ID, Cursor, Digits
from api.service import ExchangeService
from api.settings import Settings
from exchange.core import AccountRecord
from exchange.units import MAX_PRICE, MAX_QUANTITY, PRICE_DECIMALS, QUANTITY_DECIMALS

__all__ = [
    "AdminAccount",
    "Context",
    "CurrentAccount",
    "Page",
    "RateLimiter",
    "generate_key",
    "get_context",
    "paginate",
    "units",
]


def generate_key() -> str:
    """A new API key: 32 random bytes, URL-safe, with a recognisable prefix."""
    return "sk_" + secrets.token_urlsafe(32)


class RateLimiter:
    """A token bucket per key: ``rate`` requests per second, bursts of ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, now: float | None = None) -> float:
        """0 when allowed; otherwise the seconds to wait before a token is free."""
        if self.rate <= 0:
            return 0.0
        t = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (float(self.burst), t))
        tokens = min(float(self.burst), tokens + (t - last) * self.rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, t)
            return 0.0
        self._buckets[key] = (tokens, t)
        return (1 - tokens) / self.rate


@dataclass
class Context:
    """Everything a request handler needs, built once at start."""

    service: ExchangeService
    settings: Settings
    # key prefix (public, 12 characters) -> [(SHA-256 digest of the key, account id)]
    keys: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(0, 1))
    idempotency: dict[tuple[int, str], tuple[str, int, Any]] = field(default_factory=dict)

    def register_key(self, batch: Batch, account_id: int, key: str, now: int) -> None:
        """Remember a new key (digest only) and persist it in the same commit as ``batch``."""
        digest = hash_key(key)
        batch.insert(
            "api_keys",
            {"account_id": account_id, "key_hash": digest, "prefix": key[:12], "created_at": now},
        )
        self.remember_key(key[:12], digest, account_id)

    def remember_key(self, prefix: str, digest: str, account_id: int) -> None:
        self.keys.setdefault(prefix, []).append((digest, account_id))

    def lookup(self, key: str) -> int | None:
        """The account of ``key``: found by its public prefix, then the SHA-256 digests
        compared in constant time."""
        digest = hash_key(key)
        found = None
        for stored, account_id in self.keys.get(key[:12], ()):
            if hmac.compare_digest(stored, digest):
                found = account_id
        return found


async def get_context(request: Request) -> Context:
    # Dependencies are ``async``: FastAPI runs plain ``def`` dependencies in a thread pool,
    # a thread hop per request that costs more than the work they do.
    ctx: Context = request.app.state.context
    return ctx


ContextDep = Annotated[Context, Depends(get_context)]


def authenticate(ctx: Context, authorization: str | None) -> AccountRecord:
    if not authorization or not authorization.startswith("Bearer "):
        raise ApiError("unauthorized", "send Authorization: Bearer <api key>")
    # The header arrives as Latin-1: bytes 0x80-0x9F are C1 controls, refused as in text.
    refusal = text_refusal(authorization)
    if refusal is not None and refusal.code == "invalid_characters":
        raise refusal.api("Authorization")
    key = authorization[7:].strip()
    if not key or len(key) > 200:
        raise ApiError("unauthorized", "invalid API key")
    account_id = ctx.lookup(key)
    if account_id is None:
        raise ApiError("unauthorized", "invalid API key")
    record = ctx.service.core.accounts.get(account_id)
    if record is None:
        raise ApiError("unauthorized", "invalid API key")
    return record


def request_account(request: Request) -> tuple[Context, AccountRecord]:
    """Context and caller for the hottest routes, without FastAPI's dependency solver
    (which costs more per request than the order-entry work itself)."""
    ctx: Context = request.app.state.context
    return ctx, authenticate(ctx, request.headers.get("authorization"))


#: The Authorization header: documented as the schema's bearer security scheme instead.
BearerHeader = Annotated[str | None, Header(include_in_schema=False)]


async def current_account(ctx: ContextDep, authorization: BearerHeader = None) -> AccountRecord:
    return authenticate(ctx, authorization)


async def admin_account(ctx: ContextDep, authorization: BearerHeader = None) -> AccountRecord:
    record = authenticate(ctx, authorization)
    if record.role != "admin":
        raise ApiError("forbidden", "an admin key is required")
    return record


async def optional_account(
    ctx: ContextDep, authorization: BearerHeader = None
) -> AccountRecord | None:
    return authenticate(ctx, authorization) if authorization else None


CurrentAccount = Annotated[AccountRecord, Depends(current_account)]
AdminAccount = Annotated[AccountRecord, Depends(admin_account)]


def throttle(ctx: Context, account: AccountRecord) -> None:
    """Order entry is rate limited per key; cancels never call this."""
    wait = ctx.limiter.take(str(account.id))
    if wait > 0:
        raise ApiError(
            "rate_limited",
            "order entry rate limit exceeded; cancels are still accepted",
            headers={"Retry-After": str(max(1, int(wait + 0.999)))},
        )


def units(
    text: str | None,
    decimals: int,
    name: str,
    *,
    positive: bool = True,
    maximum: int | None = None,
) -> int | None:
    """A request decimal -> integer minor units, or a 422 with a stable code
    (:class:`api.rules.DecimalRule`). ``maximum`` is in minor units; prices and
    quantities are bounded by MAX_PRICE and MAX_QUANTITY unless told otherwise."""
    if text is None:
        return None
    if maximum is None:
        maximum = {PRICE_DECIMALS: MAX_PRICE, QUANTITY_DECIMALS: MAX_QUANTITY}.get(decimals)
    try:
        return _rule(decimals, positive, maximum).units(text, name)
    except Refused as refusal:
        raise refusal.api(name) from None


@functools.lru_cache(maxsize=64)
def _rule(decimals: int, positive: bool, maximum: int | None) -> DecimalRule:
    whole = None if maximum is None else -(-maximum // 10**decimals)
    return DecimalRule(decimals, positive=positive, maximum=whole)


@dataclass
class Page:
    limit: int
    cursor: int | None


async def page_params(
    ctx: ContextDep,
    limit: Annotated[int, Query(ge=1, le=10_000), Digits()] = 100,
    cursor: Annotated[Cursor | None, Query()] = None,
) -> Page:
    # Cursors are ids: ASCII digits ("²".isdigit() is true too) within a BIGINT column
    # (the Cursor type checks this; checked again here, where the integer is made).
    if cursor is not None and not (
        cursor.isascii() and cursor.isdigit() and int(cursor) <= MAX_CURSOR
    ):
        raise ApiError("invalid_cursor", "cursor is the next_cursor of a previous page")
    return Page(min(limit, ctx.settings.page_limit_max), int(cursor) if cursor else None)


#: The largest cursor: ids are stored in signed 64-bit columns (api.schemas.MAX_ID).
MAX_CURSOR = MAX_ID


PageDep = Annotated[Page, Depends(page_params)]


def paginate(
    items: Sequence[Any], page: Page, key: Callable[[Any], int], render: Callable[[Any], Any]
) -> dict[str, Any]:
    """``items`` sorted by ``key`` ascending; the cursor is the last key of a page."""
    if page.cursor is not None:
        items = [i for i in items if key(i) > page.cursor]
    chunk = items[: page.limit]
    more = len(items) > page.limit
    return {
        "data": [render(i) for i in chunk],
        "next_cursor": str(key(chunk[-1])) if more and chunk else None,
    }


def body_digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


__all__ += [
    "ContextDep",
    "PageDep",
    "body_digest",
    "optional_account",
    "request_account",
    "throttle",
]
