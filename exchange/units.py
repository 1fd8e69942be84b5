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

The decimal grammar is strict and lives here once: ASCII digits, at most one point with
digits on both sides, a leading ``-`` only where negatives are allowed; no spaces, no
``+``, no exponent, no other script's digits. :func:`decimal_pattern` writes the same
grammar (with a range) as a regular expression for the published API schema.
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal
from typing import NewType

from exchange.refusals import Refusal

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
    "decimal_pattern",
    "format_money",
    "format_price",
    "format_quantity",
    "format_units",
    "integer_pattern",
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
# Nothing is stripped: " 20", "20\u00a0" and "+20" are not what a client means to send.
_POW10 = [10**i for i in range(40)]
_DECIMAL_RE = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")


class UnitsError(ValueError):
    """A decimal string that cannot be represented exactly; ``code`` is stable, the
    message its template with ``fields``."""

    def __init__(self, code: Refusal, /, **fields: object) -> None:
        super().__init__(code.message(**fields))
        self.code = code


def parse_units(text: str | int | Decimal, decimals: int, *, allow_negative: bool = False) -> int:
    """Exact decimal -> integer minor units with ``decimals`` places.

    Accepts ``"12.5"``, ``"12"``, ``12`` or a finite ``Decimal``; refuses floats, NaN,
    infinity, exponents, spaces, a ``+``, more than ``decimals`` fractional digits (rather
    than rounding) and more than ``MAX_DIGITS`` integer digits. A ``-`` (even ``"-0"``)
    is ``negative_value`` unless ``allow_negative``.
    """
    if isinstance(text, (bool, float)):
        raise UnitsError(
            Refusal.INVALID_DECIMAL,
            subject="a decimal",
            problem="must be given as a string, not a float",
        )
    if isinstance(text, Decimal):
        if not text.is_finite():
            raise UnitsError(Refusal.INVALID_DECIMAL, subject=text, problem="is not finite")
        text = format(text, "f")
    elif isinstance(text, int):
        text = str(text)
    if not isinstance(text, str) or len(text) > 2 * MAX_DIGITS + 4:
        raise UnitsError(
            Refusal.INVALID_DECIMAL, subject="the value", problem="is not a decimal string"
        )
    m = _DECIMAL_RE.fullmatch(text)
    if m is None:
        raise UnitsError(
            Refusal.INVALID_DECIMAL, subject=repr(text), problem="is not a plain decimal number"
        )
    sign, whole, frac = m.group(1), m.group(2), m.group(3) or ""
    whole = whole.lstrip("0") or "0"
    if len(whole) > MAX_DIGITS:
        raise UnitsError(
            Refusal.OUT_OF_RANGE,
            value=repr(text),
            problem=f"has more than {MAX_DIGITS} integer digits",
        )
    frac = frac.rstrip("0")
    if len(frac) > decimals:
        raise UnitsError(Refusal.TOO_MANY_DECIMALS, value=repr(text), decimals=decimals)
    if sign and not allow_negative:
        raise UnitsError(Refusal.NEGATIVE_VALUE, subject=repr(text), problem="is negative")
    value: int = int(whole + frac.ljust(decimals, "0"))
    return -value if sign else value


def decimal_pattern(
    decimals: int | None,
    *,
    minimum: int = 0,
    positive: bool = False,
    maximum: int | None = None,
) -> str:
    """The texts :func:`parse_units` accepts with ``decimals`` places (``None``: any number),
    as an anchored regular expression that JSON Schema (ECMA-262) and Python read alike.

    The value is bounded in whole units: at least ``minimum`` (or above zero with
    ``positive``) and at most ``maximum``; without one, below ``10**MAX_DIGITS``. Leading
    zeros and trailing zeros past the places are accepted, as :func:`parse_units` does.
    """
    if decimals is None:
        any_fraction, nonzero_fraction = r"(?:\.[0-9]+)?", r"\.[0-9]*[1-9][0-9]*"
    elif decimals == 0:
        any_fraction, nonzero_fraction = r"(?:\.0+)?", ""
    else:
        any_fraction = rf"(?:\.[0-9]{{1,{decimals}}}0*)?"
        nonzero_fraction = rf"\.[0-9]{{0,{decimals - 1}}}[1-9]0*"
    low = max(minimum, 1) if positive else minimum
    high = _POW10[MAX_DIGITS] - 1 if maximum is None else maximum - 1
    forms = []
    if low <= high:
        forms.append(f"0*(?:{_integer_range(low, high)}){any_fraction}")
    if positive and minimum == 0 and nonzero_fraction:
        forms.append(f"0+{nonzero_fraction}")
    if maximum is not None and maximum >= low:
        forms.append(rf"0*{maximum}(?:\.0+)?")
    return f"^(?:{'|'.join(forms)})$"


def integer_pattern(low: int, high: int) -> str:
    """The integers ``low``..``high`` (non-negative) in ASCII digits, leading zeros
    allowed, as an anchored regular expression (for ids and cursors sent as text)."""
    return f"^0*(?:{_integer_range(low, high)})$"


def _integer_range(low: int, high: int) -> str:
    """A regular expression for the integers ``low``..``high`` written without leading
    zeros: one alternative per run of equal width."""
    parts: list[str] = []
    full: list[int] = []  # widths whose every number (10**(w-1) to 10**w - 1) is in range
    for width in range(len(str(low)), len(str(high)) + 1):
        a = max(low, _POW10[width - 1] if width > 1 else 0)
        b = min(high, _POW10[width] - 1)
        if width > 1 and (a, b) == (_POW10[width - 1], _POW10[width] - 1):
            full.append(width - 1)
        elif a <= b:
            parts += _same_width(str(a), str(b))
    if full:  # consecutive by construction: one branch for all of them
        counts = f"{full[0]}" if len(full) == 1 else f"{full[0]},{full[-1]}"
        parts.append(f"[1-9][0-9]{{{counts}}}")
    return "|".join(parts)


def _same_width(a: str, b: str) -> list[str]:
    """Alternatives matching the digit strings from ``a`` to ``b`` (of equal width)."""
    if not a:
        return [""]
    if a[0] == b[0]:
        return [a[0] + _group(_same_width(a[1:], b[1:]))]
    rest = len(a) - 1
    first, last = int(a[0]), int(b[0])
    parts = []
    if a[1:] != "0" * rest:  # the run of a's first digit starts inside: its own branch
        parts.append(a[0] + _group(_same_width(a[1:], "9" * rest)))
        first += 1
    whole_last = b[1:] == "9" * rest
    top = last if whole_last else last - 1
    if first <= top:
        digit = str(first) if first == top else f"[{first}-{top}]"
        parts.append(digit + ("" if not rest else "[0-9]" if rest == 1 else f"[0-9]{{{rest}}}"))
    if not whole_last:
        parts.append(b[0] + _group(_same_width("0" * rest, b[1:])))
    return parts


def _group(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 and "|" not in parts[0] else f"(?:{'|'.join(parts)})"


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
        raise UnitsError(
            Refusal.OUT_OF_RANGE, value=repr(text), problem="is above the largest value accepted"
        )
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
