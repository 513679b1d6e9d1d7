"""Curvature without forming the Hessian: spectra, traces, densities and diagonals through H v.

The notes' corollary makes H v cost O(N + l), the price of a few gradients. Everything here sees a
symmetric l x l matrix A only through products A v, as a `scipy.sparse.linalg.LinearOperator`
(float64), so that the same code serves a circuit's Hessian (`hessian_operator`), a network's
Hessian or Gauss-Newton matrix (`testbed.nn.hessian_operator`, `testbed.nn.gauss_newton_operator`),
a dense array, or any operator a user writes.

Lanczos (Lanczos 1950). From q_1 = v0 / ||v0||, k steps build an orthonormal basis Q = [q_1..q_k]
of the Krylov space span{v0, A v0, ..., A^(k-1) v0} and the tridiagonal T = Q^T A Q:

    A q_j = beta_(j-1) q_(j-1) + alpha_j q_j + beta_j q_(j+1),   alpha_j = q_j^T A q_j.

In floating point the three-term recurrence loses orthogonality as soon as a Ritz value converges
(Paige 1971); here every new vector is orthogonalised against all of Q (classical Gram-Schmidt,
repeated once when the first pass removed most of the vector: "twice is enough"). The eigenvalues
theta_i of T (Ritz values; `scipy.linalg.eigh_tridiagonal`) approach the extreme eigenvalues of A
first, at a rate set by the gap (the Kaniel-Paige-Saad bound), and ||A y_i - theta_i y_i|| =
beta_k |s_(k,i)| for the Ritz vector y_i = Q s_i, which costs no extra product.

Gauss quadrature (Golub & Meurant, "Matrices, Moments and Quadrature", 2010). With the nodes theta_i
and weights w_i = s_(1,i)^2 (squared FIRST components of T's eigenvectors),

    sum_i w_i theta_i^p = v0^T A^p v0 / v0^T v0   exactly for p <= 2k - 1.

Stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017) averages that quadrature over random unit
probes to approximate the spectral density (1/l) sum_i delta(t - lambda_i) of A (used on neural
network Hessians by Ghorbani, Krishnan & Xiao 2019).

Trace and diagonal. Hutchinson (1989): for Rademacher z, E[z^T A z] = tr(A) with variance
2 (||A||_F^2 - sum_i A_ii^2); error O(1/sqrt(m)) with m products. Hutch++ (Meyer, Musco, Musco &
Woodruff 2021) spends m/3 products on a sketch Q of A's range, takes tr(Q^T A Q) exactly and
Hutchinson only on the deflated rest: error O(1/m). Bekas, Kokiopoulou & Saad (2007) estimate
diag(A) by sum_k v_k * A v_k / sum_k v_k * v_k.

Every algorithm checks that A is square and symmetric (Lanczos from its own coefficients: for a
symmetric A, Q^T A q_j vanishes off the tridiagonal; the others with two products on random
vectors) and that every product is finite. Randomness comes only from the `rng` Generator passed in.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse.linalg as spla

from . import transforms
from .circuit import Circuit
from .errors import NonFiniteError, ShapeError, TestbedError

Array = np.ndarray
LinearOperator = spla.LinearOperator

# |u^T A w - w^T A u| above this fraction of ||A||-sized products means "not symmetric". A Hessian
# from exact HVPs is symmetric up to rounding (~1e-15 relative to ||A||); 1e-8 leaves room for
# ill-conditioned circuits and still catches any asymmetry a user would care about.
SYMMETRY_TOL = 1e-8
# Lanczos treats beta_j <= BREAKDOWN_TOL * ||A|| as an invariant subspace (e.g. a repeated
# eigenvalue) and restarts; setting such a beta_j to 0 moves the Ritz values by at most that much.
BREAKDOWN_TOL = 1e-12


class NotSymmetricError(TestbedError):
    """The operator is not symmetric: u^T A w differs from w^T A u (the message gives both)."""


class ConvergenceError(TestbedError):
    """An iteration did not reach the requested tolerance within its budget of products."""


# --------------------------------------------------------------------------------------------
# operators


def _as_operator(A: object, what: str = "A") -> LinearOperator:
    """A as a square float64 LinearOperator (dense arrays and sparse matrices are wrapped)."""
    if not isinstance(A, LinearOperator):
        arr = A
        if isinstance(A, np.ndarray | list | tuple):
            arr = np.asarray(A)
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"{what} must hold real numbers, got dtype {arr.dtype}")
            arr = arr.astype(np.float64, copy=False)
        try:
            A = spla.aslinearoperator(arr)
        except TypeError as exc:
            raise TypeError(f"{what} must be a LinearOperator or a 2-D array, got {type(A)}") from exc
    if len(A.shape) != 2 or A.shape[0] != A.shape[1]:
        raise ShapeError(f"{what} has shape {A.shape}: a curvature operator must be square (l, l)")
    if A.shape[0] < 1:
        raise ShapeError(f"{what} has shape {A.shape}: l must be >= 1")
    return A


def _apply(A: LinearOperator, V: Array, what: str) -> Array:
    """A V for V of shape (l,) or (l, p), float64, checked finite."""
    out = np.asarray(A.matvec(V) if V.ndim == 1 else A.matmat(V), dtype=np.float64)
    if out.shape != V.shape:
        out = out.reshape(V.shape)
    if not np.isfinite(out).all():
        bad = np.argwhere(~np.isfinite(out))[0]
        raise NonFiniteError(f"{what}: the product A v holds a non-finite entry at {tuple(bad)} "
                             f"({out[tuple(bad)]}); the operator overflowed or is not finite here")
    return out


def _norm(w: Array) -> float:
    """||w||_2 without underflow (numpy's norm squares the entries: 1e-200 would give 0)."""
    scale = float(np.abs(w).max(initial=0.0))
    return 0.0 if scale == 0.0 else scale * float(np.linalg.norm(w / scale))


def _check_symmetric(A: LinearOperator, rng: np.random.Generator, what: str = "A") -> None:
    """Two products on random vectors: |u^T A w - w^T A u| <= SYMMETRY_TOL ||u|| ||A|| ||w||."""
    l = A.shape[0]
    if l == 1:
        return
    U = rng.standard_normal((l, 2))
    AU = _apply(A, U, what)
    uAw, wAu = float(U[:, 0] @ AU[:, 1]), float(U[:, 1] @ AU[:, 0])
    scale = float(max(np.linalg.norm(AU[:, 0]) * np.linalg.norm(U[:, 1]),
                      np.linalg.norm(AU[:, 1]) * np.linalg.norm(U[:, 0])))
    if abs(uAw - wAu) > SYMMETRY_TOL * scale:
        raise NotSymmetricError(f"{what} is not symmetric: u^T A w = {uAw!r} but w^T A u = {wAu!r} "
                                f"for random u, w (scale {scale:.3g}); curvature operators must be")


def _check_rng(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(rng)}")
    return rng


def _check_count(value: object, name: str, lo: int, hi: int | None = None, why: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < lo or (hi is not None and value > hi):
        rng_txt = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise ShapeError(f"{name} = {value} must be {rng_txt}{why}")
    return value


class _Symmetric(LinearOperator):
    """A symmetric operator from a function v -> A v (and optionally V -> A V for blocks)."""

    def __init__(self, l: int, matvec: Callable[[Array], Array],
                 matmat: Callable[[Array], Array] | None = None) -> None:
        super().__init__(dtype=np.dtype(np.float64), shape=(l, l))
        self._mv = matvec
        self._mm = matmat

    def _matvec(self, v: Array) -> Array:
        return self._mv(np.asarray(v, dtype=np.float64).reshape(-1))

    def _rmatvec(self, v: Array) -> Array:
        return self._matvec(v)

    def _matmat(self, V: Array) -> Array:
        if self._mm is not None:
            return self._mm(np.asarray(V, dtype=np.float64))
        return np.column_stack([self._matvec(V[:, j]) for j in range(V.shape[1])])

    def _rmatmat(self, V: Array) -> Array:
        return self._matmat(V)

    def _adjoint(self) -> LinearOperator:
        return self


def symmetric_operator(l: int, matvec: Callable[[Array], Array],
                       matmat: Callable[[Array], Array] | None = None) -> LinearOperator:
    """An l x l symmetric float64 LinearOperator from v -> A v (A^T = A, so rmatvec = matvec).

    `matmat`, if given, computes A V for a block V of shape (l, p) at once; otherwise column by
    column. The caller vouches for symmetry; the algorithms below check it.
    """
    l = _check_count(l, "l", 1)
    return _Symmetric(l, matvec, matmat)


def hessian_operator(c: Circuit, x: object) -> LinearOperator:
    """The Hessian of a scalar circuit f: R^l -> R at x as a LinearOperator: v -> (grad^2 f)(x) v.

    Each product is what `testbed.hvp` computes: forward mode through the gradient circuit, O(N + l)
    (the gradient circuit is built once, here); a block of p vectors is one batched sweep.
    """
    if not isinstance(c, Circuit):
        raise TypeError(f"hessian_operator takes a Circuit, got {type(c)}")
    if c.n_outputs != 1:
        raise ShapeError(f"hessian_operator needs a scalar circuit (1 output), this one has "
                         f"{c.n_outputs}")
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (c.l,):
        raise ShapeError(f"hessian_operator takes one point x of shape ({c.l},), got {x.shape}")
    if not np.isfinite(x).all():
        raise NonFiniteError(f"x{list(np.argwhere(~np.isfinite(x))[0])} is not finite")

    g = transforms.grad(c)  # built once: each product is then one forward-mode sweep through it

    def matvec(v: Array) -> Array:
        return np.asarray(transforms.jvp(g, x, v)[1], dtype=np.float64).reshape(c.l)

    def matmat(V: Array) -> Array:
        out = transforms.jvp(g, np.tile(x, (V.shape[1], 1)), np.ascontiguousarray(V.T))[1]
        return np.asarray(out, dtype=np.float64).reshape(V.shape[1], c.l).T

    return _Symmetric(c.l, matvec, matmat)


@dataclass(frozen=True)
class Counted:
    """`count_matvecs`' result: `operator` (use it in place of A) and `n` (products so far)."""

    operator: LinearOperator
    counter: list[int]

    @property
    def n(self) -> int:
        """The number of vectors A has been applied to (a block of p counts p)."""
        return self.counter[0]


def count_matvecs(A: object) -> Counted:
    """Wrap A so that every product A v is counted: how many HVPs an algorithm really spent."""
    A = _as_operator(A)
    counter = [0]

    def mv(v: Array) -> Array:
        counter[0] += 1
        return A.matvec(v)

    def mm(V: Array) -> Array:
        counter[0] += V.shape[1]
        return A.matmat(V)

    return Counted(_Symmetric(A.shape[0], mv, mm), counter)


# --------------------------------------------------------------------------------------------
# Lanczos


@dataclass(frozen=True)
class LanczosRun:
    """k Lanczos steps: T = tridiag(beta, alpha, beta) = Q^T A Q and the Krylov relation's tail.

    Attributes:
        alpha: (k,) diagonal of T.
        beta: (k-1,) off-diagonal of T (0 where the iteration restarted after a breakdown).
        Q: (l, k) orthonormal columns.
        beta_last: ||A q_k - Q T e_k||, the beta_k that the next step would use; the residual of a
            Ritz pair (theta_i, Q s_i) is beta_last |s_(k,i)|.
    """

    alpha: Array
    beta: Array
    Q: Array
    beta_last: float


def _lanczos(A: LinearOperator, v0: Array, k: int,
             stop: Callable[[Array, Array, float], bool] | None = None) -> LanczosRun:
    """Lanczos with full reorthogonalisation; `stop(alpha, beta, beta_last)` may end it early."""
    l = A.shape[0]
    Qr = np.zeros((k, l))  # rows q_j: Qr[:j] @ w is one contiguous matrix-vector product
    alpha = np.zeros(k)
    beta = np.zeros(max(k - 1, 0))
    Qr[0] = v0 / _norm(v0)
    anorm = 0.0  # max_j ||A q_j|| <= ||A||: the scale for the symmetry and breakdown tests
    beta_last = 0.0
    j = 0
    for j in range(k):
        w = _apply(A, Qr[j], "lanczos")
        wnorm = _norm(w)
        anorm = max(anorm, wnorm)
        h = Qr[:j + 1] @ w          # classical Gram-Schmidt against every q_i, i <= j
        alpha[j] = h[j]
        # For symmetric A, q_i^T A q_j = 0 for i < j - 1 and q_(j-1)^T A q_j = beta_(j-1): what the
        # first pass removes there beyond rounding is asymmetry.
        off = np.abs(h[:j]).copy()
        if j >= 1:
            off[j - 1] = abs(h[j - 1] - beta[j - 1])
        if j >= 1 and off.max() > SYMMETRY_TOL * anorm:
            i = int(np.argmax(off))
            raise NotSymmetricError(
                f"the operator is not symmetric: Lanczos step {j + 1} found q_{i + 1}^T A q_{j + 1} "
                f"off the tridiagonal by {off[i]:.3g} (||A|| >= {anorm:.3g}); curvature operators "
                f"must be symmetric")
        w -= h @ Qr[:j + 1]
        if _norm(w) < 0.7071 * wnorm:  # most of w was removed: orthogonalise once more
            w -= (Qr[:j + 1] @ w) @ Qr[:j + 1]
        b = _norm(w)
        if j == k - 1:
            beta_last = b
            break
        if stop is not None and stop(alpha[:j + 1], beta[:j], b):
            beta_last = b
            j_end = j + 1
            return LanczosRun(alpha[:j_end].copy(), beta[:j_end - 1].copy(), Qr[:j_end].T.copy(),
                              beta_last)
        if b <= BREAKDOWN_TOL * anorm:
            # An invariant subspace: restart with the unit vector e_i farthest from span(Q)
            # (deterministic), orthogonalised twice; T decouples there (beta_j = 0).
            i = int(np.argmin(np.einsum("ij,ij->j", Qr[:j + 1], Qr[:j + 1])))
            w = np.zeros(l)
            w[i] = 1.0
            for _ in range(2):
                w -= (Qr[:j + 1] @ w) @ Qr[:j + 1]
            beta[j] = 0.0
            Qr[j + 1] = w / _norm(w)
        else:
            beta[j] = b
            Qr[j + 1] = w / b
    return LanczosRun(alpha, beta, Qr.T.copy(), beta_last)


def _check_vector(v: object, l: int, name: str) -> Array:
    v = np.asarray(v, dtype=np.float64)
    if v.shape != (l,):
        raise ShapeError(f"{name} has shape {v.shape} but the operator is {l} x {l}: need ({l},)")
    if not np.isfinite(v).all():
        raise NonFiniteError(f"{name}{list(np.argwhere(~np.isfinite(v))[0])} is not finite")
    if not np.any(v):
        raise ShapeError(f"{name} is the zero vector: Lanczos needs a non-zero start")
    return v


def lanczos(A: object, v0: object, k: int) -> tuple[Array, Array, Array]:
    """k steps of Lanczos (1950) with full reorthogonalisation: (alpha (k,), beta (k-1,), Q (l, k)).

    T = tridiag(beta, alpha, beta) = Q^T A Q, Q^T Q = I, q_1 = v0 / ||v0||; see the module
    docstring. On a breakdown (an invariant Krylov subspace, beta_j ~ 0) the iteration restarts with
    a unit vector orthogonal to Q and sets beta_j = 0, so that k = l always yields all of A's
    eigenvalues, multiplicities included. k products A v.

    Raises:
        ShapeError: A not square, v0 of the wrong shape or zero, k not in 1..l.
        NotSymmetricError: the coefficients show that A is not symmetric.
        NonFiniteError: a product A v is not finite.
    """
    A = _as_operator(A)
    l = A.shape[0]
    k = _check_count(k, "k", 1, l, f" (at most l = {l} Lanczos steps)")
    v0 = _check_vector(v0, l, "v0")
    run = _lanczos(A, v0, k)
    return run.alpha, run.beta, run.Q


def tridiagonal_eigh(alpha: Array, beta: Array) -> tuple[Array, Array]:
    """Eigenvalues (ascending) and eigenvectors of tridiag(beta, alpha, beta) (LAPACK stemr)."""
    if len(alpha) == 1:
        return np.asarray(alpha, dtype=np.float64).copy(), np.ones((1, 1))
    return scipy.linalg.eigh_tridiagonal(alpha, beta)


def gauss_quadrature(alpha: Array, beta: Array) -> tuple[Array, Array]:
    """Nodes theta_i and weights w_i = s_(1,i)^2 of the Gauss rule of T = tridiag(beta, alpha, beta).

    For T from `lanczos(A, v0, k)`: sum_i w_i theta_i^p = v0^T A^p v0 / v0^T v0 for p <= 2k - 1
    (Golub & Meurant 2010). The weights are the squared FIRST components of T's eigenvectors, not
    the squared rows of the Ritz vectors; they sum to 1.
    """
    theta, S = tridiagonal_eigh(np.asarray(alpha, dtype=np.float64), np.asarray(beta, dtype=np.float64))
    return theta, S[0] ** 2


# --------------------------------------------------------------------------------------------
# eigenvalues


@dataclass(frozen=True)
class Eigenpairs:
    """`top_eigenvalues`' result; unpacks as (values, vectors).

    Attributes:
        values: (k,) eigenvalue estimates, largest first (smallest first for which="smallest").
        vectors: (l, k) unit eigenvector estimates, column i for values[i].
        residuals: (k,) ||A v_i - lambda_i v_i|| (from the Lanczos relation for "lanczos", computed
            explicitly for "power" and "arpack"). Some eigenvalue of A lies within residuals[i] of
            values[i] (for a unit vector v_i, a theorem for any symmetric A).
        n_matvecs: the products A v spent (including the symmetry check).
    """

    values: Array
    vectors: Array
    residuals: Array
    n_matvecs: int

    def __iter__(self):
        return iter((self.values, self.vectors))


def residual_norms(A: object, values: Array, vectors: Array) -> Array:
    """||A v_i - lambda_i v_i|| for each column v_i of `vectors` (k products)."""
    A = _as_operator(A)
    vectors = np.asarray(vectors, dtype=np.float64).reshape(A.shape[0], -1)
    return np.linalg.norm(_apply(A, vectors, "residual_norms") - vectors * np.asarray(values), axis=0)


def _lanczos_eigs(A: LinearOperator, k: int, largest: bool, v0: Array, tol: float,
                  max_steps: int) -> Eigenpairs:
    def pick(alpha: Array, beta: Array, beta_last: float) -> tuple[Array, Array, Array, float]:
        theta, S = tridiagonal_eigh(alpha, beta)
        idx = np.arange(len(theta))[::-1][:k] if largest else np.arange(len(theta))[:k]
        # the scale: max |theta| over all Ritz values, a lower bound on ||A|| that converges first
        return theta[idx], S[:, idx], beta_last * np.abs(S[-1, idx]), float(np.abs(theta).max())

    def converged(alpha: Array, beta: Array, beta_last: float) -> bool:
        if len(alpha) < k:
            return False
        _, _, res, scale = pick(alpha, beta, beta_last)
        return bool(np.all(res <= tol * max(scale, np.finfo(float).tiny)))

    run = _lanczos(A, v0, max_steps, stop=converged)
    if len(run.alpha) < k:
        raise ConvergenceError(f"Lanczos ran {len(run.alpha)} steps, fewer than k = {k}")
    theta, S, res, _ = pick(run.alpha, run.beta, run.beta_last)
    return Eigenpairs(theta, run.Q @ S, res, len(run.alpha))


def _power_eigs(A: LinearOperator, k: int, rng: np.random.Generator, tol: float,
                max_steps: int) -> Eigenpairs:
    """Power iteration with Hotelling deflation A - sum_j lambda_j u_j u_j^T, one pair at a time."""
    l = A.shape[0]
    vals, vecs, res, n = [], [], [], 0
    for i in range(k):
        U = np.column_stack(vecs) if vecs else np.zeros((l, 0))
        lam_U = np.asarray(vals)
        v = rng.standard_normal(l)
        v /= np.linalg.norm(v)
        lam, r = 0.0, math.inf
        for _ in range(max_steps):
            Av = _apply(A, v, "power iteration") - U @ (lam_U * (U.T @ v))
            n += 1
            lam = float(v @ Av)
            r = float(np.linalg.norm(Av - lam * v))
            if r <= tol * max(abs(lam), np.finfo(float).tiny):
                break
            v = Av / np.linalg.norm(Av)
        else:
            raise ConvergenceError(
                f"power iteration for eigenvalue {i + 1} stopped at {max_steps} products with "
                f"residual {r:.3g} > tol |lambda| = {tol * abs(lam):.3g} (a small gap "
                f"|lambda_2 / lambda_1| slows it; Lanczos converges faster)")
        vals.append(lam)
        vecs.append(v)
        res.append(r)
    order = np.argsort(vals)[::-1]
    return Eigenpairs(np.asarray(vals)[order], np.column_stack(vecs)[:, order], np.asarray(res)[order], n)


def top_eigenvalues(A: object, k: int = 1, method: str = "lanczos", which: str = "largest", *,
                    rng: np.random.Generator, tol: float = 1e-8, max_steps: int | None = None,
                    v0: Array | None = None) -> Eigenpairs:
    """The k largest (or smallest) eigenvalues of a symmetric A and their eigenvectors.

    Returns an `Eigenpairs` that unpacks as (values (k,), vectors (l, k)); `.residuals` holds
    ||A v_i - lambda_i v_i|| and `.n_matvecs` the products spent.

    Methods:
        "lanczos": Lanczos with full reorthogonalisation from a random start, stopped when every
            wanted Ritz pair has residual beta_k |s_(k,i)| <= tol max_j |theta_j| (~ tol ||A||).
            Kaniel-Paige-Saad: error ~ ((1 - sqrt(g)) / (1 + sqrt(g)))^(2k), g = (l1 - l2)/(l2 - l_min).
        "power": power iteration with deflation, for comparison: error ~ (lambda_2 / lambda_1)^(2k).
            It finds the eigenvalues of largest MAGNITUDE, so it answers which="largest" only
            when those are the largest ones (positive semi-definite A, or dominant positive
            outliers as in trained networks' Hessians); which="smallest" is not offered.
        "arpack": scipy's eigsh (implicitly restarted Lanczos), which needs k < l.
    Args:
        tol: relative residual tolerance (lanczos, power, and eigsh's own tol).
        max_steps: the budget of products (default: l for lanczos, 100 l for power).
        v0: Lanczos' start vector (default: a Gaussian vector from rng), e.g. the top eigenvector
            of a nearby operator, mixed with a random vector so that no eigenvector is missed.
    Raises:
        ShapeError: k not in 1..l; NotSymmetricError; NonFiniteError; ConvergenceError.
    """
    A = _as_operator(A)
    rng = _check_rng(rng)
    l = A.shape[0]
    k = _check_count(k, "k", 1, l, f" (the operator has l = {l} eigenvalues)")
    if which not in ("largest", "smallest"):
        raise TestbedError(f"which must be 'largest' or 'smallest', got {which!r}")
    if not (isinstance(tol, float | int) and tol > 0 and math.isfinite(tol)):
        raise TestbedError(f"tol must be a finite number > 0, got {tol!r}")
    if method == "lanczos":
        steps = l if max_steps is None else _check_count(max_steps, "max_steps", k, l)
        start = rng.standard_normal(l) if v0 is None else _check_vector(v0, l, "v0")
        return _lanczos_eigs(A, k, which == "largest", start, float(tol), steps)
    if method == "power":
        if which != "largest":
            raise TestbedError("method='power' finds the eigenvalues of largest magnitude; for "
                               "which='smallest' use 'lanczos' or 'arpack'")
        _check_symmetric(A, rng, "A")
        steps = 100 * l if max_steps is None else _check_count(max_steps, "max_steps", 1)
        out = _power_eigs(A, k, rng, float(tol), steps)
        return Eigenpairs(out.values, out.vectors, out.residuals, out.n_matvecs + 2)
    if method == "arpack":
        if k >= l:
            raise ShapeError(f"method='arpack' needs k < l, got k = {k}, l = {l}; use 'lanczos'")
        _check_symmetric(A, rng, "A")
        counted = count_matvecs(A)
        vals, vecs = spla.eigsh(counted.operator, k=k, which="LA" if which == "largest" else "SA",
                                v0=rng.standard_normal(l), tol=float(tol), maxiter=max_steps)
        order = np.argsort(vals)[::-1] if which == "largest" else np.argsort(vals)
        vals, vecs = vals[order], vecs[:, order]
        res = residual_norms(A, vals, vecs)
        return Eigenpairs(vals, vecs, res, counted.n + k + 2)
    raise TestbedError(f"method must be 'lanczos', 'power' or 'arpack', got {method!r}")


# --------------------------------------------------------------------------------------------
# trace, diagonal, density


def rademacher(l: int, m: int, rng: np.random.Generator) -> Array:
    """An (l, m) matrix of independent +-1 entries (Rademacher probes)."""
    return rng.integers(0, 2, size=(l, m)).astype(np.float64) * 2.0 - 1.0


def _probes(l: int, m: int, rng: np.random.Generator, probes: Array | None) -> Array:
    """The (l, m) probe matrix: m Rademacher vectors from rng, or the caller's `probes`."""
    if probes is None:
        _check_count(m, "m", 1)
        return rademacher(l, m, rng)
    Z = np.asarray(probes, dtype=np.float64)
    if Z.shape != (l, m):
        raise ShapeError(f"probes has shape {Z.shape}, need (l, m) = ({l}, {m})")
    return Z


def _standard_error(samples: Array) -> float | None:
    """std(samples, ddof=1) / sqrt(n), or None when n < 2 (no error can be estimated)."""
    n = samples.shape[0]
    return float(np.std(samples, ddof=1, axis=0) / math.sqrt(n)) if n >= 2 else None


def trace_estimate(A: object, m: int, method: str = "hutchinson", *, rng: np.random.Generator,
                   probes: Array | None = None) -> tuple[float, float | None]:
    """tr(A) from m products: (estimate, standard_error).

    "hutchinson" (Hutchinson 1989): mean_j z_j^T A z_j over m Rademacher z_j; unbiased, with
        Var(z^T A z) = 2 (||A||_F^2 - sum_i A_ii^2), so the error falls as 1/sqrt(m).
    "hutch++" (Meyer, Musco, Musco & Woodruff 2021): with s = m // 3, Q = orth(A S) for an (l, s)
        Rademacher S, the estimate is tr(Q^T A Q) + Hutchinson on (I - QQ^T) A (I - QQ^T) with the
        remaining m - 2s probes. Exact when rank(A) <= s; error O(1/m) in general.
    The standard error is the sample standard deviation of the Hutchinson terms over sqrt(their
    number), conditional on Q for Hutch++; None when fewer than 2 such terms were drawn.

    Args:
        probes: (l, m) vectors to use instead of drawing Rademacher ones ("hutchinson" only; e.g.
            all 2^l sign vectors to check the estimator exactly).
    Raises:
        ShapeError: m < 1 (hutchinson) or m < 3 (hutch++), probes of the wrong shape.
    """
    A = _as_operator(A)
    rng = _check_rng(rng)
    l = A.shape[0]
    if method == "hutchinson":
        Z = _probes(l, m, rng, probes)
        _check_symmetric(A, rng, "A")
        samples = np.einsum("ij,ij->j", Z, _apply(A, Z, "hutchinson"))
        return float(samples.mean()), _standard_error(samples)
    if method == "hutch++":
        if probes is not None:
            raise TestbedError("probes= is for method='hutchinson' only")
        m = _check_count(m, "m", 3, why=" for Hutch++ (m/3 products each for the sketch, "
                                       "tr(Q^T A Q) and the residual's Hutchinson estimate)")
        _check_symmetric(A, rng, "A")
        s = m // 3
        S = rademacher(l, s, rng)
        Q, _ = np.linalg.qr(_apply(A, S, "hutch++ sketch"))
        exact = float(np.einsum("ij,ij->", Q, _apply(A, Q, "hutch++ tr(Q^T A Q)")))
        G = rademacher(l, m - 2 * s, rng)
        G -= Q @ (Q.T @ G)
        samples = np.einsum("ij,ij->j", G, _apply(A, G, "hutch++ residual"))
        return exact + float(samples.mean()), _standard_error(samples)
    raise TestbedError(f"method must be 'hutchinson' or 'hutch++', got {method!r}")


def diagonal_estimate(A: object, m: int, *, rng: np.random.Generator, probes: Array | None = None
                      ) -> tuple[Array, Array | None]:
    """diag(A) by Bekas, Kokiopoulou & Saad (2007): d = sum_j v_j * A v_j / sum_j v_j * v_j.

    With m Rademacher probes the denominator is m and each entry is unbiased:
    d_i = A_ii + (1/m) sum_j sum_(k != i) A_ik v_jk v_ji, variance sum_(k != i) A_ik^2 / m.
    Returns (estimate (l,), standard error (l,) or None when m < 2). `probes`: as in
    `trace_estimate` (all 2^l sign vectors give diag(A) exactly).
    """
    A = _as_operator(A)
    rng = _check_rng(rng)
    l = A.shape[0]
    V = _probes(l, m, rng, probes)
    _check_symmetric(A, rng, "A")
    terms = V * _apply(A, V, "diagonal_estimate")
    est = terms.sum(axis=1) / (V * V).sum(axis=1)
    se = np.std(terms, axis=1, ddof=1) / math.sqrt(m) if m >= 2 else None
    return est, se


def spectral_density(A: object, k: int, n_probes: int, *, rng: np.random.Generator
                     ) -> tuple[Array, Array]:
    """Stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017): (nodes, weights), each (n_probes k,).

    For each Rademacher probe v, k Lanczos steps from v and the Gauss rule of its T (nodes theta_i,
    weights s_(1,i)^2, see `gauss_quadrature`); the weights are divided by n_probes, so they sum to
    1 and sum_i w_i f(theta_i) estimates tr(f(A)) / l: the spectral density
    (1/l) sum_i delta(t - lambda_i) as a sum of point masses. Moments p <= 2k - 1 are exact per
    probe; their spread over probes is Hutchinson's. n_probes k products.
    """
    A = _as_operator(A)
    rng = _check_rng(rng)
    l = A.shape[0]
    k = _check_count(k, "k", 1, l, f" (at most l = {l} Lanczos steps)")
    n_probes = _check_count(n_probes, "n_probes", 1)
    nodes, weights = [], []
    for _ in range(n_probes):
        run = _lanczos(A, rademacher(l, 1, rng)[:, 0], k)
        theta, w = gauss_quadrature(run.alpha, run.beta)
        nodes.append(theta)
        weights.append(w / n_probes)
    return np.concatenate(nodes), np.concatenate(weights)


def density_curve(nodes: Array, weights: Array, grid: Array, sigma: float) -> Array:
    """The Gaussian-broadened density sum_i w_i N(t; theta_i, sigma^2) at each t of `grid`."""
    nodes, weights, grid = (np.asarray(a, dtype=np.float64) for a in (nodes, weights, grid))
    if nodes.shape != weights.shape or nodes.ndim != 1:
        raise ShapeError(f"nodes {nodes.shape} and weights {weights.shape} must be equal 1-D shapes")
    if not (math.isfinite(sigma) and sigma > 0):
        raise TestbedError(f"sigma must be finite and > 0, got {sigma}")
    d = (grid[..., None] - nodes) / sigma
    return (weights * np.exp(-0.5 * d * d)).sum(axis=-1) / (sigma * math.sqrt(2 * math.pi))
