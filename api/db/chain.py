"""The operation log's hash chain: each row carries a digest over the row before it.

``chain(n) = SHA-256(chain(n - 1) || seq || applied_at || kind || 0x00 || payload)``, with
``seq`` and ``applied_at`` as 8-byte big-endian signed integers and ``chain(0)`` the
digest of a fixed label (:data:`GENESIS`). Replaying the log recomputes every link: a
deleted row shows as a gap in ``seq``, an edited row as a link that no longer matches, and
an edited row whose own link was recomputed breaks the link of the row after it. Only
someone who rewrites every later row too goes unnoticed, which is why ``suanli db
verify`` prints the head digest for an operator to keep elsewhere.
"""

from __future__ import annotations

import hashlib
import struct

__all__ = ["GENESIS", "LogDamaged", "link"]

#: ``chain(0)``: the link before the first row.
GENESIS = hashlib.sha256(b"suanli operation log, chain v1").digest()

_INTS = struct.Struct(">qq")


class LogDamaged(RuntimeError):
    """The operation log has a gap, an edited row or a row that does not decode.

    ``seq`` is the first bad sequence number; the message is one line that says what is
    wrong and what to do."""

    def __init__(self, seq: int, what: str) -> None:
        super().__init__(
            f"the operation log is damaged at seq {seq}: {what}; "
            "restore the database from a backup (suanli db verify checks one)"
        )
        self.seq = seq


def link(previous: bytes, seq: int, applied_at: int, kind: str, payload: bytes) -> bytes:
    """The chain digest of one log row, given the digest of the row before it."""
    h = hashlib.sha256(previous)
    h.update(_INTS.pack(seq, applied_at))
    h.update(kind.encode())
    h.update(b"\x00")
    h.update(payload)
    return h.digest()
