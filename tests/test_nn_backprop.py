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
        assert_close(g.dW[k], gW[k], what=f"dJ/dW[{k}]", scale=None)
        assert_close(g.db[k], gb[k], what=f"dJ/db[{k}]", scale=None)
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
    assert g.dW[0] is g.db[0] is gW[0] is gb[0] is None  # jax.grad keeps the unused slot 0
    for ours, ref in zip(g.dW[1:] + g.db[1:] + [g.dx], [*gW[1:], *gb[1:], gx], strict=True):
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
        z_k = cache.a[k - 1] @ p.net.W[k].T + p.net.b[k]
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
        assert_close(g.dW[k], np.mean([q.dW[k] for q in per], axis=0), what=f"dJ/dW[{k}]", scale=None)
        assert_close(g.db[k], np.mean([q.db[k] for q in per], axis=0), what=f"dJ/db[{k}]", scale=None)
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
        np.testing.assert_array_equal(g.db[k], g.dz[k].sum(axis=0))
        np.testing.assert_array_equal(g.da[k - 1], g.dz[k] @ p.net.W[k])
        if k < r:
            np.testing.assert_array_equal(g.dz[k], g.da[k] * act.dsigma(cache.z[k]))
    no_dx = nn.backward(p.net, cache, p.y, need_dx=False)
    assert no_dx.dx is None and no_dx.da[0] is None
    assert no_dx.dW[0] is None
    for k in range(1, r + 1):
        np.testing.assert_array_equal(no_dx.dW[k], g.dW[k])


@pytest.mark.parametrize("checkpoints", [None, 1, "sqrt"])
def test_every_per_layer_list_is_indexed_by_the_notes_k(checkpoints):
    """Slot k of W, b, dW, db, dz, HW, Hb is layer k = 1..r of the notes; slot 0 is None.

    g.dW[k] and g.db[k] are jax.grad with respect to W[k] and b[k], and g.dz[k] is dJ/dz[k]: the
    jax gradient with respect to a perturbation added to z[k] alone, for every k. a[0] is x and
    da[0] is dJ/dx.
    """
    p = make_problem([3, 5, 4, 2], "tanh", 4, seed=11)
    net, r = p.net, p.net.depth
    assert list(net.layers) == [1, 2, 3] and len(net.W) == len(net.b) == r + 1
    assert net.W[0] is None and net.b[0] is None
    assert [net.W[k].shape for k in net.layers] == [(5, 3), (4, 5), (2, 4)]
    J, g = nn.value_and_grad(net, p.x, p.y, checkpoints=checkpoints)
    assert g.dW[0] is None and g.db[0] is None and g.dz[0] is None
    assert len(g.dW) == len(g.db) == len(g.dz) == len(g.da) == r + 1

    sigma = nn.get_activation(net.activation).jnp(jax)
    x, y = jnp.asarray(p.x), jnp.asarray(p.y)

    def J_of(W1, W2, W3, b1, b2, b3, e1, e2, e3):  # the notes' layers written out, no lists
        z1 = x @ W1.T + b1 + e1
        z2 = sigma(z1) @ W2.T + b2 + e2
        z3 = sigma(z2) @ W3.T + b3 + e3
        return 0.5 * jnp.sum((y - z3) ** 2) / x.shape[0]

    zeros = [jnp.zeros((4, n)) for n in net.sizes[1:]]
    args = [*net.W[1:], *net.b[1:], *zeros]
    ref = jax.grad(J_of, argnums=tuple(range(9)))(*args)
    for k in net.layers:
        assert_close(g.dW[k], ref[k - 1], what=f"dJ/dW[{k}]", scale=None)
        assert_close(g.db[k], ref[2 + k], what=f"dJ/db[{k}]", scale=None)
        if checkpoints is None or k == r:  # checkpointing keeps dJ/dz at the output layer only
            assert_close(g.dz[k], ref[5 + k], what=f"dJ/dz[{k}]", scale=None)
        else:
            assert g.dz[k] is None
    if checkpoints is None:
        cache = nn.forward(net, p.x)
        np.testing.assert_array_equal(cache.a[0], p.x)
        np.testing.assert_array_equal(g.da[0], g.dx)

    V = nn.unflatten(np.arange(net.n_params, dtype=float), net)
    assert V[0][0] is None and V[1][0] is None and V[0][1].shape == net.W[1].shape
    HW, Hb = nn.hvp(net, p.x, p.y, V)
    assert HW[0] is None and Hb[0] is None
    assert [HW[k].shape for k in net.layers] == [net.W[k].shape for k in net.layers]
    assert nn.flatten(net)[:15].tolist() == net.W[1].ravel().tolist()  # theta starts with W[1]


def test_the_old_zero_based_layout_is_refused_with_a_clear_error():
    """Lists without the None slot 0 (the old layout, list[k-1] = layer k) raise NetworkLayoutError."""
    p = make_problem([3, 5, 2], "tanh", 4, seed=12)
    old_W, old_b = p.net.W[1:], p.net.b[1:]
    assert issubclass(nn.NetworkLayoutError, nn.NetworkShapeError)
    assert issubclass(nn.NetworkLayoutError, ValueError)
    with pytest.raises(nn.NetworkLayoutError, match=r"W\[0\] holds an array of shape \(5, 3\).*"
                                                    r"old 0-based layout.*\[None, \*W\]"):
        nn.Network(old_W, p.net.b, "tanh")
    with pytest.raises(nn.NetworkLayoutError, match=r"b\[0\] holds an array of shape \(5,\)"):
        nn.Network(p.net.W, old_b, "tanh")
    with pytest.raises(nn.NetworkLayoutError, match=r"W\[2\] is None, but only slot 0 is unused"):
        nn.Network([None, p.net.W[1], None], p.net.b, "tanh")
    with pytest.raises(nn.NetworkLayoutError, match=r"VW\[0\] holds an array"):
        nn.hvp(p.net, p.x, p.y, (p.VW[1:], p.Vb))
    with pytest.raises(nn.NetworkLayoutError, match=r"Vb\[0\] holds an array"):
        nn.r_pass(p.net, p.x, p.y, (p.VW, p.Vb[1:]))
    with pytest.raises(nn.NetworkLayoutError, match=r"W\[0\] holds an array"):
        nn.flatten((old_W, old_b))
    with pytest.raises(nn.NetworkLayoutError, match=r"W\[0\] holds an array"):
        nn.to_jax_loss(p.net)(old_W, old_b, jnp.asarray(p.x), jnp.asarray(p.y))
    nn.Network([None, *old_W], [None, *old_b], "tanh")  # the fix the message names
