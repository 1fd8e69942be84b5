"""Strict input at the edge: text without control characters, one decimal grammar, strict
numbers, one of each key, bodies declared JSON, 405 with Allow. Every refusal is a 4xx
with a stable code and changes nothing (the durable operation count does not move);
where storage is involved, on SQLite and PostgreSQL, and the exchange restarts on the
same database afterwards."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import String

from api.db import tables
from api.schemas import GpuClassIn, HardwareIn, OrderIn, PoolIn, SiteIn, TierIn
from tests.api.conftest import ADMIN, GPU_CLASS, H100, SITE, TIER, TIER_BODY, Api, open_api
from tests.api.test_input import Setup, assert_error

#: One of each kind of forbidden character: C0 (NUL, a tab, the unit separator), DEL, C1
#: (NEL, a CSI), the line separator, a lone surrogate (sent as a JSON escape).
FORBIDDEN = ["\x00", "\t", "\x1f", "\x7f", "\x85", "\x9b", "\u2028", "\ud800"]


@pytest.fixture
def crash_safe(make_api: Callable[..., AbstractContextManager[Api]]) -> Iterator[Api]:
    """The app with server errors returned as 500 responses rather than raised."""
    with make_api(raise_server_exceptions=False) as api:
        yield api


def send(api: Api, method: str, url: str, body: Any, headers: dict[str, str]) -> Any:
    """A JSON body written with escapes (a lone surrogate cannot be UTF-8)."""
    h = {**headers, "Content-Type": "application/json"}
    return api.request(method, url, content=json.dumps(body).encode(), headers=h)


def refused(response: Any, code: str, field: str | None = None) -> None:
    assert_error(response, 422, code)
    if field is not None:
        assert field in response.json()["error"]["message"], response.json()


# ---------------------------------------------------------------------- text
def _fill(value: Any, bad: str) -> Any:
    """``value`` with ``§`` replaced by ``bad`` in every string it holds."""
    if isinstance(value, str):
        return value.replace("§", bad)
    if isinstance(value, list):
        return [_fill(v, bad) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, bad) for k, v in value.items()}
    return value


def _text_probes(s: Setup) -> list[tuple[str, str, dict[str, str], dict[str, Any], str]]:
    """(method, url, headers, body, field) with ``§`` where the bad character goes."""
    order = {"instrument": s.sym, "side": "buy", "price": "19", "quantity": "1"}
    hardware = {"vendor": "Acme", "model": "X1", "peak_tflops": {"fp16": "100"}, "source": "s"}
    a = s.a.headers
    return [
        ("POST", "/v1/orders", a, {**order, "client_order_id": "a§b"}, "client_order_id"),
        ("POST", "/v1/orders", a, {**order, "instrument": s.sym + "§"}, "instrument"),
        (
            "POST",
            "/v1/orders/batch",
            a,
            {"orders": [{**order, "client_order_id": "§"}]},
            "orders.0",
        ),
        ("POST", "/v1/sites", a, {**SITE, "name": "s§"}, "name"),
        ("POST", "/v1/sites", a, {**SITE, "location": "Shanghai §"}, "location"),
        ("POST", "/v1/admin/accounts", ADMIN, {"name": "lab§"}, "name"),
        ("POST", "/v1/admin/hardware", ADMIN, {**hardware, "vendor": "Ac§me"}, "vendor"),
        ("POST", "/v1/admin/hardware", ADMIN, {**hardware, "model": "§X1"}, "model"),
        ("POST", "/v1/admin/hardware", ADMIN, {**hardware, "source": "s§"}, "source"),
        ("POST", "/v1/admin/gpu-classes", ADMIN, {**GPU_CLASS, "code": "Z", "name": "a§"}, "name"),
        (
            "POST",
            "/v1/admin/gpu-classes",
            ADMIN,
            {**GPU_CLASS, "code": "Z", "vendors": ["§"]},
            "vendors",
        ),
        ("POST", "/v1/admin/tiers", ADMIN, {**TIER_BODY, "code": "T§"}, "code"),
        ("POST", f"/v1/sites/{s.site}/pools", a, {"hardware_id": "§", "count": 1}, "hardware_id"),
        ("PATCH", f"/v1/orders/{s.order['id']}", a, {"price": "19§"}, "price"),
        ("POST", "/v1/admin/clock", ADMIN, {"to": "2026-11-22T05:00:00Z§"}, "to"),
    ]


def test_forbidden_characters_in_bodies_are_refused(api_db: Api) -> None:
    """Before the text rule a NUL in a client_order_id, a site's name or location was
    accepted (201), and PostgreSQL then refused to store it: the projection failed and the
    exchange could not restart on that database."""
    api = api_db
    s = Setup(api)
    before = api.operations()
    failures = []
    for method, url, headers, body, field in _text_probes(s):
        for bad in FORBIDDEN:
            r = send(api, method, url, _fill(body, bad), headers)
            try:
                refused(r, "invalid_characters", field)
            except AssertionError as exc:
                failures.append(
                    (method, url, repr(bad), r.status_code, r.text[:160], str(exc)[:60])
                )
    assert not failures, failures
    assert api.operations() == before


def test_forbidden_characters_in_query_path_and_headers_are_refused(api_db: Api) -> None:
    api = api_db
    s = Setup(api)
    a = s.a.headers
    before = api.operations()
    for bad in FORBIDDEN[:-1]:  # a lone surrogate cannot be put in a URL or a header
        for method, url, params, field in [
            ("GET", "/v1/orders", {"instrument": f"X{bad}"}, "instrument"),
            ("GET", "/v1/fills", {"instrument": f"X{bad}"}, "instrument"),
            ("DELETE", "/v1/orders", {"instrument": f"X{bad}"}, "instrument"),
            ("GET", "/v1/contracts", {"instrument": f"X{bad}"}, "instrument"),
            ("GET", "/v1/instruments", {"tier": f"X{bad}"}, "tier"),
            ("GET", "/v1/orders", {"cursor": f"1{bad}"}, "cursor"),
            (
                "GET",
                "/v1/quote",
                {"instrument": s.sym, "side": "buy", "quantity": f"1{bad}"},
                "quantity",
            ),
            ("GET", "/v1/metering/convert", {"hardware_id": f"{H100}{bad}"}, "hardware_id"),
            ("GET", f"/v1/instruments/{s.sym}{quote(bad)}", {}, "symbol"),
            ("GET", f"/v1/tiers/{TIER}{quote(bad)}/forward-curve", {}, "code"),
            ("GET", f"/v1/orders/1{quote(bad)}", {}, "order_id"),
        ]:
            r = api.request(method, url, params=params, headers=a)
            refused(r, "invalid_characters", field)
    # headers arrive as Latin-1: a tab, DEL and C1 controls are the ones HTTP lets through
    for bad in ("\t", "\x7f", "\x85", "\x9b"):
        key = {"Idempotency-Key": f"k{bad}1".encode("latin-1")}
        url = f"/v1/admin/accounts/{s.a.id}/deposits"
        r = api.post(url, json={"amount": "1"}, headers={**ADMIN, **key})
        refused(r, "invalid_characters", "Idempotency-Key")
        r = api.get(
            "/v1/account", headers={"Authorization": f"Bearer sk_x{bad}y".encode("latin-1")}
        )
        refused(r, "invalid_characters", "Authorization")
    assert api.operations() == before


def test_a_nul_order_and_site_are_refused_and_the_exchange_restarts(db_url: str) -> None:
    """The finding itself, on SQLite and PostgreSQL: a NUL order and a NUL site answer 422,
    and the exchange restarts on the same database and goes on trading."""
    with open_api(db_url) as api:
        s = Setup(api)
        before = api.operations()
        body = {"instrument": s.sym, "side": "buy", "price": "19", "quantity": "1"}
        r = send(api, "POST", "/v1/orders", {**body, "client_order_id": "a\x00b"}, s.a.headers)
        refused(r, "invalid_characters", "client_order_id")
        for site in ({**SITE, "name": "s\x00"}, {**SITE, "location": "Shang\x00hai"}):
            refused(send(api, "POST", "/v1/sites", site, s.a.headers), "invalid_characters")
        assert api.operations() == before
    with open_api(db_url) as again:
        health = again.ok(again.get("/v1/health"))
        assert health["status"] == "ok" and health["operations"] == before
        again.order(s.a, s.sym, "buy", "19", "1", client_order_id="after-restart")


def test_text_is_stored_as_sent_or_refused(api: Api) -> None:
    """Nothing is stripped: whitespace at either end is refused (it used to be stripped
    from names and decimals); inside, and any other script, is kept."""
    s = Setup(api)
    before = api.operations()
    for name in (" lab", "lab ", "\u3000lab", "lab\u00a0"):
        refused(
            api.post("/v1/admin/accounts", json={"name": name}, headers=ADMIN), "invalid_request"
        )
    order = {"instrument": s.sym, "side": "buy", "price": "19", "quantity": "1"}
    for cid in (" id", "id "):
        r = api.post("/v1/orders", json={**order, "client_order_id": cid}, headers=s.a.headers)
        refused(r, "invalid_request", "client_order_id")
    assert api.operations() == before
    kept = "實驗室 مختبر 🧪\u200d"
    created = api.ok(api.post("/v1/admin/accounts", json={"name": kept}, headers=ADMIN), 201)
    assert created["name"] == kept


# ---------------------------------------------------------------------- decimals, numbers
LAX_DECIMALS = [
    " 20",
    "20 ",
    "+20",
    "20\u00a0",
    "\u200b20",
    "２０",
    "٢٠",
    "1e1",
    "2E1",
    "1_0",
    "20.",
]


def test_lax_decimals_are_refused_everywhere(api: Api) -> None:
    """One grammar (ASCII digits, one point, no sign where negatives are not allowed) for
    every decimal: order entry, amend, deposits, tiers, sites, hardware, classes, quotes."""
    s = Setup(api)
    a = s.a.headers
    order = {"instrument": s.sym, "side": "buy", "price": "19", "quantity": "1"}
    hardware = {"vendor": "Acme", "model": "X1", "peak_tflops": {"fp16": "100"}, "source": "s"}
    before = api.operations()
    failures = []
    for text in LAX_DECIMALS:
        probes = [
            ("POST", "/v1/orders", a, {**order, "price": text}),
            ("POST", "/v1/orders", a, {**order, "quantity": text}),
            ("POST", "/v1/orders/batch", a, {"orders": [{**order, "price": text}]}),
            ("PATCH", f"/v1/orders/{s.order['id']}", a, {"price": text}),
            ("POST", f"/v1/admin/accounts/{s.a.id}/deposits", ADMIN, {"amount": text}),
            ("POST", "/v1/admin/tiers", ADMIN, {**TIER_BODY, "code": "T2", "tick_size": text}),
            ("PATCH", f"/v1/admin/tiers/{TIER}", ADMIN, {"reference_price": text}),
            ("POST", "/v1/sites", a, {**SITE, "pue": text}),
            ("POST", "/v1/sites", a, {**SITE, "green_share": text}),
            ("POST", "/v1/admin/hardware", ADMIN, {**hardware, "peak_tflops": {"fp16": text}}),
            ("POST", "/v1/admin/hardware", ADMIN, {**hardware, "tdp_w": text}),
            (
                "POST",
                "/v1/admin/gpu-classes",
                ADMIN,
                {**GPU_CLASS, "code": "Z", "min_dense_tflops": text},
            ),
        ]
        for method, url, headers, body in probes:
            r = api.request(method, url, json=body, headers=headers)
            if r.status_code != 422 or r.json()["error"]["code"] != "invalid_decimal":
                failures.append((method, url, text, r.status_code, r.text[:120]))
        quote = {"instrument": s.sym, "side": "buy", "quantity": text}
        r = api.get("/v1/quote", params=quote)
        if r.status_code != 422 or r.json()["error"]["code"] != "invalid_decimal":
            failures.append(("GET", "/v1/quote", text, r.status_code, r.text[:120]))
    assert not failures, failures
    assert api.operations() == before


def test_a_sign_is_refused_where_no_negative_is_allowed(api: Api) -> None:
    s = Setup(api)
    before = api.operations()
    order = {"instrument": s.sym, "side": "buy", "price": "19", "quantity": "1"}
    for field, code in (("price", "invalid_price"), ("quantity", "invalid_quantity")):
        r = api.post("/v1/orders", json={**order, field: "-0"}, headers=s.a.headers)
        refused(r, code)
    refused(
        api.post("/v1/sites", json={**SITE, "green_share": "-0"}, headers=s.a.headers),
        "invalid_green_share",
    )
    assert api.operations() == before


#: (url, body, the field named): strings, booleans and fractions where integers go.
NOT_NUMBERS: list[tuple[str, dict[str, Any], str]] = [
    ("/v1/contracts/1/deliveries", {"pool_id": 1, "device_seconds": "3600"}, "device_seconds"),
    ("/v1/contracts/1/deliveries", {"pool_id": True, "device_seconds": 3600}, "pool_id"),
    ("/v1/contracts/1/deliveries", {"pool_id": 1, "device_seconds": 3600.5}, "device_seconds"),
    ("/v1/admin/clock", {"advance_seconds": True}, "advance_seconds"),
    ("/v1/admin/clock", {"advance_seconds": "60"}, "advance_seconds"),
    ("/v1/admin/clock", {"advance_seconds": 60, "to": None}, ""),
    ("/v1/sites/1/pools", {"hardware_id": H100, "count": True}, "count"),
    ("/v1/sites/1/pools", {"hardware_id": H100, "count": "2"}, "count"),
    ("/v1/admin/tiers", {**TIER_BODY, "code": "T2", "maker_fee_bps": "5"}, "maker_fee_bps"),
    ("/v1/admin/tiers", {**TIER_BODY, "code": "T2", "window_hours": True}, "window_hours"),
    ("/v1/admin/tiers", {**TIER_BODY, "code": "T2", "window_hours": 5}, "window_hours"),
    (
        "/v1/admin/hardware",
        {
            "vendor": "A",
            "model": "B",
            "peak_tflops": {"fp16": "1"},
            "source": "s",
            "confirmed": "true",
        },
        "confirmed",
    ),
    (
        "/v1/orders",
        {"instrument": "X", "side": "buy", "quantity": "1", "post_only": 1},
        "post_only",
    ),
]


def test_numbers_and_booleans_are_strict(api: Api) -> None:
    s = Setup(api)
    before = api.operations()
    for url, body, field in NOT_NUMBERS:
        headers = ADMIN if url.startswith("/v1/admin/") else s.a.headers
        refused(api.post(url, json=body, headers=headers), "invalid_request", field)
    assert api.operations() == before


def test_an_integral_json_number_is_an_integer(api: Api) -> None:
    """JSON Schema counts 2.0 as an integer, so the server does too (3600.5 is refused)."""
    s = Setup(api)
    pool = api.ok(
        api.post(
            f"/v1/sites/{s.site}/pools",
            json={"hardware_id": H100, "count": 2.0},
            headers=s.a.headers,
        ),
        201,
    )
    assert pool["count"] == 2


def test_ids_in_paths_and_queries_are_ascii_digits(api: Api) -> None:
    s = Setup(api)
    oid = s.order["id"]
    assert api.ok(api.get(f"/v1/orders/{oid}", headers=s.a.headers))["id"] == oid
    for text in (f"+{oid}", f"{oid}.0", f"0x{oid}", f"{oid}_0", "١"):
        refused(api.get(f"/v1/orders/{text}", headers=s.a.headers), "invalid_request", "order_id")
    for limit in ("+5", "5.0", "1_0"):
        refused(
            api.get("/v1/orders", params={"limit": limit}, headers=s.a.headers),
            "invalid_request",
            "limit",
        )
    refused(
        api.get("/v1/orders", params={"cursor": ""}, headers=s.a.headers),
        "invalid_cursor",
        "cursor",
    )


# ---------------------------------------------------------------------- duplicates, nesting
def test_a_key_given_twice_is_refused(api: Api) -> None:
    """Before, the last of two equal keys silently won, on FastAPI routes and on order
    entry alike (msgspec)."""
    s = Setup(api)
    a = {**s.a.headers, "Content-Type": "application/json"}
    admin = {**ADMIN, "Content-Type": "application/json"}
    sym = s.sym
    order = f'"instrument": "{sym}", "price": "19", "quantity": "1"'
    before = api.operations()
    probes = [
        (
            "POST",
            f"/v1/admin/accounts/{s.a.id}/deposits",
            admin,
            '{"amount": "1", "amount": "1000000"}',
        ),
        (
            "POST",
            "/v1/sites",
            a,
            '{"name": "x", "region": "east", "pue": "1.2", "green_share": "0", "pue": "3"}',
        ),
        (
            "POST",
            "/v1/admin/tiers",
            admin,
            json.dumps({**TIER_BODY, "code": "T2"})[:-1] + ', "code": "T3"}',
        ),
        ("PATCH", f"/v1/orders/{s.order['id']}", a, '{"price": "19.5", "price": "18"}'),
        ("POST", "/v1/orders", a, "{" + order + ', "side": "buy", "side": "sell"}'),
        ("POST", "/v1/orders", a, "{" + order + ', "side": "buy", "\\u0073ide": "sell"}'),
        (
            "POST",
            "/v1/orders",
            a,
            "{" + order + ', "side": "buy", "type": "limit", "type": "market"}',
        ),
        (
            "POST",
            "/v1/orders/batch",
            a,
            '{"orders": [{' + order + ', "side": "buy", "side": "sell"}]}',
        ),
        (
            "POST",
            "/v1/orders/batch",
            a,
            '{"orders": [{'
            + order
            + ', "side": "buy"}, {'
            + order
            + ', "side": "sell", "price": "19", "price": "18"}]}',
        ),
        (
            "POST",
            "/v1/orders/batch",
            a,
            '{"orders": [{'
            + order
            + ', "side": "buy"}], "orders": [{'
            + order
            + ', "side": "sell"}]}',
        ),
        (
            "POST",
            "/v1/orders/batch",
            a,
            '{"orders": [{' + order + ', "side": "buy", "s\\u0069de": "sell"}]}',
        ),
    ]
    for method, url, headers, content in probes:
        r = api.request(method, url, content=content.encode(), headers=headers)
        refused(r, "duplicate_key")
    assert api.operations() == before
    # a value that is a field's name, or a default written out, is no repeat
    body = (
        "{"
        + order
        + ', "side": "buy", "client_order_id": "side", "type": "limit", "stp": "cancel_newest"}'
    )
    assert api.post("/v1/orders", content=body.encode(), headers=a).status_code == 201
    batch = (
        '{"orders": [{'
        + order
        + ', "side": "buy", "client_order_id": "orders", "post_only": false}]}'
    )
    r = api.ok(api.post("/v1/orders/batch", content=batch.encode(), headers=a))
    assert r["results"][0]["client_order_id"] == "orders"


def test_deeply_nested_bodies_get_a_4xx(crash_safe: Api) -> None:
    api = crash_safe
    s = Setup(api)
    a = {**s.a.headers, "Content-Type": "application/json"}
    admin = {**ADMIN, "Content-Type": "application/json"}
    before = api.operations()
    for url, headers, content in (
        (url, h, c.replace("DEEP", deep))
        for deep in ("[" * 100 + "]" * 100, "[" * 100_000 + "]" * 100_000)
        for url, h, c in [
            ("/v1/admin/accounts", admin, '{"name": DEEP}'),
            ("/v1/admin/accounts", admin, "DEEP"),
            ("/v1/sites", a, '{"x": DEEP}'),
            ("/v1/orders", a, '{"instrument": DEEP}'),
            ("/v1/orders", a, "DEEP"),
            ("/v1/orders/batch", a, '{"orders": [DEEP]}'),
            ("/v1/orders/batch", a, '{"orders": DEEP}'),
        ]
    ):
        r = api.post(url, content=content.encode(), headers=headers)
        assert_error(r, 422)
    assert api.operations() == before


# ---------------------------------------------------------------------- media types, methods
def test_a_body_must_be_declared_json(api: Api) -> None:
    s = Setup(api)
    order = json.dumps({"instrument": s.sym, "side": "buy", "price": "19", "quantity": "1"})
    before = api.operations()
    targets = [
        ("/v1/orders", s.a.headers, order),
        ("/v1/orders/batch", s.a.headers, '{"orders": [' + order + "]}"),
        (f"/v1/admin/accounts/{s.a.id}/deposits", ADMIN, '{"amount": "1"}'),
    ]
    for content_type in [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        "application/jsonp",
        "json",
    ]:
        for url, headers, content in targets:
            h = dict(headers)
            if content_type is not None:
                h["Content-Type"] = content_type
            refused(api.post(url, content=content.encode(), headers=h), "unsupported_media_type")
    assert api.operations() == before
    for content_type in [
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "application/vnd.api+json",
    ]:
        for url, headers, content in targets:
            h = {**headers, "Content-Type": content_type}
            r = api.post(url, content=content.encode(), headers=h)
            assert r.status_code in (200, 201), (content_type, url, r.text)


def test_405_names_every_method_of_its_path(api: Api) -> None:
    s = Setup(api)
    for method, url, allowed in [
        ("OPTIONS", "/v1/orders", "DELETE, GET, HEAD, POST"),
        ("PUT", "/v1/orders", "DELETE, GET, HEAD, POST"),
        ("TRACE", "/v1/orders/batch", "POST"),
        ("GET", "/v1/orders/batch", "POST"),  # not an order id: 405, not 422
        ("PATCH", "/v1/orders/batch", "POST"),
        ("POST", f"/v1/orders/{s.order['id']}", "DELETE, GET, HEAD, PATCH"),
        ("DELETE", "/v1/health", "GET, HEAD"),
    ]:
        r = api.request(method, url, headers=s.a.headers)
        assert r.status_code == 405, (method, url, r.status_code, r.text)
        assert r.headers["allow"] == allowed, (method, url, r.headers.get("allow"))
        assert r.json()["error"]["code"] == "method_not_allowed"


# ---------------------------------------------------------------------- lengths
#: A body field and the column that stores it.
STORED = [
    (SiteIn, "name", tables.SiteRow, "name"),
    (SiteIn, "location", tables.SiteRow, "location"),
    (SiteIn, "pue", tables.SiteRow, "pue"),
    (SiteIn, "green_share", tables.SiteRow, "green_share"),
    (SiteIn, "emission_factor", tables.SiteRow, "emission_factor"),
    (HardwareIn, "vendor", tables.HardwareRow, "vendor"),
    (HardwareIn, "model", tables.HardwareRow, "model"),
    (HardwareIn, "id", tables.HardwareRow, "id"),
    (GpuClassIn, "code", tables.GpuClassRow, "code"),
    (GpuClassIn, "name", tables.GpuClassRow, "name"),
    (TierIn, "code", tables.TierRow, "code"),
    (TierIn, "gpu_class", tables.TierRow, "gpu_class"),
    (PoolIn, "hardware_id", tables.PoolRow, "hardware_id"),
    (OrderIn, "client_order_id", tables.OrderRow, "client_order_id"),
    (OrderIn, "instrument", tables.OrderRow, "symbol"),
]


def _max_length(schema: dict[str, Any]) -> int:
    branches = schema.get("anyOf", [schema])
    return max(b["maxLength"] for b in branches if b.get("type") == "string")


@pytest.mark.parametrize(("model", "field", "table", "column"), STORED)
def test_no_text_the_edge_accepts_is_longer_than_its_column(
    model: Any, field: str, table: Any, column: str
) -> None:
    """PostgreSQL refuses a string longer than its column (HardwareRow.vendor holds 60
    characters while the body took 100): the edge bounds each by its column."""
    kind = table.__table__.c[column].type
    assert isinstance(kind, String) and kind.length is not None
    assert _max_length(model.model_json_schema()["properties"][field]) <= kind.length


def test_a_derived_hardware_id_must_fit_its_column(api: Api) -> None:
    before = api.operations()
    body = {"vendor": "V" * 60, "model": "M" * 100, "peak_tflops": {"fp16": "10"}, "source": "s"}
    refused(api.post("/v1/admin/hardware", json=body, headers=ADMIN), "invalid_model_id")
    assert api.operations() == before
