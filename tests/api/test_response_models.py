"""Every JSON route has a typed response: a pydantic model of api.responses, published in
/openapi.json as a component schema, that refuses undeclared fields. The routes are
enumerated from ``app.routes``, so a route added later without a model fails here.

The models are also checked against real answers: one scenario reaches every operation
with a 2xx answer, and each body must validate against its model and re-serialise to the
very same JSON (same keys, same values, same order), so a response model neither filters
nor rewrites what a view emits. (schemathesis checks the published schemas against
generated requests too: tests/api/test_schemathesis.py.)
"""

from __future__ import annotations

import json
import types
from collections.abc import Iterator
from typing import Any, Union, get_args, get_origin

from fastapi import FastAPI
from fastapi.datastructures import DefaultPlaceholder
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter

from api.app import create_app
from api.responses import BatchOut, OrderOut
from tests.api.conftest import ADMIN, GPU_CLASS, H100, TIER, TIER_BODY, Api
from tests.api.routes import http_routes, leaf_routes

#: The order-entry routes are served outside FastAPI's routing (api.endpoint); these are
#: the models their OpenAPI entries document.
ENTRY_MODELS: dict[tuple[str, str], Any] = {
    ("POST", "/v1/orders"): OrderOut,
    ("POST", "/v1/orders/batch"): BatchOut,
}


def _is_json(route: APIRoute) -> bool:
    kind = route.response_class
    if isinstance(kind, DefaultPlaceholder):
        kind = kind.value
    return issubclass(kind, JSONResponse) and route.status_code != 204


def json_routes(app: FastAPI) -> dict[tuple[str, str], APIRoute]:
    """(method, path) -> the APIRoute, for every route answering JSON."""
    found = {}
    for path, route in leaf_routes(app.routes):
        if isinstance(route, APIRoute) and _is_json(route):
            for method in route.methods - {"HEAD"}:
                found[(method, path)] = route
    return found


def _members(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def _objects(schema: Any) -> Iterator[dict[str, Any]]:
    """Every JSON-schema object with declared properties, nested ones included."""
    if isinstance(schema, dict):
        if "properties" in schema:
            yield schema
        for value in schema.values():
            yield from _objects(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _objects(value)


def test_every_json_route_has_a_strict_response_model() -> None:
    app = create_app()
    routes = json_routes(app)
    assert len(routes) >= 40
    for (method, path), route in sorted(routes.items()):
        where = f"{method} {path}"
        assert route.response_model is not None, f"{where}: no response_model"
        for member in _members(route.response_model):
            assert isinstance(member, type) and issubclass(member, BaseModel), (where, member)
            assert member.model_config.get("extra") == "forbid", (where, member)
        schema = TypeAdapter(route.response_model).json_schema(mode="serialization")
        for obj in _objects(schema):
            assert obj.get("additionalProperties") is False, (where, obj.get("title"))


def _refs(schema: dict[str, Any]) -> list[str]:
    branches = schema.get("anyOf", [schema])
    return [b.get("$ref", "") for b in branches]


def test_openapi_references_a_component_for_every_answer() -> None:
    app = create_app()
    schema = app.openapi()
    components = schema["components"]["schemas"]
    assert "HTTPValidationError" not in components  # validation errors answer ErrorOut
    operations = {(r.method, r.path) for r in http_routes(app)}
    assert set(json_routes(app)) | set(ENTRY_MODELS) == operations
    for method, path in sorted(operations):
        op = schema["paths"][path][method.lower()]
        success = {s: r for s, r in op["responses"].items() if s.startswith("2")}
        assert success, f"{method} {path}: no 2xx response"
        for status, response in op["responses"].items():
            body = response["content"]["application/json"]["schema"]
            refs = _refs(body)
            assert all(r.startswith("#/components/schemas/") for r in refs), (path, status, body)
            names = [r.rsplit("/", 1)[-1] for r in refs]
            for name in names:
                assert components[name].get("additionalProperties") is False, (path, name)
            if not status.startswith("2"):
                assert names == ["ErrorOut"], (method, path, status)


# ---------------------------------------------------------------------- real answers
class Recorder:
    """Calls routes, checks each 2xx body against its route's model, and notes which
    operations were reached."""

    def __init__(self, api: Api) -> None:
        self.api = api
        app: Any = api.client.app
        self.models: dict[tuple[str, str], Any] = {
            key: route.response_model for key, route in json_routes(app).items()
        }
        self.models.update(ENTRY_MODELS)
        self.reached: set[tuple[str, str]] = set()

    def __call__(self, method: str, template: str, url: str | None = None, **kw: Any) -> Any:
        response = self.api.request(method, url or template, **kw)
        assert 200 <= response.status_code < 300, (method, url, response.text)
        body = response.json()
        adapter: TypeAdapter[Any] = TypeAdapter(self.models[(method, template)])
        again = adapter.dump_python(adapter.validate_python(body), mode="json")
        assert json.dumps(again) == json.dumps(body), (method, template, body)
        self.reached.add((method, template))
        return body


def test_every_answer_matches_its_model_exactly(api: Api) -> None:
    call = Recorder(api)
    A = "/v1/admin"
    call("GET", "/v1/health")
    call("GET", "/v1/clock")
    gpu_class = {**GPU_CLASS, "vendors": ["NVIDIA"]}
    call("POST", f"{A}/gpu-classes", json=gpu_class, headers=ADMIN)
    call("GET", "/v1/gpu-classes")
    hardware = {
        "vendor": "Acme",
        "model": "X1",
        "peak_tflops": {"fp16": "800"},
        "memory_gb": "80",
        "tdp_w": "700",
        "source": "datasheet",
        "quality": "V",
    }
    call("POST", f"{A}/hardware", json=hardware, headers=ADMIN)
    call("GET", "/v1/hardware", params={"limit": 3})
    call("POST", f"{A}/tiers", json={**TIER_BODY, "regions": ["east"]}, headers=ADMIN)
    call("GET", "/v1/tiers")
    call(
        "PATCH",
        f"{A}/tiers/{{code}}",
        f"{A}/tiers/{TIER}",
        json={"maker_fee_bps": 4},
        headers=ADMIN,
    )
    symbols = [i["symbol"] for i in call("GET", "/v1/instruments")["data"]]
    sym = symbols[0]

    account = {"name": "alice"}
    key = {"Idempotency-Key": "alice-1", **ADMIN}
    alice = call("POST", f"{A}/accounts", json=account, headers=key)
    replay = call("POST", f"{A}/accounts", json=account, headers=key)
    assert replay["api_key"] is None and replay["id"] == alice["id"]
    bob = call("POST", f"{A}/accounts", json={"name": "bob"}, headers=ADMIN)
    for who in (alice, bob):
        call(
            "POST",
            f"{A}/accounts/{{account_id}}/deposits",
            f"{A}/accounts/{who['id']}/deposits",
            json={"amount": "1000"},
            headers=ADMIN,
        )
    call(
        "POST",
        f"{A}/accounts/{{account_id}}/withdrawals",
        f"{A}/accounts/{alice['id']}/withdrawals",
        json={"amount": "1"},
        headers=ADMIN,
    )
    A_H = {"Authorization": f"Bearer {alice['api_key']}"}
    B_H = {"Authorization": f"Bearer {bob['api_key']}"}
    spare = call(
        "POST",
        f"{A}/accounts/{{account_id}}/keys",
        f"{A}/accounts/{alice['id']}/keys",
        headers=ADMIN,
    )
    assert spare["api_key"].startswith("sk_") and spare["prefix"] == spare["api_key"][:8]
    call(
        "GET",
        f"{A}/accounts/{{account_id}}/keys",
        f"{A}/accounts/{alice['id']}/keys",
        headers=ADMIN,
    )
    revoked = call("DELETE", f"{A}/keys/{{key_id}}", f"{A}/keys/{spare['id']}", headers=ADMIN)
    assert revoked["revoked_at"] is not None

    site = call(
        "POST",
        "/v1/sites",
        json={
            "name": "sh",
            "region": "east",
            "pue": "1.2",
            "green_share": "0.5",
            "location": "Shanghai",
        },
        headers=B_H,
    )
    pool = call(
        "POST",
        "/v1/sites/{site_id}/pools",
        f"/v1/sites/{site['id']}/pools",
        json={"hardware_id": H100, "count": 4},
        headers=B_H,
    )
    call("GET", "/v1/sites", headers=B_H)
    call("GET", "/v1/sites/{site_id}", f"/v1/sites/{site['id']}", headers=B_H)
    call("GET", "/v1/pools", headers=B_H)
    call("GET", "/v1/capacity", params={"instrument": sym}, headers=B_H)

    order = {"instrument": sym, "side": "sell", "price": "20", "quantity": "2"}
    resting = call("POST", "/v1/orders", json=order, headers=B_H)
    market = {"instrument": sym, "side": "buy", "type": "market", "quantity": "0.5"}
    call("POST", "/v1/orders", json=market, headers=A_H)
    batch = [
        {
            "instrument": sym,
            "side": "buy",
            "price": "20",
            "quantity": "1",
            "client_order_id": "a-1",
        },
        {
            "instrument": symbols[1],
            "side": "buy",
            "price": "19",
            "quantity": "1",
            "time_in_force": "gtd",
            "expire_time": "2026-11-22T01:00:00Z",
        },
        {"instrument": "NO-SUCH", "side": "buy", "price": "19", "quantity": "1"},
    ]
    results = call("POST", "/v1/orders/batch", json={"orders": batch}, headers=A_H)["results"]
    assert "error" in results[2]
    gtd = results[1]["id"]
    call("GET", "/v1/orders", headers=A_H)
    call("GET", "/v1/orders/{order_id}", f"/v1/orders/{resting['id']}", headers=B_H)
    call(
        "PATCH", "/v1/orders/{order_id}", f"/v1/orders/{gtd}", json={"quantity": "0.5"}, headers=A_H
    )
    call("DELETE", "/v1/orders/{order_id}", f"/v1/orders/{gtd}", headers=A_H)
    call("POST", "/v1/orders", json={**order, "instrument": symbols[2]}, headers=B_H)
    call("DELETE", "/v1/orders", params={"instrument": symbols[2]}, headers=B_H)
    call("GET", "/v1/fills", headers=A_H)
    call("GET", "/v1/account", headers=A_H)
    call("GET", "/v1/account/ledger", params={"limit": 2}, headers=A_H)

    call("GET", "/v1/instruments/{symbol}", f"/v1/instruments/{sym}")
    call("GET", "/v1/instruments/{symbol}/book", f"/v1/instruments/{sym}/book")
    call("GET", "/v1/instruments/{symbol}/trades", f"/v1/instruments/{sym}/trades")
    call("GET", "/v1/instruments/{symbol}/candles", f"/v1/instruments/{sym}/candles")
    call("GET", "/v1/prices")
    call("GET", "/v1/tiers/{code}/forward-curve", f"/v1/tiers/{TIER}/forward-curve")
    call("GET", "/v1/quote", params={"instrument": sym, "side": "buy", "quantity": "1"})
    convert = "/v1/metering/convert"
    plain = call("GET", convert, params={"hardware_id": H100, "hours": "2"})
    assert "carbon_kg" not in plain
    carbon = {"pue": "1.2", "emission_factor": "0.5", "green_share": "0.3"}
    call("GET", convert, params={"hardware_id": H100, **carbon})
    with_site = call(
        "GET", convert, params={"hardware_id": H100, "site_id": site["id"]}, headers=B_H
    )
    assert "carbon_kg" in with_site
    call(
        "POST",
        f"{A}/instruments/{{symbol}}/halt",
        f"{A}/instruments/{symbols[3]}/halt",
        headers=ADMIN,
    )
    call(
        "POST",
        f"{A}/instruments/{{symbol}}/resume",
        f"{A}/instruments/{symbols[3]}/resume",
        headers=ADMIN,
    )

    # Delivery and settlement: a contract with its delivery report, then settled.
    call("POST", f"{A}/clock", json={"advance_seconds": 3 * 3600}, headers=ADMIN)
    contract = call("GET", "/v1/contracts", headers=B_H)["data"][0]
    call(
        "POST",
        "/v1/contracts/{contract_id}/deliveries",
        f"/v1/contracts/{contract['id']}/deliveries",
        json={"pool_id": pool["id"], "device_seconds": 3600},
        headers=B_H,
    )
    call("POST", f"{A}/clock", json={"to": "2026-11-23T00:00:00Z"}, headers=ADMIN)
    settled = call(
        "GET", "/v1/contracts/{contract_id}", f"/v1/contracts/{contract['id']}", headers=A_H
    )
    assert settled["settlement"] is not None

    every = {(r.method, r.path) for r in http_routes(api.client.app)}
    assert every - call.reached == set(), "operations this scenario does not reach"
