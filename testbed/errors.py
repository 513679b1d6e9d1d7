"""testbed's exception types: every one is a ValueError, and every message says what and where.

The rule: a value that is bad (wrong length or shape, non-finite, outside a primitive's domain, an
index out of range, misuse of a trace) raises one of these; an argument of the wrong kind altogether
(f not callable, not a Circuit, a numpy function applied to a traced value) raises TypeError.
"""


class TestbedError(ValueError):
    """Base class of every error testbed raises on bad input."""

    __test__ = False  # not a pytest test class, despite the name


class ShapeError(TestbedError):
    """An array of the wrong length, shape or dtype (the message names the expected shape)."""


class NonFiniteError(TestbedError):
    """An input, constant or computed value that is inf or NaN (the message names the node)."""


class DomainError(TestbedError):
    """A primitive applied outside its domain: log of x <= 0, division by 0 (names the node)."""


class CircuitError(TestbedError):
    """A malformed circuit: unknown primitive, wrong arity, a node referring forward or to itself."""


class TraceError(TestbedError):
    """Misuse of tracing: a non-tracer result, a tracer used after its trace ended, branching on a
    tracer, x[i] past the l inputs, a constant that is not a real number."""


class GradientCheckError(TestbedError):
    """`check_grads` found derivatives that disagree beyond the stated tolerance."""
