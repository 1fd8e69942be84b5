from __future__ import annotations

import ast
import importlib
import pkgutil

import pricing


def test_every_public_name_is_exported_and_importable() -> None:
    assert len(pricing.__all__) == len(set(pricing.__all__))
    for name in pricing.__all__:
        assert hasattr(pricing, name), name


def test_package_api_covers_each_module_api() -> None:
    for info in pkgutil.iter_modules(pricing.__path__):
        module = importlib.import_module(f"pricing.{info.name}")
        exported = getattr(module, "__all__", None)
        assert exported is not None, f"pricing.{info.name} has no __all__"
        missing = set(exported) - set(pricing.__all__)
        assert not missing, f"pricing.{info.name}: {sorted(missing)} not re-exported"


def test_no_float_literal_in_the_package_source() -> None:
    for info in pkgutil.iter_modules(pricing.__path__):
        module = importlib.import_module(f"pricing.{info.name}")
        assert module.__file__ is not None
        with open(module.__file__, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        floats = [
            node.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, float)
        ]
        assert not floats, f"pricing.{info.name} has float literals at lines {floats}"
        calls = [
            node.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "float"
        ]
        assert not calls, f"pricing.{info.name} calls float() at lines {calls}"
