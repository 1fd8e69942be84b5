"""Limits that count work: order entry is limited in orders (a batch of 100 takes 100
tokens), every other mutating route sits under a per-key limit of its own (cancels
never do), and Idempotency-Keys kept per account are bounded and expire."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest

from api import idempotency
from api.deps import RateLimiter
from tests.api.conftest import ADMIN, SITE, Api
from tests.api.routes import http_routes
from tests.api.test_access import body_for, build_world, expand

MakeApi = Callable[..., AbstractContextManager[Api]]


def _refused(response: Any, code: str, status: int = 429) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text


def test_a_rate_limit_counts_work_and_work_beyond_a_burst_leaves_a_debt() -> None:
    limiter = RateLimiter(rate=10, burst=100)
    assert limiter.take("k", 100, now=0.0) == 0  # a full burst of work at once
    assert limiter.take("k", 1, now=0.0) > 0
    assert limiter.take("k", 150, now=20.0) == 0  # larger than a burst: passes when full
    wait = limiter.take("k", 1, now=20.0)
    assert wait == pytest.approx(5.1)  # 50 tokens in debt, and one more


def test_a_batch_takes_one_token_per_order(make_api: MakeApi) -> None:
    with make_api(rate_limit_per_s=1, rate_limit_burst=100) as api:
        sym = api.market()[-1]
        a = api.trader("alice")
        order = {"instrument": sym, "side": "buy", "price": "19", "quantity": "0.1"}
        first = api.post("/v1/orders/batch", json={"orders": [order] * 100}, headers=a.headers)
        assert first.status_code == 200, first.text
        ops = api.operations()
        again = api.post("/v1/orders/batch", json={"orders": [order] * 100}, headers=a.headers)
        _refused(again, "rate_limited")
        assert int(again.headers["Retry-After"]) >= 1
        _refused(api.post("/v1/orders", json=order, headers=a.headers), "rate_limited")
        assert api.operations() == ops
        # cancels are never limited
        assert api.delete("/v1/orders", headers=a.headers).status_code == 200


#: Routes that are not "other changes": order entry and amendment take order tokens, and
#: cancels are never limited (a throttled client can always pull its orders).
ORDER_ROUTES = {
    ("POST", "/v1/orders"),
    ("POST", "/v1/orders/batch"),
    ("PATCH", "/v1/orders/{order_id}"),
    ("DELETE", "/v1/orders/{order_id}"),
    ("DELETE", "/v1/orders"),
}


def test_every_other_mutating_route_sits_under_a_per_key_limit(make_api: MakeApi) -> None:
    with make_api(change_rate_per_s=0.001, change_rate_burst=1_000) as api:
        world = build_world(api)
        app: Any = api.client.app
        context: Any = app.state.context
        checked = 0
        for route in http_routes(app):
            if route.method == "GET" or (route.method, route.path) in ORDER_ROUTES:
                continue
            headers = ADMIN if route.is_admin else world.a.headers
            account = context.lookup(headers["Authorization"][7:])
            # An empty bucket for this key: the next change must be refused.
            context.mutations._buckets[str(account)] = (0.0, 1e18)
            (url,) = expand(route, {k: v[:1] for k, v in world.ids.items()})
            ops = api.operations()
            response = api.request(route.method, url, json=body_for(route), headers=headers)
            _refused(response, "rate_limited")
            assert api.operations() == ops, route
            context.mutations._buckets.pop(str(account))
            checked += 1
        assert checked >= 15


def test_idempotency_keys_are_bounded_per_account_and_expire(
    make_api: MakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    with make_api(idempotency_keys_max=3, idempotency_ttl_s=60) as api:
        a = api.trader("alice")
        for i in range(3):
            headers = {**a.headers, "Idempotency-Key": f"k{i}"}
            api.ok(api.post("/v1/sites", json={**SITE, "name": f"s{i}"}, headers=headers), 201)
        ops = api.operations()
        full = api.post("/v1/sites", json=SITE, headers={**a.headers, "Idempotency-Key": "k3"})
        _refused(full, "too_many_idempotency_keys")
        assert api.operations() == ops
        # a key already kept is still answered, and requests without a key still pass
        kept = api.post(
            "/v1/sites", json={**SITE, "name": "s0"}, headers={**a.headers, "Idempotency-Key": "k0"}
        )
        assert kept.status_code == 201 and api.operations() == ops
        api.ok(api.post("/v1/sites", json=SITE, headers=a.headers), 201)
        # another account has its own allowance
        b = api.trader("bob")
        api.ok(
            api.post("/v1/sites", json=SITE, headers={**b.headers, "Idempotency-Key": "k3"}), 201
        )

        # A minute later the records have expired: the keys are free again, and a key
        # reused with another body is a new request (its row replaced, not duplicated).
        later = idempotency.now_us() + 61 * 1_000_000
        monkeypatch.setattr(idempotency, "now_us", lambda: later)
        again = api.post(
            "/v1/sites",
            json={**SITE, "name": "new"},
            headers={**a.headers, "Idempotency-Key": "k0"},
        )
        assert again.status_code == 201 and again.json()["name"] == "new"
        assert api.ok(api.get("/v1/health"))["status"] == "ok"
