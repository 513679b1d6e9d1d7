"""Shared test set-up: float64 JAX and the Hypothesis profiles.

Profiles (chosen by the environment variable HYPOTHESIS_PROFILE):
  ci        200 examples per property, derandomized, no deadline, blob printed on failure
            (what `make test` and CI use)
  dev       random, fewer examples, for quick local iteration
  thorough  random, 2000+ examples per property, with the example database on
"""

import os

import jax

# Must run before any jax array exists: every comparison in this suite is float64.
jax.config.update("jax_enable_x64", True)

from hypothesis import HealthCheck, settings  # noqa: E402

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=200, derandomize=True, print_blob=True, database=None, **_common)
settings.register_profile("dev", max_examples=30, **_common)
settings.register_profile("thorough", max_examples=2000, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

