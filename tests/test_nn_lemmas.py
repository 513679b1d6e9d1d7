"""Each lemma against jax.vjp of its own one-line function.

Shapes are drawn by Hypothesis (m 1..8, n[k-1], n[k] 1..16) and embedded into fixed (8, 16) arrays
with zeros, so jax compiles each one-liner once: the zeros add exact zeros to every real entry, and
the real block of the jax result is compared.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import testbed.nn as nn
from testbed.nn.jaxref import JAX_ACTIVATIONS
from testbed.nn.strategies import assert_close

M, N = 8, 16


def _pad(arr, shape):
    out = np.zeros(shape)
    out[tuple(slice(0, s) for s in arr.shape)] = arr
    return out


@jax.jit
def _vjp_linear(W, b, a, cot):
    # the one-liner of Lemma 1: z = W a + b per example, rows are examples
    return jax.vjp(lambda W, b, a: a @ W.T + b, W, b, a)[1](cot)


_VJP_ACT = {name: jax.jit(lambda z, cot, f=f: jax.vjp(f, z)[1](cot)[0])
            for name, f in JAX_ACTIVATIONS.items()}


@jax.jit
def _grad_output(tau, y, weight):
    # the one-liner of Lemma 3: J(tau) = sum_i weight_i 1/2 ||y_i - tau_i||^2 with weight_i = 1/m
    return jax.grad(lambda t: 0.5 * jnp.sum(weight[:, None] * (y - t) ** 2))(tau)


@st.composite
def _shapes(draw):
    return draw(st.integers(1, M)), draw(st.integers(1, N)), draw(st.integers(1, N)), \
        draw(st.integers(0, 2**32 - 1))


@given(_shapes(), st.booleans())
def test_lemma1_equals_vjp_of_linear_layer(shape, one_example):
    m, n_in, n_out, seed = shape
    rng = np.random.default_rng(seed)
    W, b = rng.normal(size=(n_out, n_in)), rng.normal(size=n_out)
    a_prev, dJ_dz = rng.normal(size=(m, n_in)), rng.normal(size=(m, n_out))
    if one_example:
        a_prev, dJ_dz = a_prev[0], dJ_dz[0]
    dW, db, da = nn.lemma1(dJ_dz, a_prev, W)
    gW, gb, ga = _vjp_linear(_pad(W, (N, N)), _pad(b, (N,)), _pad(np.atleast_2d(a_prev), (M, N)),
                             _pad(np.atleast_2d(dJ_dz), (M, N)))
    assert_close(dW, np.asarray(gW)[:n_out, :n_in], "dJ/dW")
    assert_close(db, np.asarray(gb)[:n_out], "dJ/db")
    assert da.shape == a_prev.shape
    assert_close(da, np.asarray(ga)[:len(np.atleast_2d(a_prev)), :n_in].reshape(da.shape), "dJ/da")
    assert nn.lemma1(dJ_dz, a_prev, W, need_da_prev=False)[2] is None


@given(st.sampled_from(sorted(nn.ACTIVATIONS)), _shapes())
def test_lemma2_equals_vjp_of_activation(name, shape):
    m, _, n, seed = shape
    rng = np.random.default_rng(seed)
    z, dJ_da = rng.normal(scale=2.0, size=(m, n)), rng.normal(size=(m, n))
    dJ_dz = nn.lemma2(dJ_da, z, name)
    ref = _VJP_ACT[name](_pad(z, (M, N)), _pad(dJ_da, (M, N)))
    assert_close(dJ_dz, np.asarray(ref)[:m, :n], f"dJ/dz through {name}")


@given(_shapes(), st.booleans())
def test_lemma3_equals_grad_of_squared_error(shape, one_example):
    m, _, n_out, seed = shape
    rng = np.random.default_rng(seed)
    tau, y = rng.normal(size=(m, n_out)), rng.normal(size=(m, n_out))
    if one_example:  # the notes' form: dJ/dtau = -(y - tau), no 1/m
        tau, y, m = tau[0], y[0], 1
    weight = np.zeros(M)
    weight[:m] = 1.0 / m
    ref = _grad_output(_pad(np.atleast_2d(tau), (M, N)), _pad(np.atleast_2d(y), (M, N)), weight)
    got = nn.lemma3(y, tau)
    assert got.shape == tau.shape
    assert_close(got, np.asarray(ref)[:m, :n_out].reshape(tau.shape), "dJ/dtau")


def test_lemma_shape_errors_name_the_shapes():
    with pytest.raises(nn.NetworkShapeError, match=r"layer k=2.*\(3, 4\)"):
        nn.lemma1(np.ones((2, 3)), np.ones((2, 5)), np.ones((3, 4)), k=2)
    with pytest.raises(nn.NetworkShapeError, match=r"\(2, 3\).*\(2, 4\)"):
        nn.lemma2(np.ones((2, 3)), np.ones((2, 4)), "tanh")
    with pytest.raises(nn.NetworkShapeError, match=r"\(3,\).*\(2,\)"):
        nn.lemma3(np.ones(3), np.ones(2))
