"""The executors: choosing one, their agreement on wide circuits, and counting what they run.

The JAX cross-validation of every transform on every executor is in test_engine_jax.py, the
compiled executor against the sequential one bit for bit in test_engine_compiled.py; here the
numpy executors are compared with each other on the wide circuits where "auto" (without numba)
picks the vectorised one, and `testbed.evaluate.counting()` is checked against counts read off the
circuit's structure on all three.
"""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from support import EXECUTORS, assert_close

import testbed
from testbed import primitives as P
from testbed.evaluate import counting, executor_of, numpy_executor_of
from testbed.random_circuits import DEFAULT_OPS, random_circuit
from testbed.strategies import circuits_with_points

# --- choosing --------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["vectorized", "Auto", "", None, 1])
def test_unknown_executor_is_refused_by_every_transform(bad):
    c = testbed.trace(lambda x: testbed.sin(x[0]) * x[1], 2)
    x, v = np.array([0.3, 0.4]), np.array([1.0, -1.0])
    calls = (lambda e: testbed.evaluate.evaluate(c, x, e), lambda e: testbed.value_and_grad(c, x, e),
             lambda e: testbed.vjp(c, x, [1.0], e), lambda e: testbed.jvp(c, x, v, e),
             lambda e: testbed.hvp(c, x, v, e), lambda e: testbed.hessian(c, x, e),
             lambda e: testbed.fd_grad(c, x, executor=e), lambda e: testbed.jacfwd(c, x, e),
             lambda e: testbed.jacrev(c, x, e), lambda e: testbed.jacobian(c, x, e))
    for call in calls:
        with pytest.raises(testbed.TestbedError, match="executor must be one of"):
            call(bad)


def test_auto_without_numba_picks_by_group_size_and_every_executor_runs_anywhere(monkeypatch):
    # a chain (one node per level) and a tree sum of 512 products (512 nodes on each of its first levels)
    def chain(x):
        v = x[0]
        for _ in range(300):
            v = testbed.sin(v) + x[1]
        return v

    def tree(x):
        terms = [testbed.sin(x[0] * float(i + 1)) * x[1] for i in range(512)]
        while len(terms) > 1:
            terms = [a + b for a, b in zip(terms[::2], terms[1::2], strict=True)]
        return terms[0]

    deep, wide = testbed.trace(chain, 2), testbed.trace(tree, 2)
    assert executor_of(deep) == executor_of(wide) == "compiled"  # numba is a dependency
    monkeypatch.setattr(testbed.evaluate, "_NUMBA", [False])  # as if it were not installed
    assert executor_of(deep) == "sequential" and executor_of(wide) == "vectorised"
    monkeypatch.undo()
    x = np.array([0.4, -0.3])
    for c in (deep, wide):
        seq = testbed.value_and_grad(c, x, executor="sequential")
        for other in ("vectorised", "compiled"):
            vec = testbed.value_and_grad(c, x, executor=other)
            assert_close(vec[0], seq[0], 1.0, rtol=1e-14, what=f"value, {other}")
            assert_close(vec[1], seq[1], max(1.0, np.abs(seq[1]).max()), rtol=1e-14,
                         what=f"grad, {other}")


# --- agreement on wide circuits --------------------------------------------------------------------

_WIDE_EXAMPLES = max(10, settings().max_examples // 10)  # each example sweeps ~10^4 nodes


@st.composite
def wide_circuits(draw):
    """Seeded random circuits of the wide family, small enough to be fast, wide enough for "auto" to
    pick the vectorised executor: few primitives, so that (level, primitive) groups hold >= 16 slots
    on average (about 9 draws in 10; the domain repairs add other primitives to the rest)."""
    ops = draw(st.lists(st.sampled_from(DEFAULT_OPS), min_size=1, max_size=3, unique=True))
    l = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**32 - 1))
    c = random_circuit(np.random.default_rng(seed), draw(st.integers(1000, 2000)), l, "wide",
                       ops=tuple(ops))
    assume(numpy_executor_of(c) == "vectorised")
    rng = np.random.default_rng(seed + 1)
    B = draw(st.integers(1, 3))
    return c, rng.uniform(-2, 2, l), rng.uniform(-2, 2, (B, l)), rng.uniform(-1, 1, (B, l))


def _agree(a, b, scale, what):
    assert_close(a, b, scale, rtol=1e-14, what=what)


def _tangent_scale(c, pts, dirs):
    """The largest tangent magnitude of a jvp sweep over c."""
    X, _ = testbed.evaluate.as_points(c, pts)
    V, _ = testbed.evaluate.as_points(c, dirs)
    return float(np.abs(testbed.evaluate.tangent(c, testbed.evaluate.forward(c, X), V)).max())


def _fan_out(c):
    """The most uses of one slot: the longest sum of cotangent contributions."""
    args = np.concatenate([c.a0[c.op > P.CONST], c.a1[c.a1 >= 0]])
    return int(np.bincount(args).max())


def _sweeps(c, pts, dirs, executor):
    u = 0.5 * np.ones(len(pts)) if pts.ndim == 2 else [0.5]
    return dict(value=testbed.evaluate.evaluate(c, pts, executor),
                vg=testbed.value_and_grad(c, pts, executor), jvp=testbed.jvp(c, pts, dirs, executor),
                vjp=testbed.vjp(c, pts, u, executor), hvp=testbed.hvp(c, pts, dirs, executor))


@settings(max_examples=_WIDE_EXAMPLES)
@given(wide_circuits())
def test_executors_agree_on_wide_circuits(cxXV):
    c, x, X, V = cxXV
    ops = c.op[c.op > P.CONST]
    groups = len({(int(lv), int(o)) for lv, o in zip(c.level[c.op > P.CONST], ops, strict=True)})
    assert ops.size / groups >= 16 and numpy_executor_of(c) == "vectorised"
    G = testbed.grad(c)
    for pts, dirs in ((x, V[0]), (X, V)):
        try:
            seq = _sweeps(c, pts, dirs, "sequential")
        except testbed.NonFiniteError:
            # values are bounded by construction, derivatives are not (products of squares): an
            # overflowing second derivative is refused by both executors, tested elsewhere
            assume(False)
        vec = _sweeps(c, pts, dirs, "vectorised")
        # floors: the largest magnitude a sweep went through, and for sweeps that sum cotangents,
        # that times the longest sum: the executors add a slot's k contributions in different
        # orders (slot by slot vs level by level), which moves the sum by up to (k - 1) eps times
        # the sum of their magnitudes (Higham, Accuracy and Stability, 2nd ed., sec. 4.2)
        s = max(1.0, float(np.abs(c.slot_values(pts)).max()))
        sG = max(s, float(np.abs(G.slot_values(pts)).max()))
        sR = sG * _fan_out(c)
        sT = _tangent_scale(c, pts, dirs)
        _agree(vec["value"], seq["value"], s, "value")
        _agree(vec["vg"][0], seq["vg"][0], s, "value of value_and_grad")
        _agree(vec["vg"][1], seq["vg"][1], sR, "grad")
        _agree(vec["jvp"][1], seq["jvp"][1], max(s, sT), "jvp")
        _agree(vec["vjp"][1], seq["vjp"][1], sR, "vjp")
        # the fused HVP sums the tangents of the cotangents as the reverse sweep sums these: the
        # same reordering, so the same factor on the largest magnitude (of G's values and tangents)
        _agree(vec["hvp"], seq["hvp"], max(sG, _tangent_scale(G, pts, dirs)) * _fan_out(c), "hvp")


# --- counting what ran -----------------------------------------------------------------------------


def _structure(c):
    """Operation nodes by primitive name, read off the op codes directly."""
    names = [P.NAMES[o] for o in c.op.tolist() if o > P.CONST]
    return {n: names.count(n) for n in set(names)}


def _keyed(sweep, counts, times=1):
    return {f"{sweep}:{name}": n * times for name, n in counts.items() if n}


def _live(c):
    """Slots a cotangent reaches from the outputs, by a depth-first search over the argument edges
    that carry one: not into constants, not through an argument the rule returns None for."""
    passes = {}
    for p in P.TABLE.values():
        out = p.vjp(1.0, 1.0, *([1.0] * p.arity))
        passes[p.code] = [a is not None for a in out]
    seen, stack = set(), [int(o) for o in c.outputs]
    while stack:
        i = stack.pop()
        if i in seen or i < c.l or c.op[i] == P.CONST:
            continue
        seen.add(i)
        for a, passed in zip((int(c.a0[i]), int(c.a1[i])), passes[int(c.op[i])], strict=False):
            if passed:
                stack.append(a)
    names = [P.NAMES[c.op[i]] for i in seen]
    return {n: names.count(n) for n in set(names)}


@pytest.mark.parametrize("executor", EXECUTORS)
@given(cxv=circuits_with_points(max_outputs=3), B=st.integers(1, 3),
       scheme=st.sampled_from(["forward", "central"]))
def test_counting_matches_the_circuit_structure(executor, cxv, B, scheme):
    c, x, v = cxv
    X, V = np.tile(x, (B, 1)), np.tile(v, (B, 1))
    s = _structure(c)
    with_rule = {n: m for n, m in s.items() if P.TABLE[n].jvp is not None}
    # sequential and compiled: only the live slots run their reverse rule; vectorised: every
    # group, dense
    rev = s if executor == "vectorised" else _live(c)

    with counting() as k:  # a jvp: forward and tangent sweep over every node, B points
        testbed.jvp(c, X, V, executor=executor)
    assert k == {**_keyed("forward", s, B), **_keyed("tangent", with_rule, B)}
    with counting() as k:  # k vjps at once: forward and reverse sweeps
        testbed.vjp(c, X, np.ones((B, c.n_outputs)), executor=executor)
    assert k == {**_keyed("forward", s, B), **_keyed("reverse", rev, B)}
    with counting() as k:
        testbed.jacfwd(c, x, executor=executor)
    assert k == {**_keyed("forward", s, c.l), **_keyed("tangent", with_rule, c.l)}
    with counting() as k:
        testbed.jacrev(c, x, executor=executor)
    assert k == {**_keyed("forward", s, c.n_outputs), **_keyed("reverse", rev, c.n_outputs)}
    if c.n_outputs > 1:
        return
    with counting() as k:  # finite differences: l + 1 or 2 l forward sweeps, nothing else
        testbed.fd_grad(c, x, scheme=scheme, executor=executor)
    assert k == _keyed("forward", s, c.l + 1 if scheme == "forward" else 2 * c.l)
    with counting() as k_hvp:
        testbed.hvp(c, x, v, executor=executor)
    with counting() as k_hess:
        testbed.hessian(c, x, executor=executor)
    assert k_hess == {key: c.l * n for key, n in k_hvp.items()}
    # an HVP is forward over reverse, fused: the forward and tangent sweeps over c, then every
    # reverse rule run (the live ones) together with its tangent, nothing else
    assert k_hvp == {**_keyed("forward", s), **_keyed("tangent", with_rule),
                     **_keyed("reverse", rev), **_keyed("reverse_tangent", rev)}


def test_counting_blocks_nest_and_close():
    c = testbed.trace(lambda x: testbed.sin(x[0]) * x[0], 1)
    x = np.array([0.5])
    with counting() as outer:
        c(x)
        with counting() as inner:
            c(x)
        testbed.grad(c)  # writes a circuit: no rule runs on numbers
    c(x)  # after the blocks: counted nowhere
    assert inner == {"forward:sin": 1, "forward:mul": 1}
    assert outer == {"forward:sin": 2, "forward:mul": 2}
