"""Structural properties of the engine: sizes, exact costs, batching, finite differences, scale."""

import dataclasses
import gc

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st
from support import EXECUTORS, assert_close

import testbed
from testbed import primitives as P
from testbed.costs import JVP_COST, VJP_COST, muldiv, op_counts, total
from testbed.random_circuits import random_circuit
from testbed.strategies import SMOOTH_OPS, circuits, circuits_with_points, points

ARITH = ("add", "sub", "mul", "div", "neg")


@given(circuits(max_nodes=24))
def test_gradient_circuit_size_bound(c):
    # the stated guarantee: grad(c).size <= 5 N + 1 (see testbed.transforms.grad)
    assert testbed.grad(c).size <= 5 * c.size + 1


@given(circuits(max_nodes=24, ops=ARITH))
def test_baur_strassen_three_muldivs(c):
    # on + - * / circuits the gradient circuit (which computes f too) has <= 3x f's mul/div
    assert muldiv(testbed.grad(c).counts()) <= 3 * muldiv(c.counts())


@given(circuits(max_nodes=24))
def test_hvp_ops_at_most_five_times_gradient_circuit(c):
    # forward mode over the gradient circuit: each node adds its tangent rule (<= 4 ops)
    assert total(op_counts(c, "hvp")) <= 5 * testbed.grad(c).size


@given(circuits(max_nodes=20, max_outputs=2))
def test_op_counts_are_exactly_the_traced_circuits(c):
    assert op_counts(c, "forward") == dict(sorted(c.counts().items()))
    assert op_counts(c, "jvp") == dict(sorted(testbed.jvp_circuit(c).counts().items()))
    if c.n_outputs == 1:
        G = testbed.grad(c)
        assert op_counts(c, "grad") == dict(sorted(G.counts().items()))
        assert op_counts(c, "hvp") == dict(sorted(testbed.hvp_circuit(c).counts().items()))
        assert op_counts(c, "hessian") == {k: c.l * n for k, n in op_counts(c, "hvp").items()}
        assert total(op_counts(c, "fd_forward")) == (c.l + 1) * c.size
        assert total(op_counts(c, "fd_central")) == 2 * c.l * c.size


def test_rule_costs_per_primitive():
    # the table the bounds rest on (measured by tracing each rule, printed in the benchmark)
    vjp = {k: total(v) for k, v in VJP_COST.items()}
    jvp = {k: total(v) for k, v in JVP_COST.items()}
    # the grad bound 5 N + 1 needs rule + arity - 1 <= 4: unary rules <= 4 ops, binary <= 3
    for name, ops in vjp.items():
        assert ops + P.TABLE[name].arity - 1 <= 4, name
    assert vjp["add"] == 0 and vjp["step"] == 0 and vjp["sigmoid"] == vjp["tanh"] == 2
    assert muldiv(VJP_COST["mul"]) == 2 and muldiv(VJP_COST["div"]) == 2
    # the hvp bound 5 |grad(c)| needs every tangent rule <= 4 ops (dsigmoid and sech2: 4)
    assert max(jvp.values()) == 4 and jvp["step"] == 0


@given(circuits_with_points(max_outputs=3), st.integers(1, 5), st.randoms(use_true_random=False))
def test_batched_evaluation_equals_one_by_one(cxv, B, rnd):
    c, x, _ = cxv
    X = np.array([[rnd.uniform(-2, 2) for _ in range(c.l)] for _ in range(B)])
    X[0] = x
    batch = np.atleast_2d(np.asarray(c(X)).T).T.reshape(B, -1)
    one = np.array([np.atleast_1d(c(xi)) for xi in X])
    # sequential float evaluation uses math.*, batches use numpy's ufuncs: equal up to libm ulps
    assert_close(batch, one, scale=1.0, rtol=1e-12, what="batch vs one-by-one")
    if c.n_outputs == 1:
        fb, gb = testbed.value_and_grad(c, X)
        for i in range(B):
            f1, g1 = testbed.value_and_grad(c, X[i])
            assert_close(fb[i], f1, 1.0, rtol=1e-12, what="batched value")
            assert_close(gb[i], g1, max(1.0, np.abs(g1).max()), rtol=1e-12, what="batched grad")


@given(circuits_with_points(ops=SMOOTH_OPS))
def test_fd_grad_within_finite_difference_error(cxv):
    c, x, _ = cxv
    g = testbed.value_and_grad(c, x)[1]
    eps = np.finfo(float).eps
    # error model: forward |fd - g| <= h |f''| / 2 + 2 eps S / h; central h^2 |f'''| / 6 + eps S / h
    # with S the largest intermediate magnitude (roundoff of each evaluation is ~ eps S) and the
    # derivatives bounded over [x - h, x + h] by our exact Hessian (tested against JAX) and its
    # difference quotient; a factor 10 covers the rest of the Taylor series.
    S = max(1.0, float(np.max(np.abs(c.slot_values(x)))))
    Hd = np.abs(np.diag(testbed.hessian(c, x)))
    for scheme in ("forward", "central"):
        fd = testbed.fd_grad(c, x, scheme=scheme)
        h = (np.sqrt(eps) if scheme == "forward" else np.cbrt(eps)) * np.maximum(1, np.abs(x))
        if scheme == "forward":
            bound = h * Hd / 2 + 2 * c.size * eps * S / h
        else:
            d = 1e-4
            H3 = np.array([abs(testbed.hessian(c, x + d * e)[i, i] - testbed.hessian(c, x - d * e)[i, i])
                           / (2 * d) for i, e in enumerate(np.eye(c.l))])
            bound = h**2 * (H3 + Hd) / 6 + 2 * c.size * eps * S / h
        assert np.all(np.abs(fd - g) <= 10 * bound + 1e-300), (scheme, fd, g, bound)


def test_fd_default_step_is_near_the_optimum():
    # f = exp(x) at 1: the forward error is a V in h with its minimum near sqrt(eps)
    c = testbed.trace(lambda x: testbed.exp(x[0]), 1)
    x = np.array([1.0])
    err = {h: abs(testbed.fd_grad(c, x, h=h)[0] - np.e) for h in 10.0 ** -np.arange(4, 13)}
    best = min(err, key=err.get)
    assert 1e-10 <= best <= 1e-6
    # at the default h the error is within the model's optimum 2 sqrt(eps |f| |f''|) (twice, for
    # exp's own rounding); the grid's best is not a bound, roundoff makes single points lucky
    eps = np.finfo(float).eps
    assert abs(testbed.fd_grad(c, x)[0] - np.e) <= 2 * 2 * np.sqrt(eps * np.e * np.e)


def test_million_node_chain_builds_evaluates_and_differentiates():
    n = 10**6

    def chain(x):
        v = x[0]
        for i in range(n // 2):
            v = testbed.sin(v) + x[1 + i % 2]
        return v

    gc.disable()  # building 10^6 tracers: the cyclic collector would only slow it down
    try:
        c = testbed.trace(chain, 3)
    finally:
        gc.enable()
    assert c.size == n and c.depth == n
    x = np.array([0.3, 0.1, -0.2])
    f, g = testbed.value_and_grad(c, x)
    assert np.isfinite(f) and np.all(np.isfinite(g))
    # the chain's fixed point: the last sin(v) + x[1 or 2] is exactly what the loop computes
    assert repr(c).count("\n") < 60


def test_long_chain_grad_and_hvp_circuits():
    n = 10**5
    c = testbed.trace(lambda x: _pow_chain(x[0], n), 1)
    x = np.array([0.5])
    G = testbed.grad(c)
    assert G.size <= 5 * c.size + 1
    # d/dx of the n-fold sin is prod cos(v_i): compare the circuit with the sweep
    assert_close(G(x), testbed.value_and_grad(c, x)[1][0], 1.0, rtol=1e-12, what="chain grad")
    assert np.isfinite(testbed.hvp(c, x, np.ones(1))).all()


def _pow_chain(v, n):
    for _ in range(n):
        v = testbed.sin(v)
    return v


@given(st.integers(1, 4), st.sampled_from(["wide", "deep"]), st.integers(0, 2**32 - 1))
def test_random_circuit_families_are_live_and_safe(l, family, seed):
    c = random_circuit(np.random.default_rng(seed), 200, l, family)
    x = np.random.default_rng(seed + 1).uniform(-2, 2, l)
    f, g = testbed.value_and_grad(c, x)
    assert np.isfinite(f)
    # every node is live: the gradient sweep visits all of them
    assert total(op_counts(c, "grad")) >= 2 * c.size
    if family == "deep":
        assert c.depth >= c.size // 2


@given(circuits(max_outputs=2))
@example(testbed.trace(lambda x: testbed.sin(x[0]) * 2.0, 1))
def test_repr_is_one_node_per_line(c):
    text = repr(c)
    assert text.count(" = ") == min(c.size, 40)
    assert text.splitlines()[0].startswith(f"circuit(l={c.l}, N={c.size}")


@given(circuits_with_points(ops=SMOOTH_OPS))
def test_check_grads_passes_on_correct_derivatives(cxv):
    c, x, _ = cxv
    report = testbed.check_grads(c, x, rng=np.random.default_rng(0))
    assert all(v <= 1.0 for v in report.values())
    # on every executor: the same checks, each within its tolerance
    for executor in EXECUTORS:
        other = testbed.check_grads(c, x, rng=np.random.default_rng(0), executor=executor)
        assert other.keys() == report.keys() and all(v <= 1.0 for v in other.values()), executor


def test_check_grads_catches_a_wrong_rule(monkeypatch):  # noqa: D103
    import testbed.primitives as P

    c = testbed.trace(lambda x: testbed.sin(x[0]) * x[1], 2)
    wrong = dataclasses.replace(P.SIN, vjp=lambda g, ans, x: (g * testbed.sin(x),))
    table = list(P.BY_CODE)
    table[P.SIN.code] = wrong
    monkeypatch.setattr(P, "BY_CODE", table)
    c2 = testbed.Circuit(c.l, c.op, c.a0, c.a1, c.consts, c.outputs)
    try:
        # sequential: a replaced row on the compiled executor would compile a kernel module of
        # its own (test_engine_compiled checks that the kernels follow a replaced row)
        testbed.check_grads(c2, np.array([0.7, 1.3]), order=1, modes=("rev",), executor="sequential")
    except testbed.GradientCheckError as e:
        assert "order1/rev" in str(e)
    else:
        raise AssertionError("a wrong vjp rule for sin went unnoticed")


@given(points(3))
def test_readme_example_runs(x):
    c = testbed.trace(lambda x: testbed.sin(x[0] * x[1]) + x[2] / (x[0] * x[0] + 1.0), 3)
    f, g = testbed.value_and_grad(c, x)
    a, b, d = x
    q = a * a + 1.0
    expect = [b * np.cos(a * b) - d * 2 * a / q**2, a * np.cos(a * b), 1 / q]
    assert_close(g, expect, max(1.0, np.abs(expect).max()), what="readme gradient")
