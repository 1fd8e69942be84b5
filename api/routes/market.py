"""Public market data: books, trades, candles, prices, forward curves, quotes, metering."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from api.archive import archived_trades
from api.deps import ContextDep, PageDep, optional_account, paginate
from api.errors import ApiError
from api.responses import (
    BookOut,
    CandlesOut,
    CarbonConversionOut,
    ConversionOut,
    ForwardCurveOut,
    Page,
    PriceOut,
    QuoteOut,
    TradeOut,
    answers,
)
from api.rules import DecimalRule
from api.schemas import (
    EMISSION_FACTOR,
    GREEN_SHARE,
    HOURS,
    PUE,
    QUANTITY,
    Code,
    DecimalField,
    Digits,
    HardwareId,
    Id,
    Precision,
    Symbol,
)
from api.views import format_fraction, iso
from exchange.core import AccountRecord, ExchangeCore, Rejected
from exchange.ids import Timestamp
from exchange.lifecycle import InstrumentState
from exchange.orders import Side
from exchange.products import Precision as PrecisionKind
from exchange.refusals import Refusal
from exchange.units import (
    PRICE_DECIMALS,
    Price,
    Quantity,
    format_money,
    format_price,
    format_quantity,
)
from pricing import (
    Interval,
    PricingError,
    TradePrint,
    aggregate_candles,
    carbon_kg,
    convert,
    forward_curve,
    gco2_per_scu,
    quote_book,
    scu_per_pf_hour,
    tier_index,
)

router = APIRouter(prefix="/v1", tags=["market data"])


@router.get("/instruments/{symbol}/book", response_model=BookOut, **answers(404, 422))
async def book(
    symbol: Symbol, ctx: ContextDep, depth: Annotated[int, Query(ge=1, le=1000), Digits()] = 50
) -> dict[str, Any]:
    core = ctx.service.core
    inst = core.query.instrument(symbol)
    b = core.query.book(inst.symbol)
    return {
        "symbol": inst.symbol,
        "sequence": b.seq,
        "bids": [[format_price(p), format_quantity(q)] for p, q in b.depth(Side.BUY, depth)],
        "asks": [[format_price(p), format_quantity(q)] for p, q in b.depth(Side.SELL, depth)],
    }


@router.get("/instruments/{symbol}/trades", response_model=Page[TradeOut], **answers(404, 422))
async def trades(symbol: Symbol, ctx: ContextDep, page: PageDep) -> dict[str, Any]:
    """Trades of one instrument, oldest first; page on with the cursor."""
    core = ctx.service.core
    inst = core.query.instrument(symbol)
    if inst.state is InstrumentState.SETTLED:  # its contracts left the core: the table's
        rows = await archived_trades(
            ctx.service, inst.symbol, after=page.cursor, limit=page.limit + 1
        )

        def row(t: Any) -> dict[str, Any]:
            return {
                "id": t.id,
                "price": format_price(t.price),
                "quantity": format_quantity(t.quantity),
                "taker_side": t.taker_side,
                "time": iso(t.ts),
            }

        return paginate(rows, page, lambda t: t.id, row)
    contracts = core.query.contracts_of_instrument(inst)

    def render(c: Any) -> dict[str, Any]:
        taker_side = "buy" if c.buyer_liquidity.value == "taker" else "sell"
        return {
            "id": c.trade_id,
            "price": format_price(c.price),
            "quantity": format_quantity(c.quantity),
            "taker_side": taker_side,
            "time": iso(c.created_at),
        }

    return paginate(contracts, page, lambda c: c.trade_id, render)


@router.get("/instruments/{symbol}/candles", response_model=CandlesOut, **answers(404, 422))
async def candles(
    symbol: Symbol,
    ctx: ContextDep,
    interval: Literal["1m", "1h", "1d"] = "1h",
) -> dict[str, Any]:
    core = ctx.service.core
    inst = core.query.instrument(symbol)
    prints = inst.trades
    if inst.state is InstrumentState.SETTLED:  # its trades left the core: the table's
        rows = await archived_trades(ctx.service, inst.symbol, after=None, limit=None)
        prints = [
            TradePrint(inst.symbol, Price(t.price), Quantity(t.quantity), Timestamp(t.ts))
            for t in rows
        ]
    bars = aggregate_candles(prints, Interval.parse(interval))
    return {
        "symbol": inst.symbol,
        "interval": interval,
        "data": [
            {
                "start": iso(c.start),
                "open": format_price(c.open),
                "high": format_price(c.high),
                "low": format_price(c.low),
                "close": format_price(c.close),
                "volume": format_quantity(c.volume),
                "notional": format_money(c.notional),
                "trades": c.trade_count,
            }
            for c in bars
        ],
        "next_cursor": None,
    }


def _scu_factor(core: ExchangeCore, code: str) -> Fraction | None:
    query = core.query
    record = query.known_tier(code)
    members = query.class_members(record.tier.gpu_class)
    try:
        return scu_per_pf_hour(record.tier.precision, members, query.models())
    except PricingError:
        return None


@router.get("/prices", response_model=Page[PriceOut], **answers(422))
async def prices(ctx: ContextDep, page: PageDep) -> dict[str, Any]:
    """Per tier: reference price, trailing index, last trade, and the price per SCU."""
    core = ctx.service.core

    def render(x: Any) -> dict[str, Any]:
        _, record = x
        code = record.tier.code
        index = tier_index(record.trades, core.query.now())  # type: ignore[arg-type]
        last = record.trades[-1].price if record.trades else None
        factor = _scu_factor(core, code)
        basis = index.value if index is not None else Fraction(record.reference)
        return {
            "tier": code,
            "precision": record.tier.precision.value,
            "reference_price": format_price(record.reference),
            "index_price": format_fraction(index.value, PRICE_DECIMALS, 4) if index else None,
            "last_price": format_price(last) if last is not None else None,
            "scu_factor": format_fraction(factor, 0, 6) if factor else None,
            "scu_price": format_fraction(basis / factor, PRICE_DECIMALS, 4) if factor else None,
        }

    items = list(enumerate(core.query.tiers(), start=1))
    return paginate(items, page, lambda x: x[0], render)


@router.get("/tiers/{code}/forward-curve", response_model=ForwardCurveOut, **answers(404, 422))
async def curve(code: Code, ctx: ContextDep) -> dict[str, Any]:
    """Price by delivery window: book mid, else last trade, else the reference price."""
    core = ctx.service.core
    record = core.query.tier(code)
    if record is None:
        raise ApiError(Refusal.TIER_NOT_FOUND, tier=code)
    items = core.query.curve_inputs(code)
    points = forward_curve(items)
    return {
        "tier": code,
        "data": [
            {
                "instrument": p.symbol,
                "delivery_start": iso(p.window_start),
                "delivery_end": iso(p.window_end),
                "price": format_fraction(p.price, PRICE_DECIMALS, 4),
                "source": p.source.value,
                "state": core.query.instrument(p.symbol).state.value,
            }
            for p in points
        ],
    }


@router.get("/quote", response_model=QuoteOut, **answers(404, 422))
async def quote(
    ctx: ContextDep,
    instrument: Annotated[Symbol, Query()],
    side: Literal["buy", "sell"],
    quantity: Annotated[str, DecimalField(QUANTITY), Query()],
) -> dict[str, Any]:
    """The cost of ``quantity`` walking the current book (a buy walks the asks)."""
    core = ctx.service.core
    inst = core.query.instrument(instrument)
    q = QUANTITY.parse(quantity, "quantity") or 0
    b = core.query.book(inst.symbol)
    levels = b.depth(Side.SELL if side == "buy" else Side.BUY)
    result = quote_book(levels, Quantity(q), side)
    return {
        "instrument": inst.symbol,
        "side": side,
        "quantity": format_quantity(q),
        "filled_quantity": format_quantity(result.filled),
        "fully_fillable": result.fully_fillable,
        "cost": format_money(result.cost),
        "average_price": format_fraction(result.average_price, PRICE_DECIMALS, 8),
        "worst_price": format_price(result.worst_price) if result.worst_price else None,
        "levels_used": result.levels_used,
    }


def _decimal_param(text: str | None, rule: DecimalRule, name: str) -> Decimal | None:
    value = rule.parse(text, name)
    return None if value is None else Decimal(value).scaleb(-rule.places)


@router.get(
    "/metering/convert",
    response_model=ConversionOut | CarbonConversionOut,
    **answers(404, 422, key="optional"),
)
async def metering_convert(
    ctx: ContextDep,
    hardware_id: Annotated[HardwareId, Query()],
    count: Annotated[int, Query(ge=1, le=1_000_000), Digits()] = 1,
    hours: Annotated[str, DecimalField(HOURS), Query()] = "1",
    precision: Annotated[Precision, Query()] = "fp16",
    pue: Annotated[str | None, DecimalField(PUE), Query()] = None,
    emission_factor: Annotated[str | None, DecimalField(EMISSION_FACTOR), Query()] = None,
    green_share: Annotated[str | None, DecimalField(GREEN_SHARE), Query()] = None,
    site_id: Annotated[Id | None, Query()] = None,
    account: Annotated[AccountRecord | None, Depends(optional_account)] = None,
) -> dict[str, Any]:
    """model x count x hours -> PF·h, SCU, operations, energy; with ``pue``,
    ``emission_factor`` and ``green_share`` (or ``site_id`` of one of the caller's own
    sites, with its key) also carbon."""
    core = ctx.service.core
    model = core.query.model(hardware_id)
    if model is None:
        raise ApiError(Refusal.HARDWARE_NOT_FOUND, hardware_id=hardware_id)
    prec = PrecisionKind(precision)
    h = _decimal_param(hours, HOURS, "hours") or Decimal(0)
    try:
        conv = convert(model, count, Fraction(h), prec)
    except PricingError as exc:
        raise Rejected(exc.code, **exc.fields) from exc
    out: dict[str, Any] = {
        "hardware_id": model.id,
        "precision": prec.value,
        "count": count,
        "hours": format(h.normalize(), "f"),
        "rated_pf": format_fraction(conv.rated_pf, 0, 6),
        "pf_hours": format_fraction(conv.pf_hours, 0, 6),
        "scu": format_fraction(conv.scu, 0, 6),
        "operations": str(int(conv.operations))
        if conv.operations.denominator == 1
        else format_fraction(conv.operations, 0, 0),
        "energy_kwh": format_fraction(conv.energy_kwh, 0, 6),
    }
    if site_id is not None:
        site = core.query.site(site_id)
        # A site's figures are its owner's: anyone else (or no key) does not see it exists.
        if site is None or account is None or site.owner != account.id:
            raise ApiError(Refusal.SITE_NOT_FOUND, site_id=site_id)
        p, ef, g = site.site.pue, site.site.emission_factor, site.site.green_share
    elif pue is not None and emission_factor is not None and green_share is not None:
        p = _decimal_param(pue, PUE, "pue") or Decimal(0)
        ef = _decimal_param(emission_factor, EMISSION_FACTOR, "emission_factor") or Decimal(0)
        g = _decimal_param(green_share, GREEN_SHARE, "green_share") or Decimal(0)
    else:
        return out
    try:
        if conv.energy_kwh is None:
            raise Refusal.UNKNOWN_FIGURE.reject(model_id=model.id, figure="TDP figure")
        out["carbon_kg"] = format_fraction(carbon_kg(conv.energy_kwh, p, ef, g), 0, 6)
        out["gco2_per_scu"] = format_fraction(gco2_per_scu(model, p, ef, g), 0, 3)
    except PricingError as exc:
        raise Rejected(exc.code, **exc.fields) from exc
    return out
