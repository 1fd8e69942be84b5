"""How an exchange begins: the operations of a new exchange, and how an old log begins.

The log alone determines the state, so nothing the core starts from may come from
elsewhere: a core starts empty (no catalog, the clock at 0), and a new exchange's first
operations install the packaged hardware catalog and then set the clock to its start
(:func:`genesis_operations`). An upgrade that edits the packaged catalog then changes no
logged exchange: its catalog is in its log.

Logs written before the catalog was logged begin with the clock instead. Such a log is
replayed against the packaged catalog, as it was written, with one warning: that decision
is :func:`begin_replay`, the one place that makes it. This is the only module that reads
the packaged catalog on the core's behalf (the core itself reads nothing).
"""

from __future__ import annotations

import logging

from exchange.catalog_log import install_catalog
from exchange.core import DEFAULT_GRACE_US, ExchangeCore
from exchange.ids import Timestamp
from exchange.limits import CoreLimits
from exchange.operations import AdvanceClock, InstallCatalog, Operation
from pricing import load_builtin_catalog

__all__ = ["begin_replay", "genesis_operations", "new_core", "packaged_catalog", "replaying_core"]

log = logging.getLogger("suanli.genesis")


def packaged_catalog() -> InstallCatalog:
    """The operation installing the catalog packaged with this version of suanli (models
    added, or updated where the exchange has them already; never removed)."""
    return install_catalog(load_builtin_catalog())


def genesis_operations(start_us: int) -> list[Operation]:
    """The first operations of a new exchange: its catalog, then the clock's start."""
    return [packaged_catalog(), AdvanceClock(Timestamp(start_us))]


def begin_replay(core: ExchangeCore, first: Operation) -> bool:
    """Prepare ``core`` (fresh) for a log whose first operation is ``first``; True when
    the log predates the logged catalog and so is replayed against the packaged one.

    A log that begins with :class:`InstallCatalog` carries its catalog: nothing to do. An
    older log began with the clock, on a core that read the packaged catalog when it was
    built; that catalog is installed here, outside the log, and a warning says so once."""
    if isinstance(first, InstallCatalog):
        return False
    log.warning(
        "the operation log begins without its hardware catalog (written before the "
        "catalog was logged): replaying it against the packaged catalog, which must be "
        "the one it was written with"
    )
    core.apply(packaged_catalog())
    core.take_changes()
    return True


def replaying_core() -> ExchangeCore:
    """A fresh core to replay a log into: no per-account bounds (a setting, perhaps
    lowered since the log was written) and none of the refusals added since
    (``admitting`` off): what the log holds was admitted when it was written. Set its
    limits and turn ``admitting`` on before it takes new operations."""
    core = ExchangeCore(limits=CoreLimits.unbounded())
    core.admitting = False
    return core


def new_core(
    start_us: int, *, limits: CoreLimits | None = None, grace_us: int = DEFAULT_GRACE_US
) -> ExchangeCore:
    """A core that has applied :func:`genesis_operations`: how tests and tools build an
    exchange without a database (keep those operations to replay it)."""
    core = ExchangeCore(limits=limits, grace_us=grace_us)
    for op in genesis_operations(start_us):
        core.apply(op)
    core.take_changes()
    return core
