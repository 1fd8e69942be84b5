"""The one enumeration of refusal codes: every code answered is a member, each keeps the
status it had before the enumeration, and its message template renders."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pydantic
import pytest

import api.schemas
from api.errors import ApiError, error_response, status_for
from api.responses.common import REFUSALS
from exchange.orders import ResultCode
from exchange.records import Rejected
from exchange.refusals import Refusal, refusal_of
from pricing.catalog import KNOWN_TRAPS
from pricing.errors import PricingError

ROOT = Path(__file__).resolve().parents[1]

#: Every code's HTTP status as the API answered it before the enumeration existed: the
#: suffix rule (``_not_found`` 404, ``_exists`` 409, else 422) and the table of
#: ``api.errors.status_for``, and the statuses the shell answered without it (400 for a
#: body that is not UTF-8, 404 and 405 from routing, 408, 413, 431, 500, 503). A code only
#: the WebSocket answers keeps what ``status_for`` gave it (it is never sent).
STATUSES: dict[int, set[str]] = {
    400: {"http_error", "invalid_encoding"},
    401: {"unauthorized"},
    403: {"forbidden"},
    404: {
        "account_not_found",
        "api_key_not_found",
        "contract_not_found",
        "gpu_class_not_found",
        "hardware_not_found",
        "instrument_not_found",
        "not_found",
        "order_not_found",
        "pool_not_found",
        "site_not_found",
        "tier_not_found",
    },
    405: {"method_not_allowed"},
    408: {"request_timeout"},
    409: {
        "api_key_exists",
        "clock_not_simulated",
        "gpu_class_exists",
        "instrument_exists",
        "tier_exists",
    },
    413: {"request_too_large"},
    429: {
        "rate_limited",
        "too_many_idempotency_keys",
        "too_many_open_orders",
        "too_many_pools",
        "too_many_sites",
    },
    431: {"headers_too_large"},
    500: {"internal_error"},
    503: {"projections_unavailable", "server_busy", "service_unavailable"},
}
#: Everything else answers 422.
UNPROCESSABLE = 422

#: The codes exchange/core.py still raises with free text (``Rejected("code", "...")``,
#: or an engine result's code alone): converted to ``Rejected(Refusal.X, **fields)`` when
#: the core's components land. Shrink this set as they are converted.
FREE_TEXT_IN_CORE = {
    "account_not_found",
    "amend_below_filled",
    "client_order_id_reused",
    "clock_went_backwards",
    "contract_not_found",
    "contract_settled",
    "delivery_exceeds_pool_capacity",
    "delivery_not_started",
    "duplicate_model_id",
    "gpu_class_exists",
    "gpu_class_not_found",
    "hardware_not_found",
    "instrument_not_found",
    "insufficient_capacity",
    "insufficient_funds",
    "invalid_amount",
    "invalid_catalog",
    "invalid_characters",
    "invalid_class",
    "invalid_client_order_id",
    "invalid_code",
    "invalid_count",
    "invalid_device_seconds",
    "invalid_green_grade",
    "invalid_location",
    "invalid_name",
    "invalid_precision",
    "invalid_quality",
    "invalid_region",
    "invalid_role",
    "invalid_status",
    "invalid_tier",
    "invalid_transition",
    "order_not_found",
    "order_not_open",
    "pool_not_eligible",
    "pool_not_found",
    "site_not_found",
    "tier_exists",
    "tier_not_found",
    "tier_retired",
    "too_many_open_orders",
    "too_many_pools",
    "too_many_sites",
    "unknown_operation",
}

#: Whether exchange/core.py still raises an engine result by its code alone
#: (``Rejected(code.code)``: the message is the code's words, "invalid tick").
ENGINE_RESULTS_AS_FREE_TEXT = True

#: A refusal constructed from a literal code: ``Rejected("code"``, ``ApiError("code"``,
#: the pricing, units and ledger errors, the edge's ``Refused``, an ``error_body``.
_LITERAL = re.compile(
    r"\b(?:Rejected|ApiError|PricingError|UnitsError|LedgerError|Refused|error_body"
    r"|KnownTrap)\(\s*f?\"([a-z][a-z0-9_{}.]*)\""
)
#: A code given as an engine result's or another refusal's code, the free-text way.
_PASSED_ON = re.compile(r"\bRejected\((code\.code)\)")


def _sources() -> list[Path]:
    return sorted(p for d in ("exchange", "pricing", "api") for p in (ROOT / d).rglob("*.py"))


def _expected_status(code: str) -> int:
    return next((s for s, codes in STATUSES.items() if code in codes), UNPROCESSABLE)


def test_each_code_keeps_its_status() -> None:
    pinned = set().union(*STATUSES.values())
    assert pinned <= {r.value for r in Refusal}
    for refusal in Refusal:
        assert refusal.status == _expected_status(refusal.value), refusal
        assert status_for(refusal.value) == refusal.status


def test_codes_are_unique_snake_case() -> None:
    values = [r.value for r in Refusal]
    assert len(values) == len(set(values))
    for refusal in Refusal:
        assert re.fullmatch(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*", refusal.value), refusal
        assert refusal.name == refusal.value.upper()


def test_an_unknown_code_is_a_bug() -> None:
    with pytest.raises(KeyError):
        status_for("no_such_code")
    with pytest.raises(KeyError):
        refusal_of("Invalid_Tick")
    with pytest.raises(KeyError):
        Refusal.for_field("no_such_field")


def test_every_template_renders_with_its_fields() -> None:
    for refusal in Refusal:
        fields = {name: f"<{name}>" for name in refusal.fields}
        message = refusal.message(**fields)
        assert "{" not in message and "}" not in message, refusal
        for name in refusal.fields:
            assert f"<{name}>" in message
        if refusal.fields:
            with pytest.raises(KeyError):
                refusal.message()


def test_reject_renders_the_template_with_the_numbers() -> None:
    rejected = Refusal.INVALID_TICK.reject(price="20.5", tick="1")
    assert isinstance(rejected, Rejected)
    assert rejected.code is Refusal.INVALID_TICK
    assert rejected.message == "price 20.5 is not a multiple of the tick 1"
    assert error_response(rejected)[:2] == (
        422,
        {"error": {"code": "invalid_tick", "message": rejected.message}},
    )
    same = Rejected(Refusal.PRICE_OUT_OF_BAND, price="30", low="18", high="22")
    assert same.message == "price 30 is outside the band 18 to 22"
    assert Rejected(Refusal.API_KEY_EXISTS).message == "this key is already registered"


def test_the_free_text_form_still_works() -> None:
    rejected = Rejected("invalid_tick")
    assert (rejected.code, rejected.message) == ("invalid_tick", "invalid tick")
    rejected = Rejected("order_not_found", "no order 7")
    assert error_response(rejected)[:2] == (
        404,
        {"error": {"code": "order_not_found", "message": "no order 7"}},
    )
    with pytest.raises(TypeError):
        Rejected("invalid_tick", price="1")  # fields need a Refusal
    with pytest.raises(TypeError):
        Rejected(Refusal.INVALID_TICK, "a message", price="1")


def test_api_error_takes_a_refusal() -> None:
    error = ApiError(Refusal.SITE_NOT_FOUND, site_id=3)
    assert (error.status, error.message) == (404, "no site 3")
    error = ApiError(Refusal.INVALID_CURSOR)
    assert error.message == "cursor is the next_cursor of a previous page"
    error = ApiError(Refusal.RATE_LIMITED, reason="slow down", headers={"Retry-After": "1"})
    assert error_response(error) == (
        429,
        {"error": {"code": "rate_limited", "message": "slow down"}},
        {"Retry-After": "1"},
    )


def test_pricing_errors_render_their_template() -> None:
    error = PricingError(Refusal.INVALID_INTERVAL, interval="'2m'")
    assert error.code is Refusal.INVALID_INTERVAL
    assert error.message == "interval must be 1m, 1h or 1d: '2m'"
    assert str(error) == "invalid_interval: interval must be 1m, 1h or 1d: '2m'"


def test_every_engine_result_is_a_refusal() -> None:
    for result in ResultCode:
        if result is not ResultCode.OK:
            assert refusal_of(result.code).value == result.code


def test_every_known_trap_is_a_refusal() -> None:
    for trap in KNOWN_TRAPS:
        assert isinstance(trap.code, Refusal)


def _decimal_fields() -> set[str]:
    names: set[str] = set()
    for model in vars(api.schemas).values():
        if not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
            continue
        for name, info in model.model_fields.items():
            metadata = list(info.metadata)
            for arg in typing.get_args(info.annotation):
                metadata += getattr(arg, "__metadata__", ())
                for inner in typing.get_args(arg):
                    metadata += getattr(inner, "__metadata__", ())
            if any(isinstance(m, api.schemas.DecimalField) for m in metadata):
                names.add(name)
    return names


def test_every_decimal_field_has_its_refusal() -> None:
    fields = _decimal_fields()
    assert {"price", "quantity", "amount", "pue", "tick_size"} <= fields
    # query parameters (api.routes.market: checked as "value", then parsed by name) and
    # the pricing package's own checks
    fields |= {"value", "hours", "emission_factor", "green_share"}
    for field in fields:
        assert Refusal.for_field(field).value == f"invalid_{field}"
    for name in ("memory", "bandwidth", "tdp", "fp64_vector"):
        refusal_of(f"non_positive_{name}")
    for other in ("fp8", "int8"):
        refusal_of(f"fp16_above_{other}")


def test_every_literal_code_in_the_sources_is_a_refusal() -> None:
    """A static scan: a code written as a string literal where a refusal is made is a
    member; outside exchange/core.py none is written so (they name a member), and the
    core's are exactly :data:`FREE_TEXT_IN_CORE`."""
    in_core: set[str] = set()
    elsewhere: list[str] = []
    for path in _sources():
        text = path.read_text()
        for code in _LITERAL.findall(text):
            if "{" in code:  # a code built from a field: test_every_decimal_field_...
                elsewhere.append(f"{path.relative_to(ROOT)}: {code}")
                continue
            refusal_of(code)
            if path == ROOT / "exchange" / "core.py":
                in_core.add(code)
            else:
                elsewhere.append(f"{path.relative_to(ROOT)}: {code}")
        if path != ROOT / "exchange" / "core.py":
            assert not _PASSED_ON.search(text), path
    assert elsewhere == []
    assert in_core == FREE_TEXT_IN_CORE
    core = (ROOT / "exchange" / "core.py").read_text()
    assert bool(_PASSED_ON.search(core)) is ENGINE_RESULTS_AS_FREE_TEXT


def test_published_status_descriptions_name_codes_of_that_status() -> None:
    for status, description in REFUSALS.items():
        for word in re.findall(r"\b[a-z]+(?:_[a-z]+)+\b", description):
            refusal = refusal_of(word)
            assert refusal.status == status, (status, word)
