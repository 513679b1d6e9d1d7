"""The lecture notes' three lemmas, the only calculus backprop needs, and their R{.} (Pearlmutter).

Each works on one example (1-D vectors, the notes' column vectors) or on a batch of m examples
(2-D arrays, one example per row). For a batch, J is the mean of the per-example losses, and the
parameter gradients are sums over the rows of per-example terms: the 1/m of the mean enters once,
in Lemma 3, and flows through the others.

R{.} = d/dr (.)(theta + r V) at r = 0 is a derivative, so it obeys the product rule; applied to each
lemma it gives the lemma of the R-backward pass (`r_lemma1..3`), with R{W} = VW and R{b} = Vb.
`testbed.nn.rop` runs them fused into one fast pass, which the test suite checks against these
functions composed line by line.
"""

from __future__ import annotations

import numpy as np

from .activations import Activation, get_activation
from .errors import NetworkShapeError

Array = np.ndarray


def _check_linear(dJ_dz: Array, a_prev: Array, W: Array, k: int | None, name: str) -> None:
    if dJ_dz.ndim != a_prev.ndim or W.shape != (dJ_dz.shape[-1], a_prev.shape[-1]) or (
            dJ_dz.ndim == 2 and dJ_dz.shape[0] != a_prev.shape[0]):
        where = f"layer k={k}: " if k is not None else ""
        raise NetworkShapeError(
            f"{where}{name} needs dJ/dz (m, n[k]), a[k-1] (m, n[k-1]), W[k] (n[k], n[k-1]); got "
            f"dJ/dz {dJ_dz.shape}, a[k-1] {a_prev.shape}, W[k] {W.shape}"
        )


def lemma1(dJ_dz: Array, a_prev: Array, W: Array, need_da_prev: bool = True,
           k: int | None = None) -> tuple[Array, Array, Array | None]:
    """Lemma 1 (linear combination z = W a + b): the gradients w.r.t. W, b and a from dJ/dz.

        dJ/dW = dJ/dz a^T        (n[k], n[k-1]); for a batch, sum_i dJ/dz_i a_i^T = dJ_dz^T a_prev
        dJ/db = dJ/dz            (n[k],);        for a batch, sum_i dJ/dz_i
        dJ/da = W^T dJ/dz        (n[k-1],);      for a batch, row i is W^T dJ/dz_i: dJ_dz W

    Args:
        dJ_dz: (n[k],) or (m, n[k]).
        a_prev: a[k-1], (n[k-1],) or (m, n[k-1]).
        W: W[k], (n[k], n[k-1]).
        need_da_prev: False skips dJ/da (one matmul), as backprop does at k = 1 unless dJ/dx
            is wanted.
        k: the layer, only for error messages.
    Returns:
        (dJ/dW, dJ/db, dJ/da[k-1] or None).
    """
    _check_linear(dJ_dz, a_prev, W, k, "lemma1")
    dJ_da_prev = dJ_dz @ W if need_da_prev else None
    if dJ_dz.ndim == 1:
        return np.outer(dJ_dz, a_prev), dJ_dz.copy(), dJ_da_prev
    if dJ_dz.shape[0] == 1:
        # one example as a batch: dJ/dW is an outer product, which BLAS's gemm with an inner
        # dimension of 1 computes 2-3x slower than a broadcast multiply (the same products)
        return dJ_dz.T * a_prev, dJ_dz.sum(axis=0), dJ_da_prev
    # dJ_dz.T is a transposed view: BLAS reads it in place, no copy is made
    return dJ_dz.T @ a_prev, dJ_dz.sum(axis=0), dJ_da_prev


def lemma2(dJ_da: Array, z: Array, activation: str | Activation) -> Array:
    """Lemma 2 (activation a = sigma(z), elementwise): dJ/dz = dJ/da ⊙ sigma'(z).

    Shapes: dJ_da and z both (n[k],) or both (m, n[k]).
    """
    if dJ_da.shape != z.shape:
        raise NetworkShapeError(
            f"lemma2 needs dJ/da and z of one shape, got {dJ_da.shape} and {z.shape}"
        )
    return dJ_da * get_activation(activation).dsigma(z)


def lemma3(y: Array, tau: Array) -> Array:
    """Lemma 3 (output layer, J = 1/2 ||y - tau||^2): dJ/dtau = -(y - tau).

    Convention for a batch: tau and y of shape (m, n[r]) and J = (1/m) sum_i 1/2 ||y_i - tau_i||^2
    (the mean over examples, summed over outputs), so row i of dJ/dtau is -(y_i - tau_i) / m.
    For one example (1-D tau) it is the notes' -(y - tau) exactly.
    """
    if np.shape(y) != tau.shape:
        raise NetworkShapeError(f"lemma3 needs y and tau of one shape, got {np.shape(y)} and "
                                f"{tau.shape}")
    if tau.ndim == 1:
        return tau - y
    # (tau - y) / m is -(y - tau) / m, written without the extra negation pass
    return (tau - y) / tau.shape[0]


def r_lemma1(dJ_dz: Array, R_dJ_dz: Array, a_prev: Array, R_a_prev: Array | None, W: Array,
             VW: Array, need_da_prev: bool = True,
             k: int | None = None) -> tuple[Array, Array, Array | None]:
    """R of Lemma 1: the product rule on each of its three lines, with R{W} = VW.

        R{dJ/dW} = R{dJ/dz} a^T + dJ/dz R{a}^T
        R{dJ/db} = R{dJ/dz}
        R{dJ/da} = W^T R{dJ/dz} + VW^T dJ/dz

    For a batch the rows are examples, as in `lemma1` (R{dJ/dW} = R_dJ_dz^T a + dJ_dz^T R_a).

    Args:
        dJ_dz, R_dJ_dz: dJ/dz[k] and R{dJ/dz[k]}, (n[k],) or (m, n[k]).
        a_prev, R_a_prev: a[k-1] and R{a[k-1]}, (n[k-1],) or (m, n[k-1]); R_a_prev None means 0
            (k = 1 with no direction for x).
        W, VW: W[k] and its direction, (n[k], n[k-1]).
        need_da_prev: False skips R{dJ/da[k-1]} (two matmuls).
    Returns:
        (R{dJ/dW}, R{dJ/db}, R{dJ/da[k-1]} or None).
    """
    _check_linear(dJ_dz, a_prev, W, k, "r_lemma1")
    for name, arr, like in (("R{dJ/dz}", R_dJ_dz, dJ_dz), ("R{a[k-1]}", R_a_prev, a_prev),
                            ("VW", VW, W)):
        if arr is not None and arr.shape != like.shape:
            where = f"layer k={k}: " if k is not None else ""
            raise NetworkShapeError(f"{where}r_lemma1 needs {name} of shape {like.shape}, got "
                                    f"{arr.shape}")
    R_dW, R_db, _ = lemma1(R_dJ_dz, a_prev, W, need_da_prev=False)
    if R_a_prev is not None:
        R_dW = R_dW + lemma1(dJ_dz, R_a_prev, W, need_da_prev=False)[0]
    R_da = R_dJ_dz @ W + dJ_dz @ VW if need_da_prev else None
    return R_dW, R_db, R_da


def r_lemma2(dJ_da: Array, R_dJ_da: Array, z: Array, R_z: Array,
             activation: str | Activation) -> Array:
    """R of Lemma 2: R{dJ/dz} = R{dJ/da} ⊙ sigma'(z) + dJ/da ⊙ sigma''(z) ⊙ R{z}.

    Shapes: all four of one shape, (n[k],) or (m, n[k]).
    """
    if not (dJ_da.shape == R_dJ_da.shape == z.shape == R_z.shape):
        raise NetworkShapeError(
            f"r_lemma2 needs dJ/da, R{{dJ/da}}, z and R{{z}} of one shape, got {dJ_da.shape}, "
            f"{R_dJ_da.shape}, {z.shape} and {R_z.shape}"
        )
    act = get_activation(activation)
    return R_dJ_da * act.dsigma(z) + dJ_da * act.d2sigma(z) * R_z


def r_lemma3(R_tau: Array) -> Array:
    """R of Lemma 3 (y fixed): R{dJ/dtau} = R{-(y - tau)} = R{tau}; R{tau} / m for a batch.

    Shapes as in `lemma3`: 1-D (one example, no 1/m) or (m, n[r]).
    """
    if R_tau.ndim == 1:
        return R_tau.copy()
    return R_tau / R_tau.shape[0]
