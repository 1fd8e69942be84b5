"""The documents cannot drift from the code: every test docs/guarantees.md names exists."""

from __future__ import annotations

import re
from pathlib import Path

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
