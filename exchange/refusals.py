"""Every refusal suanli answers: its stable code, its HTTP status and its message.

A :class:`Refusal` is the code clients branch on (its value: snake_case, never renamed),
the HTTP status the API answers it with, and a message template whose named fields carry
the numbers of the case (``str.format`` style: the tick, the lot, the band, a state), as
the API writes them (decimal strings). ``Refusal.INVALID_TICK.reject(price="20.5",
tick="1")`` is the :class:`exchange.records.Rejected` to raise.

``python3 -m exchange.refusals --markdown`` prints the error table of ``docs/api.md``
(a test keeps the two equal).

This module imports nothing of suanli: every layer (core, pricing, API) uses it.
"""

from __future__ import annotations

import string
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from exchange.records import Rejected

__all__ = ["Refusal", "markdown_table", "refusal_of"]


class Refusal(StrEnum):
    """One refusal: ``value`` is the stable code; ``status`` the HTTP status; ``template``
    the message, with named fields; ``ws_only`` when only the WebSocket answers it (its
    status is then what it would be over HTTP, never sent)."""

    status: int
    template: str
    ws_only: bool

    def __new__(cls, code: str, status: int, template: str, ws_only: bool = False) -> Refusal:
        member = str.__new__(cls, code)
        member._value_ = code
        member.status = status
        member.template = template
        member.ws_only = ws_only
        return member

    @property
    def fields(self) -> tuple[str, ...]:
        """The names of the template's fields, in order."""
        return tuple(
            name for _, name, _, _ in string.Formatter().parse(self.template) if name is not None
        )

    def message(self, **fields: Any) -> str:
        """The template with ``fields`` filled in (every field is required)."""
        return self.template.format(**fields)

    def reject(self, **fields: Any) -> Rejected:
        """The :class:`exchange.records.Rejected` of this refusal, its message rendered."""
        from exchange.records import Rejected

        return Rejected(self, **fields)

    # ------------------------------------------------------------ authentication, limits
    UNAUTHORIZED = "unauthorized", 401, "{reason}"
    FORBIDDEN = "forbidden", 403, "{reason}"
    RATE_LIMITED = "rate_limited", 429, "{reason}"
    TOO_MANY_OPEN_ORDERS = (
        "too_many_open_orders",
        429,
        "at most {limit} open orders {scope}",
    )
    TOO_MANY_SITES = "too_many_sites", 429, "at most {limit} sites per account"
    TOO_MANY_POOLS = "too_many_pools", 429, "at most {limit} pools per account"
    TOO_MANY_IDEMPOTENCY_KEYS = (
        "too_many_idempotency_keys",
        429,
        "at most {limit} Idempotency-Keys per account are kept for {ttl_s} s; "
        "retry without one, or later",
    )

    # ------------------------------------------------------------ the request itself
    INVALID_REQUEST = "invalid_request", 422, "{reason}"
    INVALID_ENCODING = "invalid_encoding", 400, "the body is not UTF-8"
    INVALID_CHARACTERS = "invalid_characters", 422, "{reason}"
    DUPLICATE_KEY = "duplicate_key", 422, "the key {key} appears twice in an object"
    UNSUPPORTED_MEDIA_TYPE = (
        "unsupported_media_type",
        422,
        "a request body is JSON: send Content-Type: application/json",
    )
    REQUEST_TOO_LARGE = "request_too_large", 413, "{what} are at most {limit} bytes"
    HEADERS_TOO_LARGE = "headers_too_large", 431, "request headers are too large"
    REQUEST_TIMEOUT = "request_timeout", 408, "the request was not complete in time"
    NOT_FOUND = "not_found", 404, "{detail}"
    METHOD_NOT_ALLOWED = "method_not_allowed", 405, "{detail}"
    HTTP_ERROR = "http_error", 400, "{detail}"
    INVALID_CURSOR = "invalid_cursor", 422, "cursor is the next_cursor of a previous page"
    INVALID_IDEMPOTENCY_KEY = (
        "invalid_idempotency_key",
        422,
        "Idempotency-Key is 1 to {limit} characters",
    )
    IDEMPOTENCY_KEY_REUSED = (
        "idempotency_key_reused",
        422,
        "this Idempotency-Key was used with another request",
    )
    INVALID_TIME = "invalid_time", 422, "{field}: {reason}"
    CLOCK_NOT_SIMULATED = "clock_not_simulated", 409, "the exchange runs on the real clock"

    # ------------------------------------------------------------ the server
    SERVICE_UNAVAILABLE = (
        "service_unavailable",
        503,
        "the exchange stopped after a failed commit",
    )
    PROJECTIONS_UNAVAILABLE = "projections_unavailable", 503, "{reason}"
    SERVER_BUSY = "server_busy", 503, "{reason}"
    INTERNAL_ERROR = "internal_error", 500, "internal server error"

    # ------------------------------------------------------------ WebSocket only
    INVALID_JSON = "invalid_json", 422, "{reason}", True
    INVALID_FRAME = "invalid_frame", 422, "messages are JSON in text frames", True
    UNKNOWN_OP = "unknown_op", 422, "{op}: op is one of {ops}", True
    UNKNOWN_CHANNEL = "unknown_channel", 422, "{channel}", True
    TOO_MANY_SUBSCRIPTIONS = (
        "too_many_subscriptions",
        422,
        "a connection holds at most {limit}",
        True,
    )
    TOO_MANY_CONNECTIONS = (
        "too_many_connections",
        422,
        "too many connections for this {holder}",
        True,
    )
    TOO_SLOW = "too_slow", 422, "messages were sent faster than read", True

    # ------------------------------------------------------------ decimals
    INVALID_DECIMAL = "invalid_decimal", 422, "{subject} {problem}"
    OUT_OF_RANGE = "out_of_range", 422, "{value} {problem}"
    TOO_MANY_DECIMALS = (
        "too_many_decimals",
        422,
        "{value} has more than {decimals} decimal places",
    )
    NEGATIVE_VALUE = "negative_value", 422, "{subject} {problem}"
    INVALID_NUMBER = "invalid_number", 422, "{name} must be {expected}"

    # ------------------------------------------------------------ orders (the engine)
    INSTRUMENT_NOT_FOUND = "instrument_not_found", 404, "no instrument {instrument}"
    INSTRUMENT_EXISTS = "instrument_exists", 409, "instrument {instrument} exists"
    INSTRUMENT_NOT_OPEN = (
        "instrument_not_open",
        422,
        "instrument {instrument} is {state}, not open",
    )
    INVALID_TRANSITION = (
        "invalid_transition",
        422,
        "an instrument that is {state} cannot become {target}",
    )
    DUPLICATE_ORDER_ID = "duplicate_order_id", 422, "order {order_id} exists"
    ORDER_NOT_FOUND = "order_not_found", 404, "no order {order_id}"
    INVALID_QUANTITY = "invalid_quantity", 422, "{subject} must be positive"
    INVALID_LOT = "invalid_lot", 422, "quantity {quantity} is not a multiple of the lot {lot}"
    QUANTITY_BELOW_MINIMUM = (
        "quantity_below_minimum",
        422,
        "quantity {quantity} is below the minimum {minimum}",
    )
    QUANTITY_ABOVE_MAXIMUM = (
        "quantity_above_maximum",
        422,
        "quantity {quantity} is above the maximum {maximum}",
    )
    INVALID_PRICE = "invalid_price", 422, "{subject} {problem}"
    INVALID_TICK = "invalid_tick", 422, "price {price} is not a multiple of the tick {tick}"
    PRICE_OUT_OF_BAND = (
        "price_out_of_band",
        422,
        "price {price} is outside the band {low} to {high}",
    )
    NO_REFERENCE_PRICE = (
        "no_reference_price",
        422,
        "instrument {instrument} has no reference price for a market order",
    )
    POST_ONLY_WOULD_CROSS = (
        "post_only_would_cross",
        422,
        "a post-only order at {price} would cross the best {side} {best}",
    )
    INVALID_TIME_IN_FORCE = (
        "invalid_time_in_force",
        422,
        "a {order_type} order is {allowed}, not {time_in_force}",
    )
    INVALID_EXPIRE_TIME = "invalid_expire_time", 422, "{field}: {reason}"
    INVALID_ORDER_TYPE = "invalid_order_type", 422, "{reason}"
    NOTHING_TO_AMEND = "nothing_to_amend", 422, "give a new price, a new quantity or both"
    AMEND_BELOW_FILLED = (
        "amend_below_filled",
        422,
        "quantity {quantity} is not above the filled {filled}",
    )
    CLOCK_WENT_BACKWARDS = "clock_went_backwards", 422, "{to} is before the clock's {now}"
    ORDER_NOT_OPEN = "order_not_open", 422, "order {order_id} is {status}"
    INVALID_CLIENT_ORDER_ID = (
        "invalid_client_order_id",
        422,
        "client_order_id is 1 to {limit} characters",
    )
    CLIENT_ORDER_ID_REUSED = (
        "client_order_id_reused",
        422,
        "this client_order_id was used for a different order",
    )

    # ------------------------------------------------------------ accounts, money, keys
    ACCOUNT_NOT_FOUND = "account_not_found", 404, "no account {account_id}"
    INVALID_ROLE = "invalid_role", 422, "role is {roles}"
    INVALID_NAME = "invalid_name", 422, "{reason}"
    INVALID_AMOUNT = "invalid_amount", 422, "{subject} must be positive"
    INSUFFICIENT_FUNDS = (
        "insufficient_funds",
        422,
        "available balance {available} is below the {what} {amount}",
    )
    INVALID_KEY_PREFIX = (
        "invalid_key_prefix",
        422,
        "a key prefix is 1 to {limit} characters",
    )
    INVALID_KEY_DIGEST = "invalid_key_digest", 422, "a key digest is sha256$... or scrypt$..."
    INVALID_KEY_ORIGIN = "invalid_key_origin", 422, "origin is one of {origins}"
    API_KEY_EXISTS = "api_key_exists", 409, "this key is already registered"
    API_KEY_NOT_FOUND = "api_key_not_found", 404, "no API key {key_id}"
    API_KEY_REVOKED = "api_key_revoked", 422, "API key {key_id} is already revoked"

    # ------------------------------------------------------------ tiers, classes, catalog
    TIER_NOT_FOUND = "tier_not_found", 404, "no tier {tier}"
    TIER_EXISTS = "tier_exists", 409, "tier {tier} exists"
    TIER_RETIRED = "tier_retired", 422, "tier {tier} is retired"
    INVALID_TIER = "invalid_tier", 422, "{reason}"
    INVALID_CODE = "invalid_code", 422, "{reason}"
    INVALID_STATUS = "invalid_status", 422, "status is one of {statuses}"
    INVALID_GREEN_GRADE = "invalid_green_grade", 422, "{reason}"
    GPU_CLASS_NOT_FOUND = "gpu_class_not_found", 404, "no GPU class {code}"
    GPU_CLASS_EXISTS = "gpu_class_exists", 409, "GPU class {code} exists"
    INVALID_CLASS = "invalid_class", 422, "{reason}"
    HARDWARE_NOT_FOUND = "hardware_not_found", 404, "no hardware {hardware_id}"
    INVALID_CATALOG = "invalid_catalog", 422, "a catalog installs 1 to {limit} models"
    INVALID_PRECISION = "invalid_precision", 422, "unknown precision {precision}"
    INVALID_QUALITY = "invalid_quality", 422, "quality is V, S, D or U"
    UNKNOWN_PRECISION = "unknown_precision", 422, "no family for {precision}"
    UNKNOWN_MODEL = "unknown_model", 422, "no model {model_id}"
    DUPLICATE_MODEL_ID = "duplicate_model_id", 422, "model {model_id} {problem}"
    INVALID_MODEL_ID = "invalid_model_id", 422, "{model_id} is not a lowercase slug"
    MISSING_NAME = "missing_name", 422, "vendor and model are required"
    MISSING_SOURCE = "missing_source", 422, "every figure needs a source"
    MISSING_QUALITY = "missing_quality", 422, "note does not open with '[tier X]': {note}"
    INVALID_SOURCE = "invalid_source", 422, "a source is at most {limit} characters"
    INVALID_NOTE = "invalid_note", 422, "a note is at most {limit} characters"
    INVALID_FIGURE = "invalid_figure", 422, "{model_id}: {column}={text}"
    UNKNOWN_FIGURE = "unknown_figure", 422, "{model_id} has no {figure}"
    UNKNOWN_FIGURE_NAME = "unknown_figure_name", 422, "{reason}"
    UNCONFIRMED_FIGURE = "unconfirmed_figure", 422, "{model_id} {figure} is unverified (U)"
    NON_POSITIVE_PEAK = "non_positive_peak", 422, "{subject} must be positive, got {value}"
    NON_POSITIVE_MEMORY = "non_positive_memory", 422, "memory must be positive, got {value}"
    NON_POSITIVE_BANDWIDTH = (
        "non_positive_bandwidth",
        422,
        "bandwidth must be positive, got {value}",
    )
    NON_POSITIVE_TDP = "non_positive_tdp", 422, "tdp must be positive, got {value}"
    NON_POSITIVE_FP64_VECTOR = (
        "non_positive_fp64_vector",
        422,
        "fp64_vector must be positive, got {value}",
    )
    FP16_ABOVE_FP8 = (
        "fp16_above_fp8",
        422,
        "{model_id}: fp16 peak {fp16} exceeds its fp8 peak {other}",
    )
    FP16_ABOVE_INT8 = (
        "fp16_above_int8",
        422,
        "{model_id}: fp16 peak {fp16} exceeds its int8 peak {other}",
    )
    FP16_BF16_MISMATCH = (
        "fp16_bf16_mismatch",
        422,
        "{model_id}: fp16 {fp16} and bf16 {bf16} are more than 2x apart",
    )
    IMPLAUSIBLE_FP16_FP32_RATIO = (
        "implausible_fp16_fp32_ratio",
        422,
        "{model_id}: 16-bit peak {half} is more than {ratio}x the fp32 peak {fp32}; "
        "a sparse, fp16-accumulate or mis-scaled figure",
    )
    SPARSE_FIGURE_AS_DENSE = "sparse_figure_as_dense", 422, "{reason}"
    FP16_ACCUMULATION_FIGURE = "fp16_accumulation_figure", 422, "{reason}"
    NO_SCU_FACTOR = "no_scu_factor", 422, "{reason}"

    # ------------------------------------------------------------ sites, pools, capacity
    SITE_NOT_FOUND = "site_not_found", 404, "no site {site_id}"
    POOL_NOT_FOUND = "pool_not_found", 404, "no pool {pool_id}"
    POOL_NOT_ELIGIBLE = "pool_not_eligible", 422, "pool {pool_id} does not deliver tier {tier}"
    INVALID_LOCATION = "invalid_location", 422, "a location is at most {limit} characters"
    INVALID_REGION = "invalid_region", 422, "region {region} is {problem}"
    INVALID_PUE = "invalid_pue", 422, "{reason}"
    INVALID_GREEN_SHARE = "invalid_green_share", 422, "{reason}"
    INVALID_EMISSION_FACTOR = "invalid_emission_factor", 422, "{reason}"
    INVALID_COUNT = "invalid_count", 422, "{reason}"
    INCOMPLETE_FACTOR_SET = "incomplete_factor_set", 422, "no factor for {regions}"
    NO_EMISSION_FACTORS = "no_emission_factors", 422, "no emission factor set in effect on {on}"
    INSUFFICIENT_CAPACITY = (
        "insufficient_capacity",
        422,
        "quantity {quantity} is above the {available} uncommitted in the eligible pools",
    )

    # ------------------------------------------------------------ contracts, delivery
    CONTRACT_NOT_FOUND = "contract_not_found", 404, "no contract {contract_id}"
    CONTRACT_SETTLED = "contract_settled", 422, "contract {contract_id} is settled"
    DELIVERY_NOT_STARTED = (
        "delivery_not_started",
        422,
        "the delivery of contract {contract_id} has not started",
    )
    INVALID_DEVICE_SECONDS = "invalid_device_seconds", 422, "{reason}"
    DELIVERY_EXCEEDS_POOL_CAPACITY = (
        "delivery_exceeds_pool_capacity",
        422,
        "pool {pool_id} has {room} device-seconds left in this window over all the reports "
        "of its contracts",
    )
    UNKNOWN_OPERATION = "unknown_operation", 422, "no operation {operation}"

    # ------------------------------------------------------------ metering, pricing
    INVALID_INTENSITY = "invalid_intensity", 422, "arithmetic intensity must be positive"
    INVALID_EFFICIENCY = "invalid_efficiency", 422, "efficiency must be in (0, 1]"
    INVALID_BASE_PRICE = "invalid_base_price", 422, "base SCU price must be positive"
    INVALID_MULTIPLIER = "invalid_multiplier", 422, "multiplier for {key} must be > 0"
    INVALID_MAX_TRADES = "invalid_max_trades", 422, "max_trades must be positive"
    INVALID_SIDE = "invalid_side", 422, "side must be buy or sell: {side}"
    INVALID_LEVEL = "invalid_level", 422, "level price and quantity must be positive"
    UNSORTED_LEVELS = "unsorted_levels", 422, "levels must be distinct, best first"
    EMPTY_INPUT = "empty_input", 422, "the median of nothing is undefined"
    INVALID_INTERVAL = "invalid_interval", 422, "interval must be 1m, 1h or 1d: {interval}"
    CANDLE_MISMATCH = (
        "candle_mismatch",
        422,
        "a candle takes trades of one symbol and interval",
    )
    OUT_OF_ORDER_TRADE = "out_of_order_trade", 422, "trade is older than the open candle"
    INVALID_INDEX_PARAMETERS = (
        "invalid_index_parameters",
        422,
        "k must be positive, floor >= 0",
    )
    INVALID_POINT = "invalid_point", 422, "prices and weights must be positive"
    INVALID_LOOKBACK = "invalid_lookback", 422, "lookback must be positive"
    INVALID_STEP = "invalid_step", 422, "a rounding step must be positive"
    CROSSED_BOOK = "crossed_book", 422, "{symbol}: best bid above best ask"
    DUPLICATE_WINDOW = "duplicate_window", 422, "{before} and {after}"

    # ------------------------------------------------------------ a decimal field's bounds
    # ``invalid_<field>``: a decimal field of a request below its minimum, or not positive.
    INVALID_TICK_SIZE = "invalid_tick_size", 422, "{field}: {reason}"
    INVALID_LOT_SIZE = "invalid_lot_size", 422, "{field}: {reason}"
    INVALID_MIN_QUANTITY = "invalid_min_quantity", 422, "{field}: {reason}"
    INVALID_MAX_QUANTITY = "invalid_max_quantity", 422, "{field}: {reason}"
    INVALID_PRICE_BAND_PCT = "invalid_price_band_pct", 422, "{field}: {reason}"
    INVALID_SHORTFALL_PENALTY_PCT = "invalid_shortfall_penalty_pct", 422, "{field}: {reason}"
    INVALID_REFERENCE_PRICE = "invalid_reference_price", 422, "{field}: {reason}"
    INVALID_PEAK_TFLOPS = "invalid_peak_tflops", 422, "{field}: {reason}"
    INVALID_MEMORY_GB = "invalid_memory_gb", 422, "{field}: {reason}"
    INVALID_MEMORY_BANDWIDTH_GBS = "invalid_memory_bandwidth_gbs", 422, "{field}: {reason}"
    INVALID_TDP_W = "invalid_tdp_w", 422, "{field}: {reason}"
    INVALID_MIN_DENSE_TFLOPS = "invalid_min_dense_tflops", 422, "{field}: {reason}"
    INVALID_MIN_MEMORY_GB = "invalid_min_memory_gb", 422, "{field}: {reason}"
    INVALID_MIN_MEMORY_BANDWIDTH_GBS = (
        "invalid_min_memory_bandwidth_gbs",
        422,
        "{field}: {reason}",
    )
    INVALID_HOURS = "invalid_hours", 422, "{field}: {reason}"
    #: a decimal query parameter (its rule does not learn the parameter's name)
    INVALID_VALUE = "invalid_value", 422, "{field}: {reason}"

    @classmethod
    def for_field(cls, field: str) -> Refusal:
        """``invalid_<field>``: a decimal field below its bounds (a member for every
        decimal field of the API; a field without one is a bug)."""
        return refusal_of(f"invalid_{field}")


def refusal_of(code: str) -> Refusal:
    """The member whose code is ``code``; a ``KeyError`` (a bug) for any other code."""
    return _BY_CODE[code]


_BY_CODE: dict[str, Refusal] = {refusal.value: refusal for refusal in Refusal}


def markdown_table() -> str:
    """The error table of ``docs/api.md``: every refusal, by status then code."""
    lines = [
        "| status | code | message |",
        "|---|---|---|",
    ]
    http = sorted((r for r in Refusal if not r.ws_only), key=lambda r: (r.status, r.value))
    for refusal in http:
        lines.append(f"| {refusal.status} | `{refusal.value}` | {_cell(refusal.template)} |")
    lines += ["", "Over the WebSocket only:", "", "| code | message |", "|---|---|"]
    for refusal in sorted((r for r in Refusal if r.ws_only), key=lambda r: r.value):
        lines.append(f"| `{refusal.value}` | {_cell(refusal.template)} |")
    return "\n".join(lines)


def _cell(template: str) -> str:
    return template.replace("|", "\\|")


if __name__ == "__main__":  # pragma: no cover - exercised by tests/test_docs.py
    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python3 -m exchange.refusals --markdown")
    print(markdown_table())
