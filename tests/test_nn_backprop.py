"""Backprop against jax.grad of the same network written in jax.numpy (1e-10 relative)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import example, given
from nn_jaxref import PaddedReference
from nn_support import fewer_examples, make_problem, problems
from support import assert_close

import testbed.nn as nn


@given(problems())
@example(make_problem([3, 4, 4, 2], "relu", 5, seed=1, zero_init=True))  # every z exactly 0
@example(make_problem([1, 1], "identity", None, seed=2))  # the smallest network, one example
@example(make_problem([16] * 6 + [3], "sigmoid", 8, seed=3))  # the largest drawn
def test_gradients_equal_jax_grad(p):
    J, g = nn.value_and_grad(p.net, p.x, p.y)
    J_ref, gW, gb, gx = PaddedReference(p.net, p.x, p.y).value_and_grad()
    assert_close(J, J_ref, what="J", scale=None)
    for k in range(1, p.net.depth + 1):
        assert_close(g.dW[k - 1], gW[k - 1], what=f"dJ/dW[{k}]", scale=None)
        assert_close(g.db[k - 1], gb[k - 1], what=f"dJ/db[{k}]", scale=None)
    assert g.dx.shape == p.x.shape
    assert_close(g.dx, gx, what="dJ/dx", scale=None)


@pytest.mark.parametrize("activation", sorted(nn.ACTIVATIONS))
def test_plain_jax_twin_agrees(activation):
    """`to_jax_loss`, the unpadded jax.numpy network, gives the same J and gradients."""
    p = make_problem([3, 5, 4, 2], activation, 4, seed=7)
    J_jax = nn.to_jax_loss(p.net)
    value, (gW, gb, gx) = jax.jit(jax.value_and_grad(J_jax, argnums=(0, 1, 2)))(
        p.net.W, p.net.b, jnp.asarray(p.x), jnp.asarray(p.y))
    J, g = nn.value_and_grad(p.net, p.x, p.y)
    assert_close(J, value, what="J", scale=None)
    for ours, ref in zip(g.dW + g.db + [g.dx], [*gW, *gb, gx], strict=True):
        assert_close(ours, ref, what="gradient", scale=None)
    tau = nn.to_jax_forward(p.net)(p.net.W, p.net.b, jnp.asarray(p.x))
    assert_close(nn.forward(p.net, p.x).tau, tau, what="tau", scale=None)


@fewer_examples()
@given(problems(max_depth=3, max_width=6))
def test_forward_cache_layout_and_loss(p):
    cache = nn.forward(p.net, p.x)
    r = p.net.depth
    assert len(cache.z) == len(cache.a) == r + 1 and cache.z[0] is None
    assert cache.a[0].shape == (cache.m, p.net.sizes[0]) and cache.single == (p.x.ndim == 1)
    act = nn.get_activation(p.net.activation)
    for k in range(1, r + 1):
        z_k = cache.a[k - 1] @ p.net.W[k - 1].T + p.net.b[k - 1]
        np.testing.assert_array_equal(cache.z[k], z_k)
        np.testing.assert_array_equal(cache.a[k], act.sigma(z_k) if k < r else z_k)
    assert cache.tau is cache.z[r]
    d = p.y.reshape(cache.tau.shape) - cache.tau
    assert_close(nn.loss(p.net, p.x, p.y), 0.5 * np.sum(d * d) / cache.m, what="J", scale=None)
    assert nn.loss(p.net, p.x, p.y) == nn.value_and_grad(p.net, p.x, p.y)[0]


@given(problems(single=False))
def test_batch_gradient_is_the_mean_of_per_example_gradients(p):
    """J is the mean over rows, so its gradient is the mean of the one-example gradients."""
    _, g = nn.value_and_grad(p.net, p.x, p.y)
    per = [nn.value_and_grad(p.net, p.x[i], p.y[i])[1] for i in range(p.x.shape[0])]
    for k in range(1, p.net.depth + 1):
        assert_close(g.dW[k - 1], np.mean([q.dW[k - 1] for q in per], axis=0), what=f"dJ/dW[{k}]", scale=None)
        assert_close(g.db[k - 1], np.mean([q.db[k - 1] for q in per], axis=0), what=f"dJ/db[{k}]", scale=None)
    assert_close(g.dx, np.stack([q.dx for q in per]) / p.x.shape[0], what="dJ/dx", scale=None)


@fewer_examples()
@given(problems(max_depth=4, max_width=8))
def test_backward_exposes_the_per_layer_deltas(p):
    """dz[k], da[k] are the notes' intermediate quantities, linked by Lemmas 1 and 2."""
    cache = nn.forward(p.net, p.x)
    g = nn.backward(p.net, cache, p.y)
    r = p.net.depth
    act = nn.get_activation(p.net.activation)
    assert g.dz[0] is None and g.da[r] is g.dz[r]
    np.testing.assert_array_equal(g.da[0].reshape(p.x.shape), g.dx)
    for k in range(1, r + 1):
        assert g.dz[k].shape == g.da[k].shape == (cache.m, p.net.sizes[k])
        np.testing.assert_array_equal(g.db[k - 1], g.dz[k].sum(axis=0))
        np.testing.assert_array_equal(g.da[k - 1], g.dz[k] @ p.net.W[k - 1])
        if k < r:
            np.testing.assert_array_equal(g.dz[k], g.da[k] * act.dsigma(cache.z[k]))
    no_dx = nn.backward(p.net, cache, p.y, need_dx=False)
    assert no_dx.dx is None and no_dx.da[0] is None
    for k in range(r):
        np.testing.assert_array_equal(no_dx.dW[k], g.dW[k])
