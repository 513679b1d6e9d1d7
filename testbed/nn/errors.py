"""The deep network's exceptions: every one is a `testbed.errors.TestbedError`, hence a ValueError.

Messages name the layer k (the notes' superscript [k], k = 1..r) and the shapes involved, so that a
failing call says which W[k], b[k], x or y is wrong and what it should have been.
"""

from __future__ import annotations

from testbed.errors import NonFiniteError, ShapeError, TestbedError


class NetworkError(TestbedError):
    """Base class of every error raised by `testbed.nn` on bad input or a diverging run."""


class NetworkShapeError(NetworkError, ShapeError):
    """Shapes that do not chain: W[k] columns != n[k-1], b[k] != (n[k],), x or y of a wrong size."""


class NetworkNonFiniteError(NetworkError, NonFiniteError):
    """An inf or NaN in a parameter, an input x, a target y or a direction V."""


class NetworkLayoutError(NetworkShapeError):
    """A per-layer list not in testbed.nn's layout [None, X[1], ..., X[r]] (slot 0 unused).

    Raised for W, b, a direction (VW, Vb) or a (W list, b list) pair whose slot 0 holds an array
    (most likely the old 0-based layout, in which list[k-1] was layer k) or whose slot k >= 1 is
    None; the message names the list and the slot.
    """


class UnknownNameError(NetworkError):
    """An activation or initialiser name not in the registry (the message lists the known ones)."""


class TrainingDivergedError(NetworkNonFiniteError):
    """A training run whose loss or parameters became non-finite.

    Attributes:
        step: the SGD step (0-based) at which it was detected, None for a lone `sgd_step`.
        layer: the layer k = 1..r that overflowed first.
    """

    def __init__(self, message: str, step: int | None, layer: int):
        super().__init__(message)
        self.step = step
        self.layer = layer
