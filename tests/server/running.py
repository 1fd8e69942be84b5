"""A real ``suanli serve`` in a subprocess, on a port the kernel picks (``--port 0``, read
back from the server's start-up line), logging to a file the test can read."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

START = "2026-11-22T00:00:00Z"
STARTUP_S = 60  # a guard against a server that never comes up, not a measured time


@dataclass(frozen=True)
class Running:
    host: str
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://{self.host}:{self.port}/v1/ws"

    def connect(self) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=STARTUP_S)


@contextmanager
def running_server(
    directory: Path, env: dict[str, str], *args: str, name: str = "server"
) -> Iterator[Running]:
    """``suanli serve`` on a new SQLite database in ``directory``, with ``env`` added to
    the environment and ``args`` to the command; stopped (SIGTERM) when the block ends,
    after which its log is complete."""
    log = directory / f"{name}.log"
    command = [sys.executable, "-m", "api.cli", "serve", "--port", "0"]
    command += ["--clock", "simulated", "--start", START]
    command += ["--database-url", f"sqlite:///{directory}/{name}.db", *args]
    with log.open("w") as out:
        proc = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        port = _port(proc, log)
        server = Running("127.0.0.1", port, log)
        httpx.get(server.base + "/v1/health", timeout=STARTUP_S).raise_for_status()
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=STARTUP_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _port(proc: subprocess.Popen[bytes], log: Path) -> int:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        found = re.search(r"running on http://127\.0\.0\.1:(\d+)", log.read_text())
        if found:
            return int(found.group(1))
        if proc.poll() is not None:
            raise RuntimeError("the server did not start:\n" + log.read_text())
        time.sleep(0.05)
    raise RuntimeError("the server did not start in time:\n" + log.read_text())
