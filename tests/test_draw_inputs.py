"""The pictures validate x the same way whether the circuit is drawn in detail or collapsed.

A circuit of more than `max_nodes` drawn nodes (inputs + operations) is collapsed into bands of
levels and its values are not drawn, but x is still checked as the engine checks it: ShapeError
for the wrong shape, NonFiniteError for an inf or NaN, DomainError naming the node for a point
outside a primitive's domain; the output cotangent u and the reverse sweep's overflow too, where
the detailed picture computes cotangents.
"""

import numpy as np
import pytest

import testbed
from testbed.draw import DEFAULT_MAX_NODES, sweep
from testbed.evaluate import evaluate as engine_evaluate

N_SIN = 250


def _large():
    """log(x0) + exp(x1), then 250 sin: 255 drawn nodes, more than DEFAULT_MAX_NODES."""

    def f(x):
        v = testbed.log(x[0]) + testbed.exp(x[1])
        for _ in range(N_SIN):
            v = testbed.sin(v)
        return v

    c = testbed.trace(f, 2)
    assert c.l + c.size > DEFAULT_MAX_NODES  # the collapsed path of testbed.draw
    return c


LARGE = _large()
# max_nodes: the default collapses LARGE; this one draws every node of it (the detailed path)
PATHS = {"collapsed": DEFAULT_MAX_NODES, "detailed": LARGE.l + LARGE.size}
DRAWERS = {"draw": testbed.draw, "draw_backprop": testbed.draw_backprop}

BAD_X = [
    (np.ones(3), testbed.ShapeError, r"x has shape \(3,\); this circuit has l=2 inputs"),
    (np.ones(1), testbed.ShapeError, r"x has shape \(1,\); this circuit has l=2 inputs"),
    (np.ones((2, 2)), testbed.ShapeError, r"the pictures take one point of shape \(2,\), got "
                                          r"shape \(2, 2\)"),
    (np.array([1.0, np.nan]), testbed.NonFiniteError, r"x\[1\] is nan: inputs must be finite"),
    (np.array([np.inf, 0.0]), testbed.NonFiniteError, r"x\[0\] is inf: inputs must be finite"),
    (np.array([1.0, 1e6]), testbed.DomainError, r"node v3 = exp x1 \(with x1=1000000.0\): exp "
                                                r"overflows"),
    (np.array([-1.0, 0.0]), testbed.DomainError, r"node v2 = log x0 \(with x0=-1.0\): log of a "
                                                 r"non-positive number"),
    (np.array(["1", "2"]), testbed.ShapeError, r"x must be a real float array"),
]


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("drawer", sorted(DRAWERS))
@pytest.mark.parametrize(("x", "exc", "match"), BAD_X)
def test_a_bad_point_raises_on_every_path(path, drawer, x, exc, match):
    """Before: on the collapsed path every one of these returned a figure."""
    with pytest.raises(exc, match=match):
        DRAWERS[drawer](LARGE, x, max_nodes=PATHS[path])


@pytest.mark.parametrize(("x", "exc", "match"), BAD_X)
def test_the_pictures_raise_what_the_engine_raises(x, exc, match):
    """The same error as evaluating the circuit at x (one point: a batch is the pictures' own)."""
    if x.ndim == 1:
        with pytest.raises(exc, match=match):
            engine_evaluate(LARGE, x)


@pytest.mark.parametrize("drawer", sorted(DRAWERS))
def test_a_good_point_still_draws_collapsed(drawer):
    fig = DRAWERS[drawer](LARGE, np.array([1.5, 0.3]))
    for ax in fig.axes:
        assert "collapsed" in ax.get_title() and "values at x not shown" in ax.get_title()
        assert sum(1 for t in ax.texts if t.get_gid() == "band") == min(24, LARGE.depth + 1)


@pytest.mark.parametrize("path", sorted(PATHS))
def test_the_output_cotangent_is_checked_on_every_path(path):
    x = np.array([1.5, 0.3])
    for u in (np.ones(2), np.array([np.nan]), np.ones((1, 1, 1))):
        with pytest.raises(testbed.ShapeError, match=r"u must be 1 finite number\(s\), one per "
                                                     r"output"):
            testbed.draw_backprop(LARGE, x, u=u, max_nodes=PATHS[path])
    for u in ("1", True, [1j]):  # np.asarray(u, float64) took "1" and True as 1.0
        with pytest.raises(testbed.ShapeError, match=r"u must be a real float array"):
            testbed.draw_backprop(LARGE, x, u=u, max_nodes=PATHS[path])
    vec = testbed.trace(lambda x: (x[0] * x[1], x[0] - x[1]), 2)
    with pytest.raises(testbed.ShapeError, match="has 2 outputs: give their cotangent u"):
        testbed.draw(vec, np.ones(2), max_nodes=2 if path == "collapsed" else DEFAULT_MAX_NODES)


def _reciprocal(n_ops):
    """1 / x0 + sin(...sin(x1)): at x0 = 1e-200 the value is 1e200 but d/dx0 = -1e400 = -inf."""

    def f(x):
        v = x[1]
        for _ in range(n_ops):
            v = testbed.sin(v)
        return 1.0 / x[0] + v

    return testbed.trace(f, 2)


@pytest.mark.parametrize("n_ops", [3, N_SIN])
@pytest.mark.parametrize("drawer", sorted(DRAWERS))
def test_a_cotangent_that_overflows_is_not_drawn_silently(n_ops, drawer):
    """Before: the detailed picture showed v̄ = -inf on x0; the collapsed one ignored it."""
    c = _reciprocal(n_ops)
    x = np.array([1e-200, 0.5])
    assert np.isfinite(engine_evaluate(c, x))
    with pytest.raises(testbed.NonFiniteError, match=r"reverse sweep overflowed: the cotangent "
                                                     r"of x0 = input is not finite"):
        testbed.value_and_grad(c, x)  # the engine's own error ...
    with pytest.raises(testbed.NonFiniteError, match=r"reverse sweep overflowed: the cotangent "
                                                     r"of x0 = input is not finite"):
        DRAWERS[drawer](c, x)  # ... and the pictures', collapsed (n_ops = 250) or not
    if n_ops == 3:
        with pytest.raises(testbed.NonFiniteError, match="cotangent of x0"):
            sweep(c, x)
        with pytest.raises(testbed.NonFiniteError, match="cotangent of x0"):
            testbed.draw_sweep(c, x)
    # without cotangents the picture only needs the values, which are finite
    testbed.draw(c, x, cotangents=False)
