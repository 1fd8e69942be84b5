"""Request dependencies: the app context, authentication, roles, rate limits, pagination,
decimal parsing and idempotency keys."""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request

from api.errors import ApiError
from api.idempotency import IdempotencyStore
from api.keys import KeyIndex
from api.rules import DecimalRule, Refused, text_refusal
from api.schemas import MAX_ID, Cursor, Digits
from api.service import ExchangeService
from api.settings import Settings
from exchange.core import AccountRecord
from exchange.refusals import Refusal
from exchange.units import MAX_PRICE, MAX_QUANTITY, PRICE_DECIMALS, QUANTITY_DECIMALS

__all__ = [
    "AdminAccount",
    "Context",
    "CurrentAccount",
    "Page",
    "RateLimiter",
    "get_context",
    "paginate",
    "units",
]


class RateLimiter:
    """A token bucket per key: ``rate`` units of work per second, bursts of ``burst``.

    Work is counted, not requests: a batch of 100 orders takes 100 tokens. Work larger
    than a burst passes once the bucket is full and leaves it in debt, which later work
    waits out. Buckets of keys idle long enough to be full again are dropped, so the
    table stays as small as the set of recently active keys."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._swept = 0.0

    def take(self, key: str, cost: int = 1, now: float | None = None) -> float:
        """0 when allowed (``cost`` tokens taken); otherwise the seconds to wait until
        ``cost`` tokens are free (none taken)."""
        if self.rate <= 0:
            return 0.0
        t = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (float(self.burst), t))
        tokens = min(float(self.burst), tokens + (t - last) * self.rate)
        needed = min(cost, self.burst)
        if tokens >= needed:
            self._buckets[key] = (tokens - cost, t)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, t)
            wait = (needed - tokens) / self.rate
        if t - self._swept > self.burst / self.rate:
            self._sweep(t)
        return wait

    def _sweep(self, now: float) -> None:
        """Drop the buckets that have refilled since they were last used."""
        rate, burst = self.rate, self.burst
        self._buckets = {
            k: (tokens, last)
            for k, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * rate < burst
        }
        self._swept = now


@dataclass
class Context:
    """Everything a request handler needs, built once at start."""

    service: ExchangeService
    settings: Settings
    #: Authentication against the keys the core holds.
    auth: KeyIndex = field(init=False)
    #: Order entry (orders per second per key) and every other change (requests).
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(0, 1))
    mutations: RateLimiter = field(default_factory=lambda: RateLimiter(0, 1))
    idempotency: IdempotencyStore = field(default_factory=IdempotencyStore)

    def __post_init__(self) -> None:
        service = self.service
        self.auth = KeyIndex(service.core.query.api_keys)

    def lookup(self, key: str) -> int | None:
        """The account of ``key``, if it is an active key."""
        record = self.auth.lookup(key)
        return None if record is None else record.account_id


async def get_context(request: Request) -> Context:
    # Dependencies are ``async``: FastAPI runs plain ``def`` dependencies in a thread pool,
    # a thread hop per request that costs more than the work they do.
    ctx: Context = request.app.state.context
    return ctx


ContextDep = Annotated[Context, Depends(get_context)]


def authenticate(ctx: Context, authorization: str | None) -> AccountRecord:
    if not authorization or not authorization.startswith("Bearer "):
        raise ApiError(Refusal.UNAUTHORIZED, reason="send Authorization: Bearer <api key>")
    # The header arrives as Latin-1: bytes 0x80-0x9F are C1 controls, refused as in text.
    refusal = text_refusal(authorization)
    if refusal is not None and refusal.code == "invalid_characters":
        raise refusal.api("Authorization")
    key = authorization[7:].strip()
    if not key or len(key) > 200:
        raise ApiError(Refusal.UNAUTHORIZED, reason="invalid API key")
    account_id = ctx.lookup(key)
    if account_id is None:
        raise ApiError(Refusal.UNAUTHORIZED, reason="invalid API key")
    record = ctx.service.core.query.find_account(account_id)
    if record is None:
        raise ApiError(Refusal.UNAUTHORIZED, reason="invalid API key")
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
        raise ApiError(Refusal.FORBIDDEN, reason="an admin key is required")
    return record


async def optional_account(
    ctx: ContextDep, authorization: BearerHeader = None
) -> AccountRecord | None:
    return authenticate(ctx, authorization) if authorization else None


CurrentAccount = Annotated[AccountRecord, Depends(current_account)]
AdminAccount = Annotated[AccountRecord, Depends(admin_account)]


def throttle(ctx: Context, account: AccountRecord, orders: int = 1) -> None:
    """Order entry is rate limited per key, counting orders (a batch takes one token per
    order); cancels never call this."""
    _take(
        ctx.limiter, account, orders, "order entry rate limit exceeded; cancels are still accepted"
    )


def throttle_change(ctx: Context, account: AccountRecord) -> None:
    """Every other change (sites, pools, deliveries, accounts, money, catalog, tiers) is
    rate limited per key too, in a bucket of its own."""
    _take(ctx.mutations, account, 1, "rate limit for changes exceeded")


def _take(limiter: RateLimiter, account: AccountRecord, cost: int, message: str) -> None:
    wait = limiter.take(str(account.id), cost)
    if wait > 0:
        raise ApiError(
            Refusal.RATE_LIMITED,
            headers={"Retry-After": str(max(1, int(wait + 0.999)))},
            reason=message,
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
        raise ApiError(Refusal.INVALID_CURSOR)
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
    "throttle_change",
]
