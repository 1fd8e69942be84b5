"""The state hash covers every piece of state, per component.

The tests prove that a refusal changes nothing and that a replay rebuilds the same state
by comparing state hashes, so the hash must change whenever any piece of state does. A
realistic core (accounts, deposits, the catalog and an admin's model, a class, two tiers,
sites and pools, orders that trade, rest and expire, a delivery, a settlement) is walked
generically, from every attribute of every component down to each leaf (a number, a
string, a flag, an enumeration, a decimal, a fraction, a dict key): nothing lists the
fields, so a field added later is walked too. Changing any one leaf changes the hash and
the hash of the component it was found in; putting it back restores both.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Iterator
from decimal import Decimal
from enum import Enum
from fractions import Fraction
from types import MappingProxyType
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st
from sortedcontainers import SortedList

from exchange.book import Level, OrderBook, RestingOrder
from exchange.core import NOT_STATE, STATE_COMPONENTS, ExchangeCore, replay
from exchange.engine import Market
from exchange.genesis import new_core
from exchange.operations import (
    AddHardware,
    AddPool,
    ConfirmHardware,
    CreateGpuClass,
    FigureIn,
    PlaceOrder,
    RegisterSite,
    ReportDelivery,
    Withdraw,
)
from exchange.orders import Side, TimeInForce
from tests.core.helpers import A100, CNY, H100, START, create_tier, make_market

#: Replaces a value where it lives; returns what puts the old one back.
Setter = Callable[[Any], Callable[[], None]]


class Collision(Exception):
    """A changed dict key or set element would land on one that exists: try another."""


@dataclasses.dataclass
class Leaf:
    component: str
    path: str
    value: Any
    put: Setter
    is_key: bool = False


def changes(value: Any, is_key: bool) -> Iterator[Any]:
    """Other values for a leaf, of its own type where it has one."""
    if value is None:
        yield 0
    elif isinstance(value, RestingOrder):
        yield None
    elif isinstance(value, Enum):
        yield from (m for m in type(value) if m is not value)
    elif isinstance(value, bool):
        yield not value
    elif isinstance(value, int):
        yield from ((value + 10**9 * k) for k in range(1, 4)) if is_key else (value + 1,)
    elif isinstance(value, str):
        yield from (value + "~" * k for k in range(1, 4))
    elif isinstance(value, Decimal | Fraction):
        yield value + 1
    else:  # pragma: no cover - a failing test: the walker met a type it cannot change
        raise TypeError(f"no change for {type(value).__name__}")


LEAF_TYPES = (type(None), bool, int, str, Decimal, Fraction, Enum)


def set_item(container: Any, index: Any) -> Setter:
    def put(new: Any) -> Callable[[], None]:
        old = container[index]
        container[index] = new
        return lambda: container.__setitem__(index, old)

    return put


def set_attribute(obj: Any, name: str) -> Setter:
    frozen = dataclasses.is_dataclass(obj) and type(obj).__dataclass_params__.frozen  # type: ignore[attr-defined]
    assign = object.__setattr__ if frozen else setattr

    def put(new: Any) -> Callable[[], None]:
        old = getattr(obj, name)
        assign(obj, name, new)
        return lambda: assign(obj, name, old)

    return put


def walk(component: str, value: Any, path: str, put: Setter, seen: set[int]) -> Iterator[Leaf]:
    """Every leaf under ``value``; ``put`` replaces ``value`` in its parent (how immutable
    containers are changed: rebuilt, then put where the old one was)."""
    if isinstance(value, LEAF_TYPES):
        yield Leaf(component, path, value, put)
        return
    frozen_struct = isinstance(value, msgspec.Struct) and type(value).__struct_config__.frozen
    if not (isinstance(value, tuple | frozenset | MappingProxyType) or frozen_struct):
        # Changed in place: walked once (shared objects, and cycles, end here).
        if id(value) in seen:
            if isinstance(value, RestingOrder):  # a link of a queue: unlinked, it changes
                yield Leaf(component, path, value, put)
            return
        seen.add(id(value))
    if isinstance(value, list | deque):
        for i, item in enumerate(value):
            yield from walk(component, item, f"{path}[{i}]", set_item(value, i), seen)
    elif isinstance(value, tuple):
        rebuild = type(value)._make if hasattr(value, "_fields") else tuple
        for i, item in enumerate(value):

            def put_item(new: Any, i: int = i, old: tuple[Any, ...] = value) -> Callable[[], None]:
                return put(rebuild([*old[:i], new, *old[i + 1 :]]))

            yield from walk(component, item, f"{path}[{i}]", put_item, seen)
    elif isinstance(value, dict | MappingProxyType):
        yield from _walk_mapping(component, value, path, put, seen)
    elif isinstance(value, set | frozenset | SortedList):
        yield from _walk_collection(component, value, path, put, seen)
    elif isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            if frozen_struct:

                def put_field(new: Any, name: str = name, old: Any = value) -> Callable[[], None]:
                    return put(msgspec.structs.replace(old, **{name: new}))

            else:
                put_field = set_attribute(value, name)
            yield from walk(component, getattr(value, name), f"{path}.{name}", put_field, seen)
    elif dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            yield from walk(
                component, getattr(value, f.name), f"{path}.{f.name}", set_attribute(value, f.name),
                seen,
            )  # fmt: skip
    else:  # a plain object: its slots, or its attributes but those its class says are not state
        slots = {n for c in type(value).__mro__ for n in getattr(c, "__slots__", ())}
        skip = getattr(type(value), "NOT_STATE", frozenset())
        for name in sorted(slots) if slots else sorted(vars(value)):
            if name not in skip:
                yield from walk(
                    component, getattr(value, name), f"{path}.{name}", set_attribute(value, name),
                    seen,
                )  # fmt: skip


def _walk_mapping(
    component: str, value: Any, path: str, put: Setter, seen: set[int]
) -> Iterator[Leaf]:
    mutable = isinstance(value, dict)

    def put_value(new: Any, key: Any) -> Callable[[], None]:
        if mutable:
            return set_item(value, key)(new)
        return put(MappingProxyType({**value, key: new}))

    def put_key(new: Any, key: Any) -> Callable[[], None]:
        """Rename ``key`` to ``new``; where ``new`` is a key too (every member of an
        enumeration is), the two swap their values."""
        if new in value and value[new] == value[key]:
            raise Collision(new)
        items = list(value.items())
        swap = {key: new, new: key} if new in value else {key: new}
        renamed = [(swap.get(k, k), v) for k, v in items]
        if not mutable:
            return put(MappingProxyType(dict(renamed)))
        value.clear()
        value.update(renamed)

        def undo() -> None:
            value.clear()
            value.update(items)

        return undo

    for key in list(value):
        for leaf in walk(
            component, key, f"{path}<key {key!r}>", functools.partial(put_key, key=key), seen
        ):
            leaf.is_key = True
            yield leaf
        yield from walk(
            component, value[key], f"{path}[{key!r}]", functools.partial(put_value, key=key), seen
        )


def _walk_collection(
    component: str, value: Any, path: str, put: Setter, seen: set[int]
) -> Iterator[Leaf]:
    def put_element(new: Any, old: Any) -> Callable[[], None]:
        if new in value:
            raise Collision(new)
        if isinstance(value, frozenset):
            return put(frozenset((value - {old}) | {new}))
        value.remove(old)
        value.add(new)

        def undo() -> None:
            value.remove(new)
            value.add(old)

        return undo

    for element in list(value):
        put_it = functools.partial(put_element, old=element)
        for leaf in walk(component, element, f"{path}{{{element!r}}}", put_it, seen):
            leaf.is_key = True
            yield leaf


def leaves(core: ExchangeCore) -> list[Leaf]:
    seen: set[int] = set()
    out: list[Leaf] = []
    for component, owner, attributes in core.state_parts():
        for name in attributes:
            out.extend(
                walk(component, getattr(owner, name), name, set_attribute(owner, name), seen)
            )
    return out


# ---------------------------------------------------------------------- the core walked
def build_core() -> ExchangeCore:
    """A core after a realistic day: every component holds something."""
    m = make_market(pool_count=8)
    m.apply(
        AddHardware(
            vendor="Acme", model="X1", figures={"fp16": FigureIn("800")}, memory_gb="96",
            memory_bandwidth_gbs="3000", tdp_w="700", quality="U", source="datasheet",
            id="acme-x1",
        )
    )  # fmt: skip
    m.apply(ConfirmHardware("acme-x1"))
    m.apply(
        CreateGpuClass(
            "ANY", "Any large part", "fp16", "100", vendors=["NVIDIA", "AMD", "Huawei", "Acme"],
            models=[H100, A100, "acme-x1"],
        )
    )  # fmt: skip
    m.apply(create_tier("FP16-H2", window_hours=2, regions=["east"], min_green_grade="1A"))
    site = m.apply(RegisterSite(m.seller, "gz", "southwest", "1.3", "0.4", location="Gui'an")).id  # type: ignore[attr-defined]
    m.apply(AddPool(m.seller, site, A100, 16))
    later = sorted(m.core.instruments, key=lambda s: m.core.instruments[s].instrument.window.start)
    m.sell(4_000_000, 200_000)
    m.buy(1_000_000, 200_000, client_order_id="lab-1")  # a partial fill: the sell rests
    m.sell(2_000_000, 201_000, symbol=later[8])
    m.buy(1_000_000, 199_000, symbol=later[8], time_in_force=TimeInForce.GTD,
          expire_time=START + 6 * 3_600_000_000)  # fmt: skip
    m.apply(PlaceOrder(m.seller, later[8], Side.SELL, 500_000, 201_000))
    contract = next(iter(m.core.contracts.values()))
    tier = m.core.instruments[m.symbol].instrument.tier.code
    (nxt,) = (
        s
        for s, r in m.core.instruments.items()
        if r.instrument.tier.code == tier and r.instrument.window.start == m.window[1]
    )
    m.sell(1_000_000, 200_000, symbol=nxt)
    m.buy(1_000_000, 200_000, symbol=nxt)  # the next window's: in its grace below
    m.to_delivery()
    m.apply(ReportDelivery(m.seller, contract.id, m.pool, 3_000))
    m.sell(1_000_000, 200_000, symbol=later[9])
    m.buy(1_000_000, 200_000, symbol=later[9])  # an open contract on a later window
    m.to_settlement()
    (next_window,) = (c for c in m.core.contracts.values() if c.symbol == nxt)
    m.apply(ReportDelivery(m.seller, next_window.id, m.pool, 3_000))
    m.apply(Withdraw(m.buyer, 10 * CNY))
    core = m.core
    retired = core.take_changes().retired_contracts
    assert retired and all(c.settled_at for c in retired.values())  # settled, then retired
    assert all(c.settled_at is None for c in core.contracts.values())
    assert core.engine.resting_count and core.deliveries and core.capacity.committed
    core.check()
    return core


@functools.cache
def walked() -> tuple[ExchangeCore, list[Leaf]]:
    core = build_core()
    return core, leaves(core)


def change_one(core: ExchangeCore, leaf: Leaf, *, whole: bool = True) -> None:
    """Change ``leaf``, check the hash of its component moves (and the state hash, when
    ``whole``), put it back, check they are restored."""

    def hashes() -> tuple[str, str]:
        return core.component_hash(leaf.component), core.state_hash() if whole else ""

    before = hashes()
    for new in changes(leaf.value, leaf.is_key):
        try:
            undo = leaf.put(new)
        except Collision:
            continue
        break
    else:  # pragma: no cover - a failing test
        raise AssertionError(f"no change possible for {leaf.path}")
    try:
        after = hashes()
        assert after[0] != before[0], f"{leaf.component}: {leaf.path} is not hashed"
        assert not whole or after[1] != before[1], leaf.path
    finally:
        undo()
    assert hashes() == before, f"{leaf.path} was not put back"


def test_the_walk_reaches_every_component() -> None:
    _, found = walked()
    by_component = {c: sum(1 for leaf in found if leaf.component == c) for c in STATE_COMPONENTS}
    assert all(by_component.values()), by_component
    assert len(found) > 1_000


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_changing_any_leaf_of_any_component_changes_the_hash(data: st.DataObject) -> None:
    core, found = walked()
    leaf = data.draw(st.sampled_from(found), label="leaf")
    change_one(core, leaf)


def test_changing_each_leaf_changes_the_hash() -> None:
    """All of them, one after the other (the property test samples; this is the census,
    which checks the component hash, the one the state hash is made of)."""
    core, found = walked()
    before = core.component_hashes()
    for leaf in found:
        change_one(core, leaf, whole=False)
    assert core.component_hashes() == before


def test_every_attribute_of_a_core_is_state_or_said_not_to_be() -> None:
    core = build_core()
    hashed = [name for names in STATE_COMPONENTS.values() for name in names]
    assert set(core.__slots__) == set(NOT_STATE)
    for _, component in core.parts:
        kind = type(component)
        own = [name for names in kind.STATE.values() for name in names]
        assert len(own) == len(set(own)), f"{kind.__name__}: an attribute in two parts"
        assert set(own).isdisjoint(kind.REFERENCES)
        assert set(kind.__slots__) == set(own) | set(kind.REFERENCES), kind.__name__
        assert not hasattr(component, "__dict__"), kind.__name__
    parts = [(part, owner) for part, owner, _ in core.state_parts()]
    assert [part for part, _ in parts] == list(STATE_COMPONENTS)
    assert len(hashed) == sum(len(type(owner).STATE[part]) for part, owner in parts)


def test_pools_of_8_and_of_800_devices_hash_differently() -> None:
    small, large = make_market(pool_count=8), make_market(pool_count=800)
    assert small.core.state_hash() != large.core.state_hash()
    differ = {
        name
        for name, digest in small.core.component_hashes().items()
        if large.core.component_hashes()[name] != digest
    }
    assert differ == {"pools"}


def test_what_is_not_state_does_not_move_the_hash() -> None:
    m = make_market()
    before = m.core.state_hash()
    m.core.eligible_pools(m.seller, m.core.tiers["FP16-H"].tier)  # fills the cache
    m.core.limits = dataclasses.replace(m.core.limits, sites=1)
    assert m.core._pool_caps and m.core.state_hash() == before


def test_the_hash_does_not_depend_on_the_process_hash_seed() -> None:
    """Sets of strings (a class's vendors and models) iterate in a per-process order: two
    processes with different hash seeds build the same core and get the same hash."""
    script = "from tests.core.test_state_hash import build_core; print(build_core().state_hash())"
    digests = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        digests.add(out.stdout.strip())
    assert digests == {build_core().state_hash()}


def test_a_replay_gets_the_same_hash_for_every_component() -> None:
    m = make_market()
    m.sell(1_000_000, 200_000)
    m.buy(500_000, 200_000)
    again = replay(m.ops)
    assert again.component_hashes() == m.core.component_hashes()


def test_a_fresh_core_and_its_genesis_differ_in_catalog_and_clock_only() -> None:
    fresh, started = ExchangeCore(), new_core(START)
    differ = {
        name
        for name, digest in fresh.component_hashes().items()
        if started.component_hashes()[name] != digest
    }
    assert differ == {"catalog", "clock", "engine"}  # the engine keeps the clock too


def test_the_engine_hash_covers_every_field_of_a_resting_order_and_of_a_market() -> None:
    """The engine walked on its own (what it shares with other components included):
    every slot of a resting order, a market, a book and a level is reached, and changing
    any leaf changes the engine's own hash."""
    core, _ = walked()
    found = list(walk("engine", core.engine, "engine", set_attribute(core, "engine"), set()))
    paths = [leaf.path for leaf in found]
    for kind in (RestingOrder, Market, OrderBook, Level):
        for name in kind.__slots__:
            # (a book's indexes and trade counter are the engine's own: engine._by_account)
            assert any(f".{name}" in p or f"._{name}" in p for p in paths), name
    before = core.engine.state_hash()
    for leaf in found:
        change_one(core, leaf, whole=False)
    assert core.engine.state_hash() == before
