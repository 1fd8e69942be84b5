"""A newcomer's first steps: every start-up error is one line that names the fix, no
traceback; admin commands never touch the exchange's clock; ``--start`` on an existing
exchange says that it changed nothing."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from api import server
from api.cli import app as cli
from api.settings import Settings
from api.startup import build_context
from tests.api.conftest import ADMIN_KEY, START, open_api, sqlite_url

runner = CliRunner()


@pytest.fixture(autouse=True)
def no_server(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """`suanli serve` runs up to the point where it would serve, and returns."""
    served: list[Any] = []
    monkeypatch.setattr(server, "serve", lambda app, settings, **kw: served.append(app))
    monkeypatch.delenv("SUANLI_ADMIN_KEY", raising=False)
    return served


def _one_line(result: Any, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1, result.output
    assert result.output.startswith("suanli: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def _serve(url: str, *args: str, **env: str) -> Any:
    return runner.invoke(cli, ["serve", "--database-url", url, *args], env=env)


def test_a_short_admin_key_is_one_line(tmp_path: Path) -> None:
    result = _serve(sqlite_url(tmp_path), SUANLI_ADMIN_KEY="short")
    _one_line(result, "SUANLI_ADMIN_KEY must be at least 16 characters", "token_urlsafe")


def test_a_malformed_start_is_one_line(tmp_path: Path) -> None:
    result = _serve(sqlite_url(tmp_path), "--clock", "simulated", "--start", "2026-13-45")
    _one_line(result, "is not an ISO 8601 time", "2026-11-22T00:00:00Z")


def test_an_unreachable_database_is_one_line() -> None:
    result = _serve("postgresql://postgres@127.0.0.1:1/nowhere")
    _one_line(result, "cannot open the database at postgresql", "is running")


def test_a_locked_database_is_one_line(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    with open_api(url):
        result = runner.invoke(cli, ["admin", "create-key", "--database-url", url])
    _one_line(result, "is running", "POST /v1/admin/accounts")


def test_serve_starts_once_the_errors_are_fixed(tmp_path: Path, no_server: list[Any]) -> None:
    url = sqlite_url(tmp_path)
    result = _serve(url, "--clock", "simulated", "--start", START, SUANLI_ADMIN_KEY=ADMIN_KEY)
    assert result.exit_code == 0, result.output
    assert len(no_server) == 1


def test_create_key_never_moves_the_clock(tmp_path: Path) -> None:
    """On an exchange whose simulated clock is days behind the real date."""
    url = sqlite_url(tmp_path)
    with open_api(url) as api:
        api.advance(3600)
        now = api.ok(api.get("/v1/clock"))["now"]
    result = runner.invoke(cli, ["admin", "create-key", "--database-url", url])
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    with open_api(url) as api:
        assert api.ok(api.get("/v1/clock"))["now"] == now
        me = api.ok(api.get("/v1/account", headers={"Authorization": f"Bearer {key}"}))
        assert me["role"] == "admin"


def test_create_key_on_no_exchange_says_how_to_start_one(tmp_path: Path) -> None:
    result = runner.invoke(cli, ["admin", "create-key", "--database-url", sqlite_url(tmp_path)])
    _one_line(result, "no exchange at", "suanli serve")


def test_start_on_an_existing_exchange_says_it_changed_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = sqlite_url(tmp_path)
    with open_api(url):
        pass
    caplog.set_level(logging.WARNING, "suanli.startup")
    ctx = build_context(Settings(database_url=url, clock="simulated", start="2027-01-01T00:00:00Z"))
    ctx.service.store.close()
    (record,) = [r for r in caplog.records if "--start ignored" in r.getMessage()]
    assert "already exists (its clock is at 2026-11-22T00:00:00Z)" in record.getMessage()
