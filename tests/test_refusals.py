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

#: A refusal constructed from a literal code: ``Rejected("code"``, ``ApiError("code"``,
#: the pricing, units and ledger errors, the edge's ``Refused``, an ``error_body``.
_LITERAL = re.compile(
    r"\b(?:Rejected|ApiError|PricingError|UnitsError|LedgerError|Refused|error_body"
    r"|KnownTrap)\(\s*f?\"([a-z][a-z0-9_{}.]*)\""
)
#: A code given as an engine result's or another refusal's code, the free-text way
#: (``Rejected(code.code)``), or a refusal given a free-text message
#: (``Rejected(exc.code, str(exc))``, ``Rejected(Refusal.X, f"...")``).
_PASSED_ON = re.compile(r"\bRejected\(\s*[\w.]+\.code\s*\)")
_FREE_MESSAGE = re.compile(r"\bRejected\(\s*[^,()]+,\s*(?:f?\"|str\()")


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


def test_no_refusal_is_raised_from_free_text() -> None:
    """A static scan of exchange/, pricing/ and api/: no refusal is made from a literal
    code string, an engine result's code alone or a free-text message; each names a
    :class:`Refusal` member and renders its template from fields."""
    found: list[str] = []
    for path in _sources():
        text = path.read_text()
        where = path.relative_to(ROOT)
        for code in _LITERAL.findall(text):
            found.append(f"{where}: literal {code}")
        for pattern in (_PASSED_ON, _FREE_MESSAGE):
            for match in pattern.finditer(text):
                found.append(f"{where}: {match.group()}")
    assert found == []


@pytest.mark.parametrize(
    "source",
    [
        'raise Rejected("order_not_found", f"no order {order_id}")',
        'raise Rejected("invalid_tick")',
        "raise Rejected(code.code)",
        "raise Rejected(result.code)",
        "raise Rejected(exc.code, str(exc)) from exc",
        'raise Rejected(Refusal.INVALID_TICK, f"price {price}")',
        'raise ApiError("site_not_found", "no site")',
    ],
)
def test_the_scan_catches_free_text(source: str) -> None:
    caught = _LITERAL.search(source) or _PASSED_ON.search(source) or _FREE_MESSAGE.search(source)
    assert caught, source


@pytest.mark.parametrize(
    "source",
    [
        "raise Refusal.ORDER_NOT_FOUND.reject(order_id=order_id)",
        "raise Rejected(Refusal.INVALID_TICK, price=price, tick=tick)",
        "raise Rejected(exc.code, **exc.fields) from exc",
    ],
)
def test_the_scan_passes_the_enum(source: str) -> None:
    assert not (
        _LITERAL.search(source) or _PASSED_ON.search(source) or _FREE_MESSAGE.search(source)
    )


def test_published_status_descriptions_name_codes_of_that_status() -> None:
    for status, description in REFUSALS.items():
        for word in re.findall(r"\b[a-z]+(?:_[a-z]+)+\b", description):
            refusal = refusal_of(word)
            assert refusal.status == status, (status, word)
