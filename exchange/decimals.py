"""Exact decimal figures of operations (hardware peaks, PUE, class minimums...).

A figure arrives as text and stays an exact ``Decimal``: never a float. Its text is bounded
(40 characters) and so is its exponent: ``Decimal("1e999999999")`` is eleven characters
long, but turning it into a ``Fraction`` (which metering does) would build an integer of a
billion digits, so any figure beyond 10^30 in size or precision is refused.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from exchange.refusals import Refusal

__all__ = ["DECIMAL_EXPONENT_MAX", "DECIMAL_TEXT_MAX", "optional_decimal", "parse_decimal"]

DECIMAL_TEXT_MAX = 40
#: Figures lie within 10^-30 .. 10^30, in steps no finer than 10^-30.
DECIMAL_EXPONENT_MAX = 30


def parse_decimal(
    text: str, name: str, *, column: int = DECIMAL_TEXT_MAX, strict: bool = True
) -> Decimal:
    """``text`` as a finite decimal of bounded size, whose own text (what the database
    keeps) fits ``column`` characters; else ``Refusal.INVALID_DECIMAL``. Not
    ``strict`` (replaying a log an earlier version accepted), only what that version
    checked: a finite decimal of at most 40 characters."""
    if len(text) > DECIMAL_TEXT_MAX:
        raise Refusal.INVALID_DECIMAL.reject(subject=name, problem="is too long")
    if strict and not text.isascii():  # Decimal would read other scripts' digits too
        raise Refusal.INVALID_DECIMAL.reject(subject=name, problem="is not a decimal")
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError) as exc:
        raise Refusal.INVALID_DECIMAL.reject(subject=name, problem="is not a decimal") from exc
    if not value.is_finite():
        raise Refusal.INVALID_DECIMAL.reject(subject=name, problem="must be finite")
    if not strict:
        return value
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite
    # Trailing zeros add no precision (and normalize() may overflow a huge exponent).
    exponent += len(digits) - len("".join(map(str, digits)).rstrip("0") or "0")
    if exponent < -DECIMAL_EXPONENT_MAX or value.adjusted() > DECIMAL_EXPONENT_MAX:
        raise Refusal.INVALID_DECIMAL.reject(subject=name, problem="is out of range")
    if len(str(value)) > column:
        raise Refusal.INVALID_DECIMAL.reject(
            subject=name, problem=f"has more than {column} characters"
        )
    return value


def optional_decimal(
    text: str | None, name: str, *, column: int = DECIMAL_TEXT_MAX, strict: bool = True
) -> Decimal | None:
    return None if text is None else parse_decimal(text, name, column=column, strict=strict)
