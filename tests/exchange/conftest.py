"""Hypothesis profiles for the trading-core tests.

``exchange`` (the default) keeps ``tests/exchange`` under a minute on two cores; pick a
bigger run with ``SUANLI_HYPOTHESIS_PROFILE=ci`` or ``=long``. The profile is applied to
the engine-versus-reference state machine only (see ``test_engine_model.py``), so the
Hypothesis settings of the other test packages are left alone. (Registered here rather
than in ``tests/conftest.py`` so that this package owns its settings.)
"""

from __future__ import annotations

import contextlib
import warnings

from hypothesis import HealthCheck, settings

# When a Hypothesis test fails, its pytest plugin imports hypothesis.extra._patching
# (libcst) to suggest a patch; in this environment that import emits a
# DeprecationWarning, which the pytest config turns into an error that crashes the whole
# run (INTERNALERROR) instead of reporting the failure. Import it once here, quietly.
with warnings.catch_warnings(), contextlib.suppress(ImportError):
    warnings.simplefilter("ignore")
    import hypothesis.extra._patching  # noqa: F401

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}

settings.register_profile("exchange", max_examples=60, stateful_step_count=50, **_COMMON)
# Not named "ci": Hypothesis loads a profile of that name for every test when the CI
# environment variable is set.
settings.register_profile("exchange-ci", max_examples=300, stateful_step_count=80, **_COMMON)
settings.register_profile("exchange-long", max_examples=3_000, stateful_step_count=150, **_COMMON)
