"""Suite-wide test configuration."""

from __future__ import annotations

import contextlib
import warnings

from hypothesis import settings

# When a Hypothesis test fails, its pytest plugin imports hypothesis.extra._patching (and
# libcst) to suggest a patch; that import emits a DeprecationWarning here, which the
# warnings-as-errors config would turn into an INTERNALERROR hiding the real failure.
# Import it once, quietly, so failures are reported as failures.
with warnings.catch_warnings(), contextlib.suppress(ImportError):
    warnings.simplefilter("ignore")
    import hypothesis.extra._patching  # noqa: F401

# Under a CI environment variable Hypothesis loads its "ci" profile, whose derandomize=True
# makes schemathesis' generation many times slower here. Keep CI like a local run, with
# the failing example's blob printed so that a CI failure can be reproduced.
settings.register_profile("ci", settings.get_profile("default"), print_blob=True)
