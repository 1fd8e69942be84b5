"""The documents cannot drift from the code: every test docs/guarantees.md names exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from exchange.refusals import markdown_table

ROOT = Path(__file__).resolve().parents[1]


def _references() -> list[tuple[str, str]]:
    text = (ROOT / "docs" / "guarantees.md").read_text()
    refs: list[tuple[str, str]] = []
    for cell in re.findall(r"\| ([^|]*) \|\n", text):
        current = None
        for token in re.findall(r"`([^`]+)`", cell):
            path, _, name = token.partition("::")
            if path.endswith(".py"):
                current = path
                if name:
                    refs.append((path, name))
            elif current is not None and re.fullmatch(r"\w+", token):
                refs.append((current, token))
    return refs


def test_guarantees_name_tests_that_exist() -> None:
    refs = _references()
    assert len(refs) > 30
    missing = []
    for path, name in refs:
        source = ROOT / "tests" / path
        if not source.exists() or not re.search(
            rf"^\s*(def|class) {re.escape(name)}\b", source.read_text(), re.MULTILINE
        ):
            missing.append(f"{path}::{name}")
    assert not missing, f"docs/guarantees.md names tests that do not exist: {missing}"


def test_readme_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text()
    for link in re.findall(r"\]\(((?:docs/)[^)#]+)\)", readme):
        assert (ROOT / link).exists(), link


def test_api_error_table_is_the_refusal_enumeration() -> None:
    """docs/api.md's error table is what ``python3 -m exchange.refusals --markdown``
    prints from :class:`exchange.refusals.Refusal`."""
    text = (ROOT / "docs" / "api.md").read_text()
    begin, end = "<!-- refusals:begin -->\n", "\n<!-- refusals:end -->"
    assert text.count(begin) == 1 and text.count(end) == 1
    table = text[text.index(begin) + len(begin) : text.index(end)]
    assert table == markdown_table(), "run python3 -m exchange.refusals --markdown"
    printed = subprocess.run(
        [sys.executable, "-m", "exchange.refusals", "--markdown"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert printed == markdown_table() + "\n"
