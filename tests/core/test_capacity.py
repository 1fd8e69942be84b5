"""The pool-hour capacity book: reserve, commit, release, extend, finish; never oversold.

"Never oversold" is checked exactly, with fractions: in every pool-hour, the quantities
reserved and committed, each divided by what the pool delivers per hour in that tier,
must add up to at most one whole pool-hour.
"""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.capacity import CapacityBook
from exchange.invariants import InvariantViolation

H = 3_600_000_000
ONE = (0,)
TWO = (0, H)
SELLER = 7


def exact_use(
    book: CapacityBook, caps: dict[int, dict[int, int]]
) -> dict[tuple[int, int], Fraction]:
    """Exact fraction of each pool-hour in use.

    ``caps[order_id][pool]`` (reservations) and ``caps[-contract_id][pool]`` (commitments)
    give the pool's rate in the tier the allocation was sold in.
    """
    use: dict[tuple[int, int], Fraction] = defaultdict(Fraction)
    allocations = [*book.reserved.items(), *((-c, a) for c, a in book.committed.items())]
    for alloc_id, alloc in allocations:
        for line in alloc.lines:
            cap = caps[alloc_id][line.pool_id]
            for h in alloc.hours:
                use[(line.pool_id, h)] += Fraction(line.quantity, cap * len(alloc.hours))
    return use


def test_reserve_commit_release_finish_round_trip() -> None:
    book = CapacityBook()
    pools = [(1, 1_000), (2, 500)]
    assert book.available_quantity(pools, TWO) == 3_000
    assert book.reserve(10, SELLER, pools, TWO, 2_500)
    assert [(ln.pool_id, ln.quantity) for ln in book.reserved[10].lines] == [(1, 2_000), (2, 500)]
    assert book.available_quantity(pools, TWO) == 500
    assert book.held_quantity(SELLER, TWO) == 2_500
    book.commit(10, 100, 2_000)
    assert book.reserved[10].quantity == 500 and book.committed[100].quantity == 2_000
    book.release(10)
    assert 10 not in book.reserved
    assert book.available_quantity(pools, TWO) == 1_000
    book.check()
    book.finish(100)
    assert book.used == {} and book.committed == {}
    assert book.available_quantity(pools, TWO) == 3_000
    book.finish(100)  # a second finish is a no-op
    book.check()


def test_reserve_beyond_capacity_fails_and_changes_nothing() -> None:
    book = CapacityBook()
    pools = [(1, 1_000), (2, 1_000)]
    assert book.reserve(1, SELLER, pools, ONE, 1_500)
    used = dict(book.used)
    assert not book.reserve(2, SELLER, pools, ONE, 501)
    assert book.used == used and 2 not in book.reserved
    assert book.reserve(2, SELLER, pools, ONE, 500)
    assert book.available_quantity(pools, ONE) == 0
    book.check()


def test_same_order_cannot_reserve_twice() -> None:
    book = CapacityBook()
    assert book.reserve(1, SELLER, [(1, 1_000)], ONE, 10)
    with pytest.raises(InvariantViolation):
        book.reserve(1, SELLER, [(1, 1_000)], ONE, 10)


def test_partial_release_and_release_beyond_reservation() -> None:
    book = CapacityBook()
    assert book.reserve(1, SELLER, [(1, 1_000)], ONE, 600)
    book.release(1, 200)
    assert book.reserved[1].quantity == 400
    with pytest.raises(InvariantViolation):
        book.release(1, 401)
    book.release(1, 400)
    assert book.reserved == {} and book.used == {}
    book.release(1)  # nothing left: a no-op
    with pytest.raises(InvariantViolation):
        book.release(1, 5)


def test_extend_adds_capacity_or_changes_nothing() -> None:
    book = CapacityBook()
    pools = [(1, 1_000)]
    assert book.reserve(1, SELLER, pools, ONE, 400)
    assert book.extend(1, pools, 500)
    assert book.reserved[1].quantity == 900 and set(book.reserved) == {1}
    used = dict(book.used)
    assert not book.extend(1, pools, 101)
    assert book.used == used and book.reserved[1].quantity == 900
    book.check()


def test_overlapping_windows_share_pool_hours() -> None:
    book = CapacityBook()
    pools = [(1, 1_000)]
    assert book.reserve(1, SELLER, pools, (0, H), 1_200)  # 600 of each of two hours
    assert book.available_quantity(pools, (H,)) == 400
    assert book.available_quantity(pools, (H, 2 * H)) == 800  # limited by the hour at H
    assert not book.reserve(2, SELLER, pools, (H,), 401)
    assert book.reserve(2, SELLER, pools, (H,), 400)
    book.check()


def test_two_tiers_sharing_one_pool_cannot_together_oversell_it() -> None:
    # One H100 pool: 1,000 units per hour in an fp16 tier, 2,000 in an fp8 tier.
    book = CapacityBook()
    fp16, fp8 = [(1, 1_000)], [(1, 2_000)]
    assert book.reserve(1, SELLER, fp16, ONE, 600)  # 60 % of the pool-hour
    assert book.available_quantity(fp8, ONE) == 800  # the other 40 %, in fp8 units
    assert not book.reserve(2, SELLER, fp8, ONE, 801)
    assert book.reserve(2, SELLER, fp8, ONE, 800)
    assert book.available_quantity(fp16, ONE) == 0
    assert not book.reserve(3, SELLER, fp16, ONE, 1)
    use = exact_use(book, {1: {1: 1_000}, 2: {1: 2_000}})
    assert use[(1, 0)] == 1
    book.check()


def test_check_catches_drift() -> None:
    book = CapacityBook()
    assert book.reserve(1, SELLER, [(1, 1_000)], ONE, 500)
    book.check()
    book.used[(1, 0)][1_000] += 1
    with pytest.raises(InvariantViolation):
        book.check()


def test_check_catches_an_oversold_pool_hour() -> None:
    book = CapacityBook()
    assert book.reserve(1, SELLER, [(1, 1_000)], ONE, 1_000)
    book.check()
    book.reserved[1].lines[0].quantity += 1  # tamper allocation and usage alike
    book.used[(1, 0)][1_000] += 1
    with pytest.raises(InvariantViolation):
        book.check()


def test_committed_part_keeps_its_exact_share_of_the_pool() -> None:
    """Regression: splitting a reservation must not lose part of the pool it uses.

    A pool delivering 3 * 10**9 units per hour. A reservation of 2 units is split: 1 unit
    committed to a contract, the rest released. The contract still uses 1 unit of the
    pool-hour, so only ``cap - 1`` units can be sold again (an earlier version rounded the
    moved share down to nothing and let the whole pool be resold).
    """
    cap = 3 * 10**9
    book = CapacityBook()
    assert book.reserve(1, SELLER, [(1, cap)], ONE, 2)
    book.commit(1, 100, 1)
    book.release(1)
    assert not book.reserve(2, SELLER, [(1, cap)], ONE, cap)
    assert book.reserve(2, SELLER, [(1, cap)], ONE, cap - 1)
    use = exact_use(book, {2: {1: cap}, -100: {1: cap}})
    assert use[(1, 0)] == 1
    book.check()


def test_many_partial_fills_of_a_large_pool_never_oversell() -> None:
    cap = 1_978_800_000  # 2,000 H100 in fp16, units per hour
    book = CapacityBook()
    caps: dict[int, dict[int, int]] = {}
    for i in range(1, 200):
        assert book.reserve(i, SELLER, [(1, cap)], TWO, 3_000)
        caps[i] = caps[-i] = {1: cap}
        book.commit(i, i, 1_000)
        book.release(i)
    free = book.available_quantity([(1, cap)], TWO)
    assert free == 2 * cap - 199 * 1_000
    assert not book.reserve(1_000, SELLER, [(1, cap)], TWO, free + 1)
    assert book.reserve(1_000, SELLER, [(1, cap)], TWO, free)
    caps[1_000] = {1: cap}
    assert all(v == 1 for v in exact_use(book, caps).values())
    book.check()


# ---------------------------------------------------------------- property
CAPS = st.sampled_from([7, 1_000, 98_940_000, 989_400_000, 1_978_800_000, 3 * 10**9])


@st.composite
def scenario(
    draw: st.DrawFn,
) -> tuple[dict[int, dict[int, int]], list[tuple[str, int, tuple[int, ...], int, int]]]:
    # Two tiers over the same three pools, with different rates (fp16 vs fp8-like).
    tier_caps = {
        0: {p: draw(CAPS) for p in (1, 2, 3)},
        1: {p: draw(CAPS) for p in (1, 2, 3)},
    }
    steps = draw(
        st.lists(
            st.tuples(
                st.sampled_from(
                    ["reserve", "commit", "release", "partial", "extend", "finish", "cycle"]
                ),
                st.integers(0, 1),  # tier
                st.sampled_from([ONE, TWO, (H,)]),
                st.integers(1, 50) | st.integers(1, 4 * 10**9),
                st.integers(0, 10**6),  # picks an existing order or contract
            ),
            max_size=40,
        )
    )
    return tier_caps, steps


@settings(max_examples=300, deadline=None)
@given(scenario())
def test_capacity_is_never_oversold(
    case: tuple[dict[int, dict[int, int]], list[tuple[str, int, tuple[int, ...], int, int]]],
) -> None:
    tier_caps, steps = case
    book = CapacityBook()
    caps: dict[int, dict[int, int]] = {}  # allocation id -> {pool: cap of its tier}
    next_order, next_contract = 1, 1
    for action, tier, hours, amount, pick in steps:
        pools = sorted(tier_caps[tier].items())
        orders = sorted(book.reserved)
        if action == "reserve":
            free = book.available_quantity(pools, hours)
            # all that is free (the edge where rounding matters), one more, or anything
            quantity = [free, free + 1, amount % (free + 2)][pick % 3] or 1
            ok = book.reserve(next_order, SELLER, pools, hours, quantity)
            assert ok == (quantity <= free)
            if ok:
                caps[next_order] = tier_caps[tier]
            next_order += 1
        elif action == "cycle":
            # A sell order partly filled and then cancelled: reserve, commit part, release.
            quantity = amount % 50 + 2
            if book.reserve(next_order, SELLER, pools, hours, quantity):
                caps[next_order] = caps[-next_contract] = tier_caps[tier]
                book.commit(next_order, next_contract, pick % (quantity - 1) + 1)
                book.release(next_order)
                next_contract += 1
            next_order += 1
        elif not orders and action != "finish":
            continue
        elif action in ("commit", "partial"):
            oid = orders[pick % len(orders)]
            have = book.reserved[oid].quantity
            quantity = have if action == "commit" and pick % 3 == 0 else amount % have + 1
            book.commit(oid, next_contract, quantity)
            caps[-next_contract] = caps[oid]
            next_contract += 1
        elif action == "release":
            oid = orders[pick % len(orders)]
            book.release(oid, amount % book.reserved[oid].quantity + 1)
        elif action == "extend":
            oid = orders[pick % len(orders)]
            order_pools = sorted(caps[oid].items())
            book.extend(oid, order_pools, amount % 10**6 + 1)
        elif action == "finish" and book.committed:
            done = sorted(book.committed)
            book.finish(done[pick % len(done)])
        book.check()
        for key, used in exact_use(book, caps).items():
            assert used <= 1, f"pool-hour {key} sold {used} times over"
