"""OHLCV candles per instrument from trade prints: pure, incremental-friendly.

A candle covers ``[start, start + interval)`` with ``start`` aligned to the interval from
the Unix epoch (UTC). Intervals with no trades produce no candle. ``update_candle`` folds
one trade into the open candle and hands back the finished one when the trade starts a new
interval, so a live feed and a batch recomputation give the same candles.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import IntEnum

from exchange.ids import Symbol, Timestamp
from exchange.refusals import Refusal
from exchange.units import Money, Price, Quantity, notional
from pricing.errors import PricingError
from pricing.trades import TradePrint

__all__ = ["Candle", "Interval", "aggregate_candles", "update_candle"]


class Interval(IntEnum):
    """Candle length in microseconds."""

    M1 = 60_000_000
    H1 = 3_600_000_000
    D1 = 86_400_000_000

    @classmethod
    def parse(cls, text: str) -> Interval:
        table = {"1m": cls.M1, "1h": cls.H1, "1d": cls.D1}
        if text not in table:
            raise PricingError(Refusal.INVALID_INTERVAL, interval=repr(text))
        return table[text]


@dataclass(frozen=True, slots=True)
class Candle:
    symbol: Symbol
    interval: Interval
    start: Timestamp
    open: Price
    high: Price
    low: Price
    close: Price
    volume: Quantity
    notional: Money
    trade_count: int

    @property
    def end(self) -> Timestamp:
        return Timestamp(self.start + self.interval)


def _open_candle(trade: TradePrint, interval: Interval) -> Candle:
    start = Timestamp(trade.ts - trade.ts % interval)
    return Candle(
        symbol=trade.symbol,
        interval=interval,
        start=start,
        open=trade.price,
        high=trade.price,
        low=trade.price,
        close=trade.price,
        volume=trade.quantity,
        notional=notional(trade.price, trade.quantity),
        trade_count=1,
    )


def update_candle(
    current: Candle | None, trade: TradePrint, interval: Interval
) -> tuple[Candle | None, Candle]:
    """Fold ``trade`` in: returns (finished candle or None, open candle).

    Trades must arrive in time order per symbol; an earlier trade is refused.
    """
    if current is None:
        return None, _open_candle(trade, interval)
    if trade.symbol != current.symbol or current.interval != interval:
        raise PricingError(Refusal.CANDLE_MISMATCH)
    if trade.ts < current.start:
        raise PricingError(Refusal.OUT_OF_ORDER_TRADE)
    if trade.ts >= current.end:
        return current, _open_candle(trade, interval)
    updated = replace(
        current,
        high=max(current.high, trade.price),
        low=min(current.low, trade.price),
        close=trade.price,
        volume=Quantity(current.volume + trade.quantity),
        notional=Money(current.notional + notional(trade.price, trade.quantity)),
        trade_count=current.trade_count + 1,
    )
    return None, updated


def aggregate_candles(trades: Iterable[TradePrint], interval: Interval) -> list[Candle]:
    """All candles of all symbols in ``trades``, ordered by (symbol, start)."""
    open_by_symbol: dict[Symbol, Candle] = {}
    finished: list[Candle] = []
    for trade in trades:
        done, current = update_candle(open_by_symbol.get(trade.symbol), trade, interval)
        if done is not None:
            finished.append(done)
        open_by_symbol[trade.symbol] = current
    finished.extend(open_by_symbol.values())
    return sorted(finished, key=lambda c: (c.symbol, c.start))
