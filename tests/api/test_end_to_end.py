"""End to end through HTTP, on SQLite and PostgreSQL: listing, trading with partial fills,
gate closure, delivery reports (one short, one missing), settlement; every balance and the
exchange's fee total recomputed here, independently, to the minor unit (10**-10 CNY).

The rules (exchange/settlement.py, exchange/risk.py), restated in integers:
  notional n = price x quantity; fee(n, bps) = floor(n x bps / 10_000);
  a buy order holds L x Q + fee(L x Q, max(maker, taker)) for what is still open;
  a sell order holds penalty(P x Q) for what is still open (P its limit when resting);
  a trade moves n + fee(n, buyer's rate) to the buyer's escrow and penalty(n) to the
  seller's collateral; at settlement, with D delivered (capped at Q) and d = price x D:
  the seller gets d - fee(d, seller's rate), the exchange fee(d, buyer) + fee(d, seller),
  the buyer the rest of the escrow back, and penalty(price x (Q - D)) goes from the
  seller's collateral to the buyer, the rest of the collateral back to the seller.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from tests.api.conftest import H100, Api, Trader

PRICE = 10**4  # price units per CNY per PF·h
QTY = 10**6  # quantity units per PF·h
MONEY = 10**10  # money units per CNY
BPS = 10_000
DEPOSIT = "100000"

# Odd rates so that floors actually bite.
MAKER_BPS, TAKER_BPS, PENALTY_BPS = 3, 7, 1250


def units(text: str, scale: int) -> int:
    value = Decimal(text) * scale
    assert value == value.to_integral_value(), text
    return int(value)


def money(text: str) -> int:
    return units(text, MONEY)


def floor_bps(amount: int, bps: int) -> int:
    return amount * bps // BPS


@dataclass
class Expected:
    """One contract as computed here from the trade and the rules."""

    buyer: str
    seller: str
    price: int
    quantity: int
    buyer_bps: int
    seller_bps: int
    device_seconds: int = 0

    @property
    def notional(self) -> int:
        return self.price * self.quantity

    @property
    def escrow(self) -> int:
        return self.notional + floor_bps(self.notional, self.buyer_bps)

    @property
    def collateral(self) -> int:
        return floor_bps(self.notional, PENALTY_BPS)

    def delivered(self, rated_pf: Fraction) -> int:
        exact = Fraction(self.device_seconds) * rated_pf / 3600
        return min(self.quantity, int(exact * QTY))

    def legs(self, rated_pf: Fraction) -> dict[str, int]:
        d = self.price * self.delivered(rated_pf)
        buyer_fee = floor_bps(d, self.buyer_bps)
        seller_fee = floor_bps(d, self.seller_bps)
        penalty = floor_bps(self.notional - d, PENALTY_BPS)
        return {
            "seller_paid": d - seller_fee,
            "fees": buyer_fee + seller_fee,
            "refunded": self.escrow - d - buyer_fee,
            "penalty": penalty,
            "collateral_return": self.collateral - penalty,
        }


def buy_hold(limit: str, quantity: str) -> int:
    n = units(limit, PRICE) * units(quantity, QTY)
    return n + floor_bps(n, max(MAKER_BPS, TAKER_BPS))


def sell_hold(price: str, quantity: str) -> int:
    return floor_bps(units(price, PRICE) * units(quantity, QTY), PENALTY_BPS)


def balances(api: Api, trader: Trader) -> dict[str, int]:
    view = api.account(trader)
    return {k: money(view[k]) for k in ("available", "held", "escrow", "collateral")}


def fill_summary(order: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(f["price"], f["quantity"], f["liquidity"]) for f in order["fills"]]


def test_trade_deliver_settle_balances_to_the_minor_unit(api_db: Api) -> None:
    api = api_db
    symbols = api.market(
        maker_fee_bps=MAKER_BPS, taker_fee_bps=TAKER_BPS, shortfall_penalty_pct="12.5"
    )
    assert len(symbols) == 5
    sym = symbols[0]
    inst = api.ok(api.get(f"/v1/instruments/{sym}"))
    assert (inst["state"], inst["delivery_start"]) == ("open", "2026-11-22T02:00:00Z")

    s1, s2 = api.trader("seller-1", DEPOSIT), api.trader("seller-2", DEPOSIT)
    b1, b2 = api.trader("buyer-1", DEPOSIT), api.trader("buyer-2", DEPOSIT)
    _, pool1 = api.seller(s1, count=10)
    _, pool2 = api.seller(s2, count=8)
    hardware = {m["id"]: m for m in api.walk("/v1/hardware")}
    rated_pf = Fraction(Decimal(hardware[H100]["peak_tflops"]["fp16"])) / 1000

    capacity = api.ok(api.get("/v1/capacity", params={"instrument": sym}, headers=s1.headers))
    assert Fraction(Decimal(capacity["total"])) == int(rated_pf * 10 * QTY) / Fraction(QTY)

    # ---- trading: resting orders, a taker sweeping two levels, partial fills.
    o1 = api.order(s1, sym, "sell", "20.00", "4")
    o2 = api.order(s2, sym, "sell", "19.50", "3")
    o3 = api.order(b1, sym, "buy", "20.10", "5")
    assert o3["status"] == "filled"
    assert fill_summary(o3) == [("19.5", "3", "taker"), ("20", "2", "taker")]
    o4 = api.order(b2, sym, "buy", "19.80", "3")
    assert o4["status"] == "open"
    o5 = api.order(s2, sym, "sell", "19.70", "1.5")
    assert o5["status"] == "filled"
    assert fill_summary(o5) == [("19.8", "1.5", "taker")]
    o6 = api.order(b1, sym, "buy", "20.00", "1.2")
    assert fill_summary(o6) == [("20", "1.2", "taker")]

    mine = {o["id"]: o for o in api.walk("/v1/orders", s1.headers)}
    assert mine[o1["id"]]["status"] == "partially_filled"
    assert (mine[o1["id"]]["filled_quantity"], mine[o1["id"]]["remaining_quantity"]) == (
        "3.2",
        "0.8",
    )
    theirs = {o["id"]: o for o in api.walk("/v1/orders", b2.headers)}
    assert theirs[o4["id"]]["status"] == "partially_filled"
    assert o2["id"] not in theirs  # b2 does not see s2's order

    p = lambda text: units(text, PRICE)  # noqa: E731
    q = lambda text: units(text, QTY)  # noqa: E731
    expected = {
        # seller s2 rests, b1 takes: b1 pays the taker rate, s2 the maker rate
        "c1": Expected("buyer-1", "seller-2", p("19.50"), q("3"), TAKER_BPS, MAKER_BPS),
        "c2": Expected("buyer-1", "seller-1", p("20.00"), q("2"), TAKER_BPS, MAKER_BPS),
        # b2 rests, s2 takes
        "c3": Expected("buyer-2", "seller-2", p("19.80"), q("1.5"), MAKER_BPS, TAKER_BPS),
        "c4": Expected("buyer-1", "seller-1", p("20.00"), q("1.2"), TAKER_BPS, MAKER_BPS),
    }
    contracts = sorted(
        api.walk("/v1/contracts", b1.headers) + api.walk("/v1/contracts", b2.headers),
        key=lambda c: c["id"],
    )
    assert len(contracts) == 4
    by_name = dict(zip(("c1", "c2", "c3", "c4"), contracts, strict=True))
    for name, c in by_name.items():
        e = expected[name]
        assert (units(c["price"], PRICE), units(c["quantity"], QTY)) == (e.price, e.quantity)
        assert money(c["escrow"]) == e.escrow, name
        assert c["fee_bps"] == e.buyer_bps

    traders = {t.name: t for t in (s1, s2, b1, b2)}
    deposit = money(DEPOSIT)

    def escrow_of(name: str) -> int:
        return sum(e.escrow for e in expected.values() if e.buyer == name)

    def collateral_of(name: str) -> int:
        return sum(e.collateral for e in expected.values() if e.seller == name)

    open_holds = {
        "buyer-1": 0,
        "buyer-2": buy_hold("19.80", "1.5"),  # the rest of o4
        "seller-1": sell_hold("20.00", "0.8"),  # the rest of o1
        "seller-2": 0,
    }
    for name, t in traders.items():
        held, esc, col = open_holds[name], escrow_of(name), collateral_of(name)
        assert balances(api, t) == {
            "available": deposit - held - esc - col,
            "held": held,
            "escrow": esc,
            "collateral": col,
        }, name

    # ---- gate closure cancels the resting remainders (docs/matching.md) and releases holds.
    api.advance(3600)
    assert api.ok(api.get(f"/v1/instruments/{sym}"))["state"] == "closed"
    assert api.ok(api.get(f"/v1/orders/{o1['id']}", headers=s1.headers))["status"] == "cancelled"
    for name, t in traders.items():
        assert balances(api, t)["held"] == 0, name

    # ---- delivery: s1 delivers c2 in full and c4 short; s2 delivers c1 in two reports and
    # never reports c3.
    api.advance(5400)  # 02:30, inside the delivery window
    assert api.ok(api.get(f"/v1/instruments/{sym}"))["state"] == "delivering"
    reports = [
        ("c2", s1, pool1, 7_300),
        ("c4", s1, pool1, 3_001),
        ("c1", s2, pool2, 5_000),
        ("c1", s2, pool2, 6_000),
    ]
    for name, seller, pool, ds in reports:
        cid = by_name[name]["id"]
        body = {"pool_id": pool, "device_seconds": ds}
        view = api.ok(
            api.post(f"/v1/contracts/{cid}/deliveries", json=body, headers=seller.headers), 201
        )
        expected[name].device_seconds += ds
        assert view["delivered_device_seconds"] == expected[name].device_seconds
        assert units(view["delivered_quantity"], QTY) == expected[name].delivered(rated_pf)
    assert expected["c4"].delivered(rated_pf) < expected["c4"].quantity  # short
    assert expected["c1"].delivered(rated_pf) == expected["c1"].quantity  # capped
    assert expected["c3"].delivered(rated_pf) == 0  # never reported

    # ---- settlement after the window and the reporting grace.
    api.advance(7200)  # 04:30
    assert api.ok(api.get(f"/v1/instruments/{sym}"))["state"] == "settled"
    fee_total = 0
    final = dict.fromkeys(traders, deposit)
    for name, e in expected.items():
        legs = e.legs(rated_pf)
        view = api.ok(
            api.get(f"/v1/contracts/{by_name[name]['id']}", headers=traders[e.buyer].headers)
        )
        assert view["state"] == "settled"
        got = {k: money(v) for k, v in view["settlement"].items()}
        want = {k: legs[k] for k in ("seller_paid", "fees", "refunded", "penalty")}
        assert got == want, name
        fee_total += legs["fees"]
        delivered_notional = e.price * e.delivered(rated_pf)
        buyer_fee = floor_bps(delivered_notional, e.buyer_bps)
        final[e.buyer] += -delivered_notional - buyer_fee + legs["penalty"]
        final[e.seller] += legs["seller_paid"] - legs["penalty"]
    assert fee_total > 0
    for name, t in traders.items():
        assert balances(api, t) == {
            "available": final[name],
            "held": 0,
            "escrow": 0,
            "collateral": 0,
        }, name
        # the ledger's cross-owner movements add up to the balance
        net = sum(money(entry["net"]) for entry in api.walk("/v1/account/ledger", t.headers))
        assert net == final[name], name
    # conservation: what the traders lost is exactly the exchange's fees
    assert sum(final.values()) + fee_total == 4 * deposit
    # a settled contract takes no more reports
    late = api.post(
        f"/v1/contracts/{by_name['c3']['id']}/deliveries",
        json={"pool_id": pool2, "device_seconds": 1},
        headers=s2.headers,
    )
    assert late.status_code == 422
    assert late.json()["error"]["code"] == "contract_settled"


def test_health_reports_how_far_the_projections_reach(api_db: Api) -> None:
    """The acknowledgement commits the operation log; the projection tables follow, and
    a read of one (the account ledger) waits for them. /v1/health shows both counts."""
    api = api_db
    symbols = api.market()
    buyer = api.trader("lab")
    api.order(buyer, symbols[-1], "buy", "19", "1")
    health = api.ok(api.get("/v1/health"))
    assert 0 < health["projected_operations"] <= health["operations"]
    ledger = api.ok(api.get("/v1/account/ledger", headers=buyer.headers))
    assert ledger["data"], "the deposit and the order's hold are in the journal"
    health = api.ok(api.get("/v1/health"))
    assert health["projected_operations"] == health["operations"]
