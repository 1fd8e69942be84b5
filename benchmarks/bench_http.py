"""HTTP order entry under closed-loop load, beside the HTTP stack's ceiling and a peer.

Runs, one after another on this machine, each server in its own process and the load
from another process (benchmarks/loadgen.py, raw asyncio HTTP/1.1, 32 keep-alive
clients over loopback):

1. no-op endpoints on the same server stack (uvicorn with uvloop and httptools,
   benchmarks/noop_app.py): the ceilings of the stack here for one request per order, for
   batch entry and for WebSocket entry (one order a message, and 100), under the same loads
   as suanli below;
2. suanli single-order entry (POST /v1/orders) with durable group commits, on SQLite and,
   with --postgres-url, on PostgreSQL: accepted orders/s, p50 and p99 latency; then the
   p99 at half of that peak rate (paced load);
3. suanli batch entry (POST /v1/orders/batch, 100 orders a request) and WebSocket entry
   (pipelined "place" messages, and "place_batch" messages of 100 orders), counted as
   acknowledged (durably committed) orders/s;
4. matching-engine 0.1.1's FastAPI gateway (Python 3.12, fsync on) under the same load,
   when --peer-python names a Python with it installed.

Open-order caps and rate limits are raised for the run (SUANLI_MAX_OPEN_ORDERS,
SUANLI_MAX_OPEN_ORDERS_PER_ACCOUNT, SUANLI_RATE_LIMIT_PER_S=0, SUANLI_CHANGE_RATE_PER_S=0).
For each run it reads from /proc the cores the server used, the cores of the WebSocket
client (which runs in this process), and how busy the machine was.
Prints a table and the ratios. Not a test: it asserts nothing.

    python benchmarks/bench_http.py [--seconds 10] [--postgres-url URL] [--peer-python PY]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx

HERE = Path(__file__).resolve().parent
T = TypeVar("T")
ADMIN = "bench-admin-key-0123456789abcdef"
PRICES = "19.90,20.10,19.95,20.05,20.00,19.85,20.15"
BATCH = 100  # orders a batch request or place_batch message


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def load(
    url: str,
    seconds: float,
    body: str = "",
    headers: tuple[str, ...] = (),
    rate: float = 0.0,
    clients: int = 32,
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(HERE / "loadgen.py"),
        "--url",
        url,
        "--seconds",
        str(seconds),
        "--clients",
        str(clients),
        "--prices",
        PRICES,
    ]
    if body:
        cmd += ["--body", body]
    for h in headers:
        cmd += ["--header", h]
    if rate:
        cmd += ["--rate", str(rate)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


@contextlib.contextmanager
def server(cmd: list[str], ready_url: str, **popen: Any) -> Iterator[int]:
    """Run a server process until the block ends, once ``ready_url`` answers; yields its
    pid."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **popen)
    try:
        wait_up(ready_url, proc)
        yield proc.pid
    finally:
        stop(proc)


def _process_seconds(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_ticks() -> tuple[int, int]:
    """(all, idle) CPU ticks of the machine so far (Linux /proc/stat)."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
    return sum(ticks), ticks[3] + ticks[4]


def measured(
    pid: int, run: Callable[[], T], client_here: bool = False
) -> tuple[T, dict[str, float]]:
    """``run()``, and what it cost: the cores the server process used meanwhile, how busy
    the whole machine was (server, load generator, database) and, with ``client_here``
    (the WebSocket client runs in this process), the cores this process used. Where
    /proc is missing, no figures."""
    try:
        before, (all0, idle0) = _process_seconds(pid), _machine_ticks()
    except OSError:
        return run(), {}
    own0 = time.process_time()
    t0 = time.perf_counter()
    result = run()
    elapsed = time.perf_counter() - t0
    all1, idle1 = _machine_ticks()
    figures = {
        "server_cores": (_process_seconds(pid) - before) / elapsed,
        "machine_busy": 1 - (idle1 - idle0) / max(1, all1 - all0),
    }
    if client_here:
        figures["client_cores"] = (time.process_time() - own0) / elapsed
    return result, figures


def load_with_cpu(pid: int, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """:func:`load`, with the server's cores and the machine's load (:func:`measured`)."""
    result, cpu = measured(pid, lambda: load(*args, **kwargs))
    return {**result, **cpu}


def ws_with_cpu(pid: int, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """:func:`ws_entry` with its CPU figures (:func:`measured`)."""
    rate, cpu = measured(pid, lambda: asyncio.run(ws_entry(*args, **kwargs)), client_here=True)
    return {"orders_per_s": rate, **cpu}


def batch_body(symbol: str, n: int = BATCH) -> str:
    """A batch of ``n`` orders, buys and sells alternating around 20 CNY."""
    prices = PRICES.split(",")
    orders = [
        {
            "instrument": symbol,
            "side": "buy" if i % 2 == 0 else "sell",
            "price": prices[i % len(prices)],
            "quantity": "0.1",
        }
        for i in range(n)
    ]
    return json.dumps({"orders": orders})


def bench_noop(seconds: float) -> dict[str, Any]:
    """The stack's ceilings: one request per order, batch entry, and WebSocket entry
    (benchmarks/noop_app.py), under the loads suanli gets below."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "uvicorn", "noop_app:app", "--port", str(port)]
    cmd += ["--log-level", "warning", "--no-access-log"]
    with server(cmd, f"{base}/docs", cwd=HERE) as pid:
        body = '{"instrument":"X","side":"{side}","price":"{price}","quantity":"0.1"}'
        single = load_with_cpu(pid, f"{base}/noop", seconds, body)
        batch = load_with_cpu(pid, f"{base}/noop/batch", seconds, batch_body("X"), clients=8)
        batch["orders_per_s"] = batch["requests_per_s"] * BATCH
        ws = ws_with_cpu(pid, base, "", "X", seconds, path="/noop/ws")
        ws_batch = ws_with_cpu(pid, base, "", "X", seconds, 800, BATCH, path="/noop/ws")
    return {**single, "batch": batch, "ws": ws, "ws_batch": ws_batch}


def setup_market(base: str) -> tuple[str, str]:
    """An account with deep funds and a very large pool, a tier, one open instrument."""
    c = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60)

    def post(path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        r = c.post(path, json=body, headers=headers)
        r.raise_for_status()
        return r.json()

    mm = post("/v1/admin/accounts", {"name": "market maker"})
    key = {"Authorization": f"Bearer {mm['api_key']}"}
    post(f"/v1/admin/accounts/{mm['id']}/deposits", {"amount": "100000000000"})
    post(
        "/v1/admin/gpu-classes",
        {"code": "H", "name": "Hopper", "precision": "fp16", "min_dense_tflops": "700"},
    )
    post(
        "/v1/admin/tiers",
        {
            "code": "FP16-H",
            "precision": "fp16",
            "gpu_class": "H",
            "tick_size": "0.01",
            "lot_size": "0.1",
            "min_quantity": "0.1",
            "max_quantity": "1000",
            "price_band_pct": "50",
            "maker_fee_bps": 5,
            "taker_fee_bps": 10,
            "shortfall_penalty_pct": "20",
            "reference_price": "20",
            "list_ahead_hours": 6,
        },
    )
    site = post(
        "/v1/sites", {"name": "sh", "region": "east", "pue": "1.25", "green_share": "0"}, key
    )
    post(
        f"/v1/sites/{site['id']}/pools",
        {"hardware_id": "nvidia-h100-sxm5-80gb", "count": 1_000_000},
        key,
    )
    symbol = c.get("/v1/instruments").json()["data"][0]["symbol"]
    c.close()
    return mm["api_key"], symbol


def operations(base: str) -> int:
    return int(httpx.get(base + "/v1/health", timeout=10).json()["operations"])


class LagWatch:
    """Polls /v1/health during a load: the largest number of acknowledged operations the
    projection tables did not include yet (they are written behind the log)."""

    def __init__(self, base: str, every: float = 0.05) -> None:
        self.base = base
        self.every = every
        self.largest = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as client:
            while not self._stop.wait(self.every):
                health = client.get("/v1/health").json()
                lag = int(health["operations"]) - int(health["projected_operations"])
                self.largest = max(self.largest, lag)

    def __enter__(self) -> LagWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def ws_entry(
    base: str,
    key: str,
    symbol: str,
    seconds: float,
    in_flight: int = 256,
    batch: int = 1,
    path: str = "/v1/ws",
) -> float:
    """Pipelined order entry over one WebSocket: "place" messages (``batch`` 1) or
    "place_batch" messages of ``batch`` orders; returns acknowledged orders/s."""
    import websockets

    url = base.replace("http://", "ws://") + f"{path}?key={key}"
    prices = PRICES.split(",")
    done = 0  # orders acknowledged
    sent = 0  # orders sent

    def order(n: int) -> dict[str, str]:
        return {
            "instrument": symbol,
            "side": "buy" if n % 2 == 0 else "sell",
            "price": prices[(n // 2) % len(prices)],
            "quantity": "0.1",
        }

    async with websockets.connect(url, max_size=None) as ws:
        stop_at = time.perf_counter() + seconds
        t0 = time.perf_counter()

        async def sender() -> None:
            nonlocal sent
            while time.perf_counter() < stop_at:
                while sent - done >= in_flight:
                    await asyncio.sleep(0.0005)
                if batch == 1:
                    message = {"op": "place", "id": sent, "order": order(sent)}
                else:
                    orders = [order(sent + i) for i in range(batch)]
                    message = {"op": "place_batch", "id": sent, "orders": orders}
                await ws.send(json.dumps(message))
                sent += batch

        async def receiver() -> None:
            nonlocal done
            while True:
                message = json.loads(await ws.recv())
                if message.get("type") == "result":
                    result = message.get("result")
                    done += len(result["results"]) if batch > 1 and result else 1
                    if time.perf_counter() >= stop_at and done >= sent:
                        return

        task = asyncio.create_task(receiver())
        await sender()
        await asyncio.wait_for(task, timeout=60)
        return done / (time.perf_counter() - t0)


def fresh_postgres(url: str) -> tuple[str, Any]:
    """A new empty database on the server of ``url``; returns its URL and a dropper."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"suanli_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(url).set(database=name).render_as_string(hide_password=False), drop


def bench_suanli(seconds: float, database_url: str | None, label: str) -> dict[str, Any]:
    if database_url:
        url, drop = fresh_postgres(database_url)
        try:
            return _bench_suanli(seconds, url, label)
        finally:
            drop()
    return _bench_suanli(seconds, None, label)


def _bench_suanli(seconds: float, database_url: str | None, label: str) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite:///{tmp}/bench.db"
        env = {
            **os.environ,
            "SUANLI_ADMIN_KEY": ADMIN,
            "SUANLI_RATE_LIMIT_PER_S": "0",
            "SUANLI_CHANGE_RATE_PER_S": "0",
            "SUANLI_MAX_OPEN_ORDERS": "100000000",
            "SUANLI_MAX_OPEN_ORDERS_PER_ACCOUNT": "100000000",
        }
        cmd = [sys.executable, "-m", "api.cli", "serve", "--port", str(port)]
        cmd += ["--clock", "simulated", "--start", "2026-11-22T00:00:00Z"]
        cmd += ["--database-url", url, "--log-level", "warning"]
        with server(cmd, base + "/v1/health", env=env) as pid:
            key, symbol = setup_market(base)
            auth = (f"Authorization: Bearer {key}",)
            order = json.dumps(
                {"instrument": symbol, "side": "{side}", "price": "{price}", "quantity": "0.1"}
            )
            peak = load_with_cpu(pid, base + "/v1/orders", seconds, order, auth)
            half = load(base + "/v1/orders", seconds, order, auth, rate=peak["ok_per_s"] / 2)
            batch = batch_body(symbol)
            before = operations(base)
            t0 = time.perf_counter()
            with LagWatch(base) as watch:
                batch_run = load_with_cpu(
                    pid, base + "/v1/orders/batch", seconds, batch, auth, clients=8
                )
            batch_run["orders_per_s"] = (operations(base) - before) / (time.perf_counter() - t0)
            batch_lag = watch.largest
            ws = ws_with_cpu(pid, base, key, symbol, seconds)
            ws_batch = ws_with_cpu(pid, base, key, symbol, seconds, in_flight=800, batch=BATCH)
            return {
                "label": label,
                "peak": peak,
                "half": half,
                "batch": batch_run,
                "batch_projection_lag": batch_lag,
                "ws": ws,
                "ws_batch": ws_batch,
            }


def bench_peer(seconds: float, python: str) -> dict[str, Any] | None:
    if not python or (not shutil.which(python) and not Path(python).exists()):
        return None
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "ME_DATA_DIR": tmp, "ME_FSYNC": "1", "ME_MARKETS": "FP16-H:0.01:0.1"}
        cmd = [python, "-m", "matching_engine", "serve", "--port", str(port)]
        with server(cmd, f"http://127.0.0.1:{port}/healthz", env=env) as pid:
            body = '{"account": {i}, "side": "{side}", "price": "{price}", "quantity": "0.1"}'
            return load_with_cpu(
                pid, f"http://127.0.0.1:{port}/markets/FP16-H/orders", seconds, body
            )


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def _latency(results: list[dict[str, Any]]) -> str:
    """Median p50 and p99 of load runs."""
    p50 = _median([r["p50_ms"] for r in results])
    p99 = _median([r["p99_ms"] for r in results])
    return f"  p50 {p50:.2f} ms  p99 {p99:.2f} ms"


def _cpu(results: list[dict[str, Any]]) -> str:
    """Median server cores (and WebSocket client cores) and machine load of runs, where
    they were measured."""
    cores = [r["server_cores"] for r in results if "server_cores" in r]
    if not cores:
        return ""
    busy = _median([r["machine_busy"] for r in results if "machine_busy" in r])
    clients = [r["client_cores"] for r in results if "client_cores" in r]
    client = f", client {_median(clients):.2f}" if clients else ""
    return f"  (server {_median(cores):.2f} cores{client}, machine {busy:.0%} busy)"


def _rate(label: str, results: list[dict[str, Any]], key: str, unit: str = "orders/s") -> float:
    """Print the median rate of ``results[key]`` with its CPU figures; return it."""
    rate = _median([r[key] for r in results])
    print(f"{label:32s}{rate:>9,.0f} {unit}{_cpu(results)}")
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians")
    parser.add_argument("--postgres-url", default=os.environ.get("SUANLI_BENCH_POSTGRES_URL"))
    parser.add_argument(
        "--peer-python",
        default=os.environ.get("SUANLI_PEER_PYTHON", ""),
        help="a Python 3.12+ with matching-engine[gateway]==0.1.1 installed",
    )
    args = parser.parse_args()
    databases: list[tuple[str | None, str]] = [(None, "SQLite")]
    if args.postgres_url:
        databases.append((args.postgres_url, "PostgreSQL"))
    # Interleave the servers round by round, so that drift of the machine hits them all.
    noops: list[dict[str, Any]] = []
    peers: list[dict[str, Any]] = []
    runs: dict[str, list[dict[str, Any]]] = {label: [] for _, label in databases}
    for n in range(args.rounds):
        noops.append(bench_noop(args.seconds))
        peer = bench_peer(args.seconds, args.peer_python)
        if peer:
            peers.append(peer)
        for url, label in databases:
            runs[label].append(bench_suanli(args.seconds, url, label))
        line = f"round {n + 1}: no-op {noops[-1]['requests_per_s']:,.0f} req/s"
        if peer:
            line += f", matching-engine {peer['ok_per_s']:,.0f}"
        for label, rs in runs.items():
            line += f", suanli {label} {rs[-1]['peak']['ok_per_s']:,.0f}"
        print(line, flush=True)
    print(f"\nmedians of {args.rounds} interleaved rounds of {args.seconds:g} s")
    noop = _rate("no-op FastAPI endpoint", noops, "requests_per_s", "req/s")
    print(_latency(noops))
    ceilings = {
        kind: _rate(f"no-op {name}", [r[kind] for r in noops], "orders_per_s")
        for kind, name in (
            ("batch", "batch endpoint"),
            ("ws", "WebSocket, one a message"),
            ("ws_batch", "WebSocket, 100 a message"),
        )
    }
    base = _rate("matching-engine 0.1.1 gateway", peers, "ok_per_s") if peers else None
    if base:
        print(_latency(peers))
    for label, rs in runs.items():
        peaks, halves = [r["peak"] for r in rs], [r["half"] for r in rs]
        single = _rate(f"suanli {label} single", peaks, "ok_per_s")
        print(_latency(peaks))
        _rate(f"suanli {label} at half", halves, "ok_per_s")
        print(_latency(halves))
        rates = {
            kind: _rate(f"suanli {label} {kind}", [r[kind] for r in rs], "orders_per_s")
            for kind in ("batch", "ws", "ws_batch")
        }
        lag = _median([r["batch_projection_lag"] for r in rs])
        print(f"  projections at most {lag:,.0f} operations behind the log during batch entry")
        print(
            f"  × the no-op: single {single / noop:.2f}; "
            + "; ".join(f"{kind} {rates[kind] / ceilings[kind]:.2f}" for kind in rates)
        )
        if base:
            print(
                f"  × matching-engine: single {single / base:.2f}; "
                + "; ".join(f"{kind} {rates[kind] / base:.1f}" for kind in rates)
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
