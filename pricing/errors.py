"""One error type for the pricing package: a stable ``code`` (a :class:`Refusal`) plus a
message rendered from its template."""

from __future__ import annotations

from exchange.refusals import Refusal

__all__ = ["PricingError"]


class PricingError(ValueError):
    """Refused input. ``code`` is stable and machine-readable; ``message`` explains it,
    from the refusal's template and ``fields``.

    The API layer maps ``code`` onto ``{"error": {"code", "message"}}`` unchanged.
    """

    def __init__(self, code: Refusal, /, **fields: object) -> None:
        message = code.message(**fields)
        super().__init__(f"{code}: {message}")
        self.code = code
        self.fields = fields
        self.message = message
