"""Render core objects as JSON-ready dicts: decimals as strings, times as ISO 8601 UTC."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from api.rules import TIME_PATTERN
from exchange.core import (
    AccountRecord,
    ExchangeCore,
    InstrumentRecord,
    OrderState,
    PoolRecord,
    SiteRecord,
    TierRecord,
)
from exchange.keys import ApiKeyRecord
from exchange.ledger import Transfer
from exchange.orders import OrderType
from exchange.settlement import Contract
from exchange.units import (
    PRICE_DECIMALS,
    format_money,
    format_price,
    format_quantity,
)
from pricing import AcceleratorModel, GpuClass

__all__ = [
    "EPOCH",
    "account_view",
    "contract_view",
    "format_fraction",
    "hardware_view",
    "instrument_view",
    "iso",
    "key_view",
    "order_view",
    "parse_iso",
    "parse_time",
    "pool_view",
    "site_view",
    "tier_view",
    "transfer_view",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso(us: int | None) -> str | None:
    """Exchange microseconds -> ``2026-11-22T10:00:00Z`` (microseconds when not zero)."""
    if us is None:
        return None
    return _iso(us)


@functools.lru_cache(maxsize=4096)
def _iso(us: int) -> str:
    when = EPOCH + timedelta(microseconds=us)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if when.microsecond:
        text += f".{when.microsecond:06d}"
    return text + "Z"


def parse_iso(text: str) -> int:
    """ISO 8601 (``Z`` or an offset; naive means UTC) -> exchange microseconds. For an
    operator's input (``--start``); what a request sends goes through :func:`parse_time`."""
    when = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_time(text: str) -> int:
    """An RFC 3339 time from a request (``2026-11-22T00:00:00Z``, or with an offset such
    as ``+08:00``) -> exchange microseconds; ValueError for anything else: no naive
    times, no spaces, no dates alone, at most six fractional digits (which Python's
    parser would cut silently)."""
    if _TIME.fullmatch(text) is None:
        raise ValueError(f"{text[:40]!r} is not an RFC 3339 time such as 2026-11-22T00:00:00Z")
    return parse_iso(text)


_TIME = re.compile(TIME_PATTERN)


def format_fraction(value: Fraction | None, units_decimals: int, places: int) -> str | None:
    """An exact ratio in minor units, as a decimal string rounded half-even to ``places``."""
    if value is None:
        return None
    # In integers, exactly: Decimal's 28-digit context would round a long quotient first
    # (twice rounded) and refuse to quantize a value of more digits (a 500).
    scaled = Fraction(value) * 10**places / 10**units_decimals
    whole, rest = divmod(scaled.numerator, scaled.denominator)  # floor, 0 <= rest < den
    twice = 2 * rest
    if twice > scaled.denominator or (twice == scaled.denominator and whole % 2):
        whole += 1
    # The sign is the value's, as Decimal keeps it: a small negative value rounds to -0.
    sign, digits = ("-", str(-whole)) if value < 0 else ("", str(whole))
    if places:
        digits = digits.rjust(places + 1, "0")
        digits = f"{digits[:-places]}.{digits[-places:]}".rstrip("0").rstrip(".")
    return sign + digits


def average_price(o: OrderState) -> str | None:
    """The volume-weighted fill price, to 8 places (exact when it falls on a price unit)."""
    if not o.filled:
        return None
    whole, rest = divmod(o.notional, o.filled)
    if not rest:
        return format_price(whole)
    return format_fraction(Fraction(o.notional, o.filled), PRICE_DECIMALS, 8)


def order_view(o: OrderState) -> dict[str, Any]:
    # The enumerations are StrEnums: they encode, and compare, as their text.
    market = o.order_type is OrderType.MARKET
    price = format_price(o.price)
    return {
        "id": o.id,
        "client_order_id": o.client_order_id,
        "instrument": o.symbol,
        "side": o.side,
        "type": o.order_type,
        "price": None if market else price,
        "protection_price": price if market else None,
        "quantity": format_quantity(o.quantity),
        "filled_quantity": format_quantity(o.filled),
        "remaining_quantity": format_quantity(o.remaining),
        "average_price": average_price(o),
        "status": o.status,
        "time_in_force": o.time_in_force,
        "expire_time": None if o.expire_time is None else _iso(o.expire_time),
        "post_only": o.post_only,
        "stp": o.stp,
        "created_at": _iso(o.created_at),
        "updated_at": _iso(o.updated_at),
        "fills": [
            {
                "trade_id": f.trade_id,
                "contract_id": f.contract_id,
                "price": format_price(f.price),
                "quantity": format_quantity(f.quantity),
                "fee": format_money(f.fee),
                "liquidity": f.liquidity,
                "time": _iso(f.ts),
            }
            for f in o.fills
        ]
        if o.fills
        else [],
    }


def account_view(core: ExchangeCore, a: AccountRecord) -> dict[str, Any]:
    balances = core.query.balances(a.id)
    return {
        "id": a.id,
        "name": a.name,
        "role": a.role,
        "currency": core.query.currency(),
        "available": format_money(balances["available"]),
        "held": format_money(balances["held"]),
        "escrow": format_money(balances["escrow"]),
        "collateral": format_money(balances["collateral"]),
    }


def transfer_view(t: Transfer, viewer: int | None = None) -> dict[str, Any]:
    view = {
        "id": t.id,
        "time": iso(t.ts),
        "debit": {"owner": t.debit_owner, "account": t.debit_kind.value},
        "credit": {"owner": t.credit_owner, "account": t.credit_kind.value},
        "amount": format_money(t.amount),
        "code": t.code.value,
        "ref": t.ref,
    }
    if viewer is not None:
        delta = 0
        if t.credit_owner == viewer:
            delta += t.amount
        if t.debit_owner == viewer:
            delta -= t.amount
        view["net"] = format_money(delta)
    return view


def contract_view(core: ExchangeCore, c: Contract, viewer: int) -> dict[str, Any]:
    inst = core.query.instrument(c.symbol)
    side = "buy" if c.buyer == viewer else "sell"
    fee_bps = c.buyer_fee_bps if side == "buy" else c.seller_fee_bps
    return {
        "id": c.id,
        "trade_id": c.trade_id,
        "instrument": c.symbol,
        "side": side,
        "quantity": format_quantity(c.quantity),
        "price": format_price(c.price),
        "notional": format_money(c.notional),
        "fee_bps": fee_bps,
        "liquidity": (c.buyer_liquidity if side == "buy" else c.seller_liquidity).value,
        "state": c.state.value,
        "delivered_quantity": format_quantity(c.delivered_quantity),
        "delivered_device_seconds": c.delivered_device_seconds,
        "delivery_start": iso(inst.instrument.window.start),
        "delivery_end": iso(inst.instrument.window.end),
        "escrow": format_money(c.escrow) if side == "buy" else None,
        "collateral": format_money(c.collateral) if side == "sell" else None,
        "created_at": iso(c.created_at),
        "settled_at": iso(c.settled_at),
        "settlement": None
        if c.settled_at is None
        else {
            "seller_paid": format_money(c.seller_paid),
            "fees": format_money(c.fees),
            "refunded": format_money(c.refunded),
            "penalty": format_money(c.penalty_paid),
        },
    }


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def hardware_view(m: AcceleratorModel) -> dict[str, Any]:
    return {
        "id": m.id,
        "vendor": m.vendor,
        "model": m.model,
        "peak_tflops": {p.value: _dec(v) for p, v in m.peak_tflops.items()},
        "memory_gb": _dec(m.memory_gb),
        "memory_bandwidth_gbs": _dec(m.memory_bandwidth_gbs),
        "tdp_w": _dec(m.tdp_w),
        "source": m.source,
        "quality": m.quality.value,
        "figure_quality": {k: v.value for k, v in m.figure_quality.items()},
        "confirmed": m.confirmed,
    }


def gpu_class_view(rule: GpuClass, members: tuple[str, ...]) -> dict[str, Any]:
    return {
        "code": rule.code,
        "name": rule.name,
        "precision": rule.precision.value,
        "min_dense_tflops": _dec(rule.min_dense_tflops),
        "min_memory_gb": _dec(rule.min_memory_gb),
        "min_memory_bandwidth_gbs": _dec(rule.min_memory_bandwidth_gbs),
        "vendors": sorted(rule.vendors) if rule.vendors is not None else None,
        "models": sorted(rule.models) if rule.models is not None else None,
        "members": list(members),
    }


def _pct(bps: int) -> str:
    return format(Decimal(bps) / 100, "f").rstrip("0").rstrip(".") if bps % 100 else str(bps // 100)


def tier_view(r: TierRecord) -> dict[str, Any]:
    t = r.tier
    return {
        "code": t.code,
        "precision": t.precision.value,
        "gpu_class": t.gpu_class,
        "min_green_grade": t.min_green_grade.label if t.min_green_grade else None,
        "regions": list(t.regions) or None,
        "tick_size": format_price(t.tick),
        "lot_size": format_quantity(t.lot),
        "min_quantity": format_quantity(t.min_quantity),
        "max_quantity": format_quantity(t.max_quantity),
        "price_band_pct": _pct(t.price_band_bps),
        "maker_fee_bps": t.maker_fee_bps,
        "taker_fee_bps": t.taker_fee_bps,
        "shortfall_penalty_pct": _pct(t.shortfall_penalty_bps),
        "reference_price": format_price(r.reference),
        "admin_reference_price": format_price(r.admin_price),
        "arithmetic_intensity": t.arithmetic_intensity,
        "window_hours": t.window_hours,
        "list_ahead_hours": t.list_ahead_hours,
        "gate_closure_minutes": t.gate_closure_minutes,
        "status": r.status.value,
    }


def instrument_view(
    core: ExchangeCore, inst: InstrumentRecord, detail: bool = False
) -> dict[str, Any]:
    i = inst.instrument
    view: dict[str, Any] = {
        "symbol": i.symbol,
        "tier": i.tier.code,
        "delivery_start": iso(i.window.start),
        "delivery_end": iso(i.window.end),
        "gate_closure": iso(i.gate_closure),
        "state": inst.state.value,
    }
    if detail:
        market = core.query.market(i.symbol)
        book = market.book if market else None
        view.update(
            {
                "best_bid": format_price(book.best_bid) if book and book.best_bid else None,
                "best_ask": format_price(book.best_ask) if book and book.best_ask else None,
                "last_price": format_price(inst.last_price) if inst.last_price else None,
                "reference_price": format_price(market.reference_price)
                if market and market.reference_price
                else None,
                "sequence": book.seq if book else 0,
            }
        )
    return view


def site_view(s: SiteRecord) -> dict[str, Any]:
    site = s.site
    carbon = site.pue * site.emission_factor * (1 - site.green_share)
    return {
        "id": s.id,
        "name": s.name,
        "region": site.region.value,
        "location": s.location,
        "pue": _dec(site.pue),
        "green_share": _dec(site.green_share),
        "emission_factor": _dec(site.emission_factor),
        "emission_factor_version": site.emission_factor_version,
        "green_grade": site.green_grade.label,
        "carbon_kg_per_kwh": _dec(carbon),
    }


def pool_view(p: PoolRecord) -> dict[str, Any]:
    return {"id": p.id, "site_id": p.site_id, "hardware_id": p.hardware_id, "count": p.count}


def money(value: int) -> str:
    return format_money(value)


__all__ += ["gpu_class_view", "money"]


def key_view(record: ApiKeyRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "account_id": record.account_id,
        "prefix": record.prefix,
        "origin": record.origin,
        "created_at": iso(record.created_at),
        "revoked_at": None if record.revoked_at is None else iso(record.revoked_at),
    }
