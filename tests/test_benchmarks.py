"""The benchmarks still run: each is started on a tiny workload and must finish and print
its figures. Nothing here looks at a timing (benchmarks print figures; tests never assert
them); a benchmark that no longer runs against the code it measures fails here instead of
on the day someone needs its numbers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_bench_writer_runs() -> None:
    out = _run("benchmarks/bench_writer.py", "--orders", "300", "--cpu")
    stages = [line.split()[0] for line in out.splitlines()[2:]]
    assert stages == ["apply", "render", "log", "log", "projection", "projection"], out


def test_bench_recovery_runs() -> None:
    out = _run("benchmarks/bench_recovery.py", "--operations", "3000", "--seconds", "0.5")
    labels = [line.split("  ")[0] for line in out.splitlines()[1:]]
    assert labels == [
        "full replay",
        "resident memory after",
        "snapshot",
        "writer's pause (fork)",
        "order latency, none",
        "order latency, snapshot",
        "p99 during / without",
        "recovery from snapshot",
    ], out
    assert "state hash equals the full replay's" in out, out


def test_bench_residue_runs() -> None:
    out = json.loads(_run("benchmarks/bench_residue.py", "--windows", "12", "--trades", "3"))
    assert out["settled_windows"] > 0 and out["residue_bytes_per_settled_window"] > 0, out
    assert out["orders_in_core"] < 12 * out["orders_per_window"], out  # settled ones left


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_bench_instructions_runs() -> None:
    out = _run("benchmarks/bench_instructions.py", "--small", "20", "--large", "60")
    assert int(out.splitlines()[-1].split()[-1].replace(",", "")) > 0, out
