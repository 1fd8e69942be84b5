"""Health and the exchange clock."""

from __future__ import annotations

from typing import Literal

from api.responses.common import ClockMode, ResponseModel

__all__ = [
    "ClockOut",
    "HealthOut",
]


class HealthOut(ResponseModel):
    status: Literal["ok", "stopped"]
    operations: int
    projected_operations: int
    clock: ClockMode
    now: str
    database: str


class ClockOut(ResponseModel):
    now: str
    mode: ClockMode
