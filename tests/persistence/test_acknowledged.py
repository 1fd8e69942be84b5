"""Every 2xx answer survives a SIGKILL: a concurrent mixed stream through a real server.

Many clients at once send orders, batches, sites, pools and delivery reports, with
Idempotency-Keys and client_order_ids that repeat (with the same body and with another
one); the server is killed with SIGKILL mid-stream, restarted on the same database, and
every object that was answered 2xx must be there as answered, and every idempotent
answer must be replayed identically. The database then verifies offline (hash chain,
replay, every invariant: conservation of money included). SQLite and PostgreSQL.

The seed is random per run and shown on failure; ``SUANLI_KILL_SEED`` replays one.
"""

from __future__ import annotations

import asyncio
import os
import random
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from api.cli import app as cli
from tests.api.conftest import GPU_CLASS, H100, SITE
from tests.api.conftest import TIER_BODY as TIER

from .server import ADMIN, Server

CLIENTS = 12
#: Answers the stream has before the kill may come.
MIN_ORDERS, MIN_KEYED = 60, 15


@dataclass
class Answers:
    """Every 2xx answer of the stream, by kind."""

    orders: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    keyed: list[tuple[str, dict[str, str], dict[str, Any], int, Any]] = field(default_factory=list)
    deliveries: dict[int, Decimal] = field(default_factory=dict)  # contract -> max delivered
    refused_reuse: int = 0


def _ok(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    return response.json()


def _set_up(base: str) -> dict[str, Any]:
    """A tier, a buyer and a seller with a pool, and contracts delivering now."""
    with httpx.Client(base_url=base, timeout=30) as c:
        _ok(c.post("/v1/admin/gpu-classes", json=GPU_CLASS, headers=ADMIN))
        _ok(c.post("/v1/admin/tiers", json=TIER, headers=ADMIN))
        traders = []
        for name in ("buyer", "seller"):
            t = _ok(c.post("/v1/admin/accounts", json={"name": name}, headers=ADMIN))
            url = f"/v1/admin/accounts/{t['id']}/deposits"
            _ok(c.post(url, json={"amount": "10000000"}, headers=ADMIN))
            traders.append({"Authorization": f"Bearer {t['api_key']}"})
        buyer, seller = traders
        site = _ok(c.post("/v1/sites", json=SITE, headers=seller))
        pool = _ok(
            c.post(
                f"/v1/sites/{site['id']}/pools",
                json={"hardware_id": H100, "count": 50},
                headers=seller,
            )
        )
        symbols = [i["symbol"] for i in _ok(c.get("/v1/instruments"), 200)["data"]]
        for _ in range(4):
            sell = {"instrument": symbols[0], "side": "sell", "price": "20", "quantity": "1"}
            _ok(c.post("/v1/orders", json=sell, headers=seller))
            buy = {"instrument": symbols[0], "side": "buy", "price": "20", "quantity": "1"}
            _ok(c.post("/v1/orders", json=buy, headers=buyer))
        _ok(c.post("/v1/admin/clock", json={"advance_seconds": 9000}, headers=ADMIN), 200)
        contracts = [x["id"] for x in _ok(c.get("/v1/contracts", headers=seller), 200)["data"]]
        return {
            "buyer": buyer,
            "seller": seller,
            "site": site["id"],
            "pool": pool["id"],
            "contracts": contracts,
            "symbols": [s for s in symbols if s != symbols[0]][1:],
        }


async def _client(
    n: int, base: str, world: dict[str, Any], rng: random.Random, seen: Answers
) -> None:
    """One client's stream, until the server goes away."""
    buyer, seller = world["buyer"], world["seller"]
    symbols = world["symbols"]
    keys_used: list[tuple[str, dict[str, str], str, dict[str, Any]]] = []
    async with httpx.AsyncClient(base_url=base, timeout=10) as c:
        for i in range(10_000):
            kind = rng.choice(
                ["order", "order", "batch", "site", "pool", "delivery", "repeat", "burst"]
            )
            side, who = rng.choice([("buy", buyer), ("sell", seller)])
            price = "19" if side == "buy" else "21"  # never crossing: orders rest
            order = {
                "instrument": rng.choice(symbols),
                "side": side,
                "price": price,
                "quantity": "0.1",
                "client_order_id": f"c{n}-{i}",
            }
            try:
                if kind == "order":
                    r = await c.post("/v1/orders", json=order, headers=who)
                    if r.status_code == 201:
                        seen.orders.append((who, r.json()))
                elif kind == "batch":
                    orders = [{**order, "client_order_id": f"c{n}-{i}-{j}"} for j in range(10)]
                    r = await c.post("/v1/orders/batch", json={"orders": orders}, headers=who)
                    if r.status_code == 200:
                        seen.orders.extend(
                            (who, x) for x in r.json()["results"] if "error" not in x
                        )
                elif kind in ("site", "pool", "delivery"):
                    if kind == "site":
                        url, body = "/v1/sites", {**SITE, "name": f"s{n}-{i}"}
                    elif kind == "pool":
                        url = f"/v1/sites/{world['site']}/pools"
                        body = {"hardware_id": H100, "count": 1}
                    else:
                        url = f"/v1/contracts/{rng.choice(world['contracts'])}/deliveries"
                        body = {"pool_id": world["pool"], "device_seconds": 1}
                    key = f"k{n}-{i}"
                    headers = {**seller, "Idempotency-Key": key}
                    r = await c.post(url, json=body, headers=headers)
                    if r.status_code == 201:
                        seen.keyed.append((url, headers, body, 201, r.json()))
                        keys_used.append((url, headers, key, body))
                        if kind == "delivery":
                            contract = r.json()
                            seen.deliveries[contract["id"]] = max(
                                seen.deliveries.get(contract["id"], Decimal(0)),
                                Decimal(contract["delivered_quantity"]),
                            )
                elif kind == "burst":  # one new key sent three times at once
                    body = {**SITE, "name": f"b{n}-{i}"}
                    headers = {**seller, "Idempotency-Key": f"b{n}-{i}"}
                    burst = await asyncio.gather(
                        *(c.post("/v1/sites", json=body, headers=headers) for _ in range(3)),
                        return_exceptions=True,
                    )
                    for r in burst:
                        if isinstance(r, httpx.Response) and r.status_code == 201:
                            seen.keyed.append(("/v1/sites", headers, body, 201, r.json()))
                    if any(isinstance(r, BaseException) for r in burst):
                        return  # killed
                elif keys_used:  # a key again: the same body, or another one
                    url, headers, key, body = rng.choice(keys_used)
                    if rng.random() < 0.5:
                        r = await c.post(url, json=body, headers=headers)
                        if r.status_code == 201:
                            seen.keyed.append((url, headers, body, 201, r.json()))
                    else:
                        other = {**body, **({"name": "other"} if "name" in body else {"count": 2})}
                        if "device_seconds" in body:
                            other = {**body, "device_seconds": 2}
                        r = await c.post(url, json=other, headers=headers)
                        if r.status_code == 422:
                            assert r.json()["error"]["code"] == "idempotency_key_reused"
                            seen.refused_reuse += 1
                        else:
                            assert r.status_code >= 500, r.text  # never accepted
            except httpx.TransportError:
                return  # killed


async def _stream(base: str, world: dict[str, Any], seed: int, server: Server) -> Answers:
    rng = random.Random(seed)
    seen = Answers()
    clients = [
        asyncio.create_task(_client(n, base, world, random.Random(rng.random()), seen))
        for n in range(CLIENTS)
    ]
    # Killed once the stream is well under way, at a random moment after that.
    for _ in range(600):
        if len(seen.orders) >= MIN_ORDERS and len(seen.keyed) >= MIN_KEYED:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(rng.random())
    await asyncio.get_running_loop().run_in_executor(None, server.kill)
    await asyncio.gather(*clients)
    return seen


def test_every_2xx_answer_survives_a_sigkill_mid_stream(db_url: str, tmp_path: Path) -> None:
    explicit = os.environ.get("SUANLI_KILL_SEED")
    seed = int(explicit) if explicit else random.SystemRandom().randrange(2**32)
    context = f"seed {seed} (SUANLI_KILL_SEED={seed} replays it)"
    log = tmp_path / "server.log"

    server = Server(db_url, log)
    world = _set_up(server.base)
    seen = asyncio.run(_stream(server.base, world, seed, server))
    assert len(seen.orders) >= MIN_ORDERS and len(seen.keyed) >= MIN_KEYED, context

    restarted = Server(db_url, log)
    try:
        with httpx.Client(base_url=restarted.base, timeout=30) as c:
            for who, answered in seen.orders:
                r = c.get(f"/v1/orders/{answered['id']}", headers=who)
                assert r.status_code == 200, (context, answered, r.text)
                got = r.json()
                for name in ("client_order_id", "instrument", "side", "price", "quantity"):
                    assert got[name] == answered[name], (context, name, answered, got)
            for url, headers, body, status, answered in seen.keyed:
                again = c.post(url, json=body, headers=headers)
                assert again.status_code == status, (context, url, again.text)
                assert again.json() == answered, (context, url)
            for contract_id, delivered in seen.deliveries.items():
                now = _ok(c.get(f"/v1/contracts/{contract_id}", headers=world["seller"]), 200)
                assert Decimal(now["delivered_quantity"]) >= delivered, (context, contract_id)
            assert _ok(c.get("/v1/health"), 200)["status"] == "ok"
    finally:
        restarted.stop()
    result = CliRunner().invoke(cli, ["db", "verify", "--database-url", db_url])
    assert result.exit_code == 0, (context, result.output)
