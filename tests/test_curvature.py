"""testbed.curvature against exact eigendecompositions: numpy.linalg.eigvalsh of dense matrices and
of jax.hessian on circuits; Gauss quadrature's exactness; Hutchinson over every sign vector; bad input.

Tolerances: Lanczos' Ritz values, built from l products and l^2 inner products, carry rounding of
order l eps ||A||; 1e-8 of the spectral radius (the issue's bound) leaves a wide margin. Exact
identities (quadrature moments, estimator averages) are checked to 1e-10 relative to their scale.
"""

import itertools

import jax
import jax.numpy as jnp
import jaxref
import numpy as np
import pytest
import scipy.sparse.linalg as spla
from hypothesis import example, given, settings
from hypothesis import strategies as st
from support import scale_of

import testbed
from testbed import curvature as cv
from testbed.errors import NonFiniteError, ShapeError, TestbedError
from testbed.strategies import circuits_with_points

SPECTRA = ("distinct", "repeated", "low_rank", "indefinite", "gapped")


def make_matrix(l: int, kind: str, seed: int) -> np.ndarray:
    """A = U diag(lambda) U^T with Haar-random U and a spectrum of the given kind."""
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((l, l)))
    if kind == "distinct":
        lam = rng.uniform(0.1, 3.0, l)
    elif kind == "repeated":  # three eigenvalues, each repeated: Krylov spaces break down early
        lam = rng.choice([-1.0, 0.5, 2.0], size=l)
    elif kind == "low_rank":
        lam = np.zeros(l)
        lam[: max(1, l // 5)] = rng.uniform(1.0, 5.0, max(1, l // 5))
    elif kind == "indefinite":
        lam = rng.standard_normal(l) * 10.0 ** rng.uniform(-2, 2, l)
    else:  # "gapped": one outlier at 1, the rest in [-0.5, 0.5]
        lam = rng.uniform(-0.5, 0.5, l)
        lam[0] = 1.0
    return (U * lam) @ U.T


@st.composite
def matrices(draw, min_l: int = 1, max_l: int = 40, kinds=SPECTRA):
    l = draw(st.integers(min_l, max_l))
    kind = draw(st.sampled_from(kinds))
    seed = draw(st.integers(0, 2**32 - 1))
    A = make_matrix(l, kind, seed)
    return (A + A.T) / 2, seed


def _radius(A):
    return max(np.abs(np.linalg.eigvalsh(A)).max(), np.finfo(float).tiny)


@given(matrices())
@example((make_matrix(40, "repeated", 3), 3))
@example((np.zeros((5, 5)), 0))
def test_lanczos_with_k_equal_l_gives_the_whole_spectrum(case):
    A, seed = case
    l = A.shape[0]
    alpha, beta, Q = cv.lanczos(A, np.random.default_rng(seed).standard_normal(l), l)
    assert alpha.shape == (l,) and beta.shape == (l - 1,) and Q.shape == (l, l)
    theta, _ = cv.tridiagonal_eigh(alpha, beta)
    radius = _radius(A)
    assert np.abs(np.sort(theta) - np.linalg.eigvalsh(A)).max() <= 1e-8 * radius
    assert np.abs(Q.T @ Q - np.eye(l)).max() <= 1e-10
    T = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
    assert np.abs(Q.T @ A @ Q - T).max() <= 1e-10 * radius


@settings(max_examples=min(20, settings.default.max_examples))  # each builds a 200 x 200 matrix
@given(st.integers(0, 2**32 - 1))
def test_top_eigenvalue_to_1e_10_in_few_steps_when_the_gap_allows(seed):
    """gamma = (1 - 0.5) / (0.5 + 0.5) = 1/2: Kaniel-Paige-Saad's tan(phi_0) / T_(k-1)(2) falls by
    2 + sqrt(3) ~ 3.7 per step, so the residual reaches 1e-10 (tan phi_0 ~ sqrt(l) = 14) by k ~ 20,
    and the eigenvalue, whose error is the square, well before; 30 leaves room for an unlucky start."""
    l = 200
    A = make_matrix(l, "gapped", seed)
    rng = np.random.default_rng(seed)
    res = cv.top_eigenvalues(A, 1, rng=rng, tol=1e-10)
    assert res.n_matvecs <= 30
    assert abs(res.values[0] - 1.0) <= 1e-10
    v = res.vectors[:, 0]
    assert abs(np.linalg.norm(v) - 1) <= 1e-12
    # the Lanczos residual is the true one, and bounds the eigenvalue error
    true_res = cv.residual_norms(A, res.values, res.vectors)
    assert np.abs(true_res - res.residuals).max() <= 1e-12
    assert abs(res.values[0] - 1.0) <= res.residuals[0] + 1e-14


@given(matrices(min_l=4, max_l=30, kinds=("distinct", "indefinite", "gapped")), st.sampled_from([1, 3]))
def test_top_and_bottom_eigenvalues_by_every_method(case, k):
    A, seed = case
    ev = np.linalg.eigvalsh(A)
    radius = _radius(A)
    rng = np.random.default_rng(seed)
    for which, want in (("largest", ev[::-1][:k]), ("smallest", ev[:k])):
        for method in ("lanczos", "arpack"):
            vals, vecs = cv.top_eigenvalues(A, k, method=method, which=which, rng=rng, tol=1e-12)
            assert np.abs(vals - want).max() <= 1e-8 * radius, (method, which)
            assert vecs.shape == (A.shape[0], k)


def test_power_iteration_with_deflation_on_a_psd_matrix():
    A = make_matrix(30, "distinct", 5)
    ev = np.linalg.eigvalsh(A)[::-1]
    res = cv.top_eigenvalues(A, 2, method="power", rng=np.random.default_rng(0), tol=1e-11)
    assert np.abs(res.values - ev[:2]).max() <= 1e-9 * ev[0]
    # the documented stop: residual <= tol * |dominant eigenvalue| (the rounding of that scale)
    assert np.all(res.residuals <= 1e-11 * ev[0] * (1 + 1e-12))
    assert np.abs(cv.residual_norms(A, res.values, res.vectors) - res.residuals).max() <= 1e-14 * ev[0]
    lz = cv.top_eigenvalues(A, 2, rng=np.random.default_rng(0), tol=1e-11)
    assert lz.n_matvecs < res.n_matvecs  # Lanczos needs fewer products than power iteration


@given(matrices(min_l=2, max_l=40), st.integers(1, 8))
def test_gauss_quadrature_is_exact_up_to_degree_2k_minus_1(case, k):
    A, seed = case
    l = A.shape[0]
    k = min(k, l)
    v = np.random.default_rng(seed).standard_normal(l)
    alpha, beta, _ = cv.lanczos(A, v, k)
    theta, w = cv.gauss_quadrature(alpha, beta)
    assert abs(w.sum() - 1) <= 1e-12 and np.all(w >= 0)
    radius = _radius(A)
    u = v / np.linalg.norm(v)
    for p in range(1, 2 * k):
        moment = u @ np.linalg.matrix_power(A, p) @ u
        assert abs(w @ theta**p - moment) <= 1e-10 * radius**p, p


def test_squared_ritz_vector_rows_are_not_the_quadrature_weights():
    """The weight bug the density tests must catch: rows of Q S instead of first components of S."""
    A = make_matrix(30, "indefinite", 1)
    v = np.random.default_rng(1).standard_normal(30)
    alpha, beta, Q = cv.lanczos(A, v, 6)
    theta, S = cv.tridiagonal_eigh(alpha, beta)
    wrong = (Q @ S)[0] ** 2
    u = v / np.linalg.norm(v)
    right = cv.gauss_quadrature(alpha, beta)[1]
    assert abs(right @ theta**2 - u @ A @ A @ u) <= 1e-10 * _radius(A) ** 2
    assert abs(wrong @ theta**2 - u @ A @ A @ u) > 1e-3 * _radius(A) ** 2


@given(matrices(min_l=5, max_l=40, kinds=("distinct", "indefinite", "low_rank")))
def test_spectral_density_moments_match_trace_of_powers_within_sampling_error(case):
    A, seed = case
    l = A.shape[0]
    k, n_probes = 4, 40
    nodes, weights = cv.spectral_density(A, k, n_probes, rng=np.random.default_rng(seed))
    assert nodes.shape == weights.shape == (k * n_probes,)
    assert abs(weights.sum() - 1) <= 1e-12 and np.all(weights >= 0)
    for p in range(1, 2 * k):
        B = np.linalg.matrix_power(A, p) / l  # per-probe moment v^T A^p v / l, v Rademacher
        sd = np.sqrt(2 * (np.sum(B * B) - np.sum(np.diag(B) ** 2)) / n_probes)
        # 6 standard errors of a mean of 40 draws: a false alarm has probability ~1e-8; the
        # rounding floor covers the case sd = 0 (a diagonal-free A^p)
        assert abs(weights @ nodes**p - np.trace(B)) <= 6 * sd + 1e-10 * _radius(A) ** p, p


def test_density_curve_is_a_probability_density():
    A = make_matrix(30, "indefinite", 2)
    nodes, weights = cv.spectral_density(A, 10, 5, rng=np.random.default_rng(0))
    lo, hi = nodes.min() - 1, nodes.max() + 1
    grid = np.linspace(lo, hi, 20001)
    curve = cv.density_curve(nodes, weights, grid, sigma=0.05)
    assert abs(np.sum(curve) * (grid[1] - grid[0]) - 1) <= 1e-6  # Riemann sum of a smooth density


@given(matrices(min_l=1, max_l=10))
def test_hutchinson_over_all_sign_vectors_is_the_trace_and_its_variance_formula(case):
    A, _ = case
    l = A.shape[0]
    Z = np.array(list(itertools.product([-1.0, 1.0], repeat=l))).T  # (l, 2^l)
    m = Z.shape[1]
    est, se = cv.trace_estimate(A, m, probes=Z, rng=np.random.default_rng(0))
    scale = np.abs(A).sum()
    assert abs(est - np.trace(A)) <= 1e-12 * scale
    variance = 2 * (np.sum(A * A) - np.sum(np.diag(A) ** 2))  # population variance of z^T A z
    assert abs(se**2 * (m - 1) - variance) <= 1e-10 * scale**2
    d, _ = cv.diagonal_estimate(A, m, probes=Z, rng=np.random.default_rng(0))
    assert np.abs(d - np.diag(A)).max() <= 1e-12 * scale


@given(st.integers(1, 8), st.integers(0, 6), st.integers(0, 2**32 - 1))
def test_hutch_plus_plus_is_exact_when_the_rank_is_at_most_m_over_3(rank, extra, seed):
    rng = np.random.default_rng(seed)
    l = 40
    U = rng.standard_normal((l, rank))
    A = (U * rng.standard_normal(rank)) @ U.T
    m = 3 * rank + extra
    est, se = cv.trace_estimate(A, m, "hutch++", rng=rng)
    scale = np.abs(np.linalg.eigvalsh(A)).sum()
    assert abs(est - np.trace(A)) <= 1e-10 * scale
    assert se is None or se <= 1e-10 * scale


def test_estimators_are_unbiased_within_their_standard_error():
    A = make_matrix(50, "indefinite", 4)
    for method, m in (("hutchinson", 300), ("hutch++", 60)):  # hutch++: sketch 20 < l = 50
        est, se = cv.trace_estimate(A, m, method, rng=np.random.default_rng(7))
        assert abs(est - np.trace(A)) <= 6 * se, method
    d, sd = cv.diagonal_estimate(A, 400, rng=np.random.default_rng(7))
    assert np.all(np.abs(d - np.diag(A)) <= 6 * sd + 1e-12)


# --- the circuit operator against jax.hessian -----------------------------------------------------


@settings(max_examples=min(60, settings.default.max_examples))  # one of several circuit checks
@given(circuits_with_points(min_inputs=1, max_inputs=4, max_nodes=24))
def test_circuit_hessian_operator_and_its_spectrum_agree_with_jax(case):
    c, x, _ = case
    H_jax = jaxref.hessian(c, x)
    H = cv.hessian_operator(c, x)
    dense = H @ np.eye(c.l)
    # the suite's floor for AD against AD (tests/support.py): an entry that cancels to ~0 carries
    # the rounding of the largest intermediate value, not of itself
    scale = max(np.abs(H_jax).max(), scale_of((c, x)))
    assert np.abs(dense - H_jax).max() <= 1e-10 * scale
    for j in range(c.l):
        assert np.abs(H.matvec(np.eye(c.l)[j]) - H_jax[:, j]).max() <= 1e-10 * scale
    alpha, beta, _ = cv.lanczos(H, np.ones(c.l), c.l)
    theta, _ = cv.tridiagonal_eigh(alpha, beta)
    radius = max(np.abs(np.linalg.eigvalsh(H_jax)).max(), scale_of((c, x)))
    assert np.abs(np.sort(theta) - np.linalg.eigvalsh(H_jax)).max() <= 1e-8 * radius


def _wide_function(l: int, seed: int):
    """f(x) = sum_j tanh(a_j . x + c_j) (b_j . x) + 0.01 x_j^2 (j < 6), traced by testbed and written
    independently in jax.numpy: an indefinite Hessian of full rank."""
    rng = np.random.default_rng(seed)
    a, b, c = rng.standard_normal((6, l)) / np.sqrt(l), rng.standard_normal((6, l)), rng.standard_normal(6)

    def f(x):
        out = 0.0
        for j in range(6):
            s = c[j]
            t = 0.0
            for i in range(l):
                s = s + a[j, i] * x[i]
                t = t + b[j, i] * x[i]
            out = out + testbed.tanh(s) * t + 0.01 * x[j] * x[j]
        return out

    def f_jax(x):
        return jnp.sum(jnp.tanh(a @ x + c) * (b @ x) + 0.01 * x[:6] ** 2)

    return testbed.trace(f, l), f_jax


def test_spectrum_of_a_30_input_circuit_against_eigvalsh_of_jax_hessian():
    l = 30
    c, f_jax = _wide_function(l, 0)
    x = np.random.default_rng(1).standard_normal(l)
    H_jax = np.asarray(jax.hessian(f_jax)(jnp.asarray(x)))
    ev = np.linalg.eigvalsh(H_jax)
    H = cv.hessian_operator(c, x)
    radius = np.abs(ev).max()
    assert np.abs(H @ np.eye(l) - H_jax).max() <= 1e-10 * radius
    alpha, beta, _ = cv.lanczos(H, np.ones(l), l)
    assert np.abs(np.sort(cv.tridiagonal_eigh(alpha, beta)[0]) - ev).max() <= 1e-8 * radius
    vals, _ = cv.top_eigenvalues(H, 2, rng=np.random.default_rng(2), tol=1e-12)
    assert np.abs(vals - ev[::-1][:2]).max() <= 1e-8 * radius


# --- bookkeeping and bad input ----------------------------------------------------------------------


def test_count_matvecs_counts_every_vector():
    A = make_matrix(12, "distinct", 0)
    counted = cv.count_matvecs(A)
    res = cv.top_eigenvalues(counted.operator, 1, rng=np.random.default_rng(0), tol=1e-6)
    assert counted.n == res.n_matvecs
    cv.trace_estimate(counted.operator, 9, "hutch++", rng=np.random.default_rng(0))
    assert counted.n == res.n_matvecs + 9 + 2  # 9 products and the 2 of the symmetry check


def test_operators_are_scipy_linear_operators():
    c, _ = _wide_function(8, 1)
    H = cv.hessian_operator(c, np.zeros(8))
    assert isinstance(H, spla.LinearOperator) and H.shape == (8, 8) and H.dtype == np.float64
    vals, _ = spla.eigsh(H, k=2, which="LA")  # scipy takes it as it is
    assert np.abs(np.sort(vals) - np.linalg.eigvalsh(H @ np.eye(8))[-2:]).max() <= 1e-8 * np.abs(vals).max()
    assert np.array_equal(H.T @ np.ones(8), H @ np.ones(8))


def test_bad_input_raises_testbed_errors():
    rng = np.random.default_rng(0)
    A = make_matrix(6, "distinct", 0)
    nonsym = A + np.triu(np.ones((6, 6)), 1)
    with pytest.raises(ShapeError, match="square"):
        cv.lanczos(np.ones((4, 5)), np.ones(5), 2)
    with pytest.raises(ShapeError, match="square"):
        cv.trace_estimate(spla.aslinearoperator(np.ones((4, 5))), 5, rng=rng)
    with pytest.raises(cv.NotSymmetricError, match="not symmetric"):
        cv.lanczos(nonsym, np.ones(6), 4)
    for call in (lambda: cv.trace_estimate(nonsym, 5, rng=rng),
                 lambda: cv.trace_estimate(nonsym, 6, "hutch++", rng=rng),
                 lambda: cv.diagonal_estimate(nonsym, 5, rng=rng),
                 lambda: cv.top_eigenvalues(nonsym, 1, method="power", rng=rng),
                 lambda: cv.top_eigenvalues(nonsym, 1, method="arpack", rng=rng),
                 lambda: cv.top_eigenvalues(nonsym, 1, rng=rng),
                 lambda: cv.spectral_density(nonsym, 4, 2, rng=rng)):
        with pytest.raises(cv.NotSymmetricError):
            call()
    with pytest.raises(ShapeError, match="k = 7"):
        cv.top_eigenvalues(A, 7, rng=rng)
    with pytest.raises(ShapeError, match="k = 7"):
        cv.lanczos(A, np.ones(6), 7)
    with pytest.raises(ShapeError, match="k = 0"):
        cv.spectral_density(A, 0, 3, rng=rng)
    with pytest.raises(ShapeError, match="k < l"):
        cv.top_eigenvalues(A, 6, method="arpack", rng=rng)
    with pytest.raises(ShapeError, match="Hutch"):
        cv.trace_estimate(A, 2, "hutch++", rng=rng)
    with pytest.raises(ShapeError, match="v0"):
        cv.lanczos(A, np.ones(5), 2)
    with pytest.raises(ShapeError, match="zero"):
        cv.lanczos(A, np.zeros(6), 2)
    with pytest.raises(NonFiniteError):
        cv.lanczos(A, np.r_[np.ones(5), np.nan], 2)
    with pytest.raises(TypeError, match="Generator"):
        cv.trace_estimate(A, 5, rng=0)
    with pytest.raises(TestbedError, match="method"):
        cv.trace_estimate(A, 5, "girard", rng=rng)
    for method in ("lanczos", "power", "arpack"):
        with pytest.raises(TestbedError, match="which"):
            cv.top_eigenvalues(A, 1, method=method, which="magnitude", rng=rng)
    overflowing = cv.symmetric_operator(6, lambda v: np.full(6, np.inf))
    for call in (lambda: cv.lanczos(overflowing, np.ones(6), 3),
                 lambda: cv.trace_estimate(overflowing, 4, rng=rng)):
        with pytest.raises(NonFiniteError, match="non-finite"):
            call()
    c = testbed.trace(lambda x: [x[0] * x[1], x[0]], 2)
    with pytest.raises(ShapeError, match="scalar"):
        cv.hessian_operator(c, np.ones(2))
    c1 = testbed.trace(lambda x: x[0] * x[1], 2)
    with pytest.raises(ShapeError, match=r"\(2,\)"):
        cv.hessian_operator(c1, np.ones(3))


@settings(max_examples=20)
@given(st.integers(0, 2**32 - 1))
def test_same_generator_seed_same_results(seed):
    A = make_matrix(20, "indefinite", 9)
    a = cv.spectral_density(A, 5, 3, rng=np.random.default_rng(seed))
    b = cv.spectral_density(A, 5, 3, rng=np.random.default_rng(seed))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
