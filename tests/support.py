"""Helpers shared by the whole suite: the one `assert_close`, with its tolerance and its reasons."""

import numpy as np

RTOL = 1e-10  # AD against AD in float64
#: the executors every derivative path is checked on
EXECUTORS = ("sequential", "vectorised", "compiled")


def bits_equal(ours, theirs) -> bool:
    """Same shape and the same float64 bit patterns (so -0.0 differs from 0.0): for paths that
    compute the same operations in the same order."""
    a = np.atleast_1d(np.asarray(ours, dtype=np.float64))
    b = np.atleast_1d(np.asarray(theirs, dtype=np.float64))
    return a.shape == b.shape and bool(np.array_equal(a.view(np.int64), b.view(np.int64)))


def scale_of(*circuits_and_points) -> float:
    """The largest magnitude among all intermediate values of the given (circuit, point) pairs."""
    s = 1.0
    for c, x in circuits_and_points:
        s = max(s, float(np.max(np.abs(c.slot_values(x)))))
    return s


def assert_close(ours, theirs, scale: float | None = 1.0, rtol: float = RTOL, what: str = "",
                 atol: float = 0.0):
    """|ours - theirs| <= rtol * max(|theirs|, scale) + atol, elementwise; shapes must match.

    The floor `scale` (the largest intermediate magnitude of the computation) is there because
    numpy's and XLA's libm differ by an ulp on sin/exp/log, and cancellation (x - y with x ~ y)
    turns that absolute error into an arbitrarily large *relative* error of a small result; the
    error stays below rtol times the largest magnitude the computation went through.
    `scale=None` takes max |theirs| as that magnitude: an array's entry that cancels to nearly 0
    still carries the rounding error of the array's scale. `atol` is for callers that know an
    absolute error bound better (each use states why).
    """
    ours = np.asarray(ours, dtype=np.float64)
    theirs = np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape, f"{what}: shapes {ours.shape} vs {theirs.shape}"
    if scale is None:
        scale = float(np.max(np.abs(theirs), initial=0.0))
    err = np.abs(ours - theirs)
    bound = rtol * np.maximum(np.abs(theirs), scale) + atol
    if not np.all(err <= bound):
        i = np.unravel_index(np.argmax(err - bound), err.shape)
        raise AssertionError(
            f"{what}: max error {err.max():.3g} exceeds rtol={rtol} (worst at {i}: ours {ours[i]!r}, "
            f"theirs {theirs[i]!r}, bound {bound[i]:.3g}; scale {scale:.3g}, atol {atol})\n"
            f"ours   {ours}\ntheirs {theirs}")


def sin_chain(n: int):
    """A deep chain of n operations on inputs (x0, x1): v <- sin(v) + x1, n / 2 times from v = x0,
    built slot by slot (no tracing, so a million nodes build in seconds); f(0.3, 0.1) is the
    Python loop w = sin(w) + 0.1 from w = 0.3."""
    import testbed
    from testbed import primitives as P

    b = testbed.circuit.SlotTable(2)
    v = 0
    for _ in range(n // 2):
        v = b.append(P.SIN.code, v)
        v = b.append(P.ADD.code, v, 1)
    return b.circuit([v])
