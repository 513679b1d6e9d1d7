"""The compiled executor against the sequential one, bit for bit, and its own machinery.

The sequential executor at one point runs Python floats through `math` (libm); the compiled
kernels run the same scalar functions, compiled by numba (libm again), in the same order: the
numbers must be identical, sign of zero included. Batches: the kernels loop over the points inside
each slot, so a batch must equal its points one by one, exactly; against the sequential
executor's batches (numpy's ufuncs, which on some machines use their own SIMD exp, log or tanh)
they agree to a few ulps, which `test_numpy_ufuncs_against_libm` measures per primitive.
The JAX cross-validation of every transform on all three executors is in test_engine_jax.py.
"""

import dataclasses
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from support import assert_close, bits_equal, sin_chain

import testbed
from testbed import compiled as K
from testbed import evaluate as E
from testbed import primitives as P
from testbed.strategies import ALL_OPS, circuits, directions, points


@st.composite
def cases(draw, max_outputs=3):
    """(c, X, V, U): a circuit over every primitive, 1..4 points, a direction and a cotangent each."""
    c = draw(circuits(max_outputs=max_outputs, max_nodes=24, ops=ALL_OPS))
    B = draw(st.integers(1, 4))
    X = np.array([draw(points(c.l)) for _ in range(B)])
    V = np.array([draw(directions(c.l)) for _ in range(B)])
    U = np.array([draw(directions(c.n_outputs)) for _ in range(B)])
    return c, X, V, U


# every transform at one point, as (name, function of (c, x, v, u, executor))
_TRANSFORMS = [
    ("value", lambda c, x, v, u, e: E.evaluate(c, x, e)),
    ("vjp", lambda c, x, v, u, e: testbed.vjp(c, x, u, e)),
    ("jvp", lambda c, x, v, u, e: testbed.jvp(c, x, v, e)),
    ("slot values", lambda c, x, v, u, e: E.forward_values(c, x, e)),
]
_SCALAR_TRANSFORMS = [
    ("value_and_grad", lambda c, x, v, e: testbed.value_and_grad(c, x, e)),
    ("hvp", lambda c, x, v, e: testbed.hvp(c, x, v, e)),
    ("fd forward", lambda c, x, v, e: testbed.fd_grad(c, x, executor=e)),
    ("fd central", lambda c, x, v, e: testbed.fd_grad(c, x, scheme="central", executor=e)),
]
_RELU_KINK = (testbed.trace(lambda x: testbed.relu(x[0]) * x[1] - testbed.step(-x[0]), 2),
              np.array([[0.0, 1.5]]), np.array([[1.0, -1.0]]), np.array([[1.0]]))
_NEGATIVE_ZERO = (testbed.trace(lambda x: -(x[0] * 0.0) + testbed.sin(-x[1]) * x[0], 2),
                  np.array([[0.0, -0.0]]), np.array([[-0.0, 1.0]]), np.array([[1.0]]))


def _pairs(out):
    return out if isinstance(out, tuple) else (out,)


@given(cases())
@example(_RELU_KINK)
@example(_NEGATIVE_ZERO)
def test_compiled_equals_sequential_bit_for_bit_at_each_point(case):
    c, X, V, U = case
    for x, v, u in zip(X, V, U, strict=True):
        for name, f in _TRANSFORMS:
            for ours, ref in zip(_pairs(f(c, x, v, u, "compiled")), _pairs(f(c, x, v, u, "sequential")),
                                 strict=True):
                assert bits_equal(ours, ref), (name, x, ours, ref)
        if c.n_outputs == 1:
            for name, f in _SCALAR_TRANSFORMS:
                for ours, ref in zip(_pairs(f(c, x, v, "compiled")), _pairs(f(c, x, v, "sequential")),
                                     strict=True):
                    assert bits_equal(ours, ref), (name, x, ours, ref)


@given(cases())
@example(_RELU_KINK)
def test_compiled_batch_equals_its_points_one_by_one_exactly(case):
    c, X, V, U = case
    batch = {"value": E.evaluate(c, X, "compiled"), "vjp": testbed.vjp(c, X, U, "compiled"),
             "jvp": testbed.jvp(c, X, V, "compiled")}
    if c.n_outputs == 1:
        batch["vg"] = testbed.value_and_grad(c, X, "compiled")
        batch["hvp"] = testbed.hvp(c, X, V, "compiled")
    for b, (x, v, u) in enumerate(zip(X, V, U, strict=True)):
        one = {"value": E.evaluate(c, x, "compiled"), "vjp": testbed.vjp(c, x, u, "compiled"),
               "jvp": testbed.jvp(c, x, v, "compiled")}
        if c.n_outputs == 1:
            one["vg"] = testbed.value_and_grad(c, x, "compiled")
            one["hvp"] = testbed.hvp(c, x, v, "compiled")
            H = testbed.hessian(c, x, "compiled")  # l HVPs in one batch: column i is H e_i
            for i in range(c.l):
                assert bits_equal(H[:, i], testbed.hvp(c, x, np.eye(c.l)[i], "compiled"))
        for key, out in one.items():
            for o, bo in zip(_pairs(out), _pairs(batch[key]), strict=True):
                assert bits_equal(o, np.asarray(bo)[b]), (key, b)


@given(cases())
def test_compiled_batches_agree_with_the_numpy_executors(case):
    # numpy's ufuncs on arrays against libm: a few ulps on some primitives (measured below); the
    # floor is the largest magnitude the sweep went through, as everywhere in this suite
    c, X, V, U = case
    s = float(np.abs(E.forward_values(c, X, "sequential")).max()) + 1.0
    for e in ("sequential", "vectorised"):
        assert_close(E.evaluate(c, X, "compiled"), E.evaluate(c, X, e), s, rtol=1e-13, what=e)
        if c.n_outputs == 1:
            G = testbed.grad(c)
            sG = max(s, float(np.abs(G.slot_values(X)).max()))
            assert_close(testbed.value_and_grad(c, X, "compiled")[1],
                         testbed.value_and_grad(c, X, e)[1], sG * 8, rtol=1e-13, what=f"grad {e}")


def test_numpy_ufuncs_against_libm():
    """Which primitives numpy's array implementation rounds differently from the scalar (libm)
    one on this machine, by how many ulp at most over 10^5 points: the only source of difference
    between the compiled executor and the numpy executors' batches. A primitive may differ (numpy
    ships its own SIMD tanh, and exp/log/sin/cos on AVX-512 machines), but by a few ulp at most."""
    rng = np.random.default_rng(0)
    worst = {}
    for prim in P.TABLE.values():
        args = [rng.uniform(-20, 20, 10**5) for _ in range(prim.arity)]
        if prim.domain is not None:
            args[-1] = np.where(prim.domain(*args), args[-1], 1.0)
        arr = prim.np(*args)
        one = np.array([prim.scalar(*a) for a in zip(*args, strict=True)])
        ulps = np.abs(arr.view(np.int64) - one.view(np.int64))
        worst[prim.name] = int(ulps.max())
    print("max ulp, numpy array vs scalar libm:", worst)
    assert max(worst.values()) <= 4, worst


def test_every_rows_compiled_rules_at_thousands_of_points():
    """One node per primitive, at 3000 points through every kernel (forward, reverse, tangent, the
    fused second order, batched and one point at a time) against the sequential executor's floats:
    bit for bit. A kernel emitted wrongly from a row cannot hide in a random circuit's mix."""
    rng = np.random.default_rng(1)
    for prim in P.TABLE.values():
        c = testbed.from_nodes(prim.arity, [(prim.name, *range(prim.arity))], [prim.arity])
        X = rng.uniform(-3, 3, (3000, prim.arity))
        if prim.domain is not None:
            X[:, -1] = np.where(prim.domain(*X.T), X[:, -1], 0.5)
        X[:5] = 0.0 if prim.domain is None else 1.0  # the kinks of relu and step
        V = rng.standard_normal(X.shape)
        f_b, g_b = testbed.value_and_grad(c, X, "compiled")
        t_b = testbed.jvp(c, X, V, "compiled")[1]
        h_b = testbed.hvp(c, X, V, "compiled")
        for b in range(0, 3000, 7):
            x, v = X[b], V[b]
            f, g = testbed.value_and_grad(c, x, "sequential")
            assert bits_equal(f_b[b], f) and bits_equal(g_b[b], g), (prim.name, x)
            assert bits_equal(t_b[b], testbed.jvp(c, x, v, "sequential")[1]), (prim.name, x)
            assert bits_equal(h_b[b], testbed.hvp(c, x, v, "sequential")), (prim.name, x)
            assert bits_equal(testbed.hvp(c, x, v, "compiled"), h_b[b]), (prim.name, x)


@given(cases(max_outputs=1))
@example(_RELU_KINK)
def test_fused_hvp_is_forward_mode_over_the_gradient_circuit_bit_for_bit(case):
    # the duals run the table's jvp rules on the vjp rules' operations: node for node what the
    # tangent sweep over grad(c) computes, so at one point the two paths are identical
    c, X, V, _ = case
    G = testbed.grad(c)
    for x, v in zip(X, V, strict=True):
        circuit_path = testbed.jvp(G, x, v, "sequential")[1]
        for e in ("sequential", "compiled"):
            assert bits_equal(testbed.hvp(c, x, v, e), np.atleast_1d(circuit_path)), (e, x)
    # and on every executor, batched, against the circuit path to the suite's 1e-10
    s = max(1.0, float(np.abs(testbed.hvp_circuit(c).slot_values(np.hstack([X, V]))).max()))
    for e in ("sequential", "vectorised", "compiled"):
        assert_close(testbed.hvp(c, X, V, e), np.reshape(testbed.jvp(G, X, V, e)[1], X.shape), s,
                     what=f"fused hvp vs jvp(grad), {e}")


def test_dual_numbers_run_each_rule_forward():
    # d/de of sin(x + e) at e = 0 through the rule-level dual: the jvp rule of the table
    d = P.sin(P.Dual(0.7, 2.0))
    assert d.v == math.sin(0.7) and d.t == math.cos(0.7) * 2.0
    q = 1.0 / P.Dual(4.0, 1.0)  # a plain number meets a dual: tangent 0.0 for the number
    assert q.v == 0.25 and q.t == (0.0 - 0.25 * 1.0) / 4.0


# --- choosing the executor, and what the kernels are made of ---------------------------------------


def test_auto_is_compiled_with_numba_and_falls_back_without(monkeypatch):
    c = testbed.trace(lambda x: testbed.sin(x[0]) * x[1], 2)
    assert E.executor_of(c) == "compiled"
    monkeypatch.setattr(E, "_NUMBA", [False])
    assert E.executor_of(c) in ("sequential", "vectorised")
    with pytest.raises(testbed.TestbedError, match="needs numba"):
        testbed.value_and_grad(c, np.ones(2), executor="compiled")


def test_kernels_are_generated_from_the_table_and_follow_a_replaced_row(monkeypatch):
    src = K.source()
    original = K.kernels()
    for prim in P.TABLE.values():
        assert f"o == {prim.code}:  # {prim.name}" in src
    # a row whose vjp rule is replaced (a wrong derivative): the kernels follow the table
    c = testbed.trace(lambda x: testbed.sin(x[0]) * x[1], 2)
    x = np.array([0.7, 1.3])
    right = testbed.value_and_grad(c, x, "compiled")[1]
    wrong = dataclasses.replace(P.SIN, vjp=lambda g, ans, x: (g * P.sin(x),))
    table = list(P.BY_CODE)
    table[P.SIN.code] = wrong
    monkeypatch.setattr(P, "BY_CODE", table)
    c2 = testbed.Circuit(c.l, c.op, c.a0, c.a1, c.consts, c.outputs)
    got = testbed.value_and_grad(c2, x, "compiled")[1]
    assert got[0] == math.sin(0.7) * 1.3 != right[0]
    assert got[0] == testbed.value_and_grad(c2, x, "sequential")[1][0]
    # a row without a scalar implementation cannot be compiled: said, not guessed
    table[P.SIN.code] = dataclasses.replace(P.SIN, scalar=None)
    with pytest.raises(testbed.TestbedError, match="sin has no scalar implementation"):
        testbed.value_and_grad(c2, x, "compiled")
    # the table restored: the kernels this process loaded for it come back, not a second load
    monkeypatch.undo()
    assert K.kernels() is original
    assert testbed.value_and_grad(c, x, "compiled")[1][0] == right[0]


def test_first_call_cost_is_reported_and_the_cache_is_used():
    # this process has compiled or loaded the kernels by now; a fresh one loads them from the cache
    testbed.value_and_grad(testbed.trace(lambda x: x[0] * x[0], 1), np.ones(1), "compiled")
    report = K.load_report()
    assert report["kernels"]["forward_1"]["source"] in ("compiled", "cache")
    code = ("import numpy as np, testbed, testbed.compiled as K; "
            "testbed.value_and_grad(testbed.trace(lambda x: x[0] * x[0], 1), np.ones(1)); "
            "k = K.load_report()['kernels']; print(k['forward_1']['source'], k['reverse_1']['source'])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["cache", "cache"], r.stdout


def test_warm_reaches_every_kernel_and_a_fresh_process_then_loads_them_all_from_the_cache():
    # `make test` warms the cache first: every kernel the generated module defines must be
    # reached, or a worker would still compile one itself
    module = K.kernels()
    defined = {name for name in dir(module)  # the kernels (the _-names are the rows' scalars)
               if hasattr(getattr(module, name), "stats") and not name.startswith("_")}
    assert set(K.warm()["kernels"]) == defined
    code = ("import testbed.compiled as K; "
            "print(sorted({v['source'] for v in K.warm()['kernels'].values()}))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['cache']", r.stdout


def test_the_generated_module_never_replaces_a_file_it_did_not_write(tmp_path, monkeypatch):
    monkeypatch.setenv("TESTBED_CACHE_DIR", str(tmp_path))
    text = K.source()
    first = K._module_file(text)
    assert first.read_text() == text and first.parent == tmp_path
    assert K._module_file(text) == first  # found again, not rewritten
    first.write_text("# someone else's file\n")
    second = K._module_file(text)
    assert second != first and second.read_text() == text
    assert first.read_text() == "# someone else's file\n"


# --- errors name the node, as on the other executors ------------------------------------------------


@pytest.mark.parametrize("batched", [False, True])
def test_compiled_errors_are_the_sequential_errors(batched):
    def at(x):
        return np.tile(x, (3, 1)) if batched else np.asarray(x, dtype=float)

    cases_ = [
        (testbed.trace(lambda x: testbed.sin(x[1]) + testbed.log(x[0] * 1.0), 2), [-0.5, 0.3]),
        (testbed.trace(lambda x: testbed.sin(x[0] * x[0] * x[0]), 1), [1e200]),
        (testbed.trace(lambda x: testbed.exp(x[0] * 3.0), 1), [300.0]),
        (testbed.trace(lambda x: x[1] / (x[0] - 2.0), 2), [2.0, 1.0]),
        # an overflow before a domain error: the overflow is what went wrong (inf - inf = nan, log)
        (testbed.trace(lambda x: testbed.log((x[0] * x[0]) - (x[0] * x[0])), 1), [1e200]),
    ]
    for c, x in cases_:
        errors = []
        for e in ("sequential", "compiled"):
            with pytest.raises(testbed.TestbedError) as info:
                E.evaluate(c, at(x), e)
            errors.append((type(info.value), str(info.value)))
        assert errors[0] == errors[1], errors
    assert errors[0][0] is testbed.NonFiniteError and "mul" in errors[0][1]


@pytest.mark.parametrize("batched", [False, True])
def test_compiled_sweep_overflows_name_the_slot(batched):
    def at(x):
        return np.tile(x, (2, 1)) if batched else np.asarray(x, dtype=float)

    c = testbed.trace(lambda x: x[0] / x[1], 2)  # f = 1e200 is finite, d f / d x1 = -1e400 is not
    sweeps = {"reverse": lambda e: testbed.value_and_grad(c, at([1.0, 1e-200]), e),
              "tangent": lambda e: testbed.jvp(c, at([1.0, 1e-200]), at([0.0, 1.0]), e),
              "hvp": lambda e: testbed.hvp(c, at([1.0, 1e-110]), at([0.0, 1.0]), e)}
    for name, sweep in sweeps.items():
        messages = []
        for e in ("sequential", "compiled"):
            with pytest.raises(testbed.NonFiniteError, match="sweep overflowed") as info:
                sweep(e)
            messages.append(str(info.value))
        assert messages[0] == messages[1], (name, messages)


def test_million_node_chain_on_the_compiled_executor():
    n = 10**6
    c = sin_chain(n)
    x = np.array([0.3, 0.1])
    f, g = testbed.value_and_grad(c, x, "compiled")
    hv = testbed.hvp(c, x, np.array([1.0, 0.0]), "compiled")
    assert np.isfinite(f) and np.isfinite(g).all() and np.isfinite(hv).all()
    # the chain's own arithmetic, in Python: the same value
    w = 0.3
    for _ in range(n // 2):
        w = math.sin(w) + 0.1
    assert f == w


@given(circuits(max_outputs=3, max_nodes=30, ops=ALL_OPS))
def test_the_reverse_plan_kernel_equals_the_sequential_loop(c):
    flags, counts, dead = E.reverse_plan(c)
    seq_flags, seq_counts = E._reverse_plan_seq(c)
    assert np.array_equal(flags, seq_flags) and np.array_equal(counts, seq_counts)
    assert np.array_equal(dead, np.flatnonzero(seq_flags == 0))


def test_warm_in_parts_covers_what_warm_does_and_refuses_bad_parts():
    # `make test` warms in two processes: the parts, each in a fresh process, together reach
    # every kernel warm() reaches
    whole = set(K.warm()["kernels"])
    code = ("import testbed.compiled as K, sys; "
            "print(' '.join(sorted(K.warm(int(sys.argv[1]), 2)['kernels'])))")
    seen = set()
    for part in (0, 1):
        r = subprocess.run([sys.executable, "-c", code, str(part)], capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr
        seen |= set(r.stdout.split())
    assert seen == whole
    for part, parts, error in ((2, 2, testbed.TestbedError), (-1, 2, testbed.TestbedError),
                               (0, 0, testbed.TestbedError), (True, 2, TypeError),
                               (0, 1.0, TypeError)):
        with pytest.raises(error, match="warm: part|warm: parts"):
            K.warm(part, parts)
