"""Helpers shared by the engine tests: tolerances with their reasons."""

import numpy as np

RTOL = 1e-10  # AD against AD in float64


def scale_of(*circuits_and_points) -> float:
    """The largest magnitude among all intermediate values of the given (circuit, point) pairs."""
    s = 1.0
    for c, x in circuits_and_points:
        s = max(s, float(np.max(np.abs(c.slot_values(x)))))
    return s


def assert_close(ours, theirs, scale: float = 1.0, rtol: float = RTOL, what: str = ""):
    """|ours - theirs| <= rtol * max(|theirs|, scale), elementwise.

    The floor `scale` (the largest intermediate magnitude of the computation) is there because
    numpy's and XLA's libm differ by an ulp on sin/exp/log, and cancellation (x - y with x ~ y)
    turns that absolute error into an arbitrarily large *relative* error of a small result; the
    error stays below rtol times the largest magnitude the computation went through.
    """
    ours = np.asarray(ours, dtype=np.float64)
    theirs = np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape, f"{what}: shapes {ours.shape} vs {theirs.shape}"
    err = np.abs(ours - theirs)
    bound = rtol * np.maximum(np.abs(theirs), scale)
    assert np.all(err <= bound), (
        f"{what}: max error {err.max():.3g}, bound {bound.min():.3g} (scale {scale:.3g})\n"
        f"ours   {ours}\ntheirs {theirs}")
