"""The FastAPI application: wires settings, the durable service, routes and the WebSocket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api.deps import Context
from api.endpoint import (
    DEFAULT_MAX_BODY_BYTES,
    FrontDoor,
    check_json,
    declared_too_large,
    document,
    is_json,
    refuse_media_type,
    respond,
    too_large,
)
from api.errors import ApiError, FastJSONResponse, error_body, install_error_handlers
from api.routes import accounts, catalog, market, operation, orders, sellers, web
from api.service import tune_gc
from api.settings import Settings
from api.startup import build_context
from api.ws import Hub
from api.ws import router as ws_router
from exchange.refusals import Refusal

__all__ = [
    "TELEMETRY_OFF",
    "BodySizeLimit",
    "SuanliApp",
    "create_app",
]

#: FastAPI's native OpenTelemetry support, switched off (suanli exports no traces).
TELEMETRY_OFF: Any = {"tracing": False, "metrics": False, "logs": False}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` with 413, declared or streamed; and, for
    the methods that take a body, bodies that are not declared JSON (422
    ``unsupported_media_type``) or that a lenient parser would misread: a key twice in
    one object, nesting past the parser's stack, text that is not UTF-8
    (:func:`api.endpoint.check_json`). The routes parse the body again: these are the
    low-volume routes (order entry is served before this, by FrontDoor)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if declared_too_large(scope.get("headers", ()), self.max_bytes):
            await respond(send, Refusal.REQUEST_TOO_LARGE.status, too_large(self.max_bytes))
            return
        # Read the body here, up to the limit, and hand it on whole: a limit raised from
        # inside the app's receive() would surface as a parse error, not a 413.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            body = message.get("body", b"")
            seen += len(body)
            if seen > self.max_bytes:
                await respond(send, Refusal.REQUEST_TOO_LARGE.status, too_large(self.max_bytes))
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and scope["method"] in _BODY_METHODS:
            if not is_json(scope["headers"]):
                await respond(send, Refusal.UNSUPPORTED_MEDIA_TYPE.status, refuse_media_type())
                return
            try:
                check_json(body)
            except ApiError as exc:
                await respond(send, exc.status, error_body(exc.code, exc.message))
                return
        whole = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, _replay([whole], receive), send)


#: The methods whose requests carry a body the routes read.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    """A receive() that yields ``messages`` first, then defers to ``then``."""
    queue = list(messages)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


class SuanliApp(FastAPI):
    """The FastAPI app with the order-entry routes served before its middleware stack
    (:class:`api.endpoint.FrontDoor`)."""

    max_body_bytes = DEFAULT_MAX_BODY_BYTES

    def build_middleware_stack(self) -> Any:
        return FrontDoor(super().build_middleware_stack(), orders.ENTRY_ROUTES)


#: How a request names its account: the key shown once when the account was made.
BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "Authorization: Bearer <api key>. Admin routes need an admin's key.",
}


def _document(app: FastAPI) -> None:
    """Document the lean order-entry routes (api.endpoint), put the pydantic twins of
    their msgspec-decoded bodies and rendered responses into the OpenAPI components, and
    the bearer key the routes' ``security`` names."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        document(schema, orders.ENTRY_ROUTES)
        components = schema.setdefault("components", {})
        models = components.setdefault("schemas", {})
        for model in orders.BODY_MODELS:
            body = model.model_json_schema(ref_template="#/components/schemas/{model}")
            models.update(body.pop("$defs", {}))
            models[model.__name__] = body
        components["securitySchemes"] = {"bearer": BEARER}
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings | None = None, context: Context | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = context or build_context(settings)
        if settings.tune_gc:
            tune_gc()
        app.state.context = ctx
        app.state.hub = Hub(ctx)
        await ctx.service.start()
        try:
            yield
        finally:
            await ctx.service.stop()

    app = SuanliApp(
        title="suanli",
        version="1",
        summary="An exchange for compute power: PF·h of accelerator capacity by delivery window.",
        lifespan=lifespan,
        default_response_class=FastJSONResponse,
        # No OpenTelemetry here: without this, FastAPI asks the global providers whether
        # telemetry is configured on every request.
        telemetry=TELEMETRY_OFF,
    )
    install_error_handlers(app)
    _document(app)
    # Order entry first: routes are matched in order, and it is the busiest path.
    app.router.routes[:0] = orders.ENTRY_ROUTES
    for module in (orders, market, operation, accounts, catalog, sellers, web):
        app.include_router(module.router)
    app.include_router(ws_router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.max_body_bytes = settings.max_body_bytes
    return app
