"""Three-way check on tiny networks: numpy backprop and R-pass, jax, and the circuit engine.

The engine gets J(theta) written with scalar + and * (testbed.nn.engine_twin) and differentiates it by
its own primitive rules, so agreement of all three is evidence independent of any one of them.
"""

import numpy as np
from hypothesis import example, given
from nn_jaxref import PaddedReference
from nn_support import make_problem, problems
from support import assert_close

import testbed
import testbed.nn as nn


def _flat(W, b):
    """theta's order from lists in the Network's layout [None, X[1], ..., X[r]]."""
    assert W[0] is None and b[0] is None
    return np.concatenate([q.ravel() for Wk, bk in zip(W[1:], b[1:], strict=True) for q in (Wk, bk)])


@given(problems(max_depth=3, max_width=3, max_outputs=2, max_batch=2))
@example(make_problem([2, 2, 1], "relu", 2, seed=1, zero_init=True))
def test_three_way_gradient_and_hvp(p):
    circuit, theta = nn.trace_loss(p.net, p.x, p.y)
    np.testing.assert_array_equal(theta, nn.ravel_params(p.net))
    v = _flat(p.VW, p.Vb)

    J_c, g_c = testbed.value_and_grad(circuit, theta)
    Hv_c = testbed.hvp(circuit, theta, v)

    J, g = nn.value_and_grad(p.net, p.x, p.y)
    HW, Hb = nn.hvp(p.net, p.x, p.y, (p.VW, p.Vb))
    ref = PaddedReference(p.net, p.x, p.y)
    J_j, gW_j, gb_j, _ = ref.value_and_grad()
    hW_j, hb_j, _ = ref.hvp(p.VW, p.Vb)

    assert_close(J_c, J, what="J circuit vs numpy", scale=None)
    assert_close(J_j, J, what="J jax vs numpy", scale=None)
    assert_close(g_c, _flat(g.dW, g.db), what="gradient circuit vs numpy", scale=None)
    assert_close(_flat(gW_j, gb_j), _flat(g.dW, g.db), what="gradient jax vs numpy", scale=None)
    assert_close(Hv_c, _flat(HW, Hb), what="HV circuit vs numpy", scale=None)
    assert_close(_flat(hW_j, hb_j), _flat(HW, Hb), what="HV jax vs numpy", scale=None)


def test_trace_round_trips_theta():
    p = make_problem([2, 3, 2], "tanh", 2, seed=5)
    theta = nn.ravel_params(p.net)
    W, b = nn.unravel_params(theta, p.net.sizes)
    assert W[0] is None and b[0] is None and len(W) == p.net.depth + 1
    for k in p.net.layers:
        np.testing.assert_array_equal(W[k], p.net.W[k])
        np.testing.assert_array_equal(b[k], p.net.b[k])
    circuit, _ = nn.trace_loss(p.net, p.x, p.y)
    assert_close(circuit(theta), nn.loss(p.net, p.x, p.y), what="J", scale=None)
    assert circuit.size > 0 and circuit.l == p.net.n_params
