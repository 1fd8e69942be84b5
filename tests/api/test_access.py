"""Access control, generated from the app's routes: for every route and method that takes
an id, trader B using trader A's id gets 404 (403 on admin routes) and nothing changes;
every admin route refuses a trader key (403) and no key (401); every private route refuses
no key (401)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.api.conftest import ADMIN, GPU_CLASS, H100, TIER, TIER_BODY, Api, Trader
from tests.api.routes import ADMIN_PARAMS, OWNED_PARAMS, PUBLIC_PARAMS, Route, http_routes

#: A valid body for every route that takes one, so that a refusal is about who asks and
#: never about what was sent. A new route with a body fails until it is added here.
BODIES: dict[tuple[str, str], dict[str, Any] | None] = {
    ("POST", "/v1/admin/clock"): {"advance_seconds": 1},
    ("POST", "/v1/admin/accounts"): {"name": "intruder"},
    ("POST", "/v1/admin/accounts/{account_id}/deposits"): {"amount": "1"},
    ("POST", "/v1/admin/accounts/{account_id}/withdrawals"): {"amount": "1"},
    ("POST", "/v1/admin/accounts/{account_id}/keys"): None,
    ("POST", "/v1/admin/hardware"): {
        "vendor": "Acme",
        "model": "X1",
        "peak_tflops": {"fp16": "100"},
        "source": "test",
    },
    ("POST", "/v1/admin/gpu-classes"): {**GPU_CLASS, "code": "Z"},
    ("POST", "/v1/admin/tiers"): {**TIER_BODY, "code": "FP16-Z"},
    ("PATCH", "/v1/admin/tiers/{code}"): {"status": "suspended"},
    ("POST", "/v1/admin/instruments/{symbol}/halt"): None,
    ("POST", "/v1/admin/instruments/{symbol}/resume"): None,
    ("POST", "/v1/sites"): {"name": "x", "region": "east", "pue": "1.2", "green_share": "0"},
    ("POST", "/v1/sites/{site_id}/pools"): {"hardware_id": H100, "count": 1},
    ("POST", "/v1/contracts/{contract_id}/deliveries"): {"pool_id": 1, "device_seconds": 60},
    ("POST", "/v1/orders"): {"instrument": "X", "side": "buy", "price": "20", "quantity": "1"},
    ("POST", "/v1/orders/batch"): {
        "orders": [{"instrument": "X", "side": "buy", "price": "20", "quantity": "1"}]
    },
    ("PATCH", "/v1/orders/{order_id}"): {"price": "20.5"},
}


def body_for(route: Route) -> dict[str, Any] | None:
    if route.method in ("GET", "DELETE"):
        return None
    key = (route.method, route.path)
    assert key in BODIES, f"{route}: add a valid body to BODIES"
    return BODIES[key]


@dataclass
class World:
    """A (seller and buyer) owns a site, a pool, an open order and contracts on both
    sides in a window that is delivering; B is another trader with its own pool and a
    contract it sold; C is their counterparty."""

    a: Trader
    b: Trader
    c: Trader
    ids: dict[str, list[int | str]]
    b_pool: int
    b_contract: int


def build_world(api: Api) -> World:
    symbols = api.market()
    now, later = symbols[0], symbols[-1]
    a, b, c = api.trader("alice"), api.trader("bob"), api.trader("carol")
    a_site, _ = api.seller(a)
    _, b_pool = api.seller(b)
    api.seller(c)
    api.order(a, now, "sell", "20", "1")
    api.order(c, now, "buy", "20", "1")  # A sells to C
    api.order(c, now, "sell", "20", "1")
    api.order(a, now, "buy", "20", "1")  # A buys from C
    api.order(b, now, "sell", "20", "1")
    api.order(c, now, "buy", "20", "1")  # B sells to C
    order = api.order(a, later, "buy", "19", "1")  # stays open after the clock moves
    api.advance(9000)  # 02:30: the first window delivers
    contracts = api.walk("/v1/contracts", a.headers)
    assert sorted(x["side"] for x in contracts) == ["buy", "sell"]
    assert {x["state"] for x in contracts} == {"delivering"}
    (b_contract,) = api.walk("/v1/contracts", b.headers)
    return World(
        a,
        b,
        c,
        {
            "order_id": [order["id"]],
            "site_id": [a_site],
            "contract_id": [x["id"] for x in contracts],
            "account_id": [a.id],
            "key_id": [1],
            "code": [TIER],
            "symbol": [later],
        },
        b_pool,
        b_contract["id"],
    )


def expand(route: Route, ids: dict[str, list[int | str]]) -> list[str]:
    urls = [route.path]
    for param in route.params:
        assert param in ids, f"{route}: no id known for {{{param}}}"
        urls = [u.replace(f"{{{param}}}", str(v)) for u in urls for v in ids[param]]
    return urls


def test_every_path_parameter_is_classified(api: Api) -> None:
    app: Any = api.client.app
    for route in http_routes(app):
        for param in route.params:
            if route.is_admin:
                assert param in ADMIN_PARAMS, f"{route}: classify {{{param}}}"
            elif route.is_public:
                assert route.method == "GET" and param in PUBLIC_PARAMS, str(route)
            else:
                assert param in OWNED_PARAMS, f"{route}: classify {{{param}}}"


def test_another_traders_ids_are_not_found_and_change_nothing(api: Api) -> None:
    world = build_world(api)
    a, b = world.a, world.b
    app: Any = api.client.app
    checked = 0
    for route in http_routes(app):
        if not route.params or route.is_public:
            continue
        body = body_for(route)
        if route.path.endswith("/deliveries"):
            body = {"pool_id": world.b_pool, "device_seconds": 60}  # B's own pool
        for url in expand(route, world.ids):
            before = api.snapshot(a, b)
            response = api.request(route.method, url, json=body, headers=b.headers)
            error = response.json().get("error", {})
            if route.is_admin:
                assert response.status_code == 403, (str(route), response.text)
                assert error["code"] == "forbidden"
            else:
                assert response.status_code == 404, (str(route), url, response.text)
                assert error["code"].endswith("_not_found"), (str(route), error)
            assert api.snapshot(a, b) == before, f"{route} by another trader changed state"
            checked += 1
    assert checked >= 12

    # Control: the same ids are A's and work for A (for the admin, on admin routes), so
    # B's 404s were about ownership.
    for route in http_routes(app):
        if route.method == "GET" and not route.is_public and route.params:
            headers = ADMIN if route.is_admin else a.headers
            for url in expand(route, world.ids):
                assert api.get(url, headers=headers).status_code == 200, url


def test_own_id_in_a_body_or_query_must_be_owned(api: Api) -> None:
    world = build_world(api)
    a, b = world.a, world.b
    a_pool = api.walk("/v1/pools", a.headers)[0]["id"]
    before = api.snapshot(a, b)
    # B reports delivery on its own contract from A's pool.
    r = api.post(
        f"/v1/contracts/{world.b_contract}/deliveries",
        json={"pool_id": a_pool, "device_seconds": 60},
        headers=b.headers,
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "pool_not_found", r.text
    assert api.snapshot(a, b) == before


def test_metering_does_not_disclose_another_traders_site(api: Api) -> None:
    """GET /v1/metering/convert?site_id= reads a site's PUE, emission factor and green
    share. Sites are private to their owner (GET /v1/sites/{id} answers 404 to others),
    so another trader, or someone without a key, must get 404 here too."""
    world = build_world(api)
    (a_site,) = world.ids["site_id"]
    params = {"hardware_id": H100, "count": 1, "hours": "1", "site_id": a_site}
    own = api.get("/v1/metering/convert", params=params, headers=world.a.headers)
    assert own.status_code == 200, own.text
    assert "carbon_kg" in own.json()
    for headers in (world.b.headers, {}):
        r = api.get("/v1/metering/convert", params=params, headers=headers)
        assert r.status_code == 404, (headers, r.status_code, r.json())


def test_admin_routes_refuse_trader_keys_and_missing_keys(api: Api) -> None:
    world = build_world(api)
    app: Any = api.client.app
    admin_routes = [r for r in http_routes(app) if r.is_admin]
    assert len(admin_routes) >= 9
    before = api.snapshot(world.a)
    for route in admin_routes:
        for url in expand(route, world.ids):
            body = body_for(route)
            cases: list[tuple[dict[str, str], int, str]] = [
                (world.a.headers, 403, "forbidden"),
                ({}, 401, "unauthorized"),
                ({"Authorization": "Bearer sk_not-a-real-key-0000000000"}, 401, "unauthorized"),
                (
                    {"Authorization": ADMIN["Authorization"].replace("Bearer", "Basic")},
                    401,
                    "unauthorized",
                ),
            ]
            for headers, status, code in cases:
                r = api.request(route.method, url, json=body, headers=headers)
                assert r.status_code == status, (str(route), headers, r.text)
                assert r.json()["error"]["code"] == code
    assert api.snapshot(world.a) == before


def test_private_routes_refuse_missing_keys(api: Api) -> None:
    world = build_world(api)
    app: Any = api.client.app
    before = api.snapshot(world.a)
    private = [r for r in http_routes(app) if not r.is_public]
    assert len(private) > 20
    for route in private:
        for url in expand(route, world.ids):
            r = api.request(route.method, url, json=body_for(route))
            assert r.status_code == 401, (str(route), r.text)
            assert r.json()["error"]["code"] == "unauthorized"
    assert api.snapshot(world.a) == before
    for route in http_routes(app):
        if route.is_public:
            for url in expand(route, world.ids):
                params = {"instrument": world.ids["symbol"][0], "side": "buy", "quantity": "1"}
                if url == "/v1/metering/convert":
                    params = {"hardware_id": H100}
                r = api.get(url, params=params)
                assert r.status_code == 200, (str(route), r.text)
