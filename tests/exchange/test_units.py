"""Fixed-point units: exact parsing and formatting, and what they refuse."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from exchange.units import (
    MAX_DIGITS,
    MAX_PRICE,
    MAX_QUANTITY,
    MONEY_DECIMALS,
    PRICE_DECIMALS,
    QUANTITY_DECIMALS,
    UnitsError,
    _integer_range,
    decimal_pattern,
    format_money,
    format_price,
    format_quantity,
    format_units,
    notional,
    parse_money,
    parse_price,
    parse_quantity,
    parse_units,
)


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("12.5", 125_000),
        ("12", 120_000),
        ("0.0001", 1),
        ("0", 0),
        ("007.10", 71_000),
        ("1.00000000", 10_000),  # trailing zeros beyond the places are not a loss
        (12, 120_000),
        (Decimal("1.2345"), 12_345),
        (Decimal("5E+1"), 500_000),  # a Decimal is a value, not text: no exponent syntax
    ],
)
def test_parse_price_is_exact(text: str | int | Decimal, units: int) -> None:
    assert parse_price(text) == units


def test_quantity_and_money_scales() -> None:
    assert parse_quantity("0.000001") == 1
    assert parse_quantity("1") == 1_000_000
    assert parse_money("0.0000000001") == 1
    assert notional(parse_price("2.5"), parse_quantity("4")) == parse_money("10")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("NaN", "invalid_decimal"),
        ("nan", "invalid_decimal"),
        ("inf", "invalid_decimal"),
        ("-Infinity", "invalid_decimal"),
        ("1e3", "invalid_decimal"),
        ("1E-2", "invalid_decimal"),
        ("0x10", "invalid_decimal"),
        ("1.", "invalid_decimal"),
        (".5", "invalid_decimal"),
        ("", "invalid_decimal"),
        ("1 000", "invalid_decimal"),
        ("1,5", "invalid_decimal"),
        ("1.00001", "too_many_decimals"),
        ("0.00005", "too_many_decimals"),
        ("1" + "0" * MAX_DIGITS, "out_of_range"),
        ("9" * 41, "invalid_decimal"),
        ("-1", "negative_value"),
        ("-0.0001", "negative_value"),
        ("-0", "negative_value"),  # a sign where no negative is allowed
        # Lax forms: the grammar is ASCII digits and one point, nothing around them.
        (" 20", "invalid_decimal"),
        ("20 ", "invalid_decimal"),
        (" 2.5 ", "invalid_decimal"),
        ("20\u00a0", "invalid_decimal"),  # a no-break space
        ("\u200b20", "invalid_decimal"),  # a zero-width space
        ("20\n", "invalid_decimal"),
        ("\t20", "invalid_decimal"),
        ("+20", "invalid_decimal"),
        ("+3.25", "invalid_decimal"),
        ("--1", "invalid_decimal"),
        ("1e1", "invalid_decimal"),
        ("２０", "invalid_decimal"),  # full-width digits
        ("١٩", "invalid_decimal"),  # Arabic-Indic digits
        ("2\u00b2", "invalid_decimal"),  # a superscript two ("²".isdigit() is true)
        ("1_000", "invalid_decimal"),
        ("20\x00", "invalid_decimal"),
    ],
)
def test_parse_price_refuses(text: str, code: str) -> None:
    with pytest.raises(UnitsError) as info:
        parse_price(text)
    assert info.value.code == code


@pytest.mark.parametrize(
    "value", [1.5, 0.1, True, Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), None]
)
def test_parse_refuses_floats_bools_and_non_finite_decimals(value: object) -> None:
    with pytest.raises(UnitsError) as info:
        parse_price(value)  # type: ignore[arg-type]
    assert info.value.code == "invalid_decimal"


def test_largest_accepted_and_first_refused_size() -> None:
    assert parse_units("9" * MAX_DIGITS, 6) == int("9" * MAX_DIGITS) * 10**6
    assert parse_units("0" * 5 + "9" * MAX_DIGITS, 6) == int("9" * MAX_DIGITS) * 10**6
    with pytest.raises(UnitsError):
        parse_units("9" * (MAX_DIGITS + 1), 6)
    # prices and quantities are bounded further, so that they fit 64-bit columns
    assert parse_quantity("1000000000") == MAX_QUANTITY
    assert parse_price("100000000") == MAX_PRICE
    for parse, text in ((parse_quantity, "1000000000.000001"), (parse_price, "100000000.0001")):
        with pytest.raises(UnitsError) as info:
            parse(text)
        assert info.value.code == "out_of_range"


def test_quantity_refuses_a_seventh_decimal() -> None:
    assert parse_quantity("1.000001") == 1_000_001
    with pytest.raises(UnitsError) as info:
        parse_quantity("1.0000001")
    assert info.value.code == "too_many_decimals"


def test_negative_only_when_allowed() -> None:
    assert parse_units("-1.5", 2, allow_negative=True) == -150
    with pytest.raises(UnitsError):
        parse_units("-1.5", 2)


@pytest.mark.parametrize(
    ("value", "text"),
    [(125_000, "12.5"), (120_000, "12"), (1, "0.0001"), (0, "0"), (10_001, "1.0001")],
)
def test_format_price_is_canonical(value: int, text: str) -> None:
    assert format_price(value) == text


def test_format_quantity_and_money() -> None:
    assert format_quantity(1) == "0.000001"
    assert format_quantity(2_500_000) == "2.5"
    assert format_money(10**10) == "1.00"
    assert format_money(5 * 10**9) == "0.50"
    assert format_money(1) == "0.0000000001"
    assert format_units(-150, 2) == "-1.5"
    assert format_units(-5, 2) == "-0.05"


@given(st.integers(min_value=-(10**18) + 1, max_value=10**18 - 1), st.integers(0, 10))
def test_format_then_parse_round_trips(value: int, decimals: int) -> None:
    assert parse_units(format_units(value, decimals), decimals, allow_negative=True) == value


@given(st.integers(min_value=0, max_value=10**15), st.integers(0, 12))
def test_parse_then_format_round_trips_canonical_text(value: int, decimals: int) -> None:
    text = format_units(value, decimals)
    assert format_units(parse_units(text, decimals), decimals) == text


# ---------------------------------------------------------------- the published grammar
#: Texts near the grammar's edges: digits, points, signs, spaces and look-alikes.
decimal_texts = st.one_of(
    st.text(alphabet="0123456789.-+e \u00a0０", max_size=25),
    st.builds(
        lambda whole, frac: f"{whole}.{frac}" if frac else whole,
        st.from_regex(r"[0-9]{1,22}", fullmatch=True),
        st.from_regex(r"[0-9]{0,14}", fullmatch=True),
    ),
)

#: (decimals, bounds) of the rules the API publishes; see api.schemas.
RULES: list[tuple[int | None, dict[str, object]]] = [
    (PRICE_DECIMALS, {"positive": True, "maximum": 10**8}),
    (QUANTITY_DECIMALS, {"positive": True, "maximum": 10**9}),
    (MONEY_DECIMALS, {"positive": True}),
    (2, {"positive": True, "maximum": 100}),
    (2, {"maximum": 100}),
    (None, {"minimum": 1, "maximum": 3}),
    (None, {"maximum": 1}),
    (None, {"positive": True, "maximum": 2}),
    (None, {}),
    (0, {"positive": True, "maximum": 7}),
]


def _accepts(text: str, decimals: int | None, bounds: dict[str, object]) -> bool:
    """What the server accepts: parse_units, then the bounds in whole units."""
    places = 30 if decimals is None else decimals
    try:
        value = parse_units(text, places)
    except UnitsError:
        return False
    scale = 10**places
    minimum = bounds.get("minimum", 0)
    maximum = bounds.get("maximum")
    assert isinstance(minimum, int)
    if bounds.get("positive") and value <= 0:
        return False
    return value >= minimum * scale and (maximum is None or value <= int(str(maximum)) * scale)


@pytest.mark.parametrize(("decimals", "bounds"), RULES)
@given(text=decimal_texts)
@example(text="0")
@example(text="100000000")
@example(text="100000000.0000")
@example(text="100000000.0001")
@example(text="0.0001")
@example(text="0.00001")
@example(text="0.00010")
@example(text="000.5")
@example(text="1" * 18)
@example(text="1" * 19)
@example(text="-1")
def test_the_published_pattern_is_the_parsers_grammar(
    decimals: int | None, bounds: dict[str, object], text: str
) -> None:
    """The schema's pattern for a decimal field accepts exactly what the server does."""
    pattern = decimal_pattern(decimals, **bounds)  # type: ignore[arg-type]
    assert (re.fullmatch(pattern, text) is not None) == _accepts(text, decimals, bounds), text


@given(st.integers(0, 10**12), st.integers(0, 10**12), st.integers(0, 10**13))
def test_integer_ranges_match_exactly_their_integers(a: int, b: int, n: int) -> None:
    low, high = min(a, b), max(a, b)
    pattern = re.compile(_integer_range(low, high))
    for number in (n, low, high, low - 1, high + 1):
        if number >= 0:
            assert (pattern.fullmatch(str(number)) is not None) == (low <= number <= high)
