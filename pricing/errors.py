"""One error type for the pricing package: a stable snake_case ``code`` plus a message."""

from __future__ import annotations

__all__ = ["PricingError"]


class PricingError(ValueError):
    """Refused input. ``code`` is stable and machine-readable; ``message`` explains it.

    The API layer maps ``code`` onto ``{"error": {"code", "message"}}`` unchanged.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
