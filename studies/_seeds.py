"""Seeded randomness for cells: every draw comes from a Generator made from (seed, key).

    generator(seed, "variance", "relu", 3)  ->  np.random.Generator

The key parts are hashed (SHA-256 of their repr) into the SeedSequence entropy together with the
root seed, so a replicate's numbers depend only on the seed and its own key: not on the grid, the
chunking of replicates into cells, the executor or the order cells finish in. Nothing is seeded
globally.
"""

from __future__ import annotations

import hashlib

import numpy as np


def seed_sequence(seed: int, *key: object) -> np.random.SeedSequence:
    """SeedSequence([seed, 32-bit words of sha256(repr(key))])."""
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    digest = hashlib.sha256(repr(key).encode()).digest()
    words = [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]
    return np.random.SeedSequence([int(seed), *words])


def generator(seed: int, *key: object) -> np.random.Generator:
    """A fresh PCG64 Generator for this (seed, key)."""
    return np.random.default_rng(seed_sequence(seed, *key))
