"""jacfwd, jacrev and jacobian: the k x l Jacobian against jax.jacfwd / jax.jacrev on every
executor, their op counts, and the choice `jacobian` makes."""

import jaxref
import numpy as np
import pytest
from hypothesis import given
from support import EXECUTORS as ALL_EXECUTORS
from support import assert_close, scale_of

import testbed
from testbed.circuit import Tracer, trace
from testbed.costs import op_counts, total
from testbed.evaluate import reverse_seq
from testbed.strategies import circuits, circuits_with_points


@given(circuits_with_points(max_outputs=3))
def test_jacobians_match_jax(cxv):
    c, x, _ = cxv
    fwd, rev = jaxref.jacfwd(c, x), jaxref.jacrev(c, x)
    # the floor: magnitudes of the tangent sweep (jacfwd) and of each output's reverse sweep (jacrev)
    s = max(scale_of(*((testbed.jvp_circuit(c), np.concatenate([x, e])) for e in np.eye(c.l))),
            *(scale_of((testbed.grad(c.output(o)), x)) for o in range(c.n_outputs)))
    assert_close(fwd, rev, s, what="jax.jacfwd vs jax.jacrev")
    for executor in ALL_EXECUTORS:  # every executor on the same example and reference
        for f in (testbed.jacfwd, testbed.jacrev, testbed.jacobian):
            ours = f(c, x, executor)
            assert ours.shape == (c.n_outputs, c.l), (f.__name__, executor)
            assert_close(ours, fwd if f is not testbed.jacrev else rev, s,
                         what=f"{f.__name__}, {executor}")


def _vjp_circuit(c):
    """The circuit of (f(x), u^T J(x)) over inputs (x, u): the reverse sweep seeded with tracers."""
    from testbed.transforms import _forward_sym

    def backprop(zs):
        b = zs[0]._trace
        v = _forward_sym(c, zs[:c.l])
        adj = reverse_seq(c, v, zs[c.l:])
        return [a if a is not None else Tracer(b, b.const(0.0)) for a in adj[:c.l]]

    return trace(backprop, c.l + c.n_outputs)


@given(circuits(max_nodes=20, max_outputs=3))
def test_jacobian_op_counts(c):
    # a vjp costs what the circuit of (f, u^T J) writes; jacrev is k of them, jacfwd l jvps
    assert op_counts(c, "vjp") == dict(sorted(_vjp_circuit(c).counts().items()))
    k, l = c.n_outputs, c.l
    assert op_counts(c, "jacrev") == {n: k * m for n, m in op_counts(c, "vjp").items()}
    assert op_counts(c, "jacfwd") == dict(sorted(
        (n, l * m) for n, m in testbed.jvp_circuit(c).counts().items()))
    fwd, rev = total(op_counts(c, "jacfwd")), total(op_counts(c, "jacrev"))
    assert op_counts(c, "jacobian") == op_counts(c, "jacrev" if rev < fwd else "jacfwd")


def test_jacobian_picks_the_cheaper_mode():
    x = np.array([0.3, -0.2, 0.5, 0.1])
    many_in = testbed.trace(lambda x: testbed.sin(x[0] * x[1]) * x[2] + x[3], 4)  # l = 4, k = 1
    many_out = testbed.trace(lambda x: (testbed.sin(x[0]), x[0] * x[0], testbed.exp(x[0]),
                                        x[0] + 1.0), 1)  # l = 1, k = 4
    calls = []
    for c, point in ((many_in, x), (many_out, x[:1])):
        with testbed.evaluate.counting() as n:
            testbed.jacobian(c, point)
        calls.append("reverse" if any(key.startswith("reverse:") for key in n) else "forward")
    assert calls == ["reverse", "forward"]


def test_jacobians_refuse_a_batch_and_a_non_circuit():
    c = testbed.trace(lambda x: (x[0] * x[1], x[0] - x[1]), 2)
    for f in (testbed.jacfwd, testbed.jacrev, testbed.jacobian):
        with pytest.raises(testbed.ShapeError, match=r"one point of shape \(2,\)"):
            f(c, np.ones((3, 2)))
        with pytest.raises(TypeError, match="needs a testbed Circuit"):
            f("c", np.ones(2))
