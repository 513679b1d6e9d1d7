"""testbed.curvature and testbed.nn's operators on inputs that used to give silent wrong answers:
complex operators, `which` under power iteration, Lanczos and ARPACK out of budget, products of the
wrong length, non-finite or negative density weights, and operators mutated after they were built.

Tolerances: eigenvalues are checked to 1e-10 of the spectral radius against numpy.linalg.eigvalsh
(the methods are asked for residuals <= 1e-12 ||A||, which bound the eigenvalue error; 1e-10 leaves
room for the rounding of the products). The snapshot tests compare products for bit-for-bit
equality: the same operations on the same numbers.
"""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import testbed
import testbed.nn as nn
from testbed import curvature as cv
from testbed.errors import NonFiniteError, ShapeError, TestbedError

HERMITIAN = np.array([[2.0, 1j], [-1j, 2.0]])  # eigenvalues 3 and 1: a real part alone gives 2, 2


def _rng():
    return np.random.default_rng(0)


def _every_entry_point(A, l):
    """Each public function of testbed.curvature that takes an operator, called on A (l x l)."""
    return {
        "lanczos": lambda: cv.lanczos(A, np.ones(l), 1),
        "top_eigenvalues lanczos": lambda: cv.top_eigenvalues(A, 1, rng=_rng()),
        "top_eigenvalues power": lambda: cv.top_eigenvalues(A, 1, method="power", rng=_rng()),
        "top_eigenvalues arpack": lambda: cv.top_eigenvalues(A, 1, method="arpack", rng=_rng()),
        "trace_estimate hutchinson": lambda: cv.trace_estimate(A, 4, rng=_rng()),
        "trace_estimate hutch++": lambda: cv.trace_estimate(A, 6, "hutch++", rng=_rng()),
        "diagonal_estimate": lambda: cv.diagonal_estimate(A, 4, rng=_rng()),
        "spectral_density": lambda: cv.spectral_density(A, 1, 2, rng=_rng()),
        "residual_norms": lambda: cv.residual_norms(A, np.ones(1), np.ones((l, 1))),
        "count_matvecs": lambda: cv.count_matvecs(A).operator @ np.ones(l),
    }


# --- 1. complex operators -------------------------------------------------------------------------


def test_not_real_error_is_a_testbed_shape_error_and_a_type_error():
    assert issubclass(cv.NotRealError, ShapeError) and issubclass(cv.NotRealError, TestbedError)
    assert issubclass(cv.NotRealError, ValueError) and issubclass(cv.NotRealError, TypeError)


@pytest.mark.parametrize("make", [
    lambda: spla.aslinearoperator(HERMITIAN),                                   # dtype complex
    lambda: HERMITIAN,                                                          # a dense array
    lambda: sp.csr_matrix(HERMITIAN),                                           # a sparse matrix
    lambda: spla.LinearOperator((2, 2), matvec=lambda v: HERMITIAN @ v),        # dtype inferred
], ids=["LinearOperator", "ndarray", "sparse", "inferred-dtype"])
def test_a_complex_operator_is_refused_by_every_entry_point(make):
    for name, call in _every_entry_point(make(), 2).items():
        if name == "top_eigenvalues arpack":
            continue  # needs k < l = 2: covered below with k = 1 as well, raising before ARPACK
        with pytest.raises(cv.NotRealError, match="complex") as info:
            call()
        assert "dtype" in str(info.value), name
    with pytest.raises(cv.NotRealError, match="complex"):
        cv.top_eigenvalues(make(), 1, method="arpack", rng=_rng())


def test_a_float_operator_whose_products_are_complex_is_refused():
    """The operator says float64 but its matvec returns complex values (the imaginary part used
    to be dropped with only numpy's ComplexWarning, giving eigenvalues 2, 2 instead of 3, 1)."""
    for A in (cv.symmetric_operator(2, lambda v: HERMITIAN @ v),
              spla.LinearOperator((2, 2), matvec=lambda v: HERMITIAN @ v, dtype=np.float64)):
        for name, call in _every_entry_point(A, 2).items():
            with pytest.raises(cv.NotRealError, match="complex") as info:
                call()
            assert "A v" in str(info.value), name


def test_complex_vectors_are_refused_not_truncated():
    A = np.diag([1.0, 2.0])
    with pytest.raises(cv.NotRealError, match="v0"):
        cv.lanczos(A, np.array([1.0, 1j]), 1)
    with pytest.raises(cv.NotRealError, match="probes"):
        cv.trace_estimate(A, 2, probes=np.array([[1.0, 1j], [1.0, 1.0]]), rng=_rng())
    H = cv.symmetric_operator(2, lambda v: A @ v)
    with pytest.raises(cv.NotRealError, match="v"):
        H @ np.array([1.0, 1j])
    c = testbed.trace(lambda x: x[0] * x[1], 2)
    with pytest.raises(cv.NotRealError, match="x"):
        cv.hessian_operator(c, np.array([1.0, 1j]))


# --- 2. `which` means the same for every method ---------------------------------------------------


def _spectrum_matrix(seed):
    """U diag(lambda) U^T with well separated eigenvalues of both signs, the dominant one negative."""
    lam = np.array([-4.0, -2.0, 1.5, 1.0, 0.5, 0.25, -0.1, 0.05])
    U, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((8, 8)))
    A = (U * lam) @ U.T
    return (A + A.T) / 2


def test_power_largest_is_the_algebraic_largest_not_the_largest_magnitude():
    """Some eigenvalue lies within the residual of each value (a theorem for symmetric A), and the
    residuals are <= tol ||A|| = 3e-12, far below the gaps 0.5: each value is the wanted one to
    within its residual."""
    A = np.diag([1.0, 0.5, -3.0])
    for k, which, want in ((1, "largest", [1.0]), (2, "largest", [1.0, 0.5]),
                           (1, "smallest", [-3.0]), (3, "smallest", [-3.0, 0.5, 1.0])):
        res = cv.top_eigenvalues(A, k, method="power", which=which, rng=_rng(), tol=1e-12)
        assert np.all(res.residuals <= 1e-12 * 3.0 * (1 + 1e-9)), (k, which)
        assert np.all(np.abs(res.values - want) <= res.residuals), (k, which, res.values)
        assert np.all(np.abs(res.values - want) <= 1e-10 * 3.0), (k, which, res.values)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_method_gives_the_same_eigenvalues_for_each_which(seed):
    A = _spectrum_matrix(seed)
    ev = np.linalg.eigvalsh(A)
    radius = np.abs(ev).max()
    for which, want in (("largest", ev[::-1]), ("smallest", ev)):
        for k in (1, 2, 3):
            for method in ("lanczos", "power", "arpack"):
                res = cv.top_eigenvalues(A, k, method=method, which=which,
                                         rng=np.random.default_rng(seed), tol=1e-12)
                assert np.abs(res.values - want[:k]).max() <= 1e-10 * radius, (method, which, k)
                # the reported residuals are the true ones, and within the promised tolerance
                true = cv.residual_norms(A, res.values, res.vectors)
                assert np.abs(true - res.residuals).max() <= 1e-13 * radius, (method, which, k)
                assert np.all(res.residuals <= 1e-12 * radius * (1 + 1e-9)), (method, which, k)


def test_power_with_a_dominant_pair_plus_minus_lambda_raises_instead_of_answering():
    with pytest.raises(cv.ConvergenceError, match="power"):
        cv.top_eigenvalues(np.diag([3.0, -3.0, 1.0]), 1, method="power", rng=_rng())


# --- 3. the tolerance is kept or ConvergenceError is raised, by every method ----------------------


def test_lanczos_out_of_budget_raises_convergence_error_naming_steps_and_residual():
    A = np.diag(np.linspace(1.0, 2.0, 200))  # tiny gaps: 3 steps are far from converged
    with pytest.raises(cv.ConvergenceError, match=r"lanczos.*3 steps.*residual") as info:
        cv.top_eigenvalues(A, 1, max_steps=3, rng=_rng())
    assert "max_steps = 3" in str(info.value)
    with pytest.raises(cv.ConvergenceError, match="lanczos"):
        cv.top_eigenvalues(A, 2, which="smallest", max_steps=5, rng=_rng())
    # l steps span the whole space: converged to rounding, so a tolerance below it cannot be met
    with pytest.raises(cv.ConvergenceError, match="rounding"):
        cv.top_eigenvalues(np.diag(np.linspace(1.0, 2.0, 20)), 1, tol=1e-300, rng=_rng())
    # and with the budget it needs, the same call keeps its promise
    res = cv.top_eigenvalues(A, 1, rng=_rng(), tol=1e-8)
    assert res.residuals[0] <= 1e-8 * 2.0 and abs(res.values[0] - 2.0) <= res.residuals[0]


def test_arpack_out_of_budget_raises_convergence_error():
    A = np.diag(np.linspace(1.0, 2.0, 200))
    with pytest.raises(cv.ConvergenceError, match=r"arpack.*maxiter = 1.*products"):
        cv.top_eigenvalues(A, 1, method="arpack", max_steps=1, rng=_rng())
    with pytest.raises(cv.ConvergenceError, match="power.*residual"):
        cv.top_eigenvalues(A, 1, method="power", max_steps=3, rng=_rng())


def test_arpack_keeps_its_tolerance_on_a_tiny_scale():
    """eigsh's test ||r|| <= tol max(eps^(2/3), |theta|) has an absolute floor: on this A (||A|| =
    2e-30) scipy's eigsh alone returns 9.99999583e-31 for 1e-30 at tol=1e-12. top_eigenvalues runs
    it on A / ||A||-ish, where the floor is relative."""
    rng = np.random.default_rng(0)
    lam = np.r_[2.0, 1.0, rng.uniform(-0.9, 0.9, 298)]
    U, _ = np.linalg.qr(rng.standard_normal((300, 300)))
    A = (U * lam) @ U.T * 1e-30
    res = cv.top_eigenvalues((A + A.T) / 2, 2, method="arpack", rng=np.random.default_rng(1), tol=1e-12)
    assert np.abs(res.values - [2e-30, 1e-30]).max() <= 1e-10 * 2e-30


# --- 4. products of the wrong shape ---------------------------------------------------------------


@pytest.mark.parametrize("make, got", [
    (lambda: cv.symmetric_operator(3, lambda v: np.ones(4)), 4),
    (lambda: spla.LinearOperator((3, 3), matvec=lambda v: np.ones(4), dtype=np.float64), 4),
    (lambda: cv.symmetric_operator(3, lambda v: np.ones(2)), 2),
], ids=["symmetric_operator-4", "LinearOperator-4", "symmetric_operator-2"])
def test_a_product_of_the_wrong_length_raises_shape_error_naming_both_shapes(make, got):
    for name, call in _every_entry_point(make(), 3).items():
        with pytest.raises(ShapeError) as info:
            call()
        msg = str(info.value)
        assert "(3,)" in msg or "(3, 1)" in msg or "(3, 2)" in msg, (name, msg)  # expected
        assert f"({got},)" in msg or f"({got}, " in msg, (name, msg)             # returned


def test_a_block_product_of_the_wrong_shape_is_refused_not_reshaped():
    """A matmat returning A V transposed, (p, l) instead of (l, p), used to be reshaped silently."""
    M = np.diag([1.0, 2.0, 3.0])
    A = cv.symmetric_operator(3, lambda v: M @ v, matmat=lambda V: (M @ V).T)
    with pytest.raises(ShapeError, match=r"\(3, 2\).*\(2, 3\)"):
        cv.trace_estimate(A, 2, rng=_rng())
    with pytest.raises(ShapeError, match=r"vectors has shape \(2, 3\).*\(3, k\)"):
        cv.residual_norms(M, np.ones(2), np.ones((2, 3)))  # two vectors, as rows: transposed


# --- 5. density_curve's inputs --------------------------------------------------------------------


def test_density_curve_refuses_non_finite_and_negative_inputs():
    nodes, weights, grid = np.array([0.0, 1.0]), np.array([0.5, 0.5]), np.linspace(-1, 2, 7)
    assert np.isfinite(cv.density_curve(nodes, weights, grid, 0.1)).all()
    with pytest.raises(NonFiniteError, match=r"weights\[0\]"):
        cv.density_curve(nodes, np.array([np.nan, 0.5]), grid, 0.1)
    with pytest.raises(NonFiniteError, match=r"nodes\[1\]"):
        cv.density_curve(np.array([0.0, np.inf]), weights, grid, 0.1)
    with pytest.raises(NonFiniteError, match=r"grid\[3\]"):
        cv.density_curve(nodes, weights, np.r_[grid[:3], np.nan, grid[4:]], 0.1)
    with pytest.raises(TestbedError, match=r"weights\[1\].*>= 0"):
        cv.density_curve(nodes, np.array([0.5, -0.5]), grid, 0.1)
    with pytest.raises(TestbedError, match="sigma"):
        cv.density_curve(nodes, weights, grid, float("nan"))
    with pytest.raises(cv.NotRealError, match="weights"):
        cv.density_curve(nodes, np.array([0.5, 0.5j]), grid, 0.1)
    with pytest.raises(NonFiniteError, match="overflowed"):  # 1 / (sigma sqrt(2 pi)) = inf
        cv.density_curve(nodes, weights, np.array([0.0]), 1e-320)


# --- 6. operators are snapshots of their inputs ---------------------------------------------------


def _net_problem():
    rng = np.random.default_rng(3)
    net = nn.init_network([3, 5, 2], "tanh", "xavier_normal", rng, bias_std=0.3)
    return net, rng.standard_normal((6, 3)), rng.standard_normal((6, 2)), rng


@pytest.mark.parametrize("build", [nn.hessian_operator, nn.gauss_newton_operator],
                         ids=["hessian", "gauss_newton"])
def test_network_operators_do_not_follow_inputs_mutated_after_they_were_built(build):
    net, x, y, rng = _net_problem()
    # the operator at build time, from copies nobody touches
    reference = build(net.copy(), x.copy(), y.copy())
    op = build(net, x, y)
    V = rng.standard_normal((net.n_params, 3))
    before = op @ V
    assert np.array_equal(before, reference @ V)
    net.W[1][...] = 0.7
    net.b[-1][...] = -2.0
    x[...] = 1.5
    y[...] = 0.0
    after_op = build(net, x, y)  # what the mutated inputs would give
    assert not np.allclose(after_op @ V, before)  # the mutation matters to a new operator...
    assert np.array_equal(op @ V, before)          # ...but not to the one built before it
    assert np.array_equal(op @ V[:, 0], before[:, 0])


def test_network_operators_snapshot_a_single_example_too():
    net, x, y, _ = _net_problem()
    x1, y1 = x[0].copy(), y[0].copy()  # one example, 1-D: reshaped views inside
    for build in (nn.hessian_operator, nn.gauss_newton_operator):
        op = build(net, x1, y1)
        before = op @ np.ones(net.n_params)
        x1[...] = 3.0
        y1[...] = 3.0
        assert np.array_equal(op @ np.ones(net.n_params), before)
        x1[...], y1[...] = x[0], y[0]


def test_circuit_hessian_operator_does_not_follow_x_mutated_after_it_was_built():
    c = testbed.trace(lambda x: testbed.sin(x[0] * x[1]) + x[2] * x[2] * x[0], 3)
    x = np.array([0.3, -1.2, 0.8])
    reference = cv.hessian_operator(c, x.copy())
    H = cv.hessian_operator(c, x)
    before = H @ np.eye(3)
    assert np.array_equal(before, reference @ np.eye(3))
    x[...] = [2.0, 2.0, 2.0]
    assert not np.allclose(cv.hessian_operator(c, x) @ np.eye(3), before)  # x matters...
    assert np.array_equal(H @ np.eye(3), before)                          # ...once built, not


def test_count_matvecs_snapshots_a_dense_array():
    A = np.diag([1.0, 2.0, 3.0])
    counted = cv.count_matvecs(A)
    A[0, 0] = 100.0
    assert np.array_equal(counted.operator @ np.ones(3), [1.0, 2.0, 3.0])
    assert counted.n == 1
