"""Concurrent requests with one Idempotency-Key, or one client_order_id, while order
batches keep the writer busy (SQLite and PostgreSQL).

One request's key must never fail the group commit it would share with others: the key
is decided before the group is written (a repeat waits for the original in flight). The
exchange keeps serving everyone, exactly one object exists, every repeat gets the
original's answer once it is durable, a repeat with another body is refused, and all of
it survives a restart.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from api.app import create_app
from tests.api.conftest import ADMIN, GPU_CLASS, H100, SITE, TIER_BODY, settings_for

CONCURRENT = 20


async def _ok(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    return response.json()


async def _stream(url: str) -> dict[str, Any]:
    """Set up a market, then send the concurrent requests; returns what was answered."""
    app = create_app(settings_for(url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://suanli") as client:
            await _ok(await client.post("/v1/admin/gpu-classes", json=GPU_CLASS, headers=ADMIN))
            await _ok(await client.post("/v1/admin/tiers", json=TIER_BODY, headers=ADMIN))
            symbols = [i["symbol"] for i in (await client.get("/v1/instruments")).json()["data"]]
            trader = await _ok(
                await client.post("/v1/admin/accounts", json={"name": "t"}, headers=ADMIN)
            )
            headers = {"Authorization": f"Bearer {trader['api_key']}"}
            await _ok(
                await client.post(
                    f"/v1/admin/accounts/{trader['id']}/deposits",
                    json={"amount": "1000000"},
                    headers=ADMIN,
                )
            )

            def batch(n: int) -> Any:
                orders = [
                    {"instrument": symbols[-1], "side": "buy", "price": "19", "quantity": "0.1"}
                    for _ in range(50)
                ]
                return client.post("/v1/orders/batch", json={"orders": orders}, headers=headers)

            same = {**headers, "Idempotency-Key": "one-site"}
            other = {**SITE, "name": "another body"}
            order = {
                "instrument": symbols[-1],
                "side": "buy",
                "price": "18",
                "quantity": "1",
                "client_order_id": "one-order",
            }
            calls = (
                [client.post("/v1/sites", json=SITE, headers=same) for _ in range(CONCURRENT)]
                + [
                    client.post(
                        "/v1/sites", json=other, headers={**headers, "Idempotency-Key": "k2"}
                    )
                    if i % 2
                    else client.post(
                        "/v1/sites", json=SITE, headers={**headers, "Idempotency-Key": "k2"}
                    )
                    for i in range(CONCURRENT)
                ]
                + [
                    client.post("/v1/orders", json=order, headers=headers)
                    for _ in range(CONCURRENT)
                ]
                + [batch(i) for i in range(10)]
            )
            answers = await asyncio.gather(*calls)
            health = (await client.get("/v1/health")).json()
            sites = (await client.get("/v1/sites", headers=headers)).json()["data"]
            pool = await client.post(
                f"/v1/sites/{sites[0]['id']}/pools",
                json={"hardware_id": H100, "count": 1},
                headers=headers,
            )
            return {
                "answers": answers,
                "health": health,
                "sites": sites,
                "pool": pool.status_code,
                "headers": headers,
            }


async def _after_restart(url: str, headers: dict[str, str]) -> dict[str, Any]:
    app = create_app(settings_for(url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://suanli") as client:
            replay = await client.post(
                "/v1/sites", json=SITE, headers={**headers, "Idempotency-Key": "one-site"}
            )
            sites = (await client.get("/v1/sites", headers=headers)).json()["data"]
            return {"replay": replay, "sites": sites}


def test_concurrent_requests_with_one_key_never_fail_a_group_commit(db_url: str) -> None:
    seen = asyncio.run(_stream(db_url))
    answers = seen["answers"]
    one_site = answers[:CONCURRENT]
    mixed = answers[CONCURRENT : 2 * CONCURRENT]
    one_order = answers[2 * CONCURRENT : 3 * CONCURRENT]
    batches = answers[3 * CONCURRENT :]

    assert seen["health"]["status"] == "ok", seen["health"]
    assert seen["pool"] == 201  # the writer still serves everyone
    # One site for the key, every request answered with it.
    assert {r.status_code for r in one_site} == {201}
    assert len({r.json()["id"] for r in one_site}) == 1
    # One key, two bodies at once: one body wins, every request of the other is refused.
    winners = [r for r in mixed if r.status_code == 201]
    refused = [r for r in mixed if r.status_code != 201]
    assert winners and len({r.json()["id"] for r in winners}) == 1
    assert {r.status_code for r in refused} <= {422}
    assert all(r.json()["error"]["code"] == "idempotency_key_reused" for r in refused)
    winning_name = winners[0].json()["name"]
    assert len(winners) == CONCURRENT // 2 and all(
        r.json()["name"] == winning_name for r in winners
    )
    # One client_order_id: one order, every request answered with it (a repeat that met
    # the original still in flight is resolved by the core, and answered like it).
    assert {r.status_code for r in one_order} <= {200, 201}
    assert len({r.json()["id"] for r in one_order}) == 1
    assert all(r.status_code == 200 for r in batches)
    assert len(seen["sites"]) == 2

    again = asyncio.run(_after_restart(db_url, seen["headers"]))
    assert again["replay"].status_code == 201
    assert again["replay"].json() == one_site[0].json()
    assert again["sites"] == seen["sites"]
