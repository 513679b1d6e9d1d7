"""testbed.nn's curvature operators against jax.hessian and jax.jacobian of J(theta) over the flat
theta = (W[1].ravel(), b[1], ..., W[r].ravel(), b[r]); spectra against numpy.linalg.eigvalsh.

Hypothesis draws the seed (weights, data, targets) over a few fixed architectures, so that the JAX
references compile once per architecture. Operator entries are compared to 1e-10 relative to the
matrix's largest entry; Lanczos spectra (l products, rounding ~ l eps ||H||) to 1e-8 of the
spectral radius, the issue's bound.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import testbed.nn as nn
from testbed import curvature as cv
from testbed.nn.errors import NetworkShapeError

jax.config.update("jax_enable_x64", True)

# (sizes, activation, m): l = 54, 43, 61, 97 parameters
ARCHS = (((3, 5, 4, 2), "tanh", 6), ((4, 6, 1), "relu", 9), ((2, 4, 4, 3, 1), "sigmoid", 5),
         ((5, 8, 4, 1), "tanh", 3))


def _problem(arch: int, seed: int):
    sizes, act, m = ARCHS[arch]
    rng = np.random.default_rng(seed)
    net = nn.init_network(sizes, act, "xavier_normal", rng, bias_std=0.3)
    x = rng.standard_normal((m, sizes[0]))
    y = rng.standard_normal((m, sizes[-1]))
    return net, x, y



@functools.cache
def _refs(arch: int):
    # the network's jax twin in flat theta (its activation's jnp row: relu'(0) = 0 as in testbed)
    tau, J = nn.to_jax_flat(_problem(arch, 0)[0])
    return (jax.jit(jax.hessian(J)), jax.jit(jax.jacobian(tau)), jax.jit(jax.hessian(tau)))


archs_and_seeds = st.tuples(st.integers(0, len(ARCHS) - 1), st.integers(0, 2**32 - 1))


def _close(ours, ref, rtol=1e-10, scale=None):
    scale = max(np.abs(ref).max() if scale is None else scale, 1e-300)
    err = np.abs(ours - ref).max()
    assert err <= rtol * scale, f"max error {err:.3g} > {rtol} x {scale:.3g}"


def test_flatten_is_the_documented_order_and_unflatten_inverts_it():
    net, _, _ = _problem(2, 0)
    theta = nn.flatten(net)
    expected = np.concatenate([p for k in net.layers for p in (net.W[k].ravel(), net.b[k])])
    assert np.array_equal(theta, expected) and theta.shape == (net.n_params,)
    W, b = nn.unflatten(theta, net)
    assert W[0] is None and b[0] is None and len(W) == len(b) == net.depth + 1
    assert all(np.array_equal(u, v) for u, v in zip(W[1:] + b[1:], net.W[1:] + net.b[1:], strict=True))
    assert np.array_equal(nn.flatten((W, b)), theta)


@settings(max_examples=min(40, settings.default.max_examples))  # jax references are cached
@given(archs_and_seeds)
def test_hessian_operator_and_its_spectrum_agree_with_jax(case):
    net, x, y = _problem(*case)
    l = net.n_params
    H_jax = np.asarray(_refs(case[0])[0](jnp.asarray(nn.flatten(net)), x, y))
    H = nn.hessian_operator(net, x, y)
    assert H.shape == (l, l)
    _close(H @ np.eye(l), H_jax)
    ev = np.linalg.eigvalsh(H_jax)
    alpha, beta, _ = cv.lanczos(H, np.random.default_rng(case[1]).standard_normal(l), l)
    theta = np.sort(cv.tridiagonal_eigh(alpha, beta)[0])
    assert np.abs(theta - ev).max() <= 1e-8 * np.abs(ev).max()


@settings(max_examples=min(40, settings.default.max_examples))
@given(archs_and_seeds)
def test_gauss_newton_is_jt_j_over_m_psd_of_rank_at_most_m_nr_and_h_minus_g_is_the_residual_term(case):
    net, x, y = _problem(*case)
    l, m, nr = net.n_params, x.shape[0], net.sizes[-1]
    theta = jnp.asarray(nn.flatten(net))
    H_fn, jac_fn, tau_hess_fn = _refs(case[0])
    Jac = np.asarray(jac_fn(theta, x)).reshape(m * nr, l)  # rows J_i, example by example
    G_ref = Jac.T @ Jac / m
    G = nn.gauss_newton_operator(net, x, y) @ np.eye(l)
    _close(G, G_ref)
    ev = np.linalg.eigvalsh((G + G.T) / 2)
    assert ev.min() >= -1e-12 * ev.max()                         # PSD up to rounding
    assert np.all(ev[: l - m * nr] <= 1e-12 * ev.max())          # rank <= m n[r]
    # H = G + (1/m) sum_io (tau_io - y_io) d^2 tau_io / d theta^2
    tau = nn.forward(net, x).tau
    resid = np.einsum("io,iokl->kl", tau - y, np.asarray(tau_hess_fn(theta, x))) / m
    H = nn.hessian_operator(net, x, y) @ np.eye(l)
    _close(H - G, resid, scale=np.abs(H).max())  # H - G cancels: its error is relative to H's scale


@settings(max_examples=min(20, settings.default.max_examples))
@given(archs_and_seeds)
def test_top_eigenvalues_and_trace_of_the_network_operators(case):
    net, x, y = _problem(*case)
    l = net.n_params
    H_jax = np.asarray(_refs(case[0])[0](jnp.asarray(nn.flatten(net)), x, y))
    ev = np.linalg.eigvalsh(H_jax)
    rng = np.random.default_rng(case[1])
    for op, exact in ((nn.hessian_operator(net, x, y), ev),):
        vals, vecs = cv.top_eigenvalues(op, 2, rng=rng, tol=1e-12)
        assert np.abs(vals - exact[::-1][:2]).max() <= 1e-8 * np.abs(exact).max()
        assert vecs.shape == (l, 2)
    G = nn.gauss_newton_operator(net, x, y)
    rank = x.shape[0] * net.sizes[-1]
    est, se = cv.trace_estimate(G, 3 * rank + 3, "hutch++", rng=rng)  # rank <= m/3: exact
    trace = np.trace(G @ np.eye(l))
    assert abs(est - trace) <= 1e-10 * trace


def test_operators_are_frozen_at_the_parameters_they_were_built_at():
    net, x, y = _problem(0, 1)
    H = nn.hessian_operator(net, x, y)
    before = H @ np.ones(net.n_params)
    net.W[1][...] = 0.0  # a caller mutating its arrays afterwards
    assert np.array_equal(H @ np.ones(net.n_params), before)


def test_bad_input():
    net, x, y = _problem(0, 0)
    with pytest.raises(NetworkShapeError):
        nn.hessian_operator(net, x[:, :2], y)
    with pytest.raises(NetworkShapeError):
        nn.gauss_newton_operator(net, x, y[:-1])
    with pytest.raises(TypeError, match="Network"):
        nn.hessian_operator("net", x, y)
    H = nn.hessian_operator(net, x, y)
    with pytest.raises(ValueError):
        H @ np.ones(net.n_params + 1)
    with pytest.raises(NetworkShapeError):
        nn.unflatten(np.ones(3), net)


def test_flat_jax_twin_is_the_list_twin_on_the_same_parameters():
    net, x, y = _problem(0, 1)
    tau, J = nn.to_jax_flat(net)
    theta = jnp.asarray(nn.flatten(net))
    assert float(J(theta, x, y)) == float(nn.to_jax_loss(net)(net.W, net.b, x, y))
    assert np.array_equal(np.asarray(tau(theta, x)), np.asarray(nn.to_jax_forward(net)(net.W, net.b, x)))
    with pytest.raises(TypeError, match="Network"):
        nn.to_jax_flat("tanh")
