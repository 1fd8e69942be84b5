"""Request bodies and parameters. Unknown fields are refused; server-set fields (owner,
status, fees, balances) do not exist in a request body, so they can never be bound from
a request. Response bodies are in api.responses.

Every field says in the published schema exactly what the server accepts: text keeps
the text rule of :mod:`api.rules` (its pattern and length), a decimal its
:class:`api.rules.DecimalRule` (a pattern for the grammar, the places and the range),
an integer its bounds; integers and booleans are strict (``"3600"`` is not a number,
``true`` is not 1). What depends on the exchange's state or on several fields together
(a tier's tick and lot, funds, whether a figure contradicts another) is refused with a
code of its own and said in the field's description.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Annotated, Any, Literal, NoReturn

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue, SkipJsonSchema
from pydantic_core import PydanticCustomError, core_schema

from api.errors import REFUSED
from api.rules import TEXT_PATTERN, TIME_PATTERN, DecimalRule, Refused, text_refusal
from exchange.decimals import DECIMAL_EXPONENT_MAX
from exchange.refusals import Refusal
from exchange.units import (
    MONEY_DECIMALS,
    PRICE_DECIMALS,
    QUANTITY_DECIMALS,
    integer_pattern,
)
from pricing.catalog import model_slug

__all__ = [
    "AMOUNT",
    "CODE_PATTERN",
    "EMISSION_FACTOR",
    "GREEN_SHARE",
    "HOURS",
    "MAX_ADVANCE_SECONDS",
    "MAX_ID",
    "MAX_JSON_ID",
    "PRICE",
    "PUE",
    "QUANTITY",
    "SLUG_PATTERN",
    "SYMBOL_PATTERN",
    "AccountIn",
    "AmendIn",
    "AmountIn",
    "BatchIn",
    "ClockIn",
    "Code",
    "ContractState",
    "Cursor",
    "DecimalField",
    "DeliveryIn",
    "Digits",
    "GpuClassIn",
    "HardwareId",
    "HardwareIn",
    "Id",
    "IdempotencyKey",
    "InstrumentState",
    "OneOf",
    "OrderIn",
    "OrderStatus",
    "PoolIn",
    "SiteIn",
    "Symbol",
    "TextRule",
    "TierIn",
    "TierPatch",
]


def _raise(refusal: Refused) -> NoReturn:
    raise PydanticCustomError(REFUSED, "{detail}", {"code": refusal.code, "detail": refusal.detail})


class _Rule(ABC):
    """Annotation metadata: a check after pydantic's own type check, and the field's
    JSON Schema written out (``schema``), so that what is published is what is checked."""

    schema: dict[str, Any]

    @abstractmethod
    def check(self, value: Any, field: str) -> Any:
        """``value`` as the field keeps it, or a refusal naming ``field``."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        def validate(value: Any, info: core_schema.ValidationInfo) -> Any:
            return self.check(value, info.field_name or "value")

        return core_schema.with_info_after_validator_function(validate, handler(source))

    def __get_pydantic_json_schema__(
        self, _: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        return dict(self.schema)


class TextRule(_Rule):
    """1 to ``max_length`` characters that keep the text rule and, when given, match
    ``pattern``; a length or pattern refusal is ``code``, a forbidden character always
    ``invalid_characters``."""

    def __init__(
        self,
        max_length: int,
        pattern: str | None = None,
        code: Refusal = Refusal.INVALID_REQUEST,
        description: str | None = None,
    ) -> None:
        self.max_length = max_length
        self.pattern = None if pattern is None else re.compile(pattern)
        self.code = code
        self.mismatch = description or f"does not match {pattern}"
        self.schema = {
            "type": "string",
            "minLength": 1,
            "maxLength": max_length,
            "pattern": pattern or TEXT_PATTERN,
        }
        if description:
            self.schema["description"] = description

    def check(self, value: Any, field: str) -> Any:
        refusal = text_refusal(value, self.code)
        if refusal is None and not 1 <= len(value) <= self.max_length:
            refusal = Refused(self.code, f"1 to {self.max_length} characters")
        if refusal is None and self.pattern and self.pattern.fullmatch(value) is None:
            refusal = Refused(self.code, self.mismatch)
        if refusal is not None:
            _raise(refusal)
        return value


class DecimalField(_Rule):
    """A decimal string that keeps ``rule`` (its codes: :class:`api.rules.DecimalRule`)."""

    def __init__(self, rule: DecimalRule, description: str | None = None) -> None:
        self.rule = rule
        self.schema = {
            "type": "string",
            "minLength": 1,
            "maxLength": rule.max_length,
            "pattern": rule.pattern,
        }
        if description:
            self.schema["description"] = description

    def check(self, value: Any, field: str) -> Any:
        try:
            self.rule.units(value, field)
        except Refused as refusal:
            _raise(refusal)
        return value


class OneOf(_Rule):
    """An integer among ``values``."""

    def __init__(self, *values: int) -> None:
        self.values = values
        self.schema = {"type": "integer", "enum": list(values)}

    def check(self, value: Any, field: str) -> Any:
        if value not in self.values:
            _raise(Refused(Refusal.INVALID_REQUEST, f"one of {', '.join(map(str, self.values))}"))
        return value


#: The longest integer sent as text (a 64-bit id, with a leading zero or so to spare).
DIGITS_MAX = 24


class Digits:
    """Annotation metadata for an integer sent as text (a path or query parameter):
    ASCII digits only, refusing the sign, spaces, underscores and ``1.0`` that pydantic's
    lax integer parsing takes."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        def digits(value: Any) -> Any:
            if isinstance(value, str) and not (
                value.isascii() and value.isdigit() and len(value) <= DIGITS_MAX
            ):
                _raise(text_refusal(value) or Refused(Refusal.INVALID_REQUEST, "ASCII digits"))
            return value

        return core_schema.no_info_before_validator_function(digits, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """Published as the text it is: ASCII digits for the integers in its bounds (as
        an integer, ``30.0`` would be one too, which the server refuses)."""
        number = handler(schema)
        low, high = int(number.get("minimum", 0)), int(number.get("maximum", MAX_ID))
        text: JsonSchemaValue = {
            "type": "string",
            "pattern": integer_pattern(low, high),
            "maxLength": DIGITS_MAX,
        }
        if "default" in number:
            text["default"] = str(number["default"])
        return text


# ---------------------------------------------------------------------- decimals
#: A price per PF·h: on the 0.0001 grid, above zero, at most 100,000,000.
PRICE = DecimalRule(PRICE_DECIMALS, positive=True, maximum=10**8)
#: A quantity in PF·h: on the 0.000001 grid, above zero, at most 1,000,000,000.
QUANTITY = DecimalRule(QUANTITY_DECIMALS, positive=True, maximum=10**9)
#: An amount of money: ten places, above zero, at most 18 integer digits.
AMOUNT = DecimalRule(MONEY_DECIMALS, positive=True)
#: A percentage on the basis-point grid: above zero, at most 100 (a price band).
BAND_PCT = DecimalRule(2, positive=True, maximum=100)
#: A percentage on the basis-point grid from 0 to 100 (a shortfall penalty).
PENALTY_PCT = DecimalRule(2, maximum=100)
#: Power usage effectiveness, 1 to 3 (``pricing.sites``); the columns hold 20 characters.
PUE = DecimalRule(None, minimum=1, maximum=3, max_length=20)
#: The share of green power, 0 to 1.
GREEN_SHARE = DecimalRule(None, maximum=1, max_length=20)
#: A grid emission factor in kgCO2/kWh, above zero, at most 2.
EMISSION_FACTOR = DecimalRule(None, positive=True, maximum=2, max_length=20)
#: A hardware figure (TFLOPS, GB, GB/s, W): above zero, at most 30 places (the core's
#: figures are exact decimals no finer than 10^-30: exchange.decimals).
FIGURE = DecimalRule(DECIMAL_EXPONENT_MAX, positive=True)
#: A GPU class minimum: zero or more, at most 30 places.
MINIMUM = DecimalRule(DECIMAL_EXPONENT_MAX)
#: Hours of metering: ten places, zero or more.
HOURS = DecimalRule(10, max_length=20)

Price = Annotated[
    str, DecimalField(PRICE, "per PF·h; a multiple of the tier's tick_size (invalid_tick)")
]
Quantity = Annotated[
    str,
    DecimalField(
        QUANTITY,
        "PF·h; a multiple of the tier's lot_size (invalid_lot), from its min_quantity to "
        "its max_quantity",
    ),
]
Amount = Annotated[str, DecimalField(AMOUNT)]
Figure = Annotated[str, DecimalField(FIGURE)]
Minimum = Annotated[str, DecimalField(MINIMUM)]

# ---------------------------------------------------------------------- text
#: Tier and GPU class codes: letters, digits and at most eight dashes.
CODE_PATTERN = r"^[A-Za-z0-9]*(?:-[A-Za-z0-9]*){0,8}$"
#: Instrument symbols: a tier code, a dash and the delivery window.
SYMBOL_PATTERN = r"^[A-Za-z0-9-]+$"
#: Hardware ids: lowercase slugs (``pricing.catalog``).
SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
#: The largest id in a path or a cursor: ids are stored in signed 64-bit columns.
MAX_ID = 2**63 - 1
#: The largest id in a JSON number: JSON numbers are exact everywhere only up to
#: 2**53 - 1 (RFC 8259, section 6).
MAX_JSON_ID = 2**53 - 1

Name = Annotated[str, TextRule(100)]
Code = Annotated[str, TextRule(32, CODE_PATTERN, description="letters, digits, up to 8 dashes")]
Symbol = Annotated[str, TextRule(64, SYMBOL_PATTERN, description="letters, digits and dashes")]
HardwareId = Annotated[str, TextRule(80, SLUG_PATTERN, description="a lowercase slug")]
Vendor = Annotated[str, TextRule(60)]


def _time(code: Refusal) -> TextRule:
    """An RFC 3339 time (``2026-11-22T00:00:00Z``, or with an offset); else ``code``."""
    return TextRule(32, TIME_PATTERN, code, "RFC 3339: 2026-11-22T00:00:00Z")


#: The ``Idempotency-Key`` header: 1 to 100 characters of the text rule.
IdempotencyKey = Annotated[str, TextRule(100, code=Refusal.INVALID_IDEMPOTENCY_KEY)]
#: A ``cursor`` query parameter: the ``next_cursor`` of a previous page.
Cursor = Annotated[
    str,
    TextRule(
        40, integer_pattern(0, MAX_ID), "invalid_cursor", "the next_cursor of a previous page"
    ),
]
#: An id in a path or query parameter.
Id = Annotated[int, Field(ge=1, le=MAX_ID), Digits()]


# ---------------------------------------------------------------------- words
Precision = Literal["fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4"]
Region = Literal["north", "northeast", "east", "central", "northwest", "south", "southwest"]
# The wire's words, shared by request bodies, parameters and response bodies.
Role = Literal["trader", "admin"]
Side = Literal["buy", "sell"]
OrderKind = Literal["limit", "market"]
TimeInForce = Literal["gtc", "gtd", "ioc", "fok"]
Stp = Literal["cancel_newest", "cancel_oldest", "cancel_both", "decrement"]
Quality = Literal["V", "S", "D", "U"]
GreenGrade = Literal["1A", "2A", "3A", "4A", "5A"]
TierStatus = Literal["active", "suspended", "retired"]
OrderStatus = Literal["open", "partially_filled", "filled", "cancelled", "expired"]
InstrumentState = Literal["listed", "open", "halted", "closed", "delivering", "settled"]
ContractState = Literal["open", "delivering", "settled"]


def _integral(value: Any) -> Any:
    """JSON's ``3600.0`` is the integer 3600 (JSON Schema counts it as one); ``true`` is
    not 1 and ``"3600"`` is not a number (the models are strict). Past 2**53 a float no
    longer holds the integer that was written, so it stays a float and is refused."""
    if type(value) is float and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    return value


#: Put after an integer's bounds (``Annotated[int, Field(...), INTEGRAL]``): pydantic
#: writes bounds set after a validator into the schema under names JSON Schema lacks.
INTEGRAL = BeforeValidator(_integral)


class _In(BaseModel):
    # Strict: a JSON string is not an integer and true is not 1 (pydantic's lax mode
    # would take "3600" and true for an int, and "yes" for a bool).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class AccountIn(_In):
    name: Name
    role: Role = "trader"


class AmountIn(_In):
    amount: Amount


class OrderIn(_In):
    instrument: Symbol
    side: Side
    type: OrderKind = "limit"
    price: Price | None = None
    quantity: Quantity
    time_in_force: TimeInForce | None = None
    expire_time: Annotated[str, _time(Refusal.INVALID_EXPIRE_TIME)] | None = None
    post_only: bool = False
    client_order_id: Annotated[str, TextRule(64, description="unique per account")] | None = None
    stp: Stp = "cancel_newest"


class BatchIn(_In):
    orders: list[OrderIn] = Field(min_length=1, max_length=100)


class AmendIn(_In):
    price: Price | None = None
    quantity: Quantity | None = None


class SiteIn(_In):
    name: Name
    region: Region
    location: Annotated[str, TextRule(200)] | None = None
    pue: Annotated[str, DecimalField(PUE, "power usage effectiveness, 1 to 3")]
    green_share: Annotated[str, DecimalField(GREEN_SHARE, "the share of green power, 0 to 1")]
    emission_factor: (
        Annotated[str, DecimalField(EMISSION_FACTOR, "kgCO2/kWh, above 0, at most 2")] | None
    ) = Field(default=None, description="default: the factor of the site's region")


class PoolIn(_In):
    hardware_id: HardwareId
    count: Annotated[int, Field(ge=1, le=1_000_000), INTEGRAL]


class DeliveryIn(_In):
    pool_id: Annotated[int, Field(ge=1, le=MAX_JSON_ID), INTEGRAL]
    device_seconds: Annotated[int, Field(ge=0, le=10**13), INTEGRAL]


class HardwareIn(_In):
    vendor: Vendor
    model: Name
    peak_tflops: dict[Precision, Figure] = Field(min_length=1)
    with_sparsity: list[Precision] = Field(default=[], max_length=8)
    fp16_accumulation: list[Precision] = Field(default=[], max_length=8)
    memory_gb: Figure | None = None
    memory_bandwidth_gbs: Figure | None = None
    tdp_w: Figure | None = None
    source: Annotated[str, TextRule(500)]
    quality: Quality = "U"
    id: HardwareId | None = Field(
        default=None,
        description="default: the slug of vendor and model, which must then be a slug "
        "of at most 80 characters (invalid_model_id)",
    )
    confirmed: bool = False

    @model_validator(mode="after")
    def _id_fits(self) -> HardwareIn:
        # The id is a key in an 80-character column: derived from up to 160 characters
        # of vendor and model, it could be longer than any row can hold.
        if self.id is None and len(model_slug(self.vendor, self.model)) > 80:
            _raise(
                Refused(Refusal.INVALID_MODEL_ID, "vendor and model make a slug over 80 characters")
            )
        return self


class GpuClassIn(_In):
    code: Code
    name: Name
    precision: Precision
    min_dense_tflops: Minimum
    min_memory_gb: Minimum = "0"
    min_memory_bandwidth_gbs: Minimum = "0"
    # As the core bounds them (exchange.core: CLASS_LIST_MAX, a vendor's column).
    vendors: list[Vendor] | None = Field(default=None, min_length=1, max_length=256)
    models: list[HardwareId] | None = Field(default=None, min_length=1, max_length=256)


class TierIn(_In):
    code: Code
    precision: Precision
    gpu_class: Code
    min_green_grade: GreenGrade | None = None
    regions: list[Region] | None = Field(default=None, max_length=7)
    tick_size: Annotated[str, DecimalField(PRICE)]
    lot_size: Annotated[str, DecimalField(QUANTITY)]
    min_quantity: Annotated[str, DecimalField(QUANTITY, "a multiple of lot_size")]
    max_quantity: Annotated[
        str, DecimalField(QUANTITY, "a multiple of lot_size, at least min_quantity")
    ]
    price_band_pct: Annotated[str, DecimalField(BAND_PCT)]
    maker_fee_bps: Annotated[int, Field(ge=0, le=1000), INTEGRAL]
    taker_fee_bps: Annotated[int, Field(ge=0, le=1000), INTEGRAL]
    shortfall_penalty_pct: Annotated[str, DecimalField(PENALTY_PCT)]
    reference_price: Annotated[str, DecimalField(PRICE, "a multiple of tick_size")]
    arithmetic_intensity: Annotated[int, Field(ge=1, le=100_000), INTEGRAL] | None = None
    window_hours: Annotated[int, OneOf(1, 2, 3, 4, 6, 8, 12, 24), INTEGRAL] = 1
    list_ahead_hours: Annotated[int, Field(ge=0, le=24 * 366), INTEGRAL] = 24
    gate_closure_minutes: Annotated[int, Field(ge=0, le=24 * 60), INTEGRAL] = 60


class TierPatch(_In):
    status: TierStatus | None = None
    maker_fee_bps: Annotated[int, Field(ge=0, le=1000), INTEGRAL] | None = None
    taker_fee_bps: Annotated[int, Field(ge=0, le=1000), INTEGRAL] | None = None
    price_band_pct: Annotated[str, DecimalField(BAND_PCT)] | None = None
    shortfall_penalty_pct: Annotated[str, DecimalField(PENALTY_PCT)] | None = None
    reference_price: (
        Annotated[str, DecimalField(PRICE, "a multiple of the tier's tick_size")] | None
    ) = None
    list_ahead_hours: Annotated[int, Field(ge=0, le=24 * 366), INTEGRAL] | None = None


#: The longest single clock advance: every listing and settlement due runs in that call.
MAX_ADVANCE_SECONDS = 10 * 366 * 86_400


def _absent_by_default(schema: dict[str, Any]) -> None:
    """A field that is left out rather than null: its schema names no null default."""
    schema.pop("default", None)


class ClockIn(_In):
    """Exactly one of ``advance_seconds`` and ``to`` (neither may be null)."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["advance_seconds"]}, {"required": ["to"]}]}
    )

    advance_seconds: (
        Annotated[int, Field(ge=0, le=MAX_ADVANCE_SECONDS), INTEGRAL] | SkipJsonSchema[None]
    ) = Field(default=None, json_schema_extra=_absent_by_default)
    to: Annotated[str, _time(Refusal.INVALID_TIME)] | SkipJsonSchema[None] = Field(
        default=None, json_schema_extra=_absent_by_default
    )

    @model_validator(mode="before")
    @classmethod
    def _one(cls, data: Any) -> Any:
        if isinstance(data, dict):
            given = [k for k in ("advance_seconds", "to") if k in data]
            if len(given) != 1 or data[given[0]] is None:
                raise ValueError("give exactly one of advance_seconds and to")
        return data
