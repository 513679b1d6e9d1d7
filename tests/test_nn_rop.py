"""Pearlmutter's R-operator HVP against jax.jvp(jax.grad(J)) (1e-10 relative) and H's symmetry."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from nn_jaxref import PaddedReference
from nn_support import make_problem, problems, r_pass_by_lemmas
from support import assert_close

import testbed.nn as nn


@given(problems())
@example(make_problem([3, 4, 4, 2], "relu", 5, seed=1, zero_init=True))
@example(make_problem([2, 3, 1], "tanh", None, seed=4))
@example(make_problem([16] * 6 + [3], "sigmoid", 8, seed=3))
def test_hvp_equals_jax_jvp_of_grad(p):
    HW, Hb = nn.hvp(p.net, p.x, p.y, (p.VW, p.Vb))
    rW, rb, _ = PaddedReference(p.net, p.x, p.y).hvp(p.VW, p.Vb)
    assert HW[0] is None and Hb[0] is None
    for k in p.net.layers:
        assert_close(HW[k], rW[k], what=f"(HV)_W[{k}]", scale=None)
        assert_close(Hb[k], rb[k], what=f"(HV)_b[{k}]", scale=None)


@given(problems(max_depth=4, max_width=8))
def test_hvp_with_an_input_direction_equals_jax(p):
    """H of J(theta, x) jointly, applied to (V, vx): every block, the x-block included."""
    out = nn.r_pass(p.net, p.x, p.y, (p.VW, p.Vb), vx=p.vx, need_hx=True, need_grad=True)
    ref = PaddedReference(p.net, p.x, p.y)
    rW, rb, rx = ref.hvp(p.VW, p.Vb, p.vx)
    for k in p.net.layers:
        assert_close(out.HW[k], rW[k], what=f"(HV)_W[{k}]", scale=None)
        assert_close(out.Hb[k], rb[k], what=f"(HV)_b[{k}]", scale=None)
    assert out.Hx.shape == p.x.shape
    assert_close(out.Hx, rx, what="(HV)_x", scale=None)
    # the gradient that comes with it is backprop's (not bit for bit: with vx the R-pass computes
    # z[k] within a matmul of 2m rows, which BLAS may sum in another order than backprop's m rows)
    J, g = nn.value_and_grad(p.net, p.x, p.y)
    assert_close(out.J, J, what="J", scale=None)
    assert out.grads.dW[0] is None and out.grads.db[0] is None
    for ours, ref_g in zip(out.grads.dW[1:] + out.grads.db[1:] + [out.grads.dx],
                           g.dW[1:] + g.db[1:] + [g.dx], strict=True):
        assert_close(ours, ref_g, what="gradient", scale=None)
    HW, Hb, Hx = nn.hvp_x(p.net, p.x, p.y, (p.VW, p.Vb), p.vx)
    assert_close(Hx, out.Hx, what="hvp_x", scale=None, rtol=0.0)


@given(problems(max_depth=4, max_width=8))
def test_hessian_is_symmetric_and_hvp_linear(p):
    """<U, H V> = <V, H U> and H (2V + U) = 2 HV + HU, with U a second seeded direction."""
    rng = np.random.default_rng(p.seed + 1)
    U = ([None] + [rng.normal(size=p.net.W[k].shape) for k in p.net.layers],
         [None] + [rng.normal(size=p.net.b[k].shape) for k in p.net.layers])
    V = (p.VW, p.Vb)
    HV = nn.hvp(p.net, p.x, p.y, V)
    HU = nn.hvp(p.net, p.x, p.y, U)

    def flat(pair):
        return np.concatenate([q.ravel() for part in pair for q in part[1:]])

    uHv, vHu = flat(U) @ flat(HV), flat(V) @ flat(HU)
    # both sides are sums of l products whose rounding error is relative to sum |terms|
    scale = np.abs(flat(U)) @ np.abs(flat(HV)) + np.abs(flat(V)) @ np.abs(flat(HU))
    assert abs(uHv - vHu) <= 1e-10 * scale
    mix = ([None] + [2 * a + c for a, c in zip(V[0][1:], U[0][1:], strict=True)],
           [None] + [2 * a + c for a, c in zip(V[1][1:], U[1][1:], strict=True)])
    assert_close(flat(nn.hvp(p.net, p.x, p.y, mix)), 2 * flat(HV) + flat(HU), what="linearity", scale=None)


@pytest.mark.parametrize("activation", sorted(nn.ACTIVATIONS))
def test_plain_jax_twin_hvp_agrees(activation):
    p = make_problem([3, 5, 4, 2], activation, 4, seed=8)
    J_jax = nn.to_jax_loss(p.net)
    x, y = jnp.asarray(p.x), jnp.asarray(p.y)

    @jax.jit
    def jvp_of_grad(W, b, VW, Vb):
        return jax.jvp(lambda W, b: jax.grad(J_jax, argnums=(0, 1))(W, b, x, y),
                       (W, b), (VW, Vb))[1]

    rW, rb = jvp_of_grad(p.net.W, p.net.b, p.VW, p.Vb)
    HW, Hb = nn.hvp(p.net, p.x, p.y, (p.VW, p.Vb))
    assert rW[0] is None and rb[0] is None  # jax keeps the unused slot 0
    for ours, ref in zip(HW[1:] + Hb[1:], [*rW[1:], *rb[1:]], strict=True):
        assert_close(ours, ref, what="HV", scale=None)


@given(problems(), st.booleans())
@example(make_problem([3, 4, 4, 2], "relu", 5, seed=1, zero_init=True), True)
@example(make_problem([2, 3, 1], "tanh", None, seed=4), False)
def test_fused_r_pass_equals_the_r_lemmas_composed(p, with_vx):
    """r_pass (the fast path hvp and the benchmark use) = r_lemma1..3 applied line by line.

    Equal to rounding: both sum the same products, but the fused pass sums quantity and R{.} rows
    in one matmul of 2m rows where the composition adds two matmuls of m rows, so the order (not
    the terms) of the floating-point sums differs. The bound is 1e-13 of the largest sum of
    |terms| (`r_pass_by_lemmas`' scale): relative to the result itself, a sum that cancels to
    nearly 0 would show the same rounding as an arbitrarily large relative error.
    """
    x2 = np.atleast_2d(p.x)
    vx = p.vx.reshape(x2.shape) if with_vx else None
    out = nn.r_pass(p.net, x2, p.y.reshape(x2.shape[0], -1), (p.VW, p.Vb), vx=vx, need_hx=True)
    HW, Hb, Hx, scale = r_pass_by_lemmas(p.net, x2, p.y, p.VW, p.Vb, vx)
    for k in p.net.layers:
        assert_close(out.HW[k], HW[k], scale, 1e-13, f"R{{dJ/dW[{k}]}}")
        assert_close(out.Hb[k], Hb[k], scale, 1e-13, f"R{{dJ/db[{k}]}}")
    assert_close(out.Hx, Hx, scale, 1e-13, "R{dJ/dx}")
