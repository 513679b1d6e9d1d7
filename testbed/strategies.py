"""Hypothesis strategies for random circuits, points and directions: test your own AD with them.

    from hypothesis import given
    from testbed.strategies import circuits_with_points

    @given(circuits_with_points())
    def test_my_grad(cxv):
        c, x, v = cxv
        ...

Circuits are true DAGs (operands drawn among all earlier slots, so subexpressions are shared and
cotangents must accumulate), every primitive is reachable, several outputs are possible, and safe
domains hold by construction (`testbed.random_circuits`, whose docstring says how): at every point
of [-2, 2]^l (what `points` draws), in float64 as every executor computes it, every `log` argument
is >= 0.1, every `div` denominator y has |y| >= 0.1, every `exp` argument is <= 5 and every slot's
value (the nodes that domain repairs insert included) lies in [-1e3, 1e3].
Shrinking goes towards fewer inputs, fewer nodes and operands nearer the inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

try:
    from hypothesis import assume
    from hypothesis import strategies as st
except ImportError as e:  # pragma: no cover - the test extra installs it
    raise ImportError("testbed.strategies needs hypothesis: pip install 'testbed[test]'") from e

from . import primitives as P
from .circuit import Circuit
from .random_circuits import BOX, RATIONAL_OPS, SMOOTH_OPS, Builder  # noqa: F401 (re-exported)

#: every primitive, including step (relu's derivative)
ALL_OPS: tuple[str, ...] = P.OPS

_CONSTS = (0.5, 1.0, 2.0, -1.5, 3.0, 1e-3)


@st.composite
def circuits(draw: st.DrawFn, min_inputs: int = 1, max_inputs: int = 4, min_nodes: int = 1,
             max_nodes: int = 16, max_outputs: int = 1, ops: Sequence[str] = ALL_OPS,
             p_const: float = 0.1) -> Circuit:
    """A random circuit over l in [min_inputs, max_inputs] inputs with min..max_nodes drawn nodes
    (plus the few that domain repairs insert) and 1..max_outputs outputs, keeping the safe domains
    above on [-2, 2]^l."""
    l = draw(st.integers(min_inputs, max_inputs))
    n = draw(st.integers(min_nodes, max_nodes))
    b = Builder(l, rational=set(ops) <= RATIONAL_OPS)
    for _ in range(n):
        name = draw(st.sampled_from(list(ops)))
        args = []
        for pos in range(P.TABLE[name].arity):
            # constants only as a second operand: every node depends on the inputs, as in a trace
            if pos == 1 and draw(st.floats(0, 1)) < p_const:
                args.append(b.const(draw(st.sampled_from(_CONSTS))))
            else:
                # favour recent slots, so circuits get deep as well as wide
                back = draw(st.integers(1, len(b.op)))
                args.append(len(b.op) - back)
        b.apply(name, *args)
    op_slots = [i for i in range(l, len(b.op)) if b.op[i] > P.CONST]
    k = draw(st.integers(1, max_outputs))
    outs = [op_slots[-1]] + [draw(st.sampled_from(op_slots)) for _ in range(k - 1)]
    return b.circuit(outs)


def points(l: int, box: float = BOX) -> st.SearchStrategy[np.ndarray]:
    """Points of [-box, box]^l (the box the circuits' safe domains assume), 0.0 included."""
    # no subnormals: XLA on CPU flushes them to zero (FTZ), so JAX and IEEE numpy would disagree
    # at x = 5e-324 for reasons that have nothing to do with differentiation.
    return st.lists(st.floats(-box, box, allow_nan=False, allow_infinity=False,
                              allow_subnormal=False),
                    min_size=l, max_size=l).map(lambda v: np.array(v, dtype=np.float64))


def stays_normal(c: Circuit, X: object) -> bool:
    """True when no slot of c at X (a point or a batch) holds a subnormal value.

    `points` draws no subnormal inputs, but a product of two normal ones can underflow into the
    subnormals (0.5 * 2.2e-308), and XLA on CPU flushes such a result to zero while numpy keeps it:
    a `step` or a relu' after it then reads 1 in testbed and 0 in JAX. Continuous rules only move
    by less than 2.2e-308 there; the discontinuous ones read forward values only, so checking the
    forward slots is enough. `assume(stays_normal(c, X))` before comparing with JAX.
    """
    v = np.abs(c.slot_values(X))
    return not bool(np.any((v > 0.0) & (v < np.finfo(np.float64).tiny)))


def directions(l: int) -> st.SearchStrategy[np.ndarray]:
    """Tangent or cotangent directions in [-1, 1]^l."""
    return points(l, 1.0)


@st.composite
def circuits_with_points(draw: st.DrawFn, **kw: object) -> tuple[Circuit, np.ndarray, np.ndarray]:
    """(c, x, v): a circuit, a point and a direction of matching length; no slot of c at x is
    subnormal (`stays_normal`)."""
    c = draw(circuits(**kw))
    x = draw(points(c.l))
    assume(stays_normal(c, x))  # JAX is the usual reference: see stays_normal
    return c, x, draw(directions(c.l))
