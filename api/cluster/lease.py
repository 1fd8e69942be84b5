"""Leadership as a lease in a JetStream key-value bucket.

The bucket keeps one revision per key (history 1), is replicated (three replicas by
default) and has a TTL: a value not rewritten within ``ttl`` seconds is removed by the
stream. The lease is one key whose value is the holder's node name.

* :meth:`Lease.acquire` creates the key; it fails while someone holds it (the key exists
  and has not lapsed).
* :meth:`Lease.renew` rewrites the key by compare-and-set on the revision this holder
  wrote last; a failed compare-and-set means the lease lapsed and was taken, or was
  released: it is lost.
* :meth:`Lease.release` deletes the key (only if this holder still has it).
* :meth:`Lease.holder` reads who holds it.

Safety. A holder counts its lease from the moment it *sent* the acquire or renew request
(local monotonic clock), so its own idea of the deadline is never later than the bucket's.
It must renew every ``renew_interval`` (well under ``ttl``) and must stop appending to the
log as soon as :meth:`Lease.valid` turns false, without waiting to learn that someone else
took over. That alone is not enough: a process can be paused (a stopped VM, a long garbage
collection, SIGSTOP) between checking ``valid()`` and its append reaching the stream, and
its clock can be wrong. What makes a stale leader harmless anyway is the log's fencing
(:mod:`api.cluster.log`): every append carries the stream sequence the writer last saw,
and a new leader appends only after reading the stream's last sequence, so the first
append of the new leader makes every later append of the old one fail with
:class:`~api.cluster.log.Fenced`. The lease decides who should write; the fencing
guarantees that two writers never both extend the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from api.cluster.log import TRANSIENT_ERRORS, Unavailable


class Lease:
    """The leadership lease of one node, ``node``, in bucket ``bucket`` under ``key``.

    ``ttl`` is the bucket's TTL (how long a lease lasts without renewal); ``renew_interval``
    is how often :meth:`keep` renews it. Requests time out after ``timeout`` seconds and
    raise :class:`~api.cluster.log.Unavailable` (a timed-out renew may or may not have
    reached the bucket: the holder treats the lease as held only until its own deadline).
    Call :meth:`open` once before anything else.
    """

    def __init__(
        self,
        nc: Client,
        node: str,
        *,
        bucket: str = "suanli_leader",
        key: str = "leader",
        ttl: float = 10.0,
        renew_interval: float | None = None,
        replicas: int = 3,
        timeout: float = 2.0,
    ) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.nc = nc
        self.js = nc.jetstream(timeout=timeout)
        self.node = node
        self.bucket = bucket
        self.key = key
        self.ttl = ttl
        self.renew_interval = ttl / 3 if renew_interval is None else renew_interval
        if not 0 < self.renew_interval < ttl:
            raise ValueError("renew_interval must be positive and shorter than ttl")
        self.replicas = replicas
        self.timeout = timeout
        self._kv: KeyValue | None = None
        self._revision: int | None = None
        self._deadline = 0.0

    async def open(self) -> None:
        """Create the bucket, or bind to it when it exists. Raises ``Unavailable``."""
        try:
            try:
                self._kv = await self.js.key_value(self.bucket)
            except nats.js.errors.BucketNotFoundError:
                self._kv = await self.js.create_key_value(
                    KeyValueConfig(
                        bucket=self.bucket,
                        history=1,
                        ttl=self.ttl,
                        replicas=self.replicas,
                        storage=StorageType.FILE,
                        # Reads go to the bucket's stream leader: a direct get may be
                        # answered by a replica that has not yet applied the last write,
                        # and would show a lease as free while it is held.
                        direct=False,
                    )
                )
        except TRANSIENT_ERRORS as exc:
            raise Unavailable(f"cannot open bucket {self.bucket}: {exc!r}") from exc

    @property
    def kv(self) -> KeyValue:
        if self._kv is None:
            raise RuntimeError("Lease.open() was not called")
        return self._kv

    @property
    def revision(self) -> int | None:
        """The bucket revision this node wrote last while holding the lease, else None."""
        return self._revision

    def valid(self) -> bool:
        """True while this node holds the lease by its own clock: it acquired or renewed it
        less than ``ttl`` seconds before now (counted from when the request was sent)."""
        return self._revision is not None and time.monotonic() < self._deadline

    def remaining(self) -> float:
        """Seconds left before this node must consider the lease lost (0 when not held)."""
        return max(0.0, self._deadline - time.monotonic()) if self._revision is not None else 0.0

    async def acquire(self) -> bool:
        """Take the lease if nobody holds it; True when this node now holds it.

        False when the key exists and has not lapsed (held by another node, or by this
        node under an older revision it no longer tracks). Raises ``Unavailable``.
        """
        sent = time.monotonic()
        try:
            revision = await self.kv.create(self.key, self.node.encode())
        except (nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.KeyNotFoundError):
            # Refused because the key exists. (KeyNotFoundError: the refusal came from the
            # leader, but the read nats-py makes next, to tell a live key from a deleted
            # one, did not see it yet; the refusal is what counts.)
            return False
        except TRANSIENT_ERRORS as exc:
            raise Unavailable(f"acquire: {exc!r}") from exc
        self._revision = revision
        self._deadline = sent + self.ttl
        return True

    async def renew(self) -> bool:
        """Extend the lease by ``ttl`` through compare-and-set on the held revision.

        False (and the lease is forgotten) when this node does not hold it or the
        compare-and-set fails: the lease lapsed, was taken by another node or released.
        Raises ``Unavailable`` when the bucket does not answer; the holder then keeps the
        lease only until :meth:`valid` turns false.
        """
        if self._revision is None:
            return False
        sent = time.monotonic()
        try:
            revision = await self.kv.update(self.key, self.node.encode(), last=self._revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            self._revision = None
            return False
        except TRANSIENT_ERRORS as exc:
            raise Unavailable(f"renew: {exc!r}") from exc
        self._revision = revision
        self._deadline = sent + self.ttl
        return True

    async def release(self) -> None:
        """Give the lease up: delete the key if this node still holds it (by revision), so
        that another node can acquire it without waiting for the TTL."""
        revision, self._revision = self._revision, None
        if revision is None:
            return
        # A refusal (the revision is no longer the key's: the lease lapsed and was taken)
        # or no answer leaves the key alone; either way this node no longer holds it.
        with contextlib.suppress(nats.js.errors.APIError, *TRANSIENT_ERRORS):
            await self.kv.delete(self.key, last=revision)

    async def holder(self) -> str | None:
        """The node that holds the lease according to the bucket, None when nobody does."""
        try:
            entry = await self.kv.get(self.key)
        except nats.js.errors.KeyNotFoundError:
            return None
        except TRANSIENT_ERRORS as exc:
            raise Unavailable(f"holder: {exc!r}") from exc
        return entry.value.decode() if entry.value else None

    async def keep(self) -> None:
        """Renew every ``renew_interval`` while the lease is held; return as soon as it is
        lost (a failed compare-and-set, or no successful renewal before the deadline).

        Run it as a task next to the writer; when it returns, the writer must stop.
        """
        while self.valid():
            await asyncio.sleep(min(self.renew_interval, self.remaining()))
            if not self.valid():
                break
            try:
                if not await self.renew():
                    return
            except Unavailable:
                continue
        self._revision = None
