"""Schemathesis over the app's published schema, with every one of its checks: examples,
boundary values (coverage) and random requests for each operation, then the stateful
phase, chains of calls following the links schemathesis infers (an order's id to read,
amend and cancel it; a site's to add pools; an account's to deposit). No 5xx, every
answer as documented (status, headers, body), schema-valid requests accepted and
schema-invalid ones refused, keys enforced, 405 with ``Allow``.

Admin routes get the admin key, the others a trader's (``Keys``), so generated requests
reach the handlers rather than stop at 401. The app runs on a SQLite file in a temporary
directory, seeded (a tier, a trader with money, a site, a pool, a few orders and a
trade) before schemathesis starts it, so that generated ids and symbols sometimes hit
real objects.

One check is adapted, not dropped: ``positive_data_acceptance`` expects a schema-valid
request to succeed, but an exchange refuses well-formed requests for reasons no schema
can state: the state of the market (funds, an instrument that is not open, a code that
exists) and rules between fields (a price on the tier's tick, a minimum below the
maximum). Those refusals carry codes of their own; a refusal for the request's form
(the codes in ``FORM_CODES``) of a request the schema accepts is a failure here.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import positive_data_acceptance, use_after_free

from api.app import create_app
from api.schemas import OrderIn, PoolIn
from tests.api.conftest import ADMIN_KEY, H100, open_api, settings_for, sqlite_url

_DIR = Path(tempfile.mkdtemp(prefix="suanli-schemathesis-"))
atexit.register(shutil.rmtree, _DIR, ignore_errors=True)
DATABASE = sqlite_url(_DIR)

#: The codes a request earns by its form alone: each is a rule the schema states.
FORM_CODES = frozenset(
    {
        "invalid_request",
        "invalid_characters",
        "invalid_decimal",
        "invalid_cursor",
        "invalid_encoding",
        "invalid_idempotency_key",
        "duplicate_key",
        "unsupported_media_type",
        "out_of_range",
        "too_many_decimals",
    }
)


def _seed() -> tuple[str, list[str]]:
    with open_api(DATABASE) as api:
        symbols = api.market()
        a, s = api.trader("alice"), api.trader("seller")
        api.seller(s)
        api.seller(a)
        api.order(s, symbols[0], "sell", "20", "2")
        api.order(a, symbols[0], "buy", "20", "1")
        api.order(a, symbols[1], "buy", "19", "1")
        return a.key, symbols


TRADER_KEY, SYMBOLS = _seed()
# A fresh app on the seeded database; schemathesis runs its lifespan (replaying the log).
APP = create_app(settings_for(DATABASE))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.auth(refresh_interval=None)
class Keys:
    """The admin key for admin routes, the seeded trader's for the others. Given as the
    schema's bearer key, so that schemathesis leaves it out where it means to (to see
    a 401) rather than have it put back over a deliberately missing header."""

    def get(self, case: schemathesis.Case, context: Any) -> str:
        return ADMIN_KEY if context.operation.path.startswith("/v1/admin/") else TRADER_KEY

    def set(self, case: schemathesis.Case, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schemathesis.check
def schema_valid_requests_pass_the_form_checks(
    ctx: Any, response: Any, case: schemathesis.Case
) -> bool | None:
    """A request the schema accepts is never refused for its form (``FORM_CODES``)."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    if response.status_code not in (400, 422):
        return None
    code = response.json()["error"]["code"]
    assert code not in FORM_CODES, (
        f"a schema-valid request was refused for its form: {response.status_code} {code}: "
        f"{response.json()['error']['message']}"
    )
    return None


@schemathesis.check
def cancelled_orders_read_as_cancelled(
    ctx: Any, response: Any, case: schemathesis.Case
) -> bool | None:
    """An order read after its cancel succeeded is the same order, cancelled."""
    if (case.method, case.path, response.status_code) != ("GET", "/v1/orders/{order_id}", 200):
        return None
    for earlier in ctx.internals.find_related(case_id=case.id):
        if (earlier.method, earlier.path) != ("DELETE", "/v1/orders/{order_id}"):
            continue
        cancelled = ctx.internals.find_response(case_id=earlier.id)
        succeeded = cancelled is not None and cancelled.status_code == 200
        if succeeded and earlier.path_parameters == case.path_parameters:
            assert response.json()["status"] == "cancelled", response.json()
    return None


CHECKS: dict[str, Any] = {
    # use_after_free expects a 404 for what a DELETE removed; DELETE /v1/orders/{id}
    # cancels, and the order stays readable (API.md): the check above says what holds.
    "excluded_checks": [positive_data_acceptance, use_after_free],
    "additional_checks": [
        schema_valid_requests_pass_the_form_checks,
        cancelled_orders_read_as_cancelled,
    ],
}


@schema.parametrize()
@settings(max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    case.call_and_validate(**CHECKS)


# Random symbols and hardware ids name nothing, so half of the schema-valid order and pool
# bodies get a real one (an order also a price in the band, on the tick): orders are then
# placed, and the links from them (read, amend, cancel) followed. Bodies that break the
# schema are left alone: they are meant to be refused.
def _valid(model: type[BaseModel], body: Any) -> bool:
    try:
        model.model_validate(body)
    except ValidationError:
        return False
    return True


@schema.hook("flatmap_body").apply_to(method="POST", path="/v1/orders")
def real_orders(context: Any, body: Any) -> st.SearchStrategy[Any]:
    if not _valid(OrderIn, body):
        return st.just(body)
    real = st.fixed_dictionaries(
        {
            "instrument": st.sampled_from(SYMBOLS),
            "price": st.sampled_from(["19.5", "20", "20.5"]),
            "quantity": st.sampled_from(["0.1", "1"]),
        }
    )
    return st.one_of(st.just(body), real.map(lambda fields: {**body, **fields}))


@schema.hook("flatmap_body").apply_to(method="POST", path_regex="^/v1/sites/.+/pools$")
def real_pools(context: Any, body: Any) -> st.SearchStrategy[Any]:
    if not _valid(PoolIn, body):
        return st.just(body)
    return st.one_of(st.just(body), st.just({**body, "hardware_id": H100}))


# The links schemathesis infers (an order's id to read, amend and cancel it, a site's to
# add pools, an account's to deposit, ...) all start from an object that exists; one more
# starts order entry from a real symbol, which nothing in an order's response names.
# Test-only: a link's requestBody that names one field (merged into the generated body)
# is schemathesis' reading, where OpenAPI's would be the whole body.
schema.raw_schema["paths"]["/v1/instruments"]["get"]["responses"]["200"]["links"] = {
    "place_an_order": {
        "operationId": "place_order_v1_orders_post",
        "requestBody": {"instrument": "$response.body#/data/0/symbol"},
    }
}


class Workflows(schema.as_state_machine()):  # type: ignore[misc]
    """Chains of calls along the schema's links, each answer checked like the above.

    Each chain runs on an exchange of its own, a copy of the seeded database: Hypothesis
    replays chains while it searches, and a replay must meet the same exchange (a GPU
    class created by an earlier chain would turn a 201 into a 409, and a link followed
    before into one that cannot be)."""

    def setup(self) -> None:
        directory = Path(tempfile.mkdtemp(dir=_DIR))
        shutil.copy(_DIR / "suanli.db", directory / "suanli.db")
        self.app = create_app(settings_for(sqlite_url(directory)))

    def teardown(self) -> None:
        # Stops the exchange of this chain (and any other started; they start again when
        # next called), so that chains do not leave writers running.
        shutdown_lifespans()

    def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
        return {"app": self.app}

    def validate_response(self, response: Any, case: schemathesis.Case, **kwargs: Any) -> None:
        case.validate_response(
            response, transport_kwargs=kwargs or None, recorder=self.recorder, **CHECKS
        )


@pytest.mark.slow
def test_stateful_workflows_conform_to_the_schema() -> None:
    Workflows.run(
        settings=settings(
            max_examples=40,
            stateful_step_count=6,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
