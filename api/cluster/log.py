"""The operation log, replicated on a NATS JetStream stream.

One stream message carries one group commit: the group's operation-log rows (``seq``,
``applied_at``, ``kind``, ``payload``, ``chain``, as in the ``operation_log`` table),
encoded with msgspec's MessagePack as an array of arrays. The stream is file-backed and
replicated (three replicas by default); with the servers configured with
``jetstream { sync_interval: always }`` an acknowledged :meth:`ReplicatedLog.append` has
been written and fsynced by a quorum of the replicas before the acknowledgement left the
stream leader.

Two headers make an append safe to retry and safe against a deposed writer:

* ``Nats-Msg-Id`` is derived from the group's first log ``seq`` and a digest of its rows:
  a retry of the same group (after a timeout whose acknowledgement was lost) is
  recognised inside the stream's duplicate window and stored once, and the retry returns
  the original stream sequence.
* ``Nats-Expected-Last-Sequence`` is the stream sequence the writer last saw: the stream
  refuses the message unless it would directly follow that one. A writer that lost its
  lease while someone else appended gets :class:`Fenced` and must step down at once.

Reading goes through :meth:`ReplicatedLog.entries`, an async iterator of
:class:`LogEntry` after a given stream sequence: replay up to the current end, or follow
the stream for as long as the caller iterates.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    Header,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

#: The failures that mean "no answer in time" rather than a refusal: a request timed out,
#: no server answered, no quorum, the connection is down or being re-established.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    nats.errors.TimeoutError,
    asyncio.TimeoutError,
    nats.errors.NoRespondersError,
    nats.js.errors.NoStreamResponseError,
    nats.js.errors.ServiceUnavailableError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
)

#: What a read retries on: the transient failures, and any refusal of the API (a
#: consumer that vanished with its server, a stream without leader).
_RETRY_READ: tuple[type[BaseException], ...] = (*TRANSIENT_ERRORS, nats.js.errors.APIError)

#: JetStream's error code for "wrong last sequence" (JSStreamWrongLastSequenceErrF).
WRONG_LAST_SEQUENCE = 10071


class Fenced(RuntimeError):
    """The stream refused an append because its expected last sequence was stale: another
    writer has appended since. The writer holding this error is no longer the leader and
    must stop writing at once."""

    def __init__(self, expected_last: int, description: str | None) -> None:
        super().__init__(f"fenced: expected last sequence {expected_last} is stale ({description})")
        self.expected_last = expected_last


class Unavailable(RuntimeError):
    """The stream did not answer in time or has no quorum (no leader, servers down,
    connection lost). Whether the append was stored is unknown: retry the same group with
    the same ``expected_last``, which the message id makes harmless."""


class LogRow(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One operation-log row, as stored in the ``operation_log`` table."""

    seq: int
    applied_at: int
    kind: str
    payload: bytes
    chain: bytes


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One stream message: its stream sequence and the group commit's rows."""

    stream_seq: int
    rows: tuple[LogRow, ...]


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(tuple[LogRow, ...])


def encode_rows(rows: Sequence[LogRow]) -> bytes:
    """The message body of one group commit."""
    return _encoder.encode(tuple(rows))


def decode_rows(data: bytes) -> tuple[LogRow, ...]:
    """The rows of one message body (raises ``msgspec.DecodeError`` when malformed)."""
    return _decoder.decode(data)


async def connect(
    servers: Sequence[str],
    *,
    connect_timeout: float = 2.0,
    reconnect_time_wait: float = 0.25,
    name: str | None = None,
) -> Client:
    """A NATS connection to any of ``servers`` that reconnects forever, trying the next
    server in the list when one goes away."""
    return await nats.connect(
        servers=list(servers),
        name=name,
        connect_timeout=connect_timeout,
        reconnect_time_wait=reconnect_time_wait,
        max_reconnect_attempts=-1,
        allow_reconnect=True,
        ping_interval=1,
        max_outstanding_pings=3,
    )


class ReplicatedLog:
    """The operation log on one JetStream stream.

    ``timeout`` bounds every request to the cluster (an append, a stream lookup): past it
    the call raises :class:`Unavailable`. Call :meth:`open` once before anything else.
    """

    def __init__(
        self,
        nc: Client,
        *,
        stream: str = "SUANLI_LOG",
        subject: str = "suanli.log",
        replicas: int = 3,
        duplicate_window: float = 120.0,
        timeout: float = 5.0,
    ) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(timeout=timeout)
        self.stream = stream
        self.subject = subject
        self.replicas = replicas
        self.duplicate_window = duplicate_window
        self.timeout = timeout

    async def open(self) -> None:
        """Create the stream, or bind to it when it exists with the same subject.

        Raises :class:`Unavailable` when the cluster cannot answer, ``ValueError`` when a
        stream of that name exists for another subject.
        """
        config = StreamConfig(
            name=self.stream,
            subjects=[self.subject],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            num_replicas=self.replicas,
            duplicate_window=self.duplicate_window,
            discard=DiscardPolicy.NEW,
            max_msgs=-1,
            max_bytes=-1,
            max_age=0,
            deny_delete=True,
            deny_purge=True,
            allow_rollup_hdrs=False,
        )
        try:
            try:
                info = await self.js.stream_info(self.stream)
            except nats.js.errors.NotFoundError:
                info = await self.js.add_stream(config)
        except TRANSIENT_ERRORS as exc:
            raise Unavailable(f"cannot open stream {self.stream}: {exc!r}") from exc
        if info.config.subjects != [self.subject]:
            raise ValueError(
                f"stream {self.stream} exists for subjects {info.config.subjects}, "
                f"not [{self.subject!r}]"
            )

    def message_id(self, rows: Sequence[LogRow], body: bytes | None = None) -> str:
        """The ``Nats-Msg-Id`` of a group commit: the stream name, the group's first log
        seq and a digest of its encoded rows.

        The digest matters. JetStream answers a duplicate message id with the sequence of
        the message stored first *before* it checks the expected last sequence, so an id
        made of the first seq alone would let a deposed leader whose group starts at the
        same seq as its successor's take the successor's acknowledgement for its own
        (different) rows. With the digest only a byte-identical group is deduplicated.
        """
        digest = hashlib.blake2b(body or encode_rows(rows), digest_size=16).hexdigest()
        return f"{self.stream}:{rows[0].seq}:{digest}"

    async def append(self, rows: Sequence[LogRow], expected_last: int) -> int:
        """Store one group commit after stream sequence ``expected_last`` and return its
        stream sequence.

        Returns only once the stream leader acknowledged the message (stored on a quorum
        of replicas). A retry of the same group (same first ``seq``) within the duplicate
        window returns the stream sequence of the first, stored once. Raises
        :class:`Fenced` when the stream's last sequence is not ``expected_last`` and
        :class:`Unavailable` on a timeout or without quorum.
        """
        if not rows:
            raise ValueError("a group commit has at least one row")
        body = encode_rows(rows)
        headers: dict[str, Any] = {
            Header.MSG_ID: self.message_id(rows, body),
            Header.EXPECTED_LAST_SEQUENCE: str(expected_last),
        }
        try:
            ack = await self.js.publish(self.subject, body, timeout=self.timeout, headers=headers)
        except nats.js.errors.APIError as exc:
            if exc.err_code == WRONG_LAST_SEQUENCE:
                raise Fenced(expected_last, exc.description) from exc
            if isinstance(exc, nats.js.errors.ServiceUnavailableError) or exc.code == 503:
                raise Unavailable(f"append refused: {exc!r}") from exc
            raise
        except TRANSIENT_ERRORS as exc:
            raise Unavailable(f"append not acknowledged: {exc!r}") from exc
        if ack.stream != self.stream:
            raise RuntimeError(f"append stored in stream {ack.stream}, not {self.stream}")
        return int(ack.seq)

    async def last_sequence(self) -> int:
        """The stream sequence of the last stored message (0 for an empty stream), as the
        stream leader reports it. Raises :class:`Unavailable`."""
        try:
            info = await self.js.stream_info(self.stream)
        except TRANSIENT_ERRORS as exc:
            raise Unavailable(f"stream info: {exc!r}") from exc
        return int(info.state.last_seq)

    async def entries(
        self,
        after: int = 0,
        *,
        follow: bool = False,
        batch: int = 256,
        poll: float = 1.0,
    ) -> AsyncIterator[LogEntry]:
        """The stored messages after stream sequence ``after``, in order, each once.

        Without ``follow`` the iterator ends at the stream's last sequence as of the
        call (replay). With ``follow`` it goes on yielding messages as they are stored,
        for as long as the caller iterates (a follower tailing the stream); ``poll`` is
        how long one fetch waits for new messages.

        Reads through an ephemeral pull consumer (no acknowledgements, in memory on one
        server). When that consumer or its server goes away, or the connection is
        re-established (nats-py does not restore consumers across reconnects), the
        consumer is created again from the next sequence wanted, so nothing is skipped
        or repeated. While following, an unavailable cluster only delays the next entry.
        A replay raises :class:`Unavailable` when its end cannot be learnt or it makes
        no progress for three times the request timeout; the caller resumes from the
        last entry it received.
        """
        end = await self.last_sequence() if not follow else None
        last = after
        sub: JetStreamContext.PullSubscription | None = None
        stall = 3 * max(self.timeout, poll)
        progress = time.monotonic()
        try:
            while end is None or last < end:
                if end is not None and time.monotonic() - progress > stall:
                    raise Unavailable(f"replay stalled after stream sequence {last}")
                if sub is None:
                    try:
                        sub = await self._consumer(last + 1)
                    except _RETRY_READ:
                        await asyncio.sleep(min(poll, 0.25))
                        continue
                want = batch if end is None else max(1, min(batch, end - last))
                try:
                    msgs = await sub.fetch(want, timeout=poll)
                except nats.errors.TimeoutError:
                    # Nothing new within ``poll``, or the consumer is gone: create it again
                    # when the stream holds more than it delivered (a replay always does).
                    if end is not None or await self._behind(last):
                        await self._drop(sub)
                        sub = None
                    continue
                except _RETRY_READ:
                    await self._drop(sub)
                    sub = None
                    await asyncio.sleep(min(poll, 0.25))
                    continue
                for msg in msgs:
                    seq = int(msg.metadata.sequence.stream)
                    if seq <= last:
                        continue
                    if seq != last + 1:
                        # A consumer skipped ahead (it should not): start again from the gap.
                        await self._drop(sub)
                        sub = None
                        break
                    last = seq
                    progress = time.monotonic()
                    yield LogEntry(seq, decode_rows(msg.data))
                    if end is not None and last >= end:
                        break
        finally:
            if sub is not None:
                await self._drop(sub)

    async def _consumer(self, start: int) -> JetStreamContext.PullSubscription:
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=30.0,
            num_replicas=1,
            mem_storage=True,
        )
        return await self.js.pull_subscribe(self.subject, stream=self.stream, config=config)

    async def _drop(self, sub: JetStreamContext.PullSubscription) -> None:
        # The consumer lapses by itself (inactive_threshold); removing it is a courtesy.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(sub.unsubscribe(), self.timeout)

    async def _behind(self, last: int) -> bool:
        try:
            return await self.last_sequence() > last
        except Unavailable:
            return False
