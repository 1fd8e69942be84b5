"""The code stays lint-clean and type-clean: the same checks a reviewer would run."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_ruff_finds_nothing() -> None:
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_finds_nothing() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------- the shell's reads
#: What the shell may use of an ExchangeCore: the facade; every read is through ``query``.
CORE_FACADE = frozenset(
    {
        "admitting",
        "apply",
        "check",
        "check_totals",
        "component_hash",
        "component_hashes",
        "limits",
        "query",
        "restore",
        "state",
        "state_hash",
        "take_changes",
    }
)


def reads_past_the_facade(source: str) -> list[str]:
    """Every ``<...>core.<name>`` whose name is not the facade's, and every ``.parts`` (the
    components), in ``source``: how the shell would reach into the core's state."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute):
            continue
        value = node.value
        owner = value.id if isinstance(value, ast.Name) else getattr(value, "attr", None)
        if owner == "core" and node.attr not in CORE_FACADE:
            found.append((node.lineno, f"core.{node.attr}"))
        elif node.attr == "parts":
            found.append((node.lineno, ".parts"))
    return [f"line {line}: {what}" for line, what in sorted(found)]


def test_the_shell_reads_the_core_through_its_query_layer_only() -> None:
    offences = {
        str(path.relative_to(ROOT)): found
        for path in sorted((ROOT / "api").rglob("*.py"))
        if (found := reads_past_the_facade(path.read_text()))
    }
    assert not offences, offences


def test_the_facade_check_catches_each_way_past_it() -> None:
    source = (
        "x = service.core.orders[1]\n"
        "y = self.core._journal\n"
        "core.engine.book('A')\n"
        "z = core.parts.trading\n"
        "core.query.order(1); core.apply(op); ctx.service.core.check()\n"
    )
    assert reads_past_the_facade(source) == [
        "line 1: core.orders",
        "line 2: core._journal",
        "line 3: core.engine",
        "line 4: core.parts",
    ]
