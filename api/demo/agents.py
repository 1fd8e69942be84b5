"""Trading agents: budget-constrained zero-intelligence traders and market makers.

Zero intelligence with a constraint (ZI-C, Gode & Sunder 1993): each buyer has a private
value and each seller a private cost per PF·h for every delivery window. A ZI-C trader
ignores the book and draws its limit price uniformly at random from the prices it can
afford without a loss: a buyer from the band's low end up to its value (less the taker
fee), a seller from its cost (plus the taker fee) up to the band's high end. A buy fills at
or below its limit and a sell at or above, so no ZI-C trader ever trades at a loss; the
budget constraint is the exchange's own: an order that its cash cannot hold is refused.

A market maker is an operator with a pool of its own and internal workloads, so a PF·h is
worth ``m`` to it whether bought or sold. It quotes both sides around the tier's reference
price, never a bid above ``m`` nor an ask below it, within a position limit.

All randomness comes from :class:`random.Random` seeded with strings derived from the demo
seed, one stream per (agent, window), so the order in which windows are visited never
changes anyone's values.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from fractions import Fraction

from api.demo.scenario import LOT, QTY_UNITS, TIERS, BuyerSpec, MakerSpec, SellerSpec, cny
from exchange.ids import AccountId, Symbol, Timestamp
from exchange.operations import PlaceOrder
from exchange.orders import Side, TimeInForce
from exchange.products import Precision
from exchange.units import Price, Quantity
from pricing import AcceleratorModel, rated_pf

__all__ = [
    "Role",
    "buyer_role",
    "diurnal_pct",
    "maker_quotes",
    "maker_role",
    "seller_role",
    "zi_order",
]

_REF = {t.code: t.reference_price for t in TIERS}
_TAKER_BPS = {t.code: t.taker_fee_bps for t in TIERS}
_TICK = {t.code: t.tick for t in TIERS}
_INTENSITY = {t.code: t.arithmetic_intensity for t in TIERS}
_PRECISION = {t.code: Precision(t.precision) for t in TIERS}


def diurnal_pct(hour: int) -> int:
    """Demand shape over the day, in percent: 85 at night, up to 115 mid-afternoon."""
    if 6 <= hour <= 22:
        return 85 + round(30 * math.sin(math.pi * (hour - 6) / 16))
    return 85


def _tou_pct(hour: int) -> int:
    """Time-of-use power tariff effect on an operator's marginal cost, in percent."""
    if hour < 8:
        return 90
    if 17 <= hour <= 21:
        return 110
    return 100


@dataclass(slots=True)
class Role:
    """One trader's stake in one instrument (tier x window)."""

    agent: str
    account_id: int
    symbol: str
    tier: str
    side: Side | None  # None: a market maker (both sides)
    value: int  # price units per PF·h: value (buyer), cost (seller), both (maker)
    limit: int  # quantity units it may buy (buyer), sell (seller) or hold net (maker)
    quote: int = 0  # a maker's quote size
    half_spread_bps: int = 0
    filled_buy: int = 0
    filled_sell: int = 0
    pool_id: int = 0


def _stream(seed: int, name: str, symbol: str) -> random.Random:
    return random.Random(f"suanli-demo:{seed}:{name}:{symbol}")


def _lots_down(quantity: int) -> int:
    return quantity // LOT * LOT


def pool_supply(
    model: AcceleratorModel, devices: int, tier: str, share_pct: int
) -> tuple[Fraction, int]:
    """(rated PF per device in ``tier``, quantity units offered per 1-hour window)."""
    rated = rated_pf(
        model,
        _PRECISION[tier],
        arithmetic_intensity=_INTENSITY[tier],
        allow_unconfirmed=True,
    )
    return rated, _lots_down(int(rated * devices * share_pct * QTY_UNITS / 100))


def seller_role(
    seed: int,
    spec: SellerSpec,
    model: AcceleratorModel,
    tier: str,
    share_pct: int,
    symbol: str,
    hour: int,
) -> Role:
    rng = _stream(seed, spec.name + ":" + tier, symbol)
    rated, supply = pool_supply(model, spec.devices, tier, share_pct)
    per_device_hour = Fraction(cny(spec.site.device_hour_cost))
    noise = rng.randint(85, 120)
    cost = per_device_hour / rated * _tou_pct(hour) * noise / 10_000
    return Role(
        spec.name,
        spec.account_id,
        symbol,
        tier,
        Side.SELL,
        math.ceil(cost),
        supply,
        pool_id=spec.pool_id,
    )


def buyer_role(seed: int, spec: BuyerSpec, symbol: str, hour: int) -> Role:
    rng = _stream(seed, spec.name, symbol)
    pct = rng.randint(spec.value_low_pct, spec.value_high_pct)
    value = _REF[spec.tier] * diurnal_pct(hour) * pct // 10_000
    demand = _lots_down(spec.demand * rng.randint(50, 150) // 100)
    return Role(spec.name, spec.account_id, symbol, spec.tier, Side.BUY, value, max(demand, LOT))


def maker_role(seed: int, spec: MakerSpec, symbol: str, hour: int) -> Role:
    rng = _stream(seed, spec.name, symbol)
    value = _REF[spec.tier] * diurnal_pct(hour) * rng.randint(90, 110) // 10_000
    return Role(
        spec.name,
        spec.account_id,
        symbol,
        spec.tier,
        None,
        value,
        spec.max_position_lots * LOT,
        quote=spec.quote_lots * LOT,
        half_spread_bps=spec.half_spread_bps,
        pool_id=spec.pool_id,
    )


def _round_down(price: int, tick: int) -> int:
    return price // tick * tick


def _round_up(price: int, tick: int) -> int:
    return -(-price // tick) * tick


def buyer_max_price(role: Role) -> int:
    """Highest limit a buyer may bid: value less the worst (taker) fee, on the tick."""
    bps = _TAKER_BPS[role.tier]
    return _round_down(role.value * 10_000 // (10_000 + bps), _TICK[role.tier])


def seller_min_price(role: Role) -> int:
    """Lowest limit a seller may ask: cost plus the worst (taker) fee, on the tick."""
    bps = _TAKER_BPS[role.tier]
    return _round_up(-(-role.value * 10_000 // (10_000 - bps)), _TICK[role.tier])


def zi_order(
    rng: random.Random,
    role: Role,
    open_quantity: int,
    band: tuple[int, int],
    now: int,
    step_us: int,
) -> PlaceOrder | None:
    """A ZI-C limit order for ``role`` (GTD, a few steps), or None when it cannot bid."""
    tick = _TICK[role.tier]
    low, high = band
    left = role.limit - (role.filled_buy if role.side is Side.BUY else role.filled_sell)
    left -= open_quantity
    if left < LOT:
        return None
    if role.side is Side.BUY:
        top = min(buyer_max_price(role), high)
        if top < low:
            return None
        price = _round_down(rng.randint(low, top), tick)
        price = max(price, _round_up(low, tick))
    else:
        bottom = max(seller_min_price(role), low)
        if bottom > high:
            return None
        price = _round_up(rng.randint(bottom, high), tick)
        price = min(price, _round_down(high, tick))
    lots = rng.randint(1, max(1, min(left // LOT, max(20, role.limit // LOT // 4))))
    if role.side is Side.BUY and price > buyer_max_price(role):
        return None
    if role.side is Side.SELL and price < seller_min_price(role):
        return None
    return PlaceOrder(
        account_id=AccountId(role.account_id),
        symbol=Symbol(role.symbol),
        side=role.side or Side.BUY,
        quantity=Quantity(lots * LOT),
        price=Price(price),
        time_in_force=TimeInForce.GTD,
        expire_time=Timestamp(now + rng.randint(1, 4) * step_us),
    )


def maker_quotes(
    role: Role, reference: int, band: tuple[int, int], now: int, step_us: int
) -> list[PlaceOrder]:
    """Post-only bid and ask around ``reference`` for one step. Each side stops once it
    has bought (sold) ``limit`` in the window: the pool's capacity bounds the sales."""
    tick = _TICK[role.tier]
    low, high = band
    half = reference * role.half_spread_bps // 10_000
    out = []
    bid = min(_round_down(reference - half, tick), buyer_max_price(role), _round_down(high, tick))
    if bid >= low and role.filled_buy + role.quote <= role.limit:
        out.append(_maker_order(role, Side.BUY, bid, now, step_us))
    ask = max(_round_up(reference + half, tick), seller_min_price(role), _round_up(low, tick))
    if ask <= high and role.filled_sell + role.quote <= role.limit:
        out.append(_maker_order(role, Side.SELL, ask, now, step_us))
    return out


def _maker_order(role: Role, side: Side, price: int, now: int, step_us: int) -> PlaceOrder:
    return PlaceOrder(
        account_id=AccountId(role.account_id),
        symbol=Symbol(role.symbol),
        side=side,
        quantity=Quantity(role.quote),
        price=Price(price),
        time_in_force=TimeInForce.GTD,
        expire_time=Timestamp(now + step_us),
        post_only=True,
    )
