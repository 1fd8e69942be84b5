"""A settled window's orders, fills and contracts leave the core (memory stays bounded)
and are read from the archive: every read answers as it did before, on SQLite and on
PostgreSQL, after a restart too, and for a database written before there was an archive."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete

from api.db.store import Store
from api.db.tables import ArchiveRow, ProjectionStateRow

from .conftest import Api, Trader, open_api

HOUR_S = 3600


def _trade_and_settle(api: Api) -> dict[str, Any]:
    """Trades in the first window (one fill partly, orders left resting until the gate),
    trades in a later one; then the clock past the first window's settlement."""
    symbols = api.market()
    first, later = symbols[0], symbols[3]
    buyer, seller = api.trader("lab"), api.trader("dc")
    _, pool = api.seller(seller, count=100)
    sells = [
        api.order(seller, first, "sell", "20", "3", client_order_id="s-1"),
        api.order(seller, first, "sell", "21", "2"),
    ]
    buys = [
        api.order(buyer, first, "buy", "20", "2", client_order_id="b-1"),
        api.order(buyer, first, "buy", "21", "3"),  # takes the rest at 20, then 21
        api.order(buyer, first, "buy", "18", "1"),  # rests until the gate closes
    ]
    api.order(seller, later, "sell", "20", "1")
    live_buy = api.order(buyer, later, "buy", "20", "1")
    api.order(buyer, later, "buy", "19", "1", client_order_id="b-later")
    api.advance(2 * HOUR_S)  # the first window delivers
    for c in api.walk("/v1/contracts", seller.headers, instrument=first):
        body = {"pool_id": pool, "device_seconds": 36_000}
        api.ok(
            api.post(f"/v1/contracts/{c['id']}/deliveries", json=body, headers=seller.headers), 201
        )
    ids = [o["id"] for o in sells + buys]
    before = {
        "orders": {i: _get(api, buyer, seller, f"/v1/orders/{i}") for i in ids},
        "buyer": _lists(api, buyer),
        "seller": _lists(api, seller),
        "trades": api.walk(f"/v1/instruments/{first}/trades"),
        "candles": api.ok(api.get(f"/v1/instruments/{first}/candles", params={"interval": "1m"})),
    }
    api.advance(3 * HOUR_S)  # past the window's end and grace: settled, retired
    return {
        "first": first,
        "ids": ids,
        "buyer": buyer,
        "seller": seller,
        "live_buy": live_buy,
        "before": before,
    }


def _get(api: Api, buyer: Trader, seller: Trader, url: str) -> Any:
    for trader in (buyer, seller):
        r = api.get(url, headers=trader.headers)
        if r.status_code == 200:
            return r.json()
    raise AssertionError(f"{url} found for neither")


def _lists(api: Api, trader: Trader) -> dict[str, Any]:
    h = trader.headers
    return {
        "orders": api.walk("/v1/orders", h),
        "orders_by_one": api.walk("/v1/orders", h, limit=1),
        "fills": api.walk("/v1/fills", h),
        "fills_by_one": api.walk("/v1/fills", h, limit=1),
        "contracts": api.walk("/v1/contracts", h),
        "contracts_by_one": api.walk("/v1/contracts", h, limit=1),
        "filled": api.walk("/v1/orders", h, status="filled"),
    }


def _check_reads(api: Api, world: dict[str, Any]) -> None:
    core = api.client.app.state.context.service.core  # type: ignore[attr-defined]
    first, buyer, seller = world["first"], world["buyer"], world["seller"]
    assert not any(o.symbol == first for o in core.query.orders_of(buyer.id))  # retired
    assert not core.query.contracts_of(buyer.id) or all(
        c.symbol != first for c in core.query.contracts_of(buyer.id)
    )
    before = world["before"]
    for order_id, view in before["orders"].items():
        assert _get(api, buyer, seller, f"/v1/orders/{order_id}") == view
    assert api.walk(f"/v1/instruments/{first}/trades") == before["trades"]
    candles = api.ok(api.get(f"/v1/instruments/{first}/candles", params={"interval": "1m"}))
    assert candles == before["candles"] and candles["data"]
    for trader, name in ((buyer, "buyer"), (seller, "seller")):
        now = _lists(api, trader)
        for key in ("orders", "fills", "filled"):
            # The first window's records are final; later windows' may have moved on.
            mine = [x for x in now[key] if x["instrument"] == first]
            assert mine and mine == [x for x in before[name][key] if x["instrument"] == first]
            assert {x.get("id", x.get("trade_id")) for x in now[key]} >= {
                x.get("id", x.get("trade_id")) for x in before[name][key]
            }, (name, key)
            assert len(now[key]) > len(mine) or (key == "filled" and name == "seller")
        assert now["orders_by_one"] == now["orders"] and now["fills_by_one"] == now["fills"]
        assert now["contracts_by_one"] == now["contracts"]
        # Contracts moved on to settled: the same contracts, each in its final state.
        old = {c["id"]: c for c in before[name]["contracts"]}
        new = {c["id"]: c for c in now["contracts"]}
        assert old.keys() == new.keys()
        for cid, c in new.items():
            if c["instrument"] == first:
                assert c["state"] == "settled" and c["settlement"] is not None
                assert api.ok(api.get(f"/v1/contracts/{cid}", headers=trader.headers)) == c
            else:
                assert c["id"] == old[cid]["id"] and c["trade_id"] == old[cid]["trade_id"]
    # An archived order has ended: cancel and amend refuse it as any ended order.
    order_id = world["ids"][0]
    r = api.delete(f"/v1/orders/{order_id}", headers=seller.headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "order_not_open", r.text
    r = api.patch(f"/v1/orders/{order_id}", json={"quantity": "1"}, headers=seller.headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "order_not_open", r.text
    # Not another account's to see, nor to learn about.
    r = api.get(f"/v1/orders/{order_id}", headers=buyer.headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "order_not_found"
    r = api.delete(f"/v1/orders/{order_id}", headers=buyer.headers)
    assert r.status_code == 404
    # Its client_order_id is free again (an order of a settled window is no retry).
    live = [o["id"] for o in api.walk("/v1/orders", buyer.headers, status="open")]
    assert world["live_buy"]["id"] not in live  # filled at once
    assert any(o["client_order_id"] == "b-later" for o in api.walk("/v1/orders", buyer.headers))


def test_reads_of_a_settled_window_answer_from_the_archive(db_url: str) -> None:
    with open_api(db_url) as api:
        world = _trade_and_settle(api)
        _check_reads(api, world)
    with open_api(db_url) as again:  # a restart: replayed, nothing archived twice
        _check_reads(again, world)
        symbols = again.symbols()
        again.order(world["buyer"], symbols[-1], "buy", "19", "1", client_order_id="b-1")


def test_a_database_from_before_the_archive_is_archived_at_start_up(db_url: str) -> None:
    with open_api(db_url) as api:
        world = _trade_and_settle(api)
    store = Store(db_url)
    with store.engine.begin() as conn:  # as a database written before the archive
        conn.execute(delete(ArchiveRow))
        conn.execute(delete(ProjectionStateRow).where(ProjectionStateRow.name == "archive"))
    assert store.count("archive") == 0
    store.close()
    with open_api(db_url) as again:
        _check_reads(again, world)
        service = again.client.app.state.context.service  # type: ignore[attr-defined]
        assert service.store.projected_seq("archive") == service.store.projected_seq()
        assert service.store.count("archive") > 0
