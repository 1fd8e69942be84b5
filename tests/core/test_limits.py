"""Bounded objects per account: sites, pools and open orders, as a replaceable setting.

Each bound refuses with its code (``too_many_sites``, ``too_many_pools``,
``too_many_open_orders``) and changes nothing. The bounds are a setting, not state: a log
written under higher bounds replays on a core with no bounds at all, which then takes the
lower ones for what comes next.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from api.db.store import Store
from api.service import ExchangeService
from exchange.core import ExchangeCore, OrderState, Rejected, replay
from exchange.limits import UNBOUNDED, CoreLimits
from exchange.operations import AddPool, CancelOrder, Operation, PlaceOrder, RegisterSite
from exchange.orders import Side, TimeInForce
from tests.core.helpers import H100, START, Market, make_market


def limited(m: Market, **bounds: int) -> None:
    m.core.limits = dataclasses.replace(m.core.limits, **bounds)


def symbols(m: Market) -> list[str]:
    listed = sorted(m.core.instruments, key=lambda s: m.core.instruments[s].instrument.window.start)
    return listed[1:]


def test_sites_per_account_are_bounded() -> None:
    m = make_market()  # the seller has one site
    limited(m, sites=2)
    m.apply(RegisterSite(m.seller, "two", "east", "1.2", "0"))
    assert m.reject(RegisterSite(m.seller, "three", "east", "1.2", "0")) == "too_many_sites"
    m.apply(RegisterSite(m.buyer, "the buyer's own", "east", "1.2", "0"))  # per account


def test_pools_per_account_are_bounded() -> None:
    m = make_market()  # the seller has one pool
    limited(m, pools=2)
    m.apply(AddPool(m.seller, m.site, H100, 1))
    assert m.reject(AddPool(m.seller, m.site, H100, 1)) == "too_many_pools"


def test_open_orders_across_instruments_are_bounded_and_free_up_when_they_end() -> None:
    m = make_market()
    limited(m, open_orders=3)
    first, *_ = [m.buy(1_000, 190_000, symbol=s) for s in symbols(m)[:3]]
    fourth = PlaceOrder(m.buyer, symbols(m)[3], Side.BUY, 1_000, 190_000)
    assert m.reject(fourth) == "too_many_open_orders"
    ioc = PlaceOrder(
        m.buyer, symbols(m)[3], Side.BUY, 1_000, 190_000, time_in_force=TimeInForce.IOC
    )
    assert m.reject(ioc) == "too_many_open_orders"
    m.sell(1_000, 190_000, symbol=symbols(m)[0])  # fills the first: it ends
    assert isinstance(first, OrderState) and not first.is_open
    m.apply(fourth)
    assert m.reject(PlaceOrder(m.buyer, symbols(m)[4], Side.BUY, 1_000, 190_000)) == (
        "too_many_open_orders"
    )
    second = next(o for o in m.core.orders.values() if o.is_open and o.account_id == m.buyer)
    m.apply(CancelOrder(m.buyer, second.id))
    m.buy(1_000, 190_000, symbol=symbols(m)[4])
    m.sell(1_000, 210_000, symbol=symbols(m)[4])  # another account: its own bound


def test_open_orders_per_instrument_are_bounded() -> None:
    m = make_market()
    limited(m, open_orders_per_instrument=2)
    m.buy(1_000, 190_000)
    m.buy(1_000, 190_000)
    assert m.reject(PlaceOrder(m.buyer, m.symbol, Side.BUY, 1_000, 190_000)) == (
        "too_many_open_orders"
    )
    m.buy(1_000, 190_000, symbol=symbols(m)[1])


def _log_under_default_bounds() -> tuple[Market, list[Operation]]:
    """Five sites, five more pools and six resting orders of one account."""
    m = make_market()
    for i in range(4):
        m.apply(RegisterSite(m.seller, f"site {i}", "east", "1.2", "0"))
    for _ in range(5):
        m.apply(AddPool(m.seller, m.site, H100, 1))
    for s in symbols(m)[:6]:
        m.sell(1_000, 210_000, symbol=s)
    return m, m.ops


def test_a_log_written_under_higher_bounds_replays_without_bounds() -> None:
    m, ops = _log_under_default_bounds()
    lower = CoreLimits(sites=2, pools=2, open_orders_per_instrument=1, open_orders=2)

    strict = ExchangeCore(limits=lower)  # what a replay under the lowered bounds would do
    refusals = []
    for op in ops:
        try:
            strict.apply(op)
        except Rejected as exc:
            refusals.append(exc.code)
    assert {"too_many_sites", "too_many_pools", "too_many_open_orders"} <= set(refusals)

    again = ExchangeCore(limits=CoreLimits.unbounded())
    for op in ops:
        again.apply(op)  # every logged operation accepted
    assert again.state_hash() == m.core.state_hash()
    assert again.state_hash() == replay(ops, limits=CoreLimits.unbounded()).state_hash()

    again.limits = lower  # then the configured bounds hold for what comes next
    with pytest.raises(Rejected) as info:
        again.apply(RegisterSite(m.seller, "one more", "east", "1.2", "0"))
    assert info.value.code == "too_many_sites"
    assert len(again.owner_sites[m.seller]) == 5  # what the log holds stays


def test_unbounded_is_beyond_any_count_and_bounds_are_checked() -> None:
    assert CoreLimits.unbounded().sites == UNBOUNDED > 10**18
    with pytest.raises(ValueError, match="non-negative"):
        CoreLimits(sites=-1)


def test_a_service_restarted_with_a_lower_bound_replays_its_log(tmp_path: Path) -> None:
    """Five resting orders in one instrument, logged under a bound of five; restarted
    with a bound of two, the service replays all five and refuses a sixth."""
    url = f"sqlite:///{tmp_path / 'bounds.db'}"
    service = ExchangeService(Store(url), clock="simulated", start_us=START, max_open_orders=5)
    m = make_market()
    for op in m.ops[2:]:  # the market's set-up after the service's own genesis
        service.run(op)
    for _ in range(5):
        service.run(PlaceOrder(m.buyer, m.symbol, Side.BUY, 1_000, 190_000))
    expected = service.core.state_hash()
    service.store.close()

    again = ExchangeService(Store(url), clock="simulated", max_open_orders=2)
    try:
        assert again.core.state_hash() == expected
        with pytest.raises(Rejected) as info:
            again.run(PlaceOrder(m.buyer, m.symbol, Side.BUY, 1_000, 190_000))
        assert info.value.code == "too_many_open_orders"
    finally:
        again.store.close()
