"""The HTTP server: uvicorn with suanli's limits, a request deadline and redacted logs.

uvicorn bounds connections (``limit_concurrency``), idle keep-alive connections and the
size of a WebSocket message, but not how long a client may take to send a request, nor,
with httptools, how large its headers may grow: a client that sends a request a byte at
a time, or headers without end, holds a connection (and the memory of what it sent) for
as long as it likes. :class:`GuardedHttpToolsProtocol` adds both bounds, and refuses a
connection beyond the cap at once instead of holding it until its headers arrive.

Nothing a client sends as a credential reaches a log line: :class:`RedactSecrets` is a
filter on uvicorn's loggers and on every handler of the log configuration that rewrites
query parameters such as ``key=``, ``Authorization`` values, ``"key": "..."`` fields and
``sk_`` keys wherever they appear in a record (its message, its arguments, its
traceback).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
import traceback
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import unquote_plus

import msgspec
import uvicorn
from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from websockets.frames import Frame

from api.errors import error_body
from api.settings import Settings
from exchange.refusals import Refusal

__all__ = [
    "GuardedHttpToolsProtocol",
    "RedactSecrets",
    "guarded_protocol",
    "log_config",
    "redact",
    "serve",
    "server_config",
]

REDACTED = "REDACTED"  # the same after a second pass: records may pass two filters

#: ``name=value`` pairs (query strings, form bodies, scopes); the value is dropped when
#: the name, percent-decoded, names a credential.
_PARAM = re.compile(r"(?<![\w%.+-])([\w%.+-]+)=([^&\s\"'#<>;,)\]}]*)")
_SECRET_NAME = re.compile(r"key|token|secret|passw|auth", re.IGNORECASE)
#: The value of an Authorization header, as a header line or inside a repr of headers
#: (``(b'authorization', b'Bearer ...')``).
_AUTHORIZATION = re.compile(
    r"(authorization['\"]?\s*[:=,]?\s*(?:(?-i:b)?['\"])?)([^\r\n'\"]+)", re.IGNORECASE
)
_BEARER = re.compile(r"\b(bearer|basic)(\s+|%20|\+)[^\s\"',;)\]}]+", re.IGNORECASE)
#: A ``"key": "..."`` field of a JSON message (the WebSocket's ``auth``), also when a
#: frame's text is shown cut short.
_KEY_FIELD = re.compile(r"(['\"](?:api_?)?key['\"]\s*:\s*(?-i:b)?['\"])([^'\"]*)", re.IGNORECASE)
#: The keys suanli issues.
_ISSUED_KEY = re.compile(r"sk_[A-Za-z0-9_\-]{4,}")


def _param(match: re.Match[str]) -> str:
    name = match.group(1)
    if _SECRET_NAME.search(unquote_plus(name)):
        return f"{name}={REDACTED}"
    return match.group(0)


def redact(text: str) -> str:
    """``text`` without any credential a client could have put in it."""
    text = _PARAM.sub(_param, text)
    text = _AUTHORIZATION.sub(lambda m: m.group(1) + REDACTED, text)
    text = _BEARER.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
    text = _KEY_FIELD.sub(lambda m: m.group(1) + REDACTED, text)
    return _ISSUED_KEY.sub("sk_" + REDACTED, text)


def _shown(value: object) -> object:
    """A log argument as it may be shown: a WebSocket frame (logged at debug level)
    without its payload, since what a client sends (orders, an auth message's key) does
    not belong in a log; anything else as it is."""
    if isinstance(value, Frame):
        return f"{value.opcode.name} [{len(value.data)} bytes]"
    return value


def _redact_arg(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, int | float):
        return value  # formatted with %d and %f as well as %s
    return redact(str(value))


#: Loggers whose formatter needs a record's arguments as they were (uvicorn's access
#: formatter unpacks them): their arguments are redacted one by one. The request path
#: they carry holds its query string whole, so a ``key=`` in it is found.
_ARGUMENTS_KEPT = frozenset({"uvicorn.access"})


class RedactSecrets(logging.Filter):
    """Rewrites a log record so that no credential survives in it (see :func:`redact`).

    A record's message is formatted here and redacted as a whole (a ``key=%s`` template
    and its argument are only recognisable together), then kept without arguments; its
    traceback is formatted and redacted too."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, Mapping):
            args = {k: _shown(v) for k, v in args.items()}
        elif args:
            args = tuple(_shown(v) for v in args)
        if record.name in _ARGUMENTS_KEPT and isinstance(args, tuple):
            record.msg = redact(str(record.msg))
            record.args = tuple(_redact_arg(v) for v in args)
        else:
            record.args = args
            try:
                message = record.getMessage()
            except Exception:  # a malformed call: shown as its parts, still redacted
                message = f"{record.msg} {args!r}"
            record.msg = redact(message)
            record.args = None
            record.__dict__.pop("color_message", None)  # a template for the arguments
        if record.exc_info and not record.exc_text:
            # The formatter uses exc_text when set: the traceback is formatted here, once,
            # so that an exception's message cannot carry a key into the log.
            lines = traceback.format_exception(*record.exc_info)
            record.exc_text = redact("".join(lines).rstrip("\n"))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's log configuration with :class:`RedactSecrets` on its error and access
    loggers and on every handler, and the root logger (suanli's own loggers, the
    libraries') writing through the same filtered handler."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact_secrets": {"()": RedactSecrets}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact_secrets"]
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        config["loggers"].setdefault(name, {})["filters"] = ["redact_secrets"]
    config["root"] = {"handlers": ["default"], "level": "WARNING"}
    return config


_encode = msgspec.json.encode
LINGER_S = 1.0  # how long a refused connection is drained before it is closed


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with what it leaves unbounded:

    * a deadline (``request_timeout_s``) for each request's line, headers and body,
      counted from its first byte, or from the connection's opening for the first
      request: a request not complete by then is answered 408 ``request_timeout`` and
      its connection closed;
    * ``header_bytes_max`` on a request's line and headers, whether they end or not
      (answered 431 ``headers_too_large``);
    * a connection beyond the server's cap (uvicorn's ``limit_concurrency`` less one:
      see :func:`server_config`) is answered 503 ``server_busy`` and closed on arrival,
      rather than held until its headers are complete.

    Once a request is complete the app has it; idle keep-alive connections are uvicorn's
    (``timeout_keep_alive``); a WebSocket upgrade leaves this protocol (and its deadline)
    for uvicorn's WebSocket protocol, with its pings and ``ws_max_size``.
    """

    request_timeout_s: ClassVar[float] = 10.0
    header_bytes_max: ClassVar[int] = 32 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._in_head = True  # bytes arriving now belong to a request line or headers
        self._head_raw = 0  # bytes received since the last request's headers completed
        self._head_seen = 0  # bytes of the current request's line and complete headers
        self._refused = False

    # -- the connection
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        cap = self.limit_concurrency
        if cap is not None and len(self.connections) >= cap:
            # Closed at once, not drained: a flood beyond the cap must not hold sockets.
            self._refuse(
                Refusal.SERVER_BUSY,
                Refusal.SERVER_BUSY.message(reason="the server is at its connection limit"),
                linger=False,
            )
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            self._head_raw += len(data)
        super().data_received(data)
        if not self._refused and self._in_head and self._head_raw > self.header_bytes_max:
            self._refuse(Refusal.HEADERS_TOO_LARGE, Refusal.HEADERS_TOO_LARGE.message())

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        self._in_head = False  # what follows is the WebSocket protocol's
        super().handle_websocket_upgrade()

    # -- parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_seen = 0
        self._arm()

    def on_url(self, url: bytes) -> None:
        self._head_seen += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_seen += len(name) + len(value) + 4
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_raw = 0
        if self._refused:
            return
        if self._head_seen > self.header_bytes_max:
            self._refuse(Refusal.HEADERS_TOO_LARGE, Refusal.HEADERS_TOO_LARGE.message())
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_head = True
        if self._refused:
            return
        self._disarm()
        super().on_message_complete()

    # -- the deadline
    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.request_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        cycle = self.cycle
        if not self._in_head and cycle is not None and not cycle.response_complete:
            if cycle.response_started:  # the app answered without waiting for the body
                self.transport.close()
                return
            # The app waits for the rest of the body: it gets a disconnect, and whatever
            # it would answer is dropped.
            cycle.disconnected = True
            cycle.message_event.set()
        self._refuse(Refusal.REQUEST_TIMEOUT, Refusal.REQUEST_TIMEOUT.message())

    def _refuse(self, code: Refusal, message: str, linger: bool = True) -> None:
        """Answer ``code`` (with its status) in a JSON error body and close the
        connection."""
        status = code.status
        self._refused = True
        self._disarm()
        if self.transport.is_closing():
            return
        body = _encode(error_body(code, message))
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        if not linger:
            self.transport.close()
            return
        # Close gracefully: stop writing, read and drop what the client still sends for a
        # moment, then close. Closing at once with its data unread would reset the
        # connection, and the client could lose the answer.
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.flow.resume_reading()
        self.loop.call_later(LINGER_S, self.transport.close)


def guarded_protocol(settings: Settings) -> type[GuardedHttpToolsProtocol]:
    """The protocol class with ``settings``' deadline and header limit."""
    return type(
        "SuanliHttpProtocol",
        (GuardedHttpToolsProtocol,),
        {
            "request_timeout_s": settings.http_request_timeout_s,
            "header_bytes_max": settings.http_header_bytes_max,
        },
    )


def server_config(
    app: Any,
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    access_log: bool = False,
) -> uvicorn.Config:
    """uvicorn's configuration for ``app`` under ``settings``' limits."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=access_log,
        log_config=log_config(),
        http=guarded_protocol(settings),
        ws="websockets-sansio",
        ws_max_size=settings.ws_message_bytes_max,
        # uvicorn answers 503 from this many connections on; the protocol refuses the
        # connection one past SUANLI_HTTP_CONNECTIONS_MAX as soon as it arrives.
        limit_concurrency=settings.http_connections_max + 1,
        timeout_keep_alive=settings.http_keep_alive_s,
        backlog=settings.http_backlog,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


def serve(app: Any, settings: Settings, **options: Any) -> None:
    """Run ``app`` until interrupted (options: :func:`server_config`'s)."""
    uvicorn.Server(server_config(app, settings, **options)).run()
