"""What every response model shares: unknown fields refused, the page envelope of the
list endpoints, the error body, and the enumerations several bodies use."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from api.schemas import (
    GreenGrade,
    OrderKind,
    Precision,
    Quality,
    Region,
    Role,
    Side,
    Stp,
    TierStatus,
    TimeInForce,
)

__all__ = [
    "ERROR_RESPONSES",
    "ClockMode",
    "ErrorDetail",
    "ErrorOut",
    "GreenGrade",
    "InstrumentState",
    "Liquidity",
    "OrderKind",
    "Page",
    "Precision",
    "Quality",
    "Region",
    "ResponseModel",
    "Role",
    "Side",
    "Stp",
    "TierStatus",
    "TimeInForce",
]

Liquidity = Literal["maker", "taker"]
InstrumentState = Literal["listed", "open", "halted", "closed", "delivering", "settled"]
ClockMode = Literal["real", "simulated"]

T = TypeVar("T")


class ResponseModel(BaseModel):
    """A response body: a field the model does not declare is an error, not dropped."""

    model_config = ConfigDict(extra="forbid")


class Page(ResponseModel, Generic[T]):
    """One page of a list endpoint: pass ``next_cursor`` as ``cursor`` for the next page;
    it is null on the last page."""

    data: list[T]
    next_cursor: str | None


# ---------------------------------------------------------------------- errors
class ErrorDetail(ResponseModel):
    code: str
    message: str


class ErrorOut(ResponseModel):
    """Every refusal: a stable snake_case code and a human-readable message."""

    error: ErrorDetail


#: The refusals of the routes that can refuse, documented once (a router's ``responses``).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorOut, "description": "refused; the body names a stable error code"}
}
