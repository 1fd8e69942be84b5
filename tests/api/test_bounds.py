"""Bounds: page sizes are capped and cursors walk every item exactly once; order entry is
rate limited (429 with Retry-After) while cancels still work; open orders per account and
instrument are capped (429 too_many_open_orders); batches hold at most 100 orders, each
accepted or refused on its own."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from tests.api.conftest import ADMIN, Api

MakeApi = Callable[..., AbstractContextManager[Api]]

PAGE_MAX = 4


def _ids(items: list[dict[str, Any]], key: str = "id") -> list[Any]:
    return [i[key] for i in items]


def test_pages_are_capped_and_cursors_visit_every_item_once(make_api: MakeApi) -> None:
    with make_api(page_limit_max=PAGE_MAX) as api:
        symbols = api.market(list_ahead_hours=12)  # 11 instruments
        a, b = api.trader("alice"), api.trader("bob")
        api.seller(b)
        assert len(symbols) == 11
        for i in range(11):
            api.order(a, symbols[0] if i < 6 else symbols[i], "buy", f"19.{i:02d}", "1")
        for i in range(6):
            api.order(b, symbols[0], "sell", "18", "0.5")  # trades: fills, contracts
            api.ok(
                api.post(
                    "/v1/sites",
                    json={"name": f"s{i}", "region": "east", "pue": "1.2", "green_share": "0"},
                    headers=b.headers,
                ),
                201,
            )

        lists: list[tuple[str, dict[str, str], str]] = [
            ("/v1/orders", a.headers, "id"),
            ("/v1/fills", a.headers, "trade_id"),
            ("/v1/contracts", b.headers, "id"),
            ("/v1/account/ledger", a.headers, "id"),
            ("/v1/sites", b.headers, "id"),
            ("/v1/instruments", {}, "symbol"),
            ("/v1/hardware", {}, "id"),
            (f"/v1/instruments/{symbols[0]}/trades", {}, "id"),
        ]
        for url, headers, key in lists:
            first = api.ok(api.get(url, params={"limit": 10_000}, headers=headers))
            assert len(first["data"]) <= PAGE_MAX, url
            walked = _ids(api.walk(url, headers, limit=10_000), key)
            assert len(walked) == len(set(walked)), f"{url}: an item came twice"
            assert len(walked) > PAGE_MAX, f"{url}: too few items to page ({len(walked)})"
            for size in (1, 3):
                assert _ids(api.walk(url, headers, limit=size), key) == walked, (url, size)
        # the order list, walked, is every order placed, in id order
        orders = _ids(api.walk("/v1/orders", a.headers))
        assert len(orders) == 11 and orders == sorted(orders)
        # filters page too
        open_only = api.walk("/v1/orders", a.headers, status="open", limit=2)
        assert {o["status"] for o in open_only} == {"open"}
        # a cursor past the end is an empty last page
        last = api.ok(api.get("/v1/orders", params={"cursor": str(10**12)}, headers=a.headers))
        assert last == {"data": [], "next_cursor": None}
        # a cursor that is no id (beyond 64 bits, or digits that are not ASCII) is a 422,
        # on lists served from memory and on the one read from the database alike
        for url, headers, _ in lists:
            for cursor in (str(2**63), "9" * 40, "\u00b2", "\u0663"):
                r = api.get(url, params={"cursor": cursor}, headers=headers)
                assert r.status_code == 422, (url, cursor, r.status_code, r.text)
                assert r.json()["error"]["code"] == "invalid_cursor"
        edge = api.get("/v1/account/ledger", params={"cursor": str(2**63 - 1)}, headers=a.headers)
        assert api.ok(edge) == {"data": [], "next_cursor": None}


def test_rate_limit_answers_429_and_cancels_still_work(make_api: MakeApi) -> None:
    with make_api(rate_limit_per_s=0.01, rate_limit_burst=3) as api:
        sym = api.market()[0]
        a, b = api.trader("alice"), api.trader("bob")
        placed = [api.order(a, sym, "buy", "19", "1") for _ in range(3)]
        ops = api.operations()
        body = {"instrument": sym, "side": "buy", "price": "19", "quantity": "1"}
        r = api.post("/v1/orders", json=body, headers=a.headers)
        assert r.status_code == 429, r.text
        assert r.json()["error"]["code"] == "rate_limited"
        assert int(r.headers["Retry-After"]) >= 1
        for method, url, payload in (
            ("PATCH", f"/v1/orders/{placed[0]['id']}", {"price": "18"}),
            ("POST", "/v1/orders/batch", {"orders": [body]}),
        ):
            r = api.request(method, url, json=payload, headers=a.headers)
            assert r.status_code == 429, (url, r.text)
            assert "Retry-After" in r.headers
        assert api.operations() == ops
        # cancels are never throttled
        cancelled = api.ok(api.delete(f"/v1/orders/{placed[0]['id']}", headers=a.headers))
        assert cancelled["status"] == "cancelled"
        everything = api.ok(api.delete("/v1/orders", headers=a.headers))
        assert len(everything["cancelled"]) == 2
        # reads are not throttled, and the bucket is per key
        assert api.get("/v1/orders", headers=a.headers).status_code == 200
        assert api.post("/v1/orders", json=body, headers=b.headers).status_code == 201


def test_open_order_cap_per_account_and_instrument(make_api: MakeApi) -> None:
    with make_api(max_open_orders=3) as api:
        symbols = api.market()
        a, b = api.trader("alice"), api.trader("bob")
        mine = [api.order(a, symbols[0], "buy", f"19.{i}", "1") for i in range(3)]
        ops = api.operations()
        body = {"instrument": symbols[0], "side": "buy", "price": "19", "quantity": "1"}
        r = api.post("/v1/orders", json=body, headers=a.headers)
        assert r.status_code == 429, r.text
        assert r.json()["error"]["code"] == "too_many_open_orders"
        assert api.operations() == ops
        # another instrument, another account: their own caps
        api.order(a, symbols[1], "buy", "19", "1")
        api.order(b, symbols[0], "buy", "19", "1")
        # in a batch each order is counted
        batch = api.ok(api.post("/v1/orders/batch", json={"orders": [body]}, headers=a.headers))
        assert batch["results"][0]["error"]["code"] == "too_many_open_orders"
        # a cancel frees a slot; an IOC that does not rest never takes one
        api.ok(api.delete(f"/v1/orders/{mine[0]['id']}", headers=a.headers))
        api.order(a, symbols[0], "buy", "19", "1")
        assert api.post("/v1/orders", json=body, headers=a.headers).status_code == 429


def test_batch_orders_stand_alone(api: Api) -> None:
    symbols = api.market()
    sym = symbols[0]
    a, s = api.trader("alice", "5000"), api.trader("seller")
    api.seller(s)
    api.order(s, sym, "sell", "20", "2")

    def order(**kw: Any) -> dict[str, Any]:
        return {"instrument": sym, "side": "buy", "price": "19", "quantity": "1", **kw}

    bad = {
        1: (order(price="19.001"), "invalid_tick"),
        3: (order(instrument="NOPE"), "instrument_not_found"),
        5: (order(quantity="0.15"), "invalid_lot"),
        7: (order(price="100"), "price_out_of_band"),
        9: (order(quantity="900"), "insufficient_funds"),
        11: (order(price="20.01", post_only=True), "post_only_would_cross"),
    }
    orders = [bad[i][0] if i in bad else order(price=f"18.{i:02d}") for i in range(100)]
    orders[20] = order(price="20", quantity="1")  # trades against the resting sell
    ops = api.operations()
    results = api.ok(api.post("/v1/orders/batch", json={"orders": orders}, headers=a.headers))[
        "results"
    ]
    assert len(results) == 100
    for i, result in enumerate(results):
        if i in bad:
            assert result["error"]["code"] == bad[i][1], (i, result)
        else:
            assert result.get("status") in ("open", "filled"), (i, result)
            assert result["instrument"] == sym
    assert results[20]["status"] == "filled"
    accepted = [r for r in results if "error" not in r]
    assert api.operations() == ops + len(accepted)
    # in request order: ids ascend along the accepted results
    assert [r["id"] for r in accepted] == sorted(r["id"] for r in accepted)
    assert len(api.walk("/v1/orders", a.headers)) == len(accepted)

    # 101 orders: refused as a whole, nothing placed
    ops = api.operations()
    r = api.post("/v1/orders/batch", json={"orders": [order()] * 101}, headers=a.headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    r = api.post("/v1/orders/batch", json={"orders": []}, headers=a.headers)
    assert r.status_code == 422
    # a structurally invalid order (wrong type) refuses the whole request
    r = api.post(
        "/v1/orders/batch", json={"orders": [order(), order(side="hold")]}, headers=a.headers
    )
    assert r.status_code == 422
    # and so does one outside the published schema (a negative quantity)
    r = api.post(
        "/v1/orders/batch", json={"orders": [order(), order(quantity="-1")]}, headers=a.headers
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_quantity"
    assert api.operations() == ops


def test_admin_can_withdraw_only_what_is_available(api: Api) -> None:
    sym = api.market()[0]
    a = api.trader("alice", "100")
    api.order(a, sym, "buy", "19", "5")  # holds 95 + fee
    r = api.post(f"/v1/admin/accounts/{a.id}/withdrawals", json={"amount": "10"}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"]["code"] == "insufficient_funds", r.text
    r = api.post(f"/v1/admin/accounts/{a.id}/withdrawals", json={"amount": "4"}, headers=ADMIN)
    assert r.status_code == 201, r.text


def test_clock_target_is_bounded_like_advance_seconds(api: Api) -> None:
    """advance_seconds is capped at ten years because every listing, gate closure and
    settlement due runs in the one request (a ten-year jump with one hourly tier takes tens
    of seconds and lists ~87,600 windows). ``to`` must have the same bound; this checks it
    on an exchange with no tier, where the jump itself is cheap."""
    ten_years_s = 10 * 366 * 86_400
    r = api.post("/v1/admin/clock", json={"advance_seconds": ten_years_s + 1}, headers=ADMIN)
    assert r.status_code == 422
    r = api.post("/v1/admin/clock", json={"to": "2100-01-01T00:00:00Z"}, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert api.ok(api.get("/v1/clock"))["now"] == "2026-11-22T00:00:00Z"
