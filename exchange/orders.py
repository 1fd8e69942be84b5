"""Order vocabulary: sides, types, time in force, self-trade prevention, status, result codes."""

from __future__ import annotations

from enum import IntEnum, StrEnum

__all__ = [
    "CancelReason",
    "ExpireReason",
    "OrderStatus",
    "OrderType",
    "ResultCode",
    "SelfTradePrevention",
    "Side",
    "TimeInForce",
]


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(StrEnum):
    GTC = "gtc"  # good till cancelled, at the latest until gate closure
    GTD = "gtd"  # good till a date, expired on the injected exchange clock
    IOC = "ioc"  # immediate or cancel: the unfilled rest expires
    FOK = "fok"  # fill or kill: all at once or nothing, decided before anything changes


class SelfTradePrevention(StrEnum):
    """What happens when an incoming order meets a resting order of the same account."""

    CANCEL_NEWEST = "cancel_newest"  # the incoming order's remainder is cancelled
    CANCEL_OLDEST = "cancel_oldest"  # the resting order is cancelled, matching goes on
    CANCEL_BOTH = "cancel_both"  # both are cancelled
    DECREMENT = "decrement"  # both shrink by the overlap without a trade


class OrderStatus(StrEnum):
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class CancelReason(StrEnum):
    USER = "user"
    CANCEL_ALL = "cancel_all"
    SELF_TRADE = "self_trade"
    GATE_CLOSURE = "gate_closure"
    RISK = "risk"


class ExpireReason(StrEnum):
    GTD = "gtd"  # the order's expire time passed
    IOC = "ioc"  # the unfilled rest of an immediate-or-cancel order
    FOK = "fok"  # a fill-or-kill order that could not fill at once
    MARKET = "market"  # the rest of a market order beyond liquidity or its protection price


class ResultCode(IntEnum):
    """The one outcome enum of every engine command. ``OK`` accepts; anything else rejects.

    Rejections change nothing. ``code`` is the stable snake_case string used in the API.
    """

    OK = 0
    INSTRUMENT_NOT_FOUND = 1
    INSTRUMENT_EXISTS = 2
    INSTRUMENT_NOT_OPEN = 3
    INVALID_TRANSITION = 4
    DUPLICATE_ORDER_ID = 5
    ORDER_NOT_FOUND = 6
    INVALID_QUANTITY = 7
    INVALID_LOT = 8
    QUANTITY_BELOW_MINIMUM = 9
    QUANTITY_ABOVE_MAXIMUM = 10
    INVALID_PRICE = 11
    INVALID_TICK = 12
    PRICE_OUT_OF_BAND = 13
    NO_REFERENCE_PRICE = 14
    POST_ONLY_WOULD_CROSS = 15
    INVALID_TIME_IN_FORCE = 16
    INVALID_EXPIRE_TIME = 17
    INVALID_ORDER_TYPE = 18
    NOTHING_TO_AMEND = 19
    AMEND_BELOW_FILLED = 20
    CLOCK_WENT_BACKWARDS = 21

    @property
    def code(self) -> str:
        return self.name.lower()
