"""Health and the exchange clock."""

from __future__ import annotations

from typing import Literal

from api.responses.common import ClockMode, ResponseModel

__all__ = [
    "ClockOut",
    "HealthOut",
]


class HealthOut(ResponseModel):
    """``status`` is ``stopped`` after a failed commit (restart to recover) and
    ``degraded`` while the projection tables cannot be written (``projection_error``
    says why; trading goes on and they catch up by themselves)."""

    status: Literal["ok", "degraded", "stopped"]
    operations: int
    projected_operations: int
    projection_error: str | None
    clock: ClockMode
    now: str
    database: str


class ClockOut(ResponseModel):
    now: str
    mode: ClockMode
