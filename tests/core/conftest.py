"""Hypothesis profiles for ``tests/core``.

The default profile ``core`` keeps this package within about a minute on two cores and
runs the exchange-core state machine for 125 examples of up to 100 steps (Hypothesis ends
some examples early when their data runs long: about 10,000 steps in all). Bigger
runs: ``SUANLI_STATEFUL_STEPS=100000`` (total state-machine steps, at 100 steps per
example), or ``SUANLI_HYPOTHESIS_PROFILE=ci`` / ``=long``, which select ``core-ci`` /
``core-long`` here (``tests/exchange`` maps the same variable to its own profiles).
Registered here rather than in ``tests/conftest.py`` so that this package owns its
settings and leaves the other test packages alone.
"""

from __future__ import annotations

import contextlib
import os
import warnings

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
STEPS_PER_EXAMPLE = 100

settings.register_profile(
    "core", max_examples=125, stateful_step_count=STEPS_PER_EXAMPLE, **_COMMON
)
settings.register_profile(
    "core-ci", max_examples=500, stateful_step_count=STEPS_PER_EXAMPLE, **_COMMON
)
settings.register_profile("core-long", max_examples=3_000, stateful_step_count=150, **_COMMON)


def stateful_settings() -> settings:
    """The settings of the exchange-core state machine, from the environment."""
    steps = os.environ.get("SUANLI_STATEFUL_STEPS")
    if steps:
        return settings(
            settings.get_profile("core"),
            max_examples=max(1, int(steps) // STEPS_PER_EXAMPLE),
        )
    profile = os.environ.get("SUANLI_HYPOTHESIS_PROFILE", "")
    name = {"ci": "core-ci", "long": "core-long"}.get(profile, "core")
    return settings.get_profile(name)


# When a Hypothesis test fails, its pytest plugin imports ``hypothesis.extra._patching``
# (to suggest an @example patch), which pulls in libcst and with it a DeprecationWarning
# from ``mypy_extensions``. Warnings are errors here, so that import would turn every
# genuine failure into an INTERNALERROR that hides it. Import it once, quietly, up front.
with warnings.catch_warnings(), contextlib.suppress(ImportError):
    warnings.simplefilter("ignore", DeprecationWarning)
    import hypothesis.extra._patching  # noqa: F401
