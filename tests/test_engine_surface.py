"""The engine's public surface: picking outputs, entry-point errors, and what `import testbed` loads."""

import subprocess
import sys

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import assert_close, scale_of

import testbed
from testbed import primitives as P
from testbed.random_circuits import BOX, Builder
from testbed.strategies import circuits, circuits_with_points, points

# --- Circuit.output --------------------------------------------------------------------------------


def _only_live_nodes(c):
    """Every operation or constant slot of c is an output or an argument of a later slot."""
    used = np.zeros(c.n_slots, dtype=bool)
    used[c.outputs] = True
    used[c.a0[c.a0 >= 0]] = True
    used[c.a1[c.a1 >= 0]] = True
    return bool(used[c.l:].all())


@given(circuits(max_outputs=3).flatmap(
    lambda c: st.tuples(st.just(c), points(c.l),
                        st.lists(st.integers(0, c.n_outputs - 1), min_size=1, max_size=4))))
def test_output_values_equal_the_original_outputs(args):
    c, x, picks = args
    full = np.atleast_1d(c(x))
    for i in range(c.n_outputs):
        ci = c.output(i)
        assert ci.l == c.l and ci.n_outputs == 1 and _only_live_nodes(ci)
        # the same operations in the same order; 1e-14 and the floor only because the pruned circuit
        # may run on the other executor (numpy's libm and math's differ by an ulp)
        assert_close(ci(x), full[i], scale_of((c, x)), rtol=1e-14, what=f"output {i}")
    cs = c.output(picks)
    assert cs.n_outputs == len(picks) and _only_live_nodes(cs)
    assert_close(np.atleast_1d(cs(x)), full[picks], scale_of((c, x)), rtol=1e-14, what=f"outputs {picks}")
    assert c.output(list(range(c.n_outputs))).size <= c.size


@given(circuits_with_points(max_inputs=3, max_nodes=10))
def test_grad_of_grad_through_output_is_the_hessian(cxv):
    c, x, _ = cxv
    G = testbed.grad(c)
    g = np.atleast_1d(G(x))
    H = testbed.hessian(c, x)  # forward over reverse: l jvp sweeps through grad(c)
    for i in range(c.l):
        Gi = G.output(i)
        assert_close(Gi(x), g[i], scale_of((G, x)), rtol=1e-14, what=f"grad output {i}")
        # reverse over reverse, a different path to the same row: the floor is the magnitude of
        # the intermediate values of both sweeps (libm differs by an ulp between the paths' ops)
        row = np.atleast_1d(testbed.grad(Gi)(x))
        assert_close(row, H[i], scale_of((testbed.grad(Gi), x), (G, x)), what=f"grad(grad)[{i}]")


def test_output_prunes_what_the_outputs_do_not_use():
    def f(x):
        a = testbed.sin(x[0])
        for _ in range(9):
            a = testbed.sin(a)          # 10 nodes used by output 0 only
        b = x[1] * 3.0                  # 1 node (and a constant) used by output 1 only
        return a, b, a + b              # output 2 uses everything: 12 nodes

    c = testbed.trace(f, 2)
    assert c.size == 12
    assert [c.output(i).size for i in range(3)] == [10, 1, 12]
    assert c.output([1, 0]).size == 11
    assert c.output(1).n_slots == 2 + 1 + 1  # two inputs (always kept), the constant, the mul
    assert c.output(0).l == 2  # x1 unused, still an input


def test_output_of_a_million_node_chain():
    # sin(sin(...sin(x0))) and 2 * x0: built from arrays, since only `output` is under test
    n = 10**6
    op = np.full(n + 3, P.SIN.code, dtype=np.int8)
    op[0], op[n + 1] = P.INPUT, P.CONST
    op[n + 2] = P.MUL.code
    a0 = np.arange(-1, n + 2)
    a0[0], a0[n + 1], a0[n + 2] = -1, -1, 0
    a1 = np.full(n + 3, -1)
    a1[n + 2] = n + 1
    consts = np.zeros(n + 3)
    consts[n + 1] = 2.0
    level = np.concatenate([np.arange(n + 1), [0, 1]])
    c = testbed.Circuit(1, op, a0, a1, consts, [n, n + 2], level)
    assert c.output(1).size == 1 and c.output(1)(np.array([1.5])) == 3.0
    assert c.output(0).size == n
    assert c.output([1, 0]).n_slots == n + 3


@pytest.mark.parametrize("bad", [2, 3, -1, -3, [0, 2], (5,)])
def test_output_index_out_of_range(bad):
    c = testbed.trace(lambda x: (x[0] * x[1], x[0] + x[1]), 2)
    with pytest.raises(testbed.CircuitError, match=r"out of range: .* 2 output\(s\), valid indices 0\.\.1"):
        c.output(bad)


@pytest.mark.parametrize("bad", [True, 1.0, "0", None, [0, 1.0], [False]])
def test_output_index_of_the_wrong_type(bad):
    c = testbed.trace(lambda x: (x[0] * x[1], x[0] + x[1]), 2)
    with pytest.raises(TypeError, match="integers"):
        c.output(bad)


def test_output_needs_an_index():
    c = testbed.trace(lambda x: (x[0] * x[1], x[0] + x[1]), 2)
    with pytest.raises(testbed.CircuitError, match="at least one"):
        c.output([])


# --- to_jax: the shape and dtype of x are checked, under jit too -----------------------------------


@pytest.mark.parametrize("method", ["unrolled", "scan"])
def test_to_jax_checks_the_shape_of_x(method):
    c = testbed.trace(lambda x: (x[0] * x[1], testbed.sin(x[2])), 3)
    f = testbed.to_jax(c, method=method)
    x = np.array([0.5, -1.5, 2.0])
    np.testing.assert_allclose(np.asarray(f(x)), c(x), rtol=1e-15)  # same ops; libm may differ by an ulp
    for g in (f, jax.jit(f), jax.grad(lambda x: f(x)[0])):
        for bad in (np.zeros(2), np.zeros(4), np.zeros((1, 3)), np.float64(1.0)):
            with pytest.raises(testbed.ShapeError, match=r"l=3 inputs, so x must have shape \(3,\)"):
                g(bad)
    for g in (f, jax.jit(f)):  # (jax.grad refuses bool points itself)
        for bad in (np.array([1 + 1j, 0, 0]), np.array([True, False, True])):
            with pytest.raises(testbed.ShapeError, match="must be real"):
                g(bad)
    # integer points are real numbers: computed in float64
    np.testing.assert_allclose(np.asarray(f(np.array([1, 2, 3]))), c(np.array([1.0, 2.0, 3.0])),
                               rtol=1e-15)


# --- import time: jax loads on the first to_jax, not on import -------------------------------------


def test_import_testbed_loads_no_heavy_dependency_until_it_is_used():
    # one fresh process (each costs seconds): import testbed and testbed.nn loads neither jax,
    # numba nor matplotlib; evaluating loads numba (the compiled executor), not jax; draw loads
    # matplotlib; to_jax and nn.to_jax_loss load jax
    code = "\n".join([
        "import sys, numpy as np, testbed, testbed.nn as nn",
        "loaded = lambda m: m in sys.modules",
        "assert not any(map(loaded, ('jax', 'numba', 'matplotlib'))), 'imported too early'",
        "c = testbed.trace(lambda x: x[0] * 2.0, 1); c(np.ones(1))",
        "assert loaded('numba') and not loaded('jax') and not loaded('matplotlib'), 'evaluate'",
        "testbed.draw(c)",
        "assert loaded('matplotlib') and not loaded('jax'), 'draw'",
        "nn.to_jax_loss('tanh')",
        "assert loaded('jax'), 'nn.to_jax_loss'",
    ])
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


# --- the primitive table: each row's interval rule and JAX twin ------------------------------------

_ROWS = list(P.TABLE.values())


def _argument_interval(draw, prim, pos):
    """An interval inside the primitive's domain for argument `pos` (log > 0, divisor away from 0,
    exp far from overflow), with both ends drawn."""
    lo, hi = sorted(draw(st.lists(st.floats(-3.0, 3.0), min_size=2, max_size=2)))
    if prim is P.LOG or (prim is P.DIV and pos == 1):
        lo, hi = 0.1 + abs(lo), 0.1 + abs(lo) + (hi - lo)
        if prim is P.DIV and draw(st.booleans()):
            lo, hi = -hi, -lo
    return lo, hi


@given(st.sampled_from(_ROWS), st.data())
def test_interval_rule_contains_every_value(prim, data):
    ivs = [_argument_interval(data.draw, prim, pos) for pos in range(prim.arity)]
    xs = [data.draw(st.floats(lo, hi)) for lo, hi in ivs]
    lo, hi = prim.interval(*ivs)
    y = prim.py(*xs)
    # the rule's own arithmetic rounds to nearest: an ulp of slack at either end
    assert np.nextafter(lo, -np.inf) <= y <= np.nextafter(hi, np.inf), (prim, ivs, xs, (lo, hi), y)


@given(st.integers(1, 3), st.lists(st.tuples(st.sampled_from(list(P.OPS)), st.floats(0, 1, exclude_max=True),
                                             st.floats(0, 1, exclude_max=True)), min_size=1, max_size=25),
       st.data())
def test_random_circuit_intervals_contain_every_slot_value(l, steps, data):
    # the claim of testbed.random_circuits: each slot's interval holds its value on all of [-2, 2]^l
    b = Builder(l)
    for name, u, w in steps:
        n = len(b.op)
        b.apply(name, int(u * n), int(w * n)) if P.TABLE[name].arity == 2 else b.apply(name, int(u * n))
    c = b.circuit([len(b.op) - 1])
    X = np.array(data.draw(st.lists(points(l, BOX), min_size=1, max_size=4)))
    vals = c.slot_values(X)  # (n_slots, B)
    lo, hi = np.array(b.iv).T
    # interval ends are computed in rounded arithmetic through up to ~50 operations: 1e-12 relative
    slack = 1e-12 * np.maximum(1.0, np.maximum(np.abs(lo), np.abs(hi)))
    assert np.all(vals >= (lo - slack)[:, None]) and np.all(vals <= (hi + slack)[:, None])


@given(st.sampled_from(_ROWS), st.data())
def test_each_rows_jax_twin_agrees_in_value_and_derivative(prim, data):
    fn = prim.jnp(jax)
    xs = [data.draw(st.floats(*_argument_interval(data.draw, prim, pos))) for pos in range(prim.arity)]
    ans = prim.py(*xs)
    # 1e-14 and the floor: XLA's libm and Python's math differ by an ulp or two on sin, exp, log,
    # tanh, and rules such as 1 - ans^2 (tanh) cancel, turning that into an absolute error of the
    # size of the values involved
    scale = max(1.0, abs(ans), *map(abs, xs))
    assert_close(float(fn(*xs)), ans, scale, rtol=1e-14, what=f"{prim.name} value at {xs}")
    theirs = jax.grad(fn, argnums=tuple(range(prim.arity)))(*map(np.float64, xs))
    ours = prim.vjp(1.0, ans, *xs)
    for pos in range(prim.arity):
        mine = 0.0 if ours[pos] is None else ours[pos]
        assert_close(mine, float(theirs[pos]), scale, rtol=1e-14, what=f"d {prim.name} / d arg {pos} at {xs}")


def test_relu_and_step_twins_at_the_kink():
    # relu'(0) = 0 in testbed and in its JAX twin (jnp.maximum(x, 0) would give 0.5)
    assert float(jax.grad(P.RELU.jnp(jax))(0.0)) == 0.0 == P.RELU.vjp(1.0, 0.0, 0.0)[0]
    assert float(P.STEP.jnp(jax)(0.0)) == 0.0 == P.STEP.py(0.0)
    assert {p.name for p in _ROWS if not p.smooth} == {"relu", "step"}


def test_import_testbed_loads_scipy_only_with_curvature():
    code = ("import sys, testbed; assert 'scipy' not in sys.modules, 'scipy imported'; "
            "testbed.curvature.top_eigenvalues; assert 'scipy' in sys.modules")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
