"""Public market data: books, trades, candles, prices, forward curves, quotes and
metering conversions."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from api.responses.common import InstrumentState, Precision, ResponseModel, Side

__all__ = [
    "BookOut",
    "CandleOut",
    "CandlesOut",
    "CarbonConversionOut",
    "ConversionOut",
    "CurvePointOut",
    "ForwardCurveOut",
    "PriceOut",
    "QuoteOut",
    "TradeOut",
]


#: A price level: ``[price, total quantity]``, two decimal strings. (An array of two
#: strings rather than a tuple: OpenAPI 3.1 tools read ``items`` as one schema.)
Level = Annotated[list[str], Field(min_length=2, max_length=2)]


class BookOut(ResponseModel):
    """Price levels, best first, each ``[price, quantity]``."""

    symbol: str
    sequence: int
    bids: list[Level]
    asks: list[Level]


class TradeOut(ResponseModel):
    id: int
    price: str
    quantity: str
    taker_side: Side
    time: str


class CandleOut(ResponseModel):
    start: str
    open: str
    high: str
    low: str
    close: str
    volume: str
    notional: str
    trades: int


class CandlesOut(ResponseModel):
    """Every candle of the instrument in one answer: ``next_cursor`` is always null."""

    symbol: str
    interval: Literal["1m", "1h", "1d"]
    data: list[CandleOut]
    next_cursor: None


class PriceOut(ResponseModel):
    """A tier's prices; ``scu_factor`` and ``scu_price`` are null when its GPU class has
    no member with the figures an SCU needs."""

    tier: str
    precision: Precision
    reference_price: str
    index_price: str | None
    last_price: str | None
    scu_factor: str | None
    scu_price: str | None


class CurvePointOut(ResponseModel):
    instrument: str
    delivery_start: str
    delivery_end: str
    price: str | None
    source: Literal["mid", "last", "reference", "none"]
    state: InstrumentState


class ForwardCurveOut(ResponseModel):
    tier: str
    data: list[CurvePointOut]


class QuoteOut(ResponseModel):
    instrument: str
    side: Side
    quantity: str
    filled_quantity: str
    fully_fillable: bool
    cost: str
    average_price: str | None
    worst_price: str | None
    levels_used: int


class ConversionOut(ResponseModel):
    """``scu`` is null when the model lacks the figures an SCU needs, ``energy_kwh`` when
    it has no TDP figure."""

    hardware_id: str
    precision: Precision
    count: int
    hours: str
    rated_pf: str
    pf_hours: str
    scu: str | None
    operations: str
    energy_kwh: str | None


class CarbonConversionOut(ConversionOut):
    """A conversion asked with a site's figures (or ``site_id``) also carries carbon."""

    carbon_kg: str
    gco2_per_scu: str
