"""Hypothesis profiles for the trading-core tests.

``exchange`` (the default) keeps ``tests/exchange`` under a minute on two cores; pick a
bigger run with ``SUANLI_HYPOTHESIS_PROFILE=ci`` or ``=long``. The profile is applied to
the engine-versus-reference state machine only (see ``test_engine_model.py``), so the
Hypothesis settings of the other test packages are left alone. (Registered here rather
than in ``tests/conftest.py`` so that this package owns its settings.)
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}

settings.register_profile("exchange", max_examples=60, stateful_step_count=50, **_COMMON)
settings.register_profile("ci", max_examples=300, stateful_step_count=80, **_COMMON)
settings.register_profile("long", max_examples=3_000, stateful_step_count=150, **_COMMON)
