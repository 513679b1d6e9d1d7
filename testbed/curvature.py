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

Every algorithm checks that A is square, real and symmetric (Lanczos from its own coefficients: for
a symmetric A, Q^T A q_j vanishes off the tridiagonal; the others with two products on random
vectors) and that every product A v is real, finite and of shape (l,) (A V of shape (l, p) for a
block): a complex operator (a Hermitian one would lose its imaginary part and give wrong
eigenvalues) raises `NotRealError`, a product of the wrong length a `ShapeError` naming both shapes.
Every eigenvalue method keeps its tolerance or raises `ConvergenceError` (naming the method, the
steps and the residual). Randomness comes only from the `rng` Generator passed in.

Operators are snapshots. An operator built from data (`hessian_operator` here,
`testbed.nn.hessian_operator` and `testbed.nn.gauss_newton_operator`) copies what it is built from
(the point x; the network's weights, x and y) when it is built: changing those arrays in place
afterwards changes none of its products, which stay those of the matrix at build time. Build a new
operator to follow new weights. `count_matvecs` copies a dense array or sparse matrix the same way;
an operator the caller supplies (a LinearOperator, or `symmetric_operator`'s function) is the
caller's and is used as it is.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg as spla

from . import transforms
from ._checks import check_int
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


class NotRealError(ShapeError, TypeError):
    """A complex (or non-numeric) operator, product A v or array where real float64 is required.

    Both a ShapeError (a wrong dtype, testbed's convention for arrays) and a TypeError (the kind of
    number is wrong), so that either except clause catches it.
    """


# --------------------------------------------------------------------------------------------
# operators


def _real(a: object, name: str) -> Array:
    """a as a float64 array, refusing complex and non-numeric dtypes (which would convert silently
    to a wrong number, or not at all)."""
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        what = "complex numbers" if arr.dtype.kind == "c" else f"dtype {arr.dtype}"
        raise NotRealError(f"{name} must hold real numbers, got {what} (dtype {arr.dtype})"
                           + (": the imaginary part would be dropped" if arr.dtype.kind == "c" else ""))
    return arr.astype(np.float64, copy=False)


def _as_operator(A: object, what: str = "A", snapshot: bool = False) -> LinearOperator:
    """A as a square real LinearOperator (dense arrays and sparse matrices are wrapped; with
    `snapshot`, copied first, so that the operator does not follow later changes to them)."""
    if not isinstance(A, LinearOperator):
        arr = A
        if isinstance(A, np.ndarray | list | tuple):
            arr = _real(A, what)
            if snapshot:
                arr = arr.copy()
        elif scipy.sparse.issparse(A):
            if np.dtype(A.dtype).kind not in "biuf":
                raise NotRealError(f"{what} must hold real numbers, got a sparse matrix of dtype "
                                   f"{A.dtype}")
            arr = A.astype(np.float64, copy=snapshot)
        try:
            A = spla.aslinearoperator(arr)
        except TypeError as exc:
            raise TypeError(f"{what} must be a LinearOperator or a 2-D array, got {type(A)}") from exc
    if A.dtype is not None and np.dtype(A.dtype).kind not in "biuf":
        raise NotRealError(
            f"{what} has dtype {A.dtype}: curvature operators must be real symmetric (float64); a "
            f"complex (e.g. Hermitian) operator is not supported, its imaginary part would be dropped")
    if len(A.shape) != 2 or A.shape[0] != A.shape[1]:
        raise ShapeError(f"{what} has shape {A.shape}: a curvature operator must be square (l, l)")
    if A.shape[0] < 1:
        raise ShapeError(f"{what} has shape {A.shape}: l must be >= 1")
    return A


def _returned_shape(A: LinearOperator, V: Array) -> tuple[int, ...] | None:
    """The shape of the operator's own product (scipy's wrapper reshapes it), None if unknown."""
    try:
        return tuple(np.shape(A._matvec(V if V.ndim == 1 else V[:, 0])))
    except Exception:  # only a diagnosis: the caller raises the original error instead
        return None


def _apply(A: LinearOperator, V: Array, what: str) -> Array:
    """A V for V of shape (l,) or (l, p): float64, checked real, of V's shape, and finite."""
    l = A.shape[0]
    want = f"({l},)" if V.ndim == 1 else f"({l}, {V.shape[1]})"
    try:
        raw = A.matvec(V) if V.ndim == 1 else A.matmat(V)
    except TestbedError:
        raise
    except ValueError as exc:
        # scipy's matvec reshapes the operator's result to (l,) and fails on a wrong length
        # ("cannot reshape array of size ..."): say which shapes disagree
        got = _returned_shape(A, V)
        if got is not None and math.prod(got) != l:
            raise ShapeError(
                f"{what}: the operator is {l} x {l}, so A v must have shape ({l},), but its matvec "
                f"returned shape {got}") from exc
        raise
    out = np.asarray(raw)
    if out.dtype.kind not in "biuf":
        raise NotRealError(
            f"{what}: the product A v has dtype {out.dtype}; curvature operators must be real "
            f"symmetric (float64), a complex (e.g. Hermitian) operator is not supported")
    if out.shape != V.shape:
        if V.ndim == 2 and V.shape[1] == 1 and out.shape == (l,):
            out = out.reshape(V.shape)
        elif V.ndim == 1 and out.shape == (l, 1):
            out = out.reshape(l)
        else:
            raise ShapeError(f"{what}: the operator is {l} x {l}, so A V for V of shape {V.shape} "
                             f"must have shape {want}, but it returned shape {out.shape}")
    out = out.astype(np.float64, copy=False)
    if not np.isfinite(out).all():
        bad = np.argwhere(~np.isfinite(out))[0]
        raise NonFiniteError(f"{what}: the product A v holds a non-finite entry at {tuple(bad)} "
                             f"({out[tuple(bad)]}); the operator overflowed or is not finite here")
    return out


def _norm(w: Array) -> float:
    """||w||_2 without underflow (numpy's norm squares the entries: 1e-200 would give 0)."""
    scale = float(np.abs(w).max(initial=0.0))
    return 0.0 if scale == 0.0 else scale * float(np.linalg.norm(w / scale))


def _check_symmetric(A: LinearOperator, rng: np.random.Generator, what: str = "A") -> float:
    """Two products on random vectors: |u^T A w - w^T A u| <= SYMMETRY_TOL ||u|| ||A|| ||w||.

    Returns max ||A u|| / ||u|| over the two vectors, a lower bound on ||A|| (0.0 when l = 1: no
    product is spent).
    """
    l = A.shape[0]
    if l == 1:
        return 0.0
    U = rng.standard_normal((l, 2))
    AU = _apply(A, U, f"{what} (the symmetry check)")
    uAw, wAu = float(U[:, 0] @ AU[:, 1]), float(U[:, 1] @ AU[:, 0])
    scale = float(max(np.linalg.norm(AU[:, 0]) * np.linalg.norm(U[:, 1]),
                      np.linalg.norm(AU[:, 1]) * np.linalg.norm(U[:, 0])))
    if abs(uAw - wAu) > SYMMETRY_TOL * scale:
        raise NotSymmetricError(f"{what} is not symmetric: u^T A w = {uAw!r} but w^T A u = {wAu!r} "
                                f"for random u, w (scale {scale:.3g}); curvature operators must be")
    return float(max(_norm(AU[:, 0]) / _norm(U[:, 0]), _norm(AU[:, 1]) / _norm(U[:, 1])))


def _check_rng(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(rng)}")
    return rng


def _check_count(value: object, name: str, lo: int, hi: int | None = None, why: str = "") -> int:
    value = check_int(value, name)  # TypeError; the range is a ShapeError, worded for an operator
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
        return self._mv(_real(v, "v (in A v)").reshape(-1))

    def _rmatvec(self, v: Array) -> Array:
        return self._matvec(v)

    def _matmat(self, V: Array) -> Array:
        V = _real(V, "V (in A V)")
        if self._mm is not None:
            return self._mm(V)
        return np.column_stack([self._matvec(V[:, j]) for j in range(V.shape[1])])

    def _rmatmat(self, V: Array) -> Array:
        return self._matmat(V)

    def _adjoint(self) -> LinearOperator:
        return self


def symmetric_operator(l: int, matvec: Callable[[Array], Array],
                       matmat: Callable[[Array], Array] | None = None) -> LinearOperator:
    """An l x l symmetric float64 LinearOperator from v -> A v (A^T = A, so rmatvec = matvec).

    `matmat`, if given, computes A V for a block V of shape (l, p) at once; otherwise column by
    column. The caller vouches for symmetry; the algorithms below check it (and that every product
    is real, finite and of the right shape). The functions are used as they are: whatever they read
    is the caller's to keep fixed (testbed's own operators snapshot their inputs, see the module
    docstring). A complex v or V is refused (NotRealError).
    """
    l = _check_count(l, "l", 1)
    return _Symmetric(l, matvec, matmat)


def hessian_operator(c: Circuit, x: object) -> LinearOperator:
    """The Hessian of a scalar circuit f: R^l -> R at x as a LinearOperator: v -> (grad^2 f)(x) v.

    Each product is what `testbed.hvp` computes: forward mode through the gradient circuit, O(N + l)
    (the gradient circuit is built once, here); a block of p vectors is one batched sweep. x is
    copied: changing it in place afterwards does not change the operator (a circuit is immutable).
    """
    if not isinstance(c, Circuit):
        raise TypeError(f"hessian_operator takes a Circuit, got {type(c)}")
    if c.n_outputs != 1:
        raise ShapeError(f"hessian_operator needs a scalar circuit (1 output), this one has "
                         f"{c.n_outputs}")
    x = _real(x, "x").copy()  # a snapshot: the operator stays the Hessian at this x
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
    """Wrap A so that every product A v is counted: how many HVPs an algorithm really spent.

    A dense array or sparse matrix is copied (the counted operator is a snapshot of it); a
    LinearOperator is wrapped as it is. Every product is checked as the algorithms check theirs.
    """
    A = _as_operator(A, snapshot=True)
    counter = [0]

    def mv(v: Array) -> Array:
        counter[0] += 1
        return _apply(A, v, "count_matvecs' A")

    def mm(V: Array) -> Array:
        counter[0] += V.shape[1]
        return _apply(A, V, "count_matvecs' A")

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
    v = _real(v, name)
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
        ShapeError: A not square, v0 of the wrong shape or zero, k not in 1..l, a product A v of
            the wrong shape.
        NotRealError: A, v0 or a product A v is complex.
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
    theta, S = tridiagonal_eigh(_real(alpha, "alpha"), _real(beta, "beta"))
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
    """||A v_i - lambda_i v_i|| for each column v_i of `vectors` ((l,) or (l, k); k products)."""
    A = _as_operator(A)
    l = A.shape[0]
    vectors = _real(vectors, "vectors")
    if vectors.ndim == 1:
        vectors = vectors.reshape(-1, 1)
    values = _real(values, "values").reshape(-1)
    if vectors.ndim != 2 or vectors.shape[0] != l or values.shape != (vectors.shape[1],):
        raise ShapeError(f"residual_norms: vectors has shape {vectors.shape} and values "
                         f"{values.shape}, need vectors (l, k) = ({l}, k), one column per value")
    return np.linalg.norm(_apply(A, vectors, "residual_norms") - vectors * values, axis=0)


def _not_converged(method: str, steps: str, i: int, res: float, bound: float, hint: str
                   ) -> ConvergenceError:
    return ConvergenceError(
        f"top_eigenvalues(method={method!r}): after {steps} the eigenpair {i + 1} has residual "
        f"||A v - lambda v|| = {res:.3g} > tol * scale = {bound:.3g}; {hint}")


def _lanczos_eigs(A: LinearOperator, k: int, largest: bool, v0: Array, tol: float,
                  max_steps: int) -> Eigenpairs:
    def pick(alpha: Array, beta: Array, beta_last: float) -> tuple[Array, Array, Array, float]:
        theta, S = tridiagonal_eigh(alpha, beta)
        idx = np.arange(len(theta))[::-1][:k] if largest else np.arange(len(theta))[:k]
        # the scale: max |theta| over all Ritz values, a lower bound on ||A|| that converges first
        return theta[idx], S[:, idx], beta_last * np.abs(S[-1, idx]), float(np.abs(theta).max())

    def bound(scale: float) -> float:
        return tol * max(scale, np.finfo(float).tiny)

    def converged(alpha: Array, beta: Array, beta_last: float) -> bool:
        if len(alpha) < k:
            return False
        _, _, res, scale = pick(alpha, beta, beta_last)
        return bool(np.all(res <= bound(scale)))

    run = _lanczos(A, v0, max_steps, stop=converged)
    if len(run.alpha) < k:
        raise ConvergenceError(f"Lanczos ran {len(run.alpha)} steps, fewer than k = {k}")
    theta, S, res, scale = pick(run.alpha, run.beta, run.beta_last)
    bad = np.flatnonzero(res > bound(scale))
    if bad.size:  # the budget ran out before every wanted pair converged
        i = int(bad[np.argmax(res[bad])])
        raise _not_converged(
            "lanczos", f"{len(run.alpha)} steps (max_steps = {max_steps}, of at most l = "
            f"{A.shape[0]})", i, float(res[i]), bound(scale),
            "raise max_steps or tol" if max_steps < A.shape[0] else
            "l steps span the whole space, so tol is below the rounding of the products")
    return Eigenpairs(theta, run.Q @ S, res, len(run.alpha))


def _power_pass(A: LinearOperator, sign: float, shift: float, k: int, rng: np.random.Generator,
                tol: float, max_steps: int, scale: float | None, stop_on_negative: bool
                ) -> tuple[list[float], list[Array], list[float], int]:
    """Power iteration with Hotelling deflation on B = sign A + shift I: the eigenpairs of B of
    largest MAGNITUDE, one at a time: (values, vectors, residuals, products).

    Each pair stops when ||B_deflated v - lambda v|| <= tol * s, s = `scale`, or when it is None
    the largest |lambda| found so far (~ ||B||). With `stop_on_negative` the pass ends at the first
    negative value (fewer than k pairs).
    """
    l = A.shape[0]
    vals: list[float] = []
    vecs: list[Array] = []
    res: list[float] = []
    n = 0
    for i in range(k):
        U = np.column_stack(vecs) if vecs else np.zeros((l, 0))
        lam_U = np.asarray(vals)
        v = rng.standard_normal(l)
        v /= np.linalg.norm(v)
        lam, r, s = 0.0, math.inf, 0.0
        for _ in range(max_steps):
            Bv = sign * _apply(A, v, "power iteration") + shift * v - U @ (lam_U * (U.T @ v))
            n += 1
            lam = float(v @ Bv)
            r = float(np.linalg.norm(Bv - lam * v))
            s = scale if scale is not None else max([abs(lam)] + [abs(x) for x in vals])
            if r <= tol * max(s, np.finfo(float).tiny):
                break
            v = Bv / np.linalg.norm(Bv)
        else:
            raise _not_converged(
                "power", f"{max_steps} products (max_steps, the budget per eigenvalue) on "
                f"{'A' if sign > 0 else '-A'}" + (f" + {shift:.3g} I" if shift else ""),
                i, r, tol * s, "a small gap |lambda_2 / lambda_1| slows power iteration, and a "
                "pair +-lambda of largest magnitude stops it (Lanczos converges faster)")
        vals.append(lam)
        vecs.append(v)
        res.append(r)
        if stop_on_negative and lam < 0:
            break
    return vals, vecs, res, n


def _power_eigs(A: LinearOperator, k: int, largest: bool, rng: np.random.Generator, tol: float,
                max_steps: int) -> Eigenpairs:
    """The k algebraically largest (smallest) eigenpairs by power iteration (see top_eigenvalues)."""
    sign = 1.0 if largest else -1.0  # the smallest of A are the largest of -A
    vals, vecs, res, n = _power_pass(A, sign, 0.0, k, rng, tol, max_steps, None, True)
    scale = max(abs(x) for x in vals)  # the dominant |eigenvalue| of A: ~ ||A||
    shift = 0.0
    if min(vals) < 0:
        # Some of the k eigenvalues of largest magnitude of B = sign A are negative, so they are
        # not its k largest. B + s I with s >= ||B|| is positive semi-definite, and there the
        # largest magnitudes are the largest values.
        shift = scale + res[int(np.argmax(np.abs(vals)))]
        vals, vecs, res, n2 = _power_pass(A, sign, shift, k, rng, tol, max_steps, scale, False)
        n += n2
    if k == 1:  # the last iterate's residual is the true one: no deflation entered it
        theta, Y, R = np.asarray(vals), vecs[0].reshape(-1, 1), np.asarray(res)
    else:
        # Hotelling's deflated residuals are not those of A (the earlier pairs' errors leak in,
        # amplified by 1 / gap): Rayleigh-Ritz on span(v_1..v_k), with explicit residuals
        Q, _ = np.linalg.qr(np.column_stack(vecs))
        BQ = sign * _apply(A, Q, "power iteration (Rayleigh-Ritz)") + shift * Q
        n += k
        theta, S = np.linalg.eigh((Q.T @ BQ + BQ.T @ Q) / 2)
        order = np.argsort(theta)[::-1]
        theta, S = theta[order], S[:, order]
        Y = Q @ S
        R = np.linalg.norm(BQ @ S - Y * theta, axis=0)
    bound = tol * max(scale, np.finfo(float).tiny)
    bad = np.flatnonzero(R > bound)
    if bad.size:
        i = int(bad[np.argmax(R[bad])])
        raise _not_converged("power", f"{n} products (max_steps = {max_steps} per eigenvalue)",
                             i, float(R[i]), bound, "raise max_steps or tol, or use 'lanczos'")
    return Eigenpairs(sign * (theta - shift), Y, R, n)


def _arpack_eigs(A: LinearOperator, k: int, largest: bool, rng: np.random.Generator, tol: float,
                 max_steps: int | None) -> Eigenpairs:
    anorm = _check_symmetric(A, rng, "A")
    # eigsh's test is ||r|| <= tol max(eps^(2/3), |theta|): on A / anorm (anorm <= ||A||, from the
    # symmetry check) its absolute floor eps^(2/3) is relative to A's scale
    scale = anorm if anorm > 0 else 1.0
    counter = [0]

    def mv(v: Array) -> Array:
        counter[0] += 1
        return _apply(A, v, "arpack") / scale

    def mm(V: Array) -> Array:
        counter[0] += V.shape[1]
        return _apply(A, V, "arpack") / scale

    try:
        vals, vecs = spla.eigsh(_Symmetric(A.shape[0], mv, mm), k=k, which="LA" if largest else "SA",
                                v0=rng.standard_normal(A.shape[0]), tol=tol, maxiter=max_steps)
    except spla.ArpackNoConvergence as exc:
        raise ConvergenceError(
            f"top_eigenvalues(method='arpack'): scipy's eigsh did not converge to tol = {tol:g} in "
            f"maxiter = {max_steps} restarts ({counter[0]} products): {len(exc.eigenvalues)} of "
            f"k = {k} eigenpairs converged; raise max_steps or tol, or use 'lanczos'") from exc
    vals = vals * scale
    order = np.argsort(vals)[::-1] if largest else np.argsort(vals)
    vals, vecs = vals[order], vecs[:, order]
    res = residual_norms(A, vals, vecs)
    bound = tol * max(scale, float(np.abs(vals).max()), np.finfo(float).tiny)
    bad = np.flatnonzero(res > bound)
    if bad.size:
        i = int(bad[np.argmax(res[bad])])
        raise _not_converged("arpack", f"{counter[0]} products", i, float(res[i]), bound,
                             "raise tol, or use 'lanczos'")
    return Eigenpairs(vals, vecs, res, counter[0] + k + 2)


def top_eigenvalues(A: object, k: int = 1, method: str = "lanczos", which: str = "largest", *,
                    rng: np.random.Generator, tol: float = 1e-8, max_steps: int | None = None,
                    v0: Array | None = None) -> Eigenpairs:
    """The k largest (or smallest) eigenvalues of a symmetric A and their eigenvectors.

    `which` means the same for every method: "largest" the k algebraically largest eigenvalues
    (not those of largest magnitude: on diag(1, 0.5, -3) the largest is 1), "smallest" the k
    algebraically smallest. Returns an `Eigenpairs` that unpacks as (values (k,), vectors (l, k)),
    values largest first ("smallest": smallest first); `.residuals` holds ||A v_i - lambda_i v_i||
    and `.n_matvecs` the products spent.

    Every method either returns pairs with residuals[i] <= tol * s, s ~ ||A|| (defined per method
    below), so that some eigenvalue of A lies within tol * s of values[i], or raises
    ConvergenceError naming the method, the steps spent and the residual.

    Methods:
        "lanczos": Lanczos with full reorthogonalisation from a random start, stopped when every
            wanted Ritz pair has residual beta_k |s_(k,i)| <= tol max_j |theta_j| (s = the largest
            |Ritz value|, ~ ||A||); ConvergenceError when max_steps steps end before that.
            Kaniel-Paige-Saad: error ~ ((1 - sqrt(g)) / (1 + sqrt(g)))^(2k), g = (l1 - l2)/(l2 - l_min).
        "power": power iteration with Hotelling deflation, for comparison: error ~
            (lambda_2 / lambda_1)^(2k). It finds eigenvalues of largest MAGNITUDE, so it runs on
            B = A (-A for "smallest"); when some of B's k largest-magnitude eigenvalues are
            negative it runs again on B + s I, s = |lambda_1(B)| (+ its residual) >= ||B||, which is
            positive semi-definite, where the largest magnitudes are the largest values. For k > 1
            a Rayleigh-Ritz step on the k vectors (k products) gives the returned pairs and their
            explicit residuals. s = |dominant eigenvalue of A|. max_steps is the budget per
            eigenvalue; a pair +-lambda of largest magnitude never converges (ConvergenceError).
        "arpack": scipy's eigsh (implicitly restarted Lanczos, which="LA" / "SA"), which needs
            k < l; run on A / a, a = max ||A u|| / ||u|| over the symmetry check's random u, so
            that eigsh's own tol is relative; its residuals are then computed explicitly (k
            products) and checked against tol * s, s = max(a, max_i |values_i|).
    Args:
        tol: relative residual tolerance, as above (lanczos, power; eigsh's own tol for arpack).
        max_steps: the budget: Lanczos steps (products; default l), power iteration's products per
            eigenvalue (default 100 l), eigsh's maxiter (restarts; default scipy's 10 l).
        v0: Lanczos' start vector (default: a Gaussian vector from rng), e.g. the top eigenvector
            of a nearby operator, mixed with a random vector so that no eigenvector is missed.
    Raises:
        ShapeError: k not in 1..l, a product of the wrong shape; NotRealError: a complex operator
        or product; NotSymmetricError; NonFiniteError; ConvergenceError.
    """
    A = _as_operator(A)
    rng = _check_rng(rng)
    l = A.shape[0]
    k = _check_count(k, "k", 1, l, f" (the operator has l = {l} eigenvalues)")
    if which not in ("largest", "smallest"):
        raise TestbedError(f"which must be 'largest' or 'smallest', got {which!r}")
    if isinstance(tol, bool) or not (isinstance(tol, float | int) and tol > 0 and math.isfinite(tol)):
        raise TestbedError(f"tol must be a finite number > 0, got {tol!r}")
    largest = which == "largest"
    if method == "lanczos":
        steps = l if max_steps is None else _check_count(max_steps, "max_steps", k, l)
        start = rng.standard_normal(l) if v0 is None else _check_vector(v0, l, "v0")
        return _lanczos_eigs(A, k, largest, start, float(tol), steps)
    if method == "power":
        _check_symmetric(A, rng, "A")
        steps = 100 * l if max_steps is None else _check_count(max_steps, "max_steps", 1)
        out = _power_eigs(A, k, largest, rng, float(tol), steps)
        return Eigenpairs(out.values, out.vectors, out.residuals, out.n_matvecs + (2 if l > 1 else 0))
    if method == "arpack":
        if k >= l:
            raise ShapeError(f"method='arpack' needs k < l, got k = {k}, l = {l}; use 'lanczos'")
        steps = None if max_steps is None else _check_count(max_steps, "max_steps", 1)
        return _arpack_eigs(A, k, largest, rng, float(tol), steps)
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
    Z = _real(probes, "probes")
    if Z.shape != (l, m):
        raise ShapeError(f"probes has shape {Z.shape}, need (l, m) = ({l}, {m})")
    if not np.isfinite(Z).all():
        raise NonFiniteError(f"probes{list(np.argwhere(~np.isfinite(Z))[0])} is not finite")
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
        ShapeError: m < 1 (hutchinson) or m < 3 (hutch++), probes of the wrong shape, a product
            A v of the wrong shape. NotRealError: a complex operator, product or probe.
        NotSymmetricError, NonFiniteError: as in `lanczos`.
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
    """The Gaussian-broadened density sum_i w_i N(t; theta_i, sigma^2) at each t of `grid`.

    nodes and weights (equal 1-D shapes, e.g. `spectral_density`'s) must be finite and the weights
    >= 0 (a density's point masses); grid finite, of any shape (the result has its shape); sigma
    finite and > 0. A sigma so small that the curve overflows raises NonFiniteError.
    """
    nodes, weights, grid = (_real(a, name) for a, name in
                            ((nodes, "nodes"), (weights, "weights"), (grid, "grid")))
    if nodes.shape != weights.shape or nodes.ndim != 1:
        raise ShapeError(f"nodes {nodes.shape} and weights {weights.shape} must be equal 1-D shapes")
    for name, arr in (("nodes", nodes), ("weights", weights), ("grid", grid)):
        if not np.isfinite(arr).all():
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
            raise NonFiniteError(f"density_curve: {name}{list(bad)} is {arr[bad]}; {name} must be "
                                 f"finite")
    if (weights < 0).any():
        i = int(np.argmax(weights < 0))
        raise TestbedError(f"density_curve: weights[{i}] = {float(weights[i])!r} < 0; the weights of a "
                           f"density's point masses must be >= 0")
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real):
        raise TypeError(f"sigma must be a real number, got {sigma!r}")
    if not (math.isfinite(sigma) and sigma > 0):
        raise TestbedError(f"sigma must be finite and > 0, got {sigma}")
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        d = (grid[..., None] - nodes) / sigma
        out = (weights * np.exp(-0.5 * d * d)).sum(axis=-1) / (float(sigma) * math.sqrt(2 * math.pi))
    if not np.isfinite(out).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(out))[0])
        raise NonFiniteError(f"density_curve overflowed at grid{list(bad)} = {grid[bad]}: sigma = "
                             f"{sigma!r} is too small for weights up to {weights.max():.3g}")
    return out
