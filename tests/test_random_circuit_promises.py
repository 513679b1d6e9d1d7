"""The promise of testbed.random_circuits and testbed.strategies, checked on the engine's values.

At every point of [-2, 2]^l, for every circuit either generator builds: every `div` denominator y
has |y| >= DELTA = 0.1, every `log` argument is >= 0.1, every `exp` argument is <= 5 and every
slot's value (the repair nodes included) lies in [-1e3, 1e3]. The values are the forward sweep's
own (`testbed.evaluate.forward_values`, every slot at once), at the box's corners, its centre, points
on its faces and uniform points inside, each circuit seeded through an explicit Generator.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed import primitives as P
from testbed.errors import TestbedError
from testbed.evaluate import forward_values
from testbed.random_circuits import (
    BOX,
    DEFAULT_OPS,
    DELTA,
    EXP_MAX,
    RATIONAL_OPS,
    SMOOTH_OPS,
    Builder,
    M,
    random_circuit,
)
from testbed.strategies import ALL_OPS, circuits, points

_OPS = {"default": DEFAULT_OPS, "rational": tuple(sorted(RATIONAL_OPS)), "smooth": SMOOTH_OPS,
        "all": ALL_OPS}
# the sequential executor on a batch evaluates numpy rows (the numpy implementations, as the
# vectorised one); "auto" is the compiled one where numba is installed (the `math` ones)
_EXECUTORS = ("auto", "vectorised", "sequential")
# each example draws several circuits: at least 1200 seeded ones in every profile (12 per example
# in the ci profile's 100) and 200 from the strategy (100 examples: drawing a circuit through
# Hypothesis costs ~10x building one)
_CIRCUITS_PER_EXAMPLE = max(6, -(-1200 // settings.default.max_examples))
_STRATEGY_CIRCUITS_PER_EXAMPLE = 2
_STRATEGY_EXAMPLES = min(100, settings.default.max_examples)


def _domain_points(rng: np.random.Generator, l: int, n: int = 48) -> np.ndarray:
    """(B, l) points of [-BOX, BOX]^l: every corner (at most 64 of them), the centre, n points on
    the faces (one coordinate at +-BOX) and n uniform points."""
    m = np.arange(2 ** l) if l <= 6 else rng.integers(0, 2 ** l, 64)
    corners = np.where((m[:, None] >> np.arange(l)) & 1, BOX, -BOX)
    faces = rng.uniform(-BOX, BOX, (n, l))
    faces[np.arange(n), rng.integers(0, l, n)] = rng.choice((-BOX, BOX), n)
    return np.vstack([corners, np.zeros((1, l)), faces, rng.uniform(-BOX, BOX, (n, l))])


def _broken_promises(c, X: np.ndarray, executor: str = "auto") -> list[str]:
    """What the promise says and the values at X do not keep, one line per kind (empty: kept)."""
    V = forward_values(c, X, executor)  # (n_slots, B): every slot at every point, no recursion
    op = np.asarray(c.op)
    out = []
    for what, slots, bad in (
            ("div denominator |y| < DELTA", c.a1[op == P.DIV.code], lambda v: np.abs(v) < DELTA),
            ("log argument < DELTA", c.a0[op == P.LOG.code], lambda v: v < DELTA),
            ("exp argument > EXP_MAX", c.a0[op == P.EXP.code], lambda v: v > EXP_MAX),
            ("|value| > M", np.arange(c.n_slots), lambda v: np.abs(v) > M)):
        hit = bad(V[slots])
        if hit.any():
            s, b = np.argwhere(hit)[0]
            out.append(f"{what}: slot {int(slots[s])} = {V[slots[s], b]!r} at x = {X[b].tolist()}")
    return out


@given(st.integers(0, 2 ** 32 - 1), st.integers(1, 80), st.integers(1, 5),
       st.sampled_from(["wide", "deep"]), st.sampled_from(sorted(_OPS)),
       st.sampled_from([0.0, 0.02, 0.3]), st.integers(1, 3), st.booleans(),
       st.sampled_from(_EXECUTORS))
def test_random_circuits_keep_the_promise(seed, N, l, family, ops, p_const, n_outputs, live,
                                          executor):
    for m in range(_CIRCUITS_PER_EXAMPLE):
        c = random_circuit(np.random.default_rng([seed, m]), N, l, family, ops=_OPS[ops],
                           n_outputs=n_outputs, p_const=p_const, live=live)
        X = _domain_points(np.random.default_rng([seed, m, 1]), l)
        broken = _broken_promises(c, X, executor)
        assert not broken, (f"random_circuit(default_rng([{seed}, {m}]), {N}, {l}, {family!r}, "
                            f"ops={ops}, p_const={p_const}) ({executor}): {broken}")


@st.composite
def _strategy_circuits(draw: st.DrawFn) -> tuple[str, list]:
    ops = draw(st.sampled_from(sorted(_OPS)))
    cs = draw(st.lists(circuits(max_inputs=5, max_nodes=16, max_outputs=2, ops=_OPS[ops],
                                p_const=draw(st.sampled_from([0.1, 0.5]))),
                       min_size=_STRATEGY_CIRCUITS_PER_EXAMPLE,
                       max_size=_STRATEGY_CIRCUITS_PER_EXAMPLE))
    return ops, cs


@settings(max_examples=_STRATEGY_EXAMPLES)
@given(_strategy_circuits(), st.integers(0, 2 ** 32 - 1), st.sampled_from(_EXECUTORS), st.data())
def test_strategy_circuits_keep_the_promise(ops_cs, seed, executor, data):
    ops, cs = ops_cs
    for m, c in enumerate(cs):
        # the strategy's own points too: 0.0, -0.0, the box's ends and what Hypothesis favours
        extra = np.array(data.draw(st.lists(points(c.l), min_size=1, max_size=4)))
        X = np.vstack([_domain_points(np.random.default_rng([seed, m]), c.l), extra])
        broken = _broken_promises(c, X, executor)
        assert not broken, f"strategies.circuits(ops={ops}) #{m} ({executor}): {broken}\n{c!r}"


@pytest.mark.parametrize("N, family", [(2000, "wide"), (3000, "deep")])
@pytest.mark.parametrize("ops", sorted(_OPS))
def test_larger_random_circuits_keep_the_promise(N, family, ops):
    for seed in range(2):
        c = random_circuit(np.random.default_rng(seed), N, 3, family, ops=_OPS[ops])
        broken = _broken_promises(c, _domain_points(np.random.default_rng(seed + 100), 3, n=200))
        assert not broken, f"random_circuit(default_rng({seed}), {N}, 3, {family!r}, ops={ops}): {broken}"


# --- regressions: cases the interval check used to miss --------------------------------------------


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_denominator_interval_off_zero_but_within_delta_is_repaired(sign):
    # y = +-exp(x - 3) on x in [-2, 2] has the interval +-[e^-5, e^-1] = +-[0.0067, 0.37]: it does
    # not contain 0 and is not inside (-DELTA, DELTA), which is all the old check looked at, so
    # x / y was emitted unrepaired and |y| = 0.0067 at x = -2
    b = Builder(1)
    y = b.apply("exp", b.apply("sub", 0, b.const(3.0)))
    if sign < 0:
        y = b.apply("neg", y)
    lo, hi = b.iv[y]
    assert sign * np.exp(-5.0) == pytest.approx(lo if sign > 0 else hi)
    assert sign * np.exp(-1.0) == pytest.approx(hi if sign > 0 else lo)
    q = b.apply("div", 0, y)
    den = b.a1[q]
    assert den != y and (b.iv[den][0] >= DELTA or b.iv[den][1] <= -DELTA)
    c = b.circuit([q])
    broken = _broken_promises(c, np.array([[-2.0], [0.0], [2.0]]))
    assert not broken, f"{broken}\n{c!r}"


@pytest.mark.parametrize("seed, N, l, family, ops", [
    (29, 10, 1, "wide", "default"),     # y = exp(.) in [0.018, 54.6] unrepaired: y = 0.018 reached
    (296, 10, 2, "deep", "default"),    # y = tanh(.) in [0.018, 1]
    (108, 20, 1, "wide", "default"),    # y = sigmoid(.) in [2e-24, 0.67]: x / y ~ 1e23
    (3, 20, 3, "deep", "rational"),     # the squash's j * j + 1 (up to M^2 + 1) drawn later: 1.9e9
    (14, 500, 3, "wide", "rational"),   # ... squared again and again until it overflowed
])
def test_seeded_circuits_that_broke_the_promise(seed, N, l, family, ops):
    c = random_circuit(np.random.default_rng(seed), N, l, family, ops=_OPS[ops])
    for executor in _EXECUTORS:
        broken = _broken_promises(c, _domain_points(np.random.default_rng(seed), l, n=200), executor)
        assert not broken, f"{executor}: {broken}"


def test_constants_outside_the_value_bound_are_refused():
    b = Builder(1)
    for bad in (2 * M, -2 * M, float("nan"), float("inf")):
        with pytest.raises(TestbedError, match="constants must lie in"):
            b.const(bad)
    assert b.iv[b.const(M)] == (M, M)


@settings(max_examples=min(50, settings.default.max_examples))
@given(st.integers(1, 3), st.booleans(),
       st.lists(st.tuples(st.sampled_from(ALL_OPS), st.floats(0, 1, exclude_max=True),
                          st.floats(0, 1, exclude_max=True)), min_size=1, max_size=40))
def test_builder_apply_alone_keeps_the_promise(l, rational, steps):
    # Builder.apply on any earlier slots, repair nodes included (what both generators are made
    # of), with either kind of repair whatever the primitives
    b = Builder(l, rational=rational)
    for name, u, w in steps:
        n = len(b.op)
        b.apply(name, int(u * n), int(w * n)) if P.TABLE[name].arity == 2 else b.apply(name, int(u * n))
    c = b.circuit([len(b.op) - 1])
    broken = _broken_promises(c, _domain_points(np.random.default_rng(l), l))
    assert not broken, f"{broken}\n{c!r}"
