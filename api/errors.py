"""Stable error codes and their HTTP statuses: ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from api.service import ProjectionsUnavailable, ServiceStopped
from exchange.core import Rejected
from exchange.refusals import Refusal, refusal_of

__all__ = [
    "REFUSED",
    "ApiError",
    "ExchangeError",
    "FastJSONResponse",
    "allowed_methods",
    "error_body",
    "error_response",
    "install_error_handlers",
    "refusal_code",
    "status_for",
]


#: The pydantic error type of the edge's own refusals (api.schemas); its context holds the
#: stable code.
REFUSED = "suanli_refused"


def refusal_code(error: Any) -> Refusal:
    """The stable code of one of pydantic's errors: the edge's own, or invalid_request."""
    if error.get("type") == REFUSED:
        return refusal_of(str(error.get("ctx", {}).get("code", Refusal.INVALID_REQUEST)))
    return Refusal.INVALID_REQUEST


class FastJSONResponse(JSONResponse):
    """JSON rendered by msgspec in C: the responses are plain dicts, lists and strings."""

    def render(self, content: Any) -> bytes:
        return msgspec.json.encode(content)


def status_for(code: str) -> int:
    """The HTTP status of ``code``, from :class:`exchange.refusals.Refusal`; any other
    code is a bug (``KeyError``)."""
    return refusal_of(code).status


class ApiError(Exception):
    """A refusal of the shell. ``ApiError(Refusal.X, **fields)`` renders the refusal's
    template; ``ApiError(Refusal.X, message)`` says it in words of the case (a field's
    name before a rule's detail, a parser's own words)."""

    def __init__(
        self,
        code: Refusal,
        message: str = "",
        /,
        *,
        headers: dict[str, str] | None = None,
        **fields: object,
    ) -> None:
        if fields:
            if message:
                raise TypeError("fields render the template, not a message")
            message = code.message(**fields)
        elif not message:
            message = code.template if not code.fields else code.replace("_", " ")
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = code.status
        self.headers = headers


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


#: What the exchange's own exceptions answer: FastAPI's handlers and the lean
#: order-entry endpoints (api.endpoint) both use it.
ExchangeError = ApiError | Rejected | ServiceStopped


def error_response(exc: ExchangeError) -> tuple[int, dict[str, Any], dict[str, str] | None]:
    """(status, body, extra headers) for one of the exchange's exceptions."""
    if isinstance(exc, ApiError):
        return exc.status, error_body(exc.code, exc.message), exc.headers
    if isinstance(exc, Rejected):
        return status_for(exc.code), error_body(exc.code, exc.message), None
    if isinstance(exc, ProjectionsUnavailable):
        return (
            Refusal.PROJECTIONS_UNAVAILABLE.status,
            error_body(Refusal.PROJECTIONS_UNAVAILABLE, str(exc)[:300]),
            {"Retry-After": str(exc.retry_after_s)},
        )
    return (
        Refusal.SERVICE_UNAVAILABLE.status,
        error_body(Refusal.SERVICE_UNAVAILABLE, Refusal.SERVICE_UNAVAILABLE.message()),
        None,
    )


_UNION_TAG = re.compile(r"[a-z]+(?:-[a-z]+)+(?:\[.*\])?|[a-z-]+\[.*\]")

#: The first part of a pydantic error's location when it names where a value came from.
_LOCATIONS = {"body", "query", "path", "header"}


def install_error_handlers(app: FastAPI) -> None:
    async def _exchange_error(_: Request, exc: Exception) -> FastJSONResponse:
        assert isinstance(exc, ExchangeError)
        status, body, headers = error_response(exc)
        return FastJSONResponse(body, status, headers=headers)

    for kind in (ApiError, Rejected, ServiceStopped):
        app.add_exception_handler(kind, _exchange_error)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> FastJSONResponse:
        errors = exc.errors()
        # A forbidden character is named before anything else wrong with the request.
        first = next(
            (e for e in errors if refusal_code(e) is Refusal.INVALID_CHARACTERS),
            errors[0] if errors else {},
        )
        loc = tuple(first.get("loc", ()))
        if loc[:1] and loc[0] in _LOCATIONS:
            loc = loc[1:]
        # Not the tags pydantic adds for a union's members ("constrained-int",
        # "function-after[...]"): fields and headers are named as sent.
        where = ".".join(str(p) for p in loc if not _UNION_TAG.fullmatch(str(p)))
        message = f"{where}: {first.get('msg', 'invalid')}" if where else "invalid request"
        code = refusal_code(first)
        return FastJSONResponse(error_body(code, message[:300]), code.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> FastJSONResponse:
        code = {404: Refusal.NOT_FOUND, 405: Refusal.METHOD_NOT_ALLOWED}.get(
            exc.status_code, Refusal.HTTP_ERROR
        )
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            allowed = allowed_methods(request.app, request.url.path)
            if allowed:
                headers["Allow"] = ", ".join(allowed)
        return FastJSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers)


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the published schema gives ``path`` (HEAD with GET), for a 405's
    ``Allow``. Starlette names only the methods of the first route whose path matched,
    while a path may be served by several (``/v1/orders``: order entry, the list and
    cancel-all); a literal path wins over a template that also matches it."""
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    operations = paths.get(path)
    if operations is None:
        operations = next(
            (ops for template, ops in paths.items() if compile_path(template)[0].match(path)),
            {},
        )
    methods = {method.upper() for method in operations}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)
