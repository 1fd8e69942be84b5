from __future__ import annotations

import pytest

from pricing import Catalog, load_builtin_catalog


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_builtin_catalog()
