"""Fixtures of the HTTP API tests: the real app behind FastAPI's TestClient.

``api`` is the app on a SQLite file in the test's tmp_path; ``api_db`` runs the same test
on SQLite and on PostgreSQL. PostgreSQL comes from ``SUANLI_TEST_POSTGRES_URL`` (e.g.
``postgresql+psycopg://postgres@127.0.0.1:5432/test``); each PostgreSQL test gets a schema
of its own (selected with the ``search_path`` connection option) that is dropped
afterwards. When the variable is unset or the server does not answer, the PostgreSQL
variants skip and say why. ``make_api`` opens an app with other settings (rate limits,
page sizes, open-order caps).

The TestClient is always used as a context manager so that the app's lifespan (which
opens the store, replays the log and starts the writer) runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text

from api.app import create_app
from api.settings import Settings
from tests.postgres import postgres_server

ADMIN_KEY = "admin-secret-key-123456"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
START = "2026-11-22T00:00:00Z"
H100 = "nvidia-h100-sxm5-80gb"
TIER = "FP16-H"

GPU_CLASS = {"code": "H", "name": "Hopper", "precision": "fp16", "min_dense_tflops": "700"}
TIER_BODY: dict[str, Any] = {
    "code": TIER,
    "precision": "fp16",
    "gpu_class": "H",
    "min_green_grade": None,
    "tick_size": "0.01",
    "lot_size": "0.1",
    "min_quantity": "0.1",
    "max_quantity": "1000",
    "price_band_pct": "20",
    "maker_fee_bps": 5,
    "taker_fee_bps": 10,
    "shortfall_penalty_pct": "20",
    "reference_price": "20",
    "window_hours": 1,
    "list_ahead_hours": 6,
    "gate_closure_minutes": 60,
}
SITE = {"name": "sh", "region": "east", "pue": "1.25", "green_share": "0"}


# ---------------------------------------------------------------------- databases
def _postgres_server() -> tuple[str | None, str]:
    return postgres_server("API")


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL whose connections see only a fresh schema; the schema is dropped afterwards."""
    base, reason = _postgres_server()
    if base is None:
        pytest.skip(reason)
    schema = f"t_{uuid.uuid4().hex}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text("SET lock_timeout = '20s'"))
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'suanli.db'}"


# ---------------------------------------------------------------------- the client
@dataclass(frozen=True)
class Trader:
    id: int
    name: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


class Api:
    """A TestClient with the admin key and the few steps every test repeats."""

    def __init__(self, client: TestClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    # Plain HTTP, passing through to the TestClient.
    def get(self, url: str, **kw: Any) -> Any:
        return self.client.get(url, **kw)

    def post(self, url: str, **kw: Any) -> Any:
        return self.client.post(url, **kw)

    def patch(self, url: str, **kw: Any) -> Any:
        return self.client.patch(url, **kw)

    def delete(self, url: str, **kw: Any) -> Any:
        return self.client.delete(url, **kw)

    def request(self, method: str, url: str, **kw: Any) -> Any:
        return self.client.request(method, url, **kw)

    # Steps.
    def ok(self, response: Any, status: int = 200) -> Any:
        assert response.status_code == status, (response.status_code, response.text)
        return response.json()

    def trader(self, name: str, deposit: str | None = "100000") -> Trader:
        body = self.ok(self.post("/v1/admin/accounts", json={"name": name}, headers=ADMIN), 201)
        trader = Trader(body["id"], name, body["api_key"])
        if deposit is not None:
            self.deposit(trader, deposit)
        return trader

    def deposit(self, trader: Trader, amount: str) -> Any:
        url = f"/v1/admin/accounts/{trader.id}/deposits"
        return self.ok(self.post(url, json={"amount": amount}, headers=ADMIN), 201)

    def market(self, **tier_overrides: Any) -> list[str]:
        """The Hopper GPU class and the FP16-H tier; returns the listed symbols in order."""
        self.ok(self.post("/v1/admin/gpu-classes", json=GPU_CLASS, headers=ADMIN), 201)
        self.ok(
            self.post("/v1/admin/tiers", json={**TIER_BODY, **tier_overrides}, headers=ADMIN), 201
        )
        return self.symbols()

    def symbols(self, state: str | None = None) -> list[str]:
        params = {"state": state} if state else {}
        return [i["symbol"] for i in self.walk("/v1/instruments", **params)]

    def seller(self, trader: Trader, count: int = 10, hardware: str = H100) -> tuple[int, int]:
        """A site with one pool; returns (site id, pool id)."""
        site = self.ok(self.post("/v1/sites", json=SITE, headers=trader.headers), 201)
        pool = self.ok(
            self.post(
                f"/v1/sites/{site['id']}/pools",
                json={"hardware_id": hardware, "count": count},
                headers=trader.headers,
            ),
            201,
        )
        return site["id"], pool["id"]

    def order(self, trader: Trader, symbol: str, side: str, price: str, qty: str, **kw: Any) -> Any:
        body = {"instrument": symbol, "side": side, "price": price, "quantity": qty, **kw}
        return self.ok(self.post("/v1/orders", json=body, headers=trader.headers), 201)

    def advance(self, seconds: int) -> Any:
        body = {"advance_seconds": seconds}
        return self.ok(self.post("/v1/admin/clock", json=body, headers=ADMIN))

    def account(self, trader: Trader) -> dict[str, Any]:
        result: dict[str, Any] = self.ok(self.get("/v1/account", headers=trader.headers))
        return result

    def operations(self) -> int:
        """The durable operation count: any accepted change moves it."""
        return int(self.ok(self.get("/v1/health"))["operations"])

    def walk(self, url: str, headers: dict[str, str] | None = None, **params: Any) -> list[Any]:
        """Every item of a list endpoint, following next_cursor."""
        items: list[Any] = []
        cursor = None
        for _ in range(10_000):
            query = {**params, **({"cursor": cursor} if cursor else {})}
            page = self.ok(self.get(url, params=query, headers=headers))
            items.extend(page["data"])
            cursor = page["next_cursor"]
            if cursor is None:
                return items
        raise AssertionError(f"{url}: cursor never ended")

    def snapshot(self, *traders: Trader) -> dict[str, Any]:
        """Everything a trader can see of its own state, plus the public market state."""
        state: dict[str, Any] = {"operations": self.operations()}
        for t in traders:
            h = t.headers
            state[t.name] = {
                "account": self.account(t),
                "orders": self.walk("/v1/orders", h),
                "fills": self.walk("/v1/fills", h),
                "sites": self.walk("/v1/sites", h),
                "pools": self.walk("/v1/pools", h),
                "contracts": self.walk("/v1/contracts", h),
                "ledger": self.walk("/v1/account/ledger", h),
            }
        state["tiers"] = self.walk("/v1/tiers")
        state["instruments"] = self.walk("/v1/instruments")
        state["books"] = {s: self.ok(self.get(f"/v1/instruments/{s}/book")) for s in self.symbols()}
        return state


def settings_for(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "clock": "simulated",
        "start": START,
        "admin_key": ADMIN_KEY,
        "rate_limit_per_s": 0,  # off unless a test is about rate limits
        "change_rate_per_s": 0,
    }
    values.update(overrides)
    return Settings(**values)


@contextmanager
def open_api(url: str, *, raise_server_exceptions: bool = True, **overrides: Any) -> Iterator[Api]:
    """The app on ``url``. With ``raise_server_exceptions=False`` a server error comes back
    as a 500 response (to check that the service still answers afterwards)."""
    settings = settings_for(url, **overrides)
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=raise_server_exceptions) as client:
        yield Api(client, settings)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    """The app on a SQLite file in tmp_path."""
    with open_api(sqlite_url(tmp_path)) as a:
        yield a


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def api_db(db_url: str) -> Iterator[Api]:
    """The app on SQLite and on PostgreSQL."""
    with open_api(db_url) as a:
        yield a


@pytest.fixture
def make_api(tmp_path: Path) -> Callable[..., AbstractContextManager[Api]]:
    """Open the app on a SQLite file in tmp_path with other settings."""
    counter = iter(range(1_000))

    def make(**overrides: Any) -> AbstractContextManager[Api]:
        directory = tmp_path / f"db{next(counter)}"
        directory.mkdir()
        return open_api(sqlite_url(directory), **overrides)

    return make
