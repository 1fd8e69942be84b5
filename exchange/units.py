"""Fixed-point value types: price, quantity and money as integers of minor units.

No binary floating point touches a price, a quantity or an amount. Each is an ``int`` of
fixed minor units, wrapped in a ``NewType`` so that mypy keeps them apart at no run-time
cost on the matching hot path:

* ``Price``: units of ``10**-PRICE_DECIMALS`` currency per PF·h (0.0001 CNY per PF·h).
* ``Quantity``: units of ``10**-QUANTITY_DECIMALS`` PF·h (one micro-PF·h).
* ``Money``: units of ``10**-MONEY_DECIMALS`` currency, where
  ``MONEY_DECIMALS = PRICE_DECIMALS + QUANTITY_DECIMALS`` so that
  ``Price x Quantity`` is always an exact ``Money`` (``notional``).

A tier's tick and lot are multiples of these units, so changing a tier's tick never
reinterprets a stored price. Conversions to and from decimal strings are exact and refuse
what they cannot represent (too many decimals, NaN, infinity, exponents, absurd sizes).
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal
from typing import NewType

__all__ = [
    "MAX_DIGITS",
    "MAX_PRICE",
    "MAX_QUANTITY",
    "MONEY_DECIMALS",
    "PRICE_DECIMALS",
    "QUANTITY_DECIMALS",
    "Money",
    "Price",
    "Quantity",
    "UnitsError",
    "format_money",
    "format_price",
    "format_quantity",
    "format_units",
    "mul_bps_ceil",
    "notional",
    "parse_money",
    "parse_price",
    "parse_quantity",
    "parse_units",
]

PRICE_DECIMALS = 4
QUANTITY_DECIMALS = 6
MONEY_DECIMALS = PRICE_DECIMALS + QUANTITY_DECIMALS
#: Largest number of integer digits accepted from outside; bounds every value we store.
MAX_DIGITS = 18
#: Largest price (100,000,000 per PF·h) and quantity (1,000,000,000 PF·h) the exchange
#: represents: both fit a signed 64-bit column, and so do their tick and lot multiples.
MAX_PRICE = 10**8 * 10**PRICE_DECIMALS
MAX_QUANTITY = 10**9 * 10**QUANTITY_DECIMALS

Price = NewType("Price", int)
Quantity = NewType("Quantity", int)
Money = NewType("Money", int)

# ASCII digits only: Python's \d and int() would also take Arabic-Indic and other digits.
_POW10 = [10**i for i in range(40)]
_DECIMAL_RE = re.compile(r"^([+-]?)([0-9]+)(?:\.([0-9]+))?$")


class UnitsError(ValueError):
    """A decimal string that cannot be represented exactly; ``code`` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_units(text: str | int | Decimal, decimals: int, *, allow_negative: bool = False) -> int:
    """Exact decimal -> integer minor units with ``decimals`` places.

    Accepts ``"12.5"``, ``"12"``, ``12`` or a finite ``Decimal``; refuses floats, NaN,
    infinity, exponents, more than ``decimals`` fractional digits (rather than rounding)
    and more than ``MAX_DIGITS`` integer digits.
    """
    if isinstance(text, (bool, float)):
        raise UnitsError("invalid_decimal", "a decimal must be given as a string, not a float")
    if isinstance(text, Decimal):
        if not text.is_finite():
            raise UnitsError("invalid_decimal", "not a finite decimal")
        text = format(text, "f")
    elif isinstance(text, int):
        text = str(text)
    if not isinstance(text, str) or len(text) > 2 * MAX_DIGITS + 4:
        raise UnitsError("invalid_decimal", "not a decimal string")
    m = _DECIMAL_RE.fullmatch(text.strip())
    if m is None:
        raise UnitsError("invalid_decimal", f"{text!r} is not a plain decimal number")
    sign, whole, frac = m.group(1), m.group(2), m.group(3) or ""
    whole = whole.lstrip("0") or "0"
    if len(whole) > MAX_DIGITS:
        raise UnitsError("out_of_range", f"{text!r} has more than {MAX_DIGITS} integer digits")
    frac = frac.rstrip("0")
    if len(frac) > decimals:
        raise UnitsError("too_many_decimals", f"{text!r} has more than {decimals} decimal places")
    value: int = int(whole + frac.ljust(decimals, "0"))
    if sign == "-":
        value = -value
    if value < 0 and not allow_negative:
        raise UnitsError("negative_value", f"{text!r} is negative")
    return value


def format_units(value: int, decimals: int, *, min_places: int = 0) -> str:
    """Integer minor units -> canonical decimal string, trailing zeros trimmed."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(-value if value < 0 else value, _POW10[decimals])
    if not frac:
        return f"{sign}{whole}.{'0' * min_places}" if min_places else f"{sign}{whole}"
    digits = f"{frac:0{decimals}d}".rstrip("0")
    if len(digits) < min_places:
        digits = digits.ljust(min_places, "0")
    return f"{sign}{whole}.{digits}"


def parse_price(text: str | int | Decimal) -> Price:
    return Price(_bounded(parse_units(text, PRICE_DECIMALS), MAX_PRICE, text))


def parse_quantity(text: str | int | Decimal) -> Quantity:
    return Quantity(_bounded(parse_units(text, QUANTITY_DECIMALS), MAX_QUANTITY, text))


def _bounded(value: int, limit: int, text: object) -> int:
    if value > limit:
        raise UnitsError("out_of_range", f"{text!r} is above the largest value accepted")
    return value


def parse_money(text: str | int | Decimal) -> Money:
    return Money(parse_units(text, MONEY_DECIMALS))


@functools.lru_cache(maxsize=1 << 14)
def format_price(value: int) -> str:
    """Cached: a market quotes few distinct prices, and every order view shows one."""
    return format_units(value, PRICE_DECIMALS)


@functools.lru_cache(maxsize=1 << 14)
def format_quantity(value: int) -> str:
    """Cached: order sizes repeat (lots), and every order view shows three."""
    return format_units(value, QUANTITY_DECIMALS)


@functools.lru_cache(maxsize=1 << 14)
def format_money(value: int) -> str:
    """Cached: holds and fees of a busy market repeat (same prices, same lots)."""
    return format_units(value, MONEY_DECIMALS, min_places=2)


def notional(price: Price, quantity: Quantity) -> Money:
    """Exact cost of ``quantity`` at ``price``: the unit scales were chosen for this."""
    return Money(price * quantity)


def mul_bps_ceil(amount: int, bps: int) -> int:
    """``amount x bps / 10_000`` rounded up: fees are never rounded in a payer's favour."""
    return -((-amount * bps) // 10_000)
