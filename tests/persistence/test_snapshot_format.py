"""The snapshot format: deterministic bytes whatever the hash seed, a round trip that
keeps the state hash, and an unpickler that builds nothing outside the allowlist."""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from api import snapshot
from exchange.core import ExchangeCore, Rejected
from exchange.operations import CreateGpuClass, IssueApiKey

from .market import crash_operations, genesis_core

ROOT = Path(__file__).resolve().parents[2]


def _core() -> ExchangeCore:
    """A core with trading, API keys (a set of strings) and a GPU class naming vendors and
    models (frozensets of strings): the sets whose order follows the hash seed."""
    core = genesis_core()
    for op in crash_operations(3, 600):
        with contextlib.suppress(Rejected):
            core.apply(op)
        core.take_changes()
    for n in range(20):
        core.apply(IssueApiKey(1, f"k{n:07d}", f"sha256${n:064x}", "generated"))
    core.apply(
        CreateGpuClass(
            "V", "by vendor", "fp16", "100", vendors=("nvidia", "amd", "huawei", "biren")
        )
    )
    core.take_changes()
    return core


_PRINT = (
    "import hashlib; from tests.persistence.test_snapshot_format import _core; "
    "from api import snapshot; print(hashlib.sha256(snapshot.dumps(_core())).hexdigest())"
)


def test_bytes_do_not_depend_on_the_hash_seed() -> None:
    digests = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [sys.executable, "-c", _PRINT], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]
        digests.add(done.stdout.strip())
    assert len(digests) == 1
    assert digests == {hashlib.sha256(snapshot.dumps(_core())).hexdigest()}


def test_round_trip_keeps_the_state_and_sets_what_is_not_state() -> None:
    core = _core()
    loaded = snapshot.loads(snapshot.dumps(core))
    assert loaded.state_hash() == core.state_hash()
    assert loaded.component_hashes() == core.component_hashes()
    assert not loaded.admitting and loaded.take_changes().events == []
    assert loaded._pool_caps == {}
    loaded.check()


def test_a_loaded_core_goes_on_as_the_original() -> None:
    """Every reference inside the loaded core points at its own state (the engine, the
    ledger, the dicts behind reads bound once): the same operations after the snapshot
    leave both cores in the same state, and the original's objects are untouched by the
    loaded one."""
    core = _core()
    loaded = snapshot.loads(snapshot.dumps(core))
    loaded.admitting = True
    parts = loaded.parts
    assert parts.listing._engine is parts.trading.engine
    assert parts.trading._ledger is parts.accounts.ledger
    assert parts.clearing._capacity is parts.sites.capacity
    before = core.state_hash()
    rest = crash_operations(4, 400)
    for op in rest:
        with contextlib.suppress(Rejected):
            loaded.apply(op)
        loaded.take_changes()
    assert loaded.state_hash() != before  # the operations did change something
    assert core.state_hash() == before  # nothing of the original moved
    for op in rest:
        with contextlib.suppress(Rejected):
            core.apply(op)
        core.take_changes()
    assert loaded.state_hash() == core.state_hash()
    loaded.check()


def test_file_round_trip_and_checks(tmp_path: Path) -> None:
    core = _core()
    path = snapshot.write(tmp_path, core, 42, b"\x01" * 32)
    assert path.name == "snapshot-000000000042.snap"
    header, loaded = snapshot.read(path)
    assert (header.seq, header.chain, header.state_hash) == (42, "01" * 32, core.state_hash())
    assert header.fingerprint == snapshot.code_fingerprint()
    assert loaded.state_hash() == core.state_hash()
    data = path.read_bytes()
    for damaged, why in (
        (data[:-1], "its payload is"),
        (data[:30], "its header's checksum does not match"),
        (b"not a snapshot" + data, "not a suanli snapshot"),
        (data[:-5] + bytes(5), "its payload's checksum does not match"),
    ):
        path.write_bytes(damaged)
        with pytest.raises(snapshot.SnapshotUnreadable, match=why):
            snapshot.read(path)


def test_another_codes_snapshot_is_refused(tmp_path: Path) -> None:
    core = _core()
    data = snapshot.encode(core, 7, bytes(32))
    path = tmp_path / snapshot.file_name(7)
    # A header written by another version is well-formed: write one as it would.
    header, payload = snapshot._split(data)
    other = snapshot.Header(**{**header.__dict__, "fingerprint": "f" * 64}).encode()
    path.write_bytes(
        snapshot.MAGIC
        + len(other).to_bytes(4, "big")
        + other
        + hashlib.sha256(other).digest()
        + payload
    )
    with pytest.raises(snapshot.SnapshotUnreadable, match="another version of suanli"):
        snapshot.read(path)


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("true",))


def _global_call(module: str, name: str) -> bytes:
    """A pickle that looks ``module.name`` up and calls it with 50."""

    def text(value: str) -> bytes:
        return b"\x8c" + bytes([len(value)]) + value.encode()

    return b"\x80\x04" + text(module) + text(name) + b"\x93K\x32\x85R."


def test_the_unpickler_builds_only_what_is_allowed() -> None:
    for value in (_Evil(), pickle.loads, subprocess.Popen):
        payload = pickle.dumps(value, protocol=5)
        with pytest.raises(pickle.UnpicklingError, match="a snapshot may not build"):
            snapshot.loads(payload)
    # Names inside the allowed packages that are not their classes: a module they
    # import, an attribute of it reached by a dotted name, a function of theirs.
    for module, name in (
        ("exchange.genesis", "logging"),
        ("exchange.genesis", "logging.disable"),
        ("exchange.core", "replay"),
        ("exchange.genesis", "ExchangeCore.apply"),
    ):
        call = _global_call(module, name)
        with pytest.raises(pickle.UnpicklingError, match="a snapshot may not build"):
            snapshot.loads(call)
    for wrong in ({"a": 1}, {"a": {"b": 1}}, [1]):
        with pytest.raises(pickle.UnpicklingError, match=r"state of an exchange core|parts"):
            snapshot.loads(pickle.dumps(wrong, protocol=5))
