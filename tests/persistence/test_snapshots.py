"""Snapshots and bounded recovery, on SQLite and PostgreSQL.

A start-up from a snapshot plus the log after it builds the state a replay of the whole
log builds (the same state hash); a damaged newest snapshot is skipped with a warning and
the one before is used; a snapshot of another log is skipped; without any, the whole log
is replayed; a SIGKILL of the writer and of its snapshot child while it writes leaves a
database that starts correctly; ``suanli db verify`` reports each snapshot.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api import snapshot
from api.cli import app
from api.db.store import Store
from api.service import ExchangeService
from api.settings import Settings
from api.snapshot import SnapshotPolicy
from api.startup import build_context
from exchange.core import Rejected

from .market import assert_projections_agree, core_options, crash_operations, start_service

ROOT = Path(__file__).resolve().parents[2]


def _policy(tmp_path: Path, every: int = 300, keep: int = 3) -> SnapshotPolicy:
    return SnapshotPolicy(tmp_path / "snapshots", every_operations=every, keep=keep)


def _run(service: ExchangeService, seed: int, count: int) -> None:
    for op in crash_operations(seed, count):
        with contextlib.suppress(Rejected):
            service.run(op)
    service.reap_snapshot(block=True)


def _full_replay_hash(url: str) -> str:
    """The state hash of a start-up that replays the whole log (no snapshots)."""
    service = start_service(Store(url), check_invariants=False)
    try:
        assert service.recovered_from == 0
        return service.core.state_hash()
    finally:
        service.store.close()


def _written(url: str, tmp_path: Path, *, every: int = 300, count: int = 1_500) -> str:
    """A database with a log of ``count`` stream operations and snapshots every ``every``;
    returns the state hash at its end."""
    service = start_service(Store(url), check_invariants=False, snapshots=_policy(tmp_path, every))
    try:
        _run(service, 11, count)
        return service.core.state_hash()
    finally:
        service.store.close()


def test_start_from_snapshot_equals_full_replay(db_url: str, tmp_path: Path) -> None:
    expected = _written(db_url, tmp_path)
    taken = snapshot.list_snapshots(_policy(tmp_path).directory)
    assert [seq for seq, _ in taken] == [1200, 900, 600]  # the newest three are kept
    service = start_service(Store(db_url), snapshots=_policy(tmp_path))
    try:
        assert service.recovered_from == 1200 and service.seq > 1200
        assert service.core.state_hash() == expected
        assert_projections_agree(service)
        # The settings a snapshot does not carry are the service's again.
        assert service.core.admitting
        assert service.core.limits == core_options()["limits"]
        _run(service, 12, 50)  # it carries on, its bounds and rules back in force
        after = service.core.state_hash()
    finally:
        service.store.close()
    assert _full_replay_hash(db_url) == after


def test_damaged_newest_is_skipped_with_a_warning(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    expected = _written(db_url, tmp_path)
    directory = _policy(tmp_path).directory
    (_, newest), (older_seq, _), _ = snapshot.list_snapshots(directory)
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one bit pattern of the payload changed
    newest.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="suanli.snapshot"):
        service = start_service(Store(db_url), snapshots=_policy(tmp_path))
    try:
        assert service.recovered_from == older_seq == 900
        assert service.core.state_hash() == expected
    finally:
        service.store.close()
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [f"snapshot {newest.name} skipped: its payload's checksum does not match"]


def test_no_snapshot_replays_the_whole_log(db_url: str, tmp_path: Path) -> None:
    expected = _written(db_url, tmp_path)
    for _, path in snapshot.list_snapshots(_policy(tmp_path).directory):
        path.unlink()
    service = start_service(Store(db_url), snapshots=_policy(tmp_path))
    try:
        assert service.recovered_from == 0
        assert service.core.state_hash() == expected
    finally:
        service.store.close()


def test_snapshot_of_another_log_or_past_its_end_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    expected = _written(url, tmp_path, count=700)  # snapshots at 300 and 600
    other = tmp_path / "other"
    other_url = f"sqlite:///{tmp_path / 'b.db'}"
    service = start_service(Store(other_url), check_invariants=False, snapshots=_policy(other))
    try:
        for op in crash_operations(99, 1_000):  # another stream: another log
            with contextlib.suppress(Rejected):
                service.run(op)
        service.reap_snapshot(block=True)
    finally:
        service.store.close()
    directory = _policy(tmp_path).directory
    for _, path in snapshot.list_snapshots(directory):
        path.unlink()
    foreign = snapshot.list_snapshots(_policy(other).directory)
    for _, path in foreign:
        (directory / path.name).write_bytes(path.read_bytes())
    with caplog.at_level(logging.WARNING, logger="suanli.snapshot"):
        service = start_service(Store(url), snapshots=_policy(tmp_path))
    try:
        assert service.recovered_from == 0
        assert service.core.state_hash() == expected
    finally:
        service.store.close()
    warned = " | ".join(r.getMessage() for r in caplog.records)
    last = Store(url, migrate=False)
    try:
        end = last.last_seq()
    finally:
        last.close()
    for seq, path in foreign:
        if seq > end:
            assert f"{path.name} skipped: it is at operation {seq} but the log ends" in warned
        else:
            assert f"{path.name} skipped: the log's row {seq} is not the one" in warned


def test_a_snapshot_past_the_projections_is_not_used(tmp_path: Path) -> None:
    """Operations between the projection watermark and a snapshot must be replayed to be
    projected again: start-up begins from an older snapshot instead."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    expected = _written(url, tmp_path, count=700)
    store = Store(url)
    try:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE projection_state SET seq = 450 WHERE name = 'tables'")
    finally:
        store.close()
    service = start_service(Store(url), snapshots=_policy(tmp_path))
    try:
        assert service.recovered_from == 300
        assert service.core.state_hash() == expected
    finally:
        service.store.close()


def _kill_during_snapshot(url: str, directory: Path, seed: int, err: Path) -> int:
    """Run the snapshot writer, SIGKILL its child and itself a random moment after its
    third snapshot began; how many snapshots it announced."""
    with err.open("w") as stderr:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.persistence.snapshot_writer",
                url,
                str(directory),
                str(seed),
                "5000",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    rng = random.Random(seed)
    announced = 0
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if line.startswith("SNAP "):
                announced += 1
                if announced == 3:
                    time.sleep(rng.uniform(0, 0.03))
                    child = int(line.split()[1])
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child, signal.SIGKILL)
                    proc.send_signal(signal.SIGKILL)
                    break
    finally:
        proc.wait()
        proc.stdout.close()
        watchdog.cancel()
    return announced


def test_sigkill_while_a_snapshot_is_written(db_url: str, tmp_path: Path) -> None:
    directory = tmp_path / "snapshots"
    seed = random.SystemRandom().randrange(2**32)
    announced = _kill_during_snapshot(db_url, directory, seed, tmp_path / "stderr")
    assert announced == 3, (tmp_path / "stderr").read_text()[-2000:]
    expected = _full_replay_hash(db_url)
    service = start_service(Store(db_url), snapshots=SnapshotPolicy(directory))
    try:
        assert service.recovered_from in (100, 200, 300), seed  # at most the killed one
        assert service.core.state_hash() == expected, seed
        assert not list(snapshot.temporary_files(directory)), seed
        assert_projections_agree(service)
    finally:
        service.store.close()


def test_verify_reports_every_snapshot(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    _written(url, tmp_path, count=1_300)  # snapshots at 300, 600, 900
    directory = _policy(tmp_path).directory
    (_, newest), (_, middle), (oldest_seq, oldest) = snapshot.list_snapshots(directory)
    newest.write_bytes(newest.read_bytes()[:-10])  # truncated
    header, core = snapshot.read(oldest)
    chain = bytes.fromhex(header.chain)
    # Well-formed, but its header claims another state than the log builds there.
    oldest.write_bytes(snapshot.encode(core, oldest_seq, chain, state_hash="0" * 64))
    runner = CliRunner()
    done = runner.invoke(
        app, ["db", "verify", "--database-url", url, "--snapshot-dir", str(directory)]
    )
    lines = done.stdout.splitlines()
    assert done.exit_code == 1, done.output
    assert lines[0].startswith(f"snapshot {oldest.name} (operation 300): differs: its header's")
    assert lines[1].startswith(f"snapshot {middle.name} (operation 600): matches: ")
    assert lines[2].startswith(
        f"snapshot {newest.name} (operation 900): unreadable: its payload is"
    )
    assert lines[3].startswith("ok: ") and "1 of 3 snapshots match" in lines[3]


def test_db_snapshot_takes_one_at_the_end_of_the_log(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    expected = _written(url, tmp_path, count=700)
    directory = _policy(tmp_path).directory
    runner = CliRunner()
    done = runner.invoke(
        app, ["db", "snapshot", "--database-url", url, "--snapshot-dir", str(directory)]
    )
    assert done.exit_code == 0, done.output
    (seq, path), *_ = snapshot.list_snapshots(directory)
    assert done.stdout.startswith(f"snapshot at operation {seq}: {path} (")
    assert "operations replayed" in done.stdout
    header, core = snapshot.read(path)
    assert header.state_hash == core.state_hash() == expected
    service = start_service(Store(url), snapshots=_policy(tmp_path))
    try:
        assert service.recovered_from == seq
        assert service.core.state_hash() == expected
    finally:
        service.store.close()


def test_a_snapshot_that_fails_never_stops_the_writer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A directory that cannot be made, and a child that cannot write its file: both are
    logged at WARNING, and trading goes on."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    (tmp_path / "a file").write_text("")
    unusable = SnapshotPolicy(tmp_path / "a file" / "snapshots", every_operations=100)
    with caplog.at_level(logging.WARNING, logger="suanli.service"):
        service = start_service(Store(url), check_invariants=False, snapshots=unusable)
        try:
            _run(service, 11, 300)
            assert service.seq > 200 and service.snapshot_seq == 0
            # A directory where the child's file would go: its rename fails.
            directory = tmp_path / "snapshots"
            (directory / snapshot.file_name(service.seq + 1)).mkdir(parents=True)
            service.snapshots = SnapshotPolicy(directory, every_operations=1)
            service._snapshot_retry_at = 0.0
            _run(service, 12, 1)
            assert service.reap_snapshot(block=True) in (False, None)
            assert service.snapshot_seq == 0 and service.stopped is None
            _run(service, 13, 20)
        finally:
            service.store.close()
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("could not start" in m and "NotADirectoryError" in m for m in warned), warned
    assert any("failed (exit status 1" in m for m in warned), warned


def test_settings_give_the_server_its_snapshots(db_url: str, tmp_path: Path) -> None:
    """As `suanli serve` starts: beside a SQLite file by default; on PostgreSQL only in a
    configured directory."""
    configured = None if db_url.startswith("sqlite") else str(tmp_path / "pg-snapshots")
    settings = Settings(
        database_url=db_url,
        clock="simulated",
        snapshot_dir=configured,
        snapshot_every_operations=5,
        snapshot_keep=2,
    )
    ctx = build_context(settings)
    service = ctx.service
    try:
        policy = service.snapshots
        assert policy is not None and policy.every_operations == 5 and policy.keep == 2
        if configured is None:
            assert policy.directory == tmp_path / "suanli.db.snapshots"
        else:
            assert policy.directory == Path(configured)
        for op in crash_operations(5, 40):
            with contextlib.suppress(Rejected):
                service.run(op)
                service.reap_snapshot(block=True)
        expected = service.core.state_hash()
        taken = snapshot.list_snapshots(policy.directory)
        assert len(taken) == 2 and taken[0][0] == service.snapshot_seq > 0
    finally:
        service.store.close()
    again = build_context(settings).service
    try:
        assert again.recovered_from == taken[0][0]
        assert again.core.state_hash() == expected
    finally:
        again.store.close()
    if configured is not None:
        unset = build_context(Settings(database_url=db_url, clock="simulated")).service
        try:
            assert unset.snapshots is None and unset.recovered_from == 0
            assert unset.core.state_hash() == expected
        finally:
            unset.store.close()
