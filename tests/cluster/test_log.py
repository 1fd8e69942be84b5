"""The replicated operation log against a real three-server JetStream cluster."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

import api.cluster
from api.cluster import Fenced, LogEntry, LogRow, ReplicatedLog, Unavailable, connect
from tests.cluster.natscluster import NatsCluster

T = TypeVar("T")

_names = itertools.count()


def _stream() -> str:
    return f"LOG{next(_names)}_{os.getpid()}"


def group(first: int, size: int = 3) -> list[LogRow]:
    """A group commit of ``size`` rows from log seq ``first``, with bytes that msgpack
    must carry exactly (zero bytes, high bytes, empty payloads)."""
    return [
        LogRow(
            seq=s,
            applied_at=1_700_000_000_000_000 + s,
            kind=f"kind{s % 4}",
            payload=bytes([0, 255, s % 256]) * (s % 5),
            chain=bytes(range(s % 7, s % 7 + 32)),
        )
        for s in range(first, first + size)
    ]


async def collect(log: ReplicatedLog, after: int) -> list[LogEntry]:
    return [entry async for entry in log.entries(after)]


async def until_ok(action: Callable[[], Awaitable[T]], within: float, what: str) -> tuple[T, float]:
    """Retry ``action`` while it raises :class:`Unavailable`; its result and the time it
    took, or a failure after ``within`` seconds."""
    start = time.monotonic()
    while True:
        try:
            return await action(), time.monotonic() - start
        except Unavailable:
            if time.monotonic() - start > within:
                pytest.fail(f"{what}: still unavailable after {within} s")
            await asyncio.sleep(0.1)


def test_rows_encode_and_decode_exactly() -> None:
    rows = group(1, 5)
    assert api.cluster.decode_rows(api.cluster.encode_rows(rows)) == tuple(rows)


@pytest.mark.timeout(60)
def test_append_and_read_back(nats_cluster: NatsCluster) -> None:
    async def scenario() -> None:
        nc = await connect(nats_cluster.urls)
        try:
            log = ReplicatedLog(nc, stream=_stream(), subject=f"suanli.test.{next(_names)}")
            await log.open()
            await log.open()  # binding to the existing stream is fine
            assert await log.last_sequence() == 0
            groups = [group(1, 1), group(2, 3), group(5, 2)]
            last = 0
            for rows in groups:
                last = await log.append(rows, expected_last=last)
            assert last == 3
            assert await log.last_sequence() == 3
            entries = await collect(log, 0)
            assert [e.stream_seq for e in entries] == [1, 2, 3]
            assert [list(e.rows) for e in entries] == groups
            for entry, rows in zip(entries, groups, strict=True):
                for got, sent in zip(entry.rows, rows, strict=True):
                    assert type(got.payload) is bytes and got.payload == sent.payload
                    assert type(got.chain) is bytes and got.chain == sent.chain
        finally:
            await nc.close()

    asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_a_retried_append_is_stored_once(nats_cluster: NatsCluster) -> None:
    async def scenario() -> None:
        nc = await connect(nats_cluster.urls)
        try:
            log = ReplicatedLog(nc, stream=_stream(), subject=f"suanli.test.{next(_names)}")
            await log.open()
            first = await log.append(group(1), expected_last=0)
            again = await log.append(group(1), expected_last=0)
            assert again == first == 1
            assert await log.last_sequence() == 1
            assert await log.append(group(4), expected_last=1) == 2
            assert [e.stream_seq for e in await collect(log, 0)] == [1, 2]
        finally:
            await nc.close()

    asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_a_stale_writer_is_fenced_and_stores_nothing(nats_cluster: NatsCluster) -> None:
    async def scenario() -> None:
        nc_a = await connect(nats_cluster.urls[:1])
        nc_b = await connect(nats_cluster.urls[2:])
        try:
            stream, subject = _stream(), f"suanli.test.{next(_names)}"
            a = ReplicatedLog(nc_a, stream=stream, subject=subject)
            b = ReplicatedLog(nc_b, stream=stream, subject=subject)
            await a.open()
            await b.open()
            assert await a.append(group(1), expected_last=0) == 1
            # b takes over: it reads the stream's end and appends after it.
            seen = await b.last_sequence()
            assert await b.append(group(4), expected_last=seen) == 2
            # a still believes the stream ends at 1. Its next group starts at the same log
            # seq as b's but holds other rows: it must not pass for a duplicate of b's.
            with pytest.raises(Fenced) as refused:
                await a.append(group(4, 2), expected_last=1)
            assert refused.value.expected_last == 1
            stale = [LogRow(r.seq, r.applied_at, "other", r.payload, r.chain) for r in group(4)]
            with pytest.raises(Fenced):
                await a.append(stale, expected_last=1)
            with pytest.raises(Fenced):
                await a.append(group(100), expected_last=0)
            assert await a.last_sequence() == 2
            entries = await collect(a, 0)
            assert [list(e.rows) for e in entries] == [group(1), group(4)]
        finally:
            await nc_a.close()
            await nc_b.close()

    asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_reading_after_a_sequence_returns_exactly_the_later_entries(
    nats_cluster: NatsCluster,
) -> None:
    async def scenario() -> None:
        nc = await connect(nats_cluster.urls)
        try:
            log = ReplicatedLog(nc, stream=_stream(), subject=f"suanli.test.{next(_names)}")
            await log.open()
            last = 0
            for i in range(10):
                last = await log.append(group(1 + 2 * i, 2), expected_last=last)
            for after in (0, 1, 5, 9, 10):
                entries = await collect(log, after)
                assert [e.stream_seq for e in entries] == list(range(after + 1, 11))
                assert [e.rows[0].seq for e in entries] == [1 + 2 * i for i in range(after, 10)]
            # A small batch size pages through the same entries.
            paged = [e.stream_seq async for e in log.entries(3, batch=2)]
            assert paged == list(range(4, 11))
        finally:
            await nc.close()

    asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_a_follower_sees_appends_as_they_are_stored(nats_cluster: NatsCluster) -> None:
    async def scenario() -> None:
        nc_w = await connect(nats_cluster.urls[:1])
        nc_r = await connect(nats_cluster.urls[1:2])
        try:
            stream, subject = _stream(), f"suanli.test.{next(_names)}"
            writer = ReplicatedLog(nc_w, stream=stream, subject=subject)
            reader = ReplicatedLog(nc_r, stream=stream, subject=subject)
            await writer.open()
            await reader.open()
            await writer.append(group(1), expected_last=0)
            seen: list[int] = []

            async def follow() -> None:
                async for entry in reader.entries(0, follow=True, poll=0.5):
                    seen.append(entry.stream_seq)
                    if entry.stream_seq == 5:
                        return

            task = asyncio.create_task(follow())
            last = 1
            for i in range(1, 5):
                await asyncio.sleep(0.05)
                last = await writer.append(group(1 + 3 * i), expected_last=last)
            await asyncio.wait_for(task, 20)
            assert seen == [1, 2, 3, 4, 5]
        finally:
            await nc_w.close()
            await nc_r.close()

    asyncio.run(scenario())


async def _open(cluster: NatsCluster, timeout: float = 2.0) -> tuple[ReplicatedLog, int]:
    nc = await connect(cluster.urls)
    log = ReplicatedLog(nc, stream="SUANLI_LOG", subject="suanli.log", timeout=timeout)
    await log.open()
    return log, 0


async def _append(log: ReplicatedLog, rows: list[LogRow], last: int, within: float = 30) -> int:
    """Append as a writer must while servers fail: retry the same group on Unavailable."""
    seq, _ = await until_ok(lambda: log.append(rows, last), within, "append")
    return seq


async def _append_many(log: ReplicatedLog, last: int, first_seq: int, n: int) -> int:
    for i in range(n):
        last = await _append(log, group(first_seq + 3 * i), last)
    return last


@pytest.mark.timeout(90)
def test_appends_go_on_when_one_server_is_killed(fresh_cluster: NatsCluster) -> None:
    async def scenario() -> None:
        log, last = await _open(fresh_cluster)
        try:
            last = await _append_many(log, last, 1, 5)
            leader = (await log.js.stream_info(log.stream)).cluster
            assert leader is not None and leader.leader is not None
            # Kill a server that does not lead the stream.
            victim = next(i for i, s in enumerate(fresh_cluster.servers) if s.name != leader.leader)
            fresh_cluster.kill(victim)
            last = await _append_many(log, last, 16, 5)
            assert last == 10
            fresh_cluster.restart(victim)
            entries = await collect(log, 0)
            assert [e.rows[0].seq for e in entries] == [1 + 3 * i for i in range(10)]
        finally:
            await log.nc.close()

    asyncio.run(scenario())


@pytest.mark.timeout(90)
def test_appends_resume_when_the_stream_leader_is_killed(fresh_cluster: NatsCluster) -> None:
    async def scenario() -> None:
        log, last = await _open(fresh_cluster)
        try:
            last = await _append_many(log, last, 1, 5)
            info = (await log.js.stream_info(log.stream)).cluster
            assert info is not None and info.leader is not None
            fresh_cluster.kill(fresh_cluster.index_of(info.leader))
            last, took = await until_ok(lambda: log.append(group(16), last), 30, "failover")
            print(f"\nstream leader {info.leader} killed: appends resumed after {took:.2f} s")
            assert last == 6
            new = (await log.js.stream_info(log.stream)).cluster
            assert new is not None and new.leader not in (None, info.leader)
            last = await _append_many(log, last, 19, 4)
            entries = await collect(log, 0)
            assert [e.rows[0].seq for e in entries] == [1 + 3 * i for i in range(10)]
        finally:
            await log.nc.close()

    asyncio.run(scenario())


@pytest.mark.timeout(90)
def test_a_paused_stream_leader_is_replaced_and_rejoins(fresh_cluster: NatsCluster) -> None:
    """SIGSTOP the stream leader: its sockets stay open but it answers nothing. Appends
    resume on a new leader; after SIGCONT the old one follows, and the log has no fork."""

    async def scenario() -> None:
        log, last = await _open(fresh_cluster)
        try:
            last = await _append_many(log, last, 1, 3)
            info = (await log.js.stream_info(log.stream)).cluster
            assert info is not None and info.leader is not None
            paused = fresh_cluster.index_of(info.leader)
            fresh_cluster.pause(paused)
            try:
                start = time.monotonic()
                last = await _append(log, group(10), last, within=30)
                print(
                    f"\nstream leader {info.leader} paused: appends resumed after "
                    f"{time.monotonic() - start:.2f} s"
                )
                last = await _append_many(log, last, 13, 2)
            finally:
                fresh_cluster.resume(paused)
            fresh_cluster.wait_formed()
            last = await _append_many(log, last, 19, 2)
            assert last == 8
            entries = await collect(log, 0)
            assert [e.stream_seq for e in entries] == list(range(1, 9))
            assert [e.rows[0].seq for e in entries] == [1 + 3 * i for i in range(8)]
        finally:
            await log.nc.close()

    asyncio.run(scenario())


@pytest.mark.timeout(120)
def test_all_servers_down_then_back_loses_nothing_acknowledged(
    fresh_cluster: NatsCluster,
) -> None:
    async def scenario() -> None:
        log, last = await _open(fresh_cluster, timeout=2.0)
        try:
            acknowledged: list[list[LogRow]] = []
            for i in range(8):
                rows = group(1 + 3 * i)
                last = await log.append(rows, last)
                acknowledged.append(rows)
            for i in range(len(fresh_cluster.servers)):
                fresh_cluster.kill(i)
            start = time.monotonic()
            with pytest.raises(Unavailable):
                await log.append(group(25), last)
            assert time.monotonic() - start < log.timeout + 2.0
            with pytest.raises(Unavailable):
                await collect(log, 0)
            for i in range(len(fresh_cluster.servers)):
                fresh_cluster.restart(i)
            # The append that was refused is retried: stored once, after the 8 others.
            last, took = await until_ok(lambda: log.append(group(25), last), 60, "recovery")
            print(f"\nall servers restarted: appends went on after {took:.2f} s")
            acknowledged.append(group(25))
            assert last == 9
            last = await _append(log, group(28), last)
            acknowledged.append(group(28))
            entries = await collect(log, 0)
            assert [e.stream_seq for e in entries] == list(range(1, 11))
            assert [list(e.rows) for e in entries] == acknowledged
        finally:
            await log.nc.close()

    asyncio.run(scenario())


def _consumer_host(cluster: NatsCluster, stream: str) -> str | None:
    """The server that leads the (only) consumer on ``stream``, from the monitoring API."""
    for server in cluster.servers:
        if not server.running:
            continue
        jsz = server.monitor("/jsz?accounts=true&streams=true&consumers=true")
        for account in (jsz or {}).get("account_details") or []:
            for detail in account.get("stream_detail") or []:
                if detail.get("name") != stream:
                    continue
                for consumer in detail.get("consumer_detail") or []:
                    leader = (consumer.get("cluster") or {}).get("leader")
                    if leader:
                        return str(leader)
    return None


@pytest.mark.timeout(90)
def test_a_follower_goes_on_when_its_consumers_server_dies(fresh_cluster: NatsCluster) -> None:
    async def scenario() -> None:
        writer, last = await _open(fresh_cluster)
        reader, _ = await _open(fresh_cluster)
        try:
            last = await _append_many(writer, last, 1, 3)
            seen: list[int] = []
            third = asyncio.Event()

            async def follow() -> None:
                async for entry in reader.entries(0, follow=True, poll=0.5):
                    seen.append(entry.stream_seq)
                    if entry.stream_seq == 3:
                        third.set()
                    if entry.stream_seq == 6:
                        return

            task = asyncio.create_task(follow())
            await asyncio.wait_for(third.wait(), 20)
            deadline = time.monotonic() + 10
            while (host := _consumer_host(fresh_cluster, reader.stream)) is None:
                assert time.monotonic() < deadline, "the follower's consumer is not listed"
                await asyncio.sleep(0.1)
            fresh_cluster.kill(fresh_cluster.index_of(host))
            start = time.monotonic()
            last = await _append_many(writer, last, 10, 3)
            await asyncio.wait_for(task, 40)
            print(
                f"\nconsumer's server {host} killed: the follower had entry 6 after "
                f"{time.monotonic() - start:.2f} s"
            )
            assert seen == [1, 2, 3, 4, 5, 6]
        finally:
            await writer.nc.close()
            await reader.nc.close()

    asyncio.run(scenario())
