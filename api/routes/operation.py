"""Health and the exchange clock."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import AdminAccount, ContextDep
from api.errors import ApiError
from api.responses import BODY, ClockOut, HealthOut, answers
from api.routes.common import submit_change
from api.schemas import MAX_ADVANCE_SECONDS, ClockIn
from api.views import iso, parse_time
from exchange.ids import Timestamp
from exchange.operations import AdvanceClock
from exchange.refusals import Refusal

router = APIRouter(prefix="/v1", tags=["operation"])


@router.get("/health", response_model=HealthOut)
async def health(ctx: ContextDep) -> dict[str, Any]:
    service = ctx.service
    error = service.projection_error
    status = "ok" if error is None else "degraded"
    if service.stopped is not None:
        status = "stopped"
    return {
        "status": status,
        "operations": service.seq,
        "projected_operations": service.projected_seq,
        # The kind of error only: its text (SQL, values) is for the server's log.
        "projection_error": None if error is None else type(error).__name__,
        "clock": service.clock,
        "now": iso(service.core.query.now()),
        "database": service.store.dialect,
    }


@router.get("/clock", response_model=ClockOut)
async def clock(ctx: ContextDep) -> dict[str, Any]:
    return {"now": iso(ctx.service.core.query.now()), "mode": ctx.service.clock}


@router.post("/admin/clock", response_model=ClockOut, **answers(*BODY, 409, 429, 503, key="admin"))
async def advance_clock(body: ClockIn, ctx: ContextDep, admin: AdminAccount) -> dict[str, Any]:
    """Simulated clock only: run every listing, gate closure, delivery and settlement due."""
    service = ctx.service
    if service.clock != "simulated":
        raise ApiError(Refusal.CLOCK_NOT_SIMULATED)
    if body.to is not None:
        try:
            target = parse_time(body.to)
        except ValueError as exc:
            raise ApiError(Refusal.INVALID_TIME, field="to", reason=exc) from exc
        # Bounded like advance_seconds: every listing and settlement due runs in this call.
        if target - service.core.query.now() > MAX_ADVANCE_SECONDS * 1_000_000:
            raise ApiError(
                Refusal.INVALID_TIME,
                field="to",
                reason="at most about ten years ahead of the clock",
            )
    else:
        target = service.core.query.now() + (body.advance_seconds or 0) * 1_000_000
    await submit_change(ctx, admin, AdvanceClock(Timestamp(target)), None)
    return {"now": iso(service.core.query.now()), "mode": service.clock}
