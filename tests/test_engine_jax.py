"""The engine against JAX, to 1e-10 relative (with the floor explained in support.assert_close).

The same circuit is handed to JAX twice: literally, node by node (testbed.to_jax, eager), and as a
program for one compiled interpreter (tests/jaxref.py) that makes 200 examples per property cheap.
Every property runs 200 examples under the ci profile.
"""

import jax
import jax.numpy as jnp
import jaxref
import numpy as np
from hypothesis import example, given
from support import assert_close, scale_of

import testbed
from testbed.strategies import circuits, circuits_with_points, directions, points

jax.config.update("jax_enable_x64", True)

# Edge case pinned for every property: relu exactly at its kink, where relu'(0) = 0 (jax.nn.relu).
_KINK = (testbed.trace(lambda x: testbed.relu(x[0]) * x[1] + testbed.step(x[0]), 2),
         np.array([0.0, 1.5]), np.array([1.0, -1.0]))
# ...and exp at the largest argument the strategy allows (5), through a division.
_EXP = (testbed.trace(lambda x: testbed.exp(5.0 * testbed.sin(x[0])) / (x[1] * x[1] + 0.1), 2),
        np.array([np.pi / 2, 0.0]), np.array([0.5, 1.0]))


@given(circuits_with_points(max_outputs=3))
@example(_KINK)
@example(_EXP)
def test_value_and_grad_match_literal_to_jax(cxv):
    c, x, _ = cxv
    f = testbed.to_jax(c)
    assert_close(c(x), np.asarray(f(jnp.asarray(x))), scale_of((c, x)), what="value")
    assert_close(jaxref.value(c, x), np.asarray(f(jnp.asarray(x))), scale_of((c, x)),
                 what="interpreter vs literal")
    if c.n_outputs == 1:
        theirs = np.asarray(jax.grad(f)(jnp.asarray(x)))
        assert_close(testbed.value_and_grad(c, x)[1], theirs, scale_of((testbed.grad(c), x)),
                     what="grad vs literal jax.grad")


@given(circuits_with_points())
@example(_KINK)
@example(_EXP)
def test_grad_matches_jax(cxv):
    c, x, _ = cxv
    f, g = testbed.value_and_grad(c, x)
    G = testbed.grad(c)
    theirs = jaxref.grad(c, x)
    s = scale_of((G, x))
    assert_close(g, theirs, s, what="value_and_grad")
    assert_close(np.atleast_1d(G(x)), theirs, s, what="grad circuit")
    assert_close(f, c(x), s, what="value of value_and_grad")


@given(circuits_with_points(max_outputs=3))
@example(_KINK)
def test_jvp_matches_jax(cxv):
    c, x, v = cxv
    f, t = testbed.jvp(c, x, v)
    jf, jt = jaxref.jvp(c, x, v)
    s = scale_of((testbed.jvp_circuit(c), np.concatenate([x, v])))
    assert_close(f, jf, s, what="jvp primal")
    assert_close(t, jt, s, what="jvp tangent")


@given(circuits(max_outputs=3).flatmap(
    lambda c: points(c.l).flatmap(lambda x: directions(c.n_outputs).map(lambda u: (c, x, u)))))
def test_vjp_matches_jax(cxu):
    c, x, u = cxu
    f, g = testbed.vjp(c, x, u)
    # the floor: intermediate magnitudes of value and reverse sweep, u-weighted over the outputs
    s = max(scale_of((testbed.grad(testbed.Circuit(c.l, c.op, c.a0, c.a1, c.consts, [o])), x))
                     for o in c.outputs) * (1.0 + float(np.abs(u).sum()))
    assert_close(f, jaxref.value(c, x), scale_of((c, x)), what="vjp primal")
    assert_close(g, jaxref.vjp(c, x, u), s, what="vjp cotangent")


@given(circuits_with_points())
@example(_KINK)
@example(_EXP)
def test_hvp_matches_jax_forward_over_reverse(cxv):
    c, x, v = cxv
    s = scale_of((testbed.hvp_circuit(c), np.concatenate([x, v])))
    assert_close(testbed.hvp(c, x, v), jaxref.hvp(c, x, v), s, what="hvp")


@given(circuits_with_points())
@example(_KINK)
@example(_EXP)
def test_hessian_and_grad_of_grad_match_jax_hessian(cxv):
    c, x, _ = cxv
    theirs = jaxref.hessian(c, x)
    s = max(scale_of((testbed.hvp_circuit(c), np.concatenate([x, e])))
            for e in np.eye(c.l))
    assert_close(testbed.hessian(c, x), theirs, s, what="hessian (l HVPs)")
    # reverse mode over each output of the gradient circuit: row i of the Hessian, no extra code
    G = testbed.grad(c)
    for i in range(c.l):
        gi = testbed.Circuit(G.l, G.op, G.a0, G.a1, G.consts, [G.outputs[i]], G.level)
        s_i = max(s, scale_of((testbed.grad(gi), x)))
        assert_close(testbed.value_and_grad(gi, x)[1], theirs[i], s_i, what=f"grad(grad)[{i}]")
        assert_close(np.atleast_1d(testbed.grad(gi)(x)), theirs[i], s_i,
                     what=f"grad(grad) circuit [{i}]")
