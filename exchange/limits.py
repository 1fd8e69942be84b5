"""Bounds on what one account may keep in the exchange: a setting, not state.

Every object an account creates costs memory for as long as the exchange runs, so each
kind is bounded per account: sites, pools, open orders per instrument and open orders
across all instruments. An operator may lower a bound between restarts, so the bounds are
not part of the state: the log must replay whatever bounds were in force when it was
written. The core consults only its replaceable ``limits`` attribute; the service replays
the log under :meth:`CoreLimits.unbounded` and sets the configured bounds afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["UNBOUNDED", "CoreLimits"]

#: Larger than any count the exchange can reach.
UNBOUNDED = 2**63 - 1


@dataclass(frozen=True, slots=True)
class CoreLimits:
    """What one account may hold at once; refusals answer 429 (``too_many_*``)."""

    sites: int = 100  # per account: too_many_sites
    pools: int = 1_000  # per account: too_many_pools
    open_orders_per_instrument: int = 1_000  # per account and instrument: too_many_open_orders
    open_orders: int = 10_000  # per account, all instruments: too_many_open_orders

    def __post_init__(self) -> None:
        for name in ("sites", "pools", "open_orders_per_instrument", "open_orders"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer")

    @classmethod
    def unbounded(cls) -> CoreLimits:
        """No bound at all: for replaying a log written under any bounds."""
        return cls(UNBOUNDED, UNBOUNDED, UNBOUNDED, UNBOUNDED)
