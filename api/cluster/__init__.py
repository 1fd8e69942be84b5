"""The replicated operation log and leadership lease on NATS JetStream.

:mod:`api.cluster.log` keeps the operation log as a replicated JetStream stream, one
message per group commit, with appends deduplicated by message id and fenced by the
expected last stream sequence; :mod:`api.cluster.lease` elects the single writer through
a lease in a replicated key-value bucket with a TTL. See docs/cluster.md.
"""

from __future__ import annotations

from api.cluster.lease import Lease
from api.cluster.log import (
    Fenced,
    LogEntry,
    LogRow,
    ReplicatedLog,
    Unavailable,
    connect,
    decode_rows,
    encode_rows,
)

__all__ = [
    "Fenced",
    "Lease",
    "LogEntry",
    "LogRow",
    "ReplicatedLog",
    "Unavailable",
    "connect",
    "decode_rows",
    "encode_rows",
]
