"""Kill the writer with SIGKILL at a random commit boundary, restart, and recover exactly.

A child process (``crash_writer``) applies a long seeded stream one commit at a time and
prints ``ACK <seq> <op_index>`` after each acknowledged operation. The test kills it
after a random number of acknowledgements, at a random moment within the next commit,
then restarts a service on the same database and checks that:

* every acknowledged operation is in the log, at the sequence number it was acknowledged
  with, and at most one committed operation was not yet acknowledged;
* the log is gapless and holds the stream's operations in order;
* the restarted state hash equals a clean in-memory replay of the logged operations, and
  every invariant holds, and the projections agree with the core (a kill between an
  operation's log commit and its projection's commit is repaired on restart);
* the restarted service carries on writing.

The seed is random per run and shown on failure; set ``SUANLI_CRASH_SEED`` to replay one.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from api.db.store import Store, WriterLocked
from api.service import ExchangeService
from exchange.core import ExchangeCore, Rejected, replay
from exchange.genesis import genesis_operations

from .market import (
    START_US,
    assert_projections_agree,
    core_options,
    crash_operations,
    start_service,
)

ROOT = Path(__file__).resolve().parents[2]
COUNT = 4_000  # far more than the writer gets through before the kill
ACKS_MIN, ACKS_MAX = 200, 600
WATCHDOG_S = 60.0
LOCK_RELEASE_WAIT_S = 10.0


def _seed() -> int:
    explicit = os.environ.get("SUANLI_CRASH_SEED")
    return int(explicit) if explicit else random.SystemRandom().randrange(2**32)


def _run_and_kill(url: str, seed: int, kill_after: int, pause_s: float, err: Path) -> list[str]:
    """Start the writer, SIGKILL it after ``kill_after`` acks (+ ``pause_s``); its output."""
    with err.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.persistence.crash_writer", url, str(seed), str(COUNT)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    watchdog = threading.Timer(WATCHDOG_S, proc.kill)
    watchdog.start()
    lines: list[str] = []
    acks = 0
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("ACK "):
                acks += 1
                if acks >= kill_after:
                    time.sleep(pause_s)  # land somewhere inside the next commit
                    proc.send_signal(signal.SIGKILL)
                    break
        # Whatever it printed before the signal landed was acknowledged too.
        lines.extend(proc.stdout.readlines())
    finally:
        watchdog.cancel()
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, (
        f"the writer was not killed mid-stream (exit {proc.returncode}, {acks} acks): "
        + err.read_text()[-2000:]
    )
    return lines


def _restart(open_store: Callable[..., Store]) -> ExchangeService:
    """A service on the database; PostgreSQL may take a moment to drop the dead writer's lock."""
    deadline = time.monotonic() + LOCK_RELEASE_WAIT_S
    while True:
        store = open_store()
        try:
            return start_service(store)
        except WriterLocked:
            store.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_sigkill_mid_stream_then_recover_exactly(
    open_store: Callable[..., Store], db_url: str, tmp_path: Path
) -> None:
    seed = _seed()
    rng = random.Random(seed)
    kill_after = rng.randint(ACKS_MIN, ACKS_MAX)
    pause_s = rng.random() * 0.004
    context = f"seed {seed} (SUANLI_CRASH_SEED={seed} replays it), kill after {kill_after} acks"
    ops = crash_operations(seed, COUNT)

    lines = _run_and_kill(db_url, seed, kill_after, pause_s, tmp_path / "writer.err")

    complete = [line.split() for line in lines if line.endswith("\n")]  # a torn line: unseen
    acks = [(int(words[1]), int(words[2])) for words in complete if words[0] == "ACK"]
    assert len(acks) >= kill_after, context
    assert [seq for seq, _ in acks] == sorted({seq for seq, _ in acks}), context

    service = _restart(open_store)
    store, core = service.store, service.core
    logged = list(store.operations())
    seqs = [seq for seq, _ in logged]
    last_ack = acks[-1][0]
    assert seqs == list(range(1, len(logged) + 1)), f"gaps in the log; {context}"
    assert service.seq == len(logged)
    assert len(logged) >= last_ack, f"acknowledged operations lost; {context}"
    assert len(logged) - last_ack <= 1, f"more than one unacknowledged commit; {context}"
    assert [op for _, op in logged[:2]] == genesis_operations(START_US)
    for seq, index in acks:
        assert logged[seq - 1][1] == ops[index], f"ack {seq} logged another operation; {context}"
    # The log is the stream's accepted operations, in stream order.
    position = 0
    for seq, op in logged[2:]:
        while position < len(ops) and ops[position] != op:
            position += 1
        assert position < len(ops), f"logged operation {seq} is not from the stream; {context}"
        position += 1

    # The restart equals a clean in-memory replay of the log, which accepts every operation.
    clean = ExchangeCore(**core_options())
    for _, op in logged:
        clean.apply(op)
        clean.take_changes()
    assert core.state_hash() == clean.state_hash(), context
    assert core.state_hash() == replay((op for _, op in logged), **core_options()).state_hash()
    core.check()
    assert core.contracts and any(o.is_open for o in core.orders.values()), context
    assert_projections_agree(service)

    # And it carries on from where the log ends, in the same stream.
    seq_before = service.seq
    for op in ops[position:]:
        with contextlib.suppress(Rejected):
            service.run(op)
            break
    assert service.seq == seq_before + 1
    assert_projections_agree(service)
