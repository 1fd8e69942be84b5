"""What every response model shares: unknown fields refused, the page envelope of the
list endpoints, the error body, and the enumerations several bodies use."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from api.schemas import (
    ContractState,
    GreenGrade,
    InstrumentState,
    OrderKind,
    OrderStatus,
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
    "BODY",
    "REFUSALS",
    "SECURITY",
    "ClockMode",
    "ContractState",
    "ErrorDetail",
    "ErrorOut",
    "GreenGrade",
    "InstrumentState",
    "Liquidity",
    "OrderKind",
    "OrderStatus",
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
    "answers",
]

Liquidity = Literal["maker", "taker"]
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


#: What each refusal status means; its body is always an ErrorOut with a stable code.
REFUSALS: dict[int, str] = {
    400: "the body is not UTF-8 (invalid_encoding)",
    401: "no key, or not a key of this exchange (unauthorized)",
    403: "an admin key is required (forbidden)",
    404: "no such object, or another account's (a code ending in _not_found)",
    409: "it exists already (a code ending in _exists), or the clock is real (clock_not_simulated)",
    413: "the body is over SUANLI_MAX_BODY_BYTES (request_too_large)",
    422: "refused: the code says why (invalid_request, invalid_characters, invalid_decimal, "
    "duplicate_key, unsupported_media_type, a rule of the exchange: docs/api.md)",
    429: "order entry over its rate (rate_limited, with Retry-After) or too many open "
    "orders (too_many_open_orders)",
    503: "the exchange stopped after a failed commit (service_unavailable)",
}

#: The refusals of a request with a JSON body: not UTF-8, too large, refused.
BODY = (400, 413, 422)

#: The bearer key an operation needs: a trader's or admin's (``key``, ``admin``) or,
#: optionally, one (``optional``), in the schema's ``bearer`` security scheme.
KeyNeed = Literal["key", "admin", "optional"]

SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "key": [{"bearer": []}],
    "admin": [{"bearer": []}],
    "optional": [{}, {"bearer": []}],
}


def answers(*statuses: int, key: KeyNeed | None = None) -> dict[str, Any]:
    """Keywords for a route decorator: the refusals it can answer (``responses``, each an
    ErrorOut) and, with ``key``, the bearer key it needs (401, and 403 for ``admin``)."""
    every = set(statuses)
    if key is not None:
        every.add(401)
    if key == "admin":
        every.add(403)
    documented: dict[str, Any] = {
        "responses": {
            status: {"model": ErrorOut, "description": REFUSALS[status]} for status in sorted(every)
        }
    }
    if key is not None:
        documented["openapi_extra"] = {"security": SECURITY[key]}
    return documented
