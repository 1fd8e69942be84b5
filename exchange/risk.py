"""Pre-trade risk arithmetic: what an order must hold, what a fill costs, in minor units.

All amounts are ``Money`` integers (price units x quantity units). Fees and penalties
round *down* to the minor unit (10**-10 of the currency). Rounding down is what makes
holds provably sufficient: ``floor`` is super-additive (the sum of the floors of the parts
never exceeds the floor of the whole), so the fees and penalties of any set of partial
fills at prices no worse than the order's never exceed what the order reserved.

* A buy order holds ``L x Q + fee(L x Q, max(maker, taker))`` where L is its limit (a
  market buy: its protection price). A fill of q at p <= L moves ``p x q + fee(p x q,
  its role's rate)`` to escrow; the hold then keeps exactly what the rest still needs and
  releases the difference at once (price improvement, the cheaper fee rate).
* A sell order holds cash collateral ``penalty(P x Q)``: P is the worst price it can
  trade at, its limit when it rests (makers trade at their own price) or, on entry, the
  better of its limit and the best bid (a taker sells at the bids it meets). Each fill
  moves ``penalty(p x q)`` to collateral locked for the contract.
"""

from __future__ import annotations

__all__ = ["buy_hold", "fee", "penalty", "sell_collateral"]

BPS = 10_000


def fee(notional: int, bps: int) -> int:
    """Fee on a notional, rounded down to the minor unit."""
    return notional * bps // BPS


def penalty(notional: int, bps: int) -> int:
    """Shortfall penalty on an undelivered notional, rounded down to the minor unit."""
    return notional * bps // BPS


def buy_hold(limit: int, quantity: int, max_fee_bps: int) -> int:
    """Cash a buy order must hold to cover every fill of ``quantity`` at or below ``limit``."""
    notional = limit * quantity
    return notional + fee(notional, max_fee_bps)


def sell_collateral(worst_price: int, quantity: int, penalty_bps: int) -> int:
    """Collateral a sell order must hold so that every possible shortfall can be paid."""
    return penalty(worst_price * quantity, penalty_bps)
