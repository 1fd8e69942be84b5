"""Hostile input: server-set fields in request bodies (mass assignment) and malformed
values. Every probe gets a 4xx with an ``{"error": {"code", "message"}}`` body, never a
5xx, and changes nothing (the durable operation count does not move)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from fractions import Fraction
from typing import Any

import pytest

from api.views import format_fraction
from tests.api.conftest import ADMIN, H100, TIER, TIER_BODY, Api, Trader
from tests.api.routes import Route, http_routes
from tests.api.test_access import BODIES

#: Fields a client must never set; each is refused where the body model does not define it.
SERVER_FIELDS: dict[str, Any] = {
    "owner": 2,
    "account_id": 2,
    "status": "filled",
    "filled_quantity": "1",
    "fee": "0",
    "balance": "1000000",
    "available": "1000000",
    "id": 999,
    "api_key": "sk_chosen_by_the_client_000000000000",
}

HUGE_INT = 2**70
MANY_DIGITS = "1" * 40


def assert_error(response: Any, status: int | None = None, code: str | None = None) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    if status is not None:
        assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"], body
    assert isinstance(body["error"]["message"], str), body
    if code is not None:
        assert body["error"]["code"] == code, body


@pytest.fixture
def crash_safe(make_api: Callable[..., AbstractContextManager[Api]]) -> Iterator[Api]:
    """The app with server errors returned as 500 responses rather than raised."""
    with make_api(raise_server_exceptions=False) as api:
        yield api


class Setup:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.symbols = api.market()
        self.sym = self.symbols[0]
        self.a: Trader = api.trader("alice")
        self.site, self.pool = api.seller(self.a)
        self.order = api.order(self.a, self.symbols[-1], "buy", "19", "1")


def _schema_properties(app: Any) -> dict[tuple[str, str], set[str]]:
    """(method, path) -> the properties of its JSON body model, from the OpenAPI schema."""
    schema = app.openapi()
    components = schema["components"]["schemas"]
    out = {}
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            content = op.get("requestBody", {}).get("content", {}).get("application/json")
            if content is None:
                continue
            ref = content["schema"]["$ref"].rsplit("/", 1)[-1]
            out[(method.upper(), path)] = set(components[ref]["properties"])
    return out


def test_server_set_fields_are_refused_everywhere(crash_safe: Api) -> None:
    api = crash_safe
    s = Setup(api)
    ids = {
        "account_id": s.a.id,
        "code": TIER,
        "symbol": s.sym,
        "order_id": s.order["id"],
        "site_id": s.site,
        "contract_id": 1,
    }
    app: Any = api.client.app
    properties = _schema_properties(app)
    routes = [r for r in http_routes(app) if (r.method, r.path) in properties]
    assert len(routes) >= 14
    before = api.snapshot(s.a)
    probes = 0
    for route in routes:
        url = route.path
        for param in route.params:
            url = url.replace(f"{{{param}}}", str(ids[param]))
        base = BODIES[(route.method, route.path)]
        assert base is not None
        if route.path == "/v1/orders":
            base = {**base, "instrument": s.sym}
        headers = ADMIN if route.is_admin else s.a.headers
        for field, value in SERVER_FIELDS.items():
            if field in properties[(route.method, route.path)]:
                continue  # a real field of this model (e.g. a hardware model's id)
            r = api.request(route.method, url, json={**base, field: value}, headers=headers)
            assert_error(r, 422, "invalid_request")
            assert field in r.json()["error"]["message"], (str(route), r.json())
            probes += 1
        if route.path == "/v1/orders/batch":
            order = {**base["orders"][0], "instrument": s.sym, "status": "filled"}
            r = api.request(route.method, url, json={"orders": [order]}, headers=headers)
            assert_error(r, 422, "invalid_request")
    assert probes > 100
    assert api.snapshot(s.a) == before


def _order_probes() -> list[tuple[str, Any, str | None]]:
    """(field, value, expected code or None for any 4xx)."""
    decimal_probes: list[tuple[Any, str | None]] = [
        ("1e400", "invalid_decimal"),
        ("1E2", "invalid_decimal"),
        (MANY_DIGITS, "out_of_range"),
        ("1" * 41, "invalid_request"),
        ("NaN", "invalid_decimal"),
        ("nan", "invalid_decimal"),
        ("Infinity", "invalid_decimal"),
        ("-Infinity", "invalid_decimal"),
        ("", "invalid_request"),
        (" ", "invalid_decimal"),  # nothing is stripped: a space is not a decimal
        ("1,5", "invalid_decimal"),
        ("0x10", "invalid_decimal"),
        ("1.", "invalid_decimal"),
        (".5", "invalid_decimal"),
        ("--1", "invalid_decimal"),
        (20, "invalid_request"),
        (20.5, "invalid_request"),
        (HUGE_INT, "invalid_request"),
        (True, "invalid_request"),
        ([], "invalid_request"),
        (["20"], "invalid_request"),
        ({}, "invalid_request"),
        ({"value": "20"}, "invalid_request"),
    ]
    probes: list[tuple[str, Any, str | None]] = []
    for value, code in decimal_probes:
        probes.append(("price", value, code))
        probes.append(("quantity", value, code))
    probes += [
        ("quantity", "0", "invalid_quantity"),
        ("quantity", "-0", "invalid_quantity"),
        ("quantity", "0.000", "invalid_quantity"),
        ("quantity", "-1", "invalid_quantity"),
        ("quantity", "0.15", "invalid_lot"),  # off the 0.1 lot
        ("quantity", "0.0000001", "invalid_lot"),  # more decimals than a quantity has
        ("quantity", "100000", None),  # above max_quantity
        ("quantity", None, "invalid_request"),
        ("price", "0", "invalid_price"),
        ("price", "-0", "invalid_price"),
        ("price", "-20", "invalid_price"),
        ("price", "20.001", "invalid_tick"),  # off the 0.01 tick
        ("price", "20.00001", "invalid_tick"),  # more decimals than a price has
        ("price", "100", "price_out_of_band"),
        ("price", "1", "price_out_of_band"),
        ("instrument", "NOPE-20261122T02", "instrument_not_found"),
        ("instrument", "", "invalid_request"),
        ("instrument", "X" * 65, "invalid_request"),
        ("instrument", 7, "invalid_request"),
        ("instrument", None, "invalid_request"),
        ("side", "hold", "invalid_request"),
        ("side", "BUY", "invalid_request"),
        ("side", None, "invalid_request"),
        ("type", "stop", "invalid_request"),
        ("time_in_force", "day", "invalid_request"),
        ("stp", "none", "invalid_request"),
        ("post_only", "maybe", "invalid_request"),
        ("post_only", [], "invalid_request"),
        ("expire_time", "yesterday", "invalid_expire_time"),
        ("expire_time", "2026-13-45T00:00:00Z", "invalid_expire_time"),
        ("expire_time", 1_800_000_000, "invalid_request"),
        ("client_order_id", "x" * 65, "invalid_request"),
        ("client_order_id", "", "invalid_request"),
        ("client_order_id", 5, "invalid_request"),
    ]
    return probes


def test_malformed_orders_are_refused_with_a_code(crash_safe: Api) -> None:
    api = crash_safe
    s = Setup(api)
    base = {"instrument": s.sym, "side": "buy", "price": "20", "quantity": "1"}
    before = api.operations()
    failures = []
    for field, value, code in _order_probes():
        r = api.post("/v1/orders", json={**base, field: value}, headers=s.a.headers)
        try:
            assert_error(r, code=code)
        except AssertionError as exc:
            failures.append((field, value, r.status_code, r.text[:200], str(exc)[:100]))
    assert not failures, failures
    # the GTD / market / post-only combinations the engine refuses
    combos: list[dict[str, Any]] = [
        {"time_in_force": "gtd"},  # no expire_time
        {"time_in_force": "gtd", "expire_time": "2026-11-21T00:00:00Z"},  # in the past
        {"type": "market", "post_only": True},
        {"type": "market", "price": None, "quantity": "0"},
    ]
    for extra in combos:
        assert_error(api.post("/v1/orders", json={**base, **extra}, headers=s.a.headers))
    assert api.operations() == before


def test_malformed_other_bodies_are_refused_with_a_code(crash_safe: Api) -> None:
    api = crash_safe
    s = Setup(api)
    a = s.a
    probes: list[tuple[str, str, dict[str, str], Any, int | None]] = []

    def add(method: str, url: str, headers: dict[str, str], body: Any, status: int | None = None):
        probes.append((method, url, headers, body, status))

    deposit = f"/v1/admin/accounts/{a.id}/deposits"
    for amount in ("1e400", MANY_DIGITS, "NaN", "Infinity", "-5", "0", "-0", "0.00000000001"):
        add("POST", deposit, ADMIN, {"amount": amount})
    for amount in (5, HUGE_INT, None, [], {}):
        add("POST", deposit, ADMIN, {"amount": amount}, 422)
    add("POST", "/v1/admin/accounts/999999/deposits", ADMIN, {"amount": "1"}, 404)
    add("POST", f"/v1/admin/accounts/{HUGE_INT}/deposits", ADMIN, {"amount": "1"})
    add("POST", "/v1/admin/accounts/-1/deposits", ADMIN, {"amount": "1"})
    add("POST", f"/v1/admin/accounts/{a.id}/withdrawals", ADMIN, {"amount": "100001"}, 422)
    add("POST", "/v1/admin/accounts", ADMIN, {"name": "x", "role": "root"}, 422)
    add("POST", "/v1/admin/accounts", ADMIN, {"name": ""}, 422)
    add("POST", "/v1/admin/accounts", ADMIN, {"name": "x" * 101}, 422)

    site = {"name": "x", "region": "east", "pue": "1.2", "green_share": "0"}
    for field, value in [
        ("pue", "NaN"),
        ("pue", "1e400"),
        ("pue", "-1"),
        ("pue", "0"),
        ("pue", MANY_DIGITS),
        ("pue", 1.2),
        ("green_share", "2"),
        ("green_share", "-0.5"),
        ("emission_factor", "Infinity"),
        ("emission_factor", "-1"),
        ("region", "mars"),
        ("region", None),
        ("name", ""),
    ]:
        add("POST", "/v1/sites", a.headers, {**site, field: value})
    pools = f"/v1/sites/{s.site}/pools"
    for count in (0, -1, HUGE_INT, "ten", 1.5, None):
        add("POST", pools, a.headers, {"hardware_id": H100, "count": count}, 422)
    add("POST", pools, a.headers, {"hardware_id": "no-such-gpu", "count": 1}, 404)
    add("POST", f"/v1/sites/{HUGE_INT}/pools", a.headers, {"hardware_id": H100, "count": 1})

    delivery = "/v1/contracts/1/deliveries"
    for ds in (-1, HUGE_INT, "sixty", 1.5, None):
        add("POST", delivery, a.headers, {"pool_id": s.pool, "device_seconds": ds}, 422)
    add("POST", delivery, a.headers, {"pool_id": HUGE_INT, "device_seconds": 1}, 422)

    clock = "/v1/admin/clock"
    for body in (
        {"advance_seconds": -1},
        {"advance_seconds": HUGE_INT},
        {"advance_seconds": "sixty"},
        {"to": "not a time"},
        {"to": "2026-11-21T00:00:00Z"},  # backwards
        {"advance_seconds": 1, "to": "2026-11-23T00:00:00Z"},
        {},
    ):
        add("POST", clock, ADMIN, body)

    for field, value in [
        ("tick_size", "0"),
        ("tick_size", "NaN"),
        ("lot_size", "-1"),
        ("min_quantity", "1e400"),
        ("max_quantity", MANY_DIGITS),
        ("price_band_pct", "Infinity"),
        ("shortfall_penalty_pct", "-5"),
        ("reference_price", "0"),
        ("maker_fee_bps", -1),
        ("taker_fee_bps", HUGE_INT),
        ("window_hours", 5),
        ("window_hours", 0),
        ("gate_closure_minutes", HUGE_INT),
        ("precision", "fp7"),
        ("gpu_class", "NOPE"),
        ("min_green_grade", "6A"),
        ("regions", ["mars"]),
        ("code", "bad code!"),
    ]:
        add("POST", "/v1/admin/tiers", ADMIN, {**TIER_BODY, "code": "T2", field: value})
    add("POST", "/v1/admin/tiers", ADMIN, TIER_BODY, 409)  # exists
    for body in ({"status": "deleted"}, {"maker_fee_bps": -1}, {"price_band_pct": "NaN"}):
        add("PATCH", f"/v1/admin/tiers/{TIER}", ADMIN, body, 422)
    add("PATCH", "/v1/admin/tiers/NOPE", ADMIN, {"status": "active"}, 404)
    add("PATCH", f"/v1/orders/{s.order['id']}", a.headers, {}, 422)
    add("PATCH", f"/v1/orders/{s.order['id']}", a.headers, {"price": "19.001"}, 422)
    add("PATCH", f"/v1/orders/{s.order['id']}", a.headers, {"quantity": "-1"}, 422)
    add("PATCH", f"/v1/orders/{HUGE_INT}", a.headers, {"price": "19"})
    add("GET", f"/v1/orders/{HUGE_INT}", a.headers, None)
    add("GET", "/v1/orders/-1", a.headers, None)
    add("GET", "/v1/orders/abc", a.headers, None, 422)
    add("DELETE", f"/v1/orders/{HUGE_INT}", a.headers, None)
    add("GET", "/v1/instruments/NOPE", {}, None, 404)
    add("GET", f"/v1/instruments/{'X' * 5000}", {}, None)
    add("GET", "/v1/quote?instrument=NOPE&side=buy&quantity=1", {}, None, 404)
    add("GET", f"/v1/quote?instrument={s.sym}&side=buy&quantity=1e400", {}, None, 422)
    add("GET", f"/v1/quote?instrument={s.sym}&side=sideways&quantity=1", {}, None, 422)
    add("GET", f"/v1/metering/convert?hardware_id={H100}&hours=NaN", {}, None, 422)
    add("GET", f"/v1/metering/convert?hardware_id={H100}&precision=fp7", {}, None, 422)
    add("GET", f"/v1/metering/convert?hardware_id={H100}&count={HUGE_INT}", {}, None, 422)
    add("GET", f"/v1/instruments/{s.sym}/book?depth=0", {}, None, 422)
    add("GET", f"/v1/instruments/{s.sym}/book?depth={HUGE_INT}", {}, None, 422)
    add("GET", f"/v1/instruments/{s.sym}/candles?interval=1y", {}, None, 422)
    add("GET", "/v1/orders?limit=0", a.headers, None, 422)
    add("GET", f"/v1/orders?limit={HUGE_INT}", a.headers, None, 422)
    add("GET", "/v1/orders?cursor=abc", a.headers, None, 422)
    add("GET", f"/v1/orders?cursor={'9' * 41}", a.headers, None, 422)
    add("GET", "/v1/capacity", a.headers, None, 422)

    before = api.operations()
    failures = []
    for method, url, headers, body, status in probes:
        r = api.request(method, url, json=body, headers=headers)
        try:
            assert_error(r, status)
        except (AssertionError, ValueError) as exc:
            failures.append((method, url, body, r.status_code, r.text[:160], str(exc)[:80]))
    assert not failures, failures
    assert api.operations() == before
    assert api.ok(api.get("/v1/health"))["status"] == "ok"


@pytest.mark.parametrize(
    "content",
    [b"{", b"", b"null", b"[]", b'"order"', b"12", b"\xff\xfe\x00", b'{"instrument": }', b"{}"],
)
def test_invalid_json_is_refused(crash_safe: Api, content: bytes) -> None:
    api = crash_safe
    s = Setup(api)
    before = api.operations()
    for url, headers in (("/v1/orders", s.a.headers), ("/v1/admin/tiers", ADMIN)):
        h = {**headers, "Content-Type": "application/json"}
        r = api.post(url, content=content, headers=h)
        if content.startswith(b"\xff"):  # not UTF-8: refused before JSON parsing
            assert_error(r, 400)
        else:
            assert_error(r, 422, "invalid_request")
    assert api.operations() == before


def test_oversized_bodies_get_413(crash_safe: Api) -> None:
    api = crash_safe
    s = Setup(api)
    limit = api.settings.max_body_bytes
    before = api.operations()
    big = {"instrument": s.sym, "side": "buy", "price": "20", "quantity": "1", "pad": "x" * limit}
    r = api.post("/v1/orders", json=big, headers=s.a.headers)
    assert_error(r, 413, "request_too_large")
    assert_error(api.post("/v1/admin/tiers", json=big, headers=ADMIN), 413, "request_too_large")
    assert api.operations() == before
    # a body just under the limit is parsed normally (and refused for its extra field)
    small = {**big, "pad": "x" * (limit - 200)}
    assert_error(api.post("/v1/orders", json=small, headers=s.a.headers), 422, "invalid_request")


def test_oversized_streamed_body_gets_413(crash_safe: Api) -> None:
    """Without a Content-Length the limit is counted as the body arrives (BodySizeLimit:
    "declared or streamed"); the answer must still be 413 request_too_large."""
    api = crash_safe
    s = Setup(api)
    limit = api.settings.max_body_bytes
    before = api.operations()

    def stream() -> Iterator[bytes]:
        yield b'{"instrument": "' + s.sym.encode() + b'", "pad": "'
        for _ in range(limit // 1024 + 2):
            yield b"x" * 1024
        yield b'"}'

    h = {**s.a.headers, "Content-Type": "application/json"}
    assert_error(api.post("/v1/orders", content=stream(), headers=h), 413, "request_too_large")
    assert api.operations() == before


def test_huge_reference_price_is_refused_and_the_service_keeps_running(crash_safe: Api) -> None:
    """A reference price of 10**15 CNY per PF·h parses (at most 18 integer digits), but its
    minor units (10**19) do not fit the BIGINT column it is stored in. It must be refused
    with a 4xx before it reaches the core, not fail the commit and stop the service."""
    api = crash_safe
    s = Setup(api)
    for method, url, body in (
        ("PATCH", f"/v1/admin/tiers/{TIER}", {"reference_price": "1000000000000000"}),
        (
            "POST",
            "/v1/admin/tiers",
            {**TIER_BODY, "code": "BIG", "reference_price": "1" + "0" * 17},
        ),
    ):
        r = api.request(method, url, json=body, headers=ADMIN)
        assert r.status_code < 500, (method, url, r.status_code, r.text[:200])
        assert api.ok(api.get("/v1/health"))["status"] == "ok"
    # and the exchange still takes orders
    api.order(s.a, s.sym, "buy", "19", "1")


def test_route_table_covers_every_body(api: Api) -> None:
    app: Any = api.client.app
    bodies = set(_schema_properties(app))
    assert bodies <= set(BODIES), bodies - set(BODIES)
    assert all(isinstance(r, Route) for r in http_routes(app))


def test_non_ascii_digits_are_refused(api: Api) -> None:
    """A decimal is ASCII digits. Python's ``\\d`` also matches other scripts' digits
    ("２０", "٢٠"), which must not become prices or quantities."""
    sym = api.market()[0]
    a = api.trader("alice")
    ops = api.operations()
    for field, value in (("quantity", "１"), ("price", "２０"), ("price", "١٩")):
        body = {"instrument": sym, "side": "buy", "price": "19", "quantity": "1", field: value}
        assert_error(api.post("/v1/orders", json=body, headers=a.headers), 422)
    assert api.operations() == ops


def test_an_unexpected_error_in_order_entry_is_a_json_500_and_changes_nothing(
    crash_safe: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Order entry is served before the app's middleware (api.endpoint.FrontDoor): an
    unexpected exception there must still become a 500 with an error body, not a dropped
    connection, and the exchange must go on answering."""
    api = crash_safe
    s = Setup(api)
    before = api.operations()
    service = api.client.app.state.context.service  # type: ignore[attr-defined]

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    body = {"instrument": s.sym, "side": "buy", "price": "19", "quantity": "1"}
    with monkeypatch.context() as patch:
        patch.setattr(service, "submit", broken)
        patch.setattr(service, "submit_many", broken)
        for path, sent in (("/v1/orders", body), ("/v1/orders/batch", {"orders": [body]})):
            r = api.post(path, json=sent, headers=s.a.headers)
            assert r.status_code == 500, (path, r.status_code, r.text)
            assert r.json() == {
                "error": {"code": "internal_error", "message": "internal server error"}
            }
    assert api.operations() == before
    assert api.post("/v1/orders", json=body, headers=s.a.headers).status_code == 201


def test_a_conversion_past_decimal_precision_is_answered_exactly(api: Api) -> None:
    """Figures of more than 28 digits (Decimal's default precision) are formatted exactly,
    not refused by quantize as a 500 (found by the schema's stateful phase)."""
    r = api.get(
        f"/v1/metering/convert?hardware_id={H100}&count=100001&hours=80000000000000000"
        "&precision=fp8&pue=1&emission_factor=1&green_share=0"
    )
    body = api.ok(r)
    assert body["pf_hours"] == "15831358312000000000000"


@pytest.mark.parametrize(
    ("value", "units", "places", "text"),
    [
        (Fraction(5, 2), 0, 0, "2"),
        (Fraction(7, 2), 0, 0, "4"),
        (Fraction(-5, 2), 0, 0, "-2"),
        (Fraction(-1, 1000), 0, 2, "-0"),
        (Fraction(10**30 + 1, 3), 0, 3, "333333333333333333333333333333.667"),
        (Fraction(123456789, 7), 4, 8, "1763.66841429"),
        (Fraction(2 * 10**40, 1), 10, 6, "2" + "0" * 30),
    ],
)
def test_format_fraction_rounds_half_even_exactly(
    value: Fraction, units: int, places: int, text: str
) -> None:
    assert format_fraction(value, units, places) == text
