"""Suite-wide test configuration."""

from __future__ import annotations

import contextlib
import warnings

# When a Hypothesis test fails, its pytest plugin imports hypothesis.extra._patching (and
# libcst) to suggest a patch; that import emits a DeprecationWarning here, which the
# warnings-as-errors config would turn into an INTERNALERROR hiding the real failure.
# Import it once, quietly, so failures are reported as failures.
with warnings.catch_warnings(), contextlib.suppress(ImportError):
    warnings.simplefilter("ignore")
    import hypothesis.extra._patching  # noqa: F401
