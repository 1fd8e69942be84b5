"""The app's HTTP routes, enumerated from ``app.routes`` and checked against its OpenAPI
schema, so that a route added later is covered (or makes a test fail until it is
classified) without anyone editing a hand-written list."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

#: Framework routes, not part of the API.
FRAMEWORK = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}

#: Routes anyone may call without a key (API.md, "who: anyone").
PUBLIC = {
    ("GET", "/v1/health"),
    ("GET", "/v1/clock"),
    ("GET", "/v1/hardware"),
    ("GET", "/v1/gpu-classes"),
    ("GET", "/v1/tiers"),
    ("GET", "/v1/instruments"),
    ("GET", "/v1/instruments/{symbol}"),
    ("GET", "/v1/instruments/{symbol}/book"),
    ("GET", "/v1/instruments/{symbol}/trades"),
    ("GET", "/v1/instruments/{symbol}/candles"),
    ("GET", "/v1/prices"),
    ("GET", "/v1/tiers/{code}/forward-curve"),
    ("GET", "/v1/quote"),
    ("GET", "/v1/metering/convert"),
}

#: Path parameters naming a public market object rather than something an account owns.
PUBLIC_PARAMS = {"symbol", "code"}
#: Path parameters naming an object that belongs to an account.
OWNED_PARAMS = {"order_id", "site_id", "contract_id"}
#: Path parameters of admin routes only.
ADMIN_PARAMS = {"account_id", "code", "key_id", "symbol"}


@dataclass(frozen=True)
class Route:
    method: str
    path: str

    @property
    def params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)

    @property
    def is_admin(self) -> bool:
        return self.path.startswith("/v1/admin/")

    @property
    def is_public(self) -> bool:
        return (self.method, self.path) in PUBLIC

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def leaf_routes(routes: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(full path, route object) of every route, included routers walked into."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:  # FastAPI >= 0.13x keeps included routers as nodes
            inner = getattr(getattr(route, "include_context", None), "prefix", "") or ""
            yield from leaf_routes(included.routes, prefix + inner)
            continue
        path = getattr(route, "path", None)
        if path is not None:
            yield prefix + path, route


def _walk(routes: Iterable[Any]) -> Iterator[tuple[str, set[str]]]:
    for path, route in leaf_routes(routes):
        yield path, set(getattr(route, "methods", None) or ())


def http_routes(app: FastAPI) -> list[Route]:
    """Every (method, path) of the API (under /v1/), from ``app.routes``; HEAD left out.
    Fails if the enumeration and the OpenAPI schema disagree."""
    found = {
        Route(m, path)
        for path, methods in _walk(app.routes)
        if path.startswith("/v1/")
        for m in methods
        if m != "HEAD"
    }
    schema = app.openapi()
    declared = {
        Route(m.upper(), p)
        for p, ops in schema["paths"].items()
        if p.startswith("/v1/")
        for m in ops
    }
    assert found == declared, (found ^ declared, "app.routes and OpenAPI disagree")
    assert len(found) > 30
    return sorted(found, key=lambda r: (r.path, r.method))


def websocket_paths(app: FastAPI) -> list[str]:
    return [p for p, methods in _walk(app.routes) if not methods and p not in FRAMEWORK]
