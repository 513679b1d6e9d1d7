"""Each lemma against jax.vjp of its own one-line function, and each R-lemma against jax.jvp of that.

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
from support import assert_close

import testbed.nn as nn

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
            for name, f in ((name, act.jnp(jax)) for name, act in nn.ACTIVATIONS.items())}


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
    assert_close(dW, np.asarray(gW)[:n_out, :n_in], what="dJ/dW", scale=None)
    assert_close(db, np.asarray(gb)[:n_out], what="dJ/db", scale=None)
    assert da.shape == a_prev.shape
    ga = np.asarray(ga)[:len(np.atleast_2d(a_prev)), :n_in].reshape(da.shape)
    assert_close(da, ga, what="dJ/da", scale=None)
    assert nn.lemma1(dJ_dz, a_prev, W, need_da_prev=False)[2] is None


@given(st.sampled_from(sorted(nn.ACTIVATIONS)), _shapes())
def test_lemma2_equals_vjp_of_activation(name, shape):
    m, _, n, seed = shape
    rng = np.random.default_rng(seed)
    z, dJ_da = rng.normal(scale=2.0, size=(m, n)), rng.normal(size=(m, n))
    dJ_dz = nn.lemma2(dJ_da, z, name)
    ref = _VJP_ACT[name](_pad(z, (M, N)), _pad(dJ_da, (M, N)))
    assert_close(dJ_dz, np.asarray(ref)[:m, :n], what=f"dJ/dz through {name}", scale=None)


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
    assert_close(got, np.asarray(ref)[:m, :n_out].reshape(tau.shape), what="dJ/dtau", scale=None)


def test_lemma_shape_errors_name_the_shapes():
    with pytest.raises(nn.NetworkShapeError, match=r"layer k=2.*\(3, 4\)"):
        nn.lemma1(np.ones((2, 3)), np.ones((2, 5)), np.ones((3, 4)), k=2)
    with pytest.raises(nn.NetworkShapeError, match=r"\(2, 3\).*\(2, 4\)"):
        nn.lemma2(np.ones((2, 3)), np.ones((2, 4)), "tanh")
    with pytest.raises(nn.NetworkShapeError, match=r"\(3,\).*\(2,\)"):
        nn.lemma3(np.ones(3), np.ones(2))


# --- R of each lemma: against jax.jvp of the lemma, the lemma itself written as jax.vjp ----------
@jax.jit
def _jvp_of_lemma1(W, b, a, dz, VW, Ra, Rdz):
    return jax.jvp(lambda W, a, dz: _vjp_linear(W, b, a, dz), (W, a, dz), (VW, Ra, Rdz))[1]


_JVP_OF_LEMMA2 = {name: jax.jit(lambda z, da, Rz, Rda, lemma2=lemma2: jax.jvp(
    lemma2, (z, da), (Rz, Rda))[1]) for name, lemma2 in _VJP_ACT.items()}


@jax.jit
def _jvp_of_lemma3(tau, y, weight, Rtau):
    return jax.jvp(lambda t: _grad_output(t, y, weight), (tau,), (Rtau,))[1]


@given(_shapes(), st.booleans(), st.booleans())
def test_r_lemma1_equals_jvp_of_lemma1(shape, one_example, with_Ra):
    m, n_in, n_out, seed = shape
    rng = np.random.default_rng(seed)
    W, VW = rng.normal(size=(n_out, n_in)), rng.normal(size=(n_out, n_in))
    a, Ra = rng.normal(size=(m, n_in)), rng.normal(size=(m, n_in))
    dz, Rdz = rng.normal(size=(m, n_out)), rng.normal(size=(m, n_out))
    if one_example:
        a, Ra, dz, Rdz = a[0], Ra[0], dz[0], Rdz[0]
    if not with_Ra:  # R{a[0]} = 0 at k = 1 without an input direction: passed as None
        Ra = np.zeros_like(a)
    RdW, Rdb, Rda = nn.r_lemma1(dz, Rdz, a, Ra if with_Ra else None, W, VW)
    rows = len(np.atleast_2d(a))
    gW, gb, ga = _jvp_of_lemma1(_pad(W, (N, N)), np.zeros(N),
                               *(_pad(np.atleast_2d(q), (M, N)) for q in (a, dz)),
                               _pad(VW, (N, N)), *(_pad(np.atleast_2d(q), (M, N)) for q in (Ra, Rdz)))
    assert_close(RdW, np.asarray(gW)[:n_out, :n_in], what="R{dJ/dW}", scale=None)
    assert_close(Rdb, np.asarray(gb)[:n_out], what="R{dJ/db}", scale=None)
    assert_close(Rda, np.asarray(ga)[:rows, :n_in].reshape(Rda.shape), what="R{dJ/da}", scale=None)
    assert nn.r_lemma1(dz, Rdz, a, Ra, W, VW, need_da_prev=False)[2] is None


@given(st.sampled_from(sorted(nn.ACTIVATIONS)), _shapes())
def test_r_lemma2_equals_jvp_of_lemma2(name, shape):
    m, _, n, seed = shape
    rng = np.random.default_rng(seed)
    z, da, Rz, Rda = (rng.normal(scale=2.0, size=(m, n)) for _ in range(4))
    got = nn.r_lemma2(da, Rda, z, Rz, name)
    ref = _JVP_OF_LEMMA2[name](*(_pad(q, (M, N)) for q in (z, da, Rz, Rda)))
    assert_close(got, np.asarray(ref)[:m, :n], what=f"R{{dJ/dz}} through {name}", scale=None)


@given(_shapes(), st.booleans())
def test_r_lemma3_equals_jvp_of_lemma3(shape, one_example):
    m, _, n_out, seed = shape
    rng = np.random.default_rng(seed)
    tau, y, Rtau = (rng.normal(size=(m, n_out)) for _ in range(3))
    if one_example:
        tau, y, Rtau, m = tau[0], y[0], Rtau[0], 1
    weight = np.zeros(M)
    weight[:m] = 1.0 / m
    ref = _jvp_of_lemma3(*(_pad(np.atleast_2d(q), (M, N)) for q in (tau, y)), weight,
                         _pad(np.atleast_2d(Rtau), (M, N)))
    got = nn.r_lemma3(Rtau)
    assert got.shape == tau.shape
    assert_close(got, np.asarray(ref)[:m, :n_out].reshape(tau.shape), what="R{dJ/dtau}", scale=None)


def test_r_lemma_shape_errors_name_the_shapes():
    with pytest.raises(nn.NetworkShapeError, match=r"layer k=3: r_lemma1 needs R\{dJ/dz\} of shape "
                                                   r"\(2, 3\), got \(2, 4\)"):
        nn.r_lemma1(np.ones((2, 3)), np.ones((2, 4)), np.ones((2, 5)), None, np.ones((3, 5)),
                    np.ones((3, 5)), k=3)
    with pytest.raises(nn.NetworkShapeError, match=r"VW of shape \(3, 5\)"):
        nn.r_lemma1(np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 5)), None, np.ones((3, 5)),
                    np.ones((5, 3)))
    with pytest.raises(nn.NetworkShapeError, match=r"r_lemma2 .* \(2, 3\), \(2, 3\), \(2, 3\) and "
                                                   r"\(3, 2\)"):
        nn.r_lemma2(np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 3)), np.ones((3, 2)), "tanh")
