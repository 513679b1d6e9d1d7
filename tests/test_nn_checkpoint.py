"""Backprop with checkpoints (testbed.nn.checkpoint): the plain gradients bit for bit, the same
as jax.grad of jax.checkpoint-wrapped layers, and clear errors for bad requests."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nn_support import problems
from support import assert_close

import testbed.nn as nn
from testbed.checkpoint import CheckpointError, forward_steps
from testbed.nn import checkpoint as NC

jax.config.update("jax_enable_x64", True)


@given(problems(max_depth=12, zero_init=False), st.sampled_from([1, 2, 3, 5, 20, "sqrt"]),
       st.booleans())
def test_checkpointed_backprop_is_plain_backprop_bit_for_bit(p, ck, need_dx):
    J0, g0 = nn.value_and_grad(p.net, p.x, p.y, need_dx=need_dx)
    J1, g1 = nn.value_and_grad(p.net, p.x, p.y, need_dx=need_dx, checkpoints=ck)
    assert J1 == J0
    assert g1.dW[0] is None and g1.db[0] is None
    for a, b in zip([*g0.dW[1:], *g0.db[1:]], [*g1.dW[1:], *g1.db[1:]], strict=True):
        assert a.shape == b.shape and np.array_equal(a, b)
    assert (g1.dx is None) == (g0.dx is None)
    if g0.dx is not None:
        assert g1.dx.shape == g0.dx.shape and np.array_equal(g1.dx, g0.dx)
    assert np.array_equal(g1.dz[-1], g0.dz[-1])
    assert all(d is None for d in g1.dz[:-1])  # the per-layer dJ/dz are what is not kept


@settings(max_examples=4)  # eager jax.grad through jax.checkpoint costs ~2 s an example
@given(problems(max_depth=10, zero_init=False, single=False), st.sampled_from([2, "sqrt"]))
def test_checkpointed_backprop_agrees_with_jax_checkpoint(p, ck):
    net = p.net
    sigma = nn.activations.get_activation(net.activation).jnp(jax)

    def hidden(a, Wk, bk):
        return sigma(a @ Wk.T + bk)

    def output(a, Wk, bk):
        return a @ Wk.T + bk

    def J(W, b, x, y):  # W, b as in Network: [None, W[1], ..., W[r]]
        a = x
        r = len(W) - 1
        for k in range(1, r + 1):
            a = jax.checkpoint(output if k == r else hidden)(a, W[k], b[k])
        d = y - a
        return 0.5 * jnp.sum(d * d) / x.shape[0]

    gW, gb = jax.grad(J, argnums=(0, 1))(net.W, net.b, p.x, p.y)
    _, g = nn.value_and_grad(net, p.x, p.y, checkpoints=ck)
    for ours, theirs in zip([*g.dW[1:], *g.db[1:]], [*gW[1:], *gb[1:]], strict=True):
        # BLAS and XLA sum the matmuls in different orders: the floor is the array's own scale
        assert_close(ours, np.asarray(theirs), None, what=f"checkpointed grad, {ck}")


def test_the_schedule_keeps_at_most_s_activations():
    rng = np.random.default_rng(0)
    net = nn.init_network([3] + [8] * 30 + [1], "tanh", "xavier_normal", rng)
    x, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 1))
    with np.errstate(over="ignore", invalid="ignore"):
        for s in (1, 2, 4, 8):
            *_, most, steps = NC.run(net, x, y, True, s)
            assert most <= s and steps == forward_steps(net.depth, s)
        # sqrt: every 6th of 31 layers stored (6 arrays), and one stretch of 6 recomputed; the
        # first pass computes r - 1 layers, the stretches all r once more: one extra forward pass
        *_, most, steps = NC.run(net, x, y, True, "sqrt")
        assert most <= 6 + 5 and steps == 30 + 31
        assert NC.loss_streaming(net, x, y) == nn.loss(net, x, y)


@pytest.mark.parametrize("bad, error", [(0, CheckpointError), (-1, CheckpointError),
                                        ("all", CheckpointError), (2.0, TypeError),
                                        (True, TypeError)])
def test_bad_checkpoints_are_refused(bad, error):
    rng = np.random.default_rng(0)
    net = nn.init_network([2, 4, 1], "relu", "he_normal", rng)
    with pytest.raises(error, match="checkpoints"):
        nn.value_and_grad(net, np.ones(2), 1.0, checkpoints=bad)


def test_an_overflow_is_named_as_plain_backprop_names_it():
    net = nn.Network([None, np.full((2, 2), 1e200), np.full((1, 2), 1e200)],
                     [None, np.zeros(2), np.zeros(1)], "identity")
    with pytest.raises(nn.errors.NetworkNonFiniteError) as plain:
        nn.value_and_grad(net, np.ones(2), 1.0)
    with pytest.raises(nn.errors.NetworkNonFiniteError) as ck:
        nn.value_and_grad(net, np.ones(2), 1.0, checkpoints=1)
    assert str(ck.value) == str(plain.value)
