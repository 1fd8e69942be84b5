"""Lean ASGI endpoints for the busiest routes (order entry).

A FastAPI route pays, on every call, for about ten layers of middleware (server errors,
telemetry, two body limits, exception handlers, an exit stack, the router), a Request
object, the dependency solver and response serialization: on this stack that is more
than placing and durably committing an order. The order-entry routes are therefore plain
ASGI endpoints that :class:`FrontDoor` serves before that stack, with the same body-size
limit, the same error bodies and stable codes, and a JSON 500 for anything unexpected.
They are still routes of the app (``app.routes``), documented in its OpenAPI schema
(:func:`document`); they read the headers and the body straight from the ASGI messages
and encode their responses with msgspec.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import msgspec
from starlette.routing import Route

from api.errors import ApiError, allowed_methods, error_body, error_response
from api.service import ServiceStopped
from exchange.core import Rejected
from exchange.refusals import Refusal

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "Endpoint",
    "FrontDoor",
    "Handler",
    "Incoming",
    "body_limit",
    "check_json",
    "declared_too_large",
    "document",
    "header",
    "is_json",
    "refuse_media_type",
    "respond",
    "route",
    "too_large",
]

log = logging.getLogger("suanli.api")

#: The request body limit when the app sets none (``SUANLI_MAX_BODY_BYTES`` does).
DEFAULT_MAX_BODY_BYTES = 1 << 20

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Incoming(msgspec.Struct, gc=False):
    """What a lean endpoint gets of a request: the app context, raw headers, whole body."""

    context: Any
    headers: Sequence[tuple[bytes, bytes]]
    body: bytes


#: A handler answers (status, content); content is anything msgspec encodes.
Handler = Callable[[Incoming], Awaitable[tuple[int, Any]]]

_encode = msgspec.json.Encoder().encode
_JSON = (b"content-type", b"application/json")


def header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The first value of header ``name`` (lower case), decoded as Latin-1 like Starlette."""
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


async def respond(
    send: Send, status: int, content: Any, extra: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    payload = _encode(content)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [_JSON, (b"content-length", str(len(payload)).encode()), *extra],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def too_large(max_bytes: int) -> dict[str, Any]:
    """The 413 body for a request body over ``max_bytes``."""
    return error_body(
        Refusal.REQUEST_TOO_LARGE,
        Refusal.REQUEST_TOO_LARGE.message(what="bodies", limit=max_bytes),
    )


def declared_too_large(headers: Sequence[tuple[bytes, bytes]], max_bytes: int) -> bool:
    """Whether the declared Content-Length is unreadable or over ``max_bytes``."""
    for name, value in headers:
        if name == b"content-length":
            return not value.isdigit() or int(value) > max_bytes
    return False


def is_json(headers: Sequence[tuple[bytes, bytes]]) -> bool:
    """Whether the request declares a JSON body: ``application/json`` or
    ``application/<anything>+json``, with parameters, but no charset other than UTF-8."""
    value = None
    for name, raw in headers:
        if name == b"content-type":
            value = raw
            break
    if value is None:
        return False
    if value == b"application/json":  # what nearly every client sends
        return True
    media, *parameters = value.decode("latin-1").lower().split(";")
    media = media.strip()
    kind, _, subtype = media.partition("/")
    if kind != "application" or not (subtype == "json" or subtype.endswith("+json")):
        return False
    for parameter in parameters:
        key, _, given = parameter.strip().partition("=")
        if key.strip() == "charset" and given.strip().strip('"') not in ("utf-8", "utf8"):
            return False
    return True


def refuse_media_type() -> dict[str, Any]:
    """The 422 body for a request body that is not declared JSON."""
    return error_body(Refusal.UNSUPPORTED_MEDIA_TYPE, Refusal.UNSUPPORTED_MEDIA_TYPE.message())


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ApiError(Refusal.DUPLICATE_KEY, key=repr(key[:64]))
            seen.add(key)
    return result


def _no_constant(name: str) -> Any:
    raise ApiError(Refusal.INVALID_REQUEST, reason=f"{name} is not JSON")


def check_json(body: bytes) -> Any:
    """``body`` parsed as JSON, refusing what a lenient parser would let through: a key
    twice in one object (where the last would silently win) is ``duplicate_key``, nesting
    deeper than the parser's stack ``invalid_request``, and text that is not UTF-8
    ``invalid_encoding`` (400). Malformed JSON (Python's ``NaN`` and ``Infinity``
    included) is ``invalid_request``."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(Refusal.INVALID_ENCODING) from exc
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except RecursionError as exc:
        raise ApiError(Refusal.INVALID_REQUEST, reason="the body is nested too deeply") from exc
    except ValueError as exc:  # malformed, or an integer past Python's digit limit
        raise ApiError(Refusal.INVALID_REQUEST, f"the body is not valid JSON: {exc}"[:300]) from exc


def body_limit(scope: Scope) -> int:
    """The app's request body limit (``SuanliApp.max_body_bytes``)."""
    return int(getattr(scope["app"], "max_body_bytes", DEFAULT_MAX_BODY_BYTES))


class Endpoint:
    """An ASGI app around a :data:`Handler`, with the app's error mapping and its body
    limit (streamed bodies are counted: 413 ``request_too_large``); a body must be
    declared JSON (422 ``unsupported_media_type``)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        max_bytes = body_limit(scope)
        chunks = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > max_bytes:
                await respond(send, Refusal.REQUEST_TOO_LARGE.status, too_large(max_bytes))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and not is_json(scope["headers"]):
            await respond(send, Refusal.UNSUPPORTED_MEDIA_TYPE.status, refuse_media_type())
            return
        incoming = Incoming(scope["app"].state.context, scope["headers"], body)
        extra: list[tuple[bytes, bytes]] = []
        try:
            status, content = await self.handler(incoming)
        except (ApiError, Rejected, ServiceStopped) as exc:
            status, content, headers = error_response(exc)
            for name, value in (headers or {}).items():
                extra.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        except Exception:
            # What the server-error middleware does for the other routes, in JSON.
            log.exception("unexpected error on %s %s", scope["method"], scope["path"])
            status = Refusal.INTERNAL_ERROR.status
            content = error_body(Refusal.INTERNAL_ERROR, Refusal.INTERNAL_ERROR.message())
        await respond(send, status, content, extra)


class FrontDoor:
    """Serve the lean routes before the app's middleware stack; pass everything else on.

    What the skipped layers would have done is done here: an oversized body is refused
    with 413 (declared length here, streamed in :class:`Endpoint`), a body not declared
    JSON with 422 (:class:`Endpoint`), and an unexpected exception is logged and answered
    with a JSON 500 (:class:`Endpoint`).
    """

    def __init__(self, app: Any, routes: Sequence[Route]) -> None:
        self.app = app
        self.routes: dict[tuple[str, str], Endpoint] = {}
        for r in routes:
            assert isinstance(r.endpoint, Endpoint)
            for method in r.methods or ():
                self.routes[(method, r.path)] = r.endpoint
        self.paths = {path for _, path in self.routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = (
            self.routes.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        )
        if endpoint is None:
            if scope["type"] == "http" and scope["path"] in self.paths:
                # Another method on an order-entry path: 405 unless another route serves
                # it (GET /v1/orders does), rather than let a templated route take the
                # path as an id (/v1/orders/{order_id} would read "batch" as one).
                allowed = allowed_methods(scope["app"], scope["path"])
                if scope["method"] not in allowed:
                    message = error_body(
                        Refusal.METHOD_NOT_ALLOWED,
                        Refusal.METHOD_NOT_ALLOWED.message(detail="Method Not Allowed"),
                    )
                    await respond(
                        send,
                        Refusal.METHOD_NOT_ALLOWED.status,
                        message,
                        [(b"allow", ", ".join(allowed).encode())],
                    )
                    return
            await self.app(scope, receive, send)
            return
        max_bytes = body_limit(scope)
        if declared_too_large(scope["headers"], max_bytes):
            await respond(send, Refusal.REQUEST_TOO_LARGE.status, too_large(max_bytes))
            return
        await endpoint(scope, receive, send)


def route(path: str, method: str, handler: Handler, openapi: dict[str, Any]) -> Route:
    """A Starlette route for a lean endpoint; ``openapi`` is its operation object, put
    into the app's schema by :func:`document`."""
    r = Route(path, Endpoint(handler), methods=[method], name=handler.__name__)
    r.openapi = (method.lower(), openapi)  # type: ignore[attr-defined]
    return r


def document(schema: dict[str, Any], routes: Sequence[Any]) -> None:
    """Add the operation objects of lean routes to an OpenAPI schema."""
    paths = schema.setdefault("paths", {})
    for r in routes:
        described = getattr(r, "openapi", None)
        if described is not None:
            method, operation = described
            paths.setdefault(r.path, {})[method] = operation
