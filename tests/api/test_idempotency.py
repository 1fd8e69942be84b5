"""Idempotency: a repeated client_order_id or Idempotency-Key has exactly one effect; the
same key with another body is refused; a secret shown once is never shown again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.api.conftest import ADMIN, GPU_CLASS, H100, SITE, TIER_BODY, Api, open_api, sqlite_url


def test_repeated_client_order_id_returns_the_original(api: Api) -> None:
    sym = api.market()[0]
    a = api.trader("alice")
    body = {
        "instrument": sym,
        "side": "buy",
        "price": "19",
        "quantity": "1",
        "client_order_id": "c-1",
    }
    first = api.post("/v1/orders", json=body, headers=a.headers)
    assert first.status_code == 201
    ops, account = api.operations(), api.account(a)
    again = api.post("/v1/orders", json=body, headers=a.headers)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    # the same client_order_id for a different order is refused, and changes nothing
    other_body = api.post(
        "/v1/orders", json={**body, "price": "18", "quantity": "2"}, headers=a.headers
    )
    assert other_body.status_code == 422, other_body.text
    assert other_body.json()["error"]["code"] == "client_order_id_reused"
    # also inside a batch
    batch = api.ok(api.post("/v1/orders/batch", json={"orders": [body]}, headers=a.headers))
    assert batch["results"] == [first.json()]
    assert api.operations() == ops
    assert api.account(a) == account
    assert len(api.walk("/v1/orders", a.headers)) == 1
    # the id is per account: another trader may use the same client_order_id
    b = api.trader("bob")
    other = api.post("/v1/orders", json=body, headers=b.headers)
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    # a cancelled order still owns its client_order_id
    api.ok(api.delete(f"/v1/orders/{first.json()['id']}", headers=a.headers))
    again = api.post("/v1/orders", json=body, headers=a.headers)
    assert again.status_code == 200 and again.json()["status"] == "cancelled"


def _idempotent_cases(api: Api) -> list[tuple[str, dict[str, str], dict[str, Any], dict[str, Any]]]:
    """(url, headers, body, another body) of every endpoint that takes Idempotency-Key."""
    a = api.trader("alice")
    site = api.ok(api.post("/v1/sites", json=SITE, headers=a.headers), 201)["id"]
    return [
        (f"/v1/admin/accounts/{a.id}/deposits", ADMIN, {"amount": "10"}, {"amount": "11"}),
        (f"/v1/admin/accounts/{a.id}/withdrawals", ADMIN, {"amount": "1"}, {"amount": "2"}),
        ("/v1/sites", a.headers, SITE, {**SITE, "name": "bj"}),
        (
            f"/v1/sites/{site}/pools",
            a.headers,
            {"hardware_id": H100, "count": 4},
            {"hardware_id": H100, "count": 5},
        ),
        ("/v1/admin/gpu-classes", ADMIN, {**GPU_CLASS, "code": "H2"}, {**GPU_CLASS, "code": "H3"}),
        ("/v1/admin/tiers", ADMIN, {**TIER_BODY, "code": "T-2"}, {**TIER_BODY, "code": "T-3"}),
    ]


def test_idempotency_key_replays_the_stored_response(api: Api) -> None:
    api.market()
    for url, headers, body, other in _idempotent_cases(api):
        h = {**headers, "Idempotency-Key": f"key-{url}"}
        first = api.post(url, json=body, headers=h)
        assert first.status_code == 201, (url, first.text)
        ops = api.operations()
        replay = api.post(url, json=body, headers=h)
        assert (replay.status_code, replay.json()) == (201, first.json()), url
        assert api.operations() == ops, f"{url}: a replay changed state"
        reused = api.post(url, json=other, headers=h)
        assert reused.status_code == 422, (url, reused.text)
        assert reused.json()["error"]["code"] == "idempotency_key_reused"
        assert api.operations() == ops
        # without the key, the same body is a new request
        fresh = api.post(url, json=other, headers=headers)
        assert fresh.status_code == 201, (url, fresh.text)


def test_idempotency_keys_are_per_account_and_bounded(api: Api) -> None:
    a, b = api.trader("alice"), api.trader("bob")
    h = {"Idempotency-Key": "same"}
    site_a = api.post("/v1/sites", json=SITE, headers={**a.headers, **h})
    site_b = api.post("/v1/sites", json=SITE, headers={**b.headers, **h})
    assert site_a.status_code == site_b.status_code == 201
    assert site_a.json()["id"] != site_b.json()["id"]  # B never gets A's stored response
    too_long = api.post("/v1/sites", json=SITE, headers={**a.headers, "Idempotency-Key": "k" * 101})
    assert too_long.status_code == 422
    assert too_long.json()["error"]["code"] == "invalid_idempotency_key"


def test_new_api_key_is_never_returned_on_replay(api: Api) -> None:
    h = {**ADMIN, "Idempotency-Key": "acct-1"}
    first = api.post("/v1/admin/accounts", json={"name": "lab"}, headers=h)
    assert first.status_code == 201
    key = first.json()["api_key"]
    assert key and key.startswith("sk_")
    ops = api.operations()
    replay = api.post("/v1/admin/accounts", json={"name": "lab"}, headers=h)
    assert replay.status_code == 201
    assert replay.json()["id"] == first.json()["id"]
    assert replay.json().get("api_key") != key
    assert key not in replay.text
    assert api.operations() == ops
    # the key shown once works
    assert api.get("/v1/account", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_idempotency_survives_a_restart(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    with open_api(url) as api:
        a = api.trader("alice")
        h = {**a.headers, "Idempotency-Key": "site-1"}
        first = api.ok(api.post("/v1/sites", json=SITE, headers=h), 201)
    with open_api(url) as api:
        ops = api.operations()
        replay = api.post("/v1/sites", json=SITE, headers=h)
        assert (replay.status_code, replay.json()) == (201, first)
        assert api.operations() == ops
        reused = api.post("/v1/sites", json={**SITE, "name": "x"}, headers=h)
        assert reused.json()["error"]["code"] == "idempotency_key_reused"
