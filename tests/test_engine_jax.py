"""The engine against JAX, to 1e-10 relative (with the floor explained in support.assert_close).

The same circuit is handed to JAX twice: literally, node by node (testbed.to_jax, eager), and as a
program for one compiled interpreter (tests/jaxref.py) that makes many examples per property cheap.
Every property runs on all three executors ("sequential", "vectorised" and "compiled", forced:
without numba the random circuits are too small for "auto" to pick the vectorised one), at one
point x and at a batch of points whose first row is x. The executors run inside each example, on
the same circuit and points, against one JAX reference (a failure names the executor): drawing an
example and computing the reference are most of the cost, and three parametrized copies would
draw the same derandomized examples three times.
"""

import jax
import jax.numpy as jnp
import jaxref
import numpy as np
from hypothesis import assume, example, given
from hypothesis import strategies as st
from support import EXECUTORS as ALL_EXECUTORS
from support import assert_close, scale_of

import testbed
from testbed.evaluate import evaluate
from testbed.strategies import circuits, directions, points, stays_normal

jax.config.update("jax_enable_x64", True)

@st.composite
def batches(draw, **kw):
    """(c, X, V, U): a circuit, B in 1..3 points (row 0 is the single point the tests also use),
    a direction per point and a cotangent per point."""
    c = draw(circuits(**kw))
    B = draw(st.integers(1, 3))
    X = np.array([draw(points(c.l)) for _ in range(B)])
    assume(stays_normal(c, X))  # XLA flushes subnormal results to zero: see stays_normal
    V = np.array([draw(directions(c.l)) for _ in range(B)])
    U = np.array([draw(directions(c.n_outputs)) for _ in range(B)])
    return c, X, V, U


def _pinned(f, x, v):
    return (f, np.array([x]), np.array([v]), np.ones((1, f.n_outputs)))


# Edge case pinned for every property: relu exactly at its kink, where relu'(0) = 0 (jax.nn.relu).
_KINK = _pinned(testbed.trace(lambda x: testbed.relu(x[0]) * x[1] + testbed.step(x[0]), 2),
                [0.0, 1.5], [1.0, -1.0])
# ...and exp at the largest argument the strategy allows (5), through a division.
_EXP = _pinned(testbed.trace(lambda x: testbed.exp(5.0 * testbed.sin(x[0])) / (x[1] * x[1] + 0.1), 2),
               [np.pi / 2, 0.0], [0.5, 1.0])
# ...and every generic function of testbed that tracing dispatches through (the strategy's circuits
# are built from op codes, not traced).
_TRACED = _pinned(testbed.trace(lambda x: testbed.log(x[0] * x[0] + 1.0) * testbed.sigmoid(x[1])
                                - testbed.tanh(x[0]) / testbed.cos(x[1]) + testbed.sin(-x[0]), 2),
                  [0.7, -0.4], [1.0, 0.5])


@given(cXVU=batches(max_outputs=3))
@example(cXVU=_KINK)
@example(cXVU=_EXP)
def test_value_and_grad_match_literal_to_jax(cXVU):
    # the literal to_jax is eager JAX (slow): checked once per example, against both executors
    c, X, _, _ = cXVU
    x = X[0]
    f = testbed.to_jax(c)
    literal = np.asarray(f(jnp.asarray(x)))
    s = scale_of((c, x))
    assert_close(jaxref.value(c, x), literal, s, what="interpreter vs literal")
    for executor in ALL_EXECUTORS:
        assert_close(evaluate(c, x, executor), literal, s, what=f"value, {executor}")
    if c.n_outputs == 1:
        theirs = np.asarray(jax.grad(f)(jnp.asarray(x)))
        for executor in ALL_EXECUTORS:
            assert_close(testbed.value_and_grad(c, x, executor)[1], theirs,
                         scale_of((testbed.grad(c), x)), what=f"grad vs literal jax.grad, {executor}")


def _per_point(ours_single, ours_batch, theirs, scales, what):
    """Row 0 of `theirs` against the single-point result, every row against the batched one."""
    assert_close(ours_single, np.reshape(theirs[0], np.shape(ours_single)), scales[0], what=what)
    for b, (ours_b, theirs_b) in enumerate(zip(ours_batch, theirs, strict=True)):
        assert_close(np.atleast_1d(ours_b), np.atleast_1d(theirs_b), scales[b],
                     what=f"batched {what}, point {b}")


@given(cXVU=batches(max_outputs=3))
@example(cXVU=_KINK)
@example(cXVU=_EXP)
def test_value_matches_jax(cXVU):
    c, X, _, _ = cXVU
    theirs = jaxref.values(c, X)
    s = [scale_of((c, x)) for x in X]
    for executor in ALL_EXECUTORS:
        ours = np.reshape(evaluate(c, X, executor), (len(X), -1))
        _per_point(evaluate(c, X[0], executor), ours, theirs, s, f"value, {executor}")


@given(cXVU=batches())
@example(cXVU=_KINK)
@example(cXVU=_EXP)
@example(cXVU=_TRACED)
def test_grad_matches_jax(cXVU):
    c, X, _, _ = cXVU
    G = testbed.grad(c)
    theirs, values = jaxref.grads(c, X), jaxref.values(c, X)
    s = [scale_of((G, x)) for x in X]
    for executor in ALL_EXECUTORS:
        f1, g1 = testbed.value_and_grad(c, X[0], executor)
        fb, gb = testbed.value_and_grad(c, X, executor)
        _per_point(g1, gb, theirs, s, f"value_and_grad, {executor}")
        _per_point(np.atleast_1d(evaluate(G, X[0], executor)),
                   np.reshape(evaluate(G, X, executor), (len(X), c.l)), theirs, s,
                   f"grad circuit, {executor}")
        _per_point(f1, fb, values, s, f"value of value_and_grad, {executor}")


@given(cXVU=batches(max_outputs=3))
@example(cXVU=_KINK)
@example(cXVU=_TRACED)
def test_jvp_matches_jax(cXVU):
    c, X, V, _ = cXVU
    jf, jt = jaxref.jvps(c, X, V)
    s = [scale_of((testbed.jvp_circuit(c), np.concatenate([x, v]))) for x, v in zip(X, V, strict=True)]
    for executor in ALL_EXECUTORS:
        f1, t1 = testbed.jvp(c, X[0], V[0], executor)
        fb, tb = testbed.jvp(c, X, V, executor)
        _per_point(f1, np.reshape(fb, (len(X), -1)), jf, s, f"jvp primal, {executor}")
        _per_point(t1, np.reshape(tb, (len(X), -1)), jt, s, f"jvp tangent, {executor}")


@given(cXVU=batches(max_outputs=3))
@example(cXVU=_KINK)
def test_vjp_matches_jax(cXVU):
    c, X, _, U = cXVU
    # the floor: intermediate magnitudes of value and reverse sweep, u-weighted over the outputs
    s = [max(scale_of((testbed.grad(c.output(o)), x)) for o in range(c.n_outputs))
         * (1.0 + float(np.abs(u).sum())) for x, u in zip(X, U, strict=True)]
    values, theirs = jaxref.values(c, X), jaxref.vjps(c, X, U)
    s_values = [scale_of((c, x)) for x in X]
    for executor in ALL_EXECUTORS:
        f1, g1 = testbed.vjp(c, X[0], U[0], executor)
        fb, gb = testbed.vjp(c, X, U, executor)
        _per_point(f1, np.reshape(fb, (len(X), -1)), values, s_values, f"vjp primal, {executor}")
        _per_point(g1, gb, theirs, s, f"vjp cotangent, {executor}")


@given(cXVU=batches())
@example(cXVU=_KINK)
@example(cXVU=_EXP)
@example(cXVU=_TRACED)
def test_hvp_matches_jax_forward_over_reverse(cXVU):
    c, X, V, _ = cXVU
    s = [scale_of((testbed.hvp_circuit(c), np.concatenate([x, v]))) for x, v in zip(X, V, strict=True)]
    theirs = jaxref.hvps(c, X, V)
    for executor in ALL_EXECUTORS:
        _per_point(testbed.hvp(c, X[0], V[0], executor), testbed.hvp(c, X, V, executor),
                   theirs, s, f"hvp, {executor}")


def _row_scales(c, Z):
    """The largest intermediate magnitude at each point (row) of Z, floor 1."""
    return np.maximum(1.0, np.abs(c.slot_values(Z)).max(axis=0))


@given(cXVU=batches())
@example(cXVU=_KINK)
@example(cXVU=_EXP)
@example(cXVU=_TRACED)
def test_hessian_and_grad_of_grad_match_jax_hessian(cXVU):
    c, X, _, _ = cXVU
    theirs = jaxref.hessians(c, X)
    x = X[0]
    s = _row_scales(testbed.hvp_circuit(c), np.hstack([np.tile(x, (c.l, 1)), np.eye(c.l)])).max()
    # reverse mode over each output of the gradient circuit: row i of the Hessian, no extra code
    G = testbed.grad(c)
    rows = [(G.output(i), testbed.grad(G.output(i))) for i in range(c.l)]
    s_rows = [np.maximum(s, _row_scales(GGi, X)) for _, GGi in rows]
    for executor in ALL_EXECUTORS:
        assert_close(testbed.hessian(c, x, executor), theirs[0], s,
                     what=f"hessian (l HVPs), {executor}")
        for i, ((gi, GGi), s_i) in enumerate(zip(rows, s_rows, strict=True)):
            _per_point(testbed.value_and_grad(gi, x, executor)[1],
                       testbed.value_and_grad(gi, X, executor)[1],
                       theirs[:, i], s_i, f"grad(grad)[{i}], {executor}")
            _per_point(np.atleast_1d(evaluate(GGi, x, executor)),
                       np.reshape(evaluate(GGi, X, executor), (len(X), c.l)),
                       theirs[:, i], s_i, f"grad(grad) circuit [{i}], {executor}")


@given(cXVU=batches(max_nodes=8), ij=st.tuples(st.integers(0, 3), st.integers(0, 3)))
@example(cXVU=_KINK, ij=(0, 1))
@example(cXVU=_EXP, ij=(1, 0))
def test_third_derivative_through_output_matches_jax(cXVU, ij):
    # d^3 f / dx_i dx_j dx_m for all m: grad of output j of grad of output i of grad(c)
    c, X, _, _ = cXVU
    i, j = ij[0] % c.l, ij[1] % c.l
    H_i = testbed.grad(testbed.grad(c).output(i))
    T_ij = testbed.grad(H_i.output(j))
    x = X[0]
    theirs = jaxref.third(c, x)[i, j]
    s = scale_of((T_ij, x))
    for executor in ALL_EXECUTORS:
        assert_close(testbed.value_and_grad(H_i.output(j), x, executor)[1], theirs, s,
                     what=f"third derivative [{i}, {j}, :], {executor}")
        assert_close(np.atleast_1d(evaluate(T_ij, x, executor)), theirs, s,
                     what=f"third-derivative circuit [{i}, {j}, :], {executor}")


def test_subnormal_results_are_where_jax_and_ieee_differ_and_the_strategies_skip_them():
    # found by the vjp property: 0.5 * 2.2e-308 underflows into the subnormals; numpy keeps the
    # value (so step reads 1), XLA on CPU flushes it to zero (step reads 0). Neither is a
    # differentiation bug; stays_normal keeps such points out of every JAX comparison. Should JAX
    # stop flushing, this test fails and the filter can go.
    c = testbed.trace(lambda x: testbed.step(x[0] * x[1]), 2)
    x = np.array([0.5, np.finfo(np.float64).tiny])
    assert not stays_normal(c, x) and stays_normal(c, np.array([0.5, 1e-300]))
    assert evaluate(c, x, "sequential") == 1.0
    assert jaxref.value(c, x) == 0.0
