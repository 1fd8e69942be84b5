"""The demo's report: every number as a JSON document, and the same as rich tables.

:func:`summarize` turns a :class:`~api.demo.simulate.DemoResult` into plain data (strings
for every decimal, computed exactly from integer minor units and fractions), so the same
seed gives the same JSON byte for byte. :func:`render` draws the terminal tables from that
document and nothing else, so the text is as deterministic as the JSON.
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from api.demo.scenario import TIERS
from api.demo.simulate import DemoResult
from pricing import IndexValue

__all__ = ["dumps", "render", "render_text", "summarize"]

_PRICE = 10_000  # price units per CNY
_QTY = 1_000_000  # quantity units per PF·h
_MONEY = 10**10  # money units per CNY


def _dec(value: Fraction | int, places: int) -> str:
    """An exact number as a decimal string, rounded half-even to ``places``."""
    f = Fraction(value)
    d = Decimal(f.numerator) / Decimal(f.denominator)
    return str(d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN))


def _cny(money: Fraction | int) -> str:
    return _dec(Fraction(money, _MONEY), 2)


def _price(price_units: Fraction | int | None) -> str | None:
    return None if price_units is None else _dec(Fraction(price_units, _PRICE), 4)


def _qty(quantity_units: Fraction | int) -> str:
    return _dec(Fraction(quantity_units, _QTY), 1)


def _pct(part: Fraction | int, whole: Fraction | int) -> str | None:
    return None if not whole else _dec(Fraction(part) * 100 / Fraction(whole), 1)


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).strftime("%Y-%m-%dT%H:%MZ")


def _index(value: IndexValue | None, per_scu: bool) -> dict[str, Any] | None:
    if value is None:
        return None
    return {
        "value": _price(value.value),
        "unit": "CNY per SCU" if per_scu else "CNY per PF·h",
        "volume": _qty(value.volume),
        "trades_used": value.trades_used,
        "trades_dropped": value.trades_dropped,
        "low": _price(value.low),
        "high": _price(value.high),
    }


def summarize(result: DemoResult) -> dict[str, Any]:
    """Every figure of the report as JSON-ready data (deterministic for a seed)."""
    factor = result.scu_factor
    trades = result.trades
    scenario = result.scenario

    # ---- volume and VWAP per tier
    tiers: list[dict[str, Any]] = []
    for tier in TIERS:
        mine = [t for t in trades if t.tier == tier.code]
        volume = sum(t.quantity for t in mine)
        notional = sum(t.price * t.quantity for t in mine)
        delivered = sum(t.delivered for t in mine)
        vwap = Fraction(notional, volume) if volume else None
        tiers.append(
            {
                "tier": tier.code,
                "trades": len(mine),
                "volume_pf_h": _qty(volume),
                "volume_scu": _qty(volume * factor[tier.code]),
                "notional_cny": _cny(notional),
                "vwap_per_pf_h": _price(vwap),
                "vwap_per_scu": _price(vwap / factor[tier.code]) if vwap is not None else None,
                "delivered_pct": _pct(delivered, volume),
            }
        )

    # ---- green premium: price per SCU by the seller site's grade
    by_grade: dict[str, list[Fraction]] = defaultdict(lambda: [Fraction(0), Fraction(0)])
    by_grade_tier: dict[tuple[str, str], list[Fraction]] = defaultdict(
        lambda: [Fraction(0), Fraction(0)]
    )
    tier_vwap = {
        row["tier"]: Fraction(
            sum(t.price * t.quantity for t in trades if t.tier == row["tier"]),
            sum(t.quantity for t in trades if t.tier == row["tier"]),
        )
        for row in tiers
        if row["trades"]
    }
    relative: dict[str, list[Fraction]] = defaultdict(lambda: [Fraction(0), Fraction(0)])
    for t in trades:
        scu = t.quantity * factor[t.tier]
        cost = Fraction(t.price) / factor[t.tier] * scu
        for acc in (by_grade[t.seller_grade], by_grade_tier[(t.seller_grade, t.tier)]):
            acc[0] += scu
            acc[1] += cost
        rel = relative[t.seller_grade]
        rel[0] += scu
        rel[1] += scu * Fraction(t.price) / tier_vwap[t.tier]
    total_scu = sum((v[0] for v in by_grade.values()), Fraction(0))
    overall = sum((v[1] for v in by_grade.values()), Fraction(0)) / total_scu if total_scu else None
    green = []
    for grade in sorted(by_grade, reverse=True):
        scu, cost = by_grade[grade]
        avg = cost / scu
        row: dict[str, Any] = {
            "grade": grade,
            "volume_scu": _qty(scu),
            "avg_per_scu": _price(avg),
            "premium_pct": _dec((avg / overall - 1) * 100, 1) if overall else None,
            # Against each trade's own tier VWAP: free of the tier mix.
            "premium_vs_tier_pct": _dec((relative[grade][1] / relative[grade][0] - 1) * 100, 1),
            "by_tier": {},
        }
        for tier in TIERS:
            cell = by_grade_tier.get((grade, tier.code))
            row["by_tier"][tier.code] = _price(cell[1] / cell[0]) if cell else None
        green.append(row)

    # ---- settlement, from the contracts
    settlement = {
        "contracts": len(trades),
        "notional_cny": _cny(sum(t.price * t.quantity for t in trades)),
        "delivered_pct": _pct(sum(t.delivered for t in trades), sum(t.quantity for t in trades)),
        "paid_to_sellers_cny": _cny(sum(t.seller_paid for t in trades)),
        "refunded_to_buyers_cny": _cny(sum(t.refunded for t in trades)),
        "penalties_cny": _cny(sum(t.penalty for t in trades)),
        "fees_cny": _cny(sum(t.fees for t in trades)),
        "fee_account_cny": _cny(result.fees_account),
        "short_contracts": sum(1 for t in trades if t.delivered < t.quantity),
        "unsettled_contracts": result.open_contracts,
    }

    # ---- conservation
    expected = result.deposits - result.withdrawals
    conservation = {
        "invariants": result.invariants_message,
        "invariants_ok": result.invariants_ok,
        "deposits_cny": _cny(result.deposits),
        "withdrawals_cny": _cny(result.withdrawals),
        "deposits_minus_withdrawals_cny": _cny(expected),
        "sum_of_balances_cny": _cny(result.balances_total),
        "balances_match": result.balances_total == expected,
        "operations_submitted": result.operations,
        "operations_logged": result.operations_logged,
        "rejected": sum(result.rejections.values()),
        "state_hash": result.state_hash,
        "log_matches": result.operations_logged
        == result.operations - sum(result.rejections.values()),
    }

    # ---- allocative efficiency over the windows whose trading closed during the run
    complete = {w.symbol: w for w in result.windows if w.complete}
    realized: dict[str, int] = defaultdict(int)
    traded: dict[str, int] = defaultdict(int)
    losses = 0
    for t in trades:
        notional = t.price * t.quantity
        buyer_pays = notional + notional * t.buyer_fee_bps // 10_000
        seller_gets = notional - notional * t.seller_fee_bps // 10_000
        if buyer_pays > t.buyer_value * t.quantity or seller_gets < t.seller_cost * t.quantity:
            losses += 1
        if t.symbol in complete:
            realized[t.tier] += t.quantity * (t.buyer_value - t.seller_cost)
            traded[t.tier] += t.quantity
    efficiency_rows = []
    for tier in TIERS:
        ws = [w for w in complete.values() if w.tier == tier.code]
        best = sum(w.equilibrium.surplus for w in ws)
        ce_q = sum(w.equilibrium.quantity for w in ws)
        efficiency_rows.append(
            {
                "tier": tier.code,
                "windows": len(ws),
                "max_surplus_cny": _cny(best),
                "realized_surplus_cny": _cny(realized[tier.code]),
                "efficiency_pct": _pct(realized[tier.code], best),
                "equilibrium_volume_pf_h": _qty(ce_q),
                "traded_volume_pf_h": _qty(traded[tier.code]),
            }
        )
    best_all = sum(w.equilibrium.surplus for w in complete.values())
    real_all = sum(realized.values())
    efficiency = {
        "windows": len(complete),
        "max_surplus_cny": _cny(best_all),
        "realized_surplus_cny": _cny(real_all),
        "efficiency": _dec(Fraction(real_all, best_all), 4) if best_all else None,
        "efficiency_pct": _pct(real_all, best_all),
        "by_tier": efficiency_rows,
        "fills_at_a_loss": losses,
    }

    # ---- forward curve at the end of trading
    curve_rows: dict[int, dict[str, Any]] = {}
    for code, points in result.curves.items():
        for p in points:
            row = curve_rows.setdefault(p.window_start, {"window": _iso(p.window_start)})
            row[code] = {
                "price": _price(p.price),
                "source": p.source.value,
                "bid": _price(p.best_bid),
                "ask": _price(p.best_ask),
            }
    depth = result.depth
    return {
        "run": {
            "seed": result.seed,
            "days": result.days,
            "buyers": len(scenario.buyers),
            "sellers": len(scenario.sellers),
            "market_makers": len(scenario.makers),
            "start": _iso(result.start),
            "end_of_trading": _iso(result.end),
            "all_settled_at": _iso(result.settled_at),
            "step_minutes": result.step_minutes,
            "orders_placed": result.orders_placed,
            "delivery_reports": result.deliveries_reported,
            "trades": len(trades),
            "rejections": dict(sorted(result.rejections.items())),
        },
        "tiers": result.tier_info,
        "sites": [
            {
                "site": e.site,
                "region": e.region,
                "hardware": e.hardware,
                "grade": e.grade,
                "gco2_per_scu": _dec(e.gco2_per_scu, 1) if e.gco2_per_scu is not None else None,
                "tiers": e.tiers,
            }
            for e in result.eligibility
        ],
        "sellers": [
            {
                "name": s.name,
                "site": s.site.name,
                "devices": s.devices,
                "reports_pct": s.delivery_pct,
            }
            for s in scenario.sellers
        ],
        "volume": tiers,
        "indices": {
            "as_of": _iso(result.end),
            "tiers": {k: _index(v, False) for k, v in result.tier_indices.items()},
            "families": {k: _index(v, True) for k, v in result.family_indices.items()},
        },
        "forward_curve": {
            "as_of": _iso(result.end),
            "windows": [curve_rows[k] for k in sorted(curve_rows)],
        },
        "green_premium": {"overall_per_scu": _price(overall), "grades": green},
        "settlement": settlement,
        "conservation": conservation,
        "efficiency": efficiency,
        "book_depth": None
        if depth is None
        else {
            "instrument": depth.symbol,
            "at": _iso(depth.time),
            "levels": [len(depth.bids), len(depth.asks)],
        },
    }


def dumps(summary: dict[str, Any]) -> str:
    return json.dumps(summary, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


# ---------------------------------------------------------------------- rendering
def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold")
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i == 0 else "right")
    return table


def _s(value: Any) -> str:
    return "-" if value is None else str(value)


def render(summary: dict[str, Any]) -> Group:
    """The report as rich renderables, built from the summary alone."""
    run = summary["run"]
    parts: list[Any] = []
    head = Text()
    head.append("suanli demo market", style="bold")
    head.append(
        f"  seed {run['seed']} · {run['days']} day(s) from {run['start']} · "
        f"{run['buyers']} buyers, {run['sellers']} sellers, {run['market_makers']} market "
        f"makers · {run['step_minutes']}-minute steps\n"
        f"{run['orders_placed']} orders, {run['trades']} trades, "
        f"{run['delivery_reports']} delivery reports; trading ended {run['end_of_trading']}, "
        f"all contracts settled by {run['all_settled_at']}; rejected: "
        + (", ".join(f"{k} {v}" for k, v in run["rejections"].items()) or "none")
    )
    parts.append(Panel(head))

    codes = [t["tier"] for t in summary["tiers"]]
    t = _table("Tiers", "tier", "precision", "GPU class", "min grade", "roofline", "SCU per PF·h")
    for row in summary["tiers"]:
        t.add_row(
            row["tier"],
            row["precision"],
            row["class"],
            row["min_grade"],
            row["roofline"],
            _dec(Fraction(row["scu_per_pf_hour"]), 4),
        )
    parts.append(t)

    t = _table(
        "Sites: green grade, carbon and what each pool qualifies for (rated PF per "
        "device, else why not)",
        "site",
        "region",
        "hardware",
        "grade",
        "gCO2/SCU",
        *codes,
    )
    for row in summary["sites"]:
        t.add_row(
            row["site"],
            row["region"],
            row["hardware"],
            row["grade"],
            _s(row["gco2_per_scu"]),
            *(row["tiers"][c] for c in codes),
        )
    parts.append(t)

    t = _table(
        "Volume and VWAP per tier",
        "tier",
        "trades",
        "PF·h",
        "SCU",
        "notional CNY",
        "VWAP CNY/PF·h",
        "VWAP CNY/SCU",
        "delivered %",
    )
    for row in summary["volume"]:
        t.add_row(
            row["tier"],
            str(row["trades"]),
            row["volume_pf_h"],
            row["volume_scu"],
            row["notional_cny"],
            _s(row["vwap_per_pf_h"]),
            _s(row["vwap_per_scu"]),
            _s(row["delivered_pct"]),
        )
    parts.append(t)

    idx = summary["indices"]
    t = _table(
        f"Indices (trailing 24 h trimmed VWAP at {idx['as_of']})",
        "index",
        "value",
        "unit",
        "volume",
        "trades used",
        "dropped",
        "low",
        "high",
    )
    for group in ("tiers", "families"):
        for name, v in idx[group].items():
            label = name if group == "tiers" else f"SCU index, {name} family"
            if v is None:
                t.add_row(label, "-", "", "", "", "", "", "")
                continue
            t.add_row(
                label,
                v["value"],
                v["unit"],
                v["volume"],
                str(v["trades_used"]),
                str(v["trades_dropped"]),
                v["low"],
                v["high"],
            )
    parts.append(t)

    fc = summary["forward_curve"]
    t = _table(
        f"Forward curve of the windows still listed at {fc['as_of']} (CNY per PF·h; "
        "m = book mid, l = last trade, r = reference)",
        "delivery window",
        *codes,
    )
    for row in fc["windows"]:
        cells = []
        for c in codes:
            p = row.get(c)
            cells.append(
                "-" if p is None or p["price"] is None else f"{p['price']} {p['source'][0]}"
            )
        t.add_row(row["window"], *cells)
    parts.append(t)

    gp = summary["green_premium"]
    t = _table(
        f"Green premium: average price per SCU by the seller site's grade (overall "
        f"{_s(gp['overall_per_scu'])} CNY/SCU)",
        "grade",
        "SCU",
        "CNY/SCU",
        "vs overall %",
        "vs own tier %",
        *(f"{c} CNY/SCU" for c in codes),
    )
    for row in gp["grades"]:
        t.add_row(
            row["grade"],
            row["volume_scu"],
            row["avg_per_scu"],
            _s(row["premium_pct"]),
            _s(row["premium_vs_tier_pct"]),
            *(_s(row["by_tier"][c]) for c in codes),
        )
    parts.append(t)

    st = summary["settlement"]
    t = _table("Settlement (from the contracts)", "item", "value")
    for label, key in (
        ("contracts", "contracts"),
        ("notional CNY", "notional_cny"),
        ("delivered %", "delivered_pct"),
        ("paid to sellers CNY", "paid_to_sellers_cny"),
        ("refunded to buyers CNY", "refunded_to_buyers_cny"),
        ("shortfall penalties to buyers CNY", "penalties_cny"),
        ("fees CNY", "fees_cny"),
        ("exchange fee account CNY", "fee_account_cny"),
        ("contracts delivered short", "short_contracts"),
        ("contracts not settled", "unsettled_contracts"),
    ):
        t.add_row(label, _s(st[key]))
    parts.append(t)

    cs = summary["conservation"]
    t = _table("Conservation", "check", "value")
    t.add_row("invariants", cs["invariants"])
    t.add_row(
        "deposits - withdrawals CNY",
        f"{cs['deposits_cny']} - {cs['withdrawals_cny']} = {cs['deposits_minus_withdrawals_cny']}",
    )
    t.add_row("sum of all balances CNY", cs["sum_of_balances_cny"])
    t.add_row("balances == deposits - withdrawals", "yes" if cs["balances_match"] else "NO")
    t.add_row(
        "operations logged / accepted",
        f"{cs['operations_logged']} / {cs['operations_submitted'] - cs['rejected']}"
        + ("" if cs["log_matches"] else "  MISMATCH"),
    )
    t.add_row("core state hash (SHA-256)", cs["state_hash"][:16] + "…")
    parts.append(t)

    ef = summary["efficiency"]
    t = _table(
        f"Allocative efficiency over the {ef['windows']} windows whose trading closed "
        "(realized surplus / competitive-equilibrium surplus)",
        "tier",
        "windows",
        "max surplus CNY",
        "realized CNY",
        "efficiency %",
        "CE PF·h",
        "traded PF·h",
    )
    for row in ef["by_tier"]:
        t.add_row(
            row["tier"],
            str(row["windows"]),
            row["max_surplus_cny"],
            row["realized_surplus_cny"],
            _s(row["efficiency_pct"]),
            row["equilibrium_volume_pf_h"],
            row["traded_volume_pf_h"],
        )
    t.add_row(
        "all",
        str(ef["windows"]),
        ef["max_surplus_cny"],
        ef["realized_surplus_cny"],
        _s(ef["efficiency_pct"]),
        "",
        "",
        style="bold",
    )
    parts.append(t)
    parts.append(
        Text(
            f"fills at a loss (net of fees, against the trader's value or cost): "
            f"{ef['fills_at_a_loss']}"
        )
    )
    return Group(*parts)


def render_text(summary: dict[str, Any], width: int = 140) -> str:
    """The report as plain text (no colour), for report.txt and for tests."""
    console = Console(
        record=True, width=width, color_system=None, force_terminal=False, file=io.StringIO()
    )
    console.print(render(summary))
    return console.export_text()
