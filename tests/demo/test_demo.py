"""``suanli demo``: a small run end to end, deterministic, conserving money, efficient."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from api.db.store import Store
from api.demo.agents import buyer_role, maker_role, seller_role
from api.demo.equilibrium import equilibrium
from api.demo.report import summarize
from api.demo.runner import DemoOutput, fresh_sqlite_url, run
from api.demo.simulate import DemoError, run_demo
from api.service import ExchangeService
from exchange.products import HOUR_US

SEED = 11
SMALL = {"days": 1, "traders": 6}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoOutput:
    return run(tmp_path_factory.mktemp("demo"), seed=SEED, **SMALL)


def test_small_demo_trades_delivers_and_settles(demo: DemoOutput) -> None:
    result, summary = demo.result, demo.summary
    assert len(result.trades) > 100
    assert {t.tier for t in result.trades} == {"FP16-TRN-3A", "FP8-TRN", "INT8-INF-AI80"}
    assert summary["settlement"]["unsettled_contracts"] == 0
    # Under-delivering sellers exist and pay penalties; others deliver in full.
    assert summary["settlement"]["short_contracts"] > 0
    assert summary["settlement"]["penalties_cny"] != "0.00"
    assert any(t.delivered == t.quantity for t in result.trades)
    assert result.depth is not None and (result.depth.bids or result.depth.asks)
    assert all(result.curves.values())


def test_tier_eligibility_follows_class_and_grade(demo: DemoOutput) -> None:
    sites = {row["site"]: row["tiers"] for row in demo.summary["sites"]}
    # H100 in Shanghai: grade 2A, below the fp16 tier's 3A floor.
    assert sites["Shanghai Lingang"]["FP16-TRN-3A"] == "green_grade_too_low"
    assert sites["Shanghai Lingang"]["FP8-TRN"].endswith("PF")
    # Ascend 910B (confirmed by the admin) in Ningxia on green power qualifies.
    assert sites["Ningxia Zhongwei"]["FP16-TRN-3A"].endswith("PF")
    # H20 is rated by the roofline for int8 inference (296 TOPS peak, 80 x 4 TB/s cap).
    assert sites["Inner Mongolia Ulanqab"]["INT8-INF-AI80"] == "0.2960 PF"
    assert sites["Inner Mongolia Ulanqab"]["FP16-TRN-3A"] == "not_in_gpu_class"
    assert sites["Shenzhen Qianhai"]["INT8-INF-AI80"] == "0.0806 PF"


def test_same_seed_same_report_other_seed_other_report(
    demo: DemoOutput, tmp_path: Path
) -> None:
    again = run(tmp_path / "again", seed=SEED, charts=False, **SMALL)
    assert again.summary == demo.summary
    assert again.text == demo.text
    assert (tmp_path / "again" / "report.json").read_bytes() == (
        demo.files[0].read_bytes()
    )
    other = run(tmp_path / "other", seed=SEED + 1, charts=False, **SMALL)
    assert other.summary != demo.summary
    assert other.text != demo.text


def test_conservation(demo: DemoOutput) -> None:
    c = demo.summary["conservation"]
    assert c["invariants_ok"], c["invariants"]
    assert c["balances_match"]
    assert c["sum_of_balances_cny"] == c["deposits_minus_withdrawals_cny"]
    assert c["withdrawals_cny"] != "0.00"
    assert c["log_matches"]


def test_the_log_replays_to_the_same_state(demo: DemoOutput) -> None:
    url = f"sqlite:///{demo.files[0].parent / 'suanli-demo.db'}"
    store = Store(url)
    try:
        service = ExchangeService(store, clock="simulated")
        assert service.core.state_hash() == demo.result.state_hash
        service.core.check()
    finally:
        store.close()


def test_the_demo_wants_a_fresh_database(demo: DemoOutput) -> None:
    url = f"sqlite:///{demo.files[0].parent / 'suanli-demo.db'}"
    with pytest.raises(DemoError, match="fresh"):
        run_demo(database_url=url, seed=SEED, **SMALL)


def test_efficiency_is_in_zero_one(demo: DemoOutput) -> None:
    eff = demo.summary["efficiency"]
    assert 0 < float(eff["efficiency"]) <= 1
    for row in eff["by_tier"]:
        assert 0 < float(row["efficiency_pct"]) <= 100


def test_no_trader_ever_trades_at_a_loss(demo: DemoOutput) -> None:
    """Every fill, against the value or cost recomputed from the scenario, net of fees."""
    result = demo.result
    scenario = result.scenario
    buyers = {b.name: b for b in scenario.buyers}
    sellers = {s.name: s for s in scenario.sellers}
    makers = {m.name: m for m in scenario.makers}
    from pricing import load_builtin_catalog

    catalog = load_builtin_catalog()
    assert result.trades
    for t in result.trades:
        hour = (t.window_start // HOUR_US) % 24
        if t.buyer in buyers:
            value = buyer_role(SEED, buyers[t.buyer], t.symbol, hour).value
        else:
            value = maker_role(SEED, makers[t.buyer], t.symbol, hour).value
        if t.seller in sellers:
            spec = sellers[t.seller]
            plan = next(p for p in spec.site.plans if p.tier == t.tier)
            model = catalog[spec.site.hardware_id]
            cost = seller_role(SEED, spec, model, t.tier, plan.share_pct, t.symbol, hour).value
        else:
            cost = maker_role(SEED, makers[t.seller], t.symbol, hour).value
        assert (value, cost) == (t.buyer_value, t.seller_cost)
        notional = t.price * t.quantity
        buyer_pays = notional + notional * t.buyer_fee_bps // 10_000
        seller_gets = notional - notional * t.seller_fee_bps // 10_000
        assert buyer_pays <= value * t.quantity, t
        assert seller_gets >= cost * t.quantity, t
    assert demo.summary["efficiency"]["fills_at_a_loss"] == 0


def test_charts_are_png_files(demo: DemoOutput) -> None:
    names = {p.name for p in demo.files}
    assert {
        "price_discovery.png",
        "book_depth.png",
        "forward_curve.png",
        "carbon_vs_price.png",
    } <= names
    for path in demo.files:
        if path.suffix == ".png":
            data = path.read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_report_is_rebuilt_from_the_result(demo: DemoOutput) -> None:
    assert summarize(demo.result) == demo.summary
    for title in ("Volume and VWAP", "Forward curve", "Green premium", "Conservation",
                  "Allocative efficiency", "Settlement"):
        assert title in demo.text


def test_equilibrium_of_steps() -> None:
    # Values 30 x2, 20 x1; costs 10 x1, 25 x2: trade 2 units, surplus 20 + 5.
    e = equilibrium([(30, 2), (20, 1)], [(10, 1), (25, 2)])
    assert (e.surplus, e.quantity) == (25, 2)
    assert (e.price_low, e.price_high) == (25, 25)
    e = equilibrium([(30, 1)], [(10, 1)])
    assert (e.surplus, e.quantity, e.price_low, e.price_high) == (20, 1, 10, 30)
    assert equilibrium([(5, 1)], [(10, 1)]).quantity == 0


def test_cli_demo_command(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        app, ["demo", "--days", "1", "--traders", "2", "--seed", "3", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "Allocative efficiency" in result.output
    assert (out / "report.json").exists() and (out / "suanli-demo.db").exists()
    assert fresh_sqlite_url(out).endswith("suanli-demo.db")
    assert not (out / "suanli-demo.db").exists()  # a fresh file replaces the old one
