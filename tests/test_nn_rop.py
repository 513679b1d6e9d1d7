"""Pearlmutter's R-operator HVP against jax.jvp(jax.grad(J)) (1e-10 relative) and H's symmetry."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import example, given

import testbed.nn as nn
from testbed.nn.jaxref import PaddedReference
from testbed.nn.strategies import assert_close, fewer_examples, make_problem, problems


@given(problems())
@example(make_problem([3, 4, 4, 2], "relu", 5, seed=1, zero_init=True))
@example(make_problem([2, 3, 1], "tanh", None, seed=4))
@example(make_problem([16] * 6 + [3], "sigmoid", 8, seed=3))
def test_hvp_equals_jax_jvp_of_grad(p):
    HW, Hb = nn.hvp(p.net, p.x, p.y, (p.VW, p.Vb))
    rW, rb, _ = PaddedReference(p.net, p.x, p.y).hvp(p.VW, p.Vb)
    for k in range(1, p.net.depth + 1):
        assert_close(HW[k - 1], rW[k - 1], f"(HV)_W[{k}]")
        assert_close(Hb[k - 1], rb[k - 1], f"(HV)_b[{k}]")


@given(problems(max_depth=4, max_width=8))
def test_hvp_with_an_input_direction_equals_jax(p):
    """H of J(theta, x) jointly, applied to (V, vx): every block, the x-block included."""
    out = nn.r_pass(p.net, p.x, p.y, (p.VW, p.Vb), vx=p.vx, need_hx=True, need_grad=True)
    ref = PaddedReference(p.net, p.x, p.y)
    rW, rb, rx = ref.hvp(p.VW, p.Vb, p.vx)
    for k in range(1, p.net.depth + 1):
        assert_close(out.HW[k - 1], rW[k - 1], f"(HV)_W[{k}]")
        assert_close(out.Hb[k - 1], rb[k - 1], f"(HV)_b[{k}]")
    assert out.Hx.shape == p.x.shape
    assert_close(out.Hx, rx, "(HV)_x")
    # the gradient that comes with it is backprop's (not bit for bit: with vx the R-pass computes
    # z[k] within a matmul of 2m rows, which BLAS may sum in another order than backprop's m rows)
    J, g = nn.value_and_grad(p.net, p.x, p.y)
    assert_close(out.J, J, "J")
    for ours, ref_g in zip(out.grads.dW + out.grads.db + [out.grads.dx], g.dW + g.db + [g.dx],
                           strict=True):
        assert_close(ours, ref_g, "gradient")
    HW, Hb, Hx = nn.hvp_x(p.net, p.x, p.y, (p.VW, p.Vb), p.vx)
    assert_close(Hx, out.Hx, "hvp_x", rtol=0.0)


@given(problems(max_depth=4, max_width=8))
def test_hessian_is_symmetric_and_hvp_linear(p):
    """<U, H V> = <V, H U> and H (2V + U) = 2 HV + HU, with U a second seeded direction."""
    rng = np.random.default_rng(p.seed + 1)
    U = ([rng.normal(size=w.shape) for w in p.net.W], [rng.normal(size=v.shape) for v in p.net.b])
    V = (p.VW, p.Vb)
    HV = nn.hvp(p.net, p.x, p.y, V)
    HU = nn.hvp(p.net, p.x, p.y, U)

    def flat(pair):
        return np.concatenate([q.ravel() for part in pair for q in part])

    uHv, vHu = flat(U) @ flat(HV), flat(V) @ flat(HU)
    # both sides are sums of l products whose rounding error is relative to sum |terms|
    scale = np.abs(flat(U)) @ np.abs(flat(HV)) + np.abs(flat(V)) @ np.abs(flat(HU))
    assert abs(uHv - vHu) <= 1e-10 * scale
    mix = ([2 * a + c for a, c in zip(V[0], U[0], strict=True)],
           [2 * a + c for a, c in zip(V[1], U[1], strict=True)])
    assert_close(flat(nn.hvp(p.net, p.x, p.y, mix)), 2 * flat(HV) + flat(HU), "linearity")


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
    for ours, ref in zip(HW + Hb, [*rW, *rb], strict=True):
        assert_close(ours, ref, "HV")


@fewer_examples()
@given(problems(max_depth=3, max_width=8))
def test_hvp_out_buffers(p):
    HW, Hb = nn.hvp(p.net, p.x, p.y, (p.VW, p.Vb))
    out = ([np.full_like(w, np.nan) for w in p.net.W], [np.full_like(v, np.nan) for v in p.net.b])
    HW2, Hb2 = nn.hvp(p.net, p.x, p.y, (p.VW, p.Vb), out=out)
    for k in range(p.net.depth):
        assert HW2[k] is out[0][k] and Hb2[k] is out[1][k]
        np.testing.assert_array_equal(HW2[k], HW[k])
        np.testing.assert_array_equal(Hb2[k], Hb[k])
    with pytest.raises(nn.NetworkShapeError, match="out"):
        nn.hvp(p.net, p.x, p.y, (p.VW, p.Vb), out=(out[0][:-1], out[1]))
