"""PNG charts of a demo run (matplotlib, Agg backend, no pyplot global state).

* ``price_discovery.png``: per tier, every trade's price by delivery window against the
  competitive-equilibrium price band of that window;
* ``book_depth.png``: cumulative bids and asks of one instrument at one moment;
* ``forward_curve.png``: price per SCU by delivery window for the windows still listed
  when trading stopped, with best bid and ask;
* ``carbon_vs_price.png``: carbon intensity of the seller's site and hardware against the
  trade price per SCU.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure

from api.demo.scenario import TIERS
from api.demo.simulate import DemoResult

__all__ = ["write_charts"]

_PRICE = 10_000
_QTY = 1_000_000
_COLORS = {TIERS[0].code: "#1b7837", TIERS[1].code: "#2166ac", TIERS[2].code: "#b2182b"}


def _when(us: int) -> float:
    """Exchange microseconds -> matplotlib date number (days since 1970-01-01 UTC)."""
    return us / 86_400_000_000


def _utc(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def _cny(price_units: int | Fraction) -> float:
    return float(Fraction(price_units) / _PRICE)


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=110)
    return path


def price_discovery(result: DemoResult, path: Path) -> Path:
    fig = Figure(figsize=(12, 9), layout="constrained")
    axes = fig.subplots(len(TIERS), 1, sharex=True)
    scatter = None
    for ax, tier in zip(axes, TIERS, strict=True):
        windows = sorted(
            (w for w in result.windows if w.tier == tier.code and w.equilibrium.quantity),
            key=lambda w: w.window_start,
        )
        xs = [_when(w.window_start) for w in windows]
        low = [_cny(w.equilibrium.price_low or 0) for w in windows]
        high = [_cny(w.equilibrium.price_high or 0) for w in windows]
        ax.fill_between(
            xs,
            low,
            high,
            step="mid",
            color="#999999",
            alpha=0.35,
            label="competitive-equilibrium price band",
        )
        ax.step(
            xs,
            [(a + b) / 2 for a, b in zip(low, high, strict=True)],
            where="mid",
            color="#555555",
            lw=1,
            label="equilibrium price",
        )
        trades = [t for t in result.trades if t.tier == tier.code]
        if trades:
            scatter = ax.scatter(
                [_when(t.window_start) for t in trades],
                [_cny(t.price) for t in trades],
                s=[3 + 6 * t.quantity / _QTY for t in trades],
                c=[(t.window_start - t.time) / 3_600_000_000 for t in trades],
                cmap="viridis_r",
                vmin=1,
                vmax=12,
                alpha=0.55,
                linewidths=0,
                label="trades (size: quantity)",
            )
            vwap: dict[int, list[int]] = defaultdict(lambda: [0, 0])
            for t in trades:
                vwap[t.window_start][0] += t.price * t.quantity
                vwap[t.window_start][1] += t.quantity
            ks = sorted(vwap)
            ax.plot(
                [_when(k) for k in ks],
                [_cny(Fraction(*vwap[k])) for k in ks],
                color=_COLORS[tier.code],
                lw=1.4,
                label="VWAP per window",
            )
        ax.axvline(_when(result.end), color="black", ls=":", lw=1)
        ax.set_title(
            f"{tier.code} ({tier.precision}"
            + (f", min grade {tier.min_green_grade}" if tier.min_green_grade else "")
            + (f", roofline {tier.arithmetic_intensity} op/B" if tier.arithmetic_intensity else "")
            + ")",
            loc="left",
        )
        ax.set_ylabel("CNY per PF·h")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper left", fontsize=8, ncols=2)
    axes[-1].xaxis.set_major_formatter(
        DateFormatter("%m-%d %H:00", tz=UTC)  # type: ignore[no-untyped-call]
    )
    axes[-1].set_xlabel("delivery window (UTC); dotted line: trading stops")
    if scatter is not None:
        fig.colorbar(scatter, ax=list(axes), label="hours before delivery when traded", shrink=0.6)
    fig.suptitle("Price discovery: trade prices against the competitive-equilibrium band")
    return _save(fig, path)


def book_depth(result: DemoResult, path: Path) -> Path:
    fig = Figure(figsize=(10, 5.5), layout="constrained")
    ax = fig.add_subplot()
    depth = result.depth
    if depth is None:
        ax.text(0.5, 0.5, "no book snapshot in this run", ha="center", transform=ax.transAxes)
        return _save(fig, path)
    for levels, side, color in ((depth.bids, "bids", "#1a9850"), (depth.asks, "asks", "#d73027")):
        if not levels:
            continue
        prices = [_cny(p) for p, _ in levels]
        cumulative = []
        total = 0
        for _, q in levels:
            total += q
            cumulative.append(total / _QTY)
        ax.step(
            prices,
            cumulative,
            where="post",
            color=color,
            lw=2,
            label=f"{side} ({len(levels)} levels)",
        )
        ax.fill_between(prices, cumulative, step="post", color=color, alpha=0.2)
        ax.scatter(prices, cumulative, color=color, s=12, zorder=3)
    window = next((w for w in result.windows if w.symbol == depth.symbol), None)
    if window is not None and window.equilibrium.price_low is not None:
        ax.axvspan(
            _cny(window.equilibrium.price_low),
            _cny(window.equilibrium.price_high or window.equilibrium.price_low) + 0.02,
            color="#777777",
            alpha=0.3,
            label="competitive-equilibrium price",
        )
    if depth.reference is not None:
        ax.axvline(_cny(depth.reference), color="black", ls="--", lw=1, label="reference price")
    for edge in depth.band:
        ax.axvline(_cny(edge), color="#888888", ls=":", lw=1)
    ax.set_xlabel("price, CNY per PF·h (dotted: price band)")
    ax.set_ylabel("cumulative quantity, PF·h")
    ax.set_title(
        f"Book depth of {depth.symbol} at {_utc(depth.time):%Y-%m-%d %H:%M} UTC", loc="left"
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def forward_curve(result: DemoResult, path: Path) -> Path:
    fig = Figure(figsize=(11, 5.5), layout="constrained")
    ax = fig.add_subplot()
    ce = {w.symbol: w.equilibrium for w in result.windows}
    for tier in TIERS:
        points = [p for p in result.curves.get(tier.code, []) if p.price is not None]
        if not points:
            continue
        factor = result.scu_factor[tier.code]
        color = _COLORS[tier.code]
        xs = [_when(p.window_start) for p in points]
        ax.plot(
            xs,
            [_cny(Fraction(p.price or 0) / factor) for p in points],
            color=color,
            marker="o",
            ms=4,
            lw=1.6,
            label=f"{tier.code} curve",
        )
        for p, x in zip(points, xs, strict=True):
            if p.best_bid is not None and p.best_ask is not None:
                ax.vlines(
                    x,
                    _cny(p.best_bid / factor),
                    _cny(p.best_ask / factor),
                    color=color,
                    alpha=0.35,
                    lw=5,
                )
        eq = [(x, ce[p.symbol]) for p, x in zip(points, xs, strict=True) if p.symbol in ce]
        eq = [(x, e) for x, e in eq if e.price_low is not None]
        if eq:
            ax.plot(
                [x for x, _ in eq],
                [
                    _cny(Fraction((e.price_low or 0) + (e.price_high or 0), 2) / factor)
                    for _, e in eq
                ],
                color=color,
                ls="--",
                lw=1,
                alpha=0.8,
                label=f"{tier.code} equilibrium (values, costs)",
            )
    ax.xaxis.set_major_formatter(
        DateFormatter("%m-%d %H:00", tz=UTC)  # type: ignore[no-untyped-call]
    )
    ax.set_xlabel("delivery window (UTC)")
    ax.set_ylabel("CNY per SCU (1 PF·h fp16 dense)")
    ax.set_title(
        f"Forward curve when trading stopped ({_utc(result.end):%Y-%m-%d %H:%M} UTC):"
        " book mid, else last trade, else reference; bars span best bid to best ask",
        loc="left",
        fontsize=10,
    )
    ax.legend(fontsize=8, ncols=2)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def carbon_vs_price(result: DemoResult, path: Path) -> Path:
    fig = Figure(figsize=(10, 6), layout="constrained")
    ax = fig.add_subplot()
    groups: dict[tuple[str, str], list[tuple[float, float, int]]] = defaultdict(list)
    unknown = 0
    for t in result.trades:
        if t.seller_gco2_per_scu is None:
            unknown += 1
            continue
        per_scu = _cny(Fraction(t.price) / result.scu_factor[t.tier])
        groups[(t.tier, t.seller_site)].append((float(t.seller_gco2_per_scu), per_scu, t.quantity))
    for n, ((tier, site), pts) in enumerate(sorted(groups.items())):
        color = _COLORS[tier]
        ax.scatter(
            [x for x, _, _ in pts],
            [y for _, y, _ in pts],
            s=[4 + 20 * q / _QTY for _, _, q in pts],
            color=color,
            alpha=0.18,
            linewidths=0,
        )
        volume = sum(q for _, _, q in pts)
        avg = sum(y * q for _, y, q in pts) / volume
        ax.scatter([pts[0][0]], [avg], color=color, marker="D", s=70, edgecolors="black", zorder=4)
        ax.annotate(
            f"{site}\n{tier}",
            (pts[0][0], avg),
            textcoords="offset points",
            xytext=(10, -22 if n % 2 else 6),
            fontsize=7,
            bbox={"boxstyle": "round", "fc": "white", "alpha": 0.7, "lw": 0},
        )
    for spec in TIERS:
        ax.scatter([], [], color=_COLORS[spec.code], label=spec.code)
    ax.scatter(
        [], [], color="white", edgecolors="black", marker="D", label="volume-weighted average"
    )
    ax.set_xlabel("carbon intensity of the seller's site and hardware, gCO2 per SCU")
    ax.set_ylabel("trade price, CNY per SCU")
    note = f" ({unknown} trades without a TDP figure left out)" if unknown else ""
    ax.set_title("Carbon intensity against price" + note, loc="left")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def write_charts(result: DemoResult, out: Path) -> list[Path]:
    """Write the four charts into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    return [
        price_discovery(result, out / "price_discovery.png"),
        book_depth(result, out / "book_depth.png"),
        forward_curve(result, out / "forward_curve.png"),
        carbon_vs_price(result, out / "carbon_vs_price.png"),
    ]
