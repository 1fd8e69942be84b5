"""What the edge accepts from outside, and the patterns that say so in the schema.

Text: every string an outsider sends (names, locations, ids, symbols, codes, cursors,
keys in headers) is refused with ``invalid_characters`` if it holds a C0 or C1 control
character (U+0000-U+001F, U+007F-U+009F), a line or paragraph separator (U+2028, U+2029)
or a lone UTF-16 surrogate (U+D800-U+DFFF). PostgreSQL cannot store a NUL in text, a
surrogate cannot be encoded to UTF-8 by either database, and line breaks and terminal
escapes in a stored name turn up in logs, CSV exports and terminals. Text also carries
no whitespace at either end, so what is stored is what was sent (nothing is stripped).

Other format characters (category Cf: zero-width joiners, bidirectional marks, the soft
hyphen) are accepted: scripts need them (ZWJ and ZWNJ in Persian and Indic text, emoji
sequences, RLM in Arabic), they store and encode like any other character, and they
cannot break a commit, a replay or a JSON body. What they can do is make a displayed
name read differently from its characters; names carry no authority here (accounts,
sites and orders are named by their ids, keys are secrets), and identifiers the
exchange defines (tier and class codes, symbols, decimals) have ASCII grammars of their
own.

Decimals: :class:`DecimalRule` is the strict grammar of ``exchange.units`` with a field's
places and range; it converts to minor units with stable codes and writes the same rule
as a JSON Schema pattern (:func:`exchange.units.decimal_pattern`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from api.errors import ApiError
from exchange.refusals import Refusal
from exchange.units import UnitsError, decimal_pattern, parse_units

__all__ = [
    "FORBIDDEN",
    "SPACES",
    "TEXT_PATTERN",
    "TIME_PATTERN",
    "DecimalRule",
    "Refused",
    "check_text",
    "text_refusal",
]

#: Characters no text may hold, as the inside of a regular-expression class (ECMA-262
#: and Python read these escapes alike). Lone surrogates are refused too, but are not
#: written here: JSON Schema's strings are Unicode text, which has none, and regular
#: expression engines that work on text (Rust's, behind many validators) cannot name them.
FORBIDDEN = r"\u0000-\u001f\u007f-\u009f\u2028\u2029"
#: Whitespace that is not a control character (Python's ``str.isspace()`` less the
#: controls): text may hold it inside, never at either end.
SPACES = r"\u0020\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000"
#: One or more characters, none forbidden, no whitespace at either end.
TEXT_PATTERN = rf"^[^{FORBIDDEN}{SPACES}](?:[^{FORBIDDEN}]*[^{FORBIDDEN}{SPACES}])?$"

#: An RFC 3339 time, UTC (``Z``) or with an offset, to the microsecond, from year 1 (as
#: Python's datetime).
TIME_PATTERN = (
    r"^(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
    r"-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
)

_FORBIDDEN_RE = re.compile(rf"[{FORBIDDEN}\ud800-\udfff]")
_SPACE_CHARS = frozenset(
    " \u00a0\u1680\u202f\u205f\u3000" + "".join(chr(c) for c in range(0x2000, 0x200B))
)


class Refused(ValueError):
    """A value the edge refuses: a stable ``code`` and what is wrong (``detail``, which
    does not name the field: the caller does)."""

    def __init__(self, code: Refusal, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail

    def api(self, field: str) -> ApiError:
        return ApiError(self.code, f"{field}: {self.detail}")


def _forbidden(text: str) -> Refused | None:
    # ASCII text without C0 controls or DEL is printable: the common case costs two
    # C-level scans and no regular expression.
    if text.isascii() and text.isprintable():
        return None
    bad = _FORBIDDEN_RE.search(text)
    if bad is None:
        return None
    return Refused(
        Refusal.INVALID_CHARACTERS,
        f"U+{ord(bad.group()):04X} at position {bad.start()} is not allowed "
        "(control characters, line separators and lone surrogates are refused)",
    )


def text_refusal(text: str, code: Refusal = Refusal.INVALID_REQUEST) -> Refused | None:
    """Why ``text`` breaks the text rule, or None. Forbidden characters are always
    ``invalid_characters``; whitespace at an end is ``code``."""
    refusal = _forbidden(text)
    if refusal is not None:
        return refusal
    if text[:1] in _SPACE_CHARS or text[-1:] in _SPACE_CHARS:
        return Refused(code, "no whitespace at the start or end")
    return None


def check_text(text: str, field: str, code: Refusal = Refusal.INVALID_REQUEST) -> str:
    """``text`` if it keeps the text rule; else an :class:`ApiError` naming ``field``."""
    refusal = text_refusal(text, code)
    if refusal is not None:
        raise refusal.api(field)
    return text


@dataclass(frozen=True, slots=True)
class DecimalRule:
    """A decimal field: ``decimals`` places (None: as many as the length allows), above
    zero if ``positive``, at least ``minimum`` and at most ``maximum`` (whole units;
    without a maximum, at most ``exchange.units.MAX_DIGITS`` integer digits), at most
    ``max_length`` characters.

    Codes: ``invalid_characters`` for a forbidden character, ``invalid_decimal`` for text
    outside the grammar, ``out_of_range`` above the maximum or the digit limit,
    ``invalid_<field>`` for a sign, zero when it must be positive, or below the minimum;
    more places than allowed is ``invalid_tick`` for a price, ``invalid_lot`` for a
    quantity and ``too_many_decimals`` elsewhere.
    """

    decimals: int | None
    positive: bool = False
    minimum: int = 0
    maximum: int | None = None
    max_length: int = 40

    @property
    def places(self) -> int:
        return self.max_length if self.decimals is None else self.decimals

    @property
    def pattern(self) -> str:
        return decimal_pattern(
            self.decimals, minimum=self.minimum, positive=self.positive, maximum=self.maximum
        )

    def units(self, text: str, field: str) -> int:
        """``text`` in minor units (``places`` of them); :class:`Refused` if it breaks
        the rule."""
        if not 1 <= len(text) <= self.max_length:
            raise Refused(Refusal.INVALID_REQUEST, f"1 to {self.max_length} characters")
        try:
            value = parse_units(text, self.places)
        except UnitsError as exc:
            raise _refusal(exc, text, field) from exc
        scale = 10**self.places
        if self.maximum is not None and value > self.maximum * scale:
            raise Refused(
                Refusal.OUT_OF_RANGE,
                Refusal.OUT_OF_RANGE.message(value=repr(text), problem=f"is above {self.maximum}"),
            )
        if self.positive and value <= 0:
            raise Refused(Refusal.for_field(field), "must be positive")
        if value < self.minimum * scale:
            raise Refused(Refusal.for_field(field), f"must be at least {self.minimum}")
        return value

    def parse(self, text: str | None, field: str) -> int | None:
        """``text`` in minor units (None stays None); an :class:`ApiError` naming
        ``field`` if it breaks the rule."""
        if text is None:
            return None
        try:
            return self.units(text, field)
        except Refused as refusal:
            raise refusal.api(field) from None


def _refusal(exc: UnitsError, text: str, field: str) -> Refused:
    code = exc.code
    if code is Refusal.INVALID_DECIMAL:
        forbidden = _forbidden(text)
        if forbidden is not None:
            return forbidden
    elif code is Refusal.TOO_MANY_DECIMALS:
        code = {"price": Refusal.INVALID_TICK, "quantity": Refusal.INVALID_LOT}.get(field, code)
    elif code is Refusal.NEGATIVE_VALUE:
        code = Refusal.for_field(field)
    return Refused(code, str(exc))
