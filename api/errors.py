"""Stable error codes and their HTTP statuses: ``{"error": {"code", "message"}}``."""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.service import ServiceStopped
from exchange.core import Rejected

__all__ = ["ApiError", "FastJSONResponse", "install_error_handlers", "status_for"]


class FastJSONResponse(JSONResponse):
    """JSON rendered by msgspec in C: the responses are plain dicts, lists and strings."""

    def render(self, content: Any) -> bytes:
        return msgspec.json.encode(content)


_STATUS = {
    "unauthorized": 401,
    "forbidden": 403,
    "rate_limited": 429,
    "too_many_open_orders": 429,
    "request_too_large": 413,
    "clock_not_simulated": 409,
    "idempotency_key_reused": 422,
    "service_unavailable": 503,
}


def status_for(code: str) -> int:
    if code in _STATUS:
        return _STATUS[code]
    if code.endswith("_not_found"):
        return 404
    if code.endswith("_exists"):
        return 409
    return 422


class ApiError(Exception):
    def __init__(
        self,
        code: str,
        message: str = "",
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or code)
        self.code = code
        self.message = message or code.replace("_", " ")
        self.status = status or status_for(code)
        self.headers = headers


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> FastJSONResponse:
        return FastJSONResponse(error_body(exc.code, exc.message), exc.status, headers=exc.headers)

    @app.exception_handler(Rejected)
    async def _rejected(_: Request, exc: Rejected) -> FastJSONResponse:
        return FastJSONResponse(error_body(exc.code, exc.message), status_for(exc.code))

    @app.exception_handler(ServiceStopped)
    async def _stopped(_: Request, exc: ServiceStopped) -> FastJSONResponse:
        return FastJSONResponse(
            error_body("service_unavailable", "the exchange stopped after a failed commit"), 503
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> FastJSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where}: {first.get('msg', 'invalid')}" if where else "invalid request"
        return FastJSONResponse(error_body("invalid_request", message[:300]), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> FastJSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return FastJSONResponse(error_body(code, str(exc.detail)), exc.status_code)
