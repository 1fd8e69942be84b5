"""Delivery reports of a pool never add up past what its devices make.

Each report is capped by its window; over all of a pool's contracts and reports, in every
tier and window, the device-seconds reported in any span of hours stay within devices x
the span's seconds, and the excess is refused (``delivery_exceeds_pool_capacity``, no
change). The property tests check the rule against an independent scheduler: every set
of reports accepted can be placed hour by hour (earliest deadline first, optimal for
divisible work with release times and deadlines), and every report refused could not be.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.core import Rejected, replay
from exchange.deliveries import DAY_HOURS, DeliveryBook
from exchange.operations import AddPool, ReportDelivery
from exchange.products import HOUR_US
from exchange.settlement import Contract, ContractState
from tests.core.helpers import H100, Market, create_tier, make_market

HOUR_S = 3_600
PF_H = 1_000_000  # quantity units per PF·h
PRICE = 200_000

#: A report as the scheduler sees it: (first hour, end hour) since the epoch, seconds.
Job = tuple[int, int, int]


def schedulable(jobs: Iterable[Job], devices: int) -> bool:
    """Can the jobs be placed in their windows with at most ``devices x 3600`` in any hour?
    Earliest deadline first, hour by hour: optimal for divisible work (exchange argument),
    so a failure means no placement exists."""
    pending = sorted(jobs)
    capacity = devices * HOUR_S
    if not pending:
        return True
    left: list[list[int]] = []  # [end hour, seconds left], live jobs
    hour = pending[0][0]
    last = max(end for _, end, _ in pending)
    index = 0
    while hour < last:
        while index < len(pending) and pending[index][0] <= hour:
            left.append([pending[index][1], pending[index][2]])
            index += 1
        left.sort()
        room = capacity
        for job in left:
            take = min(room, job[1])
            job[1] -= take
            room -= take
        hour += 1
        if any(end <= hour and seconds > 0 for end, seconds in left):
            return False
        left = [job for job in left if job[1] > 0]
    return not left and index == len(pending)


def trade(m: Market, symbol: str, quantity: int) -> Contract:
    """The seller rests ``quantity``, the buyer lifts it: one contract."""
    before = set(m.core.contracts)
    m.sell(quantity, PRICE, symbol=symbol)
    m.buy(quantity, PRICE, symbol=symbol)
    (new,) = set(m.core.contracts) - before
    return m.core.contracts[new]


def window(m: Market, symbol: str) -> tuple[int, int]:
    w = m.core.instruments[symbol].instrument.window  # type: ignore[index]
    return int(w.start), int(w.end)


def report(m: Market, contract: Contract, pool: int, device_seconds: int) -> object:
    return m.apply(ReportDelivery(m.seller, contract.id, pool, device_seconds))


def refused(m: Market, contract: Contract, pool: int, device_seconds: int) -> str:
    return m.reject(ReportDelivery(m.seller, contract.id, pool, device_seconds))


# ---------------------------------------------------------------------- the literal case
def test_three_full_hours_from_one_h100_in_one_hour_are_refused() -> None:
    """A pool of one H100 and a pool of two deliver a 2 PF·h contract of a one-hour window;
    reporting 3 x 3,600 device-seconds from the one-H100 pool would show it fully
    delivered. The second report is refused: the device made 3,600 in that hour."""
    m = make_market(pool_count=1)
    one = m.pool
    m.apply(AddPool(m.seller, m.site, H100, 2))
    contract = trade(m, m.symbol, 2 * PF_H)
    m.to_delivery()
    report(m, contract, one, HOUR_S)
    assert refused(m, contract, one, HOUR_S) == "delivery_exceeds_pool_capacity"
    assert refused(m, contract, one, 1) == "delivery_exceeds_pool_capacity"
    assert contract.delivered_device_seconds == HOUR_S
    assert contract.delivered_quantity == 989_400 < 2 * PF_H  # one H100-hour, not 2 PF·h
    m.to_settlement()
    assert contract.state is ContractState.SETTLED
    assert contract.penalty_paid > 0  # the shortfall is paid for
    m.core.check()


def test_a_refused_report_changes_nothing_and_another_pool_still_reports() -> None:
    m = make_market(pool_count=1)
    second = m.apply(AddPool(m.seller, m.site, H100, 2)).id  # type: ignore[attr-defined]
    contract = trade(m, m.symbol, 2 * PF_H)
    m.to_delivery()
    report(m, contract, m.pool, HOUR_S)
    deliveries = dict(m.core.deliveries)
    assert refused(m, contract, m.pool, HOUR_S) == "delivery_exceeds_pool_capacity"
    assert m.core.deliveries == deliveries
    report(m, contract, second, 2 * HOUR_S)  # the other pool's own hour
    assert refused(m, contract, second, 1) == "delivery_exceeds_pool_capacity"
    assert contract.delivered_device_seconds == 3 * HOUR_S
    m.core.check()


# ---------------------------------------------------------------------- many contracts
def test_reports_over_many_contracts_of_one_window_share_the_pool_hour() -> None:
    m = make_market(pool_count=1)
    contracts = [trade(m, m.symbol, 100_000) for _ in range(5)]  # 0.1 PF·h each
    m.to_delivery()
    for c in contracts[:4]:
        report(m, c, m.pool, 900)  # 3,600 device-seconds in all
    assert refused(m, contracts[4], m.pool, 1) == "delivery_exceeds_pool_capacity"
    report(m, contracts[4], m.pool, 0)  # nothing more: still accepted
    assert sum(c.delivered_device_seconds for c in contracts) == HOUR_S
    m.core.check()


def test_windows_of_different_hours_do_not_share_capacity() -> None:
    m = make_market(pool_count=1)
    by_start = sorted(
        (s for s in m.core.instruments if s.startswith("FP16-H-")),
        key=lambda s: window(m, s)[0],
    )
    first, second = by_start[1], by_start[2]
    a, b = trade(m, first, 100_000), trade(m, second, 100_000)
    m.advance(window(m, second)[0])  # both delivering
    assert a.state is b.state is ContractState.DELIVERING
    report(m, a, m.pool, HOUR_S)
    report(m, b, m.pool, HOUR_S)  # its own hour: the pool made another 3,600
    m.core.check()


# ---------------------------------------------------------------------- overlapping tiers
def _two_tiers(pool_count: int) -> tuple[Market, str, str]:
    """A one-hour tier and a four-hour tier on the same pool; the symbols of a four-hour
    window still open and of the one-hour window of its first hour."""
    m = make_market(pool_count=pool_count)
    m.apply(create_tier("FP16-H4", window_hours=4))
    four = next(
        s
        for s in sorted(m.core.instruments, key=lambda s: window(m, s)[0])
        if s.startswith("FP16-H4-") and window(m, s)[0] >= window(m, m.symbol)[0]
    )
    start = window(m, four)[0]
    one = next(
        s for s in m.core.instruments if s.startswith("FP16-H-") and window(m, s)[0] == start
    )
    return m, one, four


def test_a_four_hour_window_and_a_one_hour_window_inside_it_share_its_first_hour() -> None:
    m, one, four = _two_tiers(pool_count=1)
    short, long = trade(m, one, 100_000), trade(m, four, 100_000)
    m.advance(window(m, four)[0])
    assert short.state is long.state is ContractState.DELIVERING
    report(m, short, m.pool, HOUR_S)  # the whole first hour
    assert refused(m, long, m.pool, 3 * HOUR_S + 1) == "delivery_exceeds_pool_capacity"
    report(m, long, m.pool, 3 * HOUR_S)  # the other three hours of the long window
    assert refused(m, long, m.pool, 1) == "delivery_exceeds_pool_capacity"
    m.core.check()


def test_the_long_window_reported_first_leaves_the_short_one_nothing() -> None:
    m, one, four = _two_tiers(pool_count=2)
    short, long = trade(m, one, 100_000), trade(m, four, 100_000)
    m.advance(window(m, four)[0])
    report(m, long, m.pool, 4 * 2 * HOUR_S - 1)  # all four hours of both devices but one
    report(m, short, m.pool, 1)
    assert refused(m, short, m.pool, 1) == "delivery_exceeds_pool_capacity"
    m.core.check()


def test_core_reports_stay_schedulable_across_tiers() -> None:
    """Reports on contracts of both tiers until the pool is full: every report the core
    accepted, read back from its deliveries, can be placed; the rest were refused."""
    m, one, four = _two_tiers(pool_count=3)
    contracts = [trade(m, one, 100_000), trade(m, four, 100_000), trade(m, one, 50_000)]
    m.advance(window(m, four)[0])
    codes = []
    for c, seconds in zip(contracts * 3, [4_000, 20_000, 5_000] * 3, strict=True):
        try:
            m.core.apply(ReportDelivery(m.seller, c.id, m.pool, seconds))
        except Rejected as exc:
            codes.append(exc.code)
    assert codes and set(codes) == {"delivery_exceeds_pool_capacity"}
    jobs = []
    for contract_id, pool_id, seconds, _ in m.core.deliveries.values():
        assert pool_id == m.pool
        start, end = window(m, m.core.contracts[contract_id].symbol)
        jobs.append((start // HOUR_US, end // HOUR_US, seconds))
    assert len(jobs) + len(codes) == 9
    assert schedulable(jobs, 3)
    m.core.check()


# ---------------------------------------------------------------------- the rule itself
WINDOW_HOURS = (1, 2, 3, 4, 6, 8, 12, 24)


@st.composite
def reports(draw: st.DrawFn) -> tuple[int, list[Job]]:
    """A pool's device count and reports for aligned windows of every tier length, over
    two days, each up to its window's whole capacity."""
    devices = draw(st.integers(1, 3))
    jobs = []
    for _ in range(draw(st.integers(1, 40))):
        hours = draw(st.sampled_from(WINDOW_HOURS))
        day = draw(st.integers(0, 1))
        start = day * DAY_HOURS + draw(st.integers(0, DAY_HOURS // hours - 1)) * hours
        cap = devices * HOUR_S * hours
        seconds = draw(st.integers(0, cap) | st.sampled_from([cap, HOUR_S, 1, 0]))
        jobs.append((start, start + hours, seconds))
    return devices, jobs


@settings(max_examples=150, deadline=None)
@given(reports())
def test_accepted_reports_fit_every_interval_and_can_be_placed(case: tuple[int, list[Job]]) -> None:
    devices, jobs = case
    book = DeliveryBook()
    accepted: list[Job] = []
    for start, end, seconds in jobs:
        room = book.room(1, devices, start, end - start)
        # the room is exact: filling it can still be placed, one more cannot
        assert schedulable([*accepted, (start, end, room)], devices)
        assert not schedulable([*accepted, (start, end, room + 1)], devices)
        if seconds <= room:
            book.record(1, start, end - start, seconds)
            accepted.append((start, end, seconds))
        else:  # refused exactly when it cannot be placed
            assert not schedulable([*accepted, (start, end, seconds)], devices)
    assert schedulable(accepted, devices)
    # every interval of every day within what the devices make
    for day in (0, 1):
        for a in range(DAY_HOURS):
            for b in range(a + 1, DAY_HOURS + 1):
                lo, hi = day * DAY_HOURS + a, day * DAY_HOURS + b
                inside = sum(s for r, d, s in accepted if lo <= r and d <= hi)
                assert inside <= devices * HOUR_S * (b - a)
    book.check({1: devices})


def test_the_scheduler_of_these_tests_is_not_trivial() -> None:
    assert schedulable([(0, 1, 3_600), (0, 4, 10_800)], 1)
    assert not schedulable([(0, 1, 3_600), (0, 4, 10_801)], 1)
    assert schedulable([(0, 2, 3_600), (1, 2, 3_600)], 1)
    assert schedulable([(0, 2, 3_600), (0, 1, 3_600)], 1)  # the earlier deadline first
    assert not schedulable([(0, 2, 4_000), (1, 2, 3_600)], 1)
    assert schedulable([(0, 24, 86_400)], 1) and not schedulable([(0, 24, 86_401)], 1)


@functools.cache
def _delivering_market() -> Market:
    """Contracts of a pool of two H100s in a four-hour window and in its first two hours,
    all delivering (the first hour's in its reporting grace)."""
    m, one, four = _two_tiers(pool_count=2)
    start = window(m, four)[0]
    hourly = sorted(
        (s for s in m.core.instruments if s.startswith("FP16-H-")),
        key=lambda s: window(m, s)[0],
    )
    inside = [s for s in hourly if start <= window(m, s)[0] < start + 4 * HOUR_US]
    assert len(inside) == 4 and one in inside
    for symbol in (four, four, *inside[:2]):
        trade(m, symbol, 100_000)
    m.advance(start + HOUR_US + 60_000_000)
    assert all(c.state is ContractState.DELIVERING for c in m.core.contracts.values())
    return m


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 4 * 2 * HOUR_S) | st.integers(0, 2 * HOUR_S)),
        max_size=25,
    )
)
def test_reports_the_core_accepts_can_be_placed_and_those_it_refuses_cannot(
    reports: list[tuple[int, int]],
) -> None:
    base = _delivering_market()
    core = replay(base.ops)  # a fresh copy
    assert core.state_hash() == base.core.state_hash()
    contracts = sorted(core.contracts.values(), key=lambda c: c.id)
    accepted: list[Job] = []
    for pick, seconds in reports:
        contract = contracts[pick % len(contracts)]
        start, end = window(base, contract.symbol)
        job = (start // HOUR_US, end // HOUR_US, seconds)
        before = core.state_hash()
        try:
            core.apply(ReportDelivery(base.seller, contract.id, base.pool, seconds))
        except Rejected as exc:
            assert core.state_hash() == before
            assert exc.code in ("delivery_exceeds_pool_capacity", "invalid_device_seconds")
            assert not schedulable([*accepted, job], 2)
        else:
            accepted.append(job)
    new = [d for n, d in core.deliveries.items() if n > base.core.query.delivery_count()]
    assert [d[2] for d in new] == [j[2] for j in accepted]
    assert schedulable(accepted, 2)
    day = accepted[0][0] // DAY_HOURS * DAY_HOURS if accepted else 0
    for a in range(day, day + DAY_HOURS):
        for b in range(a + 1, day + DAY_HOURS + 1):
            inside = sum(s for r, d, s in accepted if a <= r and d <= b)
            assert inside <= 2 * HOUR_S * (b - a)
    core.check()
