"""The leadership lease against a real three-server JetStream cluster."""

from __future__ import annotations

import asyncio
import itertools
import os
import time

import pytest

from api.cluster import Fenced, Lease, LogRow, ReplicatedLog, connect
from tests.cluster.natscluster import NatsCluster

TTL = 2.0

_names = itertools.count()


def _bucket() -> str:
    return f"lease{next(_names)}_{os.getpid()}"


async def _contenders(
    cluster: NatsCluster, bucket: str, *nodes: str, ttl: float = TTL
) -> list[Lease]:
    """One lease object per node, each on its own connection to a different server."""
    leases = []
    for i, node in enumerate(nodes):
        urls = cluster.urls[i % 3 :] + cluster.urls[: i % 3]
        lease = Lease(await connect(urls), node, bucket=bucket, ttl=ttl, renew_interval=ttl / 4)
        await lease.open()
        leases.append(lease)
    return leases


async def _close(leases: list[Lease]) -> None:
    for lease in leases:
        await lease.nc.close()


async def _until_free(lease: Lease, within: float) -> float:
    """Seconds until the bucket shows no holder; fails after ``within``."""
    start = time.monotonic()
    while await lease.holder() is not None:
        if time.monotonic() - start > within:
            pytest.fail(f"the lease did not lapse within {within} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


@pytest.mark.timeout(60)
def test_only_one_of_two_contenders_acquires(nats_cluster: NatsCluster) -> None:
    async def scenario() -> None:
        a, b = leases = await _contenders(nats_cluster, _bucket(), "node-a", "node-b")
        try:
            assert await a.holder() is None
            won = await asyncio.gather(a.acquire(), b.acquire())
            assert sorted(won) == [False, True]
            winner, loser = (a, b) if won[0] else (b, a)
            assert winner.valid() and not loser.valid()
            assert await a.holder() == await b.holder() == winner.node
            assert not await loser.acquire()
            assert not await loser.renew()
        finally:
            await _close(leases)

    asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_renewing_keeps_the_lease_past_its_ttl(nats_cluster: NatsCluster) -> None:
    async def scenario() -> None:
        a, b = leases = await _contenders(nats_cluster, _bucket(), "node-a", "node-b")
        try:
            assert await a.acquire()
            start = time.monotonic()
            revisions = [a.revision]
            while time.monotonic() - start < 2.5 * TTL:
                await asyncio.sleep(a.renew_interval)
                assert await a.renew()
                revisions.append(a.revision)
                assert not await b.acquire()
                assert await b.holder() == "node-a"
            assert all(x is not None for x in revisions)
            assert revisions == sorted(set(revisions))
            assert a.valid() and a.remaining() > TTL / 2
        finally:
            await _close(leases)

    asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_a_holder_that_stops_renewing_loses_the_lease(nats_cluster: NatsCluster) -> None:
    async def scenario() -> None:
        a, b = leases = await _contenders(nats_cluster, _bucket(), "node-a", "node-b")
        try:
            assert await a.acquire()
            acquired = time.monotonic()
            lapsed = await _until_free(b, TTL + 10)
            # Not before the TTL (less a margin for the two clocks' start points).
            assert time.monotonic() - acquired >= TTL - 0.5
            print(f"\nlease lapsed {lapsed:.2f} s after it was taken (ttl {TTL} s)")
            assert not a.valid()
            assert await b.acquire()
            assert await b.holder() == "node-b"
            # The old holder's compare-and-set fails: its revision is gone.
            assert not await a.renew()
            assert a.revision is None and not a.valid()
            assert not await a.acquire()
            assert await b.renew()
        finally:
            await _close(leases)

    asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_release_lets_another_node_acquire_at_once(nats_cluster: NatsCluster) -> None:
    async def scenario() -> None:
        a, b = leases = await _contenders(nats_cluster, _bucket(), "node-a", "node-b", ttl=30.0)
        try:
            assert await a.acquire()
            assert not await b.acquire()
            await a.release()
            assert not a.valid()
            assert await b.holder() is None
            assert await b.acquire()
            assert await a.holder() == "node-b"
            # Releasing a lease no longer held leaves the new holder's key alone.
            await a.release()
            assert await a.holder() == "node-b"
        finally:
            await _close(leases)

    asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_keep_renews_until_the_lease_is_taken(nats_cluster: NatsCluster) -> None:
    async def scenario() -> None:
        a, b = leases = await _contenders(nats_cluster, _bucket(), "node-a", "node-b")
        try:
            assert await a.acquire()
            keeper = asyncio.create_task(a.keep())
            deadline = time.monotonic() + 2 * TTL
            while time.monotonic() < deadline:
                assert not await b.acquire()
                await asyncio.sleep(0.2)
            assert not keeper.done() and a.valid()
            # Someone overwrites the key: a's next compare-and-set fails and keep returns.
            await b.kv.put(b.key, b"intruder")
            await asyncio.wait_for(keeper, 2 * a.renew_interval + 5)
            assert not a.valid()
            assert await a.holder() == "intruder"
        finally:
            await _close(leases)

    asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_a_deposed_leader_is_fenced_by_the_log(nats_cluster: NatsCluster) -> None:
    """A leader paused past its TTL (here: it simply does nothing) comes back believing it
    still leads; the new leader has appended meanwhile, so the old one's append fails."""

    async def scenario() -> None:
        bucket, stream = _bucket(), f"FENCE{next(_names)}_{os.getpid()}"
        a, b = leases = await _contenders(nats_cluster, bucket, "node-a", "node-b")
        log_a = ReplicatedLog(a.nc, stream=stream, subject=f"suanli.fence.{stream}")
        log_b = ReplicatedLog(b.nc, stream=stream, subject=f"suanli.fence.{stream}")
        try:
            await log_a.open()
            await log_b.open()
            assert await a.acquire()
            last_a = await log_a.append([LogRow(1, 1, "k", b"a1", b"c1")], 0)
            # a stops (a long pause): no renewal, no append.
            await _until_free(b, TTL + 10)
            assert await b.acquire()
            last_b = await log_b.append(
                [LogRow(2, 2, "k", b"b2", b"c2")], await log_b.last_sequence()
            )
            assert last_b == 2
            # a wakes up and appends what it had prepared, with the sequence it knew.
            with pytest.raises(Fenced):
                await log_a.append([LogRow(2, 2, "k", b"a2", b"x2")], last_a)
            assert not await a.renew()
            rows = [e.rows for e in [x async for x in log_b.entries(0)]]
            assert [r[0].payload for r in rows] == [b"a1", b"b2"]
        finally:
            await _close(leases)

    asyncio.run(scenario())
