"""A closed-loop HTTP/1.1 load generator on raw asyncio streams (lighter than httpx).

Each of ``--clients`` keep-alive connections sends a request, waits for the whole
response, records its latency, and sends the next: closed loop. Bodies come from a
template with ``{i}`` (a global counter) and ``{side}``/``{price}`` filled per request.
Prints one JSON line: requests, per-status counts, requests/s, p50/p99 latency in ms.

    python benchmarks/loadgen.py --url http://127.0.0.1:8000/v1/orders --seconds 10 \\
        --header "Authorization: Bearer KEY" --body '{"instrument": "...", ...}'
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections import Counter
from urllib.parse import urlsplit


def build(method: str, path: str, host: str, headers: list[str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    lines += headers
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        lname = name.strip().lower()
        if lname == b"content-length":
            length = int(value.strip())
        elif lname == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
        return status, body
    return status, await reader.readexactly(length) if length else b""


async def client(
    n: int,
    args: argparse.Namespace,
    stop_at: float,
    counter: list[int],
    latencies: list[float],
    statuses: Counter[int],
) -> None:
    url = urlsplit(args.url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port or 80)
    template = args.body or ""
    prices = [p.strip() for p in args.prices.split(",")] if args.prices else [""]
    clock = time.perf_counter
    # Open-loop pacing when --rate is given: each client sends every clients/rate seconds.
    interval = args.clients / args.rate if args.rate else 0.0
    next_send = clock() + (n * interval / args.clients if interval else 0.0)
    while clock() < stop_at:
        if interval:
            delay = next_send - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            next_send += interval
        i = counter[0]
        counter[0] += 1
        body = (
            template.replace("{i}", str(i))
            .replace("{side}", "buy" if i % 2 == 0 else "sell")
            .replace("{price}", prices[(i // 2) % len(prices)])
            .encode()
        )
        request = build(
            args.method,
            url.path + (f"?{url.query}" if url.query else ""),
            url.netloc,
            args.header,
            body,
        )
        t0 = clock()
        writer.write(request)
        status, _ = await read_response(reader)
        latencies.append(clock() - t0)
        statuses[status] += 1
    writer.close()


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    counter = [args.start_index]
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    if args.warmup:
        await asyncio.gather(
            *(
                client(n, args, time.perf_counter() + args.warmup, counter, [], Counter())
                for n in range(args.clients)
            )
        )
    t0 = time.perf_counter()
    stop_at = t0 + args.seconds
    await asyncio.gather(
        *(client(n, args, stop_at, counter, latencies, statuses) for n in range(args.clients))
    )
    elapsed = time.perf_counter() - t0
    latencies.sort()
    n = len(latencies)
    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    return {
        "requests": n,
        "statuses": dict(statuses),
        "requests_per_s": round(n / elapsed, 1),
        "ok_per_s": round(ok / elapsed, 1),
        "p50_ms": round(latencies[n // 2] * 1000, 3) if n else None,
        "p99_ms": round(latencies[int(n * 0.99)] * 1000, 3) if n else None,
        "mean_ms": round(statistics.fmean(latencies) * 1000, 3) if n else None,
        "next_index": counter[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--method", default="POST")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--body", default="")
    parser.add_argument("--prices", default="", help="comma-separated values for {price}")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--start-index", type=int, default=0)
    parser.add_argument("--rate", type=float, default=0.0, help="target requests/s (paced)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()
