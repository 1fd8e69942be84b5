"""The web view end to end in headless Chromium: it loads, shows a book, and updates live
when an order is placed through the API."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import GPU_CLASS, TIER_BODY

CHROMIUM = os.environ.get("SUANLI_CHROMIUM", "/usr/bin/chromium")
ADMIN = "web-test-admin-key-0123456789"
pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() or shutil.which("chromium")),
    reason="headless Chromium is not installed (Debian package 'chromium'); .ci/run installs it",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "SUANLI_ADMIN_KEY": ADMIN,
        "SUANLI_RATE_LIMIT_PER_S": "0",
    }
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "api.cli",
            "serve",
            "--port",
            str(port),
            "--clock",
            "simulated",
            "--start",
            "2026-11-22T00:00:00Z",
            "--database-url",
            f"sqlite:///{tmp_path}/web.db",
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(base + "/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the server did not start: " + (tmp_path / "server.log").read_text())
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _market(base: str) -> tuple[dict[str, str], dict[str, str], str]:
    c = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)

    def post(path: str, body: dict[str, object], headers: dict[str, str] | None = None) -> dict:
        r = c.post(path, json=body, headers=headers)
        assert r.status_code < 300, r.text
        return dict(r.json())

    seller = post("/v1/admin/accounts", {"name": "dc"})
    buyer = post("/v1/admin/accounts", {"name": "lab"})
    for account in (seller, buyer):
        post(f"/v1/admin/accounts/{account['id']}/deposits", {"amount": "100000"})
    post("/v1/admin/gpu-classes", GPU_CLASS)
    post("/v1/admin/tiers", TIER_BODY)
    s = {"Authorization": f"Bearer {seller['api_key']}"}
    b = {"Authorization": f"Bearer {buyer['api_key']}"}
    site = post("/v1/sites", {"name": "sh", "region": "east", "pue": "1.25", "green_share": "0"}, s)
    post(f"/v1/sites/{site['id']}/pools", {"hardware_id": "nvidia-h100-sxm5-80gb", "count": 50}, s)
    symbol = c.get("/v1/instruments").json()["data"][0]["symbol"]
    post("/v1/orders", {"instrument": symbol, "side": "sell", "price": "20.50", "quantity": "2"}, s)
    c.close()
    return s, b, symbol


def test_page_loads_shows_the_book_and_updates_live(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    _seller, buyer, symbol = _market(server)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(server + "/")
        page.wait_for_selector(f"#instrument-list tr[data-symbol='{symbol}']")
        page.wait_for_function("document.querySelector('#status').textContent === 'live'")
        # the resting sell shows in the book
        page.wait_for_selector("#asks td.sell:text('20.5')")
        # a buy placed through the API arrives over the WebSocket, without a reload
        r = httpx.post(
            server + "/v1/orders",
            json={"instrument": symbol, "side": "buy", "price": "19.80", "quantity": "1.5"},
            headers=buyer,
        )
        assert r.status_code == 201, r.text
        page.wait_for_selector("#bids td.buy:text('19.8')", timeout=10_000)
        assert "1.5" in page.inner_text("#bids")
        # and a trade appears in the trades panel
        r = httpx.post(
            server + "/v1/orders",
            json={"instrument": symbol, "side": "buy", "price": "20.50", "quantity": "0.5"},
            headers=buyer,
        )
        assert r.status_code == 201, r.text
        page.wait_for_selector("#trades td.buy:text('20.5')", timeout=10_000)
        page.screenshot(path=str(tmp_path / "web.png"))
        browser.close()
    assert (tmp_path / "web.png").stat().st_size > 10_000
