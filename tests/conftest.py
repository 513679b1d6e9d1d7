"""Shared test set-up: float64 JAX and the Hypothesis profiles.

Profiles (chosen by the environment variable HYPOTHESIS_PROFILE):
  ci        100 examples per property (Hypothesis's default), derandomized, no deadline, blob
            printed on failure (what `make test` and CI use). It was 200; halved so that `make
            test` fits in 5 minutes on 2 cores. The mutation run (`make mutants`, tests/MUTANTS.md)
            kills every non-equivalent mutant with the dev profile's 30, and `thorough` runs 2000
            (HYPOTHESIS_PROFILE=thorough make test).
  dev       random, fewer examples, for quick local iteration
  thorough  random, 2000+ examples per property, with the example database on
"""

import os

import jax

# Must run before any jax array exists: every comparison in this suite is float64.
jax.config.update("jax_enable_x64", True)

from hypothesis import HealthCheck, settings  # noqa: E402

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=100, derandomize=True, print_blob=True, database=None, **_common)
settings.register_profile("dev", max_examples=30, **_common)
settings.register_profile("thorough", max_examples=2000, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

