"""Invariant checks that stay on in production (``python -O`` strips ``assert``, not these)."""

from __future__ import annotations

__all__ = ["InvariantViolation", "check"]


class InvariantViolation(RuntimeError):
    """An internal invariant broke: the state can no longer be trusted; stop the writer."""


def check(condition: bool, message: str, *args: object) -> None:
    """Raise :class:`InvariantViolation` unless ``condition`` holds.

    ``message`` is %-formatted with ``args`` only on failure, so a check on a hot path
    costs one comparison, never a string.
    """
    if not condition:
        raise InvariantViolation(message % args if args else message)
