"""A bounded schemathesis run over the app's OpenAPI schema: no 5xx, and every response
that the schema describes conforms to it. Admin routes get the admin key, the others a
trader's key, so generated requests reach the handlers rather than stop at 401.

The app runs on a SQLite file in a temporary directory, seeded (a tier, a trader with
money, a site, a pool, a few orders and a trade) before schemathesis starts it, so that
generated ids and symbols sometimes hit real objects. A few examples per operation keep
the run well under a minute.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.app import create_app
from tests.api.conftest import ADMIN, open_api, settings_for, sqlite_url

_DIR = Path(tempfile.mkdtemp(prefix="suanli-schemathesis-"))
atexit.register(shutil.rmtree, _DIR, ignore_errors=True)
DATABASE = sqlite_url(_DIR)


def _seed() -> dict[str, str]:
    with open_api(DATABASE) as api:
        symbols = api.market()
        a, s = api.trader("alice"), api.trader("seller")
        api.seller(s)
        api.order(s, symbols[0], "sell", "20", "2")
        api.order(a, symbols[0], "buy", "20", "1")
        api.order(a, symbols[1], "buy", "19", "1")
        return a.headers


TRADER = _seed()
# A fresh app on the seeded database; schemathesis runs its lifespan (replaying the log).
APP = create_app(settings_for(DATABASE))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(
    max_examples=6,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    headers = ADMIN if case.path.startswith("/v1/admin/") else TRADER
    case.call_and_validate(
        headers=headers, checks=[not_a_server_error, response_schema_conformance]
    )
